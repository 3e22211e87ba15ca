//! Running QEMU and watching it: the tests' output is streamed from the output port's file as it
//! grows, the result port's file tells when the guest booted, and the process is killed by its PID
//! on a timeout, on Ctrl-C (SIGINT) or SIGTERM, and whenever the runner is dropped, so no QEMU
//! outlives `cargo xtask test-vm` (signal(7), sigaction(2)).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::qemu::{Accel, KVM_BOOT_PROBE, Machine};
use super::report::Report;

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
    /// QEMU exited by itself (the guest powered off, or panicked and rebooted into `-no-reboot`).
    Exited,
    TimedOut,
    Interrupted,
    /// A KVM guest that did not report `booted` in time.
    KvmDidNotBoot,
}

/// Files a run writes.
#[derive(Debug)]
pub struct RunFiles {
    pub result: PathBuf,
    pub output: PathBuf,
    pub console: PathBuf,
    pub qemu_log: PathBuf,
}

/// Appends whatever was added to a file since the last look to stdout.
struct Tail {
    file: Option<File>,
    path: PathBuf,
    offset: u64,
}

impl Tail {
    fn new(path: &Path) -> Tail {
        Tail {
            file: None,
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    fn pump(&mut self) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = &mut self.file else { return };
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_ok() && file.read_to_end(&mut buf).is_ok() {
            self.offset += buf.len() as u64;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
    }
}

/// Waits for QEMU to end, streaming the tests' output. Returns how it ended and the time to boot.
pub fn watch(mut qemu: Qemu, accel: Accel, files: &RunFiles, timeout: Duration) -> anyhow::Result<Ending> {
    let start = Instant::now();
    let mut output = Tail::new(&files.output);
    let mut booted = false;
    loop {
        output.pump();
        if qemu.child.try_wait().context("cannot wait for qemu")?.is_some() {
            output.pump();
            return Ok(Ending::Exited);
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            qemu.kill();
            return Ok(Ending::Interrupted);
        }
        if start.elapsed() > timeout {
            qemu.kill();
            return Ok(Ending::TimedOut);
        }
        if accel == Accel::Kvm && !booted {
            booted =
                std::fs::read_to_string(&files.result).is_ok_and(|t| Report::parse(&t).booted_ms.is_some());
            if !booted && start.elapsed() > KVM_BOOT_PROBE {
                qemu.kill();
                return Ok(Ending::KvmDidNotBoot);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The last `lines` lines of a file, for a failure message.
pub fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
