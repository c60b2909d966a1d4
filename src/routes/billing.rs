//! `/api/v1/access/*` (the learner's passes, activation; admins' grants and revocations) and
//! `/api/v1/billing/*` (plans, Stripe Checkout, Stripe's webhook). Thin adapters over
//! [`Billing`].

use app::{
    api::{
        AccessStatus, CheckoutBody, CheckoutStarted, ErrorBody, GrantBody, PassView, Plans, WebhookReceipt,
    },
    ports::{BillingPages, Refusal},
};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{AdminUser, CurrentUser},
    pages::Pages,
    ApiError, ApiJson,
};
use crate::{
    auth::Auth,
    billing::{Billing, BillingError},
    AppState,
};

pub fn access_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(passes))
        .routes(routes!(activate))
        .routes(routes!(grant))
        .routes(routes!(revoke))
}

pub fn billing_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plans))
        .routes(routes!(checkout))
        .routes(routes!(webhook))
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        let status = match &error {
            BillingError::Disabled => StatusCode::SERVICE_UNAVAILABLE,
            BillingError::UnknownPlan(_) | BillingError::NoSuchPass | BillingError::NoSuchUser => {
                StatusCode::NOT_FOUND
            }
            BillingError::NotForSale(_) | BillingError::Signature(_) | BillingError::NotAnEvent => {
                StatusCode::BAD_REQUEST
            }
            BillingError::OtherActive(_) => StatusCode::CONFLICT,
            BillingError::Stripe(_) => {
                let reference = crate::telemetry::reference();
                tracing::error!(%error, %reference, "checkout failed");
                return Self::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the payment could not be started; try again (reference {reference})"),
                );
            }
            BillingError::Store(store) => return Self::internal(store),
        };
        Self::new(status, error.to_string())
    }
}

/// Whether full exams are open to the learner now, by which pass, and the passes to activate.
#[utoipa::path(get, path = "/status", tag = "access", responses(
    (status = 200, body = AccessStatus), (status = 401, body = ErrorBody),
))]
async fn status(user: CurrentUser, State(billing): State<Billing>) -> Result<Json<AccessStatus>, ApiError> {
    Ok(Json(billing.status(&user.id).await?))
}

/// Every pass the learner holds or held, newest first.
#[utoipa::path(get, path = "/passes", tag = "access", responses(
    (status = 200, body = Vec<PassView>), (status = 401, body = ErrorBody),
))]
async fn passes(user: CurrentUser, State(billing): State<Billing>) -> Result<Json<Vec<PassView>>, ApiError> {
    Ok(Json(billing.passes(&user.id).await?))
}

/// Starts the clock of one of the learner's unused passes (one pass is active at a time).
#[utoipa::path(post, path = "/activate/{id}", tag = "access", params(("id" = String, Path)), responses(
    (status = 200, body = PassView), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "Another pass is active", body = ErrorBody),
))]
async fn activate(
    user: CurrentUser,
    Path(id): Path<String>,
    State(billing): State<Billing>,
) -> Result<Json<PassView>, ApiError> {
    Ok(Json(billing.activate(&user.id, &id).await?))
}

/// An unused pass of a plan for a user (admins).
#[utoipa::path(post, path = "/grant", tag = "access", request_body = GrantBody, responses(
    (status = 201, body = PassView), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn grant(
    _: AdminUser,
    State(billing): State<Billing>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<(StatusCode, Json<PassView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(billing.grant(&body.email, &body.plan).await?),
    ))
}

/// Takes a pass back, used or not (admins).
#[utoipa::path(post, path = "/revoke/{id}", tag = "access", params(("id" = String, Path)), responses(
    (status = 200, body = PassView), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn revoke(
    _: AdminUser,
    Path(id): Path<String>,
    State(billing): State<Billing>,
) -> Result<Json<PassView>, ApiError> {
    Ok(Json(billing.revoke(&id).await?))
}

/// The plans, and whether payments are on here.
#[utoipa::path(get, path = "/plans", tag = "billing", responses((status = 200, body = Plans)))]
async fn plans(State(billing): State<Billing>) -> Result<Json<Plans>, ApiError> {
    Ok(Json(billing.plans().await?))
}

/// A Stripe Checkout Session for a plan: send the browser to its `url`.
#[utoipa::path(post, path = "/checkout", tag = "billing", request_body = CheckoutBody, responses(
    (status = 200, body = CheckoutStarted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
    (status = 503, description = "Payments are not enabled", body = ErrorBody),
))]
async fn checkout(
    user: CurrentUser,
    State(auth): State<Auth>,
    State(billing): State<Billing>,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<Json<CheckoutStarted>, ApiError> {
    Ok(Json(checkout_for(&auth, &billing, &user, &body.plan).await?))
}

/// A checkout for the signed-in user (the JSON route and the pricing page's server function).
pub(crate) async fn checkout_for(
    auth: &Auth,
    billing: &Billing,
    user: &CurrentUser,
    plan: &str,
) -> Result<CheckoutStarted, ApiError> {
    let who = auth.user(&user.id).await?.ok_or_else(ApiError::sign_in_first)?;
    Ok(billing.checkout(&who.id, &who.email, plan).await?)
}

/// Stripe's events, signed (`Stripe-Signature`) over the raw body; each processed once.
#[utoipa::path(post, path = "/webhook", tag = "billing", request_body(content = String, content_type = "application/json", description = "A Stripe event, as Stripe sent it"),
    params(("Stripe-Signature" = String, Header)),
    responses(
        (status = 200, body = WebhookReceipt),
        (status = 400, description = "Bad signature, stale timestamp or not an event", body = ErrorBody),
        (status = 503, description = "Payments are not enabled", body = ErrorBody),
))]
async fn webhook(
    State(billing): State<Billing>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, ApiError> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let receipt = billing
        .webhook(signature, &body, chrono::Utc::now())
        .await
        .inspect_err(|error| tracing::warn!(%error, "webhook refused"))?;
    Ok(Json(receipt))
}

/// The pages' server functions: the same services, answers and refusals as the routes above.
#[async_trait::async_trait]
impl BillingPages for Pages {
    async fn plans(&self) -> Result<Plans, Refusal> {
        Ok(self.0.billing.plans().await.map_err(ApiError::from)?)
    }

    async fn access_status(&self, headers: &HeaderMap) -> Result<AccessStatus, Refusal> {
        let user = CurrentUser::from_headers(&self.0.auth, headers)?;
        Ok(self.0.billing.status(&user.id).await.map_err(ApiError::from)?)
    }

    async fn activate_pass(&self, headers: &HeaderMap, pass_id: &str) -> Result<PassView, Refusal> {
        let user = CurrentUser::from_headers(&self.0.auth, headers)?;
        Ok(self
            .0
            .billing
            .activate(&user.id, pass_id)
            .await
            .map_err(ApiError::from)?)
    }

    async fn start_checkout(&self, headers: &HeaderMap, plan: &str) -> Result<CheckoutStarted, Refusal> {
        let user = CurrentUser::from_headers(&self.0.auth, headers)?;
        Ok(checkout_for(&self.0.auth, &self.0.billing, &user, plan).await?)
    }

    async fn checkout_pass(
        &self,
        headers: &HeaderMap,
        checkout_session: &str,
    ) -> Result<Option<PassView>, Refusal> {
        let user = CurrentUser::from_headers(&self.0.auth, headers)?;
        let passes = self.0.billing.passes(&user.id).await.map_err(ApiError::from)?;
        Ok(passes
            .into_iter()
            .find(|p| p.checkout_session.as_deref() == Some(checkout_session)))
    }
}
