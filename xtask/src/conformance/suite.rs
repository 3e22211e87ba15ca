//! The OCI runtime-tools validation suite (github.com/opencontainers/runtime-tools, `validation/`), built
//! from the snapshot the project keeps beside the workspace: unpacked into a cache under the target
//! directory and built once per tarball (the cache is keyed by its SHA-256), offline, from its vendored
//! Go modules (`go help modules`, "Vendoring"; GOFLAGS=-mod=vendor, GOPROXY=off).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::util::{self, apt_install, can_apt_install};

/// Where the project keeps the suite's source, relative to the workspace root.
pub const DEFAULT_TARBALL: &str = "../shared/conformance/runtime-tools-260e151.tar.gz";

/// Written into a build directory once `make` has succeeded there.
const BUILT_MARKER: &str = ".xtask-built";

/// A built suite, ready to run.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The source tree, with `runtimetest` and `validation/*/*.t` built: every program runs from here.
    pub dir: PathBuf,
    pub tarball: PathBuf,
    pub sha256: String,
    /// The validation programs' names (`create` for `validation/create/create.t`), sorted.
    pub programs: Vec<String>,
}

impl Suite {
    /// The executable of one validation program.
    pub fn program_path(&self, name: &str) -> PathBuf {
        self.dir.join("validation").join(name).join(format!("{name}.t"))
    }
}

/// Unpacks and builds the suite under `cache` unless this very tarball was built there before.
pub fn prepare(tarball: &Path, cache: &Path) -> anyhow::Result<Suite> {
    let tarball = std::fs::canonicalize(tarball)
        .with_context(|| format!("no conformance suite at {}", tarball.display()))?;
    let sha256 = sha256_of(&tarball)?;
    let build_dir = cache.join(format!("suite-{}", &sha256[..16]));
    if build_dir.join(BUILT_MARKER).exists() {
        println!(
            "xtask: conformance: suite already built in {}",
            build_dir.display()
        );
    } else {
        remove_stale_builds(cache, &build_dir)?;
        let dir = unpack(&tarball, &build_dir)?;
        build(&dir, cache)?;
        std::fs::write(build_dir.join(BUILT_MARKER), format!("{sha256}\n"))
            .context("cannot mark the suite as built")?;
    }
    let dir = source_dir(&build_dir)?;
    let programs = list_programs(&dir)?;
    Ok(Suite {
        dir,
        tarball,
        sha256,
        programs,
    })
}

/// The tarball's SHA-256, by coreutils' sha256sum (xtask has no hash crate, and needs none more).
fn sha256_of(file: &Path) -> anyhow::Result<String> {
    let out = util::output(Command::new("sha256sum").arg(file))?;
    match out.split_whitespace().next() {
        Some(hash) if hash.len() == 64 => Ok(hash.to_owned()),
        _ => bail!("sha256sum printed no hash for {}", file.display()),
    }
}

/// Removes builds of other tarballs (and a half-made build of this one), so the cache holds one suite.
fn remove_stale_builds(cache: &Path, keep: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_build = entry.file_name().to_string_lossy().starts_with("suite-");
        if is_build && (path != keep || !path.join(BUILT_MARKER).exists()) {
            println!("xtask: conformance: removing the stale build {}", path.display());
            std::fs::remove_dir_all(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Unpacks the tarball into `build_dir` (gzip'd tar, with flate2 and tar as `cargo xtask rootfs` does)
/// and returns the source tree inside it.
fn unpack(tarball: &Path, build_dir: &Path) -> anyhow::Result<PathBuf> {
    println!(
        "xtask: conformance: unpacking {} into {}",
        tarball.display(),
        build_dir.display()
    );
    std::fs::create_dir_all(build_dir).with_context(|| format!("cannot create {}", build_dir.display()))?;
    let file = std::fs::File::open(tarball).with_context(|| format!("cannot open {}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive
        .unpack(build_dir)
        .with_context(|| format!("cannot unpack {}", tarball.display()))?;
    source_dir(build_dir)
}

/// The one directory the tarball holds (`runtime-tools-260e151/`).
fn source_dir(build_dir: &Path) -> anyhow::Result<PathBuf> {
    let entries =
        std::fs::read_dir(build_dir).with_context(|| format!("cannot read {}", build_dir.display()))?;
    let dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Makefile").exists())
        .collect();
    match dirs.as_slice() {
        [dir] => Ok(dir.clone()),
        _ => bail!(
            "{} holds no single source tree with a Makefile",
            build_dir.display()
        ),
    }
}

/// `make runtimetest validation-executables`, offline, with Go's caches inside `cache` so the build
/// leaves nothing in the home directory.
fn build(dir: &Path, cache: &Path) -> anyhow::Result<()> {
    let go = find_or_install("go", "golang-go")?;
    let make = find_or_install("make", "make")?;
    println!(
        "xtask: conformance: building the suite with {} (about a minute)",
        go.display()
    );
    let go_bin = go.parent().context("go lives in a directory")?;
    let path = std::env::join_paths(std::iter::once(go_bin.to_path_buf()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))?;
    let mut cmd = Command::new(make);
    cmd.current_dir(dir)
        .args(["runtimetest", "validation-executables"])
        .env("PATH", path)
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", cache.join("go-build"))
        .env("GOPATH", cache.join("go-path"))
        // The Makefile asks `git describe` otherwise, which would describe the workspace around it.
        .env("COMMIT", dir.file_name().unwrap_or_default());
    util::run(&mut cmd).context("cannot build the conformance suite")
}

/// `program` from PATH (or Go's own directory), installed from Debian's `package` when root on
/// Debian/Ubuntu; otherwise a one-line error saying what to run.
pub fn find_or_install(program: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = find_program(program) {
        return Ok(path);
    }
    if !can_apt_install() {
        bail!("{program} is missing: run `sudo apt-get install -y {package}`");
    }
    apt_install(package)?;
    find_program(program).with_context(|| format!("{package} is installed, yet there is no {program}"))
}

/// Looks `program` up in PATH, then where Go is often installed outside it.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/lib/go/bin".into(),
            "/usr/local/go/bin".into(),
            "/usr/sbin".into(),
        ])
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The built validation programs: every `validation/<name>/<name>.t`.
fn list_programs(dir: &Path) -> anyhow::Result<Vec<String>> {
    let validation = dir.join("validation");
    let entries =
        std::fs::read_dir(&validation).with_context(|| format!("cannot read {}", validation.display()))?;
    let mut programs: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_executable(&validation.join(name).join(format!("{name}.t"))))
        .collect();
    programs.sort();
    if programs.is_empty() {
        bail!("the suite in {} has no built validation programs", dir.display());
    }
    Ok(programs)
}
