//! Reading `/proc/<pid>/mountinfo`, the mount table as one process's mount namespace sees it, with the
//! propagation fields `shared:N`, `master:N`, `propagate_from:N` and `unbindable` (proc(5),
//! mount_namespaces(7)).
//!
//! A line looks like this (proc(5)); fields 7.. up to the lone `-` are optional, zero or more:
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)    (8) (9)    (10)         (11)
//! ```

use std::fs;
use std::io;
use std::path::Path;

use nskit::Proc;

// ANCHOR: mount_entry
/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Unique ID of the mount (may be reused after umount).
    pub mount_id: u32,
    /// ID of the parent mount (itself for the root of this namespace's tree).
    pub parent_id: u32,
    /// `major:minor` of the filesystem's device.
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem that forms this mount's root (not `/` for a bind of a subdir).
    pub root: String,
    /// Where it is mounted, relative to the reading process's root directory.
    pub mount_point: String,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub mount_options: String,
    /// The propagation fields, parsed.
    pub propagation: PropagationTags,
    pub fs_type: String,
    /// Filesystem-specific source (`/dev/vda`, `tmpfs`, `proc`, or `none`).
    pub source: String,
    /// Per-superblock options.
    pub super_options: String,
}

/// The optional fields that say how mount events propagate to and from this mount
/// (mount_namespaces(7), "Shared subtrees").
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PropagationTags {
    /// `shared:N`: the mount is in peer group N; events propagate both ways among the peers.
    pub shared: Option<u32>,
    /// `master:N`: the mount is a slave of peer group N; it receives events from it, sends none.
    pub master: Option<u32>,
    /// `propagate_from:N`: the nearest dominant peer group visible from the reader's root.
    pub propagate_from: Option<u32>,
    /// `unbindable`: the mount cannot be bind-mounted.
    pub unbindable: bool,
}
// ANCHOR_END: mount_entry

impl PropagationTags {
    /// The kind of propagation, in the words of mount(8): `shared`, `slave`, `shared+slave`,
    /// `unbindable` or `private` (no tag at all).
    pub fn kind(&self) -> &'static str {
        match (self.shared, self.master, self.unbindable) {
            (_, _, true) => "unbindable",
            (Some(_), Some(_), _) => "shared+slave",
            (Some(_), None, _) => "shared",
            (None, Some(_), _) => "slave",
            (None, None, _) => "private",
        }
    }

    /// The tags as mountinfo spells them, or `-` when there are none (a private mount).
    pub fn fields(&self) -> String {
        let mut out = Vec::new();
        if let Some(n) = self.shared {
            out.push(format!("shared:{n}"));
        }
        if let Some(n) = self.master {
            out.push(format!("master:{n}"));
        }
        if let Some(n) = self.propagate_from {
            out.push(format!("propagate_from:{n}"));
        }
        if self.unbindable {
            out.push("unbindable".to_owned());
        }
        if out.is_empty() {
            "-".to_owned()
        } else {
            out.join(" ")
        }
    }
}

/// Why a mountinfo line could not be parsed; names the line and what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed mountinfo line {line:?}: {reason}")]
pub struct ParseError {
    pub line: String,
    pub reason: String,
}

/// Why a mount table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
}

// ANCHOR: parse_line
impl MountEntry {
    /// Parses one line of mountinfo (proc(5)). Paths are unescaped: the kernel writes a space, tab,
    /// newline and backslash in a path as `\040`, `\011`, `\012` and `\134`.
    pub fn parse(line: &str) -> Result<MountEntry, ParseError> {
        let bad = |reason: &str| ParseError {
            line: line.to_owned(),
            reason: reason.to_owned(),
        };
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields
            .iter()
            .position(|f| *f == "-")
            .ok_or_else(|| bad("no ` - ` separator before the filesystem type"))?;
        if separator < 6 {
            return Err(bad("fewer than 6 fields before the separator"));
        }
        if fields.len() != separator + 4 {
            return Err(bad("expected 3 fields after the separator"));
        }
        let number = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| bad(&format!("{what} {s:?} is not a number")))
        };
        let (major, minor) = fields[2]
            .split_once(':')
            .ok_or_else(|| bad("device is not major:minor"))?;
        let mut propagation = PropagationTags::default();
        for tag in &fields[6..separator] {
            match tag.split_once(':') {
                Some(("shared", n)) => propagation.shared = Some(number(n, "peer group")?),
                Some(("master", n)) => propagation.master = Some(number(n, "peer group")?),
                Some(("propagate_from", n)) => propagation.propagate_from = Some(number(n, "peer group")?),
                None if *tag == "unbindable" => propagation.unbindable = true,
                // proc(5): "parsers should ignore all unrecognized optional fields".
                _ => {}
            }
        }
        Ok(MountEntry {
            mount_id: number(fields[0], "mount ID")?,
            parent_id: number(fields[1], "parent ID")?,
            major: number(major, "major")?,
            minor: number(minor, "minor")?,
            root: unescape(fields[3]).map_err(|r| bad(&r))?,
            mount_point: unescape(fields[4]).map_err(|r| bad(&r))?,
            mount_options: fields[5].to_owned(),
            propagation,
            fs_type: fields[separator + 1].to_owned(),
            source: unescape(fields[separator + 2]).map_err(|r| bad(&r))?,
            super_options: fields[separator + 3].to_owned(),
        })
    }
}
// ANCHOR_END: parse_line

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(field: &str) -> Result<String, String> {
    if field.is_empty() {
        return Err("an empty field".into());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
                .ok_or_else(|| format!("bad escape in {field:?}"))?;
            out.push(digits);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{field:?} is not UTF-8"))
}

/// Parses a whole mountinfo file.
pub fn parse(text: &str) -> Result<Vec<MountEntry>, ParseError> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(MountEntry::parse)
        .collect()
}

/// Reads and parses `/proc/<pid>/mountinfo`.
pub fn read(who: Proc) -> Result<Vec<MountEntry>, ReadError> {
    let path = who.dir().join("mountinfo");
    let text = fs::read_to_string(&path).map_err(|source| ReadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(parse(&text)?)
}

/// The topmost mount at exactly `mount_point` (the last one listed: later mounts stack on top).
pub fn find<'a>(table: &'a [MountEntry], mount_point: &Path) -> Option<&'a MountEntry> {
    let wanted = mount_point.to_str()?;
    table.iter().rev().find(|e| e.mount_point == wanted)
}

/// Whether something is mounted at exactly `mount_point` in `who`'s mount namespace.
pub fn is_mounted(who: Proc, mount_point: &Path) -> Result<bool, ReadError> {
    Ok(find(&read(who)?, mount_point).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_man_page_example() {
        let e = MountEntry::parse(
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!((e.mount_id, e.parent_id, e.major, e.minor), (36, 35, 98, 0));
        assert_eq!((e.root.as_str(), e.mount_point.as_str()), ("/mnt1", "/mnt2"));
        assert_eq!(e.propagation.master, Some(1));
        assert_eq!(e.propagation.kind(), "slave");
        assert_eq!((e.fs_type.as_str(), e.source.as_str()), ("ext3", "/dev/root"));
        assert_eq!(e.super_options, "rw,errors=continue");
    }

    #[test]
    fn parses_several_tags_and_escapes() {
        let e = MountEntry::parse(
            "61 27 0:52 / /tmp/with\\040space rw,relatime shared:7 master:3 propagate_from:2 x-future:9 - tmpfs my\\134src rw",
        )
        .unwrap();
        assert_eq!(e.mount_point, "/tmp/with space");
        assert_eq!(e.source, "my\\src");
        assert_eq!(
            e.propagation,
            PropagationTags {
                shared: Some(7),
                master: Some(3),
                propagate_from: Some(2),
                unbindable: false
            }
        );
        assert_eq!(e.propagation.kind(), "shared+slave");
        assert_eq!(e.propagation.fields(), "shared:7 master:3 propagate_from:2");
        let u = MountEntry::parse("62 27 0:53 / /u rw unbindable - tmpfs tmpfs rw").unwrap();
        assert_eq!(u.propagation.kind(), "unbindable");
        let p = MountEntry::parse("63 27 0:54 / /p rw - tmpfs tmpfs rw").unwrap();
        assert_eq!(
            (p.propagation.kind(), p.propagation.fields().as_str()),
            ("private", "-")
        );
    }

    #[test]
    fn parses_this_machines_table() {
        let table = read(Proc::Current).unwrap();
        assert!(!table.is_empty());
        let root = table.iter().find(|e| e.mount_point == "/").expect("a mount at /");
        assert!(!root.fs_type.is_empty());
        // Every parent ID but the root's names a mount in the table or one outside our root.
        let ids: Vec<u32> = table.iter().map(|e| e.mount_id).collect();
        assert!(table.iter().any(|e| ids.contains(&e.parent_id)));
    }

    #[test]
    fn refuses_malformed_lines() {
        for (line, why) in [
            ("", "separator"),
            (
                "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw",
                "separator",
            ),
            ("36 35 98:0 /mnt1 - ext3 /dev/root rw", "fewer than 6"),
            ("36 35 98:0 /a /b rw - ext3 /dev/root", "3 fields"),
            ("36 35 98:0 /a /b rw - ext3 /dev/root rw extra", "3 fields"),
            ("x 35 98:0 /a /b rw - ext3 /dev/root rw", "mount ID"),
            ("36 35 980 /a /b rw - ext3 /dev/root rw", "major:minor"),
            ("36 35 98:0 /a /b rw shared:x - ext3 /dev/root rw", "peer group"),
            ("36 35 98:0 /a\\04 /b rw - ext3 /dev/root rw", "bad escape"),
            ("36 35 98:0 /a\\999 /b rw - ext3 /dev/root rw", "bad escape"),
        ] {
            let err = MountEntry::parse(line).unwrap_err();
            assert!(err.reason.contains(why), "{line:?}: {err}");
        }
        assert!(parse("36 35 98:0 / / rw - ext4 /dev/vda rw\nbroken").is_err());
    }
}
