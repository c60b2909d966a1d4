//! What happens to sessions, told to every replica: events pushed to the users' open pages
//! (`GET /api/session/events`), terminal sockets to close with a reason, starts to stop.
//!
//! On PostgreSQL a notice goes out through the database (`NOTIFY`, see [`crate::store::Notices`])
//! and each replica, the sender included, hands what it hears to its own pages, sockets and
//! starts: a page on one replica sees a start made on another, and a replica hears itself, so
//! every notice is handled once, through the listener. On SQLite the platform is one process and
//! a notice is handled where it is made.
//!
//! While a replica's listener has lost its connection (it connects again at once, and then every
//! second until it can), the notices sent meanwhile are not heard there: its pages miss those
//! events (what a page reads of the session on its next load is right), a socket left open to
//! an ended session ends when its terminal is removed (without the reason frame), and a start
//! whose stop went unheard finds the session ended when it records itself started, and rolls
//! back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use app::api::SessionEvent;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{
    store::{Notices, Store, StoreError},
    terminals::{CloseReason, TerminalSockets},
};

/// What one replica tells all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
enum Notice {
    /// For the user's open pages.
    Event { user_id: String, event: SessionEvent },
    /// The session ended: its sockets close.
    SessionEnded { session_id: String, reason: CloseReason },
    /// The user signed out: their sockets close.
    SignedOut { user_id: String, reason: CloseReason },
    /// The session was stopped while it was being made: its start stops.
    StopStart { session_id: String },
}

#[derive(Clone)]
pub struct SessionEvents {
    here: Arc<Here>,
    /// The shared database, on PostgreSQL; `None` on SQLite.
    shared: Option<Store>,
}

/// What this replica holds: whom it hands a notice to.
struct Here {
    /// One channel per user with a page open here; events for users with none are dropped.
    pages: Mutex<HashMap<String, broadcast::Sender<SessionEvent>>>,
    sockets: TerminalSockets,
    /// The starts under way here, by session.
    starting: Mutex<HashMap<String, CancellationToken>>,
}

/// A start under way, known by its session until dropped; `stop` is cancelled when the session
/// is stopped, on any replica.
pub struct Starting {
    pub stop: CancellationToken,
    session_id: String,
    here: Arc<Here>,
}

impl Drop for Starting {
    fn drop(&mut self) {
        lock(&self.here.starting).remove(&self.session_id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionEvents {
    /// On PostgreSQL, listens from now on (so nothing sent after this returns is missed here)
    /// until `stopping`; on SQLite, hands notices over in this process.
    pub async fn connect(
        store: &Store,
        sockets: TerminalSockets,
        stopping: CancellationToken,
    ) -> Result<Self, StoreError> {
        let here = Arc::new(Here {
            pages: Mutex::default(),
            sockets,
            starting: Mutex::default(),
        });
        let shared = match store.listen().await? {
            Some(notices) => {
                tokio::spawn(listen(notices, here.clone(), stopping));
                Some(store.clone())
            }
            None => None,
        };
        Ok(Self { here, shared })
    }

    pub fn subscribe(&self, user_id: &str) -> broadcast::Receiver<SessionEvent> {
        lock(&self.here.pages)
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(32).0)
            .subscribe()
    }

    /// Pushes `event` to the user's pages, on every replica.
    pub async fn publish(&self, user_id: &str, event: SessionEvent) {
        self.tell(Notice::Event {
            user_id: user_id.to_owned(),
            event,
        })
        .await
    }

    /// Closes the session's terminal sockets with `reason`, on every replica.
    pub async fn close_session_sockets(&self, session_id: &str, reason: CloseReason) {
        self.tell(Notice::SessionEnded {
            session_id: session_id.to_owned(),
            reason,
        })
        .await
    }

    /// Closes the user's terminal sockets with `reason`, on every replica.
    pub async fn close_user_sockets(&self, user_id: &str, reason: CloseReason) {
        self.tell(Notice::SignedOut {
            user_id: user_id.to_owned(),
            reason,
        })
        .await
    }

    /// Stops the session's start, on whichever replica is making it.
    pub async fn stop_start(&self, session_id: &str) {
        self.tell(Notice::StopStart {
            session_id: session_id.to_owned(),
        })
        .await
    }

    /// Records a start of the session under way here, until the returned guard is dropped.
    pub fn starting(&self, session_id: &str) -> Starting {
        let stop = CancellationToken::new();
        lock(&self.here.starting).insert(session_id.to_owned(), stop.clone());
        Starting {
            stop,
            session_id: session_id.to_owned(),
            here: self.here.clone(),
        }
    }

    async fn tell(&self, notice: Notice) {
        let Some(store) = &self.shared else {
            return self.here.hand_over(notice);
        };
        let payload = serde_json::to_string(&notice).expect("a notice serializes");
        if let Err(error) = store.notify(&payload).await {
            // This replica's own pages and sockets at least hear it.
            tracing::warn!(%error, "cannot tell the other replicas; telling this one only");
            self.here.hand_over(notice);
        }
    }
}

impl Here {
    fn hand_over(&self, notice: Notice) {
        match notice {
            Notice::Event { user_id, event } => {
                let mut pages = lock(&self.pages);
                if let Some(sender) = pages.get(&user_id) {
                    if sender.send(event).is_err() {
                        pages.remove(&user_id);
                    }
                }
            }
            Notice::SessionEnded { session_id, reason } => {
                self.sockets.close_session(&session_id, reason);
            }
            Notice::SignedOut { user_id, reason } => {
                self.sockets.close_user(&user_id, reason);
            }
            Notice::StopStart { session_id } => {
                if let Some(stop) = lock(&self.starting).get(&session_id) {
                    stop.cancel();
                }
            }
        }
    }
}

/// Hands what the replicas say to this one's pages, sockets and starts, until `stopping`.
async fn listen(mut notices: Notices, here: Arc<Here>, stopping: CancellationToken) {
    loop {
        let heard = tokio::select! {
            _ = stopping.cancelled() => return,
            heard = notices.next() => heard,
        };
        match heard {
            Ok(Some(payload)) => match serde_json::from_str(&payload) {
                Ok(notice) => here.hand_over(notice),
                // Sent by a replica of another version, perhaps: not for this one.
                Err(error) => tracing::warn!(%error, payload, "a notice this replica cannot read"),
            },
            Ok(None) => {
                tracing::warn!(
                    "the notices' connection was lost; what is sent until it is back is missed here"
                )
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for notices; trying again in a second");
                tokio::select! {
                    _ = stopping.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::{Step, StepState};

    async fn on_sqlite(dir: &tempfile::TempDir) -> SessionEvents {
        let store = Store::open(&format!("sqlite://{}/ckad.db", dir.path().display()))
            .await
            .unwrap();
        SessionEvents::connect(&store, TerminalSockets::default(), CancellationToken::new())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn events_reach_the_users_pages_only_and_serialize_with_their_type() {
        let dir = tempfile::tempdir().unwrap();
        let events = on_sqlite(&dir).await;
        let mut ada = events.subscribe("ada");
        events
            .publish("bob", SessionEvent::Warning { minutes_left: 5 })
            .await;
        events
            .publish("ada", SessionEvent::Warning { minutes_left: 10 })
            .await;
        let event = ada.try_recv().unwrap();
        assert_eq!(event.name(), "warning");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({ "type": "warning", "minutes_left": 10 })
        );
        assert!(ada.try_recv().is_err());
        let progress = SessionEvent::Progress {
            step: Step::Cluster,
            state: StepState::Done,
        };
        assert_eq!(
            serde_json::to_value(&progress).unwrap(),
            serde_json::json!({ "type": "progress", "step": "cluster", "state": "done" })
        );
    }

    #[tokio::test]
    async fn a_stop_reaches_the_start_under_way_until_it_is_done_and_sockets_close_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let events = on_sqlite(&dir).await;
        let (first, other) = (events.starting("s1"), events.starting("s2"));
        events.stop_start("s1").await;
        assert!(first.stop.is_cancelled() && !other.stop.is_cancelled());
        drop(other);
        events.stop_start("s2").await;
        assert!(
            lock(&events.here.starting).get("s2").is_none(),
            "a finished start is forgotten"
        );

        let socket = events.here.sockets.register("ada", "s1", 3).unwrap();
        events
            .close_session_sockets("s1", CloseReason::SessionEnded)
            .await;
        assert_eq!(*socket.closed.borrow(), Some(CloseReason::SessionEnded));
    }

    #[test]
    fn a_notice_crosses_as_json_with_the_close_reasons_kind() {
        let notice = Notice::SignedOut {
            user_id: "ada".into(),
            reason: CloseReason::SignedOut,
        };
        let json = serde_json::to_value(&notice).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "notice": "signed_out", "user_id": "ada", "reason": CloseReason::SignedOut.kind() })
        );
        assert_eq!(serde_json::from_value::<Notice>(json).unwrap(), notice);
    }
}
