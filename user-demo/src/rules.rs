//! Step 3: failure first. An unprivileged writer breaks the rules for writing a map one at a time, and
//! the kernel refuses each write with EPERM (user_namespaces(7), "Defining user and group ID
//! mappings"); as root, a helper gives up root first, as `setpriv --reuid --regid --clear-groups` does.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{getegid, geteuid};
use nskit::ns::Proc;
use nskit::userns::is_root;
use nskit::{ChildError, Spawn, UserNs};
use serde::{Deserialize, Serialize};

use crate::mapping::{MapWrite, raw_setgroups_empty, raw_setresgid, raw_setresuid, write_in_order};
use crate::unmapped::unmapped_spawn;
use crate::{IdMap, NOBODY, UserError, finish, reply, write_gid_map, write_uid_map};

/// Which rule of user_namespaces(7) a write in step 3 tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// gid_map by an unprivileged writer while setgroups still says `allow`.
    GidMapBeforeDeny,
    /// uid_map naming an outside id that is not the writer's own.
    NotOwned,
    /// The handshake done right: setgroups deny, gid_map, uid_map.
    DoneRight,
    /// uid_map written a second time.
    Twice,
}

/// One write of step 3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleAttempt {
    pub rule: Rule,
    pub write: MapWrite,
}

/// Step 3's results: who wrote, and every write with its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRules {
    pub writer_uid: u32,
    pub writer_gid: u32,
    /// True when the demo runs as root and a helper dropped to uid/gid 65534 to be the writer.
    pub dropped_from_root: bool,
    pub attempts: Vec<RuleAttempt>,
}

// ANCHOR: map_rules
/// Step 3: an unprivileged writer breaks the map rules one at a time against a fresh child. The rules
/// bind only writers without CAP_SETUID/CAP_SETGID over the parent namespace, so as root a helper
/// process drops to uid and gid 65534 first; as an ordinary user the helper stays who it is.
pub fn map_rules() -> Result<MapRules, UserError> {
    let drop_to_nobody = is_root();
    let mut helper = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| {
            let dropped = if drop_to_nobody {
                drop_privileges_to(NOBODY, NOBODY)
                    .map_err(|errno| ChildError::sys(&format!("become uid {NOBODY}"), errno))
            } else {
                Ok(())
            };
            reply(channel, &dropped.and_then(|()| break_the_rules(drop_to_nobody)))
        })?;
    let rules = helper.channel().recv_reply()?;
    helper.wait().map_err(UserError::Lost)?;
    Ok(rules)
}

/// Runs in the helper: spawns a target child in a new user namespace, with no map, and tries each
/// write on its map files.
fn break_the_rules(dropped_from_root: bool) -> Result<MapRules, ChildError> {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let target = unmapped_spawn()
        .run(|channel| i32::from(channel.expect("exit").is_err()))
        .map_err(|e| ChildError::new("spawn the target", e))?;
    let who = Proc::Pid(target.pid());
    let (own_uid, own_gid, real_root) = (IdMap::root_is(uid), IdMap::root_is(gid), IdMap::root_is(0));
    let attempt = |rule, write| RuleAttempt { rule, write };
    let mut attempts = vec![
        attempt(
            Rule::GidMapBeforeDeny,
            MapWrite::of_map("gid_map", &own_gid, write_gid_map(who, &own_gid)),
        ),
        attempt(
            Rule::NotOwned,
            MapWrite::of_map("uid_map", &real_root, write_uid_map(who, &real_root)),
        ),
    ];
    for write in write_in_order(who, &own_uid, &own_gid, true) {
        attempts.push(attempt(Rule::DoneRight, write));
    }
    attempts.push(attempt(
        Rule::Twice,
        MapWrite::of_map("uid_map", &own_uid, write_uid_map(who, &own_uid)),
    ));
    finish(target).map_err(|e| ChildError::new("end the target", e))?;
    Ok(MapRules {
        writer_uid: uid,
        writer_gid: gid,
        dropped_from_root,
        attempts,
    })
}
// ANCHOR_END: map_rules

// ANCHOR: drop_privileges
/// Gives up root for good, as `setpriv --reuid --regid --clear-groups` does: supplementary groups
/// first (that needs CAP_SETGID), then the gid, then the uid, which drops every capability.
pub fn drop_privileges_to(uid: u32, gid: u32) -> Result<(), Errno> {
    raw_setgroups_empty()?;
    raw_setresgid(gid)?;
    raw_setresuid(uid)?;
    // Changing credentials clears the "dumpable" flag, which hands the /proc/<pid> files of this
    // process, and of the children it clones, to root: the new user could not write their maps.
    nix::sys::prctl::set_dumpable(true)
}
// ANCHOR_END: drop_privileges
