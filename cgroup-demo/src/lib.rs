//! Chapter: control groups and the cgroup namespace (cgroups(7), cgroup_namespaces(7),
//! Documentation/admin-guide/cgroup-v2.rst).
//!
//! A cgroup is a directory in a cgroup filesystem; a process belongs to one cgroup per hierarchy,
//! listed in `/proc/<pid>/cgroup`, and the controllers bound to a hierarchy (memory, pids, cpu...)
//! count and limit what the processes in each cgroup use. The cgroup *namespace* only changes how
//! those paths read: a process's cgroup at the moment it enters a new one becomes its `/`.
//!
//! Each function is one step of the lesson and returns plain data; `main.rs` prints it. The
//! [`cgroup`] module (make, limit, fill, read and remove a cgroup on v2 and v1) is what the launcher
//! reuses; [`cleanup`] removes what this process made even on Ctrl-C.

pub mod cgroup;
pub mod cleanup;
pub mod hierarchy;
pub mod limits;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::time::ClockId;
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::{Channel, Child, ChildError, Exit, Spawn, SpawnError, UserNs};

pub use cgroup::{
    Access, Cgroup, CgroupError, CpuStat, Dir, HOW_TO_DELEGATE, MemoryEvents, PidsEvents, Placement, Written,
    move_process, own_dirs, procs_of,
};
pub use hierarchy::{Hierarchies, HostKind, Membership, Mount, Version, memberships, relative_path};
pub use limits::{Bytes, Controller, Cpus, LimitError, Limits, PidsLimit, Swap, parse_memory};

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

impl From<SpawnError> for StepError {
    fn from(e: SpawnError) -> StepError {
        StepError::Child(nskit::StepError::Spawn(e))
    }
}

fn lost(e: io::Error) -> StepError {
    StepError::Child(nskit::StepError::Channel(e))
}

// ---- step 1: what a cgroup is ---------------------------------------------------------------------

/// One line of `/proc/self/cgroup` and the directory it names on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub membership: Membership,
    /// `None` when that hierarchy is not mounted where this process can see it.
    pub dir: Option<PathBuf>,
}

/// What this process sees of cgroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostView {
    pub ns: NsId,
    pub kind: HostKind,
    pub hierarchies: Hierarchies,
    pub lines: Vec<Line>,
}

// ANCHOR: observe
/// Step 1: which cgroup filesystems are mounted (and so what kind of host this is), and which cgroup
/// this process is in, in each hierarchy: a directory under that hierarchy's mount.
pub fn observe_host() -> Result<HostView, CgroupError> {
    let hierarchies = Hierarchies::read()?;
    let kind = hierarchies.kind()?;
    let lines = memberships(Proc::Current)?
        .into_iter()
        .map(|membership| Line {
            dir: hierarchies
                .mount_of(&membership)
                .and_then(|mount| mount.dir_of(&membership.path)),
            membership,
        })
        .collect();
    Ok(HostView {
        ns: cgroup_ns(Proc::Current)?,
        kind,
        hierarchies,
        lines,
    })
}
// ANCHOR_END: observe

/// The cgroup namespace `who` is in.
pub fn cgroup_ns(who: Proc) -> Result<NsId, CgroupError> {
    ns_id(who, Kind::Cgroup).map_err(|source| CgroupError::read(&who.ns_path(Kind::Cgroup), source))
}

// ---- step 2: delegation ---------------------------------------------------------------------------

/// Where this process would make its cgroups, and whether it may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub placement: Placement,
    pub access: Vec<Access>,
}

impl Delegation {
    pub fn may_create(&self) -> bool {
        self.access.iter().all(|a| a.may_create)
    }
}

/// Step 2: the parents for the memory, pids and cpu cgroups, and whether this process may write them.
pub fn delegation(h: &Hierarchies) -> Result<Delegation, CgroupError> {
    let placement = Placement::own(h, &Controller::ALL)?;
    let access = placement.access();
    Ok(Delegation { placement, access })
}

// ANCHOR: userns_mkdir
/// Step 2, failure first: a child in a new user namespace, uid 0 there with every capability, tries
/// to make a cgroup in `parent`. Its capabilities do not reach files the initial user namespace owns,
/// and its uid 0 is the caller's own uid to the host's permission checks: EACCES for an ordinary
/// user. (A directory it happens to create is removed at once.)
pub fn mkdir_from_userns(parent: &Path, name: &str) -> Result<Result<(), Errno>, StepError> {
    let path = parent.join(name);
    let mut child = Spawn::new(CloneFlags::CLONE_NEWUSER).run(|channel| {
        cleanup::forget_in_child();
        let made = nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o755));
        if made.is_ok() {
            let _ = fs::remove_dir(&path);
        }
        let reply = made.map_err(|errno| ChildError::sys("mkdir", errno));
        i32::from(channel.reply(&reply).is_err())
    })?;
    let reply = child.channel().recv_reply::<()>();
    let _ = child.wait();
    match reply {
        Ok(()) => Ok(Ok(())),
        Err(nskit::StepError::Child(e)) => Ok(Err(e.errno().unwrap_or(Errno::EIO))),
        Err(other) => Err(other.into()),
    }
}
// ANCHOR_END: userns_mkdir

// ---- step 3: the cgroup namespace -----------------------------------------------------------------

/// The hierarchy the namespace step mounts inside: the v2 one, else memory's (a v1 hierarchy where
/// a process is usually not at the top), else any v1 one.
pub fn ns_mount(h: &Hierarchies) -> Option<&Mount> {
    h.v2()
        .filter(|_| h.kind().ok() == Some(HostKind::V2))
        .or_else(|| h.holding("memory"))
        .or_else(|| h.mounts.iter().find(|m| m.version == Version::V1))
}

/// A cgroup filesystem mounted inside the namespace, as the child sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSight {
    pub mount_point: PathBuf,
    /// mountinfo's root field for that mount: the cgroup at its top, relative to the reader's root.
    pub root: String,
    /// The cgroups (directories) right below the mount's top.
    pub cgroups: Vec<String>,
}

/// What the child in a new cgroup namespace sees.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InsideView {
    pub ns: NsId,
    /// `/proc/self/cgroup`.
    pub own: Vec<Membership>,
    /// `/proc/1/cgroup`: the host's init, which is outside the namespace's root.
    pub init: Vec<Membership>,
    pub mount: MountSight,
}

/// What the host sees of the same child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSight {
    pub ns: NsId,
    /// `/proc/<child>/cgroup`, read by the host.
    pub memberships: Vec<Membership>,
    /// The root field of the child's cgroup mount in `/proc/<child>/mountinfo`, read by the host.
    pub mount_root: String,
}

/// The directories right below `dir` (cgroups, in a cgroup filesystem), sorted.
pub fn list_cgroups(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The root field of the last cgroup mount on `mount_point` in `who`'s mountinfo, as this reader sees it.
pub fn mount_root(who: Proc, mount_point: &Path) -> Result<String, CgroupError> {
    let path = who.dir().join("mountinfo");
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::read(&path, source))?;
    Hierarchies::parse(&text)
        .mounts
        .into_iter()
        .rev()
        .find(|m| m.mount_point == mount_point)
        .map(|m| m.root)
        .ok_or_else(|| {
            CgroupError::read(
                &path,
                io::Error::other(format!("no cgroup mount on {}", mount_point.display())),
            )
        })
}

/// The child for step 3: a new mount namespace, for its own cgroup mount (and a user namespace when
/// not root, or when asked). The cgroup namespace comes later, from the child itself.
pub fn ns_spawn(force_userns: bool) -> Spawn {
    let spawn = Spawn::new(CloneFlags::CLONE_NEWNS);
    if force_userns {
        spawn.user(UserNs::Always)
    } else {
        spawn
    }
}

/// A child living in a new cgroup namespace until [`NsChild::finish`].
#[derive(Debug)]
pub struct NsChild {
    child: Child,
    mount_point: PathBuf,
    pub inside: InsideView,
}

// ANCHOR: enter
/// Step 3: a child is moved into `into` (when given; else it stays in this process's cgroups), then
/// makes itself a cgroup namespace with unshare(CLONE_NEWCGROUP): the cgroups it is in at that moment
/// become the namespace's root. It reads `/proc/self/cgroup` and `/proc/1/cgroup`, mounts `mount`'s
/// hierarchy afresh at the same place in its own mount namespace, and reports what it sees.
pub fn enter_cgroup_ns(spawn: &Spawn, into: Option<&Cgroup>, mount: &Mount) -> Result<NsChild, StepError> {
    let mut child = spawn.run(|channel| {
        cleanup::forget_in_child();
        if channel.expect("go").is_err() {
            return 1;
        }
        let view = look_inside(mount);
        if channel.reply(&view).is_err() {
            return 1;
        }
        answer_looks(channel)
    })?;
    if let Some(cgroup) = into {
        cgroup.add(child.pid())?;
    }
    child.channel().send("go").map_err(lost)?;
    let inside = child.channel().recv_reply()?;
    Ok(NsChild {
        child,
        mount_point: mount.mount_point.clone(),
        inside,
    })
}

/// The child's side: the namespace, then what it sees.
fn look_inside(mount: &Mount) -> Result<InsideView, ChildError> {
    unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| ChildError::sys("unshare(CLONE_NEWCGROUP)", e))?;
    let read = |e: CgroupError| ChildError::new("read", e);
    let ns = cgroup_ns(Proc::Current).map_err(read)?;
    let own = memberships(Proc::Current).map_err(read)?;
    let init = memberships(Proc::Pid(nix::unistd::Pid::from_raw(1))).map_err(read)?;
    mount_cgroupfs(mount)?;
    let sight = MountSight {
        mount_point: mount.mount_point.clone(),
        root: mount_root(Proc::Current, &mount.mount_point).map_err(read)?,
        cgroups: list_cgroups(&mount.mount_point).map_err(|e| ChildError::new("list the mount", e))?,
    };
    Ok(InsideView {
        ns,
        own,
        init,
        mount: sight,
    })
}

/// Mounts a fresh instance of `hierarchy` on its mount point, as a container's runtime does on
/// /sys/fs/cgroup. Propagation is made private first, so the mounts stay in this namespace. The
/// kernel refuses a filesystem mounted right on top of itself (EBUSY), so a tmpfs goes in between.
fn mount_cgroupfs(hierarchy: &Mount) -> Result<(), ChildError> {
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| ChildError::sys("make / private", e))?;
    mount(
        Some("tmpfs"),
        &hierarchy.mount_point,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(|e| ChildError::sys("mount a tmpfs between", e))?;
    let (fstype, options) = match hierarchy.version {
        Version::V2 => ("cgroup2", String::new()),
        // A v1 hierarchy is named by its controllers (or `none,name=...` for a named one).
        Version::V1 if hierarchy.controllers.iter().all(|c| c.starts_with("name=")) => {
            ("cgroup", format!("none,{}", hierarchy.controllers.join(",")))
        }
        Version::V1 => ("cgroup", hierarchy.controllers.join(",")),
    };
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = (!options.is_empty()).then_some(options.as_str());
    mount(Some(fstype), &hierarchy.mount_point, Some(fstype), flags, data).map_err(|e| {
        ChildError::sys(
            &format!("mount -t {fstype} {}", hierarchy.mount_point.display()),
            e,
        )
    })
}
// ANCHOR_END: enter

/// The child waits: `look` reads `/proc/self/cgroup` again, anything else ends it.
fn answer_looks(channel: &mut Channel) -> i32 {
    while matches!(channel.recv().as_deref(), Ok("look")) {
        let own = memberships(Proc::Current).map_err(|e| ChildError::new("read", e));
        if channel.reply(&own).is_err() {
            return 1;
        }
    }
    0
}

impl NsChild {
    pub fn pid(&self) -> nix::unistd::Pid {
        self.child.pid()
    }

    /// The same child through the host's eyes: its `/proc/<pid>/cgroup` and its cgroup mount's root.
    pub fn seen_from_host(&self) -> Result<HostSight, StepError> {
        let who = Proc::Pid(self.child.pid());
        Ok(HostSight {
            ns: cgroup_ns(Proc::Current)?,
            memberships: memberships(who)?,
            mount_root: mount_root(who, &self.mount_point)?,
        })
    }

    /// Asks the child to read `/proc/self/cgroup` again (after the host moved it, say).
    pub fn look(&mut self) -> Result<Vec<Membership>, StepError> {
        self.child.channel().send("look").map_err(lost)?;
        Ok(self.child.channel().recv_reply()?)
    }

    /// Lets the child exit and reaps it.
    pub fn finish(mut self) -> Result<Exit, StepError> {
        self.child.channel().send("exit").map_err(lost)?;
        self.child.wait().map_err(lost)
    }
}

// ---- steps 4 to 6: limits that bite ---------------------------------------------------------------

/// A child in no new namespace that waits until the parent has moved it into `cgroup`, then runs
/// `body`. Moving it before it does anything is what makes everything it does count there.
fn spawn_into<F>(cgroup: &Cgroup, body: F) -> Result<Child, StepError>
where
    F: FnOnce(&mut Channel) -> i32,
{
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| {
            cleanup::forget_in_child();
            if channel.expect("go").is_err() {
                return 1;
            }
            body(channel)
        })?;
    cgroup.add(child.pid())?;
    child.channel().send("go").map_err(lost)?;
    Ok(child)
}

/// The memory child's reports, one per MiB it has touched.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Progress {
    Touched(u64),
    Done,
}

/// How the memory step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OomStory {
    /// The MiB the child had allocated and written when it last reported.
    pub touched_mib: u64,
    /// Whether it allocated everything it was asked to.
    pub finished: bool,
    pub exit: Exit,
    pub events: MemoryEvents,
}

// ANCHOR: allocate
/// Step 4: a child in `cgroup` allocates `amount`, a MiB at a time, writing every byte so the pages
/// are really used (and charged to the cgroup), and reports each MiB. Past the memory limit the kernel
/// reclaims what it can; when nothing is left to reclaim, the cgroup's OOM killer ends the child with
/// SIGKILL, and the memory controller counts the kill.
pub fn allocate(cgroup: &Cgroup, amount: Bytes) -> Result<OomStory, StepError> {
    let mut child = spawn_into(cgroup, |channel| {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for mib in 1..=amount.mib() {
            blocks.push(vec![0x5a; Bytes::MIB as usize]);
            if channel.send_msg(&Progress::Touched(mib)).is_err() {
                return 1;
            }
        }
        std::hint::black_box(&blocks);
        i32::from(channel.send_msg(&Progress::Done).is_err())
    })?;
    let (mut touched_mib, mut finished) = (0, false);
    // Until the child is done, or gone: a killed child's end of the channel closes.
    while let Ok(progress) = child.channel().recv_msg::<Progress>() {
        match progress {
            Progress::Touched(mib) => touched_mib = mib,
            Progress::Done => finished = true,
        }
    }
    let exit = child.wait().map_err(lost)?;
    Ok(OomStory {
        touched_mib,
        finished,
        exit,
        events: cgroup.memory_events()?,
    })
}
// ANCHOR_END: allocate

/// How the pids step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkStory {
    /// Children forked before the first refusal.
    pub forked: u32,
    /// Why the next fork failed, if one did.
    pub refused: Option<Errno>,
    /// Read while the children were still alive.
    pub events: PidsEvents,
}

/// The pids child's report: how many forks worked, and the errno of the one that did not.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Forked {
    forked: u32,
    refused: Option<i32>,
}

// ANCHOR: fork
/// Step 5: a child in `cgroup` forks up to `attempts` children that wait on a pipe. At `pids.max`
/// tasks in the cgroup, fork(2) fails with EAGAIN. The parent reads the controller's counts while the
/// children are still there, then the child releases and reaps them.
pub fn fork_until_refused(cgroup: &Cgroup, attempts: u32) -> Result<ForkStory, StepError> {
    let mut child = spawn_into(cgroup, |channel| {
        let Ok((wait_on, release)) = nix::unistd::pipe() else {
            return 1;
        };
        let mut report = Forked {
            forked: 0,
            refused: None,
        };
        let mut children = Vec::new();
        for _ in 0..attempts {
            // SAFETY: this process was cloned from a single thread and has no other, so the forked
            // child may run anything; it runs only close, read and _exit.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => wait_for_release(&wait_on, &release),
                Ok(nix::unistd::ForkResult::Parent { child }) => {
                    children.push(child);
                    report.forked += 1;
                }
                Err(errno) => {
                    report.refused = Some(errno as i32);
                    break;
                }
            }
        }
        let reported = channel.send_msg(&report).is_ok() && channel.expect("release").is_ok();
        drop(release);
        for pid in children {
            let _ = nskit::spawn::wait_for(pid);
        }
        i32::from(!reported)
    })?;
    let report: Forked = child.channel().recv_msg().map_err(lost)?;
    let events = cgroup.pids_events()?;
    child.channel().send("release").map_err(lost)?;
    child.wait().map_err(lost)?;
    Ok(ForkStory {
        forked: report.forked,
        refused: report.refused.map(Errno::from_raw),
        events,
    })
}

/// A forked child's whole life: close its copy of the pipe's write end, wait until the others are
/// closed too (read returns 0), exit.
fn wait_for_release(wait_on: &std::os::fd::OwnedFd, release: &std::os::fd::OwnedFd) -> ! {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: the descriptor is this process's copy, closed once; the OwnedFd is never dropped
    // because _exit below does not return.
    unsafe { libc::close(release.as_raw_fd()) };
    // SAFETY: one byte of writable memory at `byte`.
    unsafe { libc::read(wait_on.as_raw_fd(), (&raw mut byte).cast(), 1) };
    // SAFETY: _exit(2) ends the process without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(0) }
}
// ANCHOR_END: fork

/// How the cpu step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuStory {
    pub wall: Duration,
    /// CPU time the busy loop got in that wall time.
    pub cpu: Duration,
    pub stat: CpuStat,
}

impl CpuStory {
    /// CPU time over wall time: 0.5 is half a CPU.
    pub fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The cpu child's report, in nanoseconds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Spun {
    wall_ns: u64,
    cpu_ns: u64,
}

// ANCHOR: busy
/// Step 6: a child in `cgroup` spins for `busy` of wall-clock time and measures the CPU time it got
/// (CLOCK_PROCESS_CPUTIME_ID). With a quota of Q microseconds per 100 ms period, the scheduler stops
/// it each time it has used Q, until the next period: it gets Q/100000 of one CPU, however idle the
/// machine. `cpu.stat` counts the periods it was throttled in.
pub fn busy_loop(cgroup: &Cgroup, busy: Duration) -> Result<CpuStory, StepError> {
    let mut child = spawn_into(cgroup, |channel| {
        let clock = |id: ClockId| id.now().map(Duration::from).unwrap_or_default();
        let (wall0, cpu0) = (
            clock(ClockId::CLOCK_MONOTONIC),
            clock(ClockId::CLOCK_PROCESS_CPUTIME_ID),
        );
        let mut wall = Duration::ZERO;
        while wall < busy {
            std::hint::black_box(wall);
            wall = clock(ClockId::CLOCK_MONOTONIC) - wall0;
        }
        let cpu = clock(ClockId::CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        let spun = Spun {
            wall_ns: wall.as_nanos() as u64,
            cpu_ns: cpu.as_nanos() as u64,
        };
        i32::from(channel.send_msg(&spun).is_err())
    })?;
    let spun: Spun = child.channel().recv_msg().map_err(lost)?;
    child.wait().map_err(lost)?;
    Ok(CpuStory {
        wall: Duration::from_nanos(spun.wall_ns),
        cpu: Duration::from_nanos(spun.cpu_ns),
        stat: cgroup.cpu_stat()?,
    })
}
// ANCHOR_END: busy
