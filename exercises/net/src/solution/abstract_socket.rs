//! Solution to net-abstract: an address in the abstract namespace of the caller's network namespace,
//! bound and connected to (unix(7)).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

// ANCHOR: solution
/// Listens on the abstract UNIX socket address `name`, in the caller's network namespace.
pub fn listen_abstract(name: &str) -> io::Result<UnixListener> {
    UnixListener::bind_addr(&SocketAddr::from_abstract_name(name)?)
}

/// Connects to the abstract UNIX socket address `name`, as the caller's network namespace resolves it.
pub fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?)
}
// ANCHOR_END: solution
