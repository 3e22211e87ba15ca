//! Exercise mnt-mountinfo: read one line of `/proc/<pid>/mountinfo`, optional fields and escapes
//! included (proc(5), "/proc/pid/mountinfo").

use crate::Mount;

// ANCHOR: exercise
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
    // Your code here. `str::split_once(" - ")` finds the separator; `split(' ')` the fields;
    // `u32::from_str_radix(digits, 8)` reads an octal escape.
    None
}
// ANCHOR_END: exercise
