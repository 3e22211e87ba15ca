//! The container's resource limits (`--memory`, `--pids-limit`, `--cpus`, docker's names and
//! meanings), applied through a cgroup made for the container with the cgroup chapter's library
//! (cgroups(7); Documentation/admin-guide/cgroup-v2.rst): on cgroup v2 one directory below the
//! launcher's own cgroup, on v1 one per controller's hierarchy. The launcher makes it, writes the
//! limits and moves the container's first process in before saying `go`; the container then enters
//! a cgroup namespace of its own, so that its cgroup is `/` to it; the launcher removes the cgroup
//! once the container has exited.
//!
//! A launcher killed with SIGKILL cannot remove its cgroup. Its name holds the launcher's pid
//! (`combined-<pid>`), so the next launcher that makes one removes every such cgroup beside it
//! whose launcher is gone and which holds no process.

use std::fs;
use std::path::Path;

use cgroup_demo::cgroup::{Cgroup, CgroupError, Placement};
use cgroup_demo::hierarchy::Hierarchies;
use cgroup_demo::limits::{Controller, Limits};
use nix::unistd::Pid;

use crate::container::CgroupPlan;

/// The prefix of every cgroup the launcher makes.
pub const PREFIX: &str = "combined-";

/// Where the container's cgroup will go, checked before anything exists: the hierarchies hold the
/// controllers, and this user may make cgroups there (root, or a delegated subtree).
pub fn placement(limits: &Limits) -> Result<Placement, CgroupError> {
    let hierarchies = Hierarchies::read()?;
    let placement = Placement::own(&hierarchies, &limits.controllers())?;
    placement.check_access()?;
    Ok(placement)
}

// ANCHOR: make
/// Makes the container's cgroup, writes its limits, and moves `pid` (the container's first process,
/// still waiting for `go`) into it. Stale cgroups of killed launchers beside it go first.
pub fn make(plan: &CgroupPlan, pid: Pid) -> Result<Cgroup, CgroupError> {
    remove_stale_everywhere();
    let name = plan
        .name
        .clone()
        .unwrap_or_else(|| format!("{PREFIX}{}", std::process::id()));
    let cgroup = Cgroup::create(&plan.placement, &name)?;
    cgroup.apply(&plan.limits)?;
    cgroup.add(pid)?;
    Ok(cgroup)
}
// ANCHOR_END: make

/// Sweeps the parent directory of every controller's hierarchy, not only those of this run's limits:
/// a killed launcher may have asked for others.
fn remove_stale_everywhere() {
    let Ok(hierarchies) = Hierarchies::read() else {
        return;
    };
    let oci_only = [Controller::Cpuset, Controller::Devices];
    for controller in Controller::ALL.into_iter().chain(oci_only) {
        if let Ok(placement) = Placement::own(&hierarchies, &[controller]) {
            for parent in &placement.parents {
                remove_stale(&parent.path);
            }
        }
    }
}

/// Removes the `combined-<pid>` cgroups in `parent` whose launcher no longer runs and that hold no
/// process (rmdir(2) refuses a cgroup with processes or children, so nothing in use can go).
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// Whether the memory limit's OOM killer ended a process in the cgroup.
pub fn oom_killed(cgroup: &Cgroup) -> bool {
    cgroup.memory_events().is_ok_and(|events| events.oom_kill > 0)
}

/// Removes a released cgroup's directories (an OCI container's, at `delete`), innermost first, once
/// the processes in them are gone: rmdir(2) refuses a cgroup with a process in it (EBUSY), so this
/// waits a little for the kernel to finish tearing the last one down.
pub fn remove_dirs(dirs: &[std::path::PathBuf]) -> std::io::Result<()> {
    for dir in dirs.iter().rev() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    }
    Ok(())
}

// ANCHOR: update
/// New limits for a container's existing cgroup (the OCI runtime's `update`): each controller's files
/// written in the one of `dirs` that lies in the hierarchy holding that controller.
pub fn update(dirs: &[std::path::PathBuf], limits: &Limits) -> Result<(), CgroupError> {
    let hierarchies = Hierarchies::read()?;
    for controller in limits.controllers() {
        let mount = hierarchies
            .holding(controller.name())
            .ok_or_else(|| CgroupError::Unavailable {
                controller,
                why: "no cgroup hierarchy holds it".into(),
            })?;
        let dir = dirs
            .iter()
            .find(|d| d.starts_with(&mount.mount_point))
            .ok_or_else(|| CgroupError::Unavailable {
                controller,
                why: "the container's cgroup was made without it".into(),
            })?;
        for setting in cgroup_demo::limits::settings(controller, limits, mount.version) {
            let path = dir.join(setting.file);
            if setting.optional && !path.exists() {
                continue;
            }
            fs::write(&path, &setting.value).map_err(|source| CgroupError::Write {
                path,
                value: setting.value.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
// ANCHOR_END: update
