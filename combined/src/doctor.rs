//! `combined doctor`: what this machine allows a container launcher to do, checked for real (each
//! namespace kind is created once) rather than guessed from settings, and what to do about each
//! failure. user_namespaces(7), cgroups(7), mount_namespaces(7).

use std::fmt;
use std::fs;

use nix::sched::CloneFlags;
use nskit::spawn::describe_flags;
use nskit::{Spawn, UserNs, userns};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Note,
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub verdict: Verdict,
    pub what: String,
    pub fix: Option<String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.verdict {
            Verdict::Ok => "[ ok ]",
            Verdict::Note => "[note]",
            Verdict::Fail => "[FAIL]",
        };
        write!(f, "{tag} {}", self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

fn check(verdict: Verdict, what: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        verdict,
        what: what.into(),
        fix: fix.map(str::to_owned),
    }
}

/// Runs every check.
pub fn run() -> Vec<Check> {
    let mut report = vec![kernel_version(), privileges()];
    report.extend(userns_settings());
    report.extend(namespace_probes());
    report.push(cgroup_version());
    report.push(root_propagation());
    report
}

/// Whether `run` can work: nothing failed.
pub fn healthy(report: &[Check]) -> bool {
    report.iter().all(|c| c.verdict != Verdict::Fail)
}

/// The oldest kernel `run` works on: 5.6 brought openat2(2), with which every path inside a root
/// filesystem (the command, the mount targets, the volumes) is looked up without ever leaving it
/// (`RESOLVE_IN_ROOT`, `RESOLVE_BENEATH`); below it no command is found. (4.6 brought the cgroup
/// namespace, 3.8 unprivileged user namespaces; 5.12's mount_setattr(2) is used where it exists, with
/// a fallback.)
const OLDEST_KERNEL: (u32, u32) = (5, 6);

fn kernel_version() -> Check {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    kernel_check(release.trim())
}

fn kernel_check(release: &str) -> Check {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version >= OLDEST_KERNEL {
        check(Verdict::Ok, format!("kernel {release}"), None)
    } else {
        let (major, minor) = OLDEST_KERNEL;
        check(
            Verdict::Fail,
            format!(
                "kernel {release} is older than {major}.{minor}, which brought openat2(2): every path in a \
                 root filesystem is looked up with it, never outside it"
            ),
            Some("use Linux 5.6 or newer"),
        )
    }
}

fn privileges() -> Check {
    if userns::is_root() {
        check(
            Verdict::Ok,
            "running as root: containers are made without a user namespace (--userns adds one)",
            None,
        )
    } else {
        let uid = nix::unistd::geteuid();
        check(
            Verdict::Ok,
            format!("running as uid {uid}: containers are rootless, inside a user namespace"),
            None,
        )
    }
}

fn userns_settings() -> Vec<Check> {
    let max = fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    let mut checks: Vec<Check> = userns::restrictions()
        .into_iter()
        .map(|r| {
            let verdict = if userns::is_root() {
                Verdict::Note
            } else {
                Verdict::Fail
            };
            check(verdict, format!("{}: {}", r.setting, r.why), Some(r.fix))
        })
        .collect();
    if checks.is_empty() {
        checks.push(check(
            Verdict::Ok,
            format!(
                "no host setting restricts user namespaces (user.max_user_namespaces={})",
                max.trim()
            ),
            None,
        ));
    }
    checks
}

/// The namespace kinds `run` creates, in the order the production runtimes list them.
const KINDS: [(&str, CloneFlags); 5] = [
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mount", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("network", CloneFlags::CLONE_NEWNET),
];

/// Creates each namespace kind once, in a child, the way `run` would (through a user namespace when
/// not root).
fn namespace_probes() -> Vec<Check> {
    let mut checks = Vec::new();
    let user = probe(Spawn::new(CloneFlags::empty()).user(UserNs::Always));
    checks.push(match user {
        Ok(()) => check(
            Verdict::Ok,
            "user namespaces can be created and grant capabilities",
            None,
        ),
        Err(e) if userns::is_root() => check(
            Verdict::Note,
            format!("user namespaces do not work ({e}); --userns will fail"),
            None,
        ),
        Err(e) => check(
            Verdict::Fail,
            format!("user namespaces do not work: {e}"),
            Some("run as root, or lift the restriction above"),
        ),
    });
    for (name, flag) in KINDS {
        let spawn = Spawn::new(flag);
        checks.push(match probe(spawn.clone()) {
            Ok(()) => check(
                Verdict::Ok,
                format!(
                    "{name} namespaces can be created ({})",
                    describe_flags(spawn.flags())
                ),
                None,
            ),
            Err(e) => check(
                Verdict::Fail,
                format!("cannot create a {name} namespace: {e}"),
                None,
            ),
        });
    }
    checks
}

fn probe(spawn: Spawn) -> Result<(), String> {
    let child = spawn.run(|_| 0).map_err(|e| e.to_string())?;
    match child.wait() {
        Ok(exit) if exit.success() => Ok(()),
        Ok(exit) => Err(format!("the probe child ended with {exit:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn cgroup_version() -> Check {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let fs_at = |target: &str| {
        mounts.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            (fields.get(4) == Some(&target))
                .then(|| fields.get(sep + 1).copied().unwrap_or_default().to_owned())
        })
    };
    let what = match fs_at("/sys/fs/cgroup").as_deref() {
        Some("cgroup2") => "cgroups v2 (unified)".to_owned(),
        Some(_) if fs_at("/sys/fs/cgroup/unified").is_some() => {
            "cgroups v1, hybrid (a v2 tree at /sys/fs/cgroup/unified)".into()
        }
        Some(_) => "cgroups v1".into(),
        None => "no cgroup filesystem mounted".into(),
    };
    check(
        Verdict::Note,
        format!("{what}; combined sets no resource limits, so any version works"),
        None,
    )
}

fn root_propagation() -> Check {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = mounts.lines().find(|l| l.split(' ').nth(4) == Some("/"));
    let shared = root.is_some_and(|l| l.split(" - ").next().unwrap_or("").contains("shared:"));
    if shared {
        check(
            Verdict::Note,
            "/ is a shared mount (systemd's default): combined makes it a slave in each container's mount namespace first, so no mount leaks back",
            None,
        )
    } else {
        check(
            Verdict::Ok,
            "/ is not shared: container mounts cannot propagate back to the host",
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_says_how_to_fix_it() {
        let c = check(Verdict::Fail, "x is off", Some("turn x on"));
        assert_eq!(c.to_string(), "[FAIL] x is off\n       fix: turn x on");
        assert!(!healthy(&[c]));
        assert!(healthy(&[check(Verdict::Note, "fine", None)]));
    }

    /// Below 5.6 (no openat2) no command is found in a rootfs, so doctor says so rather than Ok.
    #[test]
    fn a_kernel_without_openat2_is_refused() {
        for release in ["6.18.44-fc-v1045", "5.6.0", "5.15.0-91-generic"] {
            assert_eq!(kernel_check(release).verdict, Verdict::Ok, "{release}");
        }
        for release in ["5.4.0-150-generic", "4.19.0", ""] {
            let c = kernel_check(release);
            assert_eq!(c.verdict, Verdict::Fail, "{release}");
            assert!(c.what.contains("openat2") && c.fix.is_some(), "{c}");
        }
    }
}
