//! Access passes: a pass type is what can be bought (a name, a price, a duration); a pass is one
//! a user holds, bought or granted, then activated (its clock starts then).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use app::api::{PassStatus, PassView, PlanView};

/// What can be bought, as stored; `duration_hours` 0 is the free trial (mock exams only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub struct PassType {
    pub id: String,
    pub name: String,
    #[sqlx(try_from = "i64")]
    pub price_cents: u32,
    pub currency: String,
    #[sqlx(try_from = "i64")]
    pub duration_hours: u32,
}

impl PassType {
    /// Whether it can be bought: it lasts some time and costs something.
    pub fn is_sold(&self) -> bool {
        self.duration_hours > 0 && self.price_cents > 0
    }
}

impl From<&PassType> for PlanView {
    fn from(t: &PassType) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            price_cents: t.price_cents,
            currency: t.currency.clone(),
            hours: t.duration_hours,
        }
    }
}

/// A pass as stored (`status` is `unused`, `active`, `expired` or `revoked`; an `active` one
/// whose end has passed is expired too).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pass {
    pub id: String,
    pub user_id: String,
    pub pass_type_id: String,
    pub name: String,
    #[sqlx(try_from = "i64")]
    pub duration_hours: u32,
    pub status: String,
    pub source: String,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Pass {
    /// Where the pass is at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> PassStatus {
        match (self.status.as_str(), self.expires_at) {
            ("active", Some(end)) if end > now => PassStatus::Active,
            ("active" | "expired", _) => PassStatus::Expired,
            ("unused", _) => PassStatus::Unused,
            _ => PassStatus::Revoked,
        }
    }

    pub fn view_at(&self, now: DateTime<Utc>) -> PassView {
        PassView {
            id: self.id.clone(),
            plan: self.pass_type_id.clone(),
            name: self.name.clone(),
            hours: self.duration_hours,
            status: self.status_at(now),
            created_at: self.created_at,
            activated_at: self.activated_at,
            expires_at: self.expires_at,
            checkout_session: self.checkout_session_id.clone(),
        }
    }
}

/// A pass about to be made: by a payment (with its Checkout Session and payment) or a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPass {
    pub user_id: String,
    pub pass_type: PassType,
    pub source: PassSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassSource {
    Stripe {
        checkout_session: String,
        payment_intent: Option<String>,
    },
    Admin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_active_until_it_expires() {
        let now = Utc::now();
        let mut pass = Pass {
            id: "p".into(),
            user_id: "u".into(),
            pass_type_id: "pass-38h".into(),
            name: "38 Hours Pass".into(),
            duration_hours: 38,
            status: "unused".into(),
            source: "stripe".into(),
            checkout_session_id: None,
            payment_intent_id: None,
            created_at: now,
            activated_at: None,
            expires_at: None,
        };
        assert_eq!(pass.status_at(now), PassStatus::Unused);
        pass.status = "active".into();
        pass.expires_at = Some(now + chrono::Duration::seconds(1));
        assert_eq!(pass.status_at(now), PassStatus::Active);
        assert_eq!(
            pass.status_at(now + chrono::Duration::seconds(1)),
            PassStatus::Expired
        );
        pass.status = "revoked".into();
        assert_eq!(pass.status_at(now), PassStatus::Revoked);
    }
}
