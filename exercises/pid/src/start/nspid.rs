//! Exercise pid-nspid: a process in a nested PID namespace has a PID in each namespace from the one
//! it lives in up to the initial one; `NSpid:` in its status file lists them (pid_namespaces(7),
//! proc(5) "/proc/pid/status").

use std::fs;
use std::io;

use nix::unistd::Pid;

// ANCHOR: exercise
/// The PIDs of process `pid` as `/proc/<pid>/status` lists them on its `NSpid:` line: first in the
/// PID namespace of the proc mount that is read (here the host's), last in the process's own.
pub fn pids_of(pid: Pid) -> io::Result<Vec<i32>> {
    // Your code here: read the file with `fs::read_to_string`, find the line that starts with
    // `NSpid:`, and parse the numbers after it (tab-separated). A missing line or a number that does
    // not parse is an `io::ErrorKind::InvalidData` error.
    Err(io::Error::other("not written yet: pids_of"))
}
// ANCHOR_END: exercise
