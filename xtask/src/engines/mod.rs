//! `cargo xtask engines`: the container engines people run, each driving `combined` as its OCI runtime
//! through a whole container lifecycle, the way they drive runc and crun: podman (through conmon),
//! docker (dockerd, its containerd and the runc shim), containerd alone (`ctr`), and Kubernetes' CRI
//! (containerd's CRI plugin, driven by crictl as a kubelet drives it). Each engine is Debian's own
//! package, installed with apt-get when root and missing, started by this command with its state,
//! sockets and logs under one temporary directory, and stopped by its pid afterwards; images come
//! from the busybox rootfs (`cargo xtask rootfs`); no network is used.
//!
//! Each scenario is reported as passed, failed (with the engine's own output), or not run with the
//! reason (an engine that cannot be installed, rootless podman without subordinate ids). Afterwards
//! the mounts, interfaces and cgroups of the host are counted again: anything the run left is
//! removed where it was the run's own (mounts under its directory, cgroups it made), and reported.

mod containerd;
mod cri;
mod daemon;
mod docker;
mod host;
mod podman;
mod terminal;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::util::{self, apt_install, can_apt_install, cargo, is_root};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// An engine to run (repeatable; default: all of them).
    #[arg(long = "engine", value_enum)]
    engines: Vec<Engine>,
    /// The runtime the engines are given (default: combined, built with cargo).
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// Keep the run's directory (daemons' logs, state) for a look afterwards.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Podman,
    Docker,
    Containerd,
    Cri,
}

/// The `PATH` the images get: an image imported from a bare rootfs has no environment, and containerd
/// and the CRI find the command with the image's PATH only.
pub const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What every engine's scenarios share.
#[derive(Debug)]
pub struct Context {
    /// The runtime under test, absolute.
    pub runtime: PathBuf,
    /// The run's directory: each engine's state goes in a directory of its own under it.
    pub dir: PathBuf,
    /// The busybox rootfs as a gzip'd tarball, the form `podman import` and `docker import` take.
    pub rootfs_tar: PathBuf,
}

/// How a scenario ended.
#[derive(Debug)]
pub enum Verdict {
    Passed,
    Failed(String),
    NotRun(String),
}

/// One scenario of one engine.
#[derive(Debug)]
pub struct Outcome {
    pub engine: &'static str,
    pub scenario: String,
    pub verdict: Verdict,
}

/// The outcomes so far.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Runs one scenario and records its outcome.
    pub fn scenario(&mut self, engine: &'static str, name: &str, body: impl FnOnce() -> anyhow::Result<()>) {
        let start = Instant::now();
        let verdict = match body() {
            Ok(()) => Verdict::Passed,
            Err(e) => Verdict::Failed(format!("{e:#}")),
        };
        let seconds = start.elapsed().as_secs_f64();
        let shown = match &verdict {
            Verdict::Passed => "passed".to_owned(),
            Verdict::Failed(why) => format!("FAILED: {why}"),
            Verdict::NotRun(why) => format!("not run: {why}"),
        };
        println!("xtask: {engine:<10} {name:<28} {shown} ({seconds:.1} s)");
        self.outcomes.push(Outcome {
            engine,
            scenario: name.to_owned(),
            verdict,
        });
    }

    /// Records as failed the scenarios of `all` not run yet: their engine was there, but could not be
    /// set up (its daemon did not start, its image did not import).
    pub fn failed_rest(&mut self, engine: &'static str, all: &[&str], why: &str) {
        let done: Vec<String> = self
            .outcomes
            .iter()
            .filter(|o| o.engine == engine)
            .map(|o| o.scenario.clone())
            .collect();
        for name in all.iter().filter(|s| !done.iter().any(|d| d == *s)) {
            println!("xtask: {engine:<10} {name:<28} FAILED: {why}");
            self.outcomes.push(Outcome {
                engine,
                scenario: (*name).to_owned(),
                verdict: Verdict::Failed(why.to_owned()),
            });
        }
    }

    /// Records scenarios that cannot run here, with the reason.
    pub fn not_run(&mut self, engine: &'static str, names: &[&str], why: &str) {
        for name in names {
            println!("xtask: {engine:<10} {name:<28} not run: {why}");
            self.outcomes.push(Outcome {
                engine,
                scenario: (*name).to_owned(),
                verdict: Verdict::NotRun(why.to_owned()),
            });
        }
    }
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    if !is_root() {
        bail!(
            "the engines' daemons run as root: run `sudo cargo xtask engines` (rootless podman is one of its scenarios)"
        );
    }
    let runtime = match &options.runtime {
        Some(path) => {
            std::fs::canonicalize(path).with_context(|| format!("no runtime at {}", path.display()))?
        }
        None => build_combined(root)?,
    };
    // Under /tmp rather than target/: podman refuses a run directory longer than 50 characters.
    let work = tempfile::Builder::new()
        .prefix("xtask-engines-")
        .tempdir()
        .context("cannot make the run's directory")?;
    let before = host::HostState::now();
    let run_dirs = host::run_dirs();
    let context = Context {
        runtime,
        dir: work.path().to_owned(),
        rootfs_tar: rootfs_tarball(root, work.path())?,
    };
    let engines = match options.engines.is_empty() {
        true => vec![Engine::Podman, Engine::Docker, Engine::Containerd, Engine::Cri],
        false => options.engines.clone(),
    };
    let mut report = Report::default();
    for engine in engines {
        match engine {
            Engine::Podman => podman::run(&context, &mut report),
            Engine::Docker => docker::run(&context, &mut report),
            Engine::Containerd => containerd::run(&context, &mut report),
            Engine::Cri => cri::run(&context, &mut report),
        }
        host::detach_mounts_under(&context.dir);
    }
    host::remove_new_cgroups(&before);
    host::remove_new_run_dirs(&run_dirs);
    let left = before.added_in(&host::HostState::now());
    if options.keep {
        println!("xtask: kept {}", work.keep().display());
    }
    summarize(&report, &left)
}

/// The summary table; fails when a scenario failed or the run left something on the host.
fn summarize(report: &Report, left: &[String]) -> anyhow::Result<()> {
    let count = |f: fn(&Verdict) -> bool| report.outcomes.iter().filter(|o| f(&o.verdict)).count();
    let passed = count(|v| matches!(v, Verdict::Passed));
    let failed = count(|v| matches!(v, Verdict::Failed(_)));
    let not_run = count(|v| matches!(v, Verdict::NotRun(_)));
    println!("\nxtask engines: {passed} passed, {failed} failed, {not_run} not run");
    for outcome in &report.outcomes {
        if let Verdict::NotRun(why) = &outcome.verdict {
            println!("  not run: {} {}: {why}", outcome.engine, outcome.scenario);
        }
    }
    if !left.is_empty() {
        bail!("the run left on the host: {}", left.join(", "));
    }
    if failed > 0 {
        bail!("{failed} engine scenario(s) failed");
    }
    Ok(())
}

/// `cargo build -p combined`: the debug build, as the tests and the conformance suite use.
fn build_combined(root: &Path) -> anyhow::Result<PathBuf> {
    util::run(cargo().current_dir(root).args(["build", "-q", "-p", "combined"]))?;
    Ok(util::target_dir(root).join("debug/combined"))
}

/// The busybox rootfs (`cargo xtask rootfs`), as a gzip'd tarball in `dir`.
fn rootfs_tarball(root: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let rootfs = crate::rootfs::build(root, None)?;
    let path = dir.join("rootfs.tar.gz");
    let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", &rootfs)
        .with_context(|| format!("cannot pack {}", rootfs.display()))?;
    tar.into_inner()?.finish()?;
    Ok(path)
}

/// An engine's program, installed with apt-get from `package` when missing; `Err` says why not.
pub fn ensure_installed(program: &str, package: &str) -> Result<(), String> {
    if util::which(program).is_some() {
        return Ok(());
    }
    if !can_apt_install() {
        return Err(format!("{program} is not installed: apt-get install {package}"));
    }
    apt_install(package).map_err(|e| format!("{package} could not be installed: {e:#}"))?;
    match util::which(program) {
        Some(_) => Ok(()),
        None => Err(format!("{package} installed no {program}")),
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Fails unless the command exited with `code`.
    pub fn expect_code(&self, code: i32) -> anyhow::Result<&Ran> {
        if self.code != Some(code) {
            bail!("exit status {:?}, not {code}: {self}", self.code);
        }
        Ok(self)
    }

    /// Fails unless the command's output (stdout or stderr) contains `text`.
    pub fn expect_output(&self, text: &str) -> anyhow::Result<&Ran> {
        if !self.stdout.contains(text) && !self.stderr.contains(text) {
            bail!("no {text:?} in the output: {self}");
        }
        Ok(self)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stdout {:?}, stderr {:?}",
            self.stdout.trim(),
            self.stderr.trim()
        )
    }
}

/// Runs `cmd` to its end, killed after `seconds`, with its output.
pub fn ran(cmd: &mut Command, seconds: u64) -> anyhow::Result<Ran> {
    let shown = util::describe(cmd);
    let out_file = tempfile::tempfile()?;
    let err_file = tempfile::tempfile()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.try_clone()?)
        .stderr(err_file.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} did not finish within {seconds} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut file: std::fs::File| -> anyhow::Result<String> {
        use std::io::{Read, Seek};
        file.rewind()?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text)
    };
    Ok(Ran {
        code: status.code(),
        stdout: read(out_file)?,
        stderr: read(err_file)?,
    })
}

/// Runs `cmd` and fails unless it exits 0.
pub fn ok(cmd: &mut Command, seconds: u64) -> anyhow::Result<Ran> {
    let shown = util::describe(cmd);
    let result = ran(cmd, seconds)?;
    result.expect_code(0).with_context(|| shown)?;
    Ok(result)
}

/// Polls `check` for up to `seconds`.
pub fn eventually(what: &str, seconds: u64, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check() {
        if Instant::now() > deadline {
            bail!("timed out after {seconds} s waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
