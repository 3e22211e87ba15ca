//! Solution to pid-nspid: the `NSpid:` line of `/proc/<pid>/status`, one PID per level
//! (pid_namespaces(7), proc(5) "/proc/pid/status").

use std::fs;
use std::io;

use nix::unistd::Pid;

// ANCHOR: solution
/// The PIDs of process `pid` as `/proc/<pid>/status` lists them on its `NSpid:` line: first in the
/// PID namespace of the proc mount that is read (here the host's), last in the process's own.
pub fn pids_of(pid: Pid) -> io::Result<Vec<i32>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{why} in {pid}'s status"));
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .ok_or_else(|| invalid("no NSpid line"))?;
    line.split_whitespace()
        .map(|number| number.parse().map_err(|_| invalid("a malformed NSpid line")))
        .collect()
}
// ANCHOR_END: solution
