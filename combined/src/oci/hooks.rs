//! An OCI config's hooks (runtime-spec `config.md`, "POSIX-platform Hooks"; `runtime.md`,
//! "Lifecycle"): programs the runtime runs at fixed points of a container's life, each given the
//! container's state as JSON on its standard input. `prestart` and `createRuntime` run in the
//! runtime's namespaces once the container's exist and before it is set up; `poststart` after
//! `start`; `poststop` after `delete`. A failing `prestart` or `createRuntime` hook stops the
//! container's creation; a failing `poststart` or `poststop` hook is a warning, and the life goes on,
//! as the spec says.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: cannot run it: {source}")]
    Spawn {
        kind: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook {path} failed ({status}){stderr}")]
    Failed {
        kind: &'static str,
        path: String,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook {path} did not finish within its timeout of {seconds} s")]
    Timeout {
        kind: &'static str,
        path: String,
        seconds: i64,
    },
}

// ANCHOR: run
/// Runs `hooks` one after another, each with `state` on its standard input, stopping at the first
/// that fails.
pub fn run(kind: &'static str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), HookError> {
    let input = state.to_string();
    for hook in hooks {
        run_one(kind, hook, &input)?;
    }
    Ok(())
}
// ANCHOR_END: run

fn run_one(kind: &'static str, hook: &Hook, input: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let args = hook.args().clone().unwrap_or_default();
    let mut command = Command::new(hook.path());
    if let Some((first, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        command.arg0(first).args(rest);
    }
    command
        .env_clear()
        .envs(hook.env().iter().flatten().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is no failure (EPIPE).
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|s| *s > 0)
        .map(|s| Instant::now() + Duration::from_secs(s as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => return Err(HookError::Spawn { kind, path, source }),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            let seconds = hook.timeout().unwrap_or_default();
            return Err(HookError::Timeout { kind, path, seconds });
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let stderr = match stderr.trim() {
        "" => String::new(),
        text => format!(": {}", text.lines().next().unwrap_or_default()),
    };
    Err(HookError::Failed {
        kind,
        path,
        status: status.to_string(),
        stderr,
    })
}

/// The hooks of one kind in a config, or none.
pub fn of(hooks: &Option<Vec<Hook>>) -> &[Hook] {
    hooks.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        let mut hook = Hook::default();
        hook.set_path("/bin/sh".into());
        hook.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        hook.set_timeout(timeout);
        hook
    }

    #[test]
    fn a_hook_reads_the_state_and_its_failure_is_reported() {
        let scratch = tempfile::tempdir().unwrap();
        let out = scratch.path().join("state");
        let save = format!("cat > {}", out.display());
        let state = serde_json::json!({"id": "c1", "status": "created"});
        run("prestart", &[hook(&["sh", "-c", &save], None)], &state).unwrap();
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(saved, state);
        let err = run(
            "prestart",
            &[hook(&["sh", "-c", "echo no >&2; exit 3"], None)],
            &state,
        )
        .unwrap_err();
        assert!(err.to_string().contains("exit status: 3): no"), "{err}");
        let err = run("prestart", &[hook(&["sh", "-c", "sleep 5"], Some(1))], &state).unwrap_err();
        assert!(matches!(err, HookError::Timeout { .. }), "{err}");
    }
}
