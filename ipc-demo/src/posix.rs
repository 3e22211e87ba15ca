//! POSIX IPC and the IPC namespace: message queues are isolated by it, shared memory is not
//! (mq_overview(7), shm_overview(7), ipc_namespaces(7)).
//!
//! A POSIX message queue lives in the IPC namespace's own instance of the `mqueue` filesystem; mounting
//! that filesystem (conventionally on `/dev/mqueue`) shows the queues of the mounting process's IPC
//! namespace. `shm_open`, by contrast, is a plain file in the tmpfs mounted on `/dev/shm`: who sees it
//! is decided by the mount namespace, not the IPC namespace.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_getattr, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::stat::Mode;

use crate::sysv::Key;

/// The prefix of the POSIX names the demo uses; the key, in hex, follows it.
const NAME_PREFIX: &[u8] = b"/ipc-demo-";
/// Where `shm_open` names live.
const SHM_DIR: &[u8] = b"/dev/shm";
/// The longest message the demo's POSIX queues hold, and how many they hold.
pub const MQ_MSGSIZE: usize = 64;
const MQ_MAXMSG: i64 = 4;

/// A POSIX IPC name (`/ipc-demo-1d5e0001`) built from a key in a fixed buffer, without allocating, so
/// that the signal handler can build it too. The same bytes, after `/dev/shm`, are the path of the
/// `shm_open` object.
#[derive(Clone, Copy, Debug)]
pub struct PosixName {
    buf: [u8; 40],
    start: usize,
    len: usize,
}

impl PosixName {
    /// `/ipc-demo-<key in hex>`.
    pub const fn of(key: Key) -> PosixName {
        let mut buf = [0u8; 40];
        let start = SHM_DIR.len();
        let mut i = 0;
        while i < SHM_DIR.len() {
            buf[i] = SHM_DIR[i];
            i += 1;
        }
        let mut j = 0;
        while j < NAME_PREFIX.len() {
            buf[start + j] = NAME_PREFIX[j];
            j += 1;
        }
        let bits = key.bits();
        let mut k = 0;
        while k < 8 {
            let nibble = ((bits >> (28 - 4 * k)) & 0xf) as u8;
            buf[start + NAME_PREFIX.len() + k] = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            k += 1;
        }
        // The buffer is zeroed, so a NUL already ends the name.
        PosixName {
            buf,
            start,
            len: NAME_PREFIX.len() + 8,
        }
    }

    /// The name `mq_open` and `shm_open` take, NUL-terminated.
    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf[self.start..]).expect("the buffer holds a NUL")
    }

    /// The file `shm_open` makes for this name: `/dev/shm/ipc-demo-...`.
    pub fn shm_path_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).expect("the buffer holds a NUL")
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..self.start + self.len]).expect("ASCII")
    }

    /// The name without its leading `/`: the file name under a mounted mqueue filesystem.
    pub fn file_name(&self) -> &str {
        &self.as_str()[1..]
    }

    pub fn shm_path(&self) -> PathBuf {
        PathBuf::from(self.shm_path_cstr().to_str().expect("ASCII"))
    }
}

// ANCHOR: mqueue
/// An open message queue descriptor, closed on drop (nix's `MqdT` does not close itself).
#[derive(Debug)]
pub struct Queue(Option<MqdT>);

impl Queue {
    fn mqd(&self) -> &MqdT {
        self.0.as_ref().expect("open until dropped")
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if let Some(mqd) = self.0.take() {
            let _ = mq_close(mqd);
        }
    }
}

/// Makes a new POSIX message queue (`O_CREAT|O_EXCL`, mode 0600, 4 messages of at most 64 bytes), in
/// the caller's IPC namespace; EEXIST when the name is taken there.
pub fn mq_create(name: &PosixName) -> Result<Queue, Errno> {
    let attr = MqAttr::new(0, MQ_MAXMSG, MQ_MSGSIZE as i64, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK;
    mq_open(name.as_cstr(), flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)).map(|q| Queue(Some(q)))
}

/// Opens an existing queue by name in the caller's IPC namespace; ENOENT when there is none.
pub fn mq_open_existing(name: &PosixName) -> Result<Queue, Errno> {
    let flags = MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK;
    mq_open(name.as_cstr(), flags, Mode::empty(), None).map(|q| Queue(Some(q)))
}

/// Sends one message, without waiting for room.
pub fn mq_put(queue: &Queue, text: &[u8]) -> Result<(), Errno> {
    mq_send(queue.mqd(), text, 0)
}

/// Takes the oldest message of the highest priority, without waiting (EAGAIN when empty).
pub fn mq_take(queue: &Queue) -> Result<Vec<u8>, Errno> {
    let mut buf = [0u8; MQ_MSGSIZE];
    let mut priority = 0;
    let len = mq_receive(queue.mqd(), &mut buf, &mut priority)?;
    Ok(buf[..len].to_vec())
}

/// How many messages the queue holds.
pub fn mq_messages(queue: &Queue) -> Result<i64, Errno> {
    Ok(mq_getattr(queue.mqd())?.curmsgs())
}

/// Removes the queue's name; the queue goes when the last descriptor on it closes. No allocation: a
/// signal handler may call it.
pub fn mq_remove(name: &PosixName) -> Result<(), Errno> {
    mq_remove_name(name.as_cstr())
}

/// The same, by any name.
pub fn mq_remove_name(name: &CStr) -> Result<(), Errno> {
    mq_unlink(name)
}
// ANCHOR_END: mqueue

// ANCHOR: big_queue
/// The largest queue an unprivileged process may make in a new IPC namespace: `fs.mqueue.msg_max`
/// (10) messages of `fs.mqueue.msgsize_max` (8192) bytes. The kernel charges its memory, about 80 KiB,
/// to the user who made it, against that user's `RLIMIT_MSGQUEUE` (mq_overview(7), getrlimit(2)).
pub const BIG_MAXMSG: i64 = 10;
pub const BIG_MSGSIZE: i64 = 8192;
/// An `RLIMIT_MSGQUEUE` with room for one big queue but not for two.
pub const ONE_BIG_QUEUE: u64 = (BIG_MAXMSG * BIG_MSGSIZE * 3 / 2) as u64;
/// The name of the second big queue, made to test whether the first still counts.
pub const PROBE_NAME: &CStr = c"/ipc-demo-probe";

/// Makes a big queue (see [`BIG_MAXMSG`]) named `name` in the caller's IPC namespace.
pub fn mq_create_big(name: &CStr) -> Result<Queue, Errno> {
    let attr = MqAttr::new(0, BIG_MAXMSG, BIG_MSGSIZE, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK;
    mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)).map(|q| Queue(Some(q)))
}

/// Lowers the caller's soft `RLIMIT_MSGQUEUE` to `bytes` (the hard limit stays).
pub fn limit_queue_bytes(bytes: u64) -> Result<(), Errno> {
    let (_, hard) = getrlimit(Resource::RLIMIT_MSGQUEUE)?;
    setrlimit(Resource::RLIMIT_MSGQUEUE, bytes.min(hard), hard)
}
// ANCHOR_END: big_queue

pub use nskit::mount::{MountError, make_mounts_private};

// ANCHOR: mount_mqueue
/// Mounts a new instance of the mqueue filesystem on `target` (an existing directory): it lists the
/// POSIX message queues of the *caller's* IPC namespace, so call it after entering that namespace.
/// Needs CAP_SYS_ADMIN in the user namespaces owning the caller's mount and IPC namespaces.
pub fn mount_mqueue(target: &Path) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("mqueue"), target, Some("mqueue"), flags, None::<&str>)
        .map_err(MountError::of("mount mqueue on", target))
}
// ANCHOR_END: mount_mqueue

/// Mounts a small, empty tmpfs on `target`: a fresh `/dev` or `/dev/shm` in the caller's mount
/// namespace.
pub fn mount_tmpfs(target: &Path) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some("size=64k,mode=755"),
    )
    .map_err(MountError::of("mount tmpfs on", target))
}

/// One queue as a mounted mqueue filesystem shows it: its file name and the file's one line,
/// `QSIZE:19 NOTIFY:0 SIGNO:0 NOTIFY_PID:0` (mq_overview(7)).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueFile {
    pub name: String,
    pub status: String,
}

/// Lists the queues under a mounted mqueue filesystem, sorted by name.
pub fn list_queues(dir: &Path) -> io::Result<Vec<QueueFile>> {
    let mut queues = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let status = fs::read_to_string(entry.path())?;
        let status = status.split_whitespace().collect::<Vec<_>>().join(" ");
        queues.push(QueueFile {
            name: entry.file_name().to_string_lossy().into_owned(),
            status,
        });
    }
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(queues)
}

// ANCHOR: posix_shm
/// Makes a POSIX shared memory object (`shm_open(O_CREAT|O_EXCL)`, mode 0600) holding `text`.
pub fn shm_create(name: &PosixName, text: &[u8]) -> Result<(), Errno> {
    let fd: OwnedFd = shm_open(
        name.as_cstr(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )?;
    File::from(fd)
        .write_all(text)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Opens a POSIX shared memory object by name and reads what it holds; ENOENT when the caller's
/// `/dev/shm` has no such file.
pub fn shm_read(name: &PosixName) -> Result<String, Errno> {
    let fd: OwnedFd = shm_open(name.as_cstr(), OFlag::O_RDONLY, Mode::empty())?;
    let mut text = String::new();
    File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(text)
}

/// Removes a POSIX shared memory object: `unlink` of its file under /dev/shm. No allocation: a signal
/// handler may call it.
pub fn shm_remove(name: &PosixName) -> Result<(), Errno> {
    shm_unlink(name.as_cstr())
}
// ANCHOR_END: posix_shm

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_key() {
        let name = PosixName::of(Key::new(0x1d5e00af));
        assert_eq!(name.as_str(), "/ipc-demo-1d5e00af");
        assert_eq!(name.as_cstr().to_bytes(), b"/ipc-demo-1d5e00af");
        assert_eq!(name.file_name(), "ipc-demo-1d5e00af");
        assert_eq!(name.shm_path(), Path::new("/dev/shm/ipc-demo-1d5e00af"));
    }
}
