//! The launchers the benchmark compares, and the exact command line each is given so that every one
//! does the same work: new PID, mount, UTS, IPC and network namespaces (and a user namespace when
//! rootless), the same busybox rootfs as `/`, a fresh /proc, and `/bin/true`. Where a tool does more
//! or less than that by design, [`Launcher::note`] says so, and BENCHMARKS.md repeats it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

/// One launcher under test.
#[derive(Clone, Debug, PartialEq)]
pub struct Launcher {
    pub name: &'static str,
    pub argv: Vec<String>,
    /// Commands run after `argv`, as part of the same run (an OCI runtime's start and delete after
    /// its create); empty for a launcher that is one command.
    pub then: Vec<Vec<String>>,
    /// What it does beyond (or short of) the common work.
    pub note: &'static str,
    /// Measured in the table of containers started at once too (not an engine, nor a life cycle of
    /// several commands).
    pub concurrent: bool,
    /// A file each run gets as its standard input (else /dev/null): the seccomp filter that
    /// `bwrap --seccomp 0` reads.
    pub stdin: Option<PathBuf>,
}

impl Launcher {
    /// Every command of one run, `argv` first.
    pub fn commands(&self) -> Vec<Vec<String>> {
        std::iter::once(self.argv.clone())
            .chain(self.then.iter().cloned())
            .collect()
    }
}

/// A launcher that was not measured, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub name: &'static str,
    pub reason: String,
}

/// The programs the comparison is built from.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub combined: PathBuf,
    pub floor: PathBuf,
    pub rootfs: PathBuf,
    /// The rootfs as a tarball, for `combined run --image`.
    pub image: PathBuf,
    /// Where the OCI bundle and the runtimes' state go.
    pub work: PathBuf,
    pub rootless: bool,
    /// The uid and gid the launchers run as (the user's own, or 65534 with `--rootless`).
    pub ids: (u32, u32),
    /// Another build of combined to compare with (`--baseline`), shown as `baseline`.
    pub baseline: Vec<PathBuf>,
    /// Where the OCI runtimes keep their state: a directory of the user the launchers run as.
    pub state: PathBuf,
}

pub const COMBINED: &str = "combined";
pub const IMAGE: &str = "image";
pub const FLOOR: &str = "floor";
pub const FLOOR_PROTECTED: &str = "floor + protections";
pub const BWRAP_FILTERED: &str = "bwrap + filter";
pub const COMBINED_OCI: &str = "combined oci run";
/// The rows of the builds given with `--baseline`, in order.
pub const BASELINES: [&str; 4] = ["baseline", "baseline 2", "baseline 3", "baseline 4"];

/// The command every launcher runs in the container.
const TRUE: &str = "/bin/true";

/// The launchers, in the order the table shows them: `combined` first, the floor last.
pub fn all(inputs: &Inputs) -> anyhow::Result<(Vec<Launcher>, Vec<Skipped>)> {
    let mut found = vec![combined(inputs)];
    for (path, name) in inputs.baseline.iter().zip(BASELINES) {
        let mut baseline = combined(inputs);
        baseline.name = name;
        baseline.argv[0] = text(path);
        baseline.note = "the combined binary given with --baseline, with the same arguments";
        found.push(baseline);
    }
    found.push(combined_image(inputs));
    let mut skipped = Vec::new();
    let mut add = |name: &'static str, result: Result<Launcher, String>| match result {
        Ok(launcher) => found.push(launcher),
        Err(reason) => skipped.push(Skipped { name, reason }),
    };
    add("unshare", which("unshare").map(|p| unshare(&p, inputs)));
    add("bwrap", which("bwrap").map(|p| bwrap(&p, inputs)));
    let filter = inputs.work.join("filter.bpf");
    let written = write_filter(&inputs.combined, &filter).map_err(|e| format!("{e:#}"));
    let filtered = which("bwrap").and_then(|p| written.clone().map(|()| bwrap_filtered(&p, inputs, &filter)));
    add(BWRAP_FILTERED, filtered);
    for runtime in ["crun", "runc"] {
        let launcher =
            which(runtime).and_then(|path| oci(runtime, &path, inputs).map_err(|e| format!("{e:#}")));
        add(runtime, launcher);
    }
    // combined as an OCI runtime, and the OCI life cycle, each runtime the same sequence on the same
    // bundle.
    let combined_path = || Ok(inputs.combined.clone());
    let runtimes = [
        ("combined c+s+d", combined_path()),
        ("crun c+s+d", which("crun")),
        ("runc c+s+d", which("runc")),
    ];
    add(
        COMBINED_OCI,
        oci_run(COMBINED_OCI, &inputs.combined, inputs).map_err(|e| format!("{e:#}")),
    );
    for (name, path) in runtimes {
        add(
            name,
            path.and_then(|p| lifecycle(name, &p, inputs).map_err(|e| format!("{e:#}"))),
        );
    }
    // podman with each runtime: what switching runtimes gives a user end to end.
    let podman = match inputs.rootless {
        true => Err(
            "rootless podman needs subordinate ids, which the benchmark's user 65534 has none of".to_owned(),
        ),
        false => {
            which("podman").and_then(|p| podman_store(&p, inputs).map(|()| p).map_err(|e| format!("{e:#}")))
        }
    };
    for (name, runtime) in PODMAN {
        let path = match runtime {
            COMBINED => Ok(inputs.combined.clone()),
            other => which(other),
        };
        add(
            name,
            podman
                .clone()
                .and_then(|podman| path.map(|runtime| podman_run(name, &podman, &runtime))),
        );
    }
    add(
        FLOOR_PROTECTED,
        written.map(|()| floor_protected(inputs, &filter)),
    );
    found.push(floor(inputs));
    Ok((found, skipped))
}

/// The podman rows, and the runtime each is given.
pub const PODMAN: [(&str, &str); 3] = [
    ("podman combined", COMBINED),
    ("podman crun", "crun"),
    ("podman runc", "runc"),
];

/// The image podman runs: the rootfs, imported once.
const PODMAN_IMAGE: &str = "localhost/bench:latest";

/// podman's flags for the benchmark's own storage (under /tmp: podman refuses a run directory longer
/// than 50 characters), kept until the benchmark ends and reset then ([`remove_podman_store`]).
fn podman_flags() -> Vec<String> {
    let dir = podman_dir();
    let mut flags = Vec::new();
    for (flag, sub) in [
        ("--root", "storage"),
        ("--runroot", "run"),
        ("--tmpdir", "tmp"),
        ("--volumepath", "volumes"),
    ] {
        flags.push(flag.to_owned());
        flags.push(text(&dir.join(sub)));
    }
    flags.extend(args(&[
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]));
    flags
}

fn podman_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/xtask-bench-podman-{}", std::process::id()))
}

/// Imports the rootfs tarball as [`PODMAN_IMAGE`].
fn podman_store(podman: &Path, inputs: &Inputs) -> anyhow::Result<()> {
    let status = std::process::Command::new(podman)
        .args(podman_flags())
        .args(["import", "--quiet", "--change", "ENV PATH=/bin"])
        .arg(&inputs.image)
        .arg(PODMAN_IMAGE)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run podman")?;
    anyhow::ensure!(status.success(), "podman import failed ({status})");
    Ok(())
}

/// The benchmark's podman storage, reset and removed when this is dropped (if it was made), with the
/// network state directory podman makes under /run whatever its flags say, if it was not there before.
pub struct PodmanStore {
    had_run_dir: bool,
    /// The `libpod_parent` cgroups (podman's cgroupfs parent, which it leaves) there were before.
    had_cgroups: Vec<PathBuf>,
}

/// podman's parent cgroup in each hierarchy under /sys/fs/cgroup that has one.
fn libpod_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("libpod_parent")))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Removes `dir` and the empty cgroups below it, innermost first (rmdir(2) leaves one in use).
fn remove_cgroup_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
    {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Where podman keeps its network state, its flags notwithstanding.
const PODMAN_RUN_DIR: &str = "/run/containers";

impl PodmanStore {
    pub fn note() -> PodmanStore {
        PodmanStore {
            had_run_dir: Path::new(PODMAN_RUN_DIR).exists(),
            had_cgroups: libpod_parents(),
        }
    }
}

impl Drop for PodmanStore {
    fn drop(&mut self) {
        remove_podman_store();
        if !self.had_run_dir {
            let _ = std::fs::remove_dir_all(PODMAN_RUN_DIR);
        }
        for dir in libpod_parents().iter().filter(|d| !self.had_cgroups.contains(d)) {
            remove_cgroup_tree(dir);
        }
    }
}

/// Resets and removes the benchmark's podman storage, if it made one.
fn remove_podman_store() {
    let dir = podman_dir();
    if !dir.exists() {
        return;
    }
    let _ = std::process::Command::new("podman")
        .args(podman_flags())
        .args(["system", "reset", "--force"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(dir);
}

/// `podman --runtime RUNTIME run --rm IMAGE /bin/true`, with no network (the others have none either)
/// and limits a runtime may set without CAP_SYS_RESOURCE.
fn podman_run(name: &'static str, podman: &Path, runtime: &Path) -> Launcher {
    let mut argv = vec![text(podman)];
    argv.extend(podman_flags());
    argv.push("--runtime".into());
    argv.push(text(runtime));
    argv.extend(args(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=20000:20000",
    ]));
    argv.extend(args(&["--ulimit", "nproc=32768:32768", PODMAN_IMAGE, TRUE]));
    Launcher {
        name,
        argv,
        then: Vec::new(),
        note: "podman (conmon, its storage's overlay, a cgroup) driving the runtime: what an engine's user sees end to end",
        concurrent: false,
        stdin: None,
    }
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn combined(inputs: &Inputs) -> Launcher {
    let mut argv = vec![text(&inputs.combined)];
    argv.extend(args(&["run", "--rootfs"]));
    argv.push(text(&inputs.rootfs));
    argv.extend(args(&["--net", "loopback", "--", TRUE]));
    Launcher {
        name: COMBINED,
        argv,
        then: Vec::new(),
        note: "also /dev (tmpfs, devices, devpts, shm), mqueue, read-only /sys, masked and read-only \
               /proc paths, lo up, an init that forks the command, capabilities dropped",
        concurrent: true,
        stdin: None,
    }
}

/// `combined run` with defaults turned off, one at a time and all together (`--breakdown`): what each
/// costs is its row's difference from combined's, pair by pair in the same run. Only these three can
/// be turned off; the rest of the set-up (/dev, the masks, capabilities, the keyring) is always done.
pub fn without_defaults(inputs: &Inputs) -> Vec<Launcher> {
    const UNCONFINED: &[&str] = &["--security-opt", "seccomp=unconfined"];
    const NO_INIT: &[&str] = &["--no-init"];
    const BOTH: &[&str] = &["--security-opt", "seccomp=unconfined", "--no-init"];
    // name, --net, further flags, note
    const VARIANTS: [(&str, &str, &[&str], &str); 4] = [
        (
            "combined, no filter",
            "loopback",
            UNCONFINED,
            "combined without its seccomp filter: what loading it (and filtering the command's calls) costs",
        ),
        (
            "combined, no init",
            "loopback",
            NO_INIT,
            "combined with the command as PID 1: what the init (a fork, a process more to exit) costs",
        ),
        (
            "combined, lo down",
            "none",
            &[],
            "combined with the network namespace's lo left down: what bringing it up costs",
        ),
        (
            "combined, none of 3",
            "none",
            BOTH,
            "combined without the three: what is left is the set-up every container of it gets",
        ),
    ];
    VARIANTS
        .iter()
        .map(|(name, net, flags, note)| {
            let mut argv = vec![text(&inputs.combined)];
            argv.extend(args(&["run", "--rootfs"]));
            argv.push(text(&inputs.rootfs));
            argv.extend(args(&["--net", net]));
            argv.extend(args(flags));
            argv.extend(args(&["--", TRUE]));
            Launcher {
                name,
                argv,
                then: Vec::new(),
                note,
                concurrent: false,
                stdin: None,
            }
        })
        .collect()
}

/// `combined run --image`: the same rootfs as a tarball, unpacked once into the cache (during the
/// warm-up runs), each run on a throwaway overlay layer.
fn combined_image(inputs: &Inputs) -> Launcher {
    let mut argv = vec![text(&inputs.combined)];
    argv.extend(args(&["run", "--image"]));
    argv.push(text(&inputs.image));
    argv.extend(args(&["--net", "loopback", "--", TRUE]));
    Launcher {
        name: IMAGE,
        argv,
        then: Vec::new(),
        note: "combined with --image: the rootfs as a tarball, unpacked once into the cache, and an overlay with a tmpfs upper \
               layer over it for each run",
        concurrent: true,
        stdin: None,
    }
}

fn unshare(path: &Path, inputs: &Inputs) -> Launcher {
    let mut argv = vec![text(path)];
    if inputs.rootless {
        argv.extend(args(&["--user", "--map-root-user"]));
    }
    argv.extend(args(&[
        "--fork",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--mount-proc",
        "--root",
    ]));
    argv.push(text(&inputs.rootfs));
    argv.push(TRUE.into());
    Launcher {
        name: "unshare",
        argv,
        then: Vec::new(),
        note: "--root chroots instead of pivoting (the host's mounts stay in the namespace); proc is \
               mounted inside the chroot; no /dev, lo down",
        concurrent: true,
        stdin: None,
    }
}

fn bwrap(path: &Path, inputs: &Inputs) -> Launcher {
    let mut argv = vec![text(path)];
    if inputs.rootless {
        argv.push("--unshare-user".into());
    }
    argv.extend(args(&[
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-ipc",
        "--unshare-net",
        "--bind",
    ]));
    argv.push(text(&inputs.rootfs));
    argv.extend(args(&["/", "--proc", "/proc", "--dev", "/dev", TRUE]));
    Launcher {
        name: "bwrap",
        argv,
        then: Vec::new(),
        note: "pivots into a tmpfs and binds the rootfs there; also /dev (tmpfs, device binds, devpts, \
               shm), lo up, an init that forks the command",
        concurrent: true,
        stdin: None,
    }
}

/// bubblewrap loading combined's default seccomp filter, the same program (`combined seccomp`, written
/// to `filter`), from its standard input: bubblewrap with the one protection combined has by default
/// and it has not.
fn bwrap_filtered(path: &Path, inputs: &Inputs, filter: &Path) -> Launcher {
    let mut launcher = bwrap(path, inputs);
    let at = launcher.argv.len() - 1;
    launcher.argv.splice(at..at, args(&["--seccomp", "0"]));
    launcher.name = BWRAP_FILTERED;
    launcher.note = "bwrap with combined's default seccomp filter (`combined seccomp`), loaded from stdin";
    launcher.stdin = Some(filter.to_owned());
    launcher
}

/// Writes combined's default filter (`combined seccomp`, for the default capabilities) to `filter`.
pub fn write_filter(combined: &Path, filter: &Path) -> anyhow::Result<()> {
    let out = std::fs::File::create(filter).with_context(|| format!("cannot create {}", filter.display()))?;
    let status = std::process::Command::new(combined)
        .arg("seccomp")
        .stdout(out)
        .status()
        .context("cannot run combined seccomp")?;
    anyhow::ensure!(status.success(), "combined seccomp failed ({status})");
    Ok(())
}

/// crun or runc, with an OCI bundle generated for the rootfs; `{n}` in the container id is numbered
/// by the runner for concurrent runs.
fn oci(runtime: &'static str, path: &Path, inputs: &Inputs) -> anyhow::Result<Launcher> {
    let mut launcher = oci_run(runtime, path, inputs)?;
    launcher.note = if runtime == "crun" {
        "an OCI bundle that mounts what combined mounts (/dev, devpts, shm, mqueue, read-only /sys, \
         masked and read-only paths); also creates and removes a cgroup; no init"
    } else {
        "the same OCI bundle; also a cgroup, and runc re-execs itself as `runc init` (Go runtime)"
    };
    Ok(launcher)
}

/// `RUNTIME --root STATE run --bundle B ID`: the bundle written for the rootfs, a state directory of
/// the runtime's own.
fn oci_run(name: &'static str, path: &Path, inputs: &Inputs) -> anyhow::Result<Launcher> {
    let (bundle, state) = oci_dirs(path, inputs)?;
    let mut argv = vec![text(path), "--root".into(), text(&state)];
    argv.extend(args(&["run", "--bundle"]));
    argv.push(text(&bundle));
    argv.push(container_id());
    Ok(Launcher {
        name,
        argv,
        then: Vec::new(),
        note: "combined as an OCI runtime, `run` on the same bundle as crun and runc (no init, as they)",
        concurrent: true,
        stdin: None,
    })
}

/// `create`, `start` and `delete` of one container on the bundle: what an engine asks of the runtime
/// (containerd's shim, podman's conmon), with the container's exit waited for before `delete`.
fn lifecycle(name: &'static str, path: &Path, inputs: &Inputs) -> anyhow::Result<Launcher> {
    let (bundle, state) = oci_dirs(path, inputs)?;
    let runtime = |command: &[&str]| {
        let mut argv = vec![text(path), "--root".into(), text(&state)];
        argv.extend(args(command));
        argv
    };
    let mut create = runtime(&["create", "--bundle"]);
    create.push(text(&bundle));
    create.push(container_id());
    let mut start = runtime(&["start"]);
    start.push(container_id());
    let mut delete = runtime(&["delete"]);
    delete.push(container_id());
    Ok(Launcher {
        name,
        argv: create,
        then: vec![start, delete],
        note: "create, start, the container's exit, delete: the OCI life cycle an engine drives",
        concurrent: false,
        stdin: None,
    })
}

/// A container id unique to this benchmark and, for concurrent runs, to the copy (`{n}`).
fn container_id() -> String {
    format!("bench-{}-{{n}}", std::process::id())
}

/// The OCI bundle (written once) and the state directory of the runtime at `path`.
fn oci_dirs(path: &Path, inputs: &Inputs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let bundle = inputs.work.join("oci-bundle");
    if !bundle.join("config.json").exists() || inputs.rootless != bundle_is_rootless(&bundle) {
        write_bundle(&bundle, &inputs.rootfs, inputs.rootless.then_some(inputs.ids))?;
    }
    let runtime = path
        .file_name()
        .map_or("runtime".into(), |n| n.to_string_lossy().into_owned());
    let state = inputs.state.join(format!("{runtime}-state"));
    std::fs::create_dir_all(&state).with_context(|| format!("cannot create {}", state.display()))?;
    if inputs.rootless {
        let (uid, gid) = inputs.ids;
        std::os::unix::fs::chown(&state, Some(uid), Some(gid))
            .with_context(|| format!("cannot give {} to uid {uid}", state.display()))?;
    }
    Ok((bundle, state))
}

fn bundle_is_rootless(bundle: &Path) -> bool {
    std::fs::read_to_string(bundle.join("config.json")).is_ok_and(|text| text.contains("uidMappings"))
}

/// `config.json` for the rootfs: what `runc spec` generates, trimmed to the work `combined` does;
/// rootless (`runc spec --rootless`), a user namespace mapping `ids` to root, as combined's default.
pub fn bundle_config(rootfs: &Path, rootless: Option<(u32, u32)>) -> serde_json::Value {
    // The very lists combined masks and write-protects (the mount chapter's), so both do the same work.
    let masked = mnt_demo::rootfs::DEFAULT_MASKED;
    let readonly = mnt_demo::rootfs::DEFAULT_READONLY;
    let mount = |dest: &str, kind: &str, options: &[&str]| json!({ "destination": dest, "type": kind, "source": kind, "options": options });
    let mut namespaces = vec![
        json!({ "type": "pid" }),
        json!({ "type": "network" }),
        json!({ "type": "ipc" }),
        json!({ "type": "uts" }),
        json!({ "type": "mount" }),
    ];
    let mut linux = json!({ "maskedPaths": masked, "readonlyPaths": readonly });
    if let Some((uid, gid)) = rootless {
        namespaces.push(json!({ "type": "user" }));
        linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    }
    linux["namespaces"] = json!(namespaces);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [TRUE],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": { "path": text(rootfs), "readonly": false },
        "hostname": "container",
        "mounts": [
            mount("/proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            mount("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        ],
        "linux": linux
    })
}

pub fn write_bundle(bundle: &Path, rootfs: &Path, rootless: Option<(u32, u32)>) -> anyhow::Result<()> {
    std::fs::create_dir_all(bundle).with_context(|| format!("cannot create {}", bundle.display()))?;
    let config = serde_json::to_string_pretty(&bundle_config(rootfs, rootless))?;
    std::fs::write(bundle.join("config.json"), config).context("cannot write the OCI config.json")
}

/// The floor program with every namespace of the comparison (user too when rootless).
fn floor(inputs: &Inputs) -> Launcher {
    let mut argv = vec![text(&inputs.floor), "--ns".into()];
    argv.push(
        if inputs.rootless {
            "user,pid,mnt,uts,ipc,net"
        } else {
            "pid,mnt,uts,ipc,net"
        }
        .into(),
    );
    argv.push("--rootfs".into());
    argv.push(text(&inputs.rootfs));
    argv.extend(args(&["--", TRUE]));
    Launcher {
        name: FLOOR,
        argv,
        then: Vec::new(),
        note: "the kernel floor: one clone, private mounts, bind, proc, pivot_root, detach, exec, wait",
        concurrent: true,
        stdin: None,
    }
}

/// The floor doing, besides, the kernel work of combined's default protections (`bench-floor
/// --protect`): a session and a keyring of its own, /dev, mqueue, read-only /sys, the same masked and
/// read-only paths, `lo` up, an init, capabilities dropped, no_new_privs and combined's own seccomp
/// filter. Its difference from the floor is what those protections cost any launcher; combined's
/// difference from it, combined's own work.
fn floor_protected(inputs: &Inputs, filter: &Path) -> Launcher {
    let mut launcher = floor(inputs);
    let at = launcher.argv.len() - 2;
    let mut protections = args(&["--protect", "--seccomp"]);
    protections.push(text(filter));
    for path in mnt_demo::rootfs::DEFAULT_MASKED {
        protections.extend(args(&["--mask", path]));
    }
    for path in mnt_demo::rootfs::DEFAULT_READONLY {
        protections.extend(args(&["--read-only", path]));
    }
    launcher.argv.splice(at..at, protections);
    launcher.name = FLOOR_PROTECTED;
    launcher.note = "the floor plus the kernel work of combined's defaults: a session, a keyring, /dev \
                     (tmpfs, nodes, devpts, shm), mqueue, read-only /sys, the masked and read-only paths, \
                     lo up, an init, capabilities dropped, combined's seccomp filter";
    launcher
}

/// The floor with one namespace kind (or none), running the host's `true`: what each kind costs.
pub fn floor_with(inputs: &Inputs, namespaces: &str) -> Vec<String> {
    vec![
        text(&inputs.floor),
        "--ns".into(),
        namespaces.into(),
        "--".into(),
        which("true").map_or_else(|_| "/bin/true".into(), |p| text(&p)),
    ]
}

/// The namespace kinds measured one at a time, with the label the table gives them.
pub fn namespace_kinds(rootless: bool) -> Vec<&'static str> {
    let mut kinds = vec!["none", "pid", "mnt", "uts", "ipc", "net"];
    kinds.push("user");
    if rootless {
        // Unprivileged, every other kind needs the user namespace with it.
        kinds = vec!["user", "user,pid", "user,mnt", "user,uts", "user,ipc", "user,net"];
    }
    kinds
}

/// Looks a program up in PATH.
pub fn which(program: &str) -> Result<PathBuf, String> {
    crate::util::which(program)
        .ok_or_else(|| format!("{program} is not installed (cargo xtask bench --install, as root)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(rootless: bool) -> Inputs {
        Inputs {
            combined: "/t/combined".into(),
            floor: "/t/bench-floor".into(),
            rootfs: "/r".into(),
            image: "/i.tar".into(),
            work: std::env::temp_dir(),
            rootless,
            ids: (0, 0),
            baseline: Vec::new(),
            state: std::env::temp_dir(),
        }
    }

    /// Each variant differs from combined's command line by the defaults it turns off, and nothing
    /// else: its difference from combined's row is what those defaults cost.
    #[test]
    fn the_variants_differ_from_combined_only_by_the_defaults_they_turn_off() {
        let got: Vec<String> = without_defaults(&inputs(false))
            .iter()
            .map(|l| l.argv.join(" "))
            .collect();
        let base = "/t/combined run --rootfs /r --net";
        assert_eq!(
            got,
            [
                format!("{base} loopback --security-opt seccomp=unconfined -- /bin/true"),
                format!("{base} loopback --no-init -- /bin/true"),
                format!("{base} none -- /bin/true"),
                format!("{base} none --security-opt seccomp=unconfined --no-init -- /bin/true"),
            ]
        );
    }

    #[test]
    fn every_launcher_gets_the_same_namespaces_and_rootfs() {
        assert_eq!(
            combined(&inputs(false)).argv.join(" "),
            "/t/combined run --rootfs /r --net loopback -- /bin/true"
        );
        assert_eq!(
            unshare(Path::new("/u"), &inputs(false)).argv.join(" "),
            "/u --fork --pid --mount --uts --ipc --net --mount-proc --root /r /bin/true"
        );
        assert!(
            unshare(Path::new("/u"), &inputs(true))
                .argv
                .join(" ")
                .starts_with("/u --user --map-root-user ")
        );
        assert_eq!(
            bwrap(Path::new("/b"), &inputs(false)).argv.join(" "),
            "/b --unshare-pid --unshare-uts --unshare-ipc --unshare-net --bind /r / --proc /proc --dev /dev /bin/true"
        );
        assert_eq!(
            floor(&inputs(true)).argv.join(" "),
            "/t/bench-floor --ns user,pid,mnt,uts,ipc,net --rootfs /r -- /bin/true"
        );
        let protected = floor_protected(&inputs(false), Path::new("/f.bpf"))
            .argv
            .join(" ");
        assert!(
            protected.starts_with(
                "/t/bench-floor --ns pid,mnt,uts,ipc,net --rootfs /r --protect --seccomp /f.bpf --mask /proc/acpi "
            ),
            "{protected}"
        );
        assert!(
            protected.ends_with("--read-only /proc/sysrq-trigger -- /bin/true"),
            "{protected}"
        );
    }

    #[test]
    fn the_oci_bundle_asks_for_the_same_namespaces() {
        let config = bundle_config(Path::new("/r"), None);
        let kinds: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["pid", "network", "ipc", "uts", "mount"]);
        assert_eq!(config["root"]["path"], "/r");
        assert_eq!(config["process"]["args"], json!(["/bin/true"]));
        assert_eq!(config["process"]["terminal"], false);
        let rootless = bundle_config(Path::new("/r"), Some((65534, 65534)));
        assert_eq!(rootless["linux"]["namespaces"][5]["type"], "user");
        assert_eq!(rootless["linux"]["uidMappings"][0]["hostID"], 65534);
    }
}
