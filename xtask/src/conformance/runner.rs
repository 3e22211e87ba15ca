//! Running one validation program against one runtime, the way the suite's README says: from the
//! suite's directory (the programs find `rootfs-amd64.tar.gz` and `runtimetest` there), with the runtime
//! in `RUNTIME`. Each program gets its own process group (setpgid(2)), so that when it outlives the
//! timeout it is killed together with the runtime commands it started (killpg(2)). Its output goes to
//! files, not pipes: a container process that inherited them could otherwise hold a pipe open, and the
//! logs stay for reading afterwards. `TMPDIR` points into a directory of the run's own, so the bundles
//! the suite makes (and may leave, see `leftovers`) are found there and nowhere else.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::outcome::{self, Exit, Outcome};
use super::tap;

/// Everything one program run needs.
#[derive(Clone, Debug)]
pub struct Job<'a> {
    pub program: &'a Path,
    /// The suite's source tree, where every program runs.
    pub suite_dir: &'a Path,
    /// What `RUNTIME` is set to.
    pub runtime: &'a Path,
    /// The program's `TMPDIR`.
    pub tmpdir: &'a Path,
    /// Where its output goes: `<logs>.tap` and `<logs>.stderr`.
    pub logs: PathBuf,
    pub timeout: Duration,
}

/// How often a running program is checked on: its work takes hundreds of milliseconds or more.
const POLL: Duration = Duration::from_millis(20);

/// Runs the program, waits for it (or kills it at the timeout) and judges its output.
pub fn run(job: &Job<'_>) -> anyhow::Result<Outcome> {
    let (stdout_path, stderr_path) = (job.logs.with_extension("tap"), job.logs.with_extension("stderr"));
    let start = Instant::now();
    let mut child = command(job, &stdout_path, &stderr_path)?
        .spawn()
        .with_context(|| format!("cannot run {}", job.program.display()))?;
    let exit = wait_or_kill(&mut child, job.timeout)?;
    let seconds = start.elapsed().as_secs_f64();
    let stdout = read_lossy(&stdout_path)?;
    let stderr = read_lossy(&stderr_path)?;
    Ok(outcome::judge(&tap::parse(&stdout), exit, &stderr, seconds))
}

fn command(job: &Job<'_>, stdout: &Path, stderr: &Path) -> anyhow::Result<Command> {
    let create = |path: &Path| {
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
    };
    let mut cmd = Command::new(job.program);
    cmd.current_dir(job.suite_dir)
        .env("RUNTIME", job.runtime)
        .env("TMPDIR", job.tmpdir)
        .stdin(Stdio::null())
        .stdout(create(stdout)?)
        .stderr(create(stderr)?)
        .process_group(0);
    Ok(cmd)
}

/// Waits for the child; at the deadline, kills its whole process group and reports the timeout.
fn wait_or_kill(child: &mut std::process::Child, timeout: Duration) -> anyhow::Result<Exit> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for a validation program")? {
            return Ok(exit_of(status));
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            child.wait().context("cannot reap a killed validation program")?;
            return Ok(Exit::TimedOut);
        }
        std::thread::sleep(POLL);
    }
}

/// SIGKILL to the process group the child leads (its pid is the group's id: `process_group(0)`).
fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // ESRCH only: the group may have emptied since the last check.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
}

fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    }
}

fn read_lossy(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::outcome::Status;

    /// A fake validation program (a shell script) run as a job, in a directory of its own.
    fn run_script(script: &str, timeout: Duration) -> Outcome {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("fake.t");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let job = Job {
            program: &program,
            suite_dir: dir.path(),
            runtime: Path::new("/bin/false"),
            tmpdir: dir.path(),
            logs: dir.path().join("fake"),
            timeout,
        };
        run(&job).unwrap()
    }

    #[test]
    fn the_program_sees_runtime_and_tmpdir_and_its_output_is_judged() {
        let outcome = run_script(
            r#"echo 1..1; [ "$RUNTIME" = /bin/false ] && [ -d "$TMPDIR" ] && echo "ok 1 - env""#,
            Duration::from_secs(30),
        );
        assert_eq!((outcome.status, outcome.ok), (Status::Pass, 1));
    }

    #[test]
    fn a_program_past_its_timeout_is_killed_with_its_children() {
        let pid_file = tempfile::NamedTempFile::new().unwrap();
        let started = Instant::now();
        // The background sleep stands for a runtime command the program started: it must die too.
        let outcome = run_script(
            &format!(
                "echo 1..1; sleep 30 & echo $! > {}; wait; echo ok 1",
                pid_file.path().display()
            ),
            Duration::from_secs(1),
        );
        assert_eq!(outcome.status, Status::Timeout);
        assert_eq!(outcome.exit, Exit::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the kill did not stop the wait"
        );
        let child: u32 = std::fs::read_to_string(pid_file.path())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            gone_soon(child),
            "the program's child {child} outlived the timeout"
        );
    }

    /// Whether `pid` is gone (or a zombie awaiting its new parent) within two seconds.
    fn gone_soon(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(stat)
                    if stat
                        .rsplit_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with('Z')) =>
                {
                    return true;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    #[test]
    fn a_program_killed_by_a_signal_says_so() {
        let outcome = run_script("kill -TERM $$", Duration::from_secs(30));
        assert_eq!(outcome.exit, Exit::Signal(15));
        assert_eq!(outcome.status, Status::Error);
    }
}
