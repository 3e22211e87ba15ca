//! Exercise pid-lastpid: a PID namespace hands out PIDs after the last one it gave;
//! `/proc/sys/kernel/ns_last_pid` reads and, with CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the
//! namespace's owner, sets that number, which is how CRIU restores a process under its old PID
//! (pid_namespaces(7) "/proc/sys/kernel/ns_last_pid").

use std::fs;
use std::io;

// ANCHOR: exercise
/// Makes `pid` the PID the caller's PID namespace gives its next new process (if it is free).
pub fn next_pid_will_be(pid: i32) -> io::Result<()> {
    // Your code here: one write of a number to `/proc/sys/kernel/ns_last_pid`. Which number?
    Err(io::Error::other("not written yet: next_pid_will_be"))
}
// ANCHOR_END: exercise
