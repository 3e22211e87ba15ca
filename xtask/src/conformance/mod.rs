//! `cargo xtask conformance`: the OCI runtime spec's own validation suite (opencontainers/runtime-tools,
//! `validation/`: 58 programs that drive a runtime through `create`, `start`, `state`, `kill` and
//! `delete` on generated bundles and print TAP) run against `combined`, runc and crun on the same host,
//! their results side by side. The run, in order:
//! 1. the suite is unpacked from the project's tarball and built once (cached by the tarball's hash);
//! 2. each runtime is found, built (combined) or installed (runc, crun, when root);
//! 3. for each runtime, every program runs alone, with a timeout; then whatever the run left (containers,
//!    cgroups, bundles) is removed and the mounts are counted again;
//! 4. failures that runc and crun share for a reason checked on this host are labelled as the host's;
//! 5. the table is printed and saved as markdown and JSON; `--check` compares combined with a baseline.
//!
//! See CONFORMANCE.md for what the suite checks and the latest results.

mod baseline;
mod host;
mod leftovers;
mod outcome;
mod report;
mod runner;
mod runtimes;
pub mod suite;
mod tap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::util::{self, is_root, target_dir};
use host::{Host, Label};
use leftovers::Leftovers;
use outcome::Outcome;
use runtimes::{Request, Runtime};
use suite::Suite;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// A runtime to run the suite against, `NAME=PATH`, or `combined`, `runc` or `crun` found as by
    /// default; repeatable (default: combined, runc and crun).
    #[arg(long = "runtime", value_name = "NAME[=PATH]", value_parser = runtimes::parse_request)]
    runtimes: Vec<Request>,
    /// Only this validation program (e.g. `create`); repeatable.
    #[arg(long = "only", value_name = "PROGRAM")]
    only: Vec<String>,
    /// The suite's tarball (default: ../shared/conformance/runtime-tools-260e151.tar.gz, beside the
    /// workspace).
    #[arg(long, value_name = "PATH")]
    suite: Option<PathBuf>,
    /// Seconds each program may take before it is killed and counted as failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// Where to write the markdown table (default: target/conformance/latest.md). A file that exists
    /// gets the table between its conformance markers (CONFORMANCE.md has them).
    #[arg(long, value_name = "PATH")]
    markdown: Option<PathBuf>,
    /// Where to write the JSON (default: target/conformance/latest.json).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Fail when combined no longer passes a program it passed in this earlier run's JSON.
    #[arg(long, value_name = "BASELINE.json")]
    check: Option<PathBuf>,
}

/// One runtime's run: an outcome per program (none when the runtime could not be run).
#[derive(Clone, Debug)]
pub struct RuntimeRun {
    pub runtime: Runtime,
    pub outcomes: BTreeMap<String, Outcome>,
    pub leftovers: Option<Leftovers>,
    pub seconds: f64,
}

/// Where and how the run was made.
#[derive(Clone, Debug)]
pub struct Meta {
    /// The workspace, which paths in the markdown are shown relative to.
    pub workspace: PathBuf,
    /// Its commit (`git describe --always --dirty`), which the combined measured was built from.
    pub commit: Option<String>,
    pub tarball: String,
    pub sha256: String,
    pub date: Option<String>,
    pub cpus: usize,
    pub root: bool,
    pub timeout_seconds: u64,
    pub seconds: f64,
}

/// Everything the report shows.
#[derive(Clone, Debug)]
pub struct Results {
    pub programs: Vec<String>,
    pub runs: Vec<RuntimeRun>,
    pub labels: BTreeMap<String, Label>,
    pub host: Host,
    pub meta: Meta,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let work = target_dir(root).join("conformance");
    let tarball = options
        .suite
        .clone()
        .unwrap_or_else(|| root.join(suite::DEFAULT_TARBALL));
    let suite = suite::prepare(&tarball, &work)?;
    let programs = selected(&suite, &options.only)?;
    let runtimes = runtimes::resolve(root, &options.runtimes, &work.join("bin"));
    let timeout = Duration::from_secs(options.timeout.max(1));
    let mut runs = Vec::new();
    for runtime in runtimes {
        runs.push(run_runtime(&suite, &programs, runtime, &work, timeout)?);
    }
    let host = host::facts();
    let results = Results {
        labels: host::labels(&runs, &host),
        meta: meta(root, &suite, options.timeout, started.elapsed()),
        programs,
        runs,
        host,
    };
    println!();
    print!("{}", report::terminal(&results));
    save(&results, options, &work)?;
    match &options.check {
        Some(baseline) => baseline::check(baseline, &results.runs),
        None => Ok(()),
    }
}

/// The programs to run: every one, or those `--only` names (each checked to exist).
fn selected(suite: &Suite, only: &[String]) -> anyhow::Result<Vec<String>> {
    if only.is_empty() {
        return Ok(suite.programs.clone());
    }
    if let Some(unknown) = only.iter().find(|p| !suite.programs.contains(p)) {
        bail!(
            "the suite has no program `{unknown}`; it has: {}",
            suite.programs.join(", ")
        );
    }
    Ok(suite
        .programs
        .iter()
        .filter(|p| only.contains(p))
        .cloned()
        .collect())
}

/// Runs every program against one runtime, one at a time, then clears up after them.
fn run_runtime(
    suite: &Suite,
    programs: &[String],
    runtime: Runtime,
    work: &Path,
    timeout: Duration,
) -> anyhow::Result<RuntimeRun> {
    let started = Instant::now();
    let command = match &runtime.command {
        Ok(command) => command.clone(),
        Err(why) => {
            println!("xtask: conformance: {}: not run: {why}", runtime.name);
            return Ok(not_run(runtime));
        }
    };
    println!(
        "xtask: conformance: {} ({}), {} program(s)",
        runtime.name,
        runtime.version.as_deref().unwrap_or("version unknown"),
        programs.len()
    );
    let tmpdir = work.join("tmp").join(&runtime.name);
    let logs = work.join("logs").join(&runtime.name);
    leftovers::fresh_dir(&tmpdir)?;
    leftovers::fresh_dir(&logs)?;
    let mut watch = leftovers::Watch::start(&command, &tmpdir);
    let mut outcomes = BTreeMap::new();
    for program in programs {
        let job = runner::Job {
            program: &suite.program_path(program),
            suite_dir: &suite.dir,
            runtime: &command,
            tmpdir: &tmpdir,
            logs: logs.join(program),
            timeout,
        };
        let outcome = watch.program(program, || runner::run(&job))?;
        print_progress(&runtime.name, program, &outcome);
        outcomes.insert(program.clone(), outcome);
    }
    let leftovers = watch.finish();
    println!(
        "xtask: conformance: {}: {}; logs in {}",
        runtime.name,
        leftovers.summary(),
        logs.display()
    );
    Ok(RuntimeRun {
        runtime,
        outcomes,
        leftovers: Some(leftovers),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn not_run(runtime: Runtime) -> RuntimeRun {
    RuntimeRun {
        runtime,
        outcomes: BTreeMap::new(),
        leftovers: None,
        seconds: 0.0,
    }
}

fn print_progress(runtime: &str, program: &str, outcome: &Outcome) {
    println!(
        "xtask: conformance: {runtime:<9} {program:<32} {:<16} {:>5.1} s",
        report::cell(Some(outcome)),
        outcome.seconds
    );
}

fn meta(root: &Path, suite: &Suite, timeout_seconds: u64, took: Duration) -> Meta {
    let date = util::output(Command::new("date").args(["-u", "+%Y-%m-%d"]))
        .ok()
        .map(|d| d.trim().to_owned());
    let commit = util::output(
        Command::new("git")
            .current_dir(root)
            .args(["describe", "--always", "--dirty"]),
    )
    .ok()
    .map(|c| c.trim().to_owned());
    Meta {
        workspace: root.to_path_buf(),
        commit,
        tarball: suite.tarball.file_name().map_or_else(
            || suite.tarball.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        sha256: suite.sha256.clone(),
        date,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        root: is_root(),
        timeout_seconds,
        seconds: took.as_secs_f64(),
    }
}

/// Writes the markdown and the JSON.
fn save(results: &Results, options: &Options, work: &Path) -> anyhow::Result<()> {
    let markdown_path = options.markdown.clone().unwrap_or_else(|| work.join("latest.md"));
    let existing = std::fs::read_to_string(&markdown_path).ok();
    let document = report::splice(existing.as_deref(), &report::markdown(results))
        .map_err(|why| anyhow::anyhow!("cannot write the table into {}: {why}", markdown_path.display()))?;
    write(&markdown_path, &document)?;
    let json_path = options.json.clone().unwrap_or_else(|| work.join("latest.json"));
    write(
        &json_path,
        &(serde_json::to_string_pretty(&report::json(results))? + "\n"),
    )?;
    println!(
        "\nxtask: conformance: {:.0} s in all; table in {}, every result in {}",
        results.meta.seconds,
        markdown_path.display(),
        json_path.display()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
