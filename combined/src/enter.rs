//! A further process in a running container: the OCI runtime's `exec`, where `docker exec`,
//! `podman exec` and `kubectl exec` end. It joins the namespaces of the container's first process
//! with setns(2), joins its cgroups, and then takes the very last steps the container's own command
//! took (`container.rs`, step 8). setns(2), namespaces(7), pid_namespaces(7), user_namespaces(7).
//!
// ANCHOR: story
//! 1. runtime: opens `/proc/<pid>/ns/<kind>` of every namespace the container's process does not share
//!    with it, and makes itself non-dumpable: its children inherit that, so no process of the
//!    container can open the runtime's binary or files through their `/proc/<pid>` (CVE-2019-5736);
//! 2. runtime: clones a joiner, a process in the host's PID namespace, which the container cannot see;
//! 3. joiner: joins every namespace of the container's, in order: the user namespace first when the
//!    runtime is not root (joining the others takes capabilities there), last when it is root (root
//!    may join any namespace from the host, but from inside the container's user namespace only those
//!    it owns). The PID namespace is joined for its children only (setns(2) with a PID namespace moves
//!    the caller's future children, never the caller);
//! 4. joiner: clones the process that will run the command as the runtime's own child (CLONE_PARENT),
//!    born in the container's PID namespace with every other namespace already joined, tells the
//!    runtime its PID, and exits. So a process of the container never sees one of the runtime's with
//!    the host's root and mounts: a container granted CAP_SYS_PTRACE could otherwise open the host's
//!    files through its `/proc/<pid>/root`, as runc's nsexec also prevents;
//! 5. runtime: moves the process into the container's cgroups and says `go`;
//! 6. process: starts a session of its own (the host's terminal is never its controlling terminal),
//!    becomes root inside, joins a new session keyring, makes a pty in the container's devpts when
//!    asked for one, and reports `ready`;
//! 7. process: step 8 of the container's story: limits, working directory, signals, no_new_privs,
//!    capabilities, identity, the container's seccomp filter, execve;
//! 8. runtime: hands the pty to the engine's console socket or relays it, and waits for the process,
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
/// cgroup directories `cgroups`. The process waits at nothing: it runs its command as soon as it has
/// reported `ready`. `still_target` says whether `target` is still the container's process (its start
/// time unchanged): checked once its namespaces are open, so that a PID reused in between by another
/// process (the host's) is never joined.
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
    container::make_non_dumpable()
        .map_err(|e| container::failed(Step::Clone, format!("cannot make the runtime non-dumpable: {e}")))?;
    let signals = container::supervised_set();
    signals
        .thread_block()
        .map_err(|e| container::failed(Step::Clone, format!("cannot block signals: {e}")))?;
    let mut order: Vec<(CloneFlags, i32)> = theirs.iter().map(|(kind, fd)| (*kind, fd.as_raw_fd())).collect();
    // kinds() lists the user namespace first; root joins it last (step 3).
    if nskit::userns::is_root() {
        order.sort_by_key(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
    }
    let in_user_ns = theirs.iter().any(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| joiner_main(plan, &order, in_user_ns, channel))
        .map_err(|e| container::failed(Step::Clone, e))?;
    // The joiner has its own copies of the namespaces' descriptors.
    drop(theirs);
    let process = match child.channel().recv_reply::<i32>() {
        Ok(pid) => Pid::from_raw(pid),
        Err(e) => return Err(joiner_failed(e)),
    };
    child
        .continued_by(process)
        .map_err(|e| container::failed(Step::Clone, format!("cannot wait for the joiner: {e}")))?;
    for dir in cgroups {
        cgroup_demo::cgroup::move_process(dir, child.pid())
            .map_err(|e| container::failed(Step::Cgroup, e))?;
    }
    let channel = child.channel();
    channel
        .send_msg(&())
        .map_err(|e| container::failed(Step::Clone, format!("the process went away: {e}")))?;
    if let Err(e) = channel.recv_reply::<()>() {
        return Err(joiner_failed(e));
    }
    let pty = match plan.tty {
        true => Some(
            channel
                .take_fd()
                .ok_or_else(|| container::failed(Step::Terminal, "the process sent no terminal"))?,
        ),
        false => None,
    };
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

fn cannot_join(kind: CloneFlags, errno: Errno) -> StepFailed {
    container::failed(
        Step::Clone,
        format!("cannot join the container's {kind:?} namespace: {errno}"),
    )
}

/// A failure the joiner or the process reported, by the step it names, or its silent end.
fn joiner_failed(error: nskit::StepError) -> StepFailed {
    match error {
        nskit::StepError::Child(e) => {
            let step = Step::from_name(&e.step).unwrap_or(Step::Init);
            container::failed(step, InContainer(e))
        }
        e => container::failed(Step::Init, format!("the process exited during setup: {e}")),
    }
}

// ---- the joiner's and the process's side ------------------------------------------------------------

/// Steps 3 and 4, in the joiner: joins the namespaces in order, then starts the process that runs the
/// command, and tells the runtime its PID.
fn joiner_main(plan: &Plan, join: &[(CloneFlags, i32)], in_user_ns: bool, channel: &mut Channel) -> i32 {
    if let Err(e) = join_all(join) {
        let _ = channel.reply::<i32>(&Err(nskit::ChildError::new(e.step.name(), &e.source)));
        return i32::from(crate::EXIT_LAUNCHER);
    }
    match nskit::clone_sibling(|| entered_main(plan, in_user_ns, channel)) {
        Ok(pid) => i32::from(channel.reply::<i32>(&Ok(pid.as_raw())).is_err()),
        Err(errno) => {
            let failure = container::failed(Step::Clone, format!("cannot start the process: {errno}"));
            let _ = channel.reply::<i32>(&Err(nskit::ChildError::new(failure.step.name(), &failure.source)));
            i32::from(crate::EXIT_LAUNCHER)
        }
    }
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

/// Step 6, then step 7 (which returns only if the command could not be executed), in the process.
fn entered_main(plan: &Plan, in_user_ns: bool, channel: &mut Channel) -> i32 {
    // The runtime blocked the signals it forwards; the command starts with none blocked.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Not a process group leader (a fresh clone), so setsid cannot fail.
    let _ = nix::unistd::setsid();
    if channel.recv_msg::<()>().is_err() {
        return 1;
    }
    let pty = match prepare(plan, in_user_ns) {
        Ok(pty) => pty,
        Err(e) => {
            let _ = channel.reply::<()>(&Err(nskit::ChildError::new(e.step.name(), &e.source)));
            return i32::from(crate::EXIT_LAUNCHER);
        }
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
    container::exec_command(plan)
}

/// Becomes root inside, joins a new session keyring and makes the pty.
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
