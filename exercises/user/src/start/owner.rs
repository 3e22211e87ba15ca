//! Exercise user-owner: every namespace is owned by a user namespace, and every user namespace but
//! the first has a parent; two ioctls on a namespace's file descriptor say which (ioctl_ns(2)).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// ANCHOR: exercise
/// The user namespace that owns the namespace `ns` is an open file of (`/proc/<pid>/ns/<kind>`), as a
/// new open file: `ioctl(fd, NS_GET_USERNS)`.
pub fn owner(ns: &File) -> io::Result<File> {
    // Your code here. The ioctl returns a new file descriptor, or -1 with errno set: call
    // `libc::ioctl(ns.as_raw_fd(), libc::NS_GET_USERNS)` in an `unsafe` block with its `// SAFETY:`
    // comment, turn -1 into `io::Error::last_os_error()`, and own the descriptor with
    // `OwnedFd::from_raw_fd` (unsafe too: say why nothing else owns it).
    Err(io::Error::other("not written yet: owner"))
}

/// The parent of the user namespace `user_ns`: `ioctl(fd, NS_GET_PARENT)`. The kernel answers EPERM
/// when the parent is outside the caller's own user namespace, as the initial namespace's is.
pub fn parent(user_ns: &File) -> io::Result<File> {
    // Your code here: the same call with `libc::NS_GET_PARENT`.
    Err(io::Error::other("not written yet: parent"))
}
// ANCHOR_END: exercise
