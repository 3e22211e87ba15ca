//! Where a container's start-up time goes, step by step: with `COMBINED_TIMINGS=FILE` in its
//! environment, the launcher appends one line per set-up step to FILE, from each of its processes
//! (the launcher, the container's first process, its init and the command's process before execve),
//! for `cargo xtask bench --breakdown`. clock_gettime(2): CLOCK_MONOTONIC, which every process of the
//! machine shares (none of them is in a new time namespace), so the lines of the different processes
//! and the benchmark's own fork and wait4 fall on one time line.
//!
//! A line is `<pid> <label> <start ns> <end ns>`; the label says whose step it is (`parent:clone`,
//! `child:proc`, `init:wait`, `command:seccomp`), and an instant (`child:start`) has start = end.
//! Each line is one write(2) to a file opened `O_APPEND`, so the processes' lines never interleave.
//!
//! Off (the variable unset), every call is one load of an atomic that says so: nothing is read,
//! allocated or written. The file is opened close-on-exec and the command never inherits it; the
//! container's init holds it, non-dumpable like the rest of init, only while timing is on.

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The environment variable that names the file.
pub const VAR: &str = "COMBINED_TIMINGS";

/// The file's descriptor, or -1 while timing is off.
static OUT: AtomicI32 = AtomicI32::new(-1);

/// Opens the file `COMBINED_TIMINGS` names, if it is set, and records `parent:main`, the instant the
/// launcher's `main` began. A file that cannot be opened leaves timing off: it never fails a run.
pub fn open_from_env() {
    let Some(path) = std::env::var_os(VAR) else {
        return;
    };
    let entered = now();
    let flags = nix::fcntl::OFlag::O_WRONLY
        | nix::fcntl::OFlag::O_APPEND
        | nix::fcntl::OFlag::O_CREAT
        | nix::fcntl::OFlag::O_CLOEXEC;
    if let Ok(fd) = nix::fcntl::open(
        path.as_os_str(),
        flags,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    ) {
        OUT.store(std::os::fd::IntoRawFd::into_raw_fd(fd), Ordering::Relaxed);
        record("parent", "main", Some(entered));
    }
}

/// The start of a step: the time now when timing is on, `None` (and no clock read) when it is off.
#[inline]
pub fn start() -> Option<u64> {
    (OUT.load(Ordering::Relaxed) >= 0).then(now)
}

/// Records `side`'s step `step` (`parent`, `clone`), which began at `started` (from [`start`]) and
/// ends now.
#[inline]
pub fn record(side: &str, step: &str, started: Option<u64>) {
    if let Some(started) = started {
        write_line(side, step, started, now());
    }
}

/// Records an instant: a step that begins and ends now.
#[inline]
pub fn mark(side: &str, step: &str) {
    record(side, step, start());
}

/// Runs `body` as `side`'s step `step`.
#[inline]
pub fn time<T>(side: &str, step: &str, body: impl FnOnce() -> T) -> T {
    let started = start();
    let value = body();
    record(side, step, started);
    value
}

#[cold]
fn write_line(side: &str, step: &str, started: u64, ended: u64) {
    let fd = OUT.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // Formatted on the stack: this runs in the cloned child and just before execve, where nothing
    // need allocate.
    let mut buffer = [0u8; 128];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    let pid = std::process::id();
    if writeln!(cursor, "{pid} {side}:{step} {started} {ended}").is_err() {
        return;
    }
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    // SAFETY: `fd` was opened by `open_from_env` and is never closed while timing is on; the borrow
    // lasts for this one write.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::unistd::write(fd, &buffer[..len]);
}

/// CLOCK_MONOTONIC in nanoseconds.
fn now() -> u64 {
    let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else {
        return 0;
    };
    u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_the_variable_names_a_file() {
        // The test harness does not set it: nothing is timed and no clock is read.
        assert_eq!(start(), None);
        record("parent", "test", None);
    }
}
