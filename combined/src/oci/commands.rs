//! The OCI runtime's commands (runtime-spec `runtime.md`, "Operations"; the flags are runc's, which
//! every engine uses): `create`, `start`, `state`, `kill`, `delete`, `run`, `exec`, `ps`, `list`,
//! `spec`, `features`. Each is one process; what they share is the container's directory (`state.rs`), locked
//! while a command works on it.
//!
//! The life of a container, as an engine drives it:
//! 1. `create`: the bundle becomes a plan; the container is set up exactly as `combined run` sets
//!    one up, and then waits at its `exec.fifo`; its pid goes in the pid file, its pty (if it has
//!    one) over the engine's console socket, and `create` exits, leaving it to the engine's shim;
//! 2. `start`: opens the fifo, and the container's process execs its command;
//! 3. `state`, `kill`: observe it, signal it;
//! 4. `delete`: once it has stopped (or, with `--force`, after SIGKILL), removes what was made for it.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::ContainerState;

use super::bundle::{self, BundleError};
use super::state::{Container, Record, Root, StateError, process_start_time};
use crate::container::{self, Lifecycle, StepFailed};

/// Why a command failed: each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Setup(#[from] StepFailed),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> OciError {
    let what = what.into();
    move |source| OciError::Io { what, source }
}

/// What `create` (and `run`) are asked for besides the bundle.
#[derive(Debug, Default)]
pub struct CreateOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Descriptors 3 to 3 + N - 1 of the caller's, handed on to the container's command.
    pub preserve_fds: u32,
}

// ANCHOR: create
/// `create`: sets the container up and leaves it waiting for `start`.
pub fn create(root: &Root, id: &str, bundle: &Path, options: &CreateOptions) -> Result<Pid, OciError> {
    let bundle = fs::canonicalize(bundle).map_err(io_err(format!("bundle {}", bundle.display())))?;
    let spec = bundle::load(&bundle)?;
    let mut plan = bundle::plan(&bundle, &spec, Lifecycle::Created { gate: -1 })?;
    plan.preserve_fds = preserved(options.preserve_fds)?;
    if plan.tty && options.console_socket.is_none() {
        return Err(OciError::Refused(
            "process.terminal is true: a --console-socket is needed to hand the pty to".into(),
        ));
    }
    if crate::init_reachable(plan.user_ns, true, &plan.caps) {
        // The waiting process is this binary, in a container that may ptrace it (`sealed.rs`).
        crate::sealed::ensure().map_err(|e| OciError::Refused(e.to_string()))?;
    }
    let container = root.create(id)?;
    let made = make_container(&container, &bundle, &spec, &mut plan, options);
    if made.is_err() {
        let _ = fs::remove_dir_all(container.kept_hooks());
        let _ = container.remove();
    }
    made
}
// ANCHOR_END: create

fn make_container(
    container: &Container,
    bundle: &Path,
    spec: &oci_spec::runtime::Spec,
    plan: &mut crate::Plan,
    options: &CreateOptions,
) -> Result<Pid, OciError> {
    let gate = make_gate(container, plan)?;
    plan.lifecycle = Lifecycle::Created {
        gate: gate.as_raw_fd(),
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    let record_of = |pid: Pid, cgroups: &[PathBuf]| Record {
        id: container.id().to_owned(),
        bundle: bundle.to_owned(),
        pid: pid.as_raw(),
        start_time: process_start_time(pid.as_raw()).map_or(0, |(time, _)| time),
        started: false,
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroups: cgroups.to_vec(),
        ptrace_granted: false,
    };
    let mut run_create_hooks = |pid: Pid, cgroups: &[PathBuf]| -> Result<(), container::Cause> {
        // Recorded as soon as the process and its cgroup exist: a `create` killed from here on leaves
        // a record naming them, which `delete` finds (the process itself dies with `create` until it
        // is let go).
        container.save(&record_of(pid, cgroups))?;
        let state = hook_state(container.id(), bundle, pid.as_raw(), "created", spec);
        super::hooks::run("prestart", super::hooks::of(hooks.prestart()), &state)?;
        super::hooks::run("createRuntime", super::hooks::of(hooks.create_runtime()), &state)?;
        Ok(())
    };
    // The config as created, its late hooks' programs kept: `exec`, `start` and `delete` read it, and
    // changes to the bundle's afterwards do not touch the container (runtime-spec `runtime.md`).
    keep_config(container, spec, plan)?;
    let created = container::create(plan, &mut run_create_hooks)?;
    drop(gate);
    let pid = created.pid;
    // The pty to the engine, then the word to go on, then the pid file: a `create` killed at any
    // instant leaves no process (it dies with `create` until let go) or one its record names, and a
    // pid file only for a process that lives on. A failure before `let_go` drops `created`, which
    // kills the process and removes its cgroup.
    if let (Some(master), Some(socket)) = (&created.pty, &options.console_socket) {
        send_console(socket, master)?;
    }
    let cgroups = created.cgroups();
    created.let_go()?;
    if let Some(pid_file) = &options.pid_file {
        if let Err(e) = write_pid_file(pid_file, pid) {
            // Still this process's child, unreaped: its PID cannot be anyone else's yet.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            let _ = crate::cgroups::remove_dirs(&cgroups);
            return Err(e);
        }
    }
    Ok(pid)
}

/// Writes the container's own copy of its config, with its late hooks' programs copied out of what
/// the container can write.
fn keep_config(
    container: &Container,
    spec: &oci_spec::runtime::Spec,
    plan: &crate::Plan,
) -> Result<(), OciError> {
    let mut kept = spec.clone();
    if let crate::values::Rootfs::Dir(rootfs) = &plan.rootfs {
        let dir = container.kept_hooks();
        let _ = fs::remove_dir_all(&dir); // A crashed delete's.
        // What the container can write: its rootfs and its volumes' sources.
        let writable: Vec<PathBuf> = std::iter::once(rootfs.clone())
            .chain(
                plan.volumes
                    .iter()
                    .map(|v| fs::canonicalize(&v.source).unwrap_or_else(|_| v.source.clone())),
            )
            .collect();
        super::hooks::keep_late_hooks(&mut kept, &writable, &dir)
            .map_err(|e| OciError::Refused(e.to_string()))?;
    }
    let path = container.dir().join(bundle::CONFIG);
    kept.save(&path)
        .map_err(|e| OciError::Refused(format!("cannot keep the config in {}: {e}", path.display())))
}

/// `--preserve-fds N`, checked: each of descriptors 3 to 3 + N - 1 must be open in this process.
/// `--preserve-fds N`: descriptors 3 to 3 + N - 1, each of which must be open. Checked by `main`
/// before the runtime opens anything, since a descriptor it opened itself (the container's lock) could
/// otherwise take a missing number and be handed on.
pub fn preserved(count: u32) -> Result<i32, OciError> {
    let count =
        i32::try_from(count).map_err(|_| OciError::Refused(format!("--preserve-fds {count}: too many")))?;
    for fd in 3..3 + count {
        if fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_err() {
            return Err(OciError::Refused(format!(
                "--preserve-fds {count}: descriptor {fd} is not open, so there is nothing to pass on"
            )));
        }
    }
    Ok(count)
}

/// The state a hook reads on its standard input (runtime-spec `runtime.md`, "State").
fn hook_state(
    id: &str,
    bundle: &Path,
    pid: i32,
    status: &str,
    spec: &oci_spec::runtime::Spec,
) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": super::state::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    })
}

/// Runs the container's hooks of a kind whose failure is only a warning (poststart, poststop), from
/// its kept config.
fn run_warning_hooks(kind: &'static str, record: &Record, spec: &oci_spec::runtime::Spec, status: &str) {
    let hooks = spec.hooks().clone().unwrap_or_default();
    let list = match kind {
        "poststart" => hooks.poststart(),
        _ => hooks.poststop(),
    };
    let state = hook_state(&record.id, &record.bundle, record.pid, status, spec);
    // Each one, whatever the one before did: the spec's "the remaining hooks and lifecycle continue".
    for hook in super::hooks::of(list) {
        if let Err(e) = super::hooks::run(kind, std::slice::from_ref(hook), &state) {
            eprintln!("combined: warning: {e}");
        }
    }
}

/// The container's `exec.fifo`, and this process's O_PATH descriptor of it, which the container's
/// process inherits and reopens for writing once it is set up (`container::wait_at_gate`). It belongs
/// to the container's root, so that a container whose root is not the host's can open it.
fn make_gate(container: &Container, plan: &crate::Plan) -> Result<OwnedFd, OciError> {
    let path = container.exec_fifo();
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
        .map_err(|e| io_err(format!("cannot make {}", path.display()))(e.into()))?;
    if plan.user_ns {
        let uid = plan.maps.uid.to_outside(0).map(nix::unistd::Uid::from_raw);
        let gid = plan.maps.gid.to_outside(0).map(nix::unistd::Gid::from_raw);
        nix::unistd::chown(&path, uid, gid).map_err(|e| {
            io_err(format!("cannot give {} to the container's root", path.display()))(e.into())
        })?;
    }
    nix::fcntl::open(&path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| io_err(format!("cannot open {}", path.display()))(e.into()))
}

/// The pty's master to the engine's console socket (SCM_RIGHTS, unix(7)).
fn send_console(socket: &Path, master: &OwnedFd) -> Result<(), OciError> {
    let what = || format!("cannot send the pty to the console socket {}", socket.display());
    let stream = UnixStream::connect(socket).map_err(io_err(what()))?;
    let fds = [master.as_raw_fd()];
    let name = [io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &name,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| io_err(what())(e.into()))?;
    Ok(())
}

/// Writes the pid file atomically: an engine polling it never reads a partial number. The number is
/// written to a new file of a random name beside it (`O_EXCL`, so never through a link someone left
/// there), which is then renamed over `path`: the runtime may be root, and the directory another's.
fn write_pid_file(path: &Path, pid: Pid) -> Result<(), OciError> {
    let fail = || io_err(format!("cannot write the pid file {}", path.display()));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut partial = tempfile::Builder::new()
        .prefix(".pid-")
        .permissions(fs::Permissions::from_mode(0o644)) // as a plain write would leave it
        .tempfile_in(dir)
        .map_err(fail())?;
    partial.write_all(pid.to_string().as_bytes()).map_err(fail())?;
    partial.persist(path).map_err(|e| fail()(e.error))?;
    Ok(())
}

// ANCHOR: start
/// `start`: opens the gate of a created container; its process then execs the command.
pub fn start(root: &Root, id: &str) -> Result<(), OciError> {
    let container = root.open_container(id)?;
    let mut record = loaded(&container)?;
    match record.status() {
        ContainerState::Created => {}
        status => {
            return Err(OciError::Refused(format!(
                "container {id} is {status}, not created: only a created container starts"
            )));
        }
    }
    let fifo = open_gate(&container, &record)?;
    wait_for_exec(&fifo, &record);
    record.started = true;
    container.save(&record)?;
    let _ = fs::remove_file(container.exec_fifo());
    if let Ok(spec) = bundle::load(container.dir()) {
        run_warning_hooks("poststart", &record, &spec, "running");
    }
    Ok(())
}
// ANCHOR_END: start

/// Opens the fifo for reading, which lets the container's blocked open for writing return, and
/// reads its byte. Non-blocking, and watching the process: a container that died while waiting would
/// otherwise leave `start` waiting for ever. Returns the fifo, still open.
fn open_gate(container: &Container, record: &Record) -> Result<fs::File, OciError> {
    let path = container.exec_fifo();
    let fifo = nix::fcntl::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(format!("cannot open {}", path.display()))(e.into()))?;
    let mut fifo = fs::File::from(fifo);
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + Duration::from_secs(10);
    // Readable: the byte has come, or the writer has closed the fifo without one (its write failed:
    // it is exiting, and the next wait sees that).
    let mut watch_fifo = true;
    loop {
        let fd = watch_fifo.then_some(&fifo);
        let woken = wait_on(fd.map(|f| f.as_fd()), PollFlags::POLLIN, record, deadline);
        match fifo.read(&mut byte) {
            Ok(1) => return Ok(fifo),
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                return Err(io_err(format!("cannot read {}", path.display()))(e));
            }
            _ => {}
        }
        match woken {
            Woken::Ready => watch_fifo = false,
            Woken::Exited => {
                return Err(OciError::Refused(format!(
                    "container {} exited before it could start",
                    record.id
                )));
            }
            Woken::TimedOut => {
                return Err(OciError::Refused(format!(
                    "container {} did not take its start within 10 s",
                    record.id
                )));
            }
        }
    }
}

/// Waits (up to 10 s) until the container's process has executed its command, so that what
/// `start` does next (the poststart hooks) comes after it, as the spec orders: the process holds the
/// fifo open for writing, close-on-exec, until its execve (or its end) closes it, and the reader
/// then sees it hang up (fifo(7), poll(2) POLLHUP).
fn wait_for_exec(fifo: &fs::File, record: &Record) {
    let deadline = Instant::now() + Duration::from_secs(10);
    wait_on(Some(fifo.as_fd()), PollFlags::POLLHUP, record, deadline);
}

/// What ended a [`wait_on`].
enum Woken {
    Ready,
    Exited,
    TimedOut,
}

/// Waits until `fd` polls with one of `events` (or hangs up), the container's process exits, or the
/// deadline passes, with poll(2) on `fd` and a pidfd of the process; without a pidfd (Linux before
/// 5.3), it looks at the process every 10 ms.
fn wait_on(fd: Option<BorrowedFd<'_>>, events: PollFlags, record: &Record, deadline: Instant) -> Woken {
    let exit = record.exit_watch();
    loop {
        if exit.is_none() && !record.alive() {
            return Woken::Exited;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Woken::TimedOut;
        }
        let slice = if exit.is_some() {
            left
        } else {
            left.min(Duration::from_millis(10))
        };
        let mut fds: Vec<PollFd<'_>> = fd.iter().map(|fd| PollFd::new(*fd, events)).collect();
        fds.extend(exit.as_ref().map(|e| PollFd::new(e.as_fd(), PollFlags::POLLIN)));
        let timeout = PollTimeout::try_from(slice).unwrap_or(PollTimeout::MAX);
        if let Err(Errno::EINTR) | Ok(0) = poll(&mut fds, timeout) {
            continue;
        }
        let woke = |i: usize| {
            fds.get(i)
                .and_then(|p| p.revents())
                .is_some_and(|r| !r.is_empty())
        };
        if fd.is_some() && woke(0) {
            return Woken::Ready;
        }
        if exit.is_some() && woke(usize::from(fd.is_some())) {
            return Woken::Exited;
        }
    }
}

fn loaded(container: &Container) -> Result<Record, OciError> {
    container.load()?.ok_or_else(|| {
        OciError::Refused(format!(
            "container {} has no record: its create did not finish (combined delete --force {} removes it)",
            container.id(),
            container.id()
        ))
    })
}

/// `state`: the spec's JSON for the container.
pub fn state(root: &Root, id: &str) -> Result<serde_json::Value, OciError> {
    let container = root.open_container(id)?;
    Ok(loaded(&container)?.oci_state())
}

/// `kill`: sends `signal` to the container's process (`--all`: to every process in its PID
/// namespace, by killing the namespace's init with SIGKILL when that is the signal).
pub fn kill_container(root: &Root, id: &str, signal: Signal, all: bool) -> Result<(), OciError> {
    let container = root.open_container(id)?;
    let record = loaded(&container)?;
    if record.status() == ContainerState::Stopped {
        // runc's answers, which engines' shims rely on: `--all` finds nothing left to signal, and
        // the words "container not running" are how containerd's shim recognizes a container that
        // ended by itself (any other error leaves the engine retrying for ever).
        return match all {
            true => Ok(()),
            false => Err(OciError::Refused(format!(
                "cannot signal container {id}: container not running"
            ))),
        };
    }
    let pid = Pid::from_raw(record.pid);
    let targets = match all {
        true => container_processes(&container, &record),
        false => vec![pid],
    };
    for target in targets {
        match kill(target, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(io_err(format!("cannot signal {target}"))(e.into())),
        }
    }
    Ok(())
}

/// `ps`: the host PIDs of the container's processes, sorted (what `docker top` asks for, as
/// `ps --format json`).
pub fn ps(root: &Root, id: &str) -> Result<Vec<i32>, OciError> {
    let container = root.open_container(id)?;
    let record = loaded(&container)?;
    if record.status() == ContainerState::Stopped {
        return Ok(Vec::new());
    }
    let mut pids: Vec<i32> = container_processes(&container, &record)
        .into_iter()
        .map(Pid::as_raw)
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

// ANCHOR: container_processes
/// The container's processes, as the host sees them: those in its cgroup when it has one (runc's
/// answer); else every process of its PID namespace when that namespace is its own; else (a container
/// in a pod's shared PID namespace, or in the host's) its first process and that one's descendants.
/// `kill --all` and `delete --force` signal exactly these: in a pod, never the sandbox or a sibling.
fn container_processes(container: &Container, record: &Record) -> Vec<Pid> {
    let pid = Pid::from_raw(record.pid);
    if let Some(dir) = record.cgroups.first() {
        if let Ok(procs) = cgroup_demo::cgroup::procs_of(dir) {
            if procs.contains(&pid) {
                return procs;
            }
        }
    }
    match owns_pid_namespace(container) {
        true => processes_sharing_pid_ns(pid),
        false => process_tree(pid),
    }
}
// ANCHOR_END: container_processes

/// Whether the container's config gave it a PID namespace of its own (not one joined by path, not
/// the host's).
fn owns_pid_namespace(container: &Container) -> bool {
    let Ok(spec) = bundle::load(container.dir()) else {
        return false;
    };
    spec.linux().as_ref().is_some_and(bundle::owns_pid_namespace)
}

/// `pid` and its descendants, from the parent of every process in /proc (proc(5), `stat` field 4).
fn process_tree(pid: Pid) -> Vec<Pid> {
    let parents: Vec<(Pid, Pid)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((Pid::from_raw(p), Pid::from_raw(ppid)))
        })
        .collect();
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        next += 1;
    }
    tree
}

/// The container's process and every process in its PID namespace, found by the namespace's
/// inode in /proc/<pid>/ns/pid. A container sharing the runtime's PID namespace is its process only.
fn processes_sharing_pid_ns(pid: Pid) -> Vec<Pid> {
    let ns_of = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let Some(ns) = ns_of(&pid.to_string()) else {
        return vec![pid];
    };
    if ns_of("self").as_ref() == Some(&ns) {
        return vec![pid];
    }
    let mut pids: Vec<Pid> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|name| ns_of(name).as_ref() == Some(&ns))
        .filter_map(|name| name.parse().ok().map(Pid::from_raw))
        .collect();
    if !pids.contains(&pid) {
        pids.push(pid);
    }
    pids
}

/// `delete`: removes a stopped container's directory; `--force` kills a live one first.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<(), OciError> {
    let container = match root.open_container(id) {
        Ok(container) => container,
        Err(StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let record = container.load()?;
    if let Some(record) = &record {
        if record.status() != ContainerState::Stopped {
            if !force {
                return Err(OciError::Refused(format!(
                    "container {id} is {}: stop it first, or delete --force",
                    record.status()
                )));
            }
            for target in container_processes(&container, record) {
                let _ = kill(target, Signal::SIGKILL);
            }
            wait_until_gone(record);
        }
        // Without a PID namespace of its own, processes can outlive the container's first one (a
        // double fork, an `exec --detach`): whatever its cgroup still holds dies with it, as runc's
        // delete does.
        if !owns_pid_namespace(&container) {
            if let Some(dir) = record.cgroups.first() {
                kill_all_in(dir);
            }
        }
        crate::cgroups::remove_dirs(&record.cgroups)
            .map_err(io_err(format!("cannot remove the cgroups of container {id}")))?;
    }
    let spec = bundle::load(container.dir()).ok();
    let kept_hooks = container.kept_hooks();
    container.remove()?;
    if let (Some(record), Some(spec)) = (&record, &spec) {
        run_warning_hooks("poststop", record, spec, "stopped");
    }
    let _ = fs::remove_dir_all(kept_hooks);
    Ok(())
}

/// Waits (up to 10 s) until the container's process has gone; its reaper is the engine's, not us.
/// SIGKILL to every process in the cgroup `dir`, again until it holds none (one may fork meanwhile);
/// a process leaves its cgroup as it exits, before it is reaped. Gives up after ten seconds, and the
/// cgroup's removal then says what is left.
fn kill_all_in(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(procs) = cgroup_demo::cgroup::procs_of(dir) {
        if procs.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in procs {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_until_gone(record: &Record) {
    wait_on(
        None,
        PollFlags::empty(),
        record,
        Instant::now() + Duration::from_secs(10),
    );
}

/// `list`: every container's id, pid, status, bundle and creation time.
pub fn list(root: &Root) -> Result<Vec<Record>, OciError> {
    let mut records = Vec::new();
    for id in root.ids()? {
        if let Ok(container) = root.open_container(&id) {
            if let Some(record) = container.load()? {
                records.push(record);
            }
        }
    }
    Ok(records)
}

/// `spec`: the default config.json this runtime runs as it is: the runtime spec's usual defaults
/// (oci-spec's, which are runc's), rootless when asked (a user namespace mapping the caller to root,
/// no network namespace of the host's to need).
pub fn default_spec(rootless: bool) -> Result<oci_spec::runtime::Spec, OciError> {
    let mut spec = match rootless {
        true => {
            oci_spec::runtime::Spec::rootless(nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
        }
        false => oci_spec::runtime::Spec::default(),
    };
    spec.set_hostname(Some("combined".into()));
    Ok(spec)
}

/// Writes `config.json` in `bundle`, refusing to overwrite one.
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<PathBuf, OciError> {
    let path = bundle.join(bundle::CONFIG);
    let spec = default_spec(rootless)?;
    let json = serde_json::to_string_pretty(&spec).expect("a spec always serializes");
    // Created new, never through a link (O_CREAT | O_EXCL): a dangling config.json link another user
    // planted in the bundle would otherwise make the caller create its target wherever it points.
    let mut file = match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OciError::Refused(format!(
                "{} exists already (or is a link): remove it first",
                path.display()
            )));
        }
        opened => opened.map_err(io_err(format!("cannot create {}", path.display())))?,
    };
    std::io::Write::write_all(&mut file, (json + "\n").as_bytes())
        .map_err(io_err(format!("cannot write {}", path.display())))?;
    Ok(path)
}

/// `features`: what this runtime supports, in the spec's `features.md` format.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::state::OCI_VERSION,
        "hooks": [],
        "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "noexec", "nodev"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ::caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.combined.version": env!("CARGO_PKG_VERSION")},
    })
}

// ANCHOR: update
/// `update`: new limits for a created or running container, from a config's `linux.resources` object
/// (`--resources FILE`, or `-` for stdin, as containerd's shim passes it when the kubelet resizes a
/// pod), checked as `create` checks them and written to the container's cgroup.
pub fn update(root: &Root, id: &str, resources: &str) -> Result<(), OciError> {
    let container = root.open_container(id)?;
    let record = loaded(&container)?;
    if record.status() == ContainerState::Stopped {
        return Err(OciError::Refused(format!(
            "cannot update container {id}: container not running"
        )));
    }
    let resources: oci_spec::runtime::LinuxResources = serde_json::from_str(resources).map_err(|e| {
        OciError::Refused(format!(
            "the resources are not an OCI linux.resources object: {e}"
        ))
    })?;
    let limits = bundle::resource_limits(&resources)?;
    if record.cgroups.is_empty() {
        return Err(OciError::Refused(format!(
            "container {id} has no cgroup of its own to update: its config named no cgroupsPath and no limits"
        )));
    }
    crate::cgroups::update(&record.cgroups, &limits)
        .map_err(|e| OciError::Refused(format!("cannot update container {id}: {e}")))
}
// ANCHOR_END: update

/// The process `exec` starts: a process.json (`--process`, the config's `process` object, as
/// containerd and podman pass it), or the container's own process with the command line's changes.
#[derive(Debug, Default)]
pub struct ExecProcess {
    pub file: Option<PathBuf>,
    pub args: Vec<String>,
    /// `NAME=VALUE` pairs, added to the config's environment (replacing a name it has).
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    /// Capabilities added to the bounding, effective and permitted sets (`CAP_NET_ADMIN`).
    pub caps: Vec<String>,
    pub no_new_privs: bool,
}

/// What `exec` is asked for besides the process.
#[derive(Debug, Default)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Descriptors 3 to 3 + N - 1 of the caller's, handed on to the process.
    pub preserve_fds: u32,
    /// Return once the process runs, leaving it to whoever reaps the runtime's orphans.
    pub detach: bool,
}

// ANCHOR: exec
/// `exec`: starts a further process in a created or running container (`enter.rs`), planned from
/// the config the container was created with, exactly as its first process was. Returns the
/// process's exit status, or 0 once it runs when detached.
pub fn exec(root: &Root, id: &str, process: &ExecProcess, options: &ExecOptions) -> Result<i32, OciError> {
    let container = root.open_container(id)?;
    let mut record = loaded(&container)?;
    if record.status() == ContainerState::Stopped {
        return Err(OciError::Refused(format!("container {id} is not running")));
    }
    let mut spec = bundle::load(container.dir())?;
    let config_ptrace = grants(spec.process().as_ref(), oci_spec::runtime::Capability::SysPtrace);
    let config_locked = grants(spec.process().as_ref(), oci_spec::runtime::Capability::SysAdmin);
    let process = exec_process(&spec, process)?;
    spec.set_process(Some(process));
    // The container's root as its process sees it; a created container's process is still the
    // runtime's non-dumpable binary, whose /proc files only root may open: its bundle's rootfs then.
    let container_root = PathBuf::from(format!("/proc/{}/root", record.pid));
    let mut plan = match fs::read_dir(&container_root) {
        Ok(_) => bundle::plan_exec(&record.bundle, &spec, &container_root)?,
        Err(_) => bundle::plan(&record.bundle, &spec, Lifecycle::Foreground)?,
    };
    plan.preserve_fds = preserved(options.preserve_fds)?;
    if plan.tty && options.detach && options.console_socket.is_none() {
        return Err(OciError::Refused(
            "a detached process with a terminal needs a --console-socket to hand the pty to".into(),
        ));
    }
    let target = Pid::from_raw(record.pid);
    refuse_exec_before_start(id, &record, &plan)?;
    refuse_unlocked_sys_admin(&plan, config_locked)?;
    let ptrace_here = plan.caps.contains(&::caps::Capability::CAP_SYS_PTRACE);
    if !plan.user_ns && (ptrace_here || config_ptrace || record.ptrace_granted) {
        // Until it executes its command, the process is this binary, in the container's PID namespace:
        // a process there with CAP_SYS_PTRACE (this one, the config's, an earlier `exec --cap`'s)
        // could open it through /proc/<pid>/exe and, once nothing runs it, overwrite the host's
        // binary (CVE-2019-5736). It runs from the sealed copy then.
        crate::sealed::ensure().map_err(|e| OciError::Refused(e.to_string()))?;
        if ptrace_here && !config_ptrace && !record.ptrace_granted {
            record.ptrace_granted = true;
            container.save(&record)?;
        }
    }
    let entered = crate::enter::enter(&plan, target, &|| record.alive(), &record.cgroups)?;
    // `state`, `kill` and further `exec`s must not wait for this one to end.
    drop(container);
    if let (Some(master), Some(socket)) = (&entered.pty, &options.console_socket) {
        send_console(socket, master)?;
    }
    if let Some(pid_file) = &options.pid_file {
        write_pid_file(pid_file, entered.pid())?;
    }
    if options.detach {
        entered.release();
        return Ok(0);
    }
    Ok(entered.wait(options.console_socket.is_none())?)
}
// ANCHOR_END: exec

/// Whether a config's process holds `cap` (in its bounding set, where an exec's may come from).
fn grants(process: Option<&oci_spec::runtime::Process>, cap: oci_spec::runtime::Capability) -> bool {
    process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|caps| caps.bounding().as_ref())
        .is_some_and(|bounding| bounding.contains(&cap))
}

/// A process `exec` gives CAP_SYS_ADMIN in a user namespace could loosen or remove the launcher's
/// mounts, unless they are locked: they are when the container's own process kept it (`locked`
/// says whether the config gave it), since `crate::locked` nests that process, and so what joins it,
/// in a locked copy of its mount namespace. The joiner has no PID in the container's /proc through
/// which to nest itself: refused otherwise.
fn refuse_unlocked_sys_admin(plan: &crate::container::Plan, locked: bool) -> Result<(), OciError> {
    match crate::locked::needed(plan) && !locked {
        true => Err(OciError::Refused(
            "exec with CAP_SYS_ADMIN in the container's user namespace: the container's own process \
             lacks it, so its mounts are not locked, and the new process could make its read-only \
             volumes writable; give the config's process CAP_SYS_ADMIN, or exec without it"
                .into(),
        )),
        false => Ok(()),
    }
}

/// A created container's process waits at its gate with every privilege `create` had: its
/// capabilities, no seccomp filter, and (unless the config gave it CAP_SYS_PTRACE and `create` ran
/// from the sealed copy) the runtime's binary on the host. A process `exec` starts with
/// CAP_SYS_PTRACE and no user namespace may ptrace it: make it open the host's files
/// (open_by_handle_at), or overwrite that binary through /proc/1/exe once `create` has exited
/// (CVE-2019-5736). With a user namespace, only the waiting process's non-dumpability keeps such a
/// process out (an attacker's pass found it dumpable, and took it over): refused either way until the
/// container has started and its process has dropped all that. And a runtime that is not root cannot
/// open a non-dumpable process's namespaces at all (its /proc files are the host root's): it is told so.
fn refuse_exec_before_start(
    id: &str,
    record: &Record,
    plan: &crate::container::Plan,
) -> Result<(), OciError> {
    if record.status() != ContainerState::Created {
        return Ok(());
    }
    if plan.caps.contains(&::caps::Capability::CAP_SYS_PTRACE) {
        return Err(OciError::Refused(format!(
            "container {id} is created, and its waiting process still holds the runtime's privileges, \
             which a process with CAP_SYS_PTRACE could take over: start it first"
        )));
    }
    if !nskit::userns::is_root() {
        return Err(OciError::Refused(format!(
            "container {id} is created, and its waiting process's namespaces are the host root's to open \
             (it is non-dumpable): start it first, or exec as root"
        )));
    }
    Ok(())
}

/// The process `exec` runs, as the config's `process` object.
fn exec_process(
    spec: &oci_spec::runtime::Spec,
    asked: &ExecProcess,
) -> Result<oci_spec::runtime::Process, OciError> {
    if let Some(file) = &asked.file {
        let text = fs::read_to_string(file).map_err(io_err(format!("cannot read {}", file.display())))?;
        return serde_json::from_str(&text)
            .map_err(|e| OciError::Refused(format!("{} is not an OCI process object: {e}", file.display())));
    }
    if asked.args.is_empty() {
        return Err(OciError::Refused(
            "exec needs a command after the container id, or --process FILE".into(),
        ));
    }
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(asked.args.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    for pair in &asked.env {
        let name = pair.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(name));
        env.push(pair.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &asked.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(user) = &asked.user {
        let mut ids = process.user().clone();
        let (uid, gid) = parse_user(user)?;
        ids.set_uid(uid);
        ids.set_gid(gid.unwrap_or(ids.gid()));
        process.set_user(ids);
    }
    if !asked.additional_gids.is_empty() {
        let mut ids = process.user().clone();
        ids.set_additional_gids(Some(asked.additional_gids.clone()));
        process.set_user(ids);
    }
    process.set_terminal(Some(asked.tty));
    if asked.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !asked.caps.is_empty() {
        process.set_capabilities(Some(with_caps(
            process.capabilities().clone().unwrap_or_default(),
            &asked.caps,
        )?));
    }
    Ok(process)
}

/// `UID` or `UID:GID`, numbers only: names would have to be looked up in the container's files.
fn parse_user(text: &str) -> Result<(u32, Option<u32>), OciError> {
    let bad = || OciError::Refused(format!("--user {text:?}: expected UID or UID:GID, as numbers"));
    let (uid, gid) = match text.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (text, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// The capability sets with `added` in the bounding, effective and permitted sets.
fn with_caps(
    mut sets: oci_spec::runtime::LinuxCapabilities,
    added: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities, OciError> {
    let mut extra = oci_spec::runtime::Capabilities::new();
    for name in added {
        let cap: oci_spec::runtime::Capability = name
            .trim_start_matches("CAP_")
            .parse()
            .map_err(|_| OciError::Refused(format!("--cap {name}: not a capability")))?;
        extra.insert(cap);
    }
    let grow = |set: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.extend(extra.iter().copied());
        Some(set)
    };
    let (bounding, effective, permitted) = (
        grow(sets.bounding()),
        grow(sets.effective()),
        grow(sets.permitted()),
    );
    sets.set_bounding(bounding);
    sets.set_effective(effective);
    sets.set_permitted(permitted);
    Ok(sets)
}

/// `run` (create, start, wait): the container's exit status, as `combined run` reports it.
pub fn run(root: &Root, id: &str, bundle: &Path, options: &CreateOptions) -> Result<i32, OciError> {
    // Held from before the container exists, so that a Ctrl-C at any moment reaches the container
    // (forwarded below) instead of ending this process and leaving the container running alone. The
    // container's process empties its mask first thing.
    let mut held = SigSet::empty();
    for signal in nskit::process::FORWARDED {
        held.add(signal);
    }
    held.add(Signal::SIGCHLD);
    held.thread_block()
        .map_err(|e| io_err("cannot hold the signals to forward")(e.into()))?;
    let pid = create(root, id, bundle, options)?;
    if let Err(e) = start(root, id) {
        let _ = delete(root, id, true);
        return Err(e);
    }
    let status = wait_forwarding(pid, &held);
    let _ = delete(root, id, true);
    Ok(status)
}

/// The exit status of a child of this process, passing on each held signal that arrives meanwhile.
fn wait_forwarding(pid: Pid, held: &SigSet) -> i32 {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let Ok(signals) = SignalFd::with_flags(held, SfdFlags::SFD_CLOEXEC) else {
        return i32::from(crate::EXIT_LAUNCHER);
    };
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return nskit::Exit::Signal(sig).shell_status(),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return i32::from(crate::EXIT_LAUNCHER),
        }
        // Blocks until a signal: SIGCHLD when the container ends, or one to pass on.
        if let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(signal) => {
                    let _ = kill(pid, signal);
                }
            }
        }
    }
}

/// A signal given by name (`TERM`, `SIGTERM`, `term`) or number (`15`), as `kill` takes it.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| format!("{number} is not a signal number"));
    }
    let upper = text.to_ascii_uppercase();
    let name = match upper.starts_with("SIG") {
        true => upper,
        false => format!("SIG{upper}"),
    };
    name.parse::<Signal>()
        .map_err(|_| format!("{text} is not a signal name (e.g. TERM, KILL, 15)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        for text in ["TERM", "SIGTERM", "term", "15"] {
            assert_eq!(parse_signal(text), Ok(Signal::SIGTERM), "{text}");
        }
        assert_eq!(parse_signal("28"), Ok(Signal::SIGWINCH));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn the_default_spec_is_one_this_runtime_runs() {
        let scratch = tempfile::tempdir().unwrap();
        for rootless in [false, true] {
            let spec = default_spec(rootless).unwrap();
            let rootfs = scratch.path().join("rootfs/bin");
            fs::create_dir_all(&rootfs).unwrap();
            let sh = rootfs.join("sh");
            fs::write(&sh, "").unwrap();
            fs::set_permissions(&sh, fs::Permissions::from_mode(0o755)).unwrap();
            let plan = bundle::plan(scratch.path(), &spec, Lifecycle::Created { gate: -1 });
            if !rootless && !nskit::userns::is_root() {
                assert!(plan.is_err(), "without a user namespace it needs root");
                continue;
            }
            let plan = plan.unwrap();
            assert_eq!(plan.user_ns, rootless);
            assert_eq!(plan.argv, [c"sh".to_owned()]);
        }
    }

    /// Attack: another user plants `config.json` in a bundle as a dangling link; `spec` run by root
    /// created the link's target (an attacker's pass: a root-owned file in a directory only root may
    /// write). Now `spec` creates the file itself or nothing.
    #[test]
    fn spec_never_writes_through_a_link() {
        let scratch = tempfile::tempdir().unwrap();
        let (bundle, elsewhere) = (scratch.path().join("bundle"), scratch.path().join("elsewhere"));
        fs::create_dir(&bundle).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        let target = elsewhere.join("created");
        std::os::unix::fs::symlink(&target, bundle.join(bundle::CONFIG)).unwrap();
        let refused = write_spec(&bundle, true).unwrap_err();
        assert!(refused.to_string().contains("exists already"), "{refused}");
        assert!(!target.exists(), "spec wrote through the link");
        fs::remove_file(bundle.join(bundle::CONFIG)).unwrap();
        let written = write_spec(&bundle, true).unwrap();
        assert!(fs::symlink_metadata(&written).unwrap().is_file());
    }
}
