//! Looking at namespaces from outside: which user namespace owns a namespace, and a user namespace's
//! parent, asked of the kernel with two ioctl(2) requests on a namespace's descriptor (ioctl_ns(2));
//! and how many namespaces of a kind a user namespace may hold, `/proc/sys/user/max_*_namespaces`
//! (namespaces(7) "The /proc/sys/user directory").

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nskit::ns::Kind;

// ANCHOR: owner_parent
/// The user namespace that owns the namespace `ns` is an open file of, as a new open file:
/// `ioctl(fd, NS_GET_USERNS)`. A namespace's owner is the user namespace its creator was in.
pub fn owner(ns: &File) -> io::Result<File> {
    namespace_ioctl(ns, libc::NS_GET_USERNS)
}

/// The parent of the user namespace `user_ns`: `ioctl(fd, NS_GET_PARENT)` (for a PID namespace, its
/// parent PID namespace). EPERM when the parent is outside the caller's own user namespace, as the
/// initial user namespace's is, and as the parent of a container's own user namespace is to the
/// container.
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
// ANCHOR_END: owner_parent

// ANCHOR: ownership_chain
/// The inodes of the user namespaces above the namespace `ns`: its owner, the owner's parent, and so
/// on up to the highest the caller may see (the initial user namespace, for a process in it).
pub fn ownership_chain(ns: &File) -> io::Result<Vec<u64>> {
    let mut user_ns = owner(ns)?;
    let mut chain = vec![user_ns.metadata()?.ino()];
    loop {
        match parent(&user_ns) {
            Ok(up) => {
                chain.push(up.metadata()?.ino());
                user_ns = up;
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(chain),
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: ownership_chain

// ANCHOR: max_namespaces
/// `/proc/sys/user/max_<kind>_namespaces`: the file of the caller's own user namespace.
pub fn max_namespaces_file(kind: Kind) -> PathBuf {
    let name = match kind {
        Kind::PidForChildren => "pid",
        other => other.proc_name(),
    };
    PathBuf::from(format!("/proc/sys/user/max_{name}_namespaces"))
}

/// How many namespaces of `kind` the caller's user namespace, and those below it, may hold at once.
pub fn max_namespaces(kind: Kind) -> io::Result<u64> {
    let text = fs::read_to_string(max_namespaces_file(kind))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("not a number: {text:?}")))
}

/// Sets that limit for the caller's user namespace. It takes CAP_SYS_RESOURCE in that namespace,
/// which root of a new user namespace holds: a process may limit its own subtree, never its parent's.
pub fn set_max_namespaces(kind: Kind, max: u64) -> io::Result<()> {
    fs::write(max_namespaces_file(kind), max.to_string())
}
// ANCHOR_END: max_namespaces
