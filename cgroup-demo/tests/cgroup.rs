//! Every claim of the cgroup chapter, checked on the running kernel, whichever kind of host it is
//! (cgroups(7), cgroup_namespaces(7), Documentation/admin-guide/cgroup-v2.rst): on the project's CI
//! machine the v1 paths, in `cargo xtask test-vm`'s guest the v2 ones. Children are cloned with
//! `nskit::Spawn`; no test thread unshares anything. Tests that make cgroups count the chapter's
//! cgroup directories before and after.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use cgroup_demo::{
    Bytes, Cgroup, Controller, Cpus, Hierarchies, HostKind, Limits, PidsLimit, Swap, Version, memberships,
    relative_path,
};
use common::{delegated, demo_cgroups, placement, unique};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nskit::testing::{exclusive, require_namespaces, require_userns};
use nskit::{Exit, Proc, Spawn, UserNs};

fn hierarchies() -> Hierarchies {
    Hierarchies::read().unwrap()
}

/// Runs `body` and checks that it left no cgroup directory of this chapter behind.
fn leaves_no_cgroup(body: impl FnOnce()) {
    let _serial = exclusive();
    let before = demo_cgroups();
    body();
    assert_eq!(demo_cgroups(), before, "a cgroup directory was left behind");
}

// ---- what a cgroup is -----------------------------------------------------------------------------

#[test]
fn the_host_kind_follows_the_mounts_and_the_kernel_command_line() {
    let h = hierarchies();
    let kind = h.kind().unwrap();
    let v1_controllers = h
        .mounts
        .iter()
        .any(|m| m.version == Version::V1 && m.controllers.iter().any(|c| !c.starts_with("name=")));
    match kind {
        HostKind::V2 => assert!(!v1_controllers && h.v2().is_some()),
        HostKind::Hybrid => assert!(v1_controllers && h.v2().is_some()),
        HostKind::V1 => assert!(v1_controllers && h.v2().is_none()),
    }
    // The VM boots with v1 turned off: there, every check of this file runs on the v2 paths.
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap();
    if cmdline.split_whitespace().any(|w| w == "cgroup_no_v1=all") {
        assert_eq!(kind, HostKind::V2, "cgroup_no_v1=all leaves only cgroup v2");
        let v2 = h.v2().unwrap();
        for controller in Controller::ALL {
            assert!(v2.has(controller.name()), "{controller} offered by {v2:?}");
        }
    }
}

/// The hostname vm-init gives `cargo xtask test-vm`'s guest.
const TEST_VM: &str = "xtask-vm";

#[test]
fn in_the_test_vm_every_run_may_make_cgroups() {
    // The guest delegates a subtree to its unprivileged run (vm-init's cgroup module), so that no
    // test of this file skips there, as root or as uid 65534: the v2 paths are all checked.
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    if hostname.trim() == TEST_VM {
        assert_eq!(hierarchies().kind().unwrap(), HostKind::V2);
        placement().check_access().unwrap();
    }
}

#[test]
fn a_cgroup_is_a_directory_whose_cgroup_procs_lists_its_processes() {
    let h = hierarchies();
    let me = nix::unistd::getpid();
    let lines = memberships(Proc::Current).unwrap();
    assert!(!lines.is_empty());
    let mut checked = 0;
    for line in &lines {
        let Some(mount) = h.mount_of(line) else {
            continue;
        };
        let dir = mount
            .dir_of(&line.path)
            .expect("this process's cgroup is below the mount's root");
        let procs = cgroup_demo::procs_of(&dir).unwrap();
        assert!(procs.contains(&me), "{} does not list {me}", dir.display());
        checked += 1;
    }
    assert!(checked > 0, "no hierarchy of {lines:?} is mounted");
    let v2_lines = lines.iter().filter(|l| l.hierarchy == 0).count();
    assert_eq!(v2_lines, 1, "exactly one line for the v2 hierarchy: {lines:?}");
    if h.kind().unwrap() == HostKind::V2 {
        assert!(
            lines
                .iter()
                .all(|l| l.hierarchy == 0 || l.controllers.iter().all(|c| c.starts_with("name="))),
            "a v2 host has no v1 controller lines: {lines:?}"
        );
    }
}

// ---- delegation -----------------------------------------------------------------------------------

#[test]
fn making_a_cgroup_is_a_matter_of_write_permission() {
    let _serial = exclusive();
    let p = placement();
    let access = p.access();
    for (dir, access) in p.parents.iter().zip(&access) {
        let probe = dir.path.join(unique("probe"));
        match fs::create_dir(&probe) {
            Ok(()) => {
                fs::remove_dir(&probe).unwrap();
                assert!(
                    access.may_create,
                    "made a directory in {:?}, which was said to refuse it",
                    dir.path
                );
            }
            Err(e) => {
                assert!(!access.may_create, "{:?} was said to allow it: {e}", dir.path);
                assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
            }
        }
    }
    assert_eq!(p.check_access().is_ok(), access.iter().all(|a| a.may_create));
}

#[test]
fn uid_0_in_a_user_namespace_gets_only_the_permissions_its_uid_has_outside() {
    if !require_userns("uid_0_in_a_user_namespace_gets_only_the_permissions_its_uid_has_outside") {
        return;
    }
    let _serial = exclusive();
    let p = placement();
    for (dir, access) in p.parents.iter().zip(p.access()) {
        let tried = cgroup_demo::mkdir_from_userns(&dir.path, &unique("userns")).unwrap();
        // Mapped to this process's own uid, uid 0 inside may exactly what this process may.
        match tried {
            Ok(()) => assert!(access.may_create, "{:?}", dir.path),
            Err(errno) => {
                assert!(!access.may_create, "{:?}: {errno}", dir.path);
                assert_eq!(errno, Errno::EACCES);
            }
        }
    }
}

#[test]
fn a_cgroup_has_one_directory_per_hierarchy_with_its_controllers_files() {
    if !delegated("a_cgroup_has_one_directory_per_hierarchy_with_its_controllers_files") {
        return;
    }
    leaves_no_cgroup(|| {
        let h = hierarchies();
        let cgroup = Cgroup::create(&placement(), &unique("layout")).unwrap();
        let files = |c: Controller, version: Version| match (c, version) {
            (Controller::Memory, Version::V2) => "memory.max",
            (Controller::Memory, Version::V1) => "memory.limit_in_bytes",
            (Controller::Pids, _) => "pids.max",
            (Controller::Cpu, Version::V2) => "cpu.max",
            (Controller::Cpu, Version::V1) => "cpu.cfs_quota_us",
            (Controller::Cpuset, _) => "cpuset.cpus",
            (Controller::Devices, _) => "devices.list",
        };
        for controller in Controller::ALL {
            let dir = cgroup.dir_for(controller).unwrap();
            let mount = h.holding(controller.name()).unwrap();
            assert!(dir.path.starts_with(&mount.mount_point), "{dir:?} on {mount:?}");
            assert!(dir.path.join(files(controller, dir.version)).exists(), "{dir:?}");
        }
        match h.kind().unwrap() {
            HostKind::V2 => {
                assert_eq!(cgroup.dirs().len(), 1, "v2: one directory for every controller");
                let parent = cgroup.dirs()[0].path.parent().unwrap().to_owned();
                let handed_down = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
                for controller in Controller::ALL {
                    assert!(
                        handed_down.split_whitespace().any(|c| c == controller.name()),
                        "{handed_down}"
                    );
                }
                // Only the root cgroup, which has no cgroup.type, may hold processes and hand down.
                if parent.join("cgroup.type").exists() {
                    assert_eq!(
                        cgroup_demo::procs_of(&parent).unwrap(),
                        [],
                        "v2: a parent that hands controllers down holds no process"
                    );
                }
            }
            _ => assert!(
                cgroup.dirs().len() >= 2,
                "v1: a directory per hierarchy: {:?}",
                cgroup.dirs()
            ),
        }
        let removed = cgroup.remove().unwrap();
        assert!(removed.iter().all(|p| !p.exists()));
    });
}

// ---- the cgroup namespace -------------------------------------------------------------------------

/// The membership lines of the hierarchies this chapter uses, by hierarchy ID.
fn used(h: &Hierarchies, lines: &[cgroup_demo::Membership]) -> Vec<(u32, String)> {
    lines
        .iter()
        .filter(|m| {
            h.mount_of(m)
                .is_some_and(|mount| Controller::ALL.iter().any(|c| h.holding(c.name()) == Some(mount)))
        })
        .map(|m| (m.hierarchy, m.path.clone()))
        .collect()
}

#[test]
fn in_a_new_cgroup_namespace_the_own_cgroup_reads_as_root() {
    if !require_namespaces("in_a_new_cgroup_namespace_the_own_cgroup_reads_as_root") {
        return;
    }
    let h = hierarchies();
    let mount = cgroup_demo::ns_mount(&h).unwrap();
    let child = cgroup_demo::enter_cgroup_ns(&cgroup_demo::ns_spawn(false), None, mount).unwrap();
    let seen = child.seen_from_host().unwrap();
    let inside = child.inside.clone();
    assert_ne!(inside.ns, seen.ns, "the child is in a new cgroup namespace");
    assert_eq!(
        seen.ns,
        cgroup_demo::cgroup_ns(Proc::Current).unwrap(),
        "the host's is unchanged"
    );
    assert!(inside.own.iter().all(|m| m.path == "/"), "{:?}", inside.own);
    assert_eq!(
        seen.memberships,
        memberships(Proc::Current).unwrap(),
        "the host sees the child in this process's own cgroups, full paths"
    );
    assert!(child.finish().unwrap().success());
}

#[test]
fn a_cgroup_mounted_inside_has_the_namespace_root_at_its_top() {
    if !require_namespaces("a_cgroup_mounted_inside_has_the_namespace_root_at_its_top") {
        return;
    }
    let h = hierarchies();
    let mount = cgroup_demo::ns_mount(&h).unwrap();
    let child = cgroup_demo::enter_cgroup_ns(&cgroup_demo::ns_spawn(false), None, mount).unwrap();
    let seen = child.seen_from_host().unwrap();
    let inside = child.inside.clone();
    assert!(child.finish().unwrap().success());
    assert_eq!(
        inside.mount.root, "/",
        "inside, the mount's top is the namespace's root"
    );
    // The host names the same mount's top by its full path: this process's cgroup there.
    let mine = memberships(Proc::Current).unwrap();
    let line = mine.iter().find(|m| h.mount_of(m) == Some(mount)).unwrap();
    assert_eq!(seen.mount_root, line.path);
    let host_dir = mount.dir_of(&line.path).unwrap();
    assert_eq!(
        inside.mount.cgroups,
        cgroup_demo::list_cgroups(&host_dir).unwrap(),
        "the mount's top holds what the namespace root's directory holds, nothing from above or beside"
    );
    assert_eq!(
        cgroup_demo::mount_root(Proc::Current, &mount.mount_point).unwrap(),
        mount.root,
        "the host's own mount is untouched by the child's"
    );
}

#[test]
fn a_cgroup_outside_the_namespace_root_reads_as_a_path_up_with_dotdot() {
    if !require_namespaces("a_cgroup_outside_the_namespace_root_reads_as_a_path_up_with_dotdot") {
        return;
    }
    let h = hierarchies();
    let mount = cgroup_demo::ns_mount(&h).unwrap();
    let child = cgroup_demo::enter_cgroup_ns(&cgroup_demo::ns_spawn(false), None, mount).unwrap();
    let inside = child.inside.clone();
    assert!(child.finish().unwrap().success());
    // PID 1, as the host sees it and as the child does: the child's names are relative to its root.
    let init_on_host = used(
        &h,
        &memberships(Proc::Pid(nix::unistd::Pid::from_raw(1))).unwrap(),
    );
    let mine = used(&h, &memberships(Proc::Current).unwrap());
    let init_inside = used(&h, &inside.init);
    assert_eq!(init_inside.len(), mine.len());
    for (((id, root), (_, init)), (_, seen)) in mine.iter().zip(&init_on_host).zip(&init_inside) {
        assert_eq!(seen, &relative_path(root, init), "hierarchy {id}");
        if !init.starts_with(root.as_str()) {
            assert!(seen.starts_with("/.."), "hierarchy {id}: {seen}");
        }
    }
}

#[test]
fn moved_in_the_child_reads_root_and_moved_out_it_reads_dotdot() {
    if !require_namespaces("moved_in_the_child_reads_root_and_moved_out_it_reads_dotdot")
        || !delegated("moved_in_the_child_reads_root_and_moved_out_it_reads_dotdot")
    {
        return;
    }
    leaves_no_cgroup(|| {
        let h = hierarchies();
        let name = unique("ns");
        let outer = Cgroup::create(&placement(), &name).unwrap();
        let inner = outer.nested("inner").unwrap();
        let mount = cgroup_demo::ns_mount(&h).unwrap();
        let mut child =
            cgroup_demo::enter_cgroup_ns(&cgroup_demo::ns_spawn(false), Some(&inner), mount).unwrap();
        let seen = used(&h, &child.seen_from_host().unwrap().memberships);
        assert!(!seen.is_empty());
        for (id, path) in &seen {
            assert!(
                path.ends_with(&format!("/{name}/inner")),
                "hierarchy {id}: {path}"
            );
        }
        assert!(used(&h, &child.inside.own).iter().all(|(_, p)| p == "/"));
        assert_eq!(
            child.inside.mount.cgroups,
            Vec::<String>::new(),
            "a fresh cgroup has none below"
        );

        let own = cgroup_demo::own_dirs(&h, &Controller::ALL).unwrap();
        for dir in &own {
            cgroup_demo::move_process(&dir.path, child.pid()).unwrap();
        }
        let after = used(&h, &child.look().unwrap());
        let mine = used(&h, &memberships(Proc::Current).unwrap());
        for (((id, ns_root), (_, now)), (_, original)) in seen.iter().zip(&after).zip(&mine) {
            assert_eq!(now, &relative_path(ns_root, original), "hierarchy {id}");
            assert!(now.starts_with("/.."), "hierarchy {id}: {now}");
        }
        assert!(child.finish().unwrap().success());
        drop(inner);
        outer.remove().unwrap();
    });
}

// ---- limits that bite -----------------------------------------------------------------------------

fn limited(what: &str, controller: Controller, limits: &Limits) -> Cgroup {
    let cgroup = Cgroup::create(&placement().only(&[controller]), &unique(what)).unwrap();
    cgroup.apply(limits).unwrap();
    cgroup
}

fn memory_limit(bytes: Bytes) -> Limits {
    Limits {
        memory: Some(bytes),
        memory_swap: Swap::Total(bytes),
        ..Limits::default()
    }
}

#[test]
fn past_the_memory_limit_the_oom_killer_ends_the_process_and_it_is_counted() {
    if !delegated("past_the_memory_limit_the_oom_killer_ends_the_process_and_it_is_counted") {
        return;
    }
    leaves_no_cgroup(|| {
        let limit = Bytes(32 << 20);
        let cgroup = limited("oom", Controller::Memory, &memory_limit(limit));
        let dir = cgroup.dir_for(Controller::Memory).unwrap();
        let (file, events_file) = match dir.version {
            Version::V2 => ("memory.max", "memory.events"),
            Version::V1 => ("memory.limit_in_bytes", "memory.oom_control"),
        };
        let set: u64 = fs::read_to_string(dir.path.join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(set <= limit.0 && set > limit.0 - (1 << 20), "{file} = {set}");

        let story = cgroup_demo::allocate(&cgroup, Bytes(64 << 20)).unwrap();
        assert_eq!(story.exit, Exit::Signal(Signal::SIGKILL), "{story:?}");
        assert!(!story.finished);
        assert!(story.touched_mib <= limit.mib(), "{story:?}");
        assert_eq!(story.events.oom_kill, 1, "{story:?}");
        assert_eq!(story.events.file, dir.path.join(events_file));
        if dir.version == Version::V2 {
            assert!(story.events.oom >= Some(1), "{story:?}");
        }
        cgroup.remove().unwrap();
    });
}

#[test]
fn under_the_memory_limit_nothing_is_killed() {
    if !delegated("under_the_memory_limit_nothing_is_killed") {
        return;
    }
    leaves_no_cgroup(|| {
        let cgroup = limited("no-oom", Controller::Memory, &memory_limit(Bytes(32 << 20)));
        let story = cgroup_demo::allocate(&cgroup, Bytes(8 << 20)).unwrap();
        assert!(story.finished && story.exit.success(), "{story:?}");
        assert_eq!((story.touched_mib, story.events.oom_kill), (8, 0));
        cgroup.remove().unwrap();
    });
}

#[test]
fn at_pids_max_fork_fails_with_eagain_and_it_is_counted() {
    if !delegated("at_pids_max_fork_fails_with_eagain_and_it_is_counted") {
        return;
    }
    leaves_no_cgroup(|| {
        let limits = Limits {
            pids: Some(PidsLimit::Max(4)),
            ..Limits::default()
        };
        let cgroup = limited("pids", Controller::Pids, &limits);
        let story = cgroup_demo::fork_until_refused(&cgroup, 10).unwrap();
        assert_eq!(story.forked, 3, "the child and three children fill 4: {story:?}");
        assert_eq!(story.refused, Some(Errno::EAGAIN));
        assert_eq!(story.events.current, 4);
        assert_eq!(story.events.max, 1, "one refusal counted: {story:?}");
        assert_eq!(cgroup.procs().unwrap(), [], "the children were reaped");
        cgroup.remove().unwrap();
    });
}

#[test]
fn a_busy_loop_under_a_cpu_quota_is_throttled_to_about_its_share() {
    if !delegated("a_busy_loop_under_a_cpu_quota_is_throttled_to_about_its_share") {
        return;
    }
    leaves_no_cgroup(|| {
        let cpus = Cpus::parse_for("0.2", 1).unwrap();
        let limits = Limits {
            cpus: Some(cpus),
            ..Limits::default()
        };
        let cgroup = limited("cpu", Controller::Cpu, &limits);
        let dir = cgroup.dir_for(Controller::Cpu).unwrap();
        let (file, value) = match dir.version {
            Version::V2 => ("cpu.max", "20000 100000"),
            Version::V1 => ("cpu.cfs_quota_us", "20000"),
        };
        assert_eq!(fs::read_to_string(dir.path.join(file)).unwrap().trim(), value);
        let story = cgroup_demo::busy_loop(&cgroup, Duration::from_millis(1000)).unwrap();
        // Not a timing test: only a sanity bound, far above the 0.2 asked and far below the whole CPU
        // an idle machine would give a busy loop.
        assert!(story.share() < 0.5, "{story:?}");
        assert!(
            story.stat.nr_throttled >= 1,
            "the quota ran out in some period: {story:?}"
        );
        cgroup.remove().unwrap();
    });
}

// ---- cleanup --------------------------------------------------------------------------------------

#[test]
fn removing_a_cgroup_kills_what_is_left_and_removes_every_directory() {
    if !delegated("removing_a_cgroup_kills_what_is_left_and_removes_every_directory") {
        return;
    }
    leaves_no_cgroup(|| {
        let outer = Cgroup::create(&placement(), &unique("remove")).unwrap();
        let inner = outer.nested("inner").unwrap();
        let mut child = Spawn::new(CloneFlags::empty())
            .user(UserNs::Never)
            .run(|channel| i32::from(channel.recv().is_err()))
            .unwrap();
        inner.add(child.pid()).unwrap();
        assert_eq!(inner.procs().unwrap(), [child.pid()]);
        let dirs: Vec<_> = outer.dirs().iter().map(|d| d.path.clone()).collect();
        // The outer one, and with it the inner one and the process in it.
        let removed = outer.remove().unwrap();
        assert_eq!(removed.len(), 2 * dirs.len(), "{removed:?}");
        assert!(dirs.iter().all(|d| !Path::new(d).exists()));
        drop(inner);
        assert!(child.channel().recv().is_err(), "the process was killed");
        drop(child);
    });
}

#[test]
fn a_cgroup_that_cannot_be_made_whole_leaves_nothing() {
    if !delegated("a_cgroup_that_cannot_be_made_whole_leaves_nothing") {
        return;
    }
    leaves_no_cgroup(|| {
        let name = unique("half");
        let p = placement();
        // The name already taken in the last parent only: on v1 the first directories are made, then
        // the last mkdir fails, and what was made must go.
        let taken = p.parents.last().unwrap().path.join(&name);
        fs::create_dir(&taken).unwrap();
        let made = Cgroup::create(&p, &name);
        assert!(
            matches!(&made, Err(cgroup_demo::CgroupError::Create { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{made:?}"
        );
        for parent in &p.parents[..p.parents.len() - 1] {
            assert!(!parent.path.join(&name).exists(), "{:?} was left", parent.path);
        }
        fs::remove_dir(&taken).unwrap();
    });
}

#[test]
fn a_configured_parent_is_found_in_each_hierarchy_or_refused() {
    // The launcher's `--cgroup-parent`: a cgroup named as /proc/self/cgroup names them.
    let h = hierarchies();
    let top = cgroup_demo::Placement::at(&h, "/", &Controller::ALL).unwrap();
    for controller in Controller::ALL {
        let mount = h.holding(controller.name()).unwrap();
        let parent = top
            .parents
            .iter()
            .find(|p| p.controllers.contains(&controller))
            .unwrap();
        assert_eq!(Some(parent.path.clone()), mount.dir_of("/"), "{controller}");
    }
    let missing = cgroup_demo::Placement::at(&h, "/no-such-cgroup-here", &[Controller::Pids]);
    assert!(
        matches!(
            missing,
            Err(cgroup_demo::CgroupError::Unavailable {
                controller: Controller::Pids,
                ..
            })
        ),
        "{missing:?}"
    );
}
