//! Solution to uts-owner: the flags as they were, `CLONE_NEWUTS` included, so that the child's user
//! namespace owns the UTS namespace it renames (user_namespaces(7)).

use nix::sched::CloneFlags;

// ANCHOR: solution
/// The flags the test's child is cloned with: a new user namespace, and a new UTS namespace that this
/// user namespace owns, because both are made by the same `clone(2)`. (Whatever you write here, the
/// test adds a user namespace: a child without a UTS namespace of its own can never rename your
/// machine.)
pub fn child_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWUTS
}
// ANCHOR_END: solution
