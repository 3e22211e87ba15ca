//! The escape tests' probe: run inside a container by `combined/tests/escape.rs`, it tries one way out
//! and prints what happened as `key=value` lines (`err:EPERM` for a refused system call, `ok` or a
//! value otherwise), for the test to assert on. It only ever tries: every attempt is a plain system
//! call whose refusal is the point. chroot(2), proc(5), mknod(2), init_module(2), capabilities(7),
//! pidfd_getfd(2), open_by_handle_at(2), TIOCSTI in ioctl_tty(2), keyctl(2), pidfd_send_signal(2),
//! renameat2(2) `RENAME_EXCHANGE`.
//!
//! `probe <what> [args]`; `what` is one of the functions in `main`.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "root" => root(&arg(1)),
        "pids" => pids(arg(1).parse().unwrap_or(0)),
        "ifaces" => ifaces(),
        "devices" => devices(&arg(1), arg(2).parse().unwrap_or(0), arg(3).parse().unwrap_or(0)),
        "mknod" => mknod_in(&args[1..]),
        "write" => write_kernel_files(),
        "module" => module(),
        "status" => status(),
        "regain" => regain(),
        "become" => become_and_exec(arg(1).parse().unwrap_or(0), &args[2..]),
        "masked" => masked(&args[1..]),
        "init" => init(arg(1).parse().unwrap_or(7)),
        "fds" => fds(),
        "tiocsti" => tiocsti(&arg(1)),
        "keys" => keys(&args[1..]),
        "forge" => forge(arg(1).parse().unwrap_or(0), &args[2..]),
        "swap" => swap(Path::new(&arg(1)), &arg(2), &arg(3)),
        "append" => append(&args[1..]),
        "late" => late(Path::new(&arg(1)), Path::new(&arg(2))),
        other => {
            eprintln!("probe: unknown probe {other:?}");
            std::process::exit(2);
        }
    }
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

/// `ok` or `err:<ERRNO>`.
fn outcome<T>(r: nix::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("err:{e:?}"),
    }
}

fn io_outcome<T>(r: std::io::Result<T>) -> String {
    outcome(r.map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))))
}

/// `<dev>:<ino>` of a path, or `err:<ERRNO>`.
fn identity(path: &str) -> String {
    match fs::metadata(path) {
        Ok(m) => format!("{}:{}", m.dev(), m.ino()),
        Err(e) => io_outcome::<()>(Err(e)),
    }
}

/// Escape 1: reach the host's root. `host_pid` is the test's PID on the host.
fn root(host_pid: &str) {
    say("container_root", identity("/"));
    say("usr_parent", identity("/usr/.."));
    say("proc_self_root", identity("/proc/self/root"));
    say("proc_self_root_parent", identity("/proc/self/root/.."));
    say("proc_1_root", identity("/proc/1/root"));
    say("proc_host_pid_root", identity(&format!("/proc/{host_pid}/root")));
    say("open_by_handle_at", open_by_handle());
    // The classic chroot escape: chroot into a subdirectory while the cwd stays outside it, climb
    // with "..", and chroot to where the climb ended. It must end at the container's own root.
    say("mkdir", io_outcome(fs::create_dir_all("/tmp/escape")));
    say("chroot", outcome(nix::unistd::chroot("/tmp/escape")));
    for _ in 0..64 {
        let _ = nix::unistd::chdir("..");
    }
    say("chroot_dot", outcome(nix::unistd::chroot(".")));
    say("escaped_root", identity("/"));
    let entries: Vec<String> = fs::read_dir("/")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    say("escaped_root_entries", entries.join(","));
}

/// The "shocker" exploit: open_by_handle_at with a handle for inode 2 (an ext4 root) on the
/// filesystem of /usr, which is the host's root filesystem in the default rootfs.
fn open_by_handle() -> String {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        ino: u32,
        generation: u32,
    }
    let Ok(mount_fd) = open(
        "/usr",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return "err:no /usr".into();
    };
    // FILEID_INO32_GEN: a 32-bit inode number and a generation.
    let mut handle = Handle {
        bytes: 8,
        kind: 1,
        ino: 2,
        generation: 0,
    };
    // SAFETY: `handle` is a valid struct file_handle with 8 bytes of f_handle, living across the
    // call; the kernel only reads it. The returned fd, if any, is closed right after.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd.as_raw_fd(),
            &mut handle as *mut Handle,
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
    };
    if rc >= 0 {
        // SAFETY: rc is a descriptor the kernel just gave this process, closed once.
        unsafe { libc::close(rc as RawFd) };
        "ok".into()
    } else {
        format!("err:{:?}", Errno::last())
    }
}

/// The PIDs /proc shows.
fn visible_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort();
    pids
}

/// Escape 2: see or signal the host's processes.
fn pids(host_pid: i32) {
    let list: Vec<String> = visible_pids().iter().map(i32::to_string).collect();
    say("pids", list.join(","));
    say("self", std::process::id());
    say(
        "comm_1",
        fs::read_to_string("/proc/1/comm").unwrap_or_default().trim(),
    );
    say(
        "proc_host_pid",
        io_outcome(fs::metadata(format!("/proc/{host_pid}"))),
    );
    say(
        "kill_host_pid",
        outcome(nix::sys::signal::kill(nix::unistd::Pid::from_raw(host_pid), None)),
    );
}

/// Escape 3: see the host's network interfaces.
fn ifaces() {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    say("sys_class_net", names.join(","));
    // /proc/net/dev: two header lines, then `name: counters`.
    let mut dev: Vec<String> = fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split(':').next()?.trim().to_owned()))
        .collect();
    dev.sort();
    say("proc_net_dev", dev.join(","));
}

/// Escape 4: reach the host's root block device `path` (major:minor), by node or by mount.
fn devices(path: &str, major: u64, minor: u64) {
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    say("node", io_outcome(fs::metadata(format!("/dev/{name}"))));
    let blocks: Vec<String> = fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                e.file_type()
                    .ok()?
                    .is_block_device()
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    say("block_devices", blocks.join(","));
    let dev = makedev(major, minor);
    let rw = Mode::from_bits_truncate(0o600);
    say(
        "mknod_dev",
        outcome(mknod("/dev/escape", SFlag::S_IFBLK, rw, dev)),
    );
    say(
        "mknod_tmp",
        outcome(mknod("/tmp/escape", SFlag::S_IFBLK, rw, dev)),
    );
    let _ = fs::create_dir_all("/tmp/mnt");
    for fs_type in ["ext4", "xfs", "btrfs"] {
        let r = mount(
            Some(path),
            "/tmp/mnt",
            Some(fs_type),
            MsFlags::MS_RDONLY,
            None::<&str>,
        );
        say(&format!("mount_{fs_type}"), outcome(r));
    }
    let tmpfs = mount(
        Some("tmpfs"),
        "/tmp/mnt",
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    );
    say("mount_tmpfs", outcome(tmpfs));
    let proc = mount(
        Some("proc"),
        "/tmp/mnt",
        Some("proc"),
        MsFlags::empty(),
        None::<&str>,
    );
    say("mount_proc", outcome(proc));
    let bind = mount(
        Some("/"),
        "/tmp/mnt",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    say("mount_bind", outcome(bind));
    let remount = mount(
        None::<&str>,
        "/sys",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
        None::<&str>,
    );
    say("remount_sys_rw", outcome(remount));
    say("umount_proc_keys", outcome(nix::mount::umount("/proc/keys")));
}

/// Escape 8: make a device node (/dev/zero's numbers, harmless if it did open) in each of `dirs`,
/// and open it.
fn mknod_in(dirs: &[String]) {
    for dir in dirs {
        let node = Path::new(dir).join("escape-zero");
        let made = mknod(
            &node,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 5),
        );
        say(&format!("mknod:{dir}"), outcome(made));
        say(
            &format!("open:{dir}"),
            outcome(open(&node, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())),
        );
    }
}

/// Escape 5: write the kernel's settings in /proc/sys and /sys.
fn write_kernel_files() {
    for path in [
        "/proc/sys/kernel/hostname",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/vm/drop_caches",
        "/proc/sysrq-trigger",
        "/sys/class/net/lo/mtu",
        "/sys/kernel/uevent_helper",
    ] {
        let r = fs::OpenOptions::new().write(true).open(path);
        say(&format!("write:{path}"), io_outcome(r));
    }
    say("mkdir:/sys/escape", io_outcome(fs::create_dir("/sys/escape")));
}

/// Escape 6: load a kernel module.
fn module() {
    let image = [0u8; 64];
    let params = CString::default();
    // SAFETY: init_module reads `image.len()` bytes from `image` and a NUL-terminated `params`, both
    // alive across the call. The image is not a module: a permitted call would fail with ENOEXEC.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            params.as_ptr(),
        )
    };
    say(
        "init_module",
        if rc == 0 {
            "ok".into()
        } else {
            format!("err:{:?}", Errno::last())
        },
    );
    let file = fs::File::open("/proc/self/exe").expect("open /proc/self/exe");
    // SAFETY: finit_module reads the open descriptor and the NUL-terminated `params`; no buffer is
    // written. The file is this probe, not a module.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    say(
        "finit_module",
        if rc == 0 {
            "ok".into()
        } else {
            format!("err:{:?}", Errno::last())
        },
    );
    status();
}

/// The identity and capability lines of /proc/self/status, and the effective uid.
fn status() {
    let text = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            if key.starts_with("Cap") || key == "NoNewPrivs" || key == "Uid" {
                say(key, value.trim());
            }
        }
    }
    say("euid", nix::unistd::geteuid());
}

/// Escape 7a: raise a dropped capability in place, with capset(2) and the ambient set.
fn regain() {
    let mut effective = caps::read(None, caps::CapSet::Effective).unwrap_or_default();
    effective.insert(caps::Capability::CAP_SYS_ADMIN);
    say(
        "capset_effective",
        caps_outcome(caps::set(None, caps::CapSet::Effective, &effective)),
    );
    let mut permitted = caps::read(None, caps::CapSet::Permitted).unwrap_or_default();
    permitted.insert(caps::Capability::CAP_SYS_ADMIN);
    say(
        "capset_permitted",
        caps_outcome(caps::set(None, caps::CapSet::Permitted, &permitted)),
    );
    let mut inheritable = caps::CapsHashSet::new();
    inheritable.insert(caps::Capability::CAP_SYS_ADMIN);
    say(
        "capset_inheritable",
        caps_outcome(caps::set(None, caps::CapSet::Inheritable, &inheritable)),
    );
    say(
        "ambient_raise",
        caps_outcome(caps::raise(
            None,
            caps::CapSet::Ambient,
            caps::Capability::CAP_SYS_ADMIN,
        )),
    );
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 0) takes no pointers; the kernel refuses to clear the flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    say(
        "clear_no_new_privs",
        if rc == 0 {
            "ok".into()
        } else {
            format!("err:{:?}", Errno::last())
        },
    );
    status();
}

fn caps_outcome(r: Result<(), caps::errors::CapsError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(_) => format!("err:{:?}", Errno::last()),
    }
}

/// Escape 7b: become `uid` (unless it is 0), then exec `argv` (a setuid-root or file-capability
/// copy of this probe, asked for `status`).
fn become_and_exec(uid: u32, argv: &[String]) {
    if uid != 0 {
        let id = nix::unistd::Uid::from_raw(uid);
        say("setuid", outcome(nix::unistd::setresuid(id, id, id)));
    }
    let argv: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_str()).expect("no NUL"))
        .collect();
    let env: [CString; 0] = [];
    let err = nix::unistd::execve(&argv[0], &argv, &env).unwrap_err();
    say("execve", format!("err:{err:?}"));
}

/// Escape 9: read the masked paths.
fn masked(paths: &[String]) {
    for path in paths {
        let value = match fs::symlink_metadata(path) {
            Err(e) => io_outcome::<()>(Err(e)),
            Ok(m) if m.is_dir() => match fs::read_dir(path) {
                Ok(d) => format!("dir:{}", d.count()),
                Err(e) => io_outcome::<()>(Err(e)),
            },
            Ok(m) => {
                let kind = if m.file_type().is_char_device() {
                    format!(
                        "chr{}:{}",
                        nix::sys::stat::major(m.rdev()),
                        nix::sys::stat::minor(m.rdev())
                    )
                } else {
                    "file".into()
                };
                match fs::read(path) {
                    Ok(bytes) => format!("{kind}:{}", bytes.len()),
                    Err(e) => format!("{kind}:{}", io_outcome::<()>(Err(e))),
                }
            }
        };
        say(&format!("masked:{path}"), value);
    }
}

/// Escape 10: reach PID 1's binary (the launcher, CVE-2019-5736) and its descriptors (`fd` is one
/// the launcher inherited).
fn init(fd: i32) {
    say("self", std::process::id());
    say(
        "comm_1",
        fs::read_to_string("/proc/1/comm").unwrap_or_default().trim(),
    );
    say("open_exe", io_outcome(fs::File::open("/proc/1/exe")));
    say(
        "readlink_exe",
        match fs::read_link("/proc/1/exe") {
            Ok(target) => target.display().to_string(),
            Err(e) => io_outcome::<()>(Err(e)),
        },
    );
    say("open_self_exe", io_outcome(fs::File::open("/proc/self/exe")));
    say("read_fd_dir", io_outcome(fs::read_dir("/proc/1/fd")));
    say("open_fd", io_outcome(fs::File::open(format!("/proc/1/fd/{fd}"))));
    say("exe_identity", identity("/proc/1/exe"));
    // What init, a copy of the launcher, shows of the launcher's command line and environment.
    let shown =
        |file: &str| fs::read(format!("/proc/1/{file}")).map(|b| String::from_utf8_lossy(&b).into_owned());
    say(
        "cmdline_1",
        shown("cmdline")
            .map(|c| c.replace('\0', " ").trim().to_owned())
            .unwrap_or_else(|e| io_outcome::<()>(Err(e))),
    );
    say(
        "environ_1_has_mark",
        shown("environ")
            .map(|e| e.contains("COMBINED_TEST_MARK").to_string())
            .unwrap_or_else(|e| io_outcome::<()>(Err(e))),
    );
    let status = fs::read_to_string("/proc/1/status").unwrap_or_default();
    let seccomp = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .unwrap_or("missing");
    say("init_seccomp", seccomp.trim());
    let cap_eff = |status: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap_or("missing")
            .trim()
            .to_owned()
    };
    say("init_caps", cap_eff(&status));
    say(
        "own_caps",
        cap_eff(&fs::read_to_string("/proc/self/status").unwrap_or_default()),
    );
    say(
        "write_exe",
        io_outcome(fs::OpenOptions::new().write(true).open("/proc/1/exe")),
    );
    say("open_mem", io_outcome(fs::File::open("/proc/1/mem")));
    say("pidfd_getfd", pidfd_getfd(fd));
}

/// pidfd_open(1) then pidfd_getfd(pidfd, fd): taking a descriptor from PID 1.
fn pidfd_getfd(fd: i32) -> String {
    // SAFETY: pidfd_open takes a PID and flags, no pointers; the result is a new descriptor.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, 1, 0) };
    if pidfd < 0 {
        return format!("err:pidfd_open:{:?}", Errno::last());
    }
    // SAFETY: pidfd_getfd takes descriptors and flags, no pointers; a returned descriptor is closed.
    let stolen = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
    let result = if stolen >= 0 {
        // SAFETY: a descriptor the kernel just gave this process, closed once.
        unsafe { libc::close(stolen as RawFd) };
        "ok".into()
    } else {
        format!("err:{:?}", Errno::last())
    };
    // SAFETY: pidfd is this process's own descriptor, closed once.
    unsafe { libc::close(pidfd as RawFd) };
    result
}

/// Escape 11: the descriptors this process holds, but for the one reading /proc/self/fd.
fn fds() {
    let reader = format!("/proc/{}/fd", std::process::id());
    let mut list: Vec<i32> = Vec::new();
    // Links are read while the directory is open, so the reader's own descriptor is recognised by
    // its target.
    for entry in fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(Result::ok)
    {
        let target = fs::read_link(entry.path()).unwrap_or_default();
        if target == Path::new(&reader) {
            continue;
        }
        if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            list.push(fd);
        }
    }
    list.sort();
    let list: Vec<String> = list.iter().map(i32::to_string).collect();
    say("fds", list.join(","));
    say("fd_7", io_outcome(fs::metadata("/proc/self/fd/7")));
}

/// Escape 12: push `text` into a terminal's input queue (TIOCSTI), where the host's shell would read it
/// after the container exits: through stdin, and through /dev/tty, the process's controlling terminal.
fn tiocsti(text: &str) {
    say(
        "stdin_tty",
        nix::unistd::isatty(std::io::stdin()).map_or("err".into(), |t| t.to_string()),
    );
    say("tiocsti_stdin", inject(0, text));
    match open("/dev/tty", OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty()) {
        Ok(tty) => {
            say("open_dev_tty", "ok");
            say("tiocsti_dev_tty", inject(tty.as_raw_fd(), text));
        }
        Err(e) => say("open_dev_tty", format!("err:{e:?}")),
    }
}

/// TIOCSTI once per byte of `text`; the first refusal ends it.
fn inject(fd: RawFd, text: &str) -> String {
    for byte in text.bytes() {
        // SAFETY: TIOCSTI reads one byte from the pointer, which points at a live local byte.
        if unsafe { libc::ioctl(fd, libc::TIOCSTI, &byte) } != 0 {
            return format!("err:{:?}", Errno::last());
        }
    }
    "ok".into()
}

/// Escape 13: the host's keys. `keys <id>...` tries to read each key (KEYCTL_READ), directly and after
/// linking the user keyring into the session keyring, which makes its keys possessed.
fn keys(ids: &[String]) {
    say(
        "session_keyring",
        keyctl(
            libc::KEYCTL_GET_KEYRING_ID,
            libc::KEY_SPEC_SESSION_KEYRING as _,
            0,
        ),
    );
    for id in ids {
        let id: libc::c_long = id.parse().unwrap_or(0);
        say(&format!("read:{id}"), keyctl(libc::KEYCTL_READ, id, 0));
    }
    say(
        "link_user_keyring",
        keyctl(
            libc::KEYCTL_LINK,
            libc::KEY_SPEC_USER_KEYRING as _,
            libc::KEY_SPEC_SESSION_KEYRING as libc::c_long,
        ),
    );
    for id in ids {
        let id: libc::c_long = id.parse().unwrap_or(0);
        say(&format!("read_linked:{id}"), keyctl(libc::KEYCTL_READ, id, 0));
    }
    say("add_key", add_key());
}

/// keyctl(operation, a, b) with no buffer: the number it returns, or `err:<ERRNO>`.
fn keyctl(operation: u32, a: libc::c_long, b: libc::c_long) -> String {
    // SAFETY: the operations used here take integer arguments only (KEYCTL_READ with a null buffer
    // and length 0 just returns the payload's size).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::c_long::from(operation),
            a,
            b,
            0usize,
            0usize,
        )
    };
    if rc < 0 {
        format!("err:{:?}", Errno::last())
    } else {
        rc.to_string()
    }
}

/// add_key(2) of a `user` key to the session keyring.
fn add_key() -> String {
    let (kind, name, payload) = (c"user", c"probe", b"x");
    // SAFETY: type and description are NUL-terminated strings that outlive the call; the payload
    // pointer and length describe a live byte array.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            kind.as_ptr(),
            name.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            libc::KEY_SPEC_SESSION_KEYRING as libc::c_long,
        )
    };
    if rc < 0 {
        format!("err:{:?}", Errno::last())
    } else {
        "ok".into()
    }
}

/// An attacker in a container allowed to ptrace (the test starts it with `exec --detach`): catches
/// each new process in its PID namespace as it appears (pidfd_open on the next PIDs, in a busy loop),
/// stops it, notes in `/leaks` any of `secrets` its environment or command line shows, and writes into
/// every socket it holds a reply naming `victim`, a host PID, as the process `exec` started; then lets
/// it go on. Runs until killed, saying each PID it caught.
fn forge(victim: i32, secrets: &[String]) {
    let forged = format!("{{\"Ok\":{victim}}}\n");
    let mut next = std::process::id() as i32 + 1;
    loop {
        let (pid, pidfd) = next_process(next);
        // SAFETY: pidfd_send_signal takes a pidfd, a signal and a null siginfo; no memory is shared.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGSTOP, 0, 0) };
        note_leaks(pid, secrets);
        let mut sent = 0;
        for fd in 3..64 {
            // SAFETY: pidfd_getfd takes descriptors and flags, no pointers; a returned descriptor is
            // this process's own, closed below.
            let stolen = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) } as RawFd;
            if stolen < 0 {
                continue;
            }
            let is_socket =
                fs::metadata(format!("/proc/self/fd/{stolen}")).is_ok_and(|m| m.file_type().is_socket());
            let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
            // SAFETY: send reads `forged.len()` bytes from a live string.
            if is_socket && unsafe { libc::send(stolen, forged.as_ptr().cast(), forged.len(), flags) } > 0 {
                sent += 1;
            }
            // SAFETY: the descriptor taken above, closed once.
            unsafe { libc::close(stolen) };
        }
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGCONT, 0, 0) };
        // SAFETY: this process's own pidfd, closed once.
        unsafe { libc::close(pidfd) };
        eprintln!("forge: pid {pid}: {sent} forged replies");
        next = pid + 1;
    }
}

/// Waits (spinning) for a process with one of the PIDs from `first` on; returns it and a pidfd of it.
fn next_process(first: i32) -> (i32, RawFd) {
    loop {
        for pid in first..first + 4 {
            // SAFETY: pidfd_open takes a PID and flags, no pointers; the result is a new descriptor.
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
            if pidfd >= 0 {
                return (pid, pidfd as RawFd);
            }
        }
    }
}

/// Appends to `/leaks` each of `secrets` that process `pid`'s environment or command line shows.
fn note_leaks(pid: i32, secrets: &[String]) {
    for file in ["environ", "cmdline"] {
        let shown = fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
        let shown = String::from_utf8_lossy(&shown);
        for secret in secrets.iter().filter(|s| shown.contains(s.as_str())) {
            let line = format!("pid {pid} {file}: {secret}\n");
            let _ = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open("/leaks")
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        }
    }
}

/// In `dir`, exchanges the names `a` and `b` (a directory and a link, say) as fast as it can, for a
/// container sharing `dir` that is being set up meanwhile: the race of runc's CVE-2021-30465, where a
/// mount target looked up twice is a directory the first time and the link the second. Writes
/// `dir/swapping` once it has begun, and stops when `dir/stop` appears (or after two minutes).
fn swap(dir: &Path, a: &str, b: &str) {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    let (a, b, stop) = (dir.join(a), dir.join(b), dir.join("stop"));
    let begun = std::time::Instant::now();
    let mut swaps = 0u64;
    while !stop.exists() && begun.elapsed() < std::time::Duration::from_secs(120) {
        for _ in 0..100 {
            if renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE).is_ok() {
                swaps += 1;
            }
        }
        if swaps > 0 && !dir.join("swapping").exists() {
            let _ = fs::write(dir.join("swapping"), "");
        }
    }
    say("swaps", swaps);
}

/// Appends a line to each of `files` (creating it if need be): `append:<file>=ok` or the errno.
fn append(files: &[String]) {
    use std::io::Write;
    for file in files {
        let written = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
            .and_then(|mut f| f.write_all(b"written from a container\n"));
        say(&format!("append:{file}"), io_outcome(written));
    }
}

/// Says `started` in `sync`, then waits up to a second for a file `ready` beside `file` (a mount the
/// host makes there meanwhile would bring it), and appends to `file` if it came: `late=absent`, or
/// `late=<ok or errno>`.
fn late(sync: &Path, file: &Path) {
    let _ = fs::write(sync.join("started"), "");
    let ready = file.with_file_name("ready");
    let begun = std::time::Instant::now();
    while !ready.exists() {
        if begun.elapsed() > std::time::Duration::from_secs(1) {
            say("late", "absent");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    use std::io::Write;
    let written = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .and_then(|mut f| f.write_all(b"written from a container\n"));
    say("late", io_outcome(written));
}
