//! Time: each started session is watched until it ends: warnings as its end nears, and the end
//! itself (`timeout`) when it comes. A sweeper every `sweep_every` ends whatever a watch missed
//! (a watch lost to a restart is taken up again at start-up; the sessions of a replica that died
//! are ended by the sweeper of any other). Every replica sweeps: each expired session is claimed
//! in the database by one of them.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{time_left, SessionEvent, Sessions};
use crate::domain::{Session, SessionStatus};

/// A watch looks at the database at least this often, so that it sees an extension.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Watches `session` in the background until it is no longer started.
pub fn watch(sessions: Sessions, session: Session) {
    sessions.work.clone().spawn(async move {
        let stopping = sessions.stopping.clone();
        tokio::select! {
            () = stopping.cancelled() => {}
            () = watch_until_end(sessions, session) => {}
        }
    });
}

async fn watch_until_end(sessions: Sessions, session: Session) {
    let thresholds = sessions.settings.warnings.clone();
    let mut expiry = session.expires_at;
    let mut warned: Vec<Duration> = Vec::new();
    loop {
        let current = match sessions.store.session_by_id(&session.id).await {
            Ok(Some(current)) if current.status == SessionStatus::Started => current,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(session = %session.id, %error, "cannot read the session's clock");
                tokio::time::sleep(LOOK_EVERY).await;
                continue;
            }
        };
        if current.expires_at != expiry {
            // Extended: the warnings count again from the new end.
            expiry = current.expires_at;
            warned.clear();
        }
        let left = time_left(&current, Utc::now());
        if left.is_zero() {
            sessions.end(&current, SessionStatus::Timeout, "time is up").await;
            return;
        }
        // One warning for the closest threshold passed (a late look never fires two at once).
        let passed: Vec<Duration> = thresholds
            .iter()
            .copied()
            .filter(|t| left <= *t && !warned.contains(t))
            .collect();
        if let Some(closest) = passed.iter().min() {
            let minutes_left = closest.as_secs().div_ceil(60) as u32;
            // Every replica watches every started session: the warning is given by one.
            match sessions.store.claim_warning(&current.id, *closest).await {
                Ok(true) => {
                    sessions
                        .events
                        .publish(&current.user_id, SessionEvent::Warning { minutes_left })
                        .await
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(session = %current.id, %error, "cannot claim a warning"),
            }
            warned.extend(passed);
        }
        let until_next = thresholds.iter().filter(|t| left > **t).map(|t| left - *t).min();
        tokio::time::sleep(until_next.unwrap_or(left).min(left).min(LOOK_EVERY)).await;
    }
}

/// Takes up the watch of every started session, then sweeps until `stopping`.
pub async fn run(sessions: Sessions, stopping: CancellationToken) {
    match sessions.store.live_sessions().await {
        Ok(live) => live
            .into_iter()
            .filter(|s| s.status == SessionStatus::Started)
            .for_each(|s| watch(sessions.clone(), s)),
        Err(error) => tracing::error!(%error, "cannot take up the sessions' clocks"),
    }
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(sessions.settings.sweep_every) => {}
        }
        // One session claimed at a time, so that the sweepers of other replicas take the rest
        // meanwhile, and a replica that dies leaves at most one half-removed (the reconciler's).
        while !stopping.is_cancelled() {
            match sessions.store.claim_expired_session(Utc::now()).await {
                Ok(Some(session)) => {
                    sessions
                        .destroy(&session, SessionStatus::Timeout, "time is up (sweeper)")
                        .await
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "the sweeper cannot claim the expired sessions");
                    break;
                }
            }
        }
    }
}
