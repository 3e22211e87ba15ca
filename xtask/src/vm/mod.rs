//! `cargo xtask test-vm`: boots a Linux kernel in QEMU and runs the workspace's test binaries inside
//! it, as root (`NS_REQUIRE_PRIV=1`) and as uid 65534 (`NS_REQUIRE_PRIV=userns`), with a true exit
//! status. The pieces, in the order a run uses them:
//!
//! - `kernel`: find (or install) a kernel and QEMU, and cache the kernel decompressed for PVH boot;
//! - `kconfig`: read the kernel's config: built in, module, or missing;
//! - `modules`: the modules to pack, with their dependencies, in load order;
//! - `guestroot`: share the host's root, or copy the tests in (`--root`), and the copy's archive;
//! - `cpio` and `initramfs`: the guest's root file system, with vm-init as `/init`;
//! - `schedule`: every test binary once per run is a job, in one queue, longest first;
//! - `qemu`: the accelerator and the command line; `runner`: start the guests, hand out the jobs,
//!   stream the output, kill;
//! - `report`: what the guests said, and the verdict.
//!
//! Either way the test binaries run at the very paths cargo built them at (integration tests find
//! their demo binaries by absolute path): the guest sees the host's `/` read-only over 9p under a
//! tmpfs, or static copies packed into the initramfs at those paths. Several guests run side by side
//! (one per host CPU by default), each taking the next job from the host's queue as it finishes one,
//! so the root and uid 65534 runs and the binaries share every CPU; each guest is a whole machine of
//! its own, so the tests that compare host state before and after never see another test's mounts,
//! interfaces or processes.

mod cpio;
mod guestroot;
mod initramfs;
mod kconfig;
mod kernel;
mod modules;
mod qemu;
mod report;
mod runner;
mod schedule;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ci::{TestBinary, build_test_binaries};
use crate::util::{self, UNPRIVILEGED_UID};
use guestroot::{Root, RootMode};
pub use qemu::Accel;
use report::{GuestPart, Report, Verdict};
use runner::{Ending, Guest, GuestFiles, Qemu};
use schedule::{Dispatcher, History};

/// The command line of `cargo xtask test-vm`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Kernel image to boot (bzImage or vmlinux); default: $NS_VM_KERNEL, the running kernel's
    /// /boot/vmlinuz-$(uname -r), else the newest /boot/vmlinuz-*.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Accelerator; default: KVM where it works, else TCG (software emulation).
    #[arg(long, value_enum)]
    pub accel: Option<Accel>,
    /// Seconds the whole guest run may take before it is killed and counted as a failure.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Keep the work directory (initramfs, console log, result and output files) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// Only this package's tests (repeatable); default: the whole workspace but xtask.
    #[arg(short = 'p', long = "package")]
    pub packages: Vec<String>,
    /// Boot the same VM to an interactive shell instead of running the tests.
    #[arg(long)]
    pub shell: bool,
    /// Where the guest finds the tests: the host's root shared over 9p, or static copies in the
    /// initramfs; default: share when the kernel has 9p, virtio and overlayfs, else copy.
    #[arg(long, value_enum, default_value_t)]
    pub root: RootMode,
    /// Memory of each guest, in MiB; default: 512, and in copy mode twice the copied root on top
    /// (the archive while it is unpacked, then its files).
    #[arg(long)]
    pub memory: Option<u32>,
    /// Guests to run side by side, each taking jobs from one queue; default: one per host CPU, at
    /// most four, and no more than there are jobs.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub guests: Option<u32>,
    /// Multiplies the repetition counts of the leak-finding loops in the guest (NS_TEST_SCALE, see
    /// nskit::testing::scaled); default: 0.1 under TCG, 1 under KVM. The host's own test runs
    /// always run the full counts.
    #[arg(long, value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Print how long each guest took to boot, to load its modules, to enter its root, and each job.
    #[arg(long)]
    pub timings: bool,
    /// Run these executables as the guest's tests instead of building the workspace's (used by
    /// test-vm's own end-to-end test).
    #[arg(long, hide = true)]
    pub guest_test: Vec<PathBuf>,
    /// Test-name filter and libtest options, passed to every test binary (after `--`).
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

/// The two runs of every test binary, as `ci` runs them on the host.
const RUNS: [(&str, u32, &str); 2] = [("root", 0, "1"), ("user", UNPRIVILEGED_UID, "userns")];

/// The repetition scale under TCG: a tenth of each leak-finding loop (200 runs become 20, the 40
/// `exec`s of an attack on a race 4). A loop still finds a leak that every run makes; a race is hunted
/// at the full count by the host's own test runs, and tried a few times on the guest's kernel. (0.2
/// until 2026-12-02: BENCHMARKS.md, "The test suite in a VM".)
const TCG_SCALE: f64 = 0.1;

/// Guest memory when nothing else asks for more, in MiB.
const BASE_MEMORY_MIB: u32 = 512;

/// The default number of guests is one per host CPU, but no more than this: each costs a kernel's
/// boot and its memory, and past it the longest job, not the number of guests, sets the time.
const MAX_DEFAULT_GUESTS: usize = 4;

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let cache = crate::util::target_dir(root).join("vm");
    let (guest, tests) = build_guest(root, options, &cache)?;
    let work = WorkDir::create(&cache, options.keep)?;
    // The guest sees the host's target directory (share mode), and uid 65534's runs there use it.
    if crate::util::is_root() {
        crate::util::give_test_cache(root)?;
    }
    let attempts = qemu::attempts(options.accel, qemu::KvmSupport::probe());
    if options.shell {
        return shell(&guest, attempts[0], work.path());
    }
    runner::catch_interrupts()?;
    for accel in attempts {
        match run_guests(&guest, &tests, accel, options, work.path(), &cache)? {
            Some(run) => return run.conclude(options.timings, &cache),
            None => println!(
                "xtask: kvm showed no boot marker within {} s; falling back to tcg",
                qemu::KVM_BOOT_PROBE.as_secs()
            ),
        }
    }
    bail!("no accelerator could boot the kernel")
}

/// Everything the guests are made of, built or found: the kernel and its modules, vm-init and the
/// base archive, the test binaries (and in copy mode their archive).
fn build_guest(
    root: &Path,
    options: &Options,
    cache: &Path,
) -> anyhow::Result<(GuestSetup, Vec<TestBinary>)> {
    let kernel = kernel::find_or_install(options.kernel.as_deref())?;
    let vmlinux = kernel::vmlinux(&kernel, cache).context("cannot prepare the kernel for PVH boot")?;
    let mut plan = kernel_plan(&kernel, &vmlinux)?;
    let (guest_root, why) = guestroot::choose(options.root, &plan.missing_share)
        .map_err(|e| anyhow::anyhow!("{e} ({})", kernel.image.display()))?;
    println!("xtask: root: {} ({why})", guest_root.name());
    if guest_root == Root::Copy {
        if options.shell {
            bail!("--shell needs the host's root over 9p (a copied root has no shell); use --root share");
        }
        plan.drop_share_modules();
    }
    for symbol in &plan.missing_wanted {
        println!("xtask: warning: the kernel lacks CONFIG_{symbol}; tests that need it will fail");
    }
    let modules = match (&kernel.modules, plan.modules.is_empty()) {
        (_, true) => Vec::new(),
        (Some(dir), false) => modules::collect(dir, &plan.modules)?,
        (None, false) => bail!(
            "the kernel builds {} as modules, but /lib/modules/{} does not exist",
            plan.modules.join(", "),
            kernel.release.as_deref().unwrap_or("<release>")
        ),
    };

    let init = build_vm_init(root)?;
    let base = initramfs::Base {
        init: &init,
        modules: &modules,
    };
    let (base_path, rebuilt) = base.build(cache)?;
    println!(
        "xtask: initramfs {} ({}, {} modules)",
        base_path.display(),
        if rebuilt { "built" } else { "unchanged" },
        modules.len()
    );
    let (tests, copied) = match (options.shell, guest_root) {
        (true, _) => (Vec::new(), None),
        (false, Root::Share) => (test_binaries(root, options)?, None),
        (false, Root::Copy) => {
            let (tests, copied) = copied_root(root, options, cache)?;
            (tests, Some(copied))
        }
    };
    let copied_mib = copied
        .as_deref()
        .and_then(|p| fs::metadata(p).ok())
        .map_or(0, |m| m.len().div_ceil(1 << 20) as u32);
    let guest = GuestSetup {
        image: kernel.image.clone(),
        vmlinux,
        base: base_path,
        copied,
        module_paths: modules
            .iter()
            .enumerate()
            .map(|(i, m)| initramfs::Base::module_path(i, m))
            .collect(),
        root: guest_root,
        memory_mib: options.memory.unwrap_or(BASE_MEMORY_MIB + 2 * copied_mib),
    };
    Ok((guest, tests))
}

/// Boots the guests under `accel`, hands them the jobs, longest first, and waits for them all;
/// `None` when KVM did not boot them.
fn run_guests<'a>(
    guest: &GuestSetup,
    tests: &'a [TestBinary],
    accel: Accel,
    options: &Options,
    work: &Path,
    cache: &Path,
) -> anyhow::Result<Option<Finished<'a>>> {
    let scale = options.scale.unwrap_or(default_scale(accel));
    let initrd = work.join(format!("initrd-{}", accel.name()));
    let conf = initramfs::GuestConf {
        module_paths: guest.module_paths.clone(),
        share_tag: (guest.root == Root::Share).then_some(qemu::ROOT_TAG),
        tests: tests
            .iter()
            .map(|t| (t.package_dir.as_path(), t.executable.as_path()))
            .collect(),
        args: &options.test_args,
        env: vec![(SCALE_VAR, scale.to_string())],
        runs: &RUNS,
        shell: None,
    };
    guest.assemble(&conf.render(), &initrd)?;
    let layout = Layout::choose(options.guests, tests.len() * RUNS.len());
    let history = History::load(cache);
    let run_names: Vec<&str> = RUNS.iter().map(|r| r.0).collect();
    let mut dispatcher = Dispatcher::new(schedule::order(tests, &run_names, &history));
    println!(
        "xtask: booting {} under {} ({} test binaries x {} runs on {}; {} root; loops scaled by {scale})",
        guest.image.display(),
        accel.name(),
        tests.len(),
        RUNS.len(),
        layout.describe(),
        guest.root.name()
    );
    let started = Instant::now();
    let cpu_before = runner::children_cpu();
    let mut guests = Vec::new();
    for number in 1..=layout.guests {
        let machine = guest.machine(accel, &initrd, layout.vcpus, work, number);
        guests.push(Guest::start(&machine, GuestFiles::new(work, number))?);
    }
    let timeout = Duration::from_secs(options.timeout);
    let ending = runner::watch(&mut guests, &mut dispatcher, accel, timeout)?;
    if let Ending::KvmDidNotBoot = ending {
        return Ok(None);
    }
    Ok(Some(Finished {
        ending,
        accel,
        took: started.elapsed(),
        cpu: runner::children_cpu().saturating_sub(cpu_before),
        scale,
        layout,
        tests,
        guests,
        dispatcher,
        history,
    }))
}

/// The variable vm-init sets for every test binary: nskit::testing::SCALE (xtask does not depend on
/// nskit).
const SCALE_VAR: &str = "NS_TEST_SCALE";

/// The repetition scale when `--scale` does not say: KVM runs the guest at nearly the host's speed,
/// so the loops run their full counts there.
fn default_scale(accel: Accel) -> f64 {
    match accel {
        Accel::Tcg => TCG_SCALE,
        Accel::Kvm => 1.0,
    }
}

/// `--scale`: a positive number.
fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!("{text} is not a positive number")),
    }
}

/// How many guests, with how many virtual CPUs each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    guests: usize,
    vcpus: usize,
}

impl Layout {
    /// `--guests`, else one per host CPU (at most [`MAX_DEFAULT_GUESTS`]); never more guests than
    /// jobs; the host's CPUs shared out between them.
    fn choose(requested: Option<u32>, jobs: usize) -> Layout {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Layout::for_host(requested, jobs, cpus)
    }

    fn for_host(requested: Option<u32>, jobs: usize, cpus: usize) -> Layout {
        let wanted = requested.map_or(cpus.min(MAX_DEFAULT_GUESTS), |n| n as usize);
        let guests = wanted.min(jobs).max(1);
        Layout {
            guests,
            vcpus: (cpus / guests).max(1),
        }
    }

    fn describe(self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        format!(
            "{} of {}",
            plural(self.guests, "guest"),
            plural(self.vcpus, "vcpu")
        )
    }
}

/// What every guest of a run is made of.
#[derive(Debug)]
struct GuestSetup {
    /// The kernel image as found (for messages); `vmlinux` is what boots.
    image: PathBuf,
    vmlinux: PathBuf,
    base: PathBuf,
    copied: Option<PathBuf>,
    module_paths: Vec<String>,
    root: Root,
    memory_mib: u32,
}

impl GuestSetup {
    /// The initramfs: the cached base, the cached copied root, and this run's instructions.
    fn assemble(&self, conf: &str, initrd: &Path) -> anyhow::Result<()> {
        let parts: Vec<&Path> = std::iter::once(self.base.as_path())
            .chain(self.copied.as_deref())
            .collect();
        initramfs::assemble(&parts, conf, initrd)
    }

    /// Guest `number`'s machine (numbered from 1).
    fn machine(
        &self,
        accel: Accel,
        initrd: &Path,
        vcpus: usize,
        work: &Path,
        number: usize,
    ) -> qemu::Machine {
        let files = GuestFiles::new(work, number);
        qemu::Machine {
            accel,
            kernel: self.vmlinux.clone(),
            initrd: initrd.to_path_buf(),
            memory_mib: self.memory_mib,
            vcpus,
            share_root: self.root == Root::Share,
            ports: Some((files.result, files.output)),
            control: Some(format!(
                "xtask-vm-{}-{}-{number}",
                std::process::id(),
                accel.name()
            )),
            console: Some(files.console),
            append: Vec::new(),
        }
    }
}

/// `--shell`: one guest, on this terminal.
fn shell(guest: &GuestSetup, accel: Accel, work: &Path) -> anyhow::Result<()> {
    let conf = initramfs::GuestConf {
        module_paths: guest.module_paths.clone(),
        share_tag: Some(qemu::ROOT_TAG),
        tests: Vec::new(),
        args: &[],
        env: Vec::new(),
        runs: &[],
        shell: Some("/bin/sh"),
    };
    let initrd = work.join("initrd-shell");
    guest.assemble(&conf.render(), &initrd)?;
    let machine = qemu::Machine {
        accel,
        kernel: guest.vmlinux.clone(),
        initrd,
        memory_mib: guest.memory_mib,
        vcpus: 1,
        share_root: true,
        ports: None,
        control: None,
        console: None,
        append: Vec::new(),
    };
    let status = Qemu::interactive(&machine)?;
    println!("xtask: the VM stopped ({status})");
    Ok(())
}

/// The kernel's feature plan, from its config file or the config compiled into it.
fn kernel_plan(kernel: &kernel::Kernel, vmlinux: &Path) -> anyhow::Result<kconfig::Plan> {
    let text = match &kernel.config {
        Some(path) => fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let image = fs::read(vmlinux).with_context(|| format!("cannot read {}", vmlinux.display()))?;
            kconfig::embedded(&image).with_context(|| {
                format!(
                    "cannot find the configuration of {}: no config-<release> beside it and no \
                     CONFIG_IKCONFIG inside",
                    kernel.image.display()
                )
            })?
        }
    };
    kconfig::plan(&kconfig::Config::parse(&text))
        .map_err(|missing| anyhow::anyhow!("the kernel {} lacks {missing}", kernel.image.display()))
}

/// Builds vm-init as a static executable (for this machine's target triple, so the host's own
/// builds are not disturbed by the static flag) and returns its path.
fn build_vm_init(root: &Path) -> anyhow::Result<PathBuf> {
    let target = guestroot::GUEST_TARGET;
    util::run(
        util::cargo()
            .current_dir(root)
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "vm-init",
                "--target",
                target,
            ])
            .env(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                "-C target-feature=+crt-static -C strip=symbols",
            ),
    )
    .context("cannot build vm-init")?;
    Ok(crate::util::target_dir(root)
        .join(target)
        .join("release")
        .join("vm-init"))
}

/// The executables to run in the guest: `--guest-test`, else the workspace's test binaries
/// (without xtask's own, which would start a VM inside the VM).
fn test_binaries(root: &Path, options: &Options) -> anyhow::Result<Vec<TestBinary>> {
    if !options.guest_test.is_empty() {
        return guest_tests(options);
    }
    println!("xtask: building the test binaries (cargo test --no-run)");
    let binaries = build_test_binaries(root, &["--exclude", "xtask"])?;
    let mut chosen = Vec::new();
    for binary in binaries {
        if options.packages.is_empty() || options.packages.contains(&package_name(&binary.package_dir)?) {
            chosen.push(binary);
        }
    }
    if chosen.is_empty() {
        bail!(
            "no test binaries to run (packages: {})",
            options.packages.join(", ")
        );
    }
    Ok(chosen)
}

/// `--guest-test`: each runs in its own directory.
fn guest_tests(options: &Options) -> anyhow::Result<Vec<TestBinary>> {
    options
        .guest_test
        .iter()
        .map(|exe| {
            let executable =
                fs::canonicalize(exe).with_context(|| format!("no such file {}", exe.display()))?;
            let package_dir = executable.parent().unwrap_or(Path::new("/")).to_path_buf();
            Ok(TestBinary {
                executable,
                package_dir,
            })
        })
        .collect()
}

/// Copy mode: the static test binaries (`--guest-test`'s executables as they are, else the
/// workspace's, built static and stripped), with what they need, packed into a cached archive.
/// Returns the tests and the archive's path.
fn copied_root(root: &Path, options: &Options, cache: &Path) -> anyhow::Result<(Vec<TestBinary>, PathBuf)> {
    let strip = guestroot::Strip::detect();
    let (tests, inputs) = if options.guest_test.is_empty() {
        println!(
            "xtask: building the static test binaries (cargo test --no-run --target {} into target/vm-static)",
            guestroot::GUEST_TARGET
        );
        let built = guestroot::build_static(root, &options.packages, &strip)?;
        if built.tests.is_empty() {
            bail!(
                "no test binaries to run (packages: {})",
                options.packages.join(", ")
            );
        }
        let mut data_dirs: Vec<PathBuf> = built.tests.iter().map(|t| t.package_dir.clone()).collect();
        data_dirs.sort();
        data_dirs.dedup();
        data_dirs.extend(guestroot::WORKSPACE_TEST_DATA.iter().map(|d| root.join(d)));
        let inputs = guestroot::Inputs {
            tests: built.tests.iter().map(|t| t.executable.clone()).collect(),
            strip_tests: true,
            bins: built.bins,
            data_dirs,
            host_tools: guestroot::host_tools()?,
        };
        (built.tests, inputs)
    } else {
        let tests = guest_tests(options)?;
        for test in &tests {
            guestroot::check_runs_alone(&test.executable)?;
        }
        let inputs = guestroot::Inputs {
            tests: tests.iter().map(|t| t.executable.clone()).collect(),
            ..guestroot::Inputs::default()
        };
        (tests, inputs)
    };
    let list = guestroot::file_list(&inputs)?;
    let (path, rebuilt) = guestroot::pack(&list, &strip, cache)?;
    let size = fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "xtask: copied root {} ({}, {} entries, {:.1} MB{})",
        path.display(),
        if rebuilt { "built" } else { "unchanged" },
        list.len(),
        size as f64 / 1e6,
        match strip {
            guestroot::Strip::Binutils(_) => ", stripped with strip",
            guestroot::Strip::Rustc => ", stripped by rustc",
        }
    );
    Ok((tests, path))
}

/// The `name = "..."` of a package's Cargo.toml.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text =
        fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("name"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .with_context(|| format!("{} has no package name", manifest.display()))
}

/// A run whose guests have all stopped.
struct Finished<'a> {
    ending: Ending,
    accel: Accel,
    took: Duration,
    /// Host CPU time the guests' QEMUs used: unlike `took`, it hardly changes when other work
    /// shares the machine.
    cpu: Duration,
    scale: f64,
    layout: Layout,
    tests: &'a [TestBinary],
    guests: Vec<Guest>,
    dispatcher: Dispatcher,
    /// The durations that ordered this run's queue, updated with its own for the next.
    history: History,
}

impl Finished<'_> {
    /// Reads the reports, prints the summary (the timings when asked) and the benchmark line,
    /// remembers the durations for the next run's order, and turns the verdict into the exit status.
    fn conclude(mut self, timings: bool, cache: &Path) -> anyhow::Result<()> {
        let reports: Vec<Report> = self
            .guests
            .iter()
            .map(|g| Report::parse(&fs::read_to_string(&g.files.result).unwrap_or_default()))
            .collect();
        let executables: Vec<String> = self
            .tests
            .iter()
            .map(|t| t.executable.display().to_string())
            .collect();
        let parts: Vec<GuestPart<'_>> = reports
            .iter()
            .enumerate()
            .map(|(index, report)| GuestPart {
                report,
                handed: self
                    .dispatcher
                    .handed_to(index)
                    .iter()
                    .map(|job| (RUNS[job.run].0, executables[job.test].as_str()))
                    .collect(),
            })
            .collect();
        let verdict = match self.ending {
            Ending::Exited => report::verdict(&parts, self.dispatcher.left()),
            Ending::TimedOut => Verdict::NoResult("the guests timed out and were killed".into()),
            Ending::Interrupted => Verdict::NoResult("interrupted; qemu was killed".into()),
            Ending::KvmDidNotBoot => Verdict::NoResult("kvm did not boot".into()),
        };
        self.remember(&reports, cache);

        println!("\nxtask test-vm summary:");
        for (run, ..) in RUNS {
            let passed = reports
                .iter()
                .flat_map(|r| &r.tests)
                .filter(|t| t.run == run && t.passed())
                .count();
            println!("  {run:<5} {passed} of {} test binaries passed", self.tests.len());
        }
        for garbled in reports.iter().flat_map(|r| &r.garbled) {
            println!("  unreadable result line: {garbled}");
        }
        if timings {
            print_timings(&reports, self.layout);
        }
        let boot = reports
            .iter()
            .filter_map(|r| r.booted_ms)
            .max()
            .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
        println!(
            "bench: test-vm boot-to-verdict {:.1} s under {} (kernel booted to /init in {boot}; {} test \
             binaries x {} runs on {}; loops scaled by {}; {:.0} s of host CPU)",
            self.took.as_secs_f64(),
            self.accel.name(),
            self.tests.len(),
            RUNS.len(),
            self.layout.describe(),
            self.scale,
            self.cpu.as_secs_f64()
        );
        match verdict {
            Verdict::Passed => {
                println!("xtask: test-vm passed");
                Ok(())
            }
            Verdict::Failed(_) => bail!("test-vm {verdict}"),
            Verdict::NoResult(_) => {
                for (number, guest) in (1..).zip(&self.guests) {
                    println!(
                        "xtask: guest {number}'s console, last lines:\n{}",
                        runner::tail_of(&guest.files.console, 30)
                    );
                    let qemu_log = runner::tail_of(&guest.files.qemu_log, 10);
                    if !qemu_log.is_empty() {
                        println!("xtask: guest {number}'s qemu said:\n{qemu_log}");
                    }
                }
                bail!("test-vm {verdict}")
            }
        }
    }

    /// Records each job's duration for the next run's order (under this accelerator's scale, since
    /// the proportions are what matter).
    fn remember(&mut self, reports: &[Report], cache: &Path) {
        for test in reports.iter().flat_map(|r| &r.tests) {
            if let Some(binary) = self
                .tests
                .iter()
                .find(|t| t.executable.display().to_string() == test.binary)
            {
                self.history
                    .record(&test.run, &schedule::binary_key(binary), test.millis);
            }
        }
        self.history.save(cache);
    }
}

/// `--timings`: each guest's set-up steps, then its jobs in the order it ran them.
fn print_timings(reports: &[Report], layout: Layout) {
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    println!("\nxtask test-vm timings ({}):", layout.describe());
    for (number, report) in (1..).zip(reports) {
        let mut steps = vec![format!(
            "kernel to /init {}",
            report.booted_ms.map_or("-".into(), secs)
        )];
        steps.extend(
            report
                .phases
                .iter()
                .map(|(name, ms)| format!("{name} {}", secs(*ms))),
        );
        let busy: u64 = report.tests.iter().map(|t| t.millis).sum();
        steps.push(format!("{} jobs {}", report.tests.len(), secs(busy)));
        println!("  guest {number}: {}", steps.join(", "));
        for test in &report.tests {
            println!(
                "    {:>8}  {:<4}  {}{}",
                secs(test.millis),
                test.run,
                report::short_name(&test.binary),
                if test.passed() {
                    String::new()
                } else {
                    format!("  ({})", test.outcome)
                }
            );
        }
    }
    for (run, ..) in RUNS {
        let total: u64 = reports
            .iter()
            .flat_map(|r| &r.tests)
            .filter(|t| t.run == run)
            .map(|t| t.millis)
            .sum();
        println!("  {run} run: {} of test binaries in all", secs(total));
    }
}

/// The run's work directory, `target/vm/run-*` (the guests' initramfs, console logs, result and
/// output files): removed when dropped, unless `--keep` asked to keep it.
#[derive(Debug)]
struct WorkDir {
    dir: tempfile::TempDir,
    keep: bool,
}

impl WorkDir {
    fn create(cache: &Path, keep: bool) -> anyhow::Result<WorkDir> {
        fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .disable_cleanup(keep)
            .tempdir_in(cache)
            .with_context(|| format!("cannot create a work directory in {}", cache.display()))?;
        Ok(WorkDir { dir, keep })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            println!("xtask: kept the work directory {}", self.path().display());
        }
    }
}

impl Default for Options {
    /// What `cargo xtask test-vm` means without options.
    fn default() -> Options {
        Options {
            kernel: None,
            accel: None,
            timeout: 600,
            keep: false,
            packages: Vec::new(),
            shell: false,
            root: RootMode::Auto,
            memory: None,
            guests: None,
            scale: None,
            timings: false,
            guest_test: Vec::new(),
            test_args: Vec::new(),
        }
    }
}

/// `cargo xtask ci`'s step: the whole suite in a VM. As root it installs what is missing; an
/// ordinary user without QEMU or a readable kernel is told what to install, and the step is skipped.
pub fn ci_step(root: &Path) -> anyhow::Result<()> {
    if !util::is_root() {
        let kernel = kernel::discover(None)?;
        let readable = kernel.as_ref().is_some_and(|k| kernel::check_readable(k).is_ok());
        if !readable || !kernel::qemu_installed() {
            println!(
                "xtask: skipped test-vm: it needs qemu-system-x86_64 and a readable kernel image; \
                 run `cargo xtask test-vm` to see what to install"
            );
            return Ok(());
        }
    }
    // With the timings, so that CI's log says where the time went (boot, modules, each job).
    let options = Options {
        timings: true,
        ..Options::default()
    };
    run(root, &options)
}

/// Installs a kernel and QEMU when missing (root on Debian/Ubuntu), for `ci` to call before the
/// host tests, whose end-to-end test boots the VM.
pub fn prepare() -> anyhow::Result<()> {
    kernel::find_or_install(None).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_guest_per_cpu_by_default_and_never_more_than_jobs() {
        let layout = |requested, jobs, cpus| {
            let l = Layout::for_host(requested, jobs, cpus);
            (l.guests, l.vcpus)
        };
        assert_eq!(layout(None, 72, 2), (2, 1), "this project's CI machine");
        assert_eq!(
            layout(None, 72, 16),
            (4, 4),
            "at most four by default, the CPUs shared out"
        );
        assert_eq!(layout(None, 1, 2), (1, 2), "one job: one guest with both CPUs");
        assert_eq!(layout(Some(1), 72, 2), (1, 2));
        assert_eq!(layout(Some(3), 72, 2), (3, 1), "more guests than CPUs when asked");
        assert_eq!(layout(None, 0, 2), (1, 2));
        assert_eq!(Layout::for_host(None, 72, 2).describe(), "2 guests of 1 vcpu");
    }

    #[test]
    fn loops_are_scaled_down_under_tcg_only() {
        assert_eq!(default_scale(Accel::Tcg), 0.1);
        assert_eq!(default_scale(Accel::Kvm), 1.0);
    }

    #[test]
    fn the_scale_is_a_positive_number() {
        assert_eq!(parse_scale("0.2"), Ok(0.2));
        assert_eq!(parse_scale("3"), Ok(3.0));
        for bad in ["0", "-1", "NaN", "inf", "a fifth"] {
            assert!(parse_scale(bad).is_err(), "{bad}");
        }
    }
}
