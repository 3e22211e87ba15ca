//! Step 5: capabilities are recalculated on `execve(2)` (capabilities(7), "Transformation of
//! capabilities during execve()"). A program without file capabilities keeps a full set only when its
//! uid is 0 in its namespace; any other uid ends with empty sets, even one that held every capability
//! a moment before.
//!
//! The program run is this demo's own binary, as `user-demo caps-report`: it prints its view (its user
//! namespace, uid, gid and capability sets) as one JSON line, the same [`IdView`] the children send
//! over their channel, with each set written as `/proc/<pid>/status` writes it (one line, wrapped
//! here):
//!
//! ```text
//! {"userns":{"kind":"User","inode":4026532301},"uid":0,"gid":0,
//!  "caps":{"effective":"000001ffffffffff","permitted":"000001ffffffffff","bounding":"000001ffffffffff"}}
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sched::CloneFlags;
use nskit::{Child, ChildError, Spawn};

use crate::mapping::take_ids_in_child;
use crate::view::{IdView, observe};
use crate::{IdMap, IdRange, UserError, inside_ids, reply};

/// Step 5's results for one child: its sets before `execve`, and those the new program reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecCaps {
    pub before: IdView,
    pub after: IdView,
}

/// The `caps-report` subcommand's output: the caller's view, as one JSON line.
pub fn caps_report() -> Result<String, UserError> {
    serde_json::to_string(&observe()?).map_err(UserError::Report)
}

/// Reads a line that `caps-report` printed back into the view it describes.
pub fn parse_caps_report(line: &str) -> Result<IdView, UserError> {
    serde_json::from_str(line.trim_end()).map_err(UserError::Report)
}

// ANCHOR: exec_caps
/// Step 5: a mapped child reads its sets, then `execve`s `program caps-report`, which reports its own.
/// capabilities(7) recalculates them on execve: a program without file capabilities keeps a full set
/// only when its uid is 0 in the namespace ("root" rule); any other uid ends with empty sets.
pub fn caps_across_exec(program: &Path, uid_map: &IdMap, gid_map: &IdMap) -> Result<ExecCaps, UserError> {
    // The parent opens the program and the child runs it by fd (fexecve(3)), so the child, whose ids
    // outside may not search the directories on the way, can still run it.
    let binary = File::open(program).map_err(|source| UserError::Program {
        path: program.to_owned(),
        source,
    })?;
    let (report_reader, report_writer) = UnixStream::pair().map_err(UserError::Channel)?;
    let (uid, gid) = inside_ids(uid_map, gid_map);
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUSER).maps(uid_map.clone(), gid_map.clone());
    let mut child = spawn.run(move |channel| {
        let before =
            take_ids_in_child(uid, gid).and_then(|()| observe().map_err(|e| ChildError::new("observe", e)));
        if reply(channel, &before) != 0 {
            return 1;
        }
        // The new program's stdout is the report socket; on success, exec does not return.
        let exec = nix::unistd::dup2_stdout(&report_writer).and_then(|()| {
            nix::unistd::fexecve(
                &binary,
                &[c"user-demo", c"caps-report"],
                &[] as &[&std::ffi::CStr],
            )
        });
        let failed = ChildError::sys("execve caps-report", exec.unwrap_err());
        let _ = channel.reply::<()>(&Err(failed));
        127
    })?;
    let before = child.channel().recv_reply()?;
    let mut line = String::new();
    BufReader::new(report_reader)
        .read_line(&mut line)
        .map_err(UserError::Lost)?;
    if line.is_empty() {
        return Err(why_no_report(child));
    }
    child.wait().map_err(UserError::Lost)?;
    let after = parse_caps_report(&line)?;
    Ok(ExecCaps { before, after })
}
// ANCHOR_END: exec_caps

/// Why `caps-report` printed nothing: execve failed, and the child said why on the channel (which a
/// successful execve closes, being close-on-exec); or the program ran and failed.
fn why_no_report(mut child: Child) -> UserError {
    if let Err(nskit::StepError::Child(why)) = child.channel().recv_reply::<()>() {
        return nskit::StepError::Child(why).into();
    }
    match child.wait() {
        Ok(exit) => UserError::NoReport(exit),
        Err(e) => UserError::Lost(e),
    }
}

/// The two maps step 5 uses, derived from the run's maps: uid 0 inside, and uid 1000 inside, both
/// standing for the outside id that the run's map gives to inside 0 (or its first range).
pub fn exec_maps(uid_map: &IdMap, gid_map: &IdMap) -> [(IdMap, IdMap); 2] {
    let outside = |map: &IdMap| map.to_outside(0).unwrap_or(map.ranges()[0].outside);
    let single = |inside, outside| {
        IdMap::new(vec![IdRange {
            inside,
            outside,
            count: 1,
        }])
        .expect("one range of one id")
    };
    let (uid, gid) = (outside(uid_map), outside(gid_map));
    [
        (single(0, uid), single(0, gid)),
        (single(1000, uid), single(1000, gid)),
    ]
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

    #[test]
    fn exec_maps_keep_the_outside_id() {
        let (uid_map, gid_map) = (IdMap::root_is(1000), IdMap::root_is(1001));
        let [(root_uid, root_gid), (user_uid, user_gid)] = exec_maps(&uid_map, &gid_map);
        assert_eq!(root_uid.ranges(), [r(0, 1000, 1)]);
        assert_eq!(root_gid.ranges(), [r(0, 1001, 1)]);
        assert_eq!(user_uid.ranges(), [r(1000, 1000, 1)]);
        assert_eq!(user_gid.ranges(), [r(1000, 1001, 1)]);
    }

    #[test]
    fn a_report_is_one_line_read_back_as_the_same_view() {
        let line = caps_report().unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(
            parse_caps_report(&format!("{line}\n")).unwrap(),
            observe().unwrap()
        );
        assert!(matches!(parse_caps_report("0\t0\t0"), Err(UserError::Report(_))));
    }
}
