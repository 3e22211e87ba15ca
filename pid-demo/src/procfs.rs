//! `/proc` seen through PID namespaces: reading a process's PIDs from `/proc/<pid>/status` (proc(5)),
//! listing processes the way `ps` does, and mounting a fresh `/proc` (pid_namespaces(7), "/proc and PID
//! namespaces").
//!
//! A proc filesystem belongs to the PID namespace of the process that mounted it, not to the process
//! that reads it. So a child in a new PID namespace that still has the host's `/proc` sees the host's
//! processes, under the host's PIDs, until it mounts a proc of its own.

use std::fs;
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

/// One process, as the `status` file of a proc mount describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// `Name:`, the command name (`comm`, 15 bytes at most).
    pub name: String,
    /// `State:`, its first letter: `R`, `S`, `Z` (zombie)...
    pub state: char,
    /// `Pid:`, the PID in the namespace of the proc mount that was read.
    pub pid: i32,
    /// `PPid:`, the parent's PID in that namespace, or 0 when the parent is not visible there.
    pub ppid: i32,
    /// `NSpid:`, the PID in every namespace from the proc mount's down to the process's own.
    pub nspid: Vec<i32>,
}

// ANCHOR: read_status
/// Reads `<proc_root>/<pid>/status`. The PIDs in it are counted in the PID namespace of the proc
/// mount: the `NSpid:` line lists the process's PID in that namespace first, then in each nested
/// namespace down to the one the process lives in.
pub fn read_status(proc_root: &Path, pid: i32) -> io::Result<Status> {
    parse_status(&fs::read_to_string(
        proc_root.join(pid.to_string()).join("status"),
    )?)
}
// ANCHOR_END: read_status

/// Parses the text of a `status` file.
pub fn parse_status(text: &str) -> io::Result<Status> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {key} line in status")))
    };
    let number = |key: &str| -> io::Result<i32> {
        field(key)?
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("malformed {key} line")))
    };
    let nspid = field("NSpid")?
        .split_whitespace()
        .map(|p| p.parse())
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "malformed NSpid line"))?;
    Ok(Status {
        name: field("Name")?.to_owned(),
        state: field("State")?.chars().next().unwrap_or('?'),
        pid: number("Pid")?,
        ppid: number("PPid")?,
        nspid,
    })
}

// ANCHOR: ps
/// What `ps -e` shows: every process the proc mount at `proc_root` lists, by PID. A process that exits
/// while the directory is read is left out, as `ps` leaves it out.
pub fn list_processes(proc_root: &Path) -> io::Result<Vec<Status>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(proc_root)? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<i32>() else {
            continue; // not a process: /proc/self, /proc/meminfo...
        };
        match read_status(proc_root, pid) {
            Ok(status) => found.push(status),
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    found.sort_by_key(|s| s.pid);
    Ok(found)
}
// ANCHOR_END: ps

/// How deep the calling process's PID namespace is: 0 in the initial namespace, 1 in a child of it...
/// (the number of entries in its own `NSpid:` line, minus one).
pub fn pid_ns_level() -> io::Result<usize> {
    let status = parse_status(&fs::read_to_string("/proc/self/status")?)?;
    Ok(status.nspid.len().saturating_sub(1))
}

pub use nskit::mount::{MountError, make_mounts_private};

// ANCHOR: mount_proc
/// Mounts a new proc filesystem on `target` (usually `/proc`, or `<rootfs>/proc` before pivot_root).
///
/// The new proc shows the PID namespace of the *caller*, so call it from a process inside the new PID
/// namespace (its init, typically), in a mount namespace of its own whose mounts are private
/// (nskit's [`make_mounts_private`]). Inside a user namespace the kernel further requires that this user
/// namespace owns the caller's PID namespace, and that a proc already mounted is fully visible (no
/// file in it covered by another mount). `nosuid,nodev,noexec` are what every runtime uses.
pub fn mount_proc(target: &Path) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), target, Some("proc"), flags, None::<&str>).map_err(|errno| {
        let error = MountError::of("mount proc on", target)(errno);
        match errno {
            Errno::EPERM => error.hinted(
                ": mounting proc needs CAP_SYS_ADMIN in the user namespace that owns both the mount \
                 namespace and the caller's PID namespace, and a fully visible /proc (no covered paths)",
            ),
            _ => error,
        }
    })
}
// ANCHOR_END: mount_proc

/// The two calls above in order, on `/proc`: what a new PID namespace's init does so that `ps`, `top`
/// and `/proc/self` describe its namespace.
pub fn remount_proc() -> Result<(), MountError> {
    make_mounts_private()?;
    mount_proc(Path::new("/proc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Name:\tinit-L2\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t5\nNgid:\t0\n\
                          Pid:\t5\nPPid:\t1\nTracerPid:\t0\nNSpid:\t12350\t5\t1\nNSpgid:\t1\n";

    #[test]
    fn status_is_parsed() {
        let s = parse_status(SAMPLE).unwrap();
        assert_eq!(
            s,
            Status {
                name: "init-L2".into(),
                state: 'S',
                pid: 5,
                ppid: 1,
                nspid: vec![12350, 5, 1],
            }
        );
        assert!(parse_status("Name:\tx\n").is_err());
    }

    #[test]
    fn own_status_matches_getpid() {
        let me = read_status(Path::new("/proc"), std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert_eq!(me.nspid.first(), Some(&me.pid));
        assert_eq!(pid_ns_level().unwrap(), me.nspid.len() - 1);
    }

    #[test]
    fn listing_includes_self_and_is_sorted() {
        let all = list_processes(Path::new("/proc")).unwrap();
        assert!(all.iter().any(|s| s.pid == std::process::id() as i32));
        assert!(all.windows(2).all(|w| w[0].pid < w[1].pid));
    }
}
