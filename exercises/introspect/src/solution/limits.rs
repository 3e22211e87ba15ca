//! Solution to introspect-limits: the limit written in the container's own user namespace, where it
//! binds the container and every user namespace below it, and leaves the host's as it was
//! (namespaces(7) "The /proc/sys/user directory").
// The steps keep the signatures of the starting point, whose arguments two of them leave unused.
#![allow(unused_variables)]

use std::io;

use nskit::ns::Kind;
use user_demo::introspect::set_max_namespaces;

// ANCHOR: solution
/// The runtime's step before it starts the container, in the runtime's own user namespace: the
/// host's (in the test, a user namespace that plays the host).
pub fn before_the_container(kind: Kind, max: u64) -> io::Result<()> {
    Ok(())
}

/// The container's first step, in its new user namespace, as root there, before its own code runs.
pub fn in_the_container(kind: Kind, max: u64) -> io::Result<()> {
    set_max_namespaces(kind, max)
}

/// The first step of a user namespace that the container makes inside itself (a sandbox, as a browser
/// makes one), as the namespace's creator, with every capability in it.
pub fn in_a_nested_namespace(kind: Kind) -> io::Result<()> {
    Ok(())
}
// ANCHOR_END: solution
