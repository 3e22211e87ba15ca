//! The seccomp tests' probe: run inside a container by `combined/tests/seccomp.rs`, it makes the
//! system calls the default seccomp filter refuses, and a few it must allow, and prints one `key=value`
//! line for each: `ok` (or a value), or `err:<ERRNO>` for a refused call. Every attempt is harmless
//! if it succeeds: a namespace made in a child that exits at once, an invalid argument after the
//! permission check, a terminal of its own. Attempts that would change this process run in a forked
//! child, so that each starts from the same state. seccomp(2), proc(5), unshare(2), clone(2),
//! clone3, bpf(2), perf_event_open(2), keyctl(2), add_key(2), request_key(2), userfaultfd(2),
//! kexec_load(2), open_by_handle_at(2), ioctl_tty(2), clock_settime(2), personality(2), socket(2).
//!
//! `syscalls` (no arguments).

use std::ffi::CStr;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// A value with bits set above the low 32, to show that the filter reads only what the kernel reads.
const HIGH_BIT: libc::c_long = 1 << 32;

fn main() {
    say("seccomp_mode", status_field("Seccomp"));
    say("seccomp_filters", status_field("Seccomp_filters"));
    namespaces();
    kernel_interfaces();
    terminal();
    say("clock_settime", clock_settime());
    personality();
    sockets();
    still_allowed();
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

/// A field of /proc/self/status, such as `Seccomp` (0 none, 1 strict, 2 filter).
fn status_field(name: &str) -> String {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| Some(line.strip_prefix(name)?.strip_prefix(':')?.trim().to_owned()))
        .unwrap_or_else(|| "absent".into())
}

/// `ok`, or `err:<ERRNO>` for a raw system call's return value.
fn outcome(rc: libc::c_long) -> String {
    if rc >= 0 {
        "ok".into()
    } else {
        format!("err:{:?}", Errno::last())
    }
}

/// Like [`outcome`], for a call that returns a descriptor, which is closed.
fn fd_outcome(rc: libc::c_long) -> String {
    let text = outcome(rc);
    if rc >= 0 {
        // SAFETY: the kernel just returned this descriptor to this process, and nothing else owns it;
        // the OwnedFd closes it once, right here.
        drop(unsafe { OwnedFd::from_raw_fd(rc as RawFd) });
    }
    text
}

/// Runs `attempt` in a forked child, which exits with 0 or the errno; `ok`, `err:<ERRNO>`, or the
/// signal that killed the child.
fn in_child(attempt: impl FnOnce() -> nix::Result<()>) -> String {
    // SAFETY: this program is single-threaded, so the child inherits no lock held by another thread.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = attempt().map_or_else(|e| e as i32, |()| 0);
            // SAFETY: _exit ends the child without running the parent's exit handlers twice.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => exit_outcome(child),
        Err(e) => format!("err:fork:{e:?}"),
    }
}

/// How a child ended: `ok` for status 0, `err:<ERRNO>` for an errno as its status.
fn exit_outcome(child: Pid) -> String {
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, 0)) => "ok".into(),
        Ok(WaitStatus::Exited(_, code)) => format!("err:{:?}", Errno::from_raw(code)),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed:{signal:?}"),
        other => format!("wait:{other:?}"),
    }
}

/// The errno of a raw call's return value, for [`in_child`].
fn result(rc: libc::c_long) -> nix::Result<()> {
    if rc >= 0 { Ok(()) } else { Err(Errno::last()) }
}

// ---- namespaces -----------------------------------------------------------------------------------

/// New namespaces: unshare(2), and clone(2) and clone3 with the flags.
fn namespaces() {
    say("unshare_user", in_child(|| unshare(CloneFlags::CLONE_NEWUSER)));
    say("unshare_mount", in_child(|| unshare(CloneFlags::CLONE_NEWNS)));
    say("clone_newuser", clone(libc::CLONE_NEWUSER));
    say("clone_plain", clone(0));
    say("clone3", clone3());
}

/// A raw clone(2) with `flags`, like fork (no new stack); the child exits at once.
fn clone(flags: libc::c_int) -> String {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack the child runs on a copy of this one, as after fork; it only calls
    // _exit. The other arguments (tid pointers, tls) are null.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    match pid {
        // SAFETY: _exit ends the child at once, running nothing of the parent's.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => exit_outcome(Pid::from_raw(pid as libc::pid_t)),
        _ => format!("err:{:?}", Errno::last()),
    }
}

/// `struct clone_args` as of Linux 5.3 (CLONE_ARGS_SIZE_VER0, 64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// clone3 without flags, like fork; the child exits at once. The default filter answers ENOSYS, so
/// that the C library falls back to clone.
fn clone3() -> String {
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: the kernel reads `size_of::<CloneArgs>()` bytes of `args`, alive across the call. Without
    // a stack the child runs on a copy of this one and only calls _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    match pid {
        // SAFETY: _exit ends the child at once, running nothing of the parent's.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => exit_outcome(Pid::from_raw(pid as libc::pid_t)),
        _ => format!("err:{:?}", Errno::last()),
    }
}

// ---- kernel interfaces a container never needs --------------------------------------------------------

fn kernel_interfaces() {
    say("bpf", bpf());
    say("perf_event_open", perf_event_open());
    say("keyctl", keyctl());
    say("add_key", add_key());
    say("request_key", request_key());
    say("userfaultfd", userfaultfd());
    say("kexec_load", kexec_load());
    say("kexec_file_load", kexec_file_load());
    say("open_by_handle_at", open_by_handle_at());
}

/// BPF_MAP_CREATE with an all-zero attribute: map type 0 is no map, so a permitted call fails with
/// EINVAL and makes nothing.
fn bpf() -> String {
    let attr = [0u8; 128];
    // SAFETY: the kernel reads `attr.len()` bytes from `attr`, alive across the call.
    fd_outcome(unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), attr.len()) })
}

/// A software "dummy" event (it counts nothing) on this process, any CPU.
fn perf_event_open() -> String {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_DUMMY: u64 = 9;
    // struct perf_event_attr: type (u32), size (u32), config (u64), the rest zero; 128 bytes is
    // PERF_ATTR_SIZE_VER7.
    const SIZE: u32 = 128;
    let mut attr = [0u8; SIZE as usize];
    attr[0..4].copy_from_slice(&PERF_TYPE_SOFTWARE.to_ne_bytes());
    attr[4..8].copy_from_slice(&SIZE.to_ne_bytes());
    attr[8..16].copy_from_slice(&PERF_COUNT_SW_DUMMY.to_ne_bytes());
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    let (pid, cpu, group) = (0, -1, -1);
    // SAFETY: the kernel reads the 128-byte attribute, alive across the call; the rest are integers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            pid,
            cpu,
            group,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    fd_outcome(rc)
}

/// KEYCTL_GET_KEYRING_ID of the user keyring: the keyring is not namespaced.
fn keyctl() -> String {
    // SAFETY: KEYCTL_GET_KEYRING_ID takes integers only.
    outcome(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_GET_KEYRING_ID,
            libc::KEY_SPEC_USER_KEYRING,
            0,
        )
    })
}

/// A `user` key in this process's own keyring, which goes when the process does.
fn add_key() -> String {
    let payload = b"x";
    // SAFETY: the type and description are NUL-terminated and the payload has the given length, all
    // alive across the call, which only reads them.
    outcome(unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            c"combined-seccomp-probe".as_ptr(),
            payload.as_ptr(),
            payload.len(),
            libc::KEY_SPEC_PROCESS_KEYRING,
        )
    })
}

/// A key that does not exist: a permitted call fails with ENOKEY.
fn request_key() -> String {
    let (info, keyring): (*const libc::c_char, libc::c_long) = (std::ptr::null(), 0);
    // SAFETY: the type and description are NUL-terminated and alive across the call; no callout
    // info (null), no destination keyring (0).
    outcome(unsafe {
        libc::syscall(
            libc::SYS_request_key,
            c"user".as_ptr(),
            c"combined-seccomp-absent".as_ptr(),
            info,
            keyring,
        )
    })
}

fn userfaultfd() -> String {
    // SAFETY: userfaultfd takes flags only.
    fd_outcome(unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) })
}

/// No segments and a flag that does not exist: refused (EINVAL) after the capability check, so a
/// permitted call neither loads nor unloads a kernel.
fn kexec_load() -> String {
    let (entry, segments, no_such_flag) = (0, std::ptr::null::<u8>(), 0x8000);
    // SAFETY: no segments are given, so the null segment pointer is never read.
    outcome(unsafe { libc::syscall(libc::SYS_kexec_load, entry, 0, segments, no_such_flag) })
}

/// No files and a flag that does not exist: refused (EINVAL) after the capability check.
fn kexec_file_load() -> String {
    let (kernel, initrd, cmdline) = (-1, -1, std::ptr::null::<libc::c_char>());
    let no_such_flag: libc::c_ulong = 0x8000_0000;
    // SAFETY: the command line's length is 0, so its null pointer is never read.
    outcome(unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel,
            initrd,
            0,
            cmdline,
            no_such_flag,
        )
    })
}

/// An 8-byte handle of zeros, relative to the working directory: the kernel checks
/// CAP_DAC_READ_SEARCH before it looks at the handle.
fn open_by_handle_at() -> String {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        data: [u8; 8],
    }
    let mut handle = Handle {
        bytes: 8,
        kind: 1,
        data: [0; 8],
    };
    // SAFETY: `handle` is a struct file_handle with 8 bytes of f_handle, alive across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            libc::AT_FDCWD,
            &mut handle as *mut Handle,
            libc::O_RDONLY,
        )
    };
    fd_outcome(rc)
}

// ---- the terminal ---------------------------------------------------------------------------------

/// ioctls on a pseudo-terminal this probe opens itself, so no other terminal is ever touched: TIOCSTI
/// (push input), also with high bits set, TIOCLINUX, and TIOCGWINSZ, which must still work.
fn terminal() {
    let (_master, pty) = match own_pty() {
        Ok(pair) => pair,
        Err(e) => return say("pty", format!("err:{e:?}")),
    };
    say("pty", "ok");
    let fd = pty.as_raw_fd();
    let byte = b'x';
    let tiocsti = libc::TIOCSTI as libc::c_long;
    say("ioctl_tiocsti", ioctl(fd, tiocsti, &byte));
    say("ioctl_tiocsti_high_bits", ioctl(fd, HIGH_BIT | tiocsti, &byte));
    // TIOCL_GETSHIFTSTATE: a query; on a pseudo-terminal a permitted call fails (TIOCLINUX is for
    // virtual consoles).
    let subcode = 6u8;
    say(
        "ioctl_tioclinux",
        ioctl(fd, libc::TIOCLINUX as libc::c_long, &subcode),
    );
    let size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    say(
        "ioctl_tiocgwinsz",
        ioctl(fd, libc::TIOCGWINSZ as libc::c_long, &size),
    );
}

/// A new pseudo-terminal pair from /dev/ptmx: (master, the terminal end).
fn own_pty() -> nix::Result<(OwnedFd, OwnedFd)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let pty = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master.into(), pty))
}

/// A raw ioctl(2), so that the request keeps all 64 bits.
fn ioctl<T>(fd: RawFd, request: libc::c_long, arg: &T) -> String {
    // SAFETY: every request used here reads or writes at most one `T` at `arg`, which is alive across
    // the call (TIOCGWINSZ writes a winsize, which `arg` is; the kernel never writes the others).
    outcome(unsafe { libc::syscall(libc::SYS_ioctl, fd, request, arg as *const T) })
}

// ---- time, personality, sockets -------------------------------------------------------------------

/// Set the real-time clock to a time that does not exist (tv_nsec -1): the kernel refuses it (EINVAL)
/// before the capability check, so a permitted call never changes the clock.
fn clock_settime() -> String {
    let invalid = libc::timespec {
        tv_sec: 0,
        tv_nsec: -1,
    };
    // SAFETY: the kernel reads one timespec from `invalid`, alive across the call.
    outcome(unsafe {
        libc::syscall(
            libc::SYS_clock_settime,
            libc::CLOCK_REALTIME,
            &invalid as *const _,
        )
    })
}

/// personality(2): the query, a value Docker allows, and one it refuses (ADDR_NO_RANDOMIZE turns off
/// address space randomisation), the last two in children so this process keeps its own.
fn personality() {
    const QUERY: libc::c_ulong = 0xffff_ffff;
    const PER_LINUX32: libc::c_ulong = 0x0008;
    const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;
    // SAFETY: personality takes an integer only.
    say(
        "personality_query",
        outcome(unsafe { libc::syscall(libc::SYS_personality, QUERY) }),
    );
    // SAFETY: as above.
    let set = |persona: libc::c_ulong| result(unsafe { libc::syscall(libc::SYS_personality, persona) });
    say("personality_linux32", in_child(|| set(PER_LINUX32)));
    say(
        "personality_addr_no_randomize",
        in_child(|| set(ADDR_NO_RANDOMIZE)),
    );
}

/// socket(2) for the families the default filter refuses, one with the family's high bits set, and
/// one it allows.
fn sockets() {
    let vsock = libc::AF_VSOCK as libc::c_long;
    say("socket_vsock", socket(vsock, libc::SOCK_STREAM));
    say(
        "socket_vsock_high_bits",
        socket(HIGH_BIT | vsock, libc::SOCK_STREAM),
    );
    say(
        "socket_alg",
        socket(libc::AF_ALG as libc::c_long, libc::SOCK_SEQPACKET),
    );
    say(
        "socket_inet",
        socket(libc::AF_INET as libc::c_long, libc::SOCK_DGRAM),
    );
}

fn socket(family: libc::c_long, kind: libc::c_int) -> String {
    // SAFETY: socket takes integers only; a returned descriptor is closed.
    fd_outcome(unsafe { libc::syscall(libc::SYS_socket, family, kind | libc::SOCK_CLOEXEC, 0) })
}

// ---- what must still work -------------------------------------------------------------------------

fn still_allowed() {
    say("fork_wait", in_child(|| Ok(())));
    // SAFETY: getpid takes no arguments.
    say("getpid", outcome(unsafe { libc::syscall(libc::SYS_getpid) }));
    say("getcwd", getcwd());
}

fn getcwd() -> String {
    let mut buffer = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the kernel writes at most `buffer.len()` bytes into `buffer`, alive across the call.
    let rc = unsafe { libc::syscall(libc::SYS_getcwd, buffer.as_mut_ptr(), buffer.len()) };
    if rc < 0 {
        return outcome(rc);
    }
    CStr::from_bytes_until_nul(&buffer).map_or("err:unterminated".into(), |cwd| {
        cwd.to_string_lossy().into_owned()
    })
}
