//! Solution to pid-lastpid: the namespace's last PID set to one before the one wanted
//! (pid_namespaces(7) "/proc/sys/kernel/ns_last_pid").

use std::fs;
use std::io;

// ANCHOR: solution
/// Makes `pid` the PID the caller's PID namespace gives its next new process (if it is free).
pub fn next_pid_will_be(pid: i32) -> io::Result<()> {
    // The file names the caller's own PID namespace, whichever proc it is read through: the kernel
    // looks at the writer, not at the mount.
    fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
}
// ANCHOR_END: solution
