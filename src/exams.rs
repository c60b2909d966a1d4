//! Mock exams (`tasks/exams.yaml`): a named set of tasks and a time limit. During an exam there
//! is no Check and no extension; when it ends (stopped or timed out) every task is graded before
//! the cluster goes, with partial credit by weight, and the result keeps every check's outcome.
//! Who may take an exam is the [`ExamAccess`] hook's answer: free exams are open to all, others
//! need an active access pass (`crate::billing` answers).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use app::api::Access;
use app::api::CheckResult;

use crate::{
    domain::{ExamResult, GradedTask},
    store::StoreError,
    tasks::{Target, TaskCatalog},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exam {
    pub id: String,
    pub title: String,
    pub minutes: u32,
    pub access: Access,
    pub tasks: Vec<String>,
}

impl Exam {
    /// The points the exam is worth: its tasks' weights.
    pub fn max_score(&self, tasks: &TaskCatalog) -> u32 {
        self.tasks
            .iter()
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
            for (j, task) in exam.tasks.iter().enumerate() {
                if tasks.get(task).is_none() {
                    return Err(invalid(format!("exam {} names an unknown task {task}", exam.id)));
                }
                if exam.tasks[..j].contains(task) {
                    return Err(invalid(format!("exam {} names task {task} twice", exam.id)));
                }
            }
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

/// Grades every task of `exam` on the session's cluster.
pub async fn grade(exam: &Exam, tasks: &TaskCatalog, target: &Target<'_>, session_id: &str) -> ExamResult {
    let graded = futures_util::future::join_all(exam.tasks.iter().filter_map(|id| tasks.get(id)).map(
        |task| async move {
            let checks: Vec<CheckResult> = task.grade(target).await;
            let view = task.view();
            GradedTask {
                task: view.id.clone(),
                title: view.title.clone(),
                weight: view.weight,
                points: crate::tasks::score(&checks),
                checks,
            }
        },
    ))
    .await;
    ExamResult {
        session_id: session_id.to_owned(),
        exam_id: exam.id.clone(),
        score: graded.iter().map(|t| t.points).sum(),
        max_score: graded.iter().map(|t| t.weight).sum(),
        graded_at: chrono::Utc::now(),
        tasks: graded,
    }
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
    fn the_shipped_exams_name_known_tasks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tasks = TaskCatalog::load(root.join("tasks")).unwrap();
        let exams = ExamCatalog::load(&root.join("tasks/exams.yaml"), &tasks).unwrap();
        let free = exams.get("ckad-mock-free").unwrap();
        assert_eq!(
            (free.minutes, free.tasks.len(), free.access),
            (30, 5, Access::Free)
        );
        assert!(exams.list().iter().any(|e| e.access == Access::Pass));
    }

    #[test]
    fn a_bad_exam_file_is_refused_with_the_reason() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tasks = TaskCatalog::load(root.join("tasks")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exams.yaml");
        let cases = [
            (
                "- {id: a, title: A, minutes: 30, access: free, tasks: [nope]}",
                "unknown task nope",
            ),
            (
                "- {id: a, title: A, minutes: 0, access: free, tasks: [pod-with-labels]}",
                "needs minutes",
            ),
            (
                "- {id: a, title: A, minutes: 9, access: gold, tasks: [pod-with-labels]}",
                "unknown variant",
            ),
            (
                "- {id: a, title: A, minutes: 9, access: free, tasks: [pod-with-labels]}\n\
                 - {id: a, title: B, minutes: 9, access: free, tasks: [pod-with-labels]}",
                "defined twice",
            ),
        ];
        for (text, reason) in cases {
            std::fs::write(&file, text).unwrap();
            let error = ExamCatalog::load(&file, &tasks).unwrap_err().to_string();
            assert!(error.contains(reason) && error.contains("exams.yaml"), "{error}");
        }
    }
}
