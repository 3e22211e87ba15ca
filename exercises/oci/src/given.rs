//! What the exercises give you: the engine's side and the runtime's side of each conversation, and
//! children that play the container (`clone(2)`, through nskit), composed from the runtime's own
//! library (`combined::oci`, `combined::terminal`) and the mount chapter's. You need not read this to
//! do the exercises, but nothing in it is hidden.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use combined::oci::state::{OCI_VERSION, Record, Root, process_start_time};
use combined::oci::{commands, hooks};
use mnt_demo::Scratch;
use mnt_demo::lab::{child_spawn, mount_tmpfs};
use mnt_demo::rootfs::{Propagation, isolate_root, mount_dev};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nskit::{Channel, Child, ChildError, Spawn, StepError, UserNs};
use oci_spec::runtime::{ContainerState, Hook, Hooks, Spec};

/// How long any step of a lab may take before it counts as never.
const PATIENCE: Duration = Duration::from_secs(10);

fn scratch() -> Result<Scratch, String> {
    Scratch::new().map_err(|e| format!("cannot make a scratch directory: {e}"))
}

/// What a child that failed said, or why it could not say.
fn child_failure(child: &mut Child) -> String {
    match child.channel().recv_reply::<String>() {
        Err(StepError::Child(e)) => e.message,
        Err(other) => other.to_string(),
        Ok(_) => "it finished without an error".into(),
    }
}

/// The executable `name` in /usr/bin or /bin, as /proc/<pid>/exe names it once executed.
fn program(name: &str) -> Result<PathBuf, String> {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .and_then(|path| fs::canonicalize(path).ok())
        .ok_or_else(|| format!("this host has no {name} in /usr/bin or /bin"))
}

/// The program a process runs.
fn exe(pid: i32) -> Result<PathBuf, String> {
    fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| format!("readlink /proc/{pid}/exe: {e}"))
}

// ---- oci-gate ---------------------------------------------------------------------------------------

/// The gate exercise's container.
pub const GATE_ID: &str = "gated";

/// What the gate exercise saw.
#[derive(Debug)]
pub enum GateView {
    /// The container's process did not wait at its gate until `start`: what it did instead.
    DidNotWait(String),
    /// It waited.
    Waited(Gated),
}

/// A container that waited at its gate, before and after `combined start`.
#[derive(Debug)]
pub struct Gated {
    /// What `combined state` said while it waited.
    pub status_before: String,
    /// The program its process ran while it waited.
    pub exe_before: PathBuf,
    /// What `combined start` said.
    pub start: Result<(), String>,
    /// `None` when, after `start`, the process went through its gate; else what it said.
    pub after_start: Option<String>,
    /// What `combined state` said after `start`.
    pub status_after: String,
    /// The program its process ran after `start`.
    pub exe_after: PathBuf,
    /// The container's command, which it executes once through its gate.
    pub command: PathBuf,
}

/// One message from the gate exercise's container.
enum Said {
    Line(String),
    /// Nothing within the time given.
    Nothing,
    /// The end of the stream: the process exited or executed its command.
    Gone,
}

impl Said {
    fn describe(self) -> String {
        match self {
            Said::Line(line) => line.strip_prefix("failed: ").unwrap_or(&line).to_owned(),
            Said::Nothing => "said nothing for 10 s".into(),
            Said::Gone => "exited without a word".into(),
        }
    }
}

fn next_line(from: &mut BufReader<UnixStream>, within: Duration) -> Said {
    if from.get_ref().set_read_timeout(Some(within)).is_err() {
        return Said::Gone;
    }
    let mut line = String::new();
    match from.read_line(&mut line) {
        Ok(0) => Said::Gone,
        Ok(_) => Said::Line(line.trim_end().to_owned()),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Said::Nothing,
        Err(_) => Said::Gone,
    }
}

/// `combined create` and `combined start`, with `wait` as the container's gate. The runtime's part
/// is its own code: a state root in a scratch directory, the container's directory and record, the
/// fifo and its `O_PATH` descriptor made as `create` makes them, then the runtime's real `start` and
/// `state` commands. The container's process is a child in a mount namespace of its own (and a user
/// namespace when you are not root) in which the runtime's state directory is hidden under a tmpfs,
/// as a container's root would leave it out. It calls `wait` with its inherited descriptor, then
/// executes `sleep`, which /proc/<pid>/exe then names.
pub fn gate_lab(wait: fn(BorrowedFd<'_>) -> Result<(), Errno>) -> Result<GateView, String> {
    let scratch = scratch()?;
    let command = program("sleep")?;
    let root = Root::open(&scratch.path().join("state")).map_err(|e| e.to_string())?;
    let container = root.create(GATE_ID).map_err(|e| e.to_string())?;
    let fifo = container.exec_fifo();
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
    let gate = nix::fcntl::open(&fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("open {} O_PATH: {e}", fifo.display()))?;
    // The child's copy; the parent's copy of what the closure holds goes when `run` returns.
    let childs_gate = gate.try_clone().map_err(|e| format!("dup the gate: {e}"))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let hidden = scratch.path().to_owned();
    let argv = vec![
        CString::new(command.as_os_str().as_bytes()).map_err(|e| e.to_string())?,
        CString::from(c"30"),
    ];
    let process = child_spawn(CloneFlags::empty(), false)
        .run(move |_| container_at_gate(&hidden, childs_gate, wait, theirs, &argv))
        .map_err(|e| e.to_string())?;
    // `create` closes its copy once the container's process has its own.
    drop(gate);
    let pid = process.pid().as_raw();
    let record = Record {
        id: GATE_ID.into(),
        bundle: scratch.path().to_owned(),
        pid,
        start_time: process_start_time(pid).map_or(0, |(time, _)| time),
        started: false,
        created: "2026-12-01T16:16:32Z".into(),
        annotations: HashMap::new(),
        cgroups: Vec::new(),
        ptrace_granted: false,
    };
    container.save(&record).map_err(|e| e.to_string())?;
    // `create` exits here, and with it goes its lock on the container.
    drop(container);

    let mut said = BufReader::new(ours);
    match next_line(&mut said, PATIENCE) {
        Said::Line(line) if line == "at-gate" => {}
        other => {
            return Ok(GateView::DidNotWait(format!(
                "never reached its gate: {}",
                other.describe()
            )));
        }
    }
    // A moment in which a process that does not wait goes on.
    match next_line(&mut said, Duration::from_millis(300)) {
        Said::Nothing => {}
        Said::Line(line) if line == "through" => {
            return Ok(GateView::DidNotWait(
                "went through its gate at once and executed its command, with no start".into(),
            ));
        }
        other => return Ok(GateView::DidNotWait(other.describe())),
    }
    let status_before = status(&root)?;
    let exe_before = exe(pid)?;
    let start = commands::start(&root, GATE_ID).map_err(|e| e.to_string());
    let after_start = match next_line(&mut said, PATIENCE) {
        Said::Line(line) if line == "through" => None,
        other => Some(other.describe()),
    };
    // `start` waits for the exec itself; this covers a `start` that failed.
    let deadline = Instant::now() + PATIENCE;
    let mut exe_after = exe(pid)?;
    while exe_after == exe_before && after_start.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        exe_after = exe(pid)?;
    }
    let status_after = status(&root)?;
    // The engine's last words: the command is killed and reaped, the container deleted.
    drop(process);
    let _ = commands::delete(&root, GATE_ID, true);
    Ok(GateView::Waited(Gated {
        status_before,
        exe_before,
        start,
        after_start,
        status_after,
        exe_after,
        command,
    }))
}

fn status(root: &Root) -> Result<String, String> {
    let state = commands::state(root, GATE_ID).map_err(|e| format!("combined state: {e}"))?;
    Ok(state["status"].as_str().unwrap_or_default().to_owned())
}

/// The container's process: hides the runtime's state directory, says it is at its gate, waits
/// there with your function, says it went through, and executes its command.
fn container_at_gate(
    hidden: &Path,
    gate: OwnedFd,
    wait: fn(BorrowedFd<'_>) -> Result<(), Errno>,
    mut report: UnixStream,
    argv: &[CString],
) -> i32 {
    let mut say = |text: &str| {
        let _ = writeln!(report, "{text}");
    };
    let hide = isolate_root(Propagation::Private)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            mount_tmpfs("runtime-state-hidden", hidden)
                .map_err(|e| format!("mount a tmpfs over {}: {e}", hidden.display()))
        });
    if let Err(why) = hide {
        say(&format!("failed: {why}"));
        return 1;
    }
    say("at-gate");
    if let Err(errno) = wait(gate.as_fd()) {
        say(&format!("failed: wait_at_gate failed with {errno}"));
        return 1;
    }
    say("through");
    let errno = nix::unistd::execv(&argv[0], argv).unwrap_err();
    say(&format!("failed: execv {:?}: {errno}", argv[0]));
    1
}

// ---- oci-console ------------------------------------------------------------------------------------

/// The line the console exercise's engine types into the container's terminal.
pub const TYPED: &str = "hello from the engine";

/// What the console exercise's engine and container saw.
#[derive(Debug)]
pub struct ConsoleView {
    /// The descriptor the engine received is a terminal (isatty(3)).
    pub is_terminal: bool,
    /// It is close-on-exec in the engine.
    pub close_on_exec: bool,
    /// What the engine read from it after typing [`TYPED`]: the pty's echo and the container's answer.
    pub engine_read: String,
    /// What the container's command read on its standard input, its pty's slave; `None` when it read
    /// nothing within 10 s.
    pub container_read: Option<String>,
}

/// `create --console-socket`, with `send` as the runtime's side and `receive` as the engine's. The
/// engine (this process) listens on a console socket in a scratch directory. The container is a
/// child in a mount namespace of its own (and a user namespace when you are not root) with the /dev
/// the launcher gives containers (`mount_dev`: its own devpts instance), chrooted into a scratch root:
/// it connects to the console socket, makes its pty with the launcher's `open_in_container` (the
/// slave becomes its stdin, stdout and stderr), calls `send` with the master, and closes its copy.
/// Then, as the container's command, it reads a line from its terminal and answers it. The engine
/// calls `receive`, types [`TYPED`] into what it got, and reads the answer.
pub fn console_lab(
    send: fn(&UnixStream, BorrowedFd<'_>) -> Result<(), Errno>,
    receive: fn(&UnixStream) -> Result<OwnedFd, Errno>,
) -> Result<ConsoleView, String> {
    let scratch = scratch()?;
    let root = scratch.subdir("rootfs").map_err(|e| e.to_string())?;
    scratch.subdir("rootfs/dev").map_err(|e| e.to_string())?;
    let socket = scratch.path().join("console.sock");
    let listener = UnixListener::bind(&socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("the console socket: {e}"))?;
    let spawn = child_spawn(CloneFlags::empty(), false);
    let in_userns = spawn.flags().contains(CloneFlags::CLONE_NEWUSER);
    let mut container = spawn
        .run(move |channel| {
            let result = container_with_terminal(&root, &socket, in_userns, send)
                .map_err(|why| ChildError::new("container", why));
            i32::from(channel.reply(&result).is_err())
        })
        .map_err(|e| e.to_string())?;

    let deadline = Instant::now() + PATIENCE;
    let connection = loop {
        match listener.accept() {
            Ok((connection, _)) => break connection,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("accept on the console socket: {e}")),
        }
        if container.channel().peer_gone() || Instant::now() > deadline {
            return Err(format!(
                "the container never connected to the console socket: {}",
                child_failure(&mut container)
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    connection
        .set_nonblocking(false)
        .and_then(|()| connection.set_read_timeout(Some(PATIENCE)))
        .map_err(|e| format!("the console connection: {e}"))?;
    let master = match receive(&connection) {
        Ok(master) => master,
        Err(errno) => {
            // The container's side may have failed first: then its error comes with ours.
            std::thread::sleep(Duration::from_millis(100));
            let theirs = match container.channel().peer_gone() {
                true => format!(" (the container: {})", child_failure(&mut container)),
                false => String::new(),
            };
            return Err(format!("receive_pty failed with {errno}{theirs}"));
        }
    };
    let close_on_exec = fcntl(&master, FcntlArg::F_GETFD)
        .map(|flags| FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC))
        .map_err(|e| format!("fcntl F_GETFD on the received descriptor: {e}"))?;
    let is_terminal = nix::unistd::isatty(&master).unwrap_or(false);
    let mut master = fs::File::from(master);
    let answer = format!("the container read: {TYPED}");
    let mut engine_read = String::new();
    if master.write_all(format!("{TYPED}\n").as_bytes()).is_ok() {
        engine_read = read_until(&mut master, &answer);
    }
    let container_read = match engine_read.contains(&answer) || container.channel().peer_gone() {
        true => match container.channel().recv_reply::<String>() {
            Ok(line) => Some(line),
            Err(StepError::Child(e)) => return Err(format!("the container failed: {}", e.message)),
            Err(e) => return Err(format!("the container's answer: {e}")),
        },
        false => None,
    };
    Ok(ConsoleView {
        is_terminal,
        close_on_exec,
        engine_read,
        container_read,
    })
}

/// What `from` gives until `answer` has come, it ends, or 10 s pass.
fn read_until(from: &mut fs::File, answer: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains(answer) {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(n) if n > 0) {
            break;
        }
        let mut buf = [0u8; 1024];
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO: every slave descriptor is closed
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The container: its /dev, the console socket's connection, its root, its pty and its command.
fn container_with_terminal(
    root: &Path,
    socket: &Path,
    in_userns: bool,
    send: fn(&UnixStream, BorrowedFd<'_>) -> Result<(), Errno>,
) -> Result<String, String> {
    isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
    mount_dev(root, in_userns).map_err(|e| e.to_string())?;
    // The runtime's connection, made where the console socket's path means something: on the host.
    let stream = UnixStream::connect(socket).map_err(|e| format!("connect to {}: {e}", socket.display()))?;
    nix::unistd::chroot(root).map_err(|e| format!("chroot {}: {e}", root.display()))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    let master = combined::terminal::open_in_container().map_err(|e| format!("open_in_container: {e}"))?;
    send(&stream, master.as_fd()).map_err(|errno| format!("send_pty failed with {errno}"))?;
    // Only the engine holds the master now.
    drop(master);
    drop(stream);
    // The command, reading its terminal and answering on it, past Rust's buffered stdin and stdout.
    let stdin = io::stdin();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        match nix::unistd::read(stdin.as_fd(), &mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(format!("read the terminal: {errno}")),
        }
    }
    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
    let answer = format!("the container read: {line}\n");
    nix::unistd::write(io::stdout().as_fd(), answer.as_bytes())
        .map_err(|e| format!("write the terminal: {e}"))?;
    Ok(line)
}

// ---- oci-hooks --------------------------------------------------------------------------------------

/// The hooks exercise's container.
pub const HOOKS_ID: &str = "hooked";

/// One late hook, as the runtime ran it after the container had run.
#[derive(Debug)]
pub struct HookSeen {
    pub kind: &'static str,
    /// Where its program was when the container was created.
    pub program: PathBuf,
    /// Which of the container's places that is.
    pub place: &'static str,
    pub ran: HookRun,
}

/// What a late hook's run did on the host.
#[derive(Debug)]
pub enum HookRun {
    /// The program the bundle held at create ran, and read this on its standard input.
    Original(String),
    /// The program the container wrote ran: what it wrote, outside the container's root.
    Containers(String),
    /// The hook failed (the runtime's warning), or wrote nothing.
    Failed(String),
}

/// `create`, the container's life and the runtime's late hooks, with `keep` as `create`'s step for
/// the hooks. The bundle, in a scratch directory: a root filesystem with `/bin/cleanup`, the
/// `poststop` hook's program, and a volume's source, bound at `/data` in the container, with
/// `notify`, the `poststart` hook's program; each, run, saves the state it reads on its standard
/// input. `keep` runs with the hook directory `create` uses (`Container::kept_hooks`). Then the
/// container: a child in a mount namespace of its own (and a user namespace when you are not root),
/// chrooted into its root with the volume bound, rewrites both programs. Its version writes a file
/// in a directory of the host's, outside its root, which it cannot reach itself. Last, the runtime
/// runs the hooks from the config as `keep` left it (`combined::oci::hooks::run`).
pub fn hooks_lab(
    keep: fn(&mut Spec, &Path, &[PathBuf], &Path) -> Result<(), hooks::HookError>,
) -> Result<Vec<HookSeen>, String> {
    let scratch = scratch()?;
    let dir = |name: &str| scratch.subdir(name).map_err(|e| format!("mkdir {name}: {e}"));
    let bundle = dir("bundle")?;
    let rootfs = dir("bundle/rootfs")?;
    dir("bundle/rootfs/bin")?;
    dir("bundle/rootfs/data")?;
    let volume = dir("volume")?;
    let host = dir("host")?;
    let cleanup = rootfs.join("bin/cleanup");
    let notify = volume.join("notify");
    let save_state = |kind: &str| format!("#!/bin/sh\ncat > {}/{kind}.state\n", host.display());
    for (program, kind) in [(&cleanup, "poststop"), (&notify, "poststart")] {
        fs::write(program, save_state(kind)).map_err(|e| format!("write {}: {e}", program.display()))?;
        fs::set_permissions(program, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", program.display()))?;
    }
    let hook = |program: &Path| {
        let mut hook = Hook::default();
        hook.set_path(program.to_owned());
        hook
    };
    let mut all = Hooks::default();
    all.set_poststart(Some(vec![hook(&notify)]));
    all.set_poststop(Some(vec![hook(&cleanup)]));
    let mut spec = Spec::default();
    spec.set_hooks(Some(all));

    let state_root = Root::open(&scratch.path().join("state")).map_err(|e| e.to_string())?;
    let container = state_root.create(HOOKS_ID).map_err(|e| e.to_string())?;
    keep(
        &mut spec,
        &rootfs,
        std::slice::from_ref(&volume),
        &container.kept_hooks(),
    )
    .map_err(|e| format!("keep_hooks failed: {e}"))?;

    // The container's life: it rewrites what it can of the late hooks' programs.
    let attack = |kind: &str| {
        format!(
            "#!/bin/sh\necho \"the container's {kind} program, run by the host as uid $(id -u)\" > {}/{kind}.hijacked\n",
            host.display()
        )
    };
    let (poststop_attack, poststart_attack) = (attack("poststop"), attack("poststart"));
    let (root_for_child, volume_for_child) = (rootfs.clone(), volume.clone());
    let pid: i32 = child_spawn(CloneFlags::empty(), false)
        .evaluate(move || {
            isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
            let data = root_for_child.join("data");
            mount(
                Some(&volume_for_child),
                &data,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("bind the volume at {}: {e}", data.display()))?;
            nix::unistd::chroot(&root_for_child).map_err(|e| format!("chroot: {e}"))?;
            nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
            for (path, text) in [
                ("/bin/cleanup", &poststop_attack),
                ("/data/notify", &poststart_attack),
            ] {
                fs::write(path, text).map_err(|e| format!("the container's write to {path}: {e}"))?;
            }
            Ok(std::process::id() as i32)
        })
        .map_err(|why| format!("the container failed: {why}"))?;

    let bundle_state = |status: &str| {
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": HOOKS_ID,
            "status": status,
            "pid": pid,
            "bundle": bundle,
            "annotations": {},
        })
    };
    let late = spec.hooks().clone().unwrap_or_default();
    let run = |kind: &'static str, list: &Option<Vec<Hook>>, status: &str| -> HookRun {
        if let Err(e) = hooks::run(kind, hooks::of(list), &bundle_state(status)) {
            return HookRun::Failed(e.to_string());
        }
        let read = |suffix: &str| fs::read_to_string(host.join(format!("{kind}.{suffix}")));
        match (read("hijacked"), read("state")) {
            (Ok(said), _) => HookRun::Containers(said.trim_end().to_owned()),
            (_, Ok(state)) => HookRun::Original(state),
            _ => HookRun::Failed("it ran, and wrote nothing".into()),
        }
    };
    let seen = vec![
        HookSeen {
            kind: "poststart",
            program: notify.clone(),
            place: "a volume's source, bound at /data in the container",
            ran: run("poststart", late.poststart(), "running"),
        },
        HookSeen {
            kind: "poststop",
            program: cleanup.clone(),
            place: "the container's root filesystem, at /bin/cleanup",
            ran: run("poststop", late.poststop(), "stopped"),
        },
    ];
    let _ = fs::remove_dir_all(container.kept_hooks());
    container.remove().map_err(|e| e.to_string())?;
    Ok(seen)
}

// ---- oci-state --------------------------------------------------------------------------------------

/// The state exercise's container.
pub const STATE_ID: &str = "web";
/// Its bundle (a name only: the state exercise reads no file of it).
pub const STATE_BUNDLE: &str = "/srv/bundles/web";
/// When its `create` finished.
pub const STATE_CREATED: &str = "2026-12-01T16:16:32Z";

/// Its config's annotations.
pub fn state_annotations() -> HashMap<String, String> {
    HashMap::from([("org.example.team".to_owned(), "course".to_owned())])
}

/// One moment of a container's life, and the state your function gave at that moment.
#[derive(Debug)]
pub struct StateSeen {
    pub moment: &'static str,
    /// The status the runtime spec gives that moment.
    pub expected: ContainerState,
    /// The container's process, as the host sees it.
    pub pid: i32,
    pub state: serde_json::Value,
}

/// A container's life, with a child of this process as its process (no namespace: the state is about
/// the process, not its namespaces), and `oci_state` asked at each moment about the record `create`
/// would have written: created, running, its PID taken by another process, its process a zombie, then
/// reaped.
pub fn state_lab(oci_state: fn(&Record) -> serde_json::Value) -> Result<Vec<StateSeen>, String> {
    let mut process = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel: &mut Channel| i32::from(channel.expect("exit").is_err()))
        .map_err(|e| e.to_string())?;
    let pid = process.pid().as_raw();
    let (start_time, _) =
        process_start_time(pid).ok_or_else(|| format!("/proc/{pid}/stat has no start time"))?;
    let record = |started: bool, start_time: u64| Record {
        id: STATE_ID.into(),
        bundle: STATE_BUNDLE.into(),
        pid,
        start_time,
        started,
        created: STATE_CREATED.into(),
        annotations: state_annotations(),
        cgroups: Vec::new(),
        ptrace_granted: false,
    };
    let mut seen = Vec::new();
    let mut look = |moment: &'static str, expected: ContainerState, record: Record| {
        seen.push(StateSeen {
            moment,
            expected,
            pid,
            state: oci_state(&record),
        });
    };
    look(
        "its process waits at its gate",
        ContainerState::Created,
        record(false, start_time),
    );
    look(
        "start has opened its gate",
        ContainerState::Running,
        record(true, start_time),
    );
    look(
        "its process has gone and another one has its PID (the start time differs)",
        ContainerState::Stopped,
        record(true, start_time + 1),
    );
    process
        .channel()
        .send("exit")
        .map_err(|e| format!("tell the process to exit: {e}"))?;
    let deadline = Instant::now() + PATIENCE;
    while !matches!(process_start_time(pid), Some((_, true))) {
        if Instant::now() > deadline {
            return Err(format!("process {pid} did not become a zombie within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    look(
        "its process has exited and is not reaped yet (a zombie)",
        ContainerState::Stopped,
        record(true, start_time),
    );
    process.wait().map_err(|e| format!("reap {pid}: {e}"))?;
    look(
        "its process has exited and been reaped",
        ContainerState::Stopped,
        record(true, start_time),
    );
    look(
        "its process died at its gate, before any start",
        ContainerState::Stopped,
        record(false, start_time),
    );
    Ok(seen)
}
