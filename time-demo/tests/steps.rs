//! Every claim of the time namespace chapter, checked on the running kernel through the library
//! (time_namespaces(7)). Each test makes its namespaces in children cloned by `nskit::Spawn`, never in
//! the test thread, and checks that no process is left behind.

use std::collections::BTreeSet;
use std::path::Path;

use nix::errno::Errno;
use nskit::ns::{Kind, Proc, ns_id};
use nskit::testing::{self, child_processes, exclusive, require_namespaces, require_userns};
use time_demo::clocks::{Nanos, Offset, Offsets, read_offsets};
use time_demo::{Clocks, ExecRule, INITIAL_TIME_NS, caller_spawn, observe};

/// Runs `test` where time namespaces can be made (as root, or through a user namespace, on a kernel
/// built with CONFIG_TIME_NS), one test at a time, and checks it leaves no child process behind.
fn in_lab(name: &str, test: impl FnOnce()) {
    if !require_namespaces(name) {
        return;
    }
    let supported = Path::new("/proc/self/ns/time").exists();
    if !testing::gate(
        supported,
        name,
        "needs a kernel with time namespaces (CONFIG_TIME_NS)",
    ) {
        return;
    }
    let _guard = exclusive();
    let before: BTreeSet<i32> = child_processes();
    test();
    assert_eq!(child_processes(), before, "{name} left processes behind");
}

fn offsets(monotonic: i64, boottime: i64) -> Offsets {
    Offsets {
        monotonic: Offset::from_secs(monotonic),
        boottime: Offset::from_secs(boottime),
    }
}

const WEEK: i64 = 7 * 86_400;
const MONTH: i64 = 30 * 86_400;

/// How much later than `earlier` a reading may be taken: the steps read one side, then spawn or
/// signal a process, then read the other. Generous, since other work may run on the machine.
const SLACK: Nanos = Nanos(10 * Nanos::PER_SEC);

/// Asserts that `later` is `offset` ahead of `earlier`, give or take the time between the readings
/// (and `tolerance` before it, for readings coarser than a clock's).
fn assert_ahead(what: &str, earlier: Nanos, later: Nanos, offset: i64, tolerance: Nanos) {
    let gap = later - earlier - Nanos::from_secs(offset);
    assert!(
        gap.0 >= -tolerance.0 && gap < SLACK,
        "{what}: {later} is not {offset} s ahead of {earlier} (off by {gap})"
    );
}

fn host_ns() -> nskit::NsId {
    ns_id(Proc::Current, Kind::Time).unwrap()
}

#[test]
fn the_host_sees_one_namespace_for_itself_and_its_children_and_uptime_is_boottime() {
    let view = observe().unwrap();
    assert_eq!(view.ns.time, view.ns.for_children);
    if view.ns.time.inode == INITIAL_TIME_NS {
        assert_eq!(
            view.offsets,
            Offsets::ZERO,
            "the initial namespace has no offsets"
        );
    }
    let apart = (view.clocks.boottime - view.uptime).0.abs();
    assert!(
        apart < Nanos::PER_SEC,
        "/proc/uptime {} is CLOCK_BOOTTIME {}",
        view.uptime,
        view.clocks.boottime
    );
}

#[test]
fn the_hosts_offsets_cannot_be_written() {
    // Root holds CAP_SYS_TIME but the initial namespace's offsets are frozen; an ordinary user lacks
    // the capability. The root and the unprivileged test runs check one each.
    let expected = if nskit::userns::is_root() {
        Errno::EACCES
    } else {
        Errno::EPERM
    };
    assert_eq!(time_demo::try_write_host_offsets(), Err(expected));
    assert_eq!(read_offsets(Proc::Current).unwrap(), observe().unwrap().offsets);
}

#[test]
fn uid_0_in_a_user_namespace_cannot_write_the_hosts_offsets() {
    if !require_userns("uid_0_in_a_user_namespace_cannot_write_the_hosts_offsets") {
        return;
    }
    let _guard = exclusive();
    assert_eq!(
        time_demo::try_write_host_offsets_from_userns().unwrap(),
        Err(Errno::EPERM)
    );
}

#[test]
fn unshare_changes_time_for_children_not_the_caller_and_takes_offsets_once() {
    in_lab(
        "unshare_changes_time_for_children_not_the_caller_and_takes_offsets_once",
        || {
            let host = host_ns();
            let asked = offsets(WEEK, MONTH);
            let r = time_demo::unshare_story(&caller_spawn(false), asked).unwrap();
            assert_eq!((r.before.time, r.before.for_children), (host, host));
            assert_eq!(r.after.time, host, "the caller stays in the host's namespace");
            assert_ne!(r.after.for_children, host, "its next children get a new one");
            assert_eq!(
                r.inherited,
                observe().unwrap().offsets,
                "copied from the caller's"
            );
            assert_eq!(r.realtime, Err(Errno::EINVAL), "CLOCK_REALTIME has no offset");
            assert!(r.below_zero_secs < 0);
            assert_eq!(r.below_zero, Err(Errno::ERANGE), "no clock below zero");
            assert_eq!(r.written, Ok(()));
            assert_eq!(r.offsets, asked, "the file shows time_for_children's offsets");
        },
    );
}

#[test]
fn the_first_child_gets_the_offsets_the_wall_clock_stays_and_the_offsets_freeze() {
    in_lab(
        "the_first_child_gets_the_offsets_the_wall_clock_stays_and_the_offsets_freeze",
        || {
            let asked = offsets(WEEK, MONTH);
            let r = time_demo::enter_story(&caller_spawn(false), asked).unwrap();
            let (caller, child) = (&r.caller, &r.child);
            assert_eq!(caller.ns.time, host_ns(), "the caller never moved");
            assert_eq!(child.ns.time, caller.ns.for_children, "born in time_for_children");
            assert_eq!(child.ns.for_children, child.ns.time);
            assert_eq!(child.offsets, asked);
            let (c, k) = (&caller.clocks, &child.clocks);
            assert_ahead("CLOCK_MONOTONIC", c.monotonic, k.monotonic, WEEK, Nanos(0));
            assert_ahead("CLOCK_BOOTTIME", c.boottime, k.boottime, MONTH, Nanos(0));
            assert_ahead("CLOCK_REALTIME", c.realtime, k.realtime, 0, Nanos(0));
            // /proc/uptime has hundredths: each side may be cut by up to one.
            let hundredth = Nanos(Nanos::PER_SEC / 100);
            assert_ahead("/proc/uptime", caller.uptime, child.uptime, MONTH, hundredth);
            assert_eq!(r.too_late, Err(Errno::EACCES), "frozen once a process is in");
        },
    );
}

#[test]
fn negative_offsets_put_the_clocks_behind_the_hosts() {
    in_lab("negative_offsets_put_the_clocks_behind_the_hosts", || {
        let now = Clocks::read().unwrap();
        // Half of what each clock has run, so that neither goes below zero.
        let behind = offsets(-now.monotonic.round_secs() / 2, -now.boottime.round_secs() / 2);
        let r = time_demo::enter_story(&caller_spawn(false), behind).unwrap();
        let (c, k) = (&r.caller.clocks, &r.child.clocks);
        assert_ahead(
            "CLOCK_MONOTONIC",
            c.monotonic,
            k.monotonic,
            behind.monotonic.secs,
            Nanos(0),
        );
        assert_ahead(
            "CLOCK_BOOTTIME",
            c.boottime,
            k.boottime,
            behind.boottime.secs,
            Nanos(0),
        );
        assert!(k.monotonic < c.monotonic && k.boottime < c.boottime);
    });
}

/// The running kernel's release, `(6, 1)` for `6.1.0-57-amd64`.
fn kernel_release() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let number = |part: Option<&str>| -> u32 {
        let digits: String = part
            .unwrap_or("")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("kernel release {release:?}"))
    };
    let mut parts = release.trim().split('.');
    (number(parts.next()), number(parts.next()))
}

#[test]
fn execve_moves_the_caller_into_its_time_for_children_since_linux_6_2() {
    in_lab(
        "execve_moves_the_caller_into_its_time_for_children_since_linux_6_2",
        || {
            let host = host_ns();
            let r = time_demo::exec_story(&caller_spawn(false), offsets(WEEK, MONTH)).unwrap();
            assert_eq!(r.before_exec.time, host, "until its execve, the caller stays");
            assert_ne!(r.before_exec.for_children, host);
            let own_name = std::fs::read_to_string("/proc/self/comm").unwrap();
            assert_eq!(r.program, own_name.trim_end(), "it runs this very binary");
            // Which rule the kernel follows is seen from the thread the caller started before its
            // execve: the change that moved a process at execve (Linux 6.2) also let a thread share
            // the memory of a process whose time_for_children is another namespace.
            match ExecRule::from_thread(r.thread) {
                Some(ExecRule::NewMemoryEnters) => {
                    assert_eq!(r.thread, Ok(host), "a thread stays in the caller's namespace");
                    assert_eq!(r.after_exec.time, r.before_exec.for_children, "moved at execve");
                    assert_eq!(r.after_exec.for_children, r.after_exec.time);
                }
                Some(ExecRule::OnlyChildrenEnter) => {
                    let release = kernel_release();
                    assert!(
                        release < (6, 2),
                        "Linux {release:?} refused the thread (EINVAL), as only kernels before 6.2 do"
                    );
                    assert_eq!(
                        r.after_exec, r.before_exec,
                        "before Linux 6.2, execve leaves both time namespace links as they were"
                    );
                }
                None => panic!(
                    "the thread failed with {:?}: neither started (Linux 6.2 and later) nor refused \
                     with EINVAL (before)",
                    r.thread
                ),
            }
        },
    );
}

#[test]
fn a_nested_namespace_inherits_offsets_that_count_from_the_host() {
    in_lab(
        "a_nested_namespace_inherits_offsets_that_count_from_the_host",
        || {
            let asked = offsets(WEEK, MONTH);
            let r = time_demo::nested_story(&caller_spawn(false), asked).unwrap();
            assert_ne!(r.outer.ns.time, host_ns());
            assert_eq!(r.outer.offsets, asked);
            assert_eq!(r.inherited, asked, "the inner namespace starts with a copy");
            assert_eq!(r.reset, Ok(()));
            assert_ne!(r.inner.ns.time, r.outer.ns.time);
            assert_eq!(r.inner.offsets, Offsets::ZERO);
            let (host, outer, inner) = (&r.host, &r.outer.clocks, &r.inner.clocks);
            assert_ahead(
                "outer CLOCK_MONOTONIC",
                host.monotonic,
                outer.monotonic,
                WEEK,
                Nanos(0),
            );
            assert_ahead(
                "outer CLOCK_BOOTTIME",
                host.boottime,
                outer.boottime,
                MONTH,
                Nanos(0),
            );
            // Zero offsets are the host's clocks, not the parent namespace's.
            assert_ahead(
                "inner CLOCK_MONOTONIC",
                host.monotonic,
                inner.monotonic,
                0,
                Nanos(0),
            );
            assert_ahead("inner CLOCK_BOOTTIME", host.boottime, inner.boottime, 0, Nanos(0));
        },
    );
}

#[test]
fn the_vdso_and_the_system_call_both_read_the_namespaced_clock() {
    in_lab(
        "the_vdso_and_the_system_call_both_read_the_namespaced_clock",
        || {
            let r = time_demo::vdso_story(&caller_spawn(false), offsets(WEEK, MONTH), 1000).unwrap();
            let (host, child) = (&r.host, &r.child);
            assert_eq!(host.ns, host_ns());
            assert_ne!(child.ns, host.ns);
            assert_ahead("vDSO", host.by_vdso, child.by_vdso, WEEK, Nanos(0));
            assert_ahead("system call", host.by_syscall, child.by_syscall, WEEK, Nanos(0));
            // Costs are printed for the learner, never compared: only that both were measured.
            for cost in [host.cost, child.cost] {
                assert_eq!(cost.calls, 1000);
                assert!(cost.vdso_ns.is_finite() && cost.vdso_ns > 0.0, "{cost:?}");
                assert!(cost.syscall_ns.is_finite() && cost.syscall_ns > 0.0, "{cost:?}");
            }
        },
    );
}

#[test]
fn a_user_namespace_gives_the_caller_what_root_has() {
    if !require_userns("a_user_namespace_gives_the_caller_what_root_has") {
        return;
    }
    in_lab("a_user_namespace_gives_the_caller_what_root_has", || {
        let asked = offsets(WEEK, MONTH);
        let r = time_demo::enter_story(&caller_spawn(true), asked).unwrap();
        assert_eq!(r.child.offsets, asked);
        assert_ahead(
            "CLOCK_BOOTTIME",
            r.caller.clocks.boottime,
            r.child.clocks.boottime,
            MONTH,
            Nanos(0),
        );
        assert_eq!(r.too_late, Err(Errno::EACCES));
    });
}
