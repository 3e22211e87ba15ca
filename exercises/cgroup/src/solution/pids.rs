//! Solution to cgroup-pids: a write to `pids.max`, a write to `cgroup.procs` (cgroups(7)).

use std::fs;
use std::io;
use std::path::Path;

use nix::unistd::Pid;

// ANCHOR: solution
/// Sets the most processes (and threads) the cgroup whose directory is `dir` may hold at once.
pub fn limit_pids(dir: &Path, max: u32) -> io::Result<()> {
    fs::write(dir.join("pids.max"), max.to_string())
}

/// Moves process `pid` into the cgroup whose directory is `dir`.
pub fn join(dir: &Path, pid: Pid) -> io::Result<()> {
    // One PID per write(2): the kernel moves the process with all its threads.
    fs::write(dir.join("cgroup.procs"), pid.to_string())
}
// ANCHOR_END: solution
