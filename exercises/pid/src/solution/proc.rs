//! Solution to pid-proc: the init's setup as it was, a fresh proc over `/proc`
//! (pid_namespaces(7) "/proc and PID namespaces").

use std::path::Path;

use pid_demo::procfs::{MountError, mount_proc};

// ANCHOR: solution
/// What the test's init runs before it lists the processes in /proc, in a mount namespace of its own
/// whose mounts the test has already made private: a fresh proc over `/proc`.
pub fn init_setup() -> Result<(), MountError> {
    mount_proc(Path::new("/proc"))
}
// ANCHOR_END: solution
