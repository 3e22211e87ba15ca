//! Step 2 of the PID namespace chapter: `ps` shows the host until `/proc` is remounted
//! (pid_namespaces(7), "/proc and PID namespaces").
//!
//! `ps` only reads `/proc`, and a proc filesystem shows the PID namespace of the process that mounted
//! it, not of the process reading it. A child in a new PID namespace inherits the host's `/proc` with
//! its copy of the mount table, so it lists the host's processes until it mounts a proc of its own.

use std::path::Path;

use nskit::Spawn;
use nskit::ns::NsId;

use crate::StepError;
use crate::child::{finish, fork_named, own_pid_ns, park, receive, serve, set_name, spawn_init};
use crate::procfs::{Status, list_processes, remount_proc};

/// `ps` inside a new PID namespace, before and after it mounts its own `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStory {
    pub ns: NsId,
    /// The init's PID on the host.
    pub init_host_pid: i32,
    /// What the host's proc lists: every process of the host.
    pub before: Vec<Status>,
    /// What a fresh proc lists: the namespace's processes only.
    pub after: Vec<Status>,
}

// ANCHOR: remount
/// Step 2: the init of a new PID namespace starts a worker, then lists `/proc` twice: through the
/// host's proc, inherited with the mount namespace, and through a proc it mounts itself.
pub fn ps_before_and_after(spawn: &Spawn) -> Result<ProcStory, StepError> {
    let mut child = spawn_init(spawn, |channel| {
        serve(channel, "ps", |_| {
            set_name("ns-init");
            fork_named("ns-worker", park)?;
            let ns = own_pid_ns()?;
            let before = list_processes(Path::new("/proc"))?;
            remount_proc()?;
            let after = list_processes(Path::new("/proc"))?;
            Ok((ns, before, after))
        }) + i32::from(channel.expect("exit").is_err())
    })?;
    let (ns, before, after) = receive(child.channel())?;
    let story = ProcStory {
        ns,
        init_host_pid: child.pid().as_raw(),
        before,
        after,
    };
    finish(child)?;
    Ok(story)
}
// ANCHOR_END: remount
