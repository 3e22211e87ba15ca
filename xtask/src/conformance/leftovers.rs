//! What a runtime's run of the suite may leave on the host, found and removed after the run, so the
//! host ends as it began: containers (the runtime's own `list`, compared with the list before the run,
//! and removed with `delete --force`), cgroups with the names the suite's cgroup tests give theirs
//! (`/cgrouptest`, `testdir/cgrouptest/container`: cgroups(7)), the bundles in the run's own `TMPDIR`,
//! and mounts. Mounts are counted before and after every program from /proc/self/mountinfo (proc(5)),
//! so the program that left one is named: a container configured without a mount namespace of its own
//! (as linux_ns_itype's are) gets its rootfs, /proc and /dev mounted in the runtime's, which is the
//! host's (mount_namespaces(7)), and nothing unmounts them. Those under the run's `TMPDIR` are the
//! suite's bundles and are detached (umount(2), MNT_DETACH); any elsewhere are reported, not undone,
//! since other work on the machine may mount too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use nix::mount::{MntFlags, umount2};
use serde_json::{Value, json};

/// The cgroup names the suite's tests use (runtime-tools `cgroups.AbsCgroupPath`, `RelCgroupPath`).
const SUITE_CGROUP_NAMES: &[&str] = &["cgrouptest", "testdir"];

/// Where the cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The host as a run found it.
#[derive(Clone, Debug)]
struct Snapshot {
    /// The runtime's containers, or why they could not be listed.
    containers: Result<BTreeSet<String>, String>,
    cgroups: BTreeSet<PathBuf>,
    mounts: Vec<String>,
}

/// A runtime's run being watched: the snapshot from before it, and the mounts each program left.
#[derive(Debug)]
pub struct Watch {
    runtime: PathBuf,
    tmpdir: PathBuf,
    before: Snapshot,
    mounts_left_by: Vec<(String, Vec<String>)>,
}

/// What a run left, and what was done about it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Leftovers {
    pub containers_removed: Vec<String>,
    pub cgroups_removed: Vec<PathBuf>,
    /// Programs that left mounts on the host, with the mount points they left.
    pub mounts_left_by: Vec<(String, Vec<String>)>,
    /// Mounts under the run's TMPDIR that were detached.
    pub unmounted: Vec<String>,
    /// Entries of the run's TMPDIR (the suite's bundles) removed.
    pub bundles_removed: usize,
    pub mounts_before: usize,
    pub mounts_after: usize,
    pub mounts_added: Vec<String>,
    pub mounts_gone: Vec<String>,
    /// Whatever could not be checked or removed, one line each.
    pub problems: Vec<String>,
}

impl Watch {
    /// Starts watching a run of `runtime` whose programs get `tmpdir` as their TMPDIR.
    pub fn start(runtime: &Path, tmpdir: &Path) -> Watch {
        Watch {
            runtime: runtime.to_path_buf(),
            tmpdir: tmpdir.to_path_buf(),
            before: Snapshot {
                containers: containers(runtime),
                cgroups: suite_cgroups(),
                mounts: mount_points(),
            },
            mounts_left_by: Vec::new(),
        }
    }

    /// Runs one program (`run`), noting the mounts it leaves behind.
    pub fn program<T>(&mut self, program: &str, run: impl FnOnce() -> T) -> T {
        let before = mount_points();
        let result = run();
        let (added, _) = mount_changes(&before, &mount_points());
        if !added.is_empty() {
            println!(
                "xtask: conformance: {program} left {} mount(s) on the host: {}",
                added.len(),
                added.join(", ")
            );
            self.mounts_left_by.push((program.to_owned(), added));
        }
        result
    }

    /// Removes what the run left and says what it was.
    pub fn finish(self) -> Leftovers {
        let mut leftovers = Leftovers {
            mounts_left_by: self.mounts_left_by.clone(),
            ..Leftovers::default()
        };
        remove_containers(&self.runtime, &self.before, &mut leftovers);
        remove_cgroups(&self.before, &mut leftovers);
        unmount_under(&self.tmpdir, &self.before.mounts, &mut leftovers);
        remove_bundles(&self.tmpdir, &mut leftovers);
        let after = mount_points();
        leftovers.mounts_before = self.before.mounts.len();
        leftovers.mounts_after = after.len();
        (leftovers.mounts_added, leftovers.mounts_gone) = mount_changes(&self.before.mounts, &after);
        leftovers
    }
}

/// Empties (or makes) a directory of the run's (its TMPDIR, its logs): what an earlier, interrupted run
/// left there goes, unless something is mounted under it.
pub fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        refuse_if_mounts_under(dir)?;
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

impl Leftovers {
    /// One line for the terminal and the markdown.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.containers_removed.is_empty() {
            parts.push(format!("removed {} container(s)", self.containers_removed.len()));
        }
        if !self.cgroups_removed.is_empty() {
            parts.push(format!("removed {} cgroup(s)", self.cgroups_removed.len()));
        }
        for (program, mounts) in &self.mounts_left_by {
            parts.push(format!("{program} left {} mount(s)", mounts.len()));
        }
        if !self.unmounted.is_empty() {
            parts.push(format!(
                "detached {} mount(s) under its TMPDIR",
                self.unmounted.len()
            ));
        }
        if self.bundles_removed > 0 {
            parts.push(format!(
                "removed {} bundle(s) from its TMPDIR",
                self.bundles_removed
            ));
        }
        if self.mounts_before != self.mounts_after || !self.mounts_added.is_empty() {
            parts.push(format!(
                "mounts {} before, {} after (added: {}; gone: {})",
                self.mounts_before,
                self.mounts_after,
                list_or_none(&self.mounts_added),
                list_or_none(&self.mounts_gone)
            ));
        } else {
            parts.push(format!("mounts unchanged ({})", self.mounts_after));
        }
        parts.extend(self.problems.iter().cloned());
        parts.join("; ")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "containers_removed": self.containers_removed,
            "cgroups_removed": self.cgroups_removed,
            "mounts_left_by": self.mounts_left_by.iter().map(|(p, m)| json!({ "program": p, "mounts": m })).collect::<Vec<_>>(),
            "unmounted": self.unmounted,
            "bundles_removed": self.bundles_removed,
            "mounts_before": self.mounts_before,
            "mounts_after": self.mounts_after,
            "mounts_added": self.mounts_added,
            "mounts_gone": self.mounts_gone,
            "problems": self.problems,
        })
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// `RUNTIME list -q`: one container id a line (runc and crun both print that).
fn containers(runtime: &Path) -> Result<BTreeSet<String>, String> {
    let out = Command::new(runtime)
        .args(["list", "-q"])
        .output()
        .map_err(|e| format!("cannot run {} list: {e}", runtime.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "cannot list its containers (`list -q` failed: {})",
            stderr.lines().next().unwrap_or("no message")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Deletes, with `delete --force`, every container that was not there before the run.
fn remove_containers(runtime: &Path, before: &Snapshot, leftovers: &mut Leftovers) {
    let after = containers(runtime);
    let (before, after) = match (&before.containers, &after) {
        (Ok(before), Ok(after)) => (before, after),
        (Err(why), _) | (_, Err(why)) => {
            leftovers
                .problems
                .push(format!("could not check for containers: {why}"));
            return;
        }
    };
    for id in after.difference(before) {
        let deleted = Command::new(runtime).args(["delete", "--force", id]).output();
        match deleted {
            Ok(out) if out.status.success() => leftovers.containers_removed.push(id.clone()),
            Ok(out) => leftovers.problems.push(format!(
                "cannot delete container {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => leftovers
                .problems
                .push(format!("cannot delete container {id}: {e}")),
        }
    }
}

/// Every cgroup directory whose path has one of the suite's names in it, in every hierarchy.
fn suite_cgroups() -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    walk_cgroups(Path::new(CGROUP_ROOT), 0, &mut found);
    found
}

fn walk_cgroups(dir: &Path, depth: usize, found: &mut BTreeSet<PathBuf>) {
    // Deep enough for any cgroupsPath the suite sets, under any cgroup the runtime starts in.
    const MAX_DEPTH: usize = 12;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // Real directories only: /sys/fs/cgroup/cpu is a symbolic link to cpu,cpuacct on many hosts.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if is_suite_cgroup(&path) {
            found.insert(path.clone());
        }
        if depth < MAX_DEPTH {
            walk_cgroups(&path, depth + 1, found);
        }
    }
}

fn is_suite_cgroup(path: &Path) -> bool {
    path.components()
        .any(|c| SUITE_CGROUP_NAMES.iter().any(|name| c.as_os_str() == *name))
}

/// Removes (rmdir(2), innermost first) the suite's cgroups that appeared during the run. A cgroup that
/// still holds a process cannot be removed, and is reported.
fn remove_cgroups(before: &Snapshot, leftovers: &mut Leftovers) {
    let after = suite_cgroups();
    for dir in removal_order(after.difference(&before.cgroups)) {
        match std::fs::remove_dir(&dir) {
            Ok(()) => leftovers.cgroups_removed.push(dir),
            Err(e) => leftovers
                .problems
                .push(format!("cannot remove cgroup {}: {e}", dir.display())),
        }
    }
}

/// Innermost directories first, so each is empty of child cgroups when its turn comes.
fn removal_order<'a>(dirs: impl Iterator<Item = &'a PathBuf>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = dirs.cloned().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs
}

/// Detaches every mount at or under `dir` that was not there before the run, innermost first.
fn unmount_under(dir: &Path, before: &[String], leftovers: &mut Leftovers) {
    let (added, _) = mount_changes(before, &mount_points());
    let mut under: Vec<String> = added
        .into_iter()
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(Path::new(m).components().count()));
    for point in under {
        match umount2(point.as_str(), MntFlags::MNT_DETACH) {
            Ok(()) => leftovers.unmounted.push(point),
            Err(e) => leftovers.problems.push(format!("cannot detach {point}: {e}")),
        }
    }
}

/// Removes everything in the run's TMPDIR (the suite's bundles, `ocitest*` and `oci-pid*`), unless
/// something is still mounted under it: then it is left, and reported.
fn remove_bundles(tmpdir: &Path, leftovers: &mut Leftovers) {
    if let Err(e) = refuse_if_mounts_under(tmpdir) {
        leftovers.problems.push(format!("{e:#}"));
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmpdir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => leftovers.bundles_removed += 1,
            Err(e) => leftovers
                .problems
                .push(format!("cannot remove {}: {e}", path.display())),
        }
    }
}

/// Fails when anything is mounted at or below `dir`: removing the tree would reach into the mount.
fn refuse_if_mounts_under(dir: &Path) -> anyhow::Result<()> {
    let mounted: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    if !mounted.is_empty() {
        bail!(
            "left {} alone: still mounted under it: {}",
            dir.display(),
            mounted.join(", ")
        );
    }
    Ok(())
}

/// Every mount point of this mount namespace, in mountinfo order (field 5, octal escapes decoded).
fn mount_points() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_octal)
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points added and gone between two lists, counting repeats (a path can be mounted twice).
fn mount_changes(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let minus = |from: &[String], take: &[String]| {
        let mut rest: Vec<String> = from.to_vec();
        for item in take {
            if let Some(i) = rest.iter().position(|r| r == item) {
                rest.remove(i);
            }
        }
        rest
    };
    (minus(after, before), minus(before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn mount_changes_count_repeats() {
        let before = strings(&["/", "/proc", "/tmp/x"]);
        let after = strings(&["/", "/proc", "/tmp/x", "/tmp/x", "/new"]);
        assert_eq!(
            mount_changes(&before, &after),
            (strings(&["/tmp/x", "/new"]), vec![])
        );
        assert_eq!(
            mount_changes(&after, &before),
            (vec![], strings(&["/tmp/x", "/new"]))
        );
        assert_eq!(mount_changes(&before, &before), (vec![], vec![]));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_octal(r"/tmp/with\040space"), "/tmp/with space");
        assert_eq!(unescape_octal(r"/a\134b\011"), "/a\\b\t");
        assert_eq!(unescape_octal(r"/odd\04"), r"/odd\04");
    }

    #[test]
    fn only_the_suites_cgroups_are_its_own_and_the_innermost_go_first() {
        assert!(is_suite_cgroup(Path::new(
            "/sys/fs/cgroup/pids/testdir/cgrouptest/container"
        )));
        assert!(is_suite_cgroup(Path::new("/sys/fs/cgroup/memory/cgrouptest")));
        assert!(!is_suite_cgroup(Path::new(
            "/sys/fs/cgroup/memory/cgroup-demo-42"
        )));
        let dirs: Vec<PathBuf> = [
            "/c/testdir",
            "/c/testdir/cgrouptest/container",
            "/c/testdir/cgrouptest",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let order = removal_order(dirs.iter());
        assert_eq!(order[0], Path::new("/c/testdir/cgrouptest/container"));
        assert_eq!(order[2], Path::new("/c/testdir"));
    }

    #[test]
    fn the_summary_says_what_was_removed_and_whether_mounts_changed() {
        let mut leftovers = Leftovers {
            mounts_before: 20,
            mounts_after: 20,
            ..Leftovers::default()
        };
        assert_eq!(leftovers.summary(), "mounts unchanged (20)");
        leftovers.containers_removed.push("abc".into());
        leftovers.bundles_removed = 3;
        leftovers.mounts_after = 21;
        leftovers.mounts_added.push("/run/x".into());
        assert_eq!(
            leftovers.summary(),
            "removed 1 container(s); removed 3 bundle(s) from its TMPDIR; mounts 20 before, 21 after \
             (added: /run/x; gone: none)"
        );
    }

    #[test]
    fn a_tmpdir_is_emptied_and_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let tmpdir = dir.path().join("run");
        std::fs::create_dir_all(tmpdir.join("ocitest123/rootfs")).unwrap();
        fresh_dir(&tmpdir).unwrap();
        assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);
        std::fs::create_dir_all(tmpdir.join("oci-pid1")).unwrap();
        std::fs::write(tmpdir.join("stray"), "").unwrap();
        let mut leftovers = Leftovers::default();
        remove_bundles(&tmpdir, &mut leftovers);
        assert_eq!((leftovers.bundles_removed, leftovers.problems.len()), (2, 0));
    }

    #[test]
    fn a_directory_with_a_mount_under_it_is_refused() {
        // `/proc` is mounted in every namespace these tests run in.
        assert!(refuse_if_mounts_under(Path::new("/proc")).is_err());
        assert!(refuse_if_mounts_under(Path::new("/nonexistent-xtask-dir")).is_ok());
    }
}
