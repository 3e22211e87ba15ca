//! `bench-floor`: the least any container launcher can do, so that `cargo xtask bench` can say how far
//! each launcher is from it. namespaces(7), clone(2), pivot_root(2), proc(5), wait(2).
//!
//! ```text
//! bench-floor [--ns user,pid,mnt,uts,ipc,net | --ns none] [--rootfs DIR] [PROTECTIONS] -- CMD [ARG...]
//! ```
//!
//! The parent makes one `clone` call with the `CLONE_NEW*` flags (fork semantics: no stack of its own)
//! and waits. The child, with `--rootfs`: writes its own id maps when it has a new user namespace
//! (the one-line map `unshare --map-root-user` writes), makes every mount private, binds the rootfs
//! onto itself, mounts a fresh proc in it (before the pivot: in a user namespace the kernel wants a
//! fully visible proc in the mount namespace), `pivot_root(".", ".")`, detaches the old root, and
//! execs the command. There is no sync channel, no option parser, no allocation after the clone, no
//! /dev, no loopback: whatever a launcher spends beyond this is its own.
//!
//! The protections (`--protect`) add, in the same straight line and with no more than their system
//! calls, the kernel work of what `combined run` does by default, so that the benchmark can say how
//! much of a launcher's time is that work and how much the launcher's own (`protect.rs`).
//!
//! Exit status: the command's (or 128 + signal); 125 when a step fails, with the step on stderr.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

mod protect;

use protect::Protect;

/// What to do, parsed from the command line before the clone.
struct Floor {
    flags: libc::c_int,
    rootfs: Option<CString>,
    proc_dir: Option<CString>,
    maps: Option<[(CString, CString); 3]>,
    protect: Protect,
    argv: Vec<CString>,
}

const USAGE: &str = "usage: bench-floor [--ns user,pid,mnt,uts,ipc,net|none] [--rootfs DIR] \
                     [--protect --seccomp FILE --mask PATH... --read-only PATH...] -- CMD [ARG...]";

fn main() -> ExitCode {
    let floor = match parse(std::env::args_os().skip(1).collect()) {
        Ok(floor) => floor,
        Err(message) => {
            eprintln!("bench-floor: {message}\n{USAGE}");
            return ExitCode::from(125);
        }
    };
    ExitCode::from(run(&floor))
}

fn parse(args: Vec<std::ffi::OsString>) -> Result<Floor, String> {
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET;
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        flags |= libc::CLONE_NEWUSER;
    }
    let mut rootfs = None;
    let mut rest = args.into_iter();
    let mut argv = Vec::new();
    let mut protect = protect::Options::default();
    while let Some(arg) = rest.next() {
        match arg.as_bytes() {
            b"--ns" => flags = namespaces(&rest.next().ok_or("--ns needs a list")?.to_string_lossy())?,
            b"--rootfs" => rootfs = Some(PathBuf::from(rest.next().ok_or("--rootfs needs a directory")?)),
            b"--protect" => protect.on = true,
            b"--seccomp" => {
                protect.seccomp = Some(PathBuf::from(rest.next().ok_or("--seccomp needs a file")?))
            }
            b"--mask" => protect.masks.push(rest.next().ok_or("--mask needs a path")?),
            b"--read-only" => protect
                .read_only
                .push(rest.next().ok_or("--read-only needs a path")?),
            b"--" => {
                argv = rest
                    .by_ref()
                    .map(|a| cstring(a.as_bytes()))
                    .collect::<Result<_, _>>()?;
            }
            other => {
                return Err(format!(
                    "unexpected argument {:?}",
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    if argv.is_empty() {
        return Err("no command".into());
    }
    if rootfs.is_some() && flags & libc::CLONE_NEWNS == 0 {
        return Err("--rootfs needs the mount namespace".into());
    }
    let maps = (flags & libc::CLONE_NEWUSER != 0).then(own_maps).transpose()?;
    let protect = protect.prepare(rootfs.as_deref(), flags)?;
    let proc_dir = rootfs
        .as_ref()
        .map(|r| cstring(r.join("proc").as_os_str().as_bytes()))
        .transpose()?;
    Ok(Floor {
        flags,
        rootfs: rootfs.map(|r| cstring(r.as_os_str().as_bytes())).transpose()?,
        proc_dir,
        maps,
        protect,
        argv,
    })
}

/// `user,pid,mnt,uts,ipc,net` (any subset) or `none`, as clone flags.
fn namespaces(list: &str) -> Result<libc::c_int, String> {
    let mut flags = 0;
    for name in list.split(',').filter(|n| !n.is_empty() && *n != "none") {
        flags |= match name {
            "user" => libc::CLONE_NEWUSER,
            "pid" => libc::CLONE_NEWPID,
            "mnt" => libc::CLONE_NEWNS,
            "uts" => libc::CLONE_NEWUTS,
            "ipc" => libc::CLONE_NEWIPC,
            "net" => libc::CLONE_NEWNET,
            other => return Err(format!("unknown namespace {other:?}")),
        };
    }
    Ok(flags)
}

pub(crate) fn cstring(bytes: &[u8]) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| "an argument contains a NUL byte".to_owned())
}

/// The files and contents that map this user's uid and gid to root in a new user namespace, written
/// by the child itself (user_namespaces(7): one line mapping the writer's own id needs no privilege,
/// once setgroups is denied).
fn own_maps() -> Result<[(CString, CString); 3], String> {
    // SAFETY: getuid and getgid take no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };
    // SAFETY: as above.
    let gid = unsafe { libc::getgid() };
    Ok([
        (cstring(b"/proc/self/setgroups")?, cstring(b"deny")?),
        (
            cstring(b"/proc/self/uid_map")?,
            cstring(format!("0 {uid} 1").as_bytes())?,
        ),
        (
            cstring(b"/proc/self/gid_map")?,
            cstring(format!("0 {gid} 1").as_bytes())?,
        ),
    ])
}

/// Clones, and in the parent waits and returns the child's status.
fn run(floor: &Floor) -> u8 {
    let argv: Vec<*const libc::c_char> = floor
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: clone with a null stack has fork semantics: the child gets a copy of this (single-threaded)
    // process and returns from the call on its copy of the stack.
    let pid = unsafe { libc::syscall(libc::SYS_clone, floor.flags | libc::SIGCHLD, 0, 0, 0, 0) };
    if pid < 0 {
        return fail(c"clone");
    }
    if pid == 0 {
        child(floor, &argv);
    }
    let mut status = 0;
    // SAFETY: waitpid writes the status into the int it is given.
    while unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) } < 0 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return fail(c"waitpid");
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else {
        (128 + libc::WTERMSIG(status)) as u8
    }
}

/// The child: maps, mounts, pivot, exec. Never returns.
fn child(floor: &Floor, argv: &[*const libc::c_char]) -> ! {
    if let Some(maps) = &floor.maps {
        for (file, content) in maps {
            write_file(file, content);
        }
    }
    floor.protect.before_mounts();
    if let (Some(rootfs), Some(proc_dir)) = (&floor.rootfs, &floor.proc_dir) {
        enter_rootfs(
            rootfs,
            proc_dir,
            floor.flags & libc::CLONE_NEWPID != 0,
            &floor.protect,
        );
    }
    floor.protect.after_pivot();
    floor.protect.init_and_command();
    // SAFETY: argv is a null-terminated array of pointers to the NUL-terminated strings in floor.argv,
    // which live until the exec replaces this process.
    unsafe { libc::execv(argv[0], argv.as_ptr()) };
    exit_failed(c"execv")
}

fn enter_rootfs(rootfs: &CStr, proc_dir: &CStr, new_pid_ns: bool, protect: &Protect) {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: mount with a null source, type and data changes the propagation of "/" only.
    if unsafe {
        libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } != 0
    {
        exit_failed(c"make / private");
    }
    // SAFETY: both paths are NUL-terminated strings; a bind mount takes no data.
    if unsafe {
        libc::mount(
            rootfs.as_ptr(),
            rootfs.as_ptr(),
            null,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    } != 0
    {
        exit_failed(c"bind the rootfs");
    }
    protect.rootfs_bound(rootfs);
    if new_pid_ns {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: NUL-terminated strings; proc takes no data.
        if unsafe {
            libc::mount(
                c"proc".as_ptr(),
                proc_dir.as_ptr(),
                c"proc".as_ptr(),
                flags,
                std::ptr::null(),
            )
        } != 0
        {
            exit_failed(c"mount proc");
        }
    }
    protect.mounts();
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::chdir(rootfs.as_ptr()) } != 0 {
        exit_failed(c"chdir into the rootfs");
    }
    // SAFETY: pivot_root(".", "."): two NUL-terminated paths (pivot_root(2), NOTES).
    if unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } != 0 {
        exit_failed(c"pivot_root");
    }
    // SAFETY: a NUL-terminated path; MNT_DETACH unmounts the old root stacked on "." lazily.
    if unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) } != 0 {
        exit_failed(c"detach the old root");
    }
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        exit_failed(c"chdir /");
    }
}

fn write_file(path: &CStr, content: &CStr) {
    // SAFETY: a NUL-terminated path; the returned descriptor is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        exit_failed(path);
    }
    let bytes = content.to_bytes();
    // SAFETY: writes `bytes.len()` bytes from a live slice to an open descriptor.
    if unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) } != bytes.len() as isize {
        exit_failed(path);
    }
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
}

/// Says which step failed (perror(3)) and leaves with 125; used in the child after the clone.
pub(crate) fn exit_failed(step: &CStr) -> ! {
    // SAFETY: perror reads a NUL-terminated string and errno.
    unsafe { libc::perror(step.as_ptr()) };
    // SAFETY: _exit ends this process at once, without running the parent's atexit handlers twice.
    unsafe { libc::_exit(125) }
}

fn fail(step: &CStr) -> u8 {
    // SAFETY: perror reads a NUL-terminated string and errno.
    unsafe { libc::perror(step.as_ptr()) };
    125
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespace_lists() {
        assert_eq!(namespaces("none"), Ok(0));
        assert_eq!(namespaces("pid,net"), Ok(libc::CLONE_NEWPID | libc::CLONE_NEWNET));
        assert!(namespaces("pid,cgroup").is_err());
    }

    #[test]
    fn refuses_a_rootfs_without_a_mount_namespace() {
        let args = ["--ns", "pid", "--rootfs", "/tmp", "--", "/bin/true"]
            .map(Into::into)
            .to_vec();
        assert!(parse(args).is_err());
        assert!(parse(vec!["--ns".into(), "pid".into()]).is_err(), "no command");
    }
}
