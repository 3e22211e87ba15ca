//! `--image FILE.tar[.gz]`: a root filesystem tarball (`docker export`, an Alpine minirootfs), unpacked
//! once into a cache directory and reused. tar(5); the cache follows the XDG base directory spec; the
//! lock is flock(2), the Ctrl-C check signalfd(2) and sigprocmask(2).
//!
//! - **Contained.** Unpacking never writes outside the cache entry (the tar crate skips `..`
//!   components and checks that each parent stays inside) and skips device nodes and fifos (the
//!   container gets a fresh /dev).
//! - **Private.** Root unpacks an image's setuid-root binaries as they are, and later runs whatever
//!   the cache holds as root. So the cache directory and every directory above it must belong to the
//!   user or root and be closed to everyone else's writes (a sticky directory such as /tmp may be
//!   open above it: there only the owner of a name can rename or remove it); anything else is
//!   refused. The directories made here are 0700, and so is each entry's top directory.
//! - **Whole or absent.** An unpack writes into `.partial-<pid>` and renames it into place when
//!   complete, so an entry that exists is complete and is used without any lock.
//! - **One unpack at a time.** An unpack holds an exclusive flock on `<cache>.lock` (beside the cache,
//!   so that the cache holds entries only) from before its partial directory exists until after it is
//!   renamed or removed. A run that finds no entry waits for the lock, then looks again: of fifty
//!   simultaneous first runs one unpacks and the others use its entry. And a partial directory seen
//!   with the lock held belongs to a run that died (SIGKILL, a power cut), so it is removed; no PID is
//!   compared, so a reused PID can neither keep a leftover alive nor get a live unpack removed.
//! - **Interruptible.** SIGINT, SIGTERM and SIGHUP are blocked while an unpack runs and read from a
//!   signalfd between entries; one that arrived ends the unpack, the partial directory is removed, and
//!   [`ImageError::Interrupted`] says so. Blocking keeps the signal pending until the unpack looks, in
//!   the ordinary flow of the code: no handler, no global flag, nothing to undo but the mask.
//! - **Rootless.** An ordinary user cannot write into a read-only directory (Fedora's 0555
//!   `/usr/lib`), so directories are unpacked with their owner's `rwx` added and given their own mode
//!   back at the end, deepest first.
//! - **Printable.** Paths and the tar crate's messages, which quote names from the archive, reach
//!   error messages escaped to printable ASCII: an image must not write to the user's terminal.

use std::cmp::Reverse;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::private_dir::{self, DirError, Problem, Role};

/// Why an image could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {}: {}", quoted(path), reason(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `entry` is the archive entry being unpacked, none when the archive itself could not be read.
    #[error("{}", unpack_message(path, entry.as_deref(), source))]
    Unpack {
        path: PathBuf,
        entry: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot use cache directory {}: {}; fix it or set XDG_CACHE_HOME to another directory",
        quoted(path),
        reason(source)
    )]
    Cache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `path` is the directory (or the lock file) on the cache's way that another user could change.
    #[error(
        "refusing cache directory {}: {} {problem}, and could swap the images unpacked there; make it \
         yours and private (chown, chmod go-w) or set XDG_CACHE_HOME to a directory only you can write",
        quoted(cache),
        quoted(path)
    )]
    UnsafeCache {
        cache: PathBuf,
        path: PathBuf,
        problem: Problem,
    },
    #[error(
        "unpacking image {} was interrupted by {signal}, and nothing was kept in the cache; run again to unpack it",
        quoted(path)
    )]
    Interrupted { path: PathBuf, signal: Signal },
    #[error("no cache directory: set XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}

/// `$XDG_CACHE_HOME/combined/images`, else `$HOME/.cache/combined/images`.
pub fn cache_root() -> Result<PathBuf, ImageError> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .ok_or(ImageError::NoCacheDir)?;
    Ok(base.join("combined").join("images"))
}

/// The cache entry's name: the file's identity (device, inode, size, modification time), so a changed
/// or replaced tarball gets a new entry and an unchanged one is never read twice. Taken from the open
/// file the unpack then reads, never from the path again: a path someone else can turn (a link they
/// flip between two tarballs) would otherwise put one tarball's content under another's name.
fn cache_key(image: &Path, file: &File) -> Result<String, ImageError> {
    let meta = file.metadata().map_err(|source| ImageError::Read {
        path: image.to_owned(),
        source,
    })?;
    Ok(format!(
        "{:x}-{:x}-{:x}-{:x}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime()
    ))
}

/// Returns the unpacked rootfs for `image`, unpacking it into `cache` first if needed. The returned
/// path has no symlinks in it. Uses `<cache>.lock` beside `cache` to unpack one image at a time.
///
/// Ctrl-C (SIGINT, SIGTERM, SIGHUP) during an unpack is noticed only if it reaches the calling
/// thread: the launcher has no other thread then; a caller that has others must block them there.
pub fn prepare(image: &Path, cache: &Path) -> Result<PathBuf, ImageError> {
    let file = File::open(image).map_err(|source| ImageError::Read {
        path: image.to_owned(),
        source,
    })?;
    let key = cache_key(image, &file)?;
    let cache = private_cache(cache)?;
    let entry = cache.join(key);
    if is_dir(&entry) {
        return Ok(entry);
    }
    let _lock = lock(&cache)?;
    remove_leftovers(&cache);
    // Another run may have unpacked it while this one waited for the lock.
    if is_dir(&entry) {
        return Ok(entry);
    }
    unpack_into(image, file, &cache, &entry)?;
    Ok(entry)
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

// ---- the cache directory: the user's own -------------------------------------------------------------

/// Makes `cache`, and what is missing above it, with mode 0700, having checked that no other user
/// can change a directory on its way (`private_dir`); returns it with symlinks resolved. An existing
/// cache is made 0700 too: an older launcher made it 0755.
fn private_cache(cache: &Path) -> Result<PathBuf, ImageError> {
    let dir = private_dir::make_private(cache).map_err(|error| match error {
        DirError::Io { path, source } => ImageError::Cache { path, source },
        DirError::Unsafe { path, problem } => ImageError::UnsafeCache {
            cache: cache.to_owned(),
            path,
            problem,
        },
    })?;
    let failed = |source| ImageError::Cache {
        path: dir.clone(),
        source,
    };
    if fs::symlink_metadata(&dir).map_err(failed)?.mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(dir)
}

// ---- one unpack at a time ----------------------------------------------------------------------------

/// Takes the cache's lock, `<cache>.lock`, waiting while another run holds it. Open for writing: over
/// NFS, flock is emulated with a byte-range lock, and an exclusive one needs that.
fn lock(cache: &Path) -> Result<Flock<File>, ImageError> {
    let mut name = cache.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let failed = |source| ImageError::Cache {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(failed)?;
    // The cache's parent may be a sticky /tmp, where anyone can make that name first and hold the lock.
    let me = nix::unistd::geteuid().as_raw();
    if let Some(problem) = private_dir::problem_with(&file.metadata().map_err(failed)?, me, Role::File) {
        return Err(ImageError::UnsafeCache {
            cache: cache.to_owned(),
            path,
            problem,
        });
    }
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(lock),
            Err((back, Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(failed(errno.into())),
        }
    }
}

/// Removes the partial directories of unpacks that died. Called with the lock held; an unpack holds it
/// for as long as its partial directory exists, so whatever partial directory is here now is nobody's.
/// Best effort: what cannot be removed now is tried again next time, and does not stop this run.
fn remove_leftovers(cache: &Path) {
    let Ok(names) = fs::read_dir(cache) else {
        return;
    };
    for entry in names.flatten() {
        if entry.file_name().as_bytes().starts_with(b".partial-") {
            let _ = remove_tree(&entry.path());
        }
    }
}

/// Removes `dir` and everything in it. An unpack that died may have left read-only directories
/// (an older launcher's, or one killed while giving modes back), which an ordinary user cannot empty
/// until they are writable again.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_up_tree(dir)?;
            fs::remove_dir_all(dir)
        }
        done => done,
    }
}

/// Gives the owner `rwx` on `dir` and every directory under it (symlinks not followed).
fn open_up_tree(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_up_tree(&entry.path())?;
        }
    }
    Ok(())
}

// ---- the unpack ----------------------------------------------------------------------------------------

/// Unpacks `image` into a partial directory of `cache` and renames it to `entry` when complete. The
/// stop signals are held from before the partial directory exists until after it is gone or renamed.
fn unpack_into(image: &Path, file: File, cache: &Path, entry: &Path) -> Result<(), ImageError> {
    let stops = Stops::hold().map_err(|errno| ImageError::Cache {
        path: cache.to_owned(),
        source: errno.into(),
    })?;
    let partial = cache.join(format!(".partial-{}", std::process::id()));
    let result = private_dir(&partial)
        .map_err(|source| ImageError::Cache {
            path: partial.clone(),
            source,
        })
        .and_then(|()| unpack(image, file, &partial, &stops))
        .and_then(|()| {
            fs::rename(&partial, entry).map_err(|source| ImageError::Cache {
                path: entry.to_owned(),
                source,
            })
        });
    if result.is_err() {
        let _ = remove_tree(&partial);
    }
    drop(stops);
    result
}

/// A new directory that only its owner can enter: the entry's top directory. Set after mkdir, which
/// the umask could leave narrower.
fn private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

/// Unpacks `file`, `image` opened, a tar or gzip-compressed tar (detected by its magic bytes, not its
/// name) into `dest`.
fn unpack(image: &Path, file: File, dest: &Path, stops: &Stops) -> Result<(), ImageError> {
    let read_err = |source| ImageError::Read {
        path: image.to_owned(),
        source,
    };
    let mut file = BufReader::new(file);
    let gzip = file.fill_buf().map_err(read_err)?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut closed = ClosedDirs::default();
    unpack_entries(image, reader, dest, stops, &mut closed)?;
    closed.restore().map_err(|(entry, source)| ImageError::Unpack {
        path: image.to_owned(),
        entry: Some(entry),
        source,
    })
}

fn unpack_entries(
    image: &Path,
    reader: impl Read,
    dest: &Path,
    stops: &Stops,
    closed: &mut ClosedDirs,
) -> Result<(), ImageError> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    // Owners are kept only as root; an ordinary user's files are all its own, and the container's
    // user namespace maps that user to root inside.
    archive.set_preserve_ownerships(nskit::userns::is_root());
    archive.set_unpack_xattrs(false);
    for entry in archive.entries().map_err(|e| failed(image, None, e))? {
        if let Some(signal) = stops.arrived() {
            return Err(ImageError::Interrupted {
                path: image.to_owned(),
                signal,
            });
        }
        let mut entry = entry.map_err(|e| failed(image, None, e))?;
        let name = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            continue;
        }
        let unpacked = entry.unpack_in(dest).map_err(|e| failed(image, Some(&name), e))?;
        if unpacked && kind.is_dir() {
            closed
                .open_up(dest, &name)
                .map_err(|e| failed(image, Some(&name), e))?;
        }
    }
    Ok(())
}

fn failed(image: &Path, entry: Option<&Path>, source: io::Error) -> ImageError {
    ImageError::Unpack {
        path: image.to_owned(),
        entry: entry.map(Path::to_owned),
        source,
    }
}

/// Directories unpacked with a mode that keeps their owner out (no `w` or no `x`: Fedora's 0555
/// `/usr/lib`), opened up for the owner while the unpack fills them, and their archived modes.
#[derive(Default)]
struct ClosedDirs(Vec<ClosedDir>);

struct ClosedDir {
    /// Resolved once, while the unpack is known to have checked it: a later entry could turn a
    /// symlink on the way elsewhere.
    path: PathBuf,
    mode: u32,
    entry: PathBuf,
}

impl ClosedDirs {
    /// Called after the tar crate unpacked directory `entry` into `dest`, with the entry's mode.
    fn open_up(&mut self, dest: &Path, entry: &Path) -> io::Result<()> {
        let Some(inside) = path_in(dest, entry) else {
            return Ok(()); // `.`: the entry's top directory, which stays 0700.
        };
        let path = fs::canonicalize(inside)?;
        if !path.starts_with(fs::canonicalize(dest)?) {
            return Err(io::Error::other("the directory is outside the image's root"));
        }
        let mode = fs::symlink_metadata(&path)?.mode() & 0o7777;
        if mode & 0o700 != 0o700 {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o700))?;
            self.0.push(ClosedDir {
                path,
                mode,
                entry: entry.to_owned(),
            });
        }
        Ok(())
    }

    /// Gives each directory its archived mode, deepest first: a directory without `x` for its owner
    /// cannot be passed through to reach those below it. Of two entries for one directory, the
    /// later one's mode stays (the sort is stable).
    fn restore(mut self) -> Result<(), (PathBuf, io::Error)> {
        self.0.sort_by_key(|dir| Reverse(dir.path.components().count()));
        for dir in self.0 {
            fs::set_permissions(&dir.path, fs::Permissions::from_mode(dir.mode))
                .map_err(|e| (dir.entry, e))?;
        }
        Ok(())
    }
}

/// Where the tar crate unpacks `entry` under `dest`: its plain names joined (it ignores `/` and `.`
/// and skips entries with `..`); none for `dest` itself.
fn path_in(dest: &Path, entry: &Path) -> Option<PathBuf> {
    let mut path = dest.to_owned();
    for part in entry.components() {
        match part {
            Component::Normal(name) => path.push(name),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    (path != dest).then_some(path)
}

// ---- Ctrl-C --------------------------------------------------------------------------------------------

/// SIGINT, SIGTERM and SIGHUP blocked in this thread, so that they wait, pending, until the unpack
/// asks whether one arrived (a non-blocking read of a signalfd, which also takes it off the pending
/// set); the thread's previous mask is restored on drop.
struct Stops {
    pending: SignalFd,
    previous: SigSet,
}

const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

impl Stops {
    fn hold() -> nix::Result<Stops> {
        let mut set = SigSet::empty();
        for signal in STOP_SIGNALS {
            set.add(signal);
        }
        let previous = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(pending) => Ok(Stops { pending, previous }),
            Err(e) => {
                let _ = previous.thread_set_mask();
                Err(e)
            }
        }
    }

    /// The first stop signal that arrived, if any. Reads them all: one left pending would end the
    /// process when the mask is restored, before the launcher could say what happened.
    fn arrived(&self) -> Option<Signal> {
        let mut first = None;
        while let Ok(Some(info)) = self.pending.read_signal() {
            let signal = i32::try_from(info.ssi_signo)
                .ok()
                .and_then(|n| Signal::try_from(n).ok());
            first = first.or(signal);
        }
        first
    }
}

impl Drop for Stops {
    fn drop(&mut self) {
        // A stop signal that arrived after the last look is delivered now, as if never held.
        let _ = self.previous.thread_set_mask();
    }
}

// ---- messages ------------------------------------------------------------------------------------------

/// A path in double quotes, escaped to printable ASCII (`\x1b`, `\xff`, `\"`): a name from an image,
/// or a hostile file name, must not reach the user's terminal as raw bytes.
fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.as_os_str().as_bytes().escape_ascii())
}

/// An error and its causes, `: `-separated and escaped to printable ASCII: the tar crate quotes
/// names and header fields from the archive as they are.
fn reason(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text.as_bytes().escape_ascii().to_string()
}

fn unpack_message(image: &Path, entry: Option<&Path>, source: &io::Error) -> String {
    match entry {
        Some(entry) => format!(
            "cannot unpack {} from image {}: {}",
            quoted(entry),
            quoted(image),
            reason(source)
        ),
        None => format!(
            "cannot read image {} as a tar archive: {}; an image is a tar or gzip-compressed tar file",
            quoted(image),
            shortened(reason(source))
        ),
    }
}

/// A header that is not one makes the tar crate quote its bytes, hundreds of them, escaped to
/// several times that: the start says what is wrong, the rest would hide the message's end.
fn shortened(mut text: String) -> String {
    const KEEP: usize = 160;
    if text.len() > KEEP {
        text.truncate(KEEP); // Escaped text is ASCII: any byte is a character boundary.
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed on drop.
    fn scratch(name: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("combined-image-{name}-"))
            .tempdir()
            .unwrap();
        // Whatever the umask: a group-writable directory is refused as a cache's parent.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn tarball(dir: &Path, gzip: bool) -> PathBuf {
        let path = dir.join(if gzip { "img.tar.gz" } else { "img.tar" });
        let file = File::create(&path).unwrap();
        let writer: Box<dyn io::Write> = if gzip {
            Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else {
            Box::new(file)
        };
        let mut builder = tar::Builder::new(writer);
        let header_of = |kind: tar::EntryType| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_mode(0o755);
            h.set_size(0);
            h
        };
        let mut header = header_of(tar::EntryType::Regular);
        header.set_size(6);
        header.set_mode(0o755);
        header.set_cksum();
        builder
            .append_data(&mut header, "bin/hello", &b"hello\n"[..])
            .unwrap();
        let mut dev = header_of(tar::EntryType::Char);
        dev.set_cksum();
        builder.append_data(&mut dev, "dev/null", io::empty()).unwrap();
        let mut link = header_of(tar::EntryType::Symlink);
        builder.append_link(&mut link, "bin/sh", "hello").unwrap();
        builder.into_inner().unwrap().flush().unwrap();
        path
    }

    #[test]
    fn unpacks_once_into_the_cache_and_skips_devices() {
        for gzip in [false, true] {
            let scratch = scratch(if gzip { "gz" } else { "tar" });
            let dir = scratch.path();
            let image = tarball(dir, gzip);
            let cache = dir.join("cache");
            let rootfs = prepare(&image, &cache).unwrap();
            assert_eq!(fs::read(rootfs.join("bin/hello")).unwrap(), b"hello\n");
            assert_eq!(fs::read_link(rootfs.join("bin/sh")).unwrap(), Path::new("hello"));
            assert!(!rootfs.join("dev/null").exists(), "device nodes are skipped");
            fs::write(rootfs.join("marker"), "kept").unwrap();
            assert_eq!(
                prepare(&image, &cache).unwrap(),
                rootfs,
                "the second run reuses the entry"
            );
            assert!(rootfs.join("marker").exists());
            let leftovers: Vec<_> = fs::read_dir(&cache).unwrap().filter_map(|e| e.ok()).collect();
            assert_eq!(leftovers.len(), 1, "no partial directory left");
        }
    }

    #[test]
    fn a_broken_image_leaves_nothing_in_the_cache() {
        let scratch = scratch("broken");
        let dir = scratch.path();
        let image = dir.join("broken.tar.gz");
        fs::write(&image, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
        let cache = dir.join("cache");
        assert!(matches!(prepare(&image, &cache), Err(ImageError::Unpack { .. })));
        assert_eq!(fs::read_dir(&cache).unwrap().count(), 0);
        assert!(matches!(
            prepare(&dir.join("missing.tar"), &cache),
            Err(ImageError::Read { .. })
        ));
    }

    #[test]
    fn paths_and_reasons_are_shown_in_printable_ascii() {
        let path = Path::new(OsStr::from_bytes(b"a \"b\"\x1b[31m\xff"));
        assert_eq!(quoted(path), r#""a \"b\"\x1b[31m\xff""#);
        let err = io::Error::other("bad \u{fffd}\n name");
        assert_eq!(reason(&err), r"bad \xef\xbf\xbd\n name");
    }

    #[test]
    fn entries_land_where_the_tar_crate_puts_them() {
        let dest = Path::new("/cache/.partial-1");
        assert_eq!(
            path_in(dest, Path::new("./usr//lib/")),
            Some(dest.join("usr/lib"))
        );
        assert_eq!(path_in(dest, Path::new("/etc")), Some(dest.join("etc")));
        assert_eq!(path_in(dest, Path::new("./")), None);
        assert_eq!(path_in(dest, Path::new("a/../b")), None);
    }
}
