//! A task file: YAML front matter between two `---` lines, then the Markdown the learner reads.
//! Every mistake is reported with the file's own line number.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    apply::{Manifest, SolutionStep},
    checks::Check,
    files::FileContent,
    vary::VaryMap,
    TaskError,
};

/// The five domains of the CKAD curriculum (v1.35), by their names in the curriculum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Domain {
    #[serde(rename = "Application Design and Build")]
    DesignAndBuild,
    #[serde(rename = "Application Deployment")]
    Deployment,
    #[serde(rename = "Application Observability and Maintenance")]
    ObservabilityAndMaintenance,
    #[serde(rename = "Application Environment, Configuration and Security")]
    EnvironmentConfigurationAndSecurity,
    #[serde(rename = "Services and Networking")]
    ServicesAndNetworking,
}

impl Domain {
    pub const ALL: [Domain; 5] = [
        Domain::DesignAndBuild,
        Domain::Deployment,
        Domain::ObservabilityAndMaintenance,
        Domain::EnvironmentConfigurationAndSecurity,
        Domain::ServicesAndNetworking,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Domain::DesignAndBuild => "Application Design and Build",
            Domain::Deployment => "Application Deployment",
            Domain::ObservabilityAndMaintenance => "Application Observability and Maintenance",
            Domain::EnvironmentConfigurationAndSecurity => {
                "Application Environment, Configuration and Security"
            }
            Domain::ServicesAndNetworking => "Services and Networking",
        }
    }

    /// The domain's share of the exam, in percent.
    pub fn curriculum_percent(self) -> u32 {
        match self {
            Domain::DesignAndBuild | Domain::Deployment | Domain::ServicesAndNetworking => 20,
            Domain::ObservabilityAndMaintenance => 15,
            Domain::EnvironmentConfigurationAndSecurity => 25,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FrontMatter {
    pub id: TaskId,
    pub title: String,
    pub domain: Domain,
    pub difficulty: Difficulty,
    /// How long a prepared learner needs.
    pub minutes: u32,
    /// Literals an exam session replaces by one of their alternatives (see `super::vary`).
    #[serde(default)]
    pub vary: VaryMap,
    #[serde(default)]
    pub setup: Vec<Manifest>,
    /// Files written into the learner's terminal at setup.
    #[serde(default)]
    pub files: Vec<FileContent>,
    /// What the learner must achieve; each check is worth its points.
    pub checks: Vec<Check>,
    /// What must stay true ("left as set up", "not allowed"): worth nothing, and a failed guard
    /// makes the task score nothing.
    #[serde(default)]
    pub guards: Vec<Check>,
    /// What running containers must show (logs, exec, HTTP, restarts, events): checked only on
    /// clusters that run them, worth nothing, and a failure scores 0, as a guard's does.
    #[serde(default)]
    pub behaviour: Vec<Check>,
    #[serde(default)]
    pub hints: Vec<String>,
    pub solution: Vec<SolutionStep>,
    /// Other answers that must pass, for the proof.
    #[serde(default)]
    pub accept: Vec<Answer>,
    /// Answers that must not pass, for the proof, with the points they earn.
    #[serde(default)]
    pub reject: Vec<Answer>,
}

/// One answer to a task, as a learner might give it: steps applied after the setup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// What makes it different, in a few words (`args instead of command`, `wrong namespace`).
    pub name: String,
    pub(super) steps: Vec<SolutionStep>,
    /// For a rejected answer, the points it earns (0 unless stated).
    pub points: Option<u32>,
}

impl FrontMatter {
    /// The task's points in an exam: the sum of its checks' points.
    pub fn weight(&self) -> u32 {
        self.checks.iter().map(Check::points).sum()
    }
}

/// A task's id: lowercase letters, digits and dashes, as it appears in URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TaskId(pub String);

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::text::parse(deserializer)
    }
}

impl TryFrom<&str> for TaskId {
    type Error = String;

    fn try_from(id: &str) -> Result<Self, String> {
        let valid = (3..=60).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(format!(
                "`{id}` must be 3-60 lowercase letters, digits and inner dashes"
            ))
        }
    }
}

/// A parsed task file: its front matter and its Markdown body.
#[derive(Debug)]
pub(super) struct TaskFile {
    pub front: FrontMatter,
    pub body: String,
}

impl TaskFile {
    pub fn parse(file: &Path, text: &str) -> Result<Self, TaskError> {
        let invalid = |line: usize, message: String| TaskError::Invalid {
            file: file.to_owned(),
            line,
            message,
        };
        let mut lines = text.lines();
        if lines.next().map(str::trim_end) != Some("---") {
            return Err(invalid(
                1,
                "a task file starts with `---` and its front matter".into(),
            ));
        }
        let Some(closing) = lines.position(|line| line.trim_end() == "---") else {
            return Err(invalid(
                1,
                "the front matter is never closed by a `---` line".into(),
            ));
        };
        // The front matter is the file's lines 2..=closing+1.
        let front_text: String = text
            .lines()
            .skip(1)
            .take(closing)
            .map(|l| format!("{l}\n"))
            .collect();
        let body: String = text.lines().skip(closing + 2).map(|l| format!("{l}\n")).collect();
        let front: FrontMatter = serde_yaml::from_str(&front_text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line() + 1);
            invalid(line, without_position(&e.to_string()))
        })?;
        let line_of = |key: &str| {
            front_text
                .lines()
                .position(|l| l.starts_with(&format!("{key}:")))
                .map_or(1, |i| i + 2)
        };
        let weight = front.weight();
        let rules = [
            ("title", front.title.trim().is_empty(), "a title is needed"),
            (
                "checks",
                !(1..=20).contains(&weight),
                "the checks' points add up to 1-20",
            ),
            (
                "guards",
                front.guards.iter().any(|g| g.stated_points().is_some()),
                "a guard carries no points",
            ),
            (
                "behaviour",
                front.behaviour.iter().any(|g| g.stated_points().is_some()),
                "a behaviour check carries no points",
            ),
            (
                "checks",
                front.checks.iter().any(Check::needs_containers),
                "logs, exec, http, restarts and event checks go under `behaviour:` (lite clusters run no containers)",
            ),
            (
                "guards",
                front.guards.iter().any(Check::needs_containers),
                "logs, exec, http, restarts and event checks go under `behaviour:` (lite clusters run no containers)",
            ),
            (
                "accept",
                front.accept.iter().any(|a| a.points.is_some()),
                "an accepted answer earns every point: give `points` to rejected answers only",
            ),
            (
                "reject",
                front.reject.iter().any(|a| a.points.unwrap_or(0) >= weight),
                "a rejected answer earns fewer points than the task is worth",
            ),
            (
                "minutes",
                !(1..=60).contains(&front.minutes),
                "minutes is between 1 and 60",
            ),
            (
                "checks",
                front.checks.is_empty(),
                "a task needs at least one check",
            ),
            (
                "solution",
                front.solution.is_empty(),
                "a task needs a reference solution",
            ),
        ];
        if let Some((key, _, message)) = rules.into_iter().find(|(_, broken, _)| *broken) {
            return Err(invalid(line_of(key), message.into()));
        }
        if body.trim().is_empty() {
            return Err(invalid(
                closing + 2,
                "the task's text is missing after the front matter".into(),
            ));
        }
        Ok(Self { front, body })
    }
}

/// serde_yaml's message without its own " at line L column C", which counts from the front
/// matter rather than from the file.
fn without_position(message: &str) -> String {
    let pattern = regex::Regex::new(r" at line \d+ column \d+").expect("a valid pattern");
    pattern.replace_all(message, "").into_owned()
}

/// The line of the file on which `id: <id>` is written.
pub(super) fn id_line(text: &str) -> usize {
    key_line(text, "id")
}

/// The line of the file on which the front matter's `key` is written.
pub(super) fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(&format!("{key}:")))
        .map_or(1, |i| i + 1)
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
checks:
  - exists: Namespace shop
solution:
  - run: [kubectl, create, namespace, shop]
---
Create the namespace `shop`.
";

    fn parse(text: &str) -> Result<TaskFile, String> {
        TaskFile::parse(Path::new("tasks/x.md"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_task_file_holds_front_matter_and_a_body() {
        let task = parse(TASK).unwrap();
        assert_eq!(task.front.id.0, "sample-task");
        assert_eq!(task.front.domain, Domain::Deployment);
        assert_eq!(task.body, "Create the namespace `shop`.\n");
    }

    #[test]
    fn mistakes_are_reported_with_the_files_line() {
        let guarded = "  - exists: Namespace shop\nguards:\n  - { absent: Namespace other, points: 2 }\n";
        let rejected = "solution:\n  - run: [kubectl, create, namespace, shop]\nreject:\n  - name: all of it\n    points: 1\n    steps: [{ run: [kubectl, create, namespace, shop] }]\n";
        for (from, to, expected) in [
            (
                "  - exists: Namespace shop\n",
                guarded,
                "tasks/x.md:9: a guard carries no points",
            ),
            (
                "  - exists: Namespace shop\n",
                "  - { exists: Namespace shop, points: 20 }\n  - exists: Namespace other\n",
                "tasks/x.md:7: the checks' points add up to 1-20",
            ),
            (
                "solution:\n  - run: [kubectl, create, namespace, shop]\n",
                rejected,
                "tasks/x.md:11: a rejected answer earns fewer points",
            ),
            (
                "  - exists: Namespace shop\n",
                "  - logs: { of: Pod shop/web, contains: started }\n",
                "tasks/x.md:7: logs, exec, http, restarts and event checks go under `behaviour:`",
            ),
            (
                "solution:",
                "files: [{ path: /etc/motd, content: hi }]\nsolution:",
                "tasks/x.md:9: files[0].path: `/etc/motd` is not a file under /home/ckad/",
            ),
            (
                "domain: Application Deployment",
                "domain: Deployment",
                "tasks/x.md:4: domain: unknown variant `Deployment`",
            ),
            (
                "  - exists: Namespace shop",
                "  - exists: Namespace Shop",
                "tasks/x.md:8: checks[0].exists: `Shop` is not a valid name",
            ),
            (
                "minutes: 5",
                "minutes: 5\ncolour: blue",
                "tasks/x.md:7: unknown field `colour`",
            ),
            (
                "id: sample-task",
                "id: Sample",
                "tasks/x.md:2: id: `Sample` must be",
            ),
            (
                "---\nCreate",
                "Create",
                "tasks/x.md:1: the front matter is never closed",
            ),
            (
                "solution:\n  - run: [kubectl, create, namespace, shop]\n",
                "solution: []\n",
                "tasks/x.md:9: a task needs a reference solution",
            ),
        ] {
            let error = parse(&TASK.replacen(from, to, 1)).unwrap_err();
            assert!(error.starts_with(expected), "{from} -> {to}: {error}");
        }
    }
}
