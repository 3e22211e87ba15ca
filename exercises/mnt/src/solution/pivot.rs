//! Solution to mnt-pivot: bind, pivot_root(".", "."), slave, detach (pivot_root(2) NOTES, umount(2)),
//! the order `mnt_demo::rootfs::bind_rootfs` and `pivot_into` follow.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

// ANCHOR: solution
/// Runs in a child with a new mount namespace whose mounts are already private: makes `rootfs` its
/// root. Afterwards `/` must be the rootfs, and no path, not even `..` after a chroot trick, may lead
/// to the old root.
pub fn enter_rootfs(rootfs: &Path) -> Result<(), Errno> {
    // A plain directory is not a mount point, and pivot_root would refuse it with EINVAL.
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    chdir(rootfs)?;
    pivot_root(".", ".")?;
    // The old root is now on top of the new one, at ".": cut it off, then detach it.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )?;
    umount2(".", MntFlags::MNT_DETACH)?;
    chdir("/")
}
// ANCHOR_END: solution
