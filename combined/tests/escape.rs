//! Escape tests: each one a container trying a known way out and failing, with the errno or the observation
//! that proves why. The attempts are made by `tests/probes/probe.rs` (the `combined-probe` test binary), run
//! inside `combined run` from a read-only volume; each test asserts on its `key=value` report and checks that
//! the host's mount table and interfaces are as they were.
//!
//! The ways out: chroot(2) and /proc/<pid>/root (proc(5)), open_by_handle_at(2) ("shocker"), host PIDs
//! and interfaces (pid_namespaces(7), network_namespaces(7)), block devices and mount(2), /proc/sys and
//! /sys (sysfs(5)), init_module(2), setuid and file capabilities under no_new_privs (capabilities(7),
//! prctl(2)), mknod(2) and nodev, masked paths, /proc/1/exe (CVE-2019-5736), and leaked descriptors
//! (CVE-2024-21626, pidfd_getfd(2)).
//!
//! Every test runs as root and, through a user namespace, as an ordinary user (CI runs the binary as
//! uid 65534 with `NS_REQUIRE_PRIV=userns`); the few that need real root say so.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use caps::Capability;

mod common;
use nskit::testing::{self, require_namespaces, require_root};
use nskit::userns::is_root;

// ---- running the probe --------------------------------------------------------------------------

/// The probe (`tests/probes/probe.rs`), a binary cargo builds for these tests.
const PROBE: &str = env!("CARGO_BIN_EXE_combined-probe");

/// One `combined run`: its exit status, its output, and the probe's report.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: BTreeMap<String, String>,
}

impl Run {
    /// The value the probe reported for `key`; a missing key fails the test.
    fn get(&self, key: &str) -> &str {
        self.report
            .get(key)
            .unwrap_or_else(|| panic!("the probe reported no {key:?}: {self:#?}"))
    }

    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.get(key), want, "{key}: {self:#?}");
    }

    fn succeeded(&self) -> &Run {
        assert_eq!(self.code, Some(0), "combined run failed: {self:#?}");
        self
    }
}

/// Runs `combined run <options> -v <the probe>:/probe/probe:ro -- /probe/probe <args>`.
fn probe(options: &[&str], args: &[&str]) -> Run {
    run(probe_command(options, args))
}

/// The command [`probe`] runs, for a test that starts it otherwise.
fn probe_command(options: &[&str], args: &[&str]) -> Command {
    let volume = format!("{PROBE}:/probe/probe:ro");
    let mut command = launcher();
    command
        .arg("run")
        .args(options)
        .args(["--volume", &volume, "--", "/probe/probe"])
        .args(args);
    command
}

/// The launcher, with its caches (compiled seccomp filters) in cargo's scratch directory, not the
/// home's, one per user as the other tests keep them (common/mod.rs, `cache`), and a variable of its
/// own, which nothing in the container should show.
fn launcher() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_combined"));
    let cache = format!("{}/cache-{}", env!("CARGO_TARGET_TMPDIR"), nix::unistd::geteuid());
    command
        .env("XDG_CACHE_HOME", cache)
        .env("COMBINED_TEST_MARK", "the-caller-s");
    command
}

fn run(mut command: Command) -> Run {
    let output = command.output().expect("spawn combined");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Run {
        code: output.status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    }
}

// ---- the host, before and after ---------------------------------------------------------------------

/// The host mounts a container could leak (the host view is assembled on /tmp; /proc, /sys and /dev
/// get mounted and masked), narrowed so that other programs' mounts elsewhere do not count.
fn host_mounts() -> BTreeSet<String> {
    testing::mount_table()
        .lines()
        .filter(|line| {
            let point = line.split(' ').nth(4).unwrap_or("");
            ["/tmp", "/var/tmp", "/proc", "/sys", "/dev", "/probe"]
                .iter()
                .any(|p| point.starts_with(p))
                || point == PROBE
        })
        .map(str::to_owned)
        .collect()
}

/// The host interfaces a container could leave: `--net veth` names its host end `cb<pid>h`.
fn host_veths() -> BTreeSet<String> {
    testing::interfaces()
        .into_iter()
        .filter(|name| name.starts_with("cb"))
        .collect()
}

/// Runs `attempt` and asserts that the host's mounts and veths are as they were.
fn host_unchanged<T>(attempt: impl FnOnce() -> T) -> T {
    let _guard = testing::exclusive();
    let (mounts, veths) = (host_mounts(), host_veths());
    let result = attempt();
    assert_eq!(host_mounts(), mounts, "the host's mount table changed");
    let left: BTreeSet<_> = host_veths().difference(&veths).cloned().collect();
    assert!(left.is_empty(), "veths left on the host: {left:?}");
    result
}

/// `<dev>:<ino>` of a host path, as the probe prints it.
fn identity(path: &str) -> String {
    let meta = fs::metadata(path).expect("stat");
    format!("{}:{}", meta.dev(), meta.ino())
}

/// A scratch directory on the host, removed on drop, that uid 65534 can use too.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("combined-escape-{name}-"))
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir()
            .expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A descriptor of `dir` without FD_CLOEXEC, numbered 100 or above: any program this process spawns
/// while it is open inherits it, as runc leaked one (CVE-2024-21626).
fn leak_dir(dir: &str) -> OwnedFd {
    let file = fs::File::open(dir).expect("open a host directory");
    let raw = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD(100)).expect("F_DUPFD");
    // SAFETY: F_DUPFD just returned `raw`, a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// The mask of `/proc/self/status` (`CapEff:` and friends) for a set of capabilities.
fn cap_mask(caps: &[Capability]) -> String {
    let bits = caps.iter().fold(0u64, |acc, cap| acc | cap.bitmask());
    format!("{bits:016x}")
}

// ---- 1. the host's root -----------------------------------------------------------------------------

#[test]
fn chroot_and_proc_root_lead_back_into_the_container_only() {
    if !require_namespaces("chroot_and_proc_root_lead_back_into_the_container_only") {
        return;
    }
    let host_root = identity("/");
    let me = std::process::id().to_string();
    let run = host_unchanged(|| probe(&[], &["root", &me]));
    run.succeeded();
    let root = run.get("container_root").to_owned();
    assert_ne!(root, host_root, "the container's / is the host's");
    run.expect("usr_parent", &root);
    run.expect("proc_self_root", &root);
    run.expect("proc_self_root_parent", &root);
    // init is not dumpable: its root link is as closed as its exe link.
    run.expect("proc_1_root", "err:EACCES");
    run.expect("proc_host_pid_root", "err:ENOENT");
    // Without CAP_DAC_READ_SEARCH no file handle opens (the 2014 "shocker" escape).
    run.expect("open_by_handle_at", "err:EPERM");
    // CAP_SYS_CHROOT is kept, so the classic escape is really tried, and ends at the container's /:
    // the old root was detached after pivot_root, so ".." has nowhere else to go.
    run.expect("chroot", "ok");
    run.expect("chroot_dot", "ok");
    run.expect("escaped_root", &root);
    let entries: BTreeSet<&str> = run.get("escaped_root_entries").split(',').collect();
    assert!(
        entries.contains("probe") && entries.contains("proc"),
        "{entries:?}"
    );
    assert!(
        !entries.contains("work"),
        "a host-only directory is visible: {entries:?}"
    );
}

// ---- 2. host processes ------------------------------------------------------------------------------

#[test]
fn host_processes_are_invisible() {
    if !require_namespaces("host_processes_are_invisible") {
        return;
    }
    let me = std::process::id().to_string();
    let run = host_unchanged(|| probe(&[], &["pids", &me]));
    run.succeeded();
    run.expect("pids", "1,2");
    run.expect("self", "2");
    run.expect("comm_1", "init");
    run.expect("proc_host_pid", "err:ENOENT");
    run.expect("kill_host_pid", "err:ESRCH");

    let alone = probe(&["--no-init"], &["pids", &me]);
    alone.succeeded();
    alone.expect("pids", "1");
    alone.expect("kill_host_pid", "err:ESRCH");
}

// ---- 3. host interfaces -----------------------------------------------------------------------------

#[test]
fn host_interfaces_are_invisible() {
    if !require_namespaces("host_interfaces_are_invisible") {
        return;
    }
    for net in ["loopback", "none"] {
        let run = host_unchanged(|| probe(&["--net", net], &["ifaces"]));
        run.succeeded();
        run.expect("sys_class_net", "lo");
        run.expect("proc_net_dev", "lo");
    }
}

#[test]
fn veth_shows_only_its_own_end() {
    if !require_root("veth_shows_only_its_own_end") {
        return;
    }
    let run = host_unchanged(|| probe(&["--net", "veth"], &["ifaces"]));
    run.succeeded();
    let names: Vec<&str> = run.get("sys_class_net").split(',').collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("cb") && names[0].ends_with('c'), "{names:?}");
    assert_eq!(names[1], "lo");
    run.expect("proc_net_dev", run.get("sys_class_net"));
}

// ---- 4. the host's devices --------------------------------------------------------------------------

/// The host's root block device from /proc/self/mountinfo: `(source, major, minor)`. When `/` is not
/// on a block device (an overlay in a container), the first mount that is.
fn host_root_device() -> (String, u64, u64) {
    let table = testing::mount_table();
    let parse = |line: &str| {
        let fields: Vec<&str> = line.split(' ').collect();
        let (major, minor) = fields[2].split_once(':')?;
        let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
        let dash = fields.iter().position(|f| *f == "-")?;
        let source = fields.get(dash + 2)?;
        (major != 0 && source.starts_with("/dev/"))
            .then(|| ((*source).to_owned(), major, minor, fields[4] == "/"))
    };
    let devices: Vec<_> = table.lines().filter_map(parse).collect();
    devices
        .iter()
        .find(|d| d.3)
        .or(devices.first())
        .map(|d| (d.0.clone(), d.1, d.2))
        .unwrap_or(("/dev/sda".into(), 8, 0))
}

#[test]
fn host_devices_cannot_be_reached_or_mounted() {
    if !require_namespaces("host_devices_cannot_be_reached_or_mounted") {
        return;
    }
    let (source, major, minor) = host_root_device();
    let run = host_unchanged(|| probe(&[], &["devices", &source, &major.to_string(), &minor.to_string()]));
    run.succeeded();
    run.expect("node", "err:ENOENT");
    run.expect("block_devices", "");
    // No CAP_MKNOD, no CAP_SYS_ADMIN: refused before the kernel looks at anything else.
    for key in [
        "mknod_dev",
        "mknod_tmp",
        "mount_ext4",
        "mount_xfs",
        "mount_btrfs",
        "mount_tmpfs",
        "mount_proc",
        "mount_bind",
        "remount_sys_rw",
        "umount_proc_keys",
    ] {
        run.expect(key, "err:EPERM");
    }
}

// ---- 5. kernel settings -----------------------------------------------------------------------------

#[test]
fn proc_sys_and_sys_are_read_only() {
    if !require_namespaces("proc_sys_and_sys_are_read_only") {
        return;
    }
    let run = host_unchanged(|| probe(&[], &["write"]));
    run.succeeded();
    // As root the permission check passes and the read-only mount refuses. Rootless the permission
    // check refuses first: the files belong to the host's root, and the network namespace's own need
    // CAP_NET_ADMIN, which the command does not keep. sysfs is checked against the mount first.
    let proc_sys = if is_root() { "err:EROFS" } else { "err:EACCES" };
    run.expect("write:/proc/sys/kernel/hostname", proc_sys);
    run.expect("write:/proc/sys/vm/drop_caches", proc_sys);
    run.expect("write:/proc/sys/net/ipv4/ip_forward", proc_sys);
    run.expect("write:/sys/class/net/lo/mtu", "err:EROFS");
    run.expect("mkdir:/sys/escape", "err:EROFS");
    for optional in ["/proc/sysrq-trigger", "/sys/kernel/uevent_helper"] {
        let want = if Path::new(optional).exists() {
            proc_sys
        } else {
            "err:ENOENT"
        };
        run.expect(&format!("write:{optional}"), want);
    }
}

// ---- 6. kernel modules ------------------------------------------------------------------------------

#[test]
fn kernel_modules_cannot_be_loaded() {
    if !require_namespaces("kernel_modules_cannot_be_loaded") {
        return;
    }
    // The seccomp filter refuses the calls first; without it, the kernel does, for want of
    // CAP_SYS_MODULE (a kernel built without module support, with no /proc/modules, has no such
    // system calls at all).
    let run = host_unchanged(|| probe(&[], &["module"]));
    run.succeeded();
    run.expect("init_module", "err:EPERM");
    run.expect("finit_module", "err:EPERM");
    let unfiltered = host_unchanged(|| probe(&["--security-opt", "seccomp=unconfined"], &["module"]));
    unfiltered.succeeded();
    let want = if Path::new("/proc/modules").exists() {
        "err:EPERM"
    } else {
        "err:ENOSYS"
    };
    unfiltered.expect("init_module", want);
    unfiltered.expect("finit_module", want);
    let bounding = u64::from_str_radix(unfiltered.get("CapBnd"), 16).expect("CapBnd");
    assert_eq!(
        bounding & Capability::CAP_SYS_MODULE.bitmask(),
        0,
        "{unfiltered:#?}"
    );
}

// ---- 7. dropped capabilities ------------------------------------------------------------------------

#[test]
fn dropped_capabilities_cannot_be_regained() {
    if !require_namespaces("dropped_capabilities_cannot_be_regained") {
        return;
    }
    let run = host_unchanged(|| probe(&[], &["regain"]));
    run.succeeded();
    for key in [
        "capset_effective",
        "capset_permitted",
        "capset_inheritable",
        "ambient_raise",
    ] {
        run.expect(key, "err:EPERM");
    }
    run.expect("clear_no_new_privs", "err:EINVAL");
    let kept = cap_mask(&combined::caps::DEFAULT_CAPS);
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        run.expect(set, &kept);
    }
    run.expect("CapInh", &cap_mask(&[]));
    run.expect("CapAmb", &cap_mask(&[]));
    run.expect("NoNewPrivs", "1");
}

/// Writes a `security.capability` xattr (VFS_CAP_REVISION_2, effective bit set) granting `cap`.
fn set_file_capability(path: &Path, cap: Capability) {
    let bits = cap.bitmask();
    let mut value = Vec::new();
    for word in [0x0200_0001u32, bits as u32, 0, (bits >> 32) as u32, 0] {
        value.extend_from_slice(&word.to_le_bytes());
    }
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: both strings are NUL-terminated and `value` holds `value.len()` bytes, all alive across
    // the call, which only reads them.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

#[test]
fn setuid_and_file_capabilities_raise_nothing() {
    if !require_root("setuid_and_file_capabilities_raise_nothing") {
        return;
    }
    // Copies of the probe on a volume, which (unlike /usr and /tmp in the container) is not nosuid:
    // only no_new_privs and the bounding set stand in the way.
    let scratch = Scratch::new("suid");
    let probe_bin = PathBuf::from(PROBE);
    let copy = |name: &str, mode: u32| {
        let path = scratch.path().join(name);
        fs::copy(&probe_bin, &path).expect("copy the probe");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    };
    copy("setuid-root", 0o4755);
    set_file_capability(&copy("fcap-net-raw", 0o755), Capability::CAP_NET_RAW);
    set_file_capability(&copy("fcap-sys-admin", 0o755), Capability::CAP_SYS_ADMIN);
    let volume = format!("{}:/esc", scratch.path().display());
    let become_ =
        |file: &str| host_unchanged(|| probe(&["--volume", &volume], &["become", "65534", file, "status"]));

    // A setuid-root binary run by uid 65534: no_new_privs keeps the euid, and no capability comes.
    let suid = become_("/esc/setuid-root");
    suid.succeeded();
    suid.expect("setuid", "ok");
    suid.expect("euid", "65534");
    suid.expect("CapEff", &cap_mask(&[]));
    suid.expect("CapPrm", &cap_mask(&[]));
    suid.expect("NoNewPrivs", "1");

    // A file capability inside the bounding set: ignored under no_new_privs.
    let raw = become_("/esc/fcap-net-raw");
    raw.succeeded();
    raw.expect("CapEff", &cap_mask(&[]));
    raw.expect("CapPrm", &cap_mask(&[]));

    // One outside it: the kernel refuses to run a program it cannot give what it demands.
    let admin = become_("/esc/fcap-sys-admin");
    admin.succeeded();
    admin.expect("execve", "err:EPERM");
}

// ---- 8. device nodes --------------------------------------------------------------------------------

#[test]
fn device_nodes_cannot_be_made() {
    if !require_namespaces("device_nodes_cannot_be_made") {
        return;
    }
    let run = host_unchanged(|| probe(&[], &["mknod", "/dev", "/tmp", "/", "/dev/shm"]));
    run.succeeded();
    for dir in ["/dev", "/tmp", "/", "/dev/shm"] {
        run.expect(&format!("mknod:{dir}"), "err:EPERM");
        run.expect(&format!("open:{dir}"), "err:ENOENT");
    }
    // Rootless, CAP_MKNOD in a user namespace is worth nothing: mknod checks the initial one. (/dev
    // is read-only whenever MKNOD is kept, so there the mount refuses first.)
    if !is_root() {
        let added = host_unchanged(|| probe(&["--cap-add", "MKNOD"], &["mknod", "/dev", "/tmp"]));
        added.succeeded();
        added.expect("mknod:/dev", "err:EROFS");
        added.expect("mknod:/tmp", "err:EPERM");
        added.expect("open:/tmp", "err:ENOENT");
    }
}

#[test]
fn a_node_made_with_cap_mknod_does_not_open() {
    if !require_root("a_node_made_with_cap_mknod_does_not_open") {
        return;
    }
    // combined has no device cgroup: with MKNOD it makes /dev read-only, and every other writable
    // mount (the root tmpfs, /tmp, /dev/shm, volumes) is nodev, where a node opens with EACCES.
    let scratch = Scratch::new("mknod");
    let volume = format!("{}:/vol", scratch.path().display());
    let dirs = ["/dev", "/tmp", "/", "/dev/shm", "/vol"];
    let mut args = vec!["mknod"];
    args.extend(dirs);
    let run = host_unchanged(|| probe(&["--cap-add", "MKNOD", "--volume", &volume], &args));
    run.succeeded();
    run.expect("mknod:/dev", "err:EROFS");
    for dir in &dirs[1..] {
        run.expect(&format!("mknod:{dir}"), "ok");
        run.expect(&format!("open:{dir}"), "err:EACCES");
    }
}

// ---- 9. masked paths --------------------------------------------------------------------------------

#[test]
fn masked_paths_are_empty() {
    if !require_namespaces("masked_paths_are_empty") {
        return;
    }
    let mut args = vec!["masked"];
    args.extend(mnt_demo::rootfs::DEFAULT_MASKED);
    let run = host_unchanged(|| probe(&[], &args));
    run.succeeded();
    for path in mnt_demo::rootfs::DEFAULT_MASKED {
        // What the host's kernel has is covered: a file by /dev/null (1:3, reads nothing), a directory
        // by an empty tmpfs. What it lacks is absent inside too.
        let want = match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => "dir:0",
            Ok(_) => "chr1:3:0",
            Err(_) => "err:ENOENT",
        };
        run.expect(&format!("masked:{path}"), want);
    }
}

// ---- 10. init's binary ------------------------------------------------------------------------------

#[test]
fn init_binary_is_out_of_reach() {
    if !require_namespaces("init_binary_is_out_of_reach") {
        return;
    }
    let run = host_unchanged(|| probe(&[], &["init", "0"]));
    run.succeeded();
    run.expect("self", "2");
    run.expect("comm_1", "init");
    // init is the launcher's binary, forked and never exec'd: non-dumpable, so nothing of it opens.
    for key in ["open_exe", "readlink_exe", "open_fd", "open_mem"] {
        run.expect(key, "err:EACCES");
    }
    run.expect("pidfd_getfd", "err:EPERM");

    // Without init, PID 1 is the command itself: there is no launcher binary in the container.
    let alone = host_unchanged(|| probe(&["--no-init"], &["init", "0"]));
    alone.succeeded();
    alone.expect("self", "1");
    alone.expect("comm_1", "probe");
    alone.expect("readlink_exe", "/probe/probe");
}

// ANCHOR: sealed_test
/// With CAP_SYS_PTRACE a root container may open /proc/1/exe; what it opens is the launcher's sealed
/// in-memory copy, not the host's binary, and it cannot be written (CVE-2019-5736 replaced runc on
/// the host this way). Rootless, init's memory belongs to the host's user namespace: nothing opens.
/// (Without CAP_SYS_PTRACE, `init_binary_is_out_of_reach`: nothing opens either, and the launcher
/// spares itself the copy.)
#[test]
fn init_binary_is_a_sealed_copy_even_with_sys_ptrace() {
    if !require_namespaces("init_binary_is_a_sealed_copy_even_with_sys_ptrace") {
        return;
    }
    let host_binary = identity(env!("CARGO_BIN_EXE_combined"));
    // Every capability but those refused without a user namespace (`a_capability_that_is_the_host_s_needs_a_user_namespace`).
    let host_wide = combined::caps::HOST_ROOT_CAPS.map(|(cap, _)| cap.to_string());
    let mut all = vec!["--cap-add", "ALL"];
    for cap in &host_wide {
        all.extend(["--cap-drop", cap.as_str()]);
    }
    for (caps, options) in [
        ("SYS_PTRACE", &["--cap-add", "SYS_PTRACE"][..]),
        ("ALL", &all[..]),
    ] {
        let run = host_unchanged(|| probe(options, &["init", "0"]));
        run.succeeded();
        if is_root() {
            // Reachable, so init is under the seccomp filter too (mode 2): nothing can make it run
            // what the filter refuses.
            run.expect("init_seccomp", "2");
            // And holds no capability the command has not: whatever the command could make it do
            // with ptrace, it could do itself (before, init kept all of root's, CAP_MKNOD among them,
            // and /dev is writable and not nodev when the command lacks CAP_MKNOD).
            assert_eq!(run.get("init_caps"), run.get("own_caps"), "{caps}: {run:#?}");
            // Nor the launcher's command line (host paths) or environment (the caller's variables,
            // the test's mark among them): init blanks both.
            run.expect("cmdline_1", "init");
            run.expect("environ_1_has_mark", "false");
            run.expect("open_exe", "ok");
            run.expect("readlink_exe", "/memfd:combined (deleted)");
            assert_ne!(run.get("exe_identity"), host_binary, "{caps}: {run:#?}");
            assert!(run.get("write_exe").starts_with("err:"), "{caps}: {run:#?}");
        } else {
            run.expect("open_exe", "err:EACCES");
            run.expect("write_exe", "err:EACCES");
        }
    }
}
// ANCHOR_END: sealed_test

/// Attack, refused: a root container granted CAP_SYS_ADMIN mounts a cgroup v1 hierarchy and sets its
/// release_agent, which the host's kernel runs as root when the container's cgroup empties; one granted
/// CAP_DAC_READ_SEARCH opens any host file with open_by_handle_at(2) ("shocker"); one granted
/// CAP_SYSLOG reads the kernel's real addresses (an attacker's pass found it accepted). Without a user
/// namespace these, and the other host-wide capabilities (caps.rs, `HOST_ROOT_CAPS`), are refused
/// before anything exists; with `--userns` they are the container's own, and the mount fails.
#[test]
fn a_capability_that_is_the_host_s_needs_a_user_namespace() {
    if !require_namespaces("a_capability_that_is_the_host_s_needs_a_user_namespace") {
        return;
    }
    let agent = "/sys/fs/cgroup/pids/release_agent";
    let before = fs::read_to_string(agent).ok();
    // The release_agent, and (CAP_SYSLOG) the kernel's real addresses: zeros to anyone without it.
    let attack = "mkdir -p /cg && mount -t cgroup -o pids cgroup /cg && echo /payload > /cg/release_agent \
                  && echo reached; awk 'NR == 1 { exit $1 == \"0000000000000000\" }' /proc/kallsyms \
                  && echo reached";
    let launch = |options: &[&str]| {
        let mut command = launcher();
        command.arg("run").args(options).args(["--", "sh", "-c", attack]);
        let out = command.output().expect("run the launcher");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let host_wide = combined::caps::HOST_ROOT_CAPS.map(|(cap, _)| cap.to_string());
    for cap in host_wide.iter().map(String::as_str).chain(["ALL"]) {
        let (code, stdout, stderr) = launch(&["--cap-add", cap]);
        if is_root() {
            assert_eq!(code, Some(125), "{cap}: {stdout}{stderr}");
            assert!(stderr.contains("add --userns"), "{cap}: {stderr}");
        }
        assert!(!stdout.contains("reached"), "{cap}: {stdout}{stderr}");
    }
    // In a user namespace of its own, CAP_SYS_ADMIN is the container's: no v1 hierarchy mounts; and
    // CAP_SYSLOG is the container's: the addresses stay zeros.
    let (_, stdout, stderr) = launch(&["--userns", "--cap-add", "SYS_ADMIN", "--cap-add", "SYSLOG"]);
    assert!(!stdout.contains("reached"), "{stdout}{stderr}");
    assert_eq!(
        fs::read_to_string(agent).ok(),
        before,
        "the host's release_agent changed"
    );
}

/// Attack: a command keeping CAP_SYS_ADMIN in a user namespace (rootless, or root's `--userns`) loosens
/// the launcher's mounts: remounts a read-only volume read-write and writes the host's directory
/// through it, unmounts a mask over /proc, remounts `--read-only`'s root read-write. The mounts were
/// made in the container's own user namespace, where the kernel locks nothing (an attacker's pass did
/// all three). Now such a command runs in a user namespace nested in the container's, with a locked
/// copy of the mount namespace; it can still mount a tmpfs of its own, and, as the book says, no
/// longer administer the hostname, which the container's user namespace owns.
#[test]
fn sys_admin_in_a_user_namespace_cannot_loosen_the_launcher_s_mounts() {
    let test = "sys_admin_in_a_user_namespace_cannot_loosen_the_launcher_s_mounts";
    if !require_namespaces(test) || !common::have_busybox(test) {
        return;
    }
    let scratch = Scratch::new("locked");
    let (rootfs, volume) = (scratch.path().join("rootfs"), scratch.path().join("volume"));
    common::populate(&rootfs);
    fs::create_dir_all(rootfs.join("vol")).unwrap();
    fs::create_dir_all(&volume).unwrap();
    // Writable by whatever id the container's root is on the host: only the mount says read-only.
    fs::set_permissions(&volume, fs::Permissions::from_mode(0o777)).unwrap();
    let attack = "mount -o remount,rw,bind /vol 2>/dev/null; echo x 2>/dev/null > /vol/written && echo wrote-volume; \
                  umount /proc/interrupts 2>/dev/null; [ -n \"$(head -c 1 /proc/interrupts)\" ] && echo unmasked; \
                  mount -o remount,rw,bind / 2>/dev/null; touch /written 2>/dev/null && echo wrote-root; \
                  mount -t tmpfs none /mnt && touch /mnt/own && echo own-tmpfs; \
                  hostname renamed 2>/dev/null && echo renamed-host; true";
    let mut command = launcher();
    command.args(["run", "--read-only", "--cap-add", "SYS_ADMIN"]);
    if is_root() {
        command.arg("--userns");
    }
    command
        .arg("--volume")
        .arg(format!("{}:/vol:ro", volume.display()))
        .arg("--rootfs")
        .arg(&rootfs)
        .args(["--", "sh", "-c", attack]);
    let attempt = host_unchanged(|| run(command));
    assert_eq!(attempt.code, Some(0), "{attempt:#?}");
    assert_eq!(attempt.stdout, "own-tmpfs\n", "{attempt:#?}");
    assert!(
        !volume.join("written").exists(),
        "the read-only volume was written"
    );
}

// ---- 11. leaked descriptors -------------------------------------------------------------------------

#[test]
fn leaked_descriptors_do_not_reach_the_command() {
    if !require_namespaces("leaked_descriptors_do_not_reach_the_command") {
        return;
    }
    let leaked = leak_dir("/");
    let run = host_unchanged(|| probe(&[], &["fds"]));
    run.succeeded();
    run.expect("fds", "0,1,2");

    // Nor can the working directory be one (runc's CVE-2024-21626 was `cwd: /proc/self/fd/7`).
    let workdir = format!("/proc/self/fd/{}", leaked.as_raw_fd());
    let refused = host_unchanged(|| probe(&["--workdir", &workdir], &["fds"]));
    drop(leaked);
    assert_eq!(refused.code, Some(125), "{refused:#?}");
    assert!(refused.stdout.is_empty(), "the command ran: {refused:#?}");
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:#?}");
    assert!(
        refused.stderr.starts_with("combined: ") && refused.stderr.contains("working directory"),
        "{refused:#?}"
    );
}

#[test]
fn a_leaked_descriptor_is_not_in_init_even_with_sys_ptrace() {
    if !require_namespaces("a_leaked_descriptor_is_not_in_init_even_with_sys_ptrace") {
        return;
    }
    // With CAP_SYS_PTRACE, init's non-dumpability no longer hides its descriptors from a root
    // container: so init must hold none of the launcher's inherited ones.
    let leaked = leak_dir("/");
    let fd = leaked.as_raw_fd().to_string();
    let run = host_unchanged(|| probe(&["--cap-add", "SYS_PTRACE"], &["init", &fd]));
    drop(leaked);
    run.succeeded();
    if is_root() {
        run.expect("open_fd", "err:ENOENT");
        run.expect("pidfd_getfd", "err:EBADF");
    } else {
        // Rootless, init still belongs to the host's user namespace: no ptrace access at all.
        run.expect("open_fd", "err:EACCES");
        run.expect("pidfd_getfd", "err:EPERM");
    }
}

// ---- 13. keyrings -----------------------------------------------------------------------------------

/// A `user` key the test adds on the host side, in one of its keyrings; invalidated on drop.
struct HostKey(libc::c_long);

impl HostKey {
    fn add(keyring: libc::c_int) -> HostKey {
        let (kind, name, payload) = (c"user", c"combined-escape-test", b"host-secret");
        // SAFETY: type and description are NUL-terminated strings that outlive the call; the payload
        // pointer and length describe a live byte array.
        let id = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                kind.as_ptr(),
                name.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                libc::c_long::from(keyring),
            )
        };
        assert!(id > 0, "add_key: {}", std::io::Error::last_os_error());
        HostKey(id)
    }
}

impl Drop for HostKey {
    fn drop(&mut self) {
        // SAFETY: KEYCTL_INVALIDATE takes a key id and no pointer.
        unsafe { libc::syscall(libc::SYS_keyctl, 21 as libc::c_long, self.0) };
    }
}

// ANCHOR: keyring_test
/// Keys the host holds in its session keyring and in the user's keyring are out of reach. The
/// container has a session keyring of its own, so even without the seccomp filter the session's key
/// is not possessed and does not read; with the filter (the default) no key system call works at
/// all, which also closes the user keyring a root container shares with the host's root (runc has the
/// same limit without its filter; `--userns` closes it too: user keyrings belong to user namespaces).
#[test]
fn host_keyrings_are_out_of_reach() {
    if !require_namespaces("host_keyrings_are_out_of_reach") {
        return;
    }
    let session = HostKey::add(libc::KEY_SPEC_SESSION_KEYRING);
    let user = HostKey::add(libc::KEY_SPEC_USER_KEYRING);
    let ids = [session.0.to_string(), user.0.to_string()];
    let args = ["keys", &ids[0], &ids[1]];

    let filtered = host_unchanged(|| probe(&[], &args));
    filtered.succeeded();
    for key in ["session_keyring", "link_user_keyring", "add_key"] {
        filtered.expect(key, "err:EPERM");
    }
    for id in &ids {
        filtered.expect(&format!("read:{id}"), "err:EPERM");
        filtered.expect(&format!("read_linked:{id}"), "err:EPERM");
    }

    let unfiltered = host_unchanged(|| probe(&["--security-opt", "seccomp=unconfined"], &args));
    unfiltered.succeeded();
    assert!(
        unfiltered.get("session_keyring").parse::<i64>().is_ok(),
        "{unfiltered:#?}"
    );
    unfiltered.expect(&format!("read:{}", ids[0]), "err:EACCES");
    unfiltered.expect(&format!("read_linked:{}", ids[0]), "err:EACCES");
    if !is_root() {
        // The container's user keyring is its own user namespace's.
        unfiltered.expect(&format!("read_linked:{}", ids[1]), "err:EACCES");
    }
}
// ANCHOR_END: keyring_test

/// A container exchanging two names in a directory it shares (`volume`, which is `host` on the host and
/// `inside` in the container) as fast as it can, with the probe's `swap`, until [`Swapper::stop`].
struct Swapper {
    child: std::process::Child,
    host: PathBuf,
}

impl Swapper {
    /// Starts the container and returns once it has begun swapping.
    fn start(volume: &str, host: &Path, inside: &str, names: [&str; 2]) -> Swapper {
        let mut child = probe_command(&["--volume", volume], &["swap", inside, names[0], names[1]])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn the swapping container");
        let begun = std::time::Instant::now();
        while !host.join("swapping").exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the swapping container ended"
            );
            assert!(
                begun.elapsed().as_secs() < 30,
                "the container never began swapping"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Swapper {
            child,
            host: host.to_owned(),
        }
    }

    fn stop(mut self) {
        fs::write(self.host.join("stop"), "").unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the swapping container failed: {status}");
    }
}

/// A test that fails before [`Swapper::stop`] still ends the container (its launcher's SIGKILL takes
/// its init with it), rather than leaving it swapping for its two minutes.
impl Drop for Swapper {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = fs::write(self.host.join("stop"), "");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `inner` (a launcher's command) run by `sh -c script` in a mount namespace of its own, private from
/// the host's (unshare(1)): the script sets the scene and runs the launcher as `"$@"`.
fn in_own_mount_namespace(script: &str, inner: &Command) -> Command {
    let mut outer = Command::new("unshare");
    outer
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            outer.env(key, value);
        }
    }
    outer
}

// ---- 14. volumes and the host's directories -------------------------------------------------------

/// Attack (runc's CVE-2021-30465): two containers share a writable volume, and the second also asks
/// for a read-only volume nested in it. The first exchanges the nested volume's directory with a link
/// as fast as it can (renameat2(2) `RENAME_EXCHANGE`), so that the second's set-up finds the directory
/// when it binds the volume and the link when it looks the bind up again to make it read-only and
/// nodev. With a link to `../dev`, the remount went to its /dev and the volume stayed writable (an
/// attacker's pass wrote the host directory given read-only within 2 to 19 starts, as root and as uid
/// 65534; with CAP_MKNOD, a device node made on the volume opened). A check that the second lookup
/// shows the volume's source then stopped that link, but not one to another read-only bind of the same
/// source (a second pass). Now the bind is made detached, attached at the checked target and its flags
/// set through its own descriptor: nothing is looked up again.
#[test]
fn a_nested_volume_swapped_during_set_up_stays_read_only() {
    let test = "a_nested_volume_swapped_during_set_up_stays_read_only";
    if !require_namespaces(test) {
        return;
    }
    // The link to the container's /dev; then the link to a second bind of the same source.
    let to_dev = swap_during_set_up("../dev", &[]);
    let to_twin = swap_during_set_up("twin", &["twin"]);
    eprintln!("{test}: {} starts failed closed", to_dev + to_twin);
}

/// One layout of [`a_nested_volume_swapped_during_set_up_stays_read_only`]: `/data/sub` swapped with
/// a link to `link_to`, and the secret also bound read-only at each of `twins` in `/data`. Returns how
/// many of the second container's starts failed (a start that found the link at the first lookup bound
/// the volume where it led, over its /dev, and stopped at the masks, which need /dev/null).
fn swap_during_set_up(link_to: &str, twins: &[&str]) -> usize {
    let scratch = Scratch::new("swap");
    let (shared, secret) = (scratch.path().join("shared"), scratch.path().join("secret"));
    fs::create_dir_all(shared.join("sub")).unwrap();
    for twin in twins {
        fs::create_dir(shared.join(twin)).unwrap();
    }
    fs::create_dir(&secret).unwrap();
    std::os::unix::fs::symlink(link_to, shared.join("link")).unwrap();
    fs::write(secret.join("file"), "read-only data\n").unwrap();
    let shared_volume = format!("{}:/data", shared.display());
    let mut volumes = vec!["--volume".to_owned(), shared_volume.clone()];
    for target in twins.iter().chain(&["sub"]) {
        volumes.extend([
            "--volume".to_owned(),
            format!("{}:/data/{target}:ro", secret.display()),
        ]);
    }
    let volumes: Vec<&str> = volumes.iter().map(String::as_str).collect();
    let refused = host_unchanged(|| {
        let swapper = Swapper::start(&shared_volume, &shared, "/data", ["sub", "link"]);
        let mut refused = 0;
        for _ in 0..testing::scaled(50) {
            let attempt = probe(&volumes, &["append", "/data/sub/file", "/data/link/file"]);
            refused += usize::from(attempt.code != Some(0));
        }
        swapper.stop();
        refused
    });
    assert_eq!(
        fs::read_to_string(secret.join("file")).unwrap(),
        "read-only data\n",
        "a container wrote the volume it was given read-only (the link to {link_to})"
    );
    refused
}

/// The host's /usr and /lib* that the default root shows read-only include every mount below them: a
/// recursive bind brings a directory's submounts along (a separate /usr/local, an NFS /usr/share), and
/// the read-only remount changed only the top one (an attacker's pass wrote a host file through a mount
/// on /usr/local/src). Real root only: the test puts a mount on /usr/share in a mount namespace of its
/// own (unshare(1)), where the launcher then runs.
#[test]
fn mounts_below_the_host_s_usr_are_read_only_too() {
    let test = "mounts_below_the_host_s_usr_are_read_only_too";
    if !require_root(test) {
        return;
    }
    let scratch = Scratch::new("submount");
    let written = "/usr/share/combined-escape-written";
    let inner = probe_command(&[], &["append", written]);
    let script = format!(
        "mount --bind '{}' /usr/share && exec \"$@\"",
        scratch.path().display()
    );
    let outer = in_own_mount_namespace(&script, &inner);
    let attempt = host_unchanged(|| run(outer));
    attempt.succeeded();
    attempt.expect(&format!("append:{written}"), "err:EROFS");
    assert!(
        fs::read_dir(scratch.path()).unwrap().next().is_none(),
        "a container wrote below the host's /usr"
    );
}

/// A mount the host makes below a volume's source or the host's /usr once the container runs (an
/// automounter's, an NFS mount) stays out of the container: the volume and the default root's view of
/// /usr are private, as Docker makes a volume, not slaves of the host's mounts, through which it
/// appeared writable and with devices, whatever their flags (an attacker's pass wrote the host through
/// such a mount under a `:ro` volume, and under /usr). Real root only: the host's mount is made in a
/// mount namespace of the test's own (unshare(1)), `/` shared in it as systemd makes it.
#[test]
fn a_mount_the_host_makes_later_stays_out() {
    let test = "a_mount_the_host_makes_later_stays_out";
    if !require_root(test) {
        return;
    }
    let scratch = Scratch::new("late");
    let (source, sync) = (scratch.path().join("source"), scratch.path().join("sync"));
    fs::create_dir_all(source.join("sub")).unwrap();
    fs::create_dir(&sync).unwrap();
    let ro_volume = format!("{}:/ro:ro", source.display());
    let sync_volume = format!("{}:/sync", sync.display());
    mount_later(
        &["--volume", &ro_volume, "--volume", &sync_volume],
        "/ro/sub",
        &source.join("sub"),
        &scratch.path().join("under-volume"),
    );
    mount_later(
        &["--volume", &sync_volume],
        "/usr/share",
        Path::new("/usr/share"),
        &scratch.path().join("under-usr"),
    );
}

/// One case of [`a_mount_the_host_makes_later_stays_out`]: a container (its `options`, with /sync a
/// volume) that says it started and then looks for a file `ready` in `inside`, while the host binds a
/// fresh directory `later` onto `host_path` with `ready` in it.
fn mount_later(options: &[&str], inside: &str, host_path: &Path, later: &Path) {
    fs::create_dir(later).unwrap();
    let sync = options
        .iter()
        .find_map(|o| o.strip_suffix(":/sync"))
        .expect("a /sync volume");
    let inner = probe_command(options, &["late", "/sync", &format!("{inside}/file")]);
    let script = format!(
        "mount --make-rshared / && \"$@\" & n=0; while [ ! -e '{sync}/started' ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; \
         mount --bind '{later}' '{host}' && touch '{later}/ready'; wait $!",
        later = later.display(),
        host = host_path.display()
    );
    let _ = fs::remove_file(Path::new(sync).join("started"));
    let outer = in_own_mount_namespace(&script, &inner);
    let attempt = host_unchanged(|| run(outer));
    attempt.succeeded().expect("late", "absent");
    assert!(
        !later.join("file").exists(),
        "a container wrote through a mount the host made later on {}",
        host_path.display()
    );
}

/// Attack: a container that can write another's root filesystem (it lies in the first one's volume)
/// exchanges the second's `proc` with a decoy while the second is set up, so that the second's masks
/// and read-only /proc/sys land on the decoy, and its real /proc/sys, for a root container the host's
/// kernel settings, stays writable (an attacker's pass wrote kernel.printk_ratelimit within six starts,
/// with a decoy directory). Now the kernel's paths are protected before the pivot, beneath a /proc
/// checked to be the root of a procfs, or the container is refused; the second decoy, a link into the
/// real procfs (its `sys`), is the right filesystem but not its root. Real root only: the attack needs
/// a container without a user namespace. The container writes back the value the setting has.
#[test]
fn a_proc_swapped_during_set_up_stays_protected() {
    let test = "a_proc_swapped_during_set_up_stays_protected";
    if !require_root(test) {
        return;
    }
    // A directory like /proc's own underneath its mount: an empty sys/, and a link `self` that keeps
    // /proc/self/fd/N resolving while the names are exchanged.
    swap_proc_during_set_up(|decoy| {
        fs::create_dir_all(decoy.join("sys")).unwrap();
        std::os::unix::fs::symlink("../fakeproc/self", decoy.join("self")).unwrap();
    });
    // A link to the real procfs's `sys`, which resolves once the names are exchanged.
    swap_proc_during_set_up(|decoy| std::os::unix::fs::symlink("fakeproc/sys", decoy).unwrap());
}

/// One decoy of [`a_proc_swapped_during_set_up_stays_protected`]: `make_decoy` makes `fakeproc` in a
/// rootfs that another container exchanges with `proc` as fast as it can while containers start on it.
fn swap_proc_during_set_up(make_decoy: impl Fn(&Path)) {
    let scratch = Scratch::new("procswap");
    let (shared, rootfs) = (
        scratch.path().join("shared"),
        scratch.path().join("shared/rootfs"),
    );
    common::populate(&rootfs);
    fs::create_dir_all(rootfs.join("proc/sys")).unwrap();
    std::os::unix::fs::symlink("../fakeproc/self", rootfs.join("proc/self")).unwrap();
    make_decoy(&rootfs.join("fakeproc"));
    let shared_volume = format!("{}:/data", shared.display());
    // Written back with the value it has (busybox's `test -w` says yes to root whatever the mount).
    let look = "for d in /proc /fakeproc /fakeproc/..; do f=$d/sys/kernel/printk_ratelimit; \
                [ -f $f ] && v=$(cat $f) && echo $v 2>/dev/null > $f && echo \"writable: $f\"; done; true";
    let writable = host_unchanged(|| {
        let swapper = Swapper::start(&shared_volume, &rootfs, "/data/rootfs", ["proc", "fakeproc"]);
        let mut writable = Vec::new();
        for _ in 0..testing::scaled(50) {
            let mut attempt = launcher();
            attempt
                .args(["run", "--rootfs"])
                .arg(&rootfs)
                .args(["--", "sh", "-c", look]);
            let attempt = run(attempt);
            writable.extend(attempt.stdout.lines().map(str::to_owned));
        }
        swapper.stop();
        writable
    });
    assert!(
        writable.is_empty(),
        "a root container found the kernel's settings writable: {writable:?}"
    );
}

/// Attack: a container that can write another's root filesystem exchanges the second's `dev` with a
/// link to one of the second's volumes while the second, which keeps CAP_MKNOD, is set up. /dev was
/// looked up by name to be made read-only after the pivot: the remount went to the volume, and the
/// real /dev, a tmpfs where device nodes open, stayed writable, so the container could make a node of
/// the host's disk there. Now /dev is made with fsmount(2) and made read-only through its descriptor
/// before the pivot. Real root only (a container without a user namespace keeping CAP_MKNOD). The
/// container makes the zero device (1:5) and reads a byte of it.
#[test]
fn a_dev_swapped_during_set_up_stays_read_only() {
    let test = "a_dev_swapped_during_set_up_stays_read_only";
    if !require_root(test) {
        return;
    }
    let scratch = Scratch::new("devswap");
    let (shared, rootfs) = (
        scratch.path().join("shared"),
        scratch.path().join("shared/rootfs"),
    );
    common::populate(&rootfs);
    fs::create_dir_all(scratch.path().join("vol")).unwrap();
    fs::create_dir_all(rootfs.join("vol")).unwrap();
    std::os::unix::fs::symlink("vol", rootfs.join("fakedev")).unwrap();
    let shared_volume = format!("{}:/data", shared.display());
    let vol = format!("{}:/vol", scratch.path().join("vol").display());
    let make = "for d in /dev /fakedev /vol; do mknod $d/zero-made c 1 5 2>/dev/null && \
                head -c 1 $d/zero-made >/dev/null 2>&1 && echo \"opened: $d\"; done; true";
    let opened = host_unchanged(|| {
        let swapper = Swapper::start(&shared_volume, &rootfs, "/data/rootfs", ["dev", "fakedev"]);
        let mut opened = Vec::new();
        for _ in 0..testing::scaled(50) {
            let mut attempt = launcher();
            attempt
                .args(["run", "--cap-add", "MKNOD", "--volume", &vol, "--rootfs"])
                .arg(&rootfs)
                .args(["--", "sh", "-c", make]);
            let attempt = run(attempt);
            opened.extend(attempt.stdout.lines().map(str::to_owned));
        }
        swapper.stop();
        opened
    });
    assert!(
        opened.is_empty(),
        "a container keeping CAP_MKNOD made a device node that opens: {opened:?}"
    );
}

/// The same shared rootfs, and a config granting a device (`linux.devices`): the launcher makes it in
/// the container's /dev, and a container exchanging `dev` with a directory of its own while another is
/// set up must not get the node in that directory. Before, the node went to `/dev` looked up again by
/// name after the tmpfs was mounted: into the other container's directory, in one run of a few, where
/// it could open a device its config never granted.
#[test]
fn a_device_granted_to_one_container_never_lands_where_another_can_reach() {
    let test = "a_device_granted_to_one_container_never_lands_where_another_can_reach";
    if !require_root(test) {
        return;
    }
    let place = SharedRootfs::new("devnode");
    let (rootfs, bundle, state) = (&place.rootfs, &place.bundle, &place.state);
    fs::create_dir_all(rootfs.join("decoy")).unwrap();
    oci_bundle(bundle, rootfs, |config| {
        config["process"]["args"] = serde_json::json!(["true"]);
        config["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/granted", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
        ]);
    });
    let stray = host_unchanged(|| {
        let swapper = place.swapper(["dev", "decoy"]);
        for round in 0..testing::scaled(50) {
            let mut attempt = launcher();
            attempt
                .arg("--root")
                .arg(state)
                .args(["run", "--bundle"])
                .arg(bundle)
                .arg(format!("granted{round}"));
            let attempt = run(attempt);
            assert_eq!(
                attempt.code,
                Some(0),
                "the granted container failed: {attempt:#?}"
            );
        }
        swapper.stop();
        device_nodes_under(rootfs)
    });
    assert!(
        stray.is_empty(),
        "a device node granted to one container landed in the shared rootfs: {stray:?}"
    );
}

/// A rootfs in a directory that another container gets as its volume (`/data`), and beside it a
/// bundle's and a state's directories, for the OCI runtime's attacks.
struct SharedRootfs {
    scratch: Scratch,
    rootfs: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
}

impl SharedRootfs {
    fn new(name: &str) -> SharedRootfs {
        let scratch = Scratch::new(name);
        let rootfs = scratch.path().join("shared/rootfs");
        common::populate(&rootfs);
        SharedRootfs {
            rootfs,
            bundle: scratch.path().join("bundle"),
            state: scratch.path().join("state"),
            scratch,
        }
    }

    /// The other container, exchanging `names` in the rootfs as fast as it can.
    fn swapper(&self, names: [&str; 2]) -> Swapper {
        let volume = format!("{}:/data", self.scratch.path().join("shared").display());
        Swapper::start(&volume, &self.rootfs, "/data/rootfs", names)
    }
}

/// An OCI bundle at `dir` whose root is `rootfs`, writable, with no terminal: `combined spec`'s
/// config, changed by `edit`.
fn oci_bundle(dir: &Path, rootfs: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    fs::create_dir_all(dir).unwrap();
    let mut spec = launcher();
    spec.args(["spec", "--bundle"]).arg(dir);
    let spec = run(spec);
    assert_eq!(spec.code, Some(0), "combined spec: {spec:#?}");
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["root"] = serde_json::json!({"path": rootfs, "readonly": false});
    config["process"]["terminal"] = false.into();
    edit(&mut config);
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// Attack: the same shared rootfs, exchanged `proc` for a decoy while containers are created on it.
/// A created container waits at its start gate by reopening the gate's fifo through /proc/self/fd,
/// after the pivot: a name in the rootfs. The decoy's `self/fd/N` are links to a file of the rootfs,
/// which opens at once where the fifo would wait for `start`: the container went on, and its command
/// ran, without `start`. Now the fifo is reopened beneath the descriptor of the container's proc mount,
/// and written only if it is the gate's own (its device and inode): without that check (and before the
/// descriptor), three to seven containers in thirty ran.
#[test]
fn a_proc_swapped_before_the_start_gate_never_starts_the_container() {
    let test = "a_proc_swapped_before_the_start_gate_never_starts_the_container";
    if !require_root(test) {
        return;
    }
    let place = SharedRootfs::new("gateswap");
    let (rootfs, bundle, state) = (&place.rootfs, &place.bundle, &place.state);
    fs::write(rootfs.join("opens-at-once"), "").unwrap();
    let fds = rootfs.join("decoy/self/fd");
    fs::create_dir_all(&fds).unwrap();
    for fd in 0..64 {
        std::os::unix::fs::symlink("/opens-at-once", fds.join(fd.to_string())).unwrap();
    }
    oci_bundle(bundle, rootfs, |config| {
        config["process"]["args"] = serde_json::json!(["sh", "-c", "echo $$ >> /ran"]);
    });
    let rounds = testing::scaled(30);
    host_unchanged(|| {
        let swapper = place.swapper(["proc", "decoy"]);
        for round in 0..rounds {
            let mut create = launcher();
            create
                .arg("--root")
                .arg(state)
                .args(["create", "--bundle"])
                .arg(bundle)
                .arg(format!("gate{round}"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // A create that failed (the swap broke its set-up) started nothing either.
            let _ = create.status().expect("spawn combined create");
        }
        // Time for a container that went past its gate to run its command.
        std::thread::sleep(std::time::Duration::from_millis(300));
        swapper.stop();
        for round in 0..rounds {
            let mut delete = launcher();
            delete
                .arg("--root")
                .arg(state)
                .args(["delete", "--force", &format!("gate{round}")]);
            let deleted = run(delete);
            assert_eq!(deleted.code, Some(0), "delete --force: {deleted:#?}");
        }
    });
    let ran = fs::read_to_string(rootfs.join("ran")).unwrap_or_default();
    assert!(
        ran.is_empty(),
        "a created container ran its command without start: pids {ran:?}"
    );
}

/// Every character or block device node below `dir`, not following links.
fn device_nodes_under(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let kind = entry.file_type().unwrap();
        if kind.is_char_device() || kind.is_block_device() {
            found.push(entry.path());
        } else if kind.is_dir() {
            found.extend(device_nodes_under(&entry.path()));
        }
    }
    found
}
