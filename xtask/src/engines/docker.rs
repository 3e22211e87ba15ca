//! docker (Debian's dockerd 20.10, its own containerd and the runc shim) running its containers on the
//! runtime under test, registered as `--add-runtime combined=PATH` and chosen per run with
//! `--runtime combined`: `run --rm` and its exit status, `run -it` at a real terminal, `exec`, `top`
//! (the runtime's `ps --format json`), `stop`, `kill`, `rm -f`, `--memory`, `--pids-limit`, and the
//! runtime's own message (from its JSON log) when a command is missing from the image. dockerd gets the
//! run's data, exec and config directories and socket, and neither iptables, a bridge, nor IP
//! forwarding turned on.

use std::process::Command;

use anyhow::bail;

use super::daemon::Daemon;
use super::terminal::Terminal;
use super::{Context, IMAGE_PATH, Report, ensure_installed, ok, ran};

const ENGINE: &str = "docker";
const IMAGE: &str = "bb:latest";
const SCENARIOS: [&str; 8] = [
    "run --rm, exit status",
    "run -it, pty",
    "run -d, exec, top",
    "stop, kill, rm -f",
    "--memory",
    "--pids-limit",
    "missing command: runtime's message",
    "daemon log: no runtime error",
];

/// The docker client, talking to this run's daemon (Debian's CLI: a newer one may be earlier on PATH).
fn docker(context: &Context, args: &[&str]) -> Command {
    let dir = context.dir.join("docker");
    let mut cmd = Command::new("/usr/bin/docker");
    cmd.env("DOCKER_CONFIG", dir.join("client"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("docker.sock").display()))
        .args(args);
    cmd
}

fn start_daemon(context: &Context) -> anyhow::Result<Daemon> {
    let dir = context.dir.join("docker");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("daemon.json");
    std::fs::write(&config, "{}\n")?;
    let mut cmd = Command::new("dockerd");
    cmd.arg("--config-file")
        .arg(&config)
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("dockerd.pid"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("docker.sock").display()))
        .args([
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--bridge=none",
        ])
        .arg("--add-runtime")
        .arg(format!("combined={}", context.runtime.display()));
    Daemon::start("dockerd", cmd, &dir.join("dockerd.log"), &dir.join("docker.sock"))
}

/// `docker run --runtime combined --network none ARGS`.
fn docker_run(context: &Context, args: &[&str]) -> Command {
    let mut cmd = docker(context, &["run", "--runtime", "combined", "--network", "none"]);
    cmd.args(args);
    cmd
}

fn run_all(context: &Context, report: &mut Report, daemon: &Daemon) -> anyhow::Result<()> {
    let mut import = docker(
        context,
        &["import", "--change", &format!("ENV PATH={IMAGE_PATH}")],
    );
    ok(import.arg(&context.rootfs_tar).arg(IMAGE), 120)?;
    report.scenario(ENGINE, SCENARIOS[0], || {
        let out = ran(
            &mut docker_run(context, &["--rm", IMAGE, "sh", "-c", "echo hello; exit 6"]),
            60,
        )?;
        out.expect_code(6)?.expect_output("hello")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[1], || {
        let mut term = Terminal::spawn(
            docker_run(context, &["-it", "--rm", IMAGE, "sh", "-c", "tty; echo DONE"]),
            24,
            80,
        )?;
        term.expect("DONE", 60)?;
        if !term.seen.contains("/dev/pts/0") {
            bail!("run -it got no pty: {:?}", term.seen);
        }
        term.finish(30)?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[2], || {
        let script = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
        ok(
            &mut docker_run(context, &["-d", "--name", "life", IMAGE, "sh", "-c", script]),
            60,
        )?;
        ok(
            &mut docker(context, &["exec", "life", "sh", "-c", "echo in exec; id -u"]),
            60,
        )?
        .expect_output("in exec\n0")?;
        let top = ok(&mut docker(context, &["top", "life"]), 60)?;
        top.expect_output("while true")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[3], || {
        ok(&mut docker(context, &["stop", "-t", "10", "life"]), 60)?;
        let code = ok(
            &mut docker(context, &["inspect", "--format", "{{.State.ExitCode}}", "life"]),
            30,
        )?;
        if code.stdout.trim() != "0" {
            bail!("the container's TERM trap exits 0, not {}", code.stdout.trim());
        }
        ok(
            &mut docker_run(context, &["-d", "--name", "killed", IMAGE, "sleep", "100"]),
            60,
        )?;
        ok(&mut docker(context, &["kill", "killed"]), 30)?;
        ok(&mut docker(context, &["wait", "killed"]), 30)?.expect_output("137")?;
        ok(
            &mut docker_run(context, &["-d", "--name", "running", IMAGE, "sleep", "100"]),
            60,
        )?;
        ok(
            &mut docker(context, &["rm", "-f", "life", "killed", "running"]),
            60,
        )?;
        let left = ok(&mut docker(context, &["ps", "-a", "-q"]), 30)?;
        if !left.stdout.trim().is_empty() {
            bail!("containers left after rm -f: {}", left.stdout.trim());
        }
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[4], || {
        let hog = "x=a; while true; do x=$x$x; done";
        ran(
            &mut docker_run(context, &["--rm", "--memory", "16m", IMAGE, "sh", "-c", hog]),
            60,
        )?
        .expect_code(137)?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[5], || {
        let forks = "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait";
        ran(
            &mut docker_run(context, &["--rm", "--pids-limit", "5", IMAGE, "sh", "-c", forks]),
            60,
        )?
        .expect_output("can't fork")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[6], || {
        // docker reads the runtime's JSON log and shows its message; "executable file not found" makes
        // it exit 127, as with runc.
        let out = ran(&mut docker_run(context, &["--rm", IMAGE, "nosuchcommand"]), 60)?;
        out.expect_code(127)?
            .expect_output("nosuchcommand: executable file not found in the root filesystem")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[7], || {
        let log = std::fs::read_to_string(&daemon.log)?;
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("level=error") && l.contains("combined") && !l.contains("nosuchcommand"))
            .collect();
        if !errors.is_empty() {
            bail!("dockerd logged runtime errors: {}", errors.join(" / "));
        }
        Ok(())
    });
    Ok(())
}

pub fn run(context: &Context, report: &mut Report) {
    if let Err(why) = ensure_installed("dockerd", "docker.io") {
        report.not_run(ENGINE, &SCENARIOS, &why);
        return;
    }
    let daemon = match start_daemon(context) {
        Ok(daemon) => daemon,
        Err(e) => {
            report.failed_rest(ENGINE, &SCENARIOS, &format!("dockerd could not start: {e:#}"));
            return;
        }
    };
    if let Err(e) = run_all(context, report, &daemon) {
        report.failed_rest(ENGINE, &SCENARIOS, &format!("docker could not be set up: {e:#}"));
    }
    let _ = ran(
        &mut docker(context, &["rm", "-f", "life", "killed", "running"]),
        60,
    );
    drop(daemon);
}
