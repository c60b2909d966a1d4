//! The tasks of a folder, loaded once and kept in memory: what learners see, what the grader
//! checks, and the solutions handed out once earned.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    apply::{Manifest, SolutionStep},
    checks::{Check, CheckResult},
    files::{FileContent, LearnerFiles},
    format::{id_line, Answer, Difficulty, Domain, TaskFile},
    render, Target, TaskError,
};

/// What a learner may see of a task before solving it: no checks, no solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: String,
    pub title: String,
    pub domain: Domain,
    pub difficulty: Difficulty,
    /// Points in an exam: the sum of its checks' points.
    pub weight: u32,
    /// How long a prepared learner needs.
    pub minutes: u32,
    /// The task's text, rendered and sanitized.
    pub body_html: String,
    /// Hints in the order to reveal them, each rendered and sanitized.
    pub hints_html: Vec<String>,
}

/// A task's reference solution, for a learner who has earned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSolution {
    pub id: String,
    /// Commands to type into the terminal, in order.
    pub script: String,
    /// The same, rendered as a code block.
    pub html: String,
}

#[derive(Debug)]
pub struct Task {
    view: TaskView,
    setup: Vec<Manifest>,
    files: Vec<FileContent>,
    checks: Vec<Check>,
    guards: Vec<Check>,
    behaviour: Vec<Check>,
    solution: Vec<SolutionStep>,
    accept: Vec<Answer>,
    reject: Vec<Answer>,
    file: PathBuf,
}

impl Task {
    pub fn id(&self) -> &str {
        &self.view.id
    }

    pub fn view(&self) -> &TaskView {
        &self.view
    }

    /// The file the task was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Answers besides the reference solution that must pass (for the proof).
    pub fn accepted(&self) -> &[Answer] {
        &self.accept
    }

    /// Answers that must not pass, each with the points it earns (for the proof).
    pub fn rejected(&self) -> &[Answer] {
        &self.reject
    }

    pub fn solution(&self) -> TaskSolution {
        let script: String = self.solution.iter().map(SolutionStep::script).collect();
        let html = render::markdown(&format!("```sh\n{script}```\n"));
        TaskSolution {
            id: self.view.id.clone(),
            script,
            html,
        }
    }

    pub(super) fn solution_steps(&self) -> &[SolutionStep] {
        &self.solution
    }

    /// Whether the task places, checks or writes files in the learner's terminal: it needs one.
    pub fn uses_files(&self) -> bool {
        let writes = |steps: &[SolutionStep]| steps.iter().any(|s| matches!(s, SolutionStep::Write(_)));
        !self.files.is_empty()
            || self.checks.iter().chain(&self.guards).any(Check::reads_files)
            || writes(&self.solution)
            || self.accept.iter().chain(&self.reject).any(|a| writes(&a.steps))
    }

    /// Applies the task's setup to a fresh cluster, in the order written, before the learner starts.
    pub async fn prepare(&self, client: &kube::Client) -> Result<(), TaskError> {
        for manifest in &self.setup {
            manifest.apply(client).await?;
        }
        Ok(())
    }

    /// Writes the task's files into the learner's terminal, once it exists.
    pub async fn place_files(&self, files: &dyn LearnerFiles) -> Result<(), TaskError> {
        for file in &self.files {
            file.write(files).await?;
        }
        Ok(())
    }

    /// Runs every check and guard at once against the cluster and the learner's files, and the
    /// behaviour checks (as guards) where the cluster runs containers; one outcome each, checks
    /// first, in the task's order. [`super::score`] turns them into points.
    pub async fn grade(&self, target: &Target<'_>) -> Vec<CheckResult> {
        let checks = self.checks.iter().map(|check| check.run(target, false));
        let behaviour = self.behaviour.iter().filter(|_| target.runs_containers);
        let guards = self
            .guards
            .iter()
            .chain(behaviour)
            .map(|guard| guard.run(target, true));
        futures_util::future::join_all(checks.chain(guards)).await
    }
}

#[derive(Debug)]
pub struct TaskCatalog {
    tasks: Vec<Task>,
    dir: PathBuf,
}

impl TaskCatalog {
    /// Reads every `*.md` file of `dir` (in file-name order); the first bad file stops the load
    /// with its name and line.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, TaskError> {
        let dir = dir.as_ref();
        let read_error = |source| TaskError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        files.retain(|path| path.extension().is_some_and(|e| e == "md") && path.is_file());
        files.sort();
        let mut tasks: Vec<Task> = Vec::with_capacity(files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| TaskError::Read {
                path: file.clone(),
                source,
            })?;
            let task = load_task(&file, &text)?;
            if let Some(first) = tasks.iter().find(|t| t.id() == task.id()) {
                return Err(TaskError::Invalid {
                    line: id_line(&text),
                    message: format!("id `{}` is already used by {}", task.id(), first.file.display()),
                    file,
                });
            }
            tasks.push(task);
        }
        Ok(Self {
            tasks,
            dir: dir.to_owned(),
        })
    }

    pub fn list(&self) -> &[Task] {
        &self.tasks
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| task.id() == id)
    }

    /// The Helm charts tasks use; the terminal image carries them at [`super::CHARTS_IN_TERMINAL`].
    pub fn charts_dir(&self) -> PathBuf {
        self.dir.join("charts")
    }
}

fn load_task(file: &Path, text: &str) -> Result<Task, TaskError> {
    let TaskFile { front, body } = TaskFile::parse(file, text)?;
    Ok(Task {
        view: TaskView {
            weight: front.weight(),
            id: front.id.0,
            title: front.title,
            domain: front.domain,
            difficulty: front.difficulty,
            minutes: front.minutes,
            body_html: render::markdown(&body),
            hints_html: front.hints.iter().map(|hint| render::markdown(hint)).collect(),
        },
        setup: front.setup,
        files: front.files,
        checks: front.checks,
        guards: front.guards,
        behaviour: front.behaviour,
        solution: front.solution,
        accept: front.accept,
        reject: front.reject,
        file: file.to_owned(),
    })
}
