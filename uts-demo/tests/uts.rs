//! Every claim of the UTS chapter, checked on the running kernel (uts_namespaces(7)). The namespace
//! work happens in children cloned by `nskit::Spawn`, never in a test thread.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::testing::{
    self, exclusive, mount_table, processes_named, require_namespaces, require_root, require_userns,
};
use nskit::{Spawn, UserNs};
use uts_demo::{Name, bind_ns_file, child_spawn, join_and_observe, observe, spawn_renamed};

fn names() -> (Name, Name) {
    (
        Name::parse("hostname", "testbox").unwrap(),
        Name::parse("domainname", "test.example").unwrap(),
    )
}

#[test]
fn child_renames_itself_and_the_host_keeps_its_names() {
    if !require_namespaces("child_renames_itself_and_the_host_keeps_its_names") {
        return;
    }
    let host_before = observe().unwrap();
    let (host, domain) = names();
    let renamed = spawn_renamed(&child_spawn(false), &host, &domain).unwrap();
    let host_after = observe().unwrap();
    assert_eq!(renamed.view.hostname, "testbox");
    assert_eq!(renamed.view.domainname, "test.example");
    assert_ne!(
        renamed.view.ns, host_before.ns,
        "the child is in a new UTS namespace"
    );
    assert_eq!(
        host_after, host_before,
        "the host's names and namespace are unchanged"
    );
    assert_eq!(
        renamed.view.release, host_before.release,
        "uname -r is not namespaced"
    );
    assert!(renamed.finish().unwrap().success());
}

#[test]
fn setns_joins_the_same_namespace_and_an_open_fd_keeps_it_alive() {
    if !require_namespaces("setns_joins_the_same_namespace_and_an_open_fd_keeps_it_alive") {
        return;
    }
    let (host, domain) = names();
    let renamed = spawn_renamed(&child_spawn(false), &host, &domain).unwrap();
    let handles = renamed.handles().unwrap();
    let joined = join_and_observe(&handles).unwrap();
    assert_eq!(
        joined, renamed.view,
        "the joiner sees the child's namespace and names"
    );
    let child_view = renamed.view.clone();
    assert!(renamed.finish().unwrap().success());
    let after_exit = join_and_observe(&handles).unwrap();
    assert_eq!(
        after_exit, child_view,
        "the open fd kept the namespace, and its names, alive"
    );
}

#[test]
fn setns_works_through_a_user_namespace_even_as_root() {
    if !require_userns("setns_works_through_a_user_namespace_even_as_root") {
        return;
    }
    let (host, domain) = names();
    let renamed = spawn_renamed(&child_spawn(true), &host, &domain).unwrap();
    let handles = renamed.handles().unwrap();
    assert!(handles.user.is_some());
    assert_eq!(join_and_observe(&handles).unwrap(), renamed.view);
    renamed.finish().unwrap();
}

#[test]
fn an_ordinary_user_gets_eperm_without_a_namespace() {
    // As root, become an ordinary user first (in a child), so the claim is checked in both modes.
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| {
            if nix::unistd::geteuid().is_root() {
                let nobody = nix::unistd::Uid::from_raw(65534);
                let nogroup = nix::unistd::Gid::from_raw(65534);
                if nix::unistd::setresgid(nogroup, nogroup, nogroup).is_err()
                    || nix::unistd::setresuid(nobody, nobody, nobody).is_err()
                {
                    let _ = channel.send("cannot drop root");
                    return 1;
                }
            }
            let reply = match uts_demo::try_rename_host_directly() {
                Ok(()) => "ok".to_owned(),
                Err(errno) => format!("{errno:?}"),
            };
            i32::from(channel.send(&reply).is_err())
        })
        .unwrap();
    assert_eq!(child.channel().recv().unwrap(), "EPERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn uid_0_in_a_user_namespace_cannot_rename_the_host() {
    if !require_userns("uid_0_in_a_user_namespace_cannot_rename_the_host") {
        return;
    }
    assert_eq!(
        uts_demo::try_rename_host_from_userns().unwrap(),
        Err(Errno::EPERM)
    );
}

#[test]
fn a_bind_mount_keeps_the_namespace_and_is_removed_after() {
    if !require_root("a_bind_mount_keeps_the_namespace_and_is_removed_after") {
        return;
    }
    let _lock = exclusive();
    let mounts_before = mount_table();
    let (host, domain) = names();
    let renamed = spawn_renamed(&child_spawn(false), &host, &domain).unwrap();
    let path = std::env::temp_dir().join(format!("uts-test-{}.uts", std::process::id()));
    let binding = bind_ns_file(renamed.pid(), &path).unwrap();
    let view = renamed.view.clone();
    renamed.finish().unwrap();
    assert_eq!(
        binding.ns_id().unwrap(),
        view.ns,
        "the file now names the namespace"
    );
    assert_eq!(join_and_observe(&binding.open().unwrap()).unwrap(), view);
    drop(binding);
    assert!(!path.exists(), "the bind target is removed");
    assert_eq!(
        mount_table(),
        mounts_before,
        "the host's mount table is as it was"
    );
}

// ---- the demo binary -------------------------------------------------------------------------------

const DEMO: &str = env!("CARGO_BIN_EXE_uts-demo");

/// Runs the demo. Callers hold `exclusive()`, so that counting `uts-demo` processes is meaningful.
fn run_demo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(DEMO)
        .args(args)
        .output()
        .expect("run uts-demo")
}

/// The inode printed on the first output line that starts with `label`.
fn inode_of(stdout: &str, label: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{stdout}"));
    let start = line.find(":[").unwrap() + 2;
    let end = line[start..].find(']').unwrap() + start;
    line[start..end].parse().unwrap()
}

#[test]
fn the_demo_tells_the_story_and_leaves_nothing_behind() {
    if !require_namespaces("the_demo_tells_the_story_and_leaves_nothing_behind") {
        return;
    }
    let _lock = exclusive();
    let mounts_before = mount_table();
    let demos_before = processes_named("uts-demo");
    let out = run_demo(&["--hostname", "storybox", "--domainname", "story.test"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let host = observe().unwrap();
    let child_line = stdout.lines().find(|l| l.starts_with("[child]")).unwrap();
    assert!(
        child_line.contains("hostname=storybox  domainname=story.test"),
        "{child_line}"
    );
    assert!(
        child_line.contains(&format!("uname -r={}", host.release)),
        "{child_line}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[host ]") && l.ends_with("(unchanged)")),
        "{stdout}"
    );
    assert_eq!(
        inode_of(&stdout, "[host ]"),
        host.ns.inode,
        "the demo shows the host's real namespace"
    );
    let child_ns = inode_of(&stdout, "[child]");
    assert_ne!(child_ns, host.ns.inode);
    assert_eq!(
        inode_of(&stdout, "[join ]"),
        child_ns,
        "setns joined the child's namespace"
    );
    assert_eq!(inode_of(&stdout, "[fd   ]"), child_ns, "the fd kept it alive");
    let eperm_lines = stdout.lines().filter(|l| l.contains("-> EPERM")).count();
    assert_eq!(
        eperm_lines,
        if nix::unistd::geteuid().is_root() { 1 } else { 2 },
        "{stdout}"
    );
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            inode_of(&stdout, "[mount]"),
            child_ns,
            "the bind mount kept it alive"
        );
    }

    assert_eq!(observe().unwrap(), host, "the host's names are as they were");
    assert_eq!(mount_table(), mounts_before, "no mount left behind");
    assert_eq!(
        processes_named("uts-demo"),
        demos_before,
        "no process left behind"
    );
}

#[test]
fn quiet_prints_only_observations() {
    if !require_namespaces("quiet_prints_only_observations") {
        return;
    }
    let _lock = exclusive();
    let out = run_demo(&["--quiet"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|l| l.starts_with('[')), "{stdout}");
}

#[test]
fn bad_names_are_refused_before_any_namespace_is_made() {
    let long = "a".repeat(65);
    for (args, expected) in [
        (vec!["--hostname", ""], "invalid hostname: it is empty"),
        (
            vec!["--hostname", long.as_str()],
            "65 bytes, the kernel allows at most 64",
        ),
        (
            vec!["--domainname", "two words"],
            "invalid domainname \"two words\"",
        ),
        (vec!["--no-such-option"], "unexpected argument"),
    ] {
        let _lock = exclusive();
        let demos_before = processes_named("uts-demo");
        let out = run_demo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing ran, so nothing was printed"
        );
        assert_eq!(processes_named("uts-demo"), demos_before);
    }
}

#[test]
fn privilege_gates_follow_ns_require_priv() {
    // The gate itself: with nothing required it skips; the panic path is exercised by CI's settings.
    if testing::required() == testing::Required::Nothing {
        assert!(!testing::gate(false, "gate self-test", "nothing"));
    }
    assert!(testing::gate(true, "gate self-test", "nothing"));
}
