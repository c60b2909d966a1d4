//! What happens to a user's session, pushed to their open pages (`GET /api/session/events`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use app::api::SessionEvent;
use tokio::sync::broadcast;

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
    use app::api::{Step, StepState};

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
