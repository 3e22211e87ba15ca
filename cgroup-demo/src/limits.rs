//! The limits in docker's terms (docker-run(1): `--memory`, `--memory-swap`, `--pids-limit`, `--cpus`),
//! checked before any cgroup exists, and the files each becomes on cgroup v2 and on v1
//! (Documentation/admin-guide/cgroup-v2.rst; cgroups(7) for v1's `memory.limit_in_bytes`,
//! `cpu.cfs_quota_us`).

use std::fmt;

/// A controller this chapter (and the launcher) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
    /// Which CPUs and memory nodes (an OCI config's `cpu.cpus`, `cpu.mems`); not among [`Controller::ALL`],
    /// the controllers docker's flags and this chapter's steps use.
    Cpuset,
    /// Which device nodes may be opened or made (cgroup v1's device controller; v2 has none, only BPF
    /// programs); not among [`Controller::ALL`] either.
    Devices,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    /// The kernel's name for it, in mount options, `cgroup.controllers` and `/proc/<pid>/cgroup`.
    pub const fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Devices => "devices",
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a limit was refused, before anything was made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    #[error("invalid size {0:?}: expected a number with an optional unit b, k, m or g (as 32m or 1.5g)")]
    Size(String),
    #[error("minimum memory limit allowed is 6MB, docker's floor: {0} bytes is below it")]
    MemoryTooSmall(u64),
    #[error("invalid --memory-swap {0:?}: expected a size at least --memory's, or -1 for unlimited swap")]
    Swap(String),
    #[error("invalid pids limit {0:?}: expected a whole number (0 or -1 for no limit)")]
    Pids(String),
    #[error("invalid number of CPUs {0:?}: expected a decimal number such as 0.5 or 2")]
    Cpus(String),
    #[error("range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available")]
    CpusRange { available: usize },
}

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Bytes(pub u64);

impl Bytes {
    pub const MIB: u64 = 1024 * 1024;

    /// Docker's spelling of a size (go-units' RAMInBytes): a decimal number, then an optional unit
    /// `b`, `k`, `m`, `g`, `t` (any case, powers of 1024, `kb`/`kib` alike). `32m` is 33554432.
    pub fn parse(text: &str) -> Result<Bytes, LimitError> {
        let bad = || LimitError::Size(text.to_owned());
        let lower = text.trim().to_ascii_lowercase();
        let lower = lower
            .strip_suffix("ib")
            .or_else(|| lower.strip_suffix('b'))
            .unwrap_or(&lower);
        let split = lower
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(split);
        let shift = match unit.trim() {
            "" => 0,
            "k" => 10,
            "m" => 20,
            "g" => 30,
            "t" => 40,
            _ => return Err(bad()),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        let bytes = value * (1u64 << shift) as f64;
        if number.is_empty() || !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        Ok(Bytes(bytes as u64))
    }

    pub fn mib(self) -> u64 {
        self.0 / Bytes::MIB
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % Bytes::MIB == 0 {
            write!(f, "{} MiB", self.mib())
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

/// `--memory`: at least 6 MiB, as docker insists (less and the runtime itself cannot start).
pub fn parse_memory(text: &str) -> Result<Bytes, LimitError> {
    let bytes = Bytes::parse(text)?;
    if bytes.0 < 6 * Bytes::MIB {
        return Err(LimitError::MemoryTooSmall(bytes.0));
    }
    Ok(bytes)
}

/// `--memory-swap`: memory and swap together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Swap {
    /// Not given: docker lets the container swap as much as its memory limit (twice it in all).
    #[default]
    Default,
    /// A total of memory and swap; equal to the memory limit means no swap at all.
    Total(Bytes),
    /// `-1`: swap without limit.
    Unlimited,
}

impl Swap {
    pub fn parse(text: &str) -> Result<Swap, LimitError> {
        if text.trim() == "-1" {
            return Ok(Swap::Unlimited);
        }
        Bytes::parse(text)
            .map(Swap::Total)
            .map_err(|_| LimitError::Swap(text.to_owned()))
    }
}

/// `--pids-limit`: the most tasks (processes and threads) the group may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PidsLimit {
    Max(u64),
    /// `0` or `-1`, docker's "no limit".
    Unlimited,
}

impl PidsLimit {
    pub fn parse(text: &str) -> Result<PidsLimit, LimitError> {
        match text.trim().parse::<i64>() {
            Ok(0 | -1) => Ok(PidsLimit::Unlimited),
            Ok(n) if n > 0 => Ok(PidsLimit::Max(n as u64)),
            _ => Err(LimitError::Pids(text.to_owned())),
        }
    }
}

/// `--cpus`: how many CPUs' worth of time per period, as the kernel takes it: a quota of CPU time in
/// each period, both in microseconds (docker's `--cpus 0.5` is 50000 of 100000; an OCI config gives
/// the two numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cpus {
    pub quota_us: u64,
    pub period_us: u64,
}

impl Cpus {
    /// The scheduling period docker uses, in microseconds (the kernel's default, 100 ms).
    pub const PERIOD_US: u64 = 100_000;

    /// Parses `0.5`, checked against the CPUs this process may run on, as docker checks it.
    pub fn parse(text: &str) -> Result<Cpus, LimitError> {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        Cpus::parse_for(text, available)
    }

    /// Parses against a given number of CPUs.
    pub fn parse_for(text: &str, available: usize) -> Result<Cpus, LimitError> {
        let value: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| LimitError::Cpus(text.to_owned()))?;
        let nanos = (value * 1e9).round();
        if nanos < 1e7 || nanos > available as f64 * 1e9 {
            return Err(LimitError::CpusRange { available });
        }
        Ok(Cpus {
            quota_us: nanos as u64 * Cpus::PERIOD_US / 1_000_000_000,
            period_us: Cpus::PERIOD_US,
        })
    }

    pub fn as_f64(self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

/// The limits for one cgroup, as `docker run` takes them; `None` leaves a resource unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub memory: Option<Bytes>,
    /// Only meaningful with `memory`.
    pub memory_swap: Swap,
    pub pids: Option<PidsLimit>,
    pub cpus: Option<Cpus>,
    /// The relative CPU weight against sibling cgroups (docker's `--cpu-shares`, v1's 2 to 262144,
    /// 1024 the default; v2 takes a weight of 1 to 10000 instead, converted as runc and crun do).
    pub cpu_shares: Option<u64>,
    pub cpuset: Option<Cpuset>,
    /// cgroup v1's device rules, applied in order (an OCI config's `resources.devices`).
    pub device_rules: Vec<DeviceRule>,
}

/// One rule of cgroup v1's device controller, as `devices.allow` and `devices.deny` take it:
/// `c 1:3 rwm` (Documentation/admin-guide/cgroup-v1/devices.rst).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` (all), `c` or `b`.
    pub kind: char,
    /// `None` is any (`*`).
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
        match self.kind {
            'a' => f.write_str("a"),
            kind => write!(
                f,
                "{kind} {}:{} {}",
                number(self.major),
                number(self.minor),
                self.access
            ),
        }
    }
}

/// The CPUs and memory nodes a cgroup may use, in the kernel's list format (`0-1,3`); an empty one
/// is the parent's (docker's `--cpuset-cpus`, `--cpuset-mems`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cpuset {
    pub cpus: String,
    pub mems: String,
}

/// cgroup v2's `cpu.weight` for v1's `cpu.shares`: the range 2..=262144 mapped linearly onto
/// 1..=10000, the conversion runc and crun use, so 1024 becomes 39 (not v2's default 100).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

impl Limits {
    /// The controllers these limits need, to find or make a cgroup with them.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut wanted = Vec::new();
        if self.memory.is_some() {
            wanted.push(Controller::Memory);
        }
        if self.pids.is_some() {
            wanted.push(Controller::Pids);
        }
        if self.cpus.is_some() || self.cpu_shares.is_some() {
            wanted.push(Controller::Cpu);
        }
        if self.cpuset.is_some() {
            wanted.push(Controller::Cpuset);
        }
        if !self.device_rules.is_empty() {
            wanted.push(Controller::Devices);
        }
        wanted
    }

    /// A total of memory and swap below the memory limit is refused, as docker refuses it.
    pub fn check(&self) -> Result<(), LimitError> {
        match (self.memory, self.memory_swap) {
            (Some(memory), Swap::Total(total)) if total < memory => {
                Err(LimitError::Swap(format!("{} < {}", total.0, memory.0)))
            }
            _ => Ok(()),
        }
    }
}

/// One file to write, relative to the cgroup's directory, and its value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Setting {
    pub file: &'static str,
    pub value: String,
    /// Skipped without error when the kernel lacks the file (swap accounting turned off).
    pub optional: bool,
}

impl Setting {
    fn new(file: &'static str, value: impl ToString) -> Setting {
        Setting {
            file,
            value: value.to_string(),
            optional: false,
        }
    }

    fn optional(file: &'static str, value: impl ToString) -> Setting {
        Setting {
            optional: true,
            ..Setting::new(file, value)
        }
    }
}

// ANCHOR: settings
/// The files that hold `controller`'s part of `limits`, in the order they must be written, on a
/// hierarchy of `version`.
pub fn settings(controller: Controller, limits: &Limits, version: crate::Version) -> Vec<Setting> {
    use crate::Version::{V1, V2};
    match (controller, version) {
        (Controller::Memory, _) => {
            let Some(memory) = limits.memory else {
                return Vec::new();
            };
            // docker's --memory-swap is memory and swap together; v2 limits swap alone, v1 the sum.
            let total = match limits.memory_swap {
                Swap::Default => Some(memory.0.saturating_mul(2)),
                Swap::Total(total) => Some(total.0),
                Swap::Unlimited => None,
            };
            match version {
                V2 => vec![
                    Setting::new("memory.max", memory.0),
                    Setting::optional(
                        "memory.swap.max",
                        total.map_or("max".to_owned(), |t| t.saturating_sub(memory.0).to_string()),
                    ),
                ],
                V1 => vec![
                    Setting::new("memory.limit_in_bytes", memory.0),
                    Setting::optional(
                        "memory.memsw.limit_in_bytes",
                        total.map_or("-1".to_owned(), |t| t.to_string()),
                    ),
                ],
            }
        }
        (Controller::Pids, _) => match limits.pids {
            Some(PidsLimit::Max(n)) => vec![Setting::new("pids.max", n)],
            Some(PidsLimit::Unlimited) => vec![Setting::new("pids.max", "max")],
            None => Vec::new(),
        },
        (Controller::Cpu, V2) => {
            let weight = limits
                .cpu_shares
                .map(|shares| Setting::new("cpu.weight", shares_to_weight(shares)));
            let max = limits
                .cpus
                .map(|cpus| Setting::new("cpu.max", format!("{} {}", cpus.quota_us, cpus.period_us)));
            weight.into_iter().chain(max).collect()
        }
        (Controller::Cpu, V1) => {
            let shares = limits.cpu_shares.map(|shares| Setting::new("cpu.shares", shares));
            let bandwidth = limits.cpus.map_or_else(Vec::new, |cpus| {
                vec![
                    Setting::new("cpu.cfs_period_us", cpus.period_us),
                    Setting::new("cpu.cfs_quota_us", cpus.quota_us),
                ]
            });
            shares.into_iter().chain(bandwidth).collect()
        }
        (Controller::Devices, V1) => limits
            .device_rules
            .iter()
            .map(|rule| {
                Setting::new(
                    if rule.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    },
                    rule,
                )
            })
            .collect(),
        (Controller::Devices, V2) => Vec::new(),
        (Controller::Cpuset, _) => {
            let Some(cpuset) = &limits.cpuset else {
                return Vec::new();
            };
            let mut settings = Vec::new();
            if !cpuset.cpus.is_empty() {
                settings.push(Setting::new("cpuset.cpus", &cpuset.cpus));
            }
            if !cpuset.mems.is_empty() {
                settings.push(Setting::new("cpuset.mems", &cpuset.mems));
            }
            settings
        }
    }
}
// ANCHOR_END: settings

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(Bytes::parse("32m"), Ok(Bytes(32 << 20)));
        assert_eq!(Bytes::parse("32M"), Ok(Bytes(32 << 20)));
        assert_eq!(Bytes::parse("1.5g"), Ok(Bytes(3 << 29)));
        assert_eq!(Bytes::parse("512kb"), Ok(Bytes(512 << 10)));
        assert_eq!(Bytes::parse("64MiB"), Ok(Bytes(64 << 20)));
        assert_eq!(Bytes::parse("1000"), Ok(Bytes(1000)));
        for bad in ["", "m", "12x", "-5m", "1.2.3m", "huge"] {
            assert_eq!(Bytes::parse(bad), Err(LimitError::Size(bad.into())), "{bad:?}");
        }
        assert_eq!(parse_memory("4m"), Err(LimitError::MemoryTooSmall(4 << 20)));
        assert_eq!(parse_memory("6m"), Ok(Bytes(6 << 20)));
    }

    #[test]
    fn pids_and_cpus_as_docker_reads_them() {
        assert_eq!(PidsLimit::parse("10"), Ok(PidsLimit::Max(10)));
        assert_eq!(PidsLimit::parse("0"), Ok(PidsLimit::Unlimited));
        assert_eq!(PidsLimit::parse("-1"), Ok(PidsLimit::Unlimited));
        assert!(PidsLimit::parse("-2").is_err() && PidsLimit::parse("ten").is_err());
        let half = Cpus::parse_for("0.5", 2).unwrap();
        assert_eq!((half.quota_us, half.period_us), (50_000, 100_000));
        assert_eq!(Cpus::parse_for("1.5", 2).unwrap().quota_us, 150_000);
        assert_eq!(
            Cpus::parse_for("0.01", 1).unwrap().quota_us,
            1_000,
            "the kernel's 1 ms floor"
        );
        assert_eq!(
            Cpus::parse_for("3", 2),
            Err(LimitError::CpusRange { available: 2 })
        );
        assert_eq!(
            Cpus::parse_for("0.001", 2),
            Err(LimitError::CpusRange { available: 2 })
        );
        assert!(matches!(Cpus::parse_for("half", 2), Err(LimitError::Cpus(_))));
        assert!(matches!(Cpus::parse_for("NaN", 2), Err(LimitError::Cpus(_))));
    }

    #[test]
    fn each_limit_becomes_its_files() {
        let limits = Limits {
            memory: Some(Bytes(32 << 20)),
            memory_swap: Swap::Total(Bytes(32 << 20)),
            pids: Some(PidsLimit::Max(10)),
            cpus: Some(Cpus::parse_for("0.5", 2).unwrap()),
            ..Limits::default()
        };
        let files = |c, v| -> Vec<(String, String)> {
            settings(c, &limits, v)
                .into_iter()
                .map(|s| (s.file.to_owned(), s.value))
                .collect()
        };
        let pair = |f: &str, v: &str| (f.to_owned(), v.to_owned());
        assert_eq!(
            files(Controller::Memory, Version::V2),
            [pair("memory.max", "33554432"), pair("memory.swap.max", "0")]
        );
        assert_eq!(
            files(Controller::Memory, Version::V1),
            [
                pair("memory.limit_in_bytes", "33554432"),
                pair("memory.memsw.limit_in_bytes", "33554432")
            ]
        );
        assert_eq!(files(Controller::Pids, Version::V2), [pair("pids.max", "10")]);
        assert_eq!(
            files(Controller::Cpu, Version::V2),
            [pair("cpu.max", "50000 100000")]
        );
        assert_eq!(
            files(Controller::Cpu, Version::V1),
            [
                pair("cpu.cfs_period_us", "100000"),
                pair("cpu.cfs_quota_us", "50000")
            ]
        );
        assert_eq!(limits.controllers(), Controller::ALL);
        assert!(Limits::default().controllers().is_empty());
    }

    #[test]
    fn an_oci_config_s_cpu_fields_become_their_files() {
        let limits = Limits {
            cpus: Some(Cpus {
                quota_us: 200_000,
                period_us: 500_000,
            }),
            cpu_shares: Some(2048),
            cpuset: Some(Cpuset {
                cpus: "0-1".into(),
                mems: String::new(),
            }),
            ..Limits::default()
        };
        let files = |c, v| -> Vec<(String, String)> {
            settings(c, &limits, v)
                .into_iter()
                .map(|s| (s.file.to_owned(), s.value))
                .collect()
        };
        let pair = |f: &str, v: &str| (f.to_owned(), v.to_owned());
        assert_eq!(
            files(Controller::Cpu, Version::V1),
            [
                pair("cpu.shares", "2048"),
                pair("cpu.cfs_period_us", "500000"),
                pair("cpu.cfs_quota_us", "200000")
            ]
        );
        assert_eq!(
            files(Controller::Cpu, Version::V2),
            [pair("cpu.weight", "79"), pair("cpu.max", "200000 500000")]
        );
        assert_eq!(
            files(Controller::Cpuset, Version::V1),
            [pair("cpuset.cpus", "0-1")]
        );
        assert_eq!(limits.controllers(), [Controller::Cpu, Controller::Cpuset]);
        assert_eq!(
            (
                shares_to_weight(2),
                shares_to_weight(1024),
                shares_to_weight(262_144)
            ),
            (1, 39, 10_000)
        );
    }

    #[test]
    fn docker_default_swap_is_as_much_as_memory() {
        let limits = Limits {
            memory: Some(Bytes(64 << 20)),
            ..Limits::default()
        };
        assert_eq!(
            settings(Controller::Memory, &limits, Version::V2)[1].value,
            "67108864"
        );
        assert_eq!(
            settings(Controller::Memory, &limits, Version::V1)[1].value,
            "134217728"
        );
        let unlimited = Limits {
            memory_swap: Swap::Unlimited,
            ..limits.clone()
        };
        assert_eq!(
            settings(Controller::Memory, &unlimited, Version::V2)[1].value,
            "max"
        );
        assert_eq!(
            settings(Controller::Memory, &unlimited, Version::V1)[1].value,
            "-1"
        );
        let below = Limits {
            memory_swap: Swap::Total(Bytes(1 << 20)),
            ..limits
        };
        assert!(below.check().is_err());
        assert_eq!(Swap::parse("-1"), Ok(Swap::Unlimited));
        assert_eq!(Swap::parse("1g"), Ok(Swap::Total(Bytes(1 << 30))));
    }

    #[test]
    fn device_rules_are_written_in_order_on_v1_only() {
        let rule = |allow, kind, major, minor, access: &str| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        };
        let limits = Limits {
            device_rules: vec![
                rule(false, 'a', None, None, "rwm"),
                rule(true, 'c', Some(1), Some(3), "rwm"),
                rule(true, 'c', Some(136), None, "rw"),
            ],
            ..Limits::default()
        };
        let written: Vec<(String, String)> = settings(Controller::Devices, &limits, Version::V1)
            .into_iter()
            .map(|s| (s.file.to_owned(), s.value))
            .collect();
        let pair = |f: &str, v: &str| (f.to_owned(), v.to_owned());
        assert_eq!(
            written,
            [
                pair("devices.deny", "a"),
                pair("devices.allow", "c 1:3 rwm"),
                pair("devices.allow", "c 136:* rw")
            ]
        );
        assert!(settings(Controller::Devices, &limits, Version::V2).is_empty());
        assert_eq!(limits.controllers(), [Controller::Devices]);
    }
}
