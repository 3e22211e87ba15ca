//! An OCI bundle turned into the launcher's [`Plan`] (runtime-spec `bundle.md`, `config.md`,
//! `config-linux.md`): the same validated plan `combined run` makes from its flags, so that both
//! front-ends run the very same steps.
//!
//! The rule is the spec's own: a runtime must honour every field it is given or refuse the
//! configuration. So each field below is either turned into part of the plan or refused with an error
//! that names it (`linux.resources.memory: ...`), before anything exists. What this runtime does
//! not do yet is refused the same way, never ignored.

use std::path::{Path, PathBuf};

use ::caps::{Capability, CapsHashSet};
use mnt_demo::options::{MountOptions, Recursion};
use mnt_demo::rootfs::{DeviceNode, NodeKind};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nskit::idmap::{IdMap, IdRange};
use oci_spec::runtime::{
    LinuxCapabilities, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Mount, PosixRlimitType, Process,
    Spec,
};

use crate::container::{KernelMounts, Lifecycle, Plan, PlannedVolume, ProcessUser, Rlimit};
use crate::values::{Maps, NetMode, Rootfs};
use crate::{PlanError, command, seccomp};

/// The file that describes a bundle.
pub const CONFIG: &str = "config.json";

/// Why a bundle cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read the bundle's {CONFIG} in {}: {source}", bundle.display())]
    Read {
        bundle: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// A field this runtime cannot honour, named as the spec names it.
    #[error("{field}: {why}")]
    Field { field: &'static str, why: String },
    #[error(transparent)]
    Plan(#[from] PlanError),
}

fn refuse(field: &'static str, why: impl Into<String>) -> BundleError {
    BundleError::Field {
        field,
        why: why.into(),
    }
}

/// Reads `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, BundleError> {
    Spec::load(bundle.join(CONFIG)).map_err(|source| BundleError::Read {
        bundle: bundle.to_owned(),
        source,
    })
}

// ANCHOR: plan
/// Checks every field of `spec` (from the bundle at `bundle`, an absolute path) and makes the plan.
pub fn plan(bundle: &Path, spec: &Spec, lifecycle: Lifecycle) -> Result<Plan, BundleError> {
    plan_finding_in(bundle, spec, lifecycle, None)
}

/// [`plan`] for a further process in a running container (`exec`): its command is looked for in the
/// container's own root as its process sees it (`/proc/<pid>/root`, its mounts and volumes
/// included), not in the bundle's rootfs.
pub fn plan_exec(bundle: &Path, spec: &Spec, container_root: &Path) -> Result<Plan, BundleError> {
    plan_finding_in(bundle, spec, Lifecycle::Foreground, Some(container_root))
}

fn plan_finding_in(
    bundle: &Path,
    spec: &Spec,
    lifecycle: Lifecycle,
    commands_in: Option<&Path>,
) -> Result<Plan, BundleError> {
    check_version(spec)?;
    refuse_unsupported(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| refuse("process", "the bundle has no process to run"))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| refuse("linux", "the bundle has no linux section"))?;
    let Namespaces {
        make: namespaces,
        join,
        user: user_ns,
        net,
        time,
    } = self::namespaces(linux)?;
    let maps = id_maps(linux, user_ns)?;
    let rootfs = root(bundle, spec)?;
    let mounts = mounts(spec.mounts().as_deref().unwrap_or_default())?;
    let (caps, inheritable, ambient) = capabilities(process.capabilities().as_ref())?;
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let seccomp = seccomp_filter(bundle, linux, &caps)?;
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let (program, argv) = program(commands_in.unwrap_or(&rootfs), process, &env)?;
    let workdir = crate::values::container_path(&process.cwd().to_string_lossy())
        .or_else(|e| match process.cwd() == Path::new("/") {
            true => Ok(PathBuf::from("/")),
            false => Err(e),
        })
        .map_err(|e| refuse("process.cwd", e))?;
    let c = |field: &'static str, items: &[String]| command::c_strings(items).map_err(|e| refuse(field, e));
    Ok(Plan {
        rootfs: Rootfs::Dir(rootfs),
        hostname: spec.hostname().clone().unwrap_or_default(),
        program: c("process.args", &[program])?.remove(0),
        argv: c("process.args", &argv)?,
        env: c("process.env", &env)?,
        workdir,
        volumes: mounts.volumes,
        user_ns,
        maps,
        net,
        subnet: None,
        caps,
        inheritable,
        ambient,
        seccomp,
        read_only: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        // The engine's shim or conmon reaps and signals; the command is the container's PID 1.
        init: false,
        tty: process.terminal().unwrap_or(false),
        namespaces,
        join,
        kernel_mounts: mounts.kernel,
        tmpfs: mounts.tmpfs,
        propagation: propagation(linux)?,
        masked: linux.masked_paths().clone().unwrap_or_default(),
        readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
        domainname: spec.domainname().clone().filter(|d| !d.is_empty()),
        sysctl: sysctls(linux, namespaces)?,
        user: user(process, user_ns && !nskit::userns::is_root())?,
        rlimits: rlimits(process)?,
        oom_score_adj: process.oom_score_adj(),
        no_new_privs,
        lifecycle,
        limits: cgroup_plan(linux)?,
        devices: devices(linux, mounts.kernel.dev)?,
        preserve_fds: 0,
        time_offsets: time_offsets(linux, time)?,
        personality: personality(linux)?,
        fault: None,
    })
}
// ANCHOR_END: plan

/// `linux.devices`: nodes made in the container's own /dev (a tmpfs the config mounts there), each
/// under /dev with a plain path.
fn devices(linux: &oci_spec::runtime::Linux, own_dev: bool) -> Result<Vec<DeviceNode>, BundleError> {
    let list = linux.devices().clone().unwrap_or_default();
    if !list.is_empty() && !own_dev {
        return Err(refuse(
            "linux.devices",
            "the nodes go in the container's own /dev: mount a tmpfs at /dev",
        ));
    }
    list.iter()
        .map(|device| {
            let path = device.path();
            let plain = path.starts_with("/dev/")
                && path
                    .components()
                    .all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)));
            if !plain {
                return Err(refuse(
                    "linux.devices",
                    format!("{} must be a path under /dev, without . or ..", path.display()),
                ));
            }
            let kind = match device.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => NodeKind::Char,
                LinuxDeviceType::B => NodeKind::Block,
                LinuxDeviceType::P => NodeKind::Fifo,
                LinuxDeviceType::A => {
                    return Err(refuse(
                        "linux.devices",
                        format!("{}: type a is not a node", path.display()),
                    ));
                }
            };
            Ok(DeviceNode {
                path: path.clone(),
                kind,
                major: device.major() as u64,
                minor: device.minor() as u64,
                mode: device.file_mode().unwrap_or(0o666),
                uid: device.uid().unwrap_or(0),
                gid: device.gid().unwrap_or(0),
            })
        })
        .collect()
}

// ANCHOR: time_offsets
/// The time namespace's clock offsets (the time chapter's): written by the container's process before
/// its command exists, which execve then moves into the namespace. Before Linux 6.2 execve did not, and
/// the offsets would silently not apply: refused there.
fn time_offsets(
    linux: &oci_spec::runtime::Linux,
    time: bool,
) -> Result<Option<time_demo::clocks::Offsets>, BundleError> {
    let field = "linux.timeOffsets";
    let given = linux.time_offsets().clone().unwrap_or_default();
    if !time {
        return match given.is_empty() {
            true => Ok(None),
            false => Err(refuse(
                field,
                "offsets without a time namespace: add one to linux.namespaces",
            )),
        };
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut numbers = release.split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    if (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) < (6, 2) {
        return Err(refuse(
            "linux.namespaces",
            format!("a time namespace needs Linux 6.2, whose execve enters it; this is {release}"),
        ));
    }
    let mut offsets = time_demo::clocks::Offsets::ZERO;
    for (clock, offset) in &given {
        let value = time_demo::clocks::Offset {
            secs: offset.secs().unwrap_or(0),
            nanos: offset.nanosecs().unwrap_or(0),
        };
        match clock.as_str() {
            "monotonic" => offsets.monotonic = value,
            "boottime" => offsets.boottime = value,
            other => {
                return Err(refuse(
                    field,
                    format!("{other:?} has no offset: a time namespace offsets monotonic and boottime only"),
                ));
            }
        }
    }
    Ok(Some(offsets))
}
// ANCHOR_END: time_offsets

/// `linux.personality`: the execution domain the command runs under (personality(2)), `LINUX` or
/// `LINUX32` (32-bit `uname -m`), without flags.
fn personality(linux: &oci_spec::runtime::Linux) -> Result<Option<u32>, BundleError> {
    let Some(personality) = linux.personality() else {
        return Ok(None);
    };
    if personality.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(refuse("linux.personality.flags", "no flag is supported"));
    }
    Ok(Some(match personality.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }))
}

fn check_version(spec: &Spec) -> Result<(), BundleError> {
    match spec.version().split('.').next() {
        Some("1") => Ok(()),
        _ => Err(refuse(
            "ociVersion",
            format!("{:?} is not a 1.x runtime spec version", spec.version()),
        )),
    }
}

/// Fields this runtime does not implement: refused when set, as the spec requires.
fn refuse_unsupported(spec: &Spec) -> Result<(), BundleError> {
    if let Some(hooks) = spec.hooks() {
        // prestart, createRuntime, poststart and poststop run in the runtime's namespaces
        // (`hooks.rs`); the two that run inside the container are not supported yet.
        let inside = [hooks.create_container(), hooks.start_container()]
            .iter()
            .any(|h| h.as_ref().is_some_and(|h| !h.is_empty()));
        if inside {
            return Err(refuse(
                "hooks",
                "createContainer and startContainer hooks are not supported yet",
            ));
        }
    }
    if let Some(process) = spec.process() {
        if process.apparmor_profile().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(refuse("process.apparmorProfile", "AppArmor is not supported"));
        }
        if process.selinux_label().as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(refuse("process.selinuxLabel", "SELinux is not supported"));
        }
        if process.io_priority().is_some() {
            return Err(refuse("process.ioPriority", "not supported"));
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let unsupported = [
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        ("linux.netDevices", linux.net_devices().is_some()),
        (
            "linux.mountLabel",
            linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()),
        ),
    ];
    match unsupported.into_iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(refuse(field, "not supported")),
        None => Ok(()),
    }
}

// ANCHOR: resources
/// `linux.resources` as the launcher's limits (the cgroup chapter's, as `--memory`, `--pids-limit`
/// and `--cpus` make them): the memory limit and its swap, the pids limit, the CPU quota over the
/// usual 100 ms period. Anything else is refused by name.
///
/// `linux.resources.devices` is accepted whatever it allows, and enforced by what the container has
/// rather than by a device cgroup, which combined does not make: the only device nodes that open in
/// a container are those in its own /dev, the standard ones and `linux.devices` (implicitly allowed,
/// as runc and crun allow them), since every other mount it gets is `nodev` and its /dev is
/// read-only when it keeps CAP_MKNOD. So a rule allowing a device it has no node for grants nothing,
/// and the engines' usual lists (deny all, allow the standard nodes, `c *:* m`) mean what they say.
pub(crate) fn resource_limits(
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<cgroup_demo::Limits, BundleError> {
    let field = |name: &'static str, set: bool| match set {
        true => Err(refuse(name, "not supported yet")),
        false => Ok(()),
    };
    // docker sends an empty one.
    let block_io_set = resources.block_io().as_ref().is_some_and(|io| {
        io.weight().is_some_and(|w| w > 0)
            || io.leaf_weight().is_some_and(|w| w > 0)
            || io.weight_device().as_ref().is_some_and(|d| !d.is_empty())
            || io
                .throttle_read_bps_device()
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || io
                .throttle_write_bps_device()
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || io
                .throttle_read_iops_device()
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || io
                .throttle_write_iops_device()
                .as_ref()
                .is_some_and(|d| !d.is_empty())
    });
    field("linux.resources.blockIO", block_io_set)?;
    field(
        "linux.resources.hugepageLimits",
        resources
            .hugepage_limits()
            .as_ref()
            .is_some_and(|h| !h.is_empty()),
    )?;
    field("linux.resources.network", resources.network().is_some())?;
    field(
        "linux.resources.rdma",
        resources.rdma().as_ref().is_some_and(|r| !r.is_empty()),
    )?;
    field(
        "linux.resources.unified",
        resources.unified().as_ref().is_some_and(|u| !u.is_empty()),
    )?;
    let mut limits = cgroup_demo::Limits::default();
    if let Some(memory) = resources.memory() {
        // Engines spell "not set" as a zero or a false as often as by leaving a field out.
        field(
            "linux.resources.memory.reservation",
            memory.reservation().is_some_and(|r| r > 0),
        )?;
        field(
            "linux.resources.memory.kernel",
            memory.kernel().is_some_and(|k| k > 0),
        )?;
        field(
            "linux.resources.memory.kernelTCP",
            memory.kernel_tcp().is_some_and(|k| k > 0),
        )?;
        field("linux.resources.memory.swappiness", memory.swappiness().is_some())?;
        field(
            "linux.resources.memory.disableOOMKiller",
            memory.disable_oom_killer() == Some(true),
        )?;
        limits.memory = memory
            .limit()
            .filter(|l| *l > 0)
            .map(|l| cgroup_demo::Bytes(l as u64));
        limits.memory_swap = match memory.swap() {
            Some(-1) => cgroup_demo::Swap::Unlimited,
            Some(total) if total > 0 => cgroup_demo::Swap::Total(cgroup_demo::Bytes(total as u64)),
            _ => cgroup_demo::Swap::Default,
        };
    }
    if let Some(pids) = resources.pids() {
        limits.pids = Some(match pids.limit() {
            n if n > 0 => cgroup_demo::PidsLimit::Max(n as u64),
            _ => cgroup_demo::PidsLimit::Unlimited,
        });
    }
    if let Some(cpu) = resources.cpu() {
        field(
            "linux.resources.cpu.realtimeRuntime",
            cpu.realtime_runtime().is_some(),
        )?;
        field(
            "linux.resources.cpu.realtimePeriod",
            cpu.realtime_period().is_some(),
        )?;
        field("linux.resources.cpu.idle", cpu.idle().is_some())?;
        field("linux.resources.cpu.burst", cpu.burst().is_some())?;
        limits.cpu_shares = cpu.shares().filter(|s| *s > 0);
        // The kernel takes a period of 1 ms to 1 s (sched-bwc.rst).
        let period = cpu.period().unwrap_or(cgroup_demo::Cpus::PERIOD_US);
        if !(1_000..=1_000_000).contains(&period) {
            return Err(refuse(
                "linux.resources.cpu.period",
                format!("{period} µs: the kernel takes 1000 to 1000000"),
            ));
        }
        if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
            limits.cpus = Some(cgroup_demo::Cpus {
                quota_us: quota as u64,
                period_us: period,
            });
        }
        let cpus = cpu.cpus().clone().unwrap_or_default();
        let mems = cpu.mems().clone().unwrap_or_default();
        if !cpus.is_empty() || !mems.is_empty() {
            limits.cpuset = Some(cgroup_demo::limits::Cpuset { cpus, mems });
        }
    }
    limits
        .check()
        .map_err(|e| refuse("linux.resources", e.to_string()))?;
    Ok(limits)
}
// ANCHOR_END: resources

// ANCHOR: device_rules
/// The config's device rules for cgroup v1's device controller, where the kernel enforces them: root
/// on a host with a v1 `devices` hierarchy (v2 has no such controller, only BPF programs, and a rootless
/// runtime may not write one; there the container's nodes alone are what it can open, as
/// [`resource_limits`] says). After the config's own rules come those of the nodes every container
/// gets and of `linux.devices`, as runc and crun add them: an engine's "deny all" (podman's) means all
/// but those.
fn device_rules(linux: &oci_spec::runtime::Linux) -> Vec<cgroup_demo::limits::DeviceRule> {
    let v1 = cgroup_demo::Hierarchies::read()
        .ok()
        .and_then(|h| {
            h.holding("devices")
                .map(|m| m.version == cgroup_demo::Version::V1)
        })
        .unwrap_or(false);
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    if !v1 || !nskit::userns::is_root() || rules.is_empty() {
        return Vec::new();
    }
    let rule = |allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str| {
        cgroup_demo::limits::DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.to_owned(),
        }
    };
    let mut list: Vec<_> = rules
        .iter()
        .map(|r| {
            let kind = match r.typ() {
                Some(oci_spec::runtime::LinuxDeviceType::B) => 'b',
                Some(oci_spec::runtime::LinuxDeviceType::C | oci_spec::runtime::LinuxDeviceType::U) => 'c',
                _ => 'a',
            };
            let access = r.access().clone().unwrap_or_else(|| "rwm".into());
            rule(r.allow(), kind, r.major(), r.minor(), &access)
        })
        .collect();
    let standard = mnt_demo::rootfs::DEVICES
        .iter()
        .map(|(_, major, minor)| (*major as i64, Some(*minor as i64)));
    // /dev/ptmx and the container's ptys (devpts).
    let ptys = [(5, Some(2)), (136, None)];
    for (major, minor) in standard.chain(ptys) {
        list.push(rule(true, 'c', Some(major), minor, "rwm"));
    }
    for device in linux.devices().iter().flatten() {
        let kind = match device.typ() {
            oci_spec::runtime::LinuxDeviceType::B => 'b',
            oci_spec::runtime::LinuxDeviceType::P => continue,
            _ => 'c',
        };
        list.push(rule(
            true,
            kind,
            Some(device.major()),
            Some(device.minor()),
            "rwm",
        ));
    }
    list
}
// ANCHOR_END: device_rules

/// The container's cgroup: at `linux.cgroupsPath` when the config gives one (absolute, from the
/// hierarchies' roots, or relative to the runtime's own cgroup; on cgroup v1 the missing parents are
/// made, on v2 they must exist), else `combined-<pid>` beside the runtime's cgroup, when there are
/// limits to set or the container has no PID namespace of its own.
///
/// Without a PID namespace of its own, the container's processes are found by its cgroup alone, as
/// runc finds them: a process that forked twice, or one `exec --detach` started, is no descendant of
/// the container's first process, and `kill --all` and `delete` would leave it running on the host.
/// Such a cgroup is made in the pids hierarchy, which every kernel since 4.3 has, and holds no limit.
fn cgroup_plan(
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<crate::container::CgroupPlan>, BundleError> {
    let mut limits = match linux.resources() {
        Some(resources) => resource_limits(resources)?,
        None => resource_limits(&Default::default())?,
    };
    limits.device_rules = device_rules(linux);
    let path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let to_find_processes = !owns_pid_namespace(linux);
    if path.is_none() && limits.controllers().is_empty() && !to_find_processes {
        return Ok(None);
    }
    let refuse_cgroup = |e: &dyn std::fmt::Display| {
        refuse(
            "linux.cgroupsPath",
            match to_find_processes {
                true => format!(
                    "a container without a PID namespace of its own needs a cgroup this user may \
                     create, by which kill --all and delete find all its processes (or give it a PID \
                     namespace): {e}"
                ),
                false => format!("a cgroup this user may create is needed: {e}"),
            },
        )
    };
    let hierarchies = cgroup_demo::Hierarchies::read().map_err(|e| refuse_cgroup(&e))?;
    let mut controllers = limits.controllers();
    if to_find_processes && controllers.is_empty() && path.is_none() {
        controllers.push(cgroup_demo::Controller::Pids);
    }
    if path.is_some() {
        // A named cgroup is made in every hierarchy, as runc makes it, limits or not: an engine reads
        // the container's memory and CPU use there (a Kubernetes pod's sandbox sets CPU shares only).
        for controller in cgroup_demo::Controller::ALL {
            if hierarchies.holding(controller.name()).is_some() && !controllers.contains(&controller) {
                controllers.push(controller);
            }
        }
    }
    let Some(path) = path else {
        let placement = cgroup_demo::cgroup::Placement::own(&hierarchies, &controllers)
            .and_then(|placement| placement.check_access().map(|()| placement))
            .map_err(|e| refuse_cgroup(&e))?;
        return Ok(Some(crate::container::CgroupPlan {
            limits,
            placement,
            name: None,
        }));
    };
    // Each component a plain name: `..` would walk out of the cgroup hierarchy onto the host's files.
    if std::path::Path::new(&path)
        .components()
        .any(|c| !matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)))
    {
        return Err(refuse(
            "linux.cgroupsPath",
            format!("{path:?} must name a cgroup with plain components, no . or .."),
        ));
    }
    let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() => (parent.to_owned(), name.to_owned()),
        _ => (String::new(), path.trim_matches('/').to_owned()),
    };
    let mut placement =
        cgroup_demo::cgroup::Placement::own(&hierarchies, &controllers).map_err(|e| refuse_cgroup(&e))?;
    for dir in &mut placement.parents {
        let mount = hierarchies
            .holding(dir.controllers[0].name())
            .ok_or_else(|| refuse_cgroup(&"no hierarchy holds the controller"))?;
        dir.path = match path.starts_with('/') {
            true => mount
                .dir_of(if parent.is_empty() { "/" } else { &parent })
                .ok_or_else(|| refuse_cgroup(&format!("{parent} is outside this cgroup namespace")))?,
            false => dir.path.join(&parent),
        };
        if dir.version == cgroup_demo::Version::V1 {
            cgroup_demo::cgroup::make_parents(dir).map_err(|e| refuse_cgroup(&e))?;
        }
    }
    placement.check_access().map_err(|e| refuse_cgroup(&e))?;
    Ok(Some(crate::container::CgroupPlan {
        limits,
        placement,
        name: Some(name),
    }))
}

/// Whether the config gives the container a PID namespace of its own (not one joined by path, not
/// the host's).
pub fn owns_pid_namespace(linux: &oci_spec::runtime::Linux) -> bool {
    linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && ns.path().is_none())
}

/// The namespaces to make, and those to join by path (network, IPC, UTS, cgroup, mount, and PID as
/// root; joining a user or time namespace is refused for now). Without a user namespace the container runs
/// with the host's ids (root only); without a network namespace, on the host's network.
struct Namespaces {
    make: CloneFlags,
    join: Vec<(CloneFlags, PathBuf)>,
    user: bool,
    net: NetMode,
    /// A time namespace of its own, which the command enters at execve (Linux 6.2).
    time: bool,
}

fn namespaces(linux: &oci_spec::runtime::Linux) -> Result<Namespaces, BundleError> {
    let mut make = CloneFlags::empty();
    let mut join = Vec::new();
    let mut user = false;
    let mut time = false;
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let flag = match ns.typ() {
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::Time => {
                if ns.path().is_some() {
                    return Err(refuse(
                        "linux.namespaces",
                        "joining a time namespace by path is not supported: give the container one of its own",
                    ));
                }
                time = true;
                continue;
            }
        };
        match ns.path() {
            Some(path) => {
                let joinable = CloneFlags::CLONE_NEWNET
                    | CloneFlags::CLONE_NEWIPC
                    | CloneFlags::CLONE_NEWUTS
                    | CloneFlags::CLONE_NEWCGROUP
                    | CloneFlags::CLONE_NEWNS
                    | CloneFlags::CLONE_NEWPID;
                if flag == CloneFlags::CLONE_NEWPID && !nskit::userns::is_root() {
                    return Err(refuse(
                        "linux.namespaces",
                        "joining a PID namespace by path needs root: setns(2) takes CAP_SYS_ADMIN in the runtime's own user namespace for it",
                    ));
                }
                if !joinable.contains(flag) {
                    return Err(refuse(
                        "linux.namespaces",
                        format!(
                            "joining the {:?} namespace by path is not supported yet",
                            ns.typ()
                        ),
                    ));
                }
                if flag == CloneFlags::CLONE_NEWNS && same_namespace(path, "/proc/self/ns/mnt") {
                    // The container's root is pivoted into in that namespace: in the runtime's own,
                    // that would change the host's root.
                    return Err(refuse(
                        "linux.namespaces",
                        format!(
                            "{} is the runtime's own mount namespace: the container needs one of its own",
                            path.display()
                        ),
                    ));
                }
                join.push((flag, path.clone()));
            }
            None if flag == CloneFlags::CLONE_NEWUSER => user = true,
            None => make |= flag,
        }
    }
    let mount =
        make.contains(CloneFlags::CLONE_NEWNS) || join.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNS);
    if !mount {
        return Err(refuse(
            "linux.namespaces",
            "a mount namespace is required: the container's root is pivoted into",
        ));
    }
    if !user && !nskit::userns::is_root() {
        return Err(refuse(
            "linux.namespaces",
            "without a user namespace the container needs root (combined spec --rootless makes a config with one)",
        ));
    }
    let net = if join.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNET) {
        NetMode::Joined
    } else if make.contains(CloneFlags::CLONE_NEWNET) {
        NetMode::Loopback
    } else {
        NetMode::Host
    };
    Ok(Namespaces {
        make,
        join,
        user,
        net,
        time,
    })
}

/// Whether two namespace files name the same namespace (the same nsfs inode, ioctl_ns(2)).
fn same_namespace(a: &Path, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The config's maps; with a user namespace they are required, as the spec says.
fn id_maps(linux: &oci_spec::runtime::Linux, user_ns: bool) -> Result<Maps, BundleError> {
    let ranges = |field: &'static str, mappings: &Option<Vec<LinuxIdMapping>>| {
        let ranges: Vec<IdRange> = mappings
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| IdRange {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect();
        if user_ns && ranges.is_empty() {
            return Err(refuse(field, "a user namespace needs a mapping"));
        }
        if !user_ns && !ranges.is_empty() {
            return Err(refuse(field, "mappings without a user namespace"));
        }
        Ok(ranges)
    };
    let uid = ranges("linux.uidMappings", linux.uid_mappings())?;
    let gid = ranges("linux.gidMappings", linux.gid_mappings())?;
    if !user_ns {
        // Unused without a user namespace; the launcher's default keeps the plan whole.
        return crate::maps(&[], &[]).map_err(|e| refuse("linux.uidMappings", e.to_string()));
    }
    let map = |field: &'static str, ranges: Vec<IdRange>| {
        let map = IdMap::new(ranges).map_err(|e| refuse(field, e.to_string()))?;
        match map.to_outside(0) {
            Some(_) => Ok(map),
            None => Err(refuse(
                field,
                "must map id 0: the container's set-up runs as its root before taking process.user",
            )),
        }
    };
    Ok(Maps {
        uid: map("linux.uidMappings", uid)?,
        gid: map("linux.gidMappings", gid)?,
    })
}

/// `root.path`, relative to the bundle or absolute: an existing directory.
fn root(bundle: &Path, spec: &Spec) -> Result<PathBuf, BundleError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| refuse("root", "the bundle has no root"))?;
    let path = bundle.join(root.path());
    match std::fs::canonicalize(&path) {
        Ok(dir) if dir.is_dir() => Ok(dir),
        Ok(_) => Err(refuse(
            "root.path",
            format!("{} is not a directory", path.display()),
        )),
        Err(e) => Err(refuse("root.path", format!("{}: {e}", path.display()))),
    }
}

/// The config's mounts, sorted into the kernel filesystems the launcher mounts at their usual places,
/// bind mounts (volumes) and further tmpfs mounts.
#[derive(Debug, Default)]
struct Mounts {
    kernel: KernelMounts,
    volumes: Vec<PlannedVolume>,
    tmpfs: Vec<(PathBuf, MountOptions)>,
}

fn mounts(list: &[Mount]) -> Result<Mounts, BundleError> {
    let mut mounts = Mounts::default();
    for mount in list {
        let target = mount.destination().to_string_lossy().into_owned();
        let kind = mount.typ().clone().unwrap_or_default();
        let options = mount.options().clone().unwrap_or_default();
        let is_bind = kind == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        match (kind.as_str(), target.as_str()) {
            _ if is_bind => mounts.volumes.push(bind(mount, &options)?),
            ("proc", "/proc") => mounts.kernel.proc = true,
            ("tmpfs", "/dev") => mounts.kernel.dev = true,
            // Part of the launcher's /dev: its own devpts instance and a /dev/shm.
            ("devpts", "/dev/pts") | ("tmpfs", "/dev/shm") => {}
            ("mqueue", "/dev/mqueue") => mounts.kernel.mqueue = true,
            ("sysfs", "/sys") => mounts.kernel.sys = true,
            ("cgroup" | "cgroup2", "/sys/fs/cgroup") => mounts.kernel.cgroup = true,
            ("tmpfs", _) => {
                let options = mount_options(&target, &options)?;
                mounts.tmpfs.push((checked_target(&target)?, options));
            }
            _ => {
                return Err(refuse(
                    "mounts",
                    format!("a {kind:?} mount at {target} is not supported"),
                ));
            }
        }
    }
    let dev_parts = list.iter().any(|m| {
        let target = m.destination();
        target == Path::new("/dev/pts") || target == Path::new("/dev/shm")
    });
    if dev_parts && !mounts.kernel.dev {
        return Err(refuse("mounts", "/dev/pts and /dev/shm need the tmpfs at /dev"));
    }
    Ok(mounts)
}

fn checked_target(target: &str) -> Result<PathBuf, BundleError> {
    crate::values::container_path(target).map_err(|e| refuse("mounts", format!("{target}: {e}")))
}

/// A bind mount: its source must exist. Its options are honoured (flags, `bind` or `rbind`, its own
/// propagation), except `dev`: every volume is `nodev`, since the launcher has no device cgroup.
fn bind(mount: &Mount, options: &[String]) -> Result<PlannedVolume, BundleError> {
    let target = checked_target(&mount.destination().to_string_lossy())?;
    let source = mount.source().as_ref().ok_or_else(|| {
        refuse(
            "mounts",
            format!("the bind mount at {} has no source", target.display()),
        )
    })?;
    let source =
        std::fs::canonicalize(source).map_err(|e| refuse("mounts", format!("{}: {e}", source.display())))?;
    // Data options (`mode=755`) mean nothing to a bind mount: mount(2) ignores them with MS_BIND, as
    // runc does.
    let parsed = mount_options(&target.to_string_lossy(), options)?;
    Ok(PlannedVolume {
        source,
        target,
        read_only: parsed.flags.contains(MsFlags::MS_RDONLY),
        flags: parsed.flags.difference(MsFlags::MS_RDONLY),
        recursive: parsed.bind != Some(Recursion::One),
        propagation: parsed
            .propagation
            .map(|(propagation, recursion)| (propagation, recursion == Recursion::Recursive)),
    })
}

/// A mount's options (mnt-demo's `options`), refusing `dev`, which would undo the launcher's rule
/// that no mount it makes for a container beside its own /dev holds a usable device node.
fn mount_options(target: &str, options: &[String]) -> Result<MountOptions, BundleError> {
    let parsed = mnt_demo::options::parse(options);
    if parsed.cleared.contains(MsFlags::MS_NODEV) {
        return Err(refuse(
            "mounts",
            format!("the mount at {target} asks for dev: combined mounts every bind and tmpfs nodev"),
        ));
    }
    Ok(parsed)
}

/// The bounding, effective and permitted sets must be one set (the launcher drops to it); the
/// inheritable and ambient sets are honoured as given.
fn capabilities(
    sets: Option<&LinuxCapabilities>,
) -> Result<(CapsHashSet, CapsHashSet, CapsHashSet), BundleError> {
    let Some(sets) = sets else {
        return Ok(Default::default());
    };
    let convert = |field: &'static str, set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter()
            .flatten()
            .map(|cap| {
                format!("CAP_{cap}")
                    .parse::<Capability>()
                    .map_err(|_| refuse(field, format!("unknown capability {cap}")))
            })
            .collect::<Result<CapsHashSet, BundleError>>()
    };
    let bounding = convert("process.capabilities.bounding", sets.bounding())?;
    let effective = convert("process.capabilities.effective", sets.effective())?;
    let permitted = convert("process.capabilities.permitted", sets.permitted())?;
    if effective != bounding || permitted != bounding {
        return Err(refuse(
            "process.capabilities",
            "combined gives the effective and permitted sets the bounding set; here they differ",
        ));
    }
    let inheritable = convert("process.capabilities.inheritable", sets.inheritable())?;
    let ambient = convert("process.capabilities.ambient", sets.ambient())?;
    if !ambient.is_subset(&inheritable) || !ambient.is_subset(&bounding) {
        return Err(refuse(
            "process.capabilities.ambient",
            "an ambient capability must be inheritable and permitted too (capabilities(7))",
        ));
    }
    Ok((bounding, inheritable, ambient))
}

/// The config's filter, compiled with the same code as `--security-opt`, from the same format
/// (Docker's profiles are the OCI section plus a few fields). Without `noNewPrivileges` it is loaded
/// before the capabilities are dropped (`container::prepare_exec`).
fn seccomp_filter(
    bundle: &Path,
    linux: &oci_spec::runtime::Linux,
    caps: &CapsHashSet,
) -> Result<Option<seccomp::Filter>, BundleError> {
    let Some(section) = linux.seccomp() else {
        return Ok(None);
    };
    let json = serde_json::to_string(section).map_err(|e| refuse("linux.seccomp", e.to_string()))?;
    seccomp::compile_json(&json, &bundle.join(CONFIG), caps)
        .map(Some)
        .map_err(|e| refuse("linux.seccomp", e.to_string()))
}

/// `process.args[0]`, found the way execvp would with the config's PATH, inside the root only.
fn program(root: &Path, process: &Process, env: &[String]) -> Result<(String, Vec<String>), BundleError> {
    let argv = process.args().clone().unwrap_or_default();
    let first = argv
        .first()
        .ok_or_else(|| refuse("process.args", "there is no command"))?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(command::DEFAULT_PATH);
    let found = command::find_command(root, first, path_var).ok_or_else(|| {
        refuse(
            "process.args",
            // runc's words, which docker turns into exit status 127 as it does for runc.
            format!("{first}: executable file not found in the root filesystem (searched {path_var})"),
        )
    })?;
    Ok((found.to_string_lossy().into_owned(), argv))
}

fn propagation(linux: &oci_spec::runtime::Linux) -> Result<mnt_demo::rootfs::Propagation, BundleError> {
    use mnt_demo::rootfs::Propagation;
    match linux.rootfs_propagation().as_deref().unwrap_or("") {
        "" | "slave" | "rslave" => Ok(Propagation::Slave),
        "private" | "rprivate" => Ok(Propagation::Private),
        shared @ ("shared" | "rshared") => Err(refuse(
            "linux.rootfsPropagation",
            format!("{shared:?} would let the container's mounts reach the host; use rslave or rprivate"),
        )),
        other => Err(refuse(
            "linux.rootfsPropagation",
            format!("{other:?} is not supported; use rslave or rprivate"),
        )),
    }
}

/// Only the kernel parameters that belong to a namespace the container has of its own
/// (`net.*` with a network namespace; the System V and POSIX IPC ones with an IPC namespace; the
/// names with a UTS namespace): any other would change the host.
fn sysctls(
    linux: &oci_spec::runtime::Linux,
    namespaces: CloneFlags,
) -> Result<Vec<(String, String)>, BundleError> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut sysctls: Vec<(String, String)> = linux.sysctl().clone().unwrap_or_default().into_iter().collect();
    sysctls.sort();
    for (name, _) in &sysctls {
        let owned = (name.starts_with("net.") && namespaces.contains(CloneFlags::CLONE_NEWNET))
            || ((ipc.contains(&name.as_str()) || name.starts_with("fs.mqueue."))
                && namespaces.contains(CloneFlags::CLONE_NEWIPC))
            || (matches!(name.as_str(), "kernel.hostname" | "kernel.domainname")
                && namespaces.contains(CloneFlags::CLONE_NEWUTS));
        if !owned || name.contains('/') || name.contains("..") {
            return Err(refuse(
                "linux.sysctl",
                format!("{name} is not namespaced for this container: setting it would change the host"),
            ));
        }
    }
    Ok(sysctls)
}

/// `process.user`. A rootless container's user namespace denies setgroups(2) (the user chapter's
/// rule: an unprivileged map writer must), so it can have no supplementary group.
fn user(process: &Process, rootless: bool) -> Result<ProcessUser, BundleError> {
    let user = process.user();
    if user.username().as_ref().is_some_and(|n| !n.is_empty()) {
        return Err(refuse("process.user.username", "a Windows field"));
    }
    if rootless && user.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(refuse(
            "process.user.additionalGids",
            "a rootless container cannot have supplementary groups: its user namespace denies setgroups(2)",
        ));
    }
    Ok(ProcessUser {
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
    })
}

fn rlimits(process: &Process) -> Result<Vec<Rlimit>, BundleError> {
    process
        .rlimits()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|limit| {
            if limit.soft() > limit.hard() {
                return Err(refuse(
                    "process.rlimits",
                    format!("{:?}: the soft limit is above the hard one", limit.typ()),
                ));
            }
            Ok(Rlimit {
                resource: resource(limit.typ()),
                soft: limit.soft(),
                hard: limit.hard(),
            })
        })
        .collect()
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}
