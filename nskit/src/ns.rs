//! Naming a namespace: every namespace is an inode in the nsfs filesystem, reachable through the magic
//! links `/proc/<pid>/ns/<kind>`; two processes share a namespace exactly when those inodes are equal
//! (namespaces(7), "The /proc/[pid]/ns/ directory").

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// The namespace kinds Linux has, in the order `clone(2)` documents them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    /// The PID namespace this process's *next* children will be born into (pid_namespaces(7)).
    PidForChildren,
    Time,
    User,
    Uts,
}

impl Kind {
    /// The file name under `/proc/<pid>/ns/`, which is also the prefix the kernel prints (`uts:[…]`).
    pub const fn proc_name(self) -> &'static str {
        match self {
            Kind::Cgroup => "cgroup",
            Kind::Ipc => "ipc",
            Kind::Mnt => "mnt",
            Kind::Net => "net",
            Kind::Pid => "pid",
            Kind::PidForChildren => "pid_for_children",
            Kind::Time => "time",
            Kind::User => "user",
            Kind::Uts => "uts",
        }
    }

    /// The `CLONE_NEW*` flag that creates a namespace of this kind (and that `setns(2)` checks).
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Mnt => CloneFlags::CLONE_NEWNS,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Pid | Kind::PidForChildren => CloneFlags::CLONE_NEWPID,
            // nix 0.32 has no CLONE_NEWTIME constant; the kernel's value is 0x80.
            Kind::Time => CloneFlags::from_bits_retain(0x80),
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

/// Which process's `/proc` directory to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    /// The calling process (`/proc/self`).
    Current,
    /// Another process, by its PID as seen from the caller's PID namespace.
    Pid(Pid),
}

impl Proc {
    /// `/proc/self` or `/proc/<pid>`.
    pub fn dir(self) -> PathBuf {
        match self {
            Proc::Current => PathBuf::from("/proc/self"),
            Proc::Pid(pid) => PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// `/proc/<pid>/ns/<kind>`.
    pub fn ns_path(self, kind: Kind) -> PathBuf {
        self.dir().join("ns").join(kind.proc_name())
    }
}

/// One namespace, named the way `readlink /proc/<pid>/ns/<kind>` names it: `uts:[4026531838]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NsId {
    pub kind: Kind,
    pub inode: u64,
}

impl NsId {
    /// Parses the kernel's own spelling, `kind:[inode]`, as `readlink` prints it.
    pub fn parse_link(kind: Kind, link: &str) -> Option<NsId> {
        let rest = link.strip_prefix(kind.proc_name())?.strip_prefix(":[")?;
        let inode = rest.strip_suffix(']')?.parse().ok()?;
        Some(NsId { kind, inode })
    }
}

impl fmt::Display for NsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:[{}]", self.kind.proc_name(), self.inode)
    }
}

/// Reads which namespace of `kind` the process `who` is in: `stat(2)` follows the magic link to the
/// nsfs inode, whose number is the namespace's identity.
pub fn ns_id(who: Proc, kind: Kind) -> io::Result<NsId> {
    let meta = std::fs::metadata(who.ns_path(kind))?;
    Ok(NsId {
        kind,
        inode: meta.ino(),
    })
}

/// Opens `/proc/<pid>/ns/<kind>`. The open file is a handle on the namespace: it keeps the namespace
/// alive after its last process exits, and `setns(2)` joins it.
pub fn open_ns(who: Proc, kind: Kind) -> io::Result<File> {
    File::open(who.ns_path(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_readlink() {
        let id = NsId {
            kind: Kind::Uts,
            inode: 4026531838,
        };
        assert_eq!(id.to_string(), "uts:[4026531838]");
        assert_eq!(NsId::parse_link(Kind::Uts, "uts:[4026531838]"), Some(id));
        assert_eq!(NsId::parse_link(Kind::Uts, "ipc:[4026531838]"), None);
        assert_eq!(NsId::parse_link(Kind::Uts, "uts:[x]"), None);
    }

    #[test]
    fn own_inode_equals_readlink() {
        for kind in [Kind::Uts, Kind::Ipc, Kind::Mnt, Kind::Net, Kind::Pid, Kind::User] {
            let path = Proc::Current.ns_path(kind);
            let link = std::fs::read_link(&path).unwrap();
            let parsed = NsId::parse_link(kind, link.to_str().unwrap()).unwrap();
            assert_eq!(ns_id(Proc::Current, kind).unwrap(), parsed, "{}", path.display());
        }
    }
}
