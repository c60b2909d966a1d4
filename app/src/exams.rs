//! Mock exams: the list (with the learner's past results) at `/exams`, and a graded exam at
//! `/exams/results/:session`: every task's points and checks, and the reference solutions. The
//! server functions take the [`crate::ports::ExamPages`] implementation from context (the server provides
//! it) and the request's headers (it authorises inside).

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use crate::{
    account::error_text,
    api::{ExamSummary, GradedExam},
};

#[cfg(feature = "ssr")]
fn pages() -> Result<std::sync::Arc<dyn crate::ports::ExamPages>, ServerFnError> {
    use_context::<std::sync::Arc<dyn crate::ports::ExamPages>>()
        .ok_or_else(|| ServerFnError::new("exams are not available"))
}

/// Calls the server's [`crate::ports::ExamPages`] with the request's headers; a refusal answers
/// with its status and sentence.
#[cfg(feature = "ssr")]
macro_rules! ask {
    ($method:ident $(, $arg:expr)*) => {
        pages()?
            .$method(&crate::account::server::headers() $(, $arg)*)
            .await
            .map_err(crate::account::server::refuse)
    };
}

#[server(prefix = "/api/pages")]
pub async fn list_exams() -> Result<Vec<ExamSummary>, ServerFnError> {
    ask!(exams)
}

#[server(prefix = "/api/pages")]
pub async fn start_exam(exam_id: String) -> Result<(), ServerFnError> {
    ask!(start, &exam_id)
}

#[server(prefix = "/api/pages")]
pub async fn exam_results() -> Result<Vec<GradedExam>, ServerFnError> {
    ask!(results)
}

#[server(prefix = "/api/pages")]
pub async fn exam_result(session_id: String) -> Result<GradedExam, ServerFnError> {
    ask!(result, &session_id)
}

#[component]
pub fn ExamsPage() -> impl IntoView {
    let exams = Resource::new(|| (), |_| list_exams());
    let user = Resource::new(|| (), |_| crate::account::current_user());
    let start = ServerAction::<StartExam>::new();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = start.value().get() {
            navigate("/practice", Default::default());
        }
    });
    view! {
        <section class="exams">
            <h1>"Mock exams"</h1>
            <p class="lede">
                "A fixed set of tasks against the clock, as on the day: no Check, no extension. "
                "When the time is up (or you stop) every task is graded, with partial credit, "
                "and the results show each check and the reference solutions."
            </p>
            {move || start.value().get().and_then(Result::err).map(|e| view! {
                <p class="form-error" role="alert">{error_text(&e)}</p>
            })}
            <Suspense fallback=|| view! { <p>"Loading the exams…"</p> }>
                {move || exams.get().map(|listed| match listed {
                    Err(e) => view! { <p class="form-error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(listed) => view! {
                        <ul class="exam-list">
                            {listed.into_iter().map(|exam| {
                                let id = exam.id.clone();
                                view! {
                                    <li class="exam-card">
                                        <h2>{exam.title.clone()}</h2>
                                        <p>{format!("{} tasks · {} minutes · {} points", exam.tasks, exam.minutes, exam.max_score)}</p>
                                        {if exam.allowed {
                                            view! {
                                                <button class="button primary" disabled=move || start.pending().get()
                                                    on:click=move |_| { start.dispatch(StartExam { exam_id: id.clone() }); }>
                                                    "Start this exam"
                                                </button>
                                            }.into_any()
                                        } else if exam.is_free {
                                            view! { <p class="muted">"Sign in to start this exam."</p> }.into_any()
                                        } else {
                                            view! { <p class="muted">"Needs an access pass."</p> }.into_any()
                                        }}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
            <h2>"Your results"</h2>
            // A visitor browses the exams; their results need a sign-in, not an error.
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(_)) => view! { <ExamHistory/> }.into_any(),
                        _ => view! { <p class="muted">"Sign in to take an exam and see your results here."</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The learner's graded exams, newest first, each linking to its result (the exams page and the
/// dashboard show it).
#[component]
pub fn ExamHistory() -> impl IntoView {
    let results = Resource::new(|| (), |_| exam_results());
    view! {
        <Suspense fallback=|| view! { <p>"Loading your results…"</p> }>
            {move || results.get().map(|listed| match listed {
                Err(e) => view! { <p class="form-error" role="alert">{error_text(&e)}</p> }.into_any(),
                Ok(listed) if listed.is_empty() => view! { <p class="muted">"No exam taken yet."</p> }.into_any(),
                Ok(listed) => view! {
                    <ul class="result-list">
                        {listed.into_iter().map(|r| {
                            let line = format!(" — {} / {} points, {}", r.result.score, r.result.max_score, r.graded_day());
                            view! {
                                <li>
                                    <A href=format!("/exams/results/{}", r.result.session_id)>{r.title}</A>
                                    {line}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
pub fn ExamResultPage() -> impl IntoView {
    let params = use_params_map();
    let result = Resource::new(
        move || params.read().get("session").unwrap_or_default(),
        exam_result,
    );
    view! {
        <section class="exam-result">
            <Suspense fallback=|| view! { <p>"Loading the result…"</p> }>
                {move || result.get().map(|graded| match graded {
                    Err(e) => view! { <p class="form-error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(graded) => {
                        let s = &graded.result;
                        let percent = (s.score * 100).checked_div(s.max_score).unwrap_or(0);
                        let solution_html = |task: &str| graded.solution_of(task).map(|s| s.html.clone()).unwrap_or_default();
                        view! {
                            <h1>{graded.title.clone()}</h1>
                            <p class="score">{format!("{} / {} points ({percent}%), graded {}", s.score, s.max_score, graded.graded_day())}</p>
                            <p class="verdict">{format!("{} (the pass line is {}%)", if graded.passed { "Passed" } else { "Not passed" }, graded.pass_percent)}</p>
                            <ul class="domain-scores">
                                {graded.domains.iter().map(|d| view! {
                                    <li>{format!("{}: {} / {}", d.domain, d.points, d.weight)}</li>
                                }).collect_view()}
                            </ul>
                            {s.tasks.iter().cloned().map(|task| view! {
                                <article class="graded-task">
                                    <h2>{format!("{} — {} / {}", task.title, task.points, task.weight)}</h2>
                                    <ul class="checks">
                                        {task.checks.into_iter().map(|c| view! {
                                            <li class=if c.passed { "check passed" } else { "check failed" }>
                                                <span class="mark">{if c.passed { "✔" } else { "✘" }}</span>
                                                {c.description}
                                                {c.reason.map(|r| view! { <span class="reason">{format!(" — {r}")}</span> })}
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                    <details>
                                        <summary>"Reference solution"</summary>
                                        <div class="solution" inner_html=solution_html(&task.task)></div>
                                    </details>
                                </article>
                            }).collect_view()}
                            <p>
                                <A href=format!("/replay/{}", s.session_id) attr:class="button">"Watch your terminal again"</A>
                                " "
                                <A href="/exams">"Back to the exams"</A>
                            </p>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
