//! Single-use tickets for `/ws/terminal`: a browser cannot set headers on a WebSocket, and a
//! long-lived token in a URL ends up in logs. A ticket is minted by an authenticated request for
//! the user's own started session, opens one socket, and dies after 30 seconds either way. Tickets
//! live in the database (only their hashes), so any replica redeems what another minted.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::Utc;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::store::{Store, StoreError, TicketGrant};

pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Tickets {
    store: Store,
}

impl Tickets {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A new ticket for `grant`: 256 random bits, URL-safe.
    pub async fn mint(&self, grant: &TicketGrant) -> Result<String, StoreError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = URL_SAFE_NO_PAD.encode(bytes);
        let now = Utc::now();
        let lifetime = chrono::Duration::from_std(TICKET_LIFETIME).expect("30 seconds");
        self.store
            .insert_terminal_ticket(&hash(&ticket), grant, now + lifetime, now)
            .await?;
        Ok(ticket)
    }

    /// The grant of a live ticket, which is used up; `None` for an unknown, used or expired one.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<TicketGrant>, StoreError> {
        self.store.redeem_terminal_ticket(&hash(ticket), Utc::now()).await
    }
}

/// How a ticket is stored. A fast hash is enough: the ticket has 256 bits of entropy.
fn hash(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_is_256_random_bits_that_open_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/ckad.db", dir.path().display()))
            .await
            .unwrap();
        let user = store.insert_user("ada@example.com", "Ada").await.unwrap();
        let now = Utc::now();
        let new = crate::store::NewSession {
            user_id: &user.id,
            cluster_name: "ckad-a1b2c3",
            start_time: now,
            expires_at: now + chrono::Duration::hours(1),
            exam_id: None,
        };
        let session = store.insert_session(new, 1).await.unwrap().unwrap();
        let grant = TicketGrant {
            user_id: user.id,
            session_id: session.id,
        };
        let tickets = Tickets::new(store);
        let (first, second) = (
            tickets.mint(&grant).await.unwrap(),
            tickets.mint(&grant).await.unwrap(),
        );
        assert_eq!(
            (first.len(), URL_SAFE_NO_PAD.decode(&first).unwrap().len()),
            (43, 32)
        );
        assert_ne!(first, second);
        assert_eq!(tickets.redeem(&first).await.unwrap(), Some(grant.clone()));
        assert_eq!(tickets.redeem(&first).await.unwrap(), None);
        // What is stored is no ticket: its hash opens nothing.
        assert_eq!(tickets.redeem(&hash(&second)).await.unwrap(), None);
        assert_eq!(tickets.redeem(&second).await.unwrap(), Some(grant));
    }
}
