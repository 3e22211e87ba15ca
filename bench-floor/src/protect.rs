//! The floor with protections (`--protect`): the kernel work of what `combined run` does by default
//! beyond the floor, in a straight line of system calls and nothing else, so that a launcher's time
//! can be split into the kernel's work, which any launcher giving the same protections must pay, and
//! its own. Each step follows the man page of what it does, as the launcher's chapters do:
//!
//! 1. a session of its own, away from the host's terminal (setsid(2)), a cgroup namespace
//!    (cgroup_namespaces(7)), SIGKILL when the launcher dies (prctl(2) `PR_SET_PDEATHSIG`), a hostname
//!    and a new session keyring (sethostname(2), keyctl(2) `KEYCTL_JOIN_SESSION_KEYRING`); once the
//!    rootfs is bound, `nodev` on it and every mount beneath it (mount_setattr(2));
//! 2. before the pivot: /dev a tmpfs with the six device nodes (mknod(2); bound from the host's in a
//!    user namespace, where mknod is refused), devpts (`newinstance`), the /dev links, a tmpfs at
//!    /dev/shm and mqueue at /dev/mqueue; sysfs read-only at /sys; each `--mask` path covered (a
//!    directory by an empty read-only tmpfs, a file by a bind of /dev/null) and each `--read-only`
//!    path bound onto itself and remounted read-only, as runc does (mount(2));
//! 3. after the pivot: `lo` up (netdevice(7) `SIOCSIFFLAGS`);
//! 4. an init: the process forks, waits for the command and leaves with its status (wait(2));
//! 5. the command's process gets every signal's default action back (sigaction(2)) and no inherited
//!    descriptor past stderr (close_range(2) `CLOSE_RANGE_CLOEXEC`), keeps Docker's capabilities and
//!    no others (prctl(2) `PR_CAPBSET_DROP`, capset(2)), sets no_new_privs, loads the `--seccomp`
//!    program (seccomp(2), as `combined seccomp` writes it), and the floor's `execv` follows.
//!
//! Everything is prepared before the clone; after it nothing is allocated. A step that fails says which
//! and leaves with 125, as the floor's own steps do.

use std::ffi::{CStr, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{cstring, exit_failed};

/// The flags as parsed.
#[derive(Default)]
pub struct Options {
    pub on: bool,
    pub seccomp: Option<PathBuf>,
    pub masks: Vec<OsString>,
    pub read_only: Vec<OsString>,
}

/// What the child does, every path and the program ready before the clone. Off, every step is nothing.
pub struct Protect {
    on: bool,
    in_user_namespace: bool,
    dev: CString,
    pts: CString,
    shm: CString,
    mqueue: CString,
    sys: CString,
    /// (node in the container's /dev, the host's device, its number)
    nodes: Vec<(CString, CString, libc::dev_t)>,
    /// (target, link)
    links: Vec<(CString, CString)>,
    masks: Vec<CString>,
    read_only: Vec<CString>,
    filter: Vec<libc::sock_filter>,
}

/// The devices every container gets (the OCI runtime spec's default devices, as combined makes them).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The links in /dev, (target, name).
const LINKS: [(&str, &str); 5] = [
    ("pts/ptmx", "ptmx"),
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// Docker's default capabilities without CAP_MKNOD, as combined keeps them (capability(7) numbers):
/// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW,
/// SYS_CHROOT, AUDIT_WRITE, SETFCAP.
const KEPT_CAPS: [u32; 13] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31];

impl Options {
    /// Every path joined to the rootfs and the program read, for a child that will allocate nothing.
    pub fn prepare(self, rootfs: Option<&Path>, flags: libc::c_int) -> Result<Protect, String> {
        let off = Protect {
            on: false,
            in_user_namespace: false,
            dev: CString::default(),
            pts: CString::default(),
            shm: CString::default(),
            mqueue: CString::default(),
            sys: CString::default(),
            nodes: Vec::new(),
            links: Vec::new(),
            masks: Vec::new(),
            read_only: Vec::new(),
            filter: Vec::new(),
        };
        if !self.on {
            if self.seccomp.is_some() || !self.masks.is_empty() || !self.read_only.is_empty() {
                return Err("--seccomp, --mask and --read-only go with --protect".into());
            }
            return Ok(off);
        }
        let rootfs = rootfs.ok_or("--protect needs --rootfs")?;
        if flags & libc::CLONE_NEWPID == 0 || flags & libc::CLONE_NEWNET == 0 {
            return Err("--protect needs the PID and network namespaces (its init, its lo)".into());
        }
        let seccomp = self
            .seccomp
            .ok_or("--protect needs --seccomp FILE (combined seccomp > FILE)")?;
        let inside = |path: &str| cstring(rootfs.join(path.trim_start_matches('/')).as_os_str().as_bytes());
        let in_root = |paths: Vec<OsString>| -> Result<Vec<CString>, String> {
            paths.iter().map(|p| inside(&p.to_string_lossy())).collect()
        };
        let nodes = DEVICES
            .iter()
            .map(|(name, major, minor)| {
                Ok((
                    inside(&format!("dev/{name}"))?,
                    cstring(format!("/dev/{name}").as_bytes())?,
                    libc::makedev(*major, *minor),
                ))
            })
            .collect::<Result<_, String>>()?;
        let links = LINKS
            .iter()
            .map(|(target, name)| Ok((cstring(target.as_bytes())?, inside(&format!("dev/{name}"))?)))
            .collect::<Result<_, String>>()?;
        Ok(Protect {
            on: true,
            in_user_namespace: flags & libc::CLONE_NEWUSER != 0,
            dev: inside("dev")?,
            pts: inside("dev/pts")?,
            shm: inside("dev/shm")?,
            mqueue: inside("dev/mqueue")?,
            sys: inside("sys")?,
            nodes,
            links,
            masks: in_root(self.masks)?,
            read_only: in_root(self.read_only)?,
            filter: read_filter(&seccomp)?,
        })
    }
}

/// The program `combined seccomp` wrote: `struct sock_filter`s, 8 bytes each in this machine's order.
fn read_filter(path: &Path) -> Result<Vec<libc::sock_filter>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.is_empty() || bytes.len() % 8 != 0 {
        return Err(format!("{} is not a seccomp program", path.display()));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect())
}

impl Protect {
    /// Step 1, first in the child.
    pub fn before_mounts(&self) {
        if !self.on {
            return;
        }
        // SAFETY: setsid takes nothing; the child of a clone leads no process group, so it succeeds.
        check(unsafe { libc::setsid() }, c"setsid");
        // SAFETY: unshare takes a flag; the process has one thread, as the cgroup namespace needs none.
        check(
            unsafe { libc::unshare(libc::CLONE_NEWCGROUP) },
            c"new cgroup namespace",
        );
        // SAFETY: prctl(PR_SET_PDEATHSIG, SIGKILL) takes integers.
        check(
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) },
            c"set the parent-death signal",
        );
        let name = b"floor";
        // SAFETY: sethostname reads `name.len()` bytes from a live array.
        check(
            unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) },
            c"sethostname",
        );
        // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL) takes a null name: a new anonymous keyring.
        let joined = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<libc::c_char>(),
            )
        };
        if joined < 0 {
            exit_failed(c"join a new session keyring");
        }
    }

    /// The end of step 1, once `rootfs` is bound onto itself: no device node in it or beneath it opens.
    pub fn rootfs_bound(&self, rootfs: &CStr) {
        if !self.on {
            return;
        }
        let attr = libc::mount_attr {
            attr_set: libc::MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: mount_setattr reads a NUL-terminated path and `size_of::<mount_attr>()` bytes of a
        // valid `mount_attr`, both alive for the call.
        let set = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                rootfs.as_ptr(),
                libc::AT_RECURSIVE as libc::c_uint,
                &attr as *const libc::mount_attr,
                std::mem::size_of::<libc::mount_attr>(),
            )
        };
        check(set as libc::c_int, c"make the rootfs nodev");
    }

    /// Step 2, with proc mounted and before the pivot.
    pub fn mounts(&self) {
        if !self.on {
            return;
        }
        self.mount_dev();
        mount(
            c"sysfs",
            &self.sys,
            c"sysfs",
            libc::MS_RDONLY | SECURE,
            None,
            c"mount sysfs",
        );
        for path in &self.masks {
            mask(path);
        }
        for path in &self.read_only {
            make_read_only(path);
        }
    }

    fn mount_dev(&self) {
        let tmpfs = c"mode=755,size=65536k";
        mount(
            c"tmpfs",
            &self.dev,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_STRICTATIME,
            Some(tmpfs),
            c"mount /dev",
        );
        for (node, host, number) in &self.nodes {
            if self.in_user_namespace {
                bind_host_device(node, host);
            } else {
                // SAFETY: a NUL-terminated path; mknod creates the node and reads nothing else.
                check(
                    unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, *number) },
                    node,
                );
                // SAFETY: as above; the umask would have taken bits of 0666 away.
                check(unsafe { libc::chmod(node.as_ptr(), 0o666) }, node);
            }
        }
        make_dir(&self.pts);
        let pts = c"newinstance,ptmxmode=0666,mode=0620";
        mount(
            c"devpts",
            &self.pts,
            c"devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(pts),
            c"mount devpts",
        );
        for (target, link) in &self.links {
            // SAFETY: two NUL-terminated paths.
            check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }, link);
        }
        make_dir(&self.shm);
        mount(
            c"shm",
            &self.shm,
            c"tmpfs",
            SECURE,
            Some(c"mode=1777,size=65536k"),
            c"mount /dev/shm",
        );
        make_dir(&self.mqueue);
        mount(c"mqueue", &self.mqueue, c"mqueue", SECURE, None, c"mount mqueue");
    }

    /// Step 3, after the pivot.
    pub fn after_pivot(&self) {
        if self.on {
            loopback_up();
        }
    }

    /// Steps 4 and 5: returns in the command's process, ready for execve.
    pub fn init_and_command(&self) {
        if !self.on {
            return;
        }
        become_init_of_command();
        reset_signals();
        // SAFETY: close_range takes integers: every descriptor from 3 on is closed at the execve.
        check(
            unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) },
            c"close the inherited descriptors",
        );
        keep_docker_caps();
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes no pointers.
        check(
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
            c"set no_new_privs",
        );
        let program = libc::sock_fprog {
            len: self.filter.len() as u16,
            filter: self.filter.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at the instructions in `self.filter`, alive for the call; the kernel
        // copies them and writes nothing back.
        let loaded = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        check(loaded as libc::c_int, c"load the seccomp filter");
    }
}

/// nosuid, nodev, noexec.
const SECURE: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

fn mount(source: &CStr, target: &CStr, fs: &CStr, flags: libc::c_ulong, data: Option<&CStr>, step: &CStr) {
    let data = data.map_or(std::ptr::null(), |d| d.as_ptr().cast());
    // SAFETY: NUL-terminated strings (or a null data pointer), alive for the call.
    check(
        unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fs.as_ptr(), flags, data) },
        step,
    );
}

fn bind(source: &CStr, target: &CStr, flags: libc::c_ulong, step: &CStr) {
    // SAFETY: two NUL-terminated paths; a bind takes no type or data.
    check(
        unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | flags,
                std::ptr::null(),
            )
        },
        step,
    );
}

fn make_dir(path: &CStr) {
    // SAFETY: a NUL-terminated path.
    check(unsafe { libc::mkdir(path.as_ptr(), 0o755) }, path);
}

/// An empty file in the container's /dev with the host's device bound over it.
fn bind_host_device(node: &CStr, host: &CStr) {
    // SAFETY: a NUL-terminated path; the descriptor is checked, then closed once.
    let fd = unsafe {
        libc::open(
            node.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o666,
        )
    };
    check(fd.min(0), node);
    // SAFETY: the descriptor opened above.
    unsafe { libc::close(fd) };
    bind(host, node, 0, node);
}

/// A directory under an empty read-only tmpfs, a file under /dev/null (the host's: the pivot is still
/// to come); a path this kernel or rootfs lacks is left alone.
fn mask(path: &CStr) {
    // SAFETY: an all-zero stat is a valid value, filled in by stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a stat buffer of the right type.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return;
    }
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount(
            c"tmpfs",
            path,
            c"tmpfs",
            libc::MS_RDONLY | SECURE,
            Some(c"size=0,mode=555"),
            path,
        );
    } else {
        bind(c"/dev/null", path, 0, path);
    }
}

/// A path bound onto itself (with what is mounted below it) and the bind remounted read-only, keeping
/// proc's nosuid, nodev and noexec (locked in a user namespace).
fn make_read_only(path: &CStr) {
    // SAFETY: a NUL-terminated path and a buffer of the right type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return;
    }
    bind(path, path, libc::MS_REC, path);
    bind(path, path, libc::MS_REMOUNT | libc::MS_RDONLY | SECURE, path);
}

/// `ip link set lo up` with the oldest interface for it: SIOCGIFFLAGS, IFF_UP, SIOCSIFFLAGS.
fn loopback_up() {
    // SAFETY: socket takes integers and returns a descriptor or -1.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(sock.min(0), c"open a socket for lo");
    // SAFETY: an all-zero ifreq is valid: an empty name and zero flags.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in request.ifr_name.iter_mut().zip(b"lo") {
        *to = *from as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills in the flags of the interface named in `request`.
    check(
        unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut request) },
        c"read lo's flags",
    );
    // SAFETY: the union's flags member, which SIOCGIFFLAGS just wrote.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and flags in `request`.
    check(
        unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &request) },
        c"bring lo up",
    );
    // SAFETY: the descriptor opened above, closed once.
    unsafe { libc::close(sock) };
}

/// Forks: the parent, PID 1 of the namespace, waits for the command and leaves with its status; the
/// child returns, to become the command.
fn become_init_of_command() {
    // SAFETY: fork in a single-threaded process; the child only makes system calls and execs.
    let pid = unsafe { libc::fork() };
    check(pid.min(0), c"fork the command");
    if pid == 0 {
        return;
    }
    let mut status = 0;
    // SAFETY: waitpid writes the status into the int it is given.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            exit_failed(c"init: waitpid");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    // SAFETY: _exit ends init at once.
    unsafe { libc::_exit(code) }
}

/// Every signal's action back to the default, and none blocked: what the launcher ignored (Rust's
/// runtime ignores SIGPIPE) would stay ignored across the execve (signal(7)). The kernel's
/// rt_sigaction(2), as combined calls it: glibc's refuses the real-time signals it keeps for itself.
fn reset_signals() {
    // The kernel's `struct sigaction` all zero: SIG_DFL, no flags, no restorer, an empty mask.
    let default = [0u64; 4];
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a live, zeroed kernel sigaction to read, no old action to write, an 8-byte mask.
        let set = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        check(set as libc::c_int, c"reset a signal's action");
    }
    // SAFETY: an all-zero sigset_t is a valid value; sigemptyset then makes it the empty set.
    let mut none: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset writes the set it is given, a live local.
    unsafe { libc::sigemptyset(&mut none) };
    // SAFETY: sigprocmask reads the set given; no old mask is asked for (null).
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) };
}

/// capset(2)'s header and data, version 3 (two 32-bit words of each set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability but [`KEPT_CAPS`] from the bounding set, then sets the process's sets to
/// them (capabilities(7)).
fn keep_docker_caps() {
    let kept = |cap: u32| KEPT_CAPS.contains(&cap);
    // Up to the kernel's last capability: PR_CAPBSET_DROP says EINVAL past it.
    for cap in (0..64).filter(|c| !kept(*c)) {
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes integers.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            exit_failed(c"drop a capability from the bounding set");
        }
    }
    let mut data = [CapData::default(); 2];
    for cap in KEPT_CAPS {
        let word = &mut data[(cap / 32) as usize];
        word.effective |= 1 << (cap % 32);
        word.permitted |= 1 << (cap % 32);
    }
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    // SAFETY: capset reads the header and two data structs of the layout capset(2) gives.
    let set = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    check(set as libc::c_int, c"set the capabilities");
}

/// Leaves with 125 and the step when a call failed (returned below zero).
fn check(rc: libc::c_int, step: &CStr) {
    if rc < 0 {
        exit_failed(step);
    }
}
