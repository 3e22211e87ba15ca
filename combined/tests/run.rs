//! `combined run` on the real kernel, as root and as an unprivileged user: every option does what it
//! says, exit codes follow the shells' conventions (125 launcher, 126 cannot execute, 127 not found,
//! 128 + signal), signals reach the command (SIGTERM and SIGINT to the launcher, Ctrl-C on a
//! terminal), bad input is refused in one line before anything exists, and `doctor` tags every line.
//! The containers run a busybox root filesystem the tests make from the host's static busybox, or
//! the default host view.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use caps::Capability;
use common::{Outcome, Rootfs, TempDir, combined, have_busybox, namespaces, run};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nskit::testing;

/// Namespaces and a busybox rootfs are both available (else the gates say why).
fn ready(test: &str) -> Option<Rootfs> {
    (namespaces(test) && have_busybox(test)).then(Rootfs::new)
}

fn in_rootfs(rootfs: &Rootfs, extra: &[&str], command: &[&str]) -> Outcome {
    let mut args = vec!["--rootfs", rootfs.str()];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    run(&args)
}

fn sh(rootfs: &Rootfs, extra: &[&str], script: &str) -> Outcome {
    in_rootfs(rootfs, extra, &["sh", "-c", script])
}

// ---- the default root filesystem: the host view ---------------------------------------------------

#[test]
fn host_view_runs_host_programs_in_a_fresh_container() {
    if !namespaces("host_view_runs_host_programs_in_a_fresh_container") {
        return;
    }
    let out = run(&[
        "--",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; ps -e -o pid=,comm=",
    ]);
    let text = out.ok();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("container"), "{text}");
    assert_eq!(lines.next(), Some("container"), "/etc/hostname: {text}");
    let procs: Vec<(i32, String)> = lines
        .map(|l| {
            let (pid, comm) = l.trim().split_once(' ').expect("pid comm");
            (pid.parse().expect("a pid"), comm.trim().to_owned())
        })
        .collect();
    assert_eq!(
        procs[0],
        (1, "init".to_owned()),
        "a fresh PID namespace, init first: {text}"
    );
    assert!(procs.len() <= 3, "only init, sh and ps are visible: {text}");
}

#[test]
fn host_view_is_read_only_except_tmp() {
    if !namespaces("host_view_is_read_only_except_tmp") {
        return;
    }
    let out = run(&[
        "--",
        "sh",
        "-c",
        "touch /usr/combined-test 2>&1; echo usr=$?; echo x > /tmp/f && cat /tmp/f; touch /etc/x && echo etc=ok",
    ]);
    let text = out.ok();
    assert!(text.contains("Read-only file system"), "{text}");
    assert!(!text.contains("usr=0"), "{text}");
    assert!(text.contains("\nx\n"), "/tmp is writable: {text}");
    assert!(
        text.contains("etc=ok"),
        "the container's own /etc is writable: {text}"
    );
    assert!(!Path::new("/usr/combined-test").exists());
    let ro = run(&[
        "--read-only",
        "--",
        "sh",
        "-c",
        "touch /etc/x 2>&1; echo x > /tmp/f && echo tmp=ok",
    ]);
    let text = ro.ok();
    assert!(
        text.contains("Read-only file system") && text.contains("tmp=ok"),
        "{text}"
    );
}

// ---- options ---------------------------------------------------------------------------------------

#[test]
fn rootfs_is_the_containers_root() {
    let Some(rootfs) = ready("rootfs_is_the_containers_root") else {
        return;
    };
    fs::write(rootfs.path().join("etc/marker"), "from the rootfs\n").unwrap();
    let text = sh(
        &rootfs,
        &[],
        "cat /etc/marker; ls /bin/busybox; ls /usr 2>&1; true",
    )
    .ok()
    .to_owned();
    assert!(text.starts_with("from the rootfs\n/bin/busybox\n"), "{text}");
    assert!(
        text.contains("No such file"),
        "nothing of the host's /usr: {text}"
    );
}

#[test]
fn hostname_env_and_workdir() {
    let Some(rootfs) = ready("hostname_env_and_workdir") else {
        return;
    };
    let host = nix::unistd::gethostname().unwrap();
    let mut cmd = combined(&[
        "run",
        "--rootfs",
        rootfs.str(),
        "--hostname",
        "box-1",
        "-e",
        "FOO=bar=baz",
        "--env",
        "PATH=/bin",
        "-w",
        "/tmp",
        "--",
        "sh",
        "-c",
        "hostname; echo $FOO; echo ${SECRET-unset}; echo $PATH; pwd; echo $HOSTNAME",
    ]);
    cmd.env("SECRET", "from-the-host");
    let out = common::output(&mut cmd);
    assert_eq!(out.ok(), "box-1\nbar=baz\nunset\n/bin\n/tmp\nbox-1\n");
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        host,
        "the host's name is unchanged"
    );
}

/// Attack: a read-only volume whose source holds a mount of its own. The bind is recursive, so the
/// mount comes along, and a remount makes only the top of the volume read-only: the container wrote
/// through `/v/sub` to the host, and could open device nodes there. The test's mount is made in a
/// mount namespace of its own (unshare(1)), around the launcher, so the host's table is untouched.
#[test]
fn a_read_only_volume_is_read_only_all_the_way_down() {
    let test = "a_read_only_volume_is_read_only_all_the_way_down";
    let Some(rootfs) = ready(test) else {
        return;
    };
    // Mounting inside the volume's source, on the host's side, needs root.
    if !nskit::testing::require_root(test) {
        return;
    }
    let vol = TempDir::new("vol-nested");
    let sub = vol.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let volume = format!("{}:/v:ro", vol.str());
    let launcher = common::combined(&[
        "run",
        "--rootfs",
        rootfs.str(),
        "-v",
        &volume,
        "--",
        "sh",
        "-c",
        "echo x > /v/sub/written 2>&1; echo sub=$?; grep ' /v/sub ' /proc/self/mountinfo",
    ]);
    let out = with_tmpfs_at(&sub, launcher);
    let text = out.ok();
    assert!(
        !text.contains("sub=0"),
        "the container wrote through a mount inside its read-only volume: {text}"
    );
    let line = text.lines().find(|l| l.contains(" /v/sub ")).unwrap_or_default();
    let options = line.split_whitespace().nth(5).unwrap_or_default();
    assert!(
        options.split(',').any(|o| o == "ro") && options.split(',').any(|o| o == "nodev"),
        "the volume's inner mount is not read-only and nodev: {text}"
    );
    assert!(!sub.join("written").exists());
}

/// Runs `launcher` in a mount namespace of its own (unshare(1)) in which a tmpfs is mounted at `dir`,
/// holding a null device node: the host's mount table is untouched, and the mount is gone with it.
fn with_tmpfs_at(dir: &Path, launcher: std::process::Command) -> Outcome {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount -t tmpfs tmpfs \"$1\" && mknod \"$1/null\" c 1 3 && shift && exec \"$@\"")
        .arg("sh")
        .arg(dir)
        .arg(launcher.get_program())
        .args(launcher.get_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in launcher.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    common::finish(cmd.spawn().expect("unshare(1)"))
}

/// Attack: a `--rootfs` directory that holds a mount of its own, with a device node in it. The
/// rootfs's bind is recursive, so the mount comes along, and a remount made only the top nodev (and,
/// with `--read-only`, read-only): without a device cgroup the container opened the node, and wrote
/// through the mount to the host under `--read-only`.
#[test]
fn a_rootfs_s_own_mounts_are_nodev_and_read_only_too() {
    let test = "a_rootfs_s_own_mounts_are_nodev_and_read_only_too";
    let Some(rootfs) = ready(test) else {
        return;
    };
    // Mounting inside the rootfs, on the host's side, needs root.
    if !nskit::testing::require_root(test) {
        return;
    }
    let sub = rootfs.path().join("mnt/sub");
    fs::create_dir(&sub).unwrap();
    let script = "echo x > /mnt/sub/null; echo dev=$?; echo x > /mnt/sub/written; echo write=$?; \
                  grep ' /mnt/sub ' /proc/self/mountinfo";
    for read_only in [false, true] {
        let mut args = vec!["run", "--rootfs", rootfs.str()];
        if read_only {
            args.push("--read-only");
        }
        args.extend(["--", "sh", "-c", script]);
        let out = with_tmpfs_at(&sub, common::combined(&args));
        let text = out.ok();
        assert!(
            text.contains("dev=1"),
            "--read-only {read_only}: the container opened a device node in the rootfs: {text}"
        );
        let line = text
            .lines()
            .find(|l| l.contains(" /mnt/sub "))
            .unwrap_or_default();
        let options: Vec<&str> = line
            .split_whitespace()
            .nth(5)
            .unwrap_or_default()
            .split(',')
            .collect();
        assert!(options.contains(&"nodev"), "--read-only {read_only}: {text}");
        assert_eq!(options.contains(&"ro"), read_only, "{text}");
        assert_eq!(
            text.contains("write=0"),
            !read_only,
            "--read-only {read_only}: {text}"
        );
    }
    assert!(
        !sub.join("written").exists(),
        "the host's side of the mount saw a write"
    );
}

#[test]
fn volumes_read_write_and_read_only() {
    let Some(rootfs) = ready("volumes_read_write_and_read_only") else {
        return;
    };
    let rw = TempDir::new("vol-rw");
    let ro = TempDir::new("vol-ro");
    fs::write(ro.path().join("given"), "host data\n").unwrap();
    let file = ro.path().join("single");
    fs::write(&file, "one file\n").unwrap();
    let (v1, v2, v3) = (
        format!("{}:/mnt/rw", rw.str()),
        format!("{}:/mnt/ro:ro", ro.str()),
        format!("{}:/etc/single:ro", file.display()),
    );
    let out = sh(
        &rootfs,
        &["-v", &v1, "--volume", &v2, "-v", &v3],
        "echo written > /mnt/rw/new && cat /mnt/ro/given /etc/single; touch /mnt/ro/x 2>&1; echo ro=$?",
    );
    let text = out.ok();
    assert!(text.starts_with("host data\none file\n"), "{text}");
    assert!(
        text.contains("Read-only file system") && !text.contains("ro=0"),
        "{text}"
    );
    assert_eq!(fs::read_to_string(rw.path().join("new")).unwrap(), "written\n");
    assert!(!ro.path().join("x").exists());
    // The host view takes volumes too.
    let out = run(&["-v", &v2, "--", "cat", "/mnt/ro/given"]);
    assert_eq!(out.ok(), "host data\n");
}

/// A volume under /dev is mounted on the container's own /dev, not hidden beneath it, and leaves no
/// directory behind in the rootfs; one under /proc or /sys is refused.
#[test]
fn a_volume_under_dev_is_seen_and_proc_or_sys_are_refused() {
    let Some(rootfs) = ready("a_volume_under_dev_is_seen_and_proc_or_sys_are_refused") else {
        return;
    };
    let vol = TempDir::new("dev-vol");
    fs::write(vol.path().join("data"), "through /dev\n").unwrap();
    let before = common::tree(rootfs.path());
    let spec = format!("{}:/dev/shared:ro", vol.str());
    let out = sh(&rootfs, &["-v", &spec], "cat /dev/shared/data");
    assert_eq!(out.ok(), "through /dev\n");
    assert_eq!(
        common::tree(rootfs.path()),
        before,
        "nothing was created in the rootfs"
    );
    for target in ["/proc/shared", "/sys/shared"] {
        let spec = format!("{}:{target}", vol.str());
        let line = sh(&rootfs, &["-v", &spec], "true").launcher_error().to_owned();
        assert!(line.contains("mount the volume elsewhere"), "{line}");
    }
}

#[test]
fn read_only_root() {
    let Some(rootfs) = ready("read_only_root") else {
        return;
    };
    let script = "touch /new 2>&1; echo rc=$?";
    let text = sh(&rootfs, &["--read-only"], script).ok().to_owned();
    assert!(
        text.contains("Read-only file system") && !text.contains("rc=0"),
        "{text}"
    );
    assert!(!rootfs.path().join("new").exists());
    assert_eq!(
        sh(&rootfs, &[], script).ok(),
        "rc=0\n",
        "writable without --read-only"
    );
    assert!(rootfs.path().join("new").exists());
}

/// The capability masks from `/proc/self/status` inside (CapEff, CapBnd).
fn cap_masks(rootfs: &Rootfs, extra: &[&str]) -> (u64, u64) {
    let out = sh(rootfs, extra, "grep -E '^Cap(Eff|Bnd)' /proc/self/status");
    let text = out.ok();
    let field = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).expect(name);
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    (field("CapEff:"), field("CapBnd:"))
}

#[test]
fn capabilities_default_add_and_drop() {
    let Some(rootfs) = ready("capabilities_default_add_and_drop") else {
        return;
    };
    let default: u64 = combined::caps::DEFAULT_CAPS
        .iter()
        .map(|c| c.bitmask())
        .fold(0, |a, b| a | b);
    assert_eq!(cap_masks(&rootfs, &[]), (default, default));
    let added = default | Capability::CAP_NET_ADMIN.bitmask();
    assert_eq!(cap_masks(&rootfs, &["--cap-add", "NET_ADMIN"]), (added, added));
    let dropped = default & !Capability::CAP_CHOWN.bitmask();
    assert_eq!(
        cap_masks(&rootfs, &["--cap-drop", "cap_chown"]),
        (dropped, dropped)
    );
    assert_eq!(cap_masks(&rootfs, &["--cap-drop", "ALL"]), (0, 0));
    let only = Capability::CAP_KILL.bitmask();
    assert_eq!(
        cap_masks(&rootfs, &["--cap-drop", "all", "--cap-add", "KILL"]),
        (only, only)
    );
    // Dropped means dropped: without CAP_CHOWN, chown fails even for root inside.
    let text = sh(
        &rootfs,
        &["--cap-drop", "CHOWN"],
        "touch /tmp/f; chown 1 /tmp/f 2>&1; echo rc=$?",
    )
    .ok()
    .to_owned();
    assert!(!text.contains("rc=0"), "{text}");
}

#[test]
fn init_is_pid_1_and_no_init_makes_the_command_pid_1() {
    let Some(rootfs) = ready("init_is_pid_1_and_no_init_makes_the_command_pid_1") else {
        return;
    };
    // `; true` keeps the shell from exec'ing its last command in place.
    let script = "echo $$; cat /proc/1/comm; true";
    assert_eq!(sh(&rootfs, &[], script).ok(), "2\ninit\n");
    assert_eq!(sh(&rootfs, &["--no-init"], script).ok(), "1\nsh\n");
}

#[test]
fn init_shows_no_host_command_line() {
    let Some(rootfs) = ready("init_shows_no_host_command_line") else {
        return;
    };
    // The launcher's command line names host paths (its binary, the rootfs): init must not show it.
    let out = sh(&rootfs, &[], "tr '\\0' ' ' < /proc/1/cmdline; echo");
    let shown = out.ok().trim();
    assert_eq!(shown, "init", "/proc/1/cmdline inside: {shown:?}");
}

#[test]
fn init_reaps_orphans() {
    let Some(rootfs) = ready("init_reaps_orphans") else {
        return;
    };
    // The subshell exits at once, orphaning its `sleep`, which init must reap when it ends.
    let out = sh(&rootfs, &[], "(sleep 0.1 &); sleep 0.5; ps -o stat,comm");
    let text = out.ok();
    assert!(text.lines().count() >= 3, "{text}");
    assert!(
        !text.lines().skip(1).any(|l| l.trim_start().starts_with('Z')),
        "a zombie in the container: {text}"
    );
}

#[test]
fn pid_1_is_not_dumpable() {
    let Some(rootfs) = ready("pid_1_is_not_dumpable") else {
        return;
    };
    let out = sh(
        &rootfs,
        &[],
        "readlink /proc/self/exe; readlink /proc/1/exe; echo rc=$?",
    );
    let text = out.ok();
    assert!(text.starts_with("/bin/busybox\n"), "{text}");
    assert!(!text.contains("rc=0"), "/proc/1/exe must not be readable: {text}");
    assert!(!text.contains("combined"), "{text}");
}

#[test]
fn networking_none_and_loopback() {
    let Some(rootfs) = ready("networking_none_and_loopback") else {
        return;
    };
    let script = "ls /sys/class/net; cat /sys/class/net/lo/flags";
    assert_eq!(
        sh(&rootfs, &["--net", "none"], script).ok(),
        "lo\n0x8\n",
        "lo is down"
    );
    assert_eq!(
        sh(&rootfs, &["--net", "loopback"], script).ok(),
        "lo\n0x9\n",
        "lo is up"
    );
    assert_eq!(
        sh(&rootfs, &[], script).ok(),
        "lo\n0x9\n",
        "loopback is the default"
    );
}

#[test]
fn uid_map_with_userns_as_root() {
    let Some(rootfs) = ready("uid_map_with_userns_as_root") else {
        return;
    };
    if !testing::require_root("uid_map_with_userns_as_root")
        || !testing::require_userns("uid_map_with_userns_as_root")
    {
        return;
    }
    let maps = [
        "--userns",
        "--uid-map",
        "0:100000:65536",
        "--gid-map",
        "0:100000:65536",
    ];
    let out = sh(
        &rootfs,
        &maps,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
    );
    let text = out.ok();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0", "0"],
        "{text}"
    );
    // --userns alone: the user chapter's default for root, so that root inside is nobody in
    // particular on the host.
    let text = sh(&rootfs, &["--userns"], "cat /proc/self/uid_map")
        .ok()
        .to_owned();
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"],
        "{text}"
    );
}

#[test]
fn rootless_maps_own_uid_to_root() {
    if nskit::userns::is_root() {
        eprintln!(
            "skipped rootless_maps_own_uid_to_root: runs as an ordinary user (uid_map_with_userns_as_root covers root)"
        );
        return;
    }
    let Some(rootfs) = ready("rootless_maps_own_uid_to_root") else {
        return;
    };
    let uid = nix::unistd::geteuid().as_raw();
    let text = sh(&rootfs, &[], "cat /proc/self/uid_map; id -u").ok().to_owned();
    let expected = format!("0 {uid} 1 0");
    assert_eq!(text.split_whitespace().collect::<Vec<_>>().join(" "), expected);
    // Mapping ids the user does not own is refused up front.
    let out = sh(&rootfs, &["--uid-map", "0:100000:65536"], "true");
    out.launcher_error();
}

// ---- --image --------------------------------------------------------------------------------------

/// A gzip-compressed tarball of a busybox rootfs, made with the tar and flate2 crates.
fn image_of(dir: &Path, out: &Path) {
    let file = fs::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn image_is_unpacked_once_and_every_run_starts_from_it() {
    let Some(rootfs) = ready("image_is_unpacked_once_and_every_run_starts_from_it") else {
        return;
    };
    fs::write(rootfs.path().join("etc/from-image"), "packed\n").unwrap();
    let work = TempDir::new("image");
    let image = work.path().join("busybox.tar.gz");
    image_of(rootfs.path(), &image);
    let cache = work.path().join("cache");
    let run_image = |script: &str| {
        let mut cmd = combined(&[
            "run",
            "--image",
            image.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ]);
        cmd.env("XDG_CACHE_HOME", &cache);
        common::output(&mut cmd)
    };
    assert_eq!(
        run_image("cat /etc/from-image; echo kept > /etc/state").ok(),
        "packed\n"
    );
    let images = cache.join("combined/images");
    let entries: Vec<_> = fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one entry, no partial unpack left: {entries:?}");
    assert_eq!(
        fs::read_to_string(entries[0].join("etc/from-image")).unwrap(),
        "packed\n"
    );
    use std::os::unix::fs::MetadataExt;
    let unpacked = fs::metadata(entries[0].join("etc/from-image")).unwrap().ino();
    assert!(
        !entries[0].join("etc/state").exists(),
        "the run wrote into its own layer, not the cache"
    );
    // Every run starts from the image as unpacked, even after one removed its programs; the entry is
    // reused, not unpacked again.
    assert_eq!(
        run_image("rm -rf /bin/* /etc/from-image; echo gone").ok(),
        "gone\n"
    );
    assert_eq!(
        run_image("cat /etc/from-image; test -e /etc/state || echo fresh").ok(),
        "packed\nfresh\n"
    );
    assert_eq!(fs::read_dir(&images).unwrap().count(), 1);
    assert_eq!(
        fs::metadata(entries[0].join("etc/from-image")).unwrap().ino(),
        unpacked
    );
    // --read-only: the layer refuses writes too.
    let mut cmd = combined(&[
        "run",
        "--read-only",
        "--image",
        image.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "touch /etc/x 2>/dev/null || echo refused",
    ]);
    cmd.env("XDG_CACHE_HOME", &cache);
    assert_eq!(common::output(&mut cmd).ok(), "refused\n");
}

// ---- --net veth (root only) -----------------------------------------------------------------------

/// Lines of a child's stdout, read on a thread, so a test can wait for one with a deadline.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut Child) -> Lines {
        let (send, recv) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(recv)
    }

    fn expect(&self, wanted: &str) {
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line == wanted => return,
                Ok(_) => {}
                Err(e) => panic!("no line {wanted:?} from the container: {e}"),
            }
        }
    }
}

#[test]
fn veth_connects_the_container_to_the_host_only() {
    let Some(rootfs) = ready("veth_connects_the_container_to_the_host_only") else {
        return;
    };
    if !testing::require_root("veth_connects_the_container_to_the_host_only") {
        return;
    }
    // Without --subnet, a free /30 of the pool: the container's end gets its second address.
    let out = sh(
        &rootfs,
        &["--net", "veth"],
        "ip -4 -o addr show; ls /sys/class/net | wc -l",
    );
    let text = out.ok();
    assert!(text.contains("inet 10.200."), "{text}");
    assert!(text.contains("/30"), "{text}");
    assert!(text.trim_end().ends_with('2'), "lo and the veth end: {text}");

    // Traffic between the host end and the container, on a subnet of this test's own.
    let script = "ping -c1 -W5 10.200.77.1 >/dev/null && echo pinged; nc -l -p 7070";
    let mut child = combined(&[
        "run",
        "--rootfs",
        rootfs.str(),
        "--net",
        "veth",
        "--subnet",
        "10.200.77.0/30",
        "--",
        "sh",
        "-c",
        script,
    ])
    .spawn()
    .unwrap();
    let lines = Lines::of(&mut child);
    lines.expect("pinged");
    let container = *common::children_of(child.id())
        .first()
        .expect("the container's first process");
    let host_end = common::host_veth(container);
    assert!(
        testing::interfaces().contains(&host_end),
        "{host_end} exists during the run"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match std::net::TcpStream::connect(("10.200.77.2", 7070)) {
            Ok(stream) => break stream,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to the container: {e}"),
        }
    };
    stream.write_all(b"hello container\n").unwrap();
    drop(stream);
    lines.expect("hello container");
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(0));
    assert!(
        !testing::interfaces().contains(&host_end),
        "{host_end} is gone after the run"
    );
}

// ---- exit codes -----------------------------------------------------------------------------------

/// Two veth containers never share a subnet: without --subnet each gets a free /30 of the pool, and a
/// subnet a running container holds is refused, in one line, before anything exists.
#[test]
fn veth_containers_never_share_a_subnet() {
    let Some(rootfs) = ready("veth_containers_never_share_a_subnet") else {
        return;
    };
    if !testing::require_root("veth_containers_never_share_a_subnet") {
        return;
    }
    let address = "ip -4 -o addr show | grep -o '10\\.200\\.[0-9.]*/30'; read wait; exit 0";
    let start = || {
        let mut cmd = combined(&[
            "run",
            "--rootfs",
            rootfs.str(),
            "--net",
            "veth",
            "--",
            "sh",
            "-c",
            address,
        ]);
        cmd.stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let first = Lines::of(&mut child)
            .0
            .recv_timeout(common::DEADLINE)
            .expect("the container printed its address");
        (child, first)
    };
    let (mut a, a_address) = start();
    let (mut b, b_address) = start();
    assert_ne!(a_address, b_address, "each container gets a subnet of its own");
    let a_network = a_address.replace(".2/30", ".0/30");
    let taken = sh(&rootfs, &["--net", "veth", "--subnet", &a_network], "true");
    let line = taken.launcher_error();
    assert!(line.contains("in use"), "{line}");
    for child in [&mut a, &mut b] {
        drop(child.stdin.take());
        assert_eq!(common::wait_deadline(child, common::DEADLINE).code(), Some(0));
    }
}

#[test]
fn exit_codes_follow_the_shells() {
    let Some(rootfs) = ready("exit_codes_follow_the_shells") else {
        return;
    };
    let bin = rootfs.path().join("bin");
    fs::write(bin.join("garbage"), [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fs::set_permissions(bin.join("garbage"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(bin.join("orphan-script"), "#!/missing/interpreter\necho never\n").unwrap();
    fs::set_permissions(bin.join("orphan-script"), fs::Permissions::from_mode(0o755)).unwrap();

    assert_eq!(sh(&rootfs, &[], "exit 7").code(), 7, "the command's own code");
    assert_eq!(sh(&rootfs, &[], "exit 0").code(), 0);
    assert_eq!(sh(&rootfs, &[], "kill -KILL $$").code(), 128 + 9, "128 + signal");
    let out = in_rootfs(&rootfs, &[], &["garbage"]);
    assert_eq!(out.code(), 126, "not an executable format: {out:#?}");
    assert!(out.stderr.contains("cannot execute"), "{out:#?}");
    let out = in_rootfs(&rootfs, &[], &["orphan-script"]);
    assert_eq!(out.code(), 127, "the interpreter is missing: {out:#?}");
    let out = in_rootfs(&rootfs, &[], &["no-such-command"]);
    assert!(
        out.launcher_error().contains("no-such-command not found"),
        "{out:#?}"
    );
}

// ---- bad input --------------------------------------------------------------------------------------

/// A capability the launcher's own bounding set lacks cannot be passed on: asked of the kernel, the
/// command's capset(2) failed at the last step with "capset failure: EPERM" (an attacker's pass, with
/// CAP_SYS_RESOURCE, which this project's CI withholds from everything). Refused by name instead,
/// before anything exists. Root only: dropping from the bounding set takes CAP_SETPCAP.
#[test]
fn a_capability_the_launcher_lacks_is_refused_by_name() {
    let test = "a_capability_the_launcher_lacks_is_refused_by_name";
    let Some(rootfs) = ready(test) else {
        return;
    };
    if !testing::require_root(test) {
        return;
    }
    let mut command = std::process::Command::new("setpriv");
    command
        .arg("--bounding-set=-net_raw")
        .arg(common::COMBINED)
        .args([
            "run",
            "--rootfs",
            rootfs.str(),
            "--cap-add",
            "NET_RAW",
            "--",
            "true",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::output(&mut command);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot keep CAP_NET_RAW: this launcher's own bounding set lacks it"),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn bad_input_is_one_line_and_125_before_anything_exists() {
    let Some(rootfs) = ready("bad_input_is_one_line_and_125_before_anything_exists") else {
        return;
    };
    symlink("/", rootfs.path().join("escape")).unwrap();
    symlink("../../../../../../..", rootfs.path().join("up")).unwrap();
    let vol = TempDir::new("bad-vol");
    let escape = format!("{}:/escape/x", vol.str());
    let escape_up = format!("{}:/up/tmp", vol.str());
    let missing_source = format!("{}/missing:/mnt/x", vol.str());
    let r = rootfs.str();
    let long = "a".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--rootfs", "/nonexistent/rootfs", "--", "true"], "rootfs"),
        (vec!["--rootfs", r, "--", "no-such-command"], "not found"),
        (vec!["--rootfs", r, "--", "/usr/bin/env"], "not found"),
        (
            vec!["--rootfs", r, "--uid-map", "0:1", "--userns", "--", "true"],
            "0:1",
        ),
        (
            vec!["--rootfs", r, "--uid-map", "a:b:c", "--userns", "--", "true"],
            "a:b:c",
        ),
        (
            vec!["--rootfs", r, "--gid-map", "0:0:1:2", "--userns", "--", "true"],
            "0:0:1:2",
        ),
        (vec!["--rootfs", r, "-v", &escape, "--", "true"], "escape"),
        (vec!["--rootfs", r, "-v", &escape_up, "--", "true"], "up"),
        (
            vec!["--rootfs", r, "-v", &missing_source, "--", "true"],
            "missing",
        ),
        (
            vec!["--rootfs", r, "-v", "/tmp:relative", "--", "true"],
            "relative",
        ),
        (
            vec!["--rootfs", r, "--cap-add", "NET_WIZARD", "--", "true"],
            "NET_WIZARD",
        ),
        (vec!["--rootfs", r, "--cap-drop", "bogus", "--", "true"], "bogus"),
        (
            vec!["--rootfs", r, "--hostname", "bad name!", "--", "true"],
            "hostname",
        ),
        (vec!["--rootfs", r, "--hostname", &long, "--", "true"], "hostname"),
        (vec!["--rootfs", r, "--hostname", "", "--", "true"], "hostname"),
        (vec!["--rootfs", r, "--hostname", "a/b", "--", "true"], "RFC 1123"),
        (
            vec!["--rootfs", r, "--hostname", "a\nb", "--", "true"],
            "\"a\\nb\"",
        ),
        (
            vec!["--rootfs", r, "-v", "relative:/mnt", "--", "true"],
            "absolute",
        ),
        (
            vec!["--rootfs", r, "--hostnme", "x", "--", "true"],
            "a similar argument exists: '--hostname'",
        ),
        (vec!["--rootfs", r, "-e", "NOEQUALS", "--", "true"], "NOEQUALS"),
        (vec!["--rootfs", r, "-w", "relative", "--", "true"], "workdir"),
        (vec!["--rootfs", r, "--net", "bridge", "--", "true"], "bridge"),
        (
            vec!["--rootfs", r, "--subnet", "10.0.0.0/40", "--", "true"],
            "subnet",
        ),
        (
            vec!["--image", "/nonexistent/image.tar.gz", "--", "true"],
            "image",
        ),
        (vec!["--rootfs", "/", "--", "true"], "rootfs"),
    ];
    let before = common::tree(rootfs.path());
    for (args, mentions) in cases {
        let out = run(&args);
        let line = out.launcher_error().to_owned();
        assert!(
            line.contains(mentions),
            "{args:?}: {line:?} should mention {mentions:?}"
        );
    }
    // As root, maps need --userns; as a user, --net veth needs root.
    let args: &[&str] = if nskit::userns::is_root() {
        &["--rootfs", r, "--uid-map", "0:100000:65536", "--", "true"]
    } else {
        &["--rootfs", r, "--net", "veth", "--", "true"]
    };
    run(args).launcher_error();
    assert_eq!(
        common::tree(rootfs.path()),
        before,
        "nothing was created in the rootfs"
    );
    assert!(!Path::new("/escape").exists());
}

/// The mistakes a newcomer makes get clap's hints, still on one line; the command may follow the
/// options without `--`, as with docker.
#[test]
fn a_newcomers_mistakes_get_hints_and_the_command_needs_no_dashes() {
    let Some(rootfs) = ready("a_newcomers_mistakes_get_hints_and_the_command_needs_no_dashes") else {
        return;
    };
    for (args, mentions) in [
        (vec!["doctr"], "a similar subcommand exists: 'doctor'"),
        (
            vec![],
            "a subcommand is needed: run, doctor, seccomp or an OCI runtime command",
        ),
        (vec!["create"], "<ID> is missing (usage: combined create <ID>)"),
        (
            vec!["run", "--net", "vet"],
            "possible values: none, loopback, veth",
        ),
    ] {
        let out = common::output(&mut combined(&args));
        let line = out.launcher_error().to_owned();
        assert!(
            line.contains(mentions),
            "{args:?}: {line:?} should mention {mentions:?}"
        );
    }
    // Each command's help begins with what the command does (clap builds the options after it).
    for (command, begins) in [
        ("run", "Run a command in a new container"),
        ("create", "Set up a container from a bundle"),
        ("exec", "Run a further process in a created or running container"),
        ("seccomp", "Write the seccomp filter"),
    ] {
        let help = common::output(&mut combined(&[command, "--help"]));
        assert!(help.stdout.starts_with(begins), "{command} --help: {help:?}");
    }
    let out = common::output(&mut combined(&[
        "run",
        "--rootfs",
        rootfs.str(),
        "sh",
        "-c",
        "echo hi",
    ]));
    assert_eq!(out.ok(), "hi\n");
}

/// A command that is a directory or a file without execute permission cannot be executed: 126, as a
/// shell says, with the reason.
#[test]
fn a_directory_or_a_plain_file_as_the_command_is_126() {
    let Some(rootfs) = ready("a_directory_or_a_plain_file_as_the_command_is_126") else {
        return;
    };
    fs::write(rootfs.path().join("plain"), "data").unwrap();
    for (command, why) in [("/bin", "is a directory"), ("/plain", "permission denied")] {
        let out = in_rootfs(&rootfs, &[], &[command]);
        assert_eq!(out.code(), 126, "{out:#?}");
        assert_eq!(out.stderr, format!("combined: cannot execute {command}: {why}\n"));
    }
}

// ---- signals ----------------------------------------------------------------------------------------

/// Starts a container whose shell traps `signal` with `exit <code>`, and waits until the trap is set.
fn trapping(rootfs: &Rootfs, signal: &str, code: i32) -> Child {
    let script = format!("trap 'exit {code}' {signal}; echo trapped; while :; do sleep 0.1; done");
    let mut child = combined(&["run", "--rootfs", rootfs.str(), "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let mut first = [0u8; 8];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"trapped\n");
    child
}

#[test]
fn signals_to_the_launcher_reach_the_command() {
    let Some(rootfs) = ready("signals_to_the_launcher_reach_the_command") else {
        return;
    };
    for (signal, name, code) in [
        (Signal::SIGTERM, "TERM", 42),
        (Signal::SIGINT, "INT", 43),
        (Signal::SIGHUP, "HUP", 44),
        (Signal::SIGUSR1, "USR1", 45),
        (Signal::SIGUSR2, "USR2", 46),
    ] {
        let mut child = trapping(&rootfs, name, code);
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = common::wait_deadline(&mut child, common::DEADLINE);
        assert_eq!(status.code(), Some(code), "{signal}");
    }
    // Without a trap the command dies of the signal, and the launcher reports 128 + signal.
    let mut child = combined(&[
        "run",
        "--rootfs",
        rootfs.str(),
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 100",
    ])
    .spawn()
    .unwrap();
    let mut first = [0u8; 8];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(128 + 15));
}

#[test]
fn ctrl_c_in_an_interactive_shell_interrupts_the_foreground_command_only() {
    let Some(rootfs) = ready("ctrl_c_in_an_interactive_shell_interrupts_the_foreground_command_only") else {
        return;
    };
    interactive_session(&["run", "--rootfs", rootfs.str(), "--", "sh", "-i"]);
}

/// The host's own /bin/sh (dash on Debian), on the default rootfs: a shell that, at exit, restores
/// the terminal's foreground process group, which must be one it can see (it exited 2 otherwise).
#[test]
fn the_host_shell_keeps_its_exit_status_on_a_terminal() {
    if !namespaces("the_host_shell_keeps_its_exit_status_on_a_terminal") {
        return;
    }
    interactive_session(&["run", "--", "sh", "-i"]);
}

/// Drives an interactive shell in a container through a pseudo-terminal, as a user at a terminal
/// would: Ctrl-C interrupts the command it runs and not the shell, and `exit 5` is the status.
fn interactive_session(args: &[&str]) {
    let mut term = common::Terminal::new(24, 80);
    let mut cmd = combined(args);
    cmd.env("PS1", "$ ");
    let mut child = term.spawn(&mut cmd);
    drop(cmd);
    term.send(b"echo sta''rted\n");
    term.expect("started");
    term.send(b"sleep 100\n");
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    term.send(b"\x03");
    term.send(b"echo al''ive\n");
    term.expect("alive");
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "Ctrl-C ended the sleep"
    );
    term.send(b"exit 5\n");
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(5), "transcript:\n{}", term.transcript);
}

// ---- doctor ---------------------------------------------------------------------------------------

#[test]
fn doctor_passes_here_and_tags_every_line() {
    if !namespaces("doctor_passes_here_and_tags_every_line") {
        return;
    }
    let out = common::output(&mut combined(&["doctor"]));
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    let (summary, checks) = lines.split_last().expect("some output");
    assert_eq!(*summary, "combined run will work here");
    assert!(checks.len() >= 8, "{text}");
    for line in checks {
        assert!(
            ["[ ok ] ", "[note] ", "[FAIL] ", "       fix: "]
                .iter()
                .any(|tag| line.starts_with(tag)),
            "untagged line {line:?}"
        );
    }
    assert!(!text.contains("[FAIL]"), "{text}");
    for kind in ["pid", "mount", "uts", "ipc", "network", "user"] {
        assert!(
            text.contains(&format!("[ ok ] {kind} namespaces can be created")),
            "{kind}: {text}"
        );
    }
}
