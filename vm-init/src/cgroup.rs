//! The guest's cgroups: a pure cgroup v2 hierarchy (the kernel boots with `cgroup_no_v1=all`), so
//! that the cgroup chapter's tests check the v2 paths here while the CI machine checks v1
//! (Documentation/admin-guide/cgroup-v2.rst, "Delegation"):
//!
//! - cgroup2 is mounted on /sys/fs/cgroup, and the root hands the memory, pids, cpu and cpuset
//!   controllers (those of them the kernel has) to its children (`cgroup.subtree_control`);
//! - each unprivileged run's uid gets a delegated subtree, `/sys/fs/cgroup/uid-<uid>`, which hands
//!   the same controllers down, with a leaf `tests` below it; the subtree's directory and its
//!   `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads` (the leaf's too) belong to the uid;
//! - a test run as that uid starts in the leaf. Its cgroups go beside the leaf, in the delegated
//!   directory (a cgroup v2 parent that gives controllers to children holds no process itself), and
//!   it may move its children between them, since it may write the `cgroup.procs` of their common
//!   ancestor.

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::sys;

const ROOT: &str = "/sys/fs/cgroup";
const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuset"];
const DELEGATED_FILES: [&str; 3] = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];

/// The delegated subtree of `uid`, and the leaf its tests start in.
fn delegated(uid: u32) -> (String, String) {
    let top = format!("{ROOT}/uid-{uid}");
    let leaf = format!("{top}/tests");
    (top, leaf)
}

/// Step 5: mounts cgroup2, hands the controllers down, and delegates a subtree to each of `uids`.
pub fn set_up(uids: &[u32]) -> io::Result<()> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    sys::mount("cgroup2", ROOT, "cgroup2", flags, "").map_err(|e| context(ROOT, e))?;
    hand_down(ROOT)?;
    for &uid in uids {
        let (top, leaf) = delegated(uid);
        for dir in [&top, &leaf] {
            fs::create_dir(dir).map_err(|e| context(dir, e))?;
        }
        hand_down(&top)?;
        for dir in [&top, &leaf] {
            give(dir, uid)?;
            for file in DELEGATED_FILES {
                give(&format!("{dir}/{file}"), uid)?;
            }
        }
    }
    Ok(())
}

/// Hands each of [`CONTROLLERS`] that `dir` offers down to its children.
fn hand_down(dir: &str) -> io::Result<()> {
    let offered_file = format!("{dir}/cgroup.controllers");
    let offered = fs::read_to_string(&offered_file).map_err(|e| context(&offered_file, e))?;
    let wanted: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    let file = format!("{dir}/cgroup.subtree_control");
    fs::write(&file, wanted.join(" ")).map_err(|e| context(&file, e))
}

fn give(path: &str, uid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).map_err(|e| context(path, e))
}

fn context(path: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{path}: {e}"))
}

/// Runs `cmd` as `uid`, started in its delegated leaf when step 5 made one. The move happens in the
/// child before it drops root: moving into the leaf needs write access to the root cgroup's
/// `cgroup.procs` (the common ancestor), which only root has.
pub fn start_delegated(cmd: &mut Command, uid: u32) {
    let (_, leaf) = delegated(uid);
    let procs = CString::new(format!("{leaf}/cgroup.procs"))
        .ok()
        .filter(|_| Path::new(&leaf).is_dir());
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe system calls
    // (open, write, close, setgroups, setgid, setuid) on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(procs) = &procs {
                join(procs)?;
            }
            become_uid(uid)
        });
    }
}

/// Writes `0` (the writer itself) to a `cgroup.procs`.
fn join(procs: &CStr) -> io::Result<()> {
    // SAFETY: `procs` is NUL-terminated; open(2) is async-signal-safe.
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: one readable byte; write(2) is async-signal-safe.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    let error = io::Error::last_os_error();
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    if written == 1 { Ok(()) } else { Err(error) }
}

/// What std's `Command::uid` and `gid` would do, after the move: no supplementary groups, then the
/// gid, then the uid.
fn become_uid(uid: u32) -> io::Result<()> {
    // SAFETY: an empty list; setgroups(2) reads nothing.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setgid(2) takes a plain integer.
    if unsafe { libc::setgid(uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setuid(2) takes a plain integer.
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
