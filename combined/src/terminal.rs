//! The container's terminal: a pseudo-terminal of its own, made inside its devpts, relayed to the
//! host's terminal by the launcher (pty(7), pts(4), termios(3), ioctl_tty(2), tty_ioctl(4)).
//!
//! Why not simply hand the container the host's terminal? Because a terminal is a way in both
//! directions: a process that holds it, or whose controlling terminal it is, can push characters into
//! its input queue with `TIOCSTI`, and the shell that reads them after the container exits runs them
//! on the host (bubblewrap's CVE-2017-5226). So the container gets either
//!
//! - a pty pair made in its own devpts instance (`/dev/pts/0` inside): the launcher keeps the master
//!   end, puts the host terminal in raw mode and copies bytes both ways, forwarding window-size
//!   changes; whatever the container injects lands in its own pty; or
//! - no terminal at all: it runs in a session of its own (`setsid`), so the host's terminal is not its
//!   controlling terminal and the kernel refuses `TIOCSTI` on it (and `/dev/tty` does not open).
//!
//! The child's half (`open_in_devpts`, `make_controlling`) runs inside the container; the rest is
//! the launcher's.

use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags};
use nix::pty::{PtyMaster, grantpt, posix_openpt, unlockpt};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// Whether the launcher runs in the foreground of the terminal on its stdin: then the terminal is the
/// user's, and a container may take it over through a pty. (A launcher in the background must not:
/// changing the terminal's mode from there stops it with SIGTTOU.)
pub fn in_foreground() -> bool {
    let stdin = io::stdin();
    nix::unistd::tcgetpgrp(stdin.as_fd()).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

// ---- inside the container ----------------------------------------------------------------------------

// ANCHOR: open_pty
/// Makes a pty pair in the container's devpts (an instance of its own, so the first pair is
/// `/dev/pts/0` and the host's ptys are not in it), and makes the slave this process's stdin, stdout
/// and stderr. `devpts` is that devpts's directory, a descriptor of the mount the launcher made before
/// the pivot: after it, `/dev/ptmx` and `/dev/pts/N` would be names in the rootfs, which a container
/// sharing the rootfs could rename meanwhile, so that the pty is made, or its slave end found, wherever
/// a link it put there leads. `O_NOCTTY`: the pty becomes the controlling terminal of the command's session, not
/// of init's. Returns the master, for the launcher.
pub fn open_in_devpts(devpts: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let master = nix::fcntl::openat(devpts, "ptmx", flags, nix::sys::stat::Mode::empty())?;
    // SAFETY: `ptmx` of a devpts instance opened read-write is a pty master (pts(4)).
    take_pty(unsafe { PtyMaster::from_owned_fd(master) })
}
// ANCHOR_END: open_pty

/// [`open_in_devpts`] for a further process in a running container (`exec`), through `/dev/ptmx`: the
/// container's own name, in its own mount namespace, for a pty of its own.
pub fn open_in_container() -> Result<OwnedFd, Errno> {
    take_pty(posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?)
}

/// Unlocks `master`'s pty and makes its slave, opened through the master (ioctl_tty(2) `TIOCGPTPEER`,
/// Linux 4.13: no name to look up), this process's stdin, stdout and stderr.
fn take_pty(master: PtyMaster) -> Result<OwnedFd, Errno> {
    grantpt(&master)?;
    unlockpt(&master)?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open(2) flags as an integer argument, no pointer, and returns a new
    // descriptor of the slave, which nothing else owns.
    let slave = Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: as above.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // dup2 clears close-on-exec on the copies: the command inherits its terminal.
    nix::unistd::dup2_stdin(&slave)?;
    nix::unistd::dup2_stdout(&slave)?;
    nix::unistd::dup2_stderr(&slave)?;
    Ok(OwnedFd::from(master))
}
// ANCHOR_END: open_pty

/// Makes stdin, the pty's slave, the controlling terminal of this process's session; the caller is a
/// session leader (setsid). Its process group becomes the terminal's foreground.
pub fn make_controlling() -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal a terminal that is another
    // session's) and no pointer.
    let rc = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    Errno::result(rc).map(drop)
}

// ---- the launcher's side -----------------------------------------------------------------------------

/// The host terminal in raw mode for as long as this value lives: every key, Ctrl-C and Ctrl-Z
/// included, goes to the container's pty, whose own line discipline turns them into signals for the
/// container's foreground process group. Dropping it restores the mode the terminal had.
#[derive(Debug)]
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter(terminal: BorrowedFd<'_>) -> Result<RawMode, Errno> {
        let saved = tcgetattr(terminal)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(terminal, SetArg::TCSANOW, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// How many bytes of input may wait for the container before the launcher stops reading its stdin.
const INPUT_BACKLOG: usize = 4096;

/// Copies bytes between the launcher's stdin and stdout and the container's pty master.
#[derive(Debug)]
pub struct Relay {
    master: File,
    /// Input read from stdin and not yet written to the pty.
    to_container: Vec<u8>,
    stdin_open: bool,
    master_open: bool,
    _raw: Option<RawMode>,
}

impl Relay {
    /// Takes over the master: the host terminal (if stdin is one) goes raw, and the pty gets its size.
    pub fn start(master: OwnedFd) -> Result<Relay, Errno> {
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        let stdin = io::stdin();
        let raw = if is_terminal(stdin.as_fd()) {
            Some(RawMode::enter(stdin.as_fd())?)
        } else {
            None
        };
        let relay = Relay {
            master: File::from(master),
            to_container: Vec::new(),
            stdin_open: true,
            master_open: true,
            _raw: raw,
        };
        relay.copy_window_size();
        Ok(relay)
    }

    // ANCHOR: winsize
    /// Gives the pty the host terminal's size (TIOCGWINSZ, then TIOCSWINSZ); the kernel sends SIGWINCH
    /// to the pty's foreground process group when it changes.
    pub fn copy_window_size(&self) {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        for fd in [0, 1] {
            // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer, which points at one.
            if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 {
                // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which points at one.
                unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
                return;
            }
        }
    }
    // ANCHOR_END: winsize

    /// The descriptors to wait on, with what to wait for; `serve` takes the results in this order.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds = Vec::with_capacity(2);
        // SAFETY: fd 0 stays open for the launcher's whole life; the borrow ends with the PollFd.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let read_stdin = self.stdin_open && self.master_open && self.to_container.len() < INPUT_BACKLOG;
        fds.push(PollFd::new(
            stdin,
            if read_stdin {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            },
        ));
        let mut master = PollFlags::empty();
        if self.master_open {
            master |= PollFlags::POLLIN;
            if !self.to_container.is_empty() {
                master |= PollFlags::POLLOUT;
            }
        }
        fds.push(PollFd::new(self.master.as_fd(), master));
        fds
    }

    /// Moves what is ready, given the `revents` of [`Relay::poll_fds`].
    pub fn serve(&mut self, stdin: PollFlags, master: PollFlags) {
        let ready = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if stdin.intersects(ready) {
            self.read_stdin();
        }
        if master.contains(PollFlags::POLLOUT) {
            self.write_to_container();
        }
        if master.intersects(ready) {
            self.copy_output();
        }
    }

    fn read_stdin(&mut self) {
        let mut buf = [0u8; INPUT_BACKLOG];
        match io::stdin().lock().read(&mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => self.to_container.extend_from_slice(&buf[..n]),
        }
    }

    fn write_to_container(&mut self) {
        match self.master.write(&self.to_container) {
            Ok(n) => {
                self.to_container.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.master_open = false,
        }
    }

    /// Copies what the container wrote until none is waiting. EIO means every slave descriptor is
    /// closed: the container's side of the terminal is gone.
    fn copy_output(&mut self) {
        let mut buf = [0u8; 16384];
        loop {
            match self.master.read(&mut buf) {
                Ok(0) => {
                    self.master_open = false;
                    return;
                }
                Ok(n) => {
                    if write_stdout(&buf[..n]).is_err() {
                        self.master_open = false;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.master_open = false;
                    return;
                }
            }
        }
    }

    /// After the container has exited: whatever it wrote last and the launcher has not copied yet.
    pub fn finish(mut self) {
        if self.master_open {
            self.copy_output();
        }
    }
}

/// Writes all of `bytes` to fd 1 at once, past Rust's line-buffered `Stdout`: a terminal shows a
/// prompt without a newline as soon as the container writes it.
fn write_stdout(mut bytes: &[u8]) -> io::Result<()> {
    // SAFETY: fd 1 stays open for the launcher's whole life; ManuallyDrop never closes it.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
