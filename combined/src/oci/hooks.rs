//! An OCI config's hooks (runtime-spec `config.md`, "POSIX-platform Hooks"; `runtime.md`,
//! "Lifecycle"): programs the runtime runs at fixed points of a container's life, each given the
//! container's state as JSON on its standard input. `prestart` and `createRuntime` run in the
//! runtime's namespaces once the container's exist and before it is set up; `poststart` after
//! `start`; `poststop` after `delete`. A failing `prestart` or `createRuntime` hook stops the
//! container's creation; a failing `poststart` or `poststop` hook is a warning, and the life goes on,
//! as the spec says. The late ones whose program lies in the container's root filesystem run from a
//! copy made at `create` ([`keep_late_hooks`]).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

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
    #[error("{kind} hook {path}: cannot keep a copy of it in {}: {source}", .copy.display())]
    Keep {
        kind: &'static str,
        path: String,
        copy: PathBuf,
        #[source]
        source: io::Error,
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

// ANCHOR: keep_late_hooks
/// A `poststart` or `poststop` hook runs on the host, as the runtime's user, after the container's
/// command has run: a program inside the container's root filesystem may by then be one the container
/// rewrote, and running it would hand the host to the container (as CVE-2019-5736 did with runc's own
/// binary). So each such program is copied now, at `create`, before anything of the container's has
/// run, into `kept` (a directory of the runtime's state, out of the container's reach), and `spec`'s
/// hook is pointed at the copy. The copy is what the path named when the bundle was created: opened
/// as the host resolves it, as execve would have.
///
/// A program is the container's to change when its path goes through any of `writable` (the rootfs,
/// the sources of its volumes) at any step: the file itself, or a link or directory on the way to it
/// (a link in the rootfs to a host program resolves outside it today, but the container can replace
/// the link).
pub fn keep_late_hooks(spec: &mut Spec, writable: &[PathBuf], kept: &Path) -> Result<(), HookError> {
    let Some(mut hooks) = spec.hooks().clone() else {
        return Ok(());
    };
    for (kind, list) in [
        ("poststart", hooks.poststart().clone()),
        ("poststop", hooks.poststop().clone()),
    ] {
        let Some(mut list) = list else { continue };
        for (index, hook) in list.iter_mut().enumerate() {
            if !passes_through(hook.path(), writable) {
                continue;
            }
            let resolved = fs::canonicalize(hook.path()).unwrap_or_else(|_| hook.path().clone());
            let copy = kept.join(format!("{kind}-{index}"));
            keep_copy(&resolved, &copy).map_err(|source| HookError::Keep {
                kind,
                path: hook.path().display().to_string(),
                copy: copy.clone(),
                source,
            })?;
            hook.set_path(copy);
        }
        match kind {
            "poststart" => hooks.set_poststart(Some(list)),
            _ => hooks.set_poststop(Some(list)),
        };
    }
    spec.set_hooks(Some(hooks));
    Ok(())
}
// ANCHOR_END: keep_late_hooks

/// Whether resolving `path` goes through one of `places`: the path as written, or any of its
/// ancestors (itself included) as the host resolves it.
fn passes_through(path: &Path, places: &[PathBuf]) -> bool {
    let inside = |p: &Path| places.iter().any(|place| p.starts_with(place));
    inside(path)
        || path
            .ancestors()
            .any(|step| fs::canonicalize(step).is_ok_and(|resolved| inside(&resolved)))
}

/// Copies `program` to `copy`, executable and readable by this user only.
fn keep_copy(program: &Path, copy: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(copy.parent().unwrap_or(Path::new("/")))?;
    let mut source = fs::File::open(program)?;
    let mut target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(copy)?;
    io::copy(&mut source, &mut target)?;
    target.sync_all()
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
