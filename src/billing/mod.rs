//! Access passes and payments (the second seed's phases 4 and 5): the plans, passes bought
//! through Stripe's hosted Checkout and activated by their holder (one at a time; the clock starts
//! at activation), the webhook that turns paid sessions into passes and refunds or disputes into
//! revoked ones, admins' grants, and the rule that a full exam needs an active pass. Free of HTTP
//! and Leptos: the routes and pages call [`Billing`].

pub mod settings;
pub mod stripe;
pub mod webhook;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use app::api::{Access, AccessStatus, CheckoutStarted, PassView, PlanView, Plans, WebhookReceipt};
pub use settings::{BillingSettings, StripeSettings};

use crate::{
    domain::{NewPass, PassSource, PassType},
    exams::{Exam, ExamAccess},
    store::{ActivationRefused, EventOutcome, PassChange, Store, StoreError},
};
use stripe::{CheckoutRequest, StripeClient};
use webhook::{Effect, SignatureError};

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("payments are not enabled on this site")]
    Disabled,
    #[error("there is no plan {0}")]
    UnknownPlan(String),
    #[error("the {0} cannot be bought")]
    NotForSale(String),
    #[error("you have no unused pass with that id")]
    NoSuchPass,
    #[error("another pass is active until {}", .0.format("%-d %b %Y, %H:%M UTC"))]
    OtherActive(DateTime<Utc>),
    #[error("there is no user with that email")]
    NoSuchUser,
    #[error("the webhook's signature is not valid: {0}")]
    Signature(#[from] SignatureError),
    #[error("the webhook's body is not a Stripe event")]
    NotAnEvent,
    #[error("the payment provider: {0}")]
    Stripe(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Payments on when Stripe is configured; passes, access and grants always.
#[derive(Clone)]
pub struct Billing {
    store: Store,
    stripe: Option<(StripeClient, SecretString)>,
    /// Where Checkout sends the browser back (`PUBLIC_URL`).
    public_origin: String,
}

impl Billing {
    pub fn new(
        store: Store,
        settings: &BillingSettings,
        public_origin: &str,
    ) -> Result<Self, reqwest::Error> {
        let stripe = match &settings.stripe {
            Some(s) => Some((
                StripeClient::new(&s.api_base, s.secret_key.clone())?,
                s.webhook_secret.clone(),
            )),
            None => None,
        };
        Ok(Self {
            store,
            stripe,
            public_origin: public_origin.to_owned(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.stripe.is_some()
    }

    pub async fn plans(&self) -> Result<Plans, BillingError> {
        let types = self.store.pass_types().await?;
        Ok(Plans {
            billing_enabled: self.enabled(),
            plans: types.iter().map(PlanView::from).collect(),
        })
    }

    /// A Stripe Checkout Session for `plan`, paid by the user (`email` prefills the form).
    pub async fn checkout(
        &self,
        user_id: &str,
        email: &str,
        plan: &str,
    ) -> Result<CheckoutStarted, BillingError> {
        let (client, _) = self.stripe.as_ref().ok_or(BillingError::Disabled)?;
        let plan = self.sold_plan(plan).await?;
        let request = CheckoutRequest {
            user_id,
            email,
            plan: &plan,
            success_url: format!(
                "{}/payment/success?session_id={{CHECKOUT_SESSION_ID}}",
                self.public_origin
            ),
            cancel_url: format!("{}/pricing", self.public_origin),
        };
        let started = client
            .create_checkout_session(&request)
            .await
            .map_err(BillingError::Stripe)?;
        tracing::info!(user = user_id, plan = %plan.id, checkout = %started.id, "checkout started");
        Ok(started)
    }

    async fn sold_plan(&self, id: &str) -> Result<PassType, BillingError> {
        let plan = self
            .store
            .pass_type(id)
            .await?
            .ok_or_else(|| BillingError::UnknownPlan(id.to_owned()))?;
        if !plan.is_sold() {
            return Err(BillingError::NotForSale(plan.name));
        }
        Ok(plan)
    }

    /// A webhook delivery: `payload` is the raw body, exactly as signed. Each event is processed
    /// once; a paid session's pass is made in the transaction that records the event.
    pub async fn webhook(
        &self,
        signature: Option<&str>,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<WebhookReceipt, BillingError> {
        let (_, secret) = self.stripe.as_ref().ok_or(BillingError::Disabled)?;
        webhook::verify(secret.expose_secret(), signature, payload, now)?;
        let event = webhook::parse(payload).ok_or(BillingError::NotAnEvent)?;
        let change = self.change_for(&event).await?;
        let outcome = self
            .store
            .record_stripe_event(&event.id, &event.kind, &change)
            .await?;
        match outcome {
            EventOutcome::Duplicate => {
                tracing::info!(event = %event.id, kind = %event.kind, "webhook event seen before")
            }
            EventOutcome::Applied(changed) => {
                tracing::info!(event = %event.id, kind = %event.kind, passes = changed, "webhook event processed")
            }
        }
        Ok(WebhookReceipt {
            received: true,
            duplicate: outcome == EventOutcome::Duplicate,
        })
    }

    /// What an event does to the passes. A paid session naming no user or plan we know is
    /// acknowledged (a retry would not fix it) and logged for the operator.
    async fn change_for(&self, event: &webhook::Event) -> Result<PassChange, BillingError> {
        Ok(match &event.effect {
            Effect::Paid {
                checkout_session,
                payment_intent,
                user_id,
                plan,
            } => {
                let user = match user_id {
                    Some(id) => self.store.user_by_id(id).await?,
                    None => None,
                };
                let plan = match plan {
                    Some(id) => self.store.pass_type(id).await?,
                    None => None,
                };
                match (user, plan) {
                    (Some(user), Some(plan)) => PassChange::Create(NewPass {
                        user_id: user.id,
                        pass_type: plan,
                        source: PassSource::Stripe {
                            checkout_session: checkout_session.clone(),
                            payment_intent: payment_intent.clone(),
                        },
                    }),
                    _ => {
                        tracing::error!(event = %event.id, checkout = %checkout_session, "a paid checkout names no known user or plan: no pass made");
                        PassChange::Nothing
                    }
                }
            }
            Effect::Reversed { payment_intent } => PassChange::RevokeUnused {
                payment_intent: payment_intent.clone(),
                reason: event.kind.clone(),
            },
            Effect::None => PassChange::Nothing,
        })
    }

    /// Whether full exams are open to the user now, and the passes they can activate.
    pub async fn status(&self, user_id: &str) -> Result<AccessStatus, BillingError> {
        let now = Utc::now();
        let passes = self.store.passes_of(user_id).await?;
        let views: Vec<PassView> = passes.iter().map(|p| p.view_at(now)).collect();
        let active = views
            .iter()
            .find(|p| p.status == app::api::PassStatus::Active)
            .cloned();
        Ok(AccessStatus {
            full_access: active.is_some(),
            active,
            unused: views
                .into_iter()
                .filter(|p| p.status == app::api::PassStatus::Unused)
                .collect(),
            server_time: now,
        })
    }

    /// Every pass the user holds or held, newest first.
    pub async fn passes(&self, user_id: &str) -> Result<Vec<PassView>, BillingError> {
        let now = Utc::now();
        Ok(self
            .store
            .passes_of(user_id)
            .await?
            .iter()
            .map(|p| p.view_at(now))
            .collect())
    }

    /// Starts the clock of the user's unused pass.
    pub async fn activate(&self, user_id: &str, pass_id: &str) -> Result<PassView, BillingError> {
        let now = Utc::now();
        match self.store.activate_pass(user_id, pass_id, now).await? {
            Ok(pass) => {
                tracing::info!(user = user_id, pass = pass_id, "pass activated");
                Ok(pass.view_at(now))
            }
            Err(ActivationRefused::NotFound) => Err(BillingError::NoSuchPass),
            Err(ActivationRefused::OtherActive(until)) => Err(BillingError::OtherActive(until)),
        }
    }

    /// An admin's grant: an unused pass of `plan` for the user with `email`.
    pub async fn grant(&self, email: &str, plan: &str) -> Result<PassView, BillingError> {
        let user = self
            .store
            .user_by_email(&email.trim().to_lowercase())
            .await?
            .ok_or(BillingError::NoSuchUser)?;
        let plan = self
            .store
            .pass_type(plan)
            .await?
            .ok_or_else(|| BillingError::UnknownPlan(plan.to_owned()))?;
        if plan.duration_hours == 0 {
            return Err(BillingError::NotForSale(plan.name));
        }
        let pass = self
            .store
            .insert_pass(&NewPass {
                user_id: user.id,
                pass_type: plan,
                source: PassSource::Admin,
            })
            .await?;
        tracing::info!(user = %pass.user_id, pass = %pass.id, "pass granted by an admin");
        Ok(pass.view_at(Utc::now()))
    }

    /// An admin takes a pass back, used or not.
    pub async fn revoke(&self, pass_id: &str) -> Result<PassView, BillingError> {
        if !self.store.revoke_pass(pass_id, "revoked by an admin").await? {
            return Err(BillingError::NoSuchPass);
        }
        let pass = self
            .store
            .pass_by_id(pass_id)
            .await?
            .ok_or(BillingError::NoSuchPass)?;
        tracing::info!(pass = pass_id, "pass revoked by an admin");
        Ok(pass.view_at(Utc::now()))
    }
}

/// Free exams for all; the others for a user whose pass is active now. A started exam is not
/// asked again: one whose pass expires meanwhile runs to its own end.
#[async_trait::async_trait]
impl ExamAccess for Billing {
    async fn may_take(&self, user_id: &str, exam: &Exam) -> Result<bool, StoreError> {
        match exam.access {
            Access::Free => Ok(true),
            Access::Pass => Ok(self.store.active_pass(user_id, Utc::now()).await?.is_some()),
        }
    }
}
