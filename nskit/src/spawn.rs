//! Spawning a child into new namespaces: `clone(2)` with the `CLONE_NEW*` flags, on a stack of its own,
//! connected to the parent by a [`Channel`].
//!
//! When the child gets a new user namespace, the story is the one every container runtime tells
//! (user_namespaces(7)):
//! 1. the parent clones the child with `CLONE_NEWUSER` and the other flags in one call, so the new user
//!    namespace owns the other new namespaces;
//! 2. the child waits on the channel: until its maps are written its uid is the overflow uid 65534;
//! 3. the parent writes `setgroups` (`deny` when unprivileged), `gid_map` and `uid_map`, mapping its own
//!    ids to 0 inside, and says `go`;
//! 4. the child checks it really holds CAP_SYS_ADMIN in its namespace (a host may strip it, as Ubuntu's
//!    AppArmor does) and only then runs the chapter's code.

use std::io;
use std::panic::{self, AssertUnwindSafe};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Pid, getegid, geteuid};

use crate::channel::Channel;
use crate::idmap::{IdMap, WriteError, write_maps};
use crate::ns::Proc;
use crate::userns;

/// The child's stack. It is allocated lazily by the kernel, so only the pages touched cost memory; 1 MiB
/// holds the formatting and I/O a chapter's child does, with room to spare.
pub const STACK_SIZE: usize = 1024 * 1024;

/// Whether the child gets a new user namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserNs {
    /// Only when the caller is not root: the way every demo runs for an ordinary user.
    Auto,
    /// Always, even as root.
    Always,
    /// Never: the caller must have the privileges the other namespaces need.
    Never,
    /// Always, but without the handshake: no map is written and the child runs at once, as the
    /// overflow uid with every capability in its namespace, until the caller writes its maps itself
    /// (with [`crate::idmap`], naming [`Child::pid`]). The user namespace chapter needs that moment.
    Unmapped,
}

impl UserNs {
    /// Resolves `Auto` against who the caller is.
    pub fn wanted(self) -> bool {
        match self {
            UserNs::Auto => !userns::is_root(),
            UserNs::Always | UserNs::Unmapped => true,
            UserNs::Never => false,
        }
    }
}

/// Why spawning failed; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot create the sync channel: {0}")]
    Channel(#[source] io::Error),
    #[error("clone({flags}) failed: {errno}{hint}")]
    Clone {
        flags: String,
        errno: Errno,
        hint: String,
    },
    #[error("cannot write the child's id maps: {0}")]
    Maps(#[source] WriteError),
    #[error("{0}")]
    NoCapabilities(String),
    #[error("the child exited before it was ready: {0}")]
    Handshake(#[source] io::Error),
}

/// How to spawn: which namespaces, and how the user namespace is mapped.
#[derive(Clone, Debug)]
pub struct Spawn {
    namespaces: CloneFlags,
    user: UserNs,
    maps: Option<(IdMap, IdMap)>,
    signal: Option<Signal>,
}

/// A spawned child. Dropping it without [`Child::wait`] kills and reaps it, so no process outlives the
/// value that owns it.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    user_ns: bool,
    channel: Channel,
    reaped: bool,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Exit {
    Code(i32),
    Signal(#[serde(with = "crate::channel::signal")] Signal),
}

impl Exit {
    /// The status a shell would report: the exit code, or 128 + the signal number.
    pub fn shell_status(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(sig) => 128 + sig as i32,
        }
    }

    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl Spawn {
    /// A child in new namespaces of the given kinds (`CLONE_NEWUSER` is governed by [`Spawn::user`]).
    pub fn new(namespaces: CloneFlags) -> Spawn {
        Spawn {
            namespaces: namespaces - CloneFlags::CLONE_NEWUSER,
            user: if namespaces.contains(CloneFlags::CLONE_NEWUSER) {
                UserNs::Always
            } else {
                UserNs::Auto
            },
            maps: None,
            signal: Some(Signal::SIGCHLD),
        }
    }

    /// Chooses when the child gets a user namespace (default: [`UserNs::Auto`]).
    pub fn user(mut self, user: UserNs) -> Spawn {
        self.user = user;
        self
    }

    /// Maps other than "my uid and gid are root inside" (the default); [`UserNs::Unmapped`] writes none.
    pub fn maps(mut self, uid_map: IdMap, gid_map: IdMap) -> Spawn {
        self.maps = Some((uid_map, gid_map));
        self
    }

    /// The flags `clone(2)` will be called with, user namespace included.
    pub fn flags(&self) -> CloneFlags {
        if self.user.wanted() {
            self.namespaces | CloneFlags::CLONE_NEWUSER
        } else {
            self.namespaces
        }
    }

    // ANCHOR: spawn
    /// Clones a child that runs `body` in the new namespaces and exits with the code it returns (101 if
    /// it panics). The child gets one end of the channel; the returned [`Child`] holds the other.
    pub fn run<F>(&self, body: F) -> Result<Child, SpawnError>
    where
        F: FnOnce(&mut Channel) -> i32,
    {
        let (parent_end, child_end) = Channel::pair().map_err(SpawnError::Channel)?;
        let user_ns = self.user.wanted();
        let handshake = user_ns && self.user != UserNs::Unmapped;
        let flags = self.flags();
        let mut stack = vec![0u8; STACK_SIZE];
        let mut child_side = Some((child_end, body));
        let single_threaded = is_single_threaded();
        let parents_end = parent_end.raw_fd();
        let child_main = Box::new(move || -> isize {
            // The child's copy of the parent's end, closed first: while the child held both ends it
            // never saw the parent die (a read would wait forever for a writer it was itself).
            // SAFETY: in the child, nothing owns this copy of the descriptor: the parent's `Channel`
            // value is in the parent's frames, which the child never returns to, so it is closed once.
            unsafe { libc::close(parents_end) };
            let (mut channel, body) = child_side.take().expect("clone runs its callback once");
            child_main(&mut channel, handshake, single_threaded, body) as isize
        });

        // SAFETY: the child runs `child_main` on `stack`, 1 MiB that outlives the call (the child has its
        // own copy of the address space, stack included). The child only runs Rust code that this
        // process could run; it does not return into the caller's frames, because the callback's
        // return ends the child with `exit`.
        let pid = unsafe { nix::sched::clone(child_main, &mut stack, flags, self.signal.map(|s| s as i32)) }
            .map_err(|errno| SpawnError::Clone {
                flags: describe_flags(flags),
                errno,
                hint: if user_ns {
                    format!(": {}", userns::explain_failure(errno))
                } else {
                    String::new()
                },
            })?;
        let mut child = Child {
            pid,
            user_ns,
            channel: parent_end,
            reaped: false,
        };
        if handshake {
            self.map_child(&mut child)?;
        }
        Ok(child)
    }
    // ANCHOR_END: spawn

    /// Runs `body` in a child and returns the value it returned, or why not (its error, the clone's, or
    /// the channel's), as one line: for a test or an exercise that wants one answer from inside new
    /// namespaces.
    pub fn evaluate<T, F>(&self, body: F) -> Result<T, String>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Result<T, String>,
    {
        let mut child = self
            .run(|channel| {
                let result = body().map_err(|why| crate::ChildError::new("child", why));
                i32::from(channel.reply(&result).is_err())
            })
            .map_err(|e| e.to_string())?;
        let reply = child.channel().recv_reply::<T>();
        let _ = child.wait();
        reply.map_err(|e| match e {
            crate::StepError::Child(e) => e.message,
            other => other.to_string(),
        })
    }

    // ANCHOR: map_child
    /// The parent's half of the handshake: write the maps, say `go`, wait for the child's verdict.
    fn map_child(&self, child: &mut Child) -> Result<(), SpawnError> {
        let privileged = userns::is_root();
        let (uid_map, gid_map) = match &self.maps {
            Some(maps) => maps.clone(),
            None => (
                IdMap::root_is(geteuid().as_raw()),
                IdMap::root_is(getegid().as_raw()),
            ),
        };
        write_maps(Proc::Pid(child.pid), &uid_map, &gid_map, privileged).map_err(SpawnError::Maps)?;
        child.channel.send("go").map_err(SpawnError::Handshake)?;
        match child.channel.recv().map_err(SpawnError::Handshake)?.as_str() {
            "ready" => Ok(()),
            _ => Err(SpawnError::NoCapabilities(format!(
                "the new user namespace grants no capabilities: {}",
                userns::explain_failure(Errno::EPERM)
            ))),
        }
    }
    // ANCHOR_END: map_child
}

/// What the child runs: the handshake when it has a user namespace that the parent maps, then the
/// chapter's code.
fn child_main<F: FnOnce(&mut Channel) -> i32>(
    channel: &mut Channel,
    handshake: bool,
    parent_single_threaded: bool,
    body: F,
) -> i32 {
    // ANCHOR: child_handshake
    if handshake {
        if channel.expect("go").is_err() {
            return 125;
        }
        let capable = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN);
        if !matches!(capable, Ok(true)) {
            let _ = channel.send("no-capabilities");
            return 125;
        }
        if channel.send("ready").is_err() {
            return 125;
        }
    }
    // ANCHOR_END: child_handshake
    let code = panic::catch_unwind(AssertUnwindSafe(|| body(channel))).unwrap_or(101);
    // The child leaves through exit(3), which does not flush Rust's own stdout buffer. But when the
    // parent had other threads, one of them may have held stdout's lock at the moment of the clone,
    // and the child's copy of that lock would never be released: then skip the flush (stdout is
    // line-buffered, so only an unfinished line is lost).
    if parent_single_threaded {
        let _ = io::Write::flush(&mut io::stdout());
    }
    code
}

/// Whether this process has a single thread (`/proc/self/task` lists one entry per thread).
fn is_single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| tasks.count() == 1)
        .unwrap_or(false)
}

/// `CLONE_NEWUSER|CLONE_NEWUTS`, for error messages.
pub fn describe_flags(flags: CloneFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    if names.is_empty() {
        "no new namespaces".into()
    } else {
        names.join("|")
    }
}

impl Child {
    /// The child's PID in the caller's PID namespace (clone's return value).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the child was given a user namespace.
    pub fn in_user_ns(&self) -> bool {
        self.user_ns
    }

    /// The parent's end of the sync channel.
    pub fn channel(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// Tells the handle that the caller has reaped the child itself (with its own `waitpid` loop, as a
    /// supervisor that also forwards signals does): dropping it then neither kills nor waits for a PID
    /// that may already belong to another process.
    pub fn reaped_by_caller(mut self) {
        self.reaped = true;
    }

    /// Lets the child go on alone: dropping the handle neither kills nor waits for it, and the caller
    /// exits without reaping it, so whoever reaps the caller's orphans reaps it (an OCI runtime's
    /// `create` leaves the container to the engine's shim, a subreaper; prctl(2)
    /// PR_SET_CHILD_SUBREAPER).
    pub fn release(mut self) {
        self.reaped = true;
    }

    /// Waits for the child to end.
    pub fn wait(mut self) -> io::Result<Exit> {
        self.reaped = true;
        wait_for(self.pid)
    }

    /// The child has handed its work on to `sibling`, a process it started with [`clone_sibling`]:
    /// waits for the child to end, then makes this handle the sibling's (this process is its parent).
    /// Returns how the child ended.
    ///
    /// `sibling` is a number that came over the channel, which the sibling itself held for a moment,
    /// and whoever could reach the sibling then (a process in its namespaces allowed to ptrace it)
    /// could have written it: so it is taken only if it names a child of this process other than the
    /// one just reaped, checked with waitid(2) and `WNOWAIT`, which leaves it unreaped. A PID that is
    /// not this process's child is refused, and this handle then signals nothing.
    pub fn continued_by(&mut self, sibling: Pid) -> io::Result<Exit> {
        let ended = wait_for(self.pid);
        // Reaped (or gone): its PID may be anyone's from here on.
        self.reaped = true;
        let ended = ended?;
        if sibling == self.pid || !is_own_child(sibling) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("pid {sibling} is not this process's child"),
            ));
        }
        self.pid = sibling;
        self.reaped = false;
        Ok(ended)
    }
}

/// Starts `body` in a new process whose parent is this process's parent (CLONE_PARENT, clone(2)),
/// on a stack of its own, in a copy of this process's memory; returns its PID in this process's PID
/// namespace. For a process that must be born in namespaces this one has joined (setns(2) with a PID
/// namespace moves only the caller's children) and yet be its parent's own child, to be waited for
/// and signalled by it ([`Child::continued_by`]). The caller must be single-threaded.
pub fn clone_sibling(body: impl FnOnce() -> i32) -> Result<Pid, Errno> {
    let mut stack = vec![0u8; STACK_SIZE];
    let mut body = Some(body);
    let sibling_main =
        Box::new(move || -> isize { body.take().expect("clone runs its callback once")() as isize });
    // SAFETY: the new process runs `sibling_main` on `stack`, 1 MiB that outlives the call (it has its
    // own copy of the address space, stack included), and ends with `exit` when the callback returns,
    // never returning into the caller's frames. The caller is single-threaded, so no lock is held by
    // another thread at the copy.
    unsafe {
        nix::sched::clone(
            sibling_main,
            &mut stack,
            CloneFlags::CLONE_PARENT,
            Some(Signal::SIGCHLD as i32),
        )
    }
}

/// Whether `pid` is a child of this process, running or ended but not yet reaped (waitid(2): `WNOWAIT`
/// leaves it as it is; ECHILD for any other process).
fn is_own_child(pid: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    loop {
        match waitid(Id::Pid(pid), flags) {
            Err(Errno::EINTR) => continue,
            result => return result.is_ok(),
        }
    }
}

/// Waits for `pid`, retrying on EINTR, and reports how it ended.
pub fn wait_for(pid: Pid) -> io::Result<Exit> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Exit::Signal(sig)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = wait_for(self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idmap::write_maps;
    use crate::testing::{self, require_userns};

    #[test]
    fn a_sibling_is_the_parent_s_own_child() {
        let mut child = Spawn::new(CloneFlags::empty())
            .user(UserNs::Never)
            .run(|channel| match clone_sibling(|| 7) {
                Ok(pid) => i32::from(channel.send_msg(&pid.as_raw()).is_err()),
                Err(_) => 2,
            })
            .unwrap();
        let sibling: i32 = child.channel().recv_msg().unwrap();
        assert_eq!(child.continued_by(Pid::from_raw(sibling)).unwrap(), Exit::Code(0));
        assert_eq!(child.pid(), Pid::from_raw(sibling));
        // Only this process, its parent now, can wait for it.
        assert_eq!(child.wait().unwrap(), Exit::Code(7));
    }

    /// What the OCI runtime's `exec` relies on: a PID that came over the channel is taken only if it
    /// is the caller's own child, and one that is not (here the test runner's parent, and the child
    /// itself) is refused and never signalled.
    #[test]
    fn a_sibling_that_is_not_the_parent_s_child_is_refused() {
        for (name, claimed) in [
            ("another process", nix::unistd::getppid()),
            ("the child itself", Pid::from_raw(0)),
        ] {
            let mut child = Spawn::new(CloneFlags::empty())
                .user(UserNs::Never)
                .run(move |channel| {
                    let pid = if claimed.as_raw() == 0 {
                        nix::unistd::getpid()
                    } else {
                        claimed
                    };
                    i32::from(channel.send_msg(&pid.as_raw()).is_err())
                })
                .unwrap();
            let sibling: i32 = child.channel().recv_msg().unwrap();
            let refused = child.continued_by(Pid::from_raw(sibling)).unwrap_err();
            assert_eq!(refused.kind(), io::ErrorKind::InvalidData, "{name}: {refused}");
            drop(child);
            if claimed.as_raw() != 0 {
                let alive = std::path::Path::new(&format!("/proc/{claimed}")).exists();
                assert!(alive, "{name} was signalled");
            }
        }
    }

    #[test]
    fn an_unmapped_child_runs_at_once_and_its_caller_maps_it() {
        if !require_userns("an_unmapped_child_runs_at_once_and_its_caller_maps_it") {
            return;
        }
        let _guard = testing::exclusive();
        let spawn = Spawn::new(CloneFlags::empty()).user(UserNs::Unmapped);
        assert!(spawn.flags().contains(CloneFlags::CLONE_NEWUSER));
        let mut child = spawn
            .run(|channel| {
                let unmapped = nix::unistd::getuid().as_raw();
                if channel.send_msg(&unmapped).is_err() || channel.expect("mapped").is_err() {
                    return 1;
                }
                i32::from(channel.send_msg(&nix::unistd::getuid().as_raw()).is_err())
            })
            .unwrap();
        assert!(child.in_user_ns());
        let overflow: u32 = std::fs::read_to_string("/proc/sys/kernel/overflowuid")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(child.channel().recv_msg::<u32>().unwrap(), overflow, "no map yet");
        let (uid_map, gid_map) = (
            IdMap::root_is(geteuid().as_raw()),
            IdMap::root_is(getegid().as_raw()),
        );
        write_maps(Proc::Pid(child.pid()), &uid_map, &gid_map, userns::is_root()).unwrap();
        child.channel().send("mapped").unwrap();
        assert_eq!(
            child.channel().recv_msg::<u32>().unwrap(),
            0,
            "mapped by its caller"
        );
        assert!(child.wait().unwrap().success());
    }
}
