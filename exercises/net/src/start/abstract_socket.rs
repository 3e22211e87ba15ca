//! Exercise net-abstract: a UNIX socket bound to a path is a file, found through the mount namespace;
//! one bound to an abstract name (a name starting with a NUL byte, `@name` in `ss -x`) lives in the
//! network namespace it was made in, and only there can it be reached (unix(7), network_namespaces(7)).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

// ANCHOR: exercise
/// Listens on the abstract UNIX socket address `name`, in the caller's network namespace.
pub fn listen_abstract(name: &str) -> io::Result<UnixListener> {
    // Your code here: `SocketAddr::from_abstract_name(name)?`, then `UnixListener::bind_addr`.
    Err(io::Error::other("not written yet: listen_abstract"))
}

/// Connects to the abstract UNIX socket address `name`, as the caller's network namespace resolves it.
pub fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    // Your code here: the same address, and `UnixStream::connect_addr`.
    Err(io::Error::other("not written yet: connect_abstract"))
}
// ANCHOR_END: exercise
