//! Stripe's webhook: the `Stripe-Signature` header checked against the raw body, and the events
//! that change passes read from it.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`; each `v1` is HMAC-SHA256 over
//! `<t>.<raw body>` keyed with the endpoint's secret (several while a secret is being rolled).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far the signed time may be from ours (Stripe's libraries use the same default).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signed timestamp is more than 5 minutes from now")]
    Stale,
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks `header` against `payload` (the raw body, byte for byte) at `now`.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v1)) => candidates.push(v1),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::encode(sign(secret, timestamp, payload));
    // Every v1 is compared, in constant time, whether or not an earlier one matched.
    let matched = candidates.iter().fold(subtle::Choice::from(0), |any, c| {
        any | expected.as_bytes().ct_eq(c.as_bytes())
    });
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    if (now.timestamp() - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// HMAC-SHA256 of `<timestamp>.<payload>`: what Stripe sends as `v1` (tests sign with it too).
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// An event, as much of it as the passes need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub effect: Effect,
}

/// What an event asks of the passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A paid Checkout Session: the pass it bought.
    Paid {
        checkout_session: String,
        payment_intent: Option<String>,
        user_id: Option<String>,
        plan: Option<String>,
    },
    /// A refund or a dispute of a payment: its unused pass goes.
    Reversed { payment_intent: String },
    /// Anything else (an unpaid session, an event we do not use): acknowledged.
    None,
}

/// Reads an event from the verified body; `None` if it is not a Stripe event.
pub fn parse(payload: &[u8]) -> Option<Event> {
    let event: Value = serde_json::from_slice(payload).ok()?;
    let id = event["id"].as_str()?.to_owned();
    let kind = event["type"].as_str()?.to_owned();
    let object = &event["data"]["object"];
    // An expandable field is an id or the object itself.
    let id_of = |field: &Value| field.as_str().or_else(|| field["id"].as_str()).map(str::to_owned);
    let effect = match kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
            if object["payment_status"] == "paid" =>
        {
            Effect::Paid {
                checkout_session: object["id"].as_str()?.to_owned(),
                payment_intent: id_of(&object["payment_intent"]),
                user_id: object["metadata"]["user_id"]
                    .as_str()
                    .or_else(|| object["client_reference_id"].as_str())
                    .map(str::to_owned),
                plan: object["metadata"]["pass_type"].as_str().map(str::to_owned),
            }
        }
        "charge.refunded" | "charge.dispute.created" => match id_of(&object["payment_intent"]) {
            Some(payment_intent) => Effect::Reversed { payment_intent },
            None => Effect::None,
        },
        _ => Effect::None,
    };
    Some(Event { id, kind, effect })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret_for_unit_tests";

    fn header(t: i64, payload: &[u8]) -> String {
        format!("t={t},v1={}", hex::encode(sign(SECRET, t, payload)))
    }

    #[test]
    fn a_signed_payload_passes_and_anything_else_is_refused_with_its_reason() {
        let now = Utc::now();
        let t = now.timestamp();
        let body = br#"{"id":"evt_1","type":"x","data":{"object":{}}}"#;
        assert_eq!(verify(SECRET, Some(&header(t, body)), body, now), Ok(()));
        // Another secret's v1 beside ours (a secret being rolled): ours still counts.
        let two = format!(
            "t={t},v1={},v1={}",
            "ab".repeat(32),
            hex::encode(sign(SECRET, t, body))
        );
        assert_eq!(verify(SECRET, Some(&two), body, now), Ok(()));
        let tampered = br#"{"id":"evt_1","type":"y","data":{"object":{}}}"#;
        assert_eq!(
            verify(SECRET, Some(&header(t, body)), tampered, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_other", Some(&header(t, body)), body, now),
            Err(SignatureError::Mismatch)
        );
        let old = t - TOLERANCE_SECS - 1;
        assert_eq!(
            verify(SECRET, Some(&header(old, body)), body, now),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify(SECRET, Some(&header(t - 299, body)), body, now), Ok(()));
        assert_eq!(verify(SECRET, None, body, now), Err(SignatureError::Missing));
        assert_eq!(
            verify(SECRET, Some("v1=abc"), body, now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, Some(&format!("t={t}")), body, now),
            Err(SignatureError::Malformed)
        );
        // A v0 (Stripe's test scheme) is never accepted.
        let v0 = format!("t={t},v0={}", hex::encode(sign(SECRET, t, body)));
        assert_eq!(
            verify(SECRET, Some(&v0), body, now),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn events_are_read_for_what_they_do_to_passes() {
        let paid = br#"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{
            "id":"cs_1","payment_status":"paid","payment_intent":"pi_1","client_reference_id":"u1",
            "metadata":{"user_id":"u1","pass_type":"pass-1w"}}}}"#;
        assert_eq!(
            parse(paid).unwrap().effect,
            Effect::Paid {
                checkout_session: "cs_1".into(),
                payment_intent: Some("pi_1".into()),
                user_id: Some("u1".into()),
                plan: Some("pass-1w".into()),
            }
        );
        let unpaid = br#"{"id":"evt_2","type":"checkout.session.completed","data":{"object":{"id":"cs_1","payment_status":"unpaid"}}}"#;
        assert_eq!(parse(unpaid).unwrap().effect, Effect::None);
        let refund = br#"{"id":"evt_3","type":"charge.refunded","data":{"object":{"id":"ch_1","payment_intent":{"id":"pi_1"}}}}"#;
        assert_eq!(
            parse(refund).unwrap().effect,
            Effect::Reversed {
                payment_intent: "pi_1".into()
            }
        );
        let other = br#"{"id":"evt_4","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
        assert_eq!(parse(other).unwrap().effect, Effect::None);
        assert_eq!(parse(b"not json"), None);
    }
}
