//! Leaving no cgroup behind. A cgroup is a directory in a kernel filesystem: it outlives the program
//! that made it until someone removes it with rmdir(2), and rmdir succeeds only once no process is
//! left in it. So every directory this chapter makes is recorded in a small static registry, and a
//! SIGINT/SIGTERM/SIGHUP handler empties it before the signal ends the process: it kills what is left
//! in each cgroup, reaps its own children, and removes the directories, innermost first
//! (signal-safety(7): the handler only makes system calls, it never allocates or locks).
//!
//! The same pattern as the IPC chapter's host objects, holding paths instead of ids: each path is a
//! C string made when the cgroup is, and leaked to the registry until the cgroup is removed.

use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};

use nix::errno::Errno;

const SLOTS: usize = 64;

/// The registry: each slot holds a leaked `CString` (a cgroup directory), or null. Atomics, because
/// the signal handler reads it at any moment; whoever swaps a pointer out owns it.
static DIRS: [AtomicPtr<c_char>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

/// Why a directory could not be put under the guard.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the cleanup registry is full ({SLOTS} cgroup directories)")]
    Full,
    #[error("the cgroup path {0:?} contains a NUL byte")]
    Nul(std::path::PathBuf),
}

// ANCHOR: registered
/// A cgroup directory the signal handler removes if a signal ends the process before its owner does.
#[derive(Debug)]
pub struct Registered {
    slot: usize,
}

impl Registered {
    /// Records `dir`. Call it with the signals held (see [`SignalsHeld`]) from before the directory is
    /// made, so that no signal can end the process between making and recording it.
    pub fn new(dir: &Path) -> Result<Registered, RegistryError> {
        let path =
            CString::new(dir.as_os_str().as_bytes()).map_err(|_| RegistryError::Nul(dir.to_owned()))?;
        let raw = path.into_raw();
        for (slot, cell) in DIRS.iter().enumerate() {
            if cell
                .compare_exchange(std::ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(Registered { slot });
            }
        }
        // SAFETY: `raw` came from `into_raw` just above and was stored nowhere.
        drop(unsafe { CString::from_raw(raw) });
        Err(RegistryError::Full)
    }
}

impl Drop for Registered {
    /// Forgets the directory (its owner has removed it, or gives up on it).
    fn drop(&mut self) {
        let raw = DIRS[self.slot].swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !raw.is_null() {
            // SAFETY: every non-null pointer in the registry came from `CString::into_raw`, and the
            // swap made this the only owner.
            drop(unsafe { CString::from_raw(raw) });
        }
    }
}

extern "C" fn on_terminating_signal(signal: libc::c_int) {
    remove_all_registered();
    // Installed with SA_RESETHAND: raising the signal again ends the process as the first one would
    // have, with the status a shell expects (128 + signal).
    // SAFETY: raise(3) is async-signal-safe.
    unsafe { libc::raise(signal) };
}

/// The signals that end a program run from a terminal or a service manager (nskit's).
pub use nskit::process::TERMINATING;

/// Installs the handler that empties and removes the registered cgroups when SIGINT, SIGTERM or SIGHUP
/// arrives, then lets the signal end the process.
pub fn remove_on_signals() -> Result<(), Errno> {
    // SAFETY: the handler only makes async-signal-safe system calls (open, read, kill, waitpid,
    // rmdir, nanosleep, raise) on data read from atomics; it allocates nothing and takes no lock.
    unsafe { nskit::process::on_terminating(on_terminating_signal) }
}
// ANCHOR_END: registered

/// What the handler does: a few passes over the registry, each killing what is left in every
/// directory, reaping this process's children, and removing every directory that is now empty. A
/// nested cgroup goes in the first pass, its parent in the next. Last, it waits for each process it
/// killed that is its own child, so that none is left a zombie for init to find later.
fn remove_all_registered() {
    let mut killed = Killed {
        pids: [0; 256],
        count: 0,
    };
    for _pass in 0..50 {
        let mut left = 0;
        for cell in &DIRS {
            let raw = cell.load(Ordering::Acquire);
            if raw.is_null() {
                continue;
            }
            kill_members(raw, &mut killed);
            reap_children();
            // SAFETY: `raw` is a NUL-terminated string owned by the registry, which nothing frees
            // while the handler runs (an owner's removal holds these signals).
            let removed = unsafe { libc::rmdir(raw) } == 0 || Errno::last() == Errno::ENOENT;
            if removed {
                cell.store(std::ptr::null_mut(), Ordering::Release);
            } else {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        // SAFETY: nanosleep(2) is async-signal-safe and reads the timespec only during the call.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
    for &pid in &killed.pids[..killed.count] {
        // SAFETY: waitpid(2) is async-signal-safe; for a PID that is not this process's child it
        // fails with ECHILD at once, and a child killed with SIGKILL ends promptly.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
}

/// The PIDs the handler killed, on its stack.
struct Killed {
    pids: [i32; 256],
    count: usize,
}

/// Sends SIGKILL to every PID listed in `<dir>/cgroup.procs`, read into buffers on the stack.
fn kill_members(dir: *const c_char, killed: &mut Killed) {
    let mut path = [0u8; 4096];
    const PROCS: &[u8] = b"/cgroup.procs\0";
    // SAFETY: `dir` is NUL-terminated (see the caller); strlen only reads up to that NUL.
    let len = unsafe { libc::strlen(dir) };
    if len + PROCS.len() > path.len() {
        return;
    }
    // SAFETY: `len` bytes are readable at `dir`, and `path` has room for them (checked above).
    unsafe { std::ptr::copy_nonoverlapping(dir.cast::<u8>(), path.as_mut_ptr(), len) };
    path[len..len + PROCS.len()].copy_from_slice(PROCS);
    // SAFETY: `path` is NUL-terminated; open(2) is async-signal-safe.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut pid: i32 = 0;
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writing; read(2) is async-signal-safe.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        for &byte in &buf[..n as usize] {
            if byte.is_ascii_digit() {
                pid = pid.saturating_mul(10).saturating_add(i32::from(byte - b'0'));
            } else {
                kill_pid(pid, killed);
                pid = 0;
            }
        }
    }
    kill_pid(pid, killed);
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
}

fn kill_pid(pid: i32, killed: &mut Killed) {
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; `pid` is positive, so it names one process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        if killed.count < killed.pids.len() && !killed.pids[..killed.count].contains(&pid) {
            killed.pids[killed.count] = pid;
            killed.count += 1;
        }
    }
}

/// Reaps whichever children of this process have ended, without waiting.
fn reap_children() {
    // SAFETY: waitpid(2) with WNOHANG is async-signal-safe and does not block.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// In a child this chapter spawned: forget the parent's registry and restore the default actions,
/// so that a Ctrl-C reaching the child's process group does not make the child empty the cgroups.
pub fn forget_in_child() {
    for cell in &DIRS {
        // Leaked in this process's copy of memory: the child frees nothing its parent owns.
        cell.store(std::ptr::null_mut(), Ordering::Release);
    }
    nskit::process::default_terminating_actions();
}

/// The terminating signals held while a host object is made and recorded (nskit's).
pub use nskit::process::SignalsHeld;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_holds_its_path_until_dropped() {
        let dir = Path::new("/sys/fs/cgroup/memory/not-made");
        let registered = Registered::new(dir).unwrap();
        let raw = DIRS[registered.slot].load(Ordering::Acquire);
        // SAFETY: the registration is alive, so the slot holds its NUL-terminated path.
        let held = unsafe { std::ffi::CStr::from_ptr(raw) };
        assert_eq!(held.to_bytes(), dir.as_os_str().as_bytes());
        let slot = registered.slot;
        drop(registered);
        assert!(DIRS[slot].load(Ordering::Acquire).is_null());
        assert!(matches!(
            Registered::new(Path::new("a\0b")),
            Err(RegistryError::Nul(_))
        ));
    }
}
