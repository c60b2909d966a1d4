//! The warm pool: practice-ready clusters with their terminals made ahead for no one yet, so that
//! a practice start claims one instead of building it (a lite cluster with every task set up takes
//! seconds; a claim, milliseconds).
//!
//! A member is recorded with its ports before anything is made for it, made like a practice
//! session's cluster, tasks' setup, terminal and tasks' files (the terminal carries the id the
//! claiming session will have; its user is known only to the database), and marked ready. Only
//! practice starts claim: the practice setup is the same for every learner, while an exam's
//! cluster must hold its own tasks' setup only, so exams start cold (members of a second kind per
//! exam would multiply the pool). A claim hands a member to a session in one database transaction
//! ([`crate::store::Store::claim_pool_member`]), so it is handed once and never pooled again; the
//! start then checks that its cluster answers and its terminal runs, and a dead one is removed and
//! the start goes on cold. One filler refills the pool in the background, a member at a time,
//! within the host's budget, under a lease (of several replicas, one fills at a time); members
//! older than `max_age` are replaced. Members outlive the process like sessions do: the next start
//! checks them and keeps the healthy ones, and the reconciler removes what a crash left half made.

use std::{
    borrow::Cow,
    time::{Duration, Instant},
};

use app::api::PoolView;
use chrono::Utc;

use super::{write_private, Sessions};
use crate::{
    clusters::{ClusterName, ClusterSpec},
    store::{bound_on_host, PoolMember, PoolMemberStatus},
    tasks::Task,
    terminals::{Revival, TerminalAccess, TerminalSpec},
};

/// How often the filler looks at the pool when nothing wakes it (a claim does), and how long it
/// waits after a failed fill before the next try.
const LOOK_EVERY: Duration = Duration::from_secs(30);
/// After a claimed start, the refill waits this long: the learner's terminal is attaching, and
/// on a small host a cluster being made beside it would slow the prompt down.
const SETTLE: Duration = Duration::from_secs(2);

/// The lease the filler works under (see [`crate::store::Store::lease`]).
const LEASE: &str = "warm-pool";

/// A member's cluster answers its health probe in milliseconds; one that takes longer is hung
/// (a claimed one would keep its learner waiting: the start goes on cold instead).
const HEALTH_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// `WARM_POOL_SIZE`: members kept ready (default 2 for `lite`, 0 for `kind`).
    pub size: usize,
    /// `WARM_POOL_MAX_AGE_MINUTES`: a member older than this is replaced, never handed out.
    pub max_age: Duration,
}

impl PoolSettings {
    /// Members made at or before this are too old to hand out at `now`.
    pub(super) fn fresh_since(&self, now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
        now - chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::hours(1))
    }
}

/// What the filler knows between passes, for `/readyz` and the admin page.
#[derive(Debug, Default)]
pub(super) struct PoolState {
    /// Set when the last try to make a member failed, with why.
    pub last_failure: std::sync::Mutex<Option<String>>,
    /// Woken by each claim.
    pub wake: tokio::sync::Notify,
}

impl Sessions {
    /// Keeps the pool filled in the background until the server stops. First it keeps the
    /// members an earlier run (before `began`, when this run's reconciler began) left that are
    /// still healthy, and removes the rest.
    pub fn start_pool(&self, began: chrono::DateTime<Utc>) {
        let this = self.clone();
        self.work.spawn(async move { this.run_pool(began).await });
    }

    async fn run_pool(&self, began: chrono::DateTime<Utc>) {
        let mut checked = false;
        loop {
            // One replica fills at a time, so that two never count the same gap and overshoot.
            match self.store.lease(LEASE).await {
                Ok(Some(_lease)) => {
                    if !checked {
                        self.keep_healthy_members(began).await;
                        checked = true;
                    }
                    if let Err(error) = self.refill().await {
                        tracing::warn!(%error, "the warm pool cannot refill");
                        *self.pool.last_failure.lock().expect("not poisoned") = Some(error.to_string());
                        self.metrics.refill_failures.inc();
                    }
                }
                Ok(None) => tracing::debug!("another replica is filling the warm pool"),
                Err(error) => tracing::warn!(%error, "cannot take the warm pool's lease"),
            }
            tokio::select! {
                () = self.stopping.cancelled() => return,
                () = self.pool.wake.notified() => tokio::time::sleep(SETTLE).await,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }

    /// Why the pool cannot refill, if its last try failed.
    pub fn pool_failure(&self) -> Option<String> {
        self.pool.last_failure.lock().expect("not poisoned").clone()
    }

    /// The pool as admins see it.
    pub(super) async fn pool_view(&self) -> Result<PoolView, super::SessionError> {
        let members = self.store.pool_members().await?;
        let ready = members
            .iter()
            .filter(|m| m.status == PoolMemberStatus::Ready)
            .count();
        Ok(PoolView {
            size: self.settings.pool.size,
            ready,
            filling: members.len() - ready,
            failure: self.pool_failure(),
        })
    }

    async fn keep_healthy_members(&self, began: chrono::DateTime<Utc>) {
        let members = match self.store.pool_members().await {
            Ok(members) => members,
            Err(error) => return tracing::warn!(%error, "cannot read the warm pool"),
        };
        // Filling members of an earlier run were cut off; the refill removes them.
        for member in members
            .into_iter()
            .filter(|m| m.created_at < began && m.status == PoolMemberStatus::Ready)
        {
            let healthy = match ClusterName::parse(&member.cluster_name) {
                Ok(name) => self.member_health(&name).await,
                Err(error) => Err(error.to_string()),
            };
            if let Err(reason) = healthy {
                tracing::info!(cluster = %member.cluster_name, reason, "removing a warm pool member");
                self.discard(&member).await;
            }
        }
        self.update_ready_gauge().await;
    }

    /// Whether a member's cluster answers and its terminal runs (started again if it stopped).
    pub(super) async fn member_health(&self, name: &ClusterName) -> Result<(), String> {
        match tokio::time::timeout(HEALTH_LIMIT, self.clusters.health(name)).await {
            Ok(Ok(health)) if health.is_healthy() => {}
            Ok(Ok(health)) => return Err(format!("its cluster is not healthy: {health:?}")),
            Ok(Err(error)) => return Err(format!("its cluster does not answer: {error}")),
            Err(_) => return Err(format!("its cluster did not answer within {HEALTH_LIMIT:?}")),
        }
        match self.terminals.revive(name).await {
            Ok(Revival::Running | Revival::Restarted) => Ok(()),
            Ok(Revival::Gone) => Err("its terminal is gone".into()),
            Err(error) => Err(format!("its terminal does not start: {error}")),
        }
    }

    /// One pass: members too old (or beyond the size) go, then new ones are made one at a time
    /// until the pool is full or the host's budget is spent.
    async fn refill(&self) -> Result<(), super::SessionError> {
        let size = self.settings.pool.size;
        let fresh_since = self.settings.pool.fresh_since(Utc::now());
        let mut kept = 0;
        for member in self.store.pool_members().await? {
            // Members are made only under the lease, which this pass holds: one still filling
            // was cut off (a restart, a replica that died) and is no member.
            if member.status == PoolMemberStatus::Filling {
                tracing::info!(cluster = %member.cluster_name, "removing a warm pool member whose making was cut off");
                self.discard(&member).await;
                continue;
            }
            if member.created_at <= fresh_since || kept >= size {
                tracing::info!(cluster = %member.cluster_name, "replacing a warm pool member");
                self.discard(&member).await;
            } else {
                kept += 1;
            }
        }
        // Pool members and live sessions together never exceed the seats plus the pool.
        let budget = self.settings.max_concurrent + size;
        while kept < size && (self.store.count_live_sessions().await? as usize) + kept < budget {
            if self.stopping.is_cancelled() {
                break;
            }
            self.fill_one().await?;
            *self.pool.last_failure.lock().expect("not poisoned") = None;
            kept += 1;
            self.update_ready_gauge().await;
        }
        self.update_ready_gauge().await;
        Ok(())
    }

    async fn update_ready_gauge(&self) {
        if let Ok(view) = self.pool_view().await {
            self.metrics.ready.set(view.ready as i64);
        }
    }

    /// Records a member, makes its cluster and terminal, and marks it ready; on failure removes
    /// what was made and forgets it.
    async fn fill_one(&self) -> Result<(), super::SessionError> {
        let started = Instant::now();
        let name = ClusterName::generate();
        let (member, ports) = self
            .store
            .insert_pool_member(name.as_str(), &self.ports, bound_on_host)
            .await?;
        let made = async {
            let cluster = self
                .clusters
                .create(&ClusterSpec {
                    name: name.clone(),
                    ports,
                })
                .await?;
            write_private(&self.kubeconfig_file(&member.id), cluster.admin_kubeconfig.yaml()).await?;
            self.terminals
                .create(&TerminalSpec {
                    cluster: &name,
                    network: &cluster.network,
                    access: TerminalAccess::Cluster(&cluster.terminal_kubeconfig),
                    session_id: &member.id,
                    user_id: "",
                })
                .await?;
            // Practice-ready: the practice tasks' setup and files are the same for every
            // learner, so they are made here rather than after the claim.
            let practice: Vec<Cow<'_, Task>> = self.tasks.list().iter().map(Cow::Borrowed).collect();
            self.apply_setup(&cluster.admin_kubeconfig.client().await?, &practice)
                .await?;
            self.place_files(&name, &practice).await?;
            Ok::<_, super::SessionError>(())
        }
        .await;
        if let Err(error) = made {
            self.discard(&member).await;
            return Err(error);
        }
        if !self.store.mark_pool_member_ready(&member.id).await? {
            // Forgotten meanwhile (a reconciler pass that took it for a leftover): it goes.
            self.remove_member_parts(&member).await;
            return Ok(());
        }
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.refill_seconds.observe(seconds);
        tracing::info!(cluster = %name, elapsed_ms = (seconds * 1000.0) as u64, "warm pool member ready");
        Ok(())
    }

    /// Forgets a member (so nobody can claim it any more), then removes its terminal, cluster and
    /// kubeconfig. A member claimed meanwhile is a session's now and is left alone.
    async fn discard(&self, member: &PoolMember) {
        match self.store.delete_pool_member(&member.id).await {
            Ok(true) => self.remove_member_parts(member).await,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(cluster = %member.cluster_name, %error, "cannot forget a warm pool member")
            }
        }
    }

    /// Removes what is left of a claimed member found dead (its terminal, cluster, kubeconfig and
    /// ports), so that the session can build its cluster cold under the same name.
    pub(super) async fn remove_dead_member(
        &self,
        session: &crate::domain::Session,
        name: &ClusterName,
    ) -> Result<(), super::SessionError> {
        self.terminals.remove(name).await?;
        self.clusters.delete(name).await?;
        match tokio::fs::remove_file(self.kubeconfig_file(&session.id)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
        self.store.release_ports(&session.id).await?;
        Ok(())
    }

    async fn remove_member_parts(&self, member: &PoolMember) {
        let Ok(name) = ClusterName::parse(&member.cluster_name) else {
            return;
        };
        if let Err(error) = self.terminals.remove(&name).await {
            tracing::warn!(cluster = %name, %error, "cannot remove a warm pool terminal");
        }
        if let Err(error) = self.clusters.delete(&name).await {
            tracing::warn!(cluster = %name, %error, "cannot remove a warm pool cluster");
        }
        let _ = tokio::fs::remove_file(self.kubeconfig_file(&member.id)).await;
    }
}
