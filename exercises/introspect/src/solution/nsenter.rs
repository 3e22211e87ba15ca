//! Solution to introspect-nsenter: both namespace files opened first, then the target's user namespace
//! joined when it is not the caller's own, then its UTS namespace (setns(2), "Details for specific
//! namespace types"; nsenter(1) does the same in two passes).

use std::io;
use std::os::unix::fs::MetadataExt;

use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;
use nskit::ns::{Kind, Proc, open_ns};

// ANCHOR: solution
/// Moves the calling process into the UTS namespace of `target`, and into `target`'s user namespace
/// when that is what it takes, as `nsenter --target PID --uts` does (with `--user` when needed). The
/// test calls it in a child of its own, a process with a single thread, whose namespaces it may
/// change for good.
pub fn enter(target: Pid) -> io::Result<()> {
    // Both files first, as nsenter opens them: each setns changes the caller, and an open after one is
    // made by the changed caller (after a mount namespace, /proc may not even be the same).
    let user = open_ns(Proc::Pid(target), Kind::User)?;
    let uts = open_ns(Proc::Pid(target), Kind::Uts)?;
    let id = |file: &std::fs::File| file.metadata().map(|m| (m.dev(), m.ino()));
    // setns(2) refuses to re-enter the caller's own user namespace (EINVAL): a process that dropped
    // capabilities would get them all back.
    if id(&user)? != id(&open_ns(Proc::Current, Kind::User)?)? {
        // First: joining a UTS namespace takes CAP_SYS_ADMIN in the caller's own user namespace and in
        // the one that owns the UTS namespace. Joining that user namespace grants every capability in
        // it, and makes it the caller's own: both at once.
        setns(&user, CloneFlags::CLONE_NEWUSER)?;
    }
    setns(&uts, CloneFlags::CLONE_NEWUTS)?;
    Ok(())
}
// ANCHOR_END: solution
