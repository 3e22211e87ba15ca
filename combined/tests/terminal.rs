//! The container and the host's terminal (pty(7), ioctl_tty(2), termios(3), signal(7)), driven through
//! a real pseudo-terminal as a user at a terminal would: the container gets a pty of its own
//! (`/dev/pts/0`, the terminal's size and its changes), Ctrl-C and Ctrl-Z act inside it, the host
//! terminal's mode comes back on every way out, and the host's shell reads its own input after a run.
//! Without a pty the container has no controlling terminal. Either way nothing the container pushes
//! with TIOCSTI reaches the host terminal's input queue (bubblewrap's CVE-2017-5226). And the command
//! starts with every signal at its default, whatever the launcher inherited.
//!
//! Every test runs as root and, through a user namespace, as an ordinary user.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Rootfs, Terminal, combined, have_busybox, namespaces};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn ready(test: &str) -> Option<Rootfs> {
    (namespaces(test) && have_busybox(test)).then(Rootfs::new)
}

/// `combined run --rootfs <rootfs> <extra> -- sh -c <script>`, as a command line.
fn sh(rootfs: &Rootfs, extra: &[&str], script: &str) -> Command {
    let mut args = vec!["run", "--rootfs", rootfs.str()];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", script]);
    combined(&args)
}

// ---- a pty of its own -------------------------------------------------------------------------------

#[test]
fn a_container_at_a_terminal_gets_a_pty_of_its_own_with_the_terminals_size() {
    let Some(rootfs) = ready("a_container_at_a_terminal_gets_a_pty_of_its_own_with_the_terminals_size")
    else {
        return;
    };
    let mut term = Terminal::new(30, 100);
    let mode = term.mode();
    let script = "tty; stty size; trap 'stty size' WINCH; echo waiting; while :; do sleep 0.1; done";
    let mut child = term.spawn(&mut sh(&rootfs, &[], script));
    term.expect("/dev/pts/0");
    term.expect("30 100");
    term.expect("waiting");
    term.resize(40, 120);
    term.expect("40 120");
    // Ctrl-C is a byte for the container's pty now, which sends SIGINT to the command's group.
    term.send(b"\x03");
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(130), "transcript:\n{}", term.transcript);
    assert_eq!(term.mode(), mode, "the host terminal's mode is restored");
}

#[test]
fn ctrl_z_does_not_hang_the_terminal() {
    let Some(rootfs) = ready("ctrl_z_does_not_hang_the_terminal") else {
        return;
    };
    let mut term = Terminal::new(24, 80);
    let mut child = term.spawn(&mut sh(&rootfs, &[], "echo started; exec sleep 100"));
    term.expect("started");
    // A job stopped by Ctrl-Z with nobody in the container to resume it used to hang the terminal:
    // the command's process group is orphaned (its parent, init, is in another session), so the
    // kernel does not stop it, and the next Ctrl-C still ends it.
    term.send(b"\x1a");
    std::thread::sleep(Duration::from_millis(300));
    term.send(b"\x03");
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(130), "transcript:\n{}", term.transcript);
}

#[test]
fn the_terminal_mode_comes_back_when_the_launcher_is_signalled() {
    let Some(rootfs) = ready("the_terminal_mode_comes_back_when_the_launcher_is_signalled") else {
        return;
    };
    let mut term = Terminal::new(24, 80);
    let mode = term.mode();
    let mut child = term.spawn(&mut sh(&rootfs, &[], "echo started; exec sleep 100"));
    term.expect("started");
    assert_ne!(term.mode(), mode, "the launcher put the terminal in raw mode");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(128 + 15), "transcript:\n{}", term.transcript);
    assert_eq!(term.mode(), mode, "the host terminal's mode is restored");
}

#[test]
fn tty_false_runs_without_a_controlling_terminal() {
    let Some(rootfs) = ready("tty_false_runs_without_a_controlling_terminal") else {
        return;
    };
    let mut term = Terminal::new(24, 80);
    let script = "tty; cat /dev/tty; echo cat=$?";
    let mut child = term.spawn(&mut sh(&rootfs, &["--tty=false"], script));
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    term.expect("cat=1");
    assert_eq!(status.code(), Some(0), "transcript:\n{}", term.transcript);
    // Its stdin is still the host's terminal, but no terminal is the container's own.
    assert!(!term.transcript.contains("/dev/pts/0"), "{}", term.transcript);
}

#[test]
fn output_captured_by_a_script_gets_no_pty() {
    let Some(rootfs) = ready("output_captured_by_a_script_gets_no_pty") else {
        return;
    };
    // stdin is a terminal, stdout a pipe: the output is the command's own bytes, with no `\r\n`.
    let term = Terminal::new(24, 80);
    let mut cmd = sh(&rootfs, &[], "tty; echo plain");
    let out = common::finish(term.spawn_on_stdin(&mut cmd));
    assert_eq!(out.ok(), "not a tty\nplain\n", "{out:#?}");
}

// ---- the host's shell, after a run ------------------------------------------------------------------

// ANCHOR: script_read_test
/// The host's shell runs the launcher and then reads a line from its terminal: it must get the line,
/// not EIO or SIGTTIN (the terminal's foreground once stayed with the dead container's process group).
#[test]
fn a_script_reads_its_terminal_after_a_run() {
    let Some(rootfs) = ready("a_script_reads_its_terminal_after_a_run") else {
        return;
    };
    for tty in ["--tty=true", "--tty=false"] {
        let mut term = Terminal::new(24, 80);
        let script = format!(
            "{} run --rootfs {} {tty} -- true; echo ran=$?; read v; echo got=$v",
            common::COMBINED,
            rootfs.str()
        );
        let mut child = term.spawn(
            Command::new("/bin/sh")
                .args(["-c", &script])
                .env("XDG_CACHE_HOME", common::cache()),
        );
        term.expect("ran=0");
        term.send(b"hello\n");
        term.expect("got=hello");
        let status = common::wait_deadline(&mut child, common::DEADLINE);
        assert_eq!(status.code(), Some(0), "{tty}: transcript:\n{}", term.transcript);
    }
}
// ANCHOR_END: script_read_test

// ---- TIOCSTI ----------------------------------------------------------------------------------------

// ANCHOR: tiocsti_test
/// The container pushes `echo pwned` into every terminal it can reach. The host terminal's input
/// queue must be empty afterwards, whether the container had a pty or none, and with the seccomp
/// filter off, so that the terminal itself is what stops it.
#[test]
fn tiocsti_from_a_container_never_reaches_the_host_terminal() {
    if !namespaces("tiocsti_from_a_container_never_reaches_the_host_terminal") {
        return;
    }
    let volume = format!("{}:/probe/probe:ro", env!("CARGO_BIN_EXE_combined-probe"));
    for tty in ["--tty=true", "--tty=false"] {
        let mut term = Terminal::new(24, 80);
        let mut cmd = combined(&[
            "run",
            tty,
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &volume,
            "--",
            "/probe/probe",
            "tiocsti",
            "echo pwned\n",
        ]);
        let mut child = term.spawn(&mut cmd);
        let status = common::wait_deadline(&mut child, common::DEADLINE);
        let shown = term.settle().to_owned();
        assert_eq!(status.code(), Some(0), "{tty}: {shown}");
        assert!(shown.contains("tiocsti_stdin="), "{tty}: the probe ran: {shown}");
        assert_eq!(
            term.input_queue(),
            0,
            "{tty}: injected input waits for the host's shell: {shown}"
        );
        if tty == "--tty=false" {
            // Without a pty: the host terminal is nobody's controlling terminal in the container.
            assert!(shown.contains("tiocsti_stdin=err:EPERM"), "{shown}");
            assert!(shown.contains("open_dev_tty=err:ENXIO"), "{shown}");
        }
    }
}
// ANCHOR_END: tiocsti_test

// ---- signals start clean ----------------------------------------------------------------------------

// ANCHOR: signals_test
/// A launcher started with SIGINT ignored and SIGUSR1 blocked (by `nohup`, or a script's `trap '' INT`),
/// and with SIGPIPE ignored (Rust's runtime does that): the command sees none of it.
#[test]
fn the_command_starts_with_default_signals() {
    let Some(rootfs) = ready("the_command_starts_with_default_signals") else {
        return;
    };
    let script = "grep -E 'SigIgn|SigBlk' /proc/self/status; yes | head -1";
    let mut cmd = sh(&rootfs, &[], script);
    inherit_ignored_sigint(&mut cmd);
    let out = common::output(&mut cmd);
    let text = out.ok();
    assert!(text.contains("SigIgn:\t0000000000000000"), "{out:#?}");
    assert!(text.contains("SigBlk:\t0000000000000000"), "{out:#?}");
    assert!(text.ends_with("y\n"), "{out:#?}");
    assert!(out.stderr.is_empty(), "no 'Broken pipe': {out:#?}");

    // And SIGINT, forwarded by the launcher, ends the command.
    let mut cmd = sh(&rootfs, &[], "echo started; exec sleep 100");
    inherit_ignored_sigint(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = common::wait_deadline(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(128 + 2));
}
// ANCHOR_END: signals_test

/// SIGINT ignored, as `nohup` or `trap '' INT` leave it.
fn ignore_sigint() -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler, so no code runs in a signal context because of it.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn) }.map(drop)
}

fn inherit_ignored_sigint(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec this only changes signal dispositions and the mask, with
    // async-signal-safe calls, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut usr1 = nix::sys::signal::SigSet::empty();
            usr1.add(Signal::SIGUSR1);
            nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&usr1), None)?;
            ignore_sigint()?;
            Ok(())
        });
    }
}
