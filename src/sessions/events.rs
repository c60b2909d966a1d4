//! What happens to a user's session, pushed to their open pages (`GET /api/session/events`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::store::Session;

/// A session as its learner sees it. `server_time` lets a page count down from the server's
/// clock, whatever the browser's says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub id: String,
    pub status: &'static str,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub extended: bool,
    /// The mock exam this session is; `None` for practice.
    pub exam: Option<String>,
    pub server_time: DateTime<Utc>,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id.clone(),
            status: session.status.as_str(),
            started_at: session.start_time,
            expires_at: session.expires_at,
            ended_at: session.end_time,
            extended: session.extended,
            exam: session.exam_id.clone(),
            server_time: Utc::now(),
        }
    }
}

/// The steps of a start, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Cluster,
    Tasks,
    Terminal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Running,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionEvent {
    Progress { step: Step, state: StepState },
    Started { session: SessionView },
    Failed { message: String },
    Warning { minutes_left: u32 },
    Extended { session: SessionView },
    Ended { status: &'static str, message: String },
}

impl SessionEvent {
    /// The SSE event name: the same as the JSON's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Progress { .. } => "progress",
            Self::Started { .. } => "started",
            Self::Failed { .. } => "failed",
            Self::Warning { .. } => "warning",
            Self::Extended { .. } => "extended",
            Self::Ended { .. } => "ended",
        }
    }
}

/// One channel per user with a page open; events for users with none are dropped.
#[derive(Clone, Default)]
pub struct SessionEvents {
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<SessionEvent>>>>,
}

impl SessionEvents {
    pub fn subscribe(&self, user_id: &str) -> broadcast::Receiver<SessionEvent> {
        let mut channels = self.channels.lock().expect("events lock");
        channels
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(32).0)
            .subscribe()
    }

    pub fn publish(&self, user_id: &str, event: SessionEvent) {
        let mut channels = self.channels.lock().expect("events lock");
        if let Some(sender) = channels.get(user_id) {
            if sender.send(event).is_err() {
                channels.remove(user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_the_users_pages_only_and_serialize_with_their_type() {
        let events = SessionEvents::default();
        let mut ada = events.subscribe("ada");
        events.publish("bob", SessionEvent::Warning { minutes_left: 5 });
        events.publish("ada", SessionEvent::Warning { minutes_left: 10 });
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
}
