//! The administrators' page: the host's live sessions, how many seats are taken, the warm pool,
//! and terminate.

use leptos::{prelude::*, task::spawn_local};

use crate::{
    account::error_text,
    api::{AdminOverview, AdminSession, PoolView},
    modal::Modal,
    session::{list_live_sessions, terminate_session},
    toast::use_toasts,
};

#[component]
pub fn AdminPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| list_live_sessions());
    view! {
        <section class="admin">
            <h1>"Sessions on this host"</h1>
            <Transition fallback=|| view! { <p class="hint">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(shown) => view! { <Overview shown reload=move || overview.refetch()/> }.into_any(),
                        Err(error) => view! {
                            <div class="card refused">
                                <p class="form-error" role="alert">{error_text(&error)}</p>
                                <p><a href="/">"Back to the start page"</a></p>
                            </div>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Overview(shown: AdminOverview, reload: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let toasts = use_toasts();
    // The session whose termination awaits confirmation.
    let confirming = RwSignal::new(None::<AdminSession>);
    let busy = RwSignal::new(false);
    let terminate = move |id: String| {
        busy.set(true);
        spawn_local(async move {
            match terminate_session(id).await {
                Ok(()) => toasts.info("The session was terminated."),
                Err(error) => toasts.error(error_text(&error)),
            }
            busy.try_set(false);
            confirming.try_set(None);
            reload();
        });
    };
    let AdminOverview { live, capacity, pool } = shown;
    let used = live.len();
    view! {
        <div class="card capacity">
            <p class="capacity-figure">
                <strong>{used}</strong> " of " <strong>{capacity}</strong> " seats in use"
            </p>
            <meter min="0" max=capacity value=used high=capacity.saturating_sub(1) aria-label="Seats in use"></meter>
            <button class="button" on:click=move |_| reload()>"Refresh"</button>
        </div>
        <Pool pool/>
        {if live.is_empty() {
            view! { <p class="hint">"No session is running."</p> }.into_any()
        } else {
            view! {
                <table class="sessions-table live-sessions">
                    <thead>
                        <tr>
                            <th>"User"</th><th>"Status"</th><th>"Started"</th><th>"Time left"</th><th>"Extended"</th><th></th>
                        </tr>
                    </thead>
                    <tbody>
                        {live
                            .into_iter()
                            .map(|session| {
                                let asked = session.clone();
                                view! {
                                    <tr data-session=session.session.id.clone()>
                                        <td>{session.who().to_owned()}</td>
                                        <td>{session.session.status.as_str()}</td>
                                        <td>{session.session.started_time()}</td>
                                        <td>{format!("{} min", session.minutes_left())}</td>
                                        <td>{if session.session.extended { "yes" } else { "no" }}</td>
                                        <td>
                                            <button
                                                class="button danger small"
                                                on:click=move |_| confirming.set(Some(asked.clone()))
                                            >
                                                "Terminate"
                                            </button>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
            .into_any()
        }}
        {move || confirming.get().map(|session| {
            let id = session.session.id.clone();
            view! {
                <Modal title="Terminate this session?" on_close=move || confirming.set(None)>
                    <p>
                        "The session of " <strong>{session.who().to_owned()}</strong>
                        " ends now: its terminal closes and its cluster is deleted."
                    </p>
                    <div class="modal-actions">
                        <button class="button" on:click=move |_| confirming.set(None)>"Cancel"</button>
                        <button
                            class="button danger"
                            data-primary
                            disabled=move || busy.get()
                            on:click=move |_| terminate(id.clone())
                        >
                            "Terminate"
                        </button>
                    </div>
                </Modal>
            }
        })}
    }
}

/// The clusters made ahead so that a start claims one instead of building it.
#[component]
fn Pool(pool: PoolView) -> impl IntoView {
    let PoolView {
        size,
        ready,
        filling,
        failure,
    } = pool;
    view! {
        <div class="card capacity warm-pool">
            <p class="pool-figure">
                "Warm pool: " <strong>{ready}</strong> " of " <strong>{size}</strong> " ready"
                {(filling > 0).then(|| format!(", {filling} being made"))}
            </p>
            {failure.map(|reason| view! { <p class="form-error" role="alert">"Cannot refill: " {reason}</p> })}
        </div>
    }
}
