//! `--image FILE.tar[.gz]`: a root filesystem tarball (`docker export`, an Alpine minirootfs), unpacked
//! once into a cache directory and reused. tar(5); the cache follows the XDG base directory spec.
//!
//! Unpacking never writes outside the cache entry (the tar crate skips `..` components and checks
//! that each parent stays inside), skips device nodes and fifos (the container gets a fresh /dev), and
//! lands atomically: into a temporary directory first, renamed into place when complete, so an
//! interrupted unpack leaves no half-made rootfs behind to be reused.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why an image could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot unpack image {path}: {source}")]
    Unpack { path: PathBuf, source: io::Error },
    #[error("cannot use cache directory {path}: {source}")]
    Cache { path: PathBuf, source: io::Error },
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
/// or replaced tarball gets a new entry and an unchanged one is never read twice.
fn cache_key(image: &Path) -> Result<String, ImageError> {
    let meta = fs::metadata(image).map_err(|source| ImageError::Read {
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

/// Returns the unpacked rootfs for `image`, unpacking it into `cache` first if needed.
pub fn prepare(image: &Path, cache: &Path) -> Result<PathBuf, ImageError> {
    let entry = cache.join(cache_key(image)?);
    if entry.is_dir() {
        return Ok(entry);
    }
    let cache_err = |source| ImageError::Cache {
        path: cache.to_owned(),
        source,
    };
    fs::create_dir_all(cache).map_err(cache_err)?;
    let partial = cache.join(format!(".partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir(&partial).map_err(cache_err)?;
    let result = unpack(image, &partial).and_then(|()| {
        fs::rename(&partial, &entry).map_err(|source| ImageError::Cache {
            path: entry.clone(),
            source,
        })
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result.map(|()| entry)
}

/// Unpacks a tar or gzip-compressed tar (detected by its magic bytes, not its name) into `dest`.
pub fn unpack(image: &Path, dest: &Path) -> Result<(), ImageError> {
    let read_err = |source| ImageError::Read {
        path: image.to_owned(),
        source,
    };
    let mut file = BufReader::new(File::open(image).map_err(read_err)?);
    let mut magic = [0u8; 2];
    let gzip = file.get_mut().read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = File::open(image).map_err(read_err)?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    unpack_tar(reader, dest).map_err(|source| ImageError::Unpack {
        path: image.to_owned(),
        source,
    })
}

fn unpack_tar(reader: impl Read, dest: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    // Owners are kept only as root; an ordinary user's files are all its own, and the container's
    // user namespace maps that user to root inside.
    archive.set_preserve_ownerships(nskit::userns::is_root());
    archive.set_unpack_xattrs(false);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            continue;
        }
        entry.unpack_in(dest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("combined-image-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
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
            let dir = scratch(if gzip { "gz" } else { "tar" });
            let image = tarball(&dir, gzip);
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
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_broken_image_leaves_nothing_in_the_cache() {
        let dir = scratch("broken");
        let image = dir.join("broken.tar.gz");
        fs::write(&image, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
        let cache = dir.join("cache");
        assert!(matches!(prepare(&image, &cache), Err(ImageError::Unpack { .. })));
        assert_eq!(fs::read_dir(&cache).unwrap().count(), 0);
        assert!(matches!(
            prepare(&dir.join("missing.tar"), &cache),
            Err(ImageError::Read { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
