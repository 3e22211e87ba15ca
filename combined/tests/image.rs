//! `combined run --image`: the image cache under load and under attack. Fifty first runs at once,
//! Ctrl-C in the middle of an unpack, a cache directory other users can reach, read-only directories
//! unpacked without root, and error messages about hostile files. tar(5), flock(2), signalfd(2).
//!
//! Most tests run the launcher binary with `XDG_CACHE_HOME` in a temporary directory; those that need
//! no launcher call `combined::image::prepare` directly. They run as root and as uid 65534; where the
//! two differ, the test says why.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Outcome, TempDir};

/// An uncompressed tarball written entry by entry, with explicit modes and root as every owner.
struct Tarball(tar::Builder<fs::File>);

impl Tarball {
    fn create(path: &Path) -> Tarball {
        Tarball(tar::Builder::new(
            fs::File::create(path).expect("create the tarball"),
        ))
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header
    }

    fn dir(&mut self, path: &str, mode: u32) -> &mut Tarball {
        let mut header = Tarball::header(tar::EntryType::Directory, mode, 0);
        self.0
            .append_data(&mut header, path, std::io::empty())
            .expect("append a directory");
        self
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Tarball {
        let mut header = Tarball::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0
            .append_data(&mut header, path, data)
            .expect("append a file");
        self
    }

    fn hard_link(&mut self, path: &str, target: &str) -> &mut Tarball {
        let mut header = Tarball::header(tar::EntryType::Link, 0o644, 0);
        self.0
            .append_link(&mut header, path, target)
            .expect("append a hard link");
        self
    }

    fn finish(self) {
        self.0.into_inner().expect("finish the tarball");
    }
}

/// A tarball of a directory as it is (the busybox rootfs), symlinks kept as symlinks.
fn tarball_of(dir: &Path, out: &Path) {
    let mut tar = tar::Builder::new(fs::File::create(out).expect("create the tarball"));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir).expect("pack the directory");
    tar.into_inner().expect("finish the tarball");
}

/// `len` bytes that no compressor shrinks, the same for the same seed (xorshift64), so that a failure
/// can be reproduced.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// `combined run --image <image> -- <command>` with its cache in `cache`.
fn run_image(image: &Path, cache: &Path, command: &[&str]) -> Command {
    let mut args = vec!["run", "--image", image.to_str().expect("a UTF-8 path"), "--"];
    args.extend_from_slice(command);
    let mut cmd = common::combined(&args);
    cmd.env("XDG_CACHE_HOME", cache);
    cmd
}

/// Where the launcher keeps unpacked images under `XDG_CACHE_HOME=cache`.
fn images_in(cache: &Path) -> PathBuf {
    cache.join("combined").join("images")
}

/// The names in a cache directory, complete entries and unfinished (`.partial-*`) unpacks alike.
fn listing(images: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(images) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| {
            e.expect("a cache entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn partials(images: &Path) -> Vec<String> {
    listing(images)
        .into_iter()
        .filter(|name| name.starts_with(".partial-"))
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Whether `text` is printable ASCII only: nothing a terminal would interpret, nothing it would mangle.
fn printable_ascii(text: &str) -> bool {
    text.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

// ---- 1. concurrent first runs ------------------------------------------------------------------------

#[test]
fn fifty_first_runs_at_once_unpack_the_image_once() {
    let test = "fifty_first_runs_at_once_unpack_the_image_once";
    if !common::have_busybox(test) || !common::namespaces(test) {
        return;
    }
    let rootfs = common::Rootfs::new();
    // Ballast, so that the unpack takes long enough (a good part of a second) for the fifty runs to
    // overlap whatever their start-up costs: an image of busybox alone is unpacked in milliseconds.
    // Scaled with the runs: where fewer run (an emulated guest), each file is as much slower to
    // unpack as a start is, so a fifth of the ballast still overlaps a fifth of the runs.
    let ballast = rootfs.path().join("usr/share/ballast");
    fs::create_dir_all(&ballast).expect("mkdir ballast");
    for n in 0..nskit::testing::scaled(1500) as u64 {
        fs::write(ballast.join(n.to_string()), noise(1024, n)).expect("write ballast");
    }
    let work = TempDir::new("image-race");
    let image = work.path().join("busybox.tar");
    tarball_of(rootfs.path(), &image);
    let cache = work.path().join("cache");

    // All fifty find no entry and reach the cache at about the same time: one unpacks, the others wait
    // on its lock and then use what it unpacked.
    // Fifty on the host; fewer where NS_TEST_SCALE asks (an emulated guest), still all at once.
    let runs = nskit::testing::scaled(50);
    let launchers: Vec<Child> = (0..runs)
        .map(|_| {
            run_image(&image, &cache, &["true"])
                .spawn()
                .expect("spawn combined")
        })
        .collect();
    // Fifty launchers share two CPUs (and, in `cargo xtask test-vm`, an emulated machine), and the
    // first of them unpacks for all: each gets two minutes rather than the usual deadline.
    let outcomes: Vec<Outcome> = launchers
        .into_iter()
        .map(|child| common::finish_within(child, Duration::from_secs(120)))
        .collect();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.code() != 0).collect();
    assert!(
        failed.is_empty(),
        "{} of {runs} runs failed, the first: {:#?}",
        failed.len(),
        failed.first()
    );
    let images = images_in(&cache);
    let names = listing(&images);
    assert_eq!(names.len(), 1, "one entry and no partial unpack: {names:?}");
    assert!(partials(&images).is_empty(), "{names:?}");
}

/// Attack: the image's path is a link its owner flips between their tarball and a trusted one. The
/// cache entry must be named after the tarball that was read: if the name came from one look at the
/// path and the content from another, the trusted tarball's entry would hold the other's files, and
/// every later run of it would start from them.
#[test]
fn an_image_path_that_changes_during_a_run_never_poisons_the_cache() {
    let test = "an_image_path_that_changes_during_a_run_never_poisons_the_cache";
    if !common::have_busybox(test) || !common::namespaces(test) {
        return;
    }
    let work = TempDir::new("image-flip");
    let [good, evil] = ["good", "evil"].map(|name| {
        let rootfs = common::Rootfs::new();
        fs::write(rootfs.path().join("marker"), name).expect("write the marker");
        let image = work.path().join(format!("{name}.tar"));
        tarball_of(rootfs.path(), &image);
        image
    });
    let link = work.path().join("image.tar");
    let cache = work.path().join("cache");
    let flipping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flipper = {
        let (flipping, link, spare) = (flipping.clone(), link.clone(), work.path().join("next"));
        let (good, evil) = (good.clone(), evil.clone());
        std::thread::spawn(move || {
            let mut turn = 0u64;
            while flipping.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::remove_file(&spare);
                let target = if turn % 2 == 0 { &good } else { &evil };
                std::os::unix::fs::symlink(target, &spare).expect("make the link");
                fs::rename(&spare, &link).expect("turn the link");
                turn += 1;
            }
        })
    };
    // Forty runs on the host, fewer in an emulated guest: before the fix, about one in four lost.
    for _ in 0..nskit::testing::scaled(40) {
        let out = common::finish(
            run_image(&link, &cache, &["true"])
                .spawn()
                .expect("spawn combined"),
        );
        assert!(out.code() == 0 || out.stderr.contains("cannot read"), "{out:?}");
    }
    flipping.store(false, std::sync::atomic::Ordering::Relaxed);
    flipper.join().expect("the flipper");
    for (image, marker) in [(&good, "good"), (&evil, "evil")] {
        let out = common::finish(
            run_image(image, &cache, &["cat", "/marker"])
                .spawn()
                .expect("spawn"),
        );
        assert_eq!(
            out.ok(),
            marker,
            "the cache entry of {} holds another tarball's files",
            image.display()
        );
    }
}

// ---- 2. Ctrl-C during an unpack -----------------------------------------------------------------------

/// A tarball of about 48 MiB of incompressible data in 12,000 small files: writing that many files
/// takes long enough (most of a second) for a test to interrupt the unpack in the middle.
fn big_tarball(path: &Path) {
    let mut tar = Tarball::create(path);
    let data = noise(4096 * 120, 42);
    for dir in 0..100 {
        tar.dir(&format!("d{dir}"), 0o755);
        for file in 0..120 {
            let chunk = &data[file * 4096..(file + 1) * 4096];
            tar.file(&format!("d{dir}/f{file}"), 0o644, chunk);
        }
    }
    tar.finish();
}

/// Waits until an unpack has written something into its partial directory: by then it holds SIGINT
/// back (it blocks the signal before it makes the directory), so a Ctrl-C is noticed, not fatal.
fn wait_for_an_unpack_in_progress(launcher: &mut Child, images: &Path) {
    let start = Instant::now();
    loop {
        let busy = partials(images)
            .iter()
            .any(|name| fs::read_dir(images.join(name)).is_ok_and(|mut d| d.next().is_some()));
        if busy {
            return;
        }
        if let Some(status) = launcher.try_wait().expect("wait for combined") {
            panic!("the launcher ended ({status}) before its unpack could be interrupted");
        }
        assert!(start.elapsed() < common::DEADLINE, "no unpack started");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A PID that no process has: one of a process that has been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new(common::BUSYBOX)
        .arg("true")
        .spawn()
        .expect("spawn busybox true");
    let pid = child.id();
    child.wait().expect("reap it");
    pid
}

#[test]
fn ctrl_c_during_an_unpack_keeps_nothing_and_leftovers_are_removed_later() {
    let work = TempDir::new("image-interrupt");
    let image = work.path().join("big.tar");
    big_tarball(&image);
    let cache = work.path().join("cache");
    let images = images_in(&cache);

    // The launcher is still planning when the signal comes: no container, no namespace exists yet, so
    // this needs no privileges at all.
    let mut launcher = run_image(&image, &cache, &["true"])
        .spawn()
        .expect("spawn combined");
    wait_for_an_unpack_in_progress(&mut launcher, &images);
    let pid = nix::unistd::Pid::from_raw(launcher.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("send SIGINT");
    let out = common::finish(launcher);
    let line = out.launcher_error();
    assert!(line.contains("interrupted"), "{out:#?}");
    assert!(line.contains("nothing was kept"), "{out:#?}");
    assert_eq!(
        listing(&images),
        Vec::<String>::new(),
        "no entry, no partial unpack"
    );

    // What a run killed outright (SIGKILL, a power cut) or an older launcher left: a partial unpack,
    // with a read-only directory in it as an interrupted unpack of a Fedora image leaves. The next
    // unpack into this cache removes it: no live unpack owns it, since every one holds the cache's
    // lock while its partial directory exists.
    let stale = images.join(format!(".partial-{}", dead_pid()));
    fs::create_dir_all(stale.join("usr/lib")).expect("plant a partial unpack");
    fs::write(stale.join("usr/lib/libx.so"), "half").expect("plant a file");
    chmod(&stale.join("usr/lib"), 0o555);
    let small = work.path().join("small.tar");
    let mut tar = Tarball::create(&small);
    tar.file("etc/hostname", 0o644, b"small\n");
    tar.finish();
    let entry = combined::image::prepare(&small, &images).expect("the next unpack");
    assert_eq!(
        fs::read(entry.join("etc/hostname")).expect("unpacked"),
        b"small\n"
    );
    assert!(partials(&images).is_empty(), "{:?}", listing(&images));
}

// ---- 3. a cache other users can reach ---------------------------------------------------------------

#[test]
fn a_cache_other_users_can_change_is_refused() {
    let work = TempDir::new("image-open");
    let image = work.path().join("small.tar");
    let mut tar = Tarball::create(&image);
    tar.file("bin/hello", 0o755, b"hello\n");
    tar.finish();

    // A world-writable directory without the sticky bit: anyone can rename what is in it and put a
    // rootfs of their own in its place, which the launcher (as root) would then run.
    let open = work.path().join("open");
    fs::create_dir(&open).expect("mkdir");
    chmod(&open, 0o777);
    let out = common::output(&mut run_image(&image, &open.join("cache"), &["true"]));
    let line = out.launcher_error();
    assert!(
        line.contains(&format!("\"{}\"", open.display())),
        "names the directory: {line}"
    );
    assert!(line.contains("written by other users"), "says why: {line}");
    assert!(line.contains("XDG_CACHE_HOME"), "says what to do: {line}");
    assert!(
        common::tree(&open).is_empty(),
        "nothing made there: {:?}",
        common::tree(&open)
    );

    // A directory of another user's, as `sudo` keeping the user's HOME gives root: its owner can
    // swap what is in it. Only root can make a directory belong to someone else.
    if nskit::userns::is_root() {
        let theirs = work.path().join("theirs");
        fs::create_dir(&theirs).expect("mkdir");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        let out = common::output(&mut run_image(&image, &theirs.join("cache"), &["true"]));
        let line = out.launcher_error();
        assert!(line.contains("belongs to uid 65534"), "{line}");
        assert!(common::tree(&theirs).is_empty(), "{:?}", common::tree(&theirs));
    }
}

#[test]
fn unpacked_files_are_out_of_other_users_reach() {
    let work = TempDir::new("image-setuid");
    let image = work.path().join("setuid.tar");
    let mut tar = Tarball::create(&image);
    tar.dir("usr/bin", 0o755)
        .file("usr/bin/su", 0o4755, b"#!/bin/sh\necho root\n");
    tar.finish();
    let images = images_in(&work.path().join("cache"));

    let entry = combined::image::prepare(&image, &images).expect("unpack");
    let su = entry.join("usr/bin/su");
    assert_eq!(mode(&su), 0o4755, "the image's modes are kept");
    assert_eq!(
        mode(&entry),
        0o700,
        "the entry's top directory is its owner's alone"
    );
    assert_eq!(mode(&images), 0o700);
    assert_eq!(mode(images.parent().expect("combined/")), 0o700);

    // As root the file is a setuid-root binary, and the test's directory above the cache is open to
    // everyone (0755): the cache's directories and the entry's top directory (0700) are what keep
    // uid 65534 out. Before, all were 0755 and uid 65534 ran it as euid 0. As uid 65534 the file is
    // that user's own, setuid to itself; there is nobody to keep out, and no way to test it.
    if nskit::userns::is_root() {
        let reaches = |path: &Path| {
            Command::new(common::BUSYBOX)
                .args([OsStr::new("test"), OsStr::new("-e"), path.as_os_str()])
                .uid(65534)
                .gid(65534)
                .status()
                .expect("run busybox test as uid 65534")
                .success()
        };
        assert!(reaches(&image), "uid 65534 reaches the test's own files");
        assert!(!reaches(&su), "uid 65534 must not reach {}", su.display());
    }
}

// ---- 4. read-only directories, without root ---------------------------------------------------------

#[test]
fn read_only_directories_unpack_without_root() {
    let work = TempDir::new("image-readonly");
    let image = work.path().join("fedora-ish.tar");
    // As Fedora packs /usr/lib: a 0555 directory with files in it. And a directory its owner cannot
    // even look into (0400) above another read-only one: modes must be given back deepest first.
    let mut tar = Tarball::create(&image);
    tar.dir("usr", 0o755)
        .dir("usr/lib", 0o555)
        .file("usr/lib/libx.so", 0o755, b"ELF?")
        .dir("usr/lib/sub", 0o555)
        .file("usr/lib/sub/data", 0o644, b"data")
        .dir("vault", 0o400)
        .dir("vault/inner", 0o555)
        .file("vault/inner/secret", 0o600, b"secret");
    tar.finish();
    let images = images_in(&work.path().join("cache"));

    // Root writes into a 0555 directory anyway (CAP_DAC_OVERRIDE), so as root this passed before the
    // fix too; as uid 65534 the unpack failed at usr/lib/libx.so.
    let entry = combined::image::prepare(&image, &images).expect("unpack");
    assert_eq!(mode(&entry.join("usr/lib")), 0o555);
    assert_eq!(mode(&entry.join("usr/lib/sub")), 0o555);
    assert_eq!(fs::read(entry.join("usr/lib/libx.so")).expect("libx.so"), b"ELF?");
    assert_eq!(fs::read(entry.join("usr/lib/sub/data")).expect("data"), b"data");
    assert_eq!(mode(&entry.join("vault")), 0o400);
    chmod(&entry.join("vault"), 0o700); // To look inside, and so that the test can remove it.
    assert_eq!(mode(&entry.join("vault/inner")), 0o555);
    assert_eq!(
        fs::read(entry.join("vault/inner/secret")).expect("secret"),
        b"secret"
    );
    // Let TempDir's removal in: as uid 65534 it cannot empty a 0555 directory.
    for dir in ["usr/lib/sub", "usr/lib", "vault/inner"] {
        chmod(&entry.join(dir), 0o755);
    }
}

// ---- 5. error messages ------------------------------------------------------------------------------

#[test]
fn an_unpack_error_names_the_entry_and_why() {
    let work = TempDir::new("image-broken-link");
    let image = work.path().join("broken.tar");
    let mut tar = Tarball::create(&image);
    tar.file("etc/hostname", 0o644, b"x\n")
        .hard_link("etc/passwd", "etc/missing");
    tar.finish();
    let images = images_in(&work.path().join("cache"));

    let message = combined::image::prepare(&image, &images)
        .expect_err("a hard link to nothing")
        .to_string();
    assert!(message.contains("\"etc/passwd\""), "names the entry: {message}");
    assert!(
        message.contains("No such file or directory"),
        "says why: {message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(listing(&images).is_empty(), "{:?}", listing(&images));
}

#[test]
fn a_garbage_image_is_reported_in_printable_ascii() {
    let work = TempDir::new("image-garbage");
    let cache = work.path().join("cache");
    let mut images: Vec<PathBuf> = Vec::new();
    for seed in 1..=6 {
        let mut bytes = noise(64 * 1024, seed);
        if seed % 2 == 0 {
            bytes[..2].copy_from_slice(&[0x1f, 0x8b]); // Looks gzip-compressed, is not.
        } else if bytes[0] == 0x1f {
            bytes[0] = 0; // Plain garbage, read as a tar header.
        }
        let path = work.path().join(format!("garbage-{seed}.tar"));
        fs::write(&path, bytes).expect("write garbage");
        images.push(path);
    }
    // A name that is itself hostile: a terminal escape sequence, and a byte that is not UTF-8.
    let hostile = work
        .path()
        .join(OsStr::from_bytes(b"evil\x1b]0;pwned\x07\xff.tar"));
    fs::write(&hostile, noise(4096, 99)).expect("write garbage");

    for image in &images {
        let out = common::output(&mut run_image(image, &cache, &["true"]));
        let line = out.launcher_error();
        assert!(printable_ascii(line), "{line:?}");
    }
    let mut cmd = common::combined(&[]);
    cmd.args([OsStr::new("run"), OsStr::new("--image"), hostile.as_os_str()])
        .args(["--", "true"])
        .env("XDG_CACHE_HOME", &cache);
    let out = common::output(&mut cmd);
    let line = out.launcher_error();
    assert!(printable_ascii(line), "{line:?}");
    assert!(line.contains(r"evil\x1b]0;pwned\x07\xff.tar"), "{line}");
    assert!(partials(&images_in(&cache)).is_empty());
}
