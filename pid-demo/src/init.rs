//! A minimal init for a PID namespace: it forwards signals to its one main child, reaps every process
//! that ends up in its care, and returns the main child's exit status (pid_namespaces(7), signalfd(2),
//! sigprocmask(2), waitpid(2)).
//!
//! Why a container needs one: PID 1 of a namespace is special twice over. Orphans are re-parented to it,
//! so unless it calls `wait` they stay zombies forever; and the kernel delivers to it only the signals
//! it has a handler for, so a program that never expected to be PID 1 ignores Ctrl-C and `docker stop`.
//! runc and crun run no init (the engine adds tini or catatonit); bubblewrap runs its own, like this one.
//!
//! How it stays race-free without a signal handler: the signals it cares about are *blocked* with
//! `sigprocmask` and read, one at a time, from a `signalfd`. A blocked signal is never discarded, not
//! even by init's protection (the kernel only drops signals that are both unhandled and unblocked), so
//! it waits in the pending set until the loop reads it. The loop does nothing else: no work happens in a
//! signal handler, and there is no window between checking for a signal and sleeping.
//!
//! Hardening that the caller, not this module, must do: a container's PID 1 should be non-dumpable
//! (`prctl(PR_SET_DUMPABLE, 0)`), so that processes in the container cannot open `/proc/1/exe`, which
//! would be the launcher's binary on the host (CVE-2019-5736).

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use nskit::Exit;

/// The signals init passes on to its main child: the ones a terminal and `docker stop`/`kill` send,
/// and SIGUSR1/SIGUSR2 (nskit's list, which the launcher forwards to init too).
pub use nskit::process::FORWARDED;

/// Why the init loop failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot block the forwarded signals: {0}")]
    Mask(#[source] Errno),
    #[error("cannot open a signalfd: {0}")]
    SignalFd(#[source] Errno),
    #[error("cannot read from the signalfd: {0}")]
    Read(#[source] Errno),
    #[error("waitpid failed: {0}")]
    Wait(#[source] Errno),
    #[error("the main child {0} is not a child of this process")]
    NotMyChild(Pid),
    #[error("cannot fork the main child: {0}")]
    Fork(#[source] Errno),
}

/// How the init loop ended: the main child's status, and the other processes it reaped on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitOutcome {
    pub exit: Exit,
    /// PIDs (in init's namespace) of processes reaped that were not the main child: orphans
    /// re-parented to init, or other children of it.
    pub orphans_reaped: Vec<Pid>,
}

// ANCHOR: reaper
/// An init's signal plumbing: SIGCHLD and [`FORWARDED`] blocked, and a close-on-exec signalfd that
/// receives them. Create it *before* forking the main child, so that no signal sent in between is lost,
/// and have the child call [`Reaper::restore_child_mask`] (the mask is inherited across fork and exec).
#[derive(Debug)]
pub struct Reaper {
    signals: SignalFd,
    previous_mask: SigSet,
}

impl Reaper {
    /// Blocks the signals and opens the signalfd.
    pub fn new() -> Result<Reaper, InitError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        for signal in FORWARDED {
            mask.add(signal);
        }
        let mut previous_mask = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut previous_mask)).map_err(InitError::Mask)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(InitError::SignalFd)?;
        Ok(Reaper {
            signals,
            previous_mask,
        })
    }

    /// In the main child, right after fork: gives it back the signal mask init had before, so that the
    /// program it runs receives SIGINT and SIGTERM normally.
    pub fn restore_child_mask(&self) -> Result<(), InitError> {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous_mask), None).map_err(InitError::Mask)
    }

    /// The init loop: reap whatever has ended; if the main child is among it, return its status;
    /// otherwise sleep on the signalfd, forward what must be forwarded, and go round again.
    pub fn run(self, main: Pid) -> Result<InitOutcome, InitError> {
        let mut orphans_reaped = Vec::new();
        loop {
            // Reap first: a SIGCHLD may have come before the mask was set, and several children
            // ending together raise a single SIGCHLD.
            if let Some(exit) = self.reap_all(main, &mut orphans_reaped)? {
                return Ok(InitOutcome { exit, orphans_reaped });
            }
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    if signal != Signal::SIGCHLD {
                        // ESRCH: the child ended after the last reap; the next one will see it.
                        let _ = kill(main, signal);
                    }
                }
                Ok(None) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(InitError::Read(errno)),
            }
        }
    }

    /// Reaps every child that has ended, without blocking: `waitpid(-1, WNOHANG)` until none is left.
    /// Returns the main child's status if it was among them.
    fn reap_all(&self, main: Pid, orphans: &mut Vec<Pid>) -> Result<Option<Exit>, InitError> {
        let mut main_exit = None;
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, Exit::Signal(signal)),
                Ok(WaitStatus::StillAlive) => return Ok(main_exit),
                Ok(_) | Err(Errno::EINTR) => continue,
                // No child left at all: fine once the main child has been reaped, a bug otherwise.
                Err(Errno::ECHILD) => return main_exit.map(Some).ok_or(InitError::NotMyChild(main)),
                Err(errno) => return Err(InitError::Wait(errno)),
            };
            if pid == main {
                main_exit = Some(exit);
            } else {
                orphans.push(pid);
            }
        }
    }
}

/// The whole init, for a main child already forked: `Reaper::new` then `run`. Signals sent to init
/// before this call are lost (init has no handler for them yet); use [`Reaper`] or [`init_with`] when
/// that matters. Returns the main child's exit status; use [`Exit::shell_status`] as init's own exit
/// code (the code, or 128 + the signal), so that the container's status is the program's.
pub fn run_init(main: Pid) -> Result<Exit, InitError> {
    Ok(Reaper::new()?.run(main)?.exit)
}

/// The whole init, race-free: blocks the signals, forks `main` (with the mask restored) as the main
/// child, and reaps until it ends. Call it as PID 1 of a new PID namespace; `main` typically execs the
/// container's program and returns only on failure.
pub fn init_with<F: FnOnce() -> i32>(main: F) -> Result<InitOutcome, InitError> {
    let reaper = Reaper::new()?;
    let child = fork_run(|| match reaper.restore_child_mask() {
        Ok(()) => main(),
        Err(_) => 125,
    })
    .map_err(InitError::Fork)?;
    reaper.run(child)
}
// ANCHOR_END: reaper

/// Forks a child that runs `body` and exits with the code it returns (101 if it panics). For use in
/// single-threaded processes, such as the children `nskit::Spawn` clones.
pub fn fork_run<F: FnOnce() -> i32>(body: F) -> Result<Pid, Errno> {
    // SAFETY: fork(2) is sound here because the demos call it only from single-threaded processes
    // (children cloned by nskit::Spawn and their descendants), so no lock can be held by a thread that
    // does not exist in the child. The child leaves through _exit and never returns into the caller.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
            let _ = io::stdout().flush();
            // SAFETY: _exit(2) ends the process at once, without running the parent's atexit handlers
            // or destructors, which belong to the parent's copy of this state; stdout is flushed above.
            unsafe { libc::_exit(code) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_signals_are_the_terminal_and_stop_ones() {
        assert!(FORWARDED.contains(&Signal::SIGTERM));
        assert!(FORWARDED.contains(&Signal::SIGINT));
        assert!(!FORWARDED.contains(&Signal::SIGKILL));
    }
}
