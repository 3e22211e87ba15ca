//! Step 6: a user namespace inside a user namespace (user_namespaces(7), "Nesting"). Each map is
//! relative to the namespace above it: the outside ids in level 2's map are level 1's ids, only ids
//! that level 1 maps may appear there, and the kernel prints every map and every `/proc/<pid>/status`
//! in the reader's own ids.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{Pid, Uid};
use nskit::ns::Proc;
use nskit::{Child, ChildError, Spawn};
use serde::{Deserialize, Serialize};

use crate::mapping::{MapWrite, take_ids_in_child, write_in_order};
use crate::unmapped::unmapped_spawn;
use crate::view::{IdView, StatusIds, observe, read_map, status_ids};
use crate::{IdMap, UserError, finish, inside_ids, reply, write_uid_map};

/// Step 6's results. Level 1 sends all but what the host reads itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nesting {
    pub level1: IdView,
    pub level2: IdView,
    #[serde(with = "nskit::channel::pid")]
    pub level2_pid: Pid,
    /// Level 1 tries to map an id that its own namespace does not map.
    pub refused: MapWrite,
    /// The map level 1 wrote for level 2 (outside ids in level 1's terms).
    pub written: Vec<MapWrite>,
    /// Level 2's uid_map read by level 1 and by the host.
    pub map_seen_by_level1: String,
    #[serde(skip)]
    pub map_seen_by_host: String,
    /// Level 2's /proc/<pid>/status seen by itself, by level 1 and by the host.
    pub status_seen_by_level2: StatusIds,
    pub status_seen_by_level1: StatusIds,
    #[serde(skip)]
    pub status_seen_by_host: StatusIds,
    /// In level 2: fchown of a file to an id its namespace does not map, then to 0.
    pub unmapped_id: u32,
    #[serde(with = "nskit::channel::errno_result")]
    pub chown_unmapped: Result<(), Errno>,
    #[serde(with = "nskit::channel::errno_result")]
    pub chown_root: Result<(), Errno>,
}

/// What level 2 tells level 1 about itself.
#[derive(Debug, Serialize, Deserialize)]
struct Level2 {
    view: IdView,
    status: StatusIds,
    unmapped_id: u32,
    #[serde(with = "nskit::channel::errno_result")]
    chown_unmapped: Result<(), Errno>,
    #[serde(with = "nskit::channel::errno_result")]
    chown_root: Result<(), Errno>,
}

// ANCHOR: nesting
/// Step 6: a mapped child (level 1) clones its own child into a nested user namespace (level 2) and
/// writes its maps. The outside ids in level 2's map are level 1's ids, and only ids mapped in level 1
/// may appear there. In level 2, chown to an id with no mapping fails with EINVAL.
pub fn nesting(uid_map: &IdMap, gid_map: &IdMap) -> Result<Nesting, UserError> {
    let unmapped_in_level1 = first_unmapped(uid_map);
    let (uid, gid) = inside_ids(uid_map, gid_map);
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUSER).maps(uid_map.clone(), gid_map.clone());
    let mut level1 = spawn.run(|channel| {
        let looked = take_ids_in_child(uid, gid).and_then(|()| level1_main(unmapped_in_level1));
        let (report, level2) = match looked {
            Ok((nesting, level2)) => (Ok(nesting), Some(level2)),
            Err(e) => (Err(e), None),
        };
        let code = reply(channel, &report);
        // Level 2 stays alive until the host has looked at it.
        if channel.expect("exit").is_err() {
            return 1;
        }
        level2.map_or(code, |l2| i32::from(finish(l2).is_err()) | code)
    })?;
    let mut nesting: Nesting = level1.channel().recv_reply()?;
    let level2 = Proc::Pid(nesting.level2_pid);
    nesting.map_seen_by_host = read_map(level2, "uid_map")?;
    nesting.status_seen_by_host = status_ids(level2)?;
    finish(level1)?;
    Ok(nesting)
}

/// Runs in level 1: spawns level 2 with no map, writes its maps (first a refused one), and collects
/// what level 2 and level 1 see.
fn level1_main(unmapped: u32) -> Result<(Nesting, Child), ChildError> {
    let level1 = observe().map_err(|e| ChildError::new("observe level 1", e))?;
    let mut level2 = unmapped_spawn()
        .run(|channel| {
            if channel.expect("mapped").is_err() {
                return 1;
            }
            reply(channel, &level2_report())
        })
        .map_err(|e| ChildError::new("spawn level 2", e))?;
    let who = Proc::Pid(level2.pid());
    let bad = IdMap::root_is(unmapped);
    let refused = MapWrite::of_map("uid_map", &bad, write_uid_map(who, &bad));
    // Level 1 holds CAP_SETUID and CAP_SETGID in its own namespace, the parent of level 2's: it is a
    // privileged writer there, and needs no `setgroups deny`.
    let (uid, gid) = (IdMap::root_is(level1.uid), IdMap::root_is(level1.gid));
    let written = write_in_order(who, &uid, &gid, false);
    for write in &written {
        if let Err(errno) = write.result {
            let step = format!("level 1 writes level 2's {}", write.file);
            return Err(ChildError::sys(&step, errno));
        }
    }
    level2
        .channel()
        .send("mapped")
        .map_err(|e| ChildError::new("release level 2", e))?;
    let seen: Level2 = level2
        .channel()
        .recv_reply()
        .map_err(|e| ChildError::new("level 2", e))?;
    let read_by_level1 = |e: UserError| ChildError::new("level 1 reads level 2's /proc files", e);
    let nesting = Nesting {
        level1,
        level2: seen.view,
        level2_pid: level2.pid(),
        refused,
        written,
        map_seen_by_level1: read_map(who, "uid_map").map_err(read_by_level1)?,
        map_seen_by_host: String::new(),
        status_seen_by_level2: seen.status,
        status_seen_by_level1: status_ids(who).map_err(read_by_level1)?,
        status_seen_by_host: StatusIds::default(),
        unmapped_id: seen.unmapped_id,
        chown_unmapped: seen.chown_unmapped,
        chown_root: seen.chown_root,
    };
    Ok((nesting, level2))
}

/// Runs in level 2: who am I, and what chown makes of an id this namespace does not map.
fn level2_report() -> Result<Level2, ChildError> {
    let view = observe().map_err(|e| ChildError::new("observe level 2", e))?;
    let status = status_ids(Proc::Current).map_err(|e| ChildError::new("read /proc/self/status", e))?;
    let file = nix::sys::memfd::memfd_create(c"user-demo", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| ChildError::sys("memfd_create", e))?;
    let unmapped_id = 1;
    Ok(Level2 {
        view,
        status,
        unmapped_id,
        chown_unmapped: nix::unistd::fchown(&file, Some(Uid::from_raw(unmapped_id)), None),
        chown_root: nix::unistd::fchown(&file, Some(Uid::from_raw(0)), None),
    })
}
// ANCHOR_END: nesting

/// The lowest id that `map` leaves unmapped inside the namespace.
pub fn first_unmapped(map: &IdMap) -> u32 {
    let mut id = 0;
    while let Some(range) = map
        .ranges()
        .iter()
        .find(|r| id >= r.inside && id - r.inside < r.count)
    {
        id = range.inside + range.count;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdRange;

    fn r(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn first_unmapped_skips_adjacent_ranges() {
        let map = |ranges| IdMap::new(ranges).unwrap();
        assert_eq!(first_unmapped(&map(vec![r(0, 1000, 1)])), 1);
        assert_eq!(first_unmapped(&map(vec![r(0, 100000, 65536)])), 65536);
        assert_eq!(first_unmapped(&map(vec![r(1, 1000, 1)])), 0);
        assert_eq!(first_unmapped(&map(vec![r(5, 1, 5), r(0, 100, 5)])), 10);
    }
}
