//! Mock exams (`tasks/exams.yaml`): a named set of tasks and a time limit. During an exam there
//! is no Check and no extension; when it ends (stopped or timed out) every task is graded before
//! the cluster goes, with partial credit by weight, and the result keeps every check's outcome.
//! Who may take an exam is the [`ExamAccess`] hook's answer: free exams are open to all, others
//! need an active access pass (`crate::billing` answers).
//!
//! An exam may name `hosts`, as the real one does: each task is then solved on its host, a
//! cluster of its own that the terminal reaches with `ssh <host>`, and graded there only, so work
//! done on the wrong host scores nothing for that task.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use app::api::CheckResult;
pub use app::api::{Access, DomainScore, ExamCategory, ExamType};

use crate::{
    domain::{ExamResult, GradedTask},
    store::StoreError,
    tasks::{Target, TaskCatalog, TaskError},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exam {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub exam_type: ExamType,
    pub category: ExamCategory,
    pub minutes: u32,
    pub access: Access,
    /// The share of the points that passes, in percent (the CKAD's is 66).
    #[serde(default = "pass_percent")]
    pub pass_percent: u32,
    /// The machines the tasks are solved on (at most [`MAX_HOSTS`]), each a cluster of its own;
    /// none: one cluster for every task.
    #[serde(default)]
    pub hosts: Vec<String>,
    pub tasks: Vec<ExamTask>,
}

/// An exam's task: its id, or (in an exam with hosts) its id and the host it is solved on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExamTask {
    Anywhere(String),
    OnHost(TaskOnHost),
}

/// A task and the host it is solved on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOnHost {
    pub task: String,
    pub host: String,
}

impl ExamTask {
    pub fn id(&self) -> &str {
        match self {
            Self::Anywhere(id) => id,
            Self::OnHost(on_host) => &on_host.task,
        }
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Anywhere(_) => None,
            Self::OnHost(on_host) => Some(&on_host.host),
        }
    }
}

/// Hosts an exam may have: the real exam's two or three clusters, cheap on `lite`.
pub const MAX_HOSTS: usize = 3;

/// A host's name goes into cluster names, file names and the terminal's prompt: lowercase
/// letters, digits and inner dashes, a letter first, at most 20 characters; `base` is where the
/// terminal starts, no host.
pub fn is_host_name(name: &str) -> bool {
    name.len() <= 20
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name != "base"
}

/// The pass line of an exam that names none: the CKAD's.
pub const DEFAULT_PASS_PERCENT: u32 = 66;

fn pass_percent() -> u32 {
    DEFAULT_PASS_PERCENT
}

/// Which exams a listing shows (`GET /api/exams?type=helm&category=mock`); unset shows all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ExamFilter {
    #[serde(rename = "type")]
    pub exam_type: Option<ExamType>,
    pub category: Option<ExamCategory>,
}

impl ExamFilter {
    pub fn shows(&self, exam: &Exam) -> bool {
        self.exam_type.is_none_or(|t| t == exam.exam_type) && self.category.is_none_or(|c| c == exam.category)
    }
}

impl Exam {
    pub fn is_free(&self) -> bool {
        self.access == Access::Free
    }

    /// Whether `score` of `max_score` points reaches the pass line.
    pub fn passes(&self, score: u32, max_score: u32) -> bool {
        max_score > 0 && u64::from(score) * 100 >= u64::from(self.pass_percent) * u64::from(max_score)
    }

    /// The ids of its tasks, in order.
    pub fn task_ids(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().map(ExamTask::id)
    }

    /// The host `task_id` is solved on; `None` in an exam without hosts.
    pub fn host_of(&self, task_id: &str) -> Option<&str> {
        self.tasks
            .iter()
            .find(|t| t.id() == task_id)
            .and_then(ExamTask::host)
    }

    /// The points the exam is worth: its tasks' weights.
    pub fn max_score(&self, tasks: &TaskCatalog) -> u32 {
        self.task_ids()
            .filter_map(|t| tasks.get(t))
            .map(|t| t.view().weight)
            .sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExamError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The exams, checked against the tasks when loaded.
#[derive(Debug, Clone, Default)]
pub struct ExamCatalog {
    exams: Vec<Exam>,
}

impl ExamCatalog {
    /// Reads `path`; a missing file means no exams. Every exam must name known tasks, once, and
    /// last at least a minute; ids are unique.
    pub fn load(path: &Path, tasks: &TaskCatalog) -> Result<Self, ExamError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ExamError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let invalid = |message: String| ExamError::Invalid {
            path: path.to_owned(),
            message,
        };
        let exams: Vec<Exam> = serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        for (i, exam) in exams.iter().enumerate() {
            if exams[..i].iter().any(|e| e.id == exam.id) {
                return Err(invalid(format!("exam {} is defined twice", exam.id)));
            }
            if exam.minutes == 0 || exam.tasks.is_empty() {
                return Err(invalid(format!("exam {} needs minutes and tasks", exam.id)));
            }
            if !(1..=100).contains(&exam.pass_percent) {
                return Err(invalid(format!("exam {}: pass_percent is 1-100", exam.id)));
            }
            let ids: Vec<&str> = exam.task_ids().collect();
            for (j, task) in ids.iter().enumerate() {
                if tasks.get(task).is_none() {
                    return Err(invalid(format!("exam {} names an unknown task {task}", exam.id)));
                }
                if ids[..j].contains(task) {
                    return Err(invalid(format!("exam {} names task {task} twice", exam.id)));
                }
            }
            check_hosts(exam).map_err(|message| invalid(format!("exam {}: {message}", exam.id)))?;
        }
        Ok(Self { exams })
    }

    pub fn list(&self) -> &[Exam] {
        &self.exams
    }

    pub fn get(&self, id: &str) -> Option<&Exam> {
        self.exams.iter().find(|e| e.id == id)
    }
}

/// Hosts well named, each once and with a task; every task on one of them, or none on any.
fn check_hosts(exam: &Exam) -> Result<(), String> {
    if exam.hosts.len() > MAX_HOSTS {
        return Err(format!("at most {MAX_HOSTS} hosts"));
    }
    for (i, host) in exam.hosts.iter().enumerate() {
        if !is_host_name(host) {
            return Err(format!(
                "{host:?} is not a host name (lowercase letters, digits and dashes, a letter first, at most 20; not base)"
            ));
        }
        if exam.hosts[..i].contains(host) {
            return Err(format!("host {host} is named twice"));
        }
    }
    for task in &exam.tasks {
        match (task.host(), exam.hosts.is_empty()) {
            (Some(host), true) => {
                return Err(format!(
                    "task {} names host {host}, but the exam has no hosts",
                    task.id()
                ))
            }
            (None, false) => return Err(format!("task {} names no host", task.id())),
            (Some(host), false) if !exam.hosts.iter().any(|h| h == host) => {
                return Err(format!("task {} names an unknown host {host}", task.id()))
            }
            _ => {}
        }
    }
    if let Some(idle) = exam
        .hosts
        .iter()
        .find(|h| !exam.tasks.iter().any(|t| t.host() == Some(h.as_str())))
    {
        return Err(format!("host {idle} has no task"));
    }
    Ok(())
}

/// Where an exam's tasks are graded: each on its host's cluster, or all on the session's one.
pub struct ExamTargets<'a> {
    /// The session's own cluster (an exam's first host's, or its only one).
    pub session: Target<'a>,
    /// Each host's cluster, by host.
    pub hosts: HashMap<String, Target<'a>>,
}

impl<'a> ExamTargets<'a> {
    fn of(&self, host: Option<&str>) -> &Target<'a> {
        host.and_then(|h| self.hosts.get(h)).unwrap_or(&self.session)
    }
}

/// Grades every task of `exam` on its host's cluster (work on another host counts for nothing),
/// each as the session has it (with the names chosen for `session_id`).
pub async fn grade(
    exam: &Exam,
    tasks: &TaskCatalog,
    targets: &ExamTargets<'_>,
    session_id: &str,
) -> Result<ExamResult, TaskError> {
    let on_hosts = exam
        .tasks
        .iter()
        .filter_map(|t| tasks.get(t.id()).map(|task| (task, targets.of(t.host()))))
        .map(|(task, target)| Ok((task.for_session(session_id)?, target)))
        .collect::<Result<Vec<_>, TaskError>>()?;
    let graded = futures_util::future::join_all(on_hosts.into_iter().map(|(task, target)| async move {
        let checks: Vec<CheckResult> = task.grade(target).await;
        let view = task.view();
        GradedTask {
            task: view.id.clone(),
            title: view.title.clone(),
            domain: view.domain.name().to_owned(),
            weight: view.weight,
            points: crate::tasks::score(&checks),
            checks,
        }
    }))
    .await;
    Ok(ExamResult {
        session_id: session_id.to_owned(),
        exam_id: exam.id.clone(),
        score: graded.iter().map(|t| t.points).sum(),
        max_score: graded.iter().map(|t| t.weight).sum(),
        graded_at: chrono::Utc::now(),
        tasks: graded,
    })
}

/// Points earned and available per domain, domains in the order their first task comes.
pub fn scores_by_domain(result: &ExamResult) -> Vec<DomainScore> {
    let mut scores: Vec<DomainScore> = Vec::new();
    for task in &result.tasks {
        match scores.iter_mut().find(|s| s.domain == task.domain) {
            Some(score) => {
                score.points += task.points;
                score.weight += task.weight;
            }
            None => scores.push(DomainScore {
                domain: task.domain.clone(),
                points: task.points,
                weight: task.weight,
            }),
        }
    }
    scores
}

/// Whether a user may take an exam (`crate::billing::Billing` answers).
#[async_trait::async_trait]
pub trait ExamAccess: Send + Sync {
    async fn may_take(&self, user_id: &str, exam: &Exam) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_exams_are_shaped_like_the_real_ones() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tasks = TaskCatalog::load(root.join("tasks")).unwrap();
        let exams = ExamCatalog::load(&root.join("tasks/exams.yaml"), &tasks).unwrap();
        // The second seed's mock exams: questions and minutes by type, free to take.
        for (exam_type, questions, minutes) in [
            (ExamType::Ckad, 5, 30),
            (ExamType::Cka, 5, 30),
            (ExamType::Cks, 3, 20),
            (ExamType::Docker, 3, 15),
            (ExamType::Helm, 3, 15),
        ] {
            let filter = ExamFilter {
                exam_type: Some(exam_type),
                category: Some(ExamCategory::Mock),
            };
            let mocks: Vec<&Exam> = exams.list().iter().filter(|e| filter.shows(e)).collect();
            assert_eq!(mocks.len(), 1, "{exam_type:?}");
            let mock = mocks[0];
            assert_eq!(
                (mock.tasks.len(), mock.minutes, mock.is_free()),
                (questions, minutes, true),
                "{}",
                mock.id
            );
        }
        // Full CKAD exams as on the day: 15-20 tasks in 2 hours, worth 100 points, 66 % passes.
        let full = ExamFilter {
            exam_type: Some(ExamType::Ckad),
            category: Some(ExamCategory::Full),
        };
        let full: Vec<&Exam> = exams.list().iter().filter(|e| full.shows(e)).collect();
        assert!(full.len() >= 2, "{} full CKAD exams", full.len());
        for exam in full {
            assert_eq!(
                (
                    (15..=20).contains(&exam.tasks.len()),
                    exam.minutes,
                    exam.max_score(&tasks),
                    exam.access,
                    exam.pass_percent
                ),
                (true, 120, 100, Access::Pass, 66),
                "{}",
                exam.id
            );
            assert!(exam.passes(66, 100) && !exam.passes(65, 100), "{}", exam.id);
        }
        // As on the day, a full exam's tasks are each solved on one of its hosts.
        for full in exams.list().iter().filter(|e| e.category == ExamCategory::Full) {
            assert_eq!(full.hosts.len(), 3, "{}", full.id);
            assert!(full.tasks.iter().all(|t| t.host().is_some()), "{}", full.id);
        }
        let with_hosts = exams.get("ckad-full-2").unwrap();
        assert_eq!(with_hosts.hosts, ["ckad7326", "ckad5601", "ckad9043"]);
        assert_eq!(with_hosts.host_of("cronjob-run-now"), Some("ckad7326"));
        assert_eq!(
            exams.get("ckad-mock-free").unwrap().host_of("pod-with-labels"),
            None
        );
    }

    #[test]
    fn scores_add_up_by_domain_in_the_order_tasks_come() {
        let task = |domain: &str, points, weight| GradedTask {
            task: "t".into(),
            title: "T".into(),
            domain: domain.into(),
            weight,
            points,
            checks: Vec::new(),
        };
        let result = ExamResult {
            session_id: "s".into(),
            exam_id: "e".into(),
            score: 9,
            max_score: 17,
            graded_at: chrono::Utc::now(),
            tasks: vec![
                task("Deployment", 4, 4),
                task("Design", 0, 6),
                task("Deployment", 5, 7),
            ],
        };
        let by_domain: Vec<(String, u32, u32)> = scores_by_domain(&result)
            .into_iter()
            .map(|s| (s.domain, s.points, s.weight))
            .collect();
        assert_eq!(by_domain, [("Deployment".into(), 9, 11), ("Design".into(), 0, 6)]);
    }

    #[test]
    fn a_bad_exam_file_is_refused_with_the_reason() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tasks = TaskCatalog::load(root.join("tasks")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exams.yaml");
        let cases = [
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 30, access: free, tasks: [nope]}",
                "unknown task nope",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 0, access: free, tasks: [pod-with-labels]}",
                "needs minutes",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: gold, tasks: [pod-with-labels]}",
                "unknown variant",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, tasks: [pod-with-labels]}\n\
                 - {id: a, title: B, type: ckad, category: mock, minutes: 9, access: free, tasks: [pod-with-labels]}",
                "defined twice",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, pass_percent: 0, tasks: [pod-with-labels]}",
                "pass_percent is 1-100",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, hosts: [ckad-a], tasks: [pod-with-labels]}",
                "task pod-with-labels names no host",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, tasks: [{task: pod-with-labels, host: ckad-a}]}",
                "but the exam has no hosts",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, hosts: [ckad-a],\n   \
                 tasks: [{task: pod-with-labels, host: ckad-a}, {task: configmap-env, host: ckad-c}]}",
                "names an unknown host ckad-c",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, hosts: [ckad-a, ckad-b],\n   \
                 tasks: [{task: pod-with-labels, host: ckad-a}]}",
                "host ckad-b has no task",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, hosts: [\"a;b\"],\n   \
                 tasks: [{task: pod-with-labels, host: \"a;b\"}]}",
                "is not a host name",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, hosts: [base],\n   \
                 tasks: [{task: pod-with-labels, host: base}]}",
                "is not a host name",
            ),
            (
                "- {id: a, title: A, type: ckad, category: mock, minutes: 9, access: free, hosts: [a, b, c, d],\n   \
                 tasks: [{task: pod-with-labels, host: a}]}",
                "at most 3 hosts",
            ),
        ];
        for (text, reason) in cases {
            std::fs::write(&file, text).unwrap();
            let error = ExamCatalog::load(&file, &tasks).unwrap_err().to_string();
            assert!(error.contains(reason) && error.contains("exams.yaml"), "{error}");
        }
    }
}
