//! The few system calls std has no wrapper for: mount(2), finit_module(2), reboot(2), sethostname(2),
//! sync(2), and taking a controlling terminal (setsid(2), ioctl_tty(2) TIOCSCTTY).

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// mount(2): `source` on `target` as `fstype` with `flags` and file-system `data`.
pub fn mount(source: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> io::Result<()> {
    let (source, target, fstype, data) = (
        cstring(source)?,
        cstring(target)?,
        cstring(fstype)?,
        cstring(data)?,
    );
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    })
}

/// finit_module(2): loads the module in `file` with no parameters.
pub fn load_module(file: &std::fs::File) -> io::Result<()> {
    let no_params = c"";
    // SAFETY: the fd is open for the call's duration, the parameter string is NUL-terminated, and
    // flags 0 asks for no special handling.
    let ret = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), no_params.as_ptr(), 0) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// sethostname(2).
pub fn set_hostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
}

/// sync(2), then reboot(2) with RB_POWER_OFF: QEMU exits. Returns only if that fails.
pub fn power_off() -> io::Error {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    // SAFETY: RB_POWER_OFF is a valid command; as PID 1 with CAP_SYS_BOOT this halts the machine.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    io::Error::last_os_error()
}

/// In a child about to exec a shell: a new session whose controlling terminal is stdin, so that
/// job control and Ctrl-C work. Only async-signal-safe calls (it runs between fork and exec).
pub fn become_session_leader_with_terminal() -> io::Result<()> {
    // SAFETY: setsid has no preconditions.
    if unsafe { libc::setsid() } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd 0 is the terminal the shell runs on; TIOCSCTTY takes an int argument.
    check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
}

/// How a waited-for process ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

/// Waits for `pid` as PID 1 must: every other child that ends meanwhile (an orphan a test left, now
/// re-parented to init) is reaped too, so no zombie outlives the test that made it.
pub fn wait_reaping(pid: u32) -> io::Result<Ended> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid(-1) writes the status of one ended child into `status`, a valid c_int.
        let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
        if reaped < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if reaped as u32 != pid {
            continue;
        }
        return Ok(if libc::WIFEXITED(status) {
            Ended::Code(libc::WEXITSTATUS(status))
        } else {
            Ended::Signal(libc::WTERMSIG(status))
        });
    }
}
