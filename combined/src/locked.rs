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
//! Bubblewrap's answer, and this one: before anything else of step 8, such a command moves into a user
//! namespace nested in the container's, with the same ids (an identity map of the container's), and a
//! mount namespace of its own: a copy made for a less privileged user namespace, so every mount in it
//! is locked as it is. CAP_SYS_ADMIN then holds over the new mount namespace only: the command can
//! still mount filesystems of its own (a tmpfs, a FUSE filesystem), but not loosen or remove the
//! launcher's. The other namespaces stay the container's user namespace's: the hostname, the network
//! and the IPC objects are no longer the command's to administer.
//!
//! The maps of the nested namespace must be written by a process in the container's user namespace
//! holding CAP_SETUID and CAP_SETGID there; a process in the nested one may map only its own id. So the
//! process forks a helper first, which stays behind, writes the maps once the process has moved, and
//! exits. The helper can open the maps only while the process is dumpable (a non-dumpable process's
//! /proc files belong to the host's root): a created container's process, non-dumpable already, is
//! made dumpable for that moment, before anything else is in the container.

use std::fs;

use caps::Capability;
use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use nskit::idmap::{IdMap, IdRange};
use nskit::ns::Proc;

use crate::container::Plan;

/// Whether the command's mounts need locking: it keeps CAP_SYS_ADMIN, in a user namespace. (Without
/// one, CAP_SYS_ADMIN is the host's, and `combined run` refuses it; an OCI config asking for it gets a
/// privileged container, as runc gives it.)
pub(crate) fn needed(plan: &Plan) -> bool {
    plan.user_ns && plan.caps.contains(&Capability::CAP_SYS_ADMIN)
}

/// Moves this process into a nested user namespace and a locked copy of its mount namespace (see the
/// module comment). Its ids stay what they were; its capabilities are then the nested namespace's.
pub(crate) fn lock_mounts() -> Result<(), String> {
    let uid_map = identity_of("uid_map")?;
    let gid_map = identity_of("gid_map")?;
    let dumpable = Dumpable::for_the_helper()?;
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
                Ok(1) => nskit::idmap::write_maps(Proc::Pid(me), &uid_map, &gid_map, true).is_ok(),
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
    dumpable.restore()?;
    unshared.map_err(|e| format!("cannot enter a nested user namespace to lock the mounts: {e}"))?;
    told.map_err(|e| format!("cannot wake the helper that maps the nested namespace: {e}"))?;
    if !mapped {
        return Err("the helper could not write the nested user namespace's maps".into());
    }
    // Written through /proc by name: what a decoy there would leave is this process unmapped.
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    match uid.is_root() && gid.as_raw() == 0 {
        true => Ok(()),
        false => Err(format!(
            "the nested user namespace's maps did not take (uid {uid}, gid {gid} in it)"
        )),
    }
}

/// The container's user namespace's own ids, mapped to themselves: each line of this process's
/// `uid_map` or `gid_map` (inside, outside, count) becomes `inside inside count`. Read through /proc
/// by name after the pivot: a decoy there could only give fewer ids (the kernel refuses a map of ids
/// the namespace above lacks), leaving the command unable to take its own.
fn identity_of(file: &str) -> Result<IdMap, String> {
    let path = format!("/proc/self/{file}");
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
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

/// This process made dumpable, and what it was before.
struct Dumpable(libc::c_int);

impl Dumpable {
    fn for_the_helper() -> Result<Dumpable, String> {
        let fail = || {
            format!(
                "cannot make this process dumpable for its maps: {}",
                nix::errno::Errno::last()
            )
        };
        // SAFETY: prctl(PR_GET_DUMPABLE) takes no pointers; it reads a flag of this process.
        let was = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        if was < 0 {
            return Err(fail());
        }
        // SAFETY: prctl(PR_SET_DUMPABLE, 1) takes no pointers; it sets a flag of this process.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } != 0 {
            return Err(fail());
        }
        Ok(Dumpable(was))
    }

    fn restore(self) -> Result<(), String> {
        // SAFETY: prctl(PR_SET_DUMPABLE, 0 or 1) takes no pointers; it sets a flag of this process.
        match unsafe { libc::prctl(libc::PR_SET_DUMPABLE, self.0, 0, 0, 0) } {
            0 => Ok(()),
            _ => Err(format!(
                "cannot make this process non-dumpable again: {}",
                nix::errno::Errno::last()
            )),
        }
    }
}
