//! Running one container: the steps, in the order the production runtimes (runc, crun, youki) take
//! them, each composed from the chapter that teaches it. namespaces(7), and each step's own man page.
//!
//! The launcher (parent) and the container's first process (the child, PID 1 of its new PID
//! namespace) tell the story together:
//!
// ANCHOR: story
//! 1. parent: blocks the signals it will forward, then clones the child into new user (rootless), PID,
//!    mount, UTS, IPC and network namespaces, writing the child's id maps (nskit, user chapter); the
//!    child starts a session of its own, so the host's terminal is never its controlling terminal;
//! 2. parent: for `--net veth`, chooses a free subnet and creates a veth pair whose container end is
//!    born in the child's network namespace (network chapter); with `--memory`, `--pids-limit` or
//!    `--cpus`, makes the container's cgroup, writes the limits and moves the child in (cgroup
//!    chapter, `cgroups.rs`); then says `go`, which the child waits for only when the launcher had
//!    such work to do before it (a user namespace's maps, a veth, a cgroup, an OCI runtime's hooks);
//! 3. child: enters a cgroup namespace of its own, so its cgroup is `/` to it (cgroup chapter); takes
//!    uid and gid 0 in its user namespace (user chapter), asks to be killed if the launcher dies
//!    (PR_SET_PDEATHSIG), joins a new session keyring, so that no key of the launcher's session is
//!    reachable (keyrings(7)), and sets the hostname (UTS chapter);
//! 4. child: makes every mount a slave, so nothing it mounts reaches the host; binds the rootfs (or
//!    assembles the host view), a fresh /proc, /dev, /dev/mqueue and a read-only /sys, then the volumes;
//!    pivots into the rootfs and detaches the old root; masks and write-protects the kernel's files
//!    (mount chapter, PID chapter for /proc, IPC chapter for /dev/mqueue); with a terminal, makes a
//!    pty pair in its own devpts and hands the master to the launcher (`terminal.rs`);
//! 5. child: brings up `lo`, and its veth end with its address (network chapter);
//! 6. child: reports `ready`; from here on a failure is the command's, not the launcher's (an OCI
//!    `create` leaves it here once it has recorded it, waiting at its `exec.fifo` until `start`:
//!    `oci/`);
//! 7. child: becomes init (PID chapter): non-dumpable, forks the command, loads the seccomp filter
//!    where the container could reach it, forwards signals to the command and reaps orphans; or, with
//!    `--no-init`, is the command itself;
//! 8. the command's process: takes the pty as its controlling terminal, marks every fd >= 3
//!    close-on-exec, sets its limits and umask, changes into the working directory, resets every
//!    signal to its default, sets no_new_privs, drops capabilities, takes its uid and groups, loads
//!    the seccomp filter, and execs;
//! 9. parent: relays the terminal, and forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
//!    to the child until it exits, says so if the memory limit killed it, removes its cgroup, and
//!    returns its status.
// ANCHOR_END: story

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use caps::CapsHashSet;
use mnt_demo::resolve::{ensure_dir_in_root, ensure_file_in_root, fd_path, resolve_in_root, resolve_mounted};
use mnt_demo::rootfs::{self as mounts, Propagation, remount_flags};
use net_demo::netlink::{Netlink, Target};
use net_demo::subnet::Subnet;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use nskit::{Channel, Exit, Spawn, UserNs};
use pid_demo::init::Reaper;

use crate::terminal::{self, Relay};
use crate::timings;
use crate::values::{Maps, NetMode, Rootfs};
use crate::{EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, caps as capabilities};

/// The setup steps, in order. Each error names its step; `COMBINED_FAULT=<step>` (tests only) makes
/// that step fail, to prove nothing is left behind whichever step fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Clone,
    Veth,
    Cgroup,
    Hooks,
    Ids,
    Keyring,
    Hostname,
    Propagation,
    Rootfs,
    Volumes,
    Proc,
    Dev,
    Mqueue,
    Sys,
    Pivot,
    Masks,
    ReadOnly,
    Terminal,
    Network,
    Init,
}

impl Step {
    pub const ALL: [Step; 20] = [
        Step::Clone,
        Step::Veth,
        Step::Cgroup,
        Step::Hooks,
        Step::Ids,
        Step::Keyring,
        Step::Hostname,
        Step::Propagation,
        Step::Rootfs,
        Step::Volumes,
        Step::Proc,
        Step::Dev,
        Step::Mqueue,
        Step::Sys,
        Step::Pivot,
        Step::Masks,
        Step::ReadOnly,
        Step::Terminal,
        Step::Network,
        Step::Init,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Clone => "clone",
            Step::Veth => "veth",
            Step::Cgroup => "cgroup",
            Step::Hooks => "hooks",
            Step::Ids => "ids",
            Step::Keyring => "keyring",
            Step::Hostname => "hostname",
            Step::Propagation => "propagation",
            Step::Rootfs => "rootfs",
            Step::Volumes => "volumes",
            Step::Proc => "proc",
            Step::Dev => "dev",
            Step::Mqueue => "mqueue",
            Step::Sys => "sys",
            Step::Pivot => "pivot",
            Step::Masks => "masks",
            Step::ReadOnly => "read-only",
            Step::Terminal => "terminal",
            Step::Network => "network",
            Step::Init => "init",
        }
    }

    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set-up step failed: which, and why. The step's own error stays the source (`source()` gives the
/// typed error back: a `MountError`, a netlink error, the [`InContainer`] report of the container's
/// side), and the message reads as one line: `proc step failed: mount proc at /x: EPERM`.
#[derive(Debug, thiserror::Error)]
#[error("{step} step failed: {source}")]
pub struct StepFailed {
    pub step: Step,
    #[source]
    pub source: Cause,
}

/// Why a step failed: any error, with its own chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

pub(crate) fn failed(step: Step, cause: impl Into<Cause>) -> StepFailed {
    StepFailed {
        step,
        source: cause.into(),
    }
}

/// A step that failed on the container's side, as the container reported it over the channel: its
/// message (the step is the [`StepFailed`]'s) and, when a system call failed, the errno.
/// The message is the container's own words, so its control characters are shown escaped: a process
/// in the container able to write to the channel must not move the caller's cursor or colour their
/// terminal.
#[derive(Debug, thiserror::Error)]
#[error("{}", controls_escaped(&.0.message))]
pub struct InContainer(pub nskit::ChildError);

/// `text` with its control characters escaped as Rust writes them (`\u{1b}`), the rest as it is.
fn controls_escaped(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// A volume after validation: its source is an existing host path.
#[derive(Clone, Debug)]
pub struct PlannedVolume {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
    /// Extra flags for the bind mount besides `MS_NODEV`, which every volume gets (an OCI bind mount's
    /// `nosuid`, `noexec`).
    pub flags: MsFlags,
    /// `bind` rather than `rbind` (an OCI bind mount's choice; `combined run` binds recursively).
    pub recursive: bool,
    /// A propagation for the bind mount itself (an OCI bind mount's `shared`, `rslave`...): within
    /// the container's mount namespace, whose root is a slave, so none of it reaches the host. None:
    /// private, recursively, as Docker makes a volume.
    pub propagation: Option<(Propagation, bool)>,
}

/// The kernel filesystems the container gets, each at its usual place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelMounts {
    /// A fresh proc at /proc (PID chapter).
    pub proc: bool,
    /// A tmpfs /dev with the standard nodes, its own devpts and /dev/shm.
    pub dev: bool,
    /// The container's own mqueue at /dev/mqueue (IPC chapter).
    pub mqueue: bool,
    /// sysfs at /sys, read-only.
    pub sys: bool,
    /// The cgroup v2 hierarchy at /sys/fs/cgroup, read-only.
    pub cgroup: bool,
}

impl KernelMounts {
    /// Every one of them, as `combined run` gives every container.
    pub const ALL: KernelMounts = KernelMounts {
        proc: true,
        dev: true,
        mqueue: true,
        sys: true,
        cgroup: false,
    };
}

/// The command's identity inside the container (an OCI `process.user`; `combined run`: root).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The file mode creation mask, if one is asked for (umask(2)); otherwise the inherited one.
    pub umask: Option<u32>,
}

/// One resource limit the command starts with (setrlimit(2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub soft: u64,
    pub hard: u64,
}

/// The container's cgroup, as planned: its limits, the parent directories it goes in, and its name
/// (`combined-<launcher pid>` when none is given; an OCI config's `cgroupsPath` names its own).
#[derive(Clone, Debug)]
pub struct CgroupPlan {
    pub limits: cgroup_demo::limits::Limits,
    pub placement: cgroup_demo::cgroup::Placement,
    pub name: Option<String>,
}

/// How the container starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// At once, with the launcher supervising it to the end (`combined run`): the container dies
    /// with the launcher.
    Foreground,
    /// Set up, then waiting at a gate until `combined start` opens it, with the launcher gone (the
    /// OCI runtime's `create`): `gate` is the launcher's O_PATH descriptor of the container's
    /// `exec.fifo`, which the child inherits.
    Created { gate: i32 },
}

/// Everything the container needs, validated.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rootfs: Rootfs,
    pub hostname: String,
    pub program: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub workdir: PathBuf,
    pub volumes: Vec<PlannedVolume>,
    pub user_ns: bool,
    pub maps: Maps,
    pub net: NetMode,
    /// The `--net veth` subnet the user asked for; without one, the launcher takes a free one from
    /// the pool when it creates the pair (`subnets.rs`).
    pub subnet: Option<Subnet>,
    /// The bounding, effective and permitted capabilities.
    pub caps: CapsHashSet,
    /// The inheritable and ambient capabilities (empty for `combined run`).
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    /// The system-call filter, compiled; `None` with `--security-opt seccomp=unconfined`.
    pub seccomp: Option<crate::seccomp::Filter>,
    pub read_only: bool,
    pub init: bool,
    /// The container gets a pty of its own, relayed to the launcher's stdin and stdout
    /// (`terminal.rs`); without one it has no controlling terminal at all.
    pub tty: bool,
    /// The namespaces the container gets besides the user namespace ([`NAMESPACES`] for `combined
    /// run`; an OCI config may leave some out, sharing the host's).
    pub namespaces: CloneFlags,
    /// Existing namespaces the container joins instead of making its own (an OCI config's
    /// `linux.namespaces[].path`: a Kubernetes pod's containers join its sandbox's), by their
    /// `/proc/<pid>/ns/<kind>` file.
    pub join: Vec<(CloneFlags, PathBuf)>,
    pub kernel_mounts: KernelMounts,
    /// Further tmpfs mounts (an OCI config's), each at its target with its options.
    pub tmpfs: Vec<(PathBuf, mnt_demo::options::MountOptions)>,
    /// What mount events may travel from the host into the container's mounts (never out).
    pub propagation: Propagation,
    /// Paths covered so that they cannot be read (mnt-demo's `DEFAULT_MASKED` for `combined run`).
    pub masked: Vec<String>,
    /// Paths made read-only (mnt-demo's `DEFAULT_READONLY` for `combined run`).
    pub readonly_paths: Vec<String>,
    pub domainname: Option<String>,
    /// Kernel parameters written under /proc/sys in the container (sysctl(8) names).
    pub sysctl: Vec<(String, String)>,
    pub user: ProcessUser,
    pub rlimits: Vec<Rlimit>,
    /// The OOM killer's score adjustment for the command (proc(5), /proc/pid/oom_score_adj).
    pub oom_score_adj: Option<i32>,
    /// PR_SET_NO_NEW_PRIVS before execve; required with a seccomp filter.
    pub no_new_privs: bool,
    pub lifecycle: Lifecycle,
    /// `--memory`, `--pids-limit`, `--cpus` (or an OCI config's resources), and where their cgroup
    /// goes (checked at planning).
    pub limits: Option<CgroupPlan>,
    /// Device nodes made in the container's /dev besides the standard ones (an OCI config's
    /// `linux.devices`; none for `combined run`).
    pub devices: Vec<mounts::DeviceNode>,
    /// How many descriptors above stderr (3, 4, ...) the command gets from the launcher's caller (the
    /// OCI runtime's `--preserve-fds`; 0 for `combined run`).
    pub preserve_fds: i32,
    /// A time namespace for the command, with these clock offsets (an OCI config's; time chapter).
    pub time_offsets: Option<time_demo::clocks::Offsets>,
    /// The execution domain the command runs under (personality(2): 0 is PER_LINUX, 8 PER_LINUX32).
    pub personality: Option<u32>,
    pub fault: Option<Step>,
}

/// The namespaces every container gets, besides the user namespace.
pub const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWCGROUP)
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWNET);

/// The signals the launcher passes on to the container (nskit's list, which init passes on in turn).
/// Taken synchronously, none of them can kill the launcher while the host terminal is in raw mode.
pub use nskit::process::FORWARDED;

fn fault(plan: &Plan, step: Step) -> Result<(), StepFailed> {
    if plan.fault == Some(step) {
        Err(failed(step, "injected fault (COMBINED_FAULT)"))
    } else {
        Ok(())
    }
}

// ANCHOR: steps
/// Runs the set-up steps one by one: the fault a test injects first, then the step, whose error is
/// tagged with the step's name. `set_up` then reads as the table of steps it is.
struct Steps<'p> {
    plan: &'p Plan,
}

impl Steps<'_> {
    fn run<T, E: Into<Cause>>(
        &self,
        step: Step,
        body: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, StepFailed> {
        fault(self.plan, step)?;
        timings::time("child", step.name(), body).map_err(|e| failed(step, e))
    }
}
// ANCHOR_END: steps

// ---- the parent's side ------------------------------------------------------------------------------

// ANCHOR: launch
/// Runs the container and returns its exit status (the command's code, or 128 + signal).
pub fn launch(plan: &Plan) -> Result<i32, StepFailed> {
    let signals = supervised_set();
    signals
        .thread_block()
        .map_err(|e| failed(Step::Clone, format!("cannot block signals: {e}")))?;
    let (mut child, _veth, cgroup) = start_child(plan, &mut |_, _| Ok(()))?;
    let relay = match plan.tty {
        true => Some(start_relay(child.channel())?),
        false => None,
    };
    match timings::time("parent", "supervise", || supervise(child.pid(), &signals, relay)) {
        Ok(status) => {
            child.reaped_by_caller();
            if let Some(cgroup) = cgroup {
                report_oom(plan, &cgroup);
                // Dropping it would do the same; removing it here says when it happens.
                let _ = cgroup.remove();
            }
            Ok(status)
        }
        // Not reaped: dropping the handle kills and reaps the container.
        Err(e) => Err(failed(Step::Init, e)),
    }
}

/// Says so when the memory limit's OOM killer ended a process of the container: the exit status
/// alone (137, SIGKILL) does not say who sent the signal.
fn report_oom(plan: &Plan, cgroup: &cgroup_demo::cgroup::Cgroup) {
    let memory = plan.limits.as_ref().and_then(|cgroup| cgroup.limits.memory);
    if let (Some(memory), true) = (memory, crate::cgroups::oom_killed(cgroup)) {
        eprintln!(
            "combined: the memory limit ({} MiB) killed a process of the container (out of memory)",
            memory.mib()
        );
    }
}
// ANCHOR_END: launch

/// A container set up, its process waiting for the word to go to its gate: what the OCI runtime's
/// `create` hands on. Dropped before [`Created::let_go`], the process is killed and its cgroup removed.
#[derive(Debug)]
pub struct Created {
    /// The container's process, as the host sees it.
    pub pid: Pid,
    /// The master end of its pty, for the engine's console socket.
    pub pty: Option<OwnedFd>,
    child: nskit::Child,
    cgroup: Option<cgroup_demo::cgroup::Cgroup>,
}

impl Created {
    /// The directories of its cgroup, for `delete` to remove.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        self.cgroup.as_ref().map(cgroup_dirs).unwrap_or_default()
    }

    /// Step 6's end, once the caller has recorded the container where `delete` finds it: the process
    /// stops dying with the launcher and goes to its gate, and whoever reaps orphans for the caller
    /// (the engine's shim, conmon, or init) reaps it, since the caller exits. Until this word, a
    /// launcher killed at any instant takes the process with it (PR_SET_PDEATHSIG), so no container
    /// is left that no record names.
    pub fn let_go(self) -> Result<(), StepFailed> {
        let Created {
            mut child, cgroup, ..
        } = self;
        let went_away =
            |e: &dyn fmt::Display| failed(Step::Init, format!("the container's process went away: {e}"));
        let channel = child.channel();
        channel.send_msg(&()).map_err(|e| went_away(&e))?;
        // Its answer says the parent-death signal is off: exiting before it would kill it.
        channel.recv_reply::<()>().map_err(|e| went_away(&e))?;
        child.release();
        if let Some(cgroup) = cgroup {
            cgroup.release();
        }
        Ok(())
    }
}

/// What the caller of `create` does once the container's process and cgroup exist, before it sets
/// itself up: given the process and its cgroup's directories.
pub type BeforeGo<'a> = dyn FnMut(Pid, &[PathBuf]) -> Result<(), Cause> + 'a;

fn cgroup_dirs(cgroup: &cgroup_demo::cgroup::Cgroup) -> Vec<PathBuf> {
    cgroup.dirs().iter().map(|d| d.path.clone()).collect()
}

// ANCHOR: create
/// Steps 1 to 6 of the story; the container then waits for [`Created::let_go`], and at the gate of
/// `plan.lifecycle` until `combined start` opens it. `before_go` runs once the container's namespaces
/// and cgroup exist (it is given their directories) and before it sets itself up (the config's
/// `prestart` and `createRuntime` hooks).
pub fn create(plan: &Plan, before_go: &mut BeforeGo<'_>) -> Result<Created, StepFailed> {
    debug_assert!(matches!(plan.lifecycle, Lifecycle::Created { .. }));
    let (mut child, veth, cgroup) = start_child(plan, before_go)?;
    let pty = match plan.tty {
        true => Some(
            child
                .channel()
                .take_fd()
                .ok_or_else(|| failed(Step::Terminal, "the container sent no terminal"))?,
        ),
        false => None,
    };
    debug_assert!(veth.is_none(), "an OCI container has no veth");
    Ok(Created {
        pid: child.pid(),
        pty,
        child,
        cgroup,
    })
}
// ANCHOR_END: create

/// The namespace files the container joins, opened by the launcher before the clone so that the
/// child inherits them (setns(2) takes a descriptor).
fn open_namespaces(plan: &Plan) -> Result<Vec<(CloneFlags, OwnedFd)>, StepFailed> {
    plan.join
        .iter()
        .map(|(kind, path)| {
            nix::fcntl::open(
                path,
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map(|fd| (*kind, fd))
            .map_err(|e| {
                failed(
                    Step::Clone,
                    format!("cannot open the namespace {}: {e}", path.display()),
                )
            })
        })
        .collect()
}

// ANCHOR: join
/// Joins the namespaces the plan names (setns(2)), before anything else the container does: each
/// later step then happens in them. The descriptors were the launcher's, inherited at the clone.
fn join_namespaces(join: &[(CloneFlags, i32)]) -> Result<(), String> {
    for (kind, fd) in join {
        // SAFETY: the launcher opened `fd` before the clone and keeps it open until this process has
        // answered `go`; this process's copy is closed here, once, and used nowhere else.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(*fd) };
        nix::sched::setns(&owned, *kind).map_err(|e| format!("cannot join the {kind:?} namespace: {e}"))?;
    }
    Ok(())
}
// ANCHOR_END: join

// ANCHOR: pid_ns_for_children
/// A PID namespace joined by path (a pod's containers share their sandbox's): setns(2) with a PID
/// namespace moves only the caller's future children, so the launcher joins it for the one clone of
/// the container's process and then returns to its own, in which the hooks it runs next must be born.
/// Returning takes CAP_SYS_ADMIN over the launcher's own PID namespace, which only root has: the
/// bundle refuses the join to anyone else.
struct PidNsForChildren {
    own: OwnedFd,
}

impl PidNsForChildren {
    fn join(target: &OwnedFd) -> Result<PidNsForChildren, StepFailed> {
        let own = fs::File::open("/proc/self/ns/pid").map_err(|e| {
            failed(
                Step::Clone,
                format!("cannot open this process's PID namespace: {e}"),
            )
        })?;
        nix::sched::setns(target, CloneFlags::CLONE_NEWPID)
            .map_err(|e| failed(Step::Clone, format!("cannot join the PID namespace: {e}")))?;
        Ok(PidNsForChildren { own: own.into() })
    }

    fn restore(self) -> Result<(), StepFailed> {
        nix::sched::setns(&self.own, CloneFlags::CLONE_NEWPID).map_err(|e| {
            failed(
                Step::Clone,
                format!("cannot return to the launcher's own PID namespace: {e}"),
            )
        })
    }
}
// ANCHOR_END: pid_ns_for_children

/// The container's first process, its veth's host end and its cgroup, as the launcher holds them.
type Started = (
    nskit::Child,
    Option<HostVeth>,
    Option<cgroup_demo::cgroup::Cgroup>,
);

/// Steps 1 and 2, and the container's answer to `go`: the child cloned into its namespaces and set
/// up, with the host end of its veth and its cgroup.
fn start_child(plan: &Plan, before_go: &mut BeforeGo<'_>) -> Result<Started, StepFailed> {
    // The cgroup namespace comes later, from the child itself once it is in its cgroup, so that
    // its cgroup is the namespace's root (cgroup_namespaces(7)).
    let spawn = Spawn::new(plan.namespaces.difference(CloneFlags::CLONE_NEWCGROUP))
        .user(if plan.user_ns {
            UserNs::Always
        } else {
            UserNs::Never
        })
        .maps(plan.maps.uid.clone(), plan.maps.gid.clone());
    fault(plan, Step::Clone)?;
    let (pid_ns, joined): (Vec<_>, Vec<_>) = open_namespaces(plan)?
        .into_iter()
        .partition(|(kind, _)| *kind == CloneFlags::CLONE_NEWPID);
    let join: Vec<(CloneFlags, i32)> = joined.iter().map(|(kind, fd)| (*kind, fd.as_raw_fd())).collect();
    let born_in = match pid_ns.first() {
        Some((_, fd)) => Some(PidNsForChildren::join(fd)?),
        None => None,
    };
    // Where the launcher's command line and environment lie, for init to blank: the same addresses in
    // the child, a copy of this process. Read here, from the host's /proc, where this process's entry
    // is already looked up (std read /proc/self/maps at start-up): in the child it is a new process's
    // first lookup there, three times as long. And never after the pivot, when /proc is a name in the
    // rootfs, and a container that can write the rootfs could put a `self/stat` of its own there, whose
    // addresses init would then fill with zeros.
    let launcher_memory = argument_and_environment_areas();
    let spawned = timings::time("parent", "clone", || {
        spawn.run(|channel| container_main(plan, &join, launcher_memory, channel))
    });
    let restored = born_in.map(PidNsForChildren::restore).transpose();
    let mut child = spawned.map_err(|e| failed(Step::Clone, e))?;
    restored?;
    // The child has its own copies of the namespaces' descriptors now.
    drop(joined);

    let veth = match plan.net {
        NetMode::Veth => Some(HostVeth::attach(plan, child.pid())?),
        _ => None,
    };
    let cgroup = match &plan.limits {
        Some(cgroup) => {
            fault(plan, Step::Cgroup)?;
            let made = crate::cgroups::make(cgroup, child.pid());
            Some(made.map_err(|e| failed(Step::Cgroup, e))?)
        }
        None => None,
    };
    fault(plan, Step::Hooks)?;
    let cgroup_dirs = cgroup.as_ref().map(cgroup_dirs).unwrap_or_default();
    before_go(child.pid(), &cgroup_dirs).map_err(|e| failed(Step::Hooks, e))?;
    let go = Go {
        veth: veth.as_ref().map(|v| VethEnd {
            name: v.peer.clone(),
            network: v.subnet.network(),
            prefix: v.subnet.prefix(),
        }),
    };
    // The child goes on without `go` only when nothing above had anything to do for it.
    debug_assert!(waits_for_go(plan) || (veth.is_none() && cgroup.is_none()));
    let channel = child.channel();
    let waiting = timings::start();
    if waits_for_go(plan) {
        channel
            .send_msg(&go)
            .map_err(|e| failed(Step::Clone, format!("the container went away: {e}")))?;
    }
    let reply = channel.recv_reply::<()>();
    timings::record("parent", "go-ready", waiting);
    match reply {
        Ok(()) => Ok((child, veth, cgroup)),
        Err(nskit::StepError::Child(e)) => {
            let step = Step::from_name(&e.step).unwrap_or(Step::Init);
            Err(failed(step, InContainer(e)))
        }
        Err(e) => Err(failed(
            Step::Init,
            format!("the container exited during setup: {e}"),
        )),
    }
}

/// The master end of the container's pty came with `ready`: the relay takes it over.
fn start_relay(channel: &mut Channel) -> Result<Relay, StepFailed> {
    let master = channel
        .take_fd()
        .ok_or_else(|| failed(Step::Terminal, "the container sent no terminal"))?;
    Relay::start(master).map_err(|e| failed(Step::Terminal, format!("cannot relay the terminal: {e}")))
}

/// What the launcher waits for: the signals it forwards, SIGCHLD, and SIGWINCH for the pty's size.
pub(crate) fn supervised_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    set
}

/// The launcher's word to the container's first process once its own side is ready: go on, with the
/// veth end made for it, if any; sent only when the child waits for it ([`waits_for_go`]). The child
/// answers with an nskit `Reply<()>`: ready (with its pty's master attached when it has one), or the
/// step that failed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Go {
    veth: Option<VethEnd>,
}

/// Whether the container's first process waits for [`Go`] before it sets itself up: only when the
/// launcher has work to do first, between the clone and the child's set-up (the id maps of a user
/// namespace, before the child takes its ids; a veth end to move in; a cgroup to move the child into,
/// before it makes its cgroup namespace; an OCI runtime's hooks). Otherwise the wait is a round trip
/// for nothing: the child, placed on the launcher's CPU, ran only once the launcher had sent `go`
/// and blocked for `ready`, and reading `go` woke the launcher once more for nothing (the reader's
/// side of a unix socket wakes the writer's sleepers). Both sides read it from the same plan.
fn waits_for_go(plan: &Plan) -> bool {
    plan.user_ns
        || plan.net == NetMode::Veth
        || plan.limits.is_some()
        || matches!(plan.lifecycle, Lifecycle::Created { .. })
}

/// The container's end of `--net veth`, and the subnet it takes its address from.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct VethEnd {
    name: String,
    network: std::net::Ipv4Addr,
    prefix: u8,
}

// ANCHOR: supervise
/// Step 9: waits for the container's first process, passing on the signals the launcher receives and,
/// with a terminal, relaying it. The signals stay blocked and are read from a signalfd, so none is lost
/// between checks, and none of them can end the launcher before it has restored the terminal.
pub(crate) fn supervise(pid: Pid, signals: &SigSet, mut relay: Option<Relay>) -> Result<i32, Errno> {
    let signalfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    loop {
        if let Some(status) = reaped(pid)? {
            if let Some(relay) = relay {
                relay.finish();
            }
            return Ok(status);
        }
        let mut fds = vec![PollFd::new(signalfd.as_fd(), PollFlags::POLLIN)];
        if let Some(relay) = &relay {
            fds.extend(relay.poll_fds());
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        while let Some(info) = signalfd.read_signal()? {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(Signal::SIGWINCH) => {
                    if let Some(relay) = &relay {
                        relay.copy_window_size();
                    }
                }
                Ok(sig) => {
                    let _ = kill(pid, sig);
                }
                Err(_) => {}
            }
        }
        if let (Some(relay), [_, stdin, master]) = (&mut relay, revents.as_slice()) {
            relay.serve(*stdin, *master);
        }
    }
}
// ANCHOR_END: supervise

/// The container's exit status, if it has exited (and is now reaped).
fn reaped(pid: Pid) -> Result<Option<i32>, Errno> {
    loop {
        return match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(Exit::Signal(sig).shell_status())),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(errno),
        };
    }
}

/// The host end of `--net veth`: deleted when dropped, in case the container never took its end (once
/// it has, the kernel deletes both ends with the container's network namespace).
struct HostVeth {
    name: String,
    peer: String,
    subnet: Subnet,
}

impl HostVeth {
    /// Chooses the subnet (`subnets.rs`), creates the pair with the container's end in the child's
    /// network namespace, and gives the host end the subnet's first address, which marks the subnet
    /// as taken for as long as the container lives.
    fn attach(plan: &Plan, child: Pid) -> Result<HostVeth, StepFailed> {
        fault(plan, Step::Veth)?;
        let err = |e: net_demo::netlink::NetlinkError| failed(Step::Veth, e);
        let (host, peer) = veth_names(child);
        let mut netlink = Netlink::open().map_err(err)?;
        let (subnet, claim) =
            crate::subnets::choose(&mut netlink, plan.subnet).map_err(|e| failed(Step::Veth, e))?;
        // The container's end is born in its namespace: whenever the launcher dies, the pair dies with
        // that namespace, and nothing is left on the host.
        netlink
            .create_veth_into(&host, &peer, Target::Pid(child))
            .map_err(err)?;
        let veth = HostVeth {
            name: host,
            peer,
            subnet,
        };
        netlink
            .add_address(&veth.name, subnet.host(1), subnet.prefix())
            .map_err(err)?;
        drop(claim);
        netlink.set_up(&veth.name).map_err(err)?;
        Ok(veth)
    }
}

impl Drop for HostVeth {
    fn drop(&mut self) {
        if let Ok(mut netlink) = Netlink::open() {
            // Gone already when the container's namespace died, which is the normal case.
            let _ = netlink.delete_link(&self.name);
        }
    }
}

/// `cb<pid>h` on the host, `cb<pid>c` in the container: unique per container, within IFNAMSIZ.
fn veth_names(child: Pid) -> (String, String) {
    (format!("cb{child}h"), format!("cb{child}c"))
}

// ---- the child's side -------------------------------------------------------------------------------

/// The container's first process: set up, report, then become init (or the command).
/// `launcher_memory` is where the launcher's command line and environment lie, which init blanks
/// (`blank_launcher_memory`).
fn container_main(
    plan: &Plan,
    join: &[(CloneFlags, i32)],
    launcher_memory: Option<[usize; 4]>,
    channel: &mut Channel,
) -> i32 {
    // The parent blocked the forwarded signals; the container starts with none blocked.
    timings::mark("child", "start");
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // A session of its own: the host's terminal is no longer the controlling terminal of anything in
    // the container, so the kernel refuses TIOCSTI on it and /dev/tty does not open (ioctl_tty(2)).
    // The child is not a process group leader, so setsid cannot fail.
    let _ = nix::unistd::setsid();
    let go = match waits_for_go(plan) {
        true => timings::time("child", "go", || channel.recv_msg::<Go>()),
        false => Ok(Go { veth: None }),
    };
    let veth = match go {
        Ok(Go { veth: None }) => None,
        Ok(Go { veth: Some(end) }) => match Subnet::new(end.network, end.prefix) {
            Ok(subnet) => Some((end.name, subnet)),
            Err(_) => return 1,
        },
        Err(_) => return 1,
    };
    if let Err(why) = join_namespaces(join) {
        let _ = channel.reply::<()>(&Err(nskit::ChildError::new(Step::Clone.name(), why)));
        return i32::from(crate::EXIT_LAUNCHER);
    }
    if let Lifecycle::Created { gate } = plan.lifecycle {
        // The runtime's `create` exits, and this process lives on: it must hold none of its files,
        // least of all the lock on the container's state, which no later command could then take.
        let mut keep: Vec<i32> = (3..3 + plan.preserve_fds).collect();
        keep.extend([channel.raw_fd(), gate]);
        // SAFETY: this process is a fresh clone running only this function; no object of its own
        // owns a descriptor other than the channel and the gate, which are kept (as are the ones the
        // caller asked to pass on, which nothing here owns).
        if let Err(errno) = unsafe { nskit::process::close_from_3_except(&keep) } {
            let why = format!("cannot close the runtime's descriptors: {errno}");
            let _ = channel.reply::<()>(&Err(nskit::ChildError::new(Step::Ids.name(), why)));
            return i32::from(crate::EXIT_LAUNCHER);
        }
    }
    // The init's signalfd exists before `ready`: from then on the launcher forwards signals, and one
    // sent to a PID 1 without it would be dropped (PID 1 ignores signals it has no handler for).
    let prepared = set_up(plan, veth.as_ref(), channel).and_then(|made| {
        let reaper = plan
            .init
            .then(|| Reaper::new().map_err(|e| failed(Step::Init, e)))
            .transpose()?;
        Ok((made, reaper))
    });
    let (SetUp { pty, proc }, reaper) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            let _ = channel.reply::<()>(&Err(nskit::ChildError::new(e.step.name(), &e.source)));
            return i32::from(crate::EXIT_LAUNCHER);
        }
    };
    if let Lifecycle::Created { .. } = plan.lifecycle {
        // Until `start`, this process, the launcher's own binary, waits inside the container, where
        // `combined exec` may bring processes once `create` has reported it: non-dumpable, so that
        // none of them can open its /proc/<pid>/exe, descriptors or memory, or ptrace it
        // (CVE-2019-5736). After the whole set-up: taking its ids there (`take_ids`) made it
        // dumpable again, and an attacker's pass overwrote a rootless user's own binary through
        // /proc/1/exe, and let a container through its gate, when this was done before. execve
        // makes the command dumpable again.
        if let Err(errno) = make_non_dumpable() {
            let why = format!("cannot make the waiting process non-dumpable: {errno}");
            let _ = channel.reply::<()>(&Err(nskit::ChildError::new(Step::Ids.name(), why)));
            return i32::from(crate::EXIT_LAUNCHER);
        }
        if let Err(why) = blank_launcher_memory(launcher_memory, b"waiting") {
            let _ = channel.reply::<()>(&Err(nskit::ChildError::new(Step::Ids.name(), why)));
            return i32::from(crate::EXIT_LAUNCHER);
        }
    }
    let ready: nskit::Reply<()> = Ok(());
    let reported = timings::time("child", "ready", || match &pty {
        Some(master) => channel.send_msg_with_fd(&ready, master),
        None => channel.reply(&ready),
    });
    drop(pty);
    if reported.is_err() {
        return 1;
    }
    if let Err(e) = fault(plan, Step::Init) {
        eprintln!("combined: {e}");
        return i32::from(crate::EXIT_LAUNCHER);
    }
    let mut gate_passed = None;
    if let Lifecycle::Created { gate } = plan.lifecycle {
        if let Err(why) = wait_to_be_let_go(channel) {
            eprintln!("combined: {why}");
            return i32::from(crate::EXIT_LAUNCHER);
        }
        match wait_at_gate(gate, proc.as_ref()) {
            Ok(fifo) => gate_passed = Some(fifo),
            Err(errno) => {
                eprintln!("combined: the container's start gate failed: {errno}");
                return i32::from(crate::EXIT_LAUNCHER);
            }
        }
    }
    drop(proc);
    match reaper {
        Some(reaper) => {
            // Init never execs: `start` would wait for the fifo to close.
            drop(gate_passed);
            become_init(plan, reaper, launcher_memory)
        }
        // The fifo stays open until execve closes it (close-on-exec): that is `start`'s sign.
        None => exec_command(plan),
    }
}

/// Asks the kernel to SIGKILL this process (and with it, as PID 1, the whole container) when the
/// launcher dies, so that a launcher killed with SIGKILL leaves no container running (an OCI `create`'s
/// container until `create` has recorded it: `Created::let_go`). Set after the id change, which clears
/// it (prctl(2), PR_SET_PDEATHSIG); a launcher that died before this point is noticed when the `ready`
/// report cannot be sent.
fn die_with_launcher(channel: &Channel) -> Result<(), String> {
    // SAFETY: prctl(PR_SET_PDEATHSIG, SIGKILL) takes no pointers; it only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        return Err(format!("cannot set the parent-death signal: {}", Errno::last()));
    }
    // A launcher that died before the prctl sent no signal: its end of the channel is closed.
    if channel.peer_gone() {
        return Err("the launcher has gone".into());
    }
    Ok(())
}

/// What the set-up hands on to the container's last steps.
struct SetUp {
    /// The master end of the container's pty, when it has one.
    pty: Option<OwnedFd>,
    /// The container's proc, the mount's own descriptor, when the launcher made one: for the start
    /// gate, which would otherwise find /proc by name after the pivot (see `wait_at_gate`).
    proc: Option<OwnedFd>,
}

// ANCHOR: set_up
/// Steps 3 to 5, in the container's namespaces.
fn set_up(plan: &Plan, veth: Option<&(String, Subnet)>, channel: &Channel) -> Result<SetUp, StepFailed> {
    let steps = Steps { plan };
    if plan.namespaces.contains(CloneFlags::CLONE_NEWCGROUP) {
        // In its cgroup now (the launcher moved it before `go`): that cgroup becomes `/` inside.
        steps.run(Step::Cgroup, || nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP))?;
    }
    steps.run(Step::Ids, || match plan.user_ns {
        // The user chapter's last step: the maps name ids, but this process keeps the kernel ids it
        // was cloned with until it takes the mapped ones (root's would read as 65534 otherwise).
        true => user_demo::take_ids(0, 0).map_err(|e| format!("cannot become root inside: {e}")),
        false => Ok(()),
    })?;
    steps.run(Step::Ids, || die_with_launcher(channel))?;
    steps.run(Step::Keyring, join_new_session_keyring)?;
    if let Some(offsets) = &plan.time_offsets {
        // The time chapter's recipe: a namespace for what comes next, its offsets written before any
        // process is in it; the command's execve enters it (Linux 6.2, checked by the bundle).
        steps.run(Step::Clone, || {
            time_demo::unshare_time()?;
            time_demo::set_offsets(offsets)
        })?;
    }
    if plan.namespaces.contains(CloneFlags::CLONE_NEWUTS) {
        steps.run(Step::Hostname, || set_names(plan))?;
    }
    steps.run(Step::Propagation, || mounts::isolate_root(plan.propagation))?;
    // Volume sources are opened before the root is assembled: the host view covers /tmp, where a
    // source may live.
    let sources = steps.run(Step::Volumes, || open_volume_sources(plan))?;
    let root = steps.run(Step::Rootfs, || prepare_root(plan))?;
    // Each kernel filesystem's mount comes back as a descriptor, and what goes in it or over it is
    // made through that: see `mounts::mount_new`.
    let kernel = plan.kernel_mounts;
    let proc = match kernel.proc {
        true => Some(steps.run(Step::Proc, || mounts::mount_proc(&root))?),
        false => None,
    };
    let dev = match kernel.dev {
        true => Some(steps.run(Step::Dev, || mounts::mount_dev(&root, plan.user_ns))?),
        false => None,
    };
    if !plan.devices.is_empty() || kernel.mqueue {
        let dev_dir = steps.run(Step::Dev, || kernel_dir(&root, dev.as_ref(), "/dev"))?;
        for node in &plan.devices {
            steps.run(Step::Dev, || {
                mounts::add_device(&fd_path(&dev_dir), node, plan.user_ns)
            })?;
        }
        if kernel.mqueue {
            steps.run(Step::Mqueue, || mounts::mount_mqueue(&fd_path(&dev_dir)))?;
        }
    }
    let sys = match kernel.sys {
        true => Some(steps.run(Step::Sys, || mounts::mount_sysfs_readonly(&root))?),
        false => None,
    };
    if kernel.cgroup {
        let sys_dir = steps.run(Step::Sys, || kernel_dir(&root, sys.as_ref(), "/sys"))?;
        steps.run(Step::Sys, || mounts::mount_cgroup2_readonly(&fd_path(&sys_dir)))?;
    }
    steps.run(Step::Volumes, || mount_tmpfs(plan, &root))?;
    // Volumes last, so that one under /dev lands on the container's /dev rather than under it, where
    // the fresh /dev would hide it (/proc and /sys are refused as targets).
    steps.run(Step::Volumes, || mount_volumes(plan, &root, &sources))?;
    drop(sources);
    // The kernel's paths before the pivot: see `KernelDirs`.
    let kernel = KernelDirs {
        root: root.clone(),
        proc,
        sys,
    };
    steps.run(Step::Masks, || {
        // Before the masks: /proc/sys is among the read-only paths.
        write_sysctls(&plan.sysctl, &kernel)?;
        for (base, paths) in kernel.split(&plan.masked) {
            mounts::mask_paths(&base, &paths).map_err(|e| e.to_string())?;
        }
        for (base, paths) in kernel.split(&plan.readonly_paths) {
            mounts::readonly_paths(&base, &paths).map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })?;
    let KernelDirs { proc, .. } = kernel;
    // The container's devpts, for its terminal after the pivot: see `terminal::open_in_devpts`.
    let devpts = match (plan.tty, &dev) {
        (true, Some(dev)) => Some(steps.run(Step::Terminal, || open_devpts(dev))?),
        _ => None,
    };
    steps.run(Step::ReadOnly, || protect_dev(plan, dev.as_ref()))?;
    drop(dev);
    steps.run(Step::Pivot, || mounts::pivot_into(&root))?;
    steps.run(Step::ReadOnly, || protect_writable_places(plan))?;
    let pty = steps.run(Step::Terminal, || {
        let made = match (plan.tty, &devpts) {
            (false, _) => return Ok(None),
            (true, Some(devpts)) => terminal::open_in_devpts(devpts.as_fd()),
            // A config that mounts no /dev of the launcher's: the rootfs's own, by name.
            (true, None) => terminal::open_in_container(),
        };
        made.map(Some)
            .map_err(|e| format!("cannot make a pty in the container: {e}"))
    })?;
    drop(devpts);
    steps.run(Step::Network, || set_up_network(plan, veth))?;
    // Here, while this process is dumpable (a non-dumpable one's /proc files are the host root's,
    // which a rootless launcher's process cannot write) and has a PID in the container's /proc: init
    // and the command inherit it, and execve keeps it.
    set_oom_score_adj(plan, proc.as_ref()).map_err(|e| failed(Step::Init, e))?;
    // Last, when everything that needs the container's user namespace's capabilities is done: a
    // command keeping CAP_SYS_ADMIN there could loosen or remove the launcher's mounts otherwise. See
    // `locked`.
    if crate::locked::needed(plan) {
        steps.run(Step::ReadOnly, || crate::locked::lock_mounts(proc.as_ref()))?;
        steps.run(Step::ReadOnly, || die_with_launcher(channel))?;
    }
    Ok(SetUp { pty, proc })
}
// ANCHOR_END: set_up

// ANCHOR: keyring
/// A new, empty session keyring for the container (keyctl(2), KEYCTL_JOIN_SESSION_KEYRING, as runc
/// does). Without it the container would search the launcher's session keyring, and a root
/// container's root would possess the keys in it. A kernel built without keys (ENOSYS) has nothing
/// to hide.
pub(crate) fn join_new_session_keyring() -> Result<(), String> {
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a null name takes no other argument; it only replaces
    // this process's session keyring with a new anonymous one.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::c_long::from(libc::KEYCTL_JOIN_SESSION_KEYRING),
            std::ptr::null::<libc::c_char>(),
        )
    };
    match Errno::result(rc) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(errno) => Err(format!("cannot join a new session keyring: {errno}")),
    }
}
// ANCHOR_END: keyring

fn capabilities_keep_mknod(plan: &Plan) -> bool {
    plan.caps.contains(&caps::Capability::CAP_MKNOD)
}

fn open_volume_sources(plan: &Plan) -> Result<Vec<OwnedFd>, String> {
    plan.volumes
        .iter()
        .map(|v| {
            nix::fcntl::open(
                &v.source,
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| format!("cannot open {}: {e}", v.source.display()))
        })
        .collect()
}

/// Where the host view, or an image's writable layer, is assembled: a tmpfs mounted over /tmp in the
/// container's own mount namespace, so nothing is created on the host's disk.
const STAGING: &str = "/tmp";

/// Returns the directory that will become `/`, bound onto itself (pivot_root needs a mount point).
fn prepare_root(plan: &Plan) -> Result<PathBuf, String> {
    match &plan.rootfs {
        Rootfs::Dir(dir) => {
            mounts::bind_rootfs(dir).map_err(|e| e.to_string())?;
            protect_rootfs_tree(plan, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(dir.clone())
        }
        Rootfs::Image(image) => {
            let (root, layer) =
                crate::layer::mount_layer(image, Path::new(STAGING)).map_err(|e| e.to_string())?;
            if let crate::layer::Layer::ReadOnly(errno) = layer {
                eprintln!(
                    "combined: the kernel refused overlayfs ({errno}): the image is read-only, with a tmpfs on /tmp and /run"
                );
            }
            Ok(root)
        }
        Rootfs::HostView => {
            crate::hostview::assemble(Path::new(STAGING), &plan.hostname).map_err(|e| e.to_string())
        }
    }
}

/// The rootfs's bind brought the directory's own mounts along (MS_REC), and a remount of the top
/// would change it alone. So, before any mount of the container's own lands in the tree, every mount
/// of it gets MS_NODEV (without a device cgroup, no device node in the rootfs may open) and, with
/// `--read-only`, MS_RDONLY. The top is made writable again until the mount points in it exist
/// (`protect_writable_places` makes it read-only last), unless it was read-only before.
fn protect_rootfs_tree(plan: &Plan, dir: &Path) -> Result<(), Errno> {
    if !plan.read_only {
        return mounts::add_flags_recursively(dir, MsFlags::MS_NODEV);
    }
    let was_read_only = mounts::is_read_only(dir)?;
    mounts::add_flags_recursively(dir, MsFlags::MS_NODEV | MsFlags::MS_RDONLY)?;
    match was_read_only {
        true => Ok(()),
        false => mounts::remount_writable(dir),
    }
}

fn mount_volumes(plan: &Plan, root: &Path, sources: &[OwnedFd]) -> Result<(), String> {
    for (volume, source) in plan.volumes.iter().zip(sources) {
        let err = |e: &dyn fmt::Display| format!("{}: {e}", volume.target.display());
        let is_dir = fs::metadata(fd_path(source)).map_err(|e| err(&e))?.is_dir();
        let target = if is_dir {
            ensure_dir_in_root(root, &volume.target).map_err(|e| err(&e))?
        } else {
            ensure_file_in_root(root, &volume.target).map_err(|e| err(&e))?
        };
        // The bind, and a descriptor of it, for its flags: a look-up by name would reach whatever
        // another container sharing a directory on the way had renamed into the target's place.
        let mounted = match mounts::bind_exactly(source, &target, volume.recursive) {
            Ok(mounted) => mounted,
            Err(Errno::ENOSYS) => bind_by_path(root, volume, source, &target).map_err(|e| err(&e))?,
            Err(errno) => return Err(err(&errno)),
        };
        // Private unless asked otherwise, as Docker makes its volumes, and before the flags: a bind is
        // a slave of the host's mount of its source, and a mount the host made there later (autofs,
        // NFS) would appear in the container without the volume's read-only and nodev.
        let (propagation, recursive) = volume.propagation.unwrap_or((Propagation::Private, true));
        mounts::set_propagation(&fd_path(&mounted), propagation, recursive).map_err(|e| err(&e))?;
        let mut extra = MsFlags::MS_NODEV | volume.flags;
        if volume.read_only {
            extra |= MsFlags::MS_RDONLY;
        }
        remount_flags(&fd_path(&mounted), extra).map_err(|e| err(&e))?;
        if volume.recursive {
            // The source's own mounts came along: they get the same read-only and nodev.
            mounts::add_flags_recursively(&fd_path(&mounted), extra).map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

/// [`mount_volumes`]' bind before Linux 5.2 (no open_tree(2)): by path onto the checked target, then
/// the target looked up again to reach the bind (the descriptor from before names the directory
/// underneath it), and refused unless it shows the volume's source (`resolve_mounted`).
fn bind_by_path(
    root: &Path,
    volume: &PlannedVolume,
    source: &OwnedFd,
    target: &OwnedFd,
) -> Result<OwnedFd, String> {
    let mut flags = MsFlags::MS_BIND;
    if volume.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(&fd_path(source)),
        &fd_path(target),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| e.to_string())?;
    resolve_mounted(root, &volume.target, source).map_err(|e| e.to_string())
}

fn remount_readonly(path: &Path) -> Result<(), Errno> {
    remount_flags(path, MsFlags::MS_RDONLY)
}

/// /dev read-only when the command keeps CAP_MKNOD: without a device cgroup, a node made with it would
/// open, so no writable place may hold one (every other writable mount is nodev). Before the pivot,
/// through the descriptor `mount_dev` returned (no name a process sharing the rootfs could swap); a
/// container without a /dev of the launcher's gets the rootfs's `/dev` remounted after the pivot (see
/// [`protect_writable_places`]).
fn protect_dev(plan: &Plan, dev: Option<&OwnedFd>) -> Result<(), Errno> {
    match dev {
        Some(dev) if capabilities_keep_mknod(plan) => remount_readonly(&fd_path(dev)),
        _ => Ok(()),
    }
}

/// `--read-only`'s root; and, when the command keeps CAP_MKNOD and the launcher made no /dev (an OCI
/// config without one), the rootfs's `/dev`, which must then be a mount of its own.
fn protect_writable_places(plan: &Plan) -> Result<(), Errno> {
    if plan.read_only {
        remount_readonly(Path::new("/"))?;
    }
    if capabilities_keep_mknod(plan) && !plan.kernel_mounts.dev {
        remount_readonly(Path::new("/dev"))?;
    }
    Ok(())
}

/// The hostname, and the NIS domain name when one is asked for (UTS chapter).
fn set_names(plan: &Plan) -> Result<(), Errno> {
    uts_demo::set_hostname(&plan.hostname)?;
    match &plan.domainname {
        Some(name) => uts_demo::set_domainname(name),
        None => Ok(()),
    }
}

/// Each further tmpfs (an OCI config's), at a directory made for it without leaving the rootfs.
fn mount_tmpfs(plan: &Plan, root: &Path) -> Result<(), mounts::MountError> {
    for (target, options) in &plan.tmpfs {
        mounts::mount_tmpfs(root, &target.to_string_lossy(), options)?;
    }
    Ok(())
}

/// The devpts the launcher mounted in its /dev (`dev`, that tmpfs's descriptor). Only this process
/// has that tmpfs in its mount namespace, so nothing can have renamed anything in it.
fn open_devpts(dev: &OwnedFd) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dev.as_fd(), "pts", flags, nix::sys::stat::Mode::empty())
}

/// Where what goes in the container's /dev or /sys is made: beneath the mount the launcher made there
/// (`made`, its descriptor), or, in a config that mounts none there, beneath the rootfs's own
/// directory, looked up once.
fn kernel_dir(root: &Path, made: Option<&OwnedFd>, path: &str) -> Result<OwnedFd, String> {
    match made {
        Some(fd) => fd
            .try_clone()
            .map_err(|e| format!("cannot duplicate the descriptor of {path}: {e}")),
        None => resolve_in_root(root, Path::new(path)).map_err(|e| e.to_string()),
    }
}

/// The container's /proc and /sys, for the sysctls, masks and read-only paths, which are made before
/// the pivot: the descriptors of the mounts the launcher made there (`mounts::mount_new`), beneath
/// which the paths are looked up, every mount going through `/proc/self/fd` of the launcher's own
/// /proc, still the host's. After the pivot, `/proc` would be a name in the rootfs, and a container
/// that can write the rootfs (one shared with it) could rename a decoy into its place meanwhile: the
/// masks and the read-only /proc/sys went to the decoy, and the real /proc/sys, the host's kernel
/// settings, stayed writable (an attacker's pass).
struct KernelDirs {
    root: PathBuf,
    proc: Option<OwnedFd>,
    sys: Option<OwnedFd>,
}

impl KernelDirs {
    /// `paths` grouped by where they are looked up: beneath the checked /proc or /sys (as paths of
    /// their own, relative to it: a lookup beneath a root takes both alike), or beneath the root.
    /// Borrowed from `paths`, not copied: this runs in the container's first process, where each
    /// new heap page is a page fault.
    ///
    /// The root's group comes last. /proc's and /sys's are looked up beneath the launcher's own mounts
    /// there, which a path of the root's group can cover (a read-only `/` binds a copy of the whole
    /// tree over it): made after it, they would go to the mounts underneath, out of sight, and before
    /// Linux 5.12 the copy of /proc on top kept /proc/sys writable (found by review). Made first,
    /// they are in what the root's path then covers, and copied with it.
    fn split<'a>(&self, paths: &'a [String]) -> Vec<(PathBuf, Vec<&'a str>)> {
        let mut groups: Vec<(PathBuf, Vec<&'a str>)> = Vec::new();
        for path in paths {
            let (base, rest) = self.base(path);
            match groups.iter_mut().find(|(b, _)| *b == base) {
                Some((_, list)) => list.push(rest),
                None => groups.push((base, vec![rest])),
            }
        }
        groups.sort_by_key(|(base, _)| *base == self.root);
        groups
    }

    /// Compared component by component, so that `//proc/sys` or `/proc/./sys` in a config is under
    /// /proc as well.
    fn base<'a>(&self, path: &'a str) -> (PathBuf, &'a str) {
        for (dir, fd) in [("/proc", &self.proc), ("/sys", &self.sys)] {
            // The rest as the config spells it (`/kcore`, which errors then name), or, spelled
            // otherwise, relative to the directory.
            let rest = match path.strip_prefix(dir) {
                Some("") => Some("/"),
                Some(tail) if tail.starts_with('/') => Some(tail),
                _ => Path::new(path).strip_prefix(dir).ok().and_then(Path::to_str),
            };
            if let (Some(fd), Some(rest)) = (fd, rest) {
                return (fd_path(fd), rest);
            }
        }
        (self.root.clone(), path)
    }
}

/// Writes each kernel parameter through /proc/sys (sysctl(8): `net.ipv4.ip_forward` is
/// `/proc/sys/net/ipv4/ip_forward`): the container's, checked, or before the pivot the launcher's,
/// which writes the same namespaces' values (a namespaced parameter is the writer's namespace's). The
/// bundle's checks allowed only the namespaced ones, and the container's /proc/sys is read-only to its
/// command afterwards.
fn write_sysctls(sysctls: &[(String, String)], kernel: &KernelDirs) -> Result<(), String> {
    let proc = kernel
        .proc
        .as_ref()
        .map_or_else(|| PathBuf::from("/proc"), fd_path);
    for (name, value) in sysctls {
        let path = proc.join("sys").join(name.replace('.', "/"));
        fs::write(&path, value).map_err(|e| format!("cannot set sysctl {name}={value}: {e}"))?;
    }
    Ok(())
}

/// Brings up `lo` (unless `--net none`), and the veth end the launcher moved in, with its address.
fn set_up_network(
    plan: &Plan,
    veth: Option<&(String, Subnet)>,
) -> Result<(), net_demo::netlink::NetlinkError> {
    if matches!(plan.net, NetMode::None | NetMode::Host | NetMode::Joined) {
        return Ok(());
    }
    let mut netlink = Netlink::open()?;
    netlink.set_loopback_up()?;
    if let Some((peer, subnet)) = veth {
        netlink.add_address(peer, subnet.host(2), subnet.prefix())?;
        netlink.set_up(peer)?;
    }
    Ok(())
}

/// PR_SET_DUMPABLE 0 (prctl(2)): /proc/<pid>/ of this process becomes root's, and ptrace needs
/// CAP_SYS_PTRACE in the user namespace its memory belongs to.
pub(crate) fn make_non_dumpable() -> Result<(), Errno> {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers; it only changes a flag of this process.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}

// ANCHOR: gate
/// Step 6 of a created container, first half: waits until `create` has recorded the container (its
/// `let_go`), then stops dying with it and says so, since `create` exits and the container lives on
/// (and `create` waits for that word: exiting before it would kill the process). A `create`
/// that failed or was killed before then closes the channel: the process ends (it may already have
/// been killed by its parent-death signal).
fn wait_to_be_let_go(channel: &mut Channel) -> Result<(), String> {
    channel
        .recv_msg::<()>()
        .map_err(|e| format!("create ended before the container was recorded: {e}"))?;
    // SAFETY: prctl(PR_SET_PDEATHSIG, 0) takes no pointers; it only clears a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) } != 0 {
        return Err(format!("cannot clear the parent-death signal: {}", Errno::last()));
    }
    channel
        .reply::<()>(&Ok(()))
        .map_err(|e| format!("create ended before the container was let go: {e}"))
}

/// Step 6 of a created container, second half: waits until `combined start` opens the container's
/// `exec.fifo` for reading. `gate` is an O_PATH descriptor of the fifo, opened by the launcher on the
/// host before the clone; reopened through this process's own `self/fd` in the container's proc (the
/// same descriptor table), it opens for writing only when a reader comes (fifo(7)): that open is the
/// wait. The byte written tells `start` the container went on; the fifo, returned open and
/// close-on-exec, closes at the command's execve, which tells `start` the command runs.
///
/// `proc` is the descriptor of the container's proc mount: after the pivot `/proc` is a name in the
/// rootfs, and a container that can write the rootfs could have renamed a directory of its own into
/// its place, whose `self/fd/N` leads to a file it chose, which opens at once: the container would
/// start without `start`. A config that mounts no proc of the launcher's leaves the name.
fn wait_at_gate(gate: i32, proc: Option<&OwnedFd>) -> Result<OwnedFd, Errno> {
    let fd_link = format!("self/fd/{gate}");
    let fifo = loop {
        let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        let opened = match proc {
            Some(proc) => nix::fcntl::openat(proc, fd_link.as_str(), flags, nix::sys::stat::Mode::empty()),
            None => nix::fcntl::open(
                Path::new("/proc").join(&fd_link).as_path(),
                flags,
                nix::sys::stat::Mode::empty(),
            ),
        };
        match opened {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    // The same fifo, or nothing is written: by name (above), `/proc` could be anything.
    let same = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    };
    // SAFETY: `gate` is the O_PATH descriptor the launcher gave this process, open until closed below.
    let expected = nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(gate) })?;
    if !same(&nix::sys::stat::fstat(&fifo)?, &expected) {
        return Err(Errno::ESTALE);
    }
    let _ = nix::unistd::close(gate);
    nix::unistd::write(&fifo, &[0u8])?;
    Ok(fifo)
}
// ANCHOR_END: gate

// ANCHOR: init
/// Step 7: PID 1 of the container. Non-dumpable first, so that no process in the container can open
/// /proc/1/exe, which is the launcher's binary on the host (CVE-2019-5736). Then the PID chapter's
/// reaper: it forks the command, forwards signals to it, reaps orphans, and returns its status.
fn become_init(plan: &Plan, reaper: Reaper, launcher_memory: Option<[usize; 4]>) -> i32 {
    if let Err(errno) = make_non_dumpable() {
        eprintln!("combined: init: cannot make init non-dumpable: {errno}");
        return i32::from(crate::EXIT_LAUNCHER);
    }
    pid_demo::set_name("init");
    if let Err(why) = blank_launcher_memory(launcher_memory, b"init") {
        eprintln!("combined: init: {why}");
        return i32::from(crate::EXIT_LAUNCHER);
    }
    // Init is in the container too, so where the container could reach it (`init_reachable`: a root
    // container given CAP_SYS_PTRACE) it gets the filter as well: the command could otherwise make it
    // run the calls the filter refuses. After the fork, so that the command's own last steps run
    // unfiltered, as a profile's author expects (runc's order); and the command waits for init's pipe
    // to close, so no code of its runs before init is filtered. Where init is out of reach there is
    // nothing to wait for, and no pipe: the command goes on at once.
    let reachable = crate::init_reachable(plan.user_ns, plan.init, &plan.caps);
    let pipe = match reachable {
        true => match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
            Ok(pipe) => Some(pipe),
            Err(errno) => {
                eprintln!("combined: init: cannot create a pipe: {errno}");
                return i32::from(crate::EXIT_LAUNCHER);
            }
        },
        false => None,
    };
    let forking = timings::start();
    let command = pid_demo::init::fork_run(|| {
        if let Some((init_filtered, filtering)) = &pipe {
            // The command's copy of init's write end; the value itself stays in init's frame, which
            // this process never returns to, so it is closed once.
            let _ = nix::unistd::close(filtering.as_raw_fd());
            wait_until_closed(init_filtered);
        }
        match reaper.restore_child_mask() {
            Ok(()) => exec_command(plan),
            Err(_) => i32::from(crate::EXIT_LAUNCHER),
        }
    });
    timings::record("init", "fork", forking);
    let filtering = pipe.map(|(init_filtered, filtering)| {
        drop(init_filtered);
        filtering
    });
    let filtered = match reachable {
        // And it keeps no capability the command has not: the command could otherwise take init over
        // with ptrace and use root's (CAP_MKNOD, say, in a /dev that is not nodev). The filter first,
        // while init may still load one; capset and PR_CAPBSET_DROP are among what it allows.
        true => install_filter(plan).and_then(|()| {
            capabilities::drop_bounding(&plan.caps)
                .and_then(|()| {
                    capabilities::set_process_caps(&plan.caps, &CapsHashSet::new(), &CapsHashSet::new())
                })
                .map_err(|e| format!("cannot drop init's capabilities: {e}"))
        }),
        false => Ok(()),
    };
    drop(filtering);
    if let (Ok(pid), Err(e)) = (&command, &filtered) {
        eprintln!("combined: init: {e}");
        let _ = kill(*pid, Signal::SIGKILL);
        let _ = waitpid(*pid, None);
        return i32::from(crate::EXIT_LAUNCHER);
    }
    match command
        .map_err(pid_demo::init::InitError::Fork)
        .and_then(|pid| timings::time("init", "wait", || reaper.run(pid)))
    {
        Ok(outcome) => outcome.exit.shell_status(),
        Err(e) => {
            eprintln!("combined: init: {e}");
            i32::from(crate::EXIT_LAUNCHER)
        }
    }
}
// ANCHOR_END: init

/// Blocks until every write end of `pipe` is closed (read returns 0); a failing read ends the wait too.
fn wait_until_closed(pipe: &OwnedFd) {
    let mut byte = [0u8; 1];
    while let Err(Errno::EINTR) = nix::unistd::read(pipe, &mut byte) {}
}

/// Replaces this process's command line, which `/proc/<pid>/cmdline` shows to everyone in the
/// container, with `name`, and blanks its environment, which `/proc/<pid>/environ` shows to a process
/// allowed to ptrace it: both are still the launcher's, with host paths and the caller's variables in
/// them (proc(5)). The kernel reads those files from the process's own memory, the areas between
/// `arg_start` and `arg_end`, and `env_start` and `env_end` (fields 48 to 51 of /proc/self/stat);
/// nothing in the process reads its arguments or variables again (the command gets the plan's).
pub(crate) fn hide_launcher_memory(name: &[u8]) -> Result<(), String> {
    blank_launcher_memory(argument_and_environment_areas(), name)
}

/// [`hide_launcher_memory`] with the areas read from /proc/self/stat before (by
/// [`argument_and_environment_areas`], while /proc was still the launcher's).
fn blank_launcher_memory(areas: Option<[usize; 4]>, name: &[u8]) -> Result<(), String> {
    let [arg_start, arg_end, env_start, env_end] =
        areas.ok_or("cannot find the launcher's command line and environment in /proc/self/stat")?;
    for (start, end, text) in [(arg_start, arg_end, name), (env_start, env_end, b"".as_slice())] {
        let len = end.saturating_sub(start);
        if len <= text.len() {
            continue;
        }
        // SAFETY: [start, end) is this process's argument or environment area, which the kernel
        // mapped writable on the initial stack when the launcher was executed; it lies within this
        // process's address space, and no Rust value refers to it (std copied the arguments it
        // needed before `main`; `environ` points into it, and is not read again).
        unsafe {
            let area = std::slice::from_raw_parts_mut(start as *mut u8, len);
            area.fill(0);
            area[..text.len()].copy_from_slice(text);
        }
    }
    Ok(())
}

/// `arg_start`, `arg_end`, `env_start` and `env_end` from /proc/self/stat.
fn argument_and_environment_areas() -> Option<[usize; 4]> {
    // One read into a buffer on the stack: the line is 52 numbers and a name of at most 16 bytes
    // (proc_pid_stat(5)), well under 1 KiB; a read of a /proc file returns it whole when it fits.
    let mut buffer = [0u8; 1024];
    let len = fs::File::open("/proc/self/stat").ok()?.read(&mut buffer).ok()?;
    let stat = std::str::from_utf8(buffer.get(..len).filter(|b| b.len() < buffer.len())?).ok()?;
    let fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    // After the command name, the fields are numbered from 3 (state): field N is at N - 3.
    let mut areas = fields.skip(48 - 3).map(str::parse);
    Some([
        areas.next()?.ok()?,
        areas.next()?.ok()?,
        areas.next()?.ok()?,
        areas.next()?.ok()?,
    ])
}

// ANCHOR: exec
/// Step 8: the last things before the command runs, each one narrowing what it can do.
pub(crate) fn exec_command(plan: &Plan) -> i32 {
    if let Err(message) = timings::time("command", "prepare", || prepare_exec(plan)) {
        eprintln!("combined: {message}");
        return i32::from(crate::EXIT_LAUNCHER);
    }
    execute(plan)
}

/// The last step, execve(2) of the command; returns only if it failed, with the shell's status for
/// that (127 not found, 126 not executable) and a line saying why.
pub(crate) fn execute(plan: &Plan) -> i32 {
    timings::mark("command", "execve");
    let errno = match nix::unistd::execve(&plan.program, &plan.argv, &plan.env) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    eprintln!(
        "combined: cannot execute {}: {}",
        plan.program.to_string_lossy(),
        errno.desc()
    );
    if errno == Errno::ENOENT {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXECUTE
    }
}

fn prepare_exec(plan: &Plan) -> Result<(), String> {
    if plan.tty {
        take_terminal()?;
    }
    drop_to_command(plan)
}

/// The config's `oomScoreAdj`, through /proc/self: while this process has a PID in the /proc it sees
/// (`exec` sets it in the runtime, whose joiner has none in the container's /proc; the container's
/// first process at the end of its set-up), is dumpable, and before the capabilities go: lowering the
/// score takes CAP_SYS_RESOURCE.
/// `proc` is the container's proc mount's own descriptor, when the launcher made one; else `/proc`.
pub(crate) fn set_oom_score_adj(plan: &Plan, proc: Option<&OwnedFd>) -> Result<(), String> {
    let Some(score) = plan.oom_score_adj else {
        return Ok(());
    };
    let fail = |e: &dyn fmt::Display| format!("cannot set oom_score_adj to {score}: {e}");
    // Opened without creating or truncating, and written only if it is a file of procfs: by name,
    // after the pivot, /proc is a name in the rootfs, which a container able to write the rootfs
    // could fill.
    let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let opened = match proc {
        Some(proc) => nix::fcntl::openat(proc, "self/oom_score_adj", flags, nix::sys::stat::Mode::empty()),
        None => nix::fcntl::open("/proc/self/oom_score_adj", flags, nix::sys::stat::Mode::empty()),
    };
    let mut file = fs::File::from(opened.map_err(|e| fail(&e))?);
    let on_proc = nix::sys::statfs::fstatfs(&file)
        .map_err(|e| fail(&e))?
        .filesystem_type()
        == nix::sys::statfs::PROC_SUPER_MAGIC;
    if !on_proc {
        return Err(fail(
            &"/proc/self/oom_score_adj is not procfs's (a rootfs shared with another container?)",
        ));
    }
    std::io::Write::write_all(&mut file, score.to_string().as_bytes()).map_err(|e| fail(&e))
}

/// A session of its own (init's is not; without init, this process leads one already), with the pty
/// as its controlling terminal: job control and Ctrl-C work inside, on its own pty.
pub(crate) fn take_terminal() -> Result<(), String> {
    let _ = nix::unistd::setsid();
    terminal::make_controlling().map_err(|e| format!("cannot take the pty as the terminal: {e}"))
}

/// Everything of step 8 but the terminal, the OOM score and execve: the process holds the command's
/// privileges, and no more, when this returns.
pub(crate) fn drop_to_command(plan: &Plan) -> Result<(), String> {
    // Every inherited descriptor but 0, 1, 2 closes at execve: a leaked host fd is a way out
    // (CVE-2024-21626). Marking instead of closing keeps this process's own fds usable until then.
    nskit::process::close_on_exec_from(3 + plan.preserve_fds)
        .map_err(|e| format!("cannot mark fds close-on-exec: {e}"))?;
    // Limits while the process may still raise them (a hard limit above the current one takes
    // CAP_SYS_RESOURCE, dropped below).
    for limit in &plan.rlimits {
        nix::sys::resource::setrlimit(limit.resource, limit.soft, limit.hard).map_err(|e| {
            let hint = match e {
                Errno::EPERM => {
                    " (a hard limit above the runtime's own takes CAP_SYS_RESOURCE, which it lacks)"
                }
                _ => "",
            };
            format!(
                "cannot set the limit {:?} to {}: {e}{hint}",
                limit.resource, limit.hard
            )
        })?;
    }
    if let Some(mask) = plan.user.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    std::env::set_current_dir(&plan.workdir).map_err(|e| {
        format!(
            "cannot change into the working directory {}: {e}",
            plan.workdir.display()
        )
    })?;
    // getcwd fails with ENOENT when the cwd is not under this process's root: the check CVE-2024-21626
    // lacked.
    nix::unistd::getcwd().map_err(|e| format!("the working directory is outside the container: {e}"))?;
    reset_signals().map_err(|e| format!("cannot reset the signals: {e}"))?;
    if let Some(persona) = plan.personality {
        // SAFETY: personality(2) takes an integer and no pointer; it changes this process's execution
        // domain, which execve keeps.
        Errno::result(unsafe { libc::personality(libc::c_ulong::from(persona)) })
            .map_err(|e| format!("cannot set the personality {persona:#x}: {e}"))?;
    }
    if !plan.no_new_privs {
        // An OCI config that leaves no_new_privs off: the filter goes on now, while this process may
        // still load one without it (CAP_SYS_ADMIN in its user namespace, dropped below), as runc
        // does; the steps below then run under it.
        load_filter(plan)?;
    }
    if plan.no_new_privs {
        set_no_new_privs()?;
    }
    capabilities::drop_bounding(&plan.caps).map_err(|e| e.to_string())?;
    become_user(&plan.user)?;
    capabilities::set_process_caps(&plan.caps, &plan.inheritable, &plan.ambient)
        .map_err(|e| e.to_string())?;
    if plan.no_new_privs {
        // Last before execve, as runc loads it: the steps above may make calls the profile refuses.
        install_filter(plan)?;
    }
    Ok(())
}
// ANCHOR_END: exec

/// PR_SET_NO_NEW_PRIVS (prctl(2)): no execve after this can grant privileges (setuid bits, file
/// capabilities); the kernel requires it before an unprivileged process loads a seccomp filter.
fn set_no_new_privs() -> Result<(), String> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes no pointers; it only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("cannot set no_new_privs: {}", Errno::last()));
    }
    Ok(())
}

/// Takes the command's uid, gid and supplementary groups (the user chapter's `take_identity`),
/// keeping the capabilities across the switch (PR_SET_KEEPCAPS), which the next step sets to exactly
/// the planned ones. Root inside with no extra group, as every `combined run` container, changes
/// nothing.
fn become_user(user: &ProcessUser) -> Result<(), String> {
    if user.uid == 0 && user.gid == 0 && user.additional_gids.is_empty() {
        return Ok(()); // Root already, with no supplementary group (step 3).
    }
    // SAFETY: prctl(PR_SET_KEEPCAPS, 1) takes no pointers; it only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(format!("cannot keep the capabilities: {}", Errno::last()));
    }
    user_demo::take_identity(user.uid, user.gid, &user.additional_gids).map_err(|e| {
        format!(
            "cannot become uid {} gid {} with groups {:?}: {e}",
            user.uid, user.gid, user.additional_gids
        )
    })
}

// ANCHOR: install_filter
/// Loads the seccomp filter compiled before the container existed (seccomp(2)). no_new_privs first:
/// the kernel requires it of a process that is not privileged in its user namespace, and it is what
/// keeps a filtered process from escaping the filter through a setuid program.
fn install_filter(plan: &Plan) -> Result<(), String> {
    let Some(filter) = &plan.seccomp else {
        return Ok(());
    };
    set_no_new_privs()?;
    timings::time("command", "seccomp", || filter.install())
        .map_err(|e| format!("cannot load the seccomp filter: {e}"))
}
// ANCHOR_END: install_filter

/// Loads the filter without no_new_privs, which the kernel allows a process with CAP_SYS_ADMIN in its
/// user namespace (seccomp(2)).
fn load_filter(plan: &Plan) -> Result<(), String> {
    match &plan.seccomp {
        Some(filter) => filter
            .install()
            .map_err(|e| format!("cannot load the seccomp filter: {e}")),
        None => Ok(()),
    }
}

// ANCHOR: reset_signals
/// Every signal back to its default action, and none blocked (signal(7)): execve keeps a signal that
/// is ignored ignored, and keeps the mask. Without this the command would inherit SIGPIPE ignored
/// (Rust's runtime ignores it in the launcher, so `yes | head -1` would print "Broken pipe"), and
/// SIGINT ignored from a launcher started by `nohup` or under `trap '' INT`.
fn reset_signals() -> Result<(), Errno> {
    // The kernel's own rt_sigaction(2), not glibc's: glibc refuses the two real-time signals it keeps
    // for itself (32 and 33), which a launcher may still have inherited ignored. The kernel's `struct
    // sigaction` all zero is SIG_DFL with no flags and an empty mask.
    let default_action = [0u64; 4];
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue; // Their actions cannot change.
        }
        // SAFETY: the new action points at a live, zeroed kernel `struct sigaction` (handler, flags,
        // restorer, an 8-byte mask), the old-action pointer is null, and the mask size is 8 bytes.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        Errno::result(rc)?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}
// ANCHOR_END: reset_signals

#[cfg(test)]
mod tests {
    use super::*;

    /// A forged reply (a process in the container that took the channel, `oci.rs`'s attack test) gets
    /// its words printed to the caller's terminal: never its escape sequences.
    #[test]
    fn a_message_from_the_container_shows_its_control_characters_escaped() {
        let forged = InContainer(nskit::ChildError::new("cgroup", "\x1b[2J\x1b[31mFORGED\r\n"));
        assert_eq!(forged.to_string(), "\\u{1b}[2J\\u{1b}[31mFORGED\\r\\n");
    }

    /// The masked and read-only paths under /proc and /sys go beneath the launcher's mounts, however
    /// the config spells them, and only those: `/procfoo` is the rootfs's; the rootfs's group last.
    #[test]
    fn kernel_paths_are_split_by_the_directory_they_are_under() {
        let open = || {
            nix::fcntl::open(
                "/",
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap()
        };
        let kernel = KernelDirs {
            root: PathBuf::from("/rootfs"),
            proc: Some(open()),
            sys: Some(open()),
        };
        let (proc, sys) = (
            fd_path(kernel.proc.as_ref().unwrap()),
            fd_path(kernel.sys.as_ref().unwrap()),
        );
        let paths: Vec<String> = [
            "/proc/kcore",
            "//proc/sys",
            "/procfoo",
            "/sys/firmware",
            "/proc",
            "/etc/x",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            kernel.split(&paths),
            vec![
                (proc, vec!["/kcore", "sys", "/"]),
                (sys, vec!["/firmware"]),
                (PathBuf::from("/rootfs"), vec!["/procfoo", "/etc/x"]),
            ]
        );
    }
}
