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
use std::hash::{Hash, Hasher};
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

/// Everything a compiled filter depends on, as text.
pub fn key(profile: &str, caps: &CapsHashSet) -> String {
    let mut names: Vec<String> = caps.iter().map(ToString::to_string).collect();
    names.sort();
    let libseccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let head = format!(
        "combined {} {COMPILER}\nlibseccomp {libseccomp}\nkernel {kernel}\narch {}\ncaps {}\nprofile ",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        names.join(",")
    );
    // Sized once: the profile's text is most of the key (20 KB for the default one).
    let mut key = String::with_capacity(head.len() + profile.len());
    key.push_str(&head);
    key.push_str(profile);
    key
}

fn entry(dir: &Path, key: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    dir.join(format!("{:016x}.bpf", hasher.finish()))
}

/// The filter compiled for `key` before, if the cache holds it and may be trusted.
pub fn load(dir: &Path, key: &str) -> Option<Filter> {
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
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    // The key is known: the entry must begin with it and the separator, compared in one pass (a
    // search for the separator through the profile's text took as long as the rest of the lookup).
    let program = bytes.strip_prefix(key.as_bytes())?.strip_prefix(SEPARATOR)?;
    decode(program)
}

/// Keeps `filter` for `key`: written to a temporary file and renamed into place, so that a reader
/// never sees half an entry. Failures are ignored: the next run compiles again.
pub fn store(dir: &Path, key: &str, filter: &Filter) {
    let write = || -> std::io::Result<()> {
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(key.as_bytes())?;
        file.write_all(SEPARATOR)?;
        file.write_all(&encode(filter))?;
        file.persist(entry(dir, key)).map_err(|e| e.error)?;
        Ok(())
    };
    let _ = write();
}

/// The flags (a `c_ulong`, 8 bytes on the 64-bit architectures this runs on), then each instruction as the kernel lays it out: code (2 bytes), jt, jf, k (4
/// bytes), little-endian.
fn encode(filter: &Filter) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + filter.program.len() * 8);
    out.extend_from_slice(&filter.flags.to_le_bytes());
    for insn in &filter.program {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Filter> {
    let (flags, program) = bytes.split_at_checked(8)?;
    if program.is_empty() || program.len() % 8 != 0 {
        return None;
    }
    let program = program
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Filter {
        program,
        flags: libc::c_ulong::from_le_bytes(flags.try_into().ok()?),
    })
}

/// Reads a whole entry file, for tests.
#[cfg(test)]
fn raw(dir: &Path, key: &str) -> Vec<u8> {
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
        assert!(raw(dir.path(), &key).starts_with(key.as_bytes()));
        // Another key under the same file name (as a hash collision would put it) is not taken.
        fs::write(
            entry(dir.path(), &key),
            [b"other".as_slice(), SEPARATOR, &encode(&filter)].concat(),
        )
        .unwrap();
        assert!(load(dir.path(), &key).is_none());
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
            none.contains("kernel ") && none.contains("libseccomp 2."),
            "{none}"
        );
    }
}
