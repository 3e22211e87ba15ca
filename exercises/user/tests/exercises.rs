//! The tests that say when an exercise of the user namespace chapter is done, one module per
//! exercise. They call [`user_exercises::checked`]: your starting points, or the solutions with
//! `--features solution`. Namespace work happens in children (`user_exercises::given`), never in a
//! test's thread; the maps are written by a writer without privileges, even when the test runs as root.

mod maps {
    use nskit::testing::require_userns;
    use user_exercises::checked::maps::write_maps;
    use user_exercises::given::{as_unprivileged_writer, map_a_child};

    #[test]
    fn the_child_becomes_root_of_its_namespace_and_the_writer_outside() {
        if !require_userns("the_child_becomes_root_of_its_namespace_and_the_writer_outside") {
            return;
        }
        let mapped = as_unprivileged_writer(|| {
            map_a_child(|child, uid, gid| write_maps(child, uid, gid).map_err(|e| format!("write_maps: {e}")))
        })
        .unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(
            (mapped.inside.uid, mapped.inside.gid),
            (0, 0),
            "inside, the child is root"
        );
        assert!(
            mapped.inside.caps.effective.is_full(),
            "root of its namespace holds every capability there: {}",
            mapped.inside.caps
        );
        let line: Vec<&str> = mapped.uid_map.split_whitespace().collect();
        assert_eq!(
            line,
            ["0", &mapped.writer_uid.to_string(), "1"],
            "uid_map maps 0 inside to the writer's uid outside"
        );
    }
}

mod setgroups {
    use nskit::testing::require_userns;
    use user_exercises::checked::setgroups::handshake;
    use user_exercises::given::{as_unprivileged_writer, map_a_child, write_map_file};

    #[test]
    fn an_unprivileged_writer_maps_the_child() {
        if !require_userns("an_unprivileged_writer_maps_the_child") {
            return;
        }
        let mapped = as_unprivileged_writer(|| {
            map_a_child(|child, uid, gid| {
                for file in handshake() {
                    write_map_file(child, file, uid, gid).map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        });
        let mapped = mapped.unwrap_or_else(|why| {
            panic!(
                "{why}\n\nThe writer owns the child's user namespace and names only its own gid, yet \
                 gid_map was refused. While /proc/<pid>/setgroups says `allow`, a process inside could \
                 call setgroups(2) and drop a supplementary group, and a group can be what *denies* it \
                 a file on the host (a file mode such as 0707). So a writer without CAP_SETGID over the \
                 parent namespace may write gid_map only after `deny` (user_namespaces(7), \"The \
                 /proc/[pid]/setgroups file\"). Put MapFile::SetgroupsDeny back, first."
            )
        });
        assert_eq!((mapped.inside.uid, mapped.inside.gid), (0, 0));
    }
}

mod owner {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::MetadataExt;

    use nskit::testing::require_userns;
    use user_exercises::checked::owner::{owner, parent};
    use user_exercises::given::Waiting;

    /// `PROC_USER_INIT_INO`: the initial user namespace's inode, the same on every machine.
    const INITIAL_USER_NS: u64 = 0xEFFF_FFFD;

    fn inode(file: &io::Result<File>, what: &str) -> u64 {
        match file {
            Ok(file) => file.metadata().unwrap().ino(),
            Err(e) => panic!("{what} failed: {e}"),
        }
    }

    #[test]
    fn the_childs_user_namespace_owns_its_uts_namespace_and_ours_is_its_parent() {
        if !require_userns("the_childs_user_namespace_owns_its_uts_namespace_and_ours_is_its_parent") {
            return;
        }
        let child = Waiting::spawn().unwrap();
        let (uts, user) = (child.open("uts").unwrap(), child.open("user").unwrap());
        let ours = File::open("/proc/self/ns/user").unwrap();
        assert_eq!(
            inode(&owner(&uts), "owner of the child's uts"),
            user.metadata().unwrap().ino(),
            "the user namespace made by the same clone owns the UTS namespace"
        );
        assert_eq!(
            inode(&parent(&user), "parent of the child's user namespace"),
            ours.metadata().unwrap().ino(),
            "the child's user namespace is a child of ours"
        );
        let host_uts = File::open("/proc/self/ns/uts").unwrap();
        assert_eq!(
            inode(&owner(&host_uts), "owner of our uts"),
            INITIAL_USER_NS,
            "the host's UTS namespace belongs to the initial user namespace"
        );
    }

    #[test]
    fn the_initial_user_namespace_has_no_parent_to_show() {
        let ours = File::open("/proc/self/ns/user").unwrap();
        // In a container the test's own user namespace has a parent, which it may or may not see.
        if !nskit::testing::gate(
            ours.metadata().unwrap().ino() == INITIAL_USER_NS,
            "the_initial_user_namespace_has_no_parent_to_show",
            "needs to run in the initial user namespace",
        ) {
            return;
        }
        let err = parent(&ours)
            .map(drop)
            .expect_err("the initial user namespace has no parent");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
}
