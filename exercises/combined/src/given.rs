//! What the exercises give you: children that play the container (and, for the keyring, the
//! launcher too), run your code, and send back what they saw, over nskit's channel (the plumbing
//! every chapter uses; `clone(2)`). You need not read this to do the exercises, but nothing in it is
//! hidden.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use caps::CapsHashSet;
use mnt_demo::rootfs::{DEFAULT_MASKED, DEFAULT_READONLY, MountError, Propagation, isolate_root, mount_proc};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::statfs::{TMPFS_MAGIC, statfs};
use nix::sys::statvfs::{FsFlags, statvfs};
use nskit::{Spawn, UserNs};

// ---- combined-caps ----------------------------------------------------------------------------------

/// A process's five capability sets, as `/proc/self/status` shows them: one bit per capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// What the caps exercise's container saw after your `drop_to`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapsView {
    pub sets: CapSets,
    /// What `unshare(CLONE_NEWUTS)`, which needs CAP_SYS_ADMIN, did: `None` when it succeeded.
    pub unshare_refused: Option<String>,
}

/// The bits of `caps`, as `/proc/<pid>/status` writes a set.
pub fn mask(caps: &CapsHashSet) -> u64 {
    caps.iter().fold(0, |acc, cap| acc | cap.bitmask())
}

/// A container's root: a child with all capabilities in its user namespace (or, for root, in the
/// host's, without one). It runs `drop_to(keep)`, reads its sets, then attacks: it tries to make a
/// namespace, which a container's root must not be able to do. The attack is harmless if it works:
/// the namespace is the child's, and dies with it.
pub fn caps_lab(
    keep: &CapsHashSet,
    drop_to: fn(&CapsHashSet) -> Result<(), caps::errors::CapsError>,
) -> Result<CapsView, String> {
    let keep = keep.clone();
    Spawn::new(CloneFlags::empty()).evaluate(move || {
        drop_to(&keep).map_err(|e| format!("drop_to: {e}"))?;
        let sets = read_cap_sets()?;
        let unshare_refused = nix::sched::unshare(CloneFlags::CLONE_NEWUTS)
            .err()
            .map(|errno| errno.to_string());
        Ok(CapsView {
            sets,
            unshare_refused,
        })
    })
}

fn read_cap_sets() -> Result<CapSets, String> {
    let status =
        fs::read_to_string("/proc/self/status").map_err(|e| format!("read /proc/self/status: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .ok_or_else(|| format!("/proc/self/status has no {name} line"))
    };
    Ok(CapSets {
        bounding: field("CapBnd:")?,
        effective: field("CapEff:")?,
        permitted: field("CapPrm:")?,
        inheritable: field("CapInh:")?,
        ambient: field("CapAmb:")?,
    })
}

// ---- combined-keyring -------------------------------------------------------------------------------

/// The key the test's launcher puts in its session keyring: what a real launcher's session might
/// hold (a login's kerberos ticket, an encryption key).
pub const SECRET: &str = "combined-exercise-secret";

/// What the keyring exercise's container found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyringView {
    /// This kernel has no keys (built without CONFIG_KEYS): nothing to hide.
    NoKeys,
    /// After your function, the container's session keyring search found the launcher's key or not.
    Searched {
        session_changed: bool,
        found_secret: bool,
    },
}

/// keyctl(2) with integer arguments.
fn keyctl(op: u32, arg2: libc::c_long, arg3: libc::c_long) -> Result<libc::c_long, Errno> {
    // SAFETY: the operations called here (JOIN_SESSION_KEYRING with a null name, GET_KEYRING_ID)
    // take integers only, or a null pointer, which the kernel reads as "no name".
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, libc::c_long::from(op), arg2, arg3) })
}

fn session_keyring_id() -> Result<libc::c_long, Errno> {
    keyctl(
        libc::KEYCTL_GET_KEYRING_ID,
        libc::c_long::from(libc::KEY_SPEC_SESSION_KEYRING),
        0,
    )
}

fn add_secret() -> Result<(), Errno> {
    let (kind, name, payload) = (c"user", c"combined-exercise-secret", b"hunter2");
    // SAFETY: add_key(2) reads the two NUL-terminated strings and `payload.len()` bytes of payload,
    // all of which live until it returns.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            kind.as_ptr(),
            name.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            libc::KEY_SPEC_SESSION_KEYRING,
        )
    };
    Errno::result(rc).map(drop)
}

fn secret_is_found() -> Result<bool, Errno> {
    let (kind, name) = (c"user", c"combined-exercise-secret");
    // SAFETY: KEYCTL_SEARCH reads the two NUL-terminated strings, which live until it returns; 0 as
    // the destination keyring links the key found nowhere.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::c_long::from(libc::KEYCTL_SEARCH),
            libc::c_long::from(libc::KEY_SPEC_SESSION_KEYRING),
            kind.as_ptr(),
            name.as_ptr(),
            0 as libc::c_long,
        )
    };
    match Errno::result(rc) {
        Ok(_) => Ok(true),
        Err(Errno::ENOKEY) => Ok(false),
        Err(errno) => Err(errno),
    }
}

/// A child plays the launcher: it first joins a new session keyring of its own (so that the test's
/// session is never touched) and adds [`SECRET`] to it. Then it plays the container: it runs `join`,
/// and searches its session keyring for the secret.
pub fn keyring_lab(join: fn() -> Result<(), Errno>) -> Result<KeyringView, String> {
    Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .evaluate(move || {
            match keyctl(libc::KEYCTL_JOIN_SESSION_KEYRING, 0, 0) {
                Err(Errno::ENOSYS) => return Ok(KeyringView::NoKeys),
                other => other.map_err(|e| format!("the launcher's session keyring: {e}"))?,
            };
            add_secret().map_err(|e| format!("add the launcher's key: {e}"))?;
            let before = session_keyring_id().map_err(|e| format!("the session keyring's id: {e}"))?;
            join().map_err(|e| format!("join_fresh_session_keyring: {e}"))?;
            let after = session_keyring_id().map_err(|e| format!("the session keyring's id: {e}"))?;
            Ok(KeyringView::Searched {
                session_changed: before != after,
                found_secret: secret_is_found().map_err(|e| format!("search the keyring: {e}"))?,
            })
        })
}

// ---- combined-masks ---------------------------------------------------------------------------------

/// What the masks exercise's container could still get at in its /proc.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MasksView {
    /// The masked-list paths that exist here but are not masked, each with what reading it gave.
    pub unmasked: Vec<String>,
    /// The read-only-list paths that exist here and are on a writable mount.
    pub writable: Vec<String>,
}

/// A container's set-up, the launcher's way, in a child with new mount and PID namespaces (and a user
/// namespace when you are not root): every mount private, a fresh proc at `root/proc`, then
/// `protect(root)`. Then it looks at each path of the two lists as a process in the container would.
pub fn masks_lab(root: &Path, protect: fn(&Path) -> Result<(), MountError>) -> Result<MasksView, String> {
    let root = root.to_path_buf();
    Spawn::new(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID).evaluate(move || {
        isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
        mount_proc(&root).map_err(|e| e.to_string())?;
        protect(&root).map_err(|e| format!("protect_proc: {e}"))?;
        let in_proc = |list: &[&'static str]| -> Vec<&'static str> {
            list.iter().copied().filter(|p| p.starts_with("/proc/")).collect()
        };
        let mut view = MasksView {
            unmasked: Vec::new(),
            writable: Vec::new(),
        };
        for path in in_proc(&DEFAULT_MASKED) {
            if let Some(evidence) = unmasked(&root, path)? {
                view.unmasked.push(format!("{path}: {evidence}"));
            }
        }
        for path in in_proc(&DEFAULT_READONLY) {
            let place = root.join(path.trim_start_matches('/'));
            match statvfs(&place) {
                Ok(st) if !st.flags().contains(FsFlags::ST_RDONLY) => view.writable.push(path.to_owned()),
                Ok(_) | Err(Errno::ENOENT) => {}
                Err(errno) => return Err(format!("statvfs {path}: {errno}")),
            }
        }
        Ok(view)
    })
}

/// `None` when `path` under `root` is absent or masked; otherwise what the container reads there.
fn unmasked(root: &Path, path: &str) -> Result<Option<String>, String> {
    let place = root.join(path.trim_start_matches('/'));
    let meta = match fs::metadata(&place) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("stat {path}: {e}")),
    };
    if meta.is_dir() {
        let on_tmpfs = statfs(&place)
            .map_err(|e| format!("statfs {path}: {e}"))?
            .filesystem_type()
            == TMPFS_MAGIC;
        if on_tmpfs {
            return Ok(None);
        }
        let entries = fs::read_dir(&place).map(|d| d.count()).unwrap_or(0);
        return Ok(Some(format!("a directory of {entries} entries from the kernel")));
    }
    let dev_null = meta.file_type().is_char_device() && meta.rdev() == nix::sys::stat::makedev(1, 3);
    if dev_null {
        return Ok(None);
    }
    let mut head = [0u8; 120];
    let read = fs::File::open(&place).and_then(|mut f| f.read(&mut head));
    Ok(Some(match read {
        Ok(n) => {
            let text = String::from_utf8_lossy(&head[..n]);
            format!("reads {:?}", text.lines().next().unwrap_or("").trim())
        }
        Err(e) => format!("the kernel's own file, not /dev/null (reading it: {e})"),
    }))
}
