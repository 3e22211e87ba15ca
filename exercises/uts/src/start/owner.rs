//! Exercise uts-owner, break it: the flags a child is cloned with decide which UTS namespace its
//! capabilities count in (user_namespaces(7) "Interaction of user namespaces and other types of
//! namespaces").

use nix::sched::CloneFlags;

// ANCHOR: exercise
/// The flags the test's child is cloned with: a new user namespace, and a new UTS namespace that this
/// user namespace owns, because both are made by the same `clone(2)`. (Whatever you write here, the
/// test adds a user namespace: a child without a UTS namespace of its own can never rename your
/// machine.)
pub fn child_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWUTS
}
// ANCHOR_END: exercise
