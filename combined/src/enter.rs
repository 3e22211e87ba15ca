//! A further process in a running container: the OCI runtime's `exec`, where `docker exec`,
//! `podman exec` and `kubectl exec` end. It joins the namespaces of the container's first process
//! with setns(2), joins its cgroups, and then takes the very last steps the container's own command
//! took (`container.rs`, step 8). setns(2), namespaces(7), pid_namespaces(7), user_namespaces(7).
//!
// ANCHOR: story
//! 1. runtime: opens `/proc/<pid>/ns/<kind>` of every namespace the container's process does not share
//!    with it, and makes itself non-dumpable: its children inherit that, so no process of the
//!    container can open the runtime's binary or files through their `/proc/<pid>` (CVE-2019-5736);
//! 2. runtime: takes the config's OOM score for the process to inherit, clones a joiner, a process in
//!    the host's PID namespace, which the container cannot see, moves it into the container's cgroups
//!    and says `go`;
//! 3. joiner: joins every namespace of the container's, in order: the user namespace first when the
//!    runtime is not root (joining the others takes capabilities there), last when it is root (root
//!    may join any namespace from the host, but from inside the container's user namespace only those
//!    it owns). The PID namespace is joined for its children only (setns(2) with a PID namespace moves
//!    the caller's future children, never the caller);
//! 4. joiner: becomes root inside, joins a new session keyring, makes a pty in the container's devpts
//!    when asked for one, and reports `ready` (with the pty's master);
//! 5. joiner: step 8 of the container's story but the terminal and execve: limits, working directory,
//!    signals, no_new_privs, capabilities, identity, the container's seccomp filter. Then it closes
//!    every descriptor the process is not to have;
//! 6. joiner: clones the process as the runtime's own child (CLONE_PARENT), born in the container's
//!    PID namespace with every namespace joined and nothing but the command's privileges, tells the
//!    runtime its PID, and exits. The process takes its own session (and the pty as its terminal) and
//!    executes the command. So the container never sees a process of the runtime's that holds more
//!    than the container itself: one granted CAP_SYS_PTRACE could otherwise open the host's files
//!    through its `/proc/<pid>/root`, or take it over with ptrace and use its capabilities;
//! 7. runtime: hands the pty to the engine's console socket or relays it, and waits for the process,
//!    passing signals on, unless it is to return at once (`--detach`): then whoever reaps orphans for
//!    it (the engine's shim, conmon) reaps the process.
// ANCHOR_END: story

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::Pid;
use nskit::{Channel, Spawn, UserNs};

use crate::container::{self, InContainer, Plan, Step, StepFailed};
use crate::terminal::Relay;

/// The namespaces a process can be in, each with the name of its file in `/proc/<pid>/ns/`, the user
/// namespace first.
fn kinds() -> [(CloneFlags, &'static str); 8] {
    [
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNS, "mnt"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        // setns(2) with a time namespace moves the caller itself, as long as it has one thread.
        (time_demo::clone_newtime(), "time"),
    ]
}

/// A process started in a running container, as the runtime holds it.
#[derive(Debug)]
pub struct Entered {
    child: nskit::Child,
    /// The master end of its pty, when it has one.
    pub pty: Option<OwnedFd>,
    signals: SigSet,
}

impl Entered {
    /// Its pid, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// Leaves the process running, for whoever reaps the runtime's orphans (`exec --detach`).
    pub fn release(self) {
        self.child.release();
    }

    /// Waits until the process exits, passing the runtime's signals on and, when `relay` is asked
    /// for and it has a pty, relaying the runtime's stdin and stdout to it. Returns its exit status.
    pub fn wait(mut self, relay: bool) -> Result<i32, StepFailed> {
        let relay =
            match (relay, self.pty.take()) {
                (true, Some(master)) => Some(Relay::start(master).map_err(|e| {
                    container::failed(Step::Terminal, format!("cannot relay the terminal: {e}"))
                })?),
                _ => None,
            };
        let status = container::supervise(self.child.pid(), &self.signals, relay)
            .map_err(|e| container::failed(Step::Init, e))?;
        self.child.reaped_by_caller();
        Ok(status)
    }
}

// ANCHOR: enter
/// Steps 1 to 6: starts `plan`'s process in the container whose first process is `target`, in the
/// cgroup directories `cgroups`. The process runs its command at once. `still_target` says whether
/// `target` is still the container's process (its start time unchanged): checked once its namespaces
/// are open, so that a PID reused in between by another process (the host's) is never joined.
pub fn enter(
    plan: &Plan,
    target: Pid,
    still_target: &dyn Fn() -> bool,
    cgroups: &[PathBuf],
) -> Result<Entered, StepFailed> {
    let theirs = namespaces_of(target)?;
    if !still_target() {
        return Err(container::failed(Step::Clone, "the container's process is gone"));
    }
    // The config's OOM score, which the joiner and the process inherit: set here, through the host's
    // /proc, while this process is still dumpable (a non-dumpable process's /proc files are root's,
    // which a rootless runtime cannot write) and has a PID in the /proc it sees (the container's has
    // none for the joiner).
    container::set_oom_score_adj(plan, None).map_err(|e| container::failed(Step::Init, e))?;
    container::make_non_dumpable()
        .map_err(|e| container::failed(Step::Clone, format!("cannot make the runtime non-dumpable: {e}")))?;
    let signals = container::supervised_set();
    signals
        .thread_block()
        .map_err(|e| container::failed(Step::Clone, format!("cannot block signals: {e}")))?;
    let mut order: Vec<(CloneFlags, i32)> = theirs.iter().map(|(kind, fd)| (*kind, fd.as_raw_fd())).collect();
    // kinds() lists the user namespace first; root joins it last (step 3).
    let above = match nskit::userns::is_root() {
        true => None,
        false => owner_of_the_others(&theirs)?,
    };
    if nskit::userns::is_root() {
        order.sort_by_key(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
    } else if let Some(above) = &above {
        // The process's own user namespace last, the one that owns the others first.
        order.sort_by_key(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
        order.insert(0, (CloneFlags::CLONE_NEWUSER, above.as_raw_fd()));
    }
    let in_user_ns = theirs.iter().any(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| joiner_main(plan, &order, in_user_ns, channel))
        .map_err(|e| container::failed(Step::Clone, e))?;
    // The joiner has its own copies of the namespaces' descriptors.
    drop(theirs);
    drop(above);
    for dir in cgroups {
        cgroup_demo::cgroup::move_process(dir, child.pid())
            .map_err(|e| container::failed(Step::Cgroup, e))?;
    }
    let channel = child.channel();
    channel
        .send_msg(&())
        .map_err(|e| container::failed(Step::Clone, format!("the joiner went away: {e}")))?;
    channel.recv_reply::<()>().map_err(failed_inside)?;
    let pty = match plan.tty {
        true => Some(
            channel
                .take_fd()
                .ok_or_else(|| container::failed(Step::Terminal, "the joiner sent no terminal"))?,
        ),
        false => None,
    };
    // The process held its copy of the channel for a moment, within reach of the container's
    // processes allowed to ptrace it: this reply is taken only if it names the runtime's own child.
    let process = Pid::from_raw(channel.recv_reply::<i32>().map_err(failed_inside)?);
    child.continued_by(process).map_err(|e| {
        container::failed(
            Step::Clone,
            format!("the reply naming the process was not the joiner's ({e}): refused"),
        )
    })?;
    Ok(Entered { child, pty, signals })
}
// ANCHOR_END: enter

/// The namespaces of `target` that are not this process's own, opened (close-on-exec).
fn namespaces_of(target: Pid) -> Result<Vec<(CloneFlags, OwnedFd)>, StepFailed> {
    let mut theirs = Vec::new();
    for (kind, name) in kinds() {
        let path = format!("/proc/{target}/ns/{name}");
        let err =
            |e: &dyn std::fmt::Display| container::failed(Step::Clone, format!("cannot open {path}: {e}"));
        let file = fs::File::open(&path).map_err(|e| err(&e))?;
        let mine = fs::metadata(format!("/proc/self/ns/{name}")).map_err(|e| err(&e))?;
        let same = file
            .metadata()
            .is_ok_and(|m| m.ino() == mine.ino() && m.dev() == mine.dev());
        if !same {
            theirs.push((kind, OwnedFd::from(file)));
        }
    }
    Ok(theirs)
}

/// The user namespace that owns the container's other namespaces, when it is not the one its process
/// is in: a process that kept CAP_SYS_ADMIN moved into a user namespace nested in the container's
/// (`locked`). A runtime that is not root gains its capabilities over the other namespaces by joining
/// the one that owns them; in the nested one, joined first, it would hold none there.
fn owner_of_the_others(theirs: &[(CloneFlags, OwnedFd)]) -> Result<Option<OwnedFd>, StepFailed> {
    let find = |wanted: CloneFlags| theirs.iter().find(|(kind, _)| *kind == wanted).map(|(_, fd)| fd);
    let (Some(user), Some(pid)) = (find(CloneFlags::CLONE_NEWUSER), find(CloneFlags::CLONE_NEWPID)) else {
        return Ok(None);
    };
    let fail = |e: std::io::Error| {
        container::failed(
            Step::Clone,
            format!("cannot find the owner of the container's namespaces: {e}"),
        )
    };
    let pid = fs::File::from(pid.try_clone().map_err(fail)?);
    let owner = user_demo::introspect::owner(&pid).map_err(fail)?;
    let (owner_id, user_id) = (
        owner.metadata().map_err(fail)?,
        fs::metadata(format!("/proc/self/fd/{}", user.as_raw_fd())).map_err(fail)?,
    );
    match (owner_id.dev(), owner_id.ino()) == (user_id.dev(), user_id.ino()) {
        true => Ok(None),
        false => Ok(Some(OwnedFd::from(owner))),
    }
}

fn cannot_join(kind: CloneFlags, errno: Errno) -> StepFailed {
    container::failed(
        Step::Clone,
        format!("cannot join the container's {kind:?} namespace: {errno}"),
    )
}

/// A failure the joiner reported, by the step it names, or its silent end.
fn failed_inside(error: nskit::StepError) -> StepFailed {
    match error {
        nskit::StepError::Child(e) => {
            let step = Step::from_name(&e.step).unwrap_or(Step::Init);
            container::failed(step, InContainer(e))
        }
        e => container::failed(Step::Init, format!("the joiner exited during setup: {e}")),
    }
}

// ---- the joiner's and the process's side ------------------------------------------------------------

/// Steps 3 to 6, in the joiner; its exit status is for the runtime's `continued_by` only.
fn joiner_main(plan: &Plan, join: &[(CloneFlags, i32)], in_user_ns: bool, channel: &mut Channel) -> i32 {
    // The runtime blocked the signals it forwards; the command starts with none blocked.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    if channel.recv_msg::<()>().is_err() {
        return 1;
    }
    // What the process will show the container until its execve, a copy of this memory: no command
    // line or environment of the runtime's (host paths, the engine's variables). Here, while the host's
    // /proc still has this process in it.
    if let Err(why) = container::hide_launcher_memory(b"exec") {
        return report::<()>(channel, container::failed(Step::Clone, why));
    }
    let pty = match join_all(join).and_then(|()| prepare(plan, in_user_ns)) {
        Ok(pty) => pty,
        Err(e) => return report::<()>(channel, e),
    };
    let ready: nskit::Reply<()> = Ok(());
    let reported = match &pty {
        Some(master) => channel.send_msg_with_fd(&ready, master),
        None => channel.reply(&ready),
    };
    drop(pty);
    if reported.is_err() {
        return 1;
    }
    let dropped = container::drop_to_command(plan)
        .map_err(|e| container::failed(Step::Init, e))
        .and_then(|()| keep_only_what_the_command_gets(plan, channel));
    if let Err(e) = dropped {
        return report::<i32>(channel, e);
    }
    let channel_fd = channel.raw_fd();
    match nskit::clone_sibling(|| process_main(plan, channel_fd)) {
        Ok(pid) => i32::from(channel.reply::<i32>(&Ok(pid.as_raw())).is_err()),
        Err(errno) => report::<i32>(
            channel,
            container::failed(Step::Clone, format!("cannot start the process: {errno}")),
        ),
    }
}

/// Tells the runtime why the joiner stops, as the reply it waits for.
fn report<T: serde::Serialize>(channel: &mut Channel, failure: StepFailed) -> i32 {
    let reply: nskit::Reply<T> = Err(nskit::ChildError::new(failure.step.name(), &failure.source));
    let _ = channel.send_msg(&reply);
    i32::from(crate::EXIT_LAUNCHER)
}

/// Closes every descriptor but stdio, those `--preserve-fds` hands on and the channel: the process is
/// born with no more than the command will have (the runtime's lock on the container's state, for one,
/// would otherwise be open in the container until execve).
fn keep_only_what_the_command_gets(plan: &Plan, channel: &Channel) -> Result<(), StepFailed> {
    let mut keep: Vec<i32> = (3..3 + plan.preserve_fds).collect();
    keep.push(channel.raw_fd());
    // SAFETY: the joiner is single-threaded, and every descriptor it still uses is kept: the channel;
    // the rest (the namespaces', the pty's master) have been closed through their owners already.
    unsafe { nskit::process::close_from_3_except(&keep) }
        .map_err(|e| container::failed(Step::Init, format!("cannot close the runtime's descriptors: {e}")))
}

/// Step 6's end, in the process: its copy of the channel to the runtime closed, a session of its own
/// (the host's terminal is never its controlling terminal), the pty as its terminal when it has one,
/// and execve.
fn process_main(plan: &Plan, channel_fd: i32) -> i32 {
    // SAFETY: the joiner's `Channel` owns this descriptor in the joiner's frames, which this process
    // never returns to; its copy here is closed once and used nowhere else.
    unsafe { libc::close(channel_fd) };
    let taken = match plan.tty {
        true => container::take_terminal(),
        // Not a process group leader (a fresh clone), so setsid cannot fail.
        false => nix::unistd::setsid().map(drop).map_err(|e| e.to_string()),
    };
    if let Err(message) = taken {
        eprintln!("combined: {message}");
        return i32::from(crate::EXIT_LAUNCHER);
    }
    container::execute(plan)
}

/// Joins the namespaces in order (step 3).
fn join_all(join: &[(CloneFlags, i32)]) -> Result<(), StepFailed> {
    for (kind, fd) in join {
        // SAFETY: the runtime opened `fd` before the clone and keeps its own copy until the joiner has
        // answered; the joiner's copy is closed here, once, and used nowhere else.
        let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
        nix::sched::setns(&owned, *kind).map_err(|e| cannot_join(*kind, e))?;
    }
    Ok(())
}

/// Becomes root inside, joins a new session keyring and makes the pty (step 4).
fn prepare(plan: &Plan, in_user_ns: bool) -> Result<Option<OwnedFd>, StepFailed> {
    if in_user_ns {
        // Joining a user namespace keeps the host's ids, which read as unmapped inside until they
        // change; not `take_ids`, which would make this process dumpable again.
        user_demo::switch_ids(0, 0)
            .map_err(|e| container::failed(Step::Ids, format!("cannot become root inside: {e}")))?;
    }
    container::join_new_session_keyring().map_err(|e| container::failed(Step::Keyring, e))?;
    match plan.tty {
        true => crate::terminal::open_in_container().map(Some).map_err(|e| {
            container::failed(Step::Terminal, format!("cannot make a pty in the container: {e}"))
        }),
        false => Ok(None),
    }
}
