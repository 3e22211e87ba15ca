//! Exercise pid-subreaper: an orphan is adopted by its nearest ancestor that is a "child subreaper",
//! else by the init of its PID namespace; a process becomes one with prctl(2)
//! (PR_SET_CHILD_SUBREAPER(2const), pid_namespaces(7)).

use nix::errno::Errno;

// ANCHOR: exercise
/// Marks the calling process as a child subreaper: its orphaned descendants become its children, so
/// that it can reap them, as the init of a PID namespace reaps its namespace's orphans.
pub fn become_subreaper() -> Result<(), Errno> {
    // Your code here: nix wraps prctl(PR_SET_CHILD_SUBREAPER, 1) as
    // `nix::sys::prctl::set_child_subreaper`.
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
