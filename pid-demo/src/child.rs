//! How every step of the chapter starts its processes and hears back from them: an init in a new PID
//! namespace (clone(2) with `CLONE_NEWPID`, pid_namespaces(7)), forks that name themselves (prctl(2)
//! `PR_SET_NAME`, so that `ps` says who is who), a pipe between forks (pipe(2)), and the child's report
//! to its parent over nskit's channel. Plumbing the seven steps share, not a step of its own.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{Pid, getpid, pipe2};
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::{Channel, Child, Exit, Spawn, SpawnError, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StepError;
use crate::init::fork_run;

/// What went wrong inside a child, before it becomes the [`nskit::ChildError`] the parent receives.
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed(e.to_string())
    }
}

pub(crate) type ChildResult<T> = Result<T, Failed>;

// ANCHOR: init_spawn
/// How to spawn an init in a new PID namespace: `CLONE_NEWPID`, plus `CLONE_NEWNS` so that it can mount
/// its own `/proc` without touching the host's. When the caller is not root (or `force_userns`), the
/// child also gets a new user namespace, created in the same clone so that it owns the other two: it
/// must, or the kernel refuses the proc mount.
pub fn init_spawn(force_userns: bool) -> Spawn {
    Spawn::new(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS).user(user_mode(force_userns))
}

/// Spawns `body` as PID 1 of a new PID namespace. The child checks that it really is PID 1 (it would
/// not be if `spawn` lacked `CLONE_NEWPID`) and exits with 125 if not.
pub fn spawn_init<F>(spawn: &Spawn, body: F) -> Result<Child, SpawnError>
where
    F: FnOnce(&mut Channel) -> i32,
{
    spawn.run(|channel| {
        if getpid().as_raw() == 1 {
            body(channel)
        } else {
            125
        }
    })
}
// ANCHOR_END: init_spawn

/// A child in no new namespace but, when not root, a user namespace: it calls `unshare` itself.
pub fn plain_spawn(force_userns: bool) -> Spawn {
    Spawn::new(CloneFlags::empty()).user(user_mode(force_userns))
}

fn user_mode(force_userns: bool) -> UserNs {
    if force_userns {
        UserNs::Always
    } else {
        UserNs::Auto
    }
}

/// The calling process's PID namespace.
pub fn own_pid_ns() -> io::Result<NsId> {
    ns_id(Proc::Current, Kind::Pid)
}

/// Names the calling process (its `comm`, what `ps` shows), 15 bytes at most.
pub fn set_name(name: &str) {
    if let Ok(name) = CString::new(name) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}

/// Forks a child named `name` that runs `body`, and returns once the child bears its name, so that a
/// `ps` taken right after shows it.
pub fn fork_named<F: FnOnce() -> i32>(name: &str, body: F) -> io::Result<Pid> {
    let named = Pipe::new()?;
    let pid = fork_run(|| {
        set_name(name);
        if named.send(0).is_err() {
            return 125;
        }
        body()
    })
    .map_err(io::Error::from)?;
    named.recv()?;
    Ok(pid)
}

/// What a helper process does while it only needs to exist: sleep until a signal ends it.
pub(crate) fn park() -> i32 {
    loop {
        nix::unistd::pause();
    }
}

/// A pipe carrying `i32`s between related processes (close-on-exec).
#[derive(Debug)]
pub(crate) struct Pipe {
    read: File,
    write: File,
}

impl Pipe {
    pub(crate) fn new() -> io::Result<Pipe> {
        let (read, write): (OwnedFd, OwnedFd) = pipe2(OFlag::O_CLOEXEC)?;
        Ok(Pipe {
            read: read.into(),
            write: write.into(),
        })
    }

    pub(crate) fn send(&self, value: i32) -> io::Result<()> {
        (&self.write).write_all(&value.to_ne_bytes())
    }

    pub(crate) fn recv(&self) -> io::Result<i32> {
        let mut bytes = [0u8; 4];
        (&self.read).read_exact(&mut bytes)?;
        Ok(i32::from_ne_bytes(bytes))
    }
}

/// The child's side of a step: runs `work`, sends what it observed (or why `step` failed) to the
/// parent.
pub(crate) fn serve<T: Serialize>(
    channel: &mut Channel,
    step: &str,
    work: impl FnOnce(&mut Channel) -> ChildResult<T>,
) -> i32 {
    let result = work(channel).map_err(|Failed(why)| nskit::ChildError::new(step, why));
    let failed = result.is_err();
    if channel.reply(&result).is_err() {
        return 1;
    }
    i32::from(failed)
}

/// The parent's side: receives what the child observed, or its failure.
pub(crate) fn receive<T: DeserializeOwned>(channel: &mut Channel) -> Result<T, StepError> {
    Ok(channel.recv_reply()?)
}

/// The PID namespace a `pid_for_children` link names: a PID namespace like any other, only read
/// through another file.
pub(crate) fn as_pid_ns(id: NsId) -> NsId {
    NsId {
        kind: Kind::Pid,
        ..id
    }
}

/// Lets the init go and reaps it; its exit status must be success.
pub(crate) fn finish(mut child: Child) -> Result<(), StepError> {
    child.channel().send("exit").map_err(StepError::Channel)?;
    match child.wait().map_err(StepError::Channel)? {
        Exit::Code(0) => Ok(()),
        other => Err(StepError::InitEnded(other)),
    }
}
