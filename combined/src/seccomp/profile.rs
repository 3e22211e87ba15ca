//! The profile format, and which of its rules apply: Docker's seccomp JSON (moby's
//! `profiles/seccomp`, described in Docker's "Seccomp security profiles for Docker"), of which the OCI
//! runtime spec's `linux.seccomp` (config-linux.md) is the subset without `archMap`, `includes` and
//! `excludes`. Each entry is checked and turned into libseccomp's terms (seccomp_rule_add(3)), and
//! kept or dropped for this container exactly as moby decides: by its capabilities, this machine's
//! architecture and the running kernel's version.

use std::collections::HashSet;
use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::SeccompError;

// ---- the JSON, as written ---------------------------------------------------------------------------

/// A whole profile. Unknown fields are refused, so that a misspelt `errnoRet` is an error rather than a
/// silently different filter.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    /// OCI: every architecture the filter accepts, by libseccomp's names (`SCMP_ARCH_X86_64`).
    architectures: Option<Vec<String>>,
    /// Docker: for each native architecture, the others its processes can also use.
    arch_map: Option<Vec<ArchMapEntry>>,
    syscalls: Option<Vec<Entry>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchMapEntry {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

/// One entry of `syscalls`: these names get this action, when the arguments match.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    names: Option<Vec<String>>,
    /// The older spelling of a single name.
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Arg>>,
    includes: Option<Condition>,
    excludes: Option<Condition>,
    #[serde(rename = "comment")]
    _comment: Option<IgnoredAny>,
}

/// A comparison of one argument. For `SCMP_CMP_MASKED_EQ`, `value` is the mask and `valueTwo` what
/// the masked argument must equal.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// Docker's `includes` and `excludes`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Condition {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

// ---- the facts a profile is resolved against --------------------------------------------------------

/// A kernel's version as Docker's `minKernel` compares it: `6.18` of `6.18.44-generic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Kernel(pub(super) u32, pub(super) u32);

impl Kernel {
    /// The running kernel's version, from /proc/sys/kernel/osrelease (the release uname(2) reports).
    fn running() -> Option<Kernel> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        let mut parts = release.trim().splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor_text = parts.next()?;
        let digits = minor_text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(minor_text.len());
        Some(Kernel(major, minor_text[..digits].parse().ok()?))
    }

    /// A `minKernel` value: exactly `<major>.<minor>`, as moby accepts it.
    fn parse(text: &str) -> Option<Kernel> {
        let (major, minor) = text.split_once('.')?;
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let kernel = Kernel(number(major)?, number(minor)?);
        (kernel != Kernel(0, 0)).then_some(kernel)
    }
}

/// What the `includes` and `excludes` conditions are checked against.
#[derive(Debug)]
pub(super) struct Host {
    /// The native architecture: the one `arches` conditions name.
    pub(super) arch: ScmpArch,
    /// The names of the capabilities the container keeps (`CAP_SYS_ADMIN`): its bounding set.
    pub(super) caps: HashSet<String>,
    /// None when the running kernel's version cannot be read.
    pub(super) kernel: Option<Kernel>,
}

impl Host {
    /// This machine, for a container that keeps `caps`.
    pub(super) fn this(caps: &caps::CapsHashSet) -> Host {
        Host {
            arch: ScmpArch::native(),
            caps: caps.iter().map(ToString::to_string).collect(),
            kernel: Kernel::running(),
        }
    }
}

/// libseccomp's architectures and the names Docker's `arches` conditions give them (Go's names for
/// them, as moby maps its native architecture; `mips3l64n32` is moby's own spelling).
const DOCKER_ARCH_NAMES: [(ScmpArch, &str); 18] = [
    (ScmpArch::X8664, "amd64"),
    (ScmpArch::X86, "x86"),
    (ScmpArch::X32, "x32"),
    (ScmpArch::Aarch64, "arm64"),
    (ScmpArch::Arm, "arm"),
    (ScmpArch::Loongarch64, "loongarch64"),
    (ScmpArch::Mips, "mips"),
    (ScmpArch::Mipsel, "mipsel"),
    (ScmpArch::Mips64, "mips64"),
    (ScmpArch::Mips64N32, "mips64n32"),
    (ScmpArch::Mipsel64, "mipsel64"),
    (ScmpArch::Mipsel64N32, "mips3l64n32"),
    (ScmpArch::Ppc, "ppc"),
    (ScmpArch::Ppc64, "ppc64"),
    (ScmpArch::Ppc64Le, "ppc64le"),
    (ScmpArch::S390, "s390"),
    (ScmpArch::S390X, "s390x"),
    (ScmpArch::Riscv64, "riscv64"),
];

fn docker_arch_name(arch: ScmpArch) -> &'static str {
    DOCKER_ARCH_NAMES
        .iter()
        .find(|(a, _)| *a == arch)
        .map_or("", |(_, name)| name)
}

// ---- the profile, checked ---------------------------------------------------------------------------

/// A profile checked, and reduced to the rules that apply to one container on this host.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) default: ScmpAction,
    /// The architectures to accept besides the native one.
    pub(super) arches: Vec<ScmpArch>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2).
    pub(super) flags: libc::c_ulong,
    pub(super) rules: Vec<Rule>,
}

/// One entry that applies: its names get `action` when any of the `alternatives` holds.
#[derive(Debug)]
pub(super) struct Rule {
    /// Where it is in the profile, for errors: `syscalls[12] (socket)`.
    pub(super) place: String,
    pub(super) names: Vec<String>,
    pub(super) action: ScmpAction,
    /// Each inner list is one libseccomp rule, whose conditions must all hold. Empty: unconditional.
    pub(super) alternatives: Vec<Vec<ScmpArgCompare>>,
}

impl Profile {
    /// Checks every entry (also those that do not apply here: a mistake is a mistake on any host) and
    /// keeps the ones that apply to `host`. `origin` names the profile in errors.
    pub(super) fn plan(&self, host: &Host, origin: &str) -> Result<Plan, SeccompError> {
        let context = Context { origin };
        if self.listener_path.is_some() || self.listener_metadata.is_some() {
            return Err(context.notify("listenerPath"));
        }
        let default = context.action("defaultAction", &self.default_action, self.default_errno_ret)?;
        let arches = context.arches(self, host.arch)?;
        let flags = context.flags(self.flags.as_deref().unwrap_or_default())?;
        let mut rules = Vec::new();
        for (index, entry) in self.syscalls.iter().flatten().enumerate() {
            let (rule, applies) = context.rule(index, entry, host)?;
            if applies {
                rules.push(rule);
            }
        }
        Ok(Plan {
            default,
            arches,
            flags,
            rules,
        })
    }
}

/// Checking one profile: the name it is reported under.
struct Context<'a> {
    origin: &'a str,
}

impl Context<'_> {
    fn invalid(&self, place: &str, problem: impl Into<String>) -> SeccompError {
        SeccompError::Invalid {
            profile: self.origin.to_owned(),
            place: place.to_owned(),
            problem: problem.into(),
        }
    }

    fn notify(&self, place: &str) -> SeccompError {
        SeccompError::Notify {
            profile: self.origin.to_owned(),
            place: place.to_owned(),
        }
    }

    /// An action, with the errno it returns (EPERM when `errnoRet` is absent, as runc does). Like runc,
    /// `errnoRet` is ignored by the actions that return no errno.
    fn action(&self, place: &str, name: &str, errno_ret: Option<u32>) -> Result<ScmpAction, SeccompError> {
        let errno = errno_ret.unwrap_or(libc::EPERM as u32);
        match name {
            "SCMP_ACT_ALLOW" => Ok(ScmpAction::Allow),
            "SCMP_ACT_ERRNO" if errno > MAX_ERRNO => Err(self.invalid(
                place,
                format!(
                    "errnoRet {errno} is not an errno: use a number from 0 to {MAX_ERRNO}, such as 1 (EPERM)"
                ),
            )),
            "SCMP_ACT_ERRNO" => Ok(ScmpAction::Errno(errno as i32)),
            "SCMP_ACT_TRACE" => u16::try_from(errno).map(ScmpAction::Trace).map_err(|_| {
                self.invalid(
                    place,
                    format!("errnoRet {errno} is too large for SCMP_ACT_TRACE: use 0 to 65535"),
                )
            }),
            // As in runc, SCMP_ACT_KILL kills the thread (SECCOMP_RET_KILL_THREAD, the kernel's original KILL).
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Ok(ScmpAction::KillThread),
            "SCMP_ACT_KILL_PROCESS" => Ok(ScmpAction::KillProcess),
            "SCMP_ACT_TRAP" => Ok(ScmpAction::Trap),
            "SCMP_ACT_LOG" => Ok(ScmpAction::Log),
            "SCMP_ACT_NOTIFY" => Err(self.notify(place)),
            _ => Err(SeccompError::UnknownAction {
                profile: self.origin.to_owned(),
                place: place.to_owned(),
                action: name.to_owned(),
            }),
        }
    }

    fn arch(&self, name: &str) -> Result<ScmpArch, SeccompError> {
        ScmpArch::from_str(name).map_err(|_| SeccompError::UnknownArch {
            profile: self.origin.to_owned(),
            arch: name.to_owned(),
        })
    }

    /// The architectures to add: an OCI profile lists them all; a Docker profile's `archMap` gives,
    /// for the native architecture, the ones its processes may also use (x86 and x32 on x86-64).
    fn arches(&self, profile: &Profile, native: ScmpArch) -> Result<Vec<ScmpArch>, SeccompError> {
        let listed = profile.architectures.as_deref().unwrap_or_default();
        let map = profile.arch_map.as_deref().unwrap_or_default();
        if !listed.is_empty() && !map.is_empty() {
            return Err(self.invalid(
                "architectures",
                "both architectures and archMap are given: keep one of them",
            ));
        }
        let arches: Vec<ScmpArch> = listed
            .iter()
            .map(|name| self.arch(name))
            .collect::<Result<_, _>>()?;
        let mut mapped = Vec::new();
        for entry in map {
            let main = self.arch(&entry.architecture)?;
            let subs: Vec<ScmpArch> = entry
                .sub_architectures
                .iter()
                .flatten()
                .map(|name| self.arch(name))
                .collect::<Result<_, _>>()?;
            if main == native && mapped.is_empty() {
                mapped.push(main);
                mapped.extend(subs);
            }
        }
        Ok(if map.is_empty() { arches } else { mapped })
    }

    fn flags(&self, names: &[String]) -> Result<libc::c_ulong, SeccompError> {
        names.iter().try_fold(0, |flags, name| match name.as_str() {
            // The filter is loaded by a single-threaded process, so there are no threads to synchronise.
            "SECCOMP_FILTER_FLAG_TSYNC" => Ok(flags),
            "SECCOMP_FILTER_FLAG_LOG" => Ok(flags | libc::SECCOMP_FILTER_FLAG_LOG),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Ok(flags | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW),
            other => Err(self.invalid(
                "flags",
                format!(
                    "flag {other:?} is not supported: use SECCOMP_FILTER_FLAG_LOG, \
                     SECCOMP_FILTER_FLAG_SPEC_ALLOW or SECCOMP_FILTER_FLAG_TSYNC"
                ),
            )),
        })
    }

    /// Entry `index`, checked, and whether it applies to `host`.
    fn rule(&self, index: usize, entry: &Entry, host: &Host) -> Result<(Rule, bool), SeccompError> {
        let names = match (&entry.name, &entry.names) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    &format!("syscalls[{index}]"),
                    "both name and names are given: keep names",
                ));
            }
            (Some(name), None) => vec![name.clone()],
            (None, Some(names)) => names.clone(),
            (None, None) => Vec::new(),
        };
        let place = place(index, &names);
        if names.is_empty() || names.iter().any(String::is_empty) {
            return Err(self.invalid(&place, "an entry needs the names of its system calls"));
        }
        let action = self.action(&place, &entry.action, entry.errno_ret)?;
        let conditions = entry
            .args
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, arg)| self.condition(&format!("{place} args[{i}]"), arg))
            .collect::<Result<Vec<_>, _>>()?;
        let applies = self.applies(&place, entry, host)?;
        let rule = Rule {
            place,
            names,
            action,
            alternatives: alternatives(conditions),
        };
        Ok((rule, applies))
    }

    /// One argument comparison, with the argument's index.
    fn condition(&self, place: &str, arg: &Arg) -> Result<(u32, ScmpArgCompare), SeccompError> {
        if arg.index > 5 {
            return Err(self.invalid(
                place,
                format!(
                    "index {} is not an argument: system calls have arguments 0 to 5",
                    arg.index
                ),
            ));
        }
        let op = match arg.op.as_str() {
            "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
            "SCMP_CMP_LT" => ScmpCompareOp::Less,
            "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
            "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
            "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
            "SCMP_CMP_GT" => ScmpCompareOp::Greater,
            "SCMP_CMP_MASKED_EQ" => {
                let compare =
                    ScmpArgCompare::new(arg.index, ScmpCompareOp::MaskedEqual(arg.value), arg.value_two);
                return Ok((arg.index, compare));
            }
            other => {
                return Err(SeccompError::UnknownOp {
                    profile: self.origin.to_owned(),
                    place: place.to_owned(),
                    op: other.to_owned(),
                });
            }
        };
        Ok((arg.index, ScmpArgCompare::new(arg.index, op, arg.value)))
    }

    /// moby's rules: an entry is dropped when an `excludes` condition holds (this architecture is
    /// listed, any listed capability is kept, the kernel is at least `minKernel`), or an `includes`
    /// condition fails (this architecture is not listed, a listed capability is not kept, the kernel is
    /// older than `minKernel`).
    fn applies(&self, place: &str, entry: &Entry, host: &Host) -> Result<bool, SeccompError> {
        let none = Condition::default();
        let (includes, excludes) = (
            entry.includes.as_ref().unwrap_or(&none),
            entry.excludes.as_ref().unwrap_or(&none),
        );
        let arch = docker_arch_name(host.arch);
        let kept = |cap: &String| host.caps.contains(cap);
        let excluded = excludes.arches.iter().flatten().any(|a| a == arch)
            || excludes.caps.iter().flatten().any(kept)
            || self.kernel_at_least(place, excludes, host)? == Some(true);
        let included = includes
            .arches
            .as_ref()
            .is_none_or(|a| a.is_empty() || a.iter().any(|a| a == arch))
            && includes.caps.iter().flatten().all(kept)
            && self.kernel_at_least(place, includes, host)? != Some(false);
        Ok(included && !excluded)
    }

    /// Whether the running kernel is at least the condition's `minKernel`; None without one.
    fn kernel_at_least(
        &self,
        place: &str,
        condition: &Condition,
        host: &Host,
    ) -> Result<Option<bool>, SeccompError> {
        let Some(text) = &condition.min_kernel else {
            return Ok(None);
        };
        let min = Kernel::parse(text).ok_or_else(|| {
            self.invalid(
                place,
                format!("minKernel {text:?} is not a version: write it as 4.8"),
            )
        })?;
        let running = host.kernel.ok_or_else(|| SeccompError::KernelVersion {
            profile: self.origin.to_owned(),
        })?;
        Ok(Some(running >= min))
    }
}

/// The largest errno the kernel returns (MAX_ERRNO in include/linux/err.h).
const MAX_ERRNO: u32 = 4095;

/// `syscalls[3] (mkdir, mkdirat)`, shortened after three names.
fn place(index: usize, names: &[String]) -> String {
    let mut shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        shown.push_str(", ...");
    }
    format!("syscalls[{index}] ({shown})")
}

/// How a list of conditions becomes libseccomp rules, as runc does it (and Docker's profiles are
/// written for runc): conditions on different arguments must all hold, so they go into one rule. But
/// libseccomp refuses two comparisons of the same argument in one rule; when an argument is compared
/// more than once, each condition becomes a rule of its own, and any one of them is enough.
fn alternatives(conditions: Vec<(u32, ScmpArgCompare)>) -> Vec<Vec<ScmpArgCompare>> {
    if conditions.is_empty() {
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let repeated = conditions.iter().any(|(index, _)| !seen.insert(*index));
    if repeated {
        conditions.into_iter().map(|(_, c)| vec![c]).collect()
    } else {
        vec![conditions.into_iter().map(|(_, c)| c).collect()]
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A host with the given capabilities, on this machine's architecture and a chosen kernel.
    pub(in crate::seccomp) fn host(caps: &[&str], kernel: Kernel) -> Host {
        Host {
            arch: ScmpArch::native(),
            caps: caps.iter().map(|c| (*c).to_owned()).collect(),
            kernel: Some(kernel),
        }
    }

    fn parse(json: &str) -> Profile {
        serde_json::from_str(json).expect("a valid profile")
    }

    /// The names that get `action` in `plan` (the seccomp module's tests use it too).
    pub(crate) fn names_with(plan: &Plan, action: ScmpAction) -> HashSet<String> {
        plan.rules
            .iter()
            .filter(|r| r.action == action)
            .flat_map(|r| r.names.clone())
            .collect()
    }

    #[test]
    fn kernel_versions_parse_like_moby() {
        assert_eq!(Kernel::parse("4.8"), Some(Kernel(4, 8)));
        assert_eq!(Kernel::parse("5.10"), Some(Kernel(5, 10)));
        for bad in ["4", "4.8.1", "0.0", "a.b", "4.", ".8", "-4.8"] {
            assert_eq!(Kernel::parse(bad), None, "{bad}");
        }
        assert!(Kernel::running().is_some(), "this kernel's release is readable");
        assert!(Kernel(5, 10) > Kernel(4, 19) && Kernel(6, 1) > Kernel(5, 19));
    }

    #[test]
    fn includes_and_excludes_follow_capabilities_arch_and_kernel() {
        let profile = parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
                {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
                {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
                {"names": ["d"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
                {"names": ["e"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["no-such-arch"]}},
                {"names": ["f"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["no-such-arch"]}}
            ]}"#,
        );
        let allowed = |caps: &[&str], kernel| {
            let mut names: Vec<String> = names_with(
                &profile.plan(&host(caps, kernel), "p").unwrap(),
                ScmpAction::Allow,
            )
            .into_iter()
            .collect();
            names.sort();
            names.concat()
        };
        // includes.caps needs every one; excludes.caps is triggered by any one.
        assert_eq!(allowed(&["CAP_SYS_ADMIN", "CAP_BPF"], Kernel(5, 10)), "acf");
        assert_eq!(allowed(&["CAP_SYS_ADMIN"], Kernel(5, 10)), "cf");
        assert_eq!(allowed(&[], Kernel(5, 9)), "bdf");
        assert_eq!(allowed(&[], Kernel(6, 0)), "bcf");
    }

    #[test]
    fn arch_map_takes_the_native_architecture_and_its_companions() {
        let profile = parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
            ]}"#,
        );
        let on = |arch| {
            let host = Host {
                arch,
                caps: HashSet::new(),
                kernel: None,
            };
            profile.plan(&host, "p").unwrap().arches
        };
        assert_eq!(
            on(ScmpArch::X8664),
            [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]
        );
        assert_eq!(on(ScmpArch::Aarch64), [ScmpArch::Aarch64, ScmpArch::Arm]);
        assert_eq!(on(ScmpArch::Riscv64), [ScmpArch::Riscv64]);
        assert_eq!(on(ScmpArch::Ppc64Le), []);
    }

    #[test]
    fn repeated_arguments_become_alternatives() {
        let eq = |i, v| (i, ScmpArgCompare::new(i, ScmpCompareOp::Equal, v));
        assert_eq!(alternatives(vec![]).len(), 0);
        assert_eq!(
            alternatives(vec![eq(0, 1), eq(1, 2)]).len(),
            1,
            "different arguments: one rule"
        );
        let split = alternatives(vec![eq(0, 1), eq(0, 2), eq(1, 3)]);
        assert_eq!(split.len(), 3, "a repeated argument: one rule per condition");
        assert!(split.iter().all(|rule| rule.len() == 1));
    }

    #[test]
    fn errno_defaults_to_eperm_and_kill_means_the_thread() {
        let context = Context { origin: "p" };
        let action = |name, errno| context.action("here", name, errno).unwrap();
        assert_eq!(action("SCMP_ACT_ERRNO", None), ScmpAction::Errno(libc::EPERM));
        assert_eq!(
            action("SCMP_ACT_ERRNO", Some(38)),
            ScmpAction::Errno(libc::ENOSYS)
        );
        assert_eq!(
            action("SCMP_ACT_TRACE", None),
            ScmpAction::Trace(libc::EPERM as u16)
        );
        assert_eq!(action("SCMP_ACT_KILL", None), ScmpAction::KillThread);
        assert_eq!(action("SCMP_ACT_ALLOW", Some(13)), ScmpAction::Allow);
        assert!(context.action("here", "SCMP_ACT_ERRNO", Some(4096)).is_err());
    }
}
