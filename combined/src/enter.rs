//! A further process in a running container: the OCI runtime's `exec`, where `docker exec`,
//! `podman exec` and `kubectl exec` end. It joins the namespaces of the container's first process
//! with setns(2), joins its cgroups, and then takes the very last steps the container's own command
//! took (`container.rs`, step 8). setns(2), namespaces(7), pid_namespaces(7), user_namespaces(7).
//!
// ANCHOR: story
//! 1. runtime: opens `/proc/<pid>/ns/<kind>` of every namespace the container's process does not share
//!    with it, and makes itself non-dumpable: the child inherits that, so no process of the container
//!    can open the runtime's binary or files through the child's `/proc/<pid>` (CVE-2019-5736);
//! 2. runtime: joins the container's PID namespace for its children only (setns(2) with a PID
//!    namespace moves the caller's future children, never the caller). Not root, it joins the
//!    container's user namespace first, since joining a PID namespace takes CAP_SYS_ADMIN in the
//!    caller's own user namespace as well, which an ordinary user has only in the container's;
//! 3. runtime: clones the child, born in the container's PID namespace, moves it into the container's
//!    cgroups and says `go`;
//! 4. child: starts a session of its own (the host's terminal is never its controlling terminal), joins
//!    the other namespaces (the user namespace last, when the runtime is root: root may join any
//!    namespace from the host, but from inside the container's user namespace only those it owns),
//!    becomes root inside, joins a new session keyring, makes a pty in the container's devpts when
//!    asked for one, and reports `ready`;
//! 5. child: step 8 of the container's story: limits, working directory, signals, no_new_privs,
//!    capabilities, identity, the container's seccomp filter, execve;
//! 6. runtime: hands the pty to the engine's console socket or relays it, and waits for the child,
//!    passing signals on, unless it is to return at once (`--detach`): then whoever reaps orphans for
//!    it (the engine's shim, conmon) reaps the child.
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
/// Steps 1 to 4: starts `plan`'s process in the container whose first process is `target`, in the
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
    let root = nskit::userns::is_root();
    let (by_runtime, by_child): (Vec<_>, Vec<_>) = theirs.iter().partition(|(kind, _)| {
        *kind == CloneFlags::CLONE_NEWPID || (!root && *kind == CloneFlags::CLONE_NEWUSER)
    });
    // The user namespace first (kinds()' order), when this process joins it at all (it is not root).
    for (kind, fd) in &by_runtime {
        nix::sched::setns(fd, *kind).map_err(|e| cannot_join(*kind, e))?;
    }
    let mut order: Vec<(CloneFlags, i32)> = by_child
        .iter()
        .map(|(kind, fd)| (*kind, fd.as_raw_fd()))
        .collect();
    // Root joins the user namespace last; see step 4.
    order.sort_by_key(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
    let in_user_ns = theirs.iter().any(|(kind, _)| *kind == CloneFlags::CLONE_NEWUSER);
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| entered_main(plan, &order, in_user_ns, channel))
        .map_err(|e| container::failed(Step::Clone, e))?;
    // The child has its own copies of the namespaces' descriptors now.
    drop(theirs);
    for dir in cgroups {
        cgroup_demo::cgroup::move_process(dir, child.pid())
            .map_err(|e| container::failed(Step::Cgroup, e))?;
    }
    let channel = child.channel();
    channel
        .send_msg(&())
        .map_err(|e| container::failed(Step::Clone, format!("the process went away: {e}")))?;
    match channel.recv_reply::<()>() {
        Ok(()) => {}
        Err(nskit::StepError::Child(e)) => {
            let step = Step::from_name(&e.step).unwrap_or(Step::Init);
            return Err(container::failed(step, InContainer(e)));
        }
        Err(e) => {
            return Err(container::failed(
                Step::Init,
                format!("the process exited during setup: {e}"),
            ));
        }
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

// ---- the child's side -------------------------------------------------------------------------------

/// Step 4, then step 5 (which returns only if the command could not be executed).
fn entered_main(plan: &Plan, join: &[(CloneFlags, i32)], in_user_ns: bool, channel: &mut Channel) -> i32 {
    // The runtime blocked the signals it forwards; the command starts with none blocked.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Not a process group leader (a fresh clone), so setsid cannot fail.
    let _ = nix::unistd::setsid();
    if channel.recv_msg::<()>().is_err() {
        return 1;
    }
    let pty = match join_and_prepare(plan, join, in_user_ns) {
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

/// Joins the namespaces in order, becomes root inside, joins a new session keyring and makes the pty.
fn join_and_prepare(
    plan: &Plan,
    join: &[(CloneFlags, i32)],
    in_user_ns: bool,
) -> Result<Option<OwnedFd>, StepFailed> {
    for (kind, fd) in join {
        // SAFETY: the runtime opened `fd` before the clone and keeps its own copy until this process
        // has answered; this process's copy is closed here, once, and used nowhere else.
        let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
        nix::sched::setns(&owned, *kind).map_err(|e| cannot_join(*kind, e))?;
    }
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
