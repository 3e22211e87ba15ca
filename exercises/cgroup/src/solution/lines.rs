//! Solution to cgroup-lines: three fields, split at the first two colons (cgroups(7)
//! "/proc/[pid]/cgroup").

use crate::Line;

// ANCHOR: solution
/// Parses one line of `/proc/<pid>/cgroup`; `None` when it is not `ID:controllers:path`.
pub fn parse_line(line: &str) -> Option<Line> {
    let mut fields = line.splitn(3, ':');
    let hierarchy = fields.next()?.parse().ok()?;
    let controllers = fields.next()?;
    let path = fields.next()?;
    Some(Line {
        hierarchy,
        controllers: controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        path: path.to_owned(),
    })
}
// ANCHOR_END: solution
