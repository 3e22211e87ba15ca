//! `cargo xtask bench`: how fast `combined run` starts a container, side by side with the tools people
//! use instead (util-linux unshare, bubblewrap, crun, runc) and with `bench-floor`, the least any
//! launcher can do. Every launcher runs `/bin/true` in new PID, mount, UTS, IPC and network namespaces
//! (and a user namespace when rootless) on the same busybox rootfs.
//!
//! Three measurements, each alternating the launchers run by run, in an order shuffled afresh each
//! round ([`round_order`]), after a warm-up, so that noise from the rest of the machine, and the work
//! one launcher leaves behind for the next, fall on all of them alike:
//! 1. sequential runs: wall time, CPU time and peak RSS per run, the ratio to `combined` pair by pair,
//!    and the total of the runs; also combined, crun and runc as OCI runtimes (`run` on one bundle, and
//!    the create, start, delete life cycle);
//! 2. 1, 10 and 100 containers started at once;
//! 3. what each namespace kind adds to a bare clone + exec + wait (the floor program, one flag at a time).
//!
//! `--breakdown` adds where combined's time goes, step by step (`breakdown.rs`), and rows of combined
//! with its seccomp filter, its init and `lo` turned off (what each costs); `--rootless`, run as
//! root, measures every launcher as uid 65534 in a user namespace of its own.
//!
//! The tables go to the terminal, every figure to `target/bench/bench.json`. See BENCHMARKS.md.

mod breakdown;
mod launchers;

pub use launchers::{which, write_bundle};
mod report;
mod runner;
mod stats;
mod syscalls;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::json;

use crate::util::{self, cargo, is_root};
use launchers::{Inputs, Launcher, Skipped};
use report::{ConcurrentRow, NamespaceRow, Row};
use runner::Sample;
use stats::{Summary, pairwise_difference};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// A short run (a few seconds): 5 runs, concurrency up to 10, for smoke checks.
    #[arg(long)]
    quick: bool,
    /// Measured sequential runs per launcher (default 100; 5 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Unmeasured runs per launcher first (default 5; 1 with --quick).
    #[arg(long)]
    warmup: Option<usize>,
    /// Where to write the JSON (default target/bench/bench.json).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The busybox rootfs (default target/busybox-rootfs, built by `cargo xtask rootfs` if missing).
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// Install bubblewrap, crun and runc with apt-get first (root only).
    #[arg(long)]
    install: bool,
    /// Measure debug builds (for a CI smoke check: the figures are not for comparison).
    #[arg(long)]
    debug: bool,
    /// Also run this build of combined (e.g. one saved before a change), as `baseline`, to measure
    /// what a change bought; up to four, in the rows `baseline`, `baseline 2` and so on.
    #[arg(long, value_name = "BINARY")]
    baseline: Vec<PathBuf>,
    /// Only the sequential comparison: skip the concurrency and per-namespace tables.
    #[arg(long)]
    sequential_only: bool,
    /// Also time each of combined's set-up steps (`COMBINED_TIMINGS`): when it began and how long
    /// it took, median over the runs; and, unless --sequential-only, the same steps with 100
    /// containers started at once. Adds rows of combined without its seccomp filter, its init and
    /// `lo`, one at a time and together.
    #[arg(long)]
    breakdown: bool,
    /// Run as root, measure rootless: every launcher runs as uid and gid 65534 (nobody), in a user
    /// namespace of its own, with a home directory of that user's under target/bench.
    #[arg(long)]
    rootless: bool,
    /// Also trace combined, the floor with protections and the floor with `perf record` (root only,
    /// `--runs` starts each) and split each of their processes' time into system calls (by call),
    /// their own code between calls, and waiting.
    #[arg(long)]
    syscalls: bool,
    /// Only these launchers besides combined (comma-separated names as the table shows them), for
    /// a quicker A/B of combined against `--baseline` builds.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Option<Vec<String>>,
}

impl Options {
    fn runs(&self) -> usize {
        self.runs.unwrap_or(if self.quick { 5 } else { 100 }).max(1)
    }

    fn warmup(&self) -> usize {
        self.warmup.unwrap_or(if self.quick { 1 } else { 5 })
    }

    fn concurrency(&self) -> &'static [usize] {
        if self.quick { &[1, 10] } else { &[1, 10, 100] }
    }

    fn rounds(&self) -> usize {
        if self.quick { 1 } else { 5 }
    }
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    if options.install {
        install()?;
    }
    if options.syscalls && (options.rootless || !is_root()) {
        bail!("--syscalls traces the kernel's tracepoints: run it as root, without --rootless");
    }
    if options.syscalls && crate::util::which("perf").is_none() {
        bail!("--syscalls needs perf: apt-get install linux-perf");
    }
    if options.baseline.len() > launchers::BASELINES.len() {
        bail!("at most {} --baseline builds", launchers::BASELINES.len());
    }
    let inputs = prepare(root, options)?;
    runner::become_subreaper()?;
    if options.rootless {
        become_nobody(&inputs)?;
    }
    if is_root() && hybrid_cgroups() {
        hide_unified_cgroup()?;
    }
    let load_before = runner::load_average();
    let _podman_store = launchers::PodmanStore::note();
    let (candidates, mut skipped) = launchers::all(&inputs)?;
    let candidates = match &options.only {
        Some(names) => candidates
            .into_iter()
            .filter(|l| {
                // combined and the builds given with --baseline are what `--only` is compared with.
                l.name == launchers::COMBINED
                    || launchers::BASELINES.contains(&l.name)
                    || names.iter().any(|n| n == l.name)
            })
            .collect(),
        None => candidates,
    };
    let candidates = match options.breakdown {
        // Right after combined's own rows, what it costs with each default it has turned off.
        true => with_defaults_off(candidates, &inputs),
        false => candidates,
    };
    let launchers = check_each(candidates, &mut skipped)?;
    for skip in &skipped {
        println!("xtask: bench: skipping {}: {}", skip.name, skip.reason);
    }
    let runs = options.runs();
    println!(
        "xtask: bench: {} launchers, {runs} runs each after {} warm-up, alternating{}",
        launchers.len(),
        options.warmup(),
        if options.debug {
            " (DEBUG build: figures not for comparison)"
        } else {
            ""
        }
    );

    // A forked child starts with the benchmark's anonymous pages mapped, and the kernel carries that
    // RSS into the peak of whatever it execs: give the heap's free pages back first (malloc_trim(3)),
    // so that the RSS every row shows as its least is as small as it can be.
    // SAFETY: malloc_trim only returns free memory of the allocator's heap to the kernel.
    unsafe { libc::malloc_trim(0) };
    let spawn_floor = spawn_floor(options)?;
    let (rows, failed) = sequential(&launchers, options)?;
    let launchers: Vec<Launcher> = launchers
        .into_iter()
        .filter(|l| !failed.iter().any(|f| f.name == l.name))
        .collect();
    for skip in &failed {
        println!("xtask: bench: dropped {}: {}", skip.name, skip.reason);
    }
    skipped.extend(failed);
    // Taken now: the concurrent runs below load the machine themselves.
    let load_after = runner::load_average();
    println!("\n`/bin/true` in a container, sequential runs (medians; ratio pair by pair):\n");
    print!("{}", report::sequential_table(&rows, runs));
    let w = report::name_width(&rows);
    for row in &rows {
        println!("  {:<w$} {}", row.name, row.note);
        if row.orphans > 0 {
            println!(
                "  {:<w$} (exits before its container: {} process(es) per run reaped by the benchmark, counted)",
                "", row.orphans
            );
        }
    }
    println!(
        "  (the host's `true`, run directly by the benchmark: {:.2} ms, {:.2} MiB: the least any row can show)",
        spawn_floor.wall_ms.median, spawn_floor.rss_mib.max
    );

    let breakdown = match options.breakdown {
        true => Some(print_breakdown(&launchers[0], &inputs, options)?),
        false => None,
    };
    let at_once = match (&breakdown, options.sequential_only) {
        (Some(alone), false) => Some(print_at_once(&launchers[0], &inputs, options, alone)?),
        _ => None,
    };

    let syscalls = match options.syscalls {
        true => Some(print_syscalls(&launchers, &inputs, options)?),
        false => None,
    };

    let (concurrent, namespaces) = if options.sequential_only {
        (Vec::new(), Vec::new())
    } else {
        let concurrent = concurrent(&launchers, options)?;
        println!(
            "\nContainers started at once (medians over {} rounds):\n",
            options.rounds()
        );
        print!("{}", report::concurrent_table(&concurrent));
        let namespaces = per_namespace(&inputs, options)?;
        println!(
            "\nWhat each namespace adds to clone + exec + wait (bench-floor, host's true, {runs} runs):\n"
        );
        print!("{}", report::namespace_table(&namespaces));
        (concurrent, namespaces)
    };

    let document = json!({
        "machine": machine(&inputs, load_before, load_after),
        "host_true": report::row_json(&spawn_floor),
        "options": { "runs": runs, "warmup": options.warmup(), "debug_build": options.debug, "rootless": options.rootless },
        "sequential": rows.iter().map(report::row_json).collect::<Vec<_>>(),
        "skipped": skipped.iter().map(|s| json!({ "launcher": s.name, "reason": s.reason })).collect::<Vec<_>>(),
        "concurrent": concurrent.iter().map(report::concurrent_json).collect::<Vec<_>>(),
        "per_namespace": namespaces.iter().map(report::namespace_json).collect::<Vec<_>>(),
        "breakdown": breakdown.as_ref().map(breakdown::json),
        "breakdown_at_once": at_once.as_ref().map(breakdown::at_once_json),
        "syscalls": syscalls.as_deref().map(syscalls::json),
    });
    let path = options
        .json
        .clone()
        .unwrap_or_else(|| crate::util::target_dir(root).join("bench").join("bench.json"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "\nxtask: bench: load average {} before, {} after the sequential runs; figures in {}",
        fmt_load(load_before),
        fmt_load(load_after),
        path.display()
    );
    Ok(())
}

/// `candidates` with [`launchers::without_defaults`] after the last of combined's own rows.
fn with_defaults_off(mut candidates: Vec<Launcher>, inputs: &Inputs) -> Vec<Launcher> {
    let ours = |l: &Launcher| {
        l.name == launchers::COMBINED || l.name == launchers::IMAGE || launchers::BASELINES.contains(&l.name)
    };
    let at = candidates.iter().rposition(ours).map_or(0, |i| i + 1);
    candidates.splice(at..at, launchers::without_defaults(inputs));
    candidates
}

/// The per-step breakdown of combined's runs, printed.
fn print_breakdown(
    combined: &Launcher,
    inputs: &Inputs,
    options: &Options,
) -> anyhow::Result<breakdown::Breakdown> {
    let result = breakdown::measure(&combined.argv, &inputs.state, options.warmup(), options.runs())?;
    println!(
        "\nWhere `combined run` spends its time ({} runs with COMBINED_TIMINGS; medians; `at` from the \
         benchmark's fork):\n",
        options.runs()
    );
    print!("{}", breakdown::table(&result));
    Ok(result)
}

/// combined, the floor with protections and the floor, each traced (`syscalls.rs`), printed with what
/// combined's system calls take beyond the floor with protections'.
fn print_syscalls(
    launchers: &[Launcher],
    inputs: &Inputs,
    options: &Options,
) -> anyhow::Result<Vec<syscalls::Profile>> {
    let traced = [launchers::COMBINED, launchers::FLOOR_PROTECTED, launchers::FLOOR];
    let mut profiles = Vec::new();
    for name in traced {
        if let Some(launcher) = launchers.iter().find(|l| l.name == name) {
            profiles.push(syscalls::measure(launcher, options.runs(), &inputs.work)?);
        }
    }
    println!(
        "\nWhere each process's time goes (perf record of the system calls and the scheduler, {} runs \
         each; means per run, ms; tracing adds about 0.5 us to each call, half in it, half after):\n",
        options.runs()
    );
    print!("{}", syscalls::table(&profiles));
    if let [ours, protected, ..] = &profiles[..] {
        println!(
            "\nThe system calls whose time differs most, {} against {} (all three processes; per run):\n",
            ours.launcher, protected.launcher
        );
        print!("{}", syscalls::difference_table(ours, protected, 16));
    }
    Ok(profiles)
}

/// The same steps with the most containers the concurrency table starts at once, printed.
fn print_at_once(
    combined: &Launcher,
    inputs: &Inputs,
    options: &Options,
    alone: &breakdown::Breakdown,
) -> anyhow::Result<breakdown::AtOnce> {
    let count = options.concurrency().iter().copied().max().unwrap_or(1);
    let result = breakdown::measure_at_once(&combined.argv, &inputs.state, count, options.rounds(), alone)?;
    println!(
        "\nThe same steps with {count} containers started at once ({} rounds; per container: the \
         median record times the records each writes):\n",
        options.rounds()
    );
    print!("{}", breakdown::at_once_table(&result));
    Ok(result)
}

fn fmt_load(load: Option<f64>) -> String {
    load.map_or("unknown".into(), |l| format!("{l:.2}"))
}

/// uid and gid 65534, which `--rootless` runs every launcher as.
const NOBODY: u32 = 65534;

/// `--rootless`: from now on every command runs as nobody, with `HOME` at the state directory
/// (nobody's own: combined keeps its image and seccomp caches under `~/.cache`).
fn become_nobody(inputs: &Inputs) -> anyhow::Result<()> {
    if !is_root() {
        bail!(
            "--rootless runs the launchers as uid 65534, which takes root; unprivileged, every run is rootless already"
        );
    }
    // SAFETY: xtask is single-threaded here: no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("HOME", &inputs.state) };
    runner::run_as(NOBODY, NOBODY);
    Ok(())
}

/// The directory the OCI runtimes keep their state in, of the user the launchers run as: `work`
/// itself, or with `--rootless` a directory of nobody's, private, under it.
fn state_dir(work: &Path, rootless: bool) -> anyhow::Result<PathBuf> {
    if !rootless {
        return Ok(work.to_owned());
    }
    use std::os::unix::fs::PermissionsExt;
    let home = work.join("rootless-home");
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY))
        .with_context(|| format!("cannot give {} to uid {NOBODY}", home.display()))?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
    Ok(home)
}

/// `apt-get install bubblewrap crun runc`, as root on Debian/Ubuntu.
fn install() -> anyhow::Result<()> {
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!("--install needs root and apt-get: install bubblewrap, crun and runc yourself");
    }
    let install = || {
        util::run(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "bubblewrap",
                    "crun",
                    "runc",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    install().or_else(|_| {
        util::run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()
    })
}

/// cgroup2 mounted at /sys/fs/cgroup/unified beside the v1 hierarchies (cgroups(7)): the hybrid
/// layout crun refuses to work with.
fn hybrid_cgroups() -> bool {
    const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;
    let path = c"/sys/fs/cgroup/unified";
    // SAFETY: statfs is plain C data, for which all zeroes is a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs writes into the struct it is given; the path is NUL-terminated.
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut fs) };
    rc == 0 && fs.f_type == CGROUP2_SUPER_MAGIC
}

/// Moves this (single-threaded) process into a mount namespace of its own, a slave of the host's, and
/// detaches the cgroup2 mount there, so that crun sees plain cgroups v1. Every launcher then runs in
/// that namespace alike; the host's mounts are untouched.
fn hide_unified_cgroup() -> anyhow::Result<()> {
    println!(
        "xtask: bench: cgroups are hybrid here, which crun refuses: every launcher runs in a mount \
         namespace without /sys/fs/cgroup/unified"
    );
    // SAFETY: unshare takes no pointers; xtask has no other threads.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(std::io::Error::last_os_error()).context("unshare(CLONE_NEWNS)");
    }
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: a propagation change: only the target path is read.
    let rc = unsafe {
        libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("make / a slave");
    }
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(std::io::Error::last_os_error()).context("detach /sys/fs/cgroup/unified");
    }
    Ok(())
}

/// Builds combined and the floor, and finds or builds the rootfs.
fn prepare(root: &Path, options: &Options) -> anyhow::Result<Inputs> {
    // What is measured is what is shipped: `cargo xtask dist`'s static, size-optimized build (the
    // debug build for the CI smoke check, which only checks that everything runs).
    let bin = if options.debug {
        let mut build = cargo();
        build
            .current_dir(root)
            .args(["build", "--quiet", "-p", "combined", "-p", "bench-floor"]);
        util::run(&mut build).context("cannot build combined and bench-floor")?;
        crate::util::target_dir(root).join("debug")
    } else {
        crate::dist::build(root, &["combined", "bench-floor"])?
    };
    let rootfs = match &options.rootfs {
        Some(dir) => dir.clone(),
        None => {
            let dir = crate::rootfs::default_dir(root);
            if dir.join("bin/busybox").exists() {
                dir
            } else {
                crate::rootfs::build(root, None)?
            }
        }
    };
    let rootfs =
        std::fs::canonicalize(&rootfs).with_context(|| format!("no rootfs at {}", rootfs.display()))?;
    let work = crate::util::target_dir(root).join("bench");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    // Made once and kept: the launcher's image cache is keyed on the tarball's identity, so a new one
    // each time would be unpacked again, and pile up in the cache.
    let image = work.join("rootfs.tar");
    if !image.exists() {
        pack(&rootfs, &image)?;
    }
    let rootless = options.rootless || !is_root();
    let ids = match options.rootless {
        true => (NOBODY, NOBODY),
        false => (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()),
    };
    Ok(Inputs {
        combined: bin.join("combined"),
        floor: bin.join("bench-floor"),
        rootfs,
        image,
        state: state_dir(&work, options.rootless)?,
        work,
        rootless,
        ids,
        baseline: options.baseline.clone(),
    })
}

/// `rootfs` as a tarball at `image`, for `combined run --image`.
fn pack(rootfs: &Path, image: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(image).with_context(|| format!("cannot create {}", image.display()))?;
    let mut tar = tar::Builder::new(file);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", rootfs)
        .and_then(|()| tar.finish())
        .with_context(|| format!("cannot pack {} into {}", rootfs.display(), image.display()))
}

/// Runs each launcher once, checked: one that does not work here is skipped with its own error,
/// except `combined` and the floor, which must work.
fn check_each(candidates: Vec<Launcher>, skipped: &mut Vec<Skipped>) -> anyhow::Result<Vec<Launcher>> {
    let mut working = Vec::new();
    for launcher in candidates {
        let outcome = runner::check(&launcher.commands(), launcher.stdin.as_deref())?;
        if outcome.success {
            working.push(launcher);
            continue;
        }
        let why = outcome
            .stderr
            .lines()
            .next()
            .unwrap_or("failed with no message")
            .to_owned();
        if [launchers::COMBINED, launchers::IMAGE, launchers::FLOOR].contains(&launcher.name) {
            bail!(
                "`{}` failed: {}",
                runner::describe(&launcher.commands()),
                outcome.stderr.trim()
            );
        }
        skipped.push(Skipped {
            name: launcher.name,
            reason: format!("does not work here: {why}"),
        });
    }
    Ok(working)
}

/// The order in which round `round` runs `n` launchers: shuffled, seeded by the round's number, so
/// that every run of the benchmark uses the same orders. A launcher leaves kernel work behind it (a
/// network namespace's teardown, a cgroup's removal, an engine's clean-up) that slows whichever runs
/// next: in a fixed order, or one only rotated round by round (A B C, B C A, ...), each launcher
/// would follow the same one in almost every round, and pay for it every time.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    fastrand::Rng::with_seed(round as u64).shuffle(&mut order);
    order
}

/// The sequential comparison: warm-up rounds, then measured rounds, each running every launcher once,
/// in an order of its own ([`round_order`]).
fn sequential(launchers: &[Launcher], options: &Options) -> anyhow::Result<(Vec<Row>, Vec<Skipped>)> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); launchers.len()];
    let mut failed: Vec<Skipped> = Vec::new();
    for round in 0..options.warmup() + options.runs() {
        for at in round_order(launchers.len(), round) {
            let launcher = &launchers[at];
            if failed.iter().any(|f| f.name == launcher.name) {
                continue;
            }
            match runner::measure_all(&launcher.commands(), launcher.stdin.as_deref()) {
                Ok(sample) if round >= options.warmup() => samples[at].push(sample),
                Ok(_) => {}
                // One of the tools compared failing now and then (runc 1.1's "could not ensure we
                // are a cloned binary", rootless) drops it, with the reason; combined and the floor
                // must not fail.
                Err(e) if ![launchers::COMBINED, launchers::FLOOR].contains(&launcher.name) => {
                    failed.push(Skipped {
                        name: launcher.name,
                        reason: format!("failed in round {round}: {e:#}"),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
    let combined_wall: Vec<f64> = samples[0].iter().map(|s| s.wall_ms).collect();
    let rows = launchers
        .iter()
        .zip(&samples)
        .filter(|(l, _)| !failed.iter().any(|f| f.name == l.name))
        .filter_map(|(l, s)| Row::new(l.name, &l.argv, l.note, s, &combined_wall))
        .collect();
    Ok((rows, failed))
}

/// The host's `true`, run directly: what the fork, exec and wait of the measurement itself cost, and
/// the RSS any exec'd process shows.
fn spawn_floor(options: &Options) -> anyhow::Result<Row> {
    let argv = vec![
        launchers::which("true")
            .map_err(anyhow::Error::msg)?
            .to_string_lossy()
            .into_owned(),
    ];
    let mut samples = Vec::new();
    for round in 0..options.warmup() + options.runs() {
        let sample = runner::measure(&argv)?;
        if round >= options.warmup() {
            samples.push(sample);
        }
    }
    Row::new("host true", &argv, "no container", &samples, &[]).context("no runs")
}

/// N containers at once, for each N, the launchers in an order of their own each round.
fn concurrent(launchers: &[Launcher], options: &Options) -> anyhow::Result<Vec<ConcurrentRow>> {
    // A life cycle of several commands, or an engine, is measured one container at a time only.
    let launchers: Vec<&Launcher> = launchers.iter().filter(|l| l.concurrent).collect();
    let mut rows = Vec::new();
    for &count in options.concurrency() {
        let mut batches: Vec<Vec<(f64, Vec<Sample>)>> = vec![Vec::new(); launchers.len()];
        let mut failed = vec![false; launchers.len()];
        for round in 0..options.rounds() {
            for at in round_order(launchers.len(), round) {
                let (launcher, series) = (launchers[at], &mut batches[at]);
                match runner::measure_concurrent(&launcher.argv, launcher.stdin.as_deref(), count) {
                    Ok(batch) => series.push(batch),
                    // As in the sequential runs: a compared tool that fails loses its row, with why.
                    Err(e) if ![launchers::COMBINED, launchers::FLOOR].contains(&launcher.name) => {
                        println!(
                            "xtask: bench: no row for {} at {count} at once: {e:#}",
                            launcher.name
                        );
                        failed[at] = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for ((launcher, series), _) in launchers.iter().zip(&batches).zip(&failed).filter(|(_, f)| !**f) {
            let walls: Vec<f64> = series.iter().map(|(wall, _)| *wall).collect();
            let all: Vec<&Sample> = series.iter().flat_map(|(_, s)| s).collect();
            let Some(batch_ms) = Summary::of(&walls) else {
                continue;
            };
            rows.push(ConcurrentRow {
                name: launcher.name.to_owned(),
                containers: count,
                batch_ms,
                cpu_ms_per_container: all.iter().map(|s| s.cpu_ms).sum::<f64>() / all.len().max(1) as f64,
                rss_mib_max: all.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            });
        }
    }
    Ok(rows)
}

/// The floor with each namespace kind alone, the kinds in an order of their own each round; each kind's added cost is
/// taken pair by pair against the baseline (no namespace as root, the user namespace alone rootless).
fn per_namespace(inputs: &Inputs, options: &Options) -> anyhow::Result<Vec<NamespaceRow>> {
    let kinds = launchers::namespace_kinds(inputs.rootless);
    let argvs: Vec<Vec<String>> = kinds.iter().map(|k| launchers::floor_with(inputs, k)).collect();
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for round in 0..options.warmup() + options.runs() {
        for at in round_order(argvs.len(), round) {
            let sample = runner::measure(&argvs[at])?;
            if round >= options.warmup() {
                walls[at].push(sample.wall_ms);
            }
        }
    }
    Ok(kinds
        .iter()
        .zip(&walls)
        .enumerate()
        .filter_map(|(i, (kind, series))| {
            Some(NamespaceRow {
                kind: (*kind).to_owned(),
                wall_ms: Summary::of(series)?,
                added_ms: if i == 0 {
                    None
                } else {
                    pairwise_difference(series, &walls[0])
                },
            })
        })
        .collect())
}

/// Where the figures were taken: kernel, CPUs, load, privileges, and each tool's version.
fn machine(inputs: &Inputs, load_before: Option<f64>, load_after: Option<f64>) -> serde_json::Value {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).ok();
    let cpu_model = read("/proc/cpuinfo").and_then(|info| {
        info.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
    });
    let version = |program: &str| {
        let path = launchers::which(program).ok()?;
        let out = Command::new(path).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        text.lines().next().map(str::to_owned)
    };
    json!({
        "kernel": read("/proc/sys/kernel/osrelease"),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "load_average_before": load_before,
        "load_average_after_sequential": load_after,
        "rootless": inputs.rootless,
        "versions": {
            "unshare": version("unshare"),
            "bwrap": version("bwrap"),
            "crun": version("crun"),
            "runc": version("runc"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn every_round_runs_each_launcher_once() {
        for round in 0..50 {
            let mut order = round_order(7, round);
            order.sort_unstable();
            assert_eq!(order, (0..7).collect::<Vec<_>>(), "round {round}");
        }
    }

    /// What the shuffle is for: over the rounds, each launcher follows many others, not one.
    #[test]
    fn no_launcher_always_follows_the_same_one() {
        let n = 6;
        let mut predecessors = vec![std::collections::BTreeSet::new(); n];
        for round in 0..100 {
            let order = round_order(n, round);
            for pair in order.windows(2) {
                predecessors[pair[1]].insert(pair[0]);
            }
        }
        for (launcher, before) in predecessors.iter().enumerate() {
            assert_eq!(before.len(), n - 1, "launcher {launcher} only after {before:?}");
        }
    }

    #[test]
    fn the_orders_are_the_same_in_every_run() {
        assert_eq!(round_order(9, 3), round_order(9, 3));
        assert_ne!(round_order(9, 3), round_order(9, 4));
    }
}
