//! `cargo xtask test-vm`: boots a Linux kernel in QEMU and runs the workspace's test binaries inside
//! it, as root (`NS_REQUIRE_PRIV=1`) and as uid 65534 (`NS_REQUIRE_PRIV=userns`), with a true exit
//! status. The pieces, in the order a run uses them:
//!
//! - `kernel`: find (or install) a kernel and QEMU, and cache the kernel decompressed for PVH boot;
//! - `kconfig`: read the kernel's config: built in, module, or missing;
//! - `modules`: the modules to pack, with their dependencies, in load order;
//! - `guestroot`: share the host's root, or copy the tests in (`--root`), and the copy's archive;
//! - `cpio` and `initramfs`: the guest's root file system, with vm-init as `/init`;
//! - `qemu`: the accelerator and the command line; `runner`: start, stream, kill;
//! - `report`: what the guest said, and the verdict.
//!
//! Either way the test binaries run at the very paths cargo built them at (integration tests find
//! their demo binaries by absolute path): the guest sees the host's `/` read-only over 9p under a
//! tmpfs, or static copies packed into the initramfs at those paths.

mod cpio;
mod guestroot;
mod initramfs;
mod kconfig;
mod kernel;
mod modules;
mod qemu;
mod report;
mod runner;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ci::{TestBinary, build_test_binaries};
use crate::util::{self, UNPRIVILEGED_UID};
use guestroot::{Root, RootMode};
pub use qemu::Accel;
use report::{Report, Verdict};
use runner::{Ending, Qemu, RunFiles};

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
    /// Memory of the guest, in MiB.
    #[arg(long, default_value_t = 512)]
    pub memory: u32,
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

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let cache = crate::util::target_dir(root).join("vm");
    let kernel = kernel::find_or_install(options.kernel.as_deref())?;
    let vmlinux = kernel::vmlinux(&kernel, &cache).context("cannot prepare the kernel for PVH boot")?;
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
    let (base_path, rebuilt) = base.build(&cache)?;
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
            let (tests, copied) = copied_root(root, options, &cache)?;
            (tests, Some(copied))
        }
    };

    let work = WorkDir::create(&cache, options.keep)?;
    let module_paths = modules
        .iter()
        .enumerate()
        .map(|(i, m)| initramfs::Base::module_path(i, m))
        .collect();
    let conf = initramfs::GuestConf {
        module_paths,
        share_tag: (guest_root == Root::Share).then_some(qemu::ROOT_TAG),
        tests: tests
            .iter()
            .map(|t| (t.package_dir.as_path(), t.executable.as_path()))
            .collect(),
        args: &options.test_args,
        runs: &RUNS,
        shell: options.shell.then_some("/bin/sh"),
    };
    let initrd = work.path.join("initrd");
    let parts: Vec<&Path> = std::iter::once(base_path.as_path())
        .chain(copied.as_deref())
        .collect();
    initramfs::assemble(&parts, &conf.render(), &initrd)?;
    let files = RunFiles {
        result: work.path.join("result"),
        output: work.path.join("output"),
        console: work.path.join("console.log"),
        qemu_log: work.path.join("qemu.log"),
    };
    let machine = |accel| qemu::Machine {
        accel,
        kernel: vmlinux.clone(),
        initrd: initrd.clone(),
        memory_mib: options.memory,
        share_root: guest_root == Root::Share,
        ports: (!options.shell).then(|| (files.result.clone(), files.output.clone())),
        console: (!options.shell).then(|| files.console.clone()),
        append: Vec::new(),
    };

    let attempts = qemu::attempts(options.accel, qemu::KvmSupport::probe());
    if options.shell {
        let status = Qemu::interactive(&machine(attempts[0]))?;
        println!("xtask: the VM stopped ({status})");
        return Ok(());
    }
    runner::catch_interrupts()?;
    for accel in attempts {
        let _ = fs::remove_file(&files.result);
        let _ = fs::remove_file(&files.output);
        println!(
            "xtask: booting {} under {} ({} test binaries, {} runs, {} root)",
            kernel.image.display(),
            accel.name(),
            tests.len(),
            RUNS.len(),
            guest_root.name()
        );
        let started = Instant::now();
        let qemu = Qemu::start(&machine(accel), &files.qemu_log)?;
        let ending = runner::watch(qemu, accel, &files, Duration::from_secs(options.timeout))?;
        let took = started.elapsed();
        if let Ending::KvmDidNotBoot = ending {
            println!(
                "xtask: kvm showed no boot marker within {} s; falling back to tcg",
                qemu::KVM_BOOT_PROBE.as_secs()
            );
            continue;
        }
        return conclude(ending, accel, took, tests.len(), &files);
    }
    bail!("no accelerator could boot the kernel")
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

/// Reads the report, prints the summary and the benchmark line, and turns the verdict into the exit
/// status.
fn conclude(
    ending: Ending,
    accel: Accel,
    took: Duration,
    binaries: usize,
    files: &RunFiles,
) -> anyhow::Result<()> {
    let text = fs::read_to_string(&files.result).unwrap_or_default();
    let report = Report::parse(&text);
    let runs: Vec<&str> = RUNS.iter().map(|r| r.0).collect();
    let verdict = match ending {
        Ending::Exited => report.verdict(&runs),
        Ending::TimedOut => Verdict::NoResult("the guest timed out and was killed".into()),
        Ending::Interrupted => Verdict::NoResult("interrupted; qemu was killed".into()),
        Ending::KvmDidNotBoot => Verdict::NoResult("kvm did not boot".into()),
    };
    println!("\nxtask test-vm summary:");
    for (run, ..) in RUNS {
        let of_run: Vec<_> = report.tests.iter().filter(|t| t.run == run).collect();
        let passed = of_run.iter().filter(|t| t.passed()).count();
        println!("  {run:<5} {passed} of {} test binaries passed", of_run.len());
    }
    for garbled in &report.garbled {
        println!("  unreadable result line: {garbled}");
    }
    let boot = report
        .booted_ms
        .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
    println!(
        "bench: test-vm boot-to-verdict {:.1} s under {} (kernel booted to /init in {boot}; {} test binaries x {} runs)",
        took.as_secs_f64(),
        accel.name(),
        binaries,
        RUNS.len()
    );
    match verdict {
        Verdict::Passed => {
            println!("xtask: test-vm passed");
            Ok(())
        }
        Verdict::Failed(_) => bail!("test-vm {verdict}"),
        Verdict::NoResult(_) => {
            println!(
                "xtask: the console's last lines:\n{}",
                runner::tail_of(&files.console, 30)
            );
            let qemu_log = runner::tail_of(&files.qemu_log, 10);
            if !qemu_log.is_empty() {
                println!("xtask: qemu said:\n{qemu_log}");
            }
            bail!("test-vm {verdict}")
        }
    }
}

/// The run's work directory, removed when dropped unless kept.
#[derive(Debug)]
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(cache: &Path, keep: bool) -> anyhow::Result<WorkDir> {
        let path = cache.join(format!("run-{}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            println!("xtask: kept the work directory {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
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
            memory: 512,
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
    run(root, &Options::default())
}

/// Installs a kernel and QEMU when missing (root on Debian/Ubuntu), for `ci` to call before the
/// host tests, whose end-to-end test boots the VM.
pub fn prepare() -> anyhow::Result<()> {
    kernel::find_or_install(None).map(|_| ())
}
