//! Exercise oci-hooks, break it: a late hook whose program the container could rewrite runs from a
//! copy made at create (the OCI runtime spec's `config.md`, "POSIX-platform Hooks", and `runtime.md`,
//! "Lifecycle"; CVE-2019-5736 for the kind of attack).

use std::path::{Path, PathBuf};

use combined::oci::hooks::{HookError, keep_late_hooks};
use oci_spec::runtime::Spec;

// ANCHOR: exercise
/// `create`'s step for the config's hooks, before anything of the container's has run: the programs
/// of the `poststart` and `poststop` hooks whose path goes through what the container can write (its
/// root filesystem, the sources of its volumes) are copied into `kept`, in the runtime's state, and
/// `spec` is pointed at the copies (the runtime's `keep_late_hooks`).
pub fn keep_hooks(spec: &mut Spec, rootfs: &Path, volumes: &[PathBuf], kept: &Path) -> Result<(), HookError> {
    let writable: Vec<PathBuf> = std::iter::once(rootfs.to_path_buf())
        .chain(volumes.iter().cloned())
        .collect();
    keep_late_hooks(spec, &writable, kept)
}
// ANCHOR_END: exercise
