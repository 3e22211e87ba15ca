//! Solution to combined-masks: the protection as it was, both lists, as runc, crun and Docker apply
//! them (proc(5), the OCI runtime spec's maskedPaths and readonlyPaths).

use std::path::Path;

use mnt_demo::rootfs::{DEFAULT_MASKED, DEFAULT_READONLY, MountError, mask_paths, readonly_paths};

// ANCHOR: solution
/// The launcher's masks step, composed from the mount chapter's library: under `root` (`/` once
/// pivoted), every path of the masked list is covered (a file by /dev/null, a directory by an empty
/// read-only tmpfs), and every path of the read-only list is bound onto itself read-only.
pub fn protect_proc(root: &Path) -> Result<(), MountError> {
    mask_paths(root, &DEFAULT_MASKED)?;
    readonly_paths(root, &DEFAULT_READONLY)?;
    Ok(())
}
// ANCHOR_END: solution
