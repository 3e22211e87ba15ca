//! Where the cgroups are (cgroups(7)): the cgroup filesystems this process sees mounted
//! (`/proc/self/mountinfo`), the kind of host they make (cgroup v2, v1, or the hybrid of both), and the
//! cgroups a process belongs to (`/proc/<pid>/cgroup`), each a directory in one of those filesystems.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use nskit::Proc;

use crate::CgroupError;

/// The two generations of the cgroup filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Version {
    /// `cgroup`: a hierarchy per controller (or per few), each mounted on its own.
    V1,
    /// `cgroup2`: one hierarchy for every controller.
    V2,
}

/// One mounted cgroup filesystem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    pub version: Version,
    pub mount_point: PathBuf,
    /// The cgroup the mount shows at its top, mountinfo's fourth field: `/` for a mount of the whole
    /// hierarchy, or a path relative to the reader's cgroup namespace root.
    pub root: String,
    /// v1: the controllers bound to this hierarchy (and a `name=` for a named one, as systemd's);
    /// v2: the controllers its top cgroup offers (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

impl Mount {
    /// Whether `controller` (`memory`, `pids`, `cpu`) is bound here.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directory of the cgroup at `path` (as `/proc/<pid>/cgroup` names it), when this mount shows it.
    pub fn dir_of(&self, path: &str) -> Option<PathBuf> {
        let below = strip_cgroup_prefix(path, &self.root)?;
        Some(if below.is_empty() {
            self.mount_point.clone()
        } else {
            self.mount_point.join(below)
        })
    }
}

/// `path` below `root`, without a leading `/`: `("/a/b", "/a")` is `Some("b")`; `("/ab", "/a")` is
/// `None`.
fn strip_cgroup_prefix<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest.trim_start_matches('/'))
    } else {
        None
    }
}

/// What kind of cgroup host this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostKind {
    /// Only `cgroup2`: every controller in one hierarchy (most distributions since 2021).
    V2,
    /// v1 controllers in hierarchies of their own, plus a `cgroup2` mount (systemd's "hybrid" mode).
    Hybrid,
    /// Only v1 hierarchies ("legacy").
    V1,
}

impl fmt::Display for HostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostKind::V2 => "cgroup v2",
            HostKind::Hybrid => "hybrid",
            HostKind::V1 => "cgroup v1",
        })
    }
}

/// The v1 controllers the kernel has, as mount options name them (cgroups(7), "Cgroups version 1
/// controllers"); the other options of a `cgroup` mount (`rw`, `xattr`, `release_agent=`...) are not.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Every cgroup filesystem this process sees.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hierarchies {
    pub mounts: Vec<Mount>,
}

// ANCHOR: detect
impl Hierarchies {
    /// Reads this process's mount table. A `cgroup2` mount's controllers are read from its top
    /// `cgroup.controllers`; a v1 mount's are in its options.
    pub fn read() -> Result<Hierarchies, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(|source| CgroupError::read(path, source))?;
        let mut hierarchies = Hierarchies::parse(&text);
        for mount in &mut hierarchies.mounts {
            if mount.version == Version::V2 {
                let file = mount.mount_point.join("cgroup.controllers");
                let text = fs::read_to_string(&file).map_err(|source| CgroupError::read(&file, source))?;
                mount.controllers = text.split_whitespace().map(str::to_owned).collect();
            }
        }
        Ok(hierarchies)
    }

    /// The cgroup mounts of a mountinfo text (proc(5)): `ID PARENT DEV ROOT MOUNT_POINT OPTIONS
    /// [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`. A v2 mount's controllers are left empty.
    pub fn parse(mountinfo: &str) -> Hierarchies {
        let mounts = mountinfo
            .lines()
            .filter_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                let fields: Vec<&str> = before.split(' ').collect();
                let mut after = after.split(' ');
                let (fstype, _source, options) = (after.next()?, after.next()?, after.next()?);
                let version = match fstype {
                    "cgroup" => Version::V1,
                    "cgroup2" => Version::V2,
                    _ => return None,
                };
                let controllers = match version {
                    Version::V1 => options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect(),
                    Version::V2 => Vec::new(),
                };
                Some(Mount {
                    version,
                    mount_point: PathBuf::from(unescape(fields.get(4)?)),
                    root: unescape(fields.get(3)?),
                    controllers,
                })
            })
            .collect();
        Hierarchies { mounts }
    }

    /// v2, v1, or both; an error when no cgroup filesystem is mounted at all.
    pub fn kind(&self) -> Result<HostKind, CgroupError> {
        let v1 = self
            .mounts
            .iter()
            .any(|m| m.version == Version::V1 && m.controllers.iter().any(|c| !c.starts_with("name=")));
        let v2 = self.v2().is_some();
        match (v1, v2) {
            (true, true) => Ok(HostKind::Hybrid),
            (true, false) => Ok(HostKind::V1),
            (false, true) => Ok(HostKind::V2),
            (false, false) => Err(CgroupError::NotMounted),
        }
    }

    /// The `cgroup2` mount, if any.
    pub fn v2(&self) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.version == Version::V2)
    }

    /// The hierarchy that holds `controller`: a v1 one bound to it, else the v2 one when its top
    /// offers it. On a hybrid host the v1 hierarchy wins: the kernel binds a controller to one
    /// hierarchy only, and a v1 mount takes it from v2.
    pub fn holding(&self, controller: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .find(|m| m.version == Version::V1 && m.has(controller))
            .or_else(|| self.v2().filter(|m| m.has(controller)))
    }

    /// The mount on which a process's membership line is seen: the v2 mount for `0::`, else the v1
    /// mount bound to the same controllers.
    pub fn mount_of(&self, membership: &Membership) -> Option<&Mount> {
        if membership.hierarchy == 0 {
            return self.v2();
        }
        self.mounts.iter().find(|m| {
            m.version == Version::V1
                && !membership.controllers.is_empty()
                && membership.controllers.iter().all(|c| m.has(c))
        })
    }
}
// ANCHOR_END: detect

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controllers:path` (cgroups(7)). The path is relative
/// to the reader's cgroup namespace root, which is why it can start with `/..`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    /// 0 for the v2 hierarchy; a v1 hierarchy's number otherwise (as in `/proc/cgroups`).
    pub hierarchy: u32,
    /// The v1 controllers bound to that hierarchy (`cpu,cpuacct`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    pub path: String,
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.hierarchy,
            self.controllers.join(","),
            self.path
        )
    }
}

impl Membership {
    /// Parses one line; `None` when it is not `ID:controllers:path`.
    pub fn parse(line: &str) -> Option<Membership> {
        let mut parts = line.splitn(3, ':');
        let hierarchy = parts.next()?.parse().ok()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        Some(Membership {
            hierarchy,
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            path: path.to_owned(),
        })
    }

    /// Whether this line is about `controller` (for v2, pass the hierarchies to know which
    /// controllers the v2 line covers: see [`Hierarchies::holding`]).
    pub fn names(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

// ANCHOR: memberships
/// The cgroups `who` belongs to, one per hierarchy, as `/proc/<pid>/cgroup` lists them to this reader.
pub fn memberships(who: Proc) -> Result<Vec<Membership>, CgroupError> {
    let path = who.dir().join("cgroup");
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::read(&path, source))?;
    Ok(parse_memberships(&text))
}
// ANCHOR_END: memberships

/// The lines of a `/proc/<pid>/cgroup` text, in the kernel's order (highest hierarchy first, v2 last).
pub fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines().filter_map(Membership::parse).collect()
}

/// The path the kernel prints for cgroup `target` to a reader whose namespace root is `root` (both as
/// the host names them): down from the root when `target` is inside it, else up with `..` to the two
/// paths' common ancestor and down from there (cgroup_namespaces(7)).
pub fn relative_path(root: &str, target: &str) -> String {
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (root, target) = (parts(root), parts(target));
    let common = root.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("..".to_owned(), root.len() - common);
    let downs = target[common..].iter().cloned();
    format!("/{}", ups.chain(downs).collect::<Vec<_>>().join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's CI machine: hybrid, v1 controllers each on their own, cgroup2 on `unified`.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn the_ci_machine_is_hybrid() {
        let h = Hierarchies::parse(HYBRID);
        assert_eq!(h.mounts.len(), 5, "tmpfs is not a cgroup mount");
        assert_eq!(h.kind().unwrap(), HostKind::Hybrid);
        assert_eq!(
            h.mounts[3].controllers,
            ["name=systemd"],
            "xattr and release_agent are options"
        );
        assert_eq!(
            h.holding("memory").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert!(
            h.holding("io").is_none(),
            "the v2 mount offers nothing until read()"
        );
    }

    #[test]
    fn a_v2_host_and_a_v1_host() {
        let mut v2 = Hierarchies::parse(
            "26 22 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        assert_eq!(v2.kind().unwrap(), HostKind::V2);
        v2.mounts[0].controllers = vec!["cpu".into(), "memory".into(), "pids".into()];
        assert_eq!(v2.holding("pids").unwrap().version, Version::V2);
        let only_named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n41 31 0:38 / /u rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Hierarchies::parse(only_named).kind().unwrap(), HostKind::V2);
        let v1: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(Hierarchies::parse(&v1).kind().unwrap(), HostKind::V1);
        assert!(matches!(
            Hierarchies::parse("").kind(),
            Err(CgroupError::NotMounted)
        ));
    }

    #[test]
    fn memberships_and_their_directories() {
        let lines = parse_memberships("4:memory:/process_api/1d0d\n1:cpu,cpuacct:/\n0::/user.slice/a b\n");
        assert_eq!(lines[0].to_string(), "4:memory:/process_api/1d0d");
        assert_eq!(lines[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(
            (lines[2].hierarchy, lines[2].path.as_str()),
            (0, "/user.slice/a b")
        );
        let h = Hierarchies::parse(HYBRID);
        let memory = h.mount_of(&lines[0]).unwrap();
        assert_eq!(
            memory.dir_of(&lines[0].path).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/1d0d")
        );
        assert_eq!(h.mount_of(&lines[2]).unwrap().version, Version::V2);
        let inner = Mount {
            root: "/a".into(),
            ..memory.clone()
        };
        assert_eq!(
            inner.dir_of("/a/b").unwrap(),
            Path::new("/sys/fs/cgroup/memory/b")
        );
        assert_eq!(inner.dir_of("/a").unwrap(), Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(inner.dir_of("/ab"), None, "not below the mount's root");
        assert_eq!(inner.dir_of("/"), None);
    }

    #[test]
    fn paths_outside_the_namespace_root_go_up() {
        assert_eq!(relative_path("/a/b", "/a/b"), "/");
        assert_eq!(relative_path("/a/b", "/a/b/c"), "/c");
        assert_eq!(relative_path("/a/b", "/"), "/../..");
        assert_eq!(relative_path("/a/b", "/a/c"), "/../c");
        assert_eq!(relative_path("/", "/x"), "/x");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/mnt/a\040b\134c"), r"/mnt/a b\c");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
    }
}
