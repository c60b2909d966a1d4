//! The one call this platform makes to Stripe: a Checkout Session in payment mode.

use std::time::Duration;

use app::api::CheckoutStarted;
use secrecy::{ExposeSecret as _, SecretString};

use crate::domain::PassType;

/// Stripe's API at `base` (`STRIPE_API_BASE`; tests point it at stripe-mock).
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: SecretString,
}

/// What a Checkout Session is made for.
pub struct CheckoutRequest<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub plan: &'a PassType,
    pub success_url: String,
    pub cancel_url: String,
}

impl StripeClient {
    pub fn new(base: &str, key: SecretString) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// A hosted Checkout Session for one pass, with the user and plan in its metadata (the
    /// webhook reads them back) and the user as its client reference.
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<CheckoutStarted, String> {
        let plan = request.plan;
        let form = [
            ("mode", "payment".to_owned()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("line_items[0][price_data][currency]", plan.currency.clone()),
            (
                "line_items[0][price_data][unit_amount]",
                plan.price_cents.to_string(),
            ),
            ("line_items[0][price_data][product_data][name]", plan.name.clone()),
            ("success_url", request.success_url.clone()),
            ("cancel_url", request.cancel_url.clone()),
            ("client_reference_id", request.user_id.to_owned()),
            ("customer_email", request.email.to_owned()),
            ("metadata[user_id]", request.user_id.to_owned()),
            ("metadata[pass_type]", plan.id.clone()),
        ];
        let response = self
            .http
            .post(format!("{}/v1/checkout/sessions", self.base))
            .bearer_auth(self.key.expose_secret())
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("Stripe did not answer: {e}"))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("Stripe answered {status} without JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!("Stripe answered {status}: {}", body["error"]["message"]));
        }
        match (body["id"].as_str(), body["url"].as_str()) {
            (Some(id), Some(url)) => Ok(CheckoutStarted {
                id: id.to_owned(),
                url: url.to_owned(),
            }),
            _ => Err("Stripe's Checkout Session has no id or url".into()),
        }
    }
}
