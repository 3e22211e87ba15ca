//! Solution to ipc-shm: a fresh tmpfs over /dev/shm, seen only in the child's mount namespace
//! (shm_overview(7), mount_namespaces(7)).

use std::path::Path;

use ipc_demo::posix::{MountError, mount_tmpfs};

// ANCHOR: solution
/// What the test's child runs, in a new IPC namespace and a new mount namespace whose mounts the test
/// has already made private, before it looks for the host's shared memory objects.
pub fn private_shm() -> Result<(), MountError> {
    mount_tmpfs(Path::new("/dev/shm"))
}
// ANCHOR_END: solution
