//! What the exercises give you: a map writer that is never privileged, children cloned into new user
//! namespaces, and their answers over nskit's channel (the plumbing every chapter uses; `clone(2)`).
//! You need not read this to do the exercises, but nothing in it is hidden.

use std::fs;
use std::io;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{Pid, getegid, geteuid};
use nskit::{ChildError, Spawn, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;
use user_demo::view::IdView;
use user_demo::{NOBODY, drop_privileges_to, observe, take_ids, unmapped_spawn};

use crate::MapFile;

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(body)
}

/// `errno` as the tests print it: `EPERM: Operation not permitted`.
pub fn said(step: &str, errno: Errno) -> String {
    format!("{step}: {errno}")
}

/// Runs `body` in a helper process that holds no privilege over other user namespaces: as root it
/// first gives up root for uid and gid 65534, as `setpriv` would; as anyone else it stays who it is.
/// The map rules of user_namespaces(7) bind only such writers, so the tests mean the same for root.
pub fn as_unprivileged_writer<T, F>(body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let helper = Spawn::new(CloneFlags::empty()).user(UserNs::Never);
    in_child(&helper, || {
        if nskit::userns::is_root() {
            drop_privileges_to(NOBODY, NOBODY).map_err(|e| said("give up root", e))?;
        }
        body()
    })
}

/// What the mapped child saw of itself, and what its parent read in its `uid_map`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mapped {
    pub writer_uid: u32,
    pub writer_gid: u32,
    pub inside: IdView,
    pub uid_map: String,
}

/// In the unprivileged writer: clones a child into a new user namespace with no map, lets `write` map
/// it (given the child's PID and the writer's own uid and gid), then has the child take uid and gid 0
/// and report what it sees.
pub fn map_a_child(write: impl FnOnce(Pid, u32, u32) -> Result<(), String>) -> Result<Mapped, String> {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let mut child = unmapped_spawn()
        .run(|channel| {
            if channel.expect("mapped").is_err() {
                return 1;
            }
            let seen = take_ids(0, 0)
                .map_err(|e| ChildError::sys("take uid 0 and gid 0", e))
                .and_then(|()| observe().map_err(|e| ChildError::new("observe", e)));
            i32::from(channel.reply(&seen).is_err())
        })
        .map_err(|e| e.to_string())?;
    let pid = child.pid();
    let written = write(pid, uid, gid);
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
    // The child waits for "mapped" either way; a child whose maps were refused reports why it could
    // not take uid 0, which says less than the writer's own error.
    let _ = child.channel().send("mapped");
    let inside = child.channel().recv_reply::<IdView>();
    let _ = child.wait();
    written?;
    Ok(Mapped {
        writer_uid: uid,
        writer_gid: gid,
        inside: inside.map_err(|e| e.to_string())?,
        uid_map,
    })
}

/// Writes one file of the handshake for `child`, mapping 0 inside to the writer's own ids.
pub fn write_map_file(child: Pid, file: MapFile, uid: u32, gid: u32) -> io::Result<()> {
    let (name, contents) = match file {
        MapFile::SetgroupsDeny => ("setgroups", "deny".to_owned()),
        MapFile::GidMap => ("gid_map", format!("0 {gid} 1\n")),
        MapFile::UidMap => ("uid_map", format!("0 {uid} 1\n")),
    };
    fs::write(format!("/proc/{child}/{name}"), contents)
        .map_err(|e| io::Error::new(e.kind(), format!("write {name}: {e}")))
}

/// A child in a new user namespace and a new UTS namespace, made by one clone, which waits until
/// dropped: its namespaces stay for the test to look at through `/proc/<pid>/ns/`.
#[derive(Debug)]
pub struct Waiting {
    child: nskit::Child,
}

impl Waiting {
    pub fn spawn() -> Result<Waiting, String> {
        let child = Spawn::new(CloneFlags::CLONE_NEWUTS)
            .user(UserNs::Always)
            .run(|channel| i32::from(channel.expect("exit").is_err()))
            .map_err(|e| e.to_string())?;
        Ok(Waiting { child })
    }

    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    pub fn open(&self, kind: &str) -> io::Result<fs::File> {
        fs::File::open(format!("/proc/{}/ns/{kind}", self.pid()))
    }
}
