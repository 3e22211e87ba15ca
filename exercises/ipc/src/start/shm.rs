//! Exercise ipc-shm: POSIX shared memory objects are files in /dev/shm (shm_overview(7)), so the IPC
//! namespace does not isolate them; a container mounts a /dev/shm of its own, a mount-namespace matter
//! (ipc_namespaces(7), mount_namespaces(7)).

use std::path::Path;

use ipc_demo::posix::{MountError, mount_tmpfs};

// ANCHOR: exercise
/// What the test's child runs, in a new IPC namespace and a new mount namespace whose mounts the test
/// has already made private, before it looks for the host's shared memory objects.
pub fn private_shm() -> Result<(), MountError> {
    // Your code here: one call. The chapter has `mount_tmpfs(target)`.
    Ok(())
}
// ANCHOR_END: exercise
