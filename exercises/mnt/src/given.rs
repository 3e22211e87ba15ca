//! What the exercises give you: children cloned into new mount namespaces, which run your code and
//! send back what they saw, over nskit's channel (the plumbing every chapter uses; `clone(2)`). You
//! need not read this to do the exercises, but nothing in it is hidden.

use std::fs;
use std::path::{Path, PathBuf};

use mnt_demo::mountinfo;
use mnt_demo::rootfs::{Propagation, isolate_root, set_propagation};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::CloneFlags;
use nskit::{Proc, Spawn, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(body)
}

/// A child in a new mount namespace (and a new user namespace when you are not root).
pub fn new_mount_ns() -> Spawn {
    Spawn::new(CloneFlags::CLONE_NEWNS)
}

/// `errno` as the tests print it: `EINVAL: Invalid argument`.
pub fn said(step: &str, errno: Errno) -> String {
    format!("{step}: {errno}")
}

/// `mount --make-rshared /` in the caller's own mount namespace, as systemd does at boot: every mount
/// passes mount events to its peers. The test's child starts this way whatever the machine running it
/// does (some make nothing shared), so that what your code leaves shared shows.
pub fn share_like_systemd() -> Result<(), String> {
    set_propagation(Path::new("/"), Propagation::Shared, true).map_err(|e| e.to_string())
}

/// What a process's mount table says: which mounts still receive or pass on mount events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableView {
    pub target_mounted: bool,
    /// `mount point [tags]` of every mount that is not private.
    pub not_private: Vec<String>,
}

/// Reads the caller's mount table: is `target` a mount point, and which mounts are not private.
pub fn look(target: &Path) -> Result<TableView, String> {
    let table = mountinfo::read(Proc::Current).map_err(|e| e.to_string())?;
    Ok(TableView {
        target_mounted: mountinfo::find(&table, target).is_some(),
        not_private: table
            .iter()
            .filter(|e| e.propagation.shared.is_some() || e.propagation.master.is_some())
            .map(|e| format!("{} [{}]", e.mount_point, e.propagation.fields()))
            .collect(),
    })
}

/// What the leak exercise's observer saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeakView {
    /// The container's copy of the shared mount, as its mountinfo tags say.
    pub container_tags: String,
    /// The container's mount appeared in the observer's mount table.
    pub leaked: bool,
}

/// The leak lab, as the chapter's step 3 runs it, but never on the real host: an *observer* with a
/// mount namespace of its own plays the host. It mounts a tmpfs at `shared`, marks it shared as systemd
/// marks `/`, and clones a container into a new mount namespace, which runs `container` with the path
/// of a directory under the shared mount. Then the observer looks for the container's mount.
pub fn leak_lab(shared: &Path, container: fn(&Path) -> Result<(), Errno>) -> Result<LeakView, String> {
    // Root's observer needs no user namespace; anyone else's gets one, and the container shares it:
    // a mount namespace made in the same user namespace is not "less privileged", so its shared
    // copies stay shared, as they would for root (mount_namespaces(7)).
    let observer = if nskit::userns::is_root() {
        Spawn::new(CloneFlags::CLONE_NEWNS).user(UserNs::Never)
    } else {
        Spawn::new(CloneFlags::CLONE_NEWNS).user(UserNs::Always)
    };
    let shared = shared.to_path_buf();
    in_child(&observer, move || {
        isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
        mount(
            Some("shared"),
            &shared,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .map_err(|e| said("mount the shared tmpfs", e))?;
        let result = observe_container(&shared, container);
        let _ = umount2(&shared, MntFlags::MNT_DETACH);
        result
    })
}

fn observe_container(shared: &Path, container: fn(&Path) -> Result<(), Errno>) -> Result<LeakView, String> {
    set_propagation(shared, Propagation::Shared, false).map_err(|e| e.to_string())?;
    let inside: PathBuf = shared.join("inside");
    fs::create_dir(&inside).map_err(|e| format!("create {}: {e}", inside.display()))?;
    let spawn = Spawn::new(CloneFlags::CLONE_NEWNS).user(UserNs::Never);
    let shared_copy = shared.to_path_buf();
    let container_tags = in_child(&spawn, move || {
        container(&inside).map_err(|e| said("container_setup", e))?;
        let table = mountinfo::read(Proc::Current).map_err(|e| e.to_string())?;
        Ok(mountinfo::find(&table, &shared_copy)
            .map(|e| e.propagation.fields())
            .unwrap_or_default())
    })?;
    let leaked = mountinfo::is_mounted(Proc::Current, &shared.join("inside")).map_err(|e| e.to_string())?;
    Ok(LeakView {
        container_tags,
        leaked,
    })
}

/// Where a process's `/` is, judged by what it can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Whereabouts {
    /// `/etc/os-release` is the scratch rootfs's.
    pub sees_rootfs: bool,
    /// The scratch directory, a host path, is reachable.
    pub sees_scratch: bool,
}

fn whereabouts(scratch: &Path) -> Whereabouts {
    let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    Whereabouts {
        sees_rootfs: os_release.contains(mnt_demo::scratch::ROOTFS_MARKER),
        sees_scratch: scratch.exists(),
    }
}

/// What the pivot exercise's child saw: right after `enter`, and after the chroot escape trick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PivotView {
    pub after_enter: Whereabouts,
    pub after_escape: Whereabouts,
}

/// A child with a new mount namespace makes its mounts private, runs `enter` on `rootfs`, looks
/// around, then tries the chapter's chroot escape (`mnt_demo::lab::escape_attempt`) and looks again.
pub fn pivot_lab(
    scratch: &Path,
    rootfs: &Path,
    enter: fn(&Path) -> Result<(), Errno>,
) -> Result<PivotView, String> {
    in_child(&new_mount_ns(), || {
        isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
        enter(rootfs).map_err(|e| said("enter_rootfs", e))?;
        let after_enter = whereabouts(scratch);
        mnt_demo::lab::escape_attempt().map_err(|e| said("the escape trick", e))?;
        Ok(PivotView {
            after_enter,
            after_escape: whereabouts(scratch),
        })
    })
}
