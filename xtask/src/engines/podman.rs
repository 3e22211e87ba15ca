//! podman (Debian's 4.3, with conmon) running its containers on the runtime under test
//! (`podman --runtime PATH`): `run --rm` and its exit status, `run -it` at a real terminal with a
//! resize, `run -d` with `exec`, `exec -it`, `logs`, `stop` (SIGTERM, then SIGKILL after the
//! timeout), `kill`, `rm -f`, `--memory` and `--pids-limit` enforced, and `podman info` naming the
//! runtime. Its storage, run and temporary directories are the run's own; cgroups through cgroupfs.

use std::process::Command;

use anyhow::bail;

use super::terminal::Terminal;
use super::{Context, IMAGE_PATH, Report, ensure_installed, ok, ran};

const ENGINE: &str = "podman";
const IMAGE: &str = "localhost/bb:latest";
const SCENARIOS: [&str; 9] = [
    "run --rm, exit status",
    "run -it, pty and resize",
    "run -d, exec, logs, stop",
    "exec -it",
    "stop: SIGKILL after timeout",
    "kill, rm -f",
    "--memory",
    "--pids-limit",
    "info names the runtime",
];

/// `podman` with the run's own directories and the runtime under test.
fn podman(context: &Context) -> Command {
    let dir = context.dir.join("podman");
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .arg("--volumepath")
        .arg(dir.join("volumes"))
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
        .arg("--runtime")
        .arg(&context.runtime);
    cmd
}

/// `podman run` with what every run here needs: no network, and open-file and process limits no
/// higher than the runtime may set without CAP_SYS_RESOURCE (podman's default is 1048576).
fn podman_run(context: &Context, args: &[&str]) -> Command {
    let mut cmd = podman(context);
    cmd.args(["run", "--network", "none"])
        .args(["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"])
        .args(args);
    cmd
}

pub fn run_all(context: &Context, report: &mut Report) -> anyhow::Result<()> {
    ok(
        podman(context)
            .args(["import", "--change", &format!("ENV PATH={IMAGE_PATH}")])
            .arg(&context.rootfs_tar)
            .arg(IMAGE),
        120,
    )?;
    report.scenario(ENGINE, SCENARIOS[0], || {
        let out = ran(
            &mut podman_run(context, &["--rm", IMAGE, "sh", "-c", "echo hello; exit 3"]),
            60,
        )?;
        out.expect_code(3)?.expect_output("hello")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[1], || run_it(context));
    report.scenario(ENGINE, SCENARIOS[2], || life(context));
    report.scenario(ENGINE, SCENARIOS[3], || {
        let mut term = Terminal::spawn(
            podman_args(context, &["exec", "-it", "life", "sh", "-c", "tty; echo DONE"]),
            24,
            80,
        )?;
        term.expect("DONE", 30)?;
        if !term.seen.contains("/dev/pts/") {
            bail!("exec -it got no pty: {:?}", term.seen);
        }
        term.finish(30)?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[4], || {
        ok(&mut podman_args(context, &["stop", "-t", "10", "life"]), 60)?;
        let logs = ok(&mut podman_args(context, &["logs", "life"]), 30)?;
        logs.expect_output("got TERM")?;
        // PID 1 ignores a signal it has no handler for: `sleep` as PID 1 takes SIGKILL only.
        ok(
            &mut podman_run(context, &["-d", "--name", "stubborn", IMAGE, "sleep", "100"]),
            60,
        )?;
        ok(&mut podman_args(context, &["stop", "-t", "1", "stubborn"]), 60)?;
        let code = ok(
            &mut podman_args(
                context,
                &["inspect", "--format", "{{.State.ExitCode}}", "stubborn"],
            ),
            30,
        )?;
        if code.stdout.trim() != "137" {
            bail!(
                "a container stopped with SIGKILL exits 137, not {}",
                code.stdout.trim()
            );
        }
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[5], || {
        ok(
            &mut podman_run(context, &["-d", "--name", "killed", IMAGE, "sleep", "100"]),
            60,
        )?;
        ok(&mut podman_args(context, &["kill", "killed"]), 30)?;
        ok(&mut podman_args(context, &["wait", "killed"]), 30)?.expect_output("137")?;
        for name in ["killed", "stubborn", "life"] {
            ok(&mut podman_args(context, &["rm", "-f", name]), 60)?;
        }
        let left = ok(&mut podman_args(context, &["ps", "-a", "-q"]), 30)?;
        if !left.stdout.trim().is_empty() {
            bail!("containers left after rm -f: {}", left.stdout.trim());
        }
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[6], || {
        let hog = "x=a; while true; do x=$x$x; done";
        ran(
            &mut podman_run(context, &["--rm", "--memory", "16m", IMAGE, "sh", "-c", hog]),
            60,
        )?
        .expect_code(137)?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[7], || {
        let forks = "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait";
        let out = ran(
            &mut podman_run(context, &["--rm", "--pids-limit", "5", IMAGE, "sh", "-c", forks]),
            60,
        )?;
        out.expect_output("can't fork")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[8], || {
        let info = ok(
            &mut podman_args(context, &["info", "--format", "{{.Host.OCIRuntime.Version}}"]),
            60,
        )?;
        info.expect_output("combined")?;
        Ok(())
    });
    Ok(())
}

fn podman_args(context: &Context, args: &[&str]) -> Command {
    let mut cmd = podman(context);
    cmd.args(args);
    cmd
}

/// `run -it`: the container's pty is `/dev/pts/0`, sized as the client's terminal, and a resize of
/// that terminal reaches the container as SIGWINCH with the new size.
fn run_it(context: &Context) -> anyhow::Result<()> {
    let script = "trap 'stty size' WINCH; tty; stty size; echo READY; while true; do sleep 0.1; done";
    let mut term = Terminal::spawn(
        podman_run(context, &["-it", "--rm", IMAGE, "sh", "-c", script]),
        24,
        80,
    )?;
    term.expect("READY", 60)?;
    for expected in ["/dev/pts/0", "24 80"] {
        if !term.seen.contains(expected) {
            bail!("no {expected:?} before READY: {:?}", term.seen);
        }
    }
    term.resize(40, 120)?;
    term.expect("40 120", 30)?;
    // Ctrl-C, through the pty's own line discipline, ends the container's shell.
    term.send("\u{3}")?;
    term.finish(30)?;
    Ok(())
}

/// `run -d`, then `exec` and `logs` while it runs; `stop` is the next scenario's.
fn life(context: &Context) -> anyhow::Result<()> {
    let script = "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done";
    ok(
        &mut podman_run(context, &["-d", "--name", "life", IMAGE, "sh", "-c", script]),
        60,
    )?;
    let exec = ok(
        &mut podman_args(
            context,
            &["exec", "life", "sh", "-c", "echo in exec; cat /proc/1/comm"],
        ),
        60,
    )?;
    exec.expect_output("in exec")?.expect_output("sh")?;
    super::eventually("the container's output reaches its log", 10, || {
        ran(&mut podman_args(context, &["logs", "life"]), 30).is_ok_and(|out| out.stdout.contains("started"))
    })
}

/// Every scenario, or why none can run.
pub fn run(context: &Context, report: &mut Report) {
    if let Err(why) = ensure_installed("podman", "podman") {
        report.not_run(ENGINE, &SCENARIOS, &why);
        return;
    }
    if let Err(e) = run_all(context, report) {
        report.failed_rest(ENGINE, &SCENARIOS, &format!("podman could not be set up: {e:#}"));
    }
    let _ = ran(&mut podman_args(context, &["rm", "-a", "-f"]), 60);
    let _ = ran(&mut podman_args(context, &["system", "reset", "--force"]), 60);
    rootless(report);
}

/// Rootless podman needs subordinate ids for its user (/etc/subuid, /etc/subgid): said so when the host
/// has none, rather than changing the host's user database.
fn rootless(report: &mut Report) {
    let has_ranges = |file: &str| {
        std::fs::read_to_string(file).is_ok_and(|text| text.lines().any(|l| !l.trim().is_empty()))
    };
    if !has_ranges("/etc/subuid") || !has_ranges("/etc/subgid") {
        report.not_run(
            ENGINE,
            &["rootless run --rm"],
            "no user has subordinate ids here (/etc/subuid and /etc/subgid list none); rootless podman needs a range for its user (usermod --add-subuids)",
        );
        return;
    }
    report.not_run(
        ENGINE,
        &["rootless run --rm"],
        "subordinate ids exist, but this harness runs rootless podman only as uid 65534, which has none",
    );
}
