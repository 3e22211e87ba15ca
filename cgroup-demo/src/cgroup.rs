//! Making, limiting, filling and removing a cgroup, on cgroup v2 and on v1 (cgroups(7),
//! Documentation/admin-guide/cgroup-v2.rst). This is the part of the chapter the launcher reuses for
//! `--memory`, `--pids-limit` and `--cpus`:
//!
//! 1. [`Placement::own`] finds where this process may make cgroups: on v1, its own cgroup in each
//!    controller's hierarchy; on v2, the nearest cgroup at or above its own that holds no process
//!    itself (v2 lets only such a cgroup hand controllers to its children);
//! 2. [`Placement::access`] says whether it may (delegation: a directory it can write);
//! 3. [`Cgroup::create`] makes the cgroup, one directory per hierarchy, after enabling the
//!    controllers in the parent's `cgroup.subtree_control` on v2;
//! 4. [`Cgroup::apply`] writes the limits, [`Cgroup::add`] moves a process in;
//! 5. [`Cgroup::memory_events`], [`Cgroup::pids_events`], [`Cgroup::cpu_stat`] read what happened;
//! 6. [`Cgroup::remove`] kills what is left and removes every directory (also on drop, and, when
//!    [`crate::cleanup::remove_on_signals`] was called, on Ctrl-C).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{AccessFlags, Pid, access};
use nskit::Proc;

use crate::cleanup::{Registered, SignalsHeld};
use crate::hierarchy::{Hierarchies, Membership, Mount, Version, memberships};
use crate::limits::{Controller, Limits, settings};

/// How to get a delegated cgroup subtree, for error messages and the demo.
pub const HOW_TO_DELEGATE: &str = "on a systemd host, run it in a delegated scope: systemd-run --user --scope \
     -p Delegate=yes <command> (or a service with Delegate=yes); elsewhere, have root make a cgroup \
     directory and chown it and its cgroup.procs, cgroup.subtree_control and cgroup.threads to you, then \
     run from a cgroup below it";

/// Why a cgroup step failed; each variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cannot create the cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot remove the cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("{path} still holds processes {pids:?} after they were killed")]
    NotEmpty { path: PathBuf, pids: Vec<i32> },
    #[error("no cgroup filesystem is mounted (see /proc/self/mountinfo): mount cgroup2 on /sys/fs/cgroup")]
    NotMounted,
    #[error("the {controller} controller is not available: {why}")]
    Unavailable { controller: Controller, why: String },
    #[error(
        "this process (uid {uid}) may not create cgroups in {path}, which belongs to uid {owner}: cgroups need a \
         delegated subtree; {HOW_TO_DELEGATE}"
    )]
    NotDelegated { path: PathBuf, owner: u32, uid: u32 },
    #[error(
        "cannot enable the {controller} controller in {path}: that cgroup holds processes, and on cgroup v2 only \
         a cgroup without processes of its own hands controllers to its children (the no-internal-process rule); \
         move its processes into a leaf cgroup first"
    )]
    InternalProcesses { path: PathBuf, controller: Controller },
    #[error("invalid cgroup name {name:?}: {why}")]
    Name { name: String, why: &'static str },
    #[error("cannot guard the cgroup against Ctrl-C: {0}")]
    Guard(String),
}

impl CgroupError {
    pub(crate) fn read(path: &Path, source: io::Error) -> CgroupError {
        CgroupError::Read {
            path: path.to_owned(),
            source,
        }
    }
}

/// One directory of a cgroup (or of a parent): on v1 a cgroup has one per hierarchy it lives in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dir {
    pub version: Version,
    pub path: PathBuf,
    /// The controllers this chapter uses that act on this directory.
    pub controllers: Vec<Controller>,
}

impl Dir {
    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// Whether this process may make cgroups in one parent directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    pub dir: PathBuf,
    /// The directory's owner: a delegated directory belongs to the user it was delegated to.
    pub owner: u32,
    /// It may make a directory there (and, on v2, move processes below it through its cgroup.procs).
    pub may_create: bool,
}

/// Where new cgroups go: a parent directory per hierarchy, for the controllers asked for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    pub parents: Vec<Dir>,
}

/// The directories of this process's own cgroups that hold `controllers`: on v1 one per hierarchy,
/// on v2 the one.
pub fn own_dirs(h: &Hierarchies, controllers: &[Controller]) -> Result<Vec<Dir>, CgroupError> {
    let mine = memberships(Proc::Current)?;
    let mut dirs: Vec<Dir> = Vec::new();
    for &controller in controllers {
        let (mount, membership) = locate(h, &mine, controller)?;
        let path = mount
            .dir_of(&membership.path)
            .ok_or_else(|| CgroupError::Unavailable {
                controller,
                why: format!(
                    "this process's cgroup {} is not below the root {} of the mount on {}",
                    membership.path,
                    mount.root,
                    mount.mount_point.display()
                ),
            })?;
        add_to(&mut dirs, mount.version, path, controller);
    }
    Ok(dirs)
}

/// The mount holding `controller`, and this process's line for that hierarchy.
fn locate<'a>(
    h: &'a Hierarchies,
    mine: &'a [Membership],
    controller: Controller,
) -> Result<(&'a Mount, &'a Membership), CgroupError> {
    let unavailable = |why: String| CgroupError::Unavailable { controller, why };
    let mount = h.holding(controller.name()).ok_or_else(|| {
        unavailable("no v1 hierarchy is bound to it, and the cgroup2 mount does not offer it".into())
    })?;
    let membership = mine
        .iter()
        .find(|m| match mount.version {
            Version::V2 => m.hierarchy == 0,
            Version::V1 => m.hierarchy != 0 && m.names(controller.name()),
        })
        .ok_or_else(|| unavailable("/proc/self/cgroup has no line for its hierarchy".into()))?;
    Ok((mount, membership))
}

fn add_to(dirs: &mut Vec<Dir>, version: Version, path: PathBuf, controller: Controller) {
    match dirs.iter_mut().find(|d| d.path == path) {
        Some(dir) => dir.controllers.push(controller),
        None => dirs.push(Dir {
            version,
            path,
            controllers: vec![controller],
        }),
    }
}

// ANCHOR: placement
impl Placement {
    /// Below this process's own cgroups. On v1 that is its cgroup in each hierarchy. On v2 a cgroup
    /// that holds processes cannot give controllers to children (only the root cgroup may), and this
    /// process is in its own: so the parent is the nearest cgroup at or above its own that is the
    /// root or holds no process itself, as a delegated directory above the caller's leaf does.
    pub fn own(h: &Hierarchies, controllers: &[Controller]) -> Result<Placement, CgroupError> {
        let mut parents = own_dirs(h, controllers)?;
        for dir in parents.iter_mut().filter(|d| d.version == Version::V2) {
            let mount = h.v2().ok_or(CgroupError::NotMounted)?;
            dir.path = nearest_without_processes(&dir.path, &mount.mount_point)?;
        }
        Ok(Placement { parents })
    }

    /// Below a given cgroup (docker's `--cgroup-parent`), named as in `/proc/self/cgroup` and found in
    /// every hierarchy that holds one of `controllers`. It must exist.
    pub fn at(h: &Hierarchies, cgroup: &str, controllers: &[Controller]) -> Result<Placement, CgroupError> {
        let mine = memberships(Proc::Current)?;
        let mut parents = Vec::new();
        for &controller in controllers {
            let (mount, _) = locate(h, &mine, controller)?;
            let path =
                mount
                    .dir_of(cgroup)
                    .filter(|p| p.is_dir())
                    .ok_or_else(|| CgroupError::Unavailable {
                        controller,
                        why: format!("no cgroup {cgroup} on {}", mount.mount_point.display()),
                    })?;
            add_to(&mut parents, mount.version, path, controller);
        }
        Ok(Placement { parents })
    }

    /// The same parents, for `controllers` only (a parent holding none of them is dropped).
    pub fn only(&self, controllers: &[Controller]) -> Placement {
        let parents = self
            .parents
            .iter()
            .map(|dir| Dir {
                controllers: dir
                    .controllers
                    .iter()
                    .copied()
                    .filter(|c| controllers.contains(c))
                    .collect(),
                ..dir.clone()
            })
            .filter(|dir| !dir.controllers.is_empty())
            .collect();
        Placement { parents }
    }

    /// Whether this process may make cgroups in each parent: write and search permission on the
    /// directory, and, on v2, on its `cgroup.procs`, since a process moves between two cgroups only
    /// when the mover may write the `cgroup.procs` of their common ancestor (cgroup-v2.rst,
    /// "Delegation Containment").
    pub fn access(&self) -> Vec<Access> {
        self.parents
            .iter()
            .map(|dir| {
                let writable = |p: &Path, mode| access(p, mode).is_ok();
                let dir_ok = writable(&dir.path, AccessFlags::W_OK | AccessFlags::X_OK);
                let procs_ok =
                    dir.version == Version::V1 || writable(&dir.file("cgroup.procs"), AccessFlags::W_OK);
                Access {
                    dir: dir.path.clone(),
                    owner: fs::metadata(&dir.path).map_or(0, |m| m.uid()),
                    may_create: dir_ok && procs_ok,
                }
            })
            .collect()
    }

    /// Ok when every parent allows it; else the first that does not, named.
    pub fn check_access(&self) -> Result<(), CgroupError> {
        match self.access().into_iter().find(|a| !a.may_create) {
            None => Ok(()),
            Some(refused) => Err(CgroupError::NotDelegated {
                path: refused.dir,
                owner: refused.owner,
                uid: nix::unistd::geteuid().as_raw(),
            }),
        }
    }
}

/// `dir` or its nearest ancestor (not above `top`, the mount point) that is the hierarchy's root
/// cgroup or lists no process in its `cgroup.procs`.
fn nearest_without_processes(dir: &Path, top: &Path) -> Result<PathBuf, CgroupError> {
    let mut candidate = dir;
    loop {
        // Only the root cgroup lacks cgroup.type: it is exempt from the rule.
        let is_root = !candidate.join("cgroup.type").exists();
        if is_root || procs_of(candidate)?.is_empty() || candidate == top {
            return Ok(candidate.to_owned());
        }
        match candidate.parent() {
            Some(parent) if parent.starts_with(top) => candidate = parent,
            _ => return Ok(candidate.to_owned()),
        }
    }
}
// ANCHOR_END: placement

/// The PIDs in `dir/cgroup.procs`.
pub fn procs_of(dir: &Path) -> Result<Vec<Pid>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::read(&path, source))?;
    Ok(text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(Pid::from_raw)
        .collect())
}

/// Writes `value` to `path`, as one write(2): a cgroup file takes each write whole.
fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// Moves `pid` (all its threads) into the cgroup at `dir` (cgroup.procs).
pub fn move_process(dir: &Path, pid: Pid) -> Result<(), CgroupError> {
    write_file(&dir.join("cgroup.procs"), &pid.to_string())
}

/// One file a limit was written to, and the value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    pub path: PathBuf,
    pub value: String,
}

/// What the memory controller counted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryEvents {
    /// The file read: `memory.events` (v2) or `memory.oom_control` (v1).
    pub file: PathBuf,
    /// Processes the OOM killer ended in this cgroup (and, on v2, below it).
    pub oom_kill: u64,
    /// v2 only: times the cgroup ran out of memory and the OOM killer was invoked.
    pub oom: Option<u64>,
}

/// What the pids controller counted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PidsEvents {
    /// `pids.events`.
    pub file: PathBuf,
    /// Forks and clones refused because the cgroup was at `pids.max`.
    pub max: u64,
    /// Tasks in the cgroup now (`pids.current`).
    pub current: u64,
}

/// What the cpu controller's bandwidth limit did (`cpu.stat`, on v2 and on v1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuStat {
    pub file: PathBuf,
    /// Scheduling periods in which the cgroup had something to run.
    pub nr_periods: u64,
    /// Periods whose quota ran out before the period did, so the cgroup waited.
    pub nr_throttled: u64,
    /// How long it waited in all.
    pub throttled: Duration,
}

/// A cgroup this process made: its directories, removed on [`Cgroup::remove`] or on drop.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<Dir>,
    guards: Vec<Registered>,
    removed: bool,
}

/// Refuses a name that is not one plain path component.
fn check_name(name: &str) -> Result<(), CgroupError> {
    let bad = |why| {
        Err(CgroupError::Name {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() || name == "." || name == ".." {
        return bad("it must be a directory name");
    }
    if name.contains('/') || name.contains('\0') {
        return bad("it must not contain '/' or a NUL byte");
    }
    if name.starts_with("cgroup.") || Controller::ALL.iter().any(|c| name.starts_with(&format!("{c}."))) {
        return bad("it would clash with the kernel's interface files");
    }
    Ok(())
}

// ANCHOR: create
impl Cgroup {
    /// Makes the cgroup `name` below every parent of `placement`. On v2 the parent first hands the
    /// controllers to its children (`+memory` in its `cgroup.subtree_control`). If any step fails,
    /// what was made is removed.
    pub fn create(placement: &Placement, name: &str) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        let mut cgroup = Cgroup {
            dirs: Vec::new(),
            guards: Vec::new(),
            removed: false,
        };
        for parent in &placement.parents {
            if parent.version == Version::V2 {
                enable_controllers(parent)?;
            }
            cgroup.make_dir(Dir {
                path: parent.path.join(name),
                ..parent.clone()
            })?;
            if parent.version == Version::V1 && parent.controllers.contains(&Controller::Cpuset) {
                inherit_cpuset(parent, &parent.path.join(name))?;
            }
        }
        Ok(cgroup)
    }

    /// The directory, made and recorded for removal with the terminating signals held, so that a
    /// Ctrl-C cannot come between the two.
    fn make_dir(&mut self, dir: Dir) -> Result<(), CgroupError> {
        let _held = SignalsHeld::hold().map_err(|e| CgroupError::Guard(e.to_string()))?;
        fs::create_dir(&dir.path).map_err(|source| CgroupError::Create {
            path: dir.path.clone(),
            source,
        })?;
        match Registered::new(&dir.path) {
            Ok(guard) => self.guards.push(guard),
            Err(e) => {
                let _ = fs::remove_dir(&dir.path);
                return Err(CgroupError::Guard(e.to_string()));
            }
        }
        self.dirs.push(dir);
        Ok(())
    }
}

/// Makes the missing directories down to `dir` (a v1 hierarchy's: v2 parents must exist), each v1
/// cpuset one with its parent's CPUs and memory nodes, as [`Cgroup::create`] gives its own.
pub fn make_parents(dir: &Dir) -> Result<(), CgroupError> {
    let mut missing = Vec::new();
    let mut at = dir.path.as_path();
    while !at.exists() {
        missing.push(at.to_owned());
        at = at.parent().unwrap_or(std::path::Path::new("/"));
    }
    for path in missing.into_iter().rev() {
        fs::create_dir(&path).map_err(|source| CgroupError::Create {
            path: path.clone(),
            source,
        })?;
        if dir.version == Version::V1 && dir.controllers.contains(&Controller::Cpuset) {
            let parent = Dir {
                path: path.parent().unwrap_or(std::path::Path::new("/")).to_owned(),
                ..dir.clone()
            };
            inherit_cpuset(&parent, &path)?;
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with no CPU and no memory node, and refuses processes until it has
/// both (cgroups(7), cpuset(7)): it gets its parent's, which a limit may then narrow.
fn inherit_cpuset(parent: &Dir, dir: &std::path::Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let from = parent.file(file);
        let value = fs::read_to_string(&from).map_err(|source| CgroupError::read(&from, source))?;
        write_file(&dir.join(file), value.trim())?;
    }
    Ok(())
}

/// On v2, a controller acts in a cgroup only when its parent lists it in `cgroup.subtree_control`;
/// writing `+memory` there needs the parent to offer it (`cgroup.controllers`) and to hold no
/// processes of its own, unless it is the root.
fn enable_controllers(parent: &Dir) -> Result<(), CgroupError> {
    let read = |name: &str| -> Result<Vec<String>, CgroupError> {
        let path = parent.file(name);
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::read(&path, source))?;
        Ok(text.split_whitespace().map(str::to_owned).collect())
    };
    let (offered, enabled) = (read("cgroup.controllers")?, read("cgroup.subtree_control")?);
    for &controller in &parent.controllers {
        let name = controller.name();
        if enabled.iter().any(|c| c == name) {
            continue;
        }
        if !offered.iter().any(|c| c == name) {
            return Err(CgroupError::Unavailable {
                controller,
                why: format!(
                    "{} does not offer it: its parent must list it in cgroup.subtree_control first",
                    parent.file("cgroup.controllers").display()
                ),
            });
        }
        match write_file(&parent.file("cgroup.subtree_control"), &format!("+{name}")) {
            Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
                return Err(CgroupError::InternalProcesses {
                    path: parent.path.clone(),
                    controller,
                });
            }
            other => other?,
        }
    }
    Ok(())
}
// ANCHOR_END: create

impl Cgroup {
    /// A cgroup inside this one (in each of its directories), with no limits of its own: on v2 no
    /// controller is handed down to it.
    pub fn nested(&self, name: &str) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        let mut inner = Cgroup {
            dirs: Vec::new(),
            guards: Vec::new(),
            removed: false,
        };
        for dir in &self.dirs {
            let controllers = match dir.version {
                Version::V1 => dir.controllers.clone(),
                Version::V2 => Vec::new(),
            };
            inner.make_dir(Dir {
                version: dir.version,
                path: dir.path.join(name),
                controllers,
            })?;
        }
        Ok(inner)
    }

    /// Its directories, one per hierarchy.
    pub fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    /// The directory where `controller` acts.
    pub fn dir_for(&self, controller: Controller) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.controllers.contains(&controller))
    }

    // ANCHOR: apply
    /// Writes `limits` to the files each controller reads (see [`crate::limits::settings`]) and returns
    /// what it wrote. A file that exists only with swap accounting is skipped where the kernel lacks it.
    pub fn apply(&self, limits: &Limits) -> Result<Vec<Written>, CgroupError> {
        let mut written = Vec::new();
        for dir in &self.dirs {
            for &controller in &dir.controllers {
                for setting in settings(controller, limits, dir.version) {
                    let path = dir.file(setting.file);
                    if setting.optional && !path.exists() {
                        continue;
                    }
                    write_file(&path, &setting.value)?;
                    written.push(Written {
                        path,
                        value: setting.value,
                    });
                }
            }
        }
        Ok(written)
    }

    /// Moves the process `pid` (with all its threads) into the cgroup, in every hierarchy.
    pub fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        self.dirs.iter().try_for_each(|dir| move_process(&dir.path, pid))
    }
    // ANCHOR_END: apply

    /// The processes in the cgroup (in any of its directories, not below them).
    pub fn procs(&self) -> Result<Vec<Pid>, CgroupError> {
        let mut all = Vec::new();
        for dir in &self.dirs {
            for pid in procs_of(&dir.path)? {
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        Ok(all)
    }

    fn read_keyed(
        &self,
        controller: Controller,
        file: &str,
    ) -> Result<(PathBuf, Vec<(String, u64)>), CgroupError> {
        let dir = self.dir_for(controller).ok_or_else(|| CgroupError::Unavailable {
            controller,
            why: "this cgroup was not made with it".into(),
        })?;
        let path = dir.file(file);
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::read(&path, source))?;
        Ok((path, parse_keyed(&text)))
    }

    // ANCHOR: events
    /// How many processes the OOM killer ended here: `oom_kill` in `memory.events` on v2, in
    /// `memory.oom_control` on v1.
    pub fn memory_events(&self) -> Result<MemoryEvents, CgroupError> {
        let v2 = self.dir_for(Controller::Memory).map(|d| d.version) == Some(Version::V2);
        let file = if v2 { "memory.events" } else { "memory.oom_control" };
        let (file, keys) = self.read_keyed(Controller::Memory, file)?;
        Ok(MemoryEvents {
            file,
            oom_kill: value_of(&keys, "oom_kill").unwrap_or(0),
            oom: if v2 { value_of(&keys, "oom") } else { None },
        })
    }
    // ANCHOR_END: events

    /// The pids controller's count of refused forks (`pids.events`) and its current count.
    pub fn pids_events(&self) -> Result<PidsEvents, CgroupError> {
        let (file, keys) = self.read_keyed(Controller::Pids, "pids.events")?;
        let current_path = file.with_file_name("pids.current");
        let current = fs::read_to_string(&current_path)
            .map_err(|source| CgroupError::read(&current_path, source))?
            .trim()
            .parse()
            .unwrap_or(0);
        Ok(PidsEvents {
            max: value_of(&keys, "max").unwrap_or(0),
            file,
            current,
        })
    }

    /// The bandwidth statistics (`cpu.stat`): v2 counts the wait in microseconds, v1 in nanoseconds.
    pub fn cpu_stat(&self) -> Result<CpuStat, CgroupError> {
        let (file, keys) = self.read_keyed(Controller::Cpu, "cpu.stat")?;
        let throttled = match value_of(&keys, "throttled_usec") {
            Some(us) => Duration::from_micros(us),
            None => Duration::from_nanos(value_of(&keys, "throttled_time").unwrap_or(0)),
        };
        Ok(CpuStat {
            file,
            nr_periods: value_of(&keys, "nr_periods").unwrap_or(0),
            nr_throttled: value_of(&keys, "nr_throttled").unwrap_or(0),
            throttled,
        })
    }
}

/// `key value` lines, as `memory.events`, `memory.oom_control`, `pids.events` and `cpu.stat` have them.
fn parse_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

fn value_of(keys: &[(String, u64)], key: &str) -> Option<u64> {
    keys.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// How long removal waits for killed processes to leave.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);

// ANCHOR: remove
impl Cgroup {
    /// Kills every process left in the cgroup (and in any cgroup below it), waits until they have
    /// left, and removes the directories, innermost first: rmdir(2) refuses a cgroup with a process
    /// or a child cgroup in it (EBUSY). Returns every directory removed.
    pub fn remove(mut self) -> Result<Vec<PathBuf>, CgroupError> {
        self.remove_now()
    }

    /// Lets the cgroup outlive this value (and this process): nothing removes it on drop or on
    /// Ctrl-C any more, and its directories, returned, are the caller's to remove later (an OCI
    /// runtime's `create` leaves a container's cgroup to its `delete`).
    pub fn release(mut self) -> Vec<PathBuf> {
        self.removed = true;
        self.guards.clear();
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    fn remove_now(&mut self) -> Result<Vec<PathBuf>, CgroupError> {
        if self.removed {
            return Ok(Vec::new());
        }
        let _held = SignalsHeld::hold().map_err(|e| CgroupError::Guard(e.to_string()))?;
        let mut removed = Vec::new();
        for dir in &self.dirs {
            let tree = subtree(&dir.path)?;
            empty(&tree)?;
            for path in tree.iter().rev() {
                remove_dir(path)?;
                removed.push(path.clone());
            }
        }
        self.removed = true;
        self.guards.clear();
        Ok(removed)
    }
}

/// `dir` and every cgroup below it, parents before children.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut all = vec![dir.to_owned()];
    let mut next = 0;
    while next < all.len() {
        let entries = match fs::read_dir(&all[next]) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                all.remove(next);
                continue;
            }
            Err(source) => return Err(CgroupError::read(&all[next], source)),
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                all.push(entry.path());
            }
        }
        next += 1;
    }
    Ok(all)
}

/// Kills the processes in every cgroup of `tree` until none is left.
fn empty(tree: &[PathBuf]) -> Result<(), CgroupError> {
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    loop {
        let mut left = Vec::new();
        for dir in tree {
            match procs_of(dir) {
                Ok(pids) => left.extend(pids.into_iter().map(|pid| (dir, pid))),
                Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let Some((dir, _)) = left.first() else {
            return Ok(());
        };
        if Instant::now() > deadline {
            return Err(CgroupError::NotEmpty {
                path: dir.to_path_buf(),
                pids: left.iter().map(|(_, pid)| pid.as_raw()).collect(),
            });
        }
        for (_, pid) in &left {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// rmdir(2), retried for a moment on EBUSY: a killed process leaves its cgroup a little after it
/// leaves `cgroup.procs`.
fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}
// ANCHOR_END: remove

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_plain_component() {
        assert!(check_name("cgroup-demo-42").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\0b",
            "cgroup.procs",
            "memory.max",
            "pids.x",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keyed_files_are_read() {
        let v2 = parse_keyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
        assert_eq!(value_of(&v2, "oom_kill"), Some(1));
        assert_eq!(value_of(&v2, "max"), Some(12));
        let v1 = parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(value_of(&v1, "oom_kill"), Some(3));
        assert_eq!(value_of(&v1, "oom"), None);
    }

    #[test]
    fn a_subtree_lists_parents_first() {
        let top = std::env::temp_dir().join(format!("cgroup-demo-subtree-{}", std::process::id()));
        fs::create_dir_all(top.join("a/b")).unwrap();
        fs::create_dir_all(top.join("c")).unwrap();
        fs::write(top.join("a/file"), "").unwrap();
        let tree = subtree(&top).unwrap();
        assert_eq!(tree[0], top);
        assert_eq!(tree.len(), 4, "{tree:?}");
        let pos = |p: &str| tree.iter().position(|t| *t == top.join(p)).unwrap();
        assert!(pos("a") < pos("a/b"));
        fs::remove_file(top.join("a/file")).unwrap();
        for path in tree.iter().rev() {
            fs::remove_dir(path).unwrap();
        }
        assert!(
            subtree(&top).unwrap().is_empty(),
            "a missing directory has no subtree"
        );
    }
}
