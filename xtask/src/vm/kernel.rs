//! Finding the kernel the VM boots, and installing one when there is none: `--kernel PATH` or
//! `NS_VM_KERNEL`, else the running kernel's `/boot/vmlinuz-$(uname -r)`, else the newest
//! `/boot/vmlinuz-*`. Each comes with its `config-<release>` (kconfig) and `/lib/modules/<release>`
//! (modules.dep(5)) when they exist. The bzImage layout (`setup_sects`, `payload_offset`) follows the
//! kernel's Documentation/arch/x86/boot.rst; the decompressed ELF `vmlinux` is cached because QEMU
//! boots it directly through its PVH entry note, skipping the slow in-guest decompression.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::util;

/// The environment variable that names a kernel image, like `--kernel`.
pub const KERNEL_ENV: &str = "NS_VM_KERNEL";

/// The Debian packages that give a fresh machine everything `test-vm` needs.
pub const PACKAGES: [&str; 2] = ["qemu-system-x86", "linux-image-amd64"];

/// A kernel image and what belongs to it.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The bzImage (`vmlinuz-*`) or an ELF `vmlinux`.
    pub image: PathBuf,
    /// `6.1.0-30-amd64`, from the file name `vmlinuz-<release>`, when it has one.
    pub release: Option<String>,
    /// The kernel's build configuration (`/boot/config-<release>`), when found.
    pub config: Option<PathBuf>,
    /// `/lib/modules/<release>`, when it exists.
    pub modules: Option<PathBuf>,
}

impl Kernel {
    /// Describes a kernel image: its release from the name, its config and modules beside it.
    pub fn at(image: &Path) -> Kernel {
        let name = image.file_name().unwrap_or_default().to_string_lossy();
        let release = name
            .strip_prefix("vmlinuz-")
            .or_else(|| name.strip_prefix("vmlinux-"))
            .map(str::to_owned);
        let dir = image.parent().unwrap_or(Path::new("/"));
        let config = release
            .as_ref()
            .map(|r| dir.join(format!("config-{r}")))
            .filter(|p| p.is_file());
        let modules = release
            .as_ref()
            .map(|r| Path::new("/lib/modules").join(r))
            .filter(|p| p.join("modules.dep").is_file());
        Kernel {
            image: image.to_path_buf(),
            release,
            config,
            modules,
        }
    }
}

/// Finds the kernel to boot: an explicit path first (`--kernel`, then `NS_VM_KERNEL`), else the
/// running kernel's image, else the newest in `/boot`. `None` when there is none at all.
pub fn discover(explicit: Option<&Path>) -> anyhow::Result<Option<Kernel>> {
    let from_env = std::env::var_os(KERNEL_ENV).map(PathBuf::from);
    if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
        if !path.is_file() {
            bail!("kernel image {} does not exist", path.display());
        }
        return Ok(Some(Kernel::at(&path)));
    }
    let running = nix::sys::utsname::uname()
        .context("uname failed")?
        .release()
        .to_string_lossy()
        .into_owned();
    let names = list_boot("/boot".as_ref());
    Ok(choose(&names, &running).map(|name| Kernel::at(&Path::new("/boot").join(name))))
}

/// The `vmlinuz-*` names in `dir`.
fn list_boot(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vmlinuz-"))
        .collect()
}

/// The running kernel's image when it is among `names`, else the newest by version order.
fn choose<'a>(names: &'a [String], running: &str) -> Option<&'a str> {
    let own = format!("vmlinuz-{running}");
    if let Some(name) = names.iter().find(|n| **n == own) {
        return Some(name);
    }
    names
        .iter()
        .max_by(|a, b| version_key(a).cmp(&version_key(b)))
        .map(String::as_str)
}

/// Splits `vmlinuz-6.1.0-30-amd64` into numbers and words so that 6.10 sorts after 6.9.
fn version_key(name: &str) -> Vec<(u64, String)> {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .map(|part| (part.parse().unwrap_or(0), part.to_owned()))
        .collect()
}

/// Checks that the image can be read: Ubuntu installs `/boot/vmlinuz-*` readable by root only.
pub fn check_readable(kernel: &Kernel) -> anyhow::Result<()> {
    if let Err(e) = fs::File::open(&kernel.image) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            bail!(
                "cannot read the kernel image {}: it is readable by root only (Ubuntu does this); \
                 run as root, or copy it once with `sudo install -m 644 {} ~/vmlinuz` and pass \
                 `--kernel ~/vmlinuz`",
                kernel.image.display(),
                kernel.image.display()
            );
        }
        return Err(e).with_context(|| format!("cannot read the kernel image {}", kernel.image.display()));
    }
    Ok(())
}

/// Whether `qemu-system-x86_64` is on the PATH.
pub fn qemu_installed() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs QEMU and a kernel with apt-get when that is possible (root on Debian or Ubuntu), saying
/// so; otherwise fails with the exact commands to run.
pub fn install_missing(need_kernel: bool, need_qemu: bool) -> anyhow::Result<()> {
    let mut what = Vec::new();
    if need_qemu {
        what.push("qemu-system-x86_64");
    }
    if need_kernel {
        what.push("a kernel image in /boot");
    }
    let missing = what.join(" and ");
    let apt = Path::new("/usr/bin/apt-get").exists() && Path::new("/etc/debian_version").exists();
    if !(util::is_root() && apt) {
        let sudo = if util::is_root() { "" } else { "sudo " };
        bail!(
            "test-vm needs {missing}; on Debian or Ubuntu install them with:\n    {sudo}apt-get update && \
             {sudo}apt-get install -y --no-install-recommends {}\n(on Ubuntu, the kernel package is \
             linux-image-generic), or pass --kernel PATH",
            PACKAGES.join(" ")
        );
    }
    let kernel_package = if is_ubuntu() {
        "linux-image-generic"
    } else {
        PACKAGES[1]
    };
    let packages = [PACKAGES[0], kernel_package];
    println!(
        "xtask: test-vm needs {missing}; installing {} with apt-get",
        packages.join(" ")
    );
    util::run(Command::new("apt-get").args(["update", "-q"]))?;
    util::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages),
    )
}

fn is_ubuntu() -> bool {
    fs::read_to_string("/etc/os-release").is_ok_and(|s| s.lines().any(|l| l == "ID=ubuntu"))
}

/// Finds a kernel and QEMU, installing them when missing and allowed to.
pub fn find_or_install(explicit: Option<&Path>) -> anyhow::Result<Kernel> {
    let kernel = discover(explicit)?;
    let qemu = qemu_installed();
    if kernel.is_none() || !qemu {
        install_missing(kernel.is_none(), !qemu)?;
    }
    let kernel = match kernel {
        Some(k) => k,
        None => discover(explicit)?.context("no kernel image in /boot even after installing one")?,
    };
    check_readable(&kernel)?;
    Ok(kernel)
}

/// How a bzImage's payload is compressed, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    None,
}

impl Compression {
    /// Recognizes a compressed stream (or an ELF file) by its first bytes.
    pub fn sniff(data: &[u8]) -> Option<Compression> {
        if data.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if data.starts_with(b"\x7fELF") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// The compressed vmlinux inside a bzImage (boot protocol 2.08+): the protected-mode part starts at
/// `(setup_sects + 1) * 512`, and `payload_offset`/`payload_length` (at 0x248/0x24c) locate the
/// payload in it.
pub fn bzimage_payload(image: &[u8]) -> anyhow::Result<&[u8]> {
    if image.len() < 0x250 || &image[0x202..0x206] != b"HdrS" {
        bail!("not a bzImage: no HdrS boot header");
    }
    let version = u16::from_le_bytes([image[0x206], image[0x207]]);
    if version < 0x0208 {
        bail!("boot protocol {version:#x} is older than 2.08 and has no payload fields");
    }
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let le32 = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().expect("4 bytes")) as usize;
    let start = (setup_sects + 1) * 512 + le32(0x248);
    let end = start + le32(0x24c);
    image
        .get(start..end)
        .context("bzImage payload lies outside the file")
}

/// Decompresses a stream of the given kind into memory.
pub fn decompress(kind: Compression, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 4);
    match kind {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .context("gzip data is corrupt")?;
        }
        Compression::Xz => {
            lzma_rust2::XzReader::new(data, false)
                .read_to_end(&mut out)
                .context("xz data is corrupt")?;
        }
        Compression::Zstd => {
            ruzstd::decoding::StreamingDecoder::new(data)
                .map_err(|e| anyhow::anyhow!("zstd data is corrupt: {e}"))?
                .read_to_end(&mut out)
                .context("zstd data is corrupt")?;
        }
    }
    Ok(out)
}

/// The ELF vmlinux QEMU boots through PVH: the image itself when it already is one, else its
/// payload decompressed once and cached under `cache_dir` (keyed by the image's size and mtime).
pub fn vmlinux(kernel: &Kernel, cache_dir: &Path) -> anyhow::Result<PathBuf> {
    let meta =
        fs::metadata(&kernel.image).with_context(|| format!("cannot stat {}", kernel.image.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let name = kernel.image.file_name().unwrap_or_default().to_string_lossy();
    let cached = cache_dir.join(format!("{name}-{}-{mtime}.vmlinux", meta.len()));
    if cached.is_file() {
        return Ok(cached);
    }
    let image = fs::read(&kernel.image)
        .with_context(|| format!("cannot read the kernel image {}", kernel.image.display()))?;
    if image.starts_with(b"\x7fELF") {
        return Ok(kernel.image.clone());
    }
    let payload = bzimage_payload(&image)
        .with_context(|| format!("cannot find the kernel inside {}", kernel.image.display()))?;
    let kind = Compression::sniff(payload).with_context(|| {
        format!(
            "{} is compressed in a format test-vm cannot read (only gzip, xz and zstd)",
            kernel.image.display()
        )
    })?;
    let elf =
        decompress(kind, payload).with_context(|| format!("cannot decompress {}", kernel.image.display()))?;
    if !elf.starts_with(b"\x7fELF") {
        bail!("the payload of {} is not an ELF vmlinux", kernel.image.display());
    }
    fs::create_dir_all(cache_dir).with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let partial = cached.with_extension(format!("partial-{}", std::process::id()));
    fs::write(&partial, &elf).with_context(|| format!("cannot write {}", partial.display()))?;
    fs::rename(&partial, &cached).with_context(|| format!("cannot write {}", cached.display()))?;
    Ok(cached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefers_the_running_kernel() {
        let list = names(&["vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-30-amd64"]);
        assert_eq!(choose(&list, "6.1.0-9-amd64"), Some("vmlinuz-6.1.0-9-amd64"));
    }

    #[test]
    fn else_takes_the_newest_by_version_not_by_spelling() {
        let list = names(&[
            "vmlinuz-6.1.0-9-amd64",
            "vmlinuz-6.1.0-30-amd64",
            "vmlinuz-5.10.0-1-amd64",
        ]);
        assert_eq!(choose(&list, "6.18.4-fc"), Some("vmlinuz-6.1.0-30-amd64"));
        assert_eq!(choose(&[], "6.18.4-fc"), None);
    }

    #[test]
    fn release_comes_from_the_file_name() {
        let k = Kernel::at(Path::new("/nonexistent/vmlinuz-6.1.0-30-amd64"));
        assert_eq!(k.release.as_deref(), Some("6.1.0-30-amd64"));
        assert!(k.config.is_none());
    }

    #[test]
    fn sniffs_compression_magic() {
        assert_eq!(
            Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1]),
            Some(Compression::Xz)
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Some(Compression::Gzip));
        assert_eq!(Compression::sniff(b"\x7fELF\x02"), Some(Compression::None));
        assert_eq!(Compression::sniff(b"BZh9"), None);
    }

    #[test]
    fn finds_the_payload_of_a_bzimage() {
        let mut image = vec![0u8; 4 * 512 + 100];
        image[0x1f1] = 2; // setup_sects: the protected-mode part starts at 3 * 512
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&4u32.to_le_bytes());
        image[3 * 512 + 16..3 * 512 + 20].copy_from_slice(b"abcd");
        assert_eq!(bzimage_payload(&image).unwrap(), b"abcd");
        image[0x202] = b'X';
        assert!(bzimage_payload(&image).is_err());
    }

    #[test]
    fn decompresses_gzip() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello kernel").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress(Compression::Gzip, &gz).unwrap(), b"hello kernel");
    }
}
