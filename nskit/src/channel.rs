//! The sync channel between a parent and the child it spawned into new namespaces: a connected pair of
//! Unix sockets (unix(7)) carrying one line per message. The parent uses it to say "your maps are
//! written, go on"; the child uses it to send back what it observed. A message can also carry a file
//! descriptor (`SCM_RIGHTS`, unix(7), cmsg(3)): that is how a container hands the launcher the master
//! end of a terminal made inside it.
//!
//! Each conversation says what it carries with a type of its own: [`Channel::send_msg`] and
//! [`Channel::recv_msg`] move any serde type as one JSON line, and a child's answer is a [`Reply`]:
//! what it observed, or the [`ChildError`] of the step that failed, with its errno.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// One end of a line-oriented, bidirectional channel.
#[derive(Debug)]
pub struct Channel {
    socket: UnixStream,
    /// Bytes received but not yet returned as a line. The channel reads with recvmsg(2) itself rather
    /// than through a `BufReader`, because a plain read would silently drop a descriptor that arrives
    /// with the bytes it reads.
    pending: Vec<u8>,
    /// Descriptors received, oldest first, until [`Channel::take_fd`] claims them.
    fds: VecDeque<OwnedFd>,
}

impl Channel {
    /// A connected pair: one end for the parent, one for the child. Both are close-on-exec, so a
    /// program the child `execve`s does not inherit them.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Channel::new(a), Channel::new(b)))
    }

    fn new(socket: UnixStream) -> Channel {
        Channel {
            socket,
            pending: Vec::new(),
            fds: VecDeque::new(),
        }
    }

    /// Sends one message. A message is a line: it must not contain `\n`.
    pub fn send(&mut self, message: &str) -> io::Result<()> {
        self.send_with_fds(message, &[])
    }

    /// Sends one message with a descriptor attached; the other side claims it with
    /// [`Channel::take_fd`] after receiving the message.
    pub fn send_fd(&mut self, message: &str, fd: &OwnedFd) -> io::Result<()> {
        self.send_with_fds(message, &[fd.as_raw_fd()])
    }

    fn send_with_fds(&mut self, message: &str, fds: &[RawFd]) -> io::Result<()> {
        debug_assert!(!message.contains('\n'), "a message is one line");
        let line = format!("{message}\n");
        let mut sent = 0;
        while sent < line.len() {
            // The descriptors travel with the first byte only.
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage<'_>] = if sent == 0 && !fds.is_empty() {
                &rights
            } else {
                &[]
            };
            let iov = [IoSlice::new(&line.as_bytes()[sent..])];
            match sendmsg::<()>(self.socket.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(n) => sent += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
        Ok(())
    }

    /// Receives one message; `UnexpectedEof` when the other side has gone (exited or closed its end).
    pub fn recv(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return String::from_utf8(line[..end].to_vec())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the other side of the channel has gone",
                ));
            }
        }
    }

    /// The socket's descriptor number, for a cloned child to close its copy of the other side's end.
    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Whether the other side has gone (closed its end, or exited), without waiting: the socket
    /// reports a hang-up (poll(2) POLLHUP).
    pub fn peer_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::empty())];
        poll(&mut fds, PollTimeout::ZERO).is_ok()
            && fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
    }

    /// The oldest descriptor received and not yet claimed.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    /// One recvmsg(2): appends the bytes to `pending` and keeps the descriptors (made close-on-exec
    /// as they arrive). Returns the number of bytes, 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut buf = [0u8; 1024];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let received = loop {
            match recvmsg::<()>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => break msg,
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        };
        let bytes = received.bytes;
        for cmsg in received.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel just installed `fd` in this process for this message; nothing
                    // else owns it, and the OwnedFd closes it exactly once.
                    self.fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        self.pending.extend_from_slice(&buf[..bytes]);
        Ok(bytes)
    }

    /// Receives one message and checks it is `expected`: the way two sides wait for each other.
    pub fn expect(&mut self, expected: &str) -> io::Result<()> {
        let got = self.recv()?;
        if got == expected {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected {expected:?}, got {got:?}"),
            ))
        }
    }
}

/// What a child reports when one of its steps fails: which step, the errno when a system call failed,
/// and the message that says why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct ChildError {
    pub step: String,
    pub errno: Option<i32>,
    pub message: String,
}

impl ChildError {
    /// A failed step and why; the errno, if `why` is one.
    pub fn new(step: &str, why: impl std::fmt::Display) -> ChildError {
        ChildError {
            step: step.to_owned(),
            errno: None,
            message: why.to_string(),
        }
    }

    /// A failed system call.
    pub fn sys(step: &str, errno: nix::errno::Errno) -> ChildError {
        ChildError {
            step: step.to_owned(),
            errno: Some(errno as i32),
            message: errno.desc().to_owned(),
        }
    }

    /// The errno, when a system call failed.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        self.errno.map(nix::errno::Errno::from_raw)
    }
}

/// A child's answer: what it observed, or why it could not.
pub type Reply<T> = Result<T, ChildError>;

/// Why a parent did not get what its child was to observe.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Spawn(#[from] crate::spawn::SpawnError),
    #[error("lost contact with the child: {0}")]
    Channel(#[source] io::Error),
    #[error("in the child: {0}")]
    Child(#[source] ChildError),
}

impl Channel {
    /// Sends one typed message, as one JSON line.
    pub fn send_msg<T: serde::Serialize>(&mut self, message: &T) -> io::Result<()> {
        let line = serde_json::to_string(message).map_err(io::Error::other)?;
        self.send(&line)
    }

    /// Receives one typed message sent with [`Channel::send_msg`].
    pub fn recv_msg<T: serde::de::DeserializeOwned>(&mut self) -> io::Result<T> {
        let line = self.recv()?;
        serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Sends one typed message with a descriptor attached (see [`Channel::send_fd`]).
    pub fn send_msg_with_fd<T: serde::Serialize>(&mut self, message: &T, fd: &OwnedFd) -> io::Result<()> {
        let line = serde_json::to_string(message).map_err(io::Error::other)?;
        self.send_fd(&line, fd)
    }

    /// The child's side: sends its answer.
    pub fn reply<T: serde::Serialize>(&mut self, reply: &Reply<T>) -> io::Result<()> {
        self.send_msg(reply)
    }

    /// The parent's side: receives the child's answer, its failure as a [`StepError::Child`].
    pub fn recv_reply<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, StepError> {
        self.recv_msg::<Reply<T>>()
            .map_err(StepError::Channel)?
            .map_err(StepError::Child)
    }
}

/// A system call's outcome, `Result<(), Errno>`, in a message: `null` for success, the errno's number
/// for a failure. Use it as `#[serde(with = "nskit::channel::errno_result")]` on such a field.
pub mod errno_result {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(outcome: &Result<(), Errno>, to: S) -> Result<S::Ok, S::Error> {
        outcome.err().map(|errno| errno as i32).serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Result<(), Errno>, D::Error> {
        Ok(match Option::<i32>::deserialize(from)? {
            None => Ok(()),
            Some(code) => Err(Errno::from_raw(code)),
        })
    }
}

/// An errno in a message, as its number. Use it as `#[serde(with = "nskit::channel::errno")]`.
pub mod errno {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(errno: &Errno, to: S) -> Result<S::Ok, S::Error> {
        (*errno as i32).serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Errno, D::Error> {
        Ok(Errno::from_raw(i32::deserialize(from)?))
    }
}

/// A result whose error is an errno, `Result<T, Errno>`, in a message: `{"Ok": value}` or
/// `{"Err": number}`. Use it as `#[serde(with = "nskit::channel::errno_or")]`.
pub mod errno_or {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        result: &Result<T, Errno>,
        to: S,
    ) -> Result<S::Ok, S::Error> {
        result.as_ref().map_err(|errno| *errno as i32).serialize(to)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        from: D,
    ) -> Result<Result<T, Errno>, D::Error> {
        Ok(Result::<T, i32>::deserialize(from)?.map_err(Errno::from_raw))
    }
}

/// An outcome that may not have been tried, `Option<Result<(), Errno>>`, in a message: `null` when it
/// was not, else `{"Ok": null}` or `{"Err": number}`. Use it as
/// `#[serde(with = "nskit::channel::errno_result_option")]`.
pub mod errno_result_option {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(outcome: &Option<Result<(), Errno>>, to: S) -> Result<S::Ok, S::Error> {
        outcome
            .map(|tried| tried.map_err(|errno| errno as i32))
            .serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Option<Result<(), Errno>>, D::Error> {
        Ok(Option::<Result<(), i32>>::deserialize(from)?.map(|tried| tried.map_err(Errno::from_raw)))
    }
}

/// A PID in a message, as its number. Use it as `#[serde(with = "nskit::channel::pid")]`.
pub mod pid {
    use nix::unistd::Pid;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(pid: &Pid, to: S) -> Result<S::Ok, S::Error> {
        pid.as_raw().serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Pid, D::Error> {
        Ok(Pid::from_raw(i32::deserialize(from)?))
    }
}

/// A signal in a message, as its number. Use it as `#[serde(with = "nskit::channel::signal")]`.
pub mod signal {
    use nix::sys::signal::Signal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(signal: &Signal, to: S) -> Result<S::Ok, S::Error> {
        (*signal as i32).serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Signal, D::Error> {
        let number = i32::deserialize(from)?;
        Signal::try_from(number).map_err(|_| D::Error::custom(format!("no signal {number}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_carries_lines_both_ways() {
        let (mut a, mut b) = Channel::pair().unwrap();
        a.send("hello").unwrap();
        b.expect("hello").unwrap();
        // Any string survives the trip: a message is one line whatever its values hold.
        let values = ["plain", "tab\there", "line\nbreak", "back\\slash", ""];
        b.send_msg(&values).unwrap();
        assert_eq!(a.recv_msg::<Vec<String>>().unwrap(), values);
        drop(b);
        assert_eq!(a.recv().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn replies_carry_values_and_the_failed_step() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct View {
            hostname: String,
            pids: Vec<i32>,
        }
        let (mut parent, mut child) = Channel::pair().unwrap();
        let view = View {
            hostname: "tab\tand\nnewline".into(),
            pids: vec![1, 2],
        };
        child.reply(&Ok::<_, ChildError>(&view)).unwrap();
        assert_eq!(parent.recv_reply::<View>().unwrap(), view);
        child
            .reply::<View>(&Err(ChildError::sys("sethostname", nix::errno::Errno::EPERM)))
            .unwrap();
        match parent.recv_reply::<View>() {
            Err(StepError::Child(e)) => {
                assert_eq!(e.step, "sethostname");
                assert_eq!(e.errno(), Some(nix::errno::Errno::EPERM));
            }
            other => panic!("expected the child's error: {other:?}"),
        }
    }

    #[test]
    fn outcomes_and_pids_travel_as_numbers() {
        use nix::errno::Errno;
        use nix::unistd::Pid;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Seen {
            #[serde(with = "errno_result_option")]
            tried: Option<Result<(), Errno>>,
            #[serde(with = "pid")]
            pid: Pid,
        }
        let (mut a, mut b) = Channel::pair().unwrap();
        for tried in [None, Some(Ok(())), Some(Err(Errno::EPERM))] {
            let seen = Seen {
                tried,
                pid: Pid::from_raw(42),
            };
            a.send_msg(&seen).unwrap();
            assert_eq!(b.recv_msg::<Seen>().unwrap(), seen);
        }
        let line = serde_json::to_string(&Seen {
            tried: Some(Err(Errno::EPERM)),
            pid: Pid::from_raw(7),
        })
        .unwrap();
        assert_eq!(line, r#"{"tried":{"Err":1},"pid":7}"#);
    }

    #[test]
    fn a_descriptor_travels_with_its_message() {
        use std::io::{Read, Write};
        let (mut a, mut b) = Channel::pair().unwrap();
        let (mut mine, theirs) = UnixStream::pair().unwrap();
        a.send("before").unwrap();
        a.send_fd("here", &OwnedFd::from(theirs)).unwrap();
        a.send("after").unwrap();
        b.expect("before").unwrap();
        b.expect("here").unwrap();
        b.expect("after").unwrap();
        let mut passed = UnixStream::from(b.take_fd().expect("the descriptor arrived"));
        assert!(b.take_fd().is_none());
        mine.write_all(b"x").unwrap();
        let mut got = [0u8; 1];
        passed.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"x");
    }
}
