//! Mock exams: the list (with the learner's past results) at `/exams`, and a graded exam at
//! `/exams/results/:session`: every task's points and checks, and the reference solutions. The
//! server functions take the [`ssr::ExamPages`] implementation from context (the server provides
//! it) and the request's headers (it authorises inside).

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};
use serde::{Deserialize, Serialize};

use crate::account::error_text;

/// An exam a learner may take (or may not, without a pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamSummary {
    pub id: String,
    pub title: String,
    pub minutes: u32,
    pub tasks: usize,
    pub max_score: u32,
    pub allowed: bool,
}

/// A graded exam in the learner's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultSummary {
    pub session_id: String,
    pub title: String,
    pub score: u32,
    pub max_score: u32,
    /// When it was graded, for people ("25 Nov 2026, 15:32 UTC").
    pub graded: String,
}

/// One check of a graded task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradedCheck {
    pub description: String,
    pub passed: bool,
    pub reason: Option<String>,
}

/// One task of a graded exam, with its reference solution (rendered by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradedTask {
    pub title: String,
    pub weight: u32,
    pub points: u32,
    pub checks: Vec<GradedCheck>,
    pub solution_html: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamResultView {
    pub summary: ResultSummary,
    pub tasks: Vec<GradedTask>,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What the server implements for these pages. Each refusal is a sentence for the person.
    use http::HeaderMap;

    use super::{ExamResultView, ExamSummary, ResultSummary};

    #[async_trait::async_trait]
    pub trait ExamPages: Send + Sync {
        async fn exams(&self, headers: &HeaderMap) -> Result<Vec<ExamSummary>, String>;
        async fn start(&self, headers: &HeaderMap, exam_id: &str) -> Result<(), String>;
        async fn results(&self, headers: &HeaderMap) -> Result<Vec<ResultSummary>, String>;
        async fn result(&self, headers: &HeaderMap, session_id: &str) -> Result<ExamResultView, String>;
    }
}

#[cfg(feature = "ssr")]
fn pages() -> Result<(std::sync::Arc<dyn ssr::ExamPages>, http::HeaderMap), ServerFnError> {
    let pages = use_context::<std::sync::Arc<dyn ssr::ExamPages>>()
        .ok_or_else(|| ServerFnError::new("exams are not available"))?;
    let headers = use_context::<http::request::Parts>()
        .map(|parts| parts.headers)
        .unwrap_or_default();
    Ok((pages, headers))
}

#[server(prefix = "/api/pages")]
pub async fn list_exams() -> Result<Vec<ExamSummary>, ServerFnError> {
    let (pages, headers) = pages()?;
    pages.exams(&headers).await.map_err(ServerFnError::new)
}

#[server(prefix = "/api/pages")]
pub async fn start_exam(exam_id: String) -> Result<(), ServerFnError> {
    let (pages, headers) = pages()?;
    pages.start(&headers, &exam_id).await.map_err(ServerFnError::new)
}

#[server(prefix = "/api/pages")]
pub async fn exam_results() -> Result<Vec<ResultSummary>, ServerFnError> {
    let (pages, headers) = pages()?;
    pages.results(&headers).await.map_err(ServerFnError::new)
}

#[server(prefix = "/api/pages")]
pub async fn exam_result(session_id: String) -> Result<ExamResultView, ServerFnError> {
    let (pages, headers) = pages()?;
    pages
        .result(&headers, &session_id)
        .await
        .map_err(ServerFnError::new)
}

#[component]
pub fn ExamsPage() -> impl IntoView {
    let exams = Resource::new(|| (), |_| list_exams());
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
            <ExamHistory/>
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
                        {listed.into_iter().map(|r| view! {
                            <li>
                                <A href=format!("/exams/results/{}", r.session_id)>{r.title.clone()}</A>
                                {format!(" — {} / {} points, {}", r.score, r.max_score, r.graded)}
                            </li>
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
                        let s = &graded.summary;
                        let percent = (s.score * 100).checked_div(s.max_score).unwrap_or(0);
                        view! {
                            <h1>{s.title.clone()}</h1>
                            <p class="score">{format!("{} / {} points ({percent}%), graded {}", s.score, s.max_score, s.graded)}</p>
                            {graded.tasks.into_iter().map(|task| view! {
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
                                        <div class="solution" inner_html=task.solution_html></div>
                                    </details>
                                </article>
                            }).collect_view()}
                            <p><A href="/exams">"Back to the exams"</A></p>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
