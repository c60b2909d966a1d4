//! Access passes on the pages: the pricing page (`/pricing`) with a checkout button per plan, the
//! payment success page (`/payment/success`, which waits for Stripe's webhook and then shows the
//! pass), and the dashboard's access card (the active pass with its time left, the unused ones
//! with Activate). The server checks access on every exam start; the countdown here is cosmetic.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};

use crate::{
    account::error_text,
    api::{AccessStatus, CheckoutStarted, PassView, Plans},
};

#[cfg(feature = "ssr")]
fn pages() -> Result<std::sync::Arc<dyn crate::ports::BillingPages>, ServerFnError> {
    use_context::<std::sync::Arc<dyn crate::ports::BillingPages>>()
        .ok_or_else(|| ServerFnError::new("billing is not available"))
}

#[server(prefix = "/api/pages")]
pub async fn list_plans() -> Result<Plans, ServerFnError> {
    pages()?.plans().await.map_err(crate::account::server::refuse)
}

#[server(prefix = "/api/pages")]
pub async fn read_access_status() -> Result<AccessStatus, ServerFnError> {
    pages()?
        .access_status(&crate::account::server::headers())
        .await
        .map_err(crate::account::server::refuse)
}

#[server(prefix = "/api/pages")]
pub async fn activate_pass(pass_id: String) -> Result<PassView, ServerFnError> {
    pages()?
        .activate_pass(&crate::account::server::headers(), &pass_id)
        .await
        .map_err(crate::account::server::refuse)
}

#[server(prefix = "/api/pages")]
pub async fn start_checkout(plan: String) -> Result<CheckoutStarted, ServerFnError> {
    pages()?
        .start_checkout(&crate::account::server::headers(), &plan)
        .await
        .map_err(crate::account::server::refuse)
}

#[server(prefix = "/api/pages")]
pub async fn checkout_pass(checkout_session: String) -> Result<Option<PassView>, ServerFnError> {
    pages()?
        .checkout_pass(&crate::account::server::headers(), &checkout_session)
        .await
        .map_err(crate::account::server::refuse)
}

#[component]
pub fn PricingPage() -> impl IntoView {
    let plans = Resource::new(|| (), |_| list_plans());
    let checkout = ServerAction::<StartCheckout>::new();
    // Off to Stripe's hosted page once the session is made.
    Effect::new(move |_| {
        if let Some(Ok(started)) = checkout.value().get() {
            let _ = window().location().set_href(&started.url);
        }
    });
    view! {
        <section class="pricing">
            <h1>"Pricing"</h1>
            <p class="lede">
                "Practice sessions and the free mock exam cost nothing. A pass opens the full mock "
                "exams for its time, counted from when you activate it; buy once, no subscription."
            </p>
            {move || checkout.value().get().and_then(Result::err).map(|e| view! {
                <p class="form-error" role="alert">{error_text(&e)}</p>
            })}
            <Suspense fallback=|| view! { <p>"Loading the plans…"</p> }>
                {move || plans.get().map(|answer| match answer {
                    Err(e) => view! { <p class="form-error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(answer) => {
                        let enabled = answer.billing_enabled;
                        view! {
                            {(!enabled).then(|| view! {
                                <p class="notice" role="status">
                                    "Payments are not enabled on this site: passes cannot be bought here."
                                </p>
                            })}
                            <ul class="plan-list">
                                {answer.plans.into_iter().map(|plan| {
                                    let id = plan.id.clone();
                                    let buy = (enabled && !plan.is_free()).then(|| view! {
                                        <button class="button primary" disabled=move || checkout.pending().get()
                                            on:click=move |_| { checkout.dispatch(StartCheckout { plan: id.clone() }); }>
                                            {format!("Buy the {}", plan.name)}
                                        </button>
                                    });
                                    view! {
                                        <li class="plan-card" data-plan=plan.id.clone()>
                                            <h2>{plan.name.clone()}</h2>
                                            <p class="price">{plan.price_text()}</p>
                                            <p>{plan.duration_text()}</p>
                                            {buy}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

/// How long the success page waits for the webhook, in seconds (one look a second).
const WAIT_FOR_WEBHOOK: u32 = 120;

/// Where Stripe sends the browser after paying: waits (looking once a second) for the webhook to
/// have made the pass, then shows it and the way to the dashboard, where it is activated.
#[component]
pub fn PaymentSuccessPage() -> impl IntoView {
    let query = use_query_map();
    let checkout = move || query.read().get("session_id").unwrap_or_default();
    let tick = RwSignal::new(0u32);
    let pass = Resource::new(move || (checkout(), tick.get()), |(id, _)| checkout_pass(id));
    Effect::new(move |_| {
        if let Some(Ok(None)) = pass.get() {
            if tick.get_untracked() < WAIT_FOR_WEBHOOK {
                set_timeout(move || tick.update(|t| *t += 1), Duration::from_secs(1));
            }
        }
    });
    view! {
        <section class="payment-success">
            <h1>"Thank you"</h1>
            <Transition fallback=|| view! { <p>"Checking your payment…"</p> }>
                {move || pass.get().map(|found| match found {
                    Err(e) => view! { <p class="form-error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(None) if tick.get_untracked() >= WAIT_FOR_WEBHOOK => view! {
                        <p class="hint" role="status">
                            "The payment is not confirmed yet. Your pass will be on your "
                            <A href="/dashboard">"dashboard"</A>" as soon as it is."
                        </p>
                    }.into_any(),
                    Ok(None) => view! {
                        <p class="hint" role="status">"Waiting for the payment to be confirmed…"</p>
                    }.into_any(),
                    Ok(Some(pass)) => view! {
                        <div class="card" data-pass=pass.id.clone()>
                            <p class="pass-ready">{format!("Your {} is ready.", pass.name)}</p>
                            <p class="hint">"Its time starts when you activate it, on your dashboard."</p>
                            <A href="/dashboard" attr:class="button primary">"Go to the dashboard"</A>
                        </div>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// The dashboard's access card: the active pass and its time left, the passes to activate.
#[component]
pub fn AccessCard() -> impl IntoView {
    let status = Resource::new(|| (), |_| read_access_status());
    let activate = ServerAction::<ActivatePass>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = activate.value().get() {
            status.refetch();
        }
    });
    view! {
        <div class="card access-card">
            <h2>"Access"</h2>
            {move || activate.value().get().and_then(Result::err).map(|e| view! {
                <p class="form-error" role="alert">{error_text(&e)}</p>
            })}
            <Transition fallback=|| view! { <p class="hint">"Loading…"</p> }>
                {move || status.get().map(|answer| match answer {
                    // Signed out: the session card above says so.
                    Err(_) => ().into_any(),
                    Ok(status) => view! {
                        <ActivePass status=status.clone()/>
                        <ul class="unused-passes">
                            {status.unused.into_iter().map(|pass| {
                                let id = pass.id.clone();
                                view! {
                                    <li data-pass=pass.id.clone()>
                                        {format!("{} ({} hours), not yet activated ", pass.name, pass.hours)}
                                        <button class="button" disabled=move || activate.pending().get()
                                            on:click=move |_| { activate.dispatch(ActivatePass { pass_id: id.clone() }); }>
                                            "Activate"
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                        <p><A href="/pricing">"Passes and prices"</A></p>
                    }.into_any(),
                })}
            </Transition>
        </div>
    }
}

#[component]
fn ActivePass(status: AccessStatus) -> impl IntoView {
    let Some((active, left)) = status.active.clone().zip(status.millis_left()) else {
        return view! {
            <p class="access-state" data-access="none">"Free trial: the free mock exam and practice sessions."</p>
        }
        .into_any();
    };
    // Counted down on the browser's clock from the server's answer (cosmetic).
    let end = RwSignal::new(None::<f64>);
    let now = RwSignal::new(0.0);
    Effect::new(move |_| {
        let started = js_sys::Date::now();
        end.set(Some(started + left as f64));
        now.set(started);
        if let Ok(ticker) =
            set_interval_with_handle(move || now.set(js_sys::Date::now()), Duration::from_secs(1))
        {
            on_cleanup(move || ticker.clear());
        }
    });
    let text = move || {
        let ms = end.get().map_or(left, |end| (end - now.get()).max(0.0) as i64);
        time_text(ms)
    };
    view! {
        <p class="access-state" data-access="active">
            {format!("{} active: full exams open. ", active.name)}
            <span class="pass-left">{text}</span>
        </p>
    }
    .into_any()
}

/// "37 h 59 min left", "4 min left".
fn time_text(millis: i64) -> String {
    let minutes = millis / 60_000;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min left"),
        (h, m) => format!("{h} h {m} min left"),
    }
}
