//! Exercise uts-keepalive: an open `/proc/<pid>/ns/uts` keeps a namespace alive after its last
//! process has gone, and `setns(2)` joins it through that descriptor (namespaces(7), setns(2)).

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;

use crate::Handles;

// ANCHOR: exercise
/// Opens the namespace files of process `pid`: `ns/uts`, and `ns/user` too when `with_user` (the
/// child has a user namespace of its own, which owns its UTS namespace).
pub fn hold(pid: Pid, with_user: bool) -> io::Result<Handles> {
    // Your code here: `File::open(format!("/proc/{pid}/ns/uts"))`, and the same for `user`.
    Err(io::Error::other("not written yet: hold"))
}

/// Joins the namespaces behind `handles`. The tests call it in a fresh child process, never in a
/// test's thread. Joining a UTS namespace needs CAP_SYS_ADMIN in the user namespace that owns it: join
/// that user namespace first, when there is one.
pub fn join(handles: &Handles) -> Result<(), Errno> {
    // Your code here: `setns(file, CloneFlags::CLONE_NEWUSER)`, then `CLONE_NEWUTS`.
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
