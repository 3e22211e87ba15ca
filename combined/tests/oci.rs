//! `combined` as an OCI runtime, driven the way engines drive it (runtime-spec `runtime.md`):
//! `spec`, `create` with a pid file, `state`, `start`, `kill`, `delete`, `run ID` on a bundle, a pty
//! over a console socket, JSON error logs, and refusals of what the runtime does not do. As root and
//! as an ordinary user (a rootless config), and every test leaves no state, process or mount behind.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{HostState, TempDir, combined, have_busybox, namespaces, output, populate};
use serde_json::Value;

/// A bundle (config.json from `combined spec`, rootless unless root, and a busybox rootfs) and a state
/// root of its own.
struct Bundle {
    dir: TempDir,
    state: TempDir,
}

/// A test that fails before its `delete` still ends its containers: a created one would wait at its
/// gate, and a started one run its command, for ever after the test.
impl Drop for Bundle {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(self.state.path()) else {
            return;
        };
        let containers = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()));
        for id in containers.filter_map(|e| e.file_name().into_string().ok()) {
            let _ = self.runtime(&["delete", "--force", &id]).output();
        }
    }
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        let dir = TempDir::new("bundle");
        populate(&dir.path().join("rootfs"));
        let mut spec = vec!["spec", "--bundle", dir.str()];
        if !nskit::userns::is_root() {
            spec.push("--rootless");
        }
        output(&mut combined(&spec)).ok();
        let bundle = Bundle {
            dir,
            state: TempDir::new("state"),
        };
        bundle.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.into();
        });
        bundle
    }

    /// As root, a user namespace of the container's own (root inside is 100000 outside), as a rootless
    /// bundle has one already: for what happens only in a user namespace.
    fn with_a_user_namespace_as_root(&self) {
        if !nskit::userns::is_root() {
            return;
        }
        self.edit(|c| {
            let ids = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            c["linux"]["uidMappings"] = ids.clone();
            c["linux"]["gidMappings"] = ids;
        });
    }

    fn edit(&self, change: impl FnOnce(&mut Value)) {
        let path = self.dir.path().join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        change(&mut config);
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    /// `combined --root STATE <args>`.
    fn runtime(&self, args: &[&str]) -> std::process::Command {
        self.runtime_at(Path::new(common::COMBINED), args)
    }

    /// [`Bundle::runtime`] with the launcher binary at `program`.
    fn runtime_at(&self, program: &Path, args: &[&str]) -> std::process::Command {
        let mut full = vec!["--root", self.state.str()];
        full.extend_from_slice(args);
        common::combined_at(program, &full)
    }

    /// `create`, as an engine runs it: the container inherits the runtime's stdout and stderr and
    /// keeps them after `create` exits, so they are files here, not pipes a reader would wait on.
    fn create(&self, args: &[&str]) -> common::Outcome {
        let mut full = vec!["create"];
        full.extend_from_slice(args);
        self.to_files(&full)
    }

    /// The runtime's `args`, its stdout and stderr files that a process it leaves running may keep.
    fn to_files(&self, args: &[&str]) -> common::Outcome {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let status = self
            .runtime(args)
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .status()
            .unwrap();
        common::Outcome {
            status,
            stdout: fs::read_to_string(out.path()).unwrap(),
            stderr: fs::read_to_string(err.path()).unwrap(),
        }
    }

    fn state(&self, id: &str) -> Value {
        let out = output(&mut self.runtime(&["state", id]));
        serde_json::from_str(out.ok()).unwrap()
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pid")
    }
}

fn ready(test: &str) -> bool {
    namespaces(test) && have_busybox(test)
}

/// Polls `check` for up to 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn create_start_state_kill_delete_as_an_engine_calls_them() {
    if !ready("create_start_state_kill_delete_as_an_engine_calls_them") {
        return;
    }
    let _exclusive = nskit::testing::exclusive();
    let before = HostState::now();
    let b = Bundle::new(&["sleep", "100"]);
    let pid_file = b.pid_file();
    let bundle = b.dir.str().to_owned();
    // Options after the id, as some suites pass them.
    b.create(&[
        "c1",
        "--bundle",
        &bundle,
        "--pid-file",
        pid_file.to_str().unwrap(),
    ])
    .ok();
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let state = b.state("c1");
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["bundle"], bundle);
    assert_eq!(state["id"], "c1");
    // The waiting process holds none of the runtime's files: not the lock, which `state` and
    // `start` take. (As an ordinary user its fds are not even listable: it is non-dumpable, its
    // /proc files root's.)
    if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
        let held: Vec<PathBuf> = fds.filter_map(|e| fs::read_link(e.ok()?.path()).ok()).collect();
        // Its one file of the state is the gate it waits at.
        let state_files: Vec<&PathBuf> = held.iter().filter(|p| p.starts_with(b.state.path())).collect();
        assert!(
            state_files.iter().all(|p| p.ends_with("exec.fifo")),
            "the container holds the runtime's state files: {held:?}"
        );
    } else {
        use std::os::unix::fs::MetadataExt;
        let owner = fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid();
        assert_eq!(owner, 0, "a non-dumpable process's /proc files are root's");
    }
    // Created means set up but not yet the command: the process is still the runtime's binary.
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
    assert!(
        exe.as_ref()
            .is_none_or(|exe| exe.to_string_lossy().contains("combined")),
        "the command must not run before start: {exe:?}"
    );
    output(&mut b.runtime(&["start", "c1"])).ok();
    assert_eq!(b.state("c1")["status"], "running");
    // What `docker top` reads: the container's processes as host PIDs.
    let listed: Vec<i32> =
        serde_json::from_str(output(&mut b.runtime(&["ps", "--format", "json", "c1"])).ok()).unwrap();
    assert_eq!(listed, [pid], "the one process of the container");
    eventually("the command runs", || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let again = output(&mut b.runtime(&["start", "c1"]));
    assert_eq!(
        again.code(),
        1,
        "a running container does not start twice: {again:?}"
    );
    let refused = output(&mut b.runtime(&["delete", "c1"]));
    assert_eq!(
        refused.code(),
        1,
        "a running container is not deleted without --force"
    );
    assert!(refused.stderr.contains("delete --force"), "{refused:?}");
    output(&mut b.runtime(&["kill", "c1", "KILL"])).ok();
    eventually("the container stops", || b.state("c1")["status"] == "stopped");
    assert!(
        b.state("c1").get("pid").is_none(),
        "a stopped container has no pid"
    );
    output(&mut b.runtime(&["delete", "c1"])).ok();
    let gone = output(&mut b.runtime(&["state", "c1"]));
    assert_eq!(gone.code(), 1);
    assert!(gone.stderr.contains("does not exist"), "{gone:?}");
    assert_eq!(
        fs::read_dir(b.state.path()).unwrap().count(),
        0,
        "the state is gone"
    );
    eventually("the process is reaped", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    assert_eq!(
        HostState::now(),
        before,
        "create/start/kill/delete left something"
    );
}

#[test]
fn run_passes_the_exit_status_and_deletes_the_container() {
    if !ready("run_passes_the_exit_status_and_deletes_the_container") {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "hostname; id -u; exit 7"]);
    let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "r1"]));
    assert_eq!(out.code(), 7, "{out:?}");
    assert_eq!(out.stdout, "combined\n0\n");
    assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0);

    // `run -d`: started and left running, options before and after the id alike.
    b.edit(|c| c["process"]["args"] = serde_json::json!(["sleep", "100"]));
    let mut detach = b.runtime(&["run", "-d", "r2", "--bundle", b.dir.str()]);
    let out = common::Outcome {
        status: detach
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap(),
        stdout: String::new(),
        stderr: String::new(),
    };
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(b.state("r2")["status"], "running");
    output(&mut b.runtime(&["delete", "--force", "r2"])).ok();
    assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0);
}

/// The runtime may be root and the pid file's directory writable by others: a link left where the
/// runtime used to write its partial pid file (`<pid file>.partial`) must not make it write through.
#[test]
fn the_pid_file_is_never_written_through_a_link() {
    if !ready("the_pid_file_is_never_written_through_a_link") {
        return;
    }
    let b = Bundle::new(&["sleep", "100"]);
    let pid_file = b.pid_file();
    let elsewhere = b.dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, pid_file.with_extension("partial")).unwrap();
    let out = b.create(&[
        "--bundle",
        b.dir.str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "p1",
    ]);
    output(&mut b.runtime(&["delete", "--force", "p1"])).ok();
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        !elsewhere.exists(),
        "the runtime wrote through a link someone left beside the pid file"
    );
    let written = fs::symlink_metadata(&pid_file).unwrap();
    assert!(written.file_type().is_file(), "{written:?}");
    let pid = fs::read_to_string(&pid_file).unwrap();
    assert!(pid.parse::<i32>().is_ok(), "{pid:?}");
}

/// Attack: an OCI config may give the container no /dev of its own, and then the rootfs's `/dev/null`
/// was what the masks bound over /proc's files. A rootfs whose `/dev/null` links to a writable file of
/// /proc (here the container's own hostname; on the host's core pattern it would be runc's
/// CVE-2025-31133) would make the masked `/proc/keys` a writable name for that file. The masks are made
/// before the pivot now, from the launcher's own /dev/null (checked to be the null device), and the
/// rootfs's is never used.
#[test]
fn a_dev_null_that_is_not_the_null_device_masks_nothing() {
    if !ready("a_dev_null_that_is_not_the_null_device_masks_nothing") {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "echo via-a-mask > /proc/keys; hostname"]);
    let dev = b.dir.path().join("rootfs/dev");
    fs::create_dir_all(&dev).unwrap();
    let _ = fs::remove_file(dev.join("null"));
    std::os::unix::fs::symlink("/proc/sys/kernel/hostname", dev.join("null")).unwrap();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    });
    let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "devnull"]));
    assert!(
        !out.stdout.contains("via-a-mask"),
        "a masked file became a writable name for what the rootfs's /dev/null links to: {out:?}"
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0, "nothing left");
}

#[test]
fn the_config_s_process_user_rlimits_and_capabilities_are_honoured() {
    if !ready("the_config_s_process_user_rlimits_and_capabilities_are_honoured") {
        return;
    }
    let b = Bundle::new(&[
        "sh",
        "-c",
        "id; ulimit -n; grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status; umask",
    ]);
    b.edit(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 0, "gid": 0, "additionalGids": [5], "umask": 63});
        c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 322}]);
        let caps = serde_json::json!(["CAP_KILL", "CAP_CHOWN"]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_KILL"]);
        c["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_KILL"]);
    });
    let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "u1"]));
    if !nskit::userns::is_root() {
        // Rootless: the user namespace denies setgroups, so the group is refused before anything.
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(
            out.stderr.starts_with("combined: process.user.additionalGids"),
            "{out:?}"
        );
        b.edit(|c| c["process"]["user"]["additionalGids"] = serde_json::json!([]));
        let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "u1"]));
        let text = out.ok();
        assert!(text.starts_with("uid=0 gid=0\n"), "{text}");
        assert!(text.contains("CapAmb:\t0000000000000020"), "{text}");
        return;
    }
    let text = out.ok();
    assert!(text.starts_with("uid=0 gid=0 groups=5\n"), "{text}");
    assert!(text.contains("\n321\n"), "{text}");
    // CAP_CHOWN (0) and CAP_KILL (5): 0x21; ambient CAP_KILL only: 0x20.
    assert!(text.contains("CapEff:\t0000000000000021"), "{text}");
    assert!(text.contains("CapBnd:\t0000000000000021"), "{text}");
    assert!(text.contains("CapAmb:\t0000000000000020"), "{text}");
    assert!(text.trim_end().ends_with("0077"), "{text}");
}

#[test]
fn a_terminal_goes_to_the_console_socket() {
    if !ready("a_terminal_goes_to_the_console_socket") {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "tty; echo done; sleep 100"]);
    b.edit(|c| c["process"]["terminal"] = true.into());
    let socket = b.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let bundle = b.dir.str().to_owned();
    let socket_path = socket.to_str().unwrap().to_owned();
    let engine = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        receive_fd(&stream)
    });
    b.create(&["--bundle", &bundle, "--console-socket", &socket_path, "t1"])
        .ok();
    let master = engine.join().unwrap();
    output(&mut b.runtime(&["start", "t1"])).ok();
    let text = read_until_done(master);
    assert!(
        text.contains("/dev/pts/0"),
        "the command's terminal is the pty: {text:?}"
    );
    // `exec --tty` gets a pty of its own in the container's devpts, sent the same way.
    let listener = UnixListener::bind(&socket).unwrap_or_else(|_| {
        fs::remove_file(&socket).unwrap();
        UnixListener::bind(&socket).unwrap()
    });
    let engine = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        receive_fd(&stream)
    });
    let mut exec = b.runtime(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        &socket_path,
        "t1",
        "sh",
        "-c",
        "tty; echo done",
    ]);
    assert!(exec.status().unwrap().success());
    let text = read_until_done(engine.join().unwrap());
    assert!(
        text.contains("/dev/pts/1"),
        "exec's terminal is a second pty: {text:?}"
    );
    output(&mut b.runtime(&["delete", "--force", "t1"])).ok();
}

/// What a pty's master reads until `done` (or 10 s, or its end).
fn read_until_done(master: OwnedFd) -> String {
    let mut text = String::new();
    let mut pty = fs::File::from(master);
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains("done") && Instant::now() < deadline {
        match pty.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}

/// The descriptor sent over `stream` with SCM_RIGHTS.
fn receive_fd(stream: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::AsRawFd;
    let mut name = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    for cmsg in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed this descriptor in this process for us; nothing else owns it.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor came over the console socket");
}

#[test]
fn what_the_runtime_cannot_honour_is_refused_by_name_and_logged_as_json() {
    if !ready("what_the_runtime_cannot_honour_is_refused_by_name_and_logged_as_json") {
        return;
    }
    let b = Bundle::new(&["true"]);
    let log = b.dir.path().join("log.json");
    type Change = fn(&mut Value);
    let cases: [(&str, Change); 6] = [
        // Both would reach the host: the runtime's own mount namespace would be pivoted in, and `..`
        // would make the cgroup's directories outside the cgroup hierarchy.
        ("linux.namespaces", |c| {
            for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "mount" {
                    ns["path"] = "/proc/self/ns/mnt".into();
                }
            }
        }),
        ("linux.cgroupsPath", |c| {
            c["linux"]["cgroupsPath"] = "/../../../tmp/combined-escape".into()
        }),
        ("hooks", |c| {
            c["hooks"] = serde_json::json!({"createContainer": [{"path": "/bin/true"}]})
        }),
        ("linux.sysctl", |c| {
            c["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"})
        }),
        ("linux.rootfsPropagation", |c| {
            c["linux"]["rootfsPropagation"] = "shared".into()
        }),
        ("process.args", |c| {
            c["process"]["args"] = serde_json::json!(["no-such-program"])
        }),
    ];
    for (field, change) in cases {
        b.edit(change);
        let mut full = vec!["--log", log.to_str().unwrap(), "--log-format", "json", "create"];
        full.extend(["--bundle", b.dir.str(), "x"]);
        let out = output(&mut b.runtime(&full));
        assert_eq!(out.code(), 1, "{field}: {out:?}");
        assert!(
            out.stderr.starts_with(&format!("combined: {field}")),
            "{field}: {out:?}"
        );
        let last: Value =
            serde_json::from_str(fs::read_to_string(&log).unwrap().lines().last().unwrap()).unwrap();
        assert_eq!(last["level"], "error");
        assert!(last["msg"].as_str().unwrap().starts_with(field), "{last}");
        assert!(last["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{last}");
        assert_eq!(
            fs::read_dir(b.state.path()).unwrap().count(),
            0,
            "{field}: nothing left"
        );
        fs::remove_file(b.dir.path().join("config.json")).unwrap();
        let mut spec = vec!["spec", "--bundle", b.dir.str()];
        if !nskit::userns::is_root() {
            spec.push("--rootless");
        }
        output(&mut combined(&spec)).ok();
        b.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = serde_json::json!(["true"]);
        });
    }
}

#[test]
fn a_container_whose_process_died_is_stopped_and_delete_cleans_up() {
    if !ready("a_container_whose_process_died_is_stopped_and_delete_cleans_up") {
        return;
    }
    let b = Bundle::new(&["true"]);
    b.create(&["--bundle", b.dir.str(), "d1"]).ok();
    let pid = b.state("d1")["pid"].as_i64().unwrap() as i32;
    // The engine's shim would reap it; here the test kills it before start, as a crash would.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    eventually("the container is stopped", || {
        b.state("d1")["status"] == "stopped"
    });
    let start = output(&mut b.runtime(&["start", "d1"]));
    assert_eq!(start.code(), 1, "{start:?}");
    // What containerd's shim sends after a container's exit, and the words it takes as "ended by
    // itself": any other answer leaves the engine retrying for ever.
    output(&mut b.runtime(&["kill", "--all", "d1", "9"])).ok();
    let late = output(&mut b.runtime(&["kill", "d1", "9"]));
    assert_eq!(late.code(), 1, "{late:?}");
    assert!(late.stderr.contains("container not running"), "{late:?}");
    output(&mut b.runtime(&["delete", "d1"])).ok();
    output(&mut b.runtime(&["delete", "--force", "d1"])).ok(); // gone already: no error with --force
    assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0);
    eventually("the process is reaped", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

/// A Kubernetes pod's containers join its sandbox's namespaces by path: here a second container joins
/// the first's network, IPC and UTS namespaces, and sees the same ones (root only: a rootless
/// container is in a user namespace of its own, which does not own the first's namespaces).
#[test]
fn a_second_container_joins_the_first_s_namespaces_by_path() {
    if !ready("a_second_container_joins_the_first_s_namespaces_by_path") {
        return;
    }
    if !nskit::userns::is_root() {
        // Joining a PID namespace takes CAP_SYS_ADMIN in the runtime's own user namespace: refused by
        // name, before anything exists. The rest needs root.
        let b = Bundle::new(&["true"]);
        let own = format!("/proc/{}/ns/pid", std::process::id());
        b.edit(|c| {
            let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
            namespaces.retain(|ns| ns["type"] != "pid");
            namespaces.push(serde_json::json!({"type": "pid", "path": own}));
        });
        let out = b.create(&["--bundle", b.dir.str(), "pidjoin"]);
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(
            out.stderr.contains("joining a PID namespace by path needs root"),
            "{out:?}"
        );
        assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0, "nothing left");
        eprintln!("a_second_container_joins_the_first_s_namespaces_by_path: the joins need root");
        return;
    }
    let sandbox = Bundle::new(&["sleep", "100"]);
    sandbox.create(&["--bundle", sandbox.dir.str(), "sandbox"]).ok();
    output(&mut sandbox.runtime(&["start", "sandbox"])).ok();
    let pid = sandbox.state("sandbox")["pid"].as_i64().unwrap();
    let kinds = [("network", "net"), ("ipc", "ipc"), ("uts", "uts"), ("pid", "pid")];
    let b = Bundle::new(&[
        "sh",
        "-c",
        "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; hostname; cat /proc/1/comm",
    ]);
    b.edit(|c| {
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        for ns in namespaces.iter_mut() {
            if let Some((_, proc_name)) = kinds.iter().find(|(t, _)| ns["type"] == *t) {
                ns["path"] = format!("/proc/{pid}/ns/{proc_name}").into();
            }
        }
    });
    let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "member"]));
    let lines: Vec<String> = out.ok().lines().map(str::to_owned).collect();
    for (i, (_, proc_name)) in kinds.iter().enumerate() {
        let sandbox_ns = fs::read_link(format!("/proc/{pid}/ns/{proc_name}")).unwrap();
        assert_eq!(lines[i], sandbox_ns.to_string_lossy(), "{proc_name}: {lines:?}");
    }
    assert_eq!(lines[4], "combined", "the sandbox's hostname: {lines:?}");
    assert_eq!(
        lines[5], "sleep",
        "the sandbox's process is PID 1 of the shared namespace: {lines:?}"
    );
    // `kill --all` and `delete --force` of a container in the pod's PID namespace reach its own
    // processes only, never the sandbox: containerd's shim sends `kill --all` at every exit.
    b.edit(|c| c["process"]["args"] = serde_json::json!(["sh", "-c", "sleep 100 & sleep 100"]));
    b.create(&["--bundle", b.dir.str(), "member2"]).ok();
    output(&mut b.runtime(&["start", "member2"])).ok();
    eventually("the member's shell has forked", || {
        let out = output(&mut b.runtime(&["ps", "--format", "json", "member2"]));
        serde_json::from_str::<Vec<i32>>(out.ok()).unwrap().len() >= 2
    });
    let listed: Vec<i32> =
        serde_json::from_str(output(&mut b.runtime(&["ps", "--format", "json", "member2"])).ok()).unwrap();
    assert!(
        !listed.contains(&(pid as i32)),
        "the sandbox is not the member's: {listed:?}"
    );
    output(&mut b.runtime(&["kill", "--all", "member2", "KILL"])).ok();
    eventually("the member stops", || b.state("member2")["status"] == "stopped");
    assert_eq!(
        sandbox.state("sandbox")["status"],
        "running",
        "kill --all reached the sandbox"
    );
    output(&mut b.runtime(&["delete", "--force", "member2"])).ok();
    output(&mut sandbox.runtime(&["delete", "--force", "sandbox"])).ok();
}

/// A leftover, not an escape: a config without a PID namespace of its own, whose process leaves a
/// grandchild behind (a double fork: the shell that started it exits, so the orphan is no descendant
/// of the container's first process). Without a cgroup, `delete --force` found the container's
/// processes by parentage alone and left the orphan running on the host; and a plain `delete` of
/// the stopped container never looked. Now such a container always gets a cgroup, as runc's does,
/// and both kill whatever is in it.
#[test]
fn a_container_without_a_pid_namespace_of_its_own_leaves_no_process_behind() {
    if !ready("a_container_without_a_pid_namespace_of_its_own_leaves_no_process_behind") {
        return;
    }
    let _only_me = nskit::testing::exclusive();
    let script = |then: &str| format!("sh -c 'sleep 300 & echo $! > /orphan'; {then}");
    let b = Bundle::new(&["sh", "-c", &script("exec sleep 300")]);
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "pid");
    });
    if !nskit::userns::is_root() && common::limits_allowed() {
        // Rootless, a container without a PID namespace of its own cannot mount /proc (proc belongs
        // to the user namespace that owns the PID namespace), and create's gate reopens its fifo
        // through /proc/self/fd, as runc's does: such a container cannot be created at all.
        eprintln!(
            "skipped a_container_without_a_pid_namespace_of_its_own_leaves_no_process_behind: \
             rootless, such a container has no /proc, which create needs"
        );
        return;
    }
    if !common::limits_allowed() {
        let out = b.create(&["--bundle", b.dir.str(), "nopid"]);
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(
            out.stderr
                .contains("without a PID namespace of its own needs a cgroup"),
            "{out:?}"
        );
        assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0, "nothing left");
        return;
    }
    let cgroups_before = common::launcher_cgroups();
    let orphan_file = b.dir.path().join("rootfs/orphan");
    let orphan = || -> i32 {
        eventually("the orphan has started", || {
            fs::read_to_string(&orphan_file).is_ok_and(|t| t.ends_with('\n'))
        });
        let pid = fs::read_to_string(&orphan_file).unwrap().trim().parse().unwrap();
        fs::remove_file(&orphan_file).unwrap();
        pid
    };
    let alive = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
    };
    // A running container, deleted with --force.
    b.create(&["--bundle", b.dir.str(), "running"]).ok();
    output(&mut b.runtime(&["start", "running"])).ok();
    let first = orphan();
    assert!(alive(first));
    output(&mut b.runtime(&["delete", "--force", "running"])).ok();
    eventually("delete --force killed the orphan", || !alive(first));
    // A container whose first process has exited, deleted without --force.
    b.edit(|c| c["process"]["args"] = serde_json::json!(["sh", "-c", script("exit 0")]));
    b.create(&["--bundle", b.dir.str(), "stopped"]).ok();
    output(&mut b.runtime(&["start", "stopped"])).ok();
    let second = orphan();
    eventually("the container stops", || {
        b.state("stopped")["status"] == "stopped"
    });
    assert!(alive(second), "the orphan outlives the container's first process");
    output(&mut b.runtime(&["delete", "stopped"])).ok();
    eventually("delete killed the orphan", || !alive(second));
    assert_eq!(common::launcher_cgroups(), cgroups_before, "a cgroup was left");
}

/// prestart and createRuntime hooks run before the container is set up, with its state on stdin;
/// poststart after start, poststop after delete; a failing prestart hook stops the creation.
#[test]
fn hooks_run_with_the_state_on_stdin_and_a_failing_one_stops_create() {
    if !ready("hooks_run_with_the_state_on_stdin_and_a_failing_one_stops_create") {
        return;
    }
    let b = Bundle::new(&["true"]);
    let saved = b.dir.path().join("hooks");
    fs::create_dir(&saved).unwrap();
    let save = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}", saved.display())]});
    let hooks = serde_json::json!({
        "prestart": [save("prestart")],
        "createRuntime": [save("createRuntime")],
        "poststart": [save("poststart")],
        "poststop": [save("poststop")],
    });
    b.edit(|c| c["hooks"] = hooks.clone());
    b.create(&["--bundle", b.dir.str(), "h1"]).ok();
    let read =
        |name: &str| -> Value { serde_json::from_slice(&fs::read(saved.join(name)).unwrap()).unwrap() };
    let pid = b.state("h1")["pid"].clone();
    for name in ["prestart", "createRuntime"] {
        let state = read(name);
        assert_eq!(state["id"], "h1", "{name}: {state}");
        assert_eq!(state["pid"], pid, "{name}: {state}");
        assert_eq!(state["status"], "created", "{name}: {state}");
    }
    assert!(!saved.join("poststart").exists(), "poststart waits for start");
    output(&mut b.runtime(&["start", "h1"])).ok();
    assert_eq!(read("poststart")["status"], "running");
    eventually("the container stops", || b.state("h1")["status"] == "stopped");
    output(&mut b.runtime(&["delete", "h1"])).ok();
    assert_eq!(read("poststop")["status"], "stopped");

    b.edit(|c| {
        c["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})
    });
    let failed = b.create(&["--bundle", b.dir.str(), "h2"]);
    assert_eq!(failed.code(), 1, "{failed:?}");
    assert!(
        failed
            .stderr
            .contains("hooks step failed: prestart hook /bin/sh failed"),
        "{failed:?}"
    );
    assert_eq!(
        fs::read_dir(b.state.path()).unwrap().count(),
        0,
        "nothing left of h2"
    );
}

/// `linux.resources` and `linux.cgroupsPath`: the container's cgroup is made where the config says,
/// with its limits, and `delete` removes it. Where this user may not make cgroups, the config is
/// refused by the field's name.
#[test]
fn a_config_s_resources_go_to_its_cgroup_and_delete_removes_it() {
    if !ready("a_config_s_resources_go_to_its_cgroup_and_delete_removes_it") {
        return;
    }
    let _only_me = nskit::testing::exclusive();
    let b = Bundle::new(&["sleep", "100"]);
    let name = format!("combined-oci-test-{}", std::process::id());
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = name.clone().into();
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 10});
        // What a Kubernetes pod's container gets: shares from its request, a quota from its limit.
        c["linux"]["resources"]["cpu"] =
            serde_json::json!({"shares": 512, "quota": 20000, "period": 50000, "cpus": "0"});
    });
    if !common::limits_allowed() {
        let out = b.create(&["--bundle", b.dir.str(), "c1"]);
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(
            out.stderr
                .starts_with("combined: linux.cgroupsPath: a cgroup this user may create"),
            "{out:?}"
        );
        assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0);
        return;
    }
    b.create(&["--bundle", b.dir.str(), "c1"]).ok();
    let pid = b.state("c1")["pid"].as_i64().unwrap();
    let made: Vec<_> = common::cgroups_named(&name);
    assert!(!made.is_empty(), "no cgroup named {name}");
    let pids_max: Vec<String> = made
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("pids.max")).ok())
        .map(|s| s.trim().to_owned())
        .collect();
    assert_eq!(pids_max, ["10"], "{made:?}");
    let read_any = |files: &[&str]| -> Vec<String> {
        made.iter()
            .flat_map(|d| files.iter().map(move |f| d.join(f)))
            .filter_map(|p| fs::read_to_string(p).ok())
            .map(|s| s.trim().to_owned())
            .collect()
    };
    // v1 (this host) or v2 (the VM's guest), whichever the files say.
    let cpu = read_any(&[
        "cpu.shares",
        "cpu.cfs_period_us",
        "cpu.cfs_quota_us",
        "cpu.weight",
        "cpu.max",
    ]);
    assert!(
        cpu == ["512", "50000", "20000"] || cpu == ["20", "20000 50000"],
        "{cpu:?} in {made:?}"
    );
    assert_eq!(read_any(&["cpuset.cpus"]), ["0"], "{made:?}");
    // `update --resources -`, as containerd's shim passes a kubelet's resize.
    let mut update = b.runtime(&["update", "--resources", "-", "c1"]);
    update
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = update.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), br#"{"pids": {"limit": 20}}"#).unwrap();
    common::finish(child).ok();
    let pids_max: Vec<String> = made
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("pids.max")).ok())
        .map(|s| s.trim().to_owned())
        .collect();
    assert_eq!(pids_max, ["20"], "{made:?}");
    let procs: Vec<String> = made
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .collect();
    assert!(procs.iter().all(|p| p.trim() == pid.to_string()), "{procs:?}");
    output(&mut b.runtime(&["delete", "--force", "c1"])).ok();
    assert!(
        common::cgroups_named(&name).is_empty(),
        "delete removes the cgroup"
    );
}

/// `run ID` in the foreground passes the signals it receives on to the container, and does not die
/// of them leaving the container behind: a Ctrl-C reaches the command, which decides.
#[test]
fn a_foreground_run_passes_its_signals_on_and_leaves_nothing() {
    if !ready("a_foreground_run_passes_its_signals_on_and_leaves_nothing") {
        return;
    }
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'echo got INT; exit 3' INT; echo ready; while true; do sleep 1; done",
    ]);
    let mut child = b
        .runtime(&["run", "--bundle", b.dir.str(), "s1"])
        .spawn()
        .unwrap();
    eventually("the container runs", || {
        output(&mut b.runtime(&["state", "s1"])).code() == 0 && b.state("s1")["status"] == "running"
    });
    std::thread::sleep(Duration::from_millis(300)); // the shell installs its trap
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = common::wait_deadline(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(3), "the command's own exit, after its trap");
    let out = common::finish(child);
    assert!(out.stdout.contains("got INT"), "{out:?}");
    assert_eq!(
        fs::read_dir(b.state.path()).unwrap().count(),
        0,
        "deleted after the run"
    );
}

/// A poststart or poststop hook inside the container's root filesystem would run, on the host, a
/// program the container could have rewritten meanwhile: it runs the copy kept at create instead.
#[test]
fn a_late_hook_from_the_container_s_own_files_runs_as_it_was_at_create() {
    if !ready("a_late_hook_from_the_container_s_own_files_runs_as_it_was_at_create") {
        return;
    }
    // The attack: the container rewrites the program of a hook that will run on the host after it.
    let b = Bundle::new(&[
        "sh",
        "-c",
        "printf '#!/bin/sh\\necho hijacked >> \"$1\"\\n' > /hook; chmod 755 /hook",
    ]);
    let hook = b.dir.path().join("rootfs/hook");
    let record = b.dir.path().join("ran");
    fs::write(&hook, "#!/bin/sh\necho original >> \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    if !nskit::userns::is_root() {
        // Rootless, the container's root is the caller: the file must be writable inside.
        fs::set_permissions(b.dir.path().join("rootfs"), fs::Permissions::from_mode(0o777)).unwrap();
    }
    let run_hook = serde_json::json!([{"path": hook, "args": ["hook", record]}]);
    b.edit(|c| {
        c["hooks"] = serde_json::json!({"poststart": run_hook, "poststop": run_hook});
        c["root"]["readonly"] = false.into();
    });
    output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "late"])).ok();
    assert!(
        fs::read_to_string(&hook).unwrap().contains("hijacked"),
        "the container did rewrite the program"
    );
    let ran = fs::read_to_string(&record).unwrap_or_default();
    assert!(
        !ran.contains("hijacked"),
        "a hook ran what the container wrote: {ran:?}"
    );
    assert!(
        ran.ends_with("original\n"),
        "the poststop hook ran the program kept at create: {ran:?}"
    );
    assert_eq!(
        fs::read_dir(b.state.path()).unwrap().count(),
        0,
        "the kept copies are gone"
    );
}

/// The namespaces of a process, as `readlink /proc/<pid>/ns/<kind>` prints them.
fn namespaces_of(pid: &str, kinds: &[&str]) -> Vec<String> {
    kinds
        .iter()
        .map(|kind| {
            fs::read_link(format!("/proc/{pid}/ns/{kind}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// `exec` runs a further process in the container's namespaces, with the config's process changed
/// by the command line (or replaced by `--process`), passes its exit status on, and, detached, leaves
/// it running with its pid in the pid file; `delete --force` ends it with the container.
#[test]
fn exec_runs_a_process_in_the_container_s_namespaces() {
    if !ready("exec_runs_a_process_in_the_container_s_namespaces") {
        return;
    }
    let _exclusive = nskit::testing::exclusive();
    let before = HostState::now();
    let b = Bundle::new(&["sleep", "100"]);
    b.create(&["--bundle", b.dir.str(), "e1"]).ok();
    output(&mut b.runtime(&["start", "e1"])).ok();
    let pid = b.state("e1")["pid"].as_i64().unwrap().to_string();
    let kinds = ["pid", "mnt", "net", "uts", "ipc", "user", "cgroup"];
    let script = "for n in pid mnt net uts ipc user cgroup; do readlink /proc/self/ns/$n; done; echo $GREETING; pwd; exit 3";
    let out = output(&mut b.runtime(&[
        "exec",
        "-e",
        "GREETING=hello",
        "--cwd",
        "/tmp",
        "e1",
        "sh",
        "-c",
        script,
    ]));
    assert_eq!(out.code(), 3, "the process's exit status: {out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..kinds.len()], namespaces_of(&pid, &kinds), "{out:?}");
    assert_eq!(lines[kinds.len()..], ["hello", "/tmp"], "{out:?}");

    // A process.json, as containerd and podman pass it.
    let process = b.dir.path().join("process.json");
    let json = serde_json::json!({"args": ["sh", "-c", "echo from json; id -u"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    fs::write(&process, json.to_string()).unwrap();
    let out = output(&mut b.runtime(&["exec", "--process", process.to_str().unwrap(), "e1"]));
    assert_eq!(out.ok(), "from json\n0\n");

    // Detached: the pid file names a process of the container, which `ps` lists.
    let pid_file = b.dir.path().join("exec.pid");
    let mut detached = b.runtime(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "e1",
        "sleep",
        "100",
    ]);
    let status = detached
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let exec_pid: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let listed: Vec<i32> =
        serde_json::from_str(output(&mut b.runtime(&["ps", "--format", "json", "e1"])).ok()).unwrap();
    assert!(listed.contains(&exec_pid), "{listed:?} lacks {exec_pid}");
    output(&mut b.runtime(&["delete", "--force", "e1"])).ok();
    eventually("the exec'd process is gone", || {
        !Path::new(&format!("/proc/{exec_pid}/ns")).exists()
    });
    let refused = output(&mut b.runtime(&["exec", "e1", "true"]));
    assert_eq!(refused.code(), 1, "{refused:?}");
    assert!(refused.stderr.contains("does not exist"), "{refused:?}");
    assert_eq!(HostState::now(), before, "exec left something");
}

/// Attack: before `start`, a created container's process is the runtime's own binary, waiting at its
/// gate with every capability in the container's user namespace. It was meant to be non-dumpable, but
/// taking its ids inside made it dumpable again: a process `exec` brought in read `/proc/1/exe` (the
/// host's binary, which a rootless user's own install let it overwrite) and opened `/proc/1/fd/N`, the
/// gate's fifo, which started the container without `start` (an attacker's pass). Now it is made
/// non-dumpable after its whole set-up: as root the exec'd process finds neither; a runtime that is
/// not root cannot open the waiting process's namespaces, and says so.
#[test]
fn a_created_container_s_waiting_process_is_out_of_exec_s_reach() {
    if !ready("a_created_container_s_waiting_process_is_out_of_exec_s_reach") {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "echo ran > /tmp/ran; sleep 100"]);
    let root = nskit::userns::is_root();
    b.edit(|c| c["root"]["readonly"] = false.into());
    b.with_a_user_namespace_as_root();
    let tmp = b.dir.path().join("rootfs/tmp");
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    b.create(&["--bundle", b.dir.str(), "w0"]).ok();
    let attack = "head -c 4 /proc/1/exe >/dev/null 2>&1 && echo read-exe; \
                  for fd in /proc/1/fd/*; do [ -p $fd ] && cat $fd >/dev/null 2>&1 && echo opened-gate; done; \
                  ls /proc/1/fd >/dev/null 2>&1 && echo listed-fds; echo done";
    let out = output(&mut b.runtime(&["exec", "w0", "sh", "-c", attack]));
    if root {
        assert_eq!(out.ok(), "done\n", "{out:?}");
    } else {
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(
            out.stderr
                .contains("is created, and its waiting process's namespaces"),
            "{out:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!tmp.join("ran").exists(), "the container ran without start");
    output(&mut b.runtime(&["start", "w0"])).ok();
    eventually("the command ran after start", || tmp.join("ran").exists());
    output(&mut b.runtime(&["delete", "--force", "w0"])).ok();
}

/// `exec --cap CAP_SYS_ADMIN` in a user namespace whose container's own process lacks it: the
/// container's mounts were made in its user namespace and are not locked (`locked.rs`), so the process
/// could remount a read-only volume read-write. Refused by name; a plain `exec` still runs. As root the
/// container gets a user namespace of its own for this.
#[test]
fn exec_with_sys_admin_is_refused_where_the_mounts_are_not_locked() {
    if !ready("exec_with_sys_admin_is_refused_where_the_mounts_are_not_locked") {
        return;
    }
    let b = Bundle::new(&["sleep", "100"]);
    b.with_a_user_namespace_as_root();
    b.create(&["--bundle", b.dir.str(), "sa1"]).ok();
    output(&mut b.runtime(&["start", "sa1"])).ok();
    let refused = output(&mut b.runtime(&["exec", "--cap", "CAP_SYS_ADMIN", "sa1", "true"]));
    assert_eq!(refused.code(), 1, "{refused:?}");
    assert!(
        refused.stderr.contains("its mounts are not locked"),
        "{refused:?}"
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");
    output(&mut b.runtime(&["exec", "sa1", "true"])).ok();
    output(&mut b.runtime(&["delete", "--force", "sa1"])).ok();

    // Given CAP_SYS_ADMIN by the config, the container's process is nested with its mounts locked,
    // created and waiting at its gate first: what `exec` brings in with it joins that, and the
    // read-only root stays so.
    b.edit(|c| {
        c["root"]["readonly"] = true.into();
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_SYS_ADMIN".into());
        }
    });
    b.create(&["--bundle", b.dir.str(), "sa2"]).ok();
    output(&mut b.runtime(&["start", "sa2"])).ok();
    let attack =
        "mount -o remount,rw,bind / 2>/dev/null; touch /written 2>/dev/null && echo wrote; echo done";
    let out = output(&mut b.runtime(&["exec", "sa2", "sh", "-c", attack]));
    assert_eq!(out.ok(), "done\n", "{out:?}");
    output(&mut b.runtime(&["delete", "--force", "sa2"])).ok();
}

/// The attacker's view: a process brought in by `exec` is as confined as the container's own. It holds
/// no descriptor of the runtime's, has no controlling terminal (so no TIOCSTI into the host's), is
/// under the config's seccomp filter with no_new_privs, and has the config's capabilities only.
#[test]
fn an_exec_process_is_confined_like_the_container_s_own() {
    if !ready("an_exec_process_is_confined_like_the_container_s_own") {
        return;
    }
    let b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| {
        // As docker passes it: set by exec's joiner, which has no PID in the container's /proc.
        c["process"]["oomScoreAdj"] = 100.into();
        c["process"]["noNewPrivileges"] = true.into();
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
        let caps = serde_json::json!(["CAP_KILL"]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["process"]["capabilities"]["inheritable"] = serde_json::json!([]);
        c["process"]["capabilities"]["ambient"] = serde_json::json!([]);
    });
    b.create(&["--bundle", b.dir.str(), "x1"]).ok();
    output(&mut b.runtime(&["start", "x1"])).ok();
    // The container's own process has the config's OOM score too (written at the end of its set-up).
    let pid = b.state("x1")["pid"].as_i64().unwrap();
    let own = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(own.trim(), "100", "the container's process's OOM score");
    let script = "ls /proc/self/fd; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
                  mkdir /tmp/made || echo mkdir refused; cat /dev/tty || echo no terminal; \
                  echo oom=$(cat /proc/self/oom_score_adj)";
    // The runtime's own stdin is a terminal-less pipe; an extra descriptor it holds must not pass.
    let out = output(&mut b.runtime(&["exec", "x1", "sh", "-c", script]));
    let text = out.ok();
    // ls's own directory descriptor is 3.
    assert!(
        text.starts_with("0\n1\n2\n3\n"),
        "only stdio is inherited: {text}"
    );
    assert!(!text.contains("\n4\n"), "only stdio is inherited: {text}");
    assert!(
        text.contains("CapEff:\t0000000000000020"),
        "CAP_KILL only: {text}"
    );
    assert!(text.contains("Seccomp:\t2"), "the config's filter: {text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    assert!(text.contains("mkdir refused"), "the filter refuses mkdir: {text}");
    assert!(text.contains("no terminal"), "no controlling terminal: {text}");
    assert!(text.contains("oom=100"), "the config's OOM score: {text}");
    output(&mut b.runtime(&["delete", "--force", "x1"])).ok();
}

/// The config's capability sets with CAP_SYS_PTRACE added, as a root container granted it (for strace
/// or gdb) has them.
fn grant_sys_ptrace(c: &mut Value) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_PTRACE".into());
    }
}

/// A root container granted CAP_SYS_PTRACE, its rootfs writable, running `args`, created and started
/// as `id`; `edit` changes the rest of its config first.
fn started_with_sys_ptrace(args: &[&str], id: &str, edit: impl FnOnce(&mut Value)) -> Bundle {
    let b = Bundle::new(args);
    b.edit(|c| {
        grant_sys_ptrace(c);
        c["root"]["readonly"] = false.into();
        edit(c);
    });
    b.create(&["--bundle", b.dir.str(), id]).ok();
    output(&mut b.runtime(&["start", id])).ok();
    b
}

/// The launcher's test probe at `/probe`, with the host's libraries it is linked to (it is a dynamic
/// executable).
fn with_the_probe(c: &mut Value) {
    let mounts = c["mounts"].as_array_mut().unwrap();
    let probe = env!("CARGO_BIN_EXE_combined-probe");
    mounts.push(serde_json::json!({"destination": "/probe", "type": "bind", "source": probe, "options": ["bind", "ro"]}));
    for dir in ["/usr", "/lib", "/lib64"]
        .into_iter()
        .filter(|d| Path::new(d).exists())
    {
        mounts.push(serde_json::json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind", "ro"]}));
    }
}

/// A container from [`started_with_sys_ptrace`] running `watch` while the runtime starts `exec`s into
/// it, as often as a race needs (fewer in an emulated guest), then deleted.
fn execs_under_watch(watch: &str, id: &str) -> Bundle {
    let b = started_with_sys_ptrace(&["sh", "-c", watch], id, |_| {});
    for _ in 0..nskit::testing::scaled(40) {
        output(&mut b.runtime(&["exec", id, "true"])).ok();
    }
    output(&mut b.runtime(&["delete", "--force", id])).ok();
    b
}

/// Attack: a root container without a user namespace, granted CAP_SYS_PTRACE, watches for a process
/// of `exec` in its PID namespace whose `/proc/<pid>/root` is still the host's, and writes a host file
/// through it. `exec` joined the PID namespace first and the mount namespace later, so every `exec`
/// opened that window; now nothing of `exec`'s appears before it is in every namespace (enter.rs,
/// steps 2 to 6).
#[test]
fn an_exec_process_is_never_seen_with_the_host_s_root() {
    let test = "an_exec_process_is_never_seen_with_the_host_s_root";
    if !ready(test) || !nskit::testing::require_root(test) {
        return;
    }
    let host = TempDir::new("exec-window");
    fs::write(host.path().join("marker"), "the host's").unwrap();
    let dir = host.str();
    let watch = format!(
        "while :; do for d in /proc/[0-9]*; do [ -e $d/root{dir}/marker ] && echo reached > $d/root{dir}/pwned; done; done"
    );
    execs_under_watch(&watch, "w1");
    assert!(
        !host.path().join("pwned").exists(),
        "the container wrote a host file through an exec process's /proc/<pid>/root"
    );
}

/// Attack: a root container granted CAP_SYS_PTRACE watches for an `exec` process that holds more than
/// it does (before it had dropped the runtime's capabilities and loaded the seccomp filter, such a
/// process was taken over with ptrace and made to open the host's root with open_by_handle_at through
/// the runtime's lock file, a host descriptor it held). Now the joiner drops everything before the
/// process exists. The watcher reads each process's status with shell builtins, to see one that lives
/// for milliseconds.
#[test]
fn an_exec_process_never_holds_more_than_the_container() {
    let test = "an_exec_process_never_holds_more_than_the_container";
    if !ready(test) || !nskit::testing::require_root(test) {
        return;
    }
    let watch = "own=$(while read k v; do [ \"$k\" = CapEff: ] && echo $v; done < /proc/self/status); \
                 while :; do for d in /proc/[0-9]*; do while read k v; do [ \"$k\" = CapEff: ] && \
                 { [ \"$v\" != \"$own\" ] && echo \"$d $v\" >> /found; break; }; \
                 done < $d/status 2>/dev/null; done; done";
    let b = execs_under_watch(watch, "p1");
    let found = fs::read_to_string(b.dir.path().join("rootfs/found")).unwrap_or_default();
    assert!(
        found.is_empty(),
        "the container saw an exec process holding more than it: {found}"
    );
}

/// Attack: the process `exec` starts is in the container a moment before its execve, holding its copy
/// of the runtime's channel, and its memory is a copy of the runtime's. A root container granted
/// CAP_SYS_PTRACE catches it (the launcher's test probe), and
/// - takes the channel with pidfd_getfd and writes a reply naming a host process, which the runtime
///   then waited for and, failing that, SIGKILLed (an attacker's pass: a host process killed within
///   two `exec`s, five times in five). Now a reply is taken only if it names the runtime's own child;
/// - reads its environment and command line, which were the runtime's: the engine's variables and
///   host paths. Now the joiner blanks both before the process exists.
#[test]
fn an_exec_process_caught_before_its_execve_yields_nothing_of_the_host_s() {
    let test = "an_exec_process_caught_before_its_execve_yields_nothing_of_the_host_s";
    if !ready(test) || !nskit::testing::require_root(test) {
        return;
    }
    let mut victim = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
    let b = started_with_sys_ptrace(&["sleep", "1000"], "f1", with_the_probe);
    let (secret, state_dir) = ("the-engine-s-secret", b.state.str());
    let victim_pid = victim.id().to_string();
    b.to_files(&[
        "exec",
        "--detach",
        "f1",
        "/probe",
        "forge",
        &victim_pid,
        secret,
        state_dir,
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = 0;
    for _ in 0..nskit::testing::scaled(20) {
        let exec = output(b.runtime(&["exec", "f1", "true"]).env("ENGINE_TOKEN", secret));
        refused += usize::from(exec.code() != 0);
        assert!(
            victim.try_wait().unwrap().is_none(),
            "exec signalled the host process a forged reply named: {exec:?}"
        );
    }
    let leaks = fs::read_to_string(b.dir.path().join("rootfs/leaks")).unwrap_or_default();
    output(&mut b.runtime(&["delete", "--force", "f1"])).ok();
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(
        leaks.is_empty(),
        "the container read the runtime's memory:\n{leaks}"
    );
    eprintln!("{test}: {refused} execs refused a forged reply");
}

/// A `create` SIGKILLed at any instant leaves no process its record does not name: until the record is
/// written, the container's process dies with `create` (its parent-death signal), and after it,
/// `delete --force` finds it. Before, a `create` killed between its process's `ready` and the record
/// left that process waiting at its gate for ever, with every capability of root's (an attacker's
/// pass: three in forty), and `delete --force` removed the directory only. Each `create` here is
/// killed once its container has pivoted into the rootfs, at once or a little later, so that the
/// kills land across that window.
#[test]
fn a_create_killed_at_any_instant_leaves_no_process_behind() {
    if !ready("a_create_killed_at_any_instant_leaves_no_process_behind") {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let rootfs = fs::canonicalize(b.dir.path().join("rootfs")).unwrap();
    // With a cgroup of its own each, where this user may make one: the record names it from the
    // moment it exists, so `delete` removes it too (a killed `create` left it, and the next `create`
    // at that path failed).
    let limits = common::limits_allowed();
    let cgroup_name = |round: usize| format!("combined-oci-killed-{}-{round}", std::process::id());
    for round in 0..nskit::testing::scaled(20) {
        let id = format!("k{round}");
        if limits {
            b.edit(|c| {
                c["linux"]["cgroupsPath"] = cgroup_name(round).into();
                c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 10});
            });
        }
        let mut create = b.runtime(&["create", "--bundle", b.dir.str(), &id]);
        create
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut create = create.spawn().unwrap();
        while create.try_wait().unwrap().is_none() {
            let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", create.id()));
            let pivoted = children
                .unwrap_or_default()
                .split_whitespace()
                .any(|child| is_rooted_at(child, &rootfs));
            if pivoted {
                std::thread::sleep(Duration::from_micros(250 * (round % 5) as u64));
                let _ = create.kill();
                break;
            }
        }
        create.wait().unwrap();
    }
    let ids: Vec<String> = fs::read_dir(b.state.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for id in &ids {
        let delete = output(&mut b.runtime(&["delete", "--force", id]));
        assert_eq!(delete.code(), 0, "delete --force {id}: {delete:?}");
    }
    eventually("no process of the killed creates is left in their rootfs", || {
        processes_rooted_at(&rootfs).is_empty()
    });
    assert_eq!(fs::read_dir(b.state.path()).unwrap().count(), 0, "nothing left");
    let cgroups_left: Vec<_> = (0..nskit::testing::scaled(20))
        .flat_map(|round| common::cgroups_named(&cgroup_name(round)))
        .collect();
    assert!(cgroups_left.is_empty(), "cgroups left: {cgroups_left:?}");
}

/// The processes whose root directory is `root` (proc(5), /proc/<pid>/root).
fn processes_rooted_at(root: &Path) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && is_rooted_at(pid, root))
        .collect()
}

/// Whether process `pid`'s root directory is `root`: the same directory, whatever path its mount has
/// from here (a container's root is a mount of its own namespace, which the host's names differently).
fn is_rooted_at(pid: &str, root: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(theirs), Ok(ours)) = (fs::metadata(format!("/proc/{pid}/root")), fs::metadata(root)) else {
        return false;
    };
    (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino())
}

/// Attack (CVE-2019-5736, and ptrace): `exec --cap CAP_SYS_PTRACE` into a created container, whose
/// waiting process is a fork of the runtime's binary with `create`'s privileges: the exec'd process
/// opens that binary through /proc/1/exe and overwrites it once `create` has exited, and the host's
/// next call of the runtime runs the container's program; or, the copy sealed because the config
/// grants CAP_SYS_PTRACE, takes the process over with ptrace. Refused until the container has started.
/// The runtime here is a copy, so the test's own binary is never at stake.
#[test]
fn exec_with_sys_ptrace_never_reaches_an_unsealed_waiting_process() {
    let test = "exec_with_sys_ptrace_never_reaches_an_unsealed_waiting_process";
    if !ready(test) || !nskit::testing::require_root(test) {
        return;
    }
    let copies = TempDir::new("runtime-copy");
    let runtime = copies.path().join("combined");
    fs::copy(common::COMBINED, &runtime).unwrap();
    let original = fs::read(&runtime).unwrap();
    let b = Bundle::new(&["sleep", "100"]);
    let create = b
        .runtime_at(&runtime, &["create", "--bundle", b.dir.str(), "g1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(create.success());
    let overwrite = "exec 3</proc/1/exe; while ! echo replaced > /proc/self/fd/3; do sleep 0.02; done";
    let refused = b.to_files(&[
        "exec",
        "--detach",
        "--cap",
        "CAP_SYS_PTRACE",
        "g1",
        "sh",
        "-c",
        overwrite,
    ]);
    // Started, the container's process is its own command, and the same exec is allowed.
    output(&mut b.runtime(&["start", "g1"])).ok();
    let allowed = output(&mut b.runtime(&["exec", "--cap", "CAP_SYS_PTRACE", "g1", "true"]));
    // Time for the overwrite, had the first exec been let in.
    std::thread::sleep(Duration::from_millis(300));
    output(&mut b.runtime(&["delete", "--force", "g1"])).ok();
    assert!(
        fs::read(&runtime).unwrap() == original,
        "the container overwrote the runtime's binary"
    );
    assert_eq!(refused.code(), 1, "{refused:?}");
    assert!(refused.stderr.contains("start it first"), "{refused:?}");
    allowed.ok();
    // Sealed, because its config grants CAP_SYS_PTRACE, the waiting process still holds create's
    // capabilities and no seccomp filter, which ptrace would hand over: refused as well.
    let sealed = Bundle::new(&["sleep", "100"]);
    sealed.edit(grant_sys_ptrace);
    sealed.create(&["--bundle", sealed.dir.str(), "g2"]).ok();
    let refused = sealed.to_files(&["exec", "g2", "true"]);
    output(&mut sealed.runtime(&["delete", "--force", "g2"])).ok();
    assert_eq!(refused.code(), 1, "{refused:?}");
    assert!(refused.stderr.contains("start it first"), "{refused:?}");
}

/// Attack (CVE-2019-5736, later): a debugger started with `exec --cap CAP_SYS_PTRACE` waits for the
/// next `exec` process, still the runtime's binary while it sets up, opens that binary through its
/// /proc/<pid>/exe and overwrites it once nothing runs it. Every `exec` after one granted
/// CAP_SYS_PTRACE runs from the sealed copy. The runtime is a copy, as above.
#[test]
fn a_ptrace_exec_never_reaches_a_later_exec_s_binary() {
    let test = "a_ptrace_exec_never_reaches_a_later_exec_s_binary";
    if !ready(test) || !nskit::testing::require_root(test) {
        return;
    }
    let copies = TempDir::new("runtime-copy");
    let runtime = copies.path().join("combined");
    fs::copy(common::COMBINED, &runtime).unwrap();
    let original = fs::read(&runtime).unwrap();
    let b = Bundle::new(&["sleep", "100"]);
    let create = b.to_files(&["create", "--bundle", b.dir.str(), "d1"]);
    create.ok();
    output(&mut b.runtime(&["start", "d1"])).ok();
    // Shell builtins only (no fork per look), to catch a process that lives a few milliseconds: an
    // exec process is the runtime's binary, named after it, until it executes its command.
    let watch = "while :; do for d in /proc/[0-9]*; do read c < $d/comm 2>/dev/null; \
                 if [ \"$c\" = combined ] && exec 3<$d/exe 2>/dev/null; then \
                 while ! echo replaced > /proc/self/fd/3; do sleep 0.02; done; exit; fi; done; done";
    b.to_files(&[
        "exec",
        "--detach",
        "--cap",
        "CAP_SYS_PTRACE",
        "d1",
        "sh",
        "-c",
        watch,
    ])
    .ok();
    for _ in 0..nskit::testing::scaled(40) {
        let later = b
            .runtime_at(&runtime, &["exec", "d1", "true"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(later.success());
    }
    // Time for the overwrite, had a later exec not been sealed.
    std::thread::sleep(Duration::from_millis(300));
    output(&mut b.runtime(&["delete", "--force", "d1"])).ok();
    assert!(
        fs::read(&runtime).unwrap() == original,
        "the container overwrote the runtime's binary"
    );
}

/// `linux.devices` become nodes in the container's /dev, with their mode and owner (made with mknod
/// as root; bound from the host's same node in a user namespace). An engine's device rules allowing
/// more grant nothing more: with CAP_MKNOD and `c *:* rwm`, a node the container makes elsewhere does
/// not open (every other mount is nodev) and /dev takes none (read-only).
#[test]
fn config_devices_are_made_and_no_other_node_opens() {
    if !ready("config_devices_are_made_and_no_other_node_opens") {
        return;
    }
    let root = nskit::userns::is_root();
    let script = "ls -ln /dev/extra/fifo | cut -c1-10; ls -ln /dev/net/tun | cut -c1-10; \
                  mknod /tmp/mem c 1 1 && head -c1 /tmp/mem && echo opened; \
                  mknod /dev/mem2 c 1 1 && echo made in /dev; echo end";
    let b = Bundle::new(&["sh", "-c", script]);
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/extra/fifo", "type": "p", "fileMode": 0o640},
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o600},
        ]);
        c["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "rwm"},
        ]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_MKNOD".into());
        }
    });
    if !root && !Path::new("/dev/net/tun").exists() {
        eprintln!("config_devices_are_made_and_no_other_node_opens: the host has no /dev/net/tun to bind");
        return;
    }
    let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "dev1"]));
    let text = out.ok();
    // A bound host node keeps the host's mode: changing it would change the host's.
    let tun = if root { "crw-------\n" } else { "c" };
    assert!(text.starts_with(&format!("prw-r-----\n{tun}")), "{out:?}");
    assert!(
        !text.contains("opened"),
        "a node made on a nodev mount opened: {out:?}"
    );
    assert!(
        !text.contains("made in /dev"),
        "the container added a node to /dev: {out:?}"
    );
    assert!(text.ends_with("end\n"), "{out:?}");

    // Where the kernel has a v1 device controller, root's containers get a device cgroup with the
    // config's rules, and "deny all" (podman's) still leaves the nodes every container has.
    if root && Path::new("/sys/fs/cgroup/devices/devices.list").exists() {
        b.edit(|c| {
            c["linux"]["devices"] = serde_json::json!([]);
            c["linux"]["resources"]["devices"] = serde_json::json!([{"allow": false, "access": "rwm"}]);
            c["process"]["args"] = serde_json::json!(["sleep", "100"]);
        });
        b.create(&["--bundle", b.dir.str(), "dev3"]).ok();
        let pid = b.state("dev3")["pid"].as_i64().unwrap();
        let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let devices = cgroups.lines().find(|l| l.contains(":devices:")).unwrap();
        assert!(
            !devices.ends_with(":/"),
            "the container is in a device cgroup of its own: {devices}"
        );
        let dir = Path::new("/sys/fs/cgroup/devices")
            .join(devices.rsplit(':').next().unwrap().trim_start_matches('/'));
        let list = fs::read_to_string(dir.join("devices.list")).unwrap();
        assert!(
            list.contains("c 1:5 rwm") && !list.contains("a *:*"),
            "deny all, the standard nodes allowed: {list}"
        );
        output(&mut b.runtime(&["start", "dev3"])).ok();
        let zero = output(&mut b.runtime(&["exec", "dev3", "sh", "-c", "head -c 1 /dev/zero | wc -c"]));
        assert_eq!(zero.ok().trim(), "1", "/dev/zero opens under deny-all");
        output(&mut b.runtime(&["delete", "--force", "dev3"])).ok();
    }
    // A node the host does not have cannot be bound in a user namespace: said so, by path.
    if !root {
        b.edit(|c| {
            c["linux"]["devices"] =
                serde_json::json!([{"path": "/dev/nothere", "type": "c", "major": 10, "minor": 250}])
        });
        let out = output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "dev2"]));
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(out.stderr.contains("/dev/nothere"), "{out:?}");
    }
}

/// `--preserve-fds N` hands descriptors 3 to 3 + N - 1 on to the command (as socket activation and
/// engines' pipes use it), and nothing else of the caller's: without it, descriptor 3 is not there.
#[test]
fn preserved_descriptors_reach_the_command_and_no_others() {
    if !ready("preserved_descriptors_reach_the_command_and_no_others") {
        return;
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let b = Bundle::new(&[
        "sh",
        "-c",
        "echo through-fd-3 >&3 && echo wrote; ls /proc/self/fd",
    ]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let run = |preserve: &str, id: &str| {
        let handle = file.reopen().unwrap();
        let fd = handle.as_raw_fd();
        let mut cmd = b.runtime(&["run", "--preserve-fds", preserve, "--bundle", b.dir.str(), id]);
        // SAFETY: the closure runs between fork and exec and makes one async-signal-safe call, dup2,
        // with integers only: the file at descriptor 3 (without close-on-exec), as an engine passes one.
        unsafe {
            cmd.pre_exec(move || put_at_3(fd));
        }
        let out = output(&mut cmd);
        drop(handle);
        out
    };
    let passed = run("1", "p1");
    let text = passed.ok();
    assert!(text.starts_with("wrote\n"), "{passed:?}");
    assert_eq!(fs::read_to_string(file.path()).unwrap(), "through-fd-3\n");
    // Descriptor 3 and ls's own (4), nothing more of the runtime's.
    assert!(text.ends_with("0\n1\n2\n3\n4\n"), "{passed:?}");
    let kept_back = run("0", "p2");
    assert!(!kept_back.ok().contains("wrote"), "{kept_back:?}");
    assert_eq!(
        fs::read_to_string(file.path()).unwrap(),
        "through-fd-3\n",
        "nothing more was written"
    );
}

/// dup2(2) of `fd` onto descriptor 3.
fn put_at_3(fd: i32) -> std::io::Result<()> {
    // SAFETY: dup2 takes two integers and no pointer.
    match unsafe { libc::dup2(fd, 3) } {
        -1 => Err(std::io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// A time namespace of the container's own with the config's offsets (the time chapter's recipe: the
/// offsets written before the command exists, its execve entering the namespace), which `exec` joins
/// too; and `linux.personality` LINUX32, which `uname -m` reports.
#[test]
fn time_offsets_and_personality_reach_the_command_and_exec() {
    if !ready("time_offsets_and_personality_reach_the_command_and_exec") {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "cut -d. -f1 /proc/uptime; uname -m; sleep 100"]);
    let week = 7 * 86_400;
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "time"}));
        c["linux"]["timeOffsets"] =
            serde_json::json!({"boottime": {"secs": week}, "monotonic": {"secs": week}});
        c["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"});
    });
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut create = b.runtime(&["create", "--bundle", b.dir.str(), "t1"]);
    let status = create
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .status()
        .unwrap();
    let said = fs::read_to_string(err.path()).unwrap();
    if kernel_before(6, 2) {
        // execve enters the time namespace only since 6.2: the offsets would not apply, so refused.
        assert!(!status.success() && said.contains("needs Linux 6.2"), "{said}");
        return;
    }
    assert!(status.success(), "{said}");
    output(&mut b.runtime(&["start", "t1"])).ok();
    eventually("the command has printed", || {
        fs::read_to_string(out.path()).unwrap().lines().count() >= 2
    });
    let printed = fs::read_to_string(out.path()).unwrap();
    let uptime: i64 = printed.lines().next().unwrap().parse().unwrap();
    assert!(
        uptime >= week,
        "uptime {uptime} s within the namespace: {printed}"
    );
    assert_eq!(printed.lines().nth(1), Some("i686"), "{printed}");
    let host: i64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        host < week || uptime >= host + week - 5,
        "the host's clock is not the namespace's"
    );
    let exec = output(&mut b.runtime(&["exec", "t1", "sh", "-c", "cut -d. -f1 /proc/uptime"]));
    let exec_uptime: i64 = exec.ok().trim().parse().unwrap();
    assert!(
        exec_uptime >= week,
        "exec joins the time namespace: {exec_uptime}"
    );
    output(&mut b.runtime(&["delete", "--force", "t1"])).ok();
}

/// Whether the running kernel is older than `major.minor`.
fn kernel_before(major: u32, minor: u32) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut numbers = release
        .trim()
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) < (major, minor)
}

/// The same attack through a link: a hook named by a path in the rootfs that, at create, is a link to
/// a host program (so it resolves outside the rootfs). The container replaces the link with a program
/// of its own; the late hooks must still run what the path named at create.
#[test]
fn a_late_hook_through_a_link_in_the_rootfs_runs_as_it_was_at_create() {
    if !ready("a_late_hook_through_a_link_in_the_rootfs_runs_as_it_was_at_create") {
        return;
    }
    let b = Bundle::new(&[
        "sh",
        "-c",
        "rm /hook; printf '#!/bin/sh\\necho hijacked >> \"$1\"\\n' > /hook; chmod 755 /hook",
    ]);
    let host_program = b.dir.path().join("host-hook");
    let record = b.dir.path().join("ran");
    fs::write(&host_program, "#!/bin/sh\necho original >> \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&host_program, fs::Permissions::from_mode(0o755)).unwrap();
    let hook = b.dir.path().join("rootfs/hook");
    std::os::unix::fs::symlink(&host_program, &hook).unwrap();
    if !nskit::userns::is_root() {
        fs::set_permissions(b.dir.path().join("rootfs"), fs::Permissions::from_mode(0o777)).unwrap();
    }
    let run_hook = serde_json::json!([{"path": hook, "args": ["hook", record]}]);
    b.edit(|c| {
        c["hooks"] = serde_json::json!({"poststart": run_hook, "poststop": run_hook});
        c["root"]["readonly"] = false.into();
    });
    output(&mut b.runtime(&["run", "--bundle", b.dir.str(), "late-link"])).ok();
    assert!(
        fs::read_to_string(&hook).unwrap().contains("hijacked"),
        "the container did replace the link"
    );
    let ran = fs::read_to_string(&record).unwrap_or_default();
    assert!(
        !ran.contains("hijacked"),
        "a hook ran what the container wrote: {ran:?}"
    );
    assert!(
        ran.ends_with("original\n"),
        "the hooks ran the program of create: {ran:?}"
    );
}

/// The attack on the terminal, through `exec`: a runtime run at the host's terminal (as a person runs
/// `combined exec`, or an engine in the foreground) brings a process into the container with that
/// terminal as its stdio. The process starts a session of its own, so the host terminal is not its
/// controlling terminal: /dev/tty does not open (and TIOCSTI on it would be refused), and nothing
/// reaches the host shell's input queue. Its command comes from a volume (the host's static busybox),
/// which `exec` finds in the container's own root, mounts included.
#[test]
fn an_exec_process_at_the_host_terminal_does_not_get_it() {
    if !ready("an_exec_process_at_the_host_terminal_does_not_get_it") {
        return;
    }
    let b = Bundle::new(&["sleep", "100"]);
    let busybox = common::BUSYBOX;
    b.edit(|c| {
        let mount = serde_json::json!({"destination": "/tools/busybox", "type": "bind", "source": busybox, "options": ["bind", "ro"]});
        c["mounts"].as_array_mut().unwrap().push(mount);
    });
    b.create(&["--bundle", b.dir.str(), "tty1"]).ok();
    output(&mut b.runtime(&["start", "tty1"])).ok();
    let mut term = common::Terminal::new(24, 80);
    let script = "echo from-volume; if (exec 3</dev/tty); then echo HAS-TTY; else echo no-tty; fi";
    let mut exec = b.runtime(&["exec", "tty1", "/tools/busybox", "sh", "-c", script]);
    let mut child = term.spawn(&mut exec);
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    let shown = term.settle().to_owned();
    output(&mut b.runtime(&["delete", "--force", "tty1"])).ok();
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("from-volume"), "the volume's program ran: {shown}");
    assert!(
        shown.contains("no-tty") && !shown.contains("HAS-TTY"),
        "no controlling terminal: {shown}"
    );
    assert_eq!(
        term.input_queue(),
        0,
        "nothing waits for the host's shell: {shown}"
    );
}
