//! A writer for the "newc" cpio format, the one the kernel unpacks into its initial root file system
//! (cpio(5) "New ASCII Format"; the kernel's Documentation/driver-api/early-userspace/buffer-format.rst).
//! Each entry is a 110-byte ASCII header (magic `070701` and thirteen 8-digit hex fields), the path
//! and its NUL padded to 4 bytes, then the data padded to 4 bytes; the archive ends with an entry
//! named `TRAILER!!!`. Archives can be concatenated: the kernel unpacks them one after another.

use std::collections::BTreeSet;
use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

/// File types, as the high bits of `st_mode` (inode(7)).
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
const S_IFLNK: u32 = 0o120000;

/// Writes a newc archive entry by entry. Paths are relative to the archive root (`init`,
/// `modules/virtio.ko`); missing parent directories are added first, since the kernel creates each
/// entry in a directory that must already exist.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

/// The fields of one entry's header that vary.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    size: u32,
    rdev: (u32, u32),
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            written: 0,
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    /// A directory with permissions `perm` (e.g. 0o755).
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        self.parents(path)?;
        self.dirs.insert(path.to_owned());
        self.entry(
            Header {
                name: path,
                mode: S_IFDIR | perm,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "newc files are at most 4 GiB"))?;
        self.entry(
            Header {
                name: path,
                mode: S_IFREG | perm,
                size,
                rdev: (0, 0),
            },
            data,
        )
    }

    /// A symbolic link to `target`: its data is the target's path, as symlink(7) stores it.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        let size = u32::try_from(target.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a symlink's target is too long"))?;
        self.entry(
            Header {
                name: path,
                mode: S_IFLNK | 0o777,
                size,
                rdev: (0, 0),
            },
            target.as_bytes(),
        )
    }

    /// A character device node, such as `dev/console` (5, 1) which the kernel opens for init's stdio
    /// before any devtmpfs is mounted.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        self.entry(
            Header {
                name: path,
                mode: S_IFCHR | perm,
                size: 0,
                rdev: (major, minor),
            },
            &[],
        )
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry(
            Header {
                name: TRAILER,
                mode: 0,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755)?;
        }
        Ok(())
    }

    fn entry(&mut self, h: Header<'_>, data: &[u8]) -> io::Result<()> {
        let ino = if h.name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let nlink = if h.mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        // Every timestamp is 0 so that the same inputs give the same bytes.
        let fields = [ino, h.mode, 0, 0, nlink, 0, h.size, 0, 0, h.rdev.0, h.rdev.1];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        header.push_str(&format!("{:08x}{:08x}", h.name.len() + 1, 0));
        self.put(header.as_bytes())?;
        self.put(h.name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let fill = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..fill as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an archive back: (name, mode, rdev major, data) per entry, checking the padding.
    fn parse(mut bytes: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let total = bytes.len();
        let mut entries = Vec::new();
        loop {
            let offset = total - bytes.len();
            assert_eq!(offset % 4, 0, "entry at {offset} is not 4-aligned");
            let header = std::str::from_utf8(&bytes[..110]).unwrap();
            assert_eq!(&header[..6], MAGIC);
            let field = |i: usize| u32::from_str_radix(&header[6 + i * 8..14 + i * 8], 16).unwrap();
            let (mode, size, major, namesize) = (field(1), field(6) as usize, field(9), field(11) as usize);
            let name = std::str::from_utf8(&bytes[110..110 + namesize - 1])
                .unwrap()
                .to_owned();
            assert_eq!(bytes[110 + namesize - 1], 0);
            let data_at = (offset + 110 + namesize).next_multiple_of(4) - offset;
            let data = bytes[data_at..data_at + size].to_vec();
            let next = (offset + data_at + size).next_multiple_of(4) - offset;
            bytes = &bytes[next.min(bytes.len())..];
            if name == TRAILER {
                assert!(bytes.is_empty());
                return entries;
            }
            entries.push((name, mode, major, data));
        }
    }

    #[test]
    fn writes_entries_the_kernel_can_unpack() {
        let mut w = Writer::new(Vec::new());
        w.file("modules/virtio.ko", 0o644, b"module bytes").unwrap();
        w.file("init", 0o755, b"12345").unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        let entries = parse(&w.finish().unwrap());
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "modules",
                "modules/virtio.ko",
                "init",
                "dev",
                "dev/console",
                "bin",
                "bin/sh"
            ]
        );
        assert_eq!(
            (entries[6].1, entries[6].3.as_slice()),
            (S_IFLNK | 0o777, &b"busybox"[..])
        );
        assert_eq!(entries[0].1, S_IFDIR | 0o755);
        assert_eq!(entries[1].3, b"module bytes");
        assert_eq!(entries[2].1, S_IFREG | 0o755);
        assert_eq!((entries[4].1, entries[4].2), (S_IFCHR | 0o600, 5));
    }

    #[test]
    fn header_is_110_bytes_and_names_are_nul_terminated() {
        let mut w = Writer::new(Vec::new());
        w.file("a", 0o644, b"").unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[..6], b"070701");
        // namesize of "a" is 2 (with its NUL), the 12th field
        assert_eq!(&bytes[94..102], b"00000002");
        assert_eq!(&bytes[110..112], b"a\0");
    }

    #[test]
    fn same_input_same_bytes() {
        let build = || {
            let mut w = Writer::new(Vec::new());
            w.file("x/y", 0o644, b"data").unwrap();
            w.finish().unwrap()
        };
        assert_eq!(build(), build());
    }
}
