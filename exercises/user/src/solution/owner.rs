//! Solution to user-owner: `NS_GET_USERNS` and `NS_GET_PARENT`, each a new descriptor of a
//! namespace, owned at once (ioctl_ns(2)).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// ANCHOR: solution
/// The user namespace that owns the namespace `ns` is an open file of (`/proc/<pid>/ns/<kind>`), as a
/// new open file: `ioctl(fd, NS_GET_USERNS)`.
pub fn owner(ns: &File) -> io::Result<File> {
    namespace_ioctl(ns, libc::NS_GET_USERNS)
}

/// The parent of the user namespace `user_ns`: `ioctl(fd, NS_GET_PARENT)`. The kernel answers EPERM
/// when the parent is outside the caller's own user namespace, as the initial namespace's is.
pub fn parent(user_ns: &File) -> io::Result<File> {
    namespace_ioctl(user_ns, libc::NS_GET_PARENT)
}

fn namespace_ioctl(ns: &File, request: libc::Ioctl) -> io::Result<File> {
    // SAFETY: both requests take no argument and only read the descriptor, which `ns` keeps open for
    // the duration of the call.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), request) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl returned a new descriptor, opened for this call and owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}
// ANCHOR_END: solution
