//! Exercise mnt-private: in a mount namespace of its own, a process first cuts every mount off from
//! propagation, then mounts (mount(2), mount_namespaces(7) "Shared subtrees").

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

// ANCHOR: exercise
/// Runs in a child with a new mount namespace: makes every mount private, `/` and everything below it
/// (`mount --make-rprivate /`), then mounts a small tmpfs at `target`.
pub fn private_tmpfs(target: &Path) -> Result<(), Errno> {
    // Your code here: two calls of `mount(source, target, fstype, flags, data)`. Changing the
    // propagation takes only a target and the flag (MS_PRIVATE, with MS_REC for the whole tree); the
    // others are `None::<&str>`. A tmpfs takes `Some("tmpfs")` as source and type, and
    // `Some("size=1m")` as data.
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
