//! Solution to pid-subreaper: one prctl(2) call (PR_SET_CHILD_SUBREAPER(2const)).

use nix::errno::Errno;

// ANCHOR: solution
/// Marks the calling process as a child subreaper: its orphaned descendants become its children, so
/// that it can reap them, as the init of a PID namespace reaps its namespace's orphans.
pub fn become_subreaper() -> Result<(), Errno> {
    nix::sys::prctl::set_child_subreaper(true)
}
// ANCHOR_END: solution
