//! The chapter's experiments, each run in children of its own on the demo's scratch tree
//! (mount_namespaces(7), pivot_root(2), chroot(2), proc(5)).
//!
//! Each function spawns the processes it needs, lets them mount, look and report back over the
//! [`Channel`], and returns what they saw as plain data; `main.rs` prints it and the tests check it.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::CloneFlags;
use nix::unistd::{chdir, chroot, getpid, pivot_root};
use nskit::channel::errno_result;
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::{Channel, ChildError, Spawn, SpawnError, UserNs};

use crate::mountinfo::{self, MountEntry, PropagationTags};
use crate::rootfs::{self, Propagation};
use crate::scratch::{ROOTFS_MARKER, Scratch};

/// Why an experiment could not be run (as opposed to an outcome it observed).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("lost contact with the child: {0}")]
    Channel(#[source] io::Error),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

impl From<SpawnError> for LabError {
    fn from(e: SpawnError) -> LabError {
        LabError::Child(nskit::StepError::Spawn(e))
    }
}

/// Sends a child's result: what it observed, or why `step` failed.
fn reply<T: serde::Serialize>(channel: &mut Channel, step: &str, result: Result<T, String>) -> i32 {
    i32::from(
        channel
            .reply(&result.map_err(|why| ChildError::new(step, why)))
            .is_err(),
    )
}

/// Receives what [`reply`] sent.
fn receive<T: serde::de::DeserializeOwned>(channel: &mut Channel) -> Result<T, LabError> {
    Ok(channel.recv_reply()?)
}

fn my_mnt_ns() -> Result<NsId, String> {
    ns_id(Proc::Current, Kind::Mnt).map_err(|e| format!("read my mount namespace: {e}"))
}

/// Mounts a small tmpfs named `source` at `target`.
pub fn mount_tmpfs(source: &str, target: &Path) -> Result<(), Errno> {
    mount(
        Some(source),
        target,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m,mode=755"),
    )
}

/// The child's spawn: a new mount namespace, plus a user namespace when not root (or when forced).
pub fn child_spawn(extra: CloneFlags, force_userns: bool) -> Spawn {
    let spawn = Spawn::new(CloneFlags::CLONE_NEWNS | extra);
    if force_userns {
        spawn.user(UserNs::Always)
    } else {
        spawn
    }
}

// ---------------------------------------------------------------------------------------------------
// Step 1: a mount made in a new mount namespace, seen from both sides.

/// What one process's three mount files say about one mount point (proc(5)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountFiles {
    pub ns: NsId,
    pub pid: i32,
    /// Lines of `/proc/<pid>/mounts` (the fstab-like format) for the mount point.
    pub mounts: Vec<String>,
    /// Entries of `/proc/<pid>/mountinfo` for it.
    pub mountinfo: Vec<MountEntry>,
    /// Lines of `/proc/<pid>/mountstats` for it.
    pub mountstats: Vec<String>,
    /// How many mounts the process's namespace holds in all.
    pub total: usize,
}

// ANCHOR: read_mount_files
/// Reads `/proc/<pid>/mounts`, `mountinfo` and `mountstats` and keeps what concerns `mount_point`.
/// All three describe the mount namespace of process `pid`, whoever reads them.
pub fn read_mount_files(pid: i32, mount_point: &Path) -> Result<MountFiles, LabError> {
    let who = Proc::Pid(nix::unistd::Pid::from_raw(pid));
    let dir = who.dir();
    let read = |name: &str| {
        fs::read_to_string(dir.join(name)).map_err(io_err(format!("read {}/{name}", dir.display())))
    };
    let point = mount_point.to_str().unwrap_or_default();
    let mounts = read("mounts")?
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some(point))
        .map(str::to_owned)
        .collect();
    let table = mountinfo::parse(&read("mountinfo")?).map_err(|e| {
        io_err(format!("parse {}/mountinfo", dir.display()))(io::Error::new(io::ErrorKind::InvalidData, e))
    })?;
    let total = table.len();
    let mountinfo = table.into_iter().filter(|e| e.mount_point == point).collect();
    let on = format!(" mounted on {point} with ");
    let mountstats = read("mountstats")?
        .lines()
        .filter(|l| l.contains(&on))
        .map(str::to_owned)
        .collect();
    Ok(MountFiles {
        ns: ns_id(who, Kind::Mnt).map_err(io_err("read a mount namespace"))?,
        pid,
        mounts,
        mountinfo,
        mountstats,
        total,
    })
}
// ANCHOR_END: read_mount_files

/// Step 1's result: the same mount point, read through the child's and the host's files.
#[derive(Clone, Debug)]
pub struct Visibility {
    pub mount_point: PathBuf,
    pub child: MountFiles,
    pub host: MountFiles,
}

// ANCHOR: visibility
/// A child in a new mount namespace makes its mounts private (the first thing any container does),
/// mounts a tmpfs named `mnt-demo` on the scratch directory, and waits while the parent reads both
/// sides' mount files.
pub fn tmpfs_visibility(spawn: &Spawn, scratch: &Scratch) -> Result<Visibility, LabError> {
    let point = scratch
        .subdir("visible")
        .map_err(io_err("create the mount point"))?;
    let mut child = spawn.run(|channel| {
        let mounted = rootfs::isolate_root(Propagation::Private)
            .map_err(|e| e.to_string())
            .and_then(|()| mount_tmpfs("mnt-demo", &point).map_err(|e| format!("mount tmpfs: {e}")));
        if reply(channel, "mount", mounted) != 0 {
            return 1;
        }
        i32::from(channel.expect("exit").is_err())
    })?;
    receive::<()>(child.channel())?;
    let child_files = read_mount_files(child.pid().as_raw(), &point);
    let host_files = read_mount_files(getpid().as_raw(), &point);
    child.channel().send("exit").map_err(LabError::Channel)?;
    child.wait().map_err(LabError::Channel)?;
    Ok(Visibility {
        mount_point: point,
        child: child_files?,
        host: host_files?,
    })
}
// ANCHOR_END: visibility

// ---------------------------------------------------------------------------------------------------
// Step 2: the propagation types, on a scratch tree of the lab's own.

/// One propagation type, tried out on two directories `a` and `b` (`b` a bind mount of `a`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PropagationCase {
    pub propagation: Propagation,
    /// The bind mount of `a` onto `b` (EINVAL for an unbindable `a`).
    #[serde(with = "errno_result")]
    pub bind: Result<(), Errno>,
    pub a: PropagationTags,
    pub b: PropagationTags,
    /// A mount made under `a` appeared under `b`.
    pub a_to_b: bool,
    /// A mount made under `b` appeared under `a`.
    pub b_to_a: bool,
}

/// Step 2a's result.
#[derive(Clone, Debug)]
pub struct PropagationLab {
    pub ns: NsId,
    pub lab: PathBuf,
    pub cases: Vec<PropagationCase>,
}

// ANCHOR: propagation_case
/// In the lab's own mount namespace: mounts a tmpfs at `dir/a` with the given propagation, binds it
/// at `dir/b` (for `Slave`: `a` shared, then `b` made its slave), then mounts under each side and
/// looks whether the mount shows up on the other.
fn propagation_case(dir: &Path, propagation: Propagation) -> Result<PropagationCase, String> {
    let (a, b) = (dir.join("a"), dir.join("b"));
    let sys = |what: &str| {
        let what = what.to_owned();
        move |e: Errno| format!("{what}: {e}")
    };
    fs::create_dir_all(&a)
        .and_then(|()| fs::create_dir_all(&b))
        .map_err(|e| e.to_string())?;
    mount_tmpfs(propagation.name(), &a).map_err(sys("mount tmpfs at a"))?;
    for sub in ["from-a", "from-b"] {
        fs::create_dir(a.join(sub)).map_err(|e| e.to_string())?;
    }
    let first = if propagation == Propagation::Slave {
        Propagation::Shared
    } else {
        propagation
    };
    rootfs::set_propagation(&a, first, false).map_err(|e| e.to_string())?;
    let bind = mount(Some(&a), &b, None::<&str>, MsFlags::MS_BIND, None::<&str>);
    if bind.is_ok() && propagation == Propagation::Slave {
        rootfs::set_propagation(&b, Propagation::Slave, false).map_err(|e| e.to_string())?;
    }
    let tags_of = |p: &Path| -> Result<PropagationTags, String> {
        let table = mountinfo::read(Proc::Current).map_err(|e| e.to_string())?;
        Ok(mountinfo::find(&table, p)
            .map(|e| e.propagation.clone())
            .unwrap_or_default())
    };
    let (tags_a, tags_b) = (
        tags_of(&a)?,
        if bind.is_ok() {
            tags_of(&b)?
        } else {
            PropagationTags::default()
        },
    );
    let crossed = |from: &Path, to: &Path, sub: &str| -> Result<bool, String> {
        if bind.is_err() {
            return Ok(false);
        }
        mount_tmpfs("event", &from.join(sub)).map_err(sys("mount the event"))?;
        mountinfo::is_mounted(Proc::Current, &to.join(sub)).map_err(|e| e.to_string())
    };
    let a_to_b = crossed(&a, &b, "from-a")?;
    let b_to_a = crossed(&b, &a, "from-b")?;
    Ok(PropagationCase {
        propagation,
        bind,
        a: tags_a,
        b: tags_b,
        a_to_b,
        b_to_a,
    })
}
// ANCHOR_END: propagation_case

/// Runs [`propagation_case`] for shared, private, slave and unbindable in a child with a mount
/// namespace of its own, on a tmpfs at `scratch/lab`.
pub fn propagation_lab(spawn: &Spawn, scratch: &Scratch) -> Result<PropagationLab, LabError> {
    let lab = scratch
        .subdir("lab")
        .map_err(io_err("create the lab directory"))?;
    let mut child = spawn.run(|channel| {
        let result = (|| -> Result<(NsId, Vec<PropagationCase>), String> {
            rootfs::isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
            mount_tmpfs("lab", &lab).map_err(|e| format!("mount the lab's tmpfs: {e}"))?;
            let cases = Propagation::ALL
                .into_iter()
                .map(|propagation| propagation_case(&lab.join(propagation.name()), propagation))
                .collect::<Result<_, _>>()?;
            Ok((my_mnt_ns()?, cases))
        })();
        reply(channel, "propagation lab", result)
    })?;
    let (ns, cases) = receive(child.channel())?;
    child.wait().map_err(LabError::Channel)?;
    Ok(PropagationLab { ns, lab, cases })
}

// ---------------------------------------------------------------------------------------------------
// Step 2b: why a launcher makes `/` private or slave first.

/// One container's behaviour towards a shared mount of the "host" (the observer).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeakCase {
    /// What the container did to its mount tree before mounting anything (`None`: nothing).
    pub isolation: Option<Propagation>,
    pub container_ns: NsId,
    /// The container's copy of the shared mount, after that.
    pub tags: PropagationTags,
    /// The container's mount appeared in the observer's namespace.
    pub leaked: bool,
    /// The observer's later mount appeared in the container's namespace.
    pub received: bool,
}

/// Step 2b's result.
#[derive(Clone, Debug)]
pub struct LeakLab {
    /// The namespace of the process playing the host.
    pub observer_ns: NsId,
    /// True when that is the real host's mount namespace (root without `--userns`).
    pub observer_is_host: bool,
    pub shared_point: PathBuf,
    pub shared_tags: PropagationTags,
    pub cases: Vec<LeakCase>,
}

/// The names of the cases' mount points.
fn case_name(isolation: Option<Propagation>) -> &'static str {
    isolation.map_or("none", Propagation::name)
}

// ANCHOR: leak_case
/// In the observer: a container cloned into a new mount namespace, which first applies `isolation`
/// to its whole tree (or nothing), then mounts under the shared scratch mount; the observer looks
/// for that mount, then mounts one of its own for the container to look for.
fn leak_case(shared: &Path, isolation: Option<Propagation>) -> Result<LeakCase, String> {
    let name = case_name(isolation);
    let (theirs, ours) = (
        shared.join(format!("{name}-container")),
        shared.join(format!("{name}-host")),
    );
    fs::create_dir(&theirs)
        .and_then(|()| fs::create_dir(&ours))
        .map_err(|e| e.to_string())?;
    let spawn = Spawn::new(CloneFlags::CLONE_NEWNS).user(UserNs::Never);
    let mut container = spawn
        .run(|channel| {
            let result = (|| -> Result<(NsId, PropagationTags), String> {
                if let Some(propagation) = isolation {
                    rootfs::isolate_root(propagation).map_err(|e| e.to_string())?;
                }
                let table = mountinfo::read(Proc::Current).map_err(|e| e.to_string())?;
                let tags = mountinfo::find(&table, shared)
                    .map(|e| e.propagation.clone())
                    .unwrap_or_default();
                mount_tmpfs("container", &theirs).map_err(|e| format!("mount in the container: {e}"))?;
                Ok((my_mnt_ns()?, tags))
            })();
            if reply(channel, "container", result) != 0 || channel.expect("look").is_err() {
                return 1;
            }
            let received = mountinfo::is_mounted(Proc::Current, &ours).map_err(|e| e.to_string());
            reply(channel, "look", received)
        })
        .map_err(|e| e.to_string())?;
    let channel = container.channel();
    let (container_ns, tags) = receive(channel).map_err(|e| e.to_string())?;
    let leaked = mountinfo::is_mounted(Proc::Current, &theirs).map_err(|e| e.to_string())?;
    mount_tmpfs("host", &ours).map_err(|e| format!("mount in the observer: {e}"))?;
    channel.send("look").map_err(|e| e.to_string())?;
    let received = receive(channel).map_err(|e| e.to_string())?;
    container.wait().map_err(|e| e.to_string())?;
    Ok(LeakCase {
        isolation,
        container_ns,
        tags,
        leaked,
        received,
    })
}
// ANCHOR_END: leak_case

// ANCHOR: leak_lab
/// The observer makes a tmpfs at `scratch/shared`, marks it shared, as systemd marks `/`, and runs
/// three containers against it: one that isolates nothing, one that makes its tree slave (MS_REC),
/// one private. Then it unmounts everything.
///
/// As root without a user namespace the observer *is* the host (it is spawned with no new
/// namespace), and the leak really lands in the host's mount table, on the demo's own scratch mount.
/// Otherwise the observer is a mount namespace the demo made to play the host.
pub fn leak_lab(scratch: &Scratch, force_userns: bool) -> Result<LeakLab, LabError> {
    let shared = scratch
        .subdir("shared")
        .map_err(io_err("create the shared mount point"))?;
    let as_host = nskit::userns::is_root() && !force_userns;
    let observer = if as_host {
        Spawn::new(CloneFlags::empty()).user(UserNs::Never)
    } else {
        Spawn::new(CloneFlags::CLONE_NEWNS).user(UserNs::Always)
    };
    let mut child = observer.run(|channel| {
        let result = (|| -> Result<(NsId, PropagationTags, Vec<LeakCase>), String> {
            if !as_host {
                rootfs::isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
            }
            mount_tmpfs("shared", &shared).map_err(|e| format!("mount the shared tmpfs: {e}"))?;
            let outcome = (|| {
                rootfs::set_propagation(&shared, Propagation::Shared, false).map_err(|e| e.to_string())?;
                let table = mountinfo::read(Proc::Current).map_err(|e| e.to_string())?;
                let tags = mountinfo::find(&table, &shared)
                    .map(|e| e.propagation.clone())
                    .unwrap_or_default();
                let cases = [None, Some(Propagation::Slave), Some(Propagation::Private)]
                    .into_iter()
                    .map(|isolation| leak_case(&shared, isolation))
                    .collect::<Result<_, _>>()?;
                Ok((my_mnt_ns()?, tags, cases))
            })();
            // Whatever happened: the shared mount and all mounts under it go (MNT_DETACH takes the
            // subtree, the leaked mount included).
            let _ = umount2(&shared, MntFlags::MNT_DETACH);
            outcome
        })();
        reply(channel, "leak lab", result)
    })?;
    let (observer_ns, shared_tags, cases) = receive(child.channel())?;
    child.wait().map_err(LabError::Channel)?;
    Ok(LeakLab {
        observer_ns,
        observer_is_host: as_host,
        shared_point: shared,
        shared_tags,
        cases,
    })
}
// ANCHOR_END: leak_lab

// ---------------------------------------------------------------------------------------------------
// Steps 3-5: chroot versus pivot_root.

/// Where a process's `/` is, judged by what it can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootView {
    /// `/` is the very directory the host calls `/` (same device and inode).
    pub is_host_root: bool,
    /// `/etc/os-release` is the scratch rootfs's.
    pub sees_rootfs: bool,
    /// The scratch directory, a host path, is reachable.
    pub sees_scratch: bool,
}

impl RootView {
    fn observe(host_root: (u64, u64), scratch: &Path) -> RootView {
        let root = fs::metadata("/").map(|m| (m.dev(), m.ino())).ok();
        let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
        RootView {
            is_host_root: root == Some(host_root),
            sees_rootfs: os_release.contains(ROOTFS_MARKER),
            sees_scratch: scratch.exists(),
        }
    }
}

fn host_root() -> Result<(u64, u64), String> {
    fs::metadata("/")
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| format!("stat /: {e}"))
}

// ANCHOR: escape_attempt
/// The classic escape from a chroot, for a process with CAP_SYS_CHROOT: chroot into a subdirectory
/// *without* entering it, so the working directory is left outside the new root; from there `..`
/// is never stopped by the root, so climb as far as it goes, and chroot to where it ends: the real
/// root of the mount namespace.
pub fn escape_attempt() -> Result<(), Errno> {
    chroot("escape")?;
    for _ in 0..64 {
        chdir("..")?;
    }
    chroot(".")?;
    chdir("/")
}
// ANCHOR_END: escape_attempt

/// Step 3's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChrootEscape {
    pub ns: NsId,
    /// Right after `chroot(rootfs)`.
    pub chrooted: RootView,
    /// After [`escape_attempt`].
    pub escaped: RootView,
}

// ANCHOR: chroot_escape
/// A child chroots into the rootfs and then escapes.
pub fn chroot_escape(spawn: &Spawn, scratch: &Scratch, rootfs: &Path) -> Result<ChrootEscape, LabError> {
    let dir = scratch.path();
    let mut child = spawn.run(|channel| {
        let result = (|| -> Result<ChrootEscape, String> {
            let host = host_root()?;
            let ns = my_mnt_ns()?;
            chroot(rootfs)
                .and_then(|()| chdir("/"))
                .map_err(|e| format!("chroot: {e}"))?;
            let chrooted = RootView::observe(host, dir);
            escape_attempt().map_err(|e| format!("escape: {e}"))?;
            let escaped = RootView::observe(host, dir);
            Ok(ChrootEscape {
                ns,
                chrooted,
                escaped,
            })
        })();
        reply(channel, "chroot", result)
    })?;
    let escape = receive(child.channel())?;
    child.wait().map_err(LabError::Channel)?;
    Ok(escape)
}
// ANCHOR_END: chroot_escape

/// Steps 4 and 5's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PivotLab {
    pub ns: NsId,
    /// `pivot_root(".", ".")` in the rootfs while it is a plain directory.
    #[serde(with = "errno_result")]
    pub not_a_mount_point: Result<(), Errno>,
    /// The mount namespace of the throwaway child that tries the shared case (a copy of `ns`).
    pub shared_attempt_ns: NsId,
    /// The same once bind-mounted onto itself, but with that bind mount shared.
    #[serde(with = "errno_result")]
    pub shared_mount: Result<(), Errno>,
    /// [`rootfs::pivot_into`] after `isolate_root(Private)`.
    #[serde(with = "errno_result")]
    pub pivoted: Result<(), Errno>,
    pub after_pivot: RootView,
    pub after_escape: RootView,
    /// The mount points left in the namespace, read from the new /proc.
    pub mounts_inside: Vec<String>,
}

// ANCHOR: pivot_lab
/// A child in new mount and PID namespaces pivots into the rootfs, failing first: a plain directory
/// is not a mount point (EINVAL); bound onto itself it is, but with that bind mount shared the call
/// is refused (EINVAL: with `pivot_root(".", ".")` it is also put_old's mount, which must not be
/// shared; tried in a throwaway namespace); bound onto itself in a private tree, it works. With its own PID namespace the child may
/// mount a fresh /proc (before the pivot, while the host's proc is still visible), then it detaches
/// the old root and tries the chroot escape again.
pub fn pivot_lab(force_userns: bool, scratch: &Scratch, rootfs_dir: &Path) -> Result<PivotLab, LabError> {
    let dir = scratch.path();
    let spawn = child_spawn(CloneFlags::CLONE_NEWPID, force_userns);
    let mut child = spawn.run(|channel| {
        let result = (|| -> Result<PivotLab, String> {
            let host = host_root()?;
            let text = |e: rootfs::MountError| e.to_string();
            let ns = my_mnt_ns()?;
            rootfs::isolate_root(Propagation::Private).map_err(text)?;

            // The scratch directory becomes a mount of this namespace's own, so that the rootfs is a
            // plain directory on a mount other than `/` wherever /tmp lives (on the root mount
            // itself, pivot_root would answer EBUSY before it looked any further).
            let scratch_dir = scratch.path();
            mount(
                Some(scratch_dir),
                scratch_dir,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("bind the scratch directory: {e}"))?;
            chdir(rootfs_dir).map_err(|e| format!("chdir: {e}"))?;
            let not_a_mount_point = pivot_root(".", ".");

            let attempt = shared_pivot_attempt(rootfs_dir)?;

            rootfs::bind_rootfs(rootfs_dir).map_err(text)?;
            rootfs::mount_proc(rootfs_dir).map_err(text)?;
            let pivoted = rootfs::pivot_into(rootfs_dir);
            let pivoted_outcome = pivoted.as_ref().map(drop).map_err(|e| e.errno());
            pivoted.map_err(text)?;
            let after_pivot = RootView::observe(host, dir);
            escape_attempt().map_err(|e| format!("escape: {e}"))?;
            let after_escape = RootView::observe(host, dir);
            let table = mountinfo::read(Proc::Current).map_err(|e| e.to_string())?;
            Ok(PivotLab {
                ns,
                not_a_mount_point,
                shared_attempt_ns: attempt.ns,
                shared_mount: attempt.outcome,
                pivoted: pivoted_outcome,
                after_pivot,
                after_escape,
                mounts_inside: table.into_iter().map(|e| e.mount_point).collect(),
            })
        })();
        reply(channel, "pivot", result)
    })?;
    let lab = receive(child.channel())?;
    child.wait().map_err(LabError::Channel)?;
    Ok(lab)
}
// ANCHOR_END: pivot_lab

/// `pivot_root(".", ".")` into the rootfs bound onto itself, but with that bind mount shared; returns
/// the namespace it ran in and the outcome. Tried in a throwaway child with a mount namespace of its
/// own, so that the shared bind mount goes away with it. The refused call itself changes nothing, but
/// the shared mount would stay behind in the caller's namespace: `bind_rootfs` would then stack a peer
/// on top of it, the proc mounted there would be replayed onto the mount below, and the real pivot
/// would be refused too (its new root's parent mount would be shared).
fn shared_pivot_attempt(rootfs_dir: &Path) -> Result<SharedAttempt, String> {
    let spawn = Spawn::new(CloneFlags::CLONE_NEWNS).user(UserNs::Never);
    let mut child = spawn
        .run(|channel| {
            let result = (|| -> Result<SharedAttempt, String> {
                rootfs::bind_rootfs(rootfs_dir).map_err(|e| e.to_string())?;
                rootfs::set_propagation(rootfs_dir, Propagation::Shared, false).map_err(|e| e.to_string())?;
                // The working directory still names the directory under the new mount: enter it.
                chdir(rootfs_dir).map_err(|e| format!("chdir: {e}"))?;
                Ok(SharedAttempt {
                    ns: my_mnt_ns()?,
                    outcome: pivot_root(".", "."),
                })
            })();
            reply(channel, "shared pivot", result)
        })
        .map_err(|e| e.to_string())?;
    let attempt = receive(child.channel()).map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;
    Ok(attempt)
}

/// What [`shared_pivot_attempt`]'s throwaway child reports: its namespace, and what pivot_root said.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedAttempt {
    ns: NsId,
    #[serde(with = "errno_result")]
    outcome: Result<(), Errno>,
}

/// What a careless launcher and [`crate::resolve::resolve_in_root`] make of a path in the rootfs.
#[derive(Debug)]
pub struct SymlinkCheck {
    pub path: &'static str,
    /// Where a plain `rootfs.join(path)` ends up, symlinks followed by the kernel.
    pub naive: Option<PathBuf>,
    pub resolved: Result<(), crate::resolve::ResolveError>,
}

// ANCHOR: symlink_check
/// Resolves the rootfs's `var/run` (a symlink to `/run`) both ways.
pub fn symlink_check(rootfs_dir: &Path) -> SymlinkCheck {
    let path = "/var/run";
    SymlinkCheck {
        path,
        naive: fs::canonicalize(rootfs_dir.join(&path[1..])).ok(),
        resolved: crate::resolve::resolve_in_root(rootfs_dir, Path::new(path)).map(drop),
    }
}
// ANCHOR_END: symlink_check
