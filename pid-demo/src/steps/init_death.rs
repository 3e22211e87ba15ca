//! Step 6 of the PID namespace chapter: when init dies, the namespace dies (pid_namespaces(7), "The
//! namespace "init" process").
//!
//! When a namespace's init exits, the kernel kills every other process in the namespace; and a PID
//! namespace whose init has died accepts no new process: `fork()` fails with ENOMEM.

use std::path::Path;

use nix::sched::{CloneFlags, unshare};
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::spawn::wait_for;
use nskit::{Exit, Spawn};
use serde::{Deserialize, Serialize};

use crate::StepError;
use crate::child::{Pipe, as_pid_ns, fork_named, own_pid_ns, park, receive, serve};
use crate::init::fork_run;
use crate::procfs::{Status, list_processes};

/// A namespace whose init exits while other processes live in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeathStory {
    /// The namespace of the process that made the new one (with unshare), and the new one.
    pub caller_ns: NsId,
    pub new_ns: NsId,
    /// The namespace's processes as the caller's /proc shows them, init first, while init lives.
    pub members: Vec<Status>,
    /// How init ended.
    pub init_exit: Exit,
    /// For each member, whether it still exists once init has been reaped.
    pub still_there: Vec<bool>,
    /// `fork()` after that: `ENOMEM` (or `ok` if a kernel ever allowed it).
    pub fork_after: String,
}

// ANCHOR: init_death
/// Step 6: the caller unshares a PID namespace (it stays where it is: step 7), forks its init, which
/// starts two workers. When init exits, the kernel kills the workers; and because the caller's
/// `pid_for_children` still names that dead namespace, its next `fork()` fails with ENOMEM.
pub fn init_death(spawn: &Spawn) -> Result<DeathStory, StepError> {
    let mut caller = spawn.run(|channel| {
        serve(channel, "init death", |_| {
            let caller_ns = own_pid_ns()?;
            unshare(CloneFlags::CLONE_NEWPID)?;
            let (ready, go) = (Pipe::new()?, Pipe::new()?);
            let init = fork_named("ns-init", || {
                let started = fork_named("ns-worker", park).and_then(|_| fork_named("ns-worker", park));
                if started.is_err() || ready.send(0).is_err() {
                    return 1;
                }
                go.recv().map_or(1, |_| 0) // init exits normally: no signal needed
            })?;
            ready.recv()?;
            let new_ns = as_pid_ns(ns_id(Proc::Current, Kind::PidForChildren)?);
            let all = list_processes(Path::new("/proc"))?;
            let members: Vec<Status> = all
                .into_iter()
                .filter(|s| s.pid == init.as_raw() || s.ppid == init.as_raw())
                .collect();
            go.send(0)?;
            let init_exit = wait_for(init)?;
            let still_there = members
                .iter()
                .map(|m| Path::new(&format!("/proc/{}", m.pid)).exists())
                .collect();
            let fork_after = match fork_run(|| 0) {
                Err(errno) => format!("{errno:?}"),
                Ok(pid) => wait_for(pid).map(|_| "ok".to_owned())?,
            };
            Ok(DeathStory {
                caller_ns,
                new_ns,
                members,
                init_exit: Exit::Code(init_exit.shell_status()),
                still_there,
                fork_after,
            })
        })
    })?;
    let story = receive(caller.channel())?;
    caller.wait().map_err(StepError::Channel)?;
    Ok(story)
}
// ANCHOR_END: init_death
