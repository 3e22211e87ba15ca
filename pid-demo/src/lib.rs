//! The PID namespace chapter: a process tree with its own PIDs, its own init and its own `/proc`
//! (pid_namespaces(7)).
//!
//! Each `pub fn` below is one step of the lesson: it makes the namespaces, lets the processes in them
//! observe what they see, and returns those observations as plain data; `main.rs` prints them. Every
//! step starts its processes the same way, with [`child`] (an init in a new PID namespace, named forks,
//! the child's report to its parent). The pieces a container launcher reuses are [`init`] (a reaper
//! init, PID 1 of the container) and [`procfs`] (mounting a fresh `/proc`), plus [`init_spawn`] (an
//! init in a new PID namespace).

pub mod child;
pub mod init;
pub mod procfs;
pub mod tree;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{Pid, getpid, getppid};
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::spawn::wait_for;
use nskit::{Channel, Child, Exit, Spawn, SpawnError, UserNs};
use serde::{Deserialize, Serialize};

pub use child::{fork_named, init_spawn, own_pid_ns, plain_spawn, set_name, spawn_init};

use crate::child::{ChildResult, Failed, Pipe, as_pid_ns, finish, park, receive, serve};
use crate::init::{InitError, Reaper, fork_run};
use crate::procfs::{Status, list_processes, read_status, remount_proc};

/// The kernel nests PID namespaces at most this deep below the initial one (`MAX_PID_NS_LEVEL`); one
/// more `clone(CLONE_NEWPID)` fails with ENOSPC.
pub const MAX_PID_NS_LEVEL: usize = 32;

/// The command names (`comm`) the demo gives its processes, so that `ps` output says who is who, and
/// so that a test can check none of them is left behind.
pub const PROCESS_NAMES: [&str; 7] = [
    "ns-init",
    "ns-worker",
    "ns-main",
    "ns-parent",
    "ns-orphan",
    "ns-sender",
    "ns-child",
];

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("lost contact with the child: {0}")]
    Channel(#[source] io::Error),
    #[error("the init ended with {0:?}")]
    InitEnded(Exit),
    #[error("cannot read /proc: {0}")]
    Proc(#[source] io::Error),
    #[error("cannot signal the init: {0}")]
    Signal(#[source] Errno),
}

impl From<SpawnError> for StepError {
    fn from(e: SpawnError) -> StepError {
        StepError::Child(nskit::StepError::Spawn(e))
    }
}

/// `[1, 2, 3]` as `"1 2 3"`.
pub fn join<T: ToString>(values: &[T]) -> String {
    values.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------------
// Step 1: PID 1, and two PIDs for one process.

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

// ---------------------------------------------------------------------------------------------------
// Step 2: ps before and after remounting /proc.

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

// ---------------------------------------------------------------------------------------------------
// Step 3: nested namespaces.

/// One process of the nested tree, as the host's `/proc` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeProcess {
    pub name: String,
    pub host_pid: i32,
    pub host_ppid: i32,
    /// Its PID at every level, host first (`NSpid:` read on the host).
    pub nspid: Vec<i32>,
}

impl TreeProcess {
    /// 0 for a host process, 1 for one in the first nested namespace...
    pub fn level(&self) -> usize {
        self.nspid.len().saturating_sub(1)
    }
}

/// What the init of one nested level sees from inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelView {
    pub level: usize,
    pub ns: NsId,
    /// Its `getppid()`: 0, since its parent lives one level up, out of sight.
    pub getppid: i32,
    /// The PIDs its own `/proc` lists.
    pub visible: Vec<i32>,
}

/// Nested PID namespaces: each level's init and worker, and what each level sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedTree {
    pub host_ns: NsId,
    /// The demo process first, then its descendants in the order they were created.
    pub processes: Vec<TreeProcess>,
    /// Level 1 first.
    pub views: Vec<LevelView>,
}

// ANCHOR: nest
/// Step 3: `levels` nested PID namespaces. The init of each level names itself `ns-init`, starts a
/// worker, mounts its own `/proc` and spawns the next level's init; once the levels below have
/// reported, it lists its `/proc` and reports up. The host then reads every process's `NSpid:`.
pub fn nested_tree(spawn: &Spawn, levels: usize) -> Result<NestedTree, StepError> {
    let mut top = spawn_init(spawn, |channel| nest_level(channel, 1, levels))?;
    let views = receive(top.channel())?;
    // The demo itself, then the tree under the top init (not every child of the demo: a test
    // process may have others).
    let mut processes = descendants_of(getpid().as_raw()).map_err(StepError::Proc)?;
    processes.truncate(1);
    processes.extend(descendants_of(top.pid().as_raw()).map_err(StepError::Proc)?);
    let tree = NestedTree {
        host_ns: own_pid_ns().map_err(StepError::Proc)?,
        processes,
        views,
    };
    finish(top)?;
    Ok(tree)
}

/// One level's init: worker, own /proc, next level, report, then wait for the word to exit.
fn nest_level(channel: &mut Channel, level: usize, levels: usize) -> i32 {
    let mut next: Option<Child> = None;
    let code = serve(channel, "nest", |_| {
        set_name("ns-init");
        fork_named("ns-worker", park)?;
        remount_proc()?;
        let mut deeper: Vec<LevelView> = Vec::new();
        if level < levels {
            let spawn = Spawn::new(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS).user(UserNs::Never);
            let child = next.insert(spawn_init(&spawn, |ch| nest_level(ch, level + 1, levels))?);
            deeper = receive(child.channel())?;
        }
        let visible = list_processes(Path::new("/proc"))?
            .iter()
            .map(|s| s.pid)
            .collect();
        let mine = LevelView {
            level,
            ns: own_pid_ns()?,
            getppid: getppid().as_raw(),
            visible,
        };
        Ok([vec![mine], deeper].concat())
    });
    let code = code + i32::from(channel.expect("exit").is_err());
    // Returning ends this init, and with it every process below: the kernel kills its namespace.
    match next.map(finish) {
        Some(Err(_)) => code + 1,
        _ => code,
    }
}
// ANCHOR_END: nest

// ANCHOR: descendants
/// The process `root` and all its descendants, from the caller's `/proc`, parents before children
/// and siblings in PID order (the order they were created in, on a host that has not wrapped its PIDs).
pub fn descendants_of(root: i32) -> io::Result<Vec<TreeProcess>> {
    let all = list_processes(Path::new("/proc"))?;
    let mut found: Vec<TreeProcess> = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        let Some(me) = all.iter().find(|s| s.pid == pid) else {
            continue;
        };
        found.push(TreeProcess {
            name: me.name.clone(),
            host_pid: me.pid,
            host_ppid: me.ppid,
            nspid: me.nspid.clone(),
        });
        // Reverse, so that the smallest PID is popped first.
        stack.extend(all.iter().filter(|s| s.ppid == pid).map(|s| s.pid).rev());
    }
    Ok(found)
}
// ANCHOR_END: descendants

// ---------------------------------------------------------------------------------------------------
// Step 4: orphans.

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
    /// What [`init::Reaper::run`] returned: the main child's status, and the orphans init reaped.
    pub main_exit: Exit,
    pub orphans_reaped: Vec<i32>,
}

/// The exit code step 4's main process ends with, so that the output shows init passing it on.
pub const MAIN_EXIT_CODE: i32 = 7;

// ANCHOR: orphans
/// Step 4: init runs the reaper ([`init::Reaper`]) with one main child. The main child starts a parent,
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

// ---------------------------------------------------------------------------------------------------
// Step 5: init's signal protection.

/// Signals sent to an init, from inside its namespace and from the parent namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalStory {
    pub ns: NsId,
    /// The signals PID 2 sent to PID 1, in order, with kill's result (`ok` or the errno).
    pub sent_from_inside: Vec<(Signal, String)>,
    /// How many times init's SIGUSR1 handler ran.
    pub handled_usr1: usize,
    /// After the host's SIGTERM, init still answered.
    pub alive_after_host_sigterm: bool,
    /// How init ended after the host's SIGKILL.
    pub after_host_sigkill: Exit,
}

/// The signals the sender inside sends to its init, in this order.
pub const SENT_FROM_INSIDE: [Signal; 3] = [Signal::SIGTERM, Signal::SIGKILL, Signal::SIGUSR1];

static USR1_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_usr1(_: libc::c_int) {
    USR1_HANDLED.fetch_add(1, Ordering::SeqCst); // an atomic add is async-signal-safe
}

// ANCHOR: signals
/// Step 5: init has a handler for SIGUSR1 only. A process inside sends it SIGTERM, SIGKILL, SIGUSR1:
/// the first two are dropped, the third runs the handler. Then the host sends SIGTERM (dropped too:
/// no handler) and SIGKILL, which the kernel always delivers from an ancestor namespace.
pub fn signals(spawn: &Spawn) -> Result<SignalStory, StepError> {
    let mut child = spawn_init(spawn, |channel| {
        let code = serve(channel, "signals", |_| {
            set_name("ns-init");
            let handler = SigAction::new(
                SigHandler::Handler(count_usr1),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            // SAFETY: the handler only does an atomic add, which is async-signal-safe, and this
            // process is single-threaded.
            unsafe { sigaction(Signal::SIGUSR1, &handler) }?;
            let sender = fork_named("ns-sender", || {
                let init = Pid::from_raw(1);
                let results: Vec<i32> = SENT_FROM_INSIDE
                    .iter()
                    .map(|&s| kill(init, s).map_or_else(|e| e as i32, |()| 0))
                    .collect();
                // Exit code: a bit per signal whose kill(2) failed.
                results
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| i32::from(r != 0) << i)
                    .sum()
            })?;
            let failed = match wait_for(sender)? {
                Exit::Code(bits) => bits,
                other => return Err(Failed(format!("the sender ended with {other:?}"))),
            };
            let results: Vec<String> = (0..SENT_FROM_INSIDE.len())
                .map(|i| if failed >> i & 1 == 0 { "ok" } else { "failed" }.to_string())
                .collect();
            Ok((own_pid_ns()?, USR1_HANDLED.load(Ordering::SeqCst), results))
        });
        // Answer pings until the host closes the channel (or kills this process).
        while let Ok(message) = channel.recv() {
            if message == "ping" && channel.send("alive").is_err() {
                break;
            }
        }
        code
    })?;
    let (ns, handled_usr1, results): (NsId, usize, Vec<String>) = receive(child.channel())?;
    let pid = child.pid();
    kill(pid, Signal::SIGTERM).map_err(StepError::Signal)?;
    let alive = child.channel().send("ping").is_ok() && child.channel().recv().is_ok_and(|m| m == "alive");
    kill(pid, Signal::SIGKILL).map_err(StepError::Signal)?;
    Ok(SignalStory {
        ns,
        handled_usr1,
        sent_from_inside: SENT_FROM_INSIDE.iter().copied().zip(results).collect(),
        alive_after_host_sigterm: alive,
        after_host_sigkill: child.wait().map_err(StepError::Channel)?,
    })
}
// ANCHOR_END: signals

// ---------------------------------------------------------------------------------------------------
// Step 6: when init dies.

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

// ---------------------------------------------------------------------------------------------------
// Step 7: unshare moves the children, not the caller.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_views_survive_the_channel() {
        let status = Status {
            name: "ns init".into(),
            state: 'S',
            pid: 1,
            ppid: 0,
            nspid: vec![12345, 1],
        };
        let view = LevelView {
            level: 2,
            ns: NsId {
                kind: Kind::Pid,
                inode: 4026532002,
            },
            getppid: 0,
            visible: vec![1, 2, 3],
        };
        let (mut parent, mut child) = Channel::pair().unwrap();
        child
            .reply(&Ok::<_, nskit::ChildError>((
                vec![status.clone()],
                vec![view.clone()],
            )))
            .unwrap();
        let (statuses, views): (Vec<Status>, Vec<LevelView>) = receive(&mut parent).unwrap();
        assert_eq!((statuses, views), (vec![status], vec![view]));
    }
}
