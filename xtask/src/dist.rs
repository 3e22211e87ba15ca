//! `cargo xtask dist`: builds `combined` the way it is shipped: statically linked against glibc
//! (`-C target-feature=+crt-static`, a static PIE) with the `dist` profile (size-optimized, LTO). The
//! explicit `--target` keeps the flag away from build scripts and proc macros, which cannot be static,
//! and keeps these artifacts apart from the ordinary `target/release`. rustc's "Static and dynamic C
//! runtimes" (the reference, linkage chapter).

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
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    util::link_libseccomp_statically(&mut cmd)?;
    for package in packages {
        cmd.args(["-p", package]);
    }
    util::run(&mut cmd).context("cannot build the static binaries")?;
    Ok(util::target_dir(root).join(triple).join("dist"))
}

/// `cargo xtask dist`.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let dir = build(root, &["combined"])?;
    println!("xtask: {}", dir.join("combined").display());
    Ok(())
}
