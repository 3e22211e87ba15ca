//! User-namespace id maps: the `/proc/<pid>/uid_map` and `gid_map` files that say which ids inside a
//! user namespace stand for which ids outside it (user_namespaces(7), "User and group ID mappings").
//!
//! A map is a list of lines `inside outside count`. The kernel accepts a map once, written in a single
//! `write(2)`, by a process with the right privilege over the target; an unprivileged writer may map
//! only its own effective id, and must first write `deny` to `/proc/<pid>/setgroups` before a gid map.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::str::FromStr;

use nix::errno::Errno;

use crate::ns::Proc;

/// The most lines a map may have since Linux 4.15 (user_namespaces(7)).
pub const MAX_LINES: usize = 340;

/// One line of a map: `count` consecutive ids starting at `inside` stand for those starting at `outside`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdRange {
    /// Whether `[a, a+n)` and `[b, b+m)` share an id.
    fn overlaps(a: u32, n: u32, b: u32, m: u32) -> bool {
        let (a, n, b, m) = (u64::from(a), u64::from(n), u64::from(b), u64::from(m));
        a < b + m && b < a + n
    }
}

impl fmt::Display for IdRange {
    /// The command-line spelling, `inside:outside:count`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.inside, self.outside, self.count)
    }
}

/// Why a map was refused before anything was written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("invalid id map entry {0:?}: expected inside:outside:count, e.g. 0:1000:1")]
    Syntax(String),
    #[error("invalid id map entry {0}: the count must be at least 1")]
    ZeroCount(IdRange),
    #[error("invalid id map entry {0}: the range runs past the largest id, 4294967294")]
    TooLarge(IdRange),
    #[error("invalid id map: inside ranges {0} and {1} overlap")]
    InsideOverlap(IdRange, IdRange),
    #[error("invalid id map: outside ranges {0} and {1} overlap")]
    OutsideOverlap(IdRange, IdRange),
    #[error("invalid id map: more than {MAX_LINES} entries")]
    TooMany,
    #[error("invalid id map: it is empty")]
    Empty,
    #[error(
        "invalid id map entry {range}: an unprivileged process may map only its own id {own} (count 1); \
         mapping more needs root or newuidmap(1)"
    )]
    NotOwned { range: IdRange, own: u32 },
}

/// A validated map: non-empty, at most [`MAX_LINES`] lines, no zero counts, no overlaps on either side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    ranges: Vec<IdRange>,
}

impl IdMap {
    // ANCHOR: validate
    /// Checks `ranges` against the kernel's rules and returns the map.
    pub fn new(ranges: Vec<IdRange>) -> Result<IdMap, MapError> {
        if ranges.is_empty() {
            return Err(MapError::Empty);
        }
        if ranges.len() > MAX_LINES {
            return Err(MapError::TooMany);
        }
        for r in &ranges {
            if r.count == 0 {
                return Err(MapError::ZeroCount(*r));
            }
            // 4294967295 ((uid_t)-1) is never a valid id, so the last mapped id is at most 2^32 - 2.
            let last = |start: u32| u64::from(start) + u64::from(r.count) - 1;
            if last(r.inside) >= u64::from(u32::MAX) || last(r.outside) >= u64::from(u32::MAX) {
                return Err(MapError::TooLarge(*r));
            }
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if IdRange::overlaps(a.inside, a.count, b.inside, b.count) {
                    return Err(MapError::InsideOverlap(*a, *b));
                }
                if IdRange::overlaps(a.outside, a.count, b.outside, b.count) {
                    return Err(MapError::OutsideOverlap(*a, *b));
                }
            }
        }
        Ok(IdMap { ranges })
    }
    // ANCHOR_END: validate

    /// The map a rootless container uses: id 0 inside is `outside` (the caller's own id) outside.
    pub fn root_is(outside: u32) -> IdMap {
        IdMap {
            ranges: vec![IdRange {
                inside: 0,
                outside,
                count: 1,
            }],
        }
    }

    /// Parses command-line entries, one `inside:outside:count` each.
    pub fn parse_entries<S: AsRef<str>>(entries: &[S]) -> Result<IdMap, MapError> {
        let ranges = entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()?;
        IdMap::new(ranges)
    }

    pub fn ranges(&self) -> &[IdRange] {
        &self.ranges
    }

    /// Checks that a process with effective id `own` may write this map by itself. Root (with
    /// CAP_SETUID/CAP_SETGID in the parent namespace) may map any ids; anyone else only `own`, once.
    pub fn check_writable_by(&self, own: u32, privileged: bool) -> Result<(), MapError> {
        if privileged {
            return Ok(());
        }
        match self.ranges.as_slice() {
            [r] if r.outside == own && r.count == 1 => Ok(()),
            [r] | [r, ..] => Err(MapError::NotOwned { range: *r, own }),
            [] => Err(MapError::Empty),
        }
    }

    /// Translates an id inside the namespace to the id outside, if mapped.
    pub fn to_outside(&self, inside: u32) -> Option<u32> {
        self.ranges.iter().find_map(|r| {
            let offset = inside.checked_sub(r.inside)?;
            (offset < r.count).then(|| r.outside + offset)
        })
    }

    /// The map in the kernel's file format: one `inside outside count` line per range.
    pub fn to_proc_format(&self) -> String {
        self.ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
            .collect()
    }
}

impl FromStr for IdRange {
    type Err = MapError;

    fn from_str(s: &str) -> Result<IdRange, MapError> {
        let syntax = || MapError::Syntax(s.to_owned());
        let mut parts = s.split(':');
        let mut next = || -> Result<u32, MapError> {
            let part = parts.next().ok_or_else(syntax)?;
            // u32::from_str accepts a leading '+'; an id map entry should not.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            part.parse().map_err(|_| syntax())
        };
        let range = IdRange {
            inside: next()?,
            outside: next()?,
            count: next()?,
        };
        if parts.next().is_some() {
            return Err(syntax());
        }
        Ok(range)
    }
}

/// What to write to `/proc/<pid>/setgroups` (user_namespaces(7), "Interaction with system calls that
/// change process UIDs or GIDs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setgroups {
    Allow,
    Deny,
}

/// A write to one of the map files failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {file} of process {pid}: {errno}")]
pub struct WriteError {
    pub file: &'static str,
    pub pid: String,
    pub errno: Errno,
}

// ANCHOR: write_proc_file
/// Writes `contents` to `/proc/<pid>/<file>` in one `write(2)`, as the kernel requires.
fn write_proc_file(who: Proc, file: &'static str, contents: &str) -> Result<(), WriteError> {
    let fail = |errno| WriteError {
        file,
        pid: pid_label(who),
        errno,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .open(who.dir().join(file))
        .map_err(|e| fail(io_errno(&e)))?;
    let written = f.write(contents.as_bytes()).map_err(|e| fail(io_errno(&e)))?;
    if written != contents.len() {
        return Err(fail(Errno::EIO));
    }
    Ok(())
}
// ANCHOR_END: write_proc_file

fn pid_label(who: Proc) -> String {
    match who {
        Proc::Current => "self".to_owned(),
        Proc::Pid(pid) => pid.to_string(),
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

// ANCHOR: map_files
/// Writes `/proc/<pid>/setgroups`. `deny` must come before an unprivileged process writes a gid map:
/// otherwise the new root could drop a group with `setgroups(2)` and gain access a negative group ACL
/// denied it (CVE-2014-8989).
pub fn write_setgroups(who: Proc, value: Setgroups) -> Result<(), WriteError> {
    let text = match value {
        Setgroups::Allow => "allow",
        Setgroups::Deny => "deny",
    };
    write_proc_file(who, "setgroups", text)
}

/// Writes `/proc/<pid>/uid_map`. It can be written once; a second write fails with EPERM.
pub fn write_uid_map(who: Proc, map: &IdMap) -> Result<(), WriteError> {
    write_proc_file(who, "uid_map", &map.to_proc_format())
}

/// Writes `/proc/<pid>/gid_map`. Unprivileged, this fails with EPERM unless setgroups says `deny`.
pub fn write_gid_map(who: Proc, map: &IdMap) -> Result<(), WriteError> {
    write_proc_file(who, "gid_map", &map.to_proc_format())
}
// ANCHOR_END: map_files

// ANCHOR: write_maps
/// Writes both maps the way an unprivileged parent must: `setgroups` first (`deny`, unless the writer
/// is privileged), then `gid_map`, then `uid_map`.
pub fn write_maps(who: Proc, uid_map: &IdMap, gid_map: &IdMap, privileged: bool) -> Result<(), WriteError> {
    if !privileged {
        write_setgroups(who, Setgroups::Deny)?;
    }
    write_gid_map(who, gid_map)?;
    write_uid_map(who, uid_map)
}
// ANCHOR_END: write_maps

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
    fn parses_entries() {
        let map = IdMap::parse_entries(&["0:1000:1", "1:100000:65536"]).unwrap();
        assert_eq!(map.ranges(), [r(0, 1000, 1), r(1, 100000, 65536)]);
        assert_eq!(map.to_proc_format(), "0 1000 1\n1 100000 65536\n");
        assert_eq!(map.to_outside(0), Some(1000));
        assert_eq!(map.to_outside(5), Some(100004));
        assert_eq!(map.to_outside(65537), None);
    }

    #[test]
    fn rejects_every_malformed_form() {
        for bad in [
            "",
            "0",
            "0:1",
            "0:1:",
            ":1:1",
            "0:1:1:1",
            "a:1:1",
            "0:-1:1",
            "0:+1:1",
            " 0:1:1",
            "0:1:1 ",
            "0:1:99999999999",
            "0;1;1",
            "0:1:0x1",
        ] {
            assert_eq!(
                bad.parse::<IdRange>(),
                Err(MapError::Syntax(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_zero_count_overlap_and_overflow() {
        assert_eq!(
            IdMap::parse_entries(&["0:1000:0"]),
            Err(MapError::ZeroCount(r(0, 1000, 0)))
        );
        assert_eq!(
            IdMap::parse_entries(&["0:1000:10", "5:2000:1"]),
            Err(MapError::InsideOverlap(r(0, 1000, 10), r(5, 2000, 1)))
        );
        assert_eq!(
            IdMap::parse_entries(&["0:1000:10", "20:1009:1"]),
            Err(MapError::OutsideOverlap(r(0, 1000, 10), r(20, 1009, 1)))
        );
        assert_eq!(
            IdMap::parse_entries(&["0:4294967295:1"]),
            Err(MapError::TooLarge(r(0, u32::MAX, 1)))
        );
        assert_eq!(
            IdMap::parse_entries(&["4294967290:0:10"]),
            Err(MapError::TooLarge(r(4294967290, 0, 10)))
        );
        assert!(IdMap::parse_entries(&["0:4294967294:1"]).is_ok());
        assert_eq!(IdMap::parse_entries::<&str>(&[]), Err(MapError::Empty));
        let many: Vec<String> = (0..=MAX_LINES as u32).map(|i| format!("{i}:{i}:1")).collect();
        assert_eq!(IdMap::parse_entries(&many), Err(MapError::TooMany));
    }

    #[test]
    fn adjacent_ranges_do_not_overlap() {
        assert!(IdMap::parse_entries(&["0:1000:10", "10:1010:10"]).is_ok());
    }

    #[test]
    fn unprivileged_writer_maps_only_itself() {
        assert!(IdMap::root_is(1000).check_writable_by(1000, false).is_ok());
        let other = IdMap::root_is(0);
        assert_eq!(
            other.check_writable_by(1000, false),
            Err(MapError::NotOwned {
                range: r(0, 0, 1),
                own: 1000
            })
        );
        assert!(other.check_writable_by(1000, true).is_ok());
        let two = IdMap::parse_entries(&["0:1000:2"]).unwrap();
        assert!(two.check_writable_by(1000, false).is_err());
    }
}
