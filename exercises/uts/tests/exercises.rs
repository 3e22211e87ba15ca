//! The tests that say when an exercise of the UTS chapter is done, one module per exercise. They call
//! [`uts_exercises::checked`]: your starting points, or the solutions with `--features solution`.
//! Namespace work happens in children (`uts_exercises::given`), never in a test's thread.

mod names {
    use std::fs;

    use uts_exercises::checked::names::read_names;

    fn kernel(file: &str) -> String {
        fs::read_to_string(format!("/proc/sys/kernel/{file}"))
            .unwrap()
            .trim_end()
            .to_owned()
    }

    #[test]
    fn the_names_are_the_kernels_and_the_inode_is_the_namespaces() {
        let names = read_names().unwrap_or_else(|e| panic!("read_names failed: {e}"));
        assert_eq!(
            names.hostname,
            kernel("hostname"),
            "the hostname, as /proc/sys/kernel/hostname says"
        );
        assert_eq!(
            names.domainname,
            kernel("domainname"),
            "the NIS domain name, as /proc/sys/kernel/domainname says"
        );
        let link = fs::read_link("/proc/self/ns/uts").unwrap();
        let link = link.to_string_lossy();
        assert_eq!(
            format!("uts:[{}]", names.uts_inode),
            link,
            "the inode of /proc/self/ns/uts is the number readlink shows"
        );
    }
}

mod rename {
    use nskit::testing::require_namespaces;
    use uts_exercises::checked::rename::rename;
    use uts_exercises::given::{in_child, new_uts, said};
    use uts_exercises::solution::names::read_names;

    #[test]
    fn the_child_renames_its_namespace_and_the_host_keeps_its_names() {
        if !require_namespaces("the_child_renames_its_namespace_and_the_host_keeps_its_names") {
            return;
        }
        let host = read_names().unwrap();
        let child = in_child(&new_uts(), || {
            rename("exercise-box", "exercise.test").map_err(|e| said("rename", e))?;
            read_names().map_err(|e| e.to_string())
        });
        let child = child.unwrap_or_else(|why| panic!("the child failed: {why}"));
        assert_eq!(child.hostname, "exercise-box", "the child's hostname");
        assert_eq!(child.domainname, "exercise.test", "the child's domain name");
        assert_ne!(
            child.uts_inode, host.uts_inode,
            "the child is in a UTS namespace of its own"
        );
        assert_eq!(
            read_names().unwrap(),
            host,
            "the host's names and namespace are as they were"
        );
    }
}

mod keepalive {
    use nskit::testing::require_namespaces;
    use uts_exercises::checked::keepalive::{hold, join};
    use uts_exercises::given::{Named, fresh_process, in_child, said};

    #[test]
    fn an_open_namespace_file_outlives_the_child_and_setns_joins_it() {
        if !require_namespaces("an_open_namespace_file_outlives_the_child_and_setns_joins_it") {
            return;
        }
        let named = Named::spawn("kept-alive").unwrap();
        let handles = hold(named.pid(), named.in_user_ns()).unwrap_or_else(|e| panic!("hold failed: {e}"));
        named.finish().unwrap();
        // The child has exited and been reaped: only `handles` refers to its namespaces now.
        let seen = in_child(&fresh_process(), || {
            join(&handles).map_err(|e| said("join", e))?;
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .map_err(|e| said("gethostname", e))
        });
        let seen = seen.unwrap_or_else(|why| panic!("the joiner failed: {why}"));
        assert_eq!(
            seen, "kept-alive",
            "after joining, the hostname is the one the exited child set"
        );
    }
}

mod owner {
    use nskit::testing::require_userns;
    use uts_exercises::checked::owner::child_flags;
    use uts_exercises::given::{in_child_with_userns, said};
    use uts_exercises::solution::names::read_names;

    #[test]
    fn the_child_may_rename_the_uts_namespace_its_user_namespace_owns() {
        if !require_userns("the_child_may_rename_the_uts_namespace_its_user_namespace_owns") {
            return;
        }
        let host = read_names().unwrap();
        let renamed = in_child_with_userns(child_flags(), || {
            nix::unistd::sethostname("owned").map_err(|e| said("sethostname", e))
        });
        assert_eq!(read_names().unwrap(), host, "the host's names are as they were");
        if let Err(why) = renamed {
            panic!(
                "{why}\n\nThe child is uid 0 in its user namespace and holds every capability there, yet \
                 sethostname was refused. Without CLONE_NEWUTS the child is still in the host's UTS \
                 namespace, which the initial user namespace owns, and a capability counts only in the \
                 namespaces owned by the user namespace it is held in (user_namespaces(7)). Put \
                 CLONE_NEWUTS back in child_flags: then the same clone makes both namespaces, and the \
                 new user namespace owns the new UTS namespace."
            );
        }
    }
}
