//! Every claim of the mount namespace chapter, checked on the real kernel through the library's
//! experiments (mount_namespaces(7), pivot_root(2)). Each test leaves the host's mount table exactly
//! as it found it, and says so.

mod common;

use common::on_clean_host;
use mnt_demo::Propagation;
use mnt_demo::lab::{self, RootView};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::testing::require_namespaces;

fn spawn() -> nskit::Spawn {
    lab::child_spawn(CloneFlags::empty(), false)
}

#[test]
fn a_tmpfs_in_the_child_is_absent_from_the_host() {
    if !require_namespaces("a_tmpfs_in_the_child_is_absent_from_the_host") {
        return;
    }
    on_clean_host(|scratch| {
        let seen = lab::tmpfs_visibility(&spawn(), scratch).unwrap();
        assert_ne!(seen.child.ns, seen.host.ns);
        assert_eq!(seen.child.mounts.len(), 1, "{:?}", seen.child.mounts);
        assert!(seen.child.mounts[0].starts_with("mnt-demo "));
        assert_eq!(seen.child.mountinfo.len(), 1);
        assert_eq!(seen.child.mountinfo[0].fs_type, "tmpfs");
        assert_eq!(seen.child.mountinfo[0].propagation.kind(), "private");
        assert_eq!(seen.child.mountstats.len(), 1);
        assert!(seen.child.mountstats[0].starts_with("device mnt-demo mounted on"));
        assert!(
            seen.host.mounts.is_empty() && seen.host.mountinfo.is_empty() && seen.host.mountstats.is_empty()
        );
        assert_eq!(seen.child.total, seen.host.total + 1);
    });
}

#[test]
fn propagation_types_pass_the_events_they_should() {
    if !require_namespaces("propagation_types_pass_the_events_they_should") {
        return;
    }
    on_clean_host(|scratch| {
        let lab = lab::propagation_lab(&spawn(), scratch).unwrap();
        let case = |p| lab.cases.iter().find(|c| c.propagation == p).unwrap();

        let shared = case(Propagation::Shared);
        assert!(shared.a.shared.is_some() && shared.a.shared == shared.b.shared);
        assert!(shared.a_to_b && shared.b_to_a);

        let private = case(Propagation::Private);
        assert_eq!((private.a.kind(), private.b.kind()), ("private", "private"));
        assert!(!private.a_to_b && !private.b_to_a);

        let slave = case(Propagation::Slave);
        assert!(slave.a.shared.is_some());
        assert_eq!(slave.b.master, slave.a.shared);
        assert_eq!(slave.b.shared, None);
        assert!(slave.a_to_b && !slave.b_to_a);

        let unbindable = case(Propagation::Unbindable);
        assert_eq!(unbindable.bind, Err(Errno::EINVAL));
        assert!(unbindable.a.unbindable);
    });
}

fn check_leaks(lab: &lab::LeakLab) {
    assert!(lab.shared_tags.shared.is_some(), "{:?}", lab.shared_tags);
    let [none, slave, private] = &lab.cases[..] else {
        panic!("three cases expected: {:?}", lab.cases)
    };
    assert_eq!(none.isolation, None);
    assert_eq!(none.tags.shared, lab.shared_tags.shared, "a plain copy is a peer");
    assert!(none.leaked && none.received, "{none:?}");
    assert_eq!(
        slave.tags.master, lab.shared_tags.shared,
        "MS_SLAVE: a slave of the host's group"
    );
    assert!(!slave.leaked && slave.received, "{slave:?}");
    assert_eq!(private.tags.kind(), "private");
    assert!(!private.leaked && !private.received, "{private:?}");
    for case in &lab.cases {
        assert_ne!(case.container_ns, lab.observer_ns);
    }
}

#[test]
fn an_unisolated_container_leaks_mounts_to_its_parent_namespace() {
    if !require_namespaces("an_unisolated_container_leaks_mounts_to_its_parent_namespace") {
        return;
    }
    on_clean_host(|scratch| {
        let lab = lab::leak_lab(scratch, false).unwrap();
        assert_eq!(lab.observer_is_host, nskit::userns::is_root());
        check_leaks(&lab);
    });
}

/// As root the leak lands in the host's own table (on the demo's scratch mount) and is cleaned up;
/// with a user namespace (forced as root, always otherwise) the lab runs in a namespace of its own.
#[test]
fn the_leak_lab_runs_on_the_host_only_as_root() {
    if !require_namespaces("the_leak_lab_runs_on_the_host_only_as_root") {
        return;
    }
    on_clean_host(|scratch| {
        let host = nskit::ns::ns_id(nskit::Proc::Current, nskit::Kind::Mnt).unwrap();
        if nskit::userns::is_root() {
            let lab = lab::leak_lab(scratch, false).unwrap();
            assert!(lab.observer_is_host);
            assert_eq!(
                lab.observer_ns, host,
                "the observer is the host's own mount namespace"
            );
            check_leaks(&lab);
        }
        let forced = lab::leak_lab(scratch, true).unwrap();
        assert!(!forced.observer_is_host);
        assert_ne!(forced.observer_ns, host);
        check_leaks(&forced);
    });
}

#[test]
fn a_chrooted_process_escapes_to_the_host_root() {
    if !require_namespaces("a_chrooted_process_escapes_to_the_host_root") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        let seen = lab::chroot_escape(&spawn(), scratch, &rootfs).unwrap();
        let inside = RootView {
            is_host_root: false,
            sees_rootfs: true,
            sees_scratch: false,
        };
        assert_eq!(seen.chrooted, inside);
        assert_eq!(
            seen.escaped,
            RootView {
                is_host_root: true,
                sees_rootfs: false,
                sees_scratch: true
            }
        );
    });
}

#[test]
fn pivot_root_fails_first_then_holds() {
    if !require_namespaces("pivot_root_fails_first_then_holds") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        let seen = lab::pivot_lab(false, scratch, &rootfs).unwrap();
        assert_eq!(seen.not_a_mount_point, Err(Errno::EINVAL));
        assert_eq!(seen.shared_mount, Err(Errno::EINVAL));
        assert_eq!(seen.pivoted, Ok(()));
        let inside = RootView {
            is_host_root: false,
            sees_rootfs: true,
            sees_scratch: false,
        };
        assert_eq!(seen.after_pivot, inside);
        assert_eq!(seen.after_escape, inside, "the escape must fail after pivot_root");
        assert_eq!(seen.mounts_inside, ["/", "/proc"]);
    });
}

#[test]
fn a_symlink_out_of_the_rootfs_is_refused_and_named() {
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        let check = lab::symlink_check(&rootfs);
        assert_eq!(
            check.naive.as_deref(),
            std::fs::canonicalize("/run").ok().as_deref()
        );
        let err = check.resolved.unwrap_err();
        assert_eq!(err.errno(), Errno::EXDEV);
        assert!(err.to_string().contains("/var/run"), "{err}");
    });
}
