//! `pass_types`, `access_passes` and `stripe_events`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Lock, Store, StoreError, Tx};
use crate::domain::{NewPass, Pass, PassSource, PassType};

const PASS_COLUMNS: &str = "p.id, p.user_id, p.pass_type_id, t.name, p.duration_hours, p.status, p.source, \
     p.checkout_session_id, p.payment_intent_id, p.created_at, p.activated_at, p.expires_at";

/// What processing a Stripe event does to the passes, recorded in the transaction that records
/// the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassChange {
    Nothing,
    Create(NewPass),
    /// Revokes the unused passes the payment bought.
    RevokeUnused {
        payment_intent: String,
        reason: String,
    },
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Recorded before: nothing done again.
    Duplicate,
    /// Recorded now; this many passes were made or revoked.
    Applied(u64),
}

/// Why an activation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationRefused {
    /// No unused pass of the user's with that id.
    NotFound,
    /// Another pass is active until then.
    OtherActive(DateTime<Utc>),
}

impl Store {
    /// Every pass type, in the pricing page's order; `offered` only, unless `all`.
    pub async fn pass_types(&self) -> Result<Vec<PassType>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "SELECT id, name, price_cents, currency, duration_hours FROM pass_types
             WHERE offered ORDER BY position, price_cents",
        )
        .fetch_all(c)
        .await)?)
    }

    pub async fn pass_type(&self, id: &str) -> Result<Option<PassType>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "SELECT id, name, price_cents, currency, duration_hours FROM pass_types WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Makes `types` the offered ones, in this order; the others stay for the passes that name
    /// them but are no longer offered.
    pub async fn replace_pass_types(&self, types: &[PassType]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on!(tx, |c| sqlx::query("UPDATE pass_types SET offered = FALSE")
            .execute(c)
            .await
            .map(|_| ()))?;
        for (position, t) in types.iter().enumerate() {
            on!(tx, |c| sqlx::query(
                "INSERT INTO pass_types (id, name, price_cents, currency, duration_hours, offered, position)
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
                     currency = excluded.currency, duration_hours = excluded.duration_hours,
                     offered = TRUE, position = excluded.position",
            )
            .bind(&t.id)
            .bind(&t.name)
            .bind(i64::from(t.price_cents))
            .bind(&t.currency)
            .bind(i64::from(t.duration_hours))
            .bind(position as i64)
            .execute(c)
            .await
            .map(|_| ()))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The user's passes, newest first.
    pub async fn passes_of(&self, user_id: &str) -> Result<Vec<Pass>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {PASS_COLUMNS} FROM access_passes p JOIN pass_types t ON t.id = p.pass_type_id
             WHERE p.user_id = $1 ORDER BY p.created_at DESC"
        ))
        .bind(user_id)
        .fetch_all(c)
        .await)?)
    }

    pub async fn pass_by_id(&self, id: &str) -> Result<Option<Pass>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {PASS_COLUMNS} FROM access_passes p JOIN pass_types t ON t.id = p.pass_type_id
             WHERE p.id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Makes a pass (an admin's grant).
    pub async fn insert_pass(&self, new: &NewPass) -> Result<Pass, StoreError> {
        let mut tx = self.begin().await?;
        let id = insert_pass(&mut tx, new).await?;
        tx.commit().await?;
        self.pass_by_id(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a pass just made is missing".into()))
    }

    /// Starts the clock of the user's unused pass `id` at `now`, unless another pass is active
    /// (one that has expired is marked so first, in the same transaction).
    pub async fn activate_pass(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Pass, ActivationRefused>, StoreError> {
        // Two activations at once are taken one after the other, so the second finds the first
        // active and is refused (not a unique-index error).
        let mut tx = self.begin_write().await?;
        tx.lock(Lock::User(user_id)).await?;
        let active: Option<(String, DateTime<Utc>)> = on!(tx, |c| sqlx::query_as(
            "SELECT id, expires_at FROM access_passes WHERE user_id = $1 AND status = 'active'",
        )
        .bind(user_id)
        .fetch_optional(c)
        .await)?;
        match active {
            Some((_, end)) if end > now => return Ok(Err(ActivationRefused::OtherActive(end))),
            // Expired: the unique index allows one `active` row, so it is marked `expired`.
            Some((old, _)) => {
                on!(tx, |c| sqlx::query(
                    "UPDATE access_passes SET status = 'expired' WHERE id = $1"
                )
                .bind(&old)
                .execute(c)
                .await
                .map(|_| ()))?;
            }
            None => {}
        }
        let hours: Option<i64> = on!(tx, |c| sqlx::query_scalar(
            "SELECT duration_hours FROM access_passes
             WHERE id = $1 AND user_id = $2 AND status = 'unused'",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(c)
        .await)?;
        let Some(hours) = hours else {
            return Ok(Err(ActivationRefused::NotFound));
        };
        on!(tx, |c| sqlx::query(
            "UPDATE access_passes SET status = 'active', activated_at = $1, expires_at = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(now + chrono::Duration::hours(hours))
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))?;
        tx.commit().await?;
        Ok(self.pass_by_id(id).await?.ok_or(ActivationRefused::NotFound))
    }

    /// The user's pass that is active at `now`.
    pub async fn active_pass(&self, user_id: &str, now: DateTime<Utc>) -> Result<Option<Pass>, StoreError> {
        let active: Option<Pass> = on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {PASS_COLUMNS} FROM access_passes p JOIN pass_types t ON t.id = p.pass_type_id
             WHERE p.user_id = $1 AND p.status = 'active'"
        ))
        .bind(user_id)
        .fetch_optional(c)
        .await)?;
        Ok(active.filter(|p| p.expires_at.is_some_and(|end| end > now)))
    }

    /// Takes a pass back (an admin); false if it was revoked already or there is none.
    pub async fn revoke_pass(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = on!(self.db, |c| sqlx::query(
            "UPDATE access_passes SET status = 'revoked', revoked_at = $1, revoked_reason = $2
             WHERE id = $3 AND status != 'revoked'",
        )
        .bind(Utc::now())
        .bind(reason)
        .bind(id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records the Stripe event `id` and makes its change in the same transaction; an event
    /// recorded before changes nothing.
    pub async fn record_stripe_event(
        &self,
        id: &str,
        kind: &str,
        change: &PassChange,
    ) -> Result<EventOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let recorded = on!(tx, |c| sqlx::query(
            "INSERT INTO stripe_events (id, type, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(Utc::now())
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        if recorded == 0 {
            return Ok(EventOutcome::Duplicate);
        }
        let changed = match change {
            PassChange::Nothing => 0,
            PassChange::Create(new) => {
                insert_pass(&mut tx, new).await?;
                1
            }
            PassChange::RevokeUnused {
                payment_intent,
                reason,
            } => on!(tx, |c| sqlx::query(
                "UPDATE access_passes SET status = 'revoked', revoked_at = $1, revoked_reason = $2
                 WHERE payment_intent_id = $3 AND status = 'unused'",
            )
            .bind(Utc::now())
            .bind(reason)
            .bind(payment_intent)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?,
        };
        tx.commit().await?;
        Ok(EventOutcome::Applied(changed))
    }
}

async fn insert_pass(tx: &mut Tx, new: &NewPass) -> Result<String, StoreError> {
    let id = Uuid::new_v4().to_string();
    let (source, checkout, payment) = match &new.source {
        PassSource::Stripe {
            checkout_session,
            payment_intent,
        } => ("stripe", Some(checkout_session), payment_intent.as_ref()),
        PassSource::Admin => ("admin", None, None),
    };
    on!(tx, |c| sqlx::query(
        "INSERT INTO access_passes (id, user_id, pass_type_id, duration_hours, status, source,
             checkout_session_id, payment_intent_id, created_at)
         VALUES ($1, $2, $3, $4, 'unused', $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&new.user_id)
    .bind(&new.pass_type.id)
    .bind(i64::from(new.pass_type.duration_hours))
    .bind(source)
    .bind(checkout)
    .bind(payment)
    .bind(Utc::now())
    .execute(c)
    .await
    .map(|_| ()))
    .map_err(super::conflict("a pass for this checkout"))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{NewPass, PassSource},
        store::testing::both_databases,
    };

    both_databases! {
        /// Activations at once (two tabs, a double click): one pass becomes active, the rest are
        /// refused as "another pass is active", never a database error.
        async fn parallel_activations_leave_one_pass_active_and_refuse_the_others(store: Store) {
            let user_id = store.insert_user("ada@example.com", "Ada").await.unwrap().id;
            let week = store
                .pass_types()
                .await
                .unwrap()
                .into_iter()
                .find(PassType::is_sold)
                .unwrap();
            let mut passes = Vec::new();
            for _ in 0..6 {
                let new = NewPass {
                    user_id: user_id.clone(),
                    pass_type: week.clone(),
                    source: PassSource::Admin,
                };
                passes.push(store.insert_pass(&new).await.unwrap().id);
            }
            let now = Utc::now();
            let activations = passes.iter().map(|id| {
                let (store, user_id) = (store.clone(), user_id.clone());
                async move { store.activate_pass(&user_id, id, now).await.unwrap() }
            });
            let answers = futures_util::future::join_all(activations).await;
            assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{answers:?}");
            assert!(answers
                .iter()
                .filter_map(|a| a.as_ref().err())
                .all(|refused| matches!(refused, ActivationRefused::OtherActive(_))));
        }
    }
}
