//! Exercise mnt-leak, break it: the first thing a container does in its new mount namespace is cut
//! propagation; without it, its mounts appear on the host (mount_namespaces(7) "Shared subtrees").

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

// ANCHOR: exercise
/// What the test's container runs in its new mount namespace, a copy of the host's: first
/// `mount --make-rprivate /`, then a tmpfs at `inside`, a directory under a mount the host shares.
pub fn container_setup(inside: &Path) -> Result<(), Errno> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some("container"),
        inside,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
}
// ANCHOR_END: exercise
