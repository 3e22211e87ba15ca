//! A terminal for an engine's `-it` scenarios: the engine's client runs with a pty as its controlling
//! terminal, as at a person's keyboard, and the scenario reads what the container prints, types, and
//! resizes the window (TIOCSWINSZ on the master, which the kernel announces with SIGWINCH).
//! pty(7), openpty(3), ioctl_tty(2).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{Winsize, openpty};

/// In the client, before exec: a new session, with stdin (the pty's slave) as its controlling terminal.
fn take_terminal() -> std::io::Result<()> {
    nix::unistd::setsid().map_err(std::io::Error::from)?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal another session's terminal) and no
    // pointer.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A client running at a pty of ours.
#[derive(Debug)]
pub struct Terminal {
    master: File,
    child: Child,
    /// Everything read from the terminal so far.
    pub seen: String,
}

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    /// Runs `cmd` with a new pty of `rows` x `cols` as its stdin, stdout, stderr and controlling terminal.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> anyhow::Result<Terminal> {
        let pty = openpty(Some(&size(rows, cols)), None).context("cannot open a pty")?;
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: the closure runs between fork and exec and makes only async-signal-safe system calls
        // (setsid, ioctl) with integers of its own. A session of its own makes the pty (now its stdin)
        // its controlling terminal, and its process group the terminal's foreground.
        unsafe {
            cmd.pre_exec(take_terminal);
        }
        let child = cmd.spawn().context("cannot start the client at a pty")?;
        let master: OwnedFd = pty.master;
        Ok(Terminal {
            master: File::from(master),
            child,
            seen: String::new(),
        })
    }

    /// Reads until `text` has been seen (since the start), for up to `seconds`.
    pub fn expect(&mut self, text: &str, seconds: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "did not see {text:?} within {seconds} s; the terminal showed {:?}",
                    self.seen
                );
            }
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(millis))? == 0 {
                continue;
            }
            let mut buf = [0u8; 1024];
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => bail!("the terminal closed before {text:?}; it showed {:?}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        Ok(())
    }

    /// Reads what is there now, without waiting.
    fn drain(&mut self) {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0) {
            let mut buf = [0u8; 1024];
            if let Ok(n) = self.master.read(&mut buf) {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    }

    /// Types `text`.
    pub fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.master
            .write_all(text.as_bytes())
            .context("cannot type into the terminal")
    }

    /// Resizes the window: the kernel sends SIGWINCH to the terminal's foreground process group.
    pub fn resize(&self, rows: u16, cols: u16) -> anyhow::Result<()> {
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which points at a live one.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size(rows, cols)) };
        nix::errno::Errno::result(rc)
            .map(drop)
            .context("cannot resize the terminal")
    }

    /// Waits up to `seconds` for the client to exit (reading on, so it never blocks on a full pty);
    /// kills it after that.
    pub fn finish(mut self, seconds: u64) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "the client did not exit within {seconds} s; the terminal showed {:?}",
                    self.seen
                );
            }
            self.drain();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
