//! Plumbing for a process that supervises another: which signals it passes on (signal(7)), the
//! descriptors it must not hand down (close_range(2)), and the terminating signals held back while
//! it records something a Ctrl-C handler must find (sigprocmask(2)). The PID chapter's init and the
//! launcher both supervise a child; the IPC and cgroup chapters both clean up after Ctrl-C; what they
//! share is said once, here.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};

/// The signals a supervisor passes on to the process it runs: the ones a terminal sends (SIGINT,
/// SIGQUIT, SIGHUP when it hangs up), the one `docker stop` and `kill` send (SIGTERM), and the two
/// left for applications to define (SIGUSR1, SIGUSR2; servers reload or reopen logs on them). Each is
/// one whose default action would end the supervisor itself, so it must be caught, and so forwarded.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Marks every descriptor above stderr close-on-exec: this process keeps using them, the program it
/// executes never sees them (a leaked host descriptor is a way out of a container: CVE-2024-21626).
pub fn close_on_exec_from_3() -> Result<(), Errno> {
    sweep(3, Sweep::CloseOnExec)
}

/// Marks every descriptor from `first` on close-on-exec, leaving those between stderr and `first` to
/// the program executed: an OCI runtime's `--preserve-fds N` hands 3 to 3 + N - 1 on (socket
/// activation, an engine's pipes), as its caller asked.
pub fn close_on_exec_from(first: RawFd) -> Result<(), Errno> {
    sweep(first.max(3) as u32, Sweep::CloseOnExec)
}

/// Closes every descriptor above stderr.
///
/// # Safety
///
/// No object of this process may own a descriptor above 2 (an `OwnedFd`, a `File`) that would later
/// be used or closed again: call it before anything has opened one.
pub unsafe fn close_from_3() -> Result<(), Errno> {
    sweep(3, Sweep::Close)
}

/// Closes every descriptor above stderr except those in `keep`: what a long-lived child of a
/// short-lived parent does, so that it holds none of the parent's files (a lock, a socket) after the
/// parent has gone.
///
/// # Safety
///
/// As [`close_from_3`], for every descriptor not in `keep`.
pub unsafe fn close_from_3_except(keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep.iter().filter(|fd| **fd > 2).map(|fd| *fd as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > first {
            // SAFETY: close_range takes no pointers; the caller vouches for every descriptor in
            // [first, fd - 1], none of which is in `keep`.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0u32) };
            Errno::result(rc)?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sweep {
    Close,
    CloseOnExec,
}

/// One close_range(2) (Linux 5.9; 5.11 for CLOSE_RANGE_CLOEXEC), or a walk over /proc/self/fd on
/// older kernels. Closing is only ever asked for through [`close_from_3`], whose caller vouches for it.
fn sweep(first: u32, how: Sweep) -> Result<(), Errno> {
    let flags = match how {
        Sweep::Close => 0,
        Sweep::CloseOnExec => libc::CLOSE_RANGE_CLOEXEC,
    };
    // SAFETY: close_range takes no pointers; which descriptors may be closed is close_from_3's
    // caller's contract, and marking them close-on-exec invalidates nothing.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    if rc == 0 {
        return Ok(());
    }
    // Listed first: the listing's own descriptor is among them, and is closed when the listing is done.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::last())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as RawFd)
        .collect();
    for fd in fds {
        match how {
            // SAFETY: close_from_3's caller guarantees no object owns the descriptor; one that is not
            // open (the listing's own) makes close fail with EBADF, which is ignored.
            Sweep::Close => unsafe { libc::close(fd) },
            // SAFETY: F_SETFD only sets the close-on-exec flag; EBADF for the listing's own is ignored.
            Sweep::CloseOnExec => unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
        };
    }
    Ok(())
}

/// The signals that end a program run from a terminal or a service manager.
pub const TERMINATING: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The terminating signals held (blocked) while this lives: a signal that arrives waits, and is
/// delivered when the guard drops. A demo that makes an object on the host and records it for its
/// Ctrl-C handler does both under one, so that no signal comes between the two.
#[derive(Debug)]
pub struct SignalsHeld {
    previous: SigSet,
}

impl SignalsHeld {
    pub fn hold() -> Result<SignalsHeld, Errno> {
        let mut held = SigSet::empty();
        for signal in TERMINATING {
            held.add(signal);
        }
        let mut previous = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&held), Some(&mut previous))?;
        Ok(SignalsHeld { previous })
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// Installs `handler` for the terminating signals, each once (SA_RESETHAND: the signal's action is
/// the default again when the handler runs, so that raising it there ends the process with the status
/// a shell expects, 128 + signal).
///
/// # Safety
///
/// `handler` runs in signal context: it may make only async-signal-safe calls (signal-safety(7)),
/// allocate nothing and take no lock.
pub unsafe fn on_terminating(handler: extern "C" fn(libc::c_int)) -> Result<(), Errno> {
    let action = SigAction::new(
        SigHandler::Handler(handler),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in TERMINATING {
        // SAFETY: the caller vouches that `handler` is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// Gives the terminating signals their default actions back: what a child does first, so that a
/// Ctrl-C reaching its process group does not run its parent's cleanup handler in it.
pub fn default_terminating_actions() {
    for signal in TERMINATING {
        // SAFETY: SIG_DFL installs no handler, so no code of ours runs on the signal.
        let _ = unsafe {
            sigaction(
                signal,
                &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_signals_are_the_ones_that_would_end_a_supervisor() {
        for signal in FORWARDED {
            assert_ne!(signal, Signal::SIGKILL, "SIGKILL cannot be caught");
            assert_ne!(signal, Signal::SIGCHLD, "SIGCHLD is the supervisor's own");
        }
        assert!(FORWARDED.contains(&Signal::SIGTERM) && FORWARDED.contains(&Signal::SIGINT));
    }
}
