//! Chapter 1, the UTS namespace: the hostname and NIS domain name a process sees, and nothing else
//! (uts_namespaces(7)). `uname -r`, the kernel release, is the same in every UTS namespace.
//!
//! Each function is one step of the lesson and returns plain data; `main.rs` prints it.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns};
use nix::sys::utsname::uname;
use nskit::ns::{Kind, NsId, Proc, ns_id, open_ns};
use nskit::{Child, ChildError, Spawn, SpawnError};

/// The kernel's limit on a hostname or domain name, in bytes (`__NEW_UTS_LEN`, sethostname(2)).
pub const MAX_NAME_LEN: usize = 64;

/// What one process sees through its UTS namespace; a child sends it to its parent as it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UtsView {
    pub ns: NsId,
    pub hostname: String,
    pub domainname: String,
    /// `uname -r`: the kernel release, the same in every UTS namespace.
    pub release: String,
}

impl fmt::Display for UtsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hostname={}  domainname={}  uname -r={}",
            self.hostname, self.domainname, self.release
        )
    }
}

// ANCHOR: observe
/// Reads the calling process's UTS namespace and the names it holds. `uname(2)` returns all of them;
/// the namespace decides `nodename` (the hostname) and `domainname`, not `release`.
pub fn observe() -> io::Result<UtsView> {
    let uts = uname()?;
    Ok(UtsView {
        ns: ns_id(Proc::Current, Kind::Uts)?,
        hostname: uts.nodename().to_string_lossy().into_owned(),
        domainname: uts.domainname().to_string_lossy().into_owned(),
        release: uts.release().to_string_lossy().into_owned(),
    })
}
// ANCHOR_END: observe

/// A hostname or domain name the kernel will accept, checked before any namespace is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid {what}: it is empty")]
    Empty { what: &'static str },
    #[error("invalid {what}: {len} bytes, the kernel allows at most {MAX_NAME_LEN}")]
    TooLong { what: &'static str, len: usize },
    #[error("invalid {what} {name:?}: it contains a NUL byte, which would cut it short")]
    Nul { what: &'static str, name: String },
    #[error("invalid {what} {name:?}: whitespace and control characters are not allowed")]
    Unprintable { what: &'static str, name: String },
}

impl Name {
    /// Checks `name` for use as `what` ("hostname" or "domainname"). The kernel itself only limits the
    /// length (EINVAL past 64 bytes); a NUL byte would silently truncate the name, and whitespace or
    /// control characters break every program that prints or parses it, so those are refused too.
    pub fn parse(what: &'static str, name: &str) -> Result<Name, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty { what });
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                what,
                len: name.len(),
            });
        }
        if name.contains('\0') {
            return Err(NameError::Nul {
                what,
                name: name.to_owned(),
            });
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(NameError::Unprintable {
                what,
                name: name.to_owned(),
            });
        }
        Ok(Name(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ANCHOR: set_names
/// Sets the hostname of the caller's UTS namespace. Needs CAP_SYS_ADMIN in the user namespace that
/// owns that UTS namespace: that is the whole rule (sethostname(2), user_namespaces(7)).
pub fn set_hostname(name: &str) -> Result<(), Errno> {
    nix::unistd::sethostname(name)
}

/// Sets the NIS domain name of the caller's UTS namespace, under the same rule.
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    let bytes = OsStr::new(name).as_bytes();
    // SAFETY: setdomainname(2) reads exactly `bytes.len()` bytes from a pointer valid for that length;
    // it needs no NUL terminator and keeps no reference after returning.
    let rc = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
    Errno::result(rc).map(drop)
}
// ANCHOR_END: set_names

/// Whether this process could rename the host: it holds CAP_SYS_ADMIN and is in the initial UTS
/// namespace's owning user namespace (root on the host).
pub fn could_rename_host() -> bool {
    nskit::userns::is_root()
        && caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).is_ok_and(|c| c)
}

/// Step 2, failure first: tries to set the host's hostname to the name it already has, so that even a
/// success would change nothing. For an ordinary user this fails with EPERM.
pub fn try_rename_host_directly() -> Result<(), Errno> {
    let current = nix::unistd::gethostname()?;
    nix::unistd::sethostname(current)
}

// ANCHOR: userns_only
/// Step 2, continued: a child with a new *user* namespace but no new UTS namespace is uid 0 with every
/// capability, yet sethostname fails with EPERM: its capabilities count only in namespaces its user
/// namespace owns, and the host's UTS namespace is owned by the initial user namespace.
pub fn try_rename_host_from_userns() -> Result<Result<(), Errno>, StepError> {
    let mut child = Spawn::new(CloneFlags::CLONE_NEWUSER).run(|channel| {
        let renamed = try_rename_host_directly().map_err(|errno| ChildError::sys("sethostname", errno));
        i32::from(channel.reply(&renamed).is_err())
    })?;
    let reply = child.channel().recv_reply::<()>();
    let _ = child.wait();
    match reply {
        Ok(()) => Ok(Ok(())),
        Err(nskit::StepError::Child(e)) => Ok(Err(e.errno().unwrap_or(Errno::EIO))),
        Err(other) => Err(other.into()),
    }
}
// ANCHOR_END: userns_only

/// A child that lives in its own UTS namespace until [`Renamed::finish`].
#[derive(Debug)]
pub struct Renamed {
    child: Child,
    /// What the child saw after renaming itself.
    pub view: UtsView,
}

// ANCHOR: rename_in_child
/// Step 3: a child in a new UTS namespace (and a new user namespace when the caller is not root) sets
/// both names and reports what it sees. It then waits, so that its namespace stays alive to be joined.
pub fn spawn_renamed(spawn: &Spawn, hostname: &Name, domainname: &Name) -> Result<Renamed, StepError> {
    let mut child = spawn.run(|channel| {
        let renamed = set_hostname(hostname.as_str()).and_then(|()| set_domainname(domainname.as_str()));
        let view = renamed
            .map_err(io::Error::from)
            .and_then(|()| observe())
            .map_err(|e| ChildError::new("rename", e));
        if channel.reply(&view).is_err() || channel.expect("exit").is_err() {
            return 1;
        }
        0
    })?;
    let view = child.channel().recv_reply()?;
    Ok(Renamed { child, view })
}
// ANCHOR_END: rename_in_child

/// The flags for step 3's child: a new UTS namespace, plus a user namespace when not root.
pub fn child_spawn(force_userns: bool) -> Spawn {
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUTS);
    if force_userns {
        spawn.user(nskit::UserNs::Always)
    } else {
        spawn
    }
}

impl Renamed {
    pub fn pid(&self) -> nix::unistd::Pid {
        self.child.pid()
    }

    /// Opens handles on the child's namespaces: its UTS namespace, and its user namespace when it has
    /// one (joining a UTS namespace needs CAP_SYS_ADMIN in the user namespace that owns it).
    pub fn handles(&self) -> io::Result<NsHandles> {
        let who = Proc::Pid(self.child.pid());
        let user = if self.child.in_user_ns() {
            Some(open_ns(who, Kind::User)?)
        } else {
            None
        };
        Ok(NsHandles {
            user,
            uts: open_ns(who, Kind::Uts)?,
        })
    }

    /// Lets the child exit and reaps it.
    pub fn finish(mut self) -> Result<nskit::Exit, StepError> {
        let lost = |e| StepError::from(nskit::StepError::Channel(e));
        self.child.channel().send("exit").map_err(lost)?;
        self.child.wait().map_err(lost)
    }
}

/// Open `/proc/<pid>/ns/*` files: while open, each keeps its namespace alive.
#[derive(Debug)]
pub struct NsHandles {
    pub user: Option<File>,
    pub uts: File,
}

// ANCHOR: join
/// Step 4: a second process joins the namespaces behind `handles` with setns(2) and reports what it
/// sees. It joins the user namespace first, which grants it the capability the UTS join needs.
pub fn join_and_observe(handles: &NsHandles) -> Result<UtsView, StepError> {
    let mut joiner = Spawn::new(CloneFlags::empty())
        .user(nskit::UserNs::Never)
        .run(|channel| {
            let joined = handles
                .user
                .as_ref()
                .map_or(Ok(()), |user| setns(user, CloneFlags::CLONE_NEWUSER))
                .and_then(|()| setns(&handles.uts, CloneFlags::CLONE_NEWUTS));
            let view = joined
                .map_err(io::Error::from)
                .and_then(|()| observe())
                .map_err(|e| ChildError::new("setns", e));
            i32::from(channel.reply(&view).is_err())
        })?;
    let view = joiner.channel().recv_reply()?;
    joiner.wait().map_err(nskit::StepError::Channel)?;
    Ok(view)
}
// ANCHOR_END: join

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("cannot bind-mount the namespace file onto {path}: {errno}")]
    Bind { path: PathBuf, errno: Errno },
}

impl From<SpawnError> for StepError {
    fn from(e: SpawnError) -> StepError {
        StepError::Child(nskit::StepError::Spawn(e))
    }
}

// ANCHOR: bind
/// A namespace file bind-mounted onto an ordinary file, as `ip netns add` does: the mount is a handle on
/// the namespace that outlives every process and every fd. Dropping this unmounts and removes the file.
#[derive(Debug)]
pub struct NsBinding {
    path: PathBuf,
}

/// Bind-mounts `/proc/<pid>/ns/uts` onto `path` (created empty). Needs CAP_SYS_ADMIN in the user
/// namespace owning the caller's mount namespace: root, for the host's.
pub fn bind_ns_file(pid: nix::unistd::Pid, path: &Path) -> Result<NsBinding, StepError> {
    let fail = |errno| StepError::Bind {
        path: path.to_owned(),
        errno,
    };
    File::create(path).map_err(|e| fail(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    let binding = NsBinding {
        path: path.to_owned(),
    };
    let source = Proc::Pid(pid).ns_path(Kind::Uts);
    mount(Some(&source), path, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(fail)?;
    Ok(binding)
}
// ANCHOR_END: bind

impl NsBinding {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace the bind mount names (stat of the mounted-over file gives the nsfs inode).
    pub fn ns_id(&self) -> io::Result<NsId> {
        use std::os::unix::fs::MetadataExt;
        Ok(NsId {
            kind: Kind::Uts,
            inode: fs::metadata(&self.path)?.ino(),
        })
    }

    /// A handle on the namespace, opened through the bind mount.
    pub fn open(&self) -> io::Result<NsHandles> {
        Ok(NsHandles {
            user: None,
            uts: File::open(&self.path)?,
        })
    }
}

impl Drop for NsBinding {
    fn drop(&mut self) {
        // MNT_DETACH: still unmount if someone has the file open.
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(Name::parse("hostname", "demo").is_ok());
        assert!(Name::parse("hostname", &"a".repeat(64)).is_ok());
        assert_eq!(
            Name::parse("hostname", ""),
            Err(NameError::Empty { what: "hostname" })
        );
        assert_eq!(
            Name::parse("hostname", &"a".repeat(65)),
            Err(NameError::TooLong {
                what: "hostname",
                len: 65
            })
        );
        assert!(matches!(
            Name::parse("hostname", "a\0b"),
            Err(NameError::Nul { .. })
        ));
        assert!(matches!(
            Name::parse("domainname", "a b"),
            Err(NameError::Unprintable { .. })
        ));
        assert!(matches!(
            Name::parse("domainname", "a\nb"),
            Err(NameError::Unprintable { .. })
        ));
        // Multi-byte characters count in bytes, as the kernel counts them.
        assert!(matches!(
            Name::parse("hostname", &"é".repeat(33)),
            Err(NameError::TooLong { len: 66, .. })
        ));
    }

    #[test]
    fn view_survives_the_channel() {
        let view = UtsView {
            ns: NsId {
                kind: Kind::Uts,
                inode: 7,
            },
            hostname: "h".into(),
            domainname: "(none)".into(),
            release: "6.1".into(),
        };
        let line = serde_json::to_string(&view).unwrap();
        assert_eq!(serde_json::from_str::<UtsView>(&line).unwrap(), view);
        assert!(serde_json::from_str::<UtsView>("[\"x\"]").is_err());
    }
}
