//! Nothing outlives a run of `combined`: not a mount, a veth, a process or a temporary file, whether
//! the run succeeds, fails at any setup step (the test-only `COMBINED_FAULT=<step>` switch makes step N
//! fail), fails to exec, or is interrupted by a signal. Each test counts the host's state before and
//! after, as root and as an unprivileged user. mount_namespaces(7), network_namespaces(7),
//! pid_namespaces(7).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use combined::container::Step;
use common::{HostState, Rootfs, TempDir, have_busybox, namespaces};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nskit::testing;

/// Everything a run of this test's launcher could leave behind, beside the host state.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    host: HostState,
    strays: BTreeSet<(i32, PathBuf)>,
    files: BTreeSet<PathBuf>,
    cgroups: BTreeSet<PathBuf>,
}

/// The directories a test hands the launcher: its TMPDIR and cache (which must stay as they were, no
/// `.partial` unpack left), the rootfs and the volume (where the launcher may create nothing new).
struct Scene {
    rootfs: Rootfs,
    tmp: TempDir,
    cache: TempDir,
    volume: TempDir,
    image: TempDir,
}

impl Scene {
    fn new() -> Scene {
        let scene = Scene {
            rootfs: Rootfs::new(),
            tmp: TempDir::new("tmpdir"),
            cache: TempDir::new("cache"),
            volume: TempDir::new("volume"),
            image: TempDir::new("image"),
        };
        std::fs::create_dir(scene.rootfs.path().join("mnt/vol")).unwrap();
        std::fs::write(scene.volume.path().join("data"), "data\n").unwrap();
        let tarball = scene.image.path().join("rootfs.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
        tar.follow_symlinks(false);
        tar.append_dir_all(".", scene.rootfs.path()).unwrap();
        tar.into_inner().unwrap();
        scene
    }

    fn image(&self) -> String {
        self.image.path().join("rootfs.tar").display().to_string()
    }

    /// `combined run <args>` with this scene's TMPDIR and cache.
    fn command(&self, args: &[&str]) -> Command {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        let mut cmd = common::combined(&full);
        cmd.env("TMPDIR", self.tmp.path())
            .env("XDG_CACHE_HOME", self.cache.path());
        cmd
    }

    fn snapshot(&self) -> Snapshot {
        let mut files = BTreeSet::new();
        for dir in [
            self.rootfs.path(),
            self.tmp.path(),
            self.cache.path(),
            self.volume.path(),
        ] {
            files.extend(common::tree(dir));
        }
        // Compiled seccomp filters are kept on purpose, one per capability set (`seccomp/cache.rs`).
        let launcher_cache = self.cache.path().join("combined");
        let filters = launcher_cache.join("seccomp");
        files.retain(|f| *f != launcher_cache && !f.starts_with(&filters));
        Snapshot {
            host: HostState::now(),
            strays: common::stray_processes(&[self.rootfs.path(), self.cache.path()]),
            files,
            cgroups: common::launcher_cgroups(),
        }
    }
}

/// Compares two snapshots; a difference names what leaked.
fn assert_unchanged(before: &Snapshot, after: &Snapshot, launchers: &[u32], what: &str) {
    assert_eq!(
        before.host.mounts, after.host.mounts,
        "{what}: the mount table changed"
    );
    assert_eq!(
        before.host.children, after.host.children,
        "{what}: a child process is left"
    );
    assert_eq!(
        before.strays, after.strays,
        "{what}: a launcher or container process is left"
    );
    assert_eq!(before.files, after.files, "{what}: files were left behind");
    assert_eq!(before.cgroups, after.cgroups, "{what}: cgroups were left behind");
    let new: BTreeSet<String> = after
        .host
        .interfaces
        .difference(&before.host.interfaces)
        .cloned()
        .collect();
    for launcher in launchers {
        let veths = common::veths_after(*launcher, &new);
        assert!(veths.is_empty(), "{what}: veths left behind: {veths:?}");
    }
}

/// Waits (briefly) for the processes and veths of a killed run to go: the kernel tears a PID and a
/// network namespace down asynchronously after their last process dies.
fn settle(scene: &Scene, before: &Snapshot) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = scene.snapshot();
        let gone = now.strays == before.strays && now.host.interfaces.is_subset(&before.host.interfaces);
        if gone || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The network with the most to leave behind that this user may ask for: a veth pair as root.
fn widest_network() -> &'static str {
    if nskit::userns::is_root() {
        "veth"
    } else {
        "loopback"
    }
}

fn ready(test: &str) -> Option<Scene> {
    (namespaces(test) && have_busybox(test)).then(Scene::new)
}

#[test]
fn two_hundred_runs_leave_nothing_behind() {
    let Some(scene) = ready("two_hundred_runs_leave_nothing_behind") else {
        return;
    };
    let _only_me = testing::exclusive();
    let before = scene.snapshot();
    let start = Instant::now();
    let mut launchers = Vec::new();
    // Two hundred on the host; fewer where NS_TEST_SCALE asks (an emulated guest), still one per leak.
    let runs = testing::scaled(200);
    for i in 0..runs {
        let mut cmd = scene.command(&["--rootfs", scene.rootfs.str(), "--", "true"]);
        let child = cmd.spawn().unwrap();
        launchers.push(child.id());
        let out = common::finish(child);
        assert_eq!(out.code(), 0, "run {i}: {out:#?}");
    }
    let elapsed = start.elapsed();
    eprintln!("{runs} sequential runs of `true`: {elapsed:?}");
    assert_unchanged(&before, &scene.snapshot(), &launchers, &format!("{runs} runs"));
}

/// A launcher SIGKILLed at any instant, from its first millisecond to the end of its set-up and after,
/// leaves nothing: its child notices the death wherever it is (a closed channel before its
/// parent-death signal is set, that signal after), and the container's veth end is born in the
/// container's namespace, so the pair dies with it.
#[test]
fn a_launcher_killed_at_any_instant_leaves_nothing_behind() {
    let Some(scene) = ready("a_launcher_killed_at_any_instant_leaves_nothing_behind") else {
        return;
    };
    let _only_me = testing::exclusive();
    let net = widest_network();
    let before = scene.snapshot();
    let mut launchers = Vec::new();
    // Every millisecond on the host; evenly thinned where NS_TEST_SCALE asks, from 0 to 50 still.
    let limits = common::limits_allowed();
    for delay in testing::scaled_points(50).into_iter().map(Duration::from_millis) {
        let mut args = vec!["--rootfs", scene.rootfs.str(), "--net", net];
        if limits {
            args.extend(["--memory", "64m", "--pids-limit", "100"]);
        }
        args.extend(["--", "sleep", "100"]);
        let mut cmd = scene.command(&args);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        launchers.push(child.id());
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let what = format!(
        "{} launchers killed 0 to 50 ms after they started",
        launchers.len()
    );
    let settled = settle(&scene, &before);
    if limits {
        // A SIGKILLed launcher cannot remove its cgroup; the next one that makes a cgroup removes it.
        let sweeper = scene.command(&[
            "--rootfs",
            scene.rootfs.str(),
            "--pids-limit",
            "100",
            "--",
            "true",
        ]);
        let child = {
            let mut c = sweeper;
            c.spawn().unwrap()
        };
        launchers.push(child.id());
        assert_eq!(common::finish(child).code(), 0);
        assert_unchanged(&before, &settle(&scene, &before), &launchers, &what);
        return;
    }
    assert_unchanged(&before, &settled, &launchers, &what);
}

/// The configurations each fault is injected into: between them they reach every step.
fn configurations(scene: &Scene, volume: &str) -> Vec<(&'static str, Vec<String>)> {
    let root = nskit::userns::is_root();
    let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let net = if root { "veth" } else { "loopback" };
    let mut configs = vec![
        (
            "rootfs",
            owned(&[
                "--rootfs",
                scene.rootfs.str(),
                "-v",
                volume,
                "--read-only",
                "--net",
                net,
            ]),
        ),
        ("host view", owned(&["-v", volume, "--net", net])),
        ("image", owned(&["--image", &scene.image(), "--cap-add", "MKNOD"])),
    ];
    if common::limits_allowed() {
        configs.push((
            "limits",
            owned(&[
                "--rootfs",
                scene.rootfs.str(),
                "--memory",
                "64m",
                "--pids-limit",
                "100",
                "--cpus",
                "1",
            ]),
        ));
    }
    if root && testing::userns_available() {
        configs.push((
            "userns",
            owned(&[
                "--rootfs",
                scene.rootfs.str(),
                "--userns",
                "--uid-map",
                "0:100000:65536",
                "--gid-map",
                "0:100000:65536",
            ]),
        ));
    }
    configs
}

#[test]
fn a_fault_at_every_step_is_125_and_leaves_nothing_behind() {
    let Some(scene) = ready("a_fault_at_every_step_is_125_and_leaves_nothing_behind") else {
        return;
    };
    let _only_me = testing::exclusive();
    let volume = format!("{}:/mnt/vol:ro", scene.volume.str());
    // The image's cache entry is made once, on purpose; after that nothing more may appear.
    assert_eq!(
        common::output(&mut scene.command(&["--image", &scene.image(), "--", "true"])).code(),
        0
    );
    let before = scene.snapshot();
    let mut launchers = Vec::new();
    let mut reached = BTreeSet::new();
    let configs = configurations(&scene, &volume);
    let turns = configs.len();
    for (turn, (config, args)) in configs.into_iter().enumerate() {
        let veth = args.iter().any(|a| a == "veth");
        // Every step in every configuration on the host; where NS_TEST_SCALE asks (an emulated
        // guest), every step in fewer configurations, taking turns: `reached` below still wants all.
        for step in testing::scaled_share(&Step::ALL, turn, turns) {
            if step == Step::Veth && !veth {
                continue; // There is no veth step without --net veth.
            }
            let mut full: Vec<&str> = args.iter().map(String::as_str).collect();
            full.extend(["--", "true"]);
            let mut cmd = scene.command(&full);
            cmd.env(combined::FAULT_VAR, step.name());
            let child = cmd.spawn().unwrap();
            launchers.push(child.id());
            let out = common::finish(child);
            let what = format!("{config}, fault at {step}");
            assert_eq!(out.code(), 125, "{what}: {out:#?}");
            let expected = format!("combined: {step} step failed: injected fault (COMBINED_FAULT)");
            assert_eq!(out.stderr.trim_end(), expected, "{what}: {out:#?}");
            assert!(out.stdout.is_empty(), "{what}: the command ran: {out:#?}");
            assert_unchanged(&before, &settle(&scene, &before), &launchers, &what);
            reached.insert(step.name());
        }
    }
    let veth_reachable = nskit::userns::is_root();
    let expected = Step::ALL.len() - usize::from(!veth_reachable);
    assert_eq!(
        reached.len(),
        expected,
        "every step was made to fail: {reached:?}"
    );

    let mut cmd = scene.command(&["--rootfs", scene.rootfs.str(), "--", "true"]);
    cmd.env(combined::FAULT_VAR, "no-such-step");
    let out = common::output(&mut cmd);
    assert!(out.launcher_error().contains("no such step"), "{out:#?}");
}

#[test]
fn failed_commands_and_bad_input_leave_nothing_behind() {
    let Some(scene) = ready("failed_commands_and_bad_input_leave_nothing_behind") else {
        return;
    };
    let _only_me = testing::exclusive();
    let r = scene.rootfs.str();
    let before = scene.snapshot();
    let mut launchers = Vec::new();
    let runs: [(&[&str], i32); 6] = [
        (&["--rootfs", r, "--", "sh", "-c", "exit 7"], 7),
        (&["--rootfs", r, "--", "sh", "-c", "kill -KILL $$"], 137),
        (&["--rootfs", r, "--", "sh", "-c", "sleep 100 & exec true"], 0),
        (&["--rootfs", r, "-w", "/missing", "--", "true"], 125),
        (&["--rootfs", r, "--", "no-such-command"], 125),
        (&["--rootfs", r, "--hostname", "bad name", "--", "true"], 125),
    ];
    for (args, code) in runs {
        let child = scene.command(args).spawn().unwrap();
        launchers.push(child.id());
        let out = common::finish(child);
        assert_eq!(out.code(), code, "{args:?}: {out:#?}");
    }
    assert_unchanged(&before, &settle(&scene, &before), &launchers, "failed runs");
}

#[test]
fn interrupted_runs_leave_nothing_behind() {
    let Some(scene) = ready("interrupted_runs_leave_nothing_behind") else {
        return;
    };
    let _only_me = testing::exclusive();
    let net = widest_network();
    let before = scene.snapshot();
    let mut launchers = Vec::new();
    for (signal, code) in [
        (Signal::SIGINT, Some(130)),
        (Signal::SIGTERM, Some(143)),
        (Signal::SIGHUP, Some(129)),
        (Signal::SIGKILL, None),
    ] {
        let script = "echo started; sleep 100 & sleep 100";
        let mut child = scene
            .command(&[
                "--rootfs",
                scene.rootfs.str(),
                "--net",
                net,
                "--",
                "sh",
                "-c",
                script,
            ])
            .spawn()
            .unwrap();
        launchers.push(child.id());
        let mut first = [0u8; 8];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        assert_eq!(&first, b"started\n");
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = common::wait_deadline(&mut child, common::DEADLINE);
        match code {
            Some(code) => assert_eq!(status.code(), Some(code), "{signal}"),
            None => assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9)),
        }
        let what = format!("a run interrupted by {signal}");
        assert_unchanged(&before, &settle(&scene, &before), &launchers, &what);
    }
}

/// The snapshot itself sees what it is meant to see, so that the comparisons above can fail.
#[test]
fn the_snapshot_sees_processes_files_and_veths() {
    let Some(scene) = ready("the_snapshot_sees_processes_files_and_veths") else {
        return;
    };
    let before = scene.snapshot();
    let mut sleeper = Command::new(scene.rootfs.path().join("bin/sleep"))
        .arg("100")
        .spawn()
        .unwrap();
    std::fs::write(scene.tmp.path().join("left"), "").unwrap();
    let during = scene.snapshot();
    assert_ne!(before.strays, during.strays, "a program from the rootfs is seen");
    assert_ne!(before.files, during.files, "a new temporary file is seen");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    std::fs::remove_file(scene.tmp.path().join("left")).unwrap();
    let new: BTreeSet<String> = ["cb4242h".to_owned()].into();
    assert_eq!(
        common::veths_after(4200, &new).len(),
        1,
        "a veth named for a PID after the launcher's"
    );
    assert!(
        common::veths_after(4300, &new).is_empty(),
        "not one named for an earlier PID"
    );
}
