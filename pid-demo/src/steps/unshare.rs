//! Step 7 of the PID namespace chapter: `unshare(CLONE_NEWPID)` moves the next child, not the caller
//! (pid_namespaces(7), "setns(2) and unshare(2) semantics"; namespaces(7), `pid_for_children`).
//!
//! A process's PID never changes, so unsharing a PID namespace cannot move the caller: it changes
//! `/proc/self/ns/pid_for_children`, the namespace the caller's next children are born in, the first
//! of them as PID 1.

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::getpid;
use nskit::Spawn;
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::spawn::wait_for;
use serde::{Deserialize, Serialize};

use crate::StepError;
use crate::child::{Pipe, as_pid_ns, fork_named, receive, serve};

/// What `/proc/self/ns/pid` and `pid_for_children` say around `unshare(CLONE_NEWPID)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnshareStory {
    pub pid_before: NsId,
    pub for_children_before: NsId,
    pub getpid_before: i32,
    pub pid_after: NsId,
    pub getpid_after: i32,
    /// Reading `pid_for_children` right after unshare: `Err(ENOENT)` until the first child exists.
    pub for_children_after: Result<NsId, Errno>,
    /// The first child: its namespace and its `getpid()`.
    pub child_ns: NsId,
    pub child_getpid: i32,
    /// `pid_for_children` once the child exists.
    pub for_children_with_child: NsId,
}

// ANCHOR: unshare
/// Step 7: `unshare(CLONE_NEWPID)` leaves the caller in its namespace, with its PID; the namespace it
/// creates is where its *next child* will be born, as PID 1.
pub fn unshare_story(spawn: &Spawn) -> Result<UnshareStory, StepError> {
    let mut caller = spawn.run(|channel| {
        serve(channel, "unshare", |channel| {
            let me = |kind| ns_id(Proc::Current, kind).map(as_pid_ns);
            let (pid_before, for_children_before) = (me(Kind::Pid)?, me(Kind::PidForChildren)?);
            let getpid_before = getpid().as_raw();
            unshare(CloneFlags::CLONE_NEWPID)?;
            let (pid_after, getpid_after) = (me(Kind::Pid)?, getpid().as_raw());
            let for_children_after = me(Kind::PidForChildren).map_err(|e| e.raw_os_error().unwrap_or(0));
            let (reported, go) = (Pipe::new()?, Pipe::new()?);
            let child = fork_named("ns-child", || {
                // The first child reports through the shared channel, then waits, keeping the
                // namespace populated while its parent looks.
                let seen = me(Kind::Pid)
                    .map(|ns| (ns, getpid().as_raw()))
                    .map_err(|e| nskit::ChildError::new("first child", e));
                if channel.reply(&seen).is_err() || reported.send(0).is_err() {
                    return 1;
                }
                go.recv().map_or(1, |_| 0)
            })?;
            reported.recv()?;
            let for_children_with_child = me(Kind::PidForChildren)?;
            go.send(0)?;
            wait_for(child)?;
            Ok(UnshareInside {
                pid_before,
                for_children_before,
                getpid_before,
                pid_after,
                getpid_after,
                for_children_after,
                for_children_with_child,
            })
        })
    })?;
    let (child_ns, child_getpid): (NsId, i32) = receive(caller.channel())?;
    let caller_saw: UnshareInside = receive(caller.channel())?;
    caller.wait().map_err(StepError::Channel)?;
    Ok(UnshareStory {
        pid_before: caller_saw.pid_before,
        for_children_before: caller_saw.for_children_before,
        getpid_before: caller_saw.getpid_before,
        pid_after: caller_saw.pid_after,
        getpid_after: caller_saw.getpid_after,
        for_children_after: caller_saw.for_children_after.map_err(Errno::from_raw),
        child_ns,
        child_getpid,
        for_children_with_child: caller_saw.for_children_with_child,
    })
}

/// What step 7's caller reports; reading `pid_for_children` may fail (its errno, then).
#[derive(Serialize, Deserialize)]
struct UnshareInside {
    pid_before: NsId,
    for_children_before: NsId,
    getpid_before: i32,
    pid_after: NsId,
    getpid_after: i32,
    for_children_after: Result<NsId, i32>,
    for_children_with_child: NsId,
}
// ANCHOR_END: unshare
