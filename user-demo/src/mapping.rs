//! Step 2: the parent writes the child's `setgroups`, `gid_map` and `uid_map`, one `write(2)` each, while
//! the child waits; then the child takes the ids the map names, as every runtime does
//! (user_namespaces(7), setresuid(2), setgroups(2)).

use std::fs;

use nix::errno::Errno;
use nix::unistd::Pid;
use nskit::ns::Proc;
use nskit::userns::is_root;
use nskit::{Child, ChildError, Exit};
use serde::{Deserialize, Serialize};

use crate::unmapped::{SelfReport, Unmapped};
use crate::view::{StatusIds, read_map, status_ids};
use crate::{IdMap, Setgroups, UserError, WriteError, finish, write_gid_map, write_setgroups, write_uid_map};

/// One write to a `/proc/<pid>/` map file, and the kernel's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapWrite {
    pub file: String,
    /// What was written, lines joined with `; `.
    pub contents: String,
    #[serde(with = "nskit::channel::errno_result")]
    pub result: Result<(), Errno>,
}

impl MapWrite {
    fn new(file: &str, contents: &str, result: Result<(), WriteError>) -> MapWrite {
        MapWrite {
            file: file.to_owned(),
            contents: contents.trim_end().replace('\n', "; "),
            result: result.map_err(|e| e.errno),
        }
    }

    pub(crate) fn of_map(file: &str, map: &IdMap, result: Result<(), WriteError>) -> MapWrite {
        MapWrite::new(file, &map.to_proc_format(), result)
    }
}

// ANCHOR: write_in_order
/// The parent's half of the handshake, one file at a time, stopping at the first refusal:
/// 1. `setgroups` = `deny`, when the writer is unprivileged (else the gid map is refused);
/// 2. `gid_map`; 3. `uid_map`. Each file takes a single `write(2)`, once.
pub fn write_in_order(who: Proc, uid_map: &IdMap, gid_map: &IdMap, unprivileged: bool) -> Vec<MapWrite> {
    let mut done = Vec::new();
    if unprivileged {
        done.push(MapWrite::new(
            "setgroups",
            "deny",
            write_setgroups(who, Setgroups::Deny),
        ));
    }
    if done.iter().all(|w| w.result.is_ok()) {
        done.push(MapWrite::of_map("gid_map", gid_map, write_gid_map(who, gid_map)));
    }
    if done.iter().all(|w| w.result.is_ok()) {
        done.push(MapWrite::of_map("uid_map", uid_map, write_uid_map(who, uid_map)));
    }
    done
}
// ANCHOR_END: write_in_order

impl Unmapped {
    // ANCHOR: map_and_release
    /// Step 2: the parent writes the child's maps while it waits. An ordinary user writes
    /// `setgroups` first; root may leave it at `allow`. Returns every write and the kernel's answer.
    pub fn write_maps(&self, uid_map: &IdMap, gid_map: &IdMap) -> Vec<MapWrite> {
        write_in_order(Proc::Pid(self.pid()), uid_map, gid_map, !is_root())
    }

    /// Step 2, continued: tells the child its maps are written and collects what it sees now.
    pub fn release(mut self) -> Result<Mapped, UserError> {
        self.child.channel().send("mapped").map_err(UserError::Lost)?;
        let after = self.child.channel().recv_reply()?;
        Ok(Mapped {
            child: self.child,
            after,
        })
    }
    // ANCHOR_END: map_and_release
}

/// Step 2: the child after its maps were written.
#[derive(Debug)]
pub struct Mapped {
    child: Child,
    pub after: SelfReport,
}

impl Mapped {
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// What the host reads in the child's `/proc/<pid>/status`.
    pub fn host_sees(&self) -> Result<StatusIds, UserError> {
        status_ids(Proc::Pid(self.pid()))
    }

    /// What the host reads in the child's `/proc/<pid>/uid_map`.
    pub fn host_reads_uid_map(&self) -> Result<String, UserError> {
        read_map(Proc::Pid(self.pid()), "uid_map")
    }

    /// Lets the child exit and reaps it.
    pub fn finish(self) -> Result<Exit, UserError> {
        finish(self.child)
    }
}

// ANCHOR: take_ids
/// Runs in a freshly mapped child: takes `uid` and `gid` inside the namespace, as every runtime does
/// once the maps are written. A map only names ids; the child keeps the kernel ids it was cloned with
/// until it changes them. An ordinary user's child was cloned with the very id the map names, so this
/// changes nothing; root's child was cloned as the host's root (kernel uid 0), which a map of
/// 0 -> 100000 does not name: it reads as 65534 until setresuid(0) makes it kernel uid 100000. That
/// needs CAP_SETUID and CAP_SETGID in the namespace, which the child has. The supplementary groups go
/// too, where `setgroups` still says `allow`.
pub fn take_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    switch_ids(uid, gid)?;
    // Changing ids clears the "dumpable" flag, which hands this process's /proc/<pid> files, and those
    // of the children it clones, to the host's root: nobody inside could write a nested map.
    nix::sys::prctl::set_dumpable(true)
}
// ANCHOR_END: take_ids

/// [`take_ids`] without making the process dumpable again: for a process that joined an existing
/// user namespace with setns(2) (a runtime's `exec`) and still holds the host's files, which nothing
/// in that namespace may reach through its /proc/<pid> until it has executed its command.
pub fn switch_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    if fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow") {
        raw_setgroups_empty()?;
    }
    raw_setresgid(gid)?;
    raw_setresuid(uid)
}

/// [`take_ids`] as a step of a child, whose failure is what the child reports.
pub(crate) fn take_ids_in_child(uid: u32, gid: u32) -> Result<(), ChildError> {
    take_ids(uid, gid).map_err(|errno| ChildError::sys(&format!("take uid {uid} and gid {gid}"), errno))
}

// ANCHOR: raw_setxid
// Why raw system calls: glibc's setresuid/setresgid/setgroups give the new ids to every thread of the
// process (POSIX wants that) by signalling each thread on its list and waiting for it. A child cloned
// with clone(2) from a multi-threaded process, a test binary say, inherits that list with the parent's
// threads on it, which do not exist in the child: the wrapper waits forever. The system calls change
// the calling thread only, which in a cloned child is the whole process. Runtimes call them the same way.

/// setresuid(2) with all three ids equal, on the calling thread only.
pub(crate) fn raw_setresuid(uid: u32) -> Result<(), Errno> {
    // SAFETY: setresuid takes three integers and no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    Errno::result(rc).map(drop)
}

/// setresgid(2) with all three ids equal, on the calling thread only.
pub(crate) fn raw_setresgid(gid: u32) -> Result<(), Errno> {
    // SAFETY: setresgid takes three integers and no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    Errno::result(rc).map(drop)
}

/// setgroups(2) with an empty list, on the calling thread only.
pub(crate) fn raw_setgroups_empty() -> Result<(), Errno> {
    raw_setgroups(&[])
}

/// setgroups(2), on the calling thread only.
fn raw_setgroups(groups: &[u32]) -> Result<(), Errno> {
    // SAFETY: the kernel reads `groups.len()` gid_t values (u32) from the slice's pointer, which is
    // valid for that many; with a length of 0 it reads nothing.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    Errno::result(rc).map(drop)
}
// ANCHOR_END: raw_setxid

/// A process's whole identity, set as a runtime sets it before execve: the supplementary groups
/// first (while the process may still change them), then the gid, then the uid, each with the raw
/// system calls above. A caller that wants its capabilities after leaving uid 0 sets PR_SET_KEEPCAPS
/// first, since the kernel clears them then (capabilities(7), "Effect of user ID changes").
pub fn take_identity(uid: u32, gid: u32, groups: &[u32]) -> Result<(), Errno> {
    raw_setgroups(groups)?;
    raw_setresgid(gid)?;
    raw_setresuid(uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdRange;

    #[test]
    fn map_text_is_one_line() {
        let range = |inside, outside, count| IdRange {
            inside,
            outside,
            count,
        };
        let map = IdMap::new(vec![range(0, 100000, 10), range(10, 2000, 1)]).unwrap();
        let write = MapWrite::of_map("uid_map", &map, Ok(()));
        assert_eq!(write.contents, "0 100000 10; 10 2000 1");
    }

    /// Every outcome a child reports, success or errno, survives the trip to its parent.
    #[test]
    fn errno_outcomes_round_trip() {
        for result in [Ok(()), Err(Errno::EPERM), Err(Errno::EINVAL)] {
            let write = MapWrite {
                file: "uid_map".into(),
                contents: "0 1000 1".into(),
                result,
            };
            let line = serde_json::to_string(&write).unwrap();
            assert_eq!(serde_json::from_str::<MapWrite>(&line).unwrap(), write);
        }
        let refused = r#"{"file":"uid_map","contents":"0 0 1","result":1}"#;
        let write: MapWrite = serde_json::from_str(refused).unwrap();
        assert_eq!(write.result, Err(Errno::EPERM));
        assert!(serde_json::from_str::<MapWrite>(r#"{"file":"uid_map"}"#).is_err());
    }
}
