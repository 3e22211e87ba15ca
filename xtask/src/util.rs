//! Small helpers the xtask commands share: finding the workspace, running commands, switching to the
//! unprivileged user the tests run as (setpriv(1)).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};

/// The unprivileged user tests and transcripts run as when xtask is root: `nobody` on Debian.
pub const UNPRIVILEGED_UID: u32 = 65534;

/// The workspace root: xtask's own manifest dir is `<root>/xtask`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `cargo`, as the one running us (so a rustup toolchain override is honoured).
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    if ONE_SHOT_BUILDS.load(Ordering::Relaxed) {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// Set by `ci`: every cargo it starts builds without incremental compilation. CI builds each crate
/// once on a fresh machine, where incremental's caches (about 2 GB for this workspace, nearly half
/// of `target/`) would only take the disk they can run out of.
static ONE_SHOT_BUILDS: AtomicBool = AtomicBool::new(false);

/// Makes every later [`cargo`] build without incremental compilation; see [`ONE_SHOT_BUILDS`].
pub fn build_without_incremental_caches() {
    ONE_SHOT_BUILDS.store(true, Ordering::Relaxed);
}

/// Wraps a command so it runs as [`UNPRIVILEGED_UID`] with no supplementary groups.
pub fn as_unprivileged(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={UNPRIVILEGED_UID}"),
        format!("--regid={UNPRIVILEGED_UID}"),
        "--clear-groups".into(),
        "--".into(),
    ])
    .arg(program);
    cmd
}

/// Where `program` is in PATH, if it is.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_executable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

/// Runs `cmd`, inheriting stdio, and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; fails unless it exits 0.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{} failed with {}: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{} printed invalid UTF-8", describe(cmd)))
}

/// `program arg arg` for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Makes every directory from `/` down to `dir` searchable by others, so the unprivileged test user can
/// reach binaries built under it. Says what it changed.
pub fn make_reachable(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
        let meta =
            std::fs::metadata(ancestor).with_context(|| format!("cannot stat {}", ancestor.display()))?;
        let mode = meta.permissions().mode();
        if mode & 0o005 != 0o005 {
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o005))
                .with_context(|| format!("cannot make {} reachable", ancestor.display()))?;
            println!(
                "xtask: made {} readable and searchable by others, for uid {UNPRIVILEGED_UID}",
                ancestor.display()
            );
        }
    }
    Ok(())
}

/// Gives [`UNPRIVILEGED_UID`] its own cache directory beside root's in cargo's scratch directory for
/// integration tests, `<target>/tmp/cache-65534` (combined's tests/common, `cache`): that user cannot
/// create it in the root-owned `tmp`, and the launcher trusts only a cache directory of the user's own.
/// Without it, every unprivileged `combined run` compiles its seccomp filter again.
pub fn give_test_cache(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let tmp = target_dir(root).join("tmp");
    let cache = tmp.join(format!("cache-{UNPRIVILEGED_UID}"));
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    match std::fs::DirBuilder::new().mode(0o700).create(&cache) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", cache.display())),
    }
    // Never through a link: what is handed to the unprivileged user must be this directory itself.
    let meta =
        std::fs::symlink_metadata(&cache).with_context(|| format!("cannot stat {}", cache.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory: remove it and run again", cache.display());
    }
    std::os::unix::fs::lchown(&cache, Some(UNPRIVILEGED_UID), Some(UNPRIVILEGED_UID))
        .with_context(|| format!("cannot give {} to uid {UNPRIVILEGED_UID}", cache.display()))?;
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", cache.display()))?;
    Ok(())
}

/// Times a step and prints its one-line summary.
pub fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    println!("xtask: {name} ...");
    let start = Instant::now();
    let result = f();
    let took = start.elapsed().as_secs_f64();
    match &result {
        Ok(()) => println!("xtask: {name:<40} ok      ({took:.1} s)"),
        Err(e) => println!("xtask: {name:<40} FAILED  ({took:.1} s): {e:#}"),
    }
    result
}

/// Makes a static build (`+crt-static`) link libseccomp statically too: `combined`'s seccomp filter
/// is compiled by libseccomp, whose bindings (libseccomp-sys) link the shared library unless told
/// otherwise. The static archive comes with Debian's libseccomp-dev, in the C compiler's library path.
pub fn link_libseccomp_statically(cmd: &mut Command) -> anyhow::Result<()> {
    let find = || -> anyhow::Result<Option<PathBuf>> {
        let archive = output(Command::new("cc").arg("-print-file-name=libseccomp.a"))?;
        let archive = PathBuf::from(archive.trim());
        Ok((archive.is_absolute() && archive.exists()).then_some(archive))
    };
    let archive = match find()? {
        Some(archive) => archive,
        None if can_apt_install() => {
            apt_install("libseccomp-dev")?;
            find()?.context("libseccomp-dev is installed, yet the C compiler finds no libseccomp.a")?
        }
        None => bail!("no static libseccomp (libseccomp.a): run `sudo apt-get install libseccomp-dev`"),
    };
    let dir = archive.parent().context("libseccomp.a has a directory")?;
    cmd.env("LIBSECCOMP_LINK_TYPE", "static")
        .env("LIBSECCOMP_LIB_PATH", dir);
    Ok(())
}

/// Whether packages can be installed here: root, on Debian or Ubuntu.
pub fn can_apt_install() -> bool {
    is_root() && Path::new("/usr/bin/apt-get").exists()
}

/// `apt-get install PACKAGE`, updating the package lists first if the install fails without.
pub fn apt_install(package: &str) -> anyhow::Result<()> {
    println!("xtask: installing {package} with apt-get");
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    install().or_else(|_| {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()
    })
}

/// Where cargo puts what it builds: `target_directory` from `cargo metadata`, which honours
/// `CARGO_TARGET_DIR` and `build.target-dir` as every cargo command does. Asked once per run.
pub fn target_dir(root: &Path) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| metadata_target_dir(cargo().current_dir(root)).unwrap_or_else(|| root.join("target")))
        .clone()
}

/// `target_directory` as `cmd` (a `cargo` command in the workspace) reports it.
fn metadata_target_dir(cmd: &mut Command) -> Option<PathBuf> {
    let json = output(cmd.args(["metadata", "--format-version", "1", "--no-deps"])).ok()?;
    let meta: serde_json::Value = serde_json::from_str(&json).ok()?;
    meta["target_directory"].as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_dir_follows_cargo_target_dir() {
        if metadata_target_dir(cargo().current_dir(workspace_root())).is_none() {
            // As uid 65534 in CI, cargo's own home (root's) is out of reach: nothing to compare.
            eprintln!("skipped the_target_dir_follows_cargo_target_dir: `cargo metadata` does not run here");
            return;
        }
        let mut cmd = cargo();
        cmd.current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", "/tmp/xtask-elsewhere");
        assert_eq!(
            metadata_target_dir(&mut cmd),
            Some(PathBuf::from("/tmp/xtask-elsewhere"))
        );
    }
}

/// How an executable is linked, as its ELF program headers say (elf(5)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// No `PT_INTERP`: it runs in a root that holds nothing else.
    Static,
    /// It names a program interpreter (ld.so), which loads the C library and the rest.
    Dynamic,
    /// Not an ELF file (a script, or something unreadable as one).
    NotElf,
}

/// Reads `bytes`' ELF headers with goblin and tells a static executable from a dynamic one.
pub fn linkage(bytes: &[u8]) -> Linkage {
    match goblin::elf::Elf::parse(bytes) {
        Ok(elf) if elf.interpreter.is_none() => Linkage::Static,
        Ok(_) => Linkage::Dynamic,
        Err(_) => Linkage::NotElf,
    }
}
