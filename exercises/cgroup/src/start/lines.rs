//! Exercise cgroup-lines: `/proc/<pid>/cgroup` has a line per hierarchy the process is in,
//! `hierarchy-ID:controllers:path`; a v2 line is `0::path` (cgroups(7) "/proc/[pid]/cgroup").

use crate::Line;

// ANCHOR: exercise
/// Parses one line of `/proc/<pid>/cgroup`; `None` when it is not `ID:controllers:path`.
pub fn parse_line(line: &str) -> Option<Line> {
    // Your code here. Split at the first two colons only (`splitn`): a path may hold a colon. The
    // controllers are comma-separated, and none at all on a v2 line.
    None
}
// ANCHOR_END: exercise
