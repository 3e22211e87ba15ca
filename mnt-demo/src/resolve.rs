//! Resolving a path inside a rootfs without ever leaving it (openat2(2), path_resolution(7)).
//!
//! A rootfs is untrusted data: its `dev` may be a symlink to `/dev` of the host, its `proc` a symlink to
//! `/`. A launcher that mounts onto `rootfs/proc` with an ordinary path lets the kernel follow that link
//! and mounts onto the *host's* directory instead. So every mount target is opened here first, as an
//! `O_PATH` file descriptor, with the kernel told to refuse any step out of the rootfs; the mount is then
//! made onto `/proc/self/fd/<n>`, the very directory that was checked, which a rename cannot swap.
//!
//! Two ways, the first when the kernel has it:
//! - `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` (Linux 5.6): the kernel fails with
//!   EXDEV on an absolute symlink or a `..` that would climb above the rootfs, and refuses /proc magic
//!   links. (`RESOLVE_IN_ROOT` would instead reinterpret `/x` as `rootfs/x`; refusing is stricter and
//!   makes a surprising rootfs visible instead of silently accepting it.)
//! - otherwise, a walk one component at a time with `O_PATH | O_NOFOLLOW`, refusing every symlink and
//!   every `..`. Stricter still, and simple enough to be obviously right.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

/// Why a path could not be resolved inside the rootfs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("{path} leads out of the rootfs {root} (a symlink or `..` points outside it): refused")]
    Escapes { root: PathBuf, path: PathBuf },
    #[error("{path} in {root} passes through a symlink, which the component walk refuses")]
    Symlink { root: PathBuf, path: PathBuf },
    #[error(
        "{path} in {root} changed while it was being mounted (a process sharing a directory on the way renamed or replaced it): refused"
    )]
    Swapped { root: PathBuf, path: PathBuf },
    #[error("cannot resolve {path} in {root}: {errno}")]
    Sys {
        root: PathBuf,
        path: PathBuf,
        errno: Errno,
    },
}

impl ResolveError {
    /// The errno behind the failure (EXDEV for an escape, ELOOP for a refused symlink).
    pub fn errno(&self) -> Errno {
        match self {
            ResolveError::Escapes { .. } => Errno::EXDEV,
            ResolveError::Symlink { .. } => Errno::ELOOP,
            ResolveError::Swapped { .. } => Errno::ESTALE,
            ResolveError::Sys { errno, .. } => *errno,
        }
    }
}

/// The path under which the kernel reaches the file an fd names: mounting onto it mounts onto exactly
/// that file, whatever happened to its name since.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The components of `path` taken as relative to the rootfs (a leading `/` means the rootfs's root).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

// ANCHOR: resolve_in_root
/// Opens `path` (absolute or relative, both meaning inside `root`) as an `O_PATH` fd, refusing any
/// symlink or `..` that would lead out of `root`.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    resolve_beneath(&open_root(root)?, root, path)
}

/// [`resolve_in_root`] from a descriptor of the root (`root_path` names it in errors), for a caller
/// that looks many paths up in one root and opens it once.
fn resolve_beneath(root: &OwnedFd, root_path: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    let fail = |errno| ResolveError::Sys {
        root: root_path.to_owned(),
        path: path.to_owned(),
        errno,
    };
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        return root.try_clone().map_err(|e| fail(io_errno(&e)));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2_retrying(root, &rel, how) {
        Ok(fd) => Ok(fd),
        Err(Errno::EXDEV) => Err(ResolveError::Escapes {
            root: root_path.to_owned(),
            path: path.to_owned(),
        }),
        // ENOSYS: a kernel older than 5.6; EPERM/EACCES can come from a seccomp filter that hides it.
        Err(Errno::ENOSYS) => walk_beneath(root, root_path, path),
        Err(errno) => Err(fail(errno)),
    }
}
// ANCHOR_END: resolve_in_root

// ANCHOR: opened_root
/// A root opened once for many lookups beneath it (the masked and read-only paths: a dozen each
/// start). A descriptor keeps naming the directory it was opened on, even once something is mounted
/// over it, while a lookup from it crosses every mount below it; so the root is taken anew only after
/// a mount over the root itself (a path that leads to it: `/`, or a link to `..`), and the next paths
/// are looked up in what is mounted there, which the container sees, not underneath. Taken anew from
/// the new mount's own descriptor when the caller has one: opened again by its path, a root given as
/// a descriptor's `/proc/self/fd/N` (the container's /proc and /sys) would name the mount beneath
/// again, not the one on top (found by review).
#[derive(Debug)]
pub struct OpenedRoot {
    path: PathBuf,
    fd: OwnedFd,
    /// Device and inode of the directory `fd` names, to know a mount target that is the root.
    id: (u64, u64),
}

impl OpenedRoot {
    pub fn open(path: &Path) -> Result<OpenedRoot, ResolveError> {
        let fd = open_root(path)?;
        let id = file_id(&fd).map_err(|errno| ResolveError::Sys {
            root: path.to_owned(),
            path: PathBuf::new(),
            errno,
        })?;
        Ok(OpenedRoot {
            path: path.to_owned(),
            fd,
            id,
        })
    }

    /// The path the root was opened by, for errors and for callers that need it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`resolve_in_root`] beneath this root.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd, ResolveError> {
        resolve_beneath(&self.fd, &self.path, path)
    }

    /// To be called after a mount onto `target` (a descriptor [`resolve`](Self::resolve) gave), with
    /// the new mount's own descriptor if the caller has one: when `target` is the root itself, the
    /// root becomes what is mounted over it now (that descriptor, or the root's path opened again).
    pub fn mounted_on(&mut self, target: &impl AsFd, mounted: Option<&OwnedFd>) -> Result<(), ResolveError> {
        let fail = |errno| ResolveError::Sys {
            root: self.path.clone(),
            path: PathBuf::new(),
            errno,
        };
        if file_id(target).map_err(fail)? != self.id {
            return Ok(());
        }
        match mounted {
            Some(mounted) => {
                self.fd = mounted.try_clone().map_err(|e| fail(io_errno(&e)))?;
                self.id = file_id(&self.fd).map_err(fail)?;
            }
            None => *self = OpenedRoot::open(&self.path)?,
        }
        Ok(())
    }
}

fn file_id(fd: &impl AsFd) -> Result<(u64, u64), Errno> {
    let stat = fstat(fd)?;
    Ok((stat.st_dev, stat.st_ino))
}
// ANCHOR_END: opened_root

/// `root` opened as the start of lookups beneath it (`O_PATH`, a directory).
fn open_root(root: &Path) -> Result<OwnedFd, ResolveError> {
    open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| ResolveError::Sys {
        root: root.to_owned(),
        path: PathBuf::new(),
        errno,
    })
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

// ANCHOR: resolve_mounted
/// The mount just made at `path` in `root` (a bind of `source`), looked up again: the descriptor the
/// mount was made onto names the directory underneath it, and a remount needs the mount itself. A
/// second lookup by name can land elsewhere: a process that shares a directory on the way (a volume
/// two containers have, a rootfs they share) can rename a link into `path`'s place in between, and the
/// read-only or nodev remount meant for the bind would go to that link's target while the bind stayed
/// writable (runc's CVE-2021-30465). A bind's root is its source, the same file: anything else found
/// there is refused.
pub fn resolve_mounted(root: &Path, path: &Path, source: &impl AsFd) -> Result<OwnedFd, ResolveError> {
    let mounted = resolve_in_root(root, path)?;
    let same = |a: &dyn AsFd, b: &dyn AsFd| -> Result<bool, Errno> {
        let (a, b) = (fstat(a.as_fd())?, fstat(b.as_fd())?);
        Ok((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
    };
    match same(&mounted, source) {
        Ok(true) => Ok(mounted),
        Ok(false) => Err(ResolveError::Swapped {
            root: root.to_owned(),
            path: path.to_owned(),
        }),
        Err(errno) => Err(ResolveError::Sys {
            root: root.to_owned(),
            path: path.to_owned(),
            errno,
        }),
    }
}
// ANCHOR_END: resolve_mounted

/// Opens `path` as a process whose root is `root` would (openat2(2) `RESOLVE_IN_ROOT`): an absolute
/// symlink, or `..` at the top, stays at `root` instead of leaving it. For looking things up the way
/// the container will find them (a command on its `PATH`, whose links may be absolute), where
/// [`resolve_in_root`] refuses such links, as a mount target must. Linux 5.6; no fallback before.
pub fn open_in_root(root: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    let fail = |errno| ResolveError::Sys {
        root: root.to_owned(),
        path: path.to_owned(),
        errno,
    };
    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail)?;
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        return Ok(root_fd);
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2_retrying(&root_fd, &rel, how).map_err(fail)
}

/// openat2(2), again while it says EAGAIN: with `RESOLVE_BENEATH` or `RESOLVE_IN_ROOT`, the kernel gives
/// up on a `..` it is resolving when any mount or rename happens anywhere on the system meanwhile,
/// rather than risk a wrong answer, and asks the caller to retry (as runc does). A busy host (an
/// engine mounting other containers' roots) makes that happen: busybox's `/bin/sh` is a link to
/// `../bin/busybox`.
fn openat2_retrying(dir: &OwnedFd, path: &Path, how: OpenHow) -> Result<OwnedFd, Errno> {
    const ATTEMPTS: usize = 128;
    let mut last = Errno::EAGAIN;
    for _ in 0..ATTEMPTS {
        match openat2(dir, path, how) {
            Err(Errno::EAGAIN) => last = Errno::EAGAIN,
            other => return other,
        }
    }
    Err(last)
}

// ANCHOR: resolve_by_walk
/// The fallback: one component at a time, each opened with `O_NOFOLLOW` relative to the last, so no
/// symlink is ever followed; a symlink or `..` anywhere on the way is refused.
pub fn resolve_by_walk(root: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let start = open(root, flags, Mode::empty()).map_err(|errno| ResolveError::Sys {
        root: root.to_owned(),
        path: path.to_owned(),
        errno,
    })?;
    walk_beneath(&start, root, path)
}

fn walk_beneath(root: &OwnedFd, root_path: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    let fail = |errno| ResolveError::Sys {
        root: root_path.to_owned(),
        path: path.to_owned(),
        errno,
    };
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut current = root.try_clone().map_err(|e| fail(io_errno(&e)))?;
    for component in path.components() {
        let name: &OsStr = match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => {
                return Err(ResolveError::Escapes {
                    root: root_path.to_owned(),
                    path: path.to_owned(),
                });
            }
            Component::Normal(name) => name,
        };
        let next = openat(&current, name, flags, Mode::empty()).map_err(fail)?;
        // With O_PATH|O_NOFOLLOW, a symlink is opened as the link itself: look at what we got.
        let kind = SFlag::from_bits_truncate(fstat(&next).map_err(fail)?.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            return Err(ResolveError::Symlink {
                root: root_path.to_owned(),
                path: path.to_owned(),
            });
        }
        current = next;
    }
    Ok(current)
}
// ANCHOR_END: resolve_by_walk

/// Like [`resolve_in_root`], but creates the missing directories on the way (mode 0755), each with
/// `mkdirat` relative to its already-checked parent: a rootfs need not have `/proc` or `/dev/pts`.
pub fn ensure_dir_in_root(root: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    ensure_dir_beneath(&open_root(root)?, root, path)
}

/// [`ensure_dir_in_root`] from a descriptor of the root, as [`resolve_beneath`].
fn ensure_dir_beneath(root: &OwnedFd, root_path: &Path, path: &Path) -> Result<OwnedFd, ResolveError> {
    // Mostly the directory is there already (a rootfs has /proc and /dev): one lookup, not one per
    // component.
    if let Ok(fd) = resolve_beneath(root, root_path, path) {
        return Ok(fd);
    }
    let mut done = PathBuf::new();
    let mut parent = None;
    for component in relative(path).components() {
        done.push(component);
        let found = match resolve_beneath(root, root_path, &done) {
            Ok(fd) => fd,
            Err(ResolveError::Sys {
                errno: Errno::ENOENT, ..
            }) => {
                let name = component.as_os_str();
                let at = parent.as_ref().unwrap_or(root);
                match mkdirat(at.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(ResolveError::Sys {
                            root: root_path.to_owned(),
                            path: done,
                            errno,
                        });
                    }
                }
                resolve_beneath(root, root_path, &done)?
            }
            Err(e) => return Err(e),
        };
        parent = Some(found);
    }
    match parent {
        Some(dir) => Ok(dir),
        None => resolve_beneath(root, root_path, path),
    }
}

/// Like [`ensure_dir_in_root`] for a file (a bind mount of a file needs a file to cover): creates an
/// empty one, and its directories, if missing; the error names the target.
pub fn ensure_file_in_root(root: &Path, target: &Path) -> Result<OwnedFd, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", target.display());
    if let Ok(fd) = resolve_in_root(root, target) {
        return Ok(fd);
    }
    let parent = target.parent().unwrap_or(Path::new("/"));
    let name = target.file_name().ok_or_else(|| err(&"no file name"))?;
    let dir = ensure_dir_in_root(root, parent).map_err(|e| err(&e))?;
    // Create through the checked parent's fd, never by a path that could be swapped for a symlink.
    let flags = nix::fcntl::OFlag::O_CREAT
        | nix::fcntl::OFlag::O_NOFOLLOW
        | nix::fcntl::OFlag::O_CLOEXEC
        | nix::fcntl::OFlag::O_WRONLY;
    let parent_dir = std::fs::File::open(fd_path(&dir)).map_err(|e| err(&e))?;
    let created = nix::fcntl::openat(
        &parent_dir,
        name,
        flags,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| err(&e))?;
    drop(created);
    resolve_in_root(root, target).map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, symlink};

    /// A root with a file, a link out by an absolute target, one out by `..`, one that stays inside;
    /// and a directory outside it. Removed on drop.
    fn scratch(name: &str) -> tempfile::TempDir {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("mnt-demo-resolve-{name}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("root/etc")).unwrap();
        fs::create_dir_all(dir.join("outside")).unwrap();
        fs::write(dir.join("root/etc/os-release"), "inside").unwrap();
        symlink("/", dir.join("root/abs")).unwrap();
        symlink("../../outside", dir.join("root/etc/up")).unwrap();
        symlink("etc", dir.join("root/rel")).unwrap();
        tmp
    }

    fn ino(fd: &OwnedFd) -> u64 {
        fstat(fd).unwrap().st_ino
    }

    #[test]
    fn finds_paths_inside() {
        let scratch = scratch("inside");
        let dir = scratch.path();
        let root = dir.join("root");
        let want = fs::metadata(root.join("etc/os-release")).unwrap().ino();
        for resolve in [resolve_in_root, resolve_by_walk] {
            assert_eq!(ino(&resolve(&root, Path::new("/etc/os-release")).unwrap()), want);
            assert_eq!(ino(&resolve(&root, Path::new("etc/./os-release")).unwrap()), want);
        }
        // A relative symlink that stays inside is followed by openat2, refused by the walk.
        assert_eq!(
            ino(&resolve_in_root(&root, Path::new("rel/os-release")).unwrap()),
            want
        );
        assert!(matches!(
            resolve_by_walk(&root, Path::new("rel/os-release")),
            Err(ResolveError::Symlink { .. })
        ));
    }

    #[test]
    fn refuses_symlinks_out_of_the_root() {
        let scratch = scratch("out");
        let dir = scratch.path();
        let root = dir.join("root");
        for path in [
            "abs",
            "abs/tmp",
            "etc/up",
            "etc/up/x",
            "../outside",
            "etc/../../outside",
        ] {
            let got = resolve_in_root(&root, Path::new(path));
            assert!(
                matches!(got, Err(ResolveError::Escapes { .. })),
                "{path}: {got:?}"
            );
            assert_eq!(got.unwrap_err().errno(), Errno::EXDEV);
            let walked = resolve_by_walk(&root, Path::new(path));
            assert!(
                matches!(
                    walked,
                    Err(ResolveError::Symlink { .. } | ResolveError::Escapes { .. })
                ),
                "{path}: {walked:?}"
            );
        }
    }

    #[test]
    fn creates_missing_dirs_but_not_through_symlinks() {
        let scratch = scratch("mkdir");
        let dir = scratch.path();
        let root = dir.join("root");
        ensure_dir_in_root(&root, Path::new("/dev/pts")).unwrap();
        assert!(root.join("dev/pts").is_dir());
        let got = ensure_dir_in_root(&root, Path::new("/abs/created-outside"));
        assert!(matches!(got, Err(ResolveError::Escapes { .. })), "{got:?}");
        assert!(!Path::new("/created-outside").exists());
        assert!(!dir.join("outside/x").exists());
        assert!(ensure_dir_in_root(&root, Path::new("etc/up/x")).is_err());
        assert!(!dir.join("outside/x").exists());
    }
}
