//! What the exercises give you: an init in a new PID namespace (the chapter's `init_spawn`), a fresh
//! process with no new namespace, and their answers over nskit's channel (`clone(2)`). You need not
//! read this to do the exercises, but nothing in it is hidden.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, getpid, getppid};
use nskit::{Channel, Child, ChildError, Spawn, StepError, UserNs};
use pid_demo::init::fork_run;
use pid_demo::{init_spawn, spawn_init};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs `body` as PID 1 of a new PID namespace, in a mount namespace of its own (and a user namespace
/// when you are not root), and returns what it returned, or why it failed.
pub fn in_new_init<T, F>(body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let child = spawn_init(&init_spawn(false), |channel| answer(channel, body));
    answer_of(child.map_err(|e| e.to_string())?)
}

/// Runs `body` in a fresh process with no new namespace: a single-threaded process to fork in and
/// to change with prctl(2), never the test's own.
pub fn in_fresh_process<T, F>(body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| answer(channel, body));
    answer_of(child.map_err(|e| e.to_string())?)
}

fn answer<T: Serialize>(channel: &mut Channel, body: impl FnOnce() -> Result<T, String>) -> i32 {
    let result = body().map_err(|why| ChildError::new("exercise", why));
    i32::from(channel.reply(&result).is_err())
}

fn answer_of<T: DeserializeOwned>(mut child: Child) -> Result<T, String> {
    let reply = child.channel().recv_reply::<T>();
    let _ = child.wait();
    reply.map_err(|e| match e {
        StepError::Child(e) => e.message,
        other => other.to_string(),
    })
}

/// `errno` as the tests print it: `EPERM: Operation not permitted`.
pub fn said(step: &str, errno: Errno) -> String {
    format!("{step}: {errno}")
}

/// A process that waits until dropped: `Child` kills and reaps it then.
pub fn waiting_init() -> Result<Child, String> {
    spawn_init(&init_spawn(false), |channel| {
        i32::from(channel.expect("exit").is_err())
    })
    .map_err(|e| e.to_string())
}

/// What the orphan told, and whether its new parent could reap it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Adoption {
    /// The process that ran the orphan lab, and became, or not, a subreaper.
    pub adopter: i32,
    /// The orphan's parent, as `getppid()` said once its own parent had exited.
    pub orphans_parent: i32,
    /// `waitpid` on the orphan succeeded in the adopter: the orphan had become its child.
    pub reaped: bool,
}

/// The orphan lab, run in the process that calls it: a middle child forks a grandchild, tells its
/// PID, and exits. Once the middle child is reaped, the grandchild says who its parent is now.
pub fn orphan_lab() -> Result<Adoption, String> {
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let middle = fork_run(move || {
        let mut to_adopter = theirs;
        let orphan = fork_run(|| tell_parent_when_asked(&mut to_adopter));
        let Ok(orphan) = orphan else { return 1 };
        i32::from(to_adopter.write_all(&orphan.as_raw().to_ne_bytes()).is_err())
    })
    .map_err(|e| said("fork the middle child", e))?;
    let orphan = Pid::from_raw(read_i32(&mut ours)?);
    waitpid(middle, None).map_err(|e| said("reap the middle child", e))?;
    ours.write_all(b"?").map_err(|e| format!("ask the orphan: {e}"))?;
    let orphans_parent = read_i32(&mut ours)?;
    Ok(Adoption {
        adopter: getpid().as_raw(),
        orphans_parent,
        reaped: waitpid(orphan, None).is_ok(),
    })
}

/// The grandchild: waits for the question, answers with its parent's PID, and exits.
fn tell_parent_when_asked(adopter: &mut UnixStream) -> i32 {
    let mut question = [0u8; 1];
    if adopter.read_exact(&mut question).is_err() {
        return 1;
    }
    i32::from(adopter.write_all(&getppid().as_raw().to_ne_bytes()).is_err())
}

fn read_i32(stream: &mut UnixStream) -> Result<i32, String> {
    let mut bytes = [0u8; 4];
    stream
        .read_exact(&mut bytes)
        .map_err(|e| format!("read from the lab's processes: {e}"))?;
    Ok(i32::from_ne_bytes(bytes))
}
