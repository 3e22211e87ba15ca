//! The demo's scratch directory and the tiny rootfs it builds there, with nothing downloaded
//! (mount_namespaces(7) for why cleanup detaches before it deletes).
//!
//! Every mount the demo makes is under this directory, and dropping [`Scratch`] lazily unmounts
//! whatever is still mounted under it in the caller's namespace before deleting it, so a failed or
//! interrupted step leaves neither a mount nor a file behind.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::mount::{MntFlags, umount2};
use nskit::Proc;

use crate::mountinfo;

/// The line in the rootfs's /etc/os-release that tells a process it is looking at the rootfs.
pub const ROOTFS_MARKER: &str = "NAME=\"mnt-demo scratch rootfs\"";

/// A directory of the demo's own under the temporary directory, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/mnt-demo-<pid>-<n>`, fresh and empty (n tells apart the scratch dirs of
    /// tests that run in parallel in one process).
    pub fn new() -> io::Result<Scratch> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mnt-demo-{}-{n}", std::process::id()));
        fs::create_dir(&dir)?;
        // Canonical, because mountinfo prints canonical paths and we look our mounts up there.
        let dir = dir.canonicalize()?;
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `dir/name`, created as an empty directory.
    pub fn subdir(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.dir.join(name);
        fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// Replaces the scratch path in `text` by `$SCRATCH`, so output does not depend on the PID.
    pub fn show(&self, text: &str) -> String {
        text.replace(self.dir.to_str().unwrap_or("\0"), "$SCRATCH")
    }

    // ANCHOR: build_rootfs
    /// Builds `dir/rootfs`: the few directories a container's mounts need, an /etc/os-release that
    /// says where we are, a directory for the chroot escape, and one absolute symlink (`var/run ->
    /// /run`, as real distributions ship it) that a careless launcher would follow onto the host.
    pub fn build_rootfs(&self) -> io::Result<PathBuf> {
        let root = self.dir.join("rootfs");
        for dir in ["etc", "proc", "dev", "sys", "tmp", "var", "escape"] {
            fs::create_dir_all(root.join(dir))?;
        }
        fs::write(
            root.join("etc/os-release"),
            format!("{ROOTFS_MARKER}\nID=mnt-demo\n"),
        )?;
        symlink("/run", root.join("var/run"))?;
        Ok(root)
    }
    // ANCHOR_END: build_rootfs
}

/// Lazily unmounts every mount at or below `dir` in the caller's mount namespace, deepest first
/// (stacked mounts once each).
/// Returns how many there were.
pub fn detach_mounts_under(dir: &Path) -> Result<usize, mountinfo::ReadError> {
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = mountinfo::read(Proc::Current)?
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|p| p.starts_with(&prefix) || Path::new(p) == dir)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in &points {
        // EINVAL: already gone with its parent.
        let _ = umount2(point.as_str(), MntFlags::MNT_DETACH);
    }
    Ok(points.len())
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = detach_mounts_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
