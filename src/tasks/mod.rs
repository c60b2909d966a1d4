//! CKAD practice tasks: Markdown files with YAML front matter, loaded and validated once at
//! start-up ([`TaskCatalog::load`]), and graded from outside the learner's reach by declarative
//! checks evaluated through kube-rs ([`Task::grade`]) and scored by their points ([`score`]).
//!
//! What a learner may see is [`TaskView`] (never the checks or the solution); the reference
//! solution is a separate [`TaskSolution`], for the caller to hand out once it is earned.
//! The format is described for authors in `docs/tasks.md`.

mod apply;
mod behaviour;
mod catalog;
mod checks;
mod command;
mod container;
mod expect;
mod files;
mod format;
mod kinds;
mod local_copy;
mod matching;
mod path;
mod reading;
mod render;
mod service;
mod text;
mod vary;

use std::path::PathBuf;

pub use apply::SolutionRunner;
pub use catalog::{Task, TaskCatalog, TaskSolution, TaskView};
pub use checks::{score, Check, CheckResult};
pub use files::{FileContent, LearnerFiles, LearnerPath, COURSE_DIR, LEARNER_HOME, READ_LIMIT};
pub use format::{Answer, Difficulty, Domain};

/// Where the terminal image carries `tasks/charts`; task texts and solutions name charts there.
pub const CHARTS_IN_TERMINAL: &str = "/opt/charts";

/// What a task is graded against: the session's cluster and the learner's files in its terminal.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub client: &'a kube::Client,
    pub files: &'a dyn LearnerFiles,
    /// Whether the cluster runs containers (`kind`, not `lite`): then a task's `behaviour`
    /// checks run too.
    pub runs_containers: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A task file is wrong; `line` is the file's own line (1-based).
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A manifest of a task's setup or solution could not be applied.
    #[error("applying {object}: {message}")]
    Apply { object: String, message: String },
    /// A file could not be written into the learner's terminal.
    #[error("writing {path}: {message}")]
    File { path: String, message: String },
    /// A command of a reference solution failed.
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
}
