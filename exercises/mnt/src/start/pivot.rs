//! Exercise mnt-pivot: make a rootfs the root of a mount namespace with `pivot_root(2)`, and detach the
//! old root so that nothing leads back to the host (pivot_root(2) NOTES, umount(2)).

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

// ANCHOR: exercise
/// Runs in a child with a new mount namespace whose mounts are already private: makes `rootfs` its
/// root. Afterwards `/` must be the rootfs, and no path, not even `..` after a chroot trick, may lead
/// to the old root.
pub fn enter_rootfs(rootfs: &Path) -> Result<(), Errno> {
    // Your code here, in six calls:
    // 1. bind-mount `rootfs` onto itself (MS_BIND | MS_REC): pivot_root needs a mount point;
    // 2. chdir into it;
    // 3. pivot_root(".", "."): the old root ends up stacked on top of the new one;
    // 4. make that old root a slave (MS_SLAVE | MS_REC on "."), so its unmount cannot propagate;
    // 5. umount2(".", MntFlags::MNT_DETACH): detach it;
    // 6. chdir("/").
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
