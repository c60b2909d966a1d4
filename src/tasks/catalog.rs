//! The tasks of a folder, loaded once and kept in memory: what learners see, what the grader
//! checks, and the solutions handed out once earned.

use std::{
    borrow::Cow,
    collections::HashSet,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{
    apply::{Manifest, SolutionStep},
    checks::{Check, CheckResult},
    files::{FileContent, LearnerFiles},
    format::{id_line, key_line, Answer, Difficulty, Domain, TaskFile},
    render,
    vary::{Choice, Vary, Word},
    Target, TaskError,
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

#[derive(Debug, Clone)]
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
    /// What an exam session may change, and the file's text to change it in.
    varied: Option<Varied>,
}

#[derive(Debug, Clone)]
struct Varied {
    vary: Vary,
    text: String,
}

impl Task {
    pub fn id(&self) -> &str {
        &self.view.id
    }

    pub fn view(&self) -> &TaskView {
        &self.view
    }

    /// The task as an exam session has it: the file read again with the values chosen for
    /// `seed` (the session's id) in place of its `vary:` literals, so that its text, setup,
    /// checks, solution and answers all name them; the task itself when it varies nothing.
    /// The same seed always gives the same values.
    pub fn for_session(&self, seed: &str) -> Result<Cow<'_, Task>, TaskError> {
        let Some(varied) = &self.varied else {
            return Ok(Cow::Borrowed(self));
        };
        let choice = varied.vary.choose(seed, self.id());
        let text = varied.vary.apply(&varied.text, &choice);
        Ok(Cow::Owned(task_of(
            &self.file,
            TaskFile::parse(&self.file, &text)?,
        )))
    }

    /// Whether the task has a `vary:` map: its names change from one exam session to another.
    pub fn varies(&self) -> bool {
        self.varied.is_some()
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
        let mut texts: Vec<String> = Vec::with_capacity(files.len());
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
            texts.push(text);
        }
        alternatives_are_nowhere_else(&tasks, &texts)?;
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

/// A task file, and its `vary:` checked: every alternative is a fitting word that the task does
/// not already use, and the file still reads well with each of them in place.
fn load_task(file: &Path, text: &str) -> Result<Task, TaskError> {
    let mut parsed = TaskFile::parse(file, text)?;
    let literals = std::mem::take(&mut parsed.front.vary);
    let mut task = task_of(file, parsed);
    if literals.is_empty() {
        return Ok(task);
    }
    let invalid = |message: String| TaskError::Invalid {
        file: file.to_owned(),
        line: key_line(text, "vary"),
        message,
    };
    if literals.contains_key(&Word(task.id().to_owned())) {
        return Err(invalid(format!("vary.{}: a task's id does not vary", task.id())));
    }
    let vary = Vary::new(literals, text).map_err(invalid)?;
    for choice in vary.every_alternative() {
        TaskFile::parse(file, &vary.apply(text, &choice)).map_err(|error| match error {
            TaskError::Invalid { file, line, message } => TaskError::Invalid {
                file,
                line,
                message: format!("{message} (with vary {})", described(&choice)),
            },
            other => other,
        })?;
    }
    task.varied = Some(Varied {
        vary,
        text: text.to_owned(),
    });
    Ok(task)
}

fn described(choice: &Choice<'_>) -> String {
    let pairs: Vec<String> = choice.iter().map(|(l, a)| format!("{l} → {a}")).collect();
    pairs.join(", ")
}

/// Tasks share a cluster in an exam: a name one task may give a thing must not be one that
/// another task writes or may give, or two tasks could meet in one namespace or object.
fn alternatives_are_nowhere_else(tasks: &[Task], texts: &[String]) -> Result<(), TaskError> {
    let words: Vec<HashSet<&str>> = texts
        .iter()
        .map(|text| super::vary::words(text).collect())
        .collect();
    for (i, task) in tasks.iter().enumerate() {
        let Some(varied) = &task.varied else { continue };
        for name in varied.vary.alternative_names() {
            let elsewhere = tasks.iter().enumerate().find(|(j, other)| {
                *j != i
                    && (words[*j].contains(name)
                        || other
                            .varied
                            .as_ref()
                            .is_some_and(|v| v.vary.alternative_names().any(|n| n == name)))
            });
            if let Some((_, other)) = elsewhere {
                return Err(TaskError::Invalid {
                    file: task.file.clone(),
                    line: key_line(&texts[i], "vary"),
                    message: format!("vary: `{name}` is used by {} too", other.file.display()),
                });
            }
        }
    }
    Ok(())
}

/// A task as its file says, varying nothing.
fn task_of(file: &Path, TaskFile { front, body }: TaskFile) -> Task {
    Task {
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
        varied: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "---
id: sample-task
title: A sample
domain: Application Deployment
difficulty: easy
minutes: 5
vary:
  shop: [mercury, venus, mars]
checks:
  - exists: Namespace shop
solution:
  - run: [kubectl, create, namespace, shop]
---
Create the namespace `shop`.
";

    fn load(text: &str) -> Result<TaskCatalog, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.md"), text).unwrap();
        TaskCatalog::load(dir.path()).map_err(|e| e.to_string())
    }

    #[test]
    fn an_exam_session_gets_its_own_names_everywhere_and_always_the_same() {
        let catalog = load(TASK).unwrap();
        let task = catalog.get("sample-task").unwrap();
        assert!(task.varies());
        assert!(task.solution().script.contains("namespace shop"));
        let names: HashSet<String> = (0..30)
            .map(|i| {
                let seed = format!("session-{i}");
                let varied = task.for_session(&seed).unwrap();
                let again = task.for_session(&seed).unwrap();
                assert_eq!(varied.view(), again.view());
                assert_eq!(varied.id(), "sample-task");
                let name = ["mercury", "venus", "mars"]
                    .into_iter()
                    .find(|n| varied.view().body_html.contains(&format!("<code>{n}</code>")))
                    .unwrap();
                assert_eq!(
                    varied.solution().script,
                    format!("kubectl create namespace {name}\n")
                );
                assert!(format!("{:?}", varied.checks()).contains(&format!("\"{name}\"")));
                name.to_owned()
            })
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_bad_vary_stops_the_load_naming_the_file_and_line() {
        for (from, to, expected) in [
            (
                "[mercury, venus, mars]",
                "[mercury, Venus]",
                "x.md:7: vary.shop: `Venus` is not a name",
            ),
            (
                "  shop: [mercury, venus, mars]",
                "  shop: [mercury]\n  5: [90]",
                "x.md:6: minutes is between 1 and 60 (with vary 5 → 90, shop → mercury)",
            ),
            (
                "  shop: [mercury, venus, mars]",
                "  sample-task: [other-task]",
                "x.md:7: vary.sample-task: a task's id does not vary",
            ),
        ] {
            let error = load(&TASK.replacen(from, to, 1)).unwrap_err();
            assert!(error.contains(expected), "{from} -> {to}: {error}");
        }
    }
}
