//! Support for `combined`'s integration tests: running the launcher binary with a deadline, a tiny
//! busybox root filesystem made in a temporary directory, and a snapshot of the host state a run could
//! leave behind (mounts, veths, processes, temporary files), compared before and after.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nskit::testing;

/// The launcher under test, built by cargo for this test run.
pub const COMBINED: &str = env!("CARGO_BIN_EXE_combined");

/// How long any single run may take before the test calls it hung.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The busybox applets the test root filesystem links.
const APPLETS: [&str; 30] = [
    "sh", "ls", "cat", "echo", "id", "hostname", "ps", "sleep", "mount", "mknod", "touch", "grep", "ip",
    "ping", "nc", "pwd", "true", "false", "test", "wc", "stat", "tr", "env", "rm", "mkdir", "readlink",
    "head", "tty", "stty", "yes",
];

/// Whether namespaced tests can run here (root, or unprivileged user namespaces); prints why not.
pub fn namespaces(test: &str) -> bool {
    testing::require_namespaces(test)
}

/// Where the launchers the tests run keep their caches (compiled seccomp filters; images, unless a
/// test gives its own): cargo's scratch directory for integration tests, not the user's home, one
/// directory per user, since the launcher trusts no cache another user owns. Whoever runs the tests
/// as another user prepares that user's directory (`cargo xtask ci` and `test-vm` for uid 65534:
/// xtask's `util::give_test_cache`); where no one did, the launcher compiles its filter every run.
pub fn cache() -> String {
    format!("{}/cache-{}", env!("CARGO_TARGET_TMPDIR"), nix::unistd::geteuid())
}

/// A command line for the launcher, with a clean environment of its own: no inherited
/// `COMBINED_FAULT`, a private `TMPDIR` and cache.
pub fn combined(args: &[&str]) -> Command {
    combined_at(Path::new(COMBINED), args)
}

/// [`combined`], but the launcher binary at `program` (a copy a test may let a container attack).
pub fn combined_at(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove(combined::FAULT_VAR)
        .env("XDG_CACHE_HOME", cache())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What a finished run printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code; a launcher killed by a signal fails the test.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("the launcher was killed: {self:?}"))
    }

    /// Asserts the run succeeded and returns its standard output.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code(), 0, "the run failed: {self:#?}");
        &self.stdout
    }

    /// Asserts a launcher error: exit 125, one line on stderr, nothing on stdout.
    pub fn launcher_error(&self) -> &str {
        assert_eq!(self.code(), 125, "expected a launcher error: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "a launcher error is one line: {self:#?}");
        assert!(lines[0].starts_with("combined: "), "{self:#?}");
        assert!(self.stdout.is_empty(), "{self:#?}");
        lines[0]
    }
}

/// Runs `cmd` to the end (at most [`DEADLINE`]), collecting its output.
pub fn output(cmd: &mut Command) -> Outcome {
    let child = cmd.spawn().expect("spawn combined");
    finish(child)
}

/// Shorthand: `combined run <args>` to the end.
pub fn run(args: &[&str]) -> Outcome {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    output(&mut combined(&full))
}

/// Waits for a spawned launcher (killing it after [`DEADLINE`]) and collects its piped output.
pub fn finish(child: Child) -> Outcome {
    finish_within(child, DEADLINE)
}

/// [`finish`] with a deadline of its own, for runs that share the machine with many others.
pub fn finish_within(mut child: Child, limit: Duration) -> Outcome {
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    })
    .collect();
    let status = wait_deadline(&mut child, limit);
    let mut texts = readers.into_iter().map(|r| r.join().expect("reader thread"));
    Outcome {
        status,
        stdout: texts.next().unwrap_or_default(),
        stderr: texts.next().unwrap_or_default(),
    }
}

/// Waits for `child`; after `limit`, kills it and fails the test. It sleeps in poll(2) on a pidfd of
/// the child (pidfd_open(2)), which wakes the moment the child exits, rather than looking at it every
/// few milliseconds.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    // Waited for already (std keeps the status): its PID may name another process by now.
    if let Some(status) = child.try_wait().expect("wait for combined") {
        return status;
    }
    let exited = pidfd(child);
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(exited.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)) {
            Ok(0) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("combined (pid {}) did not finish within {limit:?}", child.id());
            }
            Ok(_) => return child.wait().expect("wait for combined"),
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("poll on the pidfd of combined (pid {}): {e}", child.id()),
        }
    }
}

/// A pidfd of `child`, which this process has not yet waited for, so its PID names no other process.
fn pidfd(child: &Child) -> OwnedFd {
    // SAFETY: pidfd_open takes a PID and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    assert!(
        fd >= 0,
        "pidfd_open (Linux 5.3) of combined (pid {}): {}",
        child.id(),
        Errno::last()
    );
    // SAFETY: a descriptor the kernel has just returned to this process, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// A fresh directory under the system's temporary directory (the `tempfile` crate's, removed with what
/// is in it on drop), named for what it holds and open to every user (mode 0755): a container's
/// root or a volume must be reachable by a rootless container's user, and by uid 65534 in CI.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("combined-test-{what}-"))
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir()
            .expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn str(&self) -> &str {
        self.path().to_str().expect("a UTF-8 temporary path")
    }
}

/// Whether `path` is a statically linked ELF executable (its headers name no program interpreter,
/// elf(5)), so that it runs in a root filesystem that holds nothing else.
pub fn is_static_elf(path: &Path) -> bool {
    fs::read(path)
        .is_ok_and(|bytes| goblin::elf::Elf::parse(&bytes).is_ok_and(|elf| elf.interpreter.is_none()))
}

/// The host's statically linked busybox, which the test root filesystems are made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether a busybox rootfs can be made here; prints why not (fails under `NS_REQUIRE_PRIV`).
pub fn have_busybox(test: &str) -> bool {
    let have = is_static_elf(Path::new(BUSYBOX));
    if !have && testing::required() != testing::Required::Nothing {
        panic!(
            "{test}: needs a statically linked {BUSYBOX} (apt-get install busybox-static), and NS_REQUIRE_PRIV requires it"
        );
    }
    if !have {
        eprintln!("skipped {test}: needs a statically linked {BUSYBOX} (apt-get install busybox-static)");
    }
    have
}

/// A minimal root filesystem: busybox, its applets as symlinks, and the directories the launcher
/// mounts on (made here so that a run changes nothing in it).
pub struct Rootfs(TempDir);

impl Rootfs {
    pub fn new() -> Rootfs {
        let dir = TempDir::new("rootfs");
        populate(dir.path());
        Rootfs(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn str(&self) -> &str {
        self.0.str()
    }
}

/// Fills `root` with busybox and the usual empty directories.
pub fn populate(root: &Path) {
    let bin = root.join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
    for applet in APPLETS {
        symlink("busybox", bin.join(applet)).expect("link an applet");
    }
    for dir in ["dev", "proc", "sys", "tmp", "etc", "mnt"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
}

/// Every path under `dir` (symlinks not followed), to prove a run left nothing in it.
pub fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path.clone());
            }
            found.insert(path);
        }
    }
    found
}

/// Processes that a run of this launcher could leave behind: the launcher binary itself (the launcher
/// and the container's init are both that executable, or its sealed copy, `/memfd:combined`), or any
/// program from under `roots`.
pub fn stray_processes(roots: &[&Path]) -> BTreeSet<(i32, PathBuf)> {
    let me = std::process::id() as i32;
    let combined = fs::canonicalize(COMBINED).expect("the launcher binary");
    let mut found = BTreeSet::new();
    for entry in fs::read_dir("/proc").expect("read /proc").filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(exe) = fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        let sealed_copy = exe.to_string_lossy().starts_with("/memfd:combined");
        if pid != me && (exe == combined || sealed_copy || roots.iter().any(|r| exe.starts_with(r))) {
            found.insert((pid, exe));
        }
    }
    found
}

/// The host end of a container's veth pair is `cb<pid>h`, named after the container's host PID.
pub fn host_veth(container_pid: i32) -> String {
    format!("cb{container_pid}h")
}

/// The veths named for a PID just after `launcher` (where its container's PID falls): those are the
/// ones this test's run could have made, whatever other processes on the machine do.
pub fn veths_after(launcher: u32, interfaces: &BTreeSet<String>) -> BTreeSet<String> {
    (launcher as i32..launcher as i32 + 200)
        .map(host_veth)
        .filter(|name| interfaces.contains(name))
        .collect()
}

/// The host state a run could change.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    pub mounts: String,
    pub interfaces: BTreeSet<String>,
    pub children: BTreeSet<i32>,
}

impl HostState {
    /// Take it while holding [`testing::exclusive`], so no other test of this binary mounts meanwhile.
    pub fn now() -> HostState {
        HostState {
            mounts: testing::mount_table(),
            interfaces: testing::interfaces(),
            children: testing::child_processes(),
        }
    }
}

/// The PIDs whose parent is `pid` (/proc/<pid>/task/*/children needs CONFIG_PROC_CHILDREN; this scans).
pub fn children_of(pid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").filter_map(|e| e.ok()) {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid == Some(pid.to_string().as_str()) {
            found.push(child);
        }
    }
    found
}

/// A pseudo-terminal the test owns, as a user's terminal emulator would: the test types into the
/// master and reads what appears there; the program under test gets the slave as its stdin, stdout,
/// stderr and controlling terminal. The test keeps a slave descriptor too, to look at the terminal's
/// mode and input queue from the host's side.
pub struct Terminal {
    master: fs::File,
    slave: std::os::fd::OwnedFd,
    seen: std::sync::mpsc::Receiver<Vec<u8>>,
    pub transcript: String,
    /// Where the next [`Terminal::expect`] starts looking: just after what the last one found.
    cursor: usize,
}

impl Terminal {
    /// A new pty of `rows` x `cols`, with a thread copying its output into the transcript.
    pub fn new(rows: u16, cols: u16) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let master = fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("dup the master");
        let (send, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || send.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            master,
            slave: pty.slave,
            seen,
            transcript: String::new(),
            cursor: 0,
        }
    }

    /// Starts `cmd` on the terminal: in a session of its own whose controlling terminal this is, in
    /// its foreground, as a login shell's child is.
    pub fn spawn(&self, cmd: &mut Command) -> Child {
        cmd.stdout(Stdio::from(self.slave.try_clone().unwrap()))
            .stderr(Stdio::from(self.slave.try_clone().unwrap()));
        self.spawn_on_stdin(cmd)
    }

    /// Like [`Terminal::spawn`], but only stdin is the terminal: stdout and stderr are as `cmd` says.
    pub fn spawn_on_stdin(&self, cmd: &mut Command) -> Child {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let slave_fd = self.slave.as_raw_fd();
        cmd.stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .env("TERM", "dumb");
        // SAFETY: between fork and exec, `take_terminal` calls only async-signal-safe functions (setsid,
        // ioctl) and allocates nothing.
        unsafe {
            cmd.pre_exec(move || take_terminal(slave_fd));
        }
        cmd.spawn().expect("spawn on the terminal")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.master.write_all(bytes).unwrap();
    }

    /// Waits until `wanted` appears on the terminal after what the last `expect` found (output may
    /// arrive in one piece with what came before it).
    pub fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(at) = self.transcript[self.cursor..].find(wanted) {
                self.cursor += at + wanted.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(bytes) => self.transcript.push_str(&String::from_utf8_lossy(&bytes)),
                Err(e) => panic!(
                    "no {wanted:?} on the terminal ({e}); transcript:\n{}",
                    self.transcript
                ),
            }
        }
    }

    /// Takes in what the terminal has shown so far, without waiting.
    pub fn settle(&mut self) -> &str {
        while let Ok(bytes) = self.seen.recv_timeout(Duration::from_millis(200)) {
            self.transcript.push_str(&String::from_utf8_lossy(&bytes));
        }
        &self.transcript
    }

    /// The terminal's mode, as the host's shell would find it.
    pub fn mode(&self) -> String {
        let t = nix::sys::termios::tcgetattr(&self.slave).expect("tcgetattr");
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            t.input_flags, t.output_flags, t.control_flags, t.local_flags, t.control_chars
        )
    }

    /// How many bytes wait in the terminal's input queue, for the next program to read (FIONREAD).
    pub fn input_queue(&self) -> i32 {
        use std::os::fd::AsRawFd;
        let mut waiting: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int to the pointer, which points at a live local int.
        let rc = unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut waiting) };
        assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
        waiting
    }

    /// Changes the terminal's size, as a window resize does; the kernel sends SIGWINCH to its
    /// foreground process group.
    pub fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which points at one.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }
}

/// Makes this process a session leader with the terminal `fd` as its controlling terminal, as a login
/// shell's child has: then Ctrl-C on the terminal signals its foreground process group.
fn take_terminal(fd: i32) -> std::io::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal the terminal) and no pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this user may make the cgroups `--memory`, `--pids-limit` and `--cpus` need (root, or a
/// delegated subtree, as in `cargo xtask test-vm`'s guest).
pub fn limits_allowed() -> bool {
    let limits = cgroup_demo::Limits {
        memory: Some(cgroup_demo::Bytes(64 << 20)),
        memory_swap: cgroup_demo::Swap::Default,
        pids: Some(cgroup_demo::PidsLimit::Max(100)),
        ..cgroup_demo::Limits::default()
    };
    combined::cgroups::placement(&limits).is_ok()
}

/// Every cgroup directory a launcher made (`combined-<pid>`) under /sys/fs/cgroup, in any hierarchy.
pub fn launcher_cgroups() -> BTreeSet<PathBuf> {
    cgroups_where(|name| name.starts_with(combined::cgroups::PREFIX))
        .into_iter()
        .collect()
}

/// Every cgroup directory named `name` under /sys/fs/cgroup, in any hierarchy.
pub fn cgroups_named(name: &str) -> Vec<PathBuf> {
    cgroups_where(|found| found == name)
}

/// Every cgroup directory under /sys/fs/cgroup, in any hierarchy, whose name `matches` (not looking
/// below one that does, nor deeper than six levels).
fn cgroups_where(matches: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if matches(&entry.file_name().to_string_lossy()) {
                found.push(entry.path());
            } else if depth < 6 {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    found
}
