//! The tests that say when an exercise of the PID chapter is done, one module per exercise. They call
//! [`pid_exercises::checked`]: your starting points, or the solutions with `--features solution`.
//! Namespace work happens in children (`pid_exercises::given`), never in a test's thread.

mod nspid {
    use nix::unistd::getpid;
    use nskit::testing::require_namespaces;
    use pid_exercises::checked::nspid::pids_of;
    use pid_exercises::given::waiting_init;

    #[test]
    fn the_init_is_1_inside_and_its_host_pid_outside() {
        if !require_namespaces("the_init_is_1_inside_and_its_host_pid_outside") {
            return;
        }
        let ours = pids_of(getpid()).unwrap_or_else(|e| panic!("pids_of(our own pid) failed: {e}"));
        assert_eq!(
            ours.first(),
            Some(&getpid().as_raw()),
            "our own PID first: {ours:?}"
        );
        let init = waiting_init().unwrap();
        let theirs = pids_of(init.pid()).unwrap_or_else(|e| panic!("pids_of(the init) failed: {e}"));
        assert_eq!(
            theirs.first(),
            Some(&init.pid().as_raw()),
            "the host's PID first, the one clone returned"
        );
        assert_eq!(theirs.last(), Some(&1), "PID 1 in its own namespace");
        assert_eq!(
            theirs.len(),
            ours.len() + 1,
            "one level deeper than we are: {theirs:?} against our {ours:?}"
        );
    }

    #[test]
    fn a_process_that_is_gone_is_an_error() {
        let gone = nix::unistd::Pid::from_raw(i32::MAX);
        assert!(pids_of(gone).is_err(), "no process has PID {gone}");
    }
}

mod proc {
    use std::path::Path;

    use nskit::mount::make_mounts_private;
    use nskit::testing::require_namespaces;
    use pid_demo::procfs::list_processes;
    use pid_exercises::checked::proc::init_setup;
    use pid_exercises::given::in_new_init;

    #[test]
    fn the_init_sees_only_its_own_namespace() {
        if !require_namespaces("the_init_sees_only_its_own_namespace") {
            return;
        }
        let seen = in_new_init(|| {
            make_mounts_private().map_err(|e| e.to_string())?;
            init_setup().map_err(|e| e.to_string())?;
            let listed = list_processes(Path::new("/proc")).map_err(|e| e.to_string())?;
            Ok(listed.iter().map(|p| p.pid).collect::<Vec<i32>>())
        });
        let seen = seen.unwrap_or_else(|why| panic!("the init failed: {why}"));
        let shown: Vec<&i32> = seen.iter().take(8).collect();
        assert_eq!(
            seen,
            [1],
            "the init, alone in its namespace, lists {} processes in /proc, among them {shown:?}.\n\n\
             Its clone(CLONE_NEWPID) made a new PID namespace, but /proc is still the host's proc mount, \
             and a proc mount shows the PID namespace of whoever mounted it: the host's, every process \
             of the machine, numbered as the host numbers them. ps, top and kill by name would all see \
             and act on the host. The init mounts a fresh proc over /proc first (pid_namespaces(7), \
             \"/proc and PID namespaces\"); that proc shows its namespace: PID 1, itself.",
            seen.len()
        );
    }
}

mod subreaper {
    use pid_exercises::checked::subreaper::become_subreaper;
    use pid_exercises::given::{in_fresh_process, orphan_lab, said};

    #[test]
    fn the_subreaper_adopts_and_reaps_its_orphaned_grandchild() {
        let adoption = in_fresh_process(|| {
            become_subreaper().map_err(|e| said("become_subreaper", e))?;
            orphan_lab()
        });
        let adoption = adoption.unwrap_or_else(|why| panic!("the lab failed: {why}"));
        assert_eq!(
            adoption.orphans_parent, adoption.adopter,
            "once its parent had exited, the orphan's parent was {}, not the subreaper {}",
            adoption.orphans_parent, adoption.adopter
        );
        assert!(adoption.reaped, "the subreaper could not reap the orphan");
    }
}

mod lastpid {
    use nskit::testing::require_namespaces;
    use pid_demo::init::fork_run;
    use pid_exercises::checked::lastpid::next_pid_will_be;
    use pid_exercises::given::{in_new_init, said};

    #[test]
    fn the_next_child_of_the_init_gets_the_pid_asked_for() {
        if !require_namespaces("the_next_child_of_the_init_gets_the_pid_asked_for") {
            return;
        }
        // The init does not mount a proc of its own: ns_last_pid answers for the writer's namespace.
        let pids = in_new_init(|| {
            let mut pids = Vec::new();
            for wanted in [100, 4242] {
                next_pid_will_be(wanted).map_err(|e| format!("next_pid_will_be({wanted}): {e}"))?;
                let child = fork_run(|| 0).map_err(|e| said("fork", e))?;
                nix::sys::wait::waitpid(child, None).map_err(|e| said("waitpid", e))?;
                pids.push(child.as_raw());
            }
            Ok(pids)
        });
        let pids = pids.unwrap_or_else(|why| panic!("the init failed: {why}"));
        assert_eq!(pids, [100, 4242], "the PIDs the init's children got");
    }
}
