//! Exercise ipc-flags, break it: System V keys are looked up in the caller's IPC namespace, so a child
//! with a namespace of its own may use any key, the host's included (ipc_namespaces(7)).

use nix::sched::CloneFlags;

// ANCHOR: exercise
/// The namespaces the test's child is cloned into (with a user namespace too when you are not root).
/// The child then makes a message queue with a key the host already uses.
pub fn child_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWIPC
}
// ANCHOR_END: exercise
