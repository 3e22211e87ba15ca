//! What the exercises give you: a child cloned into new namespaces, which runs your code and sends
//! back what it returned, over nskit's channel (the plumbing every chapter uses; `clone(2)`). You need
//! not read this to do the exercises, but nothing in it is hidden.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use nskit::{Child, ChildError, Spawn, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(body)
}

/// A child in a new UTS namespace (and a new user namespace when you are not root).
pub fn new_uts() -> Spawn {
    Spawn::new(CloneFlags::CLONE_NEWUTS)
}

/// A child in no new namespace at all: a fresh, single-threaded process for `setns(2)`, which must
/// never run in a test's thread (it would move the whole test binary's thread).
pub fn fresh_process() -> Spawn {
    Spawn::new(CloneFlags::empty()).user(UserNs::Never)
}

/// `errno` as the tests print it: `EPERM: Operation not permitted`.
pub fn said(step: &str, errno: Errno) -> String {
    format!("{step}: {errno}")
}

/// A child that has renamed its own UTS namespace and waits, so that its namespace lives, until
/// [`Named::finish`].
#[derive(Debug)]
pub struct Named {
    child: Child,
}

impl Named {
    /// Spawns the child and waits until it has set its hostname to `hostname`.
    pub fn spawn(hostname: &str) -> Result<Named, String> {
        let mut child = new_uts()
            .run(|channel| {
                let renamed =
                    nix::unistd::sethostname(hostname).map_err(|errno| ChildError::sys("sethostname", errno));
                if channel.reply(&renamed).is_err() || channel.expect("exit").is_err() {
                    return 1;
                }
                0
            })
            .map_err(|e| e.to_string())?;
        child.channel().recv_reply::<()>().map_err(|e| e.to_string())?;
        Ok(Named { child })
    }

    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// Whether the child has a user namespace of its own.
    pub fn in_user_ns(&self) -> bool {
        self.child.in_user_ns()
    }

    /// Lets the child exit, and reaps it: from then on only open descriptors keep its namespaces.
    pub fn finish(mut self) -> Result<(), String> {
        self.child.channel().send("exit").map_err(|e| e.to_string())?;
        self.child.wait().map(drop).map_err(|e| e.to_string())
    }
}

/// Runs `body` in a child cloned with `flags` *and always a new user namespace*, even as root: in
/// the break-it exercise, a child without a UTS namespace of its own then cannot rename your machine.
pub fn in_child_with_userns<T, F>(flags: CloneFlags, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    in_child(&Spawn::new(flags).user(UserNs::Always), body)
}
