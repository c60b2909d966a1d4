//! Nothing is ever orphaned: the reconciler compares the clusters and terminals on the engine with
//! the sessions and warm pool members the database owns, removes what none owns, fails live
//! sessions whose cluster is gone, forgets pool members whose making a restart cut off or whose
//! cluster is gone, and gives back the ports of sessions that ended. It runs at start-up and then
//! periodically, and every step is idempotent.
//!
//! Beside it, [`keep_alive`] looks at every started session every few seconds: a stopped terminal
//! or cluster container is started again, and a session whose terminal or cluster is gone (or
//! will not start) fails, so the learner is told at once instead of meeting a dead socket.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::{
    clusters::{ClusterName, ClusterProvider, Members},
    domain::{Session, SessionStatus},
    sessions::Sessions,
    store::{PoolMemberStatus, Store},
    terminals::{Revival, TerminalError, TerminalRuntime},
};

/// The lease each pass runs under.
const LEASE: &str = "reconciler";

/// A create or a removal still running after this long is stuck; its session fails and its cluster goes.
const STUCK_AFTER: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Clusters(#[from] crate::clusters::ClusterError),
    #[error(transparent)]
    Terminals(#[from] TerminalError),
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub removed_terminals: Vec<ClusterName>,
    pub removed_clusters: Vec<ClusterName>,
    pub failed_sessions: Vec<String>,
    /// Warm pool members forgotten (their ports given back with them).
    pub forgotten_members: Vec<String>,
    pub released_ports: u64,
}

/// When the pass runs. At start-up, a session left provisioning by an earlier run (recorded
/// before `since`, when this run began) was interrupted; one recorded since is this run's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    StartUp { since: chrono::DateTime<Utc> },
    Periodic,
}

pub async fn reconcile(
    store: &Store,
    clusters: &dyn ClusterProvider,
    terminals: &dyn TerminalRuntime,
    moment: Moment,
) -> Result<Report, ReconcileError> {
    // Engine first, sessions second: a session is recorded before its cluster and terminal are
    // made, so anything listed here that belongs to a live session finds it in the read below.
    let listed_at = Utc::now();
    let existing: HashSet<ClusterName> = clusters.list().await?.into_iter().collect();
    let terminals_present = terminals.list().await?;
    // Pool members before sessions: a member claimed between the two reads is seen in both
    // (claiming records the session and forgets the member at once), never in neither.
    let members = store.pool_members().await?;
    let mut report = Report::default();
    let mut owned = HashSet::new();
    for session in store.live_sessions().await? {
        let name = ClusterName::parse(&session.cluster_name).ok();
        // An exam's other hosts are the session's too (its own is among them).
        let hosts: Vec<ClusterName> = store
            .session_hosts(&session.id)
            .await?
            .into_iter()
            .filter_map(|(_, cluster)| ClusterName::parse(&cluster).ok())
            .collect();
        let present =
            name.as_ref().is_some_and(|n| existing.contains(n)) && hosts.iter().all(|h| existing.contains(h));
        let limit = chrono::Duration::from_std(STUCK_AFTER).unwrap_or_default();
        let stuck = Utc::now() - session.start_time > limit;
        let failure = match (session.status, session.ending_since) {
            // Its remover died with a restart, or hangs: this pass removes what is left.
            (_, Some(since_when)) if matches!(moment, Moment::StartUp { since } if since_when < since) => {
                Some("its removal was interrupted by a platform restart")
            }
            (_, Some(since_when)) if Utc::now() - since_when > limit => Some("its removal took too long"),
            // Being removed: its remover owns what is left.
            (_, Some(_)) => None,
            (SessionStatus::Provisioning, None) if matches!(moment, Moment::StartUp { since } if session.start_time < since) => {
                Some("start interrupted by a platform restart")
            }
            (SessionStatus::Provisioning, None) if stuck => Some("start took too long"),
            (SessionStatus::Started, None) if !present => Some("its cluster disappeared"),
            _ => None,
        };
        match failure {
            Some(reason) => {
                if store
                    .set_session_status(
                        &session.id,
                        SessionStatus::Failed,
                        &format!("reconciler: {reason}"),
                    )
                    .await?
                {
                    tracing::warn!(session = %session.id, cluster = %session.cluster_name, reason, "session failed");
                    report.failed_sessions.push(session.id);
                }
            }
            None => owned.extend(name.into_iter().chain(hosts)),
        }
    }
    for member in members {
        let name = ClusterName::parse(&member.cluster_name).ok();
        let present = name.as_ref().is_some_and(|n| existing.contains(n));
        let forget = match member.status {
            PoolMemberStatus::Filling => {
                matches!(moment, Moment::StartUp { since } if member.created_at < since)
            }
            PoolMemberStatus::Ready => !present && member.ready_at.is_some_and(|t| t < listed_at),
        };
        // Forgotten first, so no start can claim it while its cluster goes.
        if forget {
            if store.delete_pool_member(&member.id).await? {
                tracing::info!(cluster = %member.cluster_name, "forgot a warm pool member");
                report.forgotten_members.push(member.cluster_name);
            }
        } else {
            owned.extend(name);
        }
    }
    // A terminal sits on its cluster's network, so it goes first.
    for name in terminals_present.iter().filter(|n| !owned.contains(*n)) {
        terminals.remove(name).await?;
        tracing::info!(cluster = %name, "removed a terminal no live session owns");
        report.removed_terminals.push(name.clone());
    }
    for name in existing.difference(&owned) {
        clusters.delete(name).await?;
        tracing::info!(cluster = %name, "removed a cluster no live session owns");
        report.removed_clusters.push(name.clone());
    }
    report.removed_clusters.sort();
    report.released_ports = store.release_ports_of_ended_sessions().await?;
    Ok(report)
}

/// One pass, logged; a failure is retried on the next pass.
async fn pass(
    store: &Store,
    clusters: &dyn ClusterProvider,
    terminals: &dyn TerminalRuntime,
    moment: Moment,
) {
    match reconcile(store, clusters, terminals, moment).await {
        Ok(report) if report == Report::default() => tracing::debug!("reconciled: nothing to do"),
        Ok(report) => tracing::info!(?report, "reconciled"),
        Err(error) => tracing::error!(%error, "reconciliation failed"),
    }
}

/// A `first` pass (at start-up: for what was recorded before this run, unless other replicas run
/// beside it), then one every `every` until `stopping` is cancelled. Each pass runs under the
/// reconciler's lease: of several replicas, one reconciles at a time, and a pass the lease is not
/// granted for is another replica's.
pub async fn run(
    store: Store,
    clusters: Arc<dyn ClusterProvider>,
    terminals: Arc<dyn TerminalRuntime>,
    every: Duration,
    first: Moment,
    stopping: CancellationToken,
) {
    let mut moment = first;
    loop {
        match store.lease(LEASE).await {
            Ok(Some(_lease)) => pass(&store, clusters.as_ref(), terminals.as_ref(), moment).await,
            Ok(None) => tracing::debug!("another replica is reconciling"),
            Err(error) => tracing::error!(%error, "cannot take the reconciler's lease"),
        }
        moment = Moment::Periodic;
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// How often [`keep_alive`] looks at the started sessions.
pub const LIVENESS_EVERY: Duration = Duration::from_secs(10);
/// Looks in a row that must find a session's terminal or cluster lost before it fails: one look
/// may fall in the middle of a stop that is removing them.
const STRIKES: u32 = 2;

/// Who looks after a session's terminal and cluster.
#[derive(Clone)]
pub struct Liveness {
    pub sessions: Sessions,
    pub clusters: Arc<dyn ClusterProvider>,
    pub terminals: Arc<dyn TerminalRuntime>,
}

/// Every `every` until `stopping`: starts again what stopped of each started session, and fails
/// the sessions whose terminal or cluster is lost, with the reason, within two looks.
pub async fn keep_alive(live: Liveness, every: Duration, stopping: CancellationToken) {
    let mut strikes: HashMap<String, u32> = HashMap::new();
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let started = match live.sessions.list_live().await {
            Ok(sessions) => sessions
                .into_iter()
                // One being removed is going, not lost: its half-removed parts are no alarm.
                .filter(|s| s.status == SessionStatus::Started && s.ending_since.is_none())
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(%error, "cannot list the started sessions");
                continue;
            }
        };
        strikes.retain(|id, _| started.iter().any(|s| &s.id == id));
        for session in started {
            let Err(reason) = live.look(&session).await else {
                strikes.remove(&session.id);
                continue;
            };
            let count = strikes.entry(session.id.clone()).or_default();
            *count += 1;
            tracing::info!(session = %session.id, reason, strikes = *count, "a started session looks lost");
            if *count >= STRIKES {
                strikes.remove(&session.id);
                live.sessions.fail_lost(&session, reason).await;
            }
        }
    }
}

impl Liveness {
    /// Starts again whatever of the session stopped; the reason (for the learner) if it is lost.
    async fn look(&self, session: &Session) -> Result<(), &'static str> {
        let name = ClusterName::parse(&session.cluster_name).map_err(|_| "its cluster has no valid name")?;
        match self.terminals.revive(&name).await {
            Ok(Revival::Running) => {}
            Ok(Revival::Restarted) => {
                tracing::warn!(session = %session.id, cluster = %name, "its terminal had stopped and was started again");
            }
            Ok(Revival::Gone) => return Err("its terminal was removed"),
            Err(error) => {
                tracing::warn!(session = %session.id, cluster = %name, %error, "its terminal does not start");
                return Err("its terminal stopped and does not start again");
            }
        }
        // An exam's every host: a database that cannot say leaves the look at the session's own.
        let clusters = self
            .sessions
            .cluster_names(session)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(session = %session.id, %error, "cannot read the session's hosts");
                vec![name]
            });
        for cluster in clusters {
            match self.clusters.revive(&cluster).await {
                Ok(Members::Running) => {}
                Ok(Members::Restarted(containers)) => {
                    tracing::warn!(session = %session.id, %cluster, ?containers, "cluster containers had stopped and were started again");
                }
                Ok(Members::Gone) => return Err("its cluster was removed"),
                Err(error) => {
                    tracing::warn!(session = %session.id, %cluster, %error, "its cluster does not start");
                    return Err("its cluster stopped and does not start again");
                }
            }
        }
        Ok(())
    }
}
