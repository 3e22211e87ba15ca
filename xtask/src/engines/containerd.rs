//! containerd alone (Debian's 1.6), driven with `ctr`: its runc shim (`io.containerd.runc.v2`) calls the
//! runtime under test in runc's place (`--runc-binary PATH`): `run --rm` and its exit status, `run -d`,
//! `task exec`, `task kill`, and a clean `task delete`. containerd gets its own configuration, root,
//! state and sockets under the run's directory, and the image is imported from a docker archive
//! (`podman save`; see [`image_archive`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

use super::daemon::Daemon;
use super::{Context, IMAGE_PATH, Report, ensure_installed, eventually, ok, ran};

const ENGINE: &str = "containerd";
/// The busybox image's name, once imported.
pub const IMAGE: &str = "localhost/bb:latest";
const SCENARIOS: [&str; 3] = ["ctr run --rm, exit status", "task exec", "task kill, delete"];

/// A containerd of the run's own in `dir`, with `extra` appended to its configuration.
pub fn start(dir: &Path, extra: &str) -> anyhow::Result<Daemon> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("config.toml");
    let text = format!(
        "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\n[grpc]\n  address = \"{sock}\"\n\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\n[debug]\n  address = \"{sock}.debug\"\n{extra}",
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        sock = dir.join("containerd.sock").display(),
    );
    std::fs::write(&config, text)?;
    let mut cmd = Command::new("containerd");
    cmd.arg("--config").arg(&config);
    Daemon::start(
        "containerd",
        cmd,
        &dir.join("containerd.log"),
        &dir.join("containerd.sock"),
    )
}

/// `ctr` on the containerd in `dir`, in `namespace`.
pub fn ctr(dir: &Path, namespace: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address")
        .arg(dir.join("containerd.sock"))
        .args(["--namespace", namespace])
        .args(args);
    cmd
}

/// The busybox image as a docker archive, which `ctr images import` takes, made with podman (which
/// needs no daemon) in a storage of its own: [`IMAGE`], with a PATH, and a command that sleeps, so that
/// it serves as a CRI pod's sandbox image too (the pause image cannot be pulled here).
pub fn image_archive(context: &Context) -> anyhow::Result<PathBuf> {
    let archive = context.dir.join("bb-image.tar");
    if archive.is_file() {
        return Ok(archive);
    }
    ensure_installed("podman", "podman").map_err(anyhow::Error::msg)?;
    let store = context.dir.join("image-store");
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(store.join("storage"))
            .arg("--runroot")
            .arg(store.join("run"));
        cmd.args(["--events-backend", "file"]).args(args);
        cmd
    };
    let path = format!("ENV PATH={IMAGE_PATH}");
    let mut import = podman(&[
        "import",
        "--change",
        &path,
        "--change",
        r#"CMD ["sleep", "2147483647"]"#,
    ]);
    ok(import.arg(&context.rootfs_tar).arg(IMAGE), 120)?;
    let mut save = podman(&["save", "--format", "docker-archive", "-o"]);
    ok(save.arg(&archive).arg(IMAGE), 120)?;
    let _ = ran(&mut podman(&["system", "reset", "--force"]), 60);
    Ok(archive)
}

/// Imports [`IMAGE`] into `namespace`.
pub fn import_image(context: &Context, dir: &Path, namespace: &str) -> anyhow::Result<()> {
    let archive = image_archive(context)?;
    let mut import = ctr(dir, namespace, &["images", "import"]);
    ok(import.arg(&archive), 120)?;
    let listed = ok(&mut ctr(dir, namespace, &["images", "ls", "-q"]), 30)?;
    match listed.stdout.lines().any(|l| l == IMAGE) {
        true => Ok(()),
        false => bail!(
            "{IMAGE} is not among the imported images: {}",
            listed.stdout.trim()
        ),
    }
}

fn run_all(context: &Context, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    import_image(context, dir, "xtask")?;
    let runtime = context.runtime.to_string_lossy().into_owned();
    // The runtime's state and the I/O fifos in the run's directory too (ctr's defaults are under
    // /run/containerd).
    let runc_root = dir.join("runc-root").to_string_lossy().into_owned();
    let fifos = dir.join("fifo").to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let mut cmd = ctr(dir, "xtask", &["run", "--runtime", "io.containerd.runc.v2"]);
        cmd.args(["--runc-binary", &runtime, "--runc-root", &runc_root])
            .args(["--fifo-dir", &fifos])
            .args(args);
        cmd
    };
    report.scenario(ENGINE, SCENARIOS[0], || {
        let script = "echo hello; exit 8";
        let out = ran(&mut run(&["--rm", IMAGE, "once", "sh", "-c", script]), 60)?;
        out.expect_code(8)?.expect_output("hello")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[1], || {
        ok(&mut run(&["-d", IMAGE, "life", "sleep", "100"]), 60)?;
        let mut exec = ctr(dir, "xtask", &["task", "exec", "--fifo-dir", &fifos]);
        exec.args([
            "--exec-id",
            "e1",
            "life",
            "sh",
            "-c",
            "echo in exec; cat /proc/1/comm",
        ]);
        let exec = ok(&mut exec, 60)?;
        exec.expect_output("in exec\nsleep")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[2], || {
        ok(
            &mut ctr(dir, "xtask", &["task", "kill", "--signal", "SIGKILL", "life"]),
            30,
        )?;
        eventually("the task stops", 20, || {
            ran(&mut ctr(dir, "xtask", &["task", "ls"]), 30).is_ok_and(|out| {
                out.stdout
                    .lines()
                    .any(|l| l.starts_with("life") && l.contains("STOPPED"))
            })
        })?;
        ok(&mut ctr(dir, "xtask", &["task", "delete", "life"]), 30)?;
        ok(&mut ctr(dir, "xtask", &["containers", "rm", "life"]), 30)?;
        no_tasks_left(dir, "xtask")
    });
    Ok(())
}

/// Fails when containerd still lists a task in `namespace`.
pub fn no_tasks_left(dir: &Path, namespace: &str) -> anyhow::Result<()> {
    let tasks = ok(&mut ctr(dir, namespace, &["task", "ls", "-q"]), 30)?;
    match tasks.stdout.trim() {
        "" => Ok(()),
        left => bail!("containerd still has tasks in {namespace}: {left}"),
    }
}

pub fn run(context: &Context, report: &mut Report) {
    if let Err(why) = ensure_installed("containerd", "containerd") {
        report.not_run(ENGINE, &SCENARIOS, &why);
        return;
    }
    let dir = context.dir.join("containerd");
    let daemon = match start(&dir, "") {
        Ok(daemon) => daemon,
        Err(e) => {
            report.failed_rest(ENGINE, &SCENARIOS, &format!("containerd could not start: {e:#}"));
            return;
        }
    };
    if let Err(e) = run_all(context, report, &dir) {
        report.failed_rest(
            ENGINE,
            &SCENARIOS,
            &format!("containerd could not be set up: {e:#}"),
        );
    }
    for id in ["life", "once"] {
        let _ = ran(
            &mut ctr(&dir, "xtask", &["task", "kill", "--signal", "SIGKILL", id]),
            30,
        );
        let _ = ran(&mut ctr(&dir, "xtask", &["task", "delete", "--force", id]), 30);
        let _ = ran(&mut ctr(&dir, "xtask", &["containers", "rm", id]), 30);
    }
    drop(daemon);
}
