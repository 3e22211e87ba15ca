//! Exercise pid-proc, break it: `ps` and every tool like it read /proc, and a proc mount shows the
//! PID namespace of the process that mounted it; a new namespace's init mounts its own
//! (pid_namespaces(7) "/proc and PID namespaces", proc(5)).

use std::path::Path;

use pid_demo::procfs::{MountError, mount_proc};

// ANCHOR: exercise
/// What the test's init runs before it lists the processes in /proc, in a mount namespace of its own
/// whose mounts the test has already made private: a fresh proc over `/proc`.
pub fn init_setup() -> Result<(), MountError> {
    mount_proc(Path::new("/proc"))
}
// ANCHOR_END: exercise
