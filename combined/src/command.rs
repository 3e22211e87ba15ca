//! The container's command, made ready for execve(2) before anything exists: its environment (nothing
//! from the host but TERM), its program found the way execvp(3) would search PATH, but inside the root
//! filesystem only (the mount chapter's `open_in_root`, openat2(2) with RESOLVE_IN_ROOT), and its
//! strings as C strings.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use uts_demo::Name;

use crate::values::EnvVar;

/// The PATH a container starts with, as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment the command gets: nothing from the host but TERM, then the defaults, then `--env`.
pub fn environment(hostname: &Name, extra: &[EnvVar]) -> Vec<EnvVar> {
    let mut env = vec![
        EnvVar {
            key: "PATH".into(),
            value: DEFAULT_PATH.into(),
        },
        EnvVar {
            key: "HOME".into(),
            value: "/root".into(),
        },
        EnvVar {
            key: "HOSTNAME".into(),
            value: hostname.to_string(),
        },
    ];
    if let Ok(term) = std::env::var("TERM") {
        env.push(EnvVar {
            key: "TERM".into(),
            value: term,
        });
    }
    for var in extra {
        env.retain(|e| e.key != var.key);
        env.push(var.clone());
    }
    env
}

/// Looks `program` up the way execvp would, in `path_var`, under `root` (the rootfs as seen from the
/// host). Returns the path inside the container. Symlinks are followed within the rootfs only.
pub fn find_command(root: &Path, program: &str, path_var: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        path_var
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(program))
            .collect()
    };
    candidates
        .into_iter()
        .find(|inside| is_executable_in(root, inside))
}

/// What a path names in the root filesystem, as far as running it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Executable,
    Directory,
    NotExecutable,
    Missing,
}

/// Whether `inside` (an absolute path in the container) is an executable file under `root`, resolving
/// symlinks as the container would: an absolute link target is relative to `root`.
fn is_executable_in(root: &Path, inside: &Path) -> bool {
    lookup_in(root, inside) == Lookup::Executable
}

/// What `inside` is under `root`, found as the container will find it: the mount chapter's
/// `open_in_root` follows symlinks with `root` as `/` (absolute targets and `..` never leave it), so
/// nothing outside the rootfs is ever looked at.
pub fn lookup_in(root: &Path, inside: &Path) -> Lookup {
    let Ok(fd) = mnt_demo::resolve::open_in_root(root, inside) else {
        return Lookup::Missing;
    };
    // fstat(2) of the `O_PATH` descriptor itself, not of its /proc/self/fd path, another lookup.
    let Ok(stat) = nix::sys::stat::fstat(&fd) else {
        return Lookup::Missing;
    };
    let kind = stat.st_mode & libc::S_IFMT;
    match kind {
        libc::S_IFDIR => Lookup::Directory,
        libc::S_IFREG if stat.st_mode & 0o111 != 0 => Lookup::Executable,
        _ => Lookup::NotExecutable,
    }
}

/// The command as C strings for execve; refuses NUL bytes.
pub fn c_strings(items: &[String]) -> Result<Vec<CString>, String> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let host = Name::parse("hostname", "box").unwrap();
        let env = environment(&host, &["PATH=/x".parse().unwrap(), "K=v".parse().unwrap()]);
        assert_eq!(env.iter().filter(|e| e.key == "PATH").count(), 1);
        assert!(env.contains(&EnvVar {
            key: "PATH".into(),
            value: "/x".into()
        }));
        assert!(env.contains(&EnvVar {
            key: "HOSTNAME".into(),
            value: "box".into()
        }));
    }

    #[test]
    fn finds_commands_inside_the_rootfs_only() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/tool"), "").unwrap();
        std::fs::set_permissions(root.join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(root.join("bin/data"), "").unwrap();
        std::os::unix::fs::symlink("/bin/tool", root.join("bin/alias")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/env", root.join("bin/hostlink")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../../usr/bin/env", root.join("bin/uplink")).unwrap();
        assert_eq!(find_command(root, "tool", DEFAULT_PATH), Some("/bin/tool".into()));
        assert_eq!(
            find_command(root, "alias", DEFAULT_PATH),
            Some("/bin/alias".into())
        );
        assert_eq!(
            find_command(root, "/bin/tool", DEFAULT_PATH),
            Some("/bin/tool".into())
        );
        assert_eq!(find_command(root, "data", DEFAULT_PATH), None, "not executable");
        assert_eq!(
            find_command(root, "hostlink", DEFAULT_PATH),
            None,
            "the link points outside the rootfs"
        );
        assert_eq!(
            find_command(root, "uplink", DEFAULT_PATH),
            None,
            "`..` stops at the rootfs's top, where there is no /usr/bin/env"
        );
        assert_eq!(find_command(root, "missing", DEFAULT_PATH), None);
    }
}
