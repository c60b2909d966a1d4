//! Single-use tickets for `/ws/terminal`: a browser cannot set headers on a WebSocket, and a
//! long-lived token in a URL ends up in logs. A ticket is minted by an authenticated request for
//! the user's own started session, opens one socket, and dies after 30 seconds either way.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore as _;

pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// Whose terminal a ticket opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user_id: String,
    pub session_id: String,
}

#[derive(Clone, Default)]
pub struct Tickets {
    issued: Arc<Mutex<HashMap<String, (Grant, Instant)>>>,
}

impl Tickets {
    /// A new ticket for `grant`: 256 random bits, URL-safe.
    pub fn mint(&self, grant: Grant) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut issued = self.issued.lock().expect("tickets lock");
        issued.retain(|_, (_, expires)| *expires > now);
        issued.insert(ticket.clone(), (grant, now + TICKET_LIFETIME));
        ticket
    }

    /// The grant of a live ticket, which is used up; `None` for an unknown, used or expired one.
    pub fn redeem(&self, ticket: &str) -> Option<Grant> {
        let (grant, expires) = self.issued.lock().expect("tickets lock").remove(ticket)?;
        (expires > Instant::now()).then_some(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            user_id: "u".into(),
            session_id: "s".into(),
        }
    }

    #[test]
    fn a_ticket_opens_once() {
        let tickets = Tickets::default();
        let ticket = tickets.mint(grant());
        assert_eq!(ticket.len(), 43);
        assert_eq!(tickets.redeem(&ticket), Some(grant()));
        assert_eq!(tickets.redeem(&ticket), None);
        assert_eq!(tickets.redeem("made-up"), None);
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let tickets = Tickets::default();
        let ticket = tickets.mint(grant());
        tickets.issued.lock().unwrap().get_mut(&ticket).unwrap().1 = Instant::now();
        assert_eq!(tickets.redeem(&ticket), None);
    }
}
