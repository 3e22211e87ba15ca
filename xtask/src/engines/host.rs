//! What an engine's run may leave on the host, counted before and after (the project's rule: tests leave
//! the host as they found it): mounts, network interfaces, cgroup directories. The engines' daemons run
//! with their state under one temporary directory; what they mounted there is detached afterwards, the
//! cgroups they made are removed, and anything else that changed is reported, not undone.
//! proc(5) (/proc/self/mountinfo), cgroups(7).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};

/// The host's state, as far as an engine could change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    pub mounts: BTreeSet<String>,
    pub interfaces: BTreeSet<String>,
    pub cgroups: BTreeSet<PathBuf>,
    /// The forwarding switches an engine may turn on for its networks (dockerd, CNI's bridge).
    pub forwarding: Vec<(String, String)>,
}

/// The sysctls an engine's networking may change on the host.
const FORWARDING: [&str; 2] = [
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv6/conf/all/forwarding",
];

impl HostState {
    pub fn now() -> HostState {
        HostState {
            mounts: mount_points(),
            interfaces: interfaces(),
            cgroups: cgroup_dirs(),
            forwarding: FORWARDING
                .iter()
                .map(|f| {
                    (
                        f.to_string(),
                        fs::read_to_string(f).unwrap_or_default().trim().to_owned(),
                    )
                })
                .collect(),
        }
    }

    /// What `after` has that this state had not, one line each.
    pub fn added_in(&self, after: &HostState) -> Vec<String> {
        let mut added = Vec::new();
        added.extend(
            after
                .mounts
                .difference(&self.mounts)
                .map(|m| format!("mount {m}")),
        );
        added.extend(
            after
                .interfaces
                .difference(&self.interfaces)
                .map(|i| format!("interface {i}")),
        );
        added.extend(
            after
                .cgroups
                .difference(&self.cgroups)
                .map(|c| format!("cgroup {}", c.display())),
        );
        for ((file, was), (_, is)) in self.forwarding.iter().zip(&after.forwarding) {
            if was != is {
                added.push(format!("{file} {was} -> {is}"));
            }
        }
        added
    }
}

/// The directories the engines (and the runtime, at its default root) make under /run whatever their
/// configuration says: containerd's shim sockets and fifos, dockerd's plugins, podman's network state,
/// CNI's network namespaces, combined's own state root.
const RUN_DIRS: [&str; 5] = [
    "/run/containerd",
    "/run/docker",
    "/run/containers",
    "/run/netns",
    "/run/combined",
];

/// Those of [`RUN_DIRS`] that exist now.
pub fn run_dirs() -> Vec<PathBuf> {
    RUN_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| d.exists())
        .collect()
}

/// Removes those of [`RUN_DIRS`] that were not there before the run (`existed`), with whatever the
/// stopped engines left in them.
pub fn remove_new_run_dirs(existed: &[PathBuf]) {
    for dir in run_dirs().iter().filter(|d| !existed.contains(d)) {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Detaches every mount under `dir`, innermost first (umount(2), MNT_DETACH): an engine's overlay and
/// shm mounts outlive a daemon that was stopped.
pub fn detach_mounts_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = umount2(point.as_str(), MntFlags::MNT_DETACH);
    }
}

/// Removes the cgroup directories that are in `after` and not in `before`, innermost first; rmdir(2)
/// refuses one that still holds a process, which is then reported by the next count.
pub fn remove_new_cgroups(before: &HostState) {
    let now = cgroup_dirs();
    let mut added: Vec<&PathBuf> = now.difference(&before.cgroups).collect();
    added.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for dir in added {
        let _ = fs::remove_dir(dir);
    }
}

/// Every mount point (field 5 of /proc/self/mountinfo, octal escapes left as they are).
fn mount_points() -> BTreeSet<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .collect()
}

fn interfaces() -> BTreeSet<String> {
    fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Every directory of every cgroup hierarchy mounted under /sys/fs/cgroup.
fn cgroup_dirs() -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    let mut pending = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().filter_map(|e| e.ok()) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
                dirs.insert(entry.path());
            }
        }
    }
    dirs
}
