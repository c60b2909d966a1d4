//! The dashboard: the learner's current session (or a Start button that shows the start as it
//! happens), and the sessions they had before.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_navigate, NavigateOptions};
use send_wrapper::SendWrapper;

use crate::{
    account::{error_text, EndEverySignIn},
    api::{SessionEvent, SessionStatus, SessionView, Step, StepState},
    live::{clock_text, time_left, SessionEvents},
    session::{current_session, past_sessions, start_session},
    toast::use_toasts,
};

/// The steps of a start, in order, as the learner reads them.
const STEPS: [(Step, &str); 3] = [
    (Step::Cluster, "Creating your Kubernetes cluster"),
    (Step::Tasks, "Preparing the tasks"),
    (Step::Terminal, "Opening your terminal"),
];

/// Where a start is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    Idle,
    /// Steps that are running or done.
    Running(Vec<(Step, StepState)>),
    Failed(String),
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let session = Resource::new(|| (), |_| current_session());
    let history = Resource::new(|| (), |_| past_sessions());
    view! {
        <section class="dashboard">
            <h1>"Your practice"</h1>
            <Suspense fallback=|| view! { <p class="hint">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match session.await {
                        Ok(current) => view! { <CurrentSession current history/> }.into_any(),
                        Err(error) => view! {
                            <div class="card">
                                <p class="form-error" role="alert">{error_text(&error)}</p>
                                <p><A href="/signin">"Sign in"</A></p>
                            </div>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
            <crate::billing::AccessCard/>
            <h2>"Past sessions"</h2>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    // Without a sign-in there is nothing to list; the card above says why.
                    history.await.ok().map(|past| view! { <PastSessions past/> })
                })}
            </Suspense>
            <h2>"Mock exam results"</h2>
            <crate::exams::ExamHistory/>
            <p><A href="/exams">"Take a mock exam"</A></p>
            <h2>"Your sign-ins"</h2>
            <EndEverySignIn/>
        </section>
    }
}

/// The running session with the way back to it, or Start. The page listens to the session's
/// events all along: a start's steps, and the end of a running session however it comes.
#[component]
fn CurrentSession(
    current: Option<SessionView>,
    history: Resource<Result<Vec<SessionView>, ServerFnError>>,
) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let starting = current.as_ref().is_some_and(|s| !s.is_started());
    let session = RwSignal::new(current.filter(SessionView::is_started));
    let left = time_left(session);
    let start = RwSignal::new(if starting {
        Start::Running(Vec::new())
    } else {
        Start::Idle
    });
    // Start waits for the server to listen, so that no step goes unseen.
    let listening = RwSignal::new(false);

    Effect::new(move |_| {
        let navigate = navigate.clone();
        let on_event = move |event| match event {
            SessionEvent::Progress { step, state } => start.update(|start| {
                if let Start::Running(steps) = start {
                    steps.retain(|(name, _)| *name != step);
                    steps.push((step, state));
                }
            }),
            SessionEvent::Started { .. } => navigate("/practice", NavigateOptions::default()),
            SessionEvent::Failed { message } => {
                start.set(Start::Failed(message));
                history.refetch();
            }
            SessionEvent::Extended { .. } => spawn_local(async move {
                if let Ok(fresh) = current_session().await {
                    session.try_set(fresh);
                }
            }),
            SessionEvent::Ended { .. } => {
                session.set(None);
                start.set(Start::Idle);
                history.refetch();
            }
            SessionEvent::Warning { .. } => {}
        };
        // Closed with the page (effects run in the browser only, on its one thread).
        match SessionEvents::open(move || listening.set(true), on_event) {
            Some(events) => {
                let events = SendWrapper::new(events);
                on_cleanup(move || drop(events));
            }
            None => toasts.error("Your browser cannot follow the session; reload the page."),
        }
    });

    let on_start = move |_| {
        start.set(Start::Running(Vec::new()));
        spawn_local(async move {
            if let Err(error) = start_session().await {
                start.try_set(Start::Failed(error_text(&error)));
            }
        });
    };

    view! {
        <div class="card current-session">
            {move || match (session.get(), start.get()) {
                (Some(running), _) => view! {
                    <h2>"Your session is running"</h2>
                    <p class="session-facts">
                        "Started " {running.started_time()} ". "
                        <span class="time-left">
                            {move || left.get().map(|ms| format!("{} left", clock_text(ms)))}
                        </span>
                    </p>
                    <A href="/practice" attr:class="button primary">"Continue"</A>
                }
                .into_any(),
                (None, Start::Running(steps)) => view! {
                    <h2>"Starting your session"</h2>
                    <StartProgress steps/>
                }
                .into_any(),
                (None, idle_or_failed) => view! {
                    <h2>"Ready when you are"</h2>
                    <p class="hint">
                        "A session gives you your own Kubernetes cluster and a terminal beside the "
                        "tasks, against the clock; you can extend it once by 30 minutes."
                    </p>
                    {match idle_or_failed {
                        Start::Failed(message) => Some(view! {
                            <p class="form-error" role="alert">"The session could not start: " {message}</p>
                        }),
                        _ => None,
                    }}
                    <button class="button primary" disabled=move || !listening.get() on:click=on_start>
                        "Start a session"
                    </button>
                }
                .into_any(),
            }}
        </div>
    }
}

/// Each step of the start: waiting, running or done.
#[component]
pub(crate) fn StartProgress(steps: Vec<(Step, StepState)>) -> impl IntoView {
    let state_of = move |name: Step| {
        steps
            .iter()
            .find(|(step, _)| *step == name)
            .map(|(_, state)| *state)
    };
    view! {
        <ol class="start-steps" aria-live="polite">
            {STEPS
                .iter()
                .map(|&(name, label)| {
                    let (state, said) = match state_of(name) {
                        Some(StepState::Done) => ("done", "done"),
                        Some(StepState::Running) => ("running", "in progress"),
                        None => ("waiting", "waiting"),
                    };
                    let name: &'static str = name.into();
                    view! {
                        <li class="start-step" data-step=name data-state=state>
                            <span class="step-label">{label}</span>
                            <span class="step-state">{said}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

#[component]
fn PastSessions(past: Vec<SessionView>) -> impl IntoView {
    if past.is_empty() {
        return view! { <p class="hint">"None yet."</p> }.into_any();
    }
    view! {
        <table class="sessions-table">
            <thead>
                <tr><th>"Started"</th><th>"Length"</th><th>"How it ended"</th><th>"Replay"</th></tr>
            </thead>
            <tbody>
                {past
                    .into_iter()
                    .map(|session| {
                        let ending = match session.status {
                            SessionStatus::Ended => "Stopped",
                            SessionStatus::Timeout => "Time ran out",
                            SessionStatus::Failed => "Could not start",
                            other => other.as_str(),
                        };
                        view! {
                            <tr data-status=session.status.as_str()>
                                <td>{session.started_day()}</td>
                                <td>{session.length().unwrap_or_else(|| "–".into())}</td>
                                <td>{ending}</td>
                                <td>
                                    {(session.status != SessionStatus::Failed).then(|| view! {
                                        <A href=format!("/replay/{}", session.id)>"Watch"</A>
                                    })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
