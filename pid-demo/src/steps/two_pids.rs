//! Step 1 of the PID namespace chapter: PID 1, and two PIDs for one process (pid_namespaces(7), "The
//! namespace "init" process"; proc(5), the `NSpid:` field of `/proc/<pid>/status`).
//!
//! A child cloned with `CLONE_NEWPID` is PID 1 of the new namespace, and its parent, which lives in a
//! namespace the child cannot see, is PID 0 to it. The host knows the same child by the PID clone
//! returned: a process has one PID in every namespace from its own up to the initial one.

use std::path::Path;

use nix::unistd::{getpid, getppid};
use nskit::Spawn;
use nskit::ns::NsId;
use serde::{Deserialize, Serialize};

use crate::StepError;
use crate::child::{finish, own_pid_ns, receive, serve, set_name, spawn_init};
use crate::procfs::{read_status, remount_proc};

/// What the host and the child each say about the child's PIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwoPids {
    pub host_ns: NsId,
    pub child_ns: NsId,
    /// clone's return value: the child's PID in the caller's namespace.
    pub clone_returned: i32,
    /// The child's `getpid()`, asked inside.
    pub getpid: i32,
    /// The child's `getppid()`: 0, because its parent is in a namespace it cannot see.
    pub getppid: i32,
    /// `NSpid:` of `/proc/<clone_returned>/status`, read on the host.
    pub nspid_from_host: Vec<i32>,
    /// `NSpid:` of `/proc/self/status`, read inside through a proc mounted there.
    pub nspid_from_inside: Vec<i32>,
}

// ANCHOR: two_pids
/// Step 1: a child in a new PID namespace is PID 1 there, with parent 0, while the host knows it by
/// the PID clone returned. `/proc/<pid>/status` says both: its `NSpid:` line lists one PID per level,
/// starting at the level of the proc mount it is read through.
pub fn two_pids(spawn: &Spawn) -> Result<TwoPids, StepError> {
    let mut child = spawn_init(spawn, |channel| {
        serve(channel, "two pids", |_| {
            set_name("ns-init");
            let (getpid, getppid) = (getpid().as_raw(), getppid().as_raw());
            let ns = own_pid_ns()?;
            remount_proc()?; // a proc of this namespace, so that /proc/self is this process
            let nspid = read_status(Path::new("/proc"), getpid)?.nspid;
            Ok(Inside {
                ns,
                getpid,
                getppid,
                nspid,
            })
        }) + i32::from(channel.expect("exit").is_err())
    })?;
    let inside: Inside = receive(child.channel())?;
    let from_host = read_status(Path::new("/proc"), child.pid().as_raw()).map_err(StepError::Proc)?;
    let result = TwoPids {
        host_ns: own_pid_ns().map_err(StepError::Proc)?,
        child_ns: inside.ns,
        clone_returned: child.pid().as_raw(),
        getpid: inside.getpid,
        getppid: inside.getppid,
        nspid_from_host: from_host.nspid,
        nspid_from_inside: inside.nspid,
    };
    finish(child)?;
    Ok(result)
}
// ANCHOR_END: two_pids

/// What step 1's child sees of itself from inside.
#[derive(Serialize, Deserialize)]
struct Inside {
    ns: NsId,
    getpid: i32,
    getppid: i32,
    /// `NSpid:` read through its own proc.
    nspid: Vec<i32>,
}
