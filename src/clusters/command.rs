//! Running the providers' tools: always an argument vector, never a shell string; stderr kept for
//! the error; a time limit; the child killed if the caller gives up, and killed by the kernel if
//! the platform itself dies (a create must not go on building after a `kill -9`).

use std::{ffi::OsStr, path::Path, process::Stdio, time::Duration};

use tokio::process::Command;

use super::ClusterError;

/// Runs `program args...` with `envs`, returning its stdout; a non-zero exit is an error carrying
/// the end of its stderr.
pub async fn run<I, S>(
    program: &Path,
    args: I,
    envs: &[(&str, &OsStr)],
    limit: Duration,
) -> Result<String, ClusterError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let name = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // The signal follows the spawning thread; tokio's worker threads live as long as the runtime.
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = command.spawn().map_err(|source| ClusterError::Spawn {
        program: name.clone(),
        source,
    })?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| ClusterError::Timeout {
            what: name.clone(),
            limit,
        })??;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The last lines say what went wrong; the whole text can be pages of progress.
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    Err(ClusterError::Command {
        program: name,
        status: output.status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn arguments_reach_the_program_verbatim() {
        let out = run(
            Path::new("/bin/echo"),
            ["a;b", "$(id)", "c d"],
            &[],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(out, "a;b $(id) c d\n");
    }

    #[tokio::test]
    async fn a_failure_carries_the_end_of_stderr() {
        let err = run(
            Path::new("/bin/ls"),
            ["/no/such/dir"],
            &[],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("ls failed (exit status: 2)"), "{text}");
        assert!(text.contains("/no/such/dir"), "{text}");
    }

    #[tokio::test]
    async fn a_slow_program_is_stopped_at_its_limit() {
        let err = run(Path::new("/bin/sleep"), ["5"], &[], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let err = run(Path::new("/no/kwokctl"), [""; 0], &[], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("cannot run kwokctl"), "{err}");
    }
}
