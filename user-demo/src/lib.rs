//! Chapter: the user namespace, which gives a process its own uids, gids and capabilities, and is what
//! lets an ordinary user create every other kind of namespace (user_namespaces(7), capabilities(7)).
//!
//! Each function is one step of the lesson and returns plain data; `main.rs` prints it. The id-map
//! types and the map writing are shared plumbing in `nskit::idmap` (every rootless chapter writes maps);
//! they are re-exported here because this is the chapter that teaches them.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{Pid, Uid, getegid, geteuid};
use nskit::channel::{decode_fields, encode_fields};
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::spawn::{STACK_SIZE, wait_for};
use nskit::userns::is_root;
use nskit::{Channel, Exit, Spawn, SpawnError, UserNs};

pub use nskit::idmap::{
    IdMap, IdRange, MapError, Setgroups, WriteError, write_gid_map, write_maps, write_setgroups,
    write_uid_map,
};

/// The uid and gid of "nobody": what a root run drops to when it shows the rules that bind
/// unprivileged map writers (step 3).
pub const NOBODY: u32 = 65534;

/// Where the default map of a root run starts outside: a range like the ones `/etc/subuid` hands out,
/// so that root inside the namespace is an id with no privilege on the host.
pub const ROOT_RUN_BASE: u32 = 100_000;

/// How many ids the default map of a root run covers: 0..65535 inside, as rootless runtimes map.
pub const ROOT_RUN_COUNT: u32 = 65_536;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot create the sync channel: {0}")]
    Channel(#[source] io::Error),
    #[error("clone(CLONE_NEWUSER) failed: {errno}: {hint}")]
    Clone { errno: Errno, hint: String },
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("lost contact with the child: {0}")]
    Lost(#[source] io::Error),
    #[error("in the child: {0}")]
    Child(String),
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the capability sets: {0}")]
    Caps(String),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("malformed report from the child: {0:?}")]
    Malformed(Vec<String>),
    #[error("cannot open {path} to execute it: {source}")]
    Program {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

// ---------------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------------

/// One capability set as the kernel keeps it: bit `n` is capability number `n` (capabilities(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CapMask(pub u64);

/// The three sets that decide what a process may do and keep: effective (checked now), permitted
/// (may be made effective) and bounding (the most an `execve` can ever give back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSets {
    pub effective: CapMask,
    pub permitted: CapMask,
    pub bounding: CapMask,
}

// ANCHOR: read_caps
/// Reads the calling thread's effective, permitted and bounding sets with the `caps` crate (capget(2)
/// and prctl(PR_CAPBSET_READ)). Capabilities are always relative to the caller's user namespace: a
/// full set here means "everything, in the namespaces this user namespace owns".
pub fn read_caps() -> Result<CapSets, UserError> {
    let mask = |set: CapSet| {
        caps::read(None, set)
            .map(|caps| CapMask(caps.iter().fold(0, |acc, cap| acc | cap.bitmask())))
            .map_err(|e| UserError::Caps(e.to_string()))
    };
    Ok(CapSets {
        effective: mask(CapSet::Effective)?,
        permitted: mask(CapSet::Permitted)?,
        bounding: mask(CapSet::Bounding)?,
    })
}
// ANCHOR_END: read_caps

/// Every capability this kernel knows (`/proc/sys/kernel/cap_last_cap`), as a mask.
pub fn all_caps() -> CapMask {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    CapMask(known.iter().fold(0, |acc, cap| acc | cap.bitmask()))
}

impl CapMask {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every capability this kernel knows is in the set.
    pub fn is_full(self) -> bool {
        let all = all_caps().0;
        self.0 & all == all
    }

    /// The names of the capabilities in `self`, `CAP_CHOWN` first.
    pub fn names(self) -> Vec<String> {
        let mut caps: Vec<Capability> = caps::all()
            .into_iter()
            .filter(|cap| self.0 & cap.bitmask() != 0)
            .collect();
        caps.sort_by_key(Capability::index);
        caps.iter().map(Capability::to_string).collect()
    }
}

impl fmt::Display for CapMask {
    /// `all`, `none`, `all but CAP_X`, or the list of names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let missing = CapMask(all_caps().0 & !self.0);
        if self.is_empty() {
            f.write_str("none")
        } else if missing.is_empty() {
            f.write_str("all")
        } else if missing.names().len() <= 3 {
            write!(f, "all but {}", missing.names().join(","))
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

impl fmt::Display for CapSets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "eff={} perm={} bnd={}",
            self.effective, self.permitted, self.bounding
        )
    }
}

// ---------------------------------------------------------------------------------------------------
// What a process sees of itself, and what others see of it
// ---------------------------------------------------------------------------------------------------

/// Who a process is, in its own user namespace's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdView {
    pub userns: NsId,
    pub uid: u32,
    pub gid: u32,
    pub caps: CapSets,
}

impl fmt::Display for IdView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid={} gid={}  {}", self.uid, self.gid, self.caps)
    }
}

// ANCHOR: observe
/// Reads the caller's user namespace, ids and capabilities. `getuid(2)` answers in the caller's own
/// namespace: an id that has no mapping there reads as the overflow id (`/proc/sys/kernel/overflowuid`).
pub fn observe() -> Result<IdView, UserError> {
    Ok(IdView {
        userns: ns_id(Proc::Current, Kind::User).map_err(|source| UserError::Read {
            what: "/proc/self/ns/user".into(),
            source,
        })?,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        caps: read_caps()?,
    })
}
// ANCHOR_END: observe

impl IdView {
    /// The view as channel fields (also the output of the `caps-report` subcommand).
    pub fn to_fields(&self) -> Vec<String> {
        vec![
            self.userns.inode.to_string(),
            self.uid.to_string(),
            self.gid.to_string(),
            format!("{:x}", self.caps.effective.0),
            format!("{:x}", self.caps.permitted.0),
            format!("{:x}", self.caps.bounding.0),
        ]
    }

    /// The inverse of [`IdView::to_fields`].
    pub fn from_fields(fields: &[String]) -> Result<IdView, UserError> {
        let bad = || UserError::Malformed(fields.to_vec());
        let [inode, uid, gid, eff, perm, bnd] = fields else {
            return Err(bad());
        };
        let mask = |s: &str| u64::from_str_radix(s, 16).map(CapMask).map_err(|_| bad());
        Ok(IdView {
            userns: NsId {
                kind: Kind::User,
                inode: inode.parse().map_err(|_| bad())?,
            },
            uid: uid.parse().map_err(|_| bad())?,
            gid: gid.parse().map_err(|_| bad())?,
            caps: CapSets {
                effective: mask(eff)?,
                permitted: mask(perm)?,
                bounding: mask(bnd)?,
            },
        })
    }
}

/// The overflow uid the kernel shows for an id with no mapping (`/proc/sys/kernel/overflowuid`).
pub fn overflow_uid() -> u32 {
    fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NOBODY)
}

/// The `Uid:` and `Gid:` lines of `/proc/<pid>/status` (real, effective, saved, filesystem). The kernel
/// translates them into the *reader's* user namespace, so two readers may see different numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusIds {
    pub uid: String,
    pub gid: String,
}

impl fmt::Display for StatusIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid: {}  Gid: {}", self.uid, self.gid)
    }
}

/// Reads the `Uid:` and `Gid:` lines of `/proc/<pid>/status`, as seen by the caller.
pub fn status_ids(who: Proc) -> Result<StatusIds, UserError> {
    let path = who.dir().join("status");
    let text = fs::read_to_string(&path).map_err(|source| UserError::Read {
        what: path.display().to_string(),
        source,
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| rest.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    Ok(StatusIds {
        uid: field("Uid:"),
        gid: field("Gid:"),
    })
}

/// Reads `/proc/<pid>/uid_map` or `gid_map` as the caller sees it: the kernel prints the outside column
/// relative to the *reader's* user namespace. Lines are joined with `; `; an unwritten map is empty.
pub fn read_map(who: Proc, file: &str) -> Result<String, UserError> {
    let path = who.dir().join(file);
    let text = fs::read_to_string(&path).map_err(|source| UserError::Read {
        what: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; "))
}

/// Tries to set the host's hostname to the name it already has, so that even a success would change
/// nothing: a probe for CAP_SYS_ADMIN over the UTS namespace the caller is in.
pub fn rename_host() -> Result<(), Errno> {
    let current = nix::unistd::gethostname()?;
    nix::unistd::sethostname(current)
}

// ---------------------------------------------------------------------------------------------------
// The maps: choosing them, and writing them one file at a time
// ---------------------------------------------------------------------------------------------------

/// The maps a run uses when none is given: an ordinary user maps its own uid and gid to 0 (the only
/// map it may write by itself); root maps 0..65535 inside to 100000..165535 outside, so that root
/// inside is nobody in particular on the host (mapping 0 to 0 would make it the host's real root
/// wherever file ownership is checked).
pub fn default_maps() -> (IdMap, IdMap) {
    if is_root() {
        let range = IdRange {
            inside: 0,
            outside: ROOT_RUN_BASE,
            count: ROOT_RUN_COUNT,
        };
        let map = IdMap::new(vec![range]).expect("one non-empty range in bounds");
        (map.clone(), map)
    } else {
        (
            IdMap::root_is(geteuid().as_raw()),
            IdMap::root_is(getegid().as_raw()),
        )
    }
}

// ANCHOR: choose_maps
/// Turns the `--map` / `--gid-map` entries into maps the caller may really write, or says why not,
/// before anything is created: the ranges must form a valid map (no zero count, no overlap on either
/// side, in bounds) and, for an ordinary user, map only the caller's own id (user_namespaces(7)).
/// No uid entries means the defaults; no gid entries means "the same as the uid map".
pub fn choose_maps(uids: &[IdRange], gids: &[IdRange]) -> Result<(IdMap, IdMap), MapError> {
    if uids.is_empty() && gids.is_empty() {
        return Ok(default_maps());
    }
    let uid_map = if uids.is_empty() {
        default_maps().0
    } else {
        IdMap::new(uids.to_vec())?
    };
    let gid_map = if gids.is_empty() {
        IdMap::new(uid_map.ranges().to_vec())?
    } else {
        IdMap::new(gids.to_vec())?
    };
    let privileged = is_root();
    uid_map.check_writable_by(geteuid().as_raw(), privileged)?;
    gid_map.check_writable_by(getegid().as_raw(), privileged)?;
    Ok((uid_map, gid_map))
}
// ANCHOR_END: choose_maps

/// The lowest id that `map` leaves unmapped inside the namespace.
pub fn first_unmapped(map: &IdMap) -> u32 {
    let mut id = 0;
    while let Some(range) = map
        .ranges()
        .iter()
        .find(|r| id >= r.inside && id - r.inside < r.count)
    {
        id = range.inside + range.count;
    }
    id
}

// ANCHOR: take_ids
/// Runs in a freshly mapped child: takes `uid` and `gid` inside the namespace, as every runtime does
/// once the maps are written. A map only names ids; the child keeps the kernel ids it was cloned with
/// until it changes them. An ordinary user's child was cloned with the very id the map names, so this
/// changes nothing; root's child was cloned as the host's root (kernel uid 0), which a map of
/// 0 -> 100000 does not name: it reads as 65534 until setresuid(0) makes it kernel uid 100000. That
/// needs CAP_SETUID and CAP_SETGID in the namespace, which the child has. The supplementary groups go
/// too, where `setgroups` still says `allow`.
pub fn take_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    if fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow") {
        raw_setgroups_empty()?;
    }
    raw_setresgid(gid)?;
    raw_setresuid(uid)?;
    // Changing ids clears the "dumpable" flag, which hands this process's /proc/<pid> files, and those
    // of the children it clones, to the host's root: nobody inside could write a nested map.
    nix::sys::prctl::set_dumpable(true)
}
// ANCHOR_END: take_ids

// ANCHOR: raw_setxid
// Why raw system calls: glibc's setresuid/setresgid/setgroups give the new ids to every thread of the
// process (POSIX wants that) by signalling each thread on its list and waiting for it. A child cloned
// with clone(2) from a multi-threaded process, a test binary say, inherits that list with the parent's
// threads on it, which do not exist in the child: the wrapper waits forever. The system calls change
// the calling thread only, which in a cloned child is the whole process. Runtimes call them the same way.

/// setresuid(2) with all three ids equal, on the calling thread only.
fn raw_setresuid(uid: u32) -> Result<(), Errno> {
    // SAFETY: setresuid takes three integers and no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    Errno::result(rc).map(drop)
}

/// setresgid(2) with all three ids equal, on the calling thread only.
fn raw_setresgid(gid: u32) -> Result<(), Errno> {
    // SAFETY: setresgid takes three integers and no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    Errno::result(rc).map(drop)
}

/// setgroups(2) with an empty list, on the calling thread only.
fn raw_setgroups_empty() -> Result<(), Errno> {
    raw_setgroups(&[])
}

/// setgroups(2), on the calling thread only.
fn raw_setgroups(groups: &[u32]) -> Result<(), Errno> {
    // SAFETY: the kernel reads `groups.len()` gid_t values (u32) from the slice's pointer, which is
    // valid for that many; with a length of 0 it reads nothing.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    Errno::result(rc).map(drop)
}

/// A process's full identity, set as a runtime sets it before execve: the supplementary groups
/// first (while the process may still change them), then the gid, then the uid, with raw system calls
/// (above). The caller keeps its capabilities across the uid change with PR_SET_KEEPCAPS if it wants
/// them, since the kernel clears them when uid 0 leaves (capabilities(7)).
pub fn take_identity(uid: u32, gid: u32, groups: &[u32]) -> Result<(), Errno> {
    raw_setgroups(groups)?;
    raw_setresgid(gid)?;
    raw_setresuid(uid)
}
// ANCHOR_END: raw_setxid

/// The ids a child takes inside: 0 when the map names it, else the first range's first id.
pub fn inside_ids(uid_map: &IdMap, gid_map: &IdMap) -> (u32, u32) {
    let pick = |map: &IdMap| {
        if map.to_outside(0).is_some() {
            0
        } else {
            map.ranges()[0].inside
        }
    };
    (pick(uid_map), pick(gid_map))
}

/// One write to a `/proc/<pid>/` map file, and the kernel's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapWrite {
    pub file: String,
    /// What was written, lines joined with `; `.
    pub contents: String,
    pub result: Result<(), Errno>,
}

impl MapWrite {
    fn new(file: &str, contents: &str, result: Result<(), WriteError>) -> MapWrite {
        MapWrite {
            file: file.to_owned(),
            contents: contents.trim_end().replace('\n', "; "),
            result: result.map_err(|e| e.errno),
        }
    }

    fn of_map(file: &str, map: &IdMap, result: Result<(), WriteError>) -> MapWrite {
        MapWrite::new(file, &map.to_proc_format(), result)
    }

    fn to_fields(&self) -> [String; 3] {
        [self.file.clone(), self.contents.clone(), errno_field(self.result)]
    }

    fn from_fields(fields: &[String]) -> Result<MapWrite, UserError> {
        match fields {
            [file, contents, result] => Ok(MapWrite {
                file: file.clone(),
                contents: contents.clone(),
                result: parse_errno_field(result)?,
            }),
            _ => Err(UserError::Malformed(fields.to_vec())),
        }
    }
}

// ANCHOR: write_in_order
/// The parent's half of the handshake, one file at a time, stopping at the first refusal:
/// 1. `setgroups` = `deny`, when the writer is unprivileged (else the gid map is refused);
/// 2. `gid_map`; 3. `uid_map`. Each file takes a single `write(2)`, once.
pub fn write_in_order(who: Proc, uid_map: &IdMap, gid_map: &IdMap, unprivileged: bool) -> Vec<MapWrite> {
    let mut done = Vec::new();
    if unprivileged {
        done.push(MapWrite::new(
            "setgroups",
            "deny",
            write_setgroups(who, Setgroups::Deny),
        ));
    }
    if done.iter().all(|w| w.result.is_ok()) {
        done.push(MapWrite::of_map("gid_map", gid_map, write_gid_map(who, gid_map)));
    }
    if done.iter().all(|w| w.result.is_ok()) {
        done.push(MapWrite::of_map("uid_map", uid_map, write_uid_map(who, uid_map)));
    }
    done
}
// ANCHOR_END: write_in_order

// ---------------------------------------------------------------------------------------------------
// A child in a new user namespace, cloned by hand (steps 1 to 3)
// ---------------------------------------------------------------------------------------------------

/// A child cloned by [`clone_userns`]. Dropping it without [`UserChild::wait`] kills and reaps it.
#[derive(Debug)]
pub struct UserChild {
    pid: Pid,
    channel: Channel,
    reaped: bool,
}

// ANCHOR: clone_userns
/// Clones a child into a new user namespace and runs `body` there, with one end of a sync channel;
/// the child exits with the code `body` returns (101 if it panics). No map is written: that is the
/// parent's job, and until it is done the child is "nobody" with every capability.
pub fn clone_userns<F>(body: F) -> Result<UserChild, UserError>
where
    F: FnOnce(&mut Channel) -> i32,
{
    let (parent_end, mut child_end) = Channel::pair().map_err(UserError::Channel)?;
    let mut body = Some(body);
    let child_main = Box::new(move || -> isize {
        let body = body.take().expect("clone runs its callback once");
        let code = panic::catch_unwind(AssertUnwindSafe(|| body(&mut child_end))).unwrap_or(101);
        // The child leaves through exit(3), which does not flush Rust's stdout buffer.
        let _ = io::stdout().flush();
        code as isize
    });
    let mut stack = vec![0u8; STACK_SIZE];
    // SAFETY: the child runs `child_main` on `stack`, which outlives the call (the child has its own
    // copy of the address space). The callback only runs Rust code this process could run, and its
    // return ends the child with exit(), so it never returns into the caller's frames.
    let pid = unsafe {
        nix::sched::clone(
            child_main,
            &mut stack,
            CloneFlags::CLONE_NEWUSER,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(|errno| UserError::Clone {
        errno,
        hint: nskit::userns::explain_failure(errno),
    })?;
    Ok(UserChild {
        pid,
        channel: parent_end,
        reaped: false,
    })
}
// ANCHOR_END: clone_userns

impl UserChild {
    /// The child's PID, as the caller's PID namespace numbers it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The parent's end of the sync channel.
    pub fn channel(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// Waits for the child to end.
    pub fn wait(mut self) -> io::Result<Exit> {
        self.reaped = true;
        wait_for(self.pid)
    }

    /// Tells the child to exit (it waits for `exit`) and reaps it.
    pub fn finish(mut self) -> Result<Exit, UserError> {
        self.channel.send("exit").map_err(UserError::Lost)?;
        self.wait().map_err(UserError::Lost)
    }
}

impl Drop for UserChild {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = wait_for(self.pid);
        }
    }
}

/// What the child of steps 1 and 2 reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfReport {
    pub view: IdView,
    /// Its own `/proc/self/status` lines.
    pub status: StatusIds,
    /// Setting the host's hostname (the child is still in the host's UTS namespace).
    pub rename_host: Result<(), Errno>,
    /// After the maps: taking the mapped ids with setresgid/setresuid ([`take_ids`]).
    pub took_ids: Option<Result<(), Errno>>,
}

/// Step 1's child looks at itself; it runs in the child, before and after the maps.
fn self_report(took_ids: Option<Result<(), Errno>>) -> Result<Vec<String>, String> {
    let view = observe().map_err(|e| e.to_string())?;
    let status = status_ids(Proc::Current).map_err(|e| e.to_string())?;
    let mut fields = view.to_fields();
    fields.extend([
        status.uid,
        status.gid,
        errno_field(rename_host()),
        took_ids.map_or_else(|| "-".to_owned(), errno_field),
    ]);
    Ok(fields)
}

impl SelfReport {
    fn from_fields(fields: &[String]) -> Result<SelfReport, UserError> {
        let bad = || UserError::Malformed(fields.to_vec());
        let (view, rest) = fields.split_at_checked(6).ok_or_else(bad)?;
        let [uid, gid, rename, took] = rest else {
            return Err(bad());
        };
        Ok(SelfReport {
            view: IdView::from_fields(view)?,
            status: StatusIds {
                uid: uid.clone(),
                gid: gid.clone(),
            },
            rename_host: parse_errno_field(rename)?,
            took_ids: match took.as_str() {
                "-" => None,
                field => Some(parse_errno_field(field)?),
            },
        })
    }
}

/// Step 1: a child in a new user namespace, waiting for its maps.
#[derive(Debug)]
pub struct Unmapped {
    child: UserChild,
    /// What the child saw of itself before any map was written.
    pub before: SelfReport,
}

// ANCHOR: spawn_unmapped
/// Step 1: clones a child into a new user namespace. It reports what it sees before any map exists,
/// then waits on the channel for `mapped`, takes the ids `(uid, gid)` inside, looks again, reports,
/// and waits for `exit`.
pub fn spawn_unmapped(uid: u32, gid: u32) -> Result<Unmapped, UserError> {
    let mut child = clone_userns(|channel| {
        let before = self_report(None);
        if send_reply(channel, before) != 0 || channel.expect("mapped").is_err() {
            return 1;
        }
        let after = self_report(Some(take_ids(uid, gid)));
        if send_reply(channel, after) != 0 || channel.expect("exit").is_err() {
            return 1;
        }
        0
    })?;
    let before = SelfReport::from_fields(&recv_reply(child.channel())?)?;
    Ok(Unmapped { child, before })
}
// ANCHOR_END: spawn_unmapped

impl Unmapped {
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// What the host reads in the child's `/proc/<pid>/status`.
    pub fn host_sees(&self) -> Result<StatusIds, UserError> {
        status_ids(Proc::Pid(self.pid()))
    }

    // ANCHOR: map_and_release
    /// Step 2: the parent writes the child's maps while it waits. An ordinary user writes
    /// `setgroups` first; root may leave it at `allow`. Returns every write and the kernel's answer.
    pub fn write_maps(&self, uid_map: &IdMap, gid_map: &IdMap) -> Vec<MapWrite> {
        write_in_order(Proc::Pid(self.pid()), uid_map, gid_map, !is_root())
    }

    /// Step 2, continued: tells the child its maps are written and collects what it sees now.
    pub fn release(mut self) -> Result<Mapped, UserError> {
        self.child.channel().send("mapped").map_err(UserError::Lost)?;
        let after = SelfReport::from_fields(&recv_reply(self.child.channel())?)?;
        Ok(Mapped {
            child: self.child,
            after,
        })
    }
    // ANCHOR_END: map_and_release
}

/// Step 2: the child after its maps were written.
#[derive(Debug)]
pub struct Mapped {
    child: UserChild,
    pub after: SelfReport,
}

impl Mapped {
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// What the host reads in the child's `/proc/<pid>/status`.
    pub fn host_sees(&self) -> Result<StatusIds, UserError> {
        status_ids(Proc::Pid(self.pid()))
    }

    /// What the host reads in the child's `/proc/<pid>/uid_map`.
    pub fn host_reads_uid_map(&self) -> Result<String, UserError> {
        read_map(Proc::Pid(self.pid()), "uid_map")
    }

    /// Lets the child exit and reaps it.
    pub fn finish(self) -> Result<Exit, UserError> {
        self.child.finish()
    }
}

// ---------------------------------------------------------------------------------------------------
// Step 3: the rules for writing maps, broken one at a time
// ---------------------------------------------------------------------------------------------------

/// Which rule of user_namespaces(7) a write in step 3 tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// gid_map by an unprivileged writer while setgroups still says `allow`.
    GidMapBeforeDeny,
    /// uid_map naming an outside id that is not the writer's own.
    NotOwned,
    /// The handshake done right: setgroups deny, gid_map, uid_map.
    DoneRight,
    /// uid_map written a second time.
    Twice,
}

/// One write of step 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleAttempt {
    pub rule: Rule,
    pub write: MapWrite,
}

/// Step 3's results: who wrote, and every write with its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRules {
    pub writer_uid: u32,
    pub writer_gid: u32,
    /// True when the demo runs as root and a helper dropped to uid/gid 65534 to be the writer.
    pub dropped_from_root: bool,
    pub attempts: Vec<RuleAttempt>,
}

// ANCHOR: map_rules
/// Step 3: an unprivileged writer breaks the map rules one at a time against a fresh child. The rules
/// bind only writers without CAP_SETUID/CAP_SETGID over the parent namespace, so as root a helper
/// process drops to uid and gid 65534 first; as an ordinary user the helper stays who it is.
pub fn map_rules() -> Result<MapRules, UserError> {
    let drop_to_nobody = is_root();
    let mut helper = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| {
            let result = if drop_to_nobody {
                drop_privileges_to(NOBODY, NOBODY)
                    .map_err(|errno| format!("cannot become uid {NOBODY}: {errno}"))
            } else {
                Ok(())
            };
            let report = result.and_then(|()| break_the_rules().map_err(|e| e.to_string()));
            send_reply(channel, report)
        })?;
    let fields = recv_reply(helper.channel())?;
    helper.wait().map_err(UserError::Lost)?;
    let bad = || UserError::Malformed(fields.clone());
    let (ids, writes) = fields.split_at_checked(2).ok_or_else(bad)?;
    let attempts = writes
        .chunks(4)
        .map(|chunk| {
            let rule = match chunk.first().map(String::as_str) {
                Some("before-deny") => Rule::GidMapBeforeDeny,
                Some("not-owned") => Rule::NotOwned,
                Some("right") => Rule::DoneRight,
                Some("twice") => Rule::Twice,
                _ => return Err(bad()),
            };
            Ok(RuleAttempt {
                rule,
                write: MapWrite::from_fields(&chunk[1..])?,
            })
        })
        .collect::<Result<_, UserError>>()?;
    Ok(MapRules {
        writer_uid: ids[0].parse().map_err(|_| bad())?,
        writer_gid: ids[1].parse().map_err(|_| bad())?,
        dropped_from_root: drop_to_nobody,
        attempts,
    })
}

/// Runs in the helper: clones a target child and tries each write on its map files.
fn break_the_rules() -> Result<Vec<String>, UserError> {
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    let target = clone_userns(|channel| i32::from(channel.expect("exit").is_err()))?;
    let who = Proc::Pid(target.pid());
    let (own_uid, own_gid, real_root) = (IdMap::root_is(uid), IdMap::root_is(gid), IdMap::root_is(0));
    let mut tried = vec![
        (
            "before-deny",
            MapWrite::of_map("gid_map", &own_gid, write_gid_map(who, &own_gid)),
        ),
        (
            "not-owned",
            MapWrite::of_map("uid_map", &real_root, write_uid_map(who, &real_root)),
        ),
    ];
    for write in write_in_order(who, &own_uid, &own_gid, true) {
        tried.push(("right", write));
    }
    tried.push((
        "twice",
        MapWrite::of_map("uid_map", &own_uid, write_uid_map(who, &own_uid)),
    ));
    target.finish()?;
    let mut fields = vec![uid.to_string(), gid.to_string()];
    for (rule, write) in tried {
        fields.push(rule.to_owned());
        fields.extend(write.to_fields());
    }
    Ok(fields)
}
// ANCHOR_END: map_rules

// ANCHOR: drop_privileges
/// Gives up root for good, as `setpriv --reuid --regid --clear-groups` does: supplementary groups
/// first (that needs CAP_SETGID), then the gid, then the uid, which drops every capability.
pub fn drop_privileges_to(uid: u32, gid: u32) -> Result<(), Errno> {
    raw_setgroups_empty()?;
    raw_setresgid(gid)?;
    raw_setresuid(uid)?;
    // Changing credentials clears the "dumpable" flag, which hands the /proc/<pid> files of this
    // process, and of the children it clones, to root: the new user could not write their maps.
    nix::sys::prctl::set_dumpable(true)
}
// ANCHOR_END: drop_privileges

// ---------------------------------------------------------------------------------------------------
// Step 4: what root inside may do, and what it may not
// ---------------------------------------------------------------------------------------------------

/// A file only root may read. As root the demo makes one (mode 0600, removed on drop); as an ordinary
/// user it uses `/etc/shadow`, the host's own.
#[derive(Debug)]
pub struct RootOnlyFile {
    path: PathBuf,
    made_dir: Option<PathBuf>,
}

impl RootOnlyFile {
    /// Finds or makes the file; `None` when not root and the host has no unreadable `/etc/shadow`.
    pub fn prepare() -> io::Result<Option<RootOnlyFile>> {
        if !is_root() {
            let shadow = Path::new("/etc/shadow");
            let unreadable =
                matches!(File::open(shadow), Err(e) if e.kind() == io::ErrorKind::PermissionDenied);
            return Ok(unreadable.then(|| RootOnlyFile {
                path: shadow.to_owned(),
                made_dir: None,
            }));
        }
        let dir = std::env::temp_dir().join(format!("user-demo-{}", std::process::id()));
        fs::DirBuilder::new().mode(0o755).create(&dir)?;
        let file = RootOnlyFile {
            path: dir.join("secret"),
            made_dir: Some(dir),
        };
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)?
            .write_all(b"only root may read this\n")?;
        Ok(Some(file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootOnlyFile {
    fn drop(&mut self) {
        if let Some(dir) = &self.made_dir {
            let _ = fs::remove_file(&self.path);
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Step 4's results, all observed by a child that is mapped (root inside, by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Powers {
    pub view: IdView,
    /// The host's UTS and mount namespaces, where the child starts.
    pub host_uts: NsId,
    pub host_mnt: NsId,
    /// sethostname in the host's UTS namespace.
    pub rename_host: Result<(), Errno>,
    /// Opening the root-only file for reading, when there is one.
    pub read_secret: Option<Result<(), Errno>>,
    /// unshare(CLONE_NEWUTS | CLONE_NEWNS).
    pub unshare: Result<(), Errno>,
    /// The namespaces the child is in after unshare.
    pub uts: NsId,
    pub mnt: NsId,
    /// sethostname in its own new UTS namespace, and the name it reads back.
    pub rename_own: Result<(), Errno>,
    pub hostname: String,
    /// Mounting a tmpfs on /tmp in its own new mount namespace.
    pub mount_tmpfs: Result<(), Errno>,
}

// ANCHOR: inside_powers
/// Step 4: a mapped child tries the host's hostname and a root-only host file (both refused: its
/// capabilities count only inside its user namespace, and file access is checked on its outside ids),
/// then creates a UTS and a mount namespace, which its user namespace owns, and uses them.
pub fn inside_powers(
    uid_map: &IdMap,
    gid_map: &IdMap,
    secret: Option<&Path>,
    hostname: &str,
) -> Result<Powers, UserError> {
    let (uid, gid) = inside_ids(uid_map, gid_map);
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUSER).maps(uid_map.clone(), gid_map.clone());
    let mut child = spawn.run(|channel| {
        let report = (|| -> Result<Vec<String>, String> {
            take_ids(uid, gid).map_err(|e| format!("cannot take uid {uid} and gid {gid}: {e}"))?;
            let view = observe().map_err(|e| e.to_string())?;
            let host_uts = ns_id(Proc::Current, Kind::Uts).map_err(|e| e.to_string())?;
            let host_mnt = ns_id(Proc::Current, Kind::Mnt).map_err(|e| e.to_string())?;
            let rename_host = rename_host();
            let read_secret = secret.map(|path| File::open(path).map(drop).map_err(|e| io_errno(&e)));
            let unshare = nix::sched::unshare(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWNS);
            let (rename_own, mount_tmpfs) = if unshare.is_ok() {
                (nix::unistd::sethostname(hostname), mount_tmpfs_on_tmp())
            } else {
                (Err(Errno::ENOSYS), Err(Errno::ENOSYS))
            };
            let own_name = nix::unistd::gethostname().map_err(|e| e.to_string())?;
            let uts = ns_id(Proc::Current, Kind::Uts).map_err(|e| e.to_string())?;
            let mnt = ns_id(Proc::Current, Kind::Mnt).map_err(|e| e.to_string())?;
            let mut fields = view.to_fields();
            fields.extend([
                host_uts.inode.to_string(),
                host_mnt.inode.to_string(),
                errno_field(rename_host),
                read_secret.map_or_else(|| "-".to_owned(), errno_field),
                errno_field(unshare),
                uts.inode.to_string(),
                mnt.inode.to_string(),
                errno_field(rename_own),
                own_name.to_string_lossy().into_owned(),
                errno_field(mount_tmpfs),
            ]);
            Ok(fields)
        })();
        send_reply(channel, report)
    })?;
    let fields = recv_reply(child.channel())?;
    child.wait().map_err(UserError::Lost)?;
    Powers::from_fields(&fields)
}

/// Mounts a tmpfs over /tmp: allowed because the child's user namespace owns its new mount namespace.
/// That namespace was created by a less privileged user namespace, so the kernel turned its copies of
/// the host's shared mounts into slaves (mount_namespaces(7)): nothing propagates back to the host.
fn mount_tmpfs_on_tmp() -> Result<(), Errno> {
    use nix::mount::{MsFlags, mount};
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m"),
    )
}
// ANCHOR_END: inside_powers

impl Powers {
    fn from_fields(fields: &[String]) -> Result<Powers, UserError> {
        let bad = || UserError::Malformed(fields.to_vec());
        let (view, rest) = fields.split_at_checked(6).ok_or_else(bad)?;
        let [
            host_uts,
            host_mnt,
            rename_host,
            secret,
            unshare,
            uts,
            mnt,
            rename_own,
            name,
            mount,
        ] = rest
        else {
            return Err(bad());
        };
        let ns = |kind, s: &String| -> Result<NsId, UserError> {
            Ok(NsId {
                kind,
                inode: s.parse().map_err(|_| bad())?,
            })
        };
        Ok(Powers {
            view: IdView::from_fields(view)?,
            host_uts: ns(Kind::Uts, host_uts)?,
            host_mnt: ns(Kind::Mnt, host_mnt)?,
            rename_host: parse_errno_field(rename_host)?,
            read_secret: match secret.as_str() {
                "-" => None,
                s => Some(parse_errno_field(s)?),
            },
            unshare: parse_errno_field(unshare)?,
            uts: ns(Kind::Uts, uts)?,
            mnt: ns(Kind::Mnt, mnt)?,
            rename_own: parse_errno_field(rename_own)?,
            hostname: name.clone(),
            mount_tmpfs: parse_errno_field(mount)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// Step 5: capabilities across execve
// ---------------------------------------------------------------------------------------------------

/// Step 5's results for one child: its sets before `execve`, and those the new program reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecCaps {
    pub before: IdView,
    pub after: IdView,
}

/// The `caps-report` subcommand's output: the caller's view, as one line of tab-separated fields.
pub fn caps_report() -> Result<String, UserError> {
    Ok(encode_fields(&observe()?.to_fields()))
}

// ANCHOR: exec_caps
/// Step 5: a mapped child reads its sets, then `execve`s `program caps-report`, which reports its own.
/// capabilities(7) recalculates them on execve: a program without file capabilities keeps a full set
/// only when its uid is 0 in the namespace ("root" rule); any other uid ends with empty sets.
pub fn caps_across_exec(program: &Path, uid_map: &IdMap, gid_map: &IdMap) -> Result<ExecCaps, UserError> {
    // The parent opens the program and the child runs it by fd (fexecve(3)), so the child, whose ids
    // outside may not search the directories on the way, can still run it.
    let binary = File::open(program).map_err(|source| UserError::Program {
        path: program.to_owned(),
        source,
    })?;
    let (report_reader, report_writer) = UnixStream::pair().map_err(UserError::Channel)?;
    let (uid, gid) = inside_ids(uid_map, gid_map);
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUSER).maps(uid_map.clone(), gid_map.clone());
    let mut child = spawn.run(move |channel| {
        let before = take_ids(uid, gid)
            .map_err(|e| format!("cannot take uid {uid} and gid {gid}: {e}"))
            .and_then(|()| observe().map(|view| view.to_fields()).map_err(|e| e.to_string()));
        if send_reply(channel, before) != 0 {
            return 1;
        }
        // The new program's stdout is the report socket; on success, exec does not return.
        let exec = nix::unistd::dup2_stdout(&report_writer).and_then(|()| {
            nix::unistd::fexecve(
                &binary,
                &[c"user-demo", c"caps-report"],
                &[] as &[&std::ffi::CStr],
            )
        });
        let _ = channel.send(&format!("execve failed: {}", exec.unwrap_err()));
        127
    })?;
    let before = IdView::from_fields(&recv_reply(child.channel())?)?;
    let mut line = String::new();
    BufReader::new(report_reader)
        .read_line(&mut line)
        .map_err(UserError::Lost)?;
    if line.is_empty() {
        let why = child.channel().recv().unwrap_or_else(|e| e.to_string());
        return Err(UserError::Child(why));
    }
    child.wait().map_err(UserError::Lost)?;
    let after = IdView::from_fields(&decode_fields(line.trim_end_matches('\n')))?;
    Ok(ExecCaps { before, after })
}
// ANCHOR_END: exec_caps

/// The two maps step 5 uses, derived from the run's maps: uid 0 inside, and uid 1000 inside, both
/// standing for the outside id that the run's map gives to inside 0 (or its first range).
pub fn exec_maps(uid_map: &IdMap, gid_map: &IdMap) -> [(IdMap, IdMap); 2] {
    let outside = |map: &IdMap| map.to_outside(0).unwrap_or(map.ranges()[0].outside);
    let single = |inside, outside| {
        IdMap::new(vec![IdRange {
            inside,
            outside,
            count: 1,
        }])
        .expect("one range of one id")
    };
    let (uid, gid) = (outside(uid_map), outside(gid_map));
    [
        (single(0, uid), single(0, gid)),
        (single(1000, uid), single(1000, gid)),
    ]
}

// ---------------------------------------------------------------------------------------------------
// Step 6: a user namespace inside a user namespace
// ---------------------------------------------------------------------------------------------------

/// Step 6's results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nesting {
    pub level1: IdView,
    pub level2: IdView,
    pub level2_pid: Pid,
    /// Level 1 tries to map an id that its own namespace does not map.
    pub refused: MapWrite,
    /// The map level 1 wrote for level 2 (outside ids in level 1's terms).
    pub written: Vec<MapWrite>,
    /// Level 2's uid_map read by level 1 and by the host.
    pub map_seen_by_level1: String,
    pub map_seen_by_host: String,
    /// Level 2's /proc/<pid>/status seen by itself, by level 1 and by the host.
    pub status_seen_by_level2: StatusIds,
    pub status_seen_by_level1: StatusIds,
    pub status_seen_by_host: StatusIds,
    /// In level 2: fchown of a file to an id its namespace does not map, then to 0.
    pub unmapped_id: u32,
    pub chown_unmapped: Result<(), Errno>,
    pub chown_root: Result<(), Errno>,
}

// ANCHOR: nesting
/// Step 6: a mapped child (level 1) clones its own child into a nested user namespace (level 2) and
/// writes its maps. The outside ids in level 2's map are level 1's ids, and only ids mapped in level 1
/// may appear there. In level 2, chown to an id with no mapping fails with EINVAL.
pub fn nesting(uid_map: &IdMap, gid_map: &IdMap) -> Result<Nesting, UserError> {
    let unmapped_in_level1 = first_unmapped(uid_map);
    let (uid, gid) = inside_ids(uid_map, gid_map);
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUSER).maps(uid_map.clone(), gid_map.clone());
    let mut level1 = spawn.run(|channel| {
        let report = take_ids(uid, gid)
            .map_err(|e| format!("cannot take uid {uid} and gid {gid}: {e}"))
            .and_then(|()| level1_main(unmapped_in_level1).map_err(|e| e.to_string()));
        let (code, level2) = match report {
            Ok((fields, level2)) => (send_reply(channel, Ok(fields)), Some(level2)),
            Err(e) => (send_reply(channel, Err(e)), None),
        };
        // Level 2 stays alive until the host has looked at it.
        if channel.expect("exit").is_err() {
            return 1;
        }
        level2.map_or(code, |l2| i32::from(l2.finish().is_err()) | code)
    })?;
    let fields = recv_reply(level1.channel())?;
    let mut nesting = Nesting::from_fields(&fields)?;
    let level2 = Proc::Pid(nesting.level2_pid);
    nesting.map_seen_by_host = read_map(level2, "uid_map")?;
    nesting.status_seen_by_host = status_ids(level2)?;
    level1.channel().send("exit").map_err(UserError::Lost)?;
    level1.wait().map_err(UserError::Lost)?;
    Ok(nesting)
}

/// Runs in level 1: clones level 2, writes its maps (first a refused one), and collects the views.
fn level1_main(unmapped: u32) -> Result<(Vec<String>, UserChild), UserError> {
    let level1 = observe()?;
    let mut level2 = clone_userns(|channel| {
        if channel.expect("mapped").is_err() {
            return 1;
        }
        send_reply(channel, level2_report())
    })?;
    let who = Proc::Pid(level2.pid());
    let bad = IdMap::root_is(unmapped);
    let refused = MapWrite::of_map("uid_map", &bad, write_uid_map(who, &bad));
    // Level 1 holds CAP_SETUID and CAP_SETGID in its own namespace, the parent of level 2's: it is a
    // privileged writer there, and needs no `setgroups deny`.
    let (uid, gid) = (IdMap::root_is(level1.uid), IdMap::root_is(level1.gid));
    let written = write_in_order(who, &uid, &gid, false);
    if let Some(failed) = written.iter().find(|w| w.result.is_err()) {
        return Err(UserError::Child(format!(
            "level 1 cannot write level 2's {}: {:?}",
            failed.file, failed.result
        )));
    }
    level2.channel().send("mapped").map_err(UserError::Lost)?;
    let level2_fields = recv_reply(level2.channel())?;
    let mut fields = vec![level2.pid().to_string()];
    fields.extend(level1.to_fields());
    fields.extend(level2_fields);
    fields.extend(refused.to_fields());
    for write in &written {
        fields.extend(write.to_fields());
    }
    fields.push(read_map(who, "uid_map")?);
    let status = status_ids(who)?;
    fields.extend([status.uid, status.gid]);
    Ok((fields, level2))
}

/// Runs in level 2: who am I, and what chown makes of an id this namespace does not map.
fn level2_report() -> Result<Vec<String>, String> {
    let view = observe().map_err(|e| e.to_string())?;
    let status = status_ids(Proc::Current).map_err(|e| e.to_string())?;
    let file = nix::sys::memfd::memfd_create(c"user-demo", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    let unmapped = 1;
    let chown_unmapped = nix::unistd::fchown(&file, Some(Uid::from_raw(unmapped)), None);
    let chown_root = nix::unistd::fchown(&file, Some(Uid::from_raw(0)), None);
    let mut fields = view.to_fields();
    fields.extend([
        status.uid,
        status.gid,
        unmapped.to_string(),
        errno_field(chown_unmapped),
        errno_field(chown_root),
    ]);
    Ok(fields)
}
// ANCHOR_END: nesting

impl Nesting {
    fn from_fields(fields: &[String]) -> Result<Nesting, UserError> {
        let bad = || UserError::Malformed(fields.to_vec());
        // pid, level 1 (6), level 2 (6 + 5), refused (3), 2 writes (6), map, status (2)
        if fields.len() != 1 + 6 + 11 + 3 + 6 + 1 + 2 {
            return Err(bad());
        }
        let (pid, rest) = fields.split_at(1);
        let (l1, rest) = rest.split_at(6);
        let (l2, rest) = rest.split_at(6);
        let (l2_extra, rest) = rest.split_at(5);
        let (refused, rest) = rest.split_at(3);
        let (written, rest) = rest.split_at(6);
        let [map, status_uid, status_gid] = rest else {
            return Err(bad());
        };
        Ok(Nesting {
            level1: IdView::from_fields(l1)?,
            level2: IdView::from_fields(l2)?,
            level2_pid: Pid::from_raw(pid[0].parse().map_err(|_| bad())?),
            refused: MapWrite::from_fields(refused)?,
            written: written
                .chunks(3)
                .map(MapWrite::from_fields)
                .collect::<Result<_, _>>()?,
            map_seen_by_level1: map.clone(),
            map_seen_by_host: String::new(),
            status_seen_by_level2: StatusIds {
                uid: l2_extra[0].clone(),
                gid: l2_extra[1].clone(),
            },
            status_seen_by_level1: StatusIds {
                uid: status_uid.clone(),
                gid: status_gid.clone(),
            },
            status_seen_by_host: StatusIds {
                uid: String::new(),
                gid: String::new(),
            },
            unmapped_id: l2_extra[2].parse().map_err(|_| bad())?,
            chown_unmapped: parse_errno_field(&l2_extra[3])?,
            chown_root: parse_errno_field(&l2_extra[4])?,
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// The little protocol children use to answer
// ---------------------------------------------------------------------------------------------------

/// Sends `ok` and the fields, or `err` and a message; returns the child's exit code.
fn send_reply(channel: &mut Channel, reply: Result<Vec<String>, String>) -> i32 {
    let (fields, code) = match reply {
        Ok(mut fields) => {
            fields.insert(0, "ok".into());
            (fields, 0)
        }
        Err(message) => (vec!["err".into(), message], 1),
    };
    if channel.send_fields(&fields).is_err() {
        return 1;
    }
    code
}

/// Receives what [`send_reply`] sent.
fn recv_reply(channel: &mut Channel) -> Result<Vec<String>, UserError> {
    let mut fields = channel.recv_fields().map_err(UserError::Lost)?;
    match fields.first().map(String::as_str) {
        Some("ok") => Ok(fields.split_off(1)),
        Some("err") => Err(UserError::Child(fields.get(1).cloned().unwrap_or_default())),
        _ => Err(UserError::Malformed(fields)),
    }
}

fn errno_field(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => (errno as i32).to_string(),
    }
}

fn parse_errno_field(field: &str) -> Result<Result<(), Errno>, UserError> {
    match field {
        "ok" => Ok(Ok(())),
        code => code
            .parse()
            .map(|n| Err(Errno::from_raw(n)))
            .map_err(|_| UserError::Malformed(vec![field.to_owned()])),
    }
}

fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange {
            inside,
            outside,
            count,
        }
    }

    #[test]
    fn errno_fields_round_trip() {
        for result in [Ok(()), Err(Errno::EPERM), Err(Errno::EINVAL)] {
            assert_eq!(parse_errno_field(&errno_field(result)).unwrap(), result);
        }
        assert!(parse_errno_field("x").is_err());
    }

    #[test]
    fn views_round_trip() {
        let view = IdView {
            userns: NsId {
                kind: Kind::User,
                inode: 4026531837,
            },
            uid: 0,
            gid: 65534,
            caps: CapSets {
                effective: CapMask(0x1ff_ffff_ffff),
                permitted: CapMask(0),
                bounding: CapMask(1 << 21),
            },
        };
        assert_eq!(IdView::from_fields(&view.to_fields()).unwrap(), view);
        assert!(IdView::from_fields(&["1".into()]).is_err());
        let write = MapWrite {
            file: "uid_map".into(),
            contents: "0 1000 1".into(),
            result: Err(Errno::EPERM),
        };
        assert_eq!(MapWrite::from_fields(&write.to_fields()).unwrap(), write);
    }

    #[test]
    fn cap_masks_read_as_words() {
        assert_eq!(CapMask(0).to_string(), "none");
        assert_eq!(all_caps().to_string(), "all");
        let sys_admin = Capability::CAP_SYS_ADMIN.bitmask();
        assert_eq!(
            CapMask(all_caps().0 & !sys_admin).to_string(),
            "all but CAP_SYS_ADMIN"
        );
        assert_eq!(
            CapMask(Capability::CAP_CHOWN.bitmask() | Capability::CAP_KILL.bitmask()).to_string(),
            "CAP_CHOWN,CAP_KILL"
        );
        assert!(all_caps().is_full());
        assert!(!CapMask(sys_admin).is_full());
    }

    #[test]
    fn first_unmapped_skips_adjacent_ranges() {
        let map = |ranges| IdMap::new(ranges).unwrap();
        assert_eq!(first_unmapped(&map(vec![r(0, 1000, 1)])), 1);
        assert_eq!(first_unmapped(&map(vec![r(0, 100000, 65536)])), 65536);
        assert_eq!(first_unmapped(&map(vec![r(1, 1000, 1)])), 0);
        assert_eq!(first_unmapped(&map(vec![r(5, 1, 5), r(0, 100, 5)])), 10);
    }

    #[test]
    fn exec_maps_keep_the_outside_id() {
        let (uid_map, gid_map) = (IdMap::root_is(1000), IdMap::root_is(1001));
        let [(root_uid, root_gid), (user_uid, user_gid)] = exec_maps(&uid_map, &gid_map);
        assert_eq!(root_uid.ranges(), [r(0, 1000, 1)]);
        assert_eq!(root_gid.ranges(), [r(0, 1001, 1)]);
        assert_eq!(user_uid.ranges(), [r(1000, 1000, 1)]);
        assert_eq!(user_gid.ranges(), [r(1000, 1001, 1)]);
    }

    /// Every malformed spelling of a `--map` entry is a syntax error naming the entry (nskit's own
    /// tests cover more; these are the ones a learner types).
    #[test]
    fn malformed_entries_are_syntax_errors() {
        for bad in [
            "",
            ":",
            "::",
            "0::1",
            "0:1:1:",
            "-0:1:1",
            "0:-1:1",
            "0:1:+1",
            "0:1:1\n",
            "0 1 1",
            "0,1,1",
            "zero:1:1",
            "\u{ff11}:1:1",
            "4294967296:0:1",
            "0:1:1.0",
        ] {
            assert_eq!(
                bad.parse::<IdRange>(),
                Err(MapError::Syntax(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn invalid_maps_are_refused_before_anything_is_made() {
        let zero = [r(0, 1000, 0)];
        assert_eq!(choose_maps(&zero, &[]), Err(MapError::ZeroCount(r(0, 1000, 0))));
        let inside = [r(0, 1000, 10), r(9, 5000, 1)];
        assert_eq!(
            choose_maps(&inside, &[]),
            Err(MapError::InsideOverlap(inside[0], inside[1]))
        );
        let outside = [r(0, 1000, 10), r(100, 1005, 1)];
        assert_eq!(
            choose_maps(&outside, &[]),
            Err(MapError::OutsideOverlap(outside[0], outside[1]))
        );
        let large = [r(0, 4294967290, 10)];
        assert_eq!(choose_maps(&large, &[]), Err(MapError::TooLarge(large[0])));
        // The gid map is checked on its own too.
        let own = [r(0, geteuid().as_raw(), 1)];
        assert_eq!(choose_maps(&own, &zero), Err(MapError::ZeroCount(zero[0])));
    }

    #[test]
    fn only_root_may_map_ids_it_does_not_own() {
        let euid = geteuid().as_raw();
        let other = [r(0, euid.wrapping_add(1), 1)];
        let two = [r(0, euid, 2)];
        if is_root() {
            assert!(choose_maps(&other, &[]).is_ok());
            assert!(choose_maps(&two, &[]).is_ok());
        } else {
            assert_eq!(
                choose_maps(&other, &[]),
                Err(MapError::NotOwned {
                    range: other[0],
                    own: euid
                })
            );
            assert!(matches!(choose_maps(&two, &[]), Err(MapError::NotOwned { .. })));
            let egid = getegid().as_raw();
            let gid_other = [r(0, egid.wrapping_add(1), 1)];
            let uid_own = [r(0, euid, 1)];
            assert!(matches!(
                choose_maps(&uid_own, &gid_other),
                Err(MapError::NotOwned { .. })
            ));
        }
    }

    #[test]
    fn defaults_follow_the_caller() {
        let (uid_map, gid_map) = choose_maps(&[], &[]).unwrap();
        if is_root() {
            assert_eq!(uid_map.ranges(), [r(0, ROOT_RUN_BASE, ROOT_RUN_COUNT)]);
        } else {
            assert_eq!(uid_map.ranges(), [r(0, geteuid().as_raw(), 1)]);
            assert_eq!(gid_map.ranges(), [r(0, getegid().as_raw(), 1)]);
        }
        assert_eq!(inside_ids(&uid_map, &gid_map), (0, 0));
        let not_zero = IdMap::new(vec![r(1000, 5, 1)]).unwrap();
        assert_eq!(inside_ids(&not_zero, &not_zero), (1000, 1000));
    }

    #[test]
    fn map_text_is_one_line() {
        let map = IdMap::new(vec![r(0, 100000, 10), r(10, 2000, 1)]).unwrap();
        let write = MapWrite::of_map("uid_map", &map, Ok(()));
        assert_eq!(write.contents, "0 100000 10; 10 2000 1");
    }
}
