//! The guest's `/init` for `cargo xtask test-vm`: PID 1 of a throwaway virtual machine. It follows
//! the kernel's own contract for an initramfs (Documentation/filesystems/ramfs-rootfs-initramfs.rst):
//! the kernel unpacks the cpio archive and runs `/init`, which must never exit. The story:
//!
//! 1. mount /proc, /sys and /dev (devtmpfs) in the initramfs;
//! 2. load the kernel modules the host packed, in dependency order (finit_module(2));
//! 3. find the virtio-serial ports (result, output, control) and report `booted` and the time each
//!    step took (`phase modules 310`);
//! 4. share mode: mount the host's `/` read-only over 9p, lay a tmpfs over it with overlayfs, and
//!    move that onto `/` and chroot into it (pivot_root(2) refuses the initramfs root); copy mode
//!    (the host packed the tests into the initramfs): bind the initramfs onto itself the same way,
//!    so that the tests' own pivot_root(2) calls see an ordinary mount as their root;
//! 5. mount fresh /proc, /sys, /dev, /dev/pts, /dev/shm, /dev/mqueue, and cgroup2 on /sys/fs/cgroup
//!    with a subtree delegated to each unprivileged run's uid (`cgroup`), and allow user namespaces;
//! 6. ask the host for a job (a test binary and a run: root with `NS_REQUIRE_PRIV=1`, or uid 65534
//!    with `NS_REQUIRE_PRIV=userns`), run it in its package directory, report its outcome, and ask
//!    again until the host says `stop`: several guests share the host's one queue;
//! 7. report this guest's verdict and power off.
//!
//! Built statically (`-C target-feature=+crt-static`), so it needs no library in the initramfs.

mod cgroup;
mod conf;
mod sys;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conf::{Conf, Run, Test};

const CONF: &str = "/xtask-vm.conf";
const RESULT_PORT: &str = "xtask.result";
const OUTPUT_PORT: &str = "xtask.output";
const CONTROL_PORT: &str = "xtask.control";
/// The lines that frame a job's output on the output port (the host splits the stream by them).
const RUNNING: &str = "vm-init: running ";
const FINISHED: &str = "vm-init: finished ";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MS_RDONLY: libc::c_ulong = libc::MS_RDONLY;
const MS_NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;

fn main() {
    if let Err(e) = init() {
        say(&format!("vm-init: {e}"));
    }
    // PID 1 must not exit (the kernel would panic); power off instead.
    let e = sys::power_off();
    say(&format!("vm-init: cannot power off: {e}"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Prints to the console (the kernel's /dev/console, our stdout).
fn say(line: &str) {
    let _ = writeln!(io::stdout(), "{line}");
}

fn init() -> Result<(), String> {
    // 1. The kernel's pseudo-file systems, inside the initramfs.
    mount_basics("").map_err(|e| format!("cannot mount /proc, /sys, /dev: {e}"))?;
    // The kernel's boot, to within the millisecond the mounts took (/proc/uptime needs /proc).
    let started_ms = uptime_ms();
    let text = fs::read_to_string(CONF).map_err(|e| format!("cannot read {CONF}: {e}"))?;
    let conf = Conf::parse(&text).map_err(|e| format!("{CONF}: {e}"))?;

    // 2. Modules, dependencies first (the host ordered them).
    let mut phase = Phase::start();
    for module in &conf.modules {
        load(module);
    }
    let modules_ms = phase.lap();

    // 3. The ports, then the first lines of the report.
    let mut reporter = Reporter::open(conf.shell.is_none());
    let ports_ms = phase.lap();
    reporter.line(&format!("booted {started_ms}"));
    reporter.line(&format!("phase modules {modules_ms}"));
    reporter.line(&format!("phase ports {ports_ms}"));

    // 4. The root the tests run in.
    match &conf.share {
        Some(tag) => {
            enter_shared_root(tag).map_err(|e| format!("cannot enter the host's root over 9p: {e}"))?
        }
        None => enter_copied_root().map_err(|e| format!("cannot bind the initramfs root: {e}"))?,
    }

    // 5. A fresh system view in the new root.
    mount_system().map_err(|e| format!("cannot mount the system directories: {e}"))?;
    let unprivileged: Vec<u32> = conf
        .runs
        .iter()
        .map(|run| run.uid)
        .filter(|&uid| uid != 0)
        .collect();
    if let Err(e) = cgroup::set_up(&unprivileged) {
        // The cgroup tests then fail (as root, NS_REQUIRE_PRIV=1 forbids skipping): say why here.
        say(&format!("vm-init: cannot set up cgroup v2: {e}"));
    }
    let _ = sys::set_hostname("xtask-vm");
    // Debian's switch; absent (and always allowed) on upstream kernels.
    let _ = fs::write("/proc/sys/kernel/unprivileged_userns_clone", "1");
    if conf.runs.iter().any(|run| run.uid != 0) {
        for test in &conf.tests {
            make_reachable(&test.executable);
            make_reachable(&test.package_dir);
        }
    }
    reporter.line(&format!("phase root {}", phase.lap()));

    if let Some(shell) = &conf.shell {
        return run_shell(shell);
    }

    // 6. The jobs the host hands out, until it says stop.
    let mut control = Control::open()?;
    let mut all_passed = true;
    while let Some(job) = control.next_job()? {
        let (test, run) = conf.job(&job)?;
        let outcome = run_test(test, run, &conf, &mut reporter);
        all_passed &= outcome == "pass";
    }

    // 7. The verdict; main powers off.
    reporter.line(if all_passed {
        "verdict pass"
    } else {
        "verdict fail"
    });
    reporter.flush();
    Ok(())
}

/// Times the steps of the boot, one after another.
struct Phase(Instant);

impl Phase {
    fn start() -> Phase {
        Phase(Instant::now())
    }

    /// Milliseconds since the last call (or the start).
    fn lap(&mut self) -> u128 {
        let now = Instant::now();
        let ms = now.duration_since(self.0).as_millis();
        self.0 = now;
        ms
    }
}

/// /proc, /sys and a devtmpfs /dev under `root` ("" for the current root).
fn mount_basics(root: &str) -> io::Result<()> {
    // /dev must allow device nodes, of course: only proc and sysfs get nodev.
    let basics = [
        ("proc", "proc", MS_NOSUID_NODEV),
        ("sysfs", "sys", MS_NOSUID_NODEV),
        ("devtmpfs", "dev", libc::MS_NOSUID),
    ];
    for (fstype, dir, flags) in basics {
        let target = format!("{root}/{dir}");
        fs::create_dir_all(&target)?;
        sys::mount(fstype, &target, fstype, flags, "")
            .map_err(|e| io::Error::new(e.kind(), format!("{target}: {e}")))?;
    }
    Ok(())
}

fn load(module: &str) {
    let result = File::open(module).and_then(|f| sys::load_module(&f));
    match result {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => say(&format!("vm-init: cannot load {module}: {e}")),
    }
}

/// Milliseconds since the kernel started (`/proc/uptime`, proc(5)).
fn uptime_ms() -> u64 {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|u| u.parse::<f64>().ok()))
        .map_or(0, |secs| (secs * 1000.0) as u64)
}

/// Writes the report (result port) and the tests' output (output port); the console when a port is
/// missing, so nothing is lost silently.
struct Reporter {
    result: Option<File>,
    output: Option<File>,
}

impl Reporter {
    /// Finds the ports; `expected` when the host attached them (not for a shell).
    fn open(expected: bool) -> Reporter {
        if !expected {
            return Reporter {
                result: None,
                output: None,
            };
        }
        // The ports appear while virtio_console probes; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        while [RESULT_PORT, OUTPUT_PORT, CONTROL_PORT]
            .iter()
            .any(|name| port_device(name).is_none())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let open = |name| port_device(name).and_then(|dev| OpenOptions::new().write(true).open(dev).ok());
        let result = open(RESULT_PORT);
        if result.is_none() {
            say("vm-init: no result port: reporting on the console");
        }
        Reporter {
            result,
            output: open(OUTPUT_PORT),
        }
    }

    fn line(&mut self, line: &str) {
        match &mut self.result {
            Some(port) => {
                let _ = writeln!(port, "{line}");
            }
            None => say(&format!("vm-init: {line}")),
        }
    }

    /// Where a test's stdout and stderr go.
    fn output(&self) -> Stdio {
        match self.output.as_ref().and_then(|f| f.try_clone().ok()) {
            Some(f) => Stdio::from(f),
            None => Stdio::inherit(),
        }
    }

    fn note(&mut self, text: &str) {
        match &mut self.output {
            Some(port) => {
                let _ = writeln!(port, "{text}");
            }
            None => say(text),
        }
    }

    fn flush(&mut self) {
        for port in [&mut self.result, &mut self.output].into_iter().flatten() {
            let _ = port.flush();
            let _ = port.sync_all();
        }
    }
}

/// `/dev/vportNpM` whose `/sys/class/virtio-ports/vportNpM/name` is `name`.
fn port_device(name: &str) -> Option<std::path::PathBuf> {
    for entry in fs::read_dir("/sys/class/virtio-ports").ok()?.flatten() {
        let port_name = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if port_name.trim() == name {
            return Some(Path::new("/dev").join(entry.file_name()));
        }
    }
    None
}

/// The control port, the guest's side of the host's job queue: the guest writes `next`, the host
/// answers `job RUN TEST` or `stop`. The write waits until the host's end is connected
/// (virtio_console's port_fops_write), so a read that then finds nothing means the host went away.
struct Control {
    port: File,
    replies: BufReader<File>,
}

impl Control {
    fn open() -> Result<Control, String> {
        let device = port_device(CONTROL_PORT).ok_or("no control port, so no jobs from the host")?;
        let port = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&device)
            .map_err(|e| format!("cannot open {}: {e}", device.display()))?;
        let replies = BufReader::new(port.try_clone().map_err(|e| e.to_string())?);
        Ok(Control { port, replies })
    }

    /// The next job, or `None` when the queue is empty.
    fn next_job(&mut self) -> Result<Option<String>, String> {
        writeln!(self.port, "next").map_err(|e| format!("cannot ask the host for a job: {e}"))?;
        let mut reply = String::new();
        let read = self
            .replies
            .read_line(&mut reply)
            .map_err(|e| format!("cannot read the host's reply: {e}"))?;
        match reply.trim_end() {
            _ if read == 0 => Err("the host closed the control port".into()),
            "stop" => Ok(None),
            job => Ok(Some(job.to_owned())),
        }
    }
}

// ANCHOR: shared_root
/// Step 4: the host's `/` (read-only, 9p) under a tmpfs upper layer, made the root.
fn enter_shared_root(tag: &str) -> io::Result<()> {
    for dir in ["/host", "/rw", "/newroot"] {
        fs::create_dir_all(dir)?;
    }
    // msize: larger 9p messages mean fewer round trips through the emulated virtio queue.
    sys::mount(
        tag,
        "/host",
        "9p",
        MS_RDONLY,
        "trans=virtio,version=9p2000.L,msize=512000,cache=loose",
    )?;
    sys::mount("tmpfs", "/rw", "tmpfs", 0, "mode=0755")?;
    fs::create_dir_all("/rw/upper")?;
    fs::create_dir_all("/rw/work")?;
    sys::mount(
        "overlay",
        "/newroot",
        "overlay",
        0,
        "lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work",
    )?;
    switch_root("/newroot")
}

/// The switch_root dance: move the new root over /, then chroot into it.
fn switch_root(new_root: &str) -> io::Result<()> {
    std::env::set_current_dir(new_root)?;
    sys::mount(".", "/", "", libc::MS_MOVE, "")?;
    std::os::unix::fs::chroot(".")?;
    std::env::set_current_dir("/")
}
// ANCHOR_END: shared_root

/// Step 4 in copy mode: the tests are already in the initramfs, but its root is the one mount
/// pivot_root(2) always refuses (it has no parent). A bind mount of it, made the root, has one; and
/// unlike the initramfs it leaves behind /proc, /sys and /dev, mounted afresh in step 5.
fn enter_copied_root() -> io::Result<()> {
    fs::create_dir_all("/newroot")?;
    sys::mount("/", "/newroot", "", libc::MS_BIND, "")?;
    switch_root("/newroot")
}

/// Step 5: the directories every program expects, fresh in the current root.
fn mount_system() -> io::Result<()> {
    mount_basics("")?;
    let mounts = [
        (
            "devpts",
            "/dev/pts",
            "devpts",
            "newinstance,ptmxmode=0666,mode=0620",
        ),
        ("tmpfs", "/dev/shm", "tmpfs", "mode=1777"),
        ("mqueue", "/dev/mqueue", "mqueue", ""),
        // No fresh /tmp or /run: the workspace (and its test binaries) may live under either, as a CI
        // clone in /tmp does. Writes there land in the overlay's tmpfs layer, never on the host.
    ];
    for (source, target, fstype, data) in mounts {
        fs::create_dir_all(target)?;
        sys::mount(source, target, fstype, MS_NOSUID_NODEV, data)
            .map_err(|e| io::Error::new(e.kind(), format!("{target}: {e}")))?;
    }
    Ok(())
}

/// Lets uid 65534 reach `path`: every directory above it searchable, the file itself readable and
/// executable. The changes land in the tmpfs layer, never on the host.
fn make_reachable(path: &str) {
    for ancestor in Path::new(path).ancestors() {
        let Ok(meta) = fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o005 != 0o005 {
            let _ = fs::set_permissions(ancestor, fs::Permissions::from_mode(mode | 0o005));
        }
    }
}

// ANCHOR: run_test
/// Step 6 for one job: runs the binary as the run says, reports `test RUN OUTCOME MS BINARY`, and
/// returns the outcome. Its output is framed by a `running` and a `finished` line, by which the host
/// tells one job's output from the next.
fn run_test(test: &Test, run: &Run, conf: &Conf, reporter: &mut Reporter) -> String {
    reporter.note(&format!(
        "{RUNNING}{} as {} (uid {}, NS_REQUIRE_PRIV={})",
        test.executable, run.name, run.uid, run.require_priv
    ));
    let start = Instant::now();
    let mut cmd = Command::new(&test.executable);
    cmd.args(&conf.args)
        .current_dir(&test.package_dir)
        .env_clear()
        .env("PATH", PATH)
        .envs(conf.env.iter().map(|(k, v)| (k, v)))
        .env("NS_REQUIRE_PRIV", &run.require_priv)
        // One test at a time, as `.cargo/config.toml` sets it for cargo (see that file for why).
        .env("RUST_TEST_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(reporter.output())
        .stderr(reporter.output());
    if run.uid == 0 {
        cmd.env("HOME", "/root");
    } else {
        // In its delegated cgroup (step 5), then as the run's uid, without supplementary groups.
        cgroup::start_delegated(&mut cmd, run.uid);
    }
    // Not `status()`: as PID 1, init must also reap the orphans a test leaves behind.
    let outcome = match cmd.spawn().and_then(|child| sys::wait_reaping(child.id())) {
        Ok(sys::Ended::Code(0)) => "pass".to_owned(),
        Ok(sys::Ended::Code(code)) => format!("exit:{code}"),
        Ok(sys::Ended::Signal(signal)) => format!("signal:{signal}"),
        Err(e) => format!("error:{}", e.kind()).replace(' ', "_"),
    };
    let ms = start.elapsed().as_millis();
    reporter.note(&format!(
        "{FINISHED}{} as {}: {outcome} in {ms} ms",
        test.executable, run.name
    ));
    reporter.line(&format!("test {} {outcome} {ms} {}", run.name, test.executable));
    outcome
}
// ANCHOR_END: run_test

/// `--shell`: an interactive shell on the console, with job control; powers off when it exits.
fn run_shell(shell: &str) -> Result<(), String> {
    say("\nvm-init: the test VM's shell (exit or Ctrl-D powers off; Ctrl-A x quits QEMU)");
    // /dev/console cannot be a controlling terminal; the serial port behind it can.
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/ttyS0")
        .map_err(|e| format!("cannot open /dev/ttyS0: {e}"))?;
    let clone = |f: &File| f.try_clone().map(Stdio::from).map_err(|e| e.to_string());
    let mut cmd = Command::new(shell);
    cmd.stdin(clone(&tty)?)
        .stdout(clone(&tty)?)
        .stderr(clone(&tty)?)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .env("TERM", "linux")
        .current_dir("/");
    // SAFETY: the closure makes only async-signal-safe system calls (setsid, ioctl).
    unsafe {
        cmd.pre_exec(sys::become_session_leader_with_terminal);
    }
    cmd.status().map_err(|e| format!("cannot run {shell}: {e}"))?;
    Ok(())
}
