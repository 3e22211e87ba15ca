//! `cargo xtask rootfs`: builds a small root filesystem from Debian's static busybox, for trying
//! `combined run --rootfs` and for the benchmarks. busybox(1): one static binary that is every tool,
//! chosen by the name it is run as, so the rootfs is that binary and a symlink per tool.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::util;

/// Where Debian's `busybox-static` package puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The default output directory.
pub fn default_dir(root: &Path) -> PathBuf {
    crate::util::target_dir(root).join("busybox-rootfs")
}

/// `cargo xtask rootfs [--out DIR]`: (re)builds the rootfs and prints its path.
pub fn build(root: &Path, out: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let out = out.unwrap_or_else(|| default_dir(root));
    let busybox = find_or_install_busybox()?;
    let tmp = out.with_extension("partial");
    let _ = fs::remove_dir_all(&tmp);
    populate(&tmp, &busybox)?;
    let _ = fs::remove_dir_all(&out);
    fs::rename(&tmp, &out).with_context(|| format!("cannot move the rootfs into {}", out.display()))?;
    println!("xtask: busybox rootfs in {}", out.display());
    Ok(out)
}

/// A static busybox: Debian's `busybox-static`, installed with apt-get when root and missing.
pub fn find_or_install_busybox() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(BUSYBOX);
    if is_static_busybox(&path) {
        return Ok(path);
    }
    if util::can_apt_install() {
        util::apt_install("busybox-static")?;
        if is_static_busybox(&path) {
            return Ok(path);
        }
    }
    bail!("a static busybox is needed at {BUSYBOX}: run `sudo apt-get install busybox-static`")
}

/// Whether `path` is a statically linked ELF, so it runs in a rootfs with no libraries.
fn is_static_busybox(path: &Path) -> bool {
    fs::read(path).is_ok_and(|bytes| util::linkage(&bytes) == util::Linkage::Static)
}

fn populate(dir: &Path, busybox: &Path) -> anyhow::Result<()> {
    for sub in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "run",
        "var",
    ] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(busybox, dir.join("bin/busybox")).context("cannot copy busybox")?;
    let list = util::output(Command::new(busybox).arg("--list-full")).context("busybox --list-full")?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let link = dir.join(applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        symlink(&target, &link).with_context(|| format!("cannot link {}", link.display()))?;
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(dir.join("etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic_elf() {
        // This test binary is dynamically linked (glibc): it has PT_INTERP.
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(util::linkage(&me), util::Linkage::Dynamic);
        assert_eq!(util::linkage(b"#!/bin/sh\n"), util::Linkage::NotElf);
        assert_eq!(util::linkage(&[]), util::Linkage::NotElf);
        if let Ok(busybox) = fs::read(BUSYBOX) {
            // Debian's busybox-static, which `cargo xtask ci` installs.
            assert_eq!(util::linkage(&busybox), util::Linkage::Static);
        }
    }
}
