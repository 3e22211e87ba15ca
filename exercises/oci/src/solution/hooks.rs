//! Solution to oci-hooks: the late hooks' programs, wherever the container can write, copied at create
//! as the runtime's `create` copies them (the OCI runtime spec's `config.md`, "POSIX-platform Hooks";
//! `runtime.md`, "Lifecycle").

use std::path::{Path, PathBuf};

use combined::oci::hooks::{HookError, keep_late_hooks};
use oci_spec::runtime::Spec;

// ANCHOR: solution
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
// ANCHOR_END: solution
