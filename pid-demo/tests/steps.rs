//! Every claim of the PID namespace chapter, checked on the real kernel through the library
//! (pid_namespaces(7)). Each test spawns its namespaces with `nskit::Spawn` (a fresh single-threaded
//! child), never in the test thread, and checks that no process of the demo is left behind.

use std::collections::BTreeSet;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::getpid;
use nskit::testing::{child_processes, exclusive, processes_named, require_namespaces, require_userns};
use nskit::{Exit, Spawn, UserNs};
use pid_demo::init::{Reaper, fork_run, init_with};
use pid_demo::procfs::{make_mounts_private, mount_proc};
use pid_demo::{PROCESS_NAMES, StepError};

/// The demo's processes and this test's children: both must be the same after a test as before.
fn census() -> (BTreeSet<i32>, BTreeSet<i32>) {
    let named = PROCESS_NAMES.iter().flat_map(|n| processes_named(n)).collect();
    (named, child_processes())
}

/// Runs `test` when namespaces are available, serialized with the other tests of this binary, and
/// checks it leaves no process (zombie or alive) behind.
fn leak_checked(name: &str, test: impl FnOnce()) {
    if !require_namespaces(name) {
        return;
    }
    let _guard = exclusive();
    let before = census();
    test();
    assert_eq!(census(), before, "{name} left processes behind");
}

fn spawn() -> Spawn {
    pid_demo::init_spawn(false)
}

#[test]
fn child_is_pid_1_with_ppid_0_and_two_pids() {
    leak_checked("child_is_pid_1_with_ppid_0_and_two_pids", || {
        let r = pid_demo::two_pids(&spawn()).unwrap();
        assert_eq!((r.getpid, r.getppid), (1, 0));
        assert_ne!(r.clone_returned, 1);
        assert_eq!(r.nspid_from_host, [r.clone_returned, 1]);
        assert_eq!(r.nspid_from_inside, [1]);
        assert_ne!(r.host_ns, r.child_ns);
        assert_eq!(r.host_ns, pid_demo::own_pid_ns().unwrap());
    });
}

#[test]
fn ps_shows_the_host_until_proc_is_remounted_and_the_host_mounts_do_not_change() {
    leak_checked(
        "ps_shows_the_host_until_proc_is_remounted_and_the_host_mounts_do_not_change",
        || {
            let mounts = nskit::testing::mount_table();
            let r = pid_demo::ps_before_and_after(&spawn()).unwrap();
            let me = getpid().as_raw();
            assert!(
                r.before.iter().any(|s| s.pid == me),
                "the host's /proc lists this test"
            );
            assert!(r.before.iter().any(|s| s.pid == 1 && s.name != "ns-init"));
            assert!(
                r.before
                    .iter()
                    .any(|s| s.pid == r.init_host_pid && s.name == "ns-init")
            );
            let after: Vec<(i32, i32, &str)> =
                r.after.iter().map(|s| (s.pid, s.ppid, s.name.as_str())).collect();
            assert_eq!(after, [(1, 0, "ns-init"), (2, 1, "ns-worker")]);
            assert_eq!(
                nskit::testing::mount_table(),
                mounts,
                "the new /proc leaked to the host"
            );
        },
    );
}

fn check_tree(levels: usize) {
    let tree = pid_demo::nested_tree(&spawn(), levels).unwrap();
    assert_eq!(tree.views.len(), levels);
    let inodes: BTreeSet<u64> = tree.views.iter().map(|v| v.ns.inode).collect();
    assert_eq!(inodes.len(), levels, "each level has a namespace of its own");
    assert!(!inodes.contains(&tree.host_ns.inode));
    for view in &tree.views {
        // Level k sees its own init and worker and those of every level below: 2 per level.
        let expected: Vec<i32> = (1..=2 * (levels - view.level + 1) as i32).collect();
        assert_eq!(view.visible, expected, "level {}", view.level);
        assert_eq!(view.getppid, 0, "level {} sees its parent", view.level);
    }
    // The host sees the demo and two processes per level, each with a PID at every level down to its
    // own: PID 1 (init) or 2 (worker) in its own namespace.
    assert_eq!(tree.processes.len(), 1 + 2 * levels);
    assert_eq!(tree.processes[0].host_pid, getpid().as_raw());
    for (i, p) in tree.processes.iter().skip(1).enumerate() {
        let level = i / 2 + 1;
        assert_eq!(p.level(), level, "{p:?}");
        let (own_pid, name) = if i % 2 == 0 {
            (1, "ns-init")
        } else {
            (2, "ns-worker")
        };
        assert_eq!((p.nspid[level], p.name.as_str()), (own_pid, name), "{p:?}");
        assert_eq!(p.nspid[0], p.host_pid);
    }
    let drawn = pid_demo::tree::draw(&tree);
    assert_eq!(drawn.len(), 2 + 2 * levels);
    assert!(drawn[0].contains(&format!("L{levels}")));
}

#[test]
fn nested_namespaces_see_downwards_only() {
    leak_checked("nested_namespaces_see_downwards_only", || check_tree(3));
}

#[test]
fn nesting_reaches_the_kernel_limit_and_not_beyond() {
    leak_checked("nesting_reaches_the_kernel_limit_and_not_beyond", || {
        let here = pid_demo::procfs::pid_ns_level().unwrap();
        let deepest = pid_demo::MAX_PID_NS_LEVEL - here;
        check_tree(deepest);
        let err = pid_demo::nested_tree(&spawn(), deepest + 1).unwrap_err();
        assert!(
            matches!(&err, StepError::Child(e) if e.to_string().contains("ENOSPC")),
            "expected ENOSPC past the limit, got {err}"
        );
    });
}

#[test]
fn orphans_go_to_init_and_are_reaped() {
    leak_checked("orphans_go_to_init_and_are_reaped", || {
        let r = pid_demo::orphans(&spawn()).unwrap();
        assert_eq!((r.main, r.parent), (2, 3));
        assert_eq!(r.ppid_before, r.parent);
        assert_eq!(r.ppid_after, 1);
        assert_eq!(r.orphans_reaped, [r.orphan]);
        let after: Vec<(i32, &str)> = r.after.iter().map(|s| (s.pid, s.name.as_str())).collect();
        assert_eq!(
            after,
            [(1, "ns-init"), (2, "ns-main")],
            "a zombie or a stray is left"
        );
        assert!(r.after.iter().all(|s| s.state != 'Z'));
        assert_eq!(r.main_exit, Exit::Code(pid_demo::MAIN_EXIT_CODE));
    });
}

#[test]
fn init_drops_unhandled_signals_from_inside_but_dies_of_sigkill_from_the_parent() {
    leak_checked(
        "init_drops_unhandled_signals_from_inside_but_dies_of_sigkill_from_the_parent",
        || {
            let r = pid_demo::signals(&spawn()).unwrap();
            let sent: Vec<(Signal, &str)> =
                r.sent_from_inside.iter().map(|(s, r)| (*s, r.as_str())).collect();
            assert_eq!(
                sent,
                [
                    (Signal::SIGTERM, "ok"),
                    (Signal::SIGKILL, "ok"),
                    (Signal::SIGUSR1, "ok")
                ]
            );
            assert_eq!(r.handled_usr1, 1);
            assert!(
                r.alive_after_host_sigterm,
                "the host's SIGTERM killed an init without a handler"
            );
            assert_eq!(r.after_host_sigkill, Exit::Signal(Signal::SIGKILL));
        },
    );
}

#[test]
fn when_init_dies_its_namespace_dies_and_fork_fails_with_enomem() {
    leak_checked(
        "when_init_dies_its_namespace_dies_and_fork_fails_with_enomem",
        || {
            let r = pid_demo::init_death(&pid_demo::plain_spawn(false)).unwrap();
            let names: Vec<&str> = r.members.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["ns-init", "ns-worker", "ns-worker"]);
            let inner: Vec<i32> = r.members.iter().map(|m| m.nspid[1]).collect();
            assert_eq!(inner, [1, 2, 3]);
            assert_eq!(r.init_exit, Exit::Code(0));
            assert_eq!(r.still_there, [false, false, false]);
            assert_eq!(r.fork_after, "ENOMEM");
            assert_ne!(r.caller_ns, r.new_ns);
        },
    );
}

#[test]
fn unshare_moves_the_next_child_not_the_caller() {
    leak_checked("unshare_moves_the_next_child_not_the_caller", || {
        let r = pid_demo::unshare_story(&pid_demo::plain_spawn(false)).unwrap();
        assert_eq!(r.pid_before, r.pid_after);
        assert_eq!(r.getpid_before, r.getpid_after);
        assert_eq!(r.for_children_before, r.pid_before);
        assert_eq!(r.for_children_after, Err(Errno::ENOENT));
        assert_eq!(r.child_getpid, 1);
        assert_eq!(r.child_ns, r.for_children_with_child);
        assert_ne!(r.child_ns, r.pid_before);
    });
}

/// Runs `body` as PID 1 of a new PID namespace; the returned child is that init.
fn as_init(body: impl FnOnce() -> i32) -> nskit::spawn::Child {
    pid_demo::spawn_init(&spawn(), |channel| {
        let code = body();
        let _ = channel.send("done");
        code
    })
    .unwrap()
}

#[test]
fn reaper_returns_the_main_childs_exit_code() {
    leak_checked("reaper_returns_the_main_childs_exit_code", || {
        let child = as_init(|| match init_with(|| 42) {
            Ok(outcome) if outcome.orphans_reaped.is_empty() => outcome.exit.shell_status(),
            _ => 1,
        });
        assert_eq!(child.wait().unwrap(), Exit::Code(42));
    });
}

#[test]
fn reaper_forwards_sigterm_and_reports_128_plus_signal() {
    leak_checked("reaper_forwards_sigterm_and_reports_128_plus_signal", || {
        let mut child = pid_demo::spawn_init(&spawn(), |channel| {
            let Ok(reaper) = Reaper::new() else { return 1 };
            let main = fork_run(|| {
                if reaper.restore_child_mask().is_err() {
                    return 1;
                }
                nix::unistd::pause(); // SIGTERM's default action ends it
                0
            });
            let Ok(main) = main else { return 1 };
            if channel.send("ready").is_err() {
                return 1;
            }
            reaper.run(main).map_or(1, |o| o.exit.shell_status())
        })
        .unwrap();
        child.channel().expect("ready").unwrap();
        // Init has no SIGTERM handler, but it blocks SIGTERM: a blocked signal is queued, not dropped.
        kill(child.pid(), Signal::SIGTERM).unwrap();
        assert_eq!(child.wait().unwrap(), Exit::Code(128 + Signal::SIGTERM as i32));
    });
}

#[test]
fn spawn_init_refuses_to_run_outside_a_new_pid_namespace() {
    leak_checked("spawn_init_refuses_to_run_outside_a_new_pid_namespace", || {
        let not_new = Spawn::new(CloneFlags::CLONE_NEWNS);
        let child = pid_demo::spawn_init(&not_new, |_| 0).unwrap();
        assert_eq!(child.wait().unwrap(), Exit::Code(125));
    });
}

#[test]
fn mounting_proc_needs_a_user_namespace_that_owns_the_pid_namespace() {
    if !require_userns("mounting_proc_needs_a_user_namespace_that_owns_the_pid_namespace") {
        return;
    }
    let _guard = exclusive();
    let before = census();
    // A user and mount namespace, but the PID namespace is still the host's, owned by the initial
    // user namespace: the kernel refuses to show it through a new proc.
    let mut child = Spawn::new(CloneFlags::CLONE_NEWNS)
        .user(UserNs::Always)
        .run(|channel| {
            let result = make_mounts_private().and_then(|()| mount_proc(std::path::Path::new("/proc")));
            let reply = match result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("{:?} {e}", e.errno),
            };
            i32::from(channel.send(&reply).is_err())
        })
        .unwrap();
    let reply = child.channel().recv().unwrap();
    child.wait().unwrap();
    assert!(reply.starts_with("EPERM"), "{reply}");
    assert!(
        reply.contains("owns both the mount namespace and the caller's PID namespace"),
        "{reply}"
    );
    assert_eq!(census(), before);
}
