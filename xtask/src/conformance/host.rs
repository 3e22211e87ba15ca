//! Failures that are not the runtime's: what this host lacks (cgroup v1 controllers and files,
//! cgroups(7); CAP_SYS_RESOURCE, capabilities(7); AppArmor; kernel memory limits, which Linux no longer
//! honours) and the suite's own faults. A failure is put down to one of these only when the cause is
//! checked to hold here *and* runc and crun both failed the same way: the same verdict and the same
//! failing lines for a cause that explains a whole program, or the same failing line for a cause that
//! explains one test in it. The evidence from each is kept. Anything else stays the runtime's failure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::RuntimeRun;
use super::outcome::{Outcome, Status};

/// What the causes are checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    pub kernel: String,
    /// Whether CAP_SYS_RESOURCE is in this process's bounding set (a container can get no more).
    pub cap_sys_resource: bool,
    pub apparmor: bool,
    /// Controllers of the mounted cgroup v1 hierarchies.
    pub v1_controllers: BTreeSet<String>,
    /// What /sys/fs/cgroup/unified's cgroup.controllers lists, when cgroups are hybrid.
    pub unified_controllers: Option<String>,
    /// Whether blkio has `blkio.leaf_weight` (only with the CFQ scheduler, gone since Linux 5.0).
    pub blkio_leaf_weight: bool,
}

/// Reads the host's facts from /proc and /sys.
pub fn facts() -> Host {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    Host {
        kernel: read("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        cap_sys_resource: read("/proc/self/status").is_some_and(|s| has_cap_sys_resource(&s)),
        apparmor: read("/sys/module/apparmor/parameters/enabled").is_some_and(|e| e.trim() == "Y"),
        v1_controllers: v1_controllers(&read("/proc/self/mountinfo").unwrap_or_default()),
        unified_controllers: read("/sys/fs/cgroup/unified/cgroup.controllers").map(|c| c.trim().to_owned()),
        blkio_leaf_weight: std::path::Path::new("/sys/fs/cgroup/blkio/blkio.leaf_weight").exists(),
    }
}

/// Bit 24 (CAP_SYS_RESOURCE, capability.h) of `CapBnd:` in /proc/self/status.
fn has_cap_sys_resource(status: &str) -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The controllers named in the super options of every `cgroup` (v1) mount in mountinfo (proc(5)).
fn v1_controllers(mountinfo: &str) -> BTreeSet<String> {
    const NOT_CONTROLLERS: &[&str] = &["rw", "ro", "xattr", "noprefix", "clone_children"];
    mountinfo
        .lines()
        .filter_map(|line| line.split_once(" - ").map(|(_, fs)| fs))
        .filter_map(|fs| match fs.split(' ').collect::<Vec<_>>()[..] {
            ["cgroup", _source, options, ..] => Some(options),
            _ => None,
        })
        .flat_map(|options| options.split(','))
        .filter(|o| !o.contains('=') && !NOT_CONTROLLERS.contains(o))
        .map(str::to_owned)
        .collect()
}

/// Whose fault a known failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Host,
    Suite,
}

/// A known reason for runc and crun to fail a program here.
#[derive(Debug)]
pub struct Cause {
    pub kind: Kind,
    pub programs: &'static [&'static str],
    /// The failing test line this cause explains (a part of it); `None` when it explains the whole
    /// program's failure.
    pub test: Option<&'static str>,
    /// Short, for the table.
    pub label: &'static str,
    /// What happens, for the markdown.
    pub explanation: &'static str,
    pub holds: fn(&Host) -> bool,
}

/// The known causes, each checked on the host before it is blamed.
pub const CAUSES: &[Cause] = &[
    Cause {
        kind: Kind::Host,
        programs: &["linux_cgroups_hugetlb", "linux_cgroups_relative_hugetlb"],
        test: None,
        label: "host: no v1 hugetlb controller",
        explanation: "the hugetlb controller is not mounted as a cgroup v1 hierarchy here, so no runtime \
                      can set `linux.resources.hugepageLimits` in one",
        holds: |host| !host.v1_controllers.contains("hugetlb"),
    },
    Cause {
        kind: Kind::Host,
        programs: &["linux_cgroups_network", "linux_cgroups_relative_network"],
        test: None,
        label: "host: no v1 net_cls/net_prio",
        explanation: "neither net_cls nor net_prio is mounted as a cgroup v1 hierarchy here, so no runtime \
                      can set `linux.resources.network`",
        holds: |host| !host.v1_controllers.contains("net_cls") && !host.v1_controllers.contains("net_prio"),
    },
    Cause {
        kind: Kind::Host,
        programs: &["linux_cgroups_blkio", "linux_cgroups_relative_blkio"],
        test: None,
        label: "host: no blkio.leaf_weight",
        explanation: "the kernel has no `blkio.leaf_weight` (a CFQ file, gone with CFQ in Linux 5.0), which \
                      the suite's `linux.resources.blockIO.leafWeight` needs",
        holds: |host| !host.blkio_leaf_weight,
    },
    Cause {
        kind: Kind::Host,
        programs: &["linux_cgroups_memory", "linux_cgroups_relative_memory"],
        test: Some("memory kernel is set correctly"),
        label: "host: kernel memory limits ignored",
        explanation: "since Linux 5.16 the kernel no longer honours `memory.kmem.limit_in_bytes` (deprecated \
                      in 5.4): a write is ignored and the file reads back unlimited, so \
                      `linux.resources.memory.kernel` cannot be seen set",
        holds: |host| kernel_at_least(&host.kernel, (5, 16)),
    },
    Cause {
        kind: Kind::Host,
        programs: &["process_capabilities"],
        test: None,
        label: "host: no CAP_SYS_RESOURCE",
        explanation: "the program asks for every capability, and CAP_SYS_RESOURCE is not in this host's \
                      bounding set, so no runtime can grant it (capset fails with EPERM)",
        holds: |host| !host.cap_sys_resource,
    },
    Cause {
        kind: Kind::Host,
        programs: &["linux_process_apparmor_profile"],
        test: None,
        label: "host: no AppArmor",
        explanation: "the kernel has AppArmor disabled or absent, so no runtime can apply \
                      `process.apparmorProfile`",
        holds: |host| !host.apparmor,
    },
    Cause {
        kind: Kind::Suite,
        programs: &["misc_props"],
        test: None,
        label: "suite: no /runtimetest in the bundle",
        explanation: "the program runs `/runtimetest` in its container but never copies it into the bundle \
                      (runtime-tools 260e151), so its first test fails for every runtime",
        holds: |_| true,
    },
    Cause {
        kind: Kind::Suite,
        programs: &["hooks"],
        test: None,
        label: "suite: expects output its hooks never write",
        explanation: "the program compares the hooks' output with `post-start1` where its own hooks write \
                      `post-start1 called` (and would fail on a match too, reading a nil error), so no \
                      runtime can pass it",
        holds: |_| true,
    },
    Cause {
        kind: Kind::Suite,
        programs: &["process_rlimits"],
        test: Some("has expected soft RLIMIT_NOFILE"),
        label: "suite: Go raises runtimetest's NOFILE",
        explanation: "`runtimetest`, which checks the limits from inside the container, is a Go program, and \
                      since Go 1.19 every Go program raises its own soft RLIMIT_NOFILE to the hard limit at \
                      start (go.dev/issue/46279): it reads 4000 where the runtime set 3000",
        holds: |_| true,
    },
    Cause {
        kind: Kind::Suite,
        programs: &["process_rlimits_fail"],
        test: None,
        label: "suite: success is silence",
        explanation: "the program passes by printing nothing when the runtime refuses `RLIMIT_TEST`, as runc \
                      and crun do; it is not counted as a pass, since a runtime that refuses every `create` \
                      would earn the same silence",
        holds: |_| true,
    },
];

/// Whether the kernel release (`6.18.44-...`) is at least `major.minor`.
fn kernel_at_least(release: &str, wanted: (u32, u32)) -> bool {
    let mut numbers = release.split(['.', '-']).map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= wanted,
        _ => false,
    }
}

/// The cause a program's failure is put down to here, with the evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub cause: &'static str,
    /// Whether runc or crun also failed the program in ways the cause does not explain.
    pub partial: bool,
    pub kind: Kind,
    pub explanation: &'static str,
    /// (runtime, its evidence): runc's and crun's.
    pub evidence: Vec<(String, String)>,
}

/// The runtimes whose failing alike is the test of a cause.
const REFERENCES: [&str; 2] = ["runc", "crun"];

/// Labels every program that runc and crun failed alike for a cause that holds on `host`.
pub fn labels(runs: &[RuntimeRun], host: &Host) -> BTreeMap<String, Label> {
    let reference = |name: &str| runs.iter().find(|r| r.runtime.name == name);
    let (Some(runc), Some(crun)) = (reference(REFERENCES[0]), reference(REFERENCES[1])) else {
        return BTreeMap::new();
    };
    let mut labels = BTreeMap::new();
    for cause in CAUSES.iter().filter(|c| (c.holds)(host)) {
        for program in cause.programs {
            let (Some(a), Some(b)) = (runc.outcomes.get(*program), crun.outcomes.get(*program)) else {
                continue;
            };
            if let Some((evidence, partial)) = explained(cause, [a, b]) {
                let evidence = REFERENCES.iter().map(|r| (*r).to_owned()).zip(evidence).collect();
                labels.insert((*program).to_owned(), label(cause, evidence, partial));
            }
        }
    }
    labels
}

/// Each runtime's evidence when the cause explains how both failed, and whether either failed in
/// other ways too.
fn explained(cause: &Cause, outcomes: [&Outcome; 2]) -> Option<([String; 2], bool)> {
    let Some(test) = cause.test else {
        let evidence = outcomes.map(|o| o.evidence.clone().unwrap_or_default());
        return failed_alike(outcomes[0], outcomes[1]).then_some((evidence, false));
    };
    let [a, b] = outcomes.map(|o| failing_test(o, test));
    let ((a, a_all), (b, b_all)) = (a?, b?);
    Some(([a, b], !(a_all && b_all)))
}

/// `k of n failing line(s): <the line>` when one of the outcome's failures is `test`, and whether
/// every failure is.
fn failing_test(outcome: &Outcome, test: &str) -> Option<(String, bool)> {
    let matching: Vec<&String> = outcome.failures.iter().filter(|f| f.contains(test)).collect();
    let first = matching.first()?;
    let (k, n) = (matching.len(), outcome.failures.len());
    Some((format!("{k} of {n} failing line(s): {first}"), k == n))
}

fn label(cause: &Cause, evidence: Vec<(String, String)>, partial: bool) -> Label {
    Label {
        cause: cause.label,
        partial,
        kind: cause.kind,
        explanation: cause.explanation,
        evidence,
    }
}

/// Both failed, with the same verdict and the same failing lines.
pub fn failed_alike(a: &Outcome, b: &Outcome) -> bool {
    a.status != Status::Pass && a.status == b.status && a.failures == b.failures
}

impl Label {
    /// The table's note: the cause, and whether it explains only part of the failure.
    pub fn note(&self) -> String {
        if self.partial {
            format!("{}, in part", self.cause)
        } else {
            self.cause.to_owned()
        }
    }
}

impl Host {
    pub fn to_json(&self) -> Value {
        json!({
            "kernel": self.kernel,
            "cap_sys_resource_in_bounding_set": self.cap_sys_resource,
            "apparmor": self.apparmor,
            "cgroup_v1_controllers": self.v1_controllers,
            "cgroup2_unified_controllers": self.unified_controllers,
            "blkio_leaf_weight": self.blkio_leaf_weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::outcome::Exit;
    use crate::conformance::runtimes::Runtime;

    fn outcome(status: Status, failures: &[&str], evidence: &str) -> Outcome {
        Outcome {
            plan: Some(2),
            ok: 1,
            not_ok: failures.len() as u32,
            skipped: 0,
            exit: Exit::Code(0),
            status,
            evidence: Some(evidence.into()),
            failures: failures.iter().map(|f| (*f).to_owned()).collect(),
            seconds: 0.1,
        }
    }

    fn run(name: &str, outcomes: &[(&str, Outcome)]) -> RuntimeRun {
        RuntimeRun {
            runtime: Runtime {
                name: name.into(),
                command: Ok("/bin/false".into()),
                version: None,
                note: None,
            },
            outcomes: outcomes
                .iter()
                .map(|(p, o)| ((*p).to_owned(), o.clone()))
                .collect(),
            leftovers: None,
            seconds: 1.0,
        }
    }

    #[test]
    fn a_failure_is_the_hosts_only_when_runc_and_crun_fail_alike_and_the_cause_holds() {
        let hugetlb = outcome(
            Status::Fail,
            &["not ok - exit status 1"],
            "cannot set hugetlb limit",
        );
        let other = outcome(Status::Fail, &["not ok - something else"], "x");
        let runs = [
            run("combined", &[("linux_cgroups_relative_hugetlb", other.clone())]),
            run(
                "runc",
                &[
                    ("linux_cgroups_relative_hugetlb", hugetlb.clone()),
                    ("misc_props", other.clone()),
                ],
            ),
            run(
                "crun",
                &[
                    ("linux_cgroups_relative_hugetlb", hugetlb.clone()),
                    ("misc_props", hugetlb.clone()),
                ],
            ),
        ];
        let no_hugetlb = Host::default();
        let found = labels(&runs, &no_hugetlb);
        let label = &found["linux_cgroups_relative_hugetlb"];
        assert_eq!(label.cause, "host: no v1 hugetlb controller");
        assert_eq!(
            label.evidence[0],
            ("runc".to_owned(), "cannot set hugetlb limit".to_owned())
        );
        // misc_props failed differently in runc and crun: not labelled.
        assert!(!found.contains_key("misc_props"));
        // Where the host has the controller, the failure is the runtimes' own.
        let with_hugetlb = Host {
            v1_controllers: ["hugetlb".to_owned()].into(),
            ..Host::default()
        };
        assert!(!labels(&runs, &with_hugetlb).contains_key("linux_cgroups_relative_hugetlb"));
    }

    #[test]
    fn a_cause_of_one_test_needs_that_test_failing_in_both() {
        let kmem = "not ok - memory kernel is set correctly";
        let runc = outcome(
            Status::Fail,
            &[kmem, kmem, "not ok - memory kernelTCP is set correctly"],
            "x",
        );
        let crun = outcome(Status::Fail, &[kmem], "y");
        let runs = [
            run("runc", &[("linux_cgroups_memory", runc.clone())]),
            run("crun", &[("linux_cgroups_memory", crun)]),
        ];
        let new_kernel = Host {
            kernel: "6.1.0".into(),
            ..Host::default()
        };
        let label = &labels(&runs, &new_kernel)["linux_cgroups_memory"];
        assert_eq!(label.cause, "host: kernel memory limits ignored");
        // runc also failed kernelTCP, which the cause does not explain.
        assert!(label.partial);
        assert_eq!(label.evidence[0].1, format!("2 of 3 failing line(s): {kmem}"));
        assert_eq!(label.evidence[1].1, format!("1 of 1 failing line(s): {kmem}"));
        // A kernel that still honours kmem limits: the failure is the runtimes' own.
        let old_kernel = Host {
            kernel: "5.10.0".into(),
            ..Host::default()
        };
        assert!(labels(&runs, &old_kernel).is_empty());
        // crun passing that test: runc's failure is its own.
        let passing = outcome(Status::Fail, &["not ok - memory swap is set correctly"], "z");
        let runs = [
            run("runc", &[("linux_cgroups_memory", runc)]),
            run("crun", &[("linux_cgroups_memory", passing)]),
        ];
        assert!(labels(&runs, &new_kernel).is_empty());
    }

    #[test]
    fn passing_alike_is_not_failing_alike() {
        let pass = Outcome {
            status: Status::Pass,
            ..outcome(Status::Pass, &[], "")
        };
        assert!(!failed_alike(&pass, &pass));
        let error = outcome(Status::Error, &[], "a");
        assert!(failed_alike(&error, &outcome(Status::Error, &[], "b")));
        assert!(!failed_alike(&error, &outcome(Status::Timeout, &[], "a")));
    }

    #[test]
    fn host_facts_are_read_from_proc() {
        assert!(has_cap_sys_resource("Name:\tx\nCapBnd:\t000001ffffffffff\n"));
        assert!(!has_cap_sys_resource(
            "CapEff:\t000001ffffffffff\nCapBnd:\t000001fffeffffff\n"
        ));
        assert!(kernel_at_least("6.18.44-fc-v857", (5, 16)));
        assert!(!kernel_at_least("5.10.0-28-amd64", (5, 16)));
        assert!(!kernel_at_least("garbage", (5, 16)));
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
33 25 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let found: Vec<String> = v1_controllers(mountinfo).into_iter().collect();
        assert_eq!(found, ["cpu", "cpuacct", "pids"]);
    }
}
