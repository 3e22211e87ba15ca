//! Compiled filters, kept between runs: libseccomp takes about 11 ms to compile the default profile
//! for x86-64 and its two 32-bit architectures, three times what the rest of a container's start
//! costs, and the result is the same every time for the same inputs. seccomp(2), bpf(4).
//!
//! An entry is found by a hash of its key and trusted only if its key matches in full: the launcher's
//! and libseccomp's versions, the running kernel (profiles test `minKernel`), the architecture, the
//! capabilities the container keeps (profiles test them), and the profile's whole text. A filter is
//! what stands between a container and the kernel, so the cache gets the image cache's protection:
//! the directory and every one above it belong to the user (or root) and no one else can write them,
//! and an entry must be the user's own regular file, writable by no one else. Anything else is not
//! used, and the filter is compiled again; the cache never makes a run fail.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use caps::CapsHashSet;

use super::Filter;

/// What separates the key from the program in an entry.
const SEPARATOR: &[u8] = b"\n\0\n";

/// How this launcher compiles (libseccomp's attributes, `seccomp.rs`): part of the key, changed with
/// them, so that a newer launcher built from the same version number never takes an older program.
const COMPILER: &str = "binary-tree";

/// The layout of an entry after its key, part of the key too: the program's flags and its length in
/// instructions, 8 bytes each, then the instructions ([`encode`]).
const LAYOUT: &str = "flags-count-program";

/// Everything a compiled filter depends on, as text: a head naming the launcher, libseccomp, the
/// kernel, the architecture and the capabilities, then the profile's whole text. Kept in two parts
/// and never joined: the profile is most of it (20 KB for the default one), and an entry is compared
/// with it piece by piece as it is read.
#[derive(Debug, PartialEq, Eq)]
pub struct Key<'a> {
    head: String,
    profile: &'a str,
}

impl Key<'_> {
    /// The key's bytes, in order, as an entry begins with them.
    fn parts(&self) -> [&[u8]; 2] {
        [self.head.as_bytes(), self.profile.as_bytes()]
    }

    fn len(&self) -> usize {
        self.head.len() + self.profile.len()
    }
}

/// The key for `profile` compiled for a container keeping `caps`.
pub fn key<'a>(profile: &'a str, caps: &CapsHashSet) -> Key<'a> {
    let mut names: Vec<String> = caps.iter().map(ToString::to_string).collect();
    names.sort();
    let libseccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let head = format!(
        "combined {} {COMPILER} {LAYOUT}\nlibseccomp {libseccomp}\nkernel {kernel}\narch {}\ncaps {}\nprofile ",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        names.join(",")
    );
    Key { head, profile }
}

fn entry(dir: &Path, key: &Key<'_>) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    for part in key.parts() {
        hasher.write(part);
    }
    dir.join(format!("{:016x}.bpf", hasher.finish()))
}

/// How much of an entry is read at a time: a buffer on the stack, reused, so that a lookup touches
/// no new memory for the 33 KB it reads (each fresh page is a page fault, about 2 us here, and the
/// whole entry read at once cost 14 of them). A multiple of an instruction's 8 bytes.
const CHUNK: usize = 4096;

/// The filter compiled for `key` before, if the cache holds it and may be trusted.
pub fn load(dir: &Path, key: &Key<'_>) -> Option<Filter> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(entry(dir, key))
        .ok()?;
    let meta = file.metadata().ok()?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return None;
    }
    let program_len = usize::try_from(meta.len())
        .ok()?
        .checked_sub(key.len() + SEPARATOR.len())?;
    let mut chunk = [0u8; CHUNK];
    for part in key.parts().into_iter().chain([SEPARATOR]) {
        begins_with(&mut file, part, &mut chunk)?;
    }
    read_program(&mut file, program_len, &mut chunk)
}

/// Reads `expected.len()` bytes from `file`, a chunk at a time, and whether they are `expected`.
fn begins_with(file: &mut impl Read, expected: &[u8], chunk: &mut [u8; CHUNK]) -> Option<()> {
    for piece in expected.chunks(CHUNK) {
        let read = &mut chunk[..piece.len()];
        file.read_exact(read).ok()?;
        (read == piece).then_some(())?;
    }
    Some(())
}

/// Keeps `filter` for `key`: written to a temporary file and renamed into place, so that a reader
/// never sees half an entry. Failures are ignored: the next run compiles again.
pub fn store(dir: &Path, key: &Key<'_>, filter: &Filter) {
    let write = || -> std::io::Result<()> {
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        for part in key.parts() {
            file.write_all(part)?;
        }
        file.write_all(SEPARATOR)?;
        file.write_all(&encode(filter))?;
        file.persist(entry(dir, key)).map_err(|e| e.error)?;
        Ok(())
    };
    let _ = write();
}

/// The flags (a `c_ulong`, 8 bytes on the 64-bit architectures this runs on) and the number of
/// instructions (8 bytes), then each instruction as the kernel lays it out: code (2 bytes), jt, jf, k
/// (4 bytes); all little-endian. The count makes an entry cut short at an instruction's end, which
/// would read as a shorter program, tell itself apart.
fn encode(filter: &Filter) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + filter.program.len() * 8);
    out.extend_from_slice(&filter.flags.to_le_bytes());
    out.extend_from_slice(&(filter.program.len() as u64).to_le_bytes());
    for insn in &filter.program {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    out
}

/// The program, `len` bytes at the end of an entry, as [`encode`] wrote them: as many instructions as
/// it says, and nothing after.
fn read_program(file: &mut impl Read, len: usize, chunk: &mut [u8; CHUNK]) -> Option<Filter> {
    let (mut flags, mut count) = ([0u8; 8], [0u8; 8]);
    file.read_exact(&mut flags).ok()?;
    file.read_exact(&mut count).ok()?;
    let count = usize::try_from(u64::from_le_bytes(count)).ok()?;
    let mut left = len.checked_sub(16)?;
    if count == 0 || left != count.checked_mul(8)? {
        return None;
    }
    let mut program = Vec::with_capacity(count);
    while left > 0 {
        let read = &mut chunk[..left.min(CHUNK)];
        file.read_exact(read).ok()?;
        program.extend(read.chunks_exact(8).map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        }));
        left -= read.len();
    }
    // The file's size, read before, said where it ends; one that has grown since is not taken.
    if file.read(&mut chunk[..1]).ok()? != 0 {
        return None;
    }
    Some(Filter {
        program,
        flags: libc::c_ulong::from_le_bytes(flags),
    })
}

/// Reads a whole entry file, for tests.
#[cfg(test)]
fn raw(dir: &Path, key: &Key<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    fs::File::open(entry(dir, key))
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{Setting, compile};

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn an_entry_round_trips_and_needs_its_whole_key() {
        let dir = scratch();
        let caps = crate::caps::DEFAULT_CAPS.into_iter().collect();
        let filter = compile(&Setting::Default, &caps).unwrap().unwrap();
        let key = key("profile text", &caps);
        assert!(load(dir.path(), &key).is_none());
        store(dir.path(), &key, &filter);
        let back = load(dir.path(), &key).expect("stored");
        assert_eq!(encode(&back), encode(&filter));
        assert!(raw(dir.path(), &key).starts_with(&key.parts().concat()));
        // Another key under the same file name (as a hash collision would put it) is not taken.
        fs::write(
            entry(dir.path(), &key),
            [b"other".as_slice(), SEPARATOR, &encode(&filter)].concat(),
        )
        .unwrap();
        assert!(load(dir.path(), &key).is_none());
    }

    #[test]
    fn an_entry_is_taken_only_whole_and_exactly_as_stored() {
        // A profile longer than a chunk, so that the comparison crosses chunks.
        let dir = scratch();
        let caps = CapsHashSet::new();
        let filter = compile(&Setting::Default, &caps).unwrap().unwrap();
        let profile = "x".repeat(3 * CHUNK + 5);
        let key = key(&profile, &caps);
        store(dir.path(), &key, &filter);
        let stored = raw(dir.path(), &key);
        let path = entry(dir.path(), &key);
        assert!(load(dir.path(), &key).is_some());
        // A byte of the profile changed past the first chunk; the program cut short; a byte more.
        let mut changed = stored.clone();
        changed[key.head.len() + 2 * CHUNK] = b'y';
        let cut = &stored[..stored.len() - 8];
        let longer = [stored.as_slice(), b"\0"].concat();
        for bad in [changed.as_slice(), cut, &longer] {
            fs::write(&path, bad).unwrap();
            assert!(load(dir.path(), &key).is_none());
        }
        // Only the key, or not even that.
        for bad in [&stored[..key.len() + SEPARATOR.len()], &stored[..10]] {
            fs::write(&path, bad).unwrap();
            assert!(load(dir.path(), &key).is_none());
        }
    }

    #[test]
    fn an_entry_others_can_write_is_not_trusted() {
        let dir = scratch();
        let caps = CapsHashSet::new();
        let filter = compile(&Setting::Default, &caps).unwrap().unwrap();
        let key = key("p", &caps);
        store(dir.path(), &key, &filter);
        let path = entry(dir.path(), &key);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o622)).unwrap();
        assert!(load(dir.path(), &key).is_none());
    }

    #[test]
    fn the_key_names_what_the_program_depends_on() {
        let none = key("p", &CapsHashSet::new());
        let admin = key("p", &[caps::Capability::CAP_SYS_ADMIN].into());
        assert_ne!(none, admin);
        assert_ne!(none, key("q", &CapsHashSet::new()));
        assert!(
            none.head.contains("kernel ") && none.head.contains("libseccomp 2."),
            "{none:?}"
        );
    }
}
