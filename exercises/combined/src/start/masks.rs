//! Exercise combined-masks, break it: after pivot_root the launcher hides parts of the fresh /proc
//! that tell the host's secrets or change the host's kernel (proc(5), the OCI runtime spec's
//! maskedPaths and readonlyPaths).

use std::path::Path;

use mnt_demo::rootfs::{DEFAULT_MASKED, DEFAULT_READONLY, MountError, mask_paths, readonly_paths};

// ANCHOR: exercise
/// The launcher's masks step, composed from the mount chapter's library: under `root` (`/` once
/// pivoted), every path of the masked list is covered (a file by /dev/null, a directory by an empty
/// read-only tmpfs), and every path of the read-only list is bound onto itself read-only.
pub fn protect_proc(root: &Path) -> Result<(), MountError> {
    mask_paths(root, &DEFAULT_MASKED)?;
    readonly_paths(root, &DEFAULT_READONLY)?;
    Ok(())
}
// ANCHOR_END: exercise
