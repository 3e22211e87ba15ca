//! `combined`, the course's container launcher, composed from the six chapters' libraries
//! (namespaces(7)). The order of the steps follows what runc, crun and youki do (see
//! `container.rs`), and each step is typed, so that an error names the step that failed.
//!
//! The launcher validates everything first ([`plan`]), then runs the container ([`container`]), then
//! reports the command's exit status.

pub mod caps;
pub mod cgroups;
pub mod command;
pub mod container;
pub mod doctor;
pub mod enter;
pub mod hostview;
pub mod image;
pub mod layer;
pub mod locked;
pub mod oci;
pub mod private_dir;
pub mod sealed;
pub mod seccomp;
pub mod subnets;
pub mod terminal;
pub mod timings;
pub mod values;

use std::path::{Path, PathBuf};

use container::{Plan, PlannedVolume, Step};
use nskit::idmap::IdRange;
use uts_demo::Name;
use values::{EnvVar, NetMode, Rootfs, Volume};

/// The exit status when the launcher itself fails (as `docker run` uses it).
pub const EXIT_LAUNCHER: u8 = 125;
/// The command was found but could not be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Everything `combined run` was asked for, as parsed from the command line.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub rootfs: Option<PathBuf>,
    pub image: Option<PathBuf>,
    pub hostname: Name,
    pub env: Vec<EnvVar>,
    pub workdir: String,
    pub volumes: Vec<Volume>,
    pub uid_map: Vec<IdRange>,
    pub gid_map: Vec<IdRange>,
    pub net: NetMode,
    /// `--subnet`; without it, a free /30 from [`subnets::POOL`].
    pub subnet: Option<String>,
    pub cap_add: Vec<caps::CapArg>,
    pub cap_drop: Vec<caps::CapArg>,
    pub read_only: bool,
    pub no_init: bool,
    pub userns: bool,
    /// `--security-opt seccomp=...`: the default filter, none, or a Docker-format profile.
    pub seccomp: seccomp::Setting,
    /// `-t/--tty`: `Some(true)` a pty whatever stdin is, `Some(false)` never; `None` when the launcher
    /// runs in the foreground of a terminal on both stdin and stdout.
    pub tty: Option<bool>,
    /// `--memory`, `--pids-limit`, `--cpus` (docker's meanings; `cgroups.rs`).
    pub memory: Option<cgroup_demo::Bytes>,
    pub pids_limit: Option<cgroup_demo::PidsLimit>,
    pub cpus: Option<cgroup_demo::Cpus>,
    pub command: Vec<String>,
}

impl RunRequest {
    /// A request for `command` with every option at its default.
    pub fn new(command: &[&str]) -> RunRequest {
        RunRequest {
            rootfs: None,
            image: None,
            hostname: Name::parse("hostname", "container").expect("a valid default"),
            env: Vec::new(),
            workdir: "/".into(),
            volumes: Vec::new(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            net: NetMode::Loopback,
            subnet: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            read_only: false,
            no_init: false,
            userns: false,
            seccomp: seccomp::Setting::Default,
            tty: None,
            memory: None,
            pids_limit: None,
            cpus: None,
            command: command.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The id maps, chosen by the user chapter's rules (`user_demo::choose_maps`): the given lines, or by
/// default "my uid and gid are root inside" for an ordinary user and 0..65535 -> 100000..165535 for
/// root, so that a root-run container's root is nobody in particular on the host.
pub fn maps(uid: &[IdRange], gid: &[IdRange]) -> Result<values::Maps, nskit::idmap::MapError> {
    let (uid, gid) = user_demo::choose_maps(uid, gid)?;
    Ok(values::Maps { uid, gid })
}

/// Why a request was refused before anything was created.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("rootfs {0}: {1}")]
    Rootfs(PathBuf, String),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Maps(#[from] nskit::idmap::MapError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found in the root filesystem (searched {1})")]
    CommandNotFound(String, String),
    #[error("cannot execute {0}: {1}")]
    CannotExecute(String, &'static str),
    #[error("{0}")]
    Limits(#[from] cgroup_demo::CgroupError),
}

// ANCHOR: init_reachable
/// Whether a process in the container could reach init's memory, and so its `/proc/1/exe`, its
/// descriptors, or its system calls (ptrace(2), "Ptrace access mode checking"). Init is
/// non-dumpable, so that takes CAP_SYS_PTRACE in the user namespace init's memory belongs to: the
/// launcher's. With a user namespace the container holds no capability there; without one, only a
/// container granted CAP_SYS_PTRACE (`--cap-add SYS_PTRACE`, or `ALL`) does. Only then does init need
/// to run from a sealed copy of the launcher and under the seccomp filter: otherwise the kernel
/// already keeps everything in the container out.
pub fn init_reachable(user_ns: bool, init: bool, caps: &::caps::CapsHashSet) -> bool {
    init && !user_ns && caps.contains(&::caps::Capability::CAP_SYS_PTRACE)
}
// ANCHOR_END: init_reachable

/// `--cap-add` of a capability that reaches the host from a container without a user namespace is
/// refused, with the way that keeps it inside: `--userns`. An OCI config is an engine's (an
/// administrator's) decision, and is run as it asks, as runc runs it; these flags are a person's, and
/// the launcher says what they would give away.
fn refuse_host_root_caps(caps: &::caps::CapsHashSet, user_ns: bool) -> Result<(), PlanError> {
    match caps::host_root_cap(caps) {
        Some((cap, opens)) if !user_ns => Err(invalid(format!(
            "{cap} without a user namespace is the host's: it can {opens}; add --userns, and it is the \
             container's own"
        ))),
        _ => Ok(()),
    }
}

/// A capability the launcher cannot pass on, because its own bounding set lacks it (a host or a
/// calling process may withhold some from everything it starts, as this project's CI withholds
/// CAP_SYS_RESOURCE; a user namespace inherits the bounding set too). Asked of the kernel, it fails the
/// whole capset(2) at the last step: refused here, by name, before anything exists.
fn refuse_caps_not_held(kept: &::caps::CapsHashSet) -> Result<(), PlanError> {
    let Ok(bounding) = ::caps::read(None, ::caps::CapSet::Bounding) else {
        return Ok(());
    };
    let mut missing: Vec<String> = kept.difference(&bounding).map(ToString::to_string).collect();
    missing.sort();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(invalid(format!(
            "cannot keep {}: this launcher's own bounding set lacks it (the host or the calling process \
             withheld it), so no container it starts can have it; leave it out",
            missing.join(", ")
        ))),
    }
}

fn invalid(message: impl Into<String>) -> PlanError {
    PlanError::Invalid(message.into())
}

/// The variable that makes one setup step fail, for the tests that prove a failure at any step leaves
/// nothing behind. Read only by a launcher built with the `fault-injection` feature, which only the
/// launcher's own tests turn on: what users build ignores it.
pub const FAULT_VAR: &str = "COMBINED_FAULT";

#[cfg(feature = "fault-injection")]
fn injected_fault() -> Result<Option<Step>, PlanError> {
    match std::env::var(FAULT_VAR) {
        Ok(name) => Step::from_name(&name)
            .map(Some)
            .ok_or_else(|| invalid(format!("{FAULT_VAR}={name}: no such step"))),
        Err(_) => Ok(None),
    }
}

#[cfg(not(feature = "fault-injection"))]
fn injected_fault() -> Result<Option<Step>, PlanError> {
    Ok(None)
}

// ANCHOR: plan
/// Checks the whole request and turns it into a [`Plan`]. Nothing is created here except, last and
/// only when everything else is valid, the unpacked image in the cache.
pub fn plan(request: &RunRequest) -> Result<Plan, PlanError> {
    let user_ns = request.userns || !nskit::userns::is_root();
    let maps = plan_maps(request, user_ns)?;
    if request.net == NetMode::Veth && !nskit::userns::is_root() {
        return Err(invalid(
            "--net veth needs root (a rootless container gets --net loopback)",
        ));
    }
    let subnet = request
        .subnet
        .as_deref()
        .map(|s| {
            s.parse::<net_demo::subnet::Subnet>()
                .map_err(|e| invalid(format!("--subnet: {e}")))
        })
        .transpose()?;
    let fault = injected_fault()?;
    let limits = plan_limits(request)?;
    let workdir = values::container_path(&request.workdir)
        .or_else(|e| {
            if request.workdir == "/" {
                Ok(PathBuf::from("/"))
            } else {
                Err(e)
            }
        })
        .map_err(|e| invalid(format!("invalid --workdir: {e}")))?;
    let env = command::environment(&request.hostname, &request.env);
    let env_strings: Vec<String> = env.iter().map(ToString::to_string).collect();
    let path_var = env
        .iter()
        .find(|e| e.key == "PATH")
        .map_or(command::DEFAULT_PATH, |e| e.value.as_str());
    let argv = if request.command.is_empty() {
        vec!["/bin/sh".to_owned()]
    } else {
        request.command.clone()
    };
    let volumes = plan_volumes(&request.volumes)?;
    let caps = caps::resolve(&request.cap_add, &request.cap_drop);
    refuse_host_root_caps(&caps, user_ns)?;
    refuse_caps_not_held(&caps)?;
    // Compiled here, on the host, so that a bad profile is refused before anything exists.
    let seccomp = seccomp::compile_with_cache(&request.seccomp, &caps, seccomp_cache().as_deref())?;

    // Last, the root filesystem: an image is unpacked only once everything else is known to be valid.
    let rootfs = plan_rootfs(request)?;
    let search_root = match &rootfs {
        Rootfs::Dir(dir) | Rootfs::Image(dir) => dir.clone(),
        Rootfs::HostView => PathBuf::from("/"),
    };
    let program = find_in_volumes(&volumes, &argv[0])
        .or_else(|| {
            command::find_command(&search_root, &argv[0], path_var)
                .filter(|p| !matches!(rootfs, Rootfs::HostView) || in_host_view(p))
        })
        .ok_or_else(|| not_runnable(&search_root, &argv[0], path_var))?;
    if let Rootfs::Dir(dir) | Rootfs::Image(dir) = &rootfs {
        check_inside(dir, &workdir, "--workdir")?;
        for volume in &volumes {
            check_inside(dir, &volume.target, "volume target")?;
        }
    }
    Ok(Plan {
        rootfs,
        hostname: request.hostname.to_string(),
        program: command::c_strings(&[program.to_string_lossy().into_owned()])
            .map_err(invalid)?
            .remove(0),
        argv: command::c_strings(&argv).map_err(|e| invalid(format!("invalid command: {e}")))?,
        env: command::c_strings(&env_strings).map_err(|e| invalid(format!("invalid --env: {e}")))?,
        workdir,
        volumes,
        user_ns,
        maps,
        net: request.net,
        subnet,
        caps,
        seccomp,
        read_only: request.read_only,
        init: !request.no_init,
        tty: request.tty.unwrap_or_else(at_a_terminal),
        inheritable: ::caps::CapsHashSet::new(),
        ambient: ::caps::CapsHashSet::new(),
        namespaces: container::NAMESPACES,
        join: Vec::new(),
        kernel_mounts: container::KernelMounts::ALL,
        tmpfs: Vec::new(),
        propagation: mnt_demo::rootfs::Propagation::Slave,
        masked: strings(&mnt_demo::rootfs::DEFAULT_MASKED),
        readonly_paths: strings(&mnt_demo::rootfs::DEFAULT_READONLY),
        domainname: None,
        sysctl: Vec::new(),
        user: container::ProcessUser::default(),
        rlimits: Vec::new(),
        oom_score_adj: None,
        no_new_privs: true,
        lifecycle: container::Lifecycle::Foreground,
        limits,
        devices: Vec::new(),
        preserve_fds: 0,
        time_offsets: None,
        personality: None,
        fault,
    })
}
// ANCHOR_END: plan

/// The limits asked for, and where their cgroup goes: refused here, before anything exists, when
/// this user may not make cgroups (a rootless launcher without a delegated subtree).
fn plan_limits(request: &RunRequest) -> Result<Option<container::CgroupPlan>, PlanError> {
    let limits = cgroup_demo::Limits {
        memory: request.memory,
        memory_swap: cgroup_demo::Swap::Default,
        pids: request.pids_limit,
        cpus: request.cpus,
        ..cgroup_demo::Limits::default()
    };
    if limits.controllers().is_empty() {
        return Ok(None);
    }
    limits.check().map_err(|e| invalid(e.to_string()))?;
    let placement = cgroups::placement(&limits).map_err(|e| {
        invalid(format!(
            "--memory, --pids-limit and --cpus need a cgroup this user may create: {e}"
        ))
    })?;
    Ok(Some(container::CgroupPlan {
        limits,
        placement,
        name: None,
    }))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Why a command could not be found: a path that names a directory or a file without execute
/// permission cannot be executed (exit 126, as a shell says); anything else was not found.
fn not_runnable(root: &Path, program: &str, path_var: &str) -> PlanError {
    if program.contains('/') {
        match command::lookup_in(root, Path::new(program)) {
            command::Lookup::Directory => {
                return PlanError::CannotExecute(program.to_owned(), "is a directory");
            }
            command::Lookup::NotExecutable => {
                return PlanError::CannotExecute(program.to_owned(), "permission denied");
            }
            command::Lookup::Executable | command::Lookup::Missing => {}
        }
    }
    PlanError::CommandNotFound(program.to_owned(), path_var.to_owned())
}

/// Where compiled seccomp filters are kept: beside the image cache, with the same checks. None when
/// that place is not safe (the filter is then compiled for every run).
fn seccomp_cache() -> Option<PathBuf> {
    let images = image::cache_root().ok()?;
    private_dir::make_private(&images.parent()?.join("seccomp")).ok()
}

fn plan_maps(request: &RunRequest, user_ns: bool) -> Result<values::Maps, PlanError> {
    if !user_ns && (!request.uid_map.is_empty() || !request.gid_map.is_empty()) {
        return Err(invalid(
            "--uid-map and --gid-map need a user namespace: add --userns",
        ));
    }
    let maps = maps(&request.uid_map, &request.gid_map)?;
    if maps.uid.to_outside(0).is_none() || maps.gid.to_outside(0).is_none() {
        return Err(invalid("the id maps must map id 0, the container's root"));
    }
    Ok(maps)
}

fn plan_volumes(volumes: &[Volume]) -> Result<Vec<PlannedVolume>, PlanError> {
    volumes
        .iter()
        .map(|v| {
            let source = std::fs::canonicalize(&v.source)
                .map_err(|e| invalid(format!("volume source {}: {e}", v.source.display())))?;
            Ok(PlannedVolume {
                source,
                target: v.target.clone(),
                read_only: v.read_only,
                flags: nix::mount::MsFlags::empty(),
                recursive: true,
                propagation: None,
            })
        })
        .collect()
}

fn plan_rootfs(request: &RunRequest) -> Result<Rootfs, PlanError> {
    if let Some(image) = &request.image {
        // The image itself first: a missing file is the error to report, whatever the cache.
        std::fs::File::open(image).map_err(|source| image::ImageError::Read {
            path: image.clone(),
            source,
        })?;
        return Ok(Rootfs::Image(image::prepare(image, &image::cache_root()?)?));
    }
    let Some(dir) = &request.rootfs else {
        return Ok(Rootfs::HostView);
    };
    let canonical = std::fs::canonicalize(dir).map_err(|e| PlanError::Rootfs(dir.clone(), e.to_string()))?;
    if !canonical.is_dir() {
        return Err(PlanError::Rootfs(dir.clone(), "not a directory".into()));
    }
    if canonical == Path::new("/") {
        return Err(PlanError::Rootfs(
            dir.clone(),
            "the host's / cannot be a container's rootfs".into(),
        ));
    }
    Ok(Rootfs::Dir(canonical))
}

/// A command given by a path inside a volume (`-v ./bin:/tools -- /tools/run`): the volume shows its
/// source at its target, over whatever the rootfs has there, so the source is where it is looked up.
/// A later volume covers an earlier one.
fn find_in_volumes(volumes: &[PlannedVolume], program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let inside = Path::new(program);
    if !inside.is_absolute() {
        return None;
    }
    volumes.iter().rev().find_map(|volume| {
        let rest = inside.strip_prefix(&volume.target).ok()?;
        if rest.as_os_str().is_empty() {
            // A file volume: the command is the source itself.
            let meta = std::fs::metadata(&volume.source).ok()?;
            return (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then(|| volume.target.clone());
        }
        let in_source = Path::new("/").join(rest);
        let found = command::find_command(&volume.source, &in_source.to_string_lossy(), "")?;
        Some(volume.target.join(found.strip_prefix("/").ok()?))
    })
}

/// Whether a person is at a terminal: stdin and stdout are terminals, and the launcher is in its
/// foreground. Then the container gets a pty. Output captured by a script (stdout a pipe or a file)
/// gets none, so that it reads as the command wrote it, without the pty's `\r\n`.
fn at_a_terminal() -> bool {
    use std::os::fd::AsFd;
    terminal::is_terminal(std::io::stdin().as_fd())
        && terminal::is_terminal(std::io::stdout().as_fd())
        && terminal::in_foreground()
}

/// Whether a command found on the host is inside what the host view shows.
fn in_host_view(path: &Path) -> bool {
    hostview::HOST_DIRS
        .iter()
        .any(|dir| path.starts_with(Path::new("/").join(dir)))
}

/// Refuses a path inside the rootfs that leads out of it through a symlink; a missing path is fine
/// (it is created inside, where it cannot escape).
fn check_inside(root: &Path, path: &Path, what: &str) -> Result<(), PlanError> {
    use mnt_demo::resolve::{ResolveError, resolve_in_root};
    match resolve_in_root(root, path) {
        Ok(_) => Ok(()),
        Err(ResolveError::Sys {
            errno: nix::errno::Errno::ENOENT,
            ..
        }) => Ok(()),
        Err(e) => Err(invalid(format!("{what} {}: {e}", path.display()))),
    }
}

// ANCHOR: run
/// `combined run`: plan, launch, and return the exit status (125 when the launcher fails).
pub fn run(request: RunRequest) -> i32 {
    let plan = match timings::time("parent", "plan", || plan(&request)) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("combined: {e}");
            return match e {
                PlanError::CannotExecute(..) => EXIT_CANNOT_EXECUTE,
                _ => i32::from(EXIT_LAUNCHER),
            };
        }
    };
    match container::launch(&plan) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("combined: {e}");
            i32::from(EXIT_LAUNCHER)
        }
    }
}
// ANCHOR_END: run
