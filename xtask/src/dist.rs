//! `cargo xtask dist`: builds `combined` the way it is shipped: statically linked against glibc
//! (`-C target-feature=+crt-static`, a static PIE) with the `dist` profile (size-optimized, LTO). The
//! explicit `--target` keeps the flag away from build scripts and proc macros, which cannot be static,
//! and keeps these artifacts apart from the ordinary `target/release`. rustc's "Static and dynamic C
//! runtimes" (the reference, linkage chapter).
//!
//! Two link options keep what a start touches small (the linker's man page, ld.lld(1)); every page of
//! the binary a process touches counts in its RSS, and the kernel maps up to 16 neighbouring pages
//! with each one it faults in (fault-around):
//! - `-z pack-relative-relocs`: the relative relocations a static PIE applies to itself at every start
//!   (`_dl_relocate_static_pie`) packed as RELR, 3 KiB instead of 270 KiB of `.rela.dyn` to read;
//! - `--symbol-ordering-file=combined/link-order.txt`: the functions a container's start runs, laid
//!   out side by side instead of scattered over 3 MiB of code. `cargo xtask link-order` records the
//!   list with perf(1); a function missing from it (renamed, new) only lands where it would anyway.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::util::{self, cargo};

/// The host's target triple, from `rustc -vV`.
pub fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = util::output(std::process::Command::new(rustc).arg("-vV"))?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}

/// Builds `packages` statically with the `dist` profile; returns the directory holding the binaries.
pub fn build(root: &Path, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let triple = host_triple()?;
    if !triple.ends_with("-linux-gnu") {
        bail!("cargo xtask dist builds for glibc Linux targets; this host is {triple}");
    }
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["build", "--quiet", "--profile", "dist", "--target", &triple])
        .env_remove("RUSTFLAGS")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags(root).join("\x1f"));
    util::link_libseccomp_statically(&mut cmd)?;
    for package in packages {
        cmd.args(["-p", package]);
    }
    util::run(&mut cmd).context("cannot build the static binaries")?;
    Ok(util::target_dir(root).join(triple).join("dist"))
}

/// The file of the functions a start runs, in the order `dist` lays them out.
pub fn link_order_file(root: &Path) -> PathBuf {
    root.join("combined").join("link-order.txt")
}

/// The static flag and the link options of the module comment (the ordering only when the file is
/// there), one flag per item.
fn rustflags(root: &Path) -> Vec<String> {
    let mut flags: Vec<String> = ["-C", "target-feature=+crt-static"].map(String::from).to_vec();
    if glibc_applies_relr() {
        flags.push("-C".into());
        flags.push("link-arg=-Wl,-z,pack-relative-relocs".into());
    }
    let order = link_order_file(root);
    if order.exists() {
        flags.push("-C".into());
        flags.push(format!("link-arg=-Wl,--symbol-ordering-file={}", order.display()));
        flags.push("-C".into());
        flags.push("link-arg=-Wl,--no-warn-symbol-ordering".into());
    }
    flags
}

/// Whether the glibc the static binary is linked with relocates a static PIE's RELR relocations
/// itself: glibc 2.36 and later. An older one would start the binary unrelocated, and it would crash.
/// xtask runs on the glibc whose `libc.a` the build links.
fn glibc_applies_relr() -> bool {
    // SAFETY: gnu_get_libc_version takes nothing and cannot fail.
    let pointer = unsafe { libc::gnu_get_libc_version() };
    // SAFETY: it points at a static NUL-terminated string, alive for the whole process.
    let version = unsafe { std::ffi::CStr::from_ptr(pointer) };
    let mut parts = version
        .to_str()
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 36)
}

/// `cargo xtask link-order`: runs the dist build of `combined run --rootfs R -- /bin/true`,
/// `/bin/false` and the OCI runtime's `run --bundle` 300 times each under `perf record`, sampling
/// where user-space code runs every 3 us of CPU time, and writes the functions of combined's binary
/// that were seen, one per line, to `combined/link-order.txt`. Sampling misses a function only if it
/// runs for well under a microsecond in every one of the runs.
pub fn record_link_order(root: &Path) -> anyhow::Result<()> {
    let perf = crate::bench::which("perf")
        .map_err(|_| anyhow::anyhow!("perf is not installed (apt-get install linux-perf)"))?;
    let combined = build(root, &["combined"])?.join("combined");
    let rootfs = crate::rootfs::default_dir(root);
    let rootfs = if rootfs.join("bin/busybox").exists() {
        rootfs
    } else {
        crate::rootfs::build(root, None)?
    };
    // The benchmark's OCI bundle, for the OCI runtime's start (`run --bundle`: create and start).
    let work = util::target_dir(root).join("link-order");
    let (bundle, state) = (work.join("bundle"), work.join("state"));
    crate::bench::write_bundle(&bundle, &rootfs, None)?;
    std::fs::create_dir_all(&state).with_context(|| format!("cannot create {}", state.display()))?;
    // `combined run`'s functions first, then those only the OCI start adds: `run` keeps the tightest
    // layout, and the OCI start's extra code lies together after it.
    let scenarios = [
        "for i in $(seq 300); do \"$1\" run --rootfs \"$2\" -- /bin/true; \
         \"$1\" run --rootfs \"$2\" -- /bin/false || true; done",
        "for i in $(seq 300); do \"$1\" --root \"$4\" run --bundle \"$3\" link-order-$i; done",
    ];
    let mut symbols: Vec<String> = Vec::new();
    for script in scenarios {
        let data = work.join("perf.data");
        util::run(
            std::process::Command::new(&perf)
                .args(["record", "-q", "-e", "cpu-clock:u", "-c", "3000", "-o"])
                .arg(&data)
                .args(["--", "sh", "-c", script, "sh"])
                .args([&combined, &rootfs, &bundle, &state])
                .stdout(std::process::Stdio::null()),
        )
        .context("perf record failed")?;
        let report = util::output(
            std::process::Command::new(&perf)
                .args(["report", "--no-demangle", "--sort", "dso,sym", "--stdio", "-i"])
                .arg(&data),
        )?;
        let seen = sampled_symbols(&report, "combined");
        if seen.len() < 100 {
            bail!(
                "perf saw only {} functions of combined: is perf working here?",
                seen.len()
            );
        }
        let new: Vec<String> = seen.into_iter().filter(|s| !symbols.contains(s)).collect();
        symbols.extend(new);
    }
    let out = link_order_file(root);
    std::fs::write(&out, symbols.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("xtask: {} functions in {}", symbols.len(), out.display());
    Ok(())
}

/// The symbols `perf report --sort dso,sym` attributes samples to in `dso`, sorted, each once;
/// addresses it could not name are left out.
fn sampled_symbols(report: &str, dso: &str) -> Vec<String> {
    let mut symbols: Vec<String> = report
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                [_, in_dso, "[.]", symbol, ..] if *in_dso == dso && !symbol.starts_with("0x") => {
                    Some((*symbol).to_owned())
                }
                _ => None,
            },
        )
        .collect();
    symbols.sort();
    symbols.dedup();
    symbols
}

/// `cargo xtask dist`.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let dir = build(root, &["combined"])?;
    println!("xtask: {}", dir.join("combined").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampled_functions_of_one_binary() {
        let report = "\
# Overhead  Shared Object  Symbol
     7.73%  combined       [.] handle_amd
     3.75%  busybox        [.] 0x000000000000f2ea
     1.06%  combined       [.] _ZN8mnt_demo7resolve15resolve_in_root17h8903705dd00c1ac4E
     0.50%  combined       [.] 0x0000000000010098
     0.20%  [kernel]       [k] clear_page
     0.10%  combined       [.] handle_amd
";
        assert_eq!(
            sampled_symbols(report, "combined"),
            [
                "_ZN8mnt_demo7resolve15resolve_in_root17h8903705dd00c1ac4E",
                "handle_amd"
            ]
        );
    }

    #[test]
    fn the_ordering_is_passed_only_when_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let without_order = rustflags(dir.path());
        assert!(
            !without_order
                .iter()
                .any(|f| f.contains("--symbol-ordering-file="))
        );
        std::fs::create_dir(dir.path().join("combined")).unwrap();
        std::fs::write(link_order_file(dir.path()), "main\n").unwrap();
        assert!(
            rustflags(dir.path())
                .iter()
                .any(|f| f.contains("--symbol-ordering-file="))
        );
    }
}
