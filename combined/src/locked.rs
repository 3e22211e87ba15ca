//! The launcher's mounts locked against a command that keeps CAP_SYS_ADMIN in a user namespace
//! (user_namespaces(7), mount_namespaces(7) "Restrictions on mount namespaces").
//!
//! Every mount the launcher makes (volumes read-only, `--read-only`'s root, the masks over /proc,
//! the read-only /proc/sys) is made in the container's mount namespace, which the container's user
//! namespace owns. The kernel locks a mount's flags, and forbids removing a mount that covers
//! another, only where a mount namespace was copied into one owned by a *less privileged* user
//! namespace. So a command holding CAP_SYS_ADMIN in the container's user namespace could
//! `mount -o remount,rw,bind` a read-only volume and write the host's files through it, or unmount a
//! mask (an attacker's pass did both).
//!
//! Bubblewrap's answer, and this one: at the end of its set-up, such a container's first process (its
//! init to be, and so everything in the container after it) moves into a user namespace nested in the
//! container's, with the same ids (an identity map of the container's), and a mount namespace of its
//! own: a copy made for a less privileged user namespace, so every mount in it is locked as it is.
//! CAP_SYS_ADMIN then holds over the new mount namespace only: the command can
//! still mount filesystems of its own (a tmpfs, a FUSE filesystem), but not loosen or remove the
//! launcher's. The other namespaces stay the container's user namespace's: the hostname, the network
//! and the IPC objects are no longer the command's to administer.
//!
//! The maps of the nested namespace must be written by a process in the container's user namespace
//! holding CAP_SETUID and CAP_SETGID there; a process in the nested one may map only its own id. So the
//! process forks a helper first, which stays behind, writes the maps once the process has moved, and
//! exits. It can open them because the process is still dumpable then (a non-dumpable process's /proc
//! files belong to the host's root): a created container's is made non-dumpable only after its set-up.
//! Both read and write the maps beneath the descriptor of the container's proc mount, not through
//! `/proc` by name, which after the pivot is a name in the rootfs.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use caps::Capability;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use nskit::idmap::{IdMap, IdRange};

use crate::container::Plan;

/// Whether the command's mounts need locking: it keeps CAP_SYS_ADMIN, in a user namespace. (Without
/// one, CAP_SYS_ADMIN is the host's, and `combined run` refuses it; an OCI config asking for it gets a
/// privileged container, as runc gives it.)
pub(crate) fn needed(plan: &Plan) -> bool {
    plan.user_ns && plan.caps.contains(&Capability::CAP_SYS_ADMIN)
}

/// Moves this process into a nested user namespace and a locked copy of its mount namespace (see the
/// module comment). Its ids stay what they were; its capabilities are then the nested namespace's.
/// `proc` is the descriptor of the container's proc mount (a config that mounts none leaves `/proc`).
pub(crate) fn lock_mounts(proc: Option<&OwnedFd>) -> Result<(), String> {
    let uid_map = identity_of(proc, "uid_map")?;
    let gid_map = identity_of(proc, "gid_map")?;
    let (wait_moved, moved) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("cannot make a pipe: {e}"))?;
    let me = nix::unistd::getpid();
    // SAFETY: this process is single-threaded here (the container's first process, at the end of its
    // set-up), so the child may run any code; it only reads the pipe, writes two files and exits.
    let helper = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(moved);
            let mut byte = [0u8; 1];
            let written = match nix::unistd::read(&wait_moved, &mut byte) {
                Ok(1) => write_map(proc, me, "gid_map", &gid_map)
                    .and_then(|()| write_map(proc, me, "uid_map", &uid_map))
                    .is_ok(),
                _ => false,
            };
            // SAFETY: _exit(2) ends this forked helper at once, running nothing of the parent's.
            unsafe { libc::_exit(i32::from(!written)) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => {
            return Err(format!(
                "cannot fork the helper that maps the nested namespace: {errno}"
            ));
        }
    };
    drop(wait_moved);
    let unshared = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS);
    let told = unshared.and_then(|()| nix::unistd::write(&moved, &[1]).map(drop));
    drop(moved);
    let mapped = wait_for(helper);
    unshared.map_err(|e| format!("cannot enter a nested user namespace to lock the mounts: {e}"))?;
    told.map_err(|e| format!("cannot wake the helper that maps the nested namespace: {e}"))?;
    if !mapped {
        return Err("the helper could not write the nested user namespace's maps".into());
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    match uid.is_root() && gid.as_raw() == 0 {
        true => Ok(()),
        false => Err(format!(
            "the nested user namespace's maps did not take (uid {uid}, gid {gid} in it)"
        )),
    }
}

/// `path` beneath the container's proc mount, or beneath `/proc` when the launcher made none.
fn open_in_proc(proc: Option<&OwnedFd>, path: &str, flags: OFlag) -> nix::Result<fs::File> {
    let flags = flags | OFlag::O_CLOEXEC;
    let opened = match proc {
        Some(proc) => nix::fcntl::openat(proc, path, flags, Mode::empty()),
        None => nix::fcntl::open(
            std::path::Path::new("/proc").join(path).as_path(),
            flags,
            Mode::empty(),
        ),
    };
    opened.map(fs::File::from)
}

/// Writes `map` to `file` (`uid_map`, `gid_map`) of the process `pid`, in one write(2), as the kernel
/// takes it.
fn write_map(proc: Option<&OwnedFd>, pid: Pid, file: &str, map: &IdMap) -> Result<(), String> {
    let path = format!("{pid}/{file}");
    open_in_proc(proc, &path, OFlag::O_WRONLY)
        .map_err(std::io::Error::from)
        .and_then(|mut f| f.write_all(map.to_proc_format().as_bytes()))
        .map_err(|e| format!("cannot write {path}: {e}"))
}

/// The container's user namespace's own ids, mapped to themselves: each line of this process's
/// `uid_map` or `gid_map` (inside, outside, count) becomes `inside inside count`.
fn identity_of(proc: Option<&OwnedFd>, file: &str) -> Result<IdMap, String> {
    let path = format!("self/{file}");
    let mut text = String::new();
    open_in_proc(proc, &path, OFlag::O_RDONLY)
        .map_err(std::io::Error::from)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    let ranges = text
        .lines()
        .map(|line| {
            let fields: Vec<u32> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            match fields[..] {
                [inside, _, count] => Ok(IdRange {
                    inside,
                    outside: inside,
                    count,
                }),
                _ => Err(format!("{path}: cannot parse {line:?}")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    IdMap::new(ranges).map_err(|e| format!("{path}: {e}"))
}

/// Whether the helper exited having written the maps.
fn wait_for(helper: Pid) -> bool {
    loop {
        match waitpid(helper, None) {
            Ok(WaitStatus::Exited(_, 0)) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return false,
        }
    }
}
