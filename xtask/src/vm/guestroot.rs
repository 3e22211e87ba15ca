//! Where the guest finds its test binaries: the host's root shared read-only over 9p (the tests
//! run at the very paths cargo built them at, with every host tool beside them), or, for a kernel
//! without 9p or overlayfs, a copy packed into the initramfs at those same absolute paths: the test
//! binaries and the workspace's binaries they run (built static, so they need no C library, and
//! stripped), the files the tests read, the host programs they run (static busybox with its applets,
//! setpriv with the libraries ld.so(8) loads for it), a minimal `/etc` and a `/tmp`. The copy is a
//! third newc archive between the base and the run's, cached under a hash of its inputs like the base
//! (Documentation/driver-api/early-userspace/buffer-format.rst; cpio(5)).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::cpio;
use crate::ci::{TestBinary, parse_test_binaries};
use crate::util;

/// The guest's architecture: qemu-system-x86_64 runs x86-64 whatever the host is, and an explicit
/// `--target` keeps `RUSTFLAGS` off build scripts and proc macros.
pub const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// `--root`: how the guest gets the test binaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RootMode {
    /// Share when the kernel can (9p, virtio and overlayfs, built in or as modules), else copy.
    #[default]
    Auto,
    /// The host's `/` read-only over 9p, with a tmpfs overlay for writes.
    Share,
    /// Static test binaries packed into the initramfs.
    Copy,
}

/// The root the guest runs the tests in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Share,
    Copy,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Share => "share",
            Root::Copy => "copy",
        }
    }
}

// ANCHOR: choose
/// The root to use, and why in a few words. `missing_share` lists the kernel's missing features
/// that sharing needs (`9P_FS` ...); asking for `share` on such a kernel is an error.
pub fn choose(requested: RootMode, missing_share: &[&str]) -> Result<(Root, String), String> {
    let missing = || {
        let symbols: Vec<String> = missing_share.iter().map(|s| format!("CONFIG_{s}")).collect();
        symbols.join(", ")
    };
    match (requested, missing_share.is_empty()) {
        (RootMode::Copy, _) => Ok((Root::Copy, "--root copy".into())),
        (RootMode::Share, true) => Ok((Root::Share, "--root share".into())),
        (RootMode::Share, false) => Err(format!(
            "--root share needs 9p and overlayfs, but the kernel lacks {}; use --root copy",
            missing()
        )),
        (RootMode::Auto, true) => Ok((
            Root::Share,
            "the kernel has 9p, virtio and overlayfs; --root copy packs the tests instead".into(),
        )),
        (RootMode::Auto, false) => Ok((
            Root::Copy,
            format!(
                "the kernel lacks {}, so the tests are packed into the initramfs",
                missing()
            ),
        )),
    }
}
// ANCHOR_END: choose

/// How the copied binaries lose their symbols: binutils' `strip` after the build when it is
/// installed, else the linker, asked by rustc's `-C strip=symbols`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strip {
    Binutils(PathBuf),
    Rustc,
}

impl Strip {
    pub fn detect() -> Strip {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("strip"))
            .find(|p| p.is_file())
            .map_or(Strip::Rustc, Strip::Binutils)
    }

    /// The `RUSTFLAGS` of the static build.
    pub fn rustflags(&self) -> &'static str {
        match self {
            Strip::Binutils(_) => "-C target-feature=+crt-static",
            Strip::Rustc => "-C target-feature=+crt-static -C strip=symbols",
        }
    }
}

/// What the static build made: the test executables, and the workspace's binaries (which the
/// integration tests run by the absolute path cargo compiled into them, `CARGO_BIN_EXE_<name>`).
#[derive(Debug)]
pub struct StaticBuild {
    pub tests: Vec<TestBinary>,
    pub bins: Vec<PathBuf>,
}

/// `cargo test --no-run` for [`GUEST_TARGET`], static, in `target/vm-static` so that the host's own
/// builds keep their flags and stay fresh. `packages` empty means the workspace but xtask.
pub fn build_static(root: &Path, packages: &[String], strip: &Strip) -> anyhow::Result<StaticBuild> {
    let mut cmd = util::cargo();
    cmd.current_dir(root)
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "--target",
            GUEST_TARGET,
        ])
        .env("CARGO_TARGET_DIR", util::target_dir(root).join("vm-static"))
        .env("RUSTFLAGS", strip.rustflags())
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stderr(Stdio::inherit());
    util::link_libseccomp_statically(&mut cmd)?;
    if packages.is_empty() {
        cmd.args(["--workspace", "--exclude", "xtask"]);
    }
    for package in packages {
        cmd.args(["-p", package]);
    }
    let json = util::output(&mut cmd).context("cannot build the static test binaries")?;
    Ok(StaticBuild {
        tests: parse_test_binaries(&json)?,
        bins: parse_bin_executables(&json)?,
    })
}

/// The executables of the `bin` targets in cargo's JSON messages.
pub fn parse_bin_executables(json: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut bins = Vec::new();
    for line in json.lines().filter(|l| l.starts_with('{')) {
        let msg: serde_json::Value = serde_json::from_str(line).context("cargo printed malformed JSON")?;
        let is_bin = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] == true || !is_bin {
            continue;
        }
        if let Some(exe) = msg["executable"].as_str() {
            bins.push(exe.into());
        }
    }
    Ok(bins)
}

/// Workspace files outside the package directories that tests read: pid-demo's test compares the
/// demo's output with the chapter's recorded transcript.
pub const WORKSPACE_TEST_DATA: &[&str] = &["book/src/transcripts"];

/// The minimal `/etc`: the two users the runs are (anything that looks up a name).
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
/// Readable by root only, as everywhere: user-demo shows that root in a user namespace still cannot
/// read it.
const SHADOW: &str = "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";

/// One thing in the copied root, at a path relative to `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir {
        mode: u32,
    },
    /// A host file, at the same path in the guest; executables are stripped.
    Copy {
        source: PathBuf,
        mode: u32,
        strip: bool,
    },
    Text {
        text: &'static str,
        mode: u32,
    },
    /// A symbolic link to `target` (a busybox applet).
    Symlink {
        target: String,
    },
}

/// What goes into the copied root.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Test executables (stripped when `strip_tests`).
    pub tests: Vec<PathBuf>,
    pub strip_tests: bool,
    /// The workspace's binaries (always stripped).
    pub bins: Vec<PathBuf>,
    /// Directories whose files the tests read (package directories, [`WORKSPACE_TEST_DATA`]).
    pub data_dirs: Vec<PathBuf>,
    /// Host programs the tests run, at their guest paths ([`host_tools`]).
    pub host_tools: Vec<(String, Entry)>,
}

// ANCHOR: file_list
/// The copied root: guest path (relative to `/`) to entry, sorted, so parents come first and the
/// same inputs give the same archive.
pub fn file_list(inputs: &Inputs) -> anyhow::Result<BTreeMap<String, Entry>> {
    let mut list = BTreeMap::new();
    let key = |p: &Path| p.to_string_lossy().trim_start_matches('/').to_owned();
    for dir in &inputs.data_dirs {
        for file in data_files(dir)? {
            let mode = if fs::metadata(&file)?.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            list.insert(
                key(&file),
                Entry::Copy {
                    source: file,
                    mode,
                    strip: false,
                },
            );
        }
    }
    let executables = inputs
        .tests
        .iter()
        .map(|t| (t, inputs.strip_tests))
        .chain(inputs.bins.iter().map(|b| (b, true)));
    for (exe, strip) in executables {
        if !exe.is_absolute() {
            bail!("{} is not an absolute path", exe.display());
        }
        list.insert(
            key(exe),
            Entry::Copy {
                source: exe.clone(),
                mode: 0o755,
                strip,
            },
        );
    }
    for (guest, entry) in &inputs.host_tools {
        list.insert(guest.trim_start_matches('/').to_owned(), entry.clone());
    }
    list.insert(
        "etc/passwd".into(),
        Entry::Text {
            text: PASSWD,
            mode: 0o644,
        },
    );
    list.insert(
        "etc/group".into(),
        Entry::Text {
            text: GROUP,
            mode: 0o644,
        },
    );
    list.insert(
        "etc/shadow".into(),
        Entry::Text {
            text: SHADOW,
            mode: 0o640,
        },
    );
    // Sticky and world-writable, as every program expects of /tmp.
    list.insert("tmp".into(), Entry::Dir { mode: 0o1777 });
    Ok(list)
}
// ANCHOR_END: file_list

/// Refuses what cannot run in a copied root: a script (there is no interpreter) or a dynamically
/// linked executable (an ELF file with a `PT_INTERP` program header, elf(5): there is no ld.so and
/// no C library).
pub fn check_runs_alone(exe: &Path) -> anyhow::Result<()> {
    let bytes = fs::read(exe).with_context(|| format!("cannot read {}", exe.display()))?;
    if bytes.starts_with(b"#!") {
        bail!(
            "{} is a script, and a copied root has no interpreter; use --root share",
            exe.display()
        );
    }
    if util::linkage(&bytes) == util::Linkage::Dynamic {
        bail!(
            "{} is dynamically linked, and a copied root has no C library; build it with \
             -C target-feature=+crt-static, or use --root share",
            exe.display()
        );
    }
    Ok(())
}

/// The statically linked busybox the tests build their container roots from (combined's tests'
/// `BUSYBOX`), which also gives the copied root a shell and the usual tools.
pub use crate::rootfs::BUSYBOX;

/// Host programs a test runs by name that busybox has no applet for (or a poorer one): user-demo's
/// CLI test drops to uid 65534 with util-linux's `setpriv --reuid`, which busybox's applet lacks;
/// its introspection test runs util-linux's `lsns` (no applet) and `nsenter` (`--preserve-credentials`).
pub const HOST_PROGRAMS: &[&str] = &["/usr/bin/setpriv", "/usr/bin/lsns", "/usr/bin/nsenter"];

// ANCHOR: host_tools
/// The host programs the tests run, for a copied root, so that it runs every test the shared root
/// runs: [`BUSYBOX`] with each of its applets (`busybox --list`) linked beside it in `/bin` (a shell
/// for scripts, `cat` and `ps` for host-view containers), then each of [`HOST_PROGRAMS`] at its path
/// with the shared libraries and loader `ldd` lists for it, at the paths it lists them. A program the
/// host lacks is left out, as the shared root would lack it too.
pub fn host_tools() -> anyhow::Result<Vec<(String, Entry)>> {
    let mut tools = Vec::new();
    let copy = |source: &Path| Entry::Copy {
        source: fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf()),
        mode: 0o755,
        strip: false,
    };
    let programs: Vec<&Path> = HOST_PROGRAMS
        .iter()
        .map(Path::new)
        .filter(|p| p.is_file())
        .collect();
    let busybox = Path::new(BUSYBOX);
    if busybox.is_file() {
        check_runs_alone(busybox)?;
        tools.push((BUSYBOX.to_owned(), copy(busybox)));
        let list = util::output(Command::new(busybox).arg("--list"))
            .with_context(|| format!("cannot list the applets of {BUSYBOX}"))?;
        let dir = busybox.parent().unwrap_or(Path::new("/"));
        let real_ones: Vec<&std::ffi::OsStr> = programs.iter().filter_map(|p| p.file_name()).collect();
        for applet in list
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && !a.contains('/'))
        {
            if applet != "busybox" && !real_ones.contains(&std::ffi::OsStr::new(applet)) {
                let target = "busybox".to_owned();
                tools.push((dir.join(applet).display().to_string(), Entry::Symlink { target }));
            }
        }
    }
    for program in programs {
        tools.push((program.display().to_string(), copy(program)));
        let ldd = util::output(Command::new("ldd").arg(program))
            .with_context(|| format!("cannot list the libraries {} loads", program.display()))?;
        for library in shared_libraries(&ldd) {
            tools.push((library.display().to_string(), copy(&library)));
        }
    }
    Ok(tools)
}
// ANCHOR_END: host_tools

/// The files in `ldd` output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and the loader's
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO, which is no file, is left out.
pub fn shared_libraries(ldd: &str) -> Vec<PathBuf> {
    ldd.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, resolved)) => resolved.trim(),
                None => line.trim(),
            };
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The files under `dir`, recursively, leaving out build output (`target`) and hidden entries
/// (`.git`); a missing directory has none.
pub fn data_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(files);
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            files.extend(data_files(&entry.path())?);
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A hash of everything the archive would hold: host files by path, size, mtime and mode (cheap,
/// and cargo rewrites a binary it rebuilds), so an unchanged build is not stripped and packed again.
fn key(list: &BTreeMap<String, Entry>, strip: &Strip) -> anyhow::Result<u64> {
    let mut h = DefaultHasher::new();
    matches!(strip, Strip::Rustc).hash(&mut h);
    for (path, entry) in list {
        path.hash(&mut h);
        match entry {
            Entry::Dir { mode } => mode.hash(&mut h),
            Entry::Text { text, mode } => (text, mode).hash(&mut h),
            Entry::Symlink { target } => target.hash(&mut h),
            Entry::Copy { source, mode, strip } => {
                let meta =
                    fs::metadata(source).with_context(|| format!("cannot read {}", source.display()))?;
                (source, mode, strip, meta.len(), meta.mtime(), meta.mtime_nsec()).hash(&mut h);
            }
        }
    }
    Ok(h.finish())
}

/// The cached archive of `list`, written when its inputs changed. Returns its path and whether it
/// was (re)built.
pub fn pack(list: &BTreeMap<String, Entry>, strip: &Strip, cache: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let path = cache.join(format!("copy-{:016x}.cpio", key(list, strip)?));
    if path.is_file() {
        return Ok((path, false));
    }
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let stripped = partial.with_extension("stripped");
    let file = File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
    let mut w = cpio::Writer::new(BufWriter::new(file));
    for (guest, entry) in list {
        match entry {
            Entry::Dir { mode } => w.dir(guest, *mode)?,
            Entry::Text { text, mode } => w.file(guest, *mode, text.as_bytes())?,
            Entry::Symlink { target } => w.symlink(guest, target)?,
            Entry::Copy {
                source,
                mode,
                strip: wants_strip,
            } => {
                let data = match strip {
                    Strip::Binutils(tool) if *wants_strip => strip_copy(tool, source, &stripped)?,
                    _ => fs::read(source).with_context(|| format!("cannot read {}", source.display()))?,
                };
                w.file(guest, *mode, &data)?;
            }
        }
    }
    w.finish()?.flush()?;
    let _ = fs::remove_file(&stripped);
    fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    remove_stale(cache, &path);
    Ok((path, true))
}

/// `strip --strip-all -o scratch source`, leaving cargo's file alone; returns the stripped bytes.
fn strip_copy(tool: &Path, source: &Path, scratch: &Path) -> anyhow::Result<Vec<u8>> {
    util::run(
        Command::new(tool)
            .arg("--strip-all")
            .arg("-o")
            .arg(scratch)
            .arg(source),
    )?;
    fs::read(scratch).with_context(|| format!("cannot read {}", scratch.display()))
}

/// Removes the copied roots of earlier inputs, so the cache holds one.
fn remove_stale(cache: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("copy-") && entry.path() != keep {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_shares_when_the_kernel_can() {
        let (root, why) = choose(RootMode::Auto, &[]).unwrap();
        assert_eq!(root, Root::Share);
        assert!(why.contains("has 9p"), "{why}");
    }

    #[test]
    fn auto_copies_when_9p_is_missing_and_says_so() {
        let (root, why) = choose(RootMode::Auto, &["9P_FS", "OVERLAY_FS"]).unwrap();
        assert_eq!(root, Root::Copy);
        assert!(why.contains("lacks CONFIG_9P_FS, CONFIG_OVERLAY_FS"), "{why}");
    }

    #[test]
    fn an_override_wins() {
        assert_eq!(choose(RootMode::Copy, &[]).unwrap().0, Root::Copy);
        assert_eq!(choose(RootMode::Copy, &["9P_FS"]).unwrap().0, Root::Copy);
        assert_eq!(choose(RootMode::Share, &[]).unwrap().0, Root::Share);
        let err = choose(RootMode::Share, &["NET_9P_VIRTIO"]).unwrap_err();
        assert!(
            err.contains("lacks CONFIG_NET_9P_VIRTIO; use --root copy"),
            "{err}"
        );
    }

    #[test]
    fn the_static_build_flags_strip_only_without_binutils() {
        assert!(
            !Strip::Binutils("/usr/bin/strip".into())
                .rustflags()
                .contains("strip")
        );
        assert!(Strip::Rustc.rustflags().contains("+crt-static -C strip=symbols"));
    }

    const CARGO_JSON: &str = r#"{"reason":"compiler-artifact","manifest_path":"/w/uts-demo/Cargo.toml","target":{"kind":["lib"],"name":"uts_demo"},"profile":{"test":false},"executable":null}
{"reason":"compiler-artifact","manifest_path":"/w/uts-demo/Cargo.toml","target":{"kind":["bin"],"name":"uts-demo"},"profile":{"test":false},"executable":"/w/target/vm-static/x86_64-unknown-linux-gnu/debug/uts-demo"}
{"reason":"compiler-artifact","manifest_path":"/w/uts-demo/Cargo.toml","target":{"kind":["bin"],"name":"uts-demo"},"profile":{"test":true},"executable":"/w/target/vm-static/x86_64-unknown-linux-gnu/debug/deps/uts_demo-1"}
{"reason":"compiler-artifact","manifest_path":"/w/uts-demo/Cargo.toml","target":{"kind":["test"],"name":"uts"},"profile":{"test":true},"executable":"/w/target/vm-static/x86_64-unknown-linux-gnu/debug/deps/uts-2"}
{"reason":"build-finished","success":true}
"#;

    #[test]
    fn bins_are_the_non_test_bin_artifacts() {
        assert_eq!(
            parse_bin_executables(CARGO_JSON).unwrap(),
            [PathBuf::from(
                "/w/target/vm-static/x86_64-unknown-linux-gnu/debug/uts-demo"
            )]
        );
        assert_eq!(parse_test_binaries(CARGO_JSON).unwrap().len(), 2);
    }

    /// A scratch directory (removed on drop) to make files in.
    struct Scratch(tempfile::TempDir);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = tempfile::Builder::new()
                .prefix(&format!("xtask-guestroot-{name}-"))
                .tempdir()
                .unwrap();
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            self.0.path()
        }

        fn file(&self, rel: &str, mode: u32) -> PathBuf {
            let path = self.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, rel).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    #[test]
    fn the_list_holds_tests_bins_package_files_etc_and_tmp_at_host_paths() {
        let s = Scratch::new("list");
        let manifest = s.file("pkg/Cargo.toml", 0o644);
        let masks = s.file("pkg/transcript.masks", 0o644);
        let script = s.file("pkg/tests/run.sh", 0o755);
        s.file("pkg/target/debug/big", 0o755);
        s.file("pkg/.git/HEAD", 0o644);
        let test = s.file("target/deps/uts-2", 0o755);
        let bin = s.file("target/uts-demo", 0o755);
        let list = file_list(&Inputs {
            tests: vec![test.clone()],
            strip_tests: true,
            bins: vec![bin.clone()],
            data_dirs: vec![s.path().join("pkg"), s.path().join("no-such-dir")],
            host_tools: vec![(
                "/bin/sh".into(),
                Entry::Symlink {
                    target: "busybox".into(),
                },
            )],
        })
        .unwrap();
        let at = |p: &Path| list[p.to_str().unwrap().trim_start_matches('/')].clone();
        let copy = |source: &PathBuf, mode, strip| Entry::Copy {
            source: source.clone(),
            mode,
            strip,
        };
        assert_eq!(at(&test), copy(&test, 0o755, true));
        assert_eq!(at(&bin), copy(&bin, 0o755, true));
        assert_eq!(at(&manifest), copy(&manifest, 0o644, false));
        assert_eq!(at(&masks), copy(&masks, 0o644, false));
        assert_eq!(at(&script), copy(&script, 0o755, false));
        assert!(matches!(&list["etc/passwd"], Entry::Text { text, .. } if text.contains(":65534:")));
        assert!(matches!(&list["etc/group"], Entry::Text { text, .. } if text.contains(":65534:")));
        assert_eq!(list["tmp"], Entry::Dir { mode: 0o1777 });
        assert!(matches!(&list["etc/shadow"], Entry::Text { mode: 0o640, .. }));
        assert_eq!(
            list["bin/sh"],
            Entry::Symlink {
                target: "busybox".into()
            }
        );
        assert_eq!(list.len(), 10, "{:#?}", list.keys());
    }

    #[test]
    fn ldd_output_gives_the_libraries_and_the_loader() {
        let ldd = "\tlinux-vdso.so.1 (0x00007fb83364a000)
\tlibcap-ng.so.0 => /lib/x86_64-linux-gnu/libcap-ng.so.0 (0x00007fb83361d000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb83343b000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fb83364c000)
";
        assert_eq!(
            shared_libraries(ldd),
            [
                "/lib/x86_64-linux-gnu/libcap-ng.so.0",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert!(shared_libraries("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn host_tools_are_busybox_with_its_applets_and_setpriv_with_its_libraries() {
        if !Path::new(BUSYBOX).is_file() || !Path::new(HOST_PROGRAMS[0]).is_file() {
            // The host lacks them; cargo xtask ci installs busybox-static, and util-linux is Debian's.
            eprintln!("skipped: this host has no {BUSYBOX} or {}", HOST_PROGRAMS[0]);
            return;
        }
        let tools: BTreeMap<String, Entry> = host_tools().unwrap().into_iter().collect();
        assert!(matches!(&tools[BUSYBOX], Entry::Copy { strip: false, .. }));
        assert_eq!(
            tools["/bin/sh"],
            Entry::Symlink {
                target: "busybox".into()
            }
        );
        assert_eq!(
            tools["/bin/ps"],
            Entry::Symlink {
                target: "busybox".into()
            }
        );
        assert!(
            !tools.contains_key("/bin/setpriv"),
            "util-linux's setpriv, not the applet"
        );
        assert!(matches!(&tools["/usr/bin/setpriv"], Entry::Copy { .. }));
        let libc = tools
            .keys()
            .find(|k| k.contains("/libc.so"))
            .expect("setpriv's C library");
        assert!(matches!(&tools[libc], Entry::Copy { source, .. } if source.is_file()));
        assert!(tools.keys().any(|k| k.contains("ld-linux")), "the loader");
    }

    #[test]
    fn scripts_and_dynamic_executables_cannot_run_alone() {
        let s = Scratch::new("alone");
        let script = s.file("run.sh", 0o755);
        fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        let err = check_runs_alone(&script).unwrap_err().to_string();
        assert!(err.contains("is a script"), "{err}");
        // This very test binary is an ordinary, dynamically linked host build.
        let me = std::env::current_exe().unwrap();
        let err = check_runs_alone(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn a_relative_executable_is_refused() {
        let inputs = Inputs {
            tests: vec!["target/debug/deps/x".into()],
            ..Inputs::default()
        };
        assert!(file_list(&inputs).is_err());
    }

    #[test]
    fn the_archive_is_packed_once_per_content() {
        let s = Scratch::new("pack");
        let test = s.file("bin/test", 0o755);
        let cache = s.path().join("cache");
        let list = file_list(&Inputs {
            tests: vec![test.clone()],
            ..Inputs::default()
        })
        .unwrap();
        let (first, built) = pack(&list, &Strip::Rustc, &cache).unwrap();
        assert!(built);
        assert_eq!(
            pack(&list, &Strip::Rustc, &cache).unwrap(),
            (first.clone(), false)
        );
        fs::write(&test, "a rebuilt test binary").unwrap();
        let (changed, built) = pack(&list, &Strip::Rustc, &cache).unwrap();
        assert!(built && changed != first && !first.exists());
        let bytes = fs::read(&changed).unwrap();
        assert!(bytes.windows(21).any(|w| w == b"a rebuilt test binary"));
        assert!(bytes.windows(11).any(|w| w == b"etc/passwd\0"));
    }
}
