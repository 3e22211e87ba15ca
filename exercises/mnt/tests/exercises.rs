//! The tests that say when an exercise of the mount chapter is done, one module per exercise. They
//! call [`mnt_exercises::checked`]: your starting points, or the solutions with `--features solution`.
//! Namespace work happens in children (`mnt_exercises::given`), never in a test's thread; every mount
//! is made under a scratch directory of the test's own, and the host's table is checked afterwards.

mod mountinfo {
    use mnt_exercises::Mount;
    use mnt_exercises::checked::mountinfo::parse_line;

    #[test]
    fn the_man_pages_example() {
        let line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        assert_eq!(
            parse_line(line),
            Some(Mount {
                id: 36,
                parent: 35,
                mount_point: "/mnt2".into(),
                propagation: vec!["master:1".into()],
                fs_type: "ext3".into(),
                source: "/dev/root".into(),
            })
        );
    }

    #[test]
    fn escapes_and_any_number_of_optional_fields() {
        let two = r"40 30 0:5 / /tmp/a\040b rw shared:3 master:2 - tmpfs tmp\134fs rw";
        let mount = parse_line(two).expect("a valid line");
        assert_eq!(mount.mount_point, "/tmp/a b", r"\040 is a blank");
        assert_eq!(mount.source, r"tmp\fs", r"\134 is a backslash");
        assert_eq!(mount.propagation, ["shared:3", "master:2"]);
        let none = "41 30 0:6 / /private rw - tmpfs tmpfs rw";
        assert_eq!(
            parse_line(none).map(|m| m.propagation),
            Some(vec![]),
            "a private mount has no optional field"
        );
    }

    #[test]
    fn malformed_lines_are_refused() {
        for line in [
            "",
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw",
            "x 35 98:0 / /mnt rw - ext3 /dev/root rw",
            "36 35 98:0 / /mnt rw -",
            r"36 35 98:0 / /a\04 rw - ext3 /dev/root rw",
            "36 35 / /mnt - ext3 /dev/root rw",
        ] {
            assert_eq!(parse_line(line), None, "{line:?} is malformed");
        }
    }

    #[test]
    fn every_line_of_this_machines_table() {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in text.lines() {
            let mine = parse_line(line).unwrap_or_else(|| panic!("refused a real line: {line}"));
            let chapter = mnt_demo::mountinfo::MountEntry::parse(line).unwrap();
            assert_eq!(
                (
                    mine.id,
                    mine.parent,
                    &mine.mount_point,
                    &mine.fs_type,
                    &mine.source
                ),
                (
                    chapter.mount_id,
                    chapter.parent_id,
                    &chapter.mount_point,
                    &chapter.fs_type,
                    &chapter.source
                ),
                "{line}"
            );
            assert_eq!(
                mine.propagation.join(" "),
                chapter.propagation.fields().replace('-', "")
            );
        }
    }
}

mod private {
    use mnt_demo::Scratch;
    use mnt_demo::mountinfo::is_mounted;
    use mnt_exercises::checked::private::private_tmpfs;
    use mnt_exercises::given::{in_child, look, new_mount_ns, said, share_like_systemd};
    use nskit::Proc;
    use nskit::testing::require_namespaces;

    #[test]
    fn the_tmpfs_is_the_childs_own_and_nothing_is_shared() {
        if !require_namespaces("the_tmpfs_is_the_childs_own_and_nothing_is_shared") {
            return;
        }
        let scratch = Scratch::new().unwrap();
        let target = scratch.subdir("private").unwrap();
        let child = in_child(&new_mount_ns(), || {
            share_like_systemd()?;
            private_tmpfs(&target).map_err(|e| said("private_tmpfs", e))?;
            look(&target)
        });
        let child = child.unwrap_or_else(|why| panic!("the child failed: {why}"));
        assert!(
            child.target_mounted,
            "the child's table has no mount at {}",
            target.display()
        );
        let shown: Vec<&String> = child.not_private.iter().take(4).collect();
        assert!(
            child.not_private.is_empty(),
            "{} mounts of the child still pass or receive mount events, among them {shown:?}\n\
             (MS_PRIVATE alone changes `/` only: MS_REC makes it apply to every mount below it)",
            child.not_private.len()
        );
        assert!(
            !is_mounted(Proc::Current, &target).unwrap(),
            "the host sees the child's tmpfs"
        );
    }
}

mod leak {
    use mnt_demo::Scratch;
    use mnt_exercises::checked::leak::container_setup;
    use mnt_exercises::given::leak_lab;
    use nskit::testing::require_namespaces;

    #[test]
    fn the_containers_mount_stays_in_the_container() {
        if !require_namespaces("the_containers_mount_stays_in_the_container") {
            return;
        }
        let scratch = Scratch::new().unwrap();
        let shared = scratch.subdir("shared").unwrap();
        let view = leak_lab(&shared, container_setup).unwrap_or_else(|why| panic!("the lab failed: {why}"));
        assert!(
            !view.leaked,
            "LEAK: the container's tmpfs appeared in the host's mount table.\n\nIts copy of the host's \
             shared mount is `{}`: clone(CLONE_NEWNS) copied it into the host's peer group, and a \
             mount made under one member of a peer group is replayed under every other \
             (mount_namespaces(7), \"Shared subtrees\"). A container first makes its whole tree \
             private, or a slave (MS_REC | MS_PRIVATE or MS_SLAVE on /), before it mounts anything.",
            view.container_tags
        );
    }
}

mod pivot {
    use mnt_demo::Scratch;
    use mnt_exercises::checked::pivot::enter_rootfs;
    use mnt_exercises::given::pivot_lab;
    use nskit::testing::require_namespaces;

    #[test]
    fn the_rootfs_is_the_root_and_the_old_root_is_out_of_reach() {
        if !require_namespaces("the_rootfs_is_the_root_and_the_old_root_is_out_of_reach") {
            return;
        }
        let scratch = Scratch::new().unwrap();
        let rootfs = scratch.build_rootfs().unwrap();
        let view = pivot_lab(scratch.path(), &rootfs, enter_rootfs)
            .unwrap_or_else(|why| panic!("the child failed: {why}"));
        assert!(
            view.after_enter.sees_rootfs && !view.after_enter.sees_scratch,
            "after enter_rootfs, / is not the rootfs: {:?}",
            view.after_enter
        );
        assert!(
            view.after_escape.sees_rootfs && !view.after_escape.sees_scratch,
            "the chroot escape reached the old root: {:?}. pivot_root(\".\", \".\") leaves the old root \
             stacked on the new one; it must be detached (umount2 with MNT_DETACH), not only hidden",
            view.after_escape
        );
    }
}
