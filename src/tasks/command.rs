//! A container's command line compared by what it runs, not by how it is spelled: `command` then
//! `args`, in order; a shell wrapper (`sh -c '...'`, `/bin/sh -c "..."`) unwrapped when its
//! script is one plain command; programs named by path (`/bin/sleep`) named by their file name.

use std::fmt;

use serde_json::Value;

/// Characters that make a script more than one plain command.
const SHELL_SYNTAX: &[char] = &[
    ';', '&', '|', '<', '>', '$', '`', '(', ')', '{', '}', '*', '?', '[', ']', '~', '#', '\n',
];
const SHELLS: &[&str] = &["sh", "bash", "ash", "dash"];

/// The words a container runs, normalised; a shell script that cannot be unwrapped stays as
/// `sh -c <script>` with its spacing tidied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine(Vec<String>);

impl CommandLine {
    /// What a container runs: its `command`, then its `args`. A container that states neither
    /// runs its image's default, which has no command line to compare (`None`). With `args`
    /// alone, the image is taken to have no entrypoint (as busybox), so the args are the command.
    pub fn of_container(container: &Value) -> Option<Self> {
        let words = |key: &str| -> Vec<String> {
            container
                .get(key)
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut argv = words("command");
        argv.extend(words("args"));
        (!argv.is_empty()).then(|| Self::normalised(argv))
    }

    /// A command line as an author writes it, in shell syntax: `sleep 3600`,
    /// `sh -c 'date; echo done'`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match shlex::split(text) {
            Some(argv) if !argv.is_empty() => Ok(Self::normalised(argv)),
            _ => Err(format!("`{text}` is not a command line (check its quotes)")),
        }
    }

    fn normalised(mut argv: Vec<String>) -> Self {
        if let Some(program) = argv.first_mut() {
            if let Some((_, name)) = program.rsplit_once('/') {
                *program = name.to_owned();
            }
        }
        let wrapped = argv.len() == 3 && SHELLS.contains(&argv[0].as_str()) && argv[1] == "-c";
        if !wrapped {
            return Self(argv);
        }
        let script = argv[2].trim();
        if !script.contains(SHELL_SYNTAX) {
            if let Some(words) = shlex::split(script).filter(|w| !w.is_empty()) {
                return Self::normalised(words);
            }
        }
        Self(vec!["sh".into(), "-c".into(), tidy(script)])
    }
}

/// One space between words and after each `;`, none before it, no trailing `;`.
fn tidy(script: &str) -> String {
    let spaced = script
        .split(';')
        .map(|part| part.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>();
    spaced.join("; ")
}

impl fmt::Display for CommandLine {
    /// As a shell line, quoted where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = shlex::try_join(self.0.iter().map(String::as_str)).unwrap_or_else(|_| self.0.join(" "));
        f.write_str(&quoted)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn runs(container: Value) -> String {
        CommandLine::of_container(&container).unwrap().to_string()
    }

    #[test]
    fn command_and_args_join_in_order_and_shell_wrappers_unwrap() {
        let sleep = CommandLine::parse("sleep 3600").unwrap();
        for container in [
            json!({ "command": ["sleep", "3600"] }),
            json!({ "args": ["sleep", "3600"] }),
            json!({ "command": ["sleep"], "args": ["3600"] }),
            json!({ "command": ["/bin/sleep", "3600"] }),
            json!({ "command": ["sh", "-c", "sleep 3600"] }),
            json!({ "command": ["/bin/sh", "-c"], "args": ["  sleep   3600 "] }),
            json!({ "command": ["sh", "-c", "sleep '3600'"] }),
        ] {
            assert_eq!(
                CommandLine::of_container(&container),
                Some(sleep.clone()),
                "{container}"
            );
        }
        for other in [
            json!({ "command": ["3600", "sleep"] }),
            json!({ "command": ["sleep", "36", "00"] }),
            json!({ "command": ["sleep"], "args": ["infinity"] }),
        ] {
            assert_ne!(CommandLine::of_container(&other), Some(sleep.clone()), "{other}");
        }
        assert_eq!(CommandLine::of_container(&json!({ "image": "nginx" })), None);
    }

    #[test]
    fn scripts_compare_with_their_spacing_tidied() {
        let report = CommandLine::parse("sh -c 'date; echo report done'").unwrap();
        for script in [
            "date;echo report done",
            " date ;  echo report done; ",
            "date; echo report done",
        ] {
            let container = json!({ "command": ["/bin/sh", "-c", script] });
            assert_eq!(
                CommandLine::of_container(&container),
                Some(report.clone()),
                "{script}"
            );
        }
        assert_eq!(
            runs(json!({ "command": ["sh", "-c"], "args": ["echo welcome > /work/index.html"] })),
            "sh -c 'echo welcome > /work/index.html'"
        );
        assert_ne!(
            CommandLine::parse("sh -c 'echo report done; date'").unwrap(),
            report
        );
        assert!(CommandLine::parse("sh -c 'unclosed").is_err());
    }
}
