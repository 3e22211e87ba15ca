//! The tests that say when an exercise of the launcher chapter is done, one module per exercise. They
//! call [`combined_exercises::checked`]: your starting points, or the solutions with `--features
//! solution`. Namespace work happens in children (`combined_exercises::given`), never in a test's
//! thread: a child plays the container, and its mounts, capabilities and keyrings die with it.

mod caps {
    use caps::{Capability, CapsHashSet};
    use combined::caps::{CapArg, resolve};
    use combined_exercises::checked::caps::drop_to;
    use combined_exercises::given::{caps_lab, mask};
    use nskit::testing::require_namespaces;

    #[test]
    fn the_container_keeps_the_default_set_and_nothing_else() {
        if !require_namespaces("the_container_keeps_the_default_set_and_nothing_else") {
            return;
        }
        // The launcher's default: Docker's 14 without CAP_MKNOD, no --cap-add or --cap-drop.
        check(&resolve(&[], &[]), "the default set");
    }

    #[test]
    fn the_container_keeps_only_what_cap_drop_all_cap_add_names() {
        if !require_namespaces("the_container_keeps_only_what_cap_drop_all_cap_add_names") {
            return;
        }
        // `--cap-drop ALL --cap-add NET_BIND_SERVICE`, a web server's usual set: no CAP_SETPCAP.
        let keep = resolve(&[CapArg::One(Capability::CAP_NET_BIND_SERVICE)], &[CapArg::All]);
        check(&keep, "--cap-drop ALL --cap-add NET_BIND_SERVICE");
    }

    fn check(keep: &CapsHashSet, what: &str) {
        let want = mask(keep);
        let view = caps_lab(keep, drop_to).unwrap_or_else(|why| {
            let hint = if why.contains("EPERM") || why.contains("not permitted") {
                "\n(PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set, which this set does not keep: \
                 lower the bounding set before the effective set)"
            } else {
                ""
            };
            panic!("with {what}, the container failed: {why}{hint}")
        });
        let sets = view.sets;
        assert_eq!(
            sets.bounding, want,
            "with {what}, the bounding set is {:#x}, not {want:#x}: an execve of a file with \
             capabilities, or of a setuid-root program, could give back what was dropped",
            sets.bounding
        );
        assert_eq!(
            sets.effective, want,
            "with {what}, the effective set is {:#x}, not {want:#x}",
            sets.effective
        );
        assert_eq!(
            sets.permitted, want,
            "with {what}, the permitted set is {:#x}, not {want:#x}",
            sets.permitted
        );
        assert_eq!(
            (sets.inheritable, sets.ambient),
            (0, 0),
            "with {what}, the inheritable and ambient sets must be empty: the ambient set would pass \
             capabilities to a non-root command's execve"
        );
        assert!(
            view.unshare_refused.is_some(),
            "with {what}, the container's root could still make a namespace (unshare CLONE_NEWUTS \
             worked): it kept CAP_SYS_ADMIN"
        );
    }
}

mod keyring {
    use combined_exercises::checked::keyring::join_fresh_session_keyring;
    use combined_exercises::given::{KeyringView, SECRET, keyring_lab};

    #[test]
    fn the_container_cannot_find_the_launchers_key() {
        let view =
            keyring_lab(join_fresh_session_keyring).unwrap_or_else(|why| panic!("the child failed: {why}"));
        match view {
            KeyringView::NoKeys => {
                println!(
                    "the_container_cannot_find_the_launchers_key: this kernel has no keyrings (keyctl is ENOSYS)"
                );
            }
            KeyringView::Searched {
                session_changed,
                found_secret,
            } => {
                assert!(
                    !found_secret,
                    "the container found the launcher's key {SECRET:?} in its session keyring: keyrings \
                     are not a namespace, and the session keyring is inherited across clone and execve \
                     (keyrings(7), session-keyring(7))"
                );
                assert!(
                    session_changed,
                    "the container's session keyring is still the launcher's"
                );
            }
        }
    }
}

mod masks {
    use combined_exercises::checked::masks::protect_proc;
    use combined_exercises::given::masks_lab;
    use mnt_demo::Scratch;
    use nskit::testing::require_namespaces;

    #[test]
    fn the_container_cannot_read_the_masked_or_write_the_read_only() {
        if !require_namespaces("the_container_cannot_read_the_masked_or_write_the_read_only") {
            return;
        }
        let scratch = Scratch::new().unwrap();
        let root = scratch.subdir("root").unwrap();
        scratch.subdir("root/proc").unwrap();
        let view = masks_lab(&root, protect_proc).unwrap_or_else(|why| panic!("the container failed: {why}"));
        assert!(
            view.unmasked.is_empty(),
            "the container reads what the host's kernel says about the whole machine:\n  {}\n\
             The PID namespace changes which processes /proc lists, not these files: interrupts, timers \
             and key descriptions are the host's, and they tell the host's activity (timer_list shows \
             every timer of the machine). A masked file is /dev/null bound over it, a masked directory an empty \
             tmpfs (mask_paths).",
            view.unmasked.join("\n  ")
        );
        assert!(
            view.writable.is_empty(),
            "these stay writable in the container: {:?}. /proc/sys is not namespaced for the most \
             part: a container whose root is the host's root would set the host's kernel parameters \
             there, and /proc/sysrq-trigger reboots the machine (readonly_paths)",
            view.writable
        );
    }
}
