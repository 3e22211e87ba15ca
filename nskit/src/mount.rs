//! Mount plumbing the chapters need before their own lesson starts (mount(2), mount_namespaces(7)):
//! keeping a new mount namespace's mounts from propagating back to the host, and one error for a
//! mount that failed, naming what was mounted where.
//!
//! The mount chapter teaches propagation itself (`mnt_demo::rootfs::isolate_root`, its propagation
//! lab); the PID and IPC chapters, which only need a private `/proc` or `/dev/mqueue`, call this.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

/// Why a mount failed: what was being done, on which path, the errno, and a hint when the errno has
/// a usual cause (`""` otherwise).
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {target}: {errno}{hint}")]
pub struct MountError {
    pub what: &'static str,
    pub target: PathBuf,
    pub errno: Errno,
    pub hint: &'static str,
}

impl MountError {
    /// For `map_err`: the failure of `what` on `target`, without a hint.
    pub fn of(what: &'static str, target: impl Into<PathBuf>) -> impl FnOnce(Errno) -> MountError {
        let target = target.into();
        move |errno| MountError {
            what,
            target,
            errno,
            hint: "",
        }
    }

    /// The same error, with `hint` (which starts with `": "`) after the errno.
    pub fn hinted(self, hint: &'static str) -> MountError {
        MountError { hint, ..self }
    }
}

/// Makes every mount in the caller's mount namespace private (`MS_REC|MS_PRIVATE` on `/`), so that the
/// mounts made next do not propagate to the host. Call it first, in a mount namespace of one's own:
/// systemd makes `/` shared, and a new mount namespace starts as a copy with the same propagation.
pub fn make_mounts_private() -> Result<(), MountError> {
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(MountError::of("make private the mounts under", "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_call_the_path_and_the_hint() {
        let plain = MountError::of("mount proc on", "/x/proc")(Errno::ENOENT);
        assert_eq!(
            plain.to_string(),
            "cannot mount proc on /x/proc: ENOENT: No such file or directory"
        );
        let hinted = MountError::of("mount proc on", "/proc")(Errno::EPERM).hinted(": needs CAP_SYS_ADMIN");
        assert!(
            hinted
                .to_string()
                .ends_with("Operation not permitted: needs CAP_SYS_ADMIN"),
            "{hinted}"
        );
        assert_eq!(hinted.errno, Errno::EPERM);
    }
}
