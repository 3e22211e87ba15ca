//! Building a container's mount tree, step by step, the way the production runtimes do (mount(2),
//! mount_namespaces(7), pivot_root(2), proc(5), sysfs(5), devpts in pts(4), mq_overview(7)).
//!
//! These are the pieces the launcher (`combined`) calls, in this order, in a child that already has
//! its own mount namespace:
//! 1. [`isolate_root`]: make every mount private or slave, so nothing that follows leaks to the host;
//! 2. [`bind_rootfs`]: turn the rootfs directory into a mount point, which pivot_root requires;
//! 3. [`mount_proc`], [`mount_dev`], [`mount_mqueue`], [`mount_sysfs_readonly`] inside it;
//! 4. [`pivot_into`]: make it `/`, then detach the old root, so no path leads back to the host;
//! 5. [`mask_paths`] and [`readonly_paths`] over the parts of /proc and /sys a container must not touch.
//!
//! Every mount target inside the rootfs is resolved with [`resolve_in_root`] and mounted onto through
//! `/proc/self/fd/<n>`, so a symlink in the rootfs can never redirect a mount onto the host.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstat, makedev, mknodat};
use nix::unistd::{chdir, fchdir, pivot_root, symlinkat};

use crate::resolve::{
    OpenedRoot, ResolveError, ensure_dir_in_root, fd_path, resolve_in_root, resolve_mounted,
};

/// Which step failed, on which path, and why.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{step} {path}: {errno}")]
    Sys {
        step: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{step}: {source}")]
    Resolve {
        step: &'static str,
        #[source]
        source: ResolveError,
    },
    /// `/dev/null` is not the null device (in a container without a /dev of its own, a link the rootfs
    /// planted, to a file of /proc say): binding it over a masked path would make that path another
    /// name for the file, writable.
    #[error(
        "mask {path}: /dev/null is not the null device (character device 1:3), so it is not bound over \
         the path; give the container a /dev of its own (a tmpfs at /dev) or a real /dev/null"
    )]
    NotNullDevice { path: PathBuf },
}

impl MountError {
    /// The errno behind the failure.
    pub fn errno(&self) -> Errno {
        match self {
            MountError::Sys { errno, .. } => *errno,
            MountError::Resolve { source, .. } => source.errno(),
            MountError::NotNullDevice { .. } => Errno::EPERM,
        }
    }

    /// The error of `step` on `path`, for `map_err`: the path is copied into it only if the step
    /// fails, not on every success (a container's set-up makes a hundred such steps).
    fn sys<'a, P: AsRef<Path> + ?Sized>(
        step: &'static str,
        path: &'a P,
    ) -> impl FnOnce(Errno) -> MountError + 'a {
        move |errno| MountError::Sys {
            step,
            path: path.as_ref().to_path_buf(),
            errno,
        }
    }

    /// [`MountError::sys`] on `path` inside `root`, joined only if the step fails.
    fn sys_in<'a>(
        step: &'static str,
        root: &'a Path,
        path: &'a str,
    ) -> impl FnOnce(Errno) -> MountError + 'a {
        move |errno| MountError::Sys {
            step,
            path: root.join(path.trim_start_matches('/')),
            errno,
        }
    }

    fn resolve(step: &'static str) -> impl FnOnce(ResolveError) -> MountError {
        move |source| MountError::Resolve { step, source }
    }
}

/// A mount's propagation type (mount_namespaces(7), "Shared subtrees").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Propagation {
    /// Mount and unmount events propagate both ways among the mount's peers.
    Shared,
    /// No events in or out.
    Private,
    /// Events come in from the master's peer group; none go out.
    Slave,
    /// Private, and it cannot be the source of a bind mount.
    Unbindable,
}

impl Propagation {
    pub const ALL: [Propagation; 4] = [
        Propagation::Shared,
        Propagation::Private,
        Propagation::Slave,
        Propagation::Unbindable,
    ];

    /// The `MS_*` flag that sets it.
    pub fn flag(self) -> MsFlags {
        match self {
            Propagation::Shared => MsFlags::MS_SHARED,
            Propagation::Private => MsFlags::MS_PRIVATE,
            Propagation::Slave => MsFlags::MS_SLAVE,
            Propagation::Unbindable => MsFlags::MS_UNBINDABLE,
        }
    }

    /// The name mount(8) uses.
    pub fn name(self) -> &'static str {
        match self {
            Propagation::Shared => "shared",
            Propagation::Private => "private",
            Propagation::Slave => "slave",
            Propagation::Unbindable => "unbindable",
        }
    }
}

// ANCHOR: set_propagation
/// Changes the propagation type of the mount at `path` (and, with `recursive`, of every mount below
/// it: MS_REC). Only the propagation flag may be given: source, type and data are ignored.
pub fn set_propagation(path: &Path, propagation: Propagation, recursive: bool) -> Result<(), MountError> {
    let mut flags = propagation.flag();
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(MountError::sys("set propagation of", path))
}
// ANCHOR_END: set_propagation

// ANCHOR: isolate_root
/// Step 1 of every container: `mount --make-rprivate /` (or `--make-rslave`). A new mount namespace
/// starts with *copies* of the parent's mounts, and a copy of a shared mount is in the same peer group
/// as the original: a mount made under it would appear on the host. systemd makes `/` shared, so
/// skipping this is the classic leak. `Slave` still lets later host mounts (a USB stick) show up
/// inside; `Private` cuts both ways.
pub fn isolate_root(propagation: Propagation) -> Result<(), MountError> {
    debug_assert!(matches!(propagation, Propagation::Private | Propagation::Slave));
    set_propagation(Path::new("/"), propagation, true)
}
// ANCHOR_END: isolate_root

// ANCHOR: bind_rootfs
/// Bind-mounts `rootfs` onto itself (MS_BIND|MS_REC): pivot_root needs the new root to be a mount
/// point, and a plain directory is not one (EINVAL).
pub fn bind_rootfs(rootfs: &Path) -> Result<(), MountError> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(MountError::sys("bind the rootfs onto itself at", rootfs))
}
// ANCHOR_END: bind_rootfs

// ANCHOR: pivot_into
/// Makes `rootfs` the root of this mount namespace and detaches the old root, so that no path, not
/// even `..` from a chroot, leads back to the host's files.
///
/// `pivot_root(".", ".")` (pivot_root(2), NOTES) stacks the old root on top of the new one at `/`; it
/// is then made a slave, so that unmounting it cannot propagate an unmount to the host, and detached
/// lazily (MNT_DETACH: files still open there keep it alive, invisible).
pub fn pivot_into(rootfs: &Path) -> Result<(), MountError> {
    let dir = File::open(rootfs).map_err(|e| MountError::Sys {
        step: "open the new root",
        path: rootfs.to_owned(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    fchdir(dir.as_fd()).map_err(MountError::sys("chdir into the new root", rootfs))?;
    pivot_root(".", ".").map_err(MountError::sys("pivot_root into", rootfs))?;
    set_propagation(Path::new("."), Propagation::Slave, true)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(MountError::sys("detach the old root", "/"))?;
    chdir("/").map_err(MountError::sys("chdir to the new", "/"))
}
// ANCHOR_END: pivot_into

/// Mounts a filesystem onto `path` inside `root`, resolved without leaving `root`; missing
/// directories are created. The mount's source (the first field of /proc/self/mounts, free text for
/// these filesystems) is the type's name.
fn mount_in_root(
    step: &'static str,
    root: &Path,
    path: &str,
    fs_type: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    let target = ensure_dir_in_root(root, Path::new(path)).map_err(MountError::resolve(step))?;
    mount(Some(fs_type), &fd_path(&target), Some(fs_type), flags, data)
        .map_err(MountError::sys_in(step, root, path))
}

/// A filesystem to mount fresh, as [`mount_new`] takes it.
struct NewMount<'a> {
    /// Its type, as in /proc/filesystems.
    fs_type: &'a std::ffi::CStr,
    /// `key`, `value` pairs, as mount(8)'s `-o`, and `source`: the first field of /proc/self/mounts,
    /// by custom the type's name (without it, fsmount(2) leaves `none`, and tools that look for
    /// `proc` there, the OCI validation suite among them, do not find the mount).
    options: &'a [(&'a str, &'a str)],
    /// Words only mount(2)'s data string takes, before the options, for the way before Linux 5.2:
    /// devpts's `newinstance`, which makes a private instance on Linux 4.6 (since 4.7 every mount of
    /// devpts is one, and fsconfig(2) takes no such string).
    legacy_only: &'a [&'a str],
    /// `MOUNT_ATTR_*` flags (mount_setattr(2)).
    attrs: u64,
    /// What statfs(2) says of it (`f_type`), for the check of the fallback.
    magic: nix::sys::statfs::FsType,
}

// ANCHOR: mount_new
/// Mounts `fs` at `path` inside `rootfs` (resolved without leaving it, made if missing) and returns a
/// descriptor of the new mount itself, made with [`mount_exactly`], so that what is done to it
/// afterwards (mounts beneath it, its flags, the masks over /proc) reaches it and nothing else: the
/// name `path` could meanwhile be whatever a process sharing the rootfs renamed into its place.
/// Before Linux 5.2 (no fsopen) the mount is made by path and looked up again, and what is found must
/// be the root of a filesystem of that type: a link to a directory elsewhere is refused.
fn mount_new(
    step: &'static str,
    rootfs: &Path,
    path: &str,
    fs: &NewMount<'_>,
) -> Result<OwnedFd, MountError> {
    let target = ensure_dir_in_root(rootfs, Path::new(path)).map_err(MountError::resolve(step))?;
    match mount_exactly(fs.fs_type, &target, fs.options, fs.attrs) {
        Err(Errno::ENOSYS) => mount_by_path(step, rootfs, path, &target, fs),
        other => other.map_err(MountError::sys_in(step, rootfs, path)),
    }
}
// ANCHOR_END: mount_new

/// [`mount_new`] before Linux 5.2: `fs` mounted onto `target` (the directory `path` in `rootfs`) with
/// mount(2), then `path` looked up again, since `target` names the directory underneath the new
/// mount; what is found must be the root of a filesystem of `fs`'s type.
fn mount_by_path(
    step: &'static str,
    rootfs: &Path,
    path: &str,
    target: &OwnedFd,
    fs: &NewMount<'_>,
) -> Result<OwnedFd, MountError> {
    let shown = rootfs.join(path.trim_start_matches('/'));
    mount_the_old_way(fs, target).map_err(MountError::sys(step, &shown))?;
    let found = resolve_in_root(rootfs, Path::new(path)).map_err(MountError::resolve(step))?;
    match is_root_of(&found, fs.magic) {
        Ok(true) => Ok(found),
        Ok(false) => Err(MountError::sys("find the new mount at", &shown)(Errno::EXDEV)),
        Err(errno) => Err(MountError::sys("find the new mount at", &shown)(errno)),
    }
}

/// `fs` mounted onto the directory `target` with mount(2), through its /proc/self/fd path: the way
/// before Linux 5.2, with the options as mount(2)'s data string ([`legacy_options`]).
fn mount_the_old_way(fs: &NewMount<'_>, target: &OwnedFd) -> Result<(), Errno> {
    let (source, data) = legacy_options(fs);
    let fs_type = fs.fs_type.to_str().map_err(|_| Errno::EINVAL)?;
    mount(
        Some(source.as_str()),
        &fd_path(target),
        Some(fs_type),
        legacy_flags(fs.attrs),
        data.as_deref(),
    )
}

/// Mounts `fs` on `name`, a directory made in `dir`: a filesystem this process has just mounted, in
/// its own mount namespace, which nothing else can reach (the new /dev). Nothing there needs looking
/// up beneath a root, so the directory is made and opened relative to `dir` (not following a link),
/// and the mount made from descriptors ([`mount_exactly`]), or before Linux 5.2 through the directory's
/// /proc/self/fd path ([`mount_the_old_way`]). `rootfs` and `inside`, the directory's path in it, name
/// the directory in errors.
fn mount_in_fresh_dir(
    step: &'static str,
    dir: &OwnedFd,
    (rootfs, inside): (&Path, &str),
    name: &str,
    fs: &NewMount<'_>,
) -> Result<(), MountError> {
    nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
        .map_err(MountError::sys_in("mkdir", rootfs, inside))?;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let target = nix::fcntl::openat(dir.as_fd(), name, flags, Mode::empty())
        .map_err(MountError::sys_in("open", rootfs, inside))?;
    let mounted = match mount_exactly(fs.fs_type, &target, fs.options, fs.attrs) {
        Err(Errno::ENOSYS) => mount_the_old_way(fs, &target),
        other => other.map(drop),
    };
    mounted.map_err(MountError::sys_in(step, rootfs, inside))
}

/// Whether `fd` is the root of a mounted filesystem of type `magic`: statfs(2) names the filesystem,
/// and its `..` lies on another device. (A directory inside the right filesystem, `proc/sys` say,
/// passes the first check alone.)
fn is_root_of(fd: &OwnedFd, magic: nix::sys::statfs::FsType) -> Result<bool, Errno> {
    if nix::sys::statfs::fstatfs(fd)?.filesystem_type() != magic {
        return Ok(false);
    }
    let above = nix::sys::stat::fstatat(fd, "..", nix::fcntl::AtFlags::empty())?;
    Ok(fstat(fd)?.st_dev != above.st_dev)
}

/// [`NewMount`]'s options as mount(2)'s source and data string.
fn legacy_options(fs: &NewMount<'_>) -> (String, Option<String>) {
    let source = fs.options.iter().find(|(key, _)| *key == "source");
    let source = source.map_or_else(
        || fs.fs_type.to_string_lossy().into_owned(),
        |(_, v)| (*v).to_owned(),
    );
    let words = fs.legacy_only.iter().map(|word| (*word).to_owned());
    let options = fs
        .options
        .iter()
        .filter(|(key, _)| *key != "source")
        .map(|(key, value)| format!("{key}={value}"));
    let data: Vec<String> = words.chain(options).collect();
    (source, (!data.is_empty()).then(|| data.join(",")))
}

/// `MOUNT_ATTR_*` flags as mount(2)'s.
fn legacy_flags(attrs: u64) -> MsFlags {
    [
        (libc::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
        (libc::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
        (libc::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
        (libc::MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::MOUNT_ATTR_STRICTATIME, MsFlags::MS_STRICTATIME),
    ]
    .into_iter()
    .filter(|(attr, _)| attrs & attr != 0)
    .fold(MsFlags::empty(), |flags, (_, ms)| flags | ms)
}

// ANCHOR: mount_proc
/// Mounts a fresh proc at `rootfs/proc`, showing the processes of the caller's PID namespace, and
/// returns a descriptor of it ([`mount_new`]). Inside a user namespace the kernel allows it only to the
/// owner of a new PID namespace, and only while a fully visible proc is mounted in this mount
/// namespace: do it before [`pivot_into`].
pub fn mount_proc(rootfs: &Path) -> Result<OwnedFd, MountError> {
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    let proc = NewMount {
        fs_type: c"proc",
        options: &[("source", "proc")],
        legacy_only: &[],
        attrs,
        magic: nix::sys::statfs::PROC_SUPER_MAGIC,
    };
    mount_new("mount proc at", rootfs, "/proc", &proc)
}
// ANCHOR_END: mount_proc

/// The device nodes every container gets: name, major, minor (devices.txt in the kernel docs).
pub const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks in /dev that programs expect.
pub const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

// ANCHOR: mount_dev
/// Gives the rootfs a minimal /dev: a tmpfs holding the [`DEVICES`], a private devpts instance, the
/// [`DEV_SYMLINKS`], and a tmpfs at /dev/shm.
///
/// In a user namespace `mknod` of a device is forbidden, and any device node on a filesystem mounted
/// there would not open anyway (it is implicitly `nodev`): the nodes are bind-mounted from the host's
/// /dev instead. As root they are made with `mknod`. devpts is a new instance (every mount of it is,
/// since Linux 4.7) with `ptmxmode=0666`, so the container's ptys are its own and /dev/ptmx (a symlink
/// to pts/ptmx) is usable. What goes in the new /dev is made through its descriptor, the one this
/// returns, for what the caller still does to it (making it read-only).
pub fn mount_dev(rootfs: &Path, in_userns: bool) -> Result<OwnedFd, MountError> {
    let tmpfs = NewMount {
        fs_type: c"tmpfs",
        options: &[("source", "tmpfs"), ("mode", "755"), ("size", "65536k")],
        legacy_only: &[],
        attrs: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_STRICTATIME,
        magic: nix::sys::statfs::TMPFS_MAGIC,
    };
    // The tmpfs and a descriptor of it, through which everything below is made: /dev looked up again
    // by name could be whatever a process sharing the rootfs had renamed into its place meanwhile.
    let dev = mount_new("mount tmpfs at", rootfs, "/dev", &tmpfs)?;
    for (name, major, minor) in DEVICES {
        if in_userns {
            bind_host_device(&dev, rootfs, name)?;
        } else {
            make_device(&dev, rootfs, name, major, minor)?;
        }
    }
    let devpts = NewMount {
        fs_type: c"devpts",
        options: &[("source", "devpts"), ("ptmxmode", "0666"), ("mode", "0620")],
        legacy_only: &["newinstance"],
        attrs: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC,
        magic: nix::sys::statfs::DEVPTS_SUPER_MAGIC,
    };
    mount_in_fresh_dir("mount devpts at", &dev, (rootfs, "/dev/pts"), "pts", &devpts)?;
    for (name, target) in DEV_SYMLINKS {
        symlinkat(target, dev.as_fd(), name)
            .map_err(|e| MountError::sys("symlink", &rootfs.join("dev").join(name))(e))?;
    }
    let shm = NewMount {
        fs_type: c"tmpfs",
        options: &[("source", "shm"), ("mode", "1777"), ("size", "65536k")],
        legacy_only: &[],
        attrs: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
        magic: nix::sys::statfs::TMPFS_MAGIC,
    };
    mount_in_fresh_dir("mount tmpfs at", &dev, (rootfs, "/dev/shm"), "shm", &shm)?;
    Ok(dev)
}
// ANCHOR_END: mount_dev

fn make_device(dev: &OwnedFd, rootfs: &Path, name: &str, major: u64, minor: u64) -> Result<(), MountError> {
    let shown = || rootfs.join("dev").join(name);
    mknodat(
        dev.as_fd(),
        name,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .map_err(|e| MountError::sys("mknod", &shown())(e))?;
    // mknod applied the umask; the nodes must be usable by everyone, as on the host. (Opening the
    // node to fchmod it would open the device itself: /dev/tty fails without a controlling terminal.)
    fchmodat(
        dev.as_fd(),
        name,
        Mode::from_bits_truncate(0o666),
        FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| MountError::sys("chmod", &shown())(e))
}

fn bind_host_device(dev: &OwnedFd, rootfs: &Path, name: &str) -> Result<(), MountError> {
    let shown = || rootfs.join("dev").join(name);
    let placeholder = nix::fcntl::openat(
        dev.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    )
    .map_err(|e| MountError::sys("create", &shown())(e))?;
    let source = Path::new("/dev").join(name);
    mount(
        Some(&source),
        &fd_path(&placeholder),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| MountError::sys("bind the host's device onto", &shown())(e))
}

/// A device node asked for besides the standard ones (an OCI config's `linux.devices`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// Where it goes, under /dev.
    pub path: PathBuf,
    pub kind: NodeKind,
    pub major: u64,
    pub minor: u64,
    /// Its permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What a [`DeviceNode`] is (mknod(2)'s `S_IFCHR`, `S_IFBLK`, `S_IFIFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Char,
    Block,
    Fifo,
}

// ANCHOR: add_device
/// Makes `node` (a path under /dev) in `dev`, the container's /dev: best the `/proc/self/fd` path of
/// the descriptor [`mount_dev`] returned. It is owned and has the mode asked for. A character or block
/// device is made with mknod(2) as root; in a user namespace, where mknod of a device is forbidden,
/// the host's node at the same path is bound onto an empty file instead, and must exist and be that
/// very device. A fifo is made either way.
pub fn add_device(dev: &Path, node: &DeviceNode, in_userns: bool) -> Result<(), MountError> {
    let shown = node.path.clone();
    let (parent, name) = match (node.path.parent(), node.path.file_name()) {
        (Some(parent), Some(name)) if parent.starts_with("/dev") => (parent, name),
        _ => return Err(MountError::sys("make the device", &shown)(Errno::EINVAL)),
    };
    let within = parent.strip_prefix("/dev").unwrap_or(parent);
    let dir = ensure_dir_in_root(dev, within).map_err(MountError::resolve("make the directory of"))?;
    let mode = Mode::from_bits_truncate(node.mode & 0o7777);
    match (node.kind, in_userns) {
        (NodeKind::Fifo, _) => mknodat(dir.as_fd(), name, SFlag::S_IFIFO, mode, 0)
            .map_err(MountError::sys("make the fifo", &shown))?,
        (kind, false) => {
            let kind = if kind == NodeKind::Char {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            mknodat(dir.as_fd(), name, kind, mode, makedev(node.major, node.minor))
                .map_err(MountError::sys("mknod", &shown))?
        }
        (_, true) => return bind_same_host_device(&dir, &shown, name.as_ref(), node),
    }
    // mknod applied the umask; and the owner is the config's.
    fchmodat(dir.as_fd(), name, mode, FchmodatFlags::NoFollowSymlink)
        .map_err(MountError::sys("chmod", &shown))?;
    nix::unistd::fchownat(
        dir.as_fd(),
        name,
        Some(node.uid.into()),
        Some(node.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(MountError::sys("chown", &shown))
}
// ANCHOR_END: add_device

/// In a user namespace: the host's node at `node.path`, checked to be the device asked for, bound
/// onto an empty file.
fn bind_same_host_device(
    dir: &OwnedFd,
    shown: &Path,
    name: &Path,
    node: &DeviceNode,
) -> Result<(), MountError> {
    let host =
        nix::sys::stat::stat(&node.path).map_err(MountError::sys("find the host's device", &node.path))?;
    let kind = match node.kind {
        NodeKind::Char => SFlag::S_IFCHR,
        _ => SFlag::S_IFBLK,
    };
    let same = SFlag::from_bits_truncate(host.st_mode) & SFlag::S_IFMT == kind
        && nix::sys::stat::major(host.st_rdev) == node.major
        && nix::sys::stat::minor(host.st_rdev) == node.minor;
    if !same {
        return Err(MountError::sys("find the host's device", &node.path)(
            Errno::ENODEV,
        ));
    }
    let placeholder = nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(MountError::sys("create", shown))?;
    mount(
        Some(&node.path),
        &fd_path(&placeholder),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(MountError::sys("bind the host's device onto", shown))
}

// ANCHOR: mount_mqueue
/// Mounts the POSIX message queue filesystem at `mqueue` in `dev`, the container's /dev: best the
/// `/proc/self/fd` path of the descriptor [`mount_dev`] returned (mq_overview(7)). It shows the queues
/// of the caller's IPC namespace; in a user namespace the IPC namespace must be one it owns.
pub fn mount_mqueue(dev: &Path) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_in_root("mount mqueue at", dev, "/mqueue", "mqueue", flags, None)
}
// ANCHOR_END: mount_mqueue

/// Mounts the cgroup v2 hierarchy read-only at `fs/cgroup` in `sys`, the container's /sys (best the
/// `/proc/self/fd` path of the descriptor [`mount_sysfs_readonly`] returned) (cgroups(7)). In a cgroup
/// namespace of its own the container sees its own cgroup as the root there (cgroup_namespaces(7)); in
/// a user namespace the kernel allows the mount only with such a cgroup namespace.
pub fn mount_cgroup2_readonly(sys: &Path) -> Result<(), MountError> {
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_in_root("mount cgroup2 at", sys, "/fs/cgroup", "cgroup2", flags, None)
}

/// Mounts an empty tmpfs at `path` inside `rootfs`, always `nosuid,nodev`, with `options`' flags,
/// data (`mode=`, `size=`; mode 755 when none is given) and propagation.
pub fn mount_tmpfs(
    rootfs: &Path,
    path: &str,
    options: &crate::options::MountOptions,
) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | options.flags;
    let data = options.data().unwrap_or_else(|| "mode=755".into());
    mount_in_root("mount tmpfs at", rootfs, path, "tmpfs", flags, Some(&data))?;
    if let Some((propagation, recursion)) = options.propagation {
        let target = resolve_in_root(rootfs, Path::new(path)).map_err(MountError::resolve("find"))?;
        let recursive = recursion == crate::options::Recursion::Recursive;
        set_propagation(&fd_path(&target), propagation, recursive)?;
    }
    Ok(())
}

// ANCHOR: mount_sysfs
/// Mounts sysfs read-only at `rootfs/sys` (sysfs(5)) and returns a descriptor of it ([`mount_new`]).
/// It shows the network devices of the caller's network namespace, so in a user namespace the kernel
/// allows it only with a network namespace that user namespace owns (else EPERM): give the container
/// a new one.
pub fn mount_sysfs_readonly(rootfs: &Path) -> Result<OwnedFd, MountError> {
    let attrs =
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    let sysfs = NewMount {
        fs_type: c"sysfs",
        options: &[("source", "sysfs")],
        legacy_only: &[],
        attrs,
        magic: nix::sys::statfs::SYSFS_MAGIC,
    };
    mount_new("mount sysfs at", rootfs, "/sys", &sysfs)
}
// ANCHOR_END: mount_sysfs

/// What [`mask_paths`] and [`readonly_paths`] did with one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathOutcome {
    /// A file, covered by /dev/null.
    MaskedFile,
    /// A directory, covered by an empty read-only tmpfs.
    MaskedDir,
    /// Bind-mounted onto itself and remounted read-only.
    ReadOnly,
    /// Not present in this kernel or rootfs: nothing to do.
    Absent,
}

// ANCHOR: mask_paths
/// Hides each of `paths` (inside `root`; `/` after [`pivot_into`]): a file is covered by a bind mount
/// of /dev/null, a directory by an empty read-only tmpfs. Paths that do not exist are skipped.
pub fn mask_paths(root: &Path, paths: &[&str]) -> Result<Vec<PathOutcome>, MountError> {
    // /dev/null is opened and checked once, at the first file to cover. The root is opened once, and
    // again after a mask over the root itself ([`OpenedRoot`]): a path may lead to the root, and what
    // the next one is looked up in must be what is mounted there now, not the directory underneath.
    let mut null = None;
    let mut root = OpenedRoot::open(root).map_err(MountError::resolve("mask"))?;
    paths
        .iter()
        .map(|path| mask_one(&mut root, path, &mut null))
        .collect()
}
// ANCHOR_END: mask_paths

fn mask_one(
    root: &mut OpenedRoot,
    path: &str,
    null: &mut Option<OwnedFd>,
) -> Result<PathOutcome, MountError> {
    let target = match root.resolve(Path::new(path)) {
        Ok(fd) => fd,
        Err(ResolveError::Sys {
            errno: Errno::ENOENT, ..
        }) => return Ok(PathOutcome::Absent),
        Err(e) => return Err(MountError::resolve("mask")(e)),
    };
    let kind = SFlag::from_bits_truncate(fstat(&target).map_err(MountError::sys("stat", path))?.st_mode)
        & SFlag::S_IFMT;
    if kind == SFlag::S_IFDIR {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(
            Some("tmpfs"),
            &fd_path(&target),
            Some("tmpfs"),
            flags,
            Some("size=0,mode=555"),
        )
        .map_err(MountError::sys("mask with a read-only tmpfs", path))?;
        root.mounted_on(&target, None)
            .map_err(MountError::resolve("mask"))?;
        Ok(PathOutcome::MaskedDir)
    } else {
        let null = match null {
            Some(null) => null,
            None => null.insert(null_device(path)?),
        };
        // From descriptor to descriptor (open_tree(2), move_mount(2)), or before Linux 5.2 through
        // their /proc/self/fd paths.
        let bound = match bind_exactly(null, &target, false) {
            Err(Errno::ENOSYS) => mount(
                Some(&fd_path(null)),
                &fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
            other => other.map(drop),
        };
        bound.map_err(MountError::sys("mask with /dev/null", path))?;
        root.mounted_on(&target, None)
            .map_err(MountError::resolve("mask"))?;
        Ok(PathOutcome::MaskedFile)
    }
}

/// `/dev/null` as this process sees it (the container's own once the root is pivoted), checked to be
/// the null device before anything is bound from it. After the pivot, `/dev` is the container's: when
/// an OCI config mounts no tmpfs there, it is the rootfs's own, and a `/dev/null` that links to
/// `/proc/sys/kernel/core_pattern` would turn every masked file into a writable name for the host's
/// core pattern (runc's CVE-2025-31133). Whatever the path leads to, only character device 1:3 is
/// bound, from the descriptor that was checked.
fn null_device(masking: &str) -> Result<OwnedFd, MountError> {
    let null = nix::fcntl::open("/dev/null", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(MountError::sys("open /dev/null to mask", masking))?;
    let stat = fstat(&null).map_err(MountError::sys("stat /dev/null to mask", masking))?;
    let is_char = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || stat.st_rdev != makedev(1, 3) {
        return Err(MountError::NotNullDevice { path: masking.into() });
    }
    Ok(null)
}

// ANCHOR: readonly_paths
/// Makes each of `paths` (inside `root`) read-only: bind it onto itself, with the mounts beneath it,
/// then make the bind and those mounts read-only (mount_setattr(2), which adds the flag and leaves the
/// others, nosuid, nodev, noexec, atime, as they are: in a user namespace the kernel has locked them
/// and refuses a change that would clear one). Before Linux 5.12, each of those mounts is remounted
/// read-only in turn, keeping its flags. Paths that do not exist are skipped.
pub fn readonly_paths(root: &Path, paths: &[&str]) -> Result<Vec<PathOutcome>, MountError> {
    // The root is opened once, and again after a bind over it, as in [`mask_paths`]: a path that
    // leads to the root itself (`/`, or a link to `..`) is bound read-only over it, and the paths
    // after it must be made read-only in that bind, which is what the container sees, not underneath.
    let mut root = OpenedRoot::open(root).map_err(MountError::resolve("make read-only"))?;
    paths.iter().map(|path| readonly_one(&mut root, path)).collect()
}
// ANCHOR_END: readonly_paths

fn readonly_one(root: &mut OpenedRoot, path: &str) -> Result<PathOutcome, MountError> {
    let target = match root.resolve(Path::new(path)) {
        Ok(fd) => fd,
        Err(ResolveError::Sys {
            errno: Errno::ENOENT, ..
        }) => return Ok(PathOutcome::Absent),
        Err(e) => return Err(MountError::resolve("make read-only")(e)),
    };
    let bound = match bind_exactly(&target, &target, true) {
        Ok(bound) => bound,
        // Before Linux 5.2: a bind by path, looked up again (the descriptor from before the bind names
        // the directory underneath it), and refused unless it is the bind, which shows the same file.
        Err(Errno::ENOSYS) => {
            let target_path = fd_path(&target);
            mount(
                Some(&target_path),
                &target_path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(MountError::sys("bind onto itself", path))?;
            resolve_mounted(root.path(), Path::new(path), &target)
                .map_err(MountError::resolve("make read-only"))?
        }
        Err(errno) => return Err(MountError::sys("bind onto itself", path)(errno)),
    };
    // Read-only with the mounts the bind brought along (mount_setattr(2) on the bind's own descriptor,
    // `AT_RECURSIVE`), or before Linux 5.12 each of them remounted in turn, found in mountinfo. The
    // bind's top alone is not enough: a read-only `/` would leave the container's copy of /proc
    // writable beneath it, and with it the kernel's settings (found by review, on 5.10).
    let attrs = match set_attr_fd_recursively(&bound, MsFlags::MS_RDONLY) {
        Err(Errno::ENOSYS) => add_flags_by_remounts(&fd_path(&bound), MsFlags::MS_RDONLY),
        other => other,
    };
    attrs.map_err(MountError::sys("remount read-only", path))?;
    root.mounted_on(&target, Some(&bound))
        .map_err(MountError::resolve("make read-only"))?;
    Ok(PathOutcome::ReadOnly)
}

/// The paths runc, crun and Docker mask by default.
pub const DEFAULT_MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/proc/interrupts",
];

/// The paths they make read-only by default.
pub const DEFAULT_READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// Adds `flags` (of read-only, nosuid, nodev and noexec; others are ignored) to the mount at `path` and
/// to every mount below it, in one call: mount_setattr(2) with `AT_RECURSIVE` (Linux 5.12). A bind
/// with `MS_REC` brings the source's submounts along, and a remount changes only the top one: a
/// read-only volume whose source holds a mount would otherwise keep that mount writable.
///
/// Where the kernel has no mount_setattr (ENOSYS, before 5.12), each of those mounts is remounted in
/// turn, found in `/proc/self/mountinfo`, as runc does.
pub fn add_flags_recursively(path: &Path, flags: MsFlags) -> Result<(), Errno> {
    match set_attr_recursively(path, flags) {
        Err(Errno::ENOSYS) => add_flags_by_remounts(path, flags),
        done => done,
    }
}

/// [`add_flags_recursively`] as kernels before 5.12 allow it: one remount per mount, the one at
/// `path` and then each below it, in the order mountinfo lists them (the order they were mounted).
/// Fails (ENOENT) rather than doing nothing if no mount is listed at `path`.
pub fn add_flags_by_remounts(path: &Path, flags: MsFlags) -> Result<(), Errno> {
    // mountinfo names mounts by where they are, not by a descriptor's /proc/self/fd/N.
    let top =
        std::fs::canonicalize(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let table = crate::mountinfo::read(nskit::Proc::Current).map_err(|_| Errno::EIO)?;
    let mut found = false;
    for entry in &table {
        let point = Path::new(&entry.mount_point);
        if point.starts_with(&top) {
            remount_flags(point, flags)?;
            found |= point == top;
        }
    }
    if !found {
        return Err(Errno::ENOENT);
    }
    Ok(())
}

fn set_attr_recursively(path: &Path, flags: MsFlags) -> Result<(), Errno> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    mount_setattr(libc::AT_FDCWD, &path, libc::AT_RECURSIVE as libc::c_uint, flags)
}

/// [`add_flags_recursively`] for the mount a descriptor names, as [`bind_exactly`] returns it: no path
/// looked up at all. ENOSYS before Linux 5.12, and no fallback: the caller has one of its own.
fn set_attr_fd_recursively(mount: &impl AsFd, flags: MsFlags) -> Result<(), Errno> {
    let at = (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint;
    mount_setattr(mount.as_fd().as_raw_fd(), c"", at, flags)
}

/// mount_setattr(2), adding `flags` (of read-only, nosuid, nodev and noexec) to the mount at `path`
/// from `dirfd`.
fn mount_setattr(dirfd: RawFd, path: &std::ffi::CStr, at: libc::c_uint, flags: MsFlags) -> Result<(), Errno> {
    let mut attr = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    for (ms, bit) in [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ] {
        if flags.contains(ms) {
            attr.attr_set |= bit;
        }
    }
    // SAFETY: mount_setattr(2) reads a NUL-terminated path (`path`, alive for the call) and
    // `size_of::<mount_attr>()` bytes at `&attr`, a valid, initialized `mount_attr`; it writes nothing
    // of ours. nix 0.32 has no wrapper for it.
    let done = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            at,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(done).map(drop)
}

// ANCHOR: bind_exactly
/// Binds `source` onto `target` (both descriptors, `O_PATH` will do; with `recursive`, the mounts
/// below `source` too) and returns a descriptor of the new mount itself: open_tree(2)
/// `OPEN_TREE_CLONE` makes the bind as a tree of its own, detached, and move_mount(2) attaches it at
/// exactly `target`. Its flags are then set through the returned descriptor (`/proc/self/fd/N`), with
/// no path looked up again: a second lookup by name is what a process renaming things in a shared
/// directory can send elsewhere ([`crate::resolve::resolve_mounted`]). ENOSYS before Linux 5.2.
pub fn bind_exactly(source: &impl AsFd, target: &impl AsFd, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) takes a descriptor, a NUL-terminated path (the empty C string, static) and
    // flags; it returns a new descriptor or -1. nix 0.32 has no wrapper for it.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            source.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    let tree = Errno::result(tree)?;
    // SAFETY: a descriptor the kernel has just returned to this process, which nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    attach(&tree, target)?;
    Ok(tree)
}
// ANCHOR_END: bind_exactly

/// Attaches the detached mount `tree` at exactly `target` (move_mount(2), both ends descriptors).
fn attach(tree: &impl AsFd, target: &impl AsFd) -> Result<(), Errno> {
    // SAFETY: move_mount(2) takes two descriptors, two NUL-terminated paths (the empty C string,
    // static: both ends are the descriptors themselves) and flags; it writes nothing of ours.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            target.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(moved).map(drop)
}

// ANCHOR: mount_exactly
/// A new filesystem of type `fs_type` with `options` (`key`, `value` pairs, as mount(8)'s `-o`) and
/// `attrs` (`MOUNT_ATTR_*`), attached at exactly `target`, and a descriptor of it: fsopen(2),
/// fsconfig(2), fsmount(2) and move_mount(2) make the mount from descriptors, so nothing needs looking
/// up by name to reach it afterwards. ENOSYS before Linux 5.2.
pub fn mount_exactly(
    fs_type: &std::ffi::CStr,
    target: &impl AsFd,
    options: &[(&str, &str)],
    attrs: u64,
) -> Result<OwnedFd, Errno> {
    // SAFETY: fsopen(2) takes a NUL-terminated filesystem name (alive for the call) and flags, and
    // returns a new descriptor or -1. nix 0.32 has no wrapper for it, nor for the calls below.
    let context =
        Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, fs_type.as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    // SAFETY: a descriptor the kernel has just returned to this process, which nothing else owns.
    let context = unsafe { OwnedFd::from_raw_fd(context as RawFd) };
    for (key, value) in options {
        let key = std::ffi::CString::new(*key).map_err(|_| Errno::EINVAL)?;
        let value = std::ffi::CString::new(*value).map_err(|_| Errno::EINVAL)?;
        // SAFETY: fsconfig(2) `FSCONFIG_SET_STRING` reads two NUL-terminated strings, alive for the call.
        Errno::result(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })?;
    }
    if attrs & libc::MOUNT_ATTR_RDONLY != 0 {
        // A read-only filesystem, not only a read-only mount of it, as mount(2) makes a new one with
        // `MS_RDONLY`: a write is refused as such (EROFS) before any permission is weighed.
        // SAFETY: fsconfig(2) `FSCONFIG_SET_FLAG` reads a NUL-terminated key (static) and no value.
        Errno::result(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                libc::FSCONFIG_SET_FLAG,
                c"ro".as_ptr(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        })?;
    }
    // SAFETY: fsconfig(2) `FSCONFIG_CMD_CREATE` takes no key or value (null pointers) and reads nothing.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount(2) takes the context's descriptor, flags and mount attributes, and returns a new
    // descriptor or -1.
    let mounted = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    })?;
    // SAFETY: as above, a new descriptor nothing else owns.
    let mounted = unsafe { OwnedFd::from_raw_fd(mounted as RawFd) };
    attach(&mounted, target)?;
    Ok(mounted)
}
// ANCHOR_END: mount_exactly

/// Adds `flags` to the mount at `path` with a bind remount, keeping the flags it has (in a user
/// namespace the kernel refuses a remount that would clear a locked one).
pub fn remount_flags(path: &Path, flags: MsFlags) -> Result<(), Errno> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | current_flags(path)? | flags,
        None::<&str>,
    )
}

/// Makes the mount at `path` writable again with a bind remount, keeping its other flags: for a
/// mount this process made read-only itself (a read-only mount made so by someone else is locked,
/// and stays read-only).
pub fn remount_writable(path: &Path) -> Result<(), Errno> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | current_flags(path)?.difference(MsFlags::MS_RDONLY),
        None::<&str>,
    )
}

/// Whether the mount at `path` is read-only (statvfs(3), `ST_RDONLY`).
pub fn is_read_only(path: &Path) -> Result<bool, Errno> {
    Ok(current_flags(path)?.contains(MsFlags::MS_RDONLY))
}

/// The per-mount flags of the mount at `path`, as mount(2) flags.
fn current_flags(path: &Path) -> Result<MsFlags, Errno> {
    let current = nix::sys::statvfs::statvfs(path)?.flags();
    let mut keep = MsFlags::empty();
    for (vfs, ms) in [
        (nix::sys::statvfs::FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (nix::sys::statvfs::FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (nix::sys::statvfs::FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (nix::sys::statvfs::FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (nix::sys::statvfs::FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (nix::sys::statvfs::FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (nix::sys::statvfs::FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(vfs) {
            keep |= ms;
        }
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_s_root_is_told_from_a_directory_inside_it() {
        let open =
            |path: &str| nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let proc_magic = nix::sys::statfs::PROC_SUPER_MAGIC;
        assert_eq!(is_root_of(&open("/proc"), proc_magic), Ok(true));
        assert_eq!(
            is_root_of(&open("/proc/sys"), proc_magic),
            Ok(false),
            "procfs, not its root"
        );
        assert_eq!(
            is_root_of(&open("/proc"), nix::sys::statfs::SYSFS_MAGIC),
            Ok(false)
        );
    }

    #[test]
    fn the_old_way_s_source_data_and_flags() {
        let dev = NewMount {
            fs_type: c"tmpfs",
            options: &[("source", "shm"), ("mode", "755"), ("size", "64k")],
            legacy_only: &[],
            attrs: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_RDONLY,
            magic: nix::sys::statfs::TMPFS_MAGIC,
        };
        assert_eq!(
            legacy_options(&dev),
            ("shm".into(), Some("mode=755,size=64k".into()))
        );
        assert_eq!(legacy_flags(dev.attrs), MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        let proc = NewMount {
            fs_type: c"proc",
            options: &[],
            legacy_only: &[],
            ..dev
        };
        assert_eq!(legacy_options(&proc), ("proc".into(), None));
        // Without `newinstance`, Linux 4.6 would attach the host's own devpts (found by review).
        let devpts = NewMount {
            fs_type: c"devpts",
            options: &[("source", "devpts"), ("ptmxmode", "0666")],
            legacy_only: &["newinstance"],
            ..dev
        };
        assert_eq!(
            legacy_options(&devpts),
            ("devpts".into(), Some("newinstance,ptmxmode=0666".into()))
        );
    }

    /// The way before Linux 5.2, on this kernel: the mount is made by path and found again.
    #[test]
    fn the_old_way_finds_the_mount_it_made() {
        if !nskit::testing::require_namespaces("the_old_way_finds_the_mount_it_made") {
            return;
        }
        let rootfs = tempfile::Builder::new()
            .prefix("mnt-demo-old-way")
            .tempdir()
            .unwrap();
        let root = rootfs.path().to_owned();
        std::fs::create_dir(root.join("dev")).unwrap();
        let mut child = nskit::Spawn::new(nix::sched::CloneFlags::CLONE_NEWNS)
            .run(move |channel| {
                let found = isolate_root(Propagation::Private)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        let tmpfs = NewMount {
                            fs_type: c"tmpfs",
                            options: &[("mode", "700")],
                            legacy_only: &[],
                            attrs: libc::MOUNT_ATTR_NOSUID,
                            magic: nix::sys::statfs::TMPFS_MAGIC,
                        };
                        let target = resolve_in_root(&root, Path::new("/dev")).map_err(|e| e.to_string())?;
                        let dev = mount_by_path("mount tmpfs at", &root, "/dev", &target, &tmpfs)
                            .map_err(|e| e.to_string())?;
                        let mode = fstat(&dev).map_err(|e| e.to_string())?.st_mode & 0o777;
                        Ok(format!("{:?} {mode:o}", is_root_of(&dev, tmpfs.magic)))
                    });
                i32::from(channel.send(&found.unwrap_or_else(|e| e)).is_err())
            })
            .unwrap();
        let found: String = child.channel().recv().unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(found, "Ok(true) 700");
    }
}
