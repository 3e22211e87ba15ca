//! Exercise oci-console: the runtime hands the container's terminal to the engine over the console
//! socket, as a descriptor passed with SCM_RIGHTS (unix(7), cmsg(3), sendmsg(2), recvmsg(2); runc's
//! `--console-socket`, which the OCI runtime spec leaves to the runtimes).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

// ANCHOR: exercise
/// The runtime's side (`create --console-socket`): sends `master`, the master end of the pty the
/// container made, over `socket`, connected to the engine's console socket.
pub fn send_pty(socket: &UnixStream, master: BorrowedFd<'_>) -> Result<(), Errno> {
    // Your code here: one `sendmsg::<()>(socket.as_raw_fd(), &data, &cmsgs, MsgFlags::empty(), None)`,
    // where `cmsgs` is `[ControlMessage::ScmRights(&[master.as_raw_fd()])]` and `data` holds a few
    // bytes of your choice in an `IoSlice` (the runtime sends the name `/dev/ptmx`). Could `data` be
    // empty? (unix(7), on SOCK_STREAM.)
    Err(Errno::ENOSYS)
}

/// The engine's side, conmon's heart: receives over `socket`, an accepted connection of the console
/// socket, the descriptor the runtime sent, as a descriptor of this process's own.
pub fn receive_pty(socket: &UnixStream) -> Result<OwnedFd, Errno> {
    // Your code here: `recvmsg::<()>(socket.as_raw_fd(), &mut data, Some(&mut space), flags)`, with
    // `data` an `IoSliceMut` over a small buffer, `space` from `nix::cmsg_space!([RawFd; 1])`, and
    // `MsgFlags::MSG_CMSG_CLOEXEC` as the flags; then the `ControlMessageOwned::ScmRights` among the
    // answer's `cmsgs()`. Its descriptor is a bare number the kernel has just put in this process's
    // table: `OwnedFd::from_raw_fd` takes ownership of it, in an `unsafe` block whose `// SAFETY:`
    // comment says why that is sound. No descriptor came? `Errno::ENOMSG`. Why MSG_CMSG_CLOEXEC?
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
