//! Solution to oci-console: the descriptor travels as ancillary data with at least one byte, and
//! arrives close-on-exec (unix(7), cmsg(3), sendmsg(2), recvmsg(2); runc's `--console-socket`).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

// ANCHOR: solution
/// The runtime's side (`create --console-socket`): sends `master`, the master end of the pty the
/// container made, over `socket`, connected to the engine's console socket.
pub fn send_pty(socket: &UnixStream, master: BorrowedFd<'_>) -> Result<(), Errno> {
    let fds = [master.as_raw_fd()];
    // On a stream socket the descriptor rides on data: with none, nothing is sent at all.
    let data = [IoSlice::new(b"/dev/ptmx")];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &data,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// The engine's side, conmon's heart: receives over `socket`, an accepted connection of the console
/// socket, the descriptor the runtime sent, as a descriptor of this process's own.
pub fn receive_pty(socket: &UnixStream) -> Result<OwnedFd, Errno> {
    let mut buffer = [0u8; 64];
    let mut data = [IoSliceMut::new(&mut buffer)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut data,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut received = Vec::new();
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel has just installed these descriptors in this process for this
            // message; nothing else owns them, and each OwnedFd closes its own once.
            received.extend(fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    // A sender of more than one gets the first used; the others are closed as `received` goes.
    received.into_iter().next().ok_or(Errno::ENOMSG)
}
// ANCHOR_END: solution
