//! Exercise cgroup-pids: a cgroup is a directory of files; a limit is a number written to one, and a
//! process joins by writing its PID to `cgroup.procs` (cgroups(7), the kernel's "Process Number
//! Controller" document).

use std::fs;
use std::io;
use std::path::Path;

use nix::unistd::Pid;

// ANCHOR: exercise
/// Sets the most processes (and threads) the cgroup whose directory is `dir` may hold at once.
pub fn limit_pids(dir: &Path, max: u32) -> io::Result<()> {
    // Your code here: the file is `pids.max`, on v1 and on v2 alike.
    Err(io::Error::other("not written yet: limit_pids"))
}

/// Moves process `pid` into the cgroup whose directory is `dir`.
pub fn join(dir: &Path, pid: Pid) -> io::Result<()> {
    // Your code here: the file is `cgroup.procs`.
    Err(io::Error::other("not written yet: join"))
}
// ANCHOR_END: exercise
