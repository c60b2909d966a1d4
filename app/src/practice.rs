//! The practice page: the tasks beside the learner's terminal in a split they can resize, the
//! countdown with its warnings, Extend, Stop, and a Check button per task. A mock exam gets the
//! exam's screen instead: alerts at 30, 15 and 5 minutes, task weights in percent, flags for
//! review, End exam, and the documentation allowed on the day. The notepad and the flags are kept
//! on the server (`/api/desk`): a reload or another browser finds them.
//! The terminal itself is [`Terminal`].

use std::collections::{HashMap, HashSet};

use leptos::{ev, html, prelude::*, task::spawn_local};
use leptos_router::components::A;
use send_wrapper::SendWrapper;
use wasm_bindgen::JsCast;

use crate::{
    account::error_text,
    api::{
        CheckResult, DeskView, ErrorBody, NotepadText, SessionEvent, SessionView, Step, StepState, TaskFlag,
        TaskSummary, NOTEPAD_LIMIT,
    },
    dashboard::StartProgress,
    live::{clock_text, time_left, urgency, SessionEvents},
    modal::Modal,
    session::{check_task, current_session, extend_session, list_tasks, read_task, stop_session},
    terminal::Terminal,
    toast::{use_toasts, Toasts},
};

/// The task panel's share of the split, in percent: where it starts and how far it may go.
const SPLIT_START: f64 = 40.0;
const SPLIT_MIN: f64 = 20.0;
const SPLIT_MAX: f64 = 75.0;
/// One arrow-key press moves the divider this far.
const SPLIT_STEP: f64 = 2.0;
/// Below this width the tasks sit above the terminal (as in `style/main.css`).
const STACKED_BELOW_PX: f64 = 1100.0;
/// Minutes left at which the learner is warned: a practice session's, and an exam's (as on the day).
const PRACTICE_WARNINGS: [u32; 3] = [1, 5, 10];
const EXAM_WARNINGS: [u32; 3] = [5, 15, 30];
/// The documentation the real exam allows, opened beside the exam.
/// The notepad is saved once the learner has stopped typing for this long.
const NOTEPAD_SETTLE: std::time::Duration = std::time::Duration::from_millis(600);
const ALLOWED_DOCS: [(&str, &str); 2] = [
    ("Kubernetes docs", "https://kubernetes.io/docs/"),
    ("Helm docs", "https://helm.sh/docs/"),
];

#[component]
pub fn PracticePage() -> impl IntoView {
    let session = Resource::new(|| (), |_| current_session());
    let tasks = Resource::new(|| (), |_| list_tasks());
    view! {
        <section class="practice">
            <Suspense fallback=|| view! { <p class="practice-notice">"Loading your session…"</p> }>
                {move || Suspend::new(async move {
                    match (session.await, tasks.await) {
                        (Err(error), _) | (_, Err(error)) => notice(error_text(&error)).into_any(),
                        (Ok(Some(session)), Ok(tasks)) if session.is_started() => {
                            view! { <Workspace session tasks/> }.into_any()
                        }
                        (Ok(Some(_)), _) => view! { <Starting on_started=move || session.refetch()/> }.into_any(),
                        (Ok(None), _) => notice("No session is running.").into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Why there is nothing to practise on, and the way to the dashboard.
fn notice(text: impl Into<String>) -> impl IntoView {
    view! {
        <div class="card practice-notice">
            <p>{text.into()}</p>
            <A href="/dashboard" attr:class="button primary">"Go to the dashboard"</A>
        </div>
    }
}

/// A session still being made (starting a mock exam comes here at once): its steps as they
/// happen, then the workspace.
#[component]
fn Starting(on_started: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let steps = RwSignal::new(Vec::<(Step, StepState)>::new());
    let failed = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let on_event = move |event| match event {
            SessionEvent::Progress { step, state } => steps.update(|steps| {
                steps.retain(|(name, _)| *name != step);
                steps.push((step, state));
            }),
            SessionEvent::Started { .. } => on_started(),
            SessionEvent::Failed { message } => failed.set(Some(message)),
            _ => {}
        };
        // It may have started before the server listened.
        let on_open = move || {
            spawn_local(async move {
                if let Ok(Some(session)) = current_session().await {
                    if session.is_started() {
                        on_started();
                    }
                }
            })
        };
        if let Some(events) = SessionEvents::open(on_open, on_event) {
            let events = SendWrapper::new(events);
            on_cleanup(move || drop(events));
        }
    });
    view! {
        <div class="card practice-notice">
            {move || match failed.get() {
                Some(message) => view! {
                    <p class="form-error" role="alert">"The session could not start: " {message}</p>
                    <A href="/dashboard" attr:class="button primary">"Go to the dashboard"</A>
                }
                .into_any(),
                None => view! {
                    <h2>"Starting your session"</h2>
                    <StartProgress steps=steps.get()/>
                }
                .into_any(),
            }}
        </div>
    }
}

/// Which dialog is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialog {
    ConfirmStop,
    FiveMinutes,
    LastMinute,
}

/// The session's controls, the tasks and the terminal, for a started session.
#[component]
fn Workspace(session: SessionView, tasks: Vec<TaskSummary>) -> impl IntoView {
    let toasts = use_toasts();
    // A mock exam is graded at its end: no Check, no extension.
    let exam = session.is_exam();
    // Warnings for times still ahead when the page opened (a 30-minute exam gets no "30 minutes").
    let warnings: Vec<u32> = (if exam { EXAM_WARNINGS } else { PRACTICE_WARNINGS })
        .into_iter()
        .filter(|m| i64::from(*m) * 60_000 < session.millis_left())
        .collect();
    let session = RwSignal::new(Some(session));
    let left = time_left(session);
    // Why the session is over, once it is.
    let ended = RwSignal::new(None::<String>);
    let dialog = RwSignal::new(None::<Dialog>);
    // The last warning shown, in minutes left; cleared by an extension.
    let warned = RwSignal::new(None::<u32>);
    let busy = RwSignal::new(false);
    // From Stop until the server has removed everything (the terminal closes first).
    let stopping = RwSignal::new(false);

    // The first to tell wins: the server's event, the terminal, or the Stop button's answer.
    // Answers and events may arrive after the learner has left the page: hence `try_`.
    let end = move |message: String| {
        ended.try_update(|ended| {
            ended.get_or_insert(message);
        });
        dialog.try_set(None);
    };
    let warn = move |minutes: u32| {
        if ended.get_untracked().is_some() || warned.get_untracked().is_some_and(|w| w <= minutes) {
            return;
        }
        warned.set(Some(minutes));
        match minutes {
            m if m > 5 => toasts.info(format!(
                "{m} minutes left in your {}.",
                if exam { "exam" } else { "session" }
            )),
            m if m > 1 => dialog.set(Some(Dialog::FiveMinutes)),
            _ => dialog.set(Some(Dialog::LastMinute)),
        }
    };
    let reload = move || {
        spawn_local(async move {
            match current_session().await {
                Ok(Some(fresh)) => {
                    warned.try_set(None);
                    session.try_set(Some(fresh));
                }
                Ok(None) => end("The session has ended.".into()),
                Err(error) => toasts.error(error_text(&error)),
            }
        })
    };

    // The clock warns by itself; the server's warnings (below) say the same if it drifted.
    Effect::new(move |_| {
        let Some(ms) = left.get() else { return };
        if let Some(minutes) = warnings
            .iter()
            .copied()
            .find(|m| ms > 0 && ms <= i64::from(*m) * 60_000)
        {
            warn(minutes);
        }
    });
    Effect::new(move |_| {
        let on_event = move |event| match event {
            SessionEvent::Warning { minutes_left } => warn(minutes_left),
            SessionEvent::Extended { .. } => reload(),
            SessionEvent::Ended { message, .. } => end(message),
            _ => {}
        };
        // Closed with the page (effects run in the browser only, on its one thread).
        if let Some(events) = SessionEvents::open(|| {}, on_event) {
            let events = SendWrapper::new(events);
            on_cleanup(move || drop(events));
        }
    });
    let extend = move |_| {
        busy.set(true);
        spawn_local(async move {
            match extend_session().await {
                Ok(fresh) => {
                    warned.try_set(None);
                    session.try_set(Some(fresh));
                    dialog.try_set(None);
                    toasts.info("Your session now has 30 more minutes.");
                }
                Err(error) => toasts.error(error_text(&error)),
            }
            busy.try_set(false);
        });
    };
    let stop = move |_| {
        dialog.set(None);
        stopping.set(true);
        spawn_local(async move {
            match stop_session().await {
                Ok(()) => end(if exam {
                    "You ended the exam; its result is on the dashboard.".into()
                } else {
                    "You stopped the session; its cluster is gone.".into()
                }),
                Err(error) => toasts.error(error_text(&error)),
            }
            stopping.try_set(false);
        });
    };
    let extended = move || session.with(|s| s.as_ref().is_some_and(|s| s.extended));
    let over = move || stopping.get() || ended.with(Option::is_some);

    view! {
        <div class="practice-bar">
            <div
                class="countdown"
                role="timer"
                data-urgency=move || if over() { "over" } else { left.get().map_or("ok", urgency) }
            >
                <span class="countdown-label">"Time left"</span>
                <span class="countdown-value">
                    {move || if over() { "--:--".into() } else { left.get().map(clock_text).unwrap_or_default() }}
                </span>
            </div>
            {move || if stopping.get() {
                Some(view! { <p class="session-over" role="status">"Stopping the session…"</p> }.into_any())
            } else {
                ended.get().map(|message| view! {
                    <p class="session-over" role="alert">
                        {message} " " <A href="/dashboard">"Back to the dashboard"</A>
                    </p>
                }.into_any())
            }}
            <div class="bar-actions">
                {exam.then(|| view! {
                    <nav class="allowed-docs" aria-label="Documentation allowed in the exam">
                        {ALLOWED_DOCS
                            .map(|(name, url)| view! { <a href=url target="_blank" rel="noopener noreferrer">{name}</a> })
                            .collect_view()}
                    </nav>
                })}
                {(!exam).then(|| view! {
                    <button
                        class="button"
                        disabled=move || extended() || over() || busy.get()
                        on:click=extend
                    >
                        {move || if extended() { "Extended" } else { "Extend +30 min" }}
                    </button>
                })}
                <button
                    class="button danger"
                    disabled=move || over() || busy.get()
                    on:click=move |_| dialog.set(Some(Dialog::ConfirmStop))
                >
                    {if exam { "End exam" } else { "Stop session" }}
                </button>
            </div>
        </div>
        <Split tasks=StoredValue::new(tasks) toasts over exam on_ended=Callback::new(end)/>
        {move || dialog.get().map(|open| {
            let close = move || {
                dialog.set(None);
                focus_terminal();
            };
            match open {
                Dialog::ConfirmStop => {
                    let (title, text, act) = if exam {
                        (
                            "End the exam?",
                            "Your answers are graded now, then your cluster is deleted. This cannot be undone.",
                            "End exam",
                        )
                    } else {
                        (
                            "Stop the session?",
                            "Your cluster and everything in it will be deleted. This cannot be undone.",
                            "Stop session",
                        )
                    };
                    view! {
                        <Modal title on_close=close>
                            <p>{text}</p>
                            <div class="modal-actions">
                                <button class="button" on:click=move |_| close()>"Keep working"</button>
                                <button class="button danger" data-primary disabled=move || busy.get() on:click=stop>
                                    {act}
                                </button>
                            </div>
                        </Modal>
                    }
                    .into_any()
                }
                Dialog::FiveMinutes | Dialog::LastMinute => {
                    let (title, text) = if open == Dialog::FiveMinutes {
                        ("5 minutes left", if exam {
                            "The exam ends in 5 minutes and is graded then."
                        } else {
                            "Your session ends in 5 minutes, and its cluster with it."
                        })
                    } else {
                        ("1 minute left", "This is the last minute of your session.")
                    };
                    view! {
                        <Modal title on_close=close>
                            <p>{text}</p>
                            <div class="modal-actions">
                                <Show when=move || !exam && !extended()>
                                    <button class="button" disabled=move || busy.get() on:click=extend>
                                        "Extend +30 min"
                                    </button>
                                </Show>
                                <button class="button primary" data-primary on:click=move |_| close()>
                                    "Back to work"
                                </button>
                            </div>
                        </Modal>
                    }
                    .into_any()
                }
            }
        })}
    }
    .into_any()
}

/// Gives the terminal the keyboard back.
fn focus_terminal() {
    if let Some(input) = document()
        .query_selector("[data-terminal] textarea")
        .ok()
        .flatten()
        .and_then(|input| input.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = input.focus();
    }
}

/// The tasks and the terminal side by side (or stacked on narrow screens), with a divider that
/// moves with the pointer or the arrow keys.
#[component]
fn Split(
    tasks: StoredValue<Vec<TaskSummary>>,
    toasts: Toasts,
    over: impl Fn() -> bool + Copy + Send + Sync + 'static,
    exam: bool,
    /// Hears why, when the terminal finds the session over.
    on_ended: Callback<String>,
) -> impl IntoView {
    let workspace = NodeRef::<html::Div>::new();
    let split = RwSignal::new(SPLIT_START);
    let stacked = RwSignal::new(false);
    let dragging = RwSignal::new(false);

    // The split is a CSS variable set through the DOM: the page's policy refuses style attributes.
    Effect::new(move |_| {
        if let Some(element) = workspace.get() {
            let _ = web_sys::HtmlElement::style(&element)
                .set_property("--split", &format!("{:.1}%", split.get()));
        }
    });
    Effect::new(move |_| {
        let measure = move || {
            stacked.set(
                window()
                    .inner_width()
                    .ok()
                    .and_then(|w| w.as_f64())
                    .unwrap_or(0.0)
                    < STACKED_BELOW_PX,
            )
        };
        measure();
        let listener = window_event_listener(ev::resize, move |_| measure());
        on_cleanup(move || listener.remove());
    });
    let move_to = move |x: i32, y: i32| {
        let Some(element) = workspace.get_untracked() else {
            return;
        };
        let area = element.get_bounding_client_rect();
        let percent = if stacked.get_untracked() {
            (f64::from(y) - area.top()) / area.height()
        } else {
            (f64::from(x) - area.left()) / area.width()
        } * 100.0;
        split.set(percent.clamp(SPLIT_MIN, SPLIT_MAX));
    };

    let selected = RwSignal::new(tasks.with_value(|tasks| tasks.first().map(|t| t.id.clone())));
    // Chapters of the session's recording: each task switch and each Check.
    let marker = RwSignal::new(None::<String>);
    let title_of =
        move |id: &str| tasks.with_value(|tasks| tasks.iter().find(|t| t.id == id).map(|t| t.title.clone()));
    Effect::new(move |_| {
        if let Some(title) = selected.with(|id| id.as_deref().and_then(title_of)) {
            marker.set(Some(format!("Task: {title}")));
        }
    });
    // Tasks flagged for review during an exam, as the real exam's list has them, and the notepad:
    // both kept on the server, read once the page is in the browser.
    let flagged = RwSignal::new(HashSet::<String>::new());
    let notepad = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        spawn_local(async move {
            let desk = gloo_net::http::Request::get("/api/desk").send().await;
            match desk {
                Ok(response) if response.ok() => {
                    if let Ok(desk) = response.json::<DeskView>().await {
                        flagged.try_set(desk.flagged.into_iter().collect());
                        notepad.try_set(Some(desk.notepad));
                    }
                }
                _ => toasts.error("Your notepad and flags could not be loaded; reload the page."),
            }
        });
    });
    let total_weight: u32 = tasks
        .with_value(|tasks| tasks.iter().map(|t| t.weight).sum::<u32>())
        .max(1);
    view! {
        <div class="workspace" node_ref=workspace class:dragging=move || dragging.get()>
            <aside class="task-pane" aria-label="Tasks">
                <nav class="task-list" aria-label="Task list">
                    <ol>
                        {tasks.with_value(|tasks| {
                            tasks
                                .iter()
                                .enumerate()
                                .map(|(index, task)| {
                                    let id = task.id.clone();
                                    let is_selected = {
                                        let id = id.clone();
                                        move || selected.with(|s| s.as_ref() == Some(&id))
                                    };
                                    let is_flagged = Signal::derive({
                                        let id = id.clone();
                                        move || flagged.with(|f| f.contains(&id))
                                    });
                                    let weight = if exam {
                                        format!("{}%", (task.weight * 100 + total_weight / 2) / total_weight)
                                    } else {
                                        format!("{} pts", task.weight)
                                    };
                                    view! {
                                        <li>
                                            <button
                                                class="task-item"
                                                aria-current=move || is_selected().then_some("true")
                                                data-flagged=move || is_flagged.get().to_string()
                                                on:click=move |_| selected.set(Some(id.clone()))
                                            >
                                                <span class="task-number">{index + 1}</span>
                                                <span class="task-name">{task.title.clone()}</span>
                                                <Show when=move || is_flagged.get()>
                                                    <span class="task-flag" title="Flagged for review">"⚑"</span>
                                                </Show>
                                                <span class="task-points">{weight}</span>
                                            </button>
                                        </li>
                                    }
                                })
                                .collect_view()
                        })}
                    </ol>
                </nav>
                <Notepad text=notepad toasts/>
                <TaskPanel tasks selected flagged toasts over exam on_check=move |id: String| {
                    if let Some(title) = title_of(&id) {
                        marker.set(Some(format!("Check: {title}")));
                    }
                }/>
            </aside>
            <div
                class="divider"
                role="separator"
                tabindex="0"
                aria-label="Resize the task panel"
                aria-orientation=move || if stacked.get() { "horizontal" } else { "vertical" }
                aria-valuemin=SPLIT_MIN
                aria-valuemax=SPLIT_MAX
                aria-valuenow=move || split.get().round()
                on:pointerdown=move |event: ev::PointerEvent| {
                    event.prevent_default();
                    if let Some(divider) = event.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                        let _ = divider.set_pointer_capture(event.pointer_id());
                    }
                    dragging.set(true);
                }
                on:pointermove=move |event: ev::PointerEvent| {
                    if dragging.get_untracked() {
                        move_to(event.client_x(), event.client_y());
                    }
                }
                on:pointerup=move |_| dragging.set(false)
                on:pointercancel=move |_| dragging.set(false)
                on:keydown=move |event: ev::KeyboardEvent| {
                    let to = match event.key().as_str() {
                        "ArrowLeft" | "ArrowUp" => split.get_untracked() - SPLIT_STEP,
                        "ArrowRight" | "ArrowDown" => split.get_untracked() + SPLIT_STEP,
                        "Home" => SPLIT_MIN,
                        "End" => SPLIT_MAX,
                        _ => return,
                    };
                    event.prevent_default();
                    split.set(to.clamp(SPLIT_MIN, SPLIT_MAX));
                }
            ></div>
            <div class="terminal-pane">
                <Terminal on_ended marker=marker.read_only()/>
            </div>
        </div>
    }
    .into_any()
}

/// The session's notepad, saved on the server as the learner types (once they pause).
#[component]
fn Notepad(text: RwSignal<Option<String>>, toasts: Toasts) -> impl IntoView {
    let state = RwSignal::new("saved");
    let edits = StoredValue::new(0u32);
    let save = move |value: String| {
        let edit = edits.get_value().wrapping_add(1);
        edits.set_value(edit);
        state.set("unsaved");
        set_timeout(
            move || {
                if edits.try_get_value() != Some(edit) {
                    return;
                }
                state.try_set("saving");
                spawn_local(async move {
                    let result = put_json("/api/desk/notepad", &NotepadText { text: value }).await;
                    if edits.try_get_value() != Some(edit) {
                        return;
                    }
                    match result {
                        Ok(()) => state.try_set("saved"),
                        Err(message) => {
                            toasts.error(message);
                            state.try_set("unsaved")
                        }
                    };
                });
            },
            NOTEPAD_SETTLE,
        );
    };
    view! {
        <details class="notepad" open>
            <summary>
                "Notepad "
                <span class="notepad-state" data-notepad-state=move || state.get()>
                    {move || match state.get() {
                        "saved" => "saved",
                        "saving" => "saving…",
                        _ => "not saved yet",
                    }}
                </span>
            </summary>
            <textarea
                class="notepad-text"
                aria-label="Notepad"
                placeholder="Notes for this session; kept until it ends."
                maxlength=NOTEPAD_LIMIT
                disabled=move || text.with(Option::is_none)
                prop:value=move || text.get().unwrap_or_default()
                on:input=move |event| {
                    let value = event_target_value(&event);
                    text.set(Some(value.clone()));
                    save(value);
                }
            ></textarea>
        </details>
    }
}

/// PUTs `body` as JSON; the server's sentence when it refuses.
async fn put_json(url: &str, body: &impl serde::Serialize) -> Result<(), String> {
    let unreachable = |_| "The server could not be reached; try again.".to_owned();
    let response = gloo_net::http::Request::put(url)
        .json(body)
        .map_err(unreachable)?
        .send()
        .await
        .map_err(unreachable)?;
    if response.ok() {
        return Ok(());
    }
    Err(response
        .json::<ErrorBody>()
        .await
        .map(|body| body.error)
        .unwrap_or_else(|_| "The server refused; try again.".into()))
}

/// The selected task's text, its Check button and the last results.
#[component]
fn TaskPanel(
    tasks: StoredValue<Vec<TaskSummary>>,
    selected: RwSignal<Option<String>>,
    flagged: RwSignal<HashSet<String>>,
    toasts: Toasts,
    over: impl Fn() -> bool + Copy + Send + Sync + 'static,
    exam: bool,
    /// Hears the task whose Check was pressed.
    #[prop(into)]
    on_check: Callback<String>,
) -> impl IntoView {
    let text = Resource::new(
        move || selected.get(),
        |id| async move {
            match id {
                Some(id) => read_task(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // The last results of each task checked, kept while the learner moves between tasks.
    let results = RwSignal::new(HashMap::<String, Vec<CheckResult>>::new());
    let checking = RwSignal::new(false);
    let check = move |_| {
        let Some(id) = selected.get_untracked() else {
            return;
        };
        checking.set(true);
        on_check.run(id.clone());
        spawn_local(async move {
            match check_task(id.clone()).await {
                Ok(outcome) => {
                    results.try_update(|results| results.insert(id, outcome.checks));
                }
                Err(error) => toasts.error(error_text(&error)),
            }
            checking.try_set(false);
        });
    };
    let summary = move || {
        selected
            .with(|id| tasks.with_value(|tasks| tasks.iter().find(|t| Some(&t.id) == id.as_ref()).cloned()))
    };
    let shown = move || selected.with(|id| id.as_ref().and_then(|id| results.with(|r| r.get(id).cloned())));

    view! {
        <article class="task-text">
            {move || summary().map(|task| view! {
                <header>
                    <h2>{task.title}</h2>
                    <p class="task-meta">
                        {task.domain} " · " {<&str>::from(task.difficulty)} " · " {format!("{} points · about {} min", task.weight, task.minutes)}
                    </p>
                    // As on the day: the host to solve it on, and how to get there.
                    {task.host.map(|host| view! {
                        <p class="task-host" data-host=host.clone()>
                            "Solve this task on host " <strong>{host.clone()}</strong> ": "
                            <code>{format!("ssh {host}")}</code> " (" <code>"exit"</code> " comes back)"
                        </p>
                    })}
                </header>
            })}
            <Transition fallback=|| view! { <p class="hint">"Loading the task…"</p> }>
                {move || Suspend::new(async move {
                    match text.await {
                        Ok(Some(task)) => view! {
                            <div class="markdown" inner_html=task.body_html></div>
                            <Hints hints=task.hints_html/>
                        }
                        .into_any(),
                        Ok(None) => view! { <p class="hint">"There are no tasks."</p> }.into_any(),
                        Err(error) => view! { <p class="form-error">{error_text(&error)}</p> }.into_any(),
                    }
                })}
            </Transition>
            {if exam {
                let is_flagged = move || selected.with(|id| id.as_ref().is_some_and(|id| flagged.with(|f| f.contains(id))));
                let toggle_flag = move |_| {
                    let Some(id) = selected.get_untracked() else { return };
                    let now = !flagged.with_untracked(|f| f.contains(&id));
                    let url = format!("/api/desk/flags/{}", js_sys::encode_uri_component(&id));
                    let set = move |on: bool| flagged.try_update(|f| {
                        if on { f.insert(id.clone()); } else { f.remove(&id); }
                    });
                    set(now);
                    spawn_local(async move {
                        if let Err(message) = put_json(&url, &TaskFlag { flagged: now }).await {
                            set(!now);
                            toasts.error(message);
                        }
                    });
                };
                view! {
                    <div class="check-panel">
                        <button class="button" aria-pressed=move || is_flagged().to_string() on:click=toggle_flag>
                            {move || if is_flagged() { "Unflag" } else { "Flag for review" }}
                        </button>
                        <p class="hint">"A mock exam is graded when the time is up or you end it."</p>
                    </div>
                }
                .into_any()
            } else {
                view! {
                    <div class="check-panel">
                        <button
                            class="button primary"
                            disabled=move || checking.get() || over() || selected.with(Option::is_none)
                            on:click=check
                        >
                            {move || if checking.get() { "Checking…" } else { "Check" }}
                        </button>
                        {move || shown().map(|outcome| {
                            let passing = outcome.iter().filter(|c| c.passed).count();
                            view! {
                                <p class="check-summary" data-all-passed=(passing == outcome.len()).to_string()>
                                    {format!("{passing} of {} checks pass", outcome.len())}
                                </p>
                                <ul class="check-results">
                                    {outcome
                                        .into_iter()
                                        .map(|check| view! {
                                            <li class="check-result" data-passed=check.passed.to_string()>
                                                <span class="check-mark" aria-hidden="true">{if check.passed { "✓" } else { "✗" }}</span>
                                                <span class="check-description">{check.description}</span>
                                                {check.reason.map(|reason| view! { <span class="check-reason">{reason}</span> })}
                                            </li>
                                        })
                                        .collect_view()}
                                </ul>
                            }
                        })}
                    </div>
                }
                .into_any()
            }}
        </article>
    }
    .into_any()
}

/// A task's hints, each folded until the learner asks for it (none come during an exam).
#[component]
fn Hints(hints: Vec<String>) -> impl IntoView {
    let count = hints.len();
    hints
        .into_iter()
        .enumerate()
        .map(|(i, hint)| {
            view! {
                <details class="task-hint">
                    <summary>{if count == 1 { "Hint".to_owned() } else { format!("Hint {} of {count}", i + 1) }}</summary>
                    <div class="markdown" inner_html=hint></div>
                </details>
            }
        })
        .collect_view()
}
