//! Solution to mnt-mountinfo: split at the lone `-`, take the fixed fields by position, the optional
//! fields as they come, and undo the octal escapes (proc(5), "/proc/pid/mountinfo").

use crate::Mount;

// ANCHOR: solution
/// Parses one line of mountinfo, or returns `None` when it is malformed: no lone `-` field, fewer
/// than six fields before it or two after it, an ID that is not a number, a broken escape.
///
/// ```text
/// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
/// (1)(2) (3)  (4)   (5)    (6)       (7)   (8) (9)    (10)       (11)
/// ```
/// (7) is zero or more optional fields, ended by the `-` (8). Blanks, tabs, newlines and backslashes
/// in a path are written as three octal digits after a backslash: `\040` is a blank.
pub fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    if fields.len() < 6 {
        return None;
    }
    let mut after = after.split(' ');
    Some(Mount {
        id: fields[0].parse().ok()?,
        parent: fields[1].parse().ok()?,
        mount_point: unescape(fields[4])?,
        propagation: fields[6..].iter().map(|f| (*f).to_owned()).collect(),
        fs_type: unescape(after.next()?)?,
        source: unescape(after.next()?)?,
    })
}

/// Undoes the kernel's `\ooo` escapes; `None` for a backslash not followed by three octal digits.
fn unescape(field: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(field.len());
    let mut rest = field.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\\' {
            let digits = std::str::from_utf8(tail.get(..3)?).ok()?;
            bytes.push(u8::from_str_radix(digits, 8).ok()?);
            rest = &tail[3..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
// ANCHOR_END: solution
