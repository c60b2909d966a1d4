//! Files in the learner's terminal: those a task places at setup (a broken manifest, a
//! Dockerfile, a values file) and those it checks (an answer written to `/opt/course/...`, a
//! manifest fixed in place). The server reads and writes them through [`LearnerFiles`], whose
//! implementation lives with the terminals; the learner cannot reach the grader through them.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{expect::ValueTest, text};

/// The learner's home in the terminal.
pub const LEARNER_HOME: &str = "/home/ckad";
/// Where exam-style tasks ask for answers, writable by the learner.
pub const COURSE_DIR: &str = "/opt/course";
/// Files larger than this are not read whole; a check judges what was read.
pub const READ_LIMIT: usize = 256 * 1024;
/// A placed file's content travels as one argument.
const WRITE_LIMIT: usize = 64 * 1024;

/// The files of one session's terminal.
#[async_trait::async_trait]
pub trait LearnerFiles: Send + Sync {
    /// At most `limit` bytes of the file at `path`; `None` when nothing is there.
    async fn read(&self, path: &LearnerPath, limit: usize) -> Result<Option<Vec<u8>>, String>;

    /// Writes `content` to `path` as the learner's own file, making its folders.
    async fn write(&self, path: &LearnerPath, content: &str) -> Result<(), String>;
}

/// An absolute path in the learner's home or under `/opt/course`, of plain names only (no `..`,
/// no spaces or quotes), checked when the task loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerPath(String);

impl LearnerPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for LearnerPath {
    type Error = String;

    fn try_from(path: &str) -> Result<Self, String> {
        let inside = [LEARNER_HOME, COURSE_DIR].iter().any(|root| {
            path.strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
        });
        let plain = path.split('/').skip(1).all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
        if inside && plain && path.len() <= 200 {
            Ok(Self(path.to_owned()))
        } else {
            Err(format!(
                "`{path}` is not a file under {LEARNER_HOME}/ or {COURSE_DIR}/ named with letters, digits, `.`, `_` and `-`"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for LearnerPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        text::parse(deserializer)
    }
}

impl fmt::Display for LearnerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file written into the learner's terminal: by a task's setup, or by an answer in the proof.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "FileContentFile")]
pub struct FileContent {
    pub path: LearnerPath,
    pub content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileContentFile {
    path: LearnerPath,
    content: String,
}

impl TryFrom<FileContentFile> for FileContent {
    type Error = String;

    fn try_from(file: FileContentFile) -> Result<Self, String> {
        if file.content.len() > WRITE_LIMIT || file.content.contains('\0') {
            return Err(format!(
                "{}: a file's content is text of at most {} KiB",
                file.path,
                WRITE_LIMIT / 1024
            ));
        }
        Ok(Self {
            path: file.path,
            content: file.content,
        })
    }
}

impl FileContent {
    pub async fn write(&self, files: &dyn LearnerFiles) -> Result<(), super::TaskError> {
        files
            .write(&self.path, &self.content)
            .await
            .map_err(|message| super::TaskError::File {
                path: self.path.to_string(),
                message,
            })
    }

    /// As a learner would write it in a shell.
    pub fn script(&self) -> String {
        let folder = self.path.as_str().rsplit_once('/').map_or("/", |(dir, _)| dir);
        let mut content = self.content.clone();
        if !content.ends_with('\n') {
            content.push('\n');
        }
        format!("mkdir -p {folder}\ncat > {} <<'EOF'\n{content}EOF\n", self.path)
    }
}

/// A file the learner writes: it exists, holds a text, matches a pattern, or (read as YAML)
/// holds a value at a path.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "FileCheckFile")]
pub struct FileCheck {
    path: LearnerPath,
    expect: FileExpectation,
}

#[derive(Debug, Clone)]
enum FileExpectation {
    Exists,
    Contains(String),
    /// The pattern as written, and anchored to the whole file.
    Matches(String, regex::Regex),
    Yaml(ValueTest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheckFile {
    path: LearnerPath,
    contains: Option<String>,
    matches: Option<String>,
    yaml: Option<ValueTest>,
}

impl TryFrom<FileCheckFile> for FileCheck {
    type Error = String;

    fn try_from(file: FileCheckFile) -> Result<Self, String> {
        let expect = match (file.contains, file.matches, file.yaml) {
            (None, None, None) => FileExpectation::Exists,
            (Some(text), None, None) => FileExpectation::Contains(text),
            (None, Some(pattern), None) => {
                let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("`matches` is not a regular expression: {e}"))?;
                FileExpectation::Matches(pattern, regex)
            }
            (None, None, Some(test)) => FileExpectation::Yaml(test),
            _ => return Err("a file check takes at most one of `contains`, `matches`, `yaml`".into()),
        };
        Ok(Self {
            path: file.path,
            expect,
        })
    }
}

impl FileCheck {
    pub async fn evaluate(&self, files: &dyn LearnerFiles) -> Result<(), String> {
        let Some(bytes) = files.read(&self.path, READ_LIMIT).await? else {
            return Err(format!("{} does not exist", self.path));
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(format!("{} is not text", self.path));
        };
        self.judge(&text)
    }

    fn judge(&self, text: &str) -> Result<(), String> {
        let found = || format!("{} holds {}", self.path, excerpt(text));
        match &self.expect {
            FileExpectation::Exists => Ok(()),
            FileExpectation::Contains(wanted) if text.contains(wanted.as_str()) => Ok(()),
            FileExpectation::Matches(_, pattern) if pattern.is_match(text) => Ok(()),
            FileExpectation::Contains(_) | FileExpectation::Matches(..) => Err(found()),
            FileExpectation::Yaml(test) => {
                let mut first_failure = None;
                for document in serde_yaml::Deserializer::from_str(text) {
                    let value = Value::deserialize(document)
                        .map_err(|e| format!("{} is not valid YAML: {e}", self.path))?;
                    match test.judge(&value) {
                        Ok(()) => return Ok(()),
                        Err(why) => {
                            first_failure.get_or_insert_with(|| format!("in {}, {why}", self.path));
                        }
                    }
                }
                Err(first_failure.unwrap_or_else(|| format!("{} holds no YAML document", self.path)))
            }
        }
    }
}

/// The start of a file, on one line, to show what was found.
fn excerpt(text: &str) -> String {
    const SHOWN: usize = 60;
    let flat = text.trim().replace('\n', "⏎");
    if flat.is_empty() {
        return "nothing".into();
    }
    match flat.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("\"{}…\"", &flat[..cut]),
        None => format!("\"{flat}\""),
    }
}

impl fmt::Display for FileCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expect {
            FileExpectation::Exists => write!(f, "{} exists", self.path),
            FileExpectation::Contains(text) => write!(f, "{} contains {text:?}", self.path),
            FileExpectation::Matches(pattern, _) => write!(f, "{} matches /{pattern}/", self.path),
            FileExpectation::Yaml(test) => write!(f, "{}: {test}", self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<FileCheck, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn paths_stay_in_the_home_or_the_course_folder() {
        for good in ["/home/ckad/pdb.yaml", "/opt/course/3/answer.txt"] {
            assert!(LearnerPath::try_from(good).is_ok(), "{good}");
        }
        for bad in [
            "/etc/passwd",
            "/home/ckad/",
            "/home/ckad/../root/x",
            "/home/ckadx/y",
            "/opt/course/a b",
            "/opt/course/$(id)",
            "home/ckad/x",
        ] {
            assert!(LearnerPath::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_checks_judge_text_and_yaml_and_say_what_they_found() {
        let judged = |yaml: &str, text: &str| check(yaml).unwrap().judge(text);
        assert_eq!(judged("{ path: /opt/course/1/a }", ""), Ok(()));
        assert_eq!(
            judged(
                "{ path: /opt/course/1/a, matches: '\\s*FailedScheduling\\s*' }",
                "FailedScheduling\n"
            ),
            Ok(())
        );
        assert_eq!(
            judged(
                "{ path: /opt/course/1/a, matches: 'FailedScheduling\\s*' }",
                "Pending\n"
            ),
            Err("/opt/course/1/a holds \"Pending\"".into())
        );
        assert_eq!(
            judged("{ path: /opt/course/1/a, contains: web }", "api\nweb\n"),
            Ok(())
        );
        let yaml = "{ path: /home/ckad/pdb.yaml, yaml: { path: apiVersion, equals: policy/v1 } }";
        assert_eq!(
            judged(yaml, "apiVersion: policy/v1\nkind: PodDisruptionBudget\n"),
            Ok(())
        );
        assert_eq!(
            judged(yaml, "kind: Namespace\n---\napiVersion: policy/v1\n"),
            Ok(())
        );
        assert_eq!(
            judged(yaml, "apiVersion: policy/v1beta1\n"),
            Err("in /home/ckad/pdb.yaml, apiVersion is \"policy/v1beta1\"".into())
        );
        assert!(judged(yaml, "a: [").unwrap_err().contains("is not valid YAML"));
        assert!(check("{ path: /opt/course/1/a, contains: x, matches: y }")
            .unwrap_err()
            .contains("at most one of"));
    }

    #[test]
    fn placed_files_show_as_a_shell_would_write_them() {
        let file: FileContent =
            serde_yaml::from_str("{ path: /home/ckad/app/Dockerfile, content: 'FROM busybox' }").unwrap();
        assert_eq!(
            file.script(),
            "mkdir -p /home/ckad/app\ncat > /home/ckad/app/Dockerfile <<'EOF'\nFROM busybox\nEOF\n"
        );
    }
}
