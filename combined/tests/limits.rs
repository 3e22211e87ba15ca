//! `--memory`, `--pids-limit` and `--cpus`, as a user of `docker run` expects them, on the real
//! kernel's cgroups (v1 and hybrid on the host here, v2 in `cargo xtask test-vm`'s guest): the OOM
//! killer ends a container past its memory (exit 137, and the launcher says why), fork fails past
//! the pids limit, the CPU quota is written; the container's own cgroup is `/` to it; and no cgroup
//! outlives its container. Without a delegated subtree, a rootless launcher refuses the options with
//! a message that says how to get one.

mod common;

use std::time::Duration;

use common::{Rootfs, have_busybox, namespaces};
use nskit::testing;

fn ready(test: &str) -> Option<Rootfs> {
    (namespaces(test) && have_busybox(test)).then(Rootfs::new)
}

/// Whether limits can be tested here; a host without root or delegation proves the refusal instead.
fn limits_here(test: &str, rootfs: &Rootfs) -> bool {
    if common::limits_allowed() {
        return true;
    }
    if testing::required() == testing::Required::Everything {
        panic!("{test}: NS_REQUIRE_PRIV=1 and this user may not make cgroups");
    }
    let out = common::run(&["--rootfs", rootfs.str(), "--memory", "32m", "--", "true"]);
    let line = out.launcher_error();
    assert!(line.contains("need a cgroup this user may create"), "{line}");
    assert!(
        line.contains("Delegate=yes"),
        "says how to get delegation: {line}"
    );
    eprintln!("{test}: no delegated cgroup here; checked the refusal instead");
    false
}

#[test]
fn a_container_past_its_memory_limit_is_killed_and_the_launcher_says_so() {
    let Some(rootfs) = ready("a_container_past_its_memory_limit_is_killed_and_the_launcher_says_so") else {
        return;
    };
    if !limits_here(
        "a_container_past_its_memory_limit_is_killed_and_the_launcher_says_so",
        &rootfs,
    ) {
        return;
    }
    let _only_me = testing::exclusive();
    let before = common::launcher_cgroups();
    // A shell variable doubled until it would hold 64 MiB, under a 16 MiB limit (swap as docker
    // allows it: as much again, 32 MiB in all). Doubling copies with memcpy, so an emulated guest
    // fills the limit in a few steps too, where feeding `tr` byte by byte took seconds.
    let grow = doubled_to(26);
    let out = common::run(&[
        "--rootfs",
        rootfs.str(),
        "--memory",
        "16m",
        "--",
        "sh",
        "-c",
        &grow,
    ]);
    assert_eq!(out.code(), 137, "{out:#?}");
    assert!(!out.stdout.contains("survived"), "{out:#?}");
    assert!(
        out.stderr.contains("the memory limit (16 MiB) killed a process"),
        "{out:#?}"
    );
    let small = doubled_to(20);
    let out = common::run(&[
        "--rootfs",
        rootfs.str(),
        "--memory",
        "16m",
        "--",
        "sh",
        "-c",
        &small,
    ]);
    assert_eq!(out.ok(), "survived 1048576\n");
    assert_eq!(common::launcher_cgroups(), before, "no cgroup is left behind");
}

/// A shell script that doubles a one-byte string `times` times, then prints its length.
fn doubled_to(times: u32) -> String {
    format!("x=a; i=0; while [ $i -lt {times} ]; do x=$x$x; i=$((i+1)); done; echo survived ${{#x}}")
}

#[test]
fn a_fork_past_the_pids_limit_fails() {
    let Some(rootfs) = ready("a_fork_past_the_pids_limit_fails") else {
        return;
    };
    if !limits_here("a_fork_past_the_pids_limit_fails", &rootfs) {
        return;
    }
    let _only_me = testing::exclusive();
    let before = common::launcher_cgroups();
    // A fork loop: the shell, init and eight sleeps fill ten; the rest are refused.
    let forks = "n=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & n=$((n+1)); done 2>/dev/null; echo started; kill $(jobs -p) 2>/dev/null; true";
    let out = common::run(&[
        "--rootfs",
        rootfs.str(),
        "--pids-limit",
        "10",
        "--",
        "sh",
        "-c",
        forks,
    ]);
    assert!(
        out.stderr.contains("fork")
            || out.stderr.contains("Resource temporarily unavailable")
            || out.code() != 0,
        "the eleventh process is refused: {out:#?}"
    );
    let out = common::run(&[
        "--rootfs",
        rootfs.str(),
        "--pids-limit",
        "10",
        "--",
        "sh",
        "-c",
        "sleep 0 & wait; echo fine",
    ]);
    assert_eq!(out.ok(), "fine\n");
    assert_eq!(common::launcher_cgroups(), before, "no cgroup is left behind");
}

#[test]
fn the_cpu_quota_is_written_and_the_container_s_cgroup_is_its_root() {
    let Some(rootfs) = ready("the_cpu_quota_is_written_and_the_container_s_cgroup_is_its_root") else {
        return;
    };
    if !limits_here(
        "the_cpu_quota_is_written_and_the_container_s_cgroup_is_its_root",
        &rootfs,
    ) {
        return;
    }
    let _only_me = testing::exclusive();
    let before = common::launcher_cgroups();
    let mut cmd = common::combined(&[
        "run",
        "--rootfs",
        rootfs.str(),
        "--cpus",
        "0.5",
        "--",
        "sh",
        "-c",
        "cat /proc/self/cgroup; read -r go",
    ]);
    // The container waits on its stdin until the test has read the quota from the host.
    let mut child = cmd.stdin(std::process::Stdio::piped()).spawn().unwrap();
    let launcher = child.id();
    let made = wait_for_cgroup(&before);
    let quota = read_quota(&made);
    assert_eq!(quota, "50000", "--cpus 0.5 is 50 ms per 100 ms period: {made:?}");
    assert!(
        made.iter().all(|d| d.ends_with(format!("combined-{launcher}"))),
        "{made:?}"
    );
    drop(child.stdin.take()); // end of input: the container's `read` returns and it exits
    let out = common::finish(child);
    for line in out.stdout.lines() {
        assert!(
            line.ends_with(":/"),
            "every hierarchy shows the container's cgroup as its root: {out:#?}"
        );
    }
    assert!(!out.stdout.is_empty(), "{out:#?}");
    assert_eq!(common::launcher_cgroups(), before, "no cgroup is left behind");
}

/// The cgroup directories a launcher made since `before`, once there are some.
fn wait_for_cgroup(before: &std::collections::BTreeSet<std::path::PathBuf>) -> Vec<std::path::PathBuf> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let made: Vec<_> = common::launcher_cgroups().difference(before).cloned().collect();
        if !made.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
            return common::launcher_cgroups().difference(before).cloned().collect();
        }
        assert!(std::time::Instant::now() < deadline, "no cgroup appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The CPU quota in microseconds per period: cpu.max's first field (v2) or cpu.cfs_quota_us (v1).
fn read_quota(dirs: &[std::path::PathBuf]) -> String {
    for dir in dirs {
        if let Ok(max) = std::fs::read_to_string(dir.join("cpu.max")) {
            return max.split_whitespace().next().unwrap_or_default().to_owned();
        }
        if let Ok(quota) = std::fs::read_to_string(dir.join("cpu.cfs_quota_us")) {
            return quota.trim().to_owned();
        }
    }
    panic!("no cpu quota file in {dirs:?}");
}
