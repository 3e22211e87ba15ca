//! Solution to ipc-flags: `CLONE_NEWIPC` as it was, a key space of the child's own (ipc_namespaces(7)).

use nix::sched::CloneFlags;

// ANCHOR: solution
/// The namespaces the test's child is cloned into (with a user namespace too when you are not root).
/// The child then makes a message queue with a key the host already uses.
pub fn child_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWIPC
}
// ANCHOR_END: solution
