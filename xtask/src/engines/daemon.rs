//! An engine's daemon (dockerd, containerd) started for one run: in a session of its own, with its
//! state, its sockets and its log under the run's directory, so that it never meets an instance the
//! host runs; stopped by its pid (SIGTERM, then SIGKILL after 15 s) when dropped. setsid(2), kill(2).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A running daemon, stopped when dropped.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `log`, and waits (up to 30 s) until `socket` exists.
    pub fn start(name: &str, mut cmd: Command, log: &Path, socket: &Path) -> anyhow::Result<Daemon> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent's; a new session
        // keeps the terminal's signals (Ctrl-C at xtask) from reaching the daemon before its stop.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
        }
        let child = cmd.spawn().with_context(|| format!("cannot start {name}"))?;
        let mut daemon = Daemon {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            if let Some(status) = daemon.child.try_wait()? {
                bail!(
                    "{name} exited ({status}) before it listened; its log: {}",
                    tail(log)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not create {} within 30 s; its log: {}",
                    socket.display(),
                    tail(log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "xtask: {} did not stop on SIGTERM within 15 s: SIGKILL",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log, for an error message.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}
