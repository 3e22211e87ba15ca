//! The time namespace chapter: processes with their own CLOCK_MONOTONIC and CLOCK_BOOTTIME, each the
//! host's clock plus an offset written before the first process enters, while CLOCK_REALTIME, the wall
//! clock, stays the same for everyone (time_namespaces(7)).
//!
//! It exists for checkpoint/restore (CRIU): a container frozen on one machine and restored on another
//! must find its monotonic clocks where they were, not jumped to the new machine's uptime.
//!
//! Each `pub fn` below is one step of the lesson: it makes the namespaces, lets the processes in them
//! observe what they see, and returns those observations as plain data; `main.rs` prints them.
//! [`clocks`] reads the clocks and the offsets file; [`vdso`] times a clock read.

pub mod clocks;
pub mod vdso;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::{Channel, ChildError, Spawn, SpawnError, UserNs};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clocks::{Clock, Nanos, Offset, Offsets, line, read_offsets, read_uptime, write_offsets};
use crate::vdso::{Cost, measure, monotonic_by_syscall};

/// The inode of the initial time namespace, the one every process is in unless something put it
/// elsewhere: the kernel gives it the same number on every machine (`PROC_TIME_INIT_INO`).
pub const INITIAL_TIME_NS: u64 = 0xEFFF_FFFA;

/// `CLONE_NEWTIME`. unshare(2) takes it (and clone3(2), on recent kernels), clone(2) cannot: its bit
/// is also part of clone's exit-signal byte.
pub fn clone_newtime() -> CloneFlags {
    Kind::Time.clone_flag()
}

/// The process that calls unshare in every step from 3 on: a child in no new namespace but, when the
/// caller is not root (or `force_userns`), a new user namespace, in which it holds the CAP_SYS_ADMIN
/// that `unshare(CLONE_NEWTIME)` needs and the CAP_SYS_TIME that writing offsets needs.
pub fn caller_spawn(force_userns: bool) -> Spawn {
    let user = if force_userns {
        UserNs::Always
    } else {
        UserNs::Auto
    };
    Spawn::new(CloneFlags::empty()).user(user)
}

// ---------------------------------------------------------------------------------------------------
// What one process sees.

/// Which time namespace a process is in, and which one its next children will be born in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// `/proc/<pid>/ns/time`.
    pub time: NsId,
    /// `/proc/<pid>/ns/time_for_children`.
    pub for_children: NsId,
}

/// Reads `who`'s two time namespace links.
pub fn membership(who: Proc) -> io::Result<Membership> {
    let for_children = fs::metadata(who.dir().join("ns/time_for_children"))?;
    Ok(Membership {
        time: ns_id(who, Kind::Time)?,
        for_children: NsId {
            kind: Kind::Time,
            inode: for_children.ino(),
        },
    })
}

/// The three clocks, read one after the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clocks {
    pub monotonic: Nanos,
    pub boottime: Nanos,
    pub realtime: Nanos,
}

impl Clocks {
    pub fn read() -> Result<Clocks, Errno> {
        Ok(Clocks {
            monotonic: Clock::Monotonic.now()?,
            boottime: Clock::Boottime.now()?,
            realtime: Clock::Realtime.now()?,
        })
    }

    pub fn of(&self, clock: Clock) -> Nanos {
        match clock {
            Clock::Monotonic => self.monotonic,
            Clock::Boottime => self.boottime,
            Clock::Realtime => self.realtime,
        }
    }
}

/// What one process sees through its time namespace; a child sends it to its parent as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeView {
    pub ns: Membership,
    /// `/proc/self/timens_offsets`: the offsets of `ns.for_children`.
    pub offsets: Offsets,
    pub clocks: Clocks,
    /// `/proc/uptime`'s first field.
    pub uptime: Nanos,
}

/// Why a process could not read what it sees.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(
        "this kernel has no time namespaces (there is no /proc/self/ns/time): they need Linux 5.6 or \
         later, built with CONFIG_TIME_NS"
    )]
    Unsupported,
    #[error("cannot read {what}: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the clocks: {0}")]
    Clock(#[source] Errno),
}

// ANCHOR: observe
/// Reads the calling process's time namespaces, the offsets file, its clocks and `/proc/uptime`.
pub fn observe() -> Result<TimeView, ObserveError> {
    let read = |what| move |source| ObserveError::Read { what, source };
    let ns = membership(Proc::Current).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ObserveError::Unsupported,
        _ => ObserveError::Read {
            what: "/proc/self/ns/time",
            source: e,
        },
    })?;
    let offsets = read_offsets(Proc::Current).map_err(read("/proc/self/timens_offsets"))?;
    let clocks = Clocks::read().map_err(ObserveError::Clock)?;
    let uptime = read_uptime().map_err(read("/proc/uptime"))?;
    Ok(TimeView {
        ns,
        offsets,
        clocks,
        uptime,
    })
}
// ANCHOR_END: observe

// ---------------------------------------------------------------------------------------------------
// Step 2: failure first.

/// What step 2 writes into the host's offsets file: the value it already has, so that even a success
/// would change nothing.
pub const HOST_WRITE: &str = "monotonic 0 0\n";

// ANCHOR: failure_first
/// Step 2, failure first: writes the host's own offsets. An ordinary user gets EPERM: no CAP_SYS_TIME
/// in the user namespace that owns the host's time namespace. Root gets EACCES: processes have been
/// in the host's time namespace since boot, so its offsets are frozen.
pub fn try_write_host_offsets() -> Result<(), Errno> {
    write_offsets(Proc::Current, HOST_WRITE)
}

/// Step 2, continued: uid 0 with every capability in a new user namespace still gets EPERM, because
/// the host's time namespace is owned by the initial user namespace.
pub fn try_write_host_offsets_from_userns() -> Result<Result<(), Errno>, StepError> {
    let mut child = Spawn::new(CloneFlags::CLONE_NEWUSER).run(|channel| {
        let written = try_write_host_offsets().map_err(|errno| ChildError::sys("write", errno));
        i32::from(channel.reply(&written).is_err())
    })?;
    let reply = child.channel().recv_reply::<()>();
    child.wait().map_err(nskit::StepError::Channel)?;
    match reply {
        Ok(()) => Ok(Ok(())),
        Err(nskit::StepError::Child(e)) => Ok(Err(e.errno().unwrap_or(Errno::EIO))),
        Err(other) => Err(other.into()),
    }
}
// ANCHOR_END: failure_first

// ---------------------------------------------------------------------------------------------------
// The recipe every later step starts with, run by the caller.

// ANCHOR: new_time_ns
/// Makes a new time namespace for the caller's next children. The caller itself stays where it is:
/// its offsets can still be written, because no process is in the new namespace yet.
pub fn unshare_time() -> Result<(), ChildError> {
    unshare(clone_newtime()).map_err(|errno| {
        let why = match errno {
            Errno::EINVAL => "this kernel has no time namespaces (CONFIG_TIME_NS, Linux 5.6 or later)",
            Errno::EPERM => "no CAP_SYS_ADMIN in the caller's user namespace",
            other => other.desc(),
        };
        failed("unshare(CLONE_NEWTIME)", errno, why)
    })
}

/// Writes both offsets of the caller's `time_for_children` namespace, through the caller's own
/// `/proc/self/timens_offsets`.
pub fn set_offsets(offsets: &Offsets) -> Result<(), ChildError> {
    write_offsets(Proc::Current, &offsets.lines())
        .map_err(|errno| failed("write /proc/self/timens_offsets", errno, why_not_written(errno)))
}
// ANCHOR_END: new_time_ns

/// Why the kernel refused an offsets file write, in one line.
pub fn why_not_written(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => "no CAP_SYS_TIME in the user namespace that owns the time namespace",
        Errno::EACCES => "a process is already in the namespace, so its offsets are frozen",
        Errno::EINVAL => "only CLOCK_MONOTONIC and CLOCK_BOOTTIME have offsets",
        Errno::ERANGE => "the offset would put the clock below zero, or past about 146 years",
        other => other.desc(),
    }
}

/// A failed system call of a child's step, with the reason said in the chapter's words.
fn failed(step: &str, errno: Errno, why: &str) -> ChildError {
    ChildError {
        step: step.to_owned(),
        errno: Some(errno as i32),
        message: format!("{}: {why}", errno_name(errno)),
    }
}

/// `EPERM`: the name, as the demo prints it.
pub fn errno_name(errno: Errno) -> String {
    format!("{errno:?}")
}

/// A child's step that failed on something other than a system call.
fn broke<E: std::fmt::Display>(step: &'static str) -> impl Fn(E) -> ChildError {
    move |e| ChildError::new(step, e)
}

/// A clock read that failed in a child's step.
fn clock_failed(errno: Errno) -> ChildError {
    failed("clock_gettime", errno, errno.desc())
}

/// The child's side of a step: runs `work` and sends its result, what it saw or why it could not.
fn answer<T: Serialize>(channel: &mut Channel, work: impl FnOnce() -> Result<T, ChildError>) -> i32 {
    let result = work();
    let code = i32::from(result.is_err());
    if channel.reply(&result).is_err() {
        return 1;
    }
    code
}

// ANCHOR: first_child
/// The caller's next child after `unshare(CLONE_NEWTIME)`: a plain clone, no flag asking for anything,
/// and yet it is born in the caller's `time_for_children`. It runs `body` there and sends back what
/// it returns.
fn first_child<T>(body: impl FnOnce() -> Result<T, ChildError>) -> Result<T, ChildError>
where
    T: Serialize + DeserializeOwned,
{
    fn lost(e: impl std::fmt::Display) -> ChildError {
        ChildError::new("first child", e)
    }
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| answer(channel, body))
        .map_err(lost)?;
    let reply = child.channel().recv_reply::<T>();
    child.wait().map_err(lost)?;
    reply.map_err(|e| match e {
        nskit::StepError::Child(e) => e,
        other => lost(other),
    })
}
// ANCHOR_END: first_child

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("the caller did not stop after its execve: {0}")]
    NoStop(String),
    #[error("cannot look at the stopped caller: {0}")]
    Stopped(#[source] io::Error),
}

impl From<SpawnError> for StepError {
    fn from(e: SpawnError) -> StepError {
        StepError::Child(nskit::StepError::Spawn(e))
    }
}

/// Spawns the caller, lets it run `work`, and returns what it sent.
fn run_caller<T>(spawn: &Spawn, work: impl FnOnce() -> Result<T, ChildError>) -> Result<T, StepError>
where
    T: Serialize + DeserializeOwned,
{
    let mut caller = spawn.run(|channel| answer(channel, work))?;
    let story = caller.channel().recv_reply::<T>();
    caller.wait().map_err(nskit::StepError::Channel)?;
    Ok(story?)
}

// ---------------------------------------------------------------------------------------------------
// Step 3: unshare, then the offsets.

/// What step 3 tries to write for CLOCK_REALTIME: an hour ahead.
pub const REALTIME_TRY: Offset = Offset::from_secs(3600);

/// How far below zero step 3 tries to put CLOCK_BOOTTIME: a day more than it has run.
pub const BELOW_ZERO_BY: i64 = 86_400;

/// What the caller saw around `unshare(CLONE_NEWTIME)` and its writes to the offsets file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnshareStory {
    pub before: Membership,
    pub after: Membership,
    /// The new namespace's offsets before any write: a copy of the caller's namespace's.
    pub inherited: Offsets,
    /// Writing an offset for CLOCK_REALTIME: EINVAL.
    #[serde(with = "nskit::channel::errno_result")]
    pub realtime: Result<(), Errno>,
    /// The CLOCK_BOOTTIME offset tried, a day more negative than the clock's reading.
    pub below_zero_secs: i64,
    /// Writing it: ERANGE.
    #[serde(with = "nskit::channel::errno_result")]
    pub below_zero: Result<(), Errno>,
    /// Writing the offsets asked for: accepted.
    #[serde(with = "nskit::channel::errno_result")]
    pub written: Result<(), Errno>,
    /// The offsets file after the writes.
    pub offsets: Offsets,
}

// ANCHOR: unshare
/// Step 3: the caller unshares a time namespace and stays in its own; only its `time_for_children`
/// changes. The offsets file, which shows `time_for_children`'s offsets, now takes writes: not for
/// CLOCK_REALTIME, not below zero, but `offsets` for the two clocks that have them.
pub fn unshare_story(spawn: &Spawn, offsets: Offsets) -> Result<UnshareStory, StepError> {
    run_caller(spawn, || {
        let ns = || membership(Proc::Current).map_err(broke("read /proc/self/ns"));
        let read_back = || read_offsets(Proc::Current).map_err(broke("read timens_offsets"));
        let before = ns()?;
        unshare_time()?;
        let after = ns()?;
        let inherited = read_back()?;
        let realtime = write_offsets(Proc::Current, &line(Clock::Realtime, REALTIME_TRY));
        let boottime = Clock::Boottime.now().map_err(clock_failed)?;
        let below_zero_secs = -(boottime.round_secs() + BELOW_ZERO_BY);
        let below_zero = write_offsets(
            Proc::Current,
            &line(Clock::Boottime, Offset::from_secs(below_zero_secs)),
        );
        let written = write_offsets(Proc::Current, &offsets.lines());
        Ok(UnshareStory {
            before,
            after,
            inherited,
            realtime,
            below_zero_secs,
            below_zero,
            written,
            offsets: read_back()?,
        })
    })
}
// ANCHOR_END: unshare

// ---------------------------------------------------------------------------------------------------
// Step 4: the first child enters.

/// What the caller and its first child saw, side by side, and the caller's write once the child was
/// in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterStory {
    /// The caller, just before it created the child: still in the host's namespace.
    pub caller: TimeView,
    pub child: TimeView,
    /// Writing the offsets again, after the child entered: EACCES.
    #[serde(with = "nskit::channel::errno_result")]
    pub too_late: Result<(), Errno>,
}

// ANCHOR: enter
/// Step 4: the caller makes the namespace with `offsets`, reads its own clocks and creates its first
/// child, which reads its clocks in the new namespace: the host's plus the offsets, except the wall
/// clock. With a process inside, the offsets are frozen: the caller's next write fails with EACCES.
pub fn enter_story(spawn: &Spawn, offsets: Offsets) -> Result<EnterStory, StepError> {
    run_caller(spawn, || {
        unshare_time()?;
        set_offsets(&offsets)?;
        let caller = observe().map_err(broke("observe"))?;
        let child = first_child(|| observe().map_err(broke("observe")))?;
        let too_late = write_offsets(Proc::Current, HOST_WRITE);
        Ok(EnterStory {
            caller,
            child,
            too_late,
        })
    })
}
// ANCHOR_END: enter

// ---------------------------------------------------------------------------------------------------
// Step 5: execve moves the caller itself, since Linux 6.2.

/// Which rule the running kernel follows for a process whose `time_for_children` is not its own time
/// namespace. Linux 6.2 changed it (commit 2b5f9dad32ed, "fs/exec: switch timens when a task gets a
/// new mm"): a time namespace goes with a memory map, where the vDSO finds the namespace's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecRule {
    /// Linux 6.2 and later: a task enters its `time_for_children` whenever it gets a new memory map,
    /// as a child cloned without CLONE_VM or at execve(2). A thread keeps the caller's memory map,
    /// and so its namespace.
    NewMemoryEnters,
    /// Linux 5.6 to 6.1: only a new child enters. execve(2) leaves the caller where it was, and a
    /// task that would share its memory (a thread, a vfork child) is refused with EINVAL.
    OnlyChildrenEnter,
}

impl ExecRule {
    /// The rule a kernel follows, told by what happened when the caller, its `time_for_children`
    /// another namespace, started a thread: `None` for anything neither rule does.
    pub fn from_thread(thread: Result<NsId, Errno>) -> Option<ExecRule> {
        match thread {
            Ok(_) => Some(ExecRule::NewMemoryEnters),
            Err(Errno::EINVAL) => Some(ExecRule::OnlyChildrenEnter),
            Err(_) => None,
        }
    }
}

/// The caller's namespaces before its execve, the thread it started just before, and the same
/// process's namespaces after the execve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecStory {
    pub before_exec: Membership,
    /// The time namespace of a thread the caller started after its unshare (the thread's own
    /// `/proc/thread-self/ns/time`), or why the kernel refused the thread.
    pub thread: Result<NsId, Errno>,
    pub after_exec: Membership,
    /// `/proc/<pid>/comm` after the execve: the name of the program it now runs.
    pub program: String,
}

impl ExecStory {
    /// Whether the execve moved the caller into the namespace that was its `time_for_children`.
    pub fn moved(&self) -> bool {
        self.after_exec.time == self.before_exec.for_children
    }
}

/// What the caller reports before its execve.
#[derive(Serialize, Deserialize)]
struct BeforeExec {
    ns: Membership,
    #[serde(with = "nskit::channel::errno_or")]
    thread: Result<NsId, Errno>,
}

// ANCHOR: thread
/// Starts a thread, a task that shares the caller's memory map (clone(2) with CLONE_VM and
/// CLONE_THREAD, through pthread_create(3)), waits for it, and returns the time namespace the thread
/// was in; or the errno with which the kernel refused it.
pub fn thread_time_ns() -> Result<Result<NsId, Errno>, ChildError> {
    let started = std::thread::Builder::new()
        .name("probe".into())
        .spawn(|| fs::metadata("/proc/thread-self/ns/time").map(|ns| ns.ino()));
    let thread = match started {
        Ok(thread) => thread,
        Err(e) => return Ok(Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))),
    };
    let inode = thread
        .join()
        .map_err(|_| ChildError::new("thread", "it panicked"))?
        .map_err(broke("read /proc/thread-self/ns/time"))?;
    Ok(Ok(NsId {
        kind: Kind::Time,
        inode,
    }))
}
// ANCHOR_END: thread

// ANCHOR: exec
/// Step 5: the caller unshares and writes the offsets, starts a thread, then asks to be traced
/// (ptrace(2) `PTRACE_TRACEME`) and executes its own binary again. A traced process stops with
/// SIGTRAP right after a successful execve, before the new program's first instruction: the parent
/// reads its namespaces then, and kills it. Since Linux 6.2 the execve has moved it into its
/// `time_for_children`, and the thread ran in the caller's namespace; before, the execve left it
/// where it was, and the thread was refused.
pub fn exec_story(spawn: &Spawn, offsets: Offsets) -> Result<ExecStory, StepError> {
    let exe = std::env::current_exe().map_err(StepError::Stopped)?;
    let exe = CString::new(exe.as_os_str().as_bytes()).map_err(|e| StepError::Stopped(e.into()))?;
    let mut caller = spawn.run(|channel| {
        let ready = unshare_time()
            .and_then(|()| set_offsets(&offsets))
            .and_then(|()| membership(Proc::Current).map_err(broke("read /proc/self/ns")))
            .and_then(|ns| {
                Ok(BeforeExec {
                    ns,
                    thread: thread_time_ns()?,
                })
            });
        if channel.reply(&ready).is_err() || ready.is_err() {
            return 1;
        }
        let error = match nix::sys::ptrace::traceme() {
            Err(errno) => ChildError::sys("ptrace(PTRACE_TRACEME)", errno),
            Ok(()) => match nix::unistd::execv(&exe, &[&exe]) {
                Err(errno) => ChildError::sys("execve", errno),
                Ok(never) => match never {},
            },
        };
        let _ = channel.reply::<()>(&Err(error));
        1
    })?;
    let before: BeforeExec = caller.channel().recv_reply()?;
    let pid = caller.pid();
    match waitpid(pid, None) {
        Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
        Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
            // The execve failed: the caller said why before it exited, and waitpid has reaped it.
            let why = caller.channel().recv_reply::<()>();
            caller.reaped_by_caller();
            return Err(match why {
                Err(e) => e.into(),
                Ok(()) => StepError::NoStop(format!("{status:?}")),
            });
        }
        other => return Err(StepError::NoStop(format!("{other:?}"))),
    }
    let after_exec = membership(Proc::Pid(pid)).map_err(StepError::Stopped);
    let program = fs::read_to_string(format!("/proc/{pid}/comm")).map_err(StepError::Stopped);
    let _ = kill(pid, Signal::SIGKILL);
    caller.wait().map_err(nskit::StepError::Channel)?;
    Ok(ExecStory {
        before_exec: before.ns,
        thread: before.thread,
        after_exec: after_exec?,
        program: program?.trim_end().to_owned(),
    })
}
// ANCHOR_END: exec

// ---------------------------------------------------------------------------------------------------
// Step 6: nesting.

/// A time namespace made inside another: the host's clocks, the outer namespace's first process, the
/// offsets the inner namespace starts with, and the inner one's first process after zero offsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedStory {
    /// The caller's clocks, in the host's namespace, just before the outer child was created.
    pub host: Clocks,
    /// The outer namespace's first process, before its own unshare.
    pub outer: TimeView,
    /// The inner namespace's offsets right after the outer child unshared it: inherited.
    pub inherited: Offsets,
    /// The outer child's write of zero offsets for the inner namespace.
    #[serde(with = "nskit::channel::errno_result")]
    pub reset: Result<(), Errno>,
    /// The inner namespace's first process.
    pub inner: TimeView,
}

/// What the outer child reports in step 6.
#[derive(Serialize, Deserialize)]
struct Outer {
    outer: TimeView,
    inherited: Offsets,
    #[serde(with = "nskit::channel::errno_result")]
    reset: Result<(), Errno>,
    inner: TimeView,
}

// ANCHOR: nested
/// Step 6: the outer namespace runs `offsets` ahead of the host. Its first process unshares a time
/// namespace of its own, which starts with a copy of its offsets, and writes zero offsets into it.
/// Zero means the host's clocks: offsets always count from the initial time namespace's clocks, never
/// from the parent namespace's.
pub fn nested_story(spawn: &Spawn, offsets: Offsets) -> Result<NestedStory, StepError> {
    run_caller(spawn, || {
        unshare_time()?;
        set_offsets(&offsets)?;
        let host = Clocks::read().map_err(clock_failed)?;
        let below = first_child(|| {
            let outer = observe().map_err(broke("observe"))?;
            unshare_time()?;
            let inherited = read_offsets(Proc::Current).map_err(broke("read timens_offsets"))?;
            let reset = write_offsets(Proc::Current, &Offsets::ZERO.lines());
            let inner = first_child(|| observe().map_err(broke("observe")))?;
            Ok(Outer {
                outer,
                inherited,
                reset,
                inner,
            })
        })?;
        Ok(NestedStory {
            host,
            outer: below.outer,
            inherited: below.inherited,
            reset: below.reset,
            inner: below.inner,
        })
    })
}
// ANCHOR_END: nested

// ---------------------------------------------------------------------------------------------------
// Step 7: the vDSO.

/// One side of step 7: a process's namespace, what a clock read costs it, and CLOCK_MONOTONIC as each
/// path returned it (read before the timing, so that the two sides' readings are close in time).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub ns: NsId,
    pub by_vdso: Nanos,
    pub by_syscall: Nanos,
    pub cost: Cost,
}

/// Step 7: the caller in the host's namespace and its first child in a namespace with offsets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VdsoStory {
    pub host: Measured,
    pub child: Measured,
}

// ANCHOR: vdso
/// Step 7: the caller and then its first child, in a namespace with `offsets`, each read
/// CLOCK_MONOTONIC through the vDSO and through the system call, and time `calls` reads of each.
/// Both paths return the namespace's clock; the vDSO still answers without entering the kernel.
pub fn vdso_story(spawn: &Spawn, offsets: Offsets, calls: u32) -> Result<VdsoStory, StepError> {
    run_caller(spawn, || {
        unshare_time()?;
        set_offsets(&offsets)?;
        let host = Readings::take()?;
        let child = first_child(|| Readings::take()?.timed(calls))?;
        Ok(VdsoStory {
            host: host.timed(calls)?,
            child,
        })
    })
}

/// A process's namespace and CLOCK_MONOTONIC read both ways, before any timing: the readings of the
/// two sides are then taken close together.
struct Readings {
    ns: NsId,
    by_vdso: Nanos,
    by_syscall: Nanos,
}

impl Readings {
    fn take() -> Result<Readings, ChildError> {
        Ok(Readings {
            ns: ns_id(Proc::Current, Kind::Time).map_err(broke("read /proc/self/ns/time"))?,
            by_vdso: Clock::Monotonic.now().map_err(clock_failed)?,
            by_syscall: monotonic_by_syscall().map_err(clock_failed)?,
        })
    }

    fn timed(self, calls: u32) -> Result<Measured, ChildError> {
        Ok(Measured {
            ns: self.ns,
            by_vdso: self.by_vdso,
            by_syscall: self.by_syscall,
            cost: measure(calls).map_err(clock_failed)?,
        })
    }
}
// ANCHOR_END: vdso

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_survive_the_channel() {
        let ns = NsId {
            kind: Kind::Time,
            inode: INITIAL_TIME_NS,
        };
        let view = TimeView {
            ns: Membership {
                time: ns,
                for_children: ns,
            },
            offsets: Offsets {
                monotonic: Offset::from_secs(-5),
                boottime: Offset { secs: 7, nanos: 1 },
            },
            clocks: Clocks {
                monotonic: Nanos(1),
                boottime: Nanos(2),
                realtime: Nanos(i64::MAX),
            },
            uptime: Nanos(3),
        };
        let line = serde_json::to_string(&view).unwrap();
        assert_eq!(serde_json::from_str::<TimeView>(&line).unwrap(), view);
        let story = UnshareStory {
            before: view.ns,
            after: view.ns,
            inherited: Offsets::ZERO,
            realtime: Err(Errno::EINVAL),
            below_zero_secs: -1,
            below_zero: Err(Errno::ERANGE),
            written: Ok(()),
            offsets: view.offsets,
        };
        let line = serde_json::to_string(&story).unwrap();
        assert_eq!(serde_json::from_str::<UnshareStory>(&line).unwrap(), story);
    }

    #[test]
    fn own_namespace_is_readable() {
        let ns = membership(Proc::Current).unwrap();
        assert_eq!(ns.time, ns.for_children, "no unshare in a test thread, ever");
    }
}
