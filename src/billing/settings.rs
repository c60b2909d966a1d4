//! Billing's settings: Stripe's keys (payments are on only with both, well formed) and the pass
//! types an operator may set instead of the seeded ones.

use std::path::Path;

use secrecy::{ExposeSecret as _, SecretString};

use crate::domain::PassType;

#[derive(Debug, Clone, Default)]
pub struct BillingSettings {
    /// `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` both set: payments on.
    pub stripe: Option<StripeSettings>,
    /// `PASS_TYPES_FILE`: the plans to offer, replacing the seeded ones at start-up.
    pub pass_types: Option<Vec<PassType>>,
}

#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub secret_key: SecretString,
    pub webhook_secret: SecretString,
    /// `STRIPE_API_BASE` (default `https://api.stripe.com`).
    pub api_base: String,
}

/// A setting that is not valid: the variable's name and why.
pub type Invalid = (&'static str, String);

impl StripeSettings {
    /// Payments are on with both secrets, off with neither; one alone, or one not shaped like
    /// Stripe's, is an error at start-up (a typo must not silently turn payments off).
    pub fn from_values(
        secret_key: Option<SecretString>,
        webhook_secret: Option<SecretString>,
        api_base: String,
    ) -> Result<Option<Self>, Invalid> {
        let (secret_key, webhook_secret) = match (secret_key, webhook_secret) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err((
                    "STRIPE_WEBHOOK_SECRET",
                    "required with STRIPE_SECRET_KEY (the endpoint's signing secret, whsec_…)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err((
                    "STRIPE_SECRET_KEY",
                    "required with STRIPE_WEBHOOK_SECRET (a secret or restricted key, sk_… or rk_…)".into(),
                ))
            }
            (Some(k), Some(w)) => (k, w),
        };
        let key = secret_key.expose_secret();
        let key_ok = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
            .iter()
            .any(|p| key.strip_prefix(p).is_some_and(well_formed_rest));
        if !key_ok {
            return Err((
                "STRIPE_SECRET_KEY",
                "expected a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_…); a publishable key (pk_…) cannot create payments".into(),
            ));
        }
        if !webhook_secret
            .expose_secret()
            .strip_prefix("whsec_")
            .is_some_and(well_formed_rest)
        {
            return Err((
                "STRIPE_WEBHOOK_SECRET",
                "expected the webhook endpoint's signing secret (whsec_…)".into(),
            ));
        }
        let base_ok = (api_base.starts_with("https://") || api_base.starts_with("http://"))
            && api_base.parse::<axum::http::Uri>().is_ok();
        if !base_ok {
            return Err(("STRIPE_API_BASE", "expected an http:// or https:// URL".into()));
        }
        Ok(Some(Self {
            secret_key,
            webhook_secret,
            api_base,
        }))
    }
}

fn well_formed_rest(rest: &str) -> bool {
    rest.len() >= 8 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads and checks a pass types file (YAML: a list of `id`, `name`, `price_cents`,
/// `currency`, `duration_hours`).
pub fn load_pass_types(path: &Path) -> Result<Vec<PassType>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let types: Vec<PassType> = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    if types.is_empty() {
        return Err("it names no pass type".into());
    }
    for (i, t) in types.iter().enumerate() {
        let id_ok = !t.id.is_empty()
            && t.id.len() <= 40
            && t.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(format!(
                "pass type id {:?}: use lowercase letters, digits and dashes",
                t.id
            ));
        }
        if types[..i].iter().any(|o| o.id == t.id) {
            return Err(format!("pass type {} is defined twice", t.id));
        }
        if t.currency.len() != 3 || !t.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!(
                "pass type {}: currency is a lowercase ISO code such as usd",
                t.id
            ));
        }
        if t.duration_hours > 0 && t.price_cents == 0 {
            return Err(format!("pass type {}: a pass that lasts needs a price", t.id));
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripe(key: Option<&str>, hook: Option<&str>) -> Result<Option<StripeSettings>, Invalid> {
        StripeSettings::from_values(
            key.map(SecretString::from),
            hook.map(SecretString::from),
            "https://api.stripe.com".into(),
        )
    }

    #[test]
    fn payments_are_on_with_both_well_formed_secrets_only() {
        assert!(stripe(None, None).unwrap().is_none());
        assert!(stripe(Some("sk_test_51Habcdefgh"), Some("whsec_abcdefgh12"))
            .unwrap()
            .is_some());
        assert!(stripe(Some("rk_live_51Habcdefgh"), Some("whsec_abcdefgh12"))
            .unwrap()
            .is_some());
        let refused = [
            (Some("sk_test_51Habcdefgh"), None, "STRIPE_WEBHOOK_SECRET"),
            (None, Some("whsec_abcdefgh12"), "STRIPE_SECRET_KEY"),
            (
                Some("pk_test_51Habcdefgh"),
                Some("whsec_abcdefgh12"),
                "STRIPE_SECRET_KEY",
            ),
            (Some("sk_test_"), Some("whsec_abcdefgh12"), "STRIPE_SECRET_KEY"),
            (
                Some("sk_test_51Habcdefgh"),
                Some("sk_test_51Habcdefgh"),
                "STRIPE_WEBHOOK_SECRET",
            ),
            (
                Some("sk_test_51Habc defgh"),
                Some("whsec_abcdefgh12"),
                "STRIPE_SECRET_KEY",
            ),
        ];
        for (key, hook, name) in refused {
            assert_eq!(stripe(key, hook).unwrap_err().0, name, "{key:?} {hook:?}");
        }
        let bad_base = StripeSettings::from_values(
            Some(SecretString::from("sk_test_51Habcdefgh")),
            Some(SecretString::from("whsec_abcdefgh12")),
            "api.stripe.com".into(),
        );
        assert_eq!(bad_base.unwrap_err().0, "STRIPE_API_BASE");
    }

    #[test]
    fn a_pass_types_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plans.yaml");
        std::fs::write(
            &file,
            "- {id: free-trial, name: Free Trial, price_cents: 0, currency: usd, duration_hours: 0}\n\
             - {id: day, name: Day Pass, price_cents: 299, currency: eur, duration_hours: 24}\n",
        )
        .unwrap();
        let types = load_pass_types(&file).unwrap();
        assert_eq!((types[1].id.as_str(), types[1].price_cents), ("day", 299));
        for (text, reason) in [
            (
                "- {id: Day, name: D, price_cents: 1, currency: usd, duration_hours: 1}",
                "lowercase",
            ),
            (
                "- {id: d, name: D, price_cents: 0, currency: usd, duration_hours: 1}",
                "needs a price",
            ),
            (
                "- {id: d, name: D, price_cents: 1, currency: dollars, duration_hours: 1}",
                "currency",
            ),
            (
                "- {id: d, name: D, price_cents: 1, currency: usd, hours: 1}",
                "unknown field",
            ),
            ("[]", "no pass type"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = load_pass_types(&file).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
