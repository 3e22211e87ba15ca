//! A directory no other user can change: the image cache, the compiled seccomp filters and the OCI
//! state root. Each is found by its path again at every run, and what it holds is trusted (root runs
//! the images unpacked there, loads the filters, runs the hooks a state record names), so whoever
//! could rename a directory on the way could put a tree of their own behind the path once it had been
//! checked. path_resolution(7); inode(7) on the sticky bit.
//!
//! The rule, one for all three: every directory above belongs to root or to the caller and is closed
//! to everyone else's writes, unless it is sticky as /tmp is (there only a name's owner can rename or
//! remove it); the directory itself belongs to the caller and is closed to everyone else's writes,
//! sticky or not (others could add names to it). Nothing is made before the way to it has passed.

use std::fmt;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What makes a directory on the way unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// It belongs to another user (or, for the directory itself, to anyone but the caller).
    Owner { owner: u32, me: u32 },
    /// Users other than its owner may write to it.
    Writable { mode: u32 },
    /// A name on the way is not a directory.
    NotADirectory,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Owner { owner, me } => write!(f, "belongs to uid {owner}, not to you (uid {me})"),
            Problem::Writable { mode } => write!(f, "can be written by other users (mode {mode:04o})"),
            Problem::NotADirectory => f.write_str("is not a directory"),
        }
    }
}

/// Why [`make_private`] refused or failed; `path` is the directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} {problem}", path.display())]
    Unsafe { path: PathBuf, problem: Problem },
}

/// Which rule a directory is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Above the directory: root's or the caller's, sticky allowed.
    Ancestor,
    /// The directory itself: the caller's, closed to others even if sticky.
    Itself,
    /// A file beside it that anyone could have made first in a sticky parent (a lock file): root's or
    /// the caller's, closed to others' writes.
    File,
}

/// What is wrong with `meta` as a `role` on the way, for the caller `me`; none when it is safe.
pub fn problem_with(meta: &fs::Metadata, me: u32, role: Role) -> Option<Problem> {
    let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
    let others_write = mode & 0o022 != 0;
    match role {
        Role::Ancestor | Role::Itself if !meta.is_dir() => Some(Problem::NotADirectory),
        Role::Itself if owner != me => Some(Problem::Owner { owner, me }),
        Role::Ancestor | Role::File if owner != me && owner != 0 => Some(Problem::Owner { owner, me }),
        Role::Ancestor if others_write && mode & 0o1000 == 0 => Some(Problem::Writable { mode }),
        Role::Itself | Role::File if others_write => Some(Problem::Writable { mode }),
        _ => None,
    }
}

/// `dir`, made (mode 0700) with whatever is missing above it once the way there has passed, and
/// returned absolute and without symlinks, so that nothing later goes through a link someone could
/// turn. An existing `dir` is checked as it is, never changed.
pub fn make_private(dir: &Path) -> Result<PathBuf, DirError> {
    let me = nix::unistd::geteuid().as_raw();
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| DirError::Io { path, source }
    };
    let wanted = std::path::absolute(dir).map_err(io_error(dir))?;
    let (existing, missing) = split_existing(&wanted).map_err(io_error(&wanted))?;
    let mut path = fs::canonicalize(existing).map_err(io_error(existing))?;
    let itself = missing.is_empty();
    check(&path, me, if itself { Role::Itself } else { Role::Ancestor })?;
    for ancestor in path.ancestors().skip(1) {
        check(ancestor, me, Role::Ancestor)?;
    }
    for (index, name) in missing.iter().enumerate() {
        path.push(name);
        match DirBuilder::new().mode(0o700).create(&path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_error(&path)(e)),
            _ => {}
        }
        // In a directory only root and the caller can change, only they could have made it first.
        let last = index + 1 == missing.len();
        check(&path, me, if last { Role::Itself } else { Role::Ancestor })?;
    }
    Ok(path)
}

fn check(path: &Path, me: u32, role: Role) -> Result<(), DirError> {
    let meta = fs::symlink_metadata(path).map_err(|source| DirError::Io {
        path: path.to_owned(),
        source,
    })?;
    match problem_with(&meta, me, role) {
        Some(problem) => Err(DirError::Unsafe {
            path: path.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// The longest part of `path` that exists, and the names below it that do not.
fn split_existing(path: &Path) -> io::Result<(&Path, Vec<&std::ffi::OsStr>)> {
    let mut existing = path;
    let mut missing = Vec::new();
    loop {
        match fs::symlink_metadata(existing) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A `..` below a missing directory: nothing could be made there.
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                missing.push(name);
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
    missing.reverse();
    Ok((existing, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_directory_is_made_private_under_a_safe_way() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("a/b/c");
        let made = make_private(&dir).unwrap();
        assert_eq!(made, fs::canonicalize(&dir).unwrap());
        for path in [scratch.path().join("a"), scratch.path().join("a/b"), dir] {
            assert_eq!(
                fs::metadata(&path).unwrap().mode() & 0o777,
                0o700,
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn nothing_is_made_under_a_directory_others_can_write() {
        let scratch = tempfile::tempdir().unwrap();
        let open = scratch.path().join("open");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let refused = make_private(&open.join("cache"));
        assert!(
            matches!(&refused, Err(DirError::Unsafe { path, problem: Problem::Writable { mode: 0o777 } }) if path == &open),
            "{refused:?}"
        );
        assert!(!open.join("cache").exists(), "made before the way was checked");
        chmod(&open, 0o1777);
        assert!(
            make_private(&open.join("cache")).is_ok(),
            "a sticky ancestor is safe"
        );
    }

    #[test]
    fn the_directory_itself_is_refused_when_others_can_write_it_even_if_sticky() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("dir");
        fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o1777);
        assert!(matches!(
            make_private(&dir),
            Err(DirError::Unsafe {
                problem: Problem::Writable { .. },
                ..
            })
        ));
        chmod(&dir, 0o755);
        assert!(make_private(&dir).is_ok(), "others may read it");
    }

    #[test]
    fn a_file_on_the_way_is_not_a_directory() {
        let scratch = tempfile::tempdir().unwrap();
        let file = scratch.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            make_private(&file),
            Err(DirError::Unsafe {
                problem: Problem::NotADirectory,
                ..
            })
        ));
    }

    #[test]
    fn as_root_a_directory_of_another_user_on_the_way_is_refused() {
        if !nskit::testing::require_root("as_root_a_directory_of_another_user_on_the_way_is_refused") {
            return;
        }
        let scratch = tempfile::tempdir().unwrap();
        let theirs = scratch.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        assert!(matches!(
            make_private(&theirs.join("cache")),
            Err(DirError::Unsafe {
                problem: Problem::Owner { owner: 65534, me: 0 },
                ..
            })
        ));
        assert!(matches!(
            make_private(&theirs),
            Err(DirError::Unsafe {
                problem: Problem::Owner { owner: 65534, me: 0 },
                ..
            })
        ));
    }
}
