//! Step 4 of the PID namespace chapter: orphans go to the namespace's init, which must reap them
//! (pid_namespaces(7), "Adoption of orphaned children"; waitpid(2)).
//!
//! When a process exits, its children are re-parented to the init of their PID namespace, never to
//! the host's. An orphan that exits stays a zombie until its new parent waits for it, so this step's
//! init runs the chapter's reaper, [`crate::init`].

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid};
use nskit::ns::NsId;
use nskit::spawn::wait_for;
use nskit::{Channel, Exit, Spawn};
use serde::{Deserialize, Serialize};

use crate::StepError;
use crate::child::{
    ChildResult, Failed, Pipe, fork_named, own_pid_ns, park, receive, serve, set_name, spawn_init,
};
use crate::init::{InitError, Reaper, fork_run};
use crate::procfs::{Status, list_processes, read_status, remount_proc};

/// An orphan re-parented to init and reaped by it, as seen inside the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanStory {
    pub ns: NsId,
    pub main: i32,
    pub parent: i32,
    pub orphan: i32,
    /// The orphan's `PPid:` while its parent lives, and after the parent has exited.
    pub ppid_before: i32,
    pub ppid_after: i32,
    /// `ps` inside, once the orphan has exited: no zombie.
    pub after: Vec<Status>,
    /// What [`Reaper::run`] returned: the main child's status, and the orphans init reaped.
    pub main_exit: Exit,
    pub orphans_reaped: Vec<i32>,
}

/// The exit code step 4's main process ends with, so that the output shows init passing it on.
pub const MAIN_EXIT_CODE: i32 = 7;

// ANCHOR: orphans
/// Step 4: init runs the reaper ([`Reaper`]) with one main child. The main child starts a parent,
/// which starts the orphan-to-be and then exits: the orphan's parent becomes PID 1. When the orphan
/// exits in turn, init reaps it, and `ps` shows no zombie.
pub fn orphans(spawn: &Spawn) -> Result<OrphanStory, StepError> {
    let mut child = spawn_init(spawn, |channel| {
        set_name("ns-init");
        if let Err(e) = remount_proc() {
            return serve::<OrphanInside>(channel, "orphans", |_| Err(e.into()));
        }
        let result = Reaper::new().and_then(|reaper| {
            let main = fork_run(|| match reaper.restore_child_mask() {
                Ok(()) => {
                    set_name("ns-main");
                    serve(channel, "orphans", orphan_story) + MAIN_EXIT_CODE
                }
                Err(_) => 125,
            })
            .map_err(InitError::Fork)?;
            reaper.run(main)
        });
        // The main child has sent its story; init adds how the reaper ended.
        serve(channel, "reaper", |_| {
            let outcome = result?;
            let reaped: Vec<i32> = outcome.orphans_reaped.iter().map(|p| p.as_raw()).collect();
            Ok((outcome.exit.shell_status(), reaped))
        })
    })?;
    let story: OrphanInside = receive(child.channel())?;
    let (main_status, orphans_reaped): (i32, Vec<i32>) = receive(child.channel())?;
    let exit = child.wait().map_err(StepError::Channel)?;
    if !exit.success() {
        return Err(StepError::InitEnded(exit));
    }
    Ok(OrphanStory {
        ns: story.ns,
        main: story.main,
        parent: story.parent,
        orphan: story.orphan,
        ppid_before: story.ppid_before,
        ppid_after: story.ppid_after,
        after: story.after,
        main_exit: Exit::Code(main_status),
        orphans_reaped,
    })
}

/// What step 4's main child reports: the processes of the story and the orphan's parent before and
/// after its own parent exited.
#[derive(Serialize, Deserialize)]
struct OrphanInside {
    ns: NsId,
    main: i32,
    parent: i32,
    orphan: i32,
    ppid_before: i32,
    ppid_after: i32,
    after: Vec<Status>,
}

/// The main child's part: make an orphan, watch its PPid change, let it go, check nothing is left.
fn orphan_story(_: &mut Channel) -> ChildResult<OrphanInside> {
    let orphan_pid = Pipe::new()?;
    let go = Pipe::new()?;
    let parent = fork_named("ns-parent", || {
        let Ok(orphan) = fork_named("ns-orphan", park) else {
            return 1;
        };
        if orphan_pid.send(orphan.as_raw()).is_err() || go.recv().is_err() {
            return 1;
        }
        0 // the parent exits, leaving its child behind
    })?;
    let orphan = orphan_pid.recv()?;
    let ppid_before = read_status(Path::new("/proc"), orphan)?.ppid;
    go.send(0)?;
    wait_for(parent)?; // once the parent is reaped, the kernel has re-parented the orphan
    let ppid_after = read_status(Path::new("/proc"), orphan)?.ppid;
    kill(Pid::from_raw(orphan), Signal::SIGTERM)?;
    wait_until_gone(orphan)?; // init, not this process, reaps it
    Ok(OrphanInside {
        ns: own_pid_ns()?,
        main: getpid().as_raw(),
        parent: parent.as_raw(),
        orphan,
        ppid_before,
        ppid_after,
        after: list_processes(Path::new("/proc"))?,
    })
}
// ANCHOR_END: orphans

/// Waits until `/proc/<pid>` is gone: the process has exited *and* been reaped (a zombie keeps it).
fn wait_until_gone(pid: i32) -> ChildResult<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            return Err(Failed(format!("process {pid} was never reaped")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
