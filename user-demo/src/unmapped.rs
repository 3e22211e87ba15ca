//! Step 1: a child in a new user namespace, before any map is written (user_namespaces(7)). Its ids
//! have no number inside yet, so they read as the overflow id; its capability sets are full, yet they
//! count only in the namespaces its user namespace owns, and the host's are not among them.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use nskit::ns::Proc;
use nskit::{Child, ChildError, Spawn, UserNs};
use serde::{Deserialize, Serialize};

use crate::view::{IdView, StatusIds, observe, rename_host, status_ids};
use crate::{UserError, reply, take_ids};

/// What the child of steps 1 and 2 reports about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfReport {
    pub view: IdView,
    /// Its own `/proc/self/status` lines.
    pub status: StatusIds,
    /// Setting the host's hostname (the child is still in the host's UTS namespace).
    #[serde(with = "nskit::channel::errno_result")]
    pub rename_host: Result<(), Errno>,
    /// After the maps: taking the mapped ids with setresgid/setresuid ([`take_ids`]).
    #[serde(with = "nskit::channel::errno_result_option")]
    pub took_ids: Option<Result<(), Errno>>,
}

/// Step 1's child looks at itself; it runs in the child, before and after the maps.
fn self_report(took_ids: Option<Result<(), Errno>>) -> Result<SelfReport, ChildError> {
    Ok(SelfReport {
        view: observe().map_err(|e| ChildError::new("observe", e))?,
        status: status_ids(Proc::Current).map_err(|e| ChildError::new("read /proc/self/status", e))?,
        rename_host: rename_host(),
        took_ids,
    })
}

/// Step 1: a child in a new user namespace, waiting for its maps.
#[derive(Debug)]
pub struct Unmapped {
    pub(crate) child: Child,
    /// What the child saw of itself before any map was written.
    pub before: SelfReport,
}

// ANCHOR: unmapped_spawn
/// How this chapter spawns a child whose maps it writes itself: a new user namespace, and no map yet.
/// Every other chapter lets `nskit::Spawn` write the maps and wait for the child's capabilities before
/// its code runs; `UserNs::Unmapped` skips that handshake, and the child runs at once, as "nobody" with
/// every capability, until its parent writes the maps.
pub fn unmapped_spawn() -> Spawn {
    Spawn::new(CloneFlags::CLONE_NEWUSER).user(UserNs::Unmapped)
}
// ANCHOR_END: unmapped_spawn

// ANCHOR: spawn_unmapped
/// Step 1: clones a child into a new user namespace. It reports what it sees before any map exists,
/// then waits on the channel for `mapped`, takes the ids `(uid, gid)` inside, looks again, reports,
/// and waits for `exit`.
pub fn spawn_unmapped(uid: u32, gid: u32) -> Result<Unmapped, UserError> {
    let mut child = unmapped_spawn().run(|channel| {
        if reply(channel, &self_report(None)) != 0 || channel.expect("mapped").is_err() {
            return 1;
        }
        let after = self_report(Some(take_ids(uid, gid)));
        if reply(channel, &after) != 0 || channel.expect("exit").is_err() {
            return 1;
        }
        0
    })?;
    let before = child.channel().recv_reply()?;
    Ok(Unmapped { child, before })
}
// ANCHOR_END: spawn_unmapped

impl Unmapped {
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// What the host reads in the child's `/proc/<pid>/status`.
    pub fn host_sees(&self) -> Result<StatusIds, UserError> {
        status_ids(Proc::Pid(self.pid()))
    }
}
