//! `cargo xtask test-vm`: boots a Linux kernel in QEMU and runs the workspace's test binaries inside
//! it, as root and as an unprivileged user, with a true exit status.

mod kernel;

use std::path::{Path, PathBuf};

/// The command line of `cargo xtask test-vm`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Kernel image to boot (bzImage or vmlinux); default: $NS_VM_KERNEL, the running kernel's
    /// /boot/vmlinuz-$(uname -r), else the newest /boot/vmlinuz-*.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let kernel = kernel::find_or_install(options.kernel.as_deref())?;
    println!("{kernel:?}");
    let cache = root.join("target").join("vm");
    let elf = kernel::vmlinux(&kernel, &cache)?;
    println!("{}", elf.display());
    Ok(())
}
