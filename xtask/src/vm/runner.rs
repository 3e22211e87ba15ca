//! Running the guests and watching them. Each guest is a QEMU of its own with three virtio-serial
//! ports: the report (a host file), the tests' output (a host file, read as it grows and printed one
//! job at a time, so that two guests' outputs never interleave), and the control port, an abstract
//! unix socket (unix(7)) QEMU connects to as it starts, on which the guest asks for its next job.
//! Every QEMU is killed by its PID on a timeout, on Ctrl-C (SIGINT) or SIGTERM, and whenever its
//! guest is dropped, so no QEMU outlives `cargo xtask test-vm` (signal(7), sigaction(2)).

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::qemu::{Accel, KVM_BOOT_PROBE, Machine};
use super::report::Report;
use super::schedule::Dispatcher;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM only set a flag, which the wait loop turns into killing QEMU.
pub fn catch_interrupts() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(note_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.context("cannot install a signal handler")?;
    }
    Ok(())
}

/// A running QEMU, killed and reaped when dropped.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
}

impl Qemu {
    /// Starts QEMU for `machine`, in its own process group so that a Ctrl-C reaches only us (we then
    /// kill it), with its own stdout and stderr going to `log`.
    pub fn start(machine: &Machine, log: &Path) -> anyhow::Result<Qemu> {
        let log_file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new("qemu-system-x86_64")
            .args(machine.args())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .context("cannot start qemu-system-x86_64")?;
        Ok(Qemu { child })
    }

    /// Starts QEMU on this terminal (for `--shell`) and waits for it.
    pub fn interactive(machine: &Machine) -> anyhow::Result<ExitStatus> {
        let child = Command::new("qemu-system-x86_64")
            .args(machine.args())
            .spawn()
            .context("cannot start qemu-system-x86_64")?;
        let mut qemu = Qemu { child };
        qemu.child.wait().context("cannot wait for qemu")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// How a watched run ended.
#[derive(Debug)]
pub enum Ending {
    /// Every QEMU exited by itself (its guest powered off, or panicked and rebooted into
    /// `-no-reboot`).
    Exited,
    TimedOut,
    Interrupted,
    /// A KVM guest that did not report `booted` in time.
    KvmDidNotBoot,
}

/// The files one guest writes, in the run's work directory, numbered from 1 like the guests.
#[derive(Debug)]
pub struct GuestFiles {
    pub result: PathBuf,
    pub output: PathBuf,
    pub console: PathBuf,
    pub qemu_log: PathBuf,
}

impl GuestFiles {
    pub fn new(dir: &Path, number: usize) -> GuestFiles {
        GuestFiles {
            result: dir.join(format!("result-{number}")),
            output: dir.join(format!("output-{number}")),
            console: dir.join(format!("console-{number}.log")),
            qemu_log: dir.join(format!("qemu-{number}.log")),
        }
    }
}

/// One guest: its QEMU, its files, and the host's ends of its ports.
#[derive(Debug)]
pub struct Guest {
    qemu: Qemu,
    pub files: GuestFiles,
    control: ControlPort,
    output: JobOutput,
    exited: bool,
    booted: bool,
}

impl Guest {
    /// Listens on `machine`'s control socket, then starts its QEMU (which connects to it at once).
    pub fn start(machine: &Machine, files: GuestFiles) -> anyhow::Result<Guest> {
        let name = machine
            .control
            .as_deref()
            .context("a guest that runs tests needs a control port")?;
        for stale in [&files.result, &files.output] {
            let _ = std::fs::remove_file(stale);
        }
        let control = ControlPort::bind(name)?;
        let qemu = Qemu::start(machine, &files.qemu_log)?;
        let output = JobOutput::new(&files.output);
        Ok(Guest {
            qemu,
            files,
            control,
            output,
            exited: false,
            booted: false,
        })
    }

    /// Whether the guest has said `booted`; read from its report until it has.
    fn has_booted(&mut self) -> bool {
        if !self.booted {
            self.booted = std::fs::read_to_string(&self.files.result)
                .is_ok_and(|t| Report::parse(&t).booted_ms.is_some());
        }
        self.booted
    }

    fn kill(&mut self) {
        self.qemu.kill();
        self.exited = true;
        self.output.finish();
    }
}

/// Waits for every guest to end, handing out jobs and printing the tests' output as it comes.
pub fn watch(
    guests: &mut [Guest],
    dispatcher: &mut Dispatcher,
    accel: Accel,
    timeout: Duration,
) -> anyhow::Result<Ending> {
    let start = Instant::now();
    loop {
        for (index, guest) in guests.iter_mut().enumerate() {
            guest.output.pump();
            guest.control.serve(index, dispatcher)?;
            if !guest.exited
                && guest
                    .qemu
                    .child
                    .try_wait()
                    .context("cannot wait for qemu")?
                    .is_some()
            {
                guest.exited = true;
                guest.output.finish();
            }
        }
        if guests.iter().all(|g| g.exited) {
            return Ok(Ending::Exited);
        }
        let stop = if INTERRUPTED.load(Ordering::SeqCst) {
            Some(Ending::Interrupted)
        } else if start.elapsed() > timeout {
            Some(Ending::TimedOut)
        } else if accel == Accel::Kvm
            && start.elapsed() > KVM_BOOT_PROBE
            && !guests.iter_mut().all(Guest::has_booted)
        {
            Some(Ending::KvmDidNotBoot)
        } else {
            None
        };
        if let Some(ending) = stop {
            guests.iter_mut().for_each(Guest::kill);
            return Ok(ending);
        }
        // Short enough that a guest asking for its next job hardly waits.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The host's end of a guest's control port. QEMU connects as a client (`-chardev socket`), so the
/// listener exists before QEMU starts and nothing races; everything is non-blocking, served from
/// the watch loop.
#[derive(Debug)]
struct ControlPort {
    listener: UnixListener,
    stream: Option<UnixStream>,
    closed: bool,
    pending: Vec<u8>,
}

impl ControlPort {
    /// Listens on the abstract socket `name`: no file to clean up, and no limit from the length of
    /// the workspace's path.
    fn bind(name: &str) -> anyhow::Result<ControlPort> {
        let address = SocketAddr::from_abstract_name(name.as_bytes())
            .with_context(|| format!("bad socket name {name}"))?;
        let listener =
            UnixListener::bind_addr(&address).with_context(|| format!("cannot listen on @{name}"))?;
        listener.set_nonblocking(true)?;
        Ok(ControlPort {
            listener,
            stream: None,
            closed: false,
            pending: Vec::new(),
        })
    }

    /// Answers every `next` the guest sent since the last look with its next job, or `stop`.
    fn serve(&mut self, guest: usize, dispatcher: &mut Dispatcher) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        if self.stream.is_none() {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(true)?;
                    self.stream = Some(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e).context("cannot accept qemu's control connection"),
            }
        }
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        let mut buf = [0u8; 512];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("cannot read the guest's control port"),
            }
        }
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            // The guest says nothing but `next`; anything else is not a request.
            if line == b"next\n" && !self.closed {
                let reply = format!("{}\n", dispatcher.reply(guest));
                stream
                    .write_all(reply.as_bytes())
                    .context("cannot answer the guest's control port")?;
            }
        }
        Ok(())
    }
}

/// The lines vm-init frames each job's output with (see its `run_test`).
const RUNNING: &str = "vm-init: running ";
const FINISHED: &str = "vm-init: finished ";

/// A guest's output port, printed one job at a time: the lines from a `running` line to its
/// `finished` line are held back and printed together, so that several guests' jobs do not mix.
#[derive(Debug)]
struct JobOutput {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    partial: Vec<u8>,
    job: Vec<String>,
}

impl JobOutput {
    fn new(path: &Path) -> JobOutput {
        JobOutput {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            partial: Vec::new(),
            job: Vec::new(),
        }
    }

    /// Reads what the guest added since the last look, and prints every job that finished.
    fn pump(&mut self) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = &mut self.file else { return };
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut buf).is_err() {
            return;
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.take(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
    }

    fn take(&mut self, line: String) {
        if line.starts_with(RUNNING) {
            // A job that never said it finished: print what it said before the next one's.
            self.print_job();
        }
        let in_job = !self.job.is_empty() || line.starts_with(RUNNING);
        if !in_job {
            print_lines(&[line]);
            return;
        }
        let finished = line.starts_with(FINISHED);
        self.job.push(line);
        if finished {
            self.print_job();
        }
    }

    fn print_job(&mut self) {
        if !self.job.is_empty() {
            let mut lines = vec![String::new()];
            lines.append(&mut self.job);
            print_lines(&lines);
        }
    }

    /// The guest stopped: prints what it left, finished or not.
    fn finish(&mut self) {
        self.pump();
        if !self.partial.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.job.push(rest);
        }
        self.print_job();
    }
}

/// Prints the lines in one piece (the watch loop is the only printer, so nothing comes between).
fn print_lines(lines: &[String]) {
    let mut block = lines.join("\n");
    block.push('\n');
    print!("{block}");
    let _ = std::io::stdout().flush();
}

/// The CPU time this process's reaped children used, user and system (`cutime` and `cstime` in
/// `/proc/self/stat`, proc(5)), in clock ticks of USER_HZ, which is 100 on every Linux ABI.
pub fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses (which may hold spaces), cutime and cstime are the
    // 14th and 15th fields.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
        .unwrap_or_default();
    let ticks = fields.get(13).copied().unwrap_or(0) + fields.get(14).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The last `lines` lines of a file, for a failure message.
pub fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaped_child_s_cpu_time_is_counted() {
        let before = children_cpu();
        // A child that spins for a quarter of a second of CPU time, then is reaped.
        let status = Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s%N) + 250000000)); while [ $(date +%s%N) -lt $end ]; do :; done",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let used = children_cpu() - before;
        assert!(used >= Duration::from_millis(100), "{used:?}");
    }

    #[test]
    fn a_job_s_output_is_held_until_it_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output");
        std::fs::write(&path, "vm-init: running /t/a as root\nline 1\n").unwrap();
        let mut output = JobOutput::new(&path);
        output.pump();
        assert_eq!(output.job, ["vm-init: running /t/a as root", "line 1"]);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"vm-init: finished /t/a as root: pass in 5 ms\nvm-init: runn")
            .unwrap();
        output.pump();
        assert!(output.job.is_empty(), "printed once finished: {:?}", output.job);
        assert_eq!(output.partial, b"vm-init: runn");
    }
}
