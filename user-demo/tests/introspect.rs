//! The introspection page's claims, checked on the real kernel: ownership and parents through
//! ioctl_ns(2), the per-user-namespace limits of namespaces(7) "/proc/sys/user", and what `lsns(8)` and
//! `nsenter(1)` show of a namespace a test made. Namespace work happens in children, never in a test's
//! thread.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nskit::ns::{Kind, Proc, ns_id};
use nskit::testing::{self, require_namespaces, require_userns};
use nskit::userns::is_root;
use nskit::{Child, ChildError, Spawn, StepError, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;
use user_demo::introspect::{max_namespaces, ownership_chain, parent, set_max_namespaces};

/// `PROC_USER_INIT_INO`, the initial user namespace's inode on every machine.
const INITIAL_USER_NS: u64 = 0xEFFF_FFFD;

fn inode(file: &File) -> u64 {
    file.metadata().unwrap().ino()
}

fn own(kind: &str) -> File {
    File::open(format!("/proc/self/ns/{kind}")).unwrap()
}

/// Runs `body` in a child spawned by `spawn`; what it returned, or why it failed.
fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let mut child = spawn
        .run(|channel| {
            let result = body().map_err(|why| ChildError::new("test", why));
            i32::from(channel.reply(&result).is_err())
        })
        .map_err(|e| e.to_string())?;
    let reply = child.channel().recv_reply::<T>();
    let _ = child.wait();
    reply.map_err(|e| match e {
        StepError::Child(e) => e.message,
        other => other.to_string(),
    })
}

/// A child cloned with `flags` (and a user namespace when `user` says so) that waits until dropped.
fn waiting(flags: CloneFlags, user: UserNs) -> Child {
    Spawn::new(flags)
        .user(user)
        .run(|channel| i32::from(channel.expect("exit").is_err()))
        .unwrap()
}

fn in_initial_user_ns(test: &str) -> bool {
    // In a container, the test's own user namespace has a parent it may not see: the chains below
    // would end one level lower, which the nested test covers.
    testing::gate(
        inode(&own("user")) == INITIAL_USER_NS,
        test,
        "needs to run in the initial user namespace",
    )
}

#[test]
fn the_chain_of_a_childs_uts_namespace_is_its_user_namespace_then_ours() {
    let test = "the_chain_of_a_childs_uts_namespace_is_its_user_namespace_then_ours";
    if !require_userns(test) || !in_initial_user_ns(test) {
        return;
    }
    let child = waiting(CloneFlags::CLONE_NEWUTS, UserNs::Always);
    let dir = Proc::Pid(child.pid()).dir();
    let uts = File::open(dir.join("ns/uts")).unwrap();
    let user = File::open(dir.join("ns/user")).unwrap();
    assert_eq!(
        ownership_chain(&uts).unwrap(),
        [inode(&user), INITIAL_USER_NS],
        "owned by the child's user namespace, whose parent is the initial one, which has none we see"
    );
    assert_eq!(
        ownership_chain(&own("uts")).unwrap(),
        [INITIAL_USER_NS],
        "the host's UTS namespace belongs to the initial user namespace"
    );
}

#[test]
fn inside_a_user_namespace_the_chain_stops_at_its_own() {
    if !require_userns("inside_a_user_namespace_the_chain_stops_at_its_own") {
        return;
    }
    // The child, in a user namespace of its own, makes a grandchild in a nested one, and walks up from
    // the grandchild's UTS namespace: its own user namespace's parent is out of its sight.
    let seen = in_child(&Spawn::new(CloneFlags::empty()).user(UserNs::Always), || {
        let grandchild = waiting(CloneFlags::CLONE_NEWUTS, UserNs::Always);
        let dir = Proc::Pid(grandchild.pid()).dir();
        let uts = File::open(dir.join("ns/uts")).map_err(|e| e.to_string())?;
        let nested = File::open(dir.join("ns/user")).map_err(|e| e.to_string())?;
        let chain = ownership_chain(&uts).map_err(|e| e.to_string())?;
        let above_own = parent(&own("user")).map(drop).map_err(|e| e.raw_os_error());
        Ok((chain, inode(&nested), inode(&own("user")), above_own))
    });
    let (chain, nested, child_user, above_own) = seen.unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(
        chain,
        [nested, child_user],
        "the grandchild's, then the child's own"
    );
    assert_eq!(
        above_own,
        Err(Some(libc::EPERM)),
        "its own user namespace's parent is hidden"
    );
}

#[test]
fn the_parent_of_a_pid_namespace_is_the_one_it_was_made_in() {
    if !require_namespaces("the_parent_of_a_pid_namespace_is_the_one_it_was_made_in") {
        return;
    }
    let child = waiting(CloneFlags::CLONE_NEWPID, UserNs::Auto);
    let pid_ns = File::open(Proc::Pid(child.pid()).dir().join("ns/pid")).unwrap();
    assert_eq!(inode(&parent(&pid_ns).unwrap()), inode(&own("pid")));
}

#[test]
fn a_limit_of_zero_refuses_the_next_namespace_below_it_too() {
    if !require_userns("a_limit_of_zero_refuses_the_next_namespace_below_it_too") {
        return;
    }
    let host = max_namespaces(Kind::Uts).unwrap();
    let seen = in_child(&Spawn::new(CloneFlags::empty()).user(UserNs::Always), || {
        let fresh = max_namespaces(Kind::Uts).map_err(|e| e.to_string())?;
        set_max_namespaces(Kind::Uts, 0).map_err(|e| format!("set the limit: {e}"))?;
        let here = unshare(CloneFlags::CLONE_NEWUTS).map_err(|e: Errno| e as i32);
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
        let nested_limit = max_namespaces(Kind::Uts).map_err(|e| e.to_string())?;
        let below = unshare(CloneFlags::CLONE_NEWUTS).map_err(|e: Errno| e as i32);
        Ok((fresh, here, nested_limit, below))
    });
    let (fresh, here, nested_limit, below) = seen.unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(
        fresh,
        i32::MAX as u64,
        "a new user namespace starts with no limit of its own"
    );
    assert_eq!(here, Err(libc::ENOSPC), "at the limit, unshare fails with ENOSPC");
    assert_eq!(
        nested_limit,
        i32::MAX as u64,
        "the nested namespace's own limit is unset"
    );
    assert_eq!(below, Err(libc::ENOSPC), "yet the limit above it binds it");
    assert_eq!(
        max_namespaces(Kind::Uts).unwrap(),
        host,
        "the host's limit is as it was"
    );
}

const LSNS: &str = "/usr/bin/lsns";
const NSENTER: &str = "/usr/bin/nsenter";

fn has_util_linux(test: &str) -> bool {
    testing::gate(
        Path::new(LSNS).is_file() && Path::new(NSENTER).is_file(),
        test,
        "needs util-linux's lsns and nsenter",
    )
}

/// A child in a new UTS namespace (and a user namespace when not root) named `introspected`.
fn named_child() -> Child {
    let mut child = Spawn::new(CloneFlags::CLONE_NEWUTS)
        .run(|channel| {
            let named =
                nix::unistd::sethostname("introspected").map_err(|e| ChildError::sys("sethostname", e));
            i32::from(channel.reply(&named).is_err() || channel.expect("exit").is_err())
        })
        .unwrap();
    child.channel().recv_reply::<()>().unwrap();
    child
}

#[test]
fn lsns_lists_the_childs_namespace_and_nsenter_runs_a_command_in_it() {
    let test = "lsns_lists_the_childs_namespace_and_nsenter_runs_a_command_in_it";
    if !require_namespaces(test) || !has_util_linux(test) {
        return;
    }
    let child = named_child();
    let pid = child.pid().to_string();
    let uts = ns_id(Proc::Pid(child.pid()), Kind::Uts).unwrap();
    let listed = Command::new(LSNS)
        .args(["--type", "uts", "--noheadings", "--output", "NS,PID"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let row: Vec<Vec<&str>> = listed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|cols: &Vec<&str>| cols.first() == Some(&uts.inode.to_string().as_str()))
        .collect();
    assert_eq!(
        row,
        [vec![uts.inode.to_string().as_str(), pid.as_str()]],
        "lsns lists the child's namespace once, by inode, with its one process:\n{listed}"
    );
    // As root, joining the UTS namespace is enough; an ordinary user first joins the child's user
    // namespace, which owns it, keeping its own ids (it is unmapped there but for root).
    let mut nsenter = Command::new(NSENTER);
    nsenter.args(["--target", &pid]);
    if !is_root() {
        nsenter.args(["--user", "--preserve-credentials"]);
    }
    let out = nsenter.args(["--uts", "hostname"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "introspected");
}
