//! What the runtime remembers of each container between its commands (runtime-spec `runtime.md`,
//! "State" and "Lifecycle"): `create`, `start`, `kill`, `delete` and `state` are separate processes,
//! often run by an engine minutes apart, so everything one of them learns the next needs is written
//! down here.
//!
//! One directory per container under the state root (`--root`; `/run/combined` as root,
//! `$XDG_RUNTIME_DIR/combined` otherwise, the same defaults runc and crun use for their names):
//! - `record.json`: the container's [`Record`], replaced atomically (write a temporary file, then
//!   rename(2) it over the old one), so a reader sees the old record or the new one, never half;
//! - `lock`: an flock(2) held by the command working on the container, so that two commands on one
//!   container (a `start` and a `delete`, say) take turns;
//! - `exec.fifo`: while the container is `created`, the gate its process waits at (`start` opens it).
//!
//! A container's status is not stored but observed: its process alive, and the same process (its start
//! time in /proc/<pid>/stat, field 22, guards against a reused PID), is `created` or `running`; gone,
//! it is `stopped`. So a runtime that crashed between two commands leaves nothing that lies.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::ContainerState;

use crate::private_dir::{self, DirError, Problem};

/// The spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Why the state of a container could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "invalid container id {0:?}: use letters, digits and . _ + - (not . or .. alone), at most 1024 characters"
    )]
    InvalidId(String),
    #[error("container {0:?} already exists (combined delete {0} removes it)")]
    Exists(String),
    #[error("container {0:?} does not exist (combined list shows the containers)")]
    NotFound(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `at` is the directory at fault: the root itself, or one above it.
    #[error(
        "refusing the state root {}: {} {problem}, and could change the records there: give a --root \
         that is uid {uid}'s own, not a link, under directories that are root's or uid {uid}'s and \
         writable by no one else (sticky, as /tmp is, is fine)",
        path.display(),
        at.display()
    )]
    Unsafe {
        path: PathBuf,
        at: PathBuf,
        problem: Problem,
        uid: u32,
    },
    #[error("the record {} is damaged: {source}", path.display())]
    Damaged {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The state root: where every container of this runtime has its directory.
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// `/run/combined` for root; `$XDG_RUNTIME_DIR/combined` for anyone else (the directory systemd
    /// makes for each logged-in user), and `/tmp/combined-<uid>` where there is none.
    pub fn default_path() -> PathBuf {
        let uid = nix::unistd::geteuid();
        if uid.is_root() {
            return PathBuf::from("/run/combined");
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("combined"),
            _ => PathBuf::from(format!("/tmp/combined-{uid}")),
        }
    }

    /// The root at `path`, made (mode 0700: records name host paths and pids) if it is missing.
    /// The root must be this user's own: a directory (not a link), owned by the caller, writable by
    /// no one else. `/tmp/combined-<uid>` is a name anyone can take first, and whoever could write
    /// the records could point `delete` at any of the caller's processes, or its hooks at their own
    /// program.
    ///
    /// So must every directory above it: each later command finds its container by this path again,
    /// and whoever could rename a directory on the way (another user's directory, or one others may
    /// write that is not sticky as /tmp is) could put a tree of theirs behind the path once it has
    /// been checked, with a record and a config whose hooks a root `delete` would run.
    pub fn open(path: &Path) -> Result<Root, StateError> {
        let uid = nix::unistd::geteuid().as_raw();
        let refused = |at: &Path, problem| StateError::Unsafe {
            path: path.to_owned(),
            at: at.to_owned(),
            problem,
            uid,
        };
        // Links are resolved on the way, but the root's own name must not be one: a link in a sticky
        // directory is its owner's to point elsewhere between two commands.
        if fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(refused(path, Problem::NotADirectory));
        }
        let path = private_dir::make_private(path).map_err(|error| match error {
            DirError::Io { path, source } => StateError::Io {
                what: "cannot make the state root at",
                path,
                source,
            },
            DirError::Unsafe { path: at, problem } => refused(&at, problem),
        })?;
        Ok(Root { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ids of every container with a directory here, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = fs::read_dir(&self.path).map_err(io_error("cannot list", &self.path))?;
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| valid_id(id))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Makes the directory of a new container and locks it; an id in use is refused.
    pub fn create(&self, id: &str) -> Result<Container, StateError> {
        let dir = self.dir_of(id)?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_owned()));
            }
            Err(e) => return Err(io_error("cannot create", &dir)(e)),
        }
        Container::lock(id, dir)
    }

    /// Opens and locks the directory of an existing container, waiting for a command that holds it.
    pub fn open_container(&self, id: &str) -> Result<Container, StateError> {
        let dir = self.dir_of(id)?;
        if !dir.is_dir() {
            return Err(StateError::NotFound(id.to_owned()));
        }
        let container = Container::lock(id, dir)?;
        // A `delete` that held the lock before us removed the directory: the container is gone.
        if !container.dir.join(RECORD).is_file() && !container.dir.exists() {
            return Err(StateError::NotFound(id.to_owned()));
        }
        Ok(container)
    }

    fn dir_of(&self, id: &str) -> Result<PathBuf, StateError> {
        if !valid_id(id) {
            return Err(StateError::InvalidId(id.to_owned()));
        }
        Ok(self.path.join(id))
    }
}

/// An id names a directory, so it must be one path component: runc's rule, letters, digits and
/// `. _ + -`, but not `.` or `..`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

const RECORD: &str = "record.json";
const LOCK: &str = "lock";
/// The gate a created container waits at until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

/// One container's directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct Container {
    id: String,
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Container {
    fn lock(id: &str, dir: PathBuf) -> Result<Container, StateError> {
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StateError::NotFound(id.to_owned()),
                _ => io_error("cannot open the lock", &path)(e),
            })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io_error("cannot lock", &path)(errno.into()))?;
        Ok(Container {
            id: id.to_owned(),
            dir,
            _lock: lock,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn exec_fifo(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// Where the copies of the config's late hooks are kept (`hooks::keep_late_hooks`): beside the
    /// container's directory rather than in it, since the `poststop` hooks run once the container,
    /// directory included, is deleted. The `~` keeps it out of the ids.
    pub fn kept_hooks(&self) -> PathBuf {
        self.dir.with_file_name(format!("~hooks-{}", self.id))
    }

    /// Writes the record atomically: a reader sees the old one or the new one.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let path = self.dir.join(RECORD);
        let partial = self.dir.join(format!("{RECORD}.partial"));
        let json = serde_json::to_vec_pretty(record).expect("a record always serializes");
        let mut file = File::create(&partial).map_err(io_error("cannot write", &partial))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(io_error("cannot write", &partial))?;
        fs::rename(&partial, &path).map_err(io_error("cannot replace", &path))
    }

    /// The record `create` wrote; a container whose `create` died before writing it has none.
    pub fn load(&self) -> Result<Option<Record>, StateError> {
        let path = self.dir.join(RECORD);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read", &path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Damaged { path, source })
    }

    /// Removes the directory, record, fifo and lock file; the lock itself goes when `self` does.
    pub fn remove(self) -> Result<(), StateError> {
        fs::remove_dir_all(&self.dir).map_err(io_error("cannot remove", &self.dir))
    }
}

/// What `create` learned that the later commands need.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub id: String,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The container's process, as the host sees it.
    pub pid: i32,
    /// Its start time (clock ticks after boot, /proc/<pid>/stat field 22): with the pid, it names one
    /// process for ever, where a pid alone is reused.
    pub start_time: u64,
    /// `start` has opened the gate.
    pub started: bool,
    /// When `create` finished, RFC 3339.
    pub created: String,
    /// The config's annotations, which `state` reports.
    pub annotations: HashMap<String, String>,
    /// The cgroup directories made for the container, which `delete` removes.
    pub cgroups: Vec<PathBuf>,
    /// An `exec` gave a process of the container CAP_SYS_PTRACE that its config did not: every later
    /// `exec` runs from the sealed copy, since that process could open the runtime's binary otherwise.
    #[serde(default)]
    pub ptrace_granted: bool,
}

impl Record {
    /// The container's status, observed now.
    pub fn status(&self) -> ContainerState {
        match (self.alive(), self.started) {
            (false, _) => ContainerState::Stopped,
            (true, false) => ContainerState::Created,
            (true, true) => ContainerState::Running,
        }
    }

    /// Whether the container's process still exists (a zombie not yet reaped counts as gone).
    pub fn alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|(time, zombie)| time == self.start_time && !zombie)
    }

    /// A descriptor that poll(2) reports readable once the container's process has exited
    /// (pidfd_open(2), Linux 5.3), for a command that waits on it without being its parent. None when
    /// the process is already gone, or the kernel has no pidfds: the caller then looks now and then.
    /// Checked after the open, so that a PID reused by another process is never the one watched.
    pub fn exit_watch(&self) -> Option<OwnedFd> {
        // SAFETY: pidfd_open takes a PID and flags, no pointers. No flags: a pidfd is always
        // close-on-exec, and O_CLOEXEC is not among the flags it takes (EINVAL).
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: a descriptor the kernel has just returned to this process, which nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        self.alive().then_some(fd)
    }

    /// The spec's state, as `state` prints it: the pid only while the process exists.
    pub fn oci_state(&self) -> serde_json::Value {
        let status = self.status();
        let mut state = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status.to_string(),
            "bundle": self.bundle,
            "annotations": self.annotations,
            "created": self.created,
        });
        if status != ContainerState::Stopped {
            state["pid"] = self.pid.into();
        }
        state
    }
}

/// A process's start time and whether it is a zombie, from /proc/<pid>/stat (proc(5): field 3 is the
/// state, field 22 the start time; the command name in field 2 may hold spaces and parentheses, so
/// the fields are counted from the last `)`).
pub fn process_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(22 - 3)?.parse().ok()?, zombie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_safe_path_component() {
        for good in ["a", "web-1", "x.y_z+1", &"a".repeat(1024)] {
            assert!(valid_id(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\n", "é", &"a".repeat(1025)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    fn record(pid: i32, start_time: u64) -> Record {
        Record {
            id: "t".into(),
            bundle: "/b".into(),
            pid,
            start_time,
            started: false,
            created: "2026-12-01T00:00:00Z".into(),
            annotations: HashMap::new(),
            cgroups: Vec::new(),
            ptrace_granted: false,
        }
    }

    #[test]
    fn status_is_observed_and_a_reused_pid_is_not_the_container() {
        let me = std::process::id() as i32;
        let (start, zombie) = process_start_time(me).unwrap();
        assert!(!zombie);
        let mut alive = record(me, start);
        assert_eq!(alive.status(), ContainerState::Created);
        alive.started = true;
        assert_eq!(alive.status(), ContainerState::Running);
        assert_eq!(alive.oci_state()["pid"], me);
        let reused = record(me, start + 1);
        assert_eq!(reused.status(), ContainerState::Stopped);
        assert!(reused.oci_state().get("pid").is_none(), "no pid once stopped");
    }

    /// What `start` and `delete` wait on: a descriptor that polls readable when the container's
    /// process exits, for a process the runtime did not start; none for a PID whose process is not
    /// the recorded one.
    #[test]
    fn the_exit_watch_wakes_when_the_process_exits_and_never_for_a_reused_pid() {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut sleeper = std::process::Command::new("sleep").arg("100").spawn().unwrap();
        let pid = sleeper.id() as i32;
        let (start, _) = process_start_time(pid).unwrap();
        assert!(record(pid, start + 1).exit_watch().is_none(), "a reused PID");
        let watch = record(pid, start).exit_watch().expect("a pidfd (Linux 5.3)");
        let readable = |timeout: u16| {
            let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(timeout)).unwrap() == 1
        };
        assert!(!readable(0), "readable while the process runs");
        sleeper.kill().unwrap();
        assert!(readable(5000), "not readable once the process has exited");
        sleeper.wait().unwrap();
    }

    #[test]
    fn records_round_trip_and_ids_are_taken_once() {
        let scratch = tempfile::tempdir().unwrap();
        let root = Root::open(&scratch.path().join("state")).unwrap();
        let container = root.create("c1").unwrap();
        assert!(
            container.load().unwrap().is_none(),
            "no record before create writes it"
        );
        let written = record(1, 2);
        container.save(&written).unwrap();
        assert_eq!(container.load().unwrap(), Some(written));
        assert!(matches!(root.create("c1"), Err(StateError::Exists(_))));
        assert!(matches!(root.create("../x"), Err(StateError::InvalidId(_))));
        assert_eq!(root.ids().unwrap(), ["c1"]);
        container.remove().unwrap();
        assert!(matches!(root.open_container("c1"), Err(StateError::NotFound(_))));
        assert!(root.ids().unwrap().is_empty());
    }

    #[test]
    fn a_state_root_others_can_write_or_a_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().unwrap();
        let open = scratch.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(Root::open(&open), Err(StateError::Unsafe { .. })));
        let link = scratch.path().join("link");
        let real = scratch.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(Root::open(&link), Err(StateError::Unsafe { .. })));
        assert!(Root::open(&scratch.path().join("fresh")).is_ok());
    }

    #[test]
    fn a_state_root_under_a_directory_others_can_change_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().unwrap();
        let shared = scratch.path().join("shared");
        fs::create_dir(&shared).unwrap();
        // Writable by anyone and not sticky: anyone could swap `combined` for a tree of their own.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let refused = Root::open(&shared.join("combined"));
        assert!(
            matches!(&refused, Err(StateError::Unsafe { at, .. }) if at == &shared),
            "{refused:?}"
        );
        assert!(
            !shared.join("combined").exists(),
            "made before its way was checked"
        );
        // Sticky, as /tmp is: only the owner of an entry may rename it.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(Root::open(&shared.join("combined")).is_ok());
        // Another user's directory, writable by its owner only: the attack on a root runtime.
        if nix::unistd::geteuid().is_root() {
            fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::lchown(&shared, Some(65534), Some(65534)).unwrap();
            let refused = Root::open(&shared.join("combined"));
            assert!(
                matches!(
                    &refused,
                    Err(StateError::Unsafe {
                        problem: Problem::Owner { owner: 65534, .. },
                        ..
                    })
                ),
                "{refused:?}"
            );
        }
    }
}
