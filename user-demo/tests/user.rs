//! The user namespace chapter's claims, checked on the real kernel (user_namespaces(7),
//! capabilities(7)). Each test runs as root and as an ordinary user; the library decides which maps
//! and which writer the caller's privileges call for, and these tests check the answer for both.

use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{getegid, geteuid};
use nskit::ns::{Kind, Proc, ns_id};
use nskit::testing::{self, require_userns};
use nskit::userns::is_root;
use user_demo::{IdMap, Rule, UserError};

fn four(id: impl std::fmt::Display) -> String {
    format!("{id} {id} {id} {id}")
}

fn overflow(file: &str) -> u32 {
    fs::read_to_string(format!("/proc/sys/kernel/{file}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The outside uid and gid that the run's maps give to id 0 inside.
fn outside_root(uid_map: &IdMap, gid_map: &IdMap) -> (u32, u32) {
    (uid_map.to_outside(0).unwrap(), gid_map.to_outside(0).unwrap())
}

#[test]
fn unmapped_child_is_nobody_with_full_capabilities_then_maps_make_it_root() {
    if !require_userns("unmapped_child_is_nobody_with_full_capabilities_then_maps_make_it_root") {
        return;
    }
    let _guard = testing::exclusive();
    let children = testing::child_processes();
    let host = user_demo::observe().unwrap();
    let (uid_map, gid_map) = user_demo::default_maps();

    // Step 1: before any map.
    let unmapped = user_demo::spawn_unmapped(0, 0).unwrap();
    let before = &unmapped.before;
    assert_ne!(before.view.userns, host.userns, "a new user namespace");
    assert_eq!(before.view.uid, overflow("overflowuid"));
    assert_eq!(before.view.gid, overflow("overflowgid"));
    assert_eq!(before.status.uid, four(overflow("overflowuid")));
    for set in [
        before.view.caps.effective,
        before.view.caps.permitted,
        before.view.caps.bounding,
    ] {
        assert!(set.is_full(), "{set}");
    }
    assert_eq!(
        before.rename_host,
        Err(Errno::EPERM),
        "nothing privileged outside"
    );
    assert_eq!(before.took_ids, None);
    let seen = unmapped.host_sees().unwrap();
    assert_eq!(seen.uid, four(geteuid()), "the host sees the real uid");
    assert_eq!(seen.gid, four(getegid()));

    // Step 2: the parent writes the maps, the child takes uid 0.
    let writes = unmapped.write_maps(&uid_map, &gid_map);
    let files: Vec<&str> = writes.iter().map(|w| w.file.as_str()).collect();
    let expected = if is_root() {
        vec!["gid_map", "uid_map"]
    } else {
        vec!["setgroups", "gid_map", "uid_map"]
    };
    assert_eq!(files, expected);
    assert!(writes.iter().all(|w| w.result.is_ok()), "{writes:?}");
    let setgroups = fs::read_to_string(format!("/proc/{}/setgroups", unmapped.pid())).unwrap();
    assert_eq!(setgroups.trim(), if is_root() { "allow" } else { "deny" });
    let mapped = unmapped.release().unwrap();
    let after = &mapped.after;
    assert_eq!(after.took_ids, Some(Ok(())));
    assert_eq!((after.view.uid, after.view.gid), (0, 0));
    assert_eq!(after.status.uid, four(0));
    assert_eq!(after.status.gid, four(0));
    assert!(after.view.caps.effective.is_full());
    let (outside_uid, outside_gid) = outside_root(&uid_map, &gid_map);
    let seen = mapped.host_sees().unwrap();
    assert_eq!(seen.uid, four(outside_uid));
    assert_eq!(seen.gid, four(outside_gid));
    if !is_root() {
        assert_eq!(
            outside_uid,
            geteuid().as_raw(),
            "unprivileged: still the real uid"
        );
    }
    assert_eq!(
        mapped.host_reads_uid_map().unwrap(),
        uid_map.to_proc_format().trim_end()
    );
    assert!(mapped.finish().unwrap().success());
    assert_eq!(testing::child_processes(), children);
}

#[test]
fn map_rules_fail_with_eperm() {
    if !require_userns("map_rules_fail_with_eperm") {
        return;
    }
    let _guard = testing::exclusive();
    let children = testing::child_processes();
    let rules = user_demo::map_rules().unwrap();
    assert_eq!(rules.dropped_from_root, is_root());
    if is_root() {
        assert_eq!((rules.writer_uid, rules.writer_gid), (65534, 65534));
    } else {
        assert_eq!(rules.writer_uid, geteuid().as_raw());
        assert_eq!(rules.writer_gid, getegid().as_raw());
    }
    let seen: Vec<(Rule, &str, &str, Result<(), Errno>)> = rules
        .attempts
        .iter()
        .map(|a| {
            (
                a.rule,
                a.write.file.as_str(),
                a.write.contents.as_str(),
                a.write.result,
            )
        })
        .collect();
    let own_uid = format!("0 {} 1", rules.writer_uid);
    let own_gid = format!("0 {} 1", rules.writer_gid);
    assert_eq!(
        seen,
        [
            (
                Rule::GidMapBeforeDeny,
                "gid_map",
                own_gid.as_str(),
                Err(Errno::EPERM)
            ),
            (Rule::NotOwned, "uid_map", "0 0 1", Err(Errno::EPERM)),
            (Rule::DoneRight, "setgroups", "deny", Ok(())),
            (Rule::DoneRight, "gid_map", own_gid.as_str(), Ok(())),
            (Rule::DoneRight, "uid_map", own_uid.as_str(), Ok(())),
            (Rule::Twice, "uid_map", own_uid.as_str(), Err(Errno::EPERM)),
        ]
    );
    assert_eq!(testing::child_processes(), children);
}

#[test]
fn root_inside_owns_new_namespaces_but_not_the_hosts() {
    if !require_userns("root_inside_owns_new_namespaces_but_not_the_hosts") {
        return;
    }
    let secret = user_demo::RootOnlyFile::prepare().unwrap();
    if !testing::gate(
        secret.is_some(),
        "root_inside_owns_new_namespaces_but_not_the_hosts",
        "needs a root-only file (root, or an unreadable /etc/shadow)",
    ) {
        return;
    }
    let secret = secret.unwrap();
    let _guard = testing::exclusive();
    let children = testing::child_processes();
    let mounts = testing::mount_table();
    let hostname = nix::unistd::gethostname().unwrap();
    let (uid_map, gid_map) = user_demo::default_maps();

    let powers = user_demo::inside_powers(&uid_map, &gid_map, Some(secret.path()), "inside-test").unwrap();
    assert_eq!(powers.view.uid, 0);
    assert!(powers.view.caps.effective.is_full());
    assert_eq!(powers.host_uts, ns_id(Proc::Current, Kind::Uts).unwrap());
    assert_eq!(powers.rename_host, Err(Errno::EPERM));
    assert_eq!(powers.read_secret, Some(Err(Errno::EACCES)));
    assert_eq!(powers.unshare, Ok(()));
    assert_ne!(powers.uts, powers.host_uts);
    assert_ne!(powers.mnt, powers.host_mnt);
    assert_eq!(powers.rename_own, Ok(()));
    assert_eq!(powers.hostname, "inside-test");
    assert_eq!(powers.mount_tmpfs, Ok(()));

    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        hostname,
        "host's hostname unchanged"
    );
    assert_eq!(testing::mount_table(), mounts, "host's mount table unchanged");
    assert_eq!(testing::child_processes(), children);
    let path = secret.path().to_owned();
    drop(secret);
    if is_root() {
        assert!(!path.exists(), "the root-only file is removed");
        assert!(!path.parent().unwrap().exists());
    }
}

#[test]
fn capabilities_are_kept_by_uid_0_and_lost_by_others_on_execve() {
    if !require_userns("capabilities_are_kept_by_uid_0_and_lost_by_others_on_execve") {
        return;
    }
    let _guard = testing::exclusive();
    let children = testing::child_processes();
    let program = Path::new(env!("CARGO_BIN_EXE_user-demo"));
    let (uid_map, gid_map) = user_demo::default_maps();
    let [as_root, as_user] = user_demo::exec_maps(&uid_map, &gid_map);

    let root = user_demo::caps_across_exec(program, &as_root.0, &as_root.1).unwrap();
    assert_eq!((root.before.uid, root.after.uid), (0, 0));
    assert_eq!(
        root.before.userns, root.after.userns,
        "execve stays in the namespace"
    );
    for set in [
        root.before.caps.effective,
        root.after.caps.effective,
        root.after.caps.permitted,
    ] {
        assert!(set.is_full(), "{set}");
    }

    let user = user_demo::caps_across_exec(program, &as_user.0, &as_user.1).unwrap();
    assert_eq!((user.before.uid, user.after.uid), (1000, 1000));
    assert!(user.before.caps.effective.is_full(), "full until execve");
    assert!(user.after.caps.effective.is_empty());
    assert!(user.after.caps.permitted.is_empty());
    assert!(user.after.caps.bounding.is_full(), "the bounding set only limits");
    assert_eq!(testing::child_processes(), children);
}

#[test]
fn a_caps_report_that_never_comes_says_why() {
    if !require_userns("a_caps_report_that_never_comes_says_why") {
        return;
    }
    let _guard = testing::exclusive();
    let children = testing::child_processes();
    let (uid_map, gid_map) = user_demo::default_maps();
    let [(uids, gids), _] = user_demo::exec_maps(&uid_map, &gid_map);

    // Not a program: execve fails, and the child says so on its channel.
    let not_a_program = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    match user_demo::caps_across_exec(not_a_program, &uids, &gids) {
        Err(UserError::Child(nskit::StepError::Child(e))) => {
            assert_eq!(e.step, "execve caps-report");
            assert_eq!(e.errno(), Some(Errno::EACCES));
        }
        other => panic!("expected the child's execve error: {other:?}"),
    }
    // A program that prints nothing (whatever its exit status: busybox's `true` does not know itself
    // by the name it is given): the channel closed with the execve, so the exit status is all there
    // is to tell.
    let result = user_demo::caps_across_exec(Path::new("/bin/true"), &uids, &gids);
    assert!(matches!(result, Err(UserError::NoReport(_))), "{result:?}");
    assert_eq!(testing::child_processes(), children);
}

#[test]
fn nested_maps_are_relative_and_chown_to_unmapped_id_is_einval() {
    if !require_userns("nested_maps_are_relative_and_chown_to_unmapped_id_is_einval") {
        return;
    }
    let _guard = testing::exclusive();
    let children = testing::child_processes();
    let host = user_demo::observe().unwrap();
    let (uid_map, gid_map) = user_demo::default_maps();
    let (outside_uid, _) = outside_root(&uid_map, &gid_map);

    let nest = user_demo::nesting(&uid_map, &gid_map).unwrap();
    let namespaces = [host.userns, nest.level1.userns, nest.level2.userns];
    assert_ne!(namespaces[0], namespaces[1]);
    assert_ne!(namespaces[1], namespaces[2]);
    assert_ne!(namespaces[0], namespaces[2]);
    assert_eq!((nest.level1.uid, nest.level2.uid), (0, 0));
    assert!(nest.level2.caps.effective.is_full());

    let unmapped = user_demo::first_unmapped(&uid_map);
    assert_eq!(nest.refused.contents, format!("0 {unmapped} 1"));
    assert_eq!(nest.refused.result, Err(Errno::EPERM));
    assert!(
        nest.written.iter().all(|w| w.result.is_ok()),
        "{:?}",
        nest.written
    );
    assert_eq!(nest.map_seen_by_level1, "0 0 1");
    assert_eq!(nest.map_seen_by_host, format!("0 {outside_uid} 1"));
    assert_eq!(nest.status_seen_by_level2.uid, four(0));
    assert_eq!(nest.status_seen_by_level1.uid, four(0));
    assert_eq!(nest.status_seen_by_host.uid, four(outside_uid));

    assert_eq!(nest.unmapped_id, 1);
    assert_eq!(nest.chown_unmapped, Err(Errno::EINVAL));
    assert_eq!(nest.chown_root, Ok(()));
    assert_eq!(testing::child_processes(), children);
}
