//! Chapter 2, the IPC namespace: each IPC namespace has its own System V message queues, semaphore
//! sets and shared memory segments, and its own POSIX message queues; POSIX shared memory is not among
//! them (ipc_namespaces(7), sysvipc(7), mq_overview(7)).
//!
//! Each public function is one step of the lesson and returns plain data; `main.rs` prints it. The
//! System V wrappers are in [`sysv`], POSIX IPC and the mqueue mount in [`posix`], and the guards
//! that remove the demo's host-side objects, even on Ctrl-C, in [`cleanup`].

pub mod cleanup;
pub mod posix;
pub mod sysv;

use std::fs::File;
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nskit::ns::{Kind, NsId, Proc, ns_id, open_ns};
use nskit::{Channel, Child, Spawn, SpawnError, UserNs};

use crate::cleanup::{HostObject, RegistryFull, SignalsHeld, What};
use crate::posix::{PosixName, QueueFile};
use crate::sysv::{Key, Sighting};

/// The key the demo uses unless told otherwise (`--key`).
pub const DEFAULT_KEY: Key = Key::new(0x1d5e_0001);
/// The message the host side leaves in its queues.
pub const HOST_MESSAGE: &str = "hello from the host";
/// The message sent and received inside a namespace.
pub const NS_MESSAGE: &str = "hello from the namespace";
/// What the host writes into its POSIX shared memory object.
pub const HOST_SHM_TEXT: &str = "written by the host";
/// The host's semaphore set and segment sizes; a namespace's objects with the same key get other
/// sizes, so that anyone can tell whose object a lookup found.
pub const HOST_SEMS: i32 = 1;
pub const HOST_SHM_SIZE: usize = 4096;
pub const NS_SEMS: i32 = 2;
pub const NS_SHM_SIZE: usize = 8192;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("lost contact with the child: {0}")]
    Channel(#[source] io::Error),
    #[error(
        "{what} {name} already exists on the host: another run of the demo, or another program, owns it; \
         pick another key with --key{hint}"
    )]
    Taken {
        what: &'static str,
        name: String,
        hint: String,
    },
    #[error("cannot {what}: {errno}")]
    Host { what: String, errno: Errno },
    #[error("cannot read this namespace's IPC objects: {0}")]
    Read(#[source] io::Error),
    #[error(transparent)]
    Registry(#[from] RegistryFull),
}

impl From<SpawnError> for StepError {
    fn from(e: SpawnError) -> StepError {
        StepError::Child(nskit::StepError::Spawn(e))
    }
}

impl StepError {
    fn host(what: impl Into<String>) -> impl FnOnce(Errno) -> StepError {
        let what = what.into();
        move |errno| StepError::Host { what, errno }
    }
}

// ANCHOR: view
/// What one process sees of a key through its IPC namespace.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct View {
    pub ns: NsId,
    /// The key looked up as each kind of object, in [`sysv::Kind::ALL`] order.
    pub sightings: Vec<Sighting>,
    /// How many objects of each kind the namespace holds, whatever their key.
    pub counts: [usize; 3],
}

/// Looks `key` up in the caller's IPC namespace, by `*get` and in `/proc/sysvipc`.
pub fn look(key: Key) -> io::Result<View> {
    let sightings = sysv::Kind::ALL
        .into_iter()
        .map(|kind| sysv::sight(kind, key))
        .collect::<io::Result<_>>()?;
    Ok(View {
        ns: ns_id(Proc::Current, Kind::Ipc)?,
        sightings,
        counts: sysv::counts()?,
    })
}
// ANCHOR_END: view

impl View {
    /// The sighting of one kind.
    pub fn of(&self, kind: sysv::Kind) -> &Sighting {
        self.sightings
            .iter()
            .find(|s| s.kind == kind)
            .expect("a view holds every kind")
    }
}

/// How a chapter child is spawned: a new IPC namespace plus `extra` (a mount namespace, say), and a
/// user namespace when the caller is not root or `force_userns` asks for one.
pub fn namespace_spawn(extra: CloneFlags, force_userns: bool) -> Spawn {
    let spawn = Spawn::new(CloneFlags::CLONE_NEWIPC | extra);
    if force_userns {
        spawn.user(UserNs::Always)
    } else {
        spawn
    }
}

/// Ends a spawned child at once with `code`. The chapter's children print nothing, and returning would
/// let nskit flush stdout: in a multi-threaded parent (a test binary) another thread may have held
/// stdout's lock when clone(2) copied the process, and the child would wait for it forever.
pub fn end_child(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process without running any code of ours; it has no preconditions.
    unsafe { libc::_exit(code) }
}

/// The child's side of every step: run `body`, send back what it saw, or why it failed.
fn reply<T: serde::Serialize>(channel: &mut Channel, result: Result<T, String>) -> i32 {
    i32::from(
        channel
            .reply(&result.map_err(|why| nskit::ChildError::new("ipc", why)))
            .is_err(),
    )
}

/// The parent's side: what the child saw, or its failure.
fn receive<T: serde::de::DeserializeOwned>(channel: &mut Channel) -> Result<T, StepError> {
    Ok(channel.recv_reply()?)
}

/// Runs `body` in a child spawned with `spawn`, waits for it, and returns what it sent.
fn in_child<T: serde::Serialize + serde::de::DeserializeOwned>(
    spawn: &Spawn,
    body: impl FnOnce() -> Result<T, String>,
) -> Result<T, StepError> {
    let mut child = spawn.run(|channel| {
        cleanup::forget_in_child();
        end_child(reply(channel, body()))
    })?;
    let seen = receive(child.channel());
    child.wait().map_err(StepError::Channel)?;
    seen
}

fn errno_text(what: &str, errno: Errno) -> String {
    format!("{what}: {errno}")
}

// ANCHOR: host_objects
/// The System V objects the demo made on the host side, under guards that remove them.
#[derive(Debug)]
pub struct HostObjects {
    pub key: Key,
    guards: Vec<HostObject>,
}

/// Step 1: a child of the demo, in the host's namespaces, makes a message queue (holding
/// [`HOST_MESSAGE`]), a set of [`HOST_SEMS`] semaphore and a [`HOST_SHM_SIZE`]-byte segment with `key`,
/// reports their ids and exits. The objects stay: they belong to the IPC namespace, not to a process.
pub fn make_host_objects(key: Key) -> Result<HostObjects, StepError> {
    // Held from before the objects exist until their guards do: a Ctrl-C in between waits, then finds
    // them registered. The maker inherits the held signals, so it too finishes its work.
    let _held = SignalsHeld::hold().map_err(StepError::host("hold signals"))?;
    let mut maker = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| {
            // The ids made, or the call that failed and its errno.
            let made = make_sysv_set(key, HOST_SEMS, HOST_SHM_SIZE, HOST_MESSAGE)
                .map_err(|(kind, errno)| (kind, errno as i32));
            end_child(i32::from(channel.send_msg(&made).is_err()))
        })?;
    let made = maker.channel().recv_msg::<Result<[i32; 3], (sysv::Kind, i32)>>();
    maker.wait().map_err(StepError::Channel)?;
    let [msg, sem, shm] = made
        .map_err(StepError::Channel)?
        .map_err(|(kind, errno)| creation_failed(key, kind, Errno::from_raw(errno)))?;
    let mut guards = Vec::new();
    for (kind, id) in sysv::Kind::ALL.into_iter().zip([msg, sem, shm]) {
        match HostObject::register(What::Sysv(kind, id)) {
            Ok(guard) => guards.push(guard),
            Err(full) => {
                // The guards made so far remove their objects as they drop; remove the rest here.
                for (kind, id) in sysv::Kind::ALL
                    .into_iter()
                    .zip([msg, sem, shm])
                    .skip(guards.len())
                {
                    let _ = sysv::remove(kind, id);
                }
                return Err(full.into());
            }
        }
    }
    Ok(HostObjects { key, guards })
}

/// Makes a queue holding `message`, a set of `nsems` semaphores and a `shm_size`-byte segment, all with
/// `key`, in the caller's IPC namespace: all three or none. Returns their ids.
fn make_sysv_set(
    key: Key,
    nsems: i32,
    shm_size: usize,
    message: &str,
) -> Result<[i32; 3], (sysv::Kind, Errno)> {
    let msg = sysv::msg_create(key).map_err(|e| (sysv::Kind::Msg, e))?;
    let sem = sysv::sem_create(key, nsems).map_err(|e| {
        let _ = sysv::remove(sysv::Kind::Msg, msg);
        (sysv::Kind::Sem, e)
    })?;
    let undo = || {
        let _ = sysv::remove(sysv::Kind::Msg, msg);
        let _ = sysv::remove(sysv::Kind::Sem, sem);
    };
    let shm = sysv::shm_create(key, shm_size).map_err(|e| {
        undo();
        (sysv::Kind::Shm, e)
    })?;
    sysv::msg_send(msg, message.as_bytes()).map_err(|e| {
        undo();
        let _ = sysv::remove(sysv::Kind::Shm, shm);
        (sysv::Kind::Msg, e)
    })?;
    Ok([msg, sem, shm])
}

/// The same, for a child to report: the failure as text.
fn make_sysv_set_text(key: Key, nsems: i32, shm_size: usize, message: &str) -> Result<(), String> {
    make_sysv_set(key, nsems, shm_size, message)
        .map(drop)
        .map_err(|(kind, errno)| format!("{}({key}, IPC_CREAT|IPC_EXCL): {errno}", kind.get_call()))
}
// ANCHOR_END: host_objects

/// Explains the maker's failure: EEXIST means the key is taken on the host.
fn creation_failed(key: Key, kind: sysv::Kind, errno: Errno) -> StepError {
    let call = kind.get_call();
    let (what, option) = match kind {
        sysv::Kind::Msg => ("a message queue", "q"),
        sysv::Kind::Sem => ("a semaphore set", "s"),
        sysv::Kind::Shm => ("a shared memory segment", "m"),
    };
    if errno == Errno::EEXIST {
        StepError::Taken {
            what,
            name: format!("with key {key}"),
            hint: format!(", or remove it with `ipcrm -{} {key}`", option.to_uppercase()),
        }
    } else {
        StepError::Host {
            what: format!("make {what} with key {key} ({call})"),
            errno,
        }
    }
}

impl HostObjects {
    /// Removes the objects now, reporting each one: what the demo's last step prints.
    pub fn remove(self) -> Vec<(What, Result<(), Errno>)> {
        self.guards
            .into_iter()
            .map(|guard| (guard.what(), guard.remove()))
            .collect()
    }
}

// ANCHOR: look_inside
/// Step 2: a child in a new IPC namespace looks `key` up: nothing there has it.
pub fn look_in_new_namespace(spawn: &Spawn, key: Key) -> Result<View, StepError> {
    in_child(spawn, || look(key).map_err(|e| e.to_string()))
}

/// Step 3: a child in a new IPC namespace makes its own three objects with the same `key` (of other
/// sizes than the host's: [`NS_SEMS`], [`NS_SHM_SIZE`], and a queue holding [`NS_MESSAGE`]) and reports
/// what it then sees.
pub fn make_same_key_in_new_namespace(spawn: &Spawn, key: Key) -> Result<View, StepError> {
    in_child(spawn, || {
        make_sysv_set_text(key, NS_SEMS, NS_SHM_SIZE, NS_MESSAGE)?;
        look(key).map_err(|e| e.to_string())
    })
}
// ANCHOR_END: look_inside

/// What step 4's child did with its own queue.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageReport {
    pub ns: NsId,
    /// Its queue right after `msgsnd`, as `/proc/sysvipc/msg` lists it.
    pub queued: Sighting,
    /// What `msgrcv` returned.
    pub received: String,
}

// ANCHOR: message
/// Step 4: a child in a new IPC namespace makes a queue with `key`, sends [`NS_MESSAGE`] through it
/// and receives it back: the message never leaves the namespace.
pub fn message_in_new_namespace(spawn: &Spawn, key: Key) -> Result<MessageReport, StepError> {
    in_child(spawn, || {
        let id = sysv::msg_create(key).map_err(|e| errno_text("msgget", e))?;
        sysv::msg_send(id, NS_MESSAGE.as_bytes()).map_err(|e| errno_text("msgsnd", e))?;
        let queued = sysv::sight(sysv::Kind::Msg, key).map_err(|e| e.to_string())?;
        let received = sysv::msg_receive(id).map_err(|e| errno_text("msgrcv", e))?;
        Ok(MessageReport {
            ns: ns_id(Proc::Current, Kind::Ipc).map_err(|e| e.to_string())?,
            queued,
            received: String::from_utf8_lossy(&received).into_owned(),
        })
    })
}
// ANCHOR_END: message

/// The host's POSIX message queue, removed on drop.
#[derive(Debug)]
pub struct HostQueue {
    pub name: PosixName,
    queue: posix::Queue,
    guard: HostObject,
}

/// Step 5, host side: a POSIX message queue named after the key, holding [`HOST_MESSAGE`].
pub fn make_host_queue(key: Key) -> Result<HostQueue, StepError> {
    let name = PosixName::of(key);
    let _held = SignalsHeld::hold().map_err(StepError::host("hold signals"))?;
    let queue = posix::mq_create(&name).map_err(|errno| match errno {
        Errno::EEXIST => StepError::Taken {
            what: "the POSIX message queue",
            name: name.as_str().to_owned(),
            hint: String::new(),
        },
        errno => StepError::Host {
            what: format!("make the POSIX message queue {}", name.as_str()),
            errno,
        },
    })?;
    let guard = HostObject::register(What::Mqueue(key));
    let guard = match guard {
        Ok(guard) => guard,
        Err(full) => {
            let _ = posix::mq_remove(&name);
            return Err(full.into());
        }
    };
    posix::mq_put(&queue, HOST_MESSAGE.as_bytes()).map_err(StepError::host("mq_send"))?;
    Ok(HostQueue { name, queue, guard })
}

impl HostQueue {
    /// How many messages the host's queue holds.
    pub fn messages(&self) -> Result<i64, StepError> {
        posix::mq_messages(&self.queue).map_err(StepError::host("mq_getattr"))
    }

    /// Whether the host can open its queue by name.
    pub fn reachable(&self) -> Result<(), Errno> {
        posix::mq_open_existing(&self.name).map(drop)
    }

    /// Removes the queue's name now.
    pub fn remove(self) -> (What, Result<(), Errno>) {
        (self.guard.what(), self.guard.remove())
    }
}

/// What step 5's child saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MqReport {
    pub ns: NsId,
    pub mnt: NsId,
    /// Where it mounted its mqueue filesystem.
    pub mounted_on: String,
    /// The queues listed there before it made one: none.
    pub before: Vec<QueueFile>,
    /// Opening the host's queue by name.
    #[serde(with = "nskit::channel::errno_result")]
    pub open_host_name: Result<(), Errno>,
    /// The queues listed after it made its own with the same name and sent a message.
    pub after: Vec<QueueFile>,
    /// What it then received.
    pub received: String,
}

/// Where step 5's child mounts its mqueue filesystem, in its own mount namespace.
pub const MQUEUE_DIR: &str = "/dev/mqueue";

// ANCHOR: mqueue_inside
/// Step 5: a child in new IPC and mount namespaces makes its mounts private, mounts a tmpfs on /dev
/// (so that /dev/mqueue can be made without touching the host's /dev), mounts a fresh mqueue filesystem
/// on /dev/mqueue, and shows the host's queue is not there; then it makes and uses its own.
pub fn mqueue_in_new_namespace(spawn: &Spawn, key: Key) -> Result<MqReport, StepError> {
    let name = PosixName::of(key);
    in_child(spawn, || {
        let dir = Path::new(MQUEUE_DIR);
        posix::make_mounts_private().map_err(|e| e.to_string())?;
        posix::mount_tmpfs(Path::new("/dev")).map_err(|e| e.to_string())?;
        nix::unistd::mkdir(dir, Mode::from_bits_truncate(0o755))
            .map_err(|e| errno_text("mkdir /dev/mqueue", e))?;
        posix::mount_mqueue(dir).map_err(|e| e.to_string())?;
        let before = posix::list_queues(dir).map_err(|e| e.to_string())?;
        let open_host_name = posix::mq_open_existing(&name).map(drop);
        let queue = posix::mq_create(&name).map_err(|e| errno_text("mq_open(O_CREAT)", e))?;
        posix::mq_put(&queue, NS_MESSAGE.as_bytes()).map_err(|e| errno_text("mq_send", e))?;
        let after = posix::list_queues(dir).map_err(|e| e.to_string())?;
        let received = posix::mq_take(&queue).map_err(|e| errno_text("mq_receive", e))?;
        Ok(MqReport {
            ns: ns_id(Proc::Current, Kind::Ipc).map_err(|e| e.to_string())?,
            mnt: ns_id(Proc::Current, Kind::Mnt).map_err(|e| e.to_string())?,
            mounted_on: MQUEUE_DIR.into(),
            before,
            open_host_name,
            after,
            received: String::from_utf8_lossy(&received).into_owned(),
        })
    })
}
// ANCHOR_END: mqueue_inside

/// The host's POSIX shared memory object, removed on drop.
#[derive(Debug)]
pub struct HostShm {
    pub name: PosixName,
    guard: HostObject,
}

// ANCHOR: posix_shm_steps
/// Step 6, host side: a POSIX shared memory object named after the key, holding [`HOST_SHM_TEXT`].
pub fn make_host_shm(key: Key) -> Result<HostShm, StepError> {
    let name = PosixName::of(key);
    let _held = SignalsHeld::hold().map_err(StepError::host("hold signals"))?;
    posix::shm_create(&name, HOST_SHM_TEXT.as_bytes()).map_err(|errno| match errno {
        Errno::EEXIST => StepError::Taken {
            what: "the POSIX shared memory object",
            name: name.shm_path().display().to_string(),
            hint: String::new(),
        },
        errno => StepError::Host {
            what: format!("shm_open {}", name.as_str()),
            errno,
        },
    })?;
    match HostObject::register(What::PosixShm(key)) {
        Ok(guard) => Ok(HostShm { name, guard }),
        Err(full) => {
            let _ = posix::shm_remove(&name);
            Err(full.into())
        }
    }
}

/// What a child saw when it opened the host's POSIX shared memory object by name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShmReport {
    pub ipc: NsId,
    pub mnt: NsId,
    /// The text read, or the errno of `shm_open`.
    #[serde(with = "nskit::channel::errno_or")]
    pub read: Result<String, Errno>,
}

/// Step 6: a child in a new IPC namespace opens the host's POSIX shared memory object by name and reads
/// it. With `private_dev_shm` it is also in a new mount namespace and first mounts a tmpfs of its own
/// on /dev/shm: that, not the IPC namespace, is what hides the object.
pub fn read_shm_in_new_namespace(
    spawn: &Spawn,
    key: Key,
    private_dev_shm: bool,
) -> Result<ShmReport, StepError> {
    let name = PosixName::of(key);
    in_child(spawn, || {
        if private_dev_shm {
            posix::make_mounts_private().map_err(|e| e.to_string())?;
            posix::mount_tmpfs(Path::new("/dev/shm")).map_err(|e| e.to_string())?;
        }
        Ok(ShmReport {
            ipc: ns_id(Proc::Current, Kind::Ipc).map_err(|e| e.to_string())?,
            mnt: ns_id(Proc::Current, Kind::Mnt).map_err(|e| e.to_string())?,
            read: posix::shm_read(&name),
        })
    })
}
// ANCHOR_END: posix_shm_steps

impl HostShm {
    /// What the host reads through the name.
    pub fn read(&self) -> Result<String, Errno> {
        posix::shm_read(&self.name)
    }

    /// Removes the object now.
    pub fn remove(self) -> (What, Result<(), Errno>) {
        (self.guard.what(), self.guard.remove())
    }
}

/// Step 7's child: it made objects in its own IPC namespace and waits to be told to exit.
#[derive(Debug)]
pub struct Populated {
    child: Child,
    /// What it saw after making them.
    pub view: View,
}

/// What a process saw in step 7: the System V objects of its namespace, and whether a second big POSIX
/// queue fitted under the [`posix::ONE_BIG_QUEUE`] limit (EMFILE while the first one still exists).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Witness {
    pub view: View,
    #[serde(with = "nskit::channel::errno_result")]
    pub second_queue: Result<(), Errno>,
}

// ANCHOR: lifetime
/// Step 7: a child in a new IPC namespace, under an `RLIMIT_MSGQUEUE` with room for one big queue,
/// makes the three System V objects with `key` and one big POSIX queue, reports what it sees, and
/// waits for [`Populated::exit`].
pub fn populate_new_namespace(spawn: &Spawn, key: Key) -> Result<Populated, StepError> {
    let mut child = spawn.run(|channel| {
        cleanup::forget_in_child();
        let made = posix::limit_queue_bytes(posix::ONE_BIG_QUEUE)
            .map_err(|e| errno_text("setrlimit(RLIMIT_MSGQUEUE)", e))
            .and_then(|()| make_sysv_set_text(key, NS_SEMS, NS_SHM_SIZE, NS_MESSAGE))
            .and_then(|()| {
                posix::mq_create_big(PosixName::of(key).as_cstr()).map_err(|e| errno_text("mq_open", e))
            })
            .and_then(|_queue| look(key).map_err(|e| e.to_string()));
        let failed = made.is_err();
        if reply(channel, made) != 0 || failed || channel.expect("exit").is_err() {
            end_child(1);
        }
        end_child(0)
    })?;
    let view = receive(child.channel())?;
    Ok(Populated { child, view })
}

/// Under the same limit, tries to make a second big queue: EMFILE means the first one, charged to the
/// same user, still exists. A queue made here goes with the caller's namespace.
fn try_second_big_queue() -> Result<(), Errno> {
    posix::limit_queue_bytes(posix::ONE_BIG_QUEUE)?;
    posix::mq_create_big(posix::PROBE_NAME).map(drop)
}

/// A new process joins the namespaces behind `handles` with setns(2) (user namespace first), looks
/// `key` up there, and tries a second big queue.
pub fn join_and_look(handles: &NsHandles, key: Key) -> Result<Witness, StepError> {
    let spawn = Spawn::new(CloneFlags::empty()).user(UserNs::Never);
    in_child(&spawn, || {
        if let Some(user) = &handles.user {
            setns(user, CloneFlags::CLONE_NEWUSER).map_err(|e| errno_text("setns(user)", e))?;
        }
        setns(&handles.ipc, CloneFlags::CLONE_NEWIPC).map_err(|e| errno_text("setns(ipc)", e))?;
        witness(key)
    })
}

/// A new process, in the user namespace behind `user` (so charged to the same user as the step-7
/// child) but in a new IPC namespace, looks `key` up and tries the second big queue. After the child's
/// namespace died, the kernel frees it in a worker, a moment later, so EMFILE is retried for a second.
pub fn witness_from_new_namespace(user: Option<&File>, key: Key) -> Result<Witness, StepError> {
    let spawn = Spawn::new(CloneFlags::empty()).user(UserNs::Never);
    in_child(&spawn, || {
        if let Some(user) = user {
            setns(user, CloneFlags::CLONE_NEWUSER).map_err(|e| errno_text("setns(user)", e))?;
        }
        nix::sched::unshare(CloneFlags::CLONE_NEWIPC).map_err(|e| errno_text("unshare(ipc)", e))?;
        for _ in 0..50 {
            if try_second_big_queue() != Err(Errno::EMFILE) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = posix::mq_remove_name(posix::PROBE_NAME);
        witness(key)
    })
}
// ANCHOR_END: lifetime

/// Open `/proc/<pid>/ns/*` files: while open, each keeps its namespace, and its objects, alive.
#[derive(Debug)]
pub struct NsHandles {
    pub user: Option<File>,
    pub ipc: File,
}

impl NsHandles {
    /// Closes the IPC namespace's handle, keeping the user namespace's (which does not keep the IPC
    /// namespace alive: the IPC namespace refers to its owner, not the other way round).
    pub fn close_ipc(self) -> Option<File> {
        self.user
    }
}

impl Populated {
    /// Opens handles on the child's IPC namespace, and on its user namespace when it has one (joining
    /// needs CAP_SYS_ADMIN in the user namespace that owns the IPC namespace).
    pub fn handles(&self) -> io::Result<NsHandles> {
        let who = Proc::Pid(self.child.pid());
        Ok(NsHandles {
            user: if self.child.in_user_ns() {
                Some(open_ns(who, Kind::User)?)
            } else {
                None
            },
            ipc: open_ns(who, Kind::Ipc)?,
        })
    }

    /// Tells the child to exit and reaps it: the namespace has no process left.
    pub fn exit(mut self) -> Result<nskit::Exit, StepError> {
        self.child.channel().send("exit").map_err(StepError::Channel)?;
        self.child.wait().map_err(StepError::Channel)
    }
}

/// In a step-7 process: its view, then the second big queue's fate, as fields. The probe is tried
/// after looking, and removed, so the view is the namespace as it was.
fn witness(key: Key) -> Result<Witness, String> {
    let view = look(key).map_err(|e| e.to_string())?;
    let second_queue = try_second_big_queue();
    if second_queue.is_ok() {
        let _ = posix::mq_remove_name(posix::PROBE_NAME);
    }
    Ok(Witness { view, second_queue })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_survive_the_channel() {
        let key = Key::new(0xabcd0001);
        let view = View {
            ns: NsId {
                kind: Kind::Ipc,
                inode: 4026532001,
            },
            sightings: sysv::Kind::ALL
                .into_iter()
                .map(|kind| Sighting {
                    kind,
                    key,
                    reached: Err(Errno::ENOENT),
                    listed: None,
                })
                .collect(),
            counts: [1, 0, 2],
        };
        let (mut parent, mut child) = Channel::pair().unwrap();
        assert_eq!(reply(&mut child, Ok(view.clone())), 0);
        assert_eq!(receive::<View>(&mut parent).unwrap(), view);
        assert_eq!(reply::<View>(&mut child, Err("no view".into())), 0);
        assert!(matches!(receive::<View>(&mut parent), Err(StepError::Child(_))));
    }

    #[test]
    fn taken_keys_are_explained() {
        let key = Key::new(0x1d5e0001);
        let err = creation_failed(key, sysv::Kind::Sem, Errno::EEXIST);
        assert_eq!(
            err.to_string(),
            "a semaphore set with key 0x1d5e0001 already exists on the host: another run of the demo, or \
             another program, owns it; pick another key with --key, or remove it with `ipcrm -S 0x1d5e0001`"
        );
    }
}
