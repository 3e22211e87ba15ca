//! Solution to mnt-private: `MS_REC | MS_PRIVATE` on `/`, then the tmpfs (mount(2),
//! mount_namespaces(7) "Shared subtrees").

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

// ANCHOR: solution
/// Runs in a child with a new mount namespace: makes every mount private, `/` and everything below it
/// (`mount --make-rprivate /`), then mounts a small tmpfs at `target`.
pub fn private_tmpfs(target: &Path) -> Result<(), Errno> {
    // Without MS_REC only `/` itself would change, and every mount below it would stay shared.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
}
// ANCHOR_END: solution
