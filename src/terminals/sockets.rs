//! The open terminal sockets, so that they can be closed with a reason when their session ends
//! or their user signs out (server shutdown is `AppState::stopping`).

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use tokio::sync::watch;

/// Sent between replicas by its [`CloseReason::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    SessionEnded,
    SignedOut,
    ServerShutdown,
}

impl CloseReason {
    /// The `type` of the JSON frame sent before the close.
    pub fn kind(self) -> &'static str {
        match self {
            Self::SessionEnded => "session_ended",
            Self::SignedOut => "signed_out",
            Self::ServerShutdown => "server_shutdown",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::SessionEnded => "The session has ended.",
            Self::SignedOut => "You signed out.",
            Self::ServerShutdown => "The server is restarting; reconnecting shortly.",
        }
    }

    /// The WebSocket close code: 1001 (going away) for a restart the client should ride out,
    /// private codes for ends it should not reconnect after.
    pub fn code(self) -> u16 {
        match self {
            Self::SessionEnded => 4000,
            Self::SignedOut => 4001,
            Self::ServerShutdown => 1001,
        }
    }
}

struct Entry {
    id: u64,
    user_id: String,
    session_id: String,
    close: watch::Sender<Option<CloseReason>>,
}

#[derive(Clone, Default)]
pub struct TerminalSockets {
    open: Arc<Mutex<Vec<Entry>>>,
    next_id: Arc<AtomicU64>,
}

/// Held by a socket while it is open; it learns here why it must close.
pub struct SocketGuard {
    id: u64,
    sockets: TerminalSockets,
    pub closed: watch::Receiver<Option<CloseReason>>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.sockets.lock().retain(|e| e.id != self.id);
    }
}

impl TerminalSockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.open.lock().expect("sockets lock")
    }

    /// Registers a socket of the session, unless it has `limit` open already (checked and
    /// counted at once, so parallel opens cannot pass it together).
    pub fn register(&self, user_id: &str, session_id: &str, limit: usize) -> Option<SocketGuard> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = watch::channel(None);
        let mut open = self.lock();
        if open.iter().filter(|e| e.session_id == session_id).count() >= limit {
            return None;
        }
        open.push(Entry {
            id,
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
            close,
        });
        Some(SocketGuard {
            id,
            sockets: self.clone(),
            closed,
        })
    }

    fn close_where(&self, reason: CloseReason, matches: impl Fn(&Entry) -> bool) -> usize {
        let open = self.lock();
        let chosen: Vec<_> = open.iter().filter(|e| matches(e)).collect();
        for entry in &chosen {
            entry.close.send_replace(Some(reason));
        }
        chosen.len()
    }

    /// Closes the user's sockets; how many there were.
    pub fn close_user(&self, user_id: &str, reason: CloseReason) -> usize {
        self.close_where(reason, |e| e.user_id == user_id)
    }

    /// Closes the session's sockets; how many there were.
    pub fn close_session(&self, session_id: &str, reason: CloseReason) -> usize {
        self.close_where(reason, |e| e.session_id == session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_reaches_only_the_chosen_sockets_and_a_dropped_socket_leaves() {
        let sockets = TerminalSockets::default();
        let ada = sockets.register("ada", "s1", 3).unwrap();
        let bob = sockets.register("bob", "s2", 3).unwrap();
        assert_eq!(sockets.close_user("ada", CloseReason::SignedOut), 1);
        assert_eq!(*ada.closed.borrow(), Some(CloseReason::SignedOut));
        assert_eq!(*bob.closed.borrow(), None);
        assert_eq!(sockets.close_session("s2", CloseReason::SessionEnded), 1);
        assert_eq!(*bob.closed.borrow(), Some(CloseReason::SessionEnded));
        drop(ada);
        assert_eq!(
            sockets.close_user("ada", CloseReason::SignedOut),
            0,
            "a dropped socket has left"
        );
        assert_eq!(sockets.close_user("bob", CloseReason::SignedOut), 1);
    }

    #[test]
    fn a_session_holds_at_most_its_limit_and_a_closed_socket_frees_a_place() {
        let sockets = TerminalSockets::default();
        let first = sockets.register("ada", "s1", 2).unwrap();
        let _second = sockets.register("ada", "s1", 2).unwrap();
        assert!(sockets.register("ada", "s1", 2).is_none());
        assert!(
            sockets.register("bob", "s2", 2).is_some(),
            "other sessions are apart"
        );
        drop(first);
        assert!(sockets.register("ada", "s1", 2).is_some());
    }
}
