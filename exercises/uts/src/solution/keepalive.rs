//! Solution to uts-keepalive: each open namespace file is a reference to its namespace; `setns(2)`
//! joins the user namespace first, for the capability the UTS join needs (namespaces(7), setns(2)).

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;

use crate::Handles;

// ANCHOR: solution
/// Opens the namespace files of process `pid`: `ns/uts`, and `ns/user` too when `with_user` (the
/// child has a user namespace of its own, which owns its UTS namespace).
pub fn hold(pid: Pid, with_user: bool) -> io::Result<Handles> {
    let user = if with_user {
        Some(File::open(format!("/proc/{pid}/ns/user"))?)
    } else {
        None
    };
    Ok(Handles {
        user,
        uts: File::open(format!("/proc/{pid}/ns/uts"))?,
    })
}

/// Joins the namespaces behind `handles`. The tests call it in a fresh child process, never in a
/// test's thread. Joining a UTS namespace needs CAP_SYS_ADMIN in the user namespace that owns it: join
/// that user namespace first, when there is one.
pub fn join(handles: &Handles) -> Result<(), Errno> {
    if let Some(user) = &handles.user {
        setns(user, CloneFlags::CLONE_NEWUSER)?;
    }
    setns(&handles.uts, CloneFlags::CLONE_NEWUTS)
}
// ANCHOR_END: solution
