//! The tests that say when an exercise of the cgroup chapter is done, one module per exercise. They
//! call [`cgroup_exercises::checked`]: your starting points, or the solutions with `--features
//! solution`. A test that makes a cgroup needs root or a delegated one, says so and returns without,
//! and removes its cgroup whatever happens.

mod lines {
    use cgroup_exercises::Line;
    use cgroup_exercises::checked::lines::parse_line;

    fn line(hierarchy: u32, controllers: &[&str], path: &str) -> Option<Line> {
        Some(Line {
            hierarchy,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            path: path.to_owned(),
        })
    }

    #[test]
    fn v1_and_v2_lines() {
        assert_eq!(
            parse_line("0::/user.slice/session-2.scope"),
            line(0, &[], "/user.slice/session-2.scope")
        );
        assert_eq!(parse_line("4:cpu,cpuacct:/"), line(4, &["cpu", "cpuacct"], "/"));
        assert_eq!(
            parse_line("1:name=systemd:/init.scope"),
            line(1, &["name=systemd"], "/init.scope")
        );
        assert_eq!(
            parse_line("0::/a:b"),
            line(0, &[], "/a:b"),
            "a path may hold a colon"
        );
        assert_eq!(
            parse_line("0::/../../x"),
            line(0, &[], "/../../x"),
            "outside the namespace root"
        );
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in ["", "0:/", "x::/", "-1::/", "/user.slice"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_line_of_this_process() {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        for text_line in text.lines() {
            let chapter = cgroup_demo::Membership::parse(text_line).unwrap();
            assert_eq!(
                parse_line(text_line),
                line(
                    chapter.hierarchy,
                    &chapter.controllers.iter().map(String::as_str).collect::<Vec<_>>(),
                    &chapter.path
                ),
                "{text_line}"
            );
        }
    }
}

mod pids {
    use cgroup_demo::Controller;
    use cgroup_exercises::checked::pids::{join, limit_pids};
    use cgroup_exercises::given::{TestCgroup, fork_lab, may_make_cgroups};

    #[test]
    fn at_pids_max_fork_is_refused_with_eagain() {
        if !may_make_cgroups("at_pids_max_fork_is_refused_with_eagain", &[Controller::Pids]) {
            return;
        }
        let cgroup = TestCgroup::create("pids", &[Controller::Pids]);
        let dir = cgroup.dir_for(Controller::Pids);
        let forks = fork_lab(
            |pid| {
                limit_pids(&dir, 4).map_err(|e| format!("limit_pids: {e}"))?;
                join(&dir, pid).map_err(|e| format!("join: {e}"))
            },
            10,
        );
        let forks = forks.unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(
            forks,
            cgroup_exercises::given::Forks {
                forked: 3,
                refused: Some("EAGAIN".into())
            },
            "the child and three children fill pids.max = 4; the fourth fork fails"
        );
    }
}

mod ns {
    use cgroup_demo::Controller;
    use cgroup_exercises::checked::ns::order;
    use cgroup_exercises::given::{TestCgroup, may_make_cgroups, ns_lab};

    #[test]
    fn the_cgroup_joined_first_is_the_namespace_root() {
        if !may_make_cgroups("the_cgroup_joined_first_is_the_namespace_root", &Controller::ALL) {
            return;
        }
        let cgroup = TestCgroup::create("ns", &Controller::ALL);
        let lines = ns_lab(cgroup.dirs(), order()).unwrap_or_else(|why| panic!("the child failed: {why}"));
        let not_root: Vec<String> = lines
            .iter()
            .filter(|l| l.path != "/")
            .map(|l| format!("{}:{}:{}", l.hierarchy, l.controllers.join(","), l.path))
            .collect();
        assert!(
            not_root.is_empty(),
            "the child's own cgroups read {not_root:?}, not `/`.\n\nA cgroup namespace's root is the \
             cgroup its creator was in at the moment of unshare (or clone) (cgroup_namespaces(7)); \
             moving later does not move the root. The child unshared while it was still in the test's \
             cgroup, then moved into the new one below it: its own cgroup now reads as a path below \
             its root. A container runtime moves the container's first process into the container's \
             cgroup before it makes the cgroup namespace, for this reason: the container then reads \
             `/` and sees nothing of the host's cgroup paths. Put Step::JoinCgroup back first."
        );
    }
}
