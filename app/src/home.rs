//! The start page: what the platform is, and the CKAD curriculum it trains for.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::account::current_user;

/// One domain of the CKAD v1.35 curriculum and its share of the exam.
struct Domain {
    name: &'static str,
    weight: u8,
    covers: &'static str,
}

const CURRICULUM: [Domain; 5] = [
    Domain {
        name: "Application Design and Build",
        weight: 20,
        covers: "Images, Jobs and CronJobs, multi-container and init containers, volumes.",
    },
    Domain {
        name: "Application Deployment",
        weight: 20,
        covers: "Deployments, rolling updates and rollbacks, canary releases, Helm.",
    },
    Domain {
        name: "Application Observability and Maintenance",
        weight: 15,
        covers: "Probes, logs, events, debugging, API deprecations.",
    },
    Domain {
        name: "Application Environment, Configuration and Security",
        weight: 25,
        covers: "ConfigMaps, Secrets, ServiceAccounts, securityContext, resources, quotas, RBAC.",
    },
    Domain {
        name: "Services and Networking",
        weight: 20,
        covers: "Service types, NetworkPolicy, Ingress.",
    },
];

#[component]
pub fn HomePage() -> impl IntoView {
    // Which domain's details are open; only the hydrated page can change it.
    let open = RwSignal::new(None::<usize>);
    // Set once the wasm bundle has taken over the server-rendered page.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let user = Resource::new(|| (), |_| current_user());

    view! {
        <section class="hero">
            <h1>"Practise for the CKAD on a real cluster"</h1>
            <p class="lede">
                "Press Start and get your own Kubernetes cluster with a terminal beside a panel of "
                "exam-style tasks, a countdown, and a Check button that tells you what is right "
                "and what is not. When the time is up, everything is gone."
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(_)) => view! { <A href="/dashboard" attr:class="button primary">"Go to your dashboard"</A> },
                        _ => view! { <A href="/signin" attr:class="button primary">"Sign in to start"</A> },
                    }
                })}
            </Suspense>
        </section>
        <section class="curriculum" data-hydrated=move || hydrated.get().to_string()>
            <h2>"What the exam covers"</h2>
            <ul class="domains">
                {CURRICULUM
                    .iter()
                    .enumerate()
                    .map(|(index, domain)| {
                        let is_open = move || open.get() == Some(index);
                        view! {
                            <li class="domain" class:open=is_open>
                                <button
                                    class="domain-toggle"
                                    aria-expanded=move || is_open().to_string()
                                    on:click=move |_| {
                                        open.update(|o| *o = if *o == Some(index) { None } else { Some(index) })
                                    }
                                >
                                    <span class="domain-name">{domain.name}</span>
                                    <span class="domain-weight">{format!("{}%", domain.weight)}</span>
                                </button>
                                <Show when=is_open>
                                    <p class="domain-covers">{domain.covers}</p>
                                </Show>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}
