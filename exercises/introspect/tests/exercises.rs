//! The tests that say when an exercise of the introspection chapter is done, one module per exercise.
//! They call [`introspect_exercises::checked`]: your starting points, or the solutions with
//! `--features solution`. Namespace work happens in children (`introspect_exercises::given`), never in
//! a test's thread; the limits are set in a user namespace that plays the host, never in the host's.

mod lsns {
    use std::collections::BTreeMap;

    use introspect_exercises::checked::lsns::list_namespaces;
    use introspect_exercises::given::{Failure, Known, LsnsLab, Namespace, lsns_lab};
    use nskit::testing::require_userns;

    #[test]
    fn the_listing_has_each_namespace_once_with_its_lowest_pid() {
        if !require_userns("the_listing_has_each_namespace_once_with_its_lowest_pid") {
            return;
        }
        let lab = lsns_lab(list_namespaces).unwrap_or_else(|why| panic!("{why}"));
        let listed = match &lab.listed {
            Ok(listed) => listed,
            Err(failure) => panic!("{}", why_it_failed(failure, &lab)),
        };
        let mut times: BTreeMap<u64, usize> = BTreeMap::new();
        for ns in listed {
            *times.entry(ns.inode).or_default() += 1;
        }
        let repeated: Vec<(&u64, &usize)> = times.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "namespaces listed more than once, (inode, times): {repeated:?}: a namespace is one entry, \
             which counts every process in it"
        );
        expect(
            listed,
            &lab.alone,
            "the child alone in a UTS namespace of its own",
        );
        expect(
            listed,
            &lab.pair,
            "the child whose own child shares its UTS namespace",
        );
        let host = find(listed, &lab.host, "the host's UTS namespace, the helper's own");
        assert!(
            host.lowest_pid <= lab.host.pids[0] && host.processes >= 1,
            "the host's UTS namespace holds the helper, PID {}, yet the listing says {host:?}",
            lab.host.pids[0]
        );
    }

    fn find<'a>(listed: &'a [Namespace], known: &Known, what: &str) -> &'a Namespace {
        listed
            .iter()
            .find(|ns| ns.inode == known.inode)
            .unwrap_or_else(|| {
                panic!(
                    "{what}, inode {} with PIDs {:?}, is not in the listing: {listed:?}",
                    known.inode, known.pids
                )
            })
    }

    fn expect(listed: &[Namespace], known: &Known, what: &str) {
        let want = Namespace {
            inode: known.inode,
            lowest_pid: known.pids.iter().copied().min().expect("a process in it"),
            processes: known.pids.len(),
        };
        assert_eq!(
            *find(listed, known, what),
            want,
            "{what}: its processes are PIDs {:?}",
            known.pids
        );
    }

    fn why_it_failed(failure: &Failure, lab: &LsnsLab) -> String {
        let hint = match failure.errno {
            Some(libc::ENOENT) | Some(libc::ESRCH) => format!(
                "\n(a process can vanish under the walk: PID {} has exited and waits to be reaped, a \
                 zombie whose namespaces went when it exited, and any process may exit between readdir \
                 and stat. A process that is gone is no failure of the listing: skip ENOENT, and ESRCH, \
                 which a /proc/<pid> opened before the process was reaped answers)",
                lab.zombie
            ),
            Some(libc::EACCES) => "\n(the links of another user's process may be read only when a ptrace \
                                   access check allows it (namespaces(7)): PID 1 is root's, and the walk \
                                   runs as uid 65534. lsns lists what it may read: skip EACCES)"
                .to_owned(),
            _ => String::new(),
        };
        format!("list_namespaces failed: {}{hint}", failure.message)
    }
}

mod nsenter {
    use std::os::unix::fs::MetadataExt;

    use introspect_exercises::checked::nsenter::enter;
    use introspect_exercises::given::{Entered, TARGET_HOSTNAME, Target, nsenter_lab};
    use nskit::testing::require_userns;

    /// The test's own hostname and UTS namespace.
    fn ours() -> (String, u64) {
        let name = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
        (name, std::fs::metadata("/proc/self/ns/uts").unwrap().ino())
    }

    #[test]
    fn an_ordinary_user_enters_the_uts_namespace_of_a_rootless_container() {
        if !require_userns("an_ordinary_user_enters_the_uts_namespace_of_a_rootless_container") {
            return;
        }
        check(
            Target::InItsOwnUserNamespace,
            "a target in a user namespace of its own",
        );
    }

    #[test]
    fn root_of_a_user_namespace_enters_a_uts_namespace_made_in_it() {
        if !require_userns("root_of_a_user_namespace_enters_a_uts_namespace_made_in_it") {
            return;
        }
        check(
            Target::InTheCallersUserNamespace,
            "a target in the caller's user namespace",
        );
    }

    fn check(target: Target, what: &str) {
        let before = ours();
        let seen = nsenter_lab(target, enter).unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(
            ours(),
            before,
            "the test's own hostname and UTS namespace are as they were"
        );
        if let Err(failure) = &seen.entered {
            panic!(
                "with {what}, enter failed: {}{}",
                failure.message,
                hint(failure.errno, &seen)
            );
        }
        assert_eq!(
            seen.hostname, TARGET_HOSTNAME,
            "with {what}, the hostname after enter is not the target's: is the caller in its UTS \
             namespace?"
        );
        assert_eq!(
            seen.uts_after, seen.target_uts,
            "with {what}, the caller is not in the target's UTS namespace"
        );
        assert_eq!(
            seen.user_after, seen.target_user,
            "with {what}, the caller is not in the target's user namespace"
        );
    }

    fn hint(errno: Option<i32>, seen: &Entered) -> String {
        match errno {
            Some(libc::EPERM) => "\n(joining a UTS namespace takes CAP_SYS_ADMIN both in the user namespace \
                                  that owns it and in the caller's own (setns(2)). The caller owns the \
                                  target's user namespace, so it holds every capability there, but none \
                                  in its own, the host's. Joining the target's user namespace first makes \
                                  that one the caller's own)"
                .to_owned(),
            Some(libc::EINVAL) if seen.user_before == seen.target_user => {
                "\n(the target is in the caller's own user namespace, and setns(2) refuses to re-enter \
                 that: a process that had dropped capabilities would get them all back. Join a user \
                 namespace only when it is not yours: compare the inodes)"
                    .to_owned()
            }
            Some(libc::EINVAL) => "\n(setns(2) answers EINVAL when the file is not a namespace of the \
                                   kind the flag names, and refuses a user namespace to a process with \
                                   more than one thread)"
                .to_owned(),
            _ => String::new(),
        }
    }
}

mod limits {
    use introspect_exercises::checked::limits::{
        before_the_container, in_a_nested_namespace, in_the_container,
    };
    use introspect_exercises::given::{LimitSteps, limits_lab};
    use nix::errno::Errno;
    use nskit::ns::Kind;
    use nskit::testing::require_userns;
    use user_demo::introspect::max_namespaces;

    fn outcome(result: Result<(), Errno>) -> String {
        match result {
            Ok(()) => "made one".to_owned(),
            Err(errno) => format!("refused, {errno}"),
        }
    }

    #[test]
    fn the_container_is_limited_and_the_host_is_not() {
        if !require_userns("the_container_is_limited_and_the_host_is_not") {
            return;
        }
        let machine = max_namespaces(Kind::Uts).unwrap();
        let steps = LimitSteps {
            before_the_container,
            in_the_container,
            in_a_nested_namespace,
        };
        let lab = limits_lab(Kind::Uts, 0, steps).unwrap_or_else(|why| panic!("{why}"));
        let container = lab
            .container
            .as_ref()
            .unwrap_or_else(|why| panic!("the container failed: {why}"));
        println!(
            "the lab, a limit of 0 on UTS namespaces:\n  the host's own file: {} before, {} after; the \
             host's unshare(CLONE_NEWUTS) afterwards: {}\n  the container's own file: {}; its unshare: \
             {}\n  a nested user namespace's own file: {}; its unshare: {}",
            lab.host_limit_before,
            lab.host_limit_after,
            outcome(lab.host_unshare),
            container.own_limit,
            outcome(container.unshare),
            container.nested_limit,
            outcome(container.nested_unshare),
        );
        assert_eq!(
            container.unshare,
            Err(Errno::ENOSPC),
            "the container made a UTS namespace: a limit of 0 refuses it with ENOSPC"
        );
        assert_eq!(
            container.nested_unshare,
            Err(Errno::ENOSPC),
            "a user namespace nested in the container made a UTS namespace: the container's limit \
             binds every user namespace below it"
        );
        assert!(
            lab.host_limit_after == lab.host_limit_before && lab.host_unshare.is_ok(),
            "the container was refused, but so is the host: its own limit is now {}, not {}, and its \
             own unshare(CLONE_NEWUTS) was {}. The runtime wrote the file of its own user namespace, \
             the host's: every user of the host, and every container it starts, is bound by it. A \
             process in the container's user namespace must write the container's",
            lab.host_limit_after,
            lab.host_limit_before,
            outcome(lab.host_unshare),
        );
        assert_eq!(
            max_namespaces(Kind::Uts).unwrap(),
            machine,
            "this machine's own limit is as it was"
        );
    }
}
