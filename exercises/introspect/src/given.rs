//! What the exercises give you: a helper that holds no privilege outside the namespaces it makes,
//! children that play the processes, targets and containers the tools look at, and their answers over
//! nskit's channel (`clone(2)`, the plumbing every chapter uses). You need not read this to do the
//! exercises, but nothing in it is hidden.

use std::io;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Pid, getpid};
use nskit::ns::{Kind, Proc, ns_id};
use nskit::{Child, ChildError, Spawn, UserNs};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use user_demo::introspect::max_namespaces;
use user_demo::{NOBODY, drop_privileges_to};

/// Runs `body` in a helper process that holds no privilege outside the namespaces it makes: as root it
/// first gives up root for uid and gid 65534, as `setpriv` would; as anyone else it stays who it is.
/// The rules of setns(2) and of `/proc/<pid>/ns/` then bind the helper as they bind an ordinary user,
/// so the tests mean the same whoever runs them.
pub fn as_unprivileged<T, F>(body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    Spawn::new(CloneFlags::empty()).user(UserNs::Never).evaluate(|| {
        if nskit::userns::is_root() {
            drop_privileges_to(NOBODY, NOBODY).map_err(|e| format!("give up root: {e}"))?;
        }
        body()
    })
}

/// A child in new namespaces of `flags` (and a user namespace, the helper being unprivileged) that
/// waits until it is dropped.
fn waiting(flags: CloneFlags) -> Result<Child, String> {
    Spawn::new(flags)
        .run(|channel| i32::from(channel.expect("exit").is_err()))
        .map_err(|e| e.to_string())
}

fn uts_inode(pid: Pid) -> Result<u64, String> {
    ns_id(Proc::Pid(pid), Kind::Uts)
        .map(|id| id.inode)
        .map_err(|e| format!("stat /proc/{pid}/ns/uts: {e}"))
}

// ---- introspect-lsns --------------------------------------------------------------------------------

/// One namespace as `lsns` lists it: its inode, the lowest PID among the processes in it, and how many
/// processes are in it (lsns's columns NS, PID and NPROCS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub inode: u64,
    pub lowest_pid: i32,
    pub processes: usize,
}

/// A namespace the lab made or knows, and the PIDs it put in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    pub inode: u64,
    pub pids: Vec<i32>,
}

/// Why a listing failed: its message and, when a system call failed, the errno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    pub errno: Option<i32>,
}

/// What the lsns exercise's helper made, and what your listing said of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LsnsLab {
    /// Your `list_namespaces(Kind::Uts)`, run in the helper.
    pub listed: Result<Vec<Namespace>, Failure>,
    /// A child alone in a UTS namespace of its own.
    pub alone: Known,
    /// A child in a UTS namespace of its own, and its child, which made none: two processes.
    pub pair: Known,
    /// The helper itself, in the host's UTS namespace (with every other process there).
    pub host: Known,
    /// A child that had a UTS namespace of its own, has exited and is not reaped yet.
    pub zombie: i32,
}

/// The lsns exercise's lab. In a helper without privileges (see [`as_unprivileged`]), it makes a child
/// alone in a new UTS namespace, a child in another that has a child of its own in the same namespace,
/// and a child in a third that exits at once and is left unreaped, a zombie. Then it calls `list`, as
/// an ordinary user would run `lsns`: the walk meets other users' processes, such as PID 1, and a
/// process whose namespaces are gone.
pub fn lsns_lab(list: fn(Kind) -> io::Result<Vec<Namespace>>) -> Result<LsnsLab, String> {
    as_unprivileged(move || {
        let alone = waiting(CloneFlags::CLONE_NEWUTS)?;
        let mut pair = Spawn::new(CloneFlags::CLONE_NEWUTS)
            .run(|channel| {
                // The partner is cloned with no new namespace: it shares every namespace of its parent.
                let partner = Spawn::new(CloneFlags::empty())
                    .user(UserNs::Never)
                    .run(|channel| i32::from(channel.expect("exit").is_err()));
                let reply = partner
                    .as_ref()
                    .map(|p| p.pid().as_raw())
                    .map_err(|e| ChildError::new("spawn a second process", e));
                // `partner` is dropped, killed and reaped, when this returns.
                i32::from(channel.reply(&reply).is_err() || channel.expect("exit").is_err())
            })
            .map(|child| Pair(Some(child)))
            .map_err(|e| e.to_string())?;
        let partner: i32 = pair.child().channel().recv_reply().map_err(|e| e.to_string())?;
        let zombie = Spawn::new(CloneFlags::CLONE_NEWUTS)
            .run(|_| 0)
            .map_err(|e| e.to_string())?;
        // Wait until it has exited, and leave it unreaped (WNOWAIT): its /proc/<pid> stays, but its
        // namespaces were let go when it exited.
        waitid(Id::Pid(zombie.pid()), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            .map_err(|e| format!("waitid the zombie: {e}"))?;

        let listed = list(Kind::Uts).map_err(|e| Failure {
            message: e.to_string(),
            errno: e.raw_os_error(),
        });

        let lab = LsnsLab {
            listed,
            alone: Known {
                inode: uts_inode(alone.pid())?,
                pids: vec![alone.pid().as_raw()],
            },
            pair: Known {
                inode: uts_inode(pair.child().pid())?,
                pids: vec![pair.child().pid().as_raw(), partner],
            },
            host: Known {
                inode: uts_inode(getpid())?,
                pids: vec![getpid().as_raw()],
            },
            zombie: zombie.pid().as_raw(),
        };
        // The children are killed and reaped as they are dropped (the zombie only reaped), and the
        // pair's child reaps its own on the way out.
        drop((alone, zombie, pair));
        Ok(lab)
    })
}

/// The lsns lab's child with a child of its own. Dropped, it is told to exit and waited for, rather
/// than killed: on its way out it kills and reaps its child, which no one else would reap.
struct Pair(Option<Child>);

impl Pair {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("only a drop takes the child")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.channel().send("exit");
            let _ = child.wait();
        }
    }
}

// ---- introspect-nsenter -----------------------------------------------------------------------------

/// The hostname the nsenter exercise's target gives its UTS namespace.
pub const TARGET_HOSTNAME: &str = "introspected";

/// Which user namespace the nsenter exercise's target is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A user namespace of its own, made with its UTS namespace, which it owns: a rootless container.
    /// The caller is an ordinary user, with no capability outside its own user namespace.
    InItsOwnUserNamespace,
    /// The caller's: the target made a UTS namespace only, as root of that user namespace, as a
    /// container whose runtime runs as root makes it (the lab runs it one level down, in a user
    /// namespace of the test's own, where the caller is root).
    InTheCallersUserNamespace,
}

/// What the child that called your `enter` saw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entered {
    /// What `enter` returned: its errno when it failed.
    pub entered: Result<(), Failure>,
    /// The child's hostname afterwards.
    pub hostname: String,
    /// The inodes of the child's UTS and user namespaces, before `enter` and after.
    pub uts_before: u64,
    pub uts_after: u64,
    pub user_before: u64,
    pub user_after: u64,
    /// The target's.
    pub target_uts: u64,
    pub target_user: u64,
}

/// The nsenter exercise's lab: a target child that names its new UTS namespace
/// [`TARGET_HOSTNAME`] and waits, in the user namespace `target` says; then another child of the same
/// caller, alone in its process as nsenter is, calls `enter` with the target's PID and reads its
/// hostname.
pub fn nsenter_lab(target: Target, enter: fn(Pid) -> io::Result<()>) -> Result<Entered, String> {
    match target {
        Target::InItsOwnUserNamespace => as_unprivileged(move || {
            enter_named(Spawn::new(CloneFlags::CLONE_NEWUTS).user(UserNs::Always), enter)
        }),
        Target::InTheCallersUserNamespace => Spawn::new(CloneFlags::empty())
            .user(UserNs::Always)
            .evaluate(move || enter_named(Spawn::new(CloneFlags::CLONE_NEWUTS).user(UserNs::Never), enter)),
    }
}

fn enter_named(target: Spawn, enter: fn(Pid) -> io::Result<()>) -> Result<Entered, String> {
    let mut named = target
        .run(|channel| {
            let renamed =
                nix::unistd::sethostname(TARGET_HOSTNAME).map_err(|e| ChildError::sys("sethostname", e));
            i32::from(channel.reply(&renamed).is_err() || channel.expect("exit").is_err())
        })
        .map_err(|e| e.to_string())?;
    named
        .channel()
        .recv_reply::<()>()
        .map_err(|e| format!("the target: {e}"))?;
    let pid = named.pid();
    let target_uts = uts_inode(pid)?;
    let target_user = ns_id(Proc::Pid(pid), Kind::User)
        .map_err(|e| format!("stat /proc/{pid}/ns/user: {e}"))?
        .inode;
    let own = |kind| {
        ns_id(Proc::Current, kind)
            .map(|id| id.inode)
            .map_err(|e| e.to_string())
    };
    let seen = Spawn::new(CloneFlags::empty()).user(UserNs::Never).evaluate(|| {
        let (uts_before, user_before) = (own(Kind::Uts)?, own(Kind::User)?);
        let entered = enter(pid).map_err(|e| Failure {
            message: e.to_string(),
            errno: e.raw_os_error(),
        });
        let hostname = nix::unistd::gethostname()
            .map_err(|e| format!("gethostname: {e}"))?
            .to_string_lossy()
            .into_owned();
        Ok(Entered {
            entered,
            hostname,
            uts_before,
            uts_after: own(Kind::Uts)?,
            user_before,
            user_after: own(Kind::User)?,
            target_uts,
            target_user,
        })
    });
    let _ = named.channel().send("exit");
    let _ = named.wait();
    seen
}

// ---- introspect-limits ------------------------------------------------------------------------------

/// The three steps of the limits exercise, yours to break.
#[derive(Clone, Copy, Debug)]
pub struct LimitSteps {
    pub before_the_container: fn(Kind, u64) -> io::Result<()>,
    pub in_the_container: fn(Kind, u64) -> io::Result<()>,
    pub in_a_nested_namespace: fn(Kind) -> io::Result<()>,
}

/// What the container saw: its own limit's file, and whether it and a user namespace nested in it
/// could make a namespace of the kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerView {
    pub own_limit: u64,
    #[serde(with = "nskit::channel::errno_result")]
    pub unshare: Result<(), Errno>,
    pub nested_limit: u64,
    #[serde(with = "nskit::channel::errno_result")]
    pub nested_unshare: Result<(), Errno>,
}

/// What the limits exercise's lab saw, in the user namespace that plays the host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LimitsLab {
    /// The host's limit before the runtime's steps, and after the container has gone.
    pub host_limit_before: u64,
    pub host_limit_after: u64,
    /// The container, or why it failed.
    pub container: Result<ContainerView, String>,
    /// Whether the host could still make a namespace of the kind afterwards.
    #[serde(with = "nskit::channel::errno_result")]
    pub host_unshare: Result<(), Errno>,
}

/// The limits exercise's lab. The host is played by a child in a user namespace the test makes, so
/// that whatever the steps write, your machine's `/proc/sys/user` is never touched: the files show and
/// set the limits of the writer's own user namespace (namespaces(7)). In it, the runtime runs
/// `before_the_container` and starts the container, a child in a user namespace of its own, whose
/// first step is `in_the_container`. The container tries `unshare` of `kind`, makes a nested user
/// namespace (`unshare(CLONE_NEWUSER)`), runs `in_a_nested_namespace` there and tries again. When the
/// container has gone, the host reads its own limit again and tries `unshare` of `kind` itself.
pub fn limits_lab(kind: Kind, max: u64, steps: LimitSteps) -> Result<LimitsLab, String> {
    let read = move || max_namespaces(kind).map_err(|e| format!("read the limit: {e}"));
    Spawn::new(CloneFlags::empty())
        .user(UserNs::Always)
        .evaluate(move || {
            let host_limit_before = read()?;
            (steps.before_the_container)(kind, max).map_err(|e| format!("before_the_container: {e}"))?;
            let container = Spawn::new(CloneFlags::empty())
                .user(UserNs::Always)
                .evaluate(move || {
                    (steps.in_the_container)(kind, max).map_err(|e| format!("in_the_container: {e}"))?;
                    let own_limit = read()?;
                    let unshared = unshare(kind.clone_flag());
                    unshare(CloneFlags::CLONE_NEWUSER)
                        .map_err(|e| format!("unshare(CLONE_NEWUSER) for a nested namespace: {e}"))?;
                    (steps.in_a_nested_namespace)(kind).map_err(|e| format!("in_a_nested_namespace: {e}"))?;
                    Ok(ContainerView {
                        own_limit,
                        unshare: unshared,
                        nested_limit: read()?,
                        nested_unshare: unshare(kind.clone_flag()),
                    })
                });
            Ok(LimitsLab {
                host_limit_before,
                host_limit_after: read()?,
                container,
                host_unshare: unshare(kind.clone_flag()),
            })
        })
}
