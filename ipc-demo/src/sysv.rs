//! System V IPC, the three kinds of object the IPC namespace isolates: message queues, semaphore sets
//! and shared memory segments (sysvipc(7), msgget(2), semget(2), shmget(2)).
//!
//! An object is named by a *key*, a 32-bit number the programs agree on, and once made it has an *id*
//! the kernel chose. Both mean something only inside one IPC namespace: `/proc/sysvipc/{msg,sem,shm}`
//! lists the objects of the reader's namespace, and `msgget(key)` looks the key up there.
//!
//! nix has no System V wrappers, so this file wraps the libc calls: each wrapper is a small safe
//! function around one `unsafe` call, returning the id or the errno.

use std::fmt;
use std::fs;
use std::io;
use std::mem;

use nix::errno::Errno;

/// Permissions of the objects the demo makes: read and write for their owner only.
const MODE: libc::c_int = 0o600;

/// The longest message the demo sends or receives through a System V queue.
pub const MAX_MESSAGE: usize = 128;

/// A System V IPC key (`key_t`). Key 0 is `IPC_PRIVATE`, which always makes a new object and can never
/// be looked up, so it is refused here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Key(i32);

/// Why a key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("invalid key {0:?}: expected a number such as 0x1d5e0001 or 492699649")]
    NotANumber(String),
    #[error("invalid key {0:?}: it does not fit in 32 bits")]
    TooBig(String),
    #[error("invalid key 0: it is IPC_PRIVATE, which always makes a new object and cannot be looked up")]
    Private,
}

impl Key {
    /// A key from its 32 bits.
    pub const fn new(bits: u32) -> Key {
        Key(bits as i32)
    }

    /// Parses `0x1d5e0001` (hex) or `492699649` (decimal); refuses 0 (IPC_PRIVATE).
    pub fn parse(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse::<u64>(),
        }
        .map_err(|_| KeyError::NotANumber(text.to_owned()))?;
        let bits = u32::try_from(parsed).map_err(|_| KeyError::TooBig(text.to_owned()))?;
        if bits == 0 {
            return Err(KeyError::Private);
        }
        Ok(Key::new(bits))
    }

    /// The key as `key_t`, the type the system calls take.
    pub const fn raw(self) -> libc::key_t {
        self.0
    }

    /// The key's 32 bits (`/proc/sysvipc` prints keys as signed decimals; people write them in hex).
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.bits())
    }
}

/// The three kinds of System V object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Msg,
    Sem,
    Shm,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Msg, Kind::Sem, Kind::Shm];

    /// The file that lists this kind's objects for the reader's IPC namespace.
    pub const fn proc_file(self) -> &'static str {
        match self {
            Kind::Msg => "/proc/sysvipc/msg",
            Kind::Sem => "/proc/sysvipc/sem",
            Kind::Shm => "/proc/sysvipc/shm",
        }
    }

    /// What a person calls it.
    pub const fn noun(self) -> &'static str {
        match self {
            Kind::Msg => "msg queue",
            Kind::Sem => "semaphore set",
            Kind::Shm => "shm segment",
        }
    }

    /// The call that looks a key up.
    pub const fn get_call(self) -> &'static str {
        match self {
            Kind::Msg => "msgget",
            Kind::Sem => "semget",
            Kind::Shm => "shmget",
        }
    }
}

// ANCHOR: wrappers
/// `msgget(key, IPC_CREAT|IPC_EXCL|0600)`: a new message queue, or EEXIST if the key is taken.
pub fn msg_create(key: Key) -> Result<i32, Errno> {
    // SAFETY: msgget takes two integers and touches no memory of ours.
    Errno::result(unsafe { libc::msgget(key.raw(), libc::IPC_CREAT | libc::IPC_EXCL | MODE) })
}

/// `semget(key, nsems, IPC_CREAT|IPC_EXCL|0600)`: a new set of `nsems` semaphores.
pub fn sem_create(key: Key, nsems: i32) -> Result<i32, Errno> {
    // SAFETY: semget takes three integers and touches no memory of ours.
    Errno::result(unsafe { libc::semget(key.raw(), nsems, libc::IPC_CREAT | libc::IPC_EXCL | MODE) })
}

/// `shmget(key, size, IPC_CREAT|IPC_EXCL|0600)`: a new shared memory segment of `size` bytes.
pub fn shm_create(key: Key, size: usize) -> Result<i32, Errno> {
    // SAFETY: shmget takes integers only; the segment is not mapped into this process.
    Errno::result(unsafe { libc::shmget(key.raw(), size, libc::IPC_CREAT | libc::IPC_EXCL | MODE) })
}

/// Looks `key` up in the caller's IPC namespace: the object's id, or ENOENT when no object there has
/// this key (the `*get` calls with no flags never create anything).
pub fn get(kind: Kind, key: Key) -> Result<i32, Errno> {
    let id = match kind {
        // SAFETY: msgget takes two integers and touches no memory of ours.
        Kind::Msg => unsafe { libc::msgget(key.raw(), 0) },
        // SAFETY: semget takes integers; nsems 0 means "any size" for an existing set.
        Kind::Sem => unsafe { libc::semget(key.raw(), 0, 0) },
        // SAFETY: shmget takes integers; size 0 means "any size" for an existing segment.
        Kind::Shm => unsafe { libc::shmget(key.raw(), 0, 0) },
    };
    Errno::result(id)
}

/// Removes the object with this id (`IPC_RMID`) from the caller's IPC namespace. Only system calls,
/// no allocation: a signal handler may call it.
pub fn remove(kind: Kind, id: i32) -> Result<(), Errno> {
    let rc = match kind {
        // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is allowed.
        Kind::Msg => unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
        // SAFETY: IPC_RMID takes no fourth argument; semctl is variadic and reads none.
        Kind::Sem => unsafe { libc::semctl(id, 0, libc::IPC_RMID) },
        // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is allowed.
        Kind::Shm => unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
    };
    Errno::result(rc).map(drop)
}

/// The buffer msgsnd(2) and msgrcv(2) use: a positive message type, then the text.
#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; MAX_MESSAGE],
}

/// Sends `text` (at most [`MAX_MESSAGE`] bytes) as a message of type 1, without waiting for room.
pub fn msg_send(id: i32, text: &[u8]) -> Result<(), Errno> {
    if text.len() > MAX_MESSAGE {
        return Err(Errno::E2BIG);
    }
    let mut buf = MsgBuf {
        mtype: 1,
        mtext: [0; MAX_MESSAGE],
    };
    buf.mtext[..text.len()].copy_from_slice(text);
    // SAFETY: `buf` is a valid msgbuf (a c_long type then the text) and the size passed counts only
    // the `text.len()` initialized text bytes after the type, as msgsnd requires.
    let rc = unsafe { libc::msgsnd(id, (&raw const buf).cast(), text.len(), libc::IPC_NOWAIT) };
    Errno::result(rc).map(drop)
}

/// Takes the first message off the queue, without waiting: ENOMSG when the queue is empty.
pub fn msg_receive(id: i32) -> Result<Vec<u8>, Errno> {
    let mut buf = MsgBuf {
        mtype: 0,
        mtext: [0; MAX_MESSAGE],
    };
    // SAFETY: `buf` has room for a c_long type and MAX_MESSAGE bytes of text, the size passed; the
    // kernel writes at most that (MSG_NOERROR truncates a longer message instead of failing).
    let got = unsafe {
        libc::msgrcv(
            id,
            (&raw mut buf).cast(),
            MAX_MESSAGE,
            0,
            libc::IPC_NOWAIT | libc::MSG_NOERROR,
        )
    };
    let len = Errno::result(got)? as usize;
    Ok(buf.mtext[..len].to_vec())
}
// ANCHOR_END: wrappers

/// One line of `/proc/sysvipc/*`: an object in the reader's IPC namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Object {
    pub kind: Kind,
    pub key: Key,
    pub id: i32,
    /// Bytes queued (msg), number of semaphores (sem), or size in bytes (shm).
    pub size: u64,
    /// Messages queued (msg), attached processes (shm), 0 for a semaphore set.
    pub count: u64,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        match self.kind {
            Kind::Msg => write!(
                f,
                "{}, {}",
                plural(self.count, "message"),
                plural(self.size, "byte")
            ),
            Kind::Sem => f.write_str(&plural(self.size, "semaphore")),
            Kind::Shm => f.write_str(&plural(self.size, "byte")),
        }
    }
}

// ANCHOR: list
/// Parses one `/proc/sysvipc/*` file. The columns (proc(5)) start `key id perms`, then for msg
/// `cbytes qnum`, for sem `nsems`, for shm `size cpid lpid nattch`.
pub fn parse_proc(kind: Kind, text: &str) -> Vec<Object> {
    let number = |field: Option<&str>| field.and_then(|f| f.parse::<i64>().ok());
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let key = number(cols.first().copied())?;
            let id = number(cols.get(1).copied())?;
            let col = |i: usize| number(cols.get(i).copied()).unwrap_or(0) as u64;
            let (size, count) = match kind {
                Kind::Msg => (col(3), col(4)),
                Kind::Sem => (col(3), 0),
                Kind::Shm => (col(3), col(6)),
            };
            Some(Object {
                kind,
                key: Key(key as i32),
                id: id as i32,
                size,
                count,
            })
        })
        .collect()
}

/// The objects of one kind in the caller's IPC namespace, as `/proc/sysvipc` lists them.
pub fn list(kind: Kind) -> io::Result<Vec<Object>> {
    Ok(parse_proc(kind, &fs::read_to_string(kind.proc_file())?))
}

/// Every System V object in the caller's IPC namespace.
pub fn objects() -> io::Result<Vec<Object>> {
    let mut all = Vec::new();
    for kind in Kind::ALL {
        all.extend(list(kind)?);
    }
    Ok(all)
}
// ANCHOR_END: list

/// How many objects of each kind the caller's namespace holds, in [`Kind::ALL`] order.
pub fn counts() -> io::Result<[usize; 3]> {
    let mut counts = [0; 3];
    for (slot, kind) in counts.iter_mut().zip(Kind::ALL) {
        *slot = list(kind)?.len();
    }
    Ok(counts)
}

/// What one side sees of one key: does `*get(key)` reach an object, and is one listed in /proc?
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sighting {
    pub kind: Kind,
    pub key: Key,
    /// The id `*get` returned, or its errno.
    #[serde(with = "nskit::channel::errno_or")]
    pub reached: Result<i32, Errno>,
    /// The `/proc/sysvipc` line with this key, if any.
    pub listed: Option<Object>,
}

/// Looks for `key` among the objects of `kind`, both ways.
pub fn sight(kind: Kind, key: Key) -> io::Result<Sighting> {
    Ok(Sighting {
        kind,
        key,
        reached: get(kind, key),
        listed: list(kind)?.into_iter().find(|o| o.key == key),
    })
}

/// The size of `MsgBuf`'s header, checked so the wrappers' size arguments stay right.
const _: () = assert!(mem::size_of::<MsgBuf>() == mem::size_of::<libc::c_long>() + MAX_MESSAGE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_print_in_hex() {
        assert_eq!(Key::parse("0x1d5e0001").unwrap().to_string(), "0x1d5e0001");
        assert_eq!(Key::parse("492699649").unwrap(), Key::new(0x1d5e0001));
        assert_eq!(Key::parse("0xffffffff").unwrap().raw(), -1);
        assert_eq!(Key::new(7).to_string(), "0x00000007");
        assert_eq!(Key::parse("0"), Err(KeyError::Private));
        assert_eq!(Key::parse("0x0"), Err(KeyError::Private));
        assert!(matches!(Key::parse("0x100000000"), Err(KeyError::TooBig(_))));
        assert!(matches!(Key::parse("-1"), Err(KeyError::NotANumber(_))));
        assert!(matches!(Key::parse("key"), Err(KeyError::NotANumber(_))));
    }

    #[test]
    fn proc_files_parse() {
        let msg = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n 492699649          3   600          19          1   10    0     0     0     0     0 1 0 1\n";
        assert_eq!(
            parse_proc(Kind::Msg, msg),
            [Object {
                kind: Kind::Msg,
                key: Key::new(0x1d5e0001),
                id: 3,
                size: 19,
                count: 1
            }]
        );
        let shm = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n        -1      32769   600                  4096   1  0      2     0     0     0     0          0          0 1 0 0\n";
        let parsed = parse_proc(Kind::Shm, shm);
        assert_eq!(
            (parsed[0].key.bits(), parsed[0].size, parsed[0].count),
            (u32::MAX, 4096, 2)
        );
        assert_eq!(parsed[0].to_string(), "4096 bytes");
    }

    #[test]
    fn sightings_survive_the_channel() {
        let seen = Sighting {
            kind: Kind::Sem,
            key: Key::new(0xfeed0001),
            reached: Ok(5),
            listed: Some(Object {
                kind: Kind::Sem,
                key: Key::new(0xfeed0001),
                id: 5,
                size: 2,
                count: 0,
            }),
        };
        let trip =
            |s: &Sighting| serde_json::from_str::<Sighting>(&serde_json::to_string(s).unwrap()).unwrap();
        assert_eq!(trip(&seen), seen);
        let missing = Sighting {
            kind: Kind::Msg,
            key: Key::new(1),
            reached: Err(Errno::ENOENT),
            listed: None,
        };
        assert_eq!(trip(&missing), missing);
    }
}
