//! Chapter: the user namespace, which gives a process its own uids, gids and capabilities, and is what
//! lets an ordinary user create every other kind of namespace (user_namespaces(7), capabilities(7)).
//!
//! The lesson is told in six steps, one module each, in the order `main.rs` prints them:
//! 1. [`unmapped`]: a child in a new user namespace, before any map is written;
//! 2. [`mapping`]: the parent writes setgroups, gid_map and uid_map, and the child takes its ids;
//! 3. [`rules`]: the rules for writing a map, broken one at a time;
//! 4. [`powers`]: root inside, in the namespaces its user namespace owns and nowhere else;
//! 5. [`exec`]: capabilities recalculated on execve;
//! 6. [`nested`]: a user namespace inside a user namespace.
//!
//! [`introspect`] is the book's introspection page: who owns a namespace, and the limits on how many.
//!
//! Every step reads what a process sees of itself, its ids and capability sets: that is [`view`]. The
//! maps a run uses are chosen here, before step 1, and `combined` chooses its maps the same way. Each
//! step returns plain data, which `main.rs` prints; a child sends what it saw to its parent as these
//! same types (nskit's typed messages). The id-map types and the map writing are shared plumbing in
//! `nskit::idmap` (every rootless chapter writes maps); they are re-exported here because this is the
//! chapter that teaches them.

pub mod exec;
pub mod introspect;
pub mod mapping;
pub mod nested;
pub mod powers;
pub mod rules;
pub mod unmapped;
pub mod view;

use std::io;
use std::path::PathBuf;

use nix::unistd::{getegid, geteuid};
use nskit::userns::is_root;
use nskit::{Channel, Child, Exit, Reply, SpawnError};

pub use exec::{ExecCaps, caps_across_exec, caps_report, exec_maps, parse_caps_report};
pub use mapping::{MapWrite, Mapped, switch_ids, take_identity, take_ids, write_in_order};
pub use nested::{Nesting, first_unmapped, nesting};
pub use nskit::idmap::{
    IdMap, IdRange, MapError, Setgroups, WriteError, write_gid_map, write_maps, write_setgroups,
    write_uid_map,
};
pub use powers::{Powers, RootOnlyFile, inside_powers};
pub use rules::{MapRules, Rule, RuleAttempt, drop_privileges_to, map_rules};
pub use unmapped::{SelfReport, Unmapped, spawn_unmapped, unmapped_spawn};
pub use view::{
    CapMask, CapSets, IdView, StatusIds, all_caps, observe, overflow_uid, read_caps, read_map, rename_host,
    status_ids,
};

/// The uid and gid of "nobody": what a root run drops to when it shows the rules that bind
/// unprivileged map writers (step 3).
pub const NOBODY: u32 = 65534;

/// Where the default map of a root run starts outside: a range like the ones `/etc/subuid` hands out,
/// so that root inside the namespace is an id with no privilege on the host.
pub const ROOT_RUN_BASE: u32 = 100_000;

/// How many ids the default map of a root run covers: 0..65535 inside, as rootless runtimes map.
pub const ROOT_RUN_COUNT: u32 = 65_536;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("lost contact with the child: {0}")]
    Lost(#[source] io::Error),
    #[error("cannot create the socket for caps-report: {0}")]
    Channel(#[source] io::Error),
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the capability sets: {0}")]
    Caps(String),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("caps-report's line is not a view: {0}")]
    Report(#[source] serde_json::Error),
    #[error("caps-report printed nothing and ended with {0:?}")]
    NoReport(Exit),
    #[error("cannot open {path} to execute it: {source}")]
    Program {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<SpawnError> for UserError {
    fn from(e: SpawnError) -> UserError {
        UserError::Child(nskit::StepError::Spawn(e))
    }
}

// ---------------------------------------------------------------------------------------------------
// The maps a run uses, chosen before anything exists
// ---------------------------------------------------------------------------------------------------

/// The maps a run uses when none is given: an ordinary user maps its own uid and gid to 0 (the only
/// map it may write by itself); root maps 0..65535 inside to 100000..165535 outside, so that root
/// inside is nobody in particular on the host (mapping 0 to 0 would make it the host's real root
/// wherever file ownership is checked).
pub fn default_maps() -> (IdMap, IdMap) {
    if is_root() {
        let range = IdRange {
            inside: 0,
            outside: ROOT_RUN_BASE,
            count: ROOT_RUN_COUNT,
        };
        let map = IdMap::new(vec![range]).expect("one non-empty range in bounds");
        (map.clone(), map)
    } else {
        (
            IdMap::root_is(geteuid().as_raw()),
            IdMap::root_is(getegid().as_raw()),
        )
    }
}

// ANCHOR: choose_maps
/// Turns the `--map` / `--gid-map` entries into maps the caller may really write, or says why not,
/// before anything is created: the ranges must form a valid map (no zero count, no overlap on either
/// side, in bounds) and, for an ordinary user, map only the caller's own id (user_namespaces(7)).
/// No uid entries means the defaults; no gid entries means "the same as the uid map".
pub fn choose_maps(uids: &[IdRange], gids: &[IdRange]) -> Result<(IdMap, IdMap), MapError> {
    if uids.is_empty() && gids.is_empty() {
        return Ok(default_maps());
    }
    let uid_map = if uids.is_empty() {
        default_maps().0
    } else {
        IdMap::new(uids.to_vec())?
    };
    let gid_map = if gids.is_empty() {
        IdMap::new(uid_map.ranges().to_vec())?
    } else {
        IdMap::new(gids.to_vec())?
    };
    let privileged = is_root();
    uid_map.check_writable_by(geteuid().as_raw(), privileged)?;
    gid_map.check_writable_by(getegid().as_raw(), privileged)?;
    Ok((uid_map, gid_map))
}
// ANCHOR_END: choose_maps

/// The ids a child takes inside: 0 when the map names it, else the first range's first id.
pub fn inside_ids(uid_map: &IdMap, gid_map: &IdMap) -> (u32, u32) {
    let pick = |map: &IdMap| {
        if map.to_outside(0).is_some() {
            0
        } else {
            map.ranges()[0].inside
        }
    };
    (pick(uid_map), pick(gid_map))
}

// ---------------------------------------------------------------------------------------------------
// How the chapter's children answer
// ---------------------------------------------------------------------------------------------------

/// The child's side of a step: sends what it saw, or why it could not look; returns its exit code.
fn reply<T: serde::Serialize>(channel: &mut Channel, seen: &Reply<T>) -> i32 {
    if channel.reply(seen).is_err() {
        return 1;
    }
    i32::from(seen.is_err())
}

/// Tells a child that waits for `exit` to go, and reaps it.
fn finish(mut child: Child) -> Result<Exit, UserError> {
    child.channel().send("exit").map_err(UserError::Lost)?;
    child.wait().map_err(UserError::Lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange {
            inside,
            outside,
            count,
        }
    }

    /// Every malformed spelling of a `--map` entry is a syntax error naming the entry (nskit's own
    /// tests cover more; these are the ones a learner types).
    #[test]
    fn malformed_entries_are_syntax_errors() {
        for bad in [
            "",
            ":",
            "::",
            "0::1",
            "0:1:1:",
            "-0:1:1",
            "0:-1:1",
            "0:1:+1",
            "0:1:1\n",
            "0 1 1",
            "0,1,1",
            "zero:1:1",
            "\u{ff11}:1:1",
            "4294967296:0:1",
            "0:1:1.0",
        ] {
            assert_eq!(
                bad.parse::<IdRange>(),
                Err(MapError::Syntax(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn invalid_maps_are_refused_before_anything_is_made() {
        let zero = [r(0, 1000, 0)];
        assert_eq!(choose_maps(&zero, &[]), Err(MapError::ZeroCount(r(0, 1000, 0))));
        let inside = [r(0, 1000, 10), r(9, 5000, 1)];
        assert_eq!(
            choose_maps(&inside, &[]),
            Err(MapError::InsideOverlap(inside[0], inside[1]))
        );
        let outside = [r(0, 1000, 10), r(100, 1005, 1)];
        assert_eq!(
            choose_maps(&outside, &[]),
            Err(MapError::OutsideOverlap(outside[0], outside[1]))
        );
        let large = [r(0, 4294967290, 10)];
        assert_eq!(choose_maps(&large, &[]), Err(MapError::TooLarge(large[0])));
        // The gid map is checked on its own too.
        let own = [r(0, geteuid().as_raw(), 1)];
        assert_eq!(choose_maps(&own, &zero), Err(MapError::ZeroCount(zero[0])));
    }

    #[test]
    fn only_root_may_map_ids_it_does_not_own() {
        let euid = geteuid().as_raw();
        let other = [r(0, euid.wrapping_add(1), 1)];
        let two = [r(0, euid, 2)];
        if is_root() {
            assert!(choose_maps(&other, &[]).is_ok());
            assert!(choose_maps(&two, &[]).is_ok());
        } else {
            assert_eq!(
                choose_maps(&other, &[]),
                Err(MapError::NotOwned {
                    range: other[0],
                    own: euid
                })
            );
            assert!(matches!(choose_maps(&two, &[]), Err(MapError::NotOwned { .. })));
            let egid = getegid().as_raw();
            let gid_other = [r(0, egid.wrapping_add(1), 1)];
            let uid_own = [r(0, euid, 1)];
            assert!(matches!(
                choose_maps(&uid_own, &gid_other),
                Err(MapError::NotOwned { .. })
            ));
        }
    }

    #[test]
    fn defaults_follow_the_caller() {
        let (uid_map, gid_map) = choose_maps(&[], &[]).unwrap();
        if is_root() {
            assert_eq!(uid_map.ranges(), [r(0, ROOT_RUN_BASE, ROOT_RUN_COUNT)]);
        } else {
            assert_eq!(uid_map.ranges(), [r(0, geteuid().as_raw(), 1)]);
            assert_eq!(gid_map.ranges(), [r(0, getegid().as_raw(), 1)]);
        }
        assert_eq!(inside_ids(&uid_map, &gid_map), (0, 0));
        let not_zero = IdMap::new(vec![r(1000, 5, 1)]).unwrap();
        assert_eq!(inside_ids(&not_zero, &not_zero), (1000, 1000));
    }
}
