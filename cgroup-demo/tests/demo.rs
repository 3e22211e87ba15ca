//! The demo binary: the story it prints on this host (with delegation or without), its refusals of
//! bad input, and its cleanup after a normal run and after Ctrl-C (cgroups(7)).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use common::{delegated, demo_cgroups, placement};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nskit::testing::{exclusive, processes_named, require_namespaces};

const DEMO: &str = env!("CARGO_BIN_EXE_cgroup-demo");

fn run_demo(args: &[&str]) -> Output {
    Command::new(DEMO).args(args).output().expect("run cgroup-demo")
}

/// Runs `body` and checks that no cgroup directory and no demo process was left behind.
fn leaves_nothing(body: impl FnOnce()) {
    let _serial = exclusive();
    let (cgroups, demos) = (demo_cgroups(), processes_named("cgroup-demo"));
    body();
    assert_eq!(demo_cgroups(), cgroups, "a cgroup directory was left behind");
    assert_eq!(processes_named("cgroup-demo"), demos, "a process was left behind");
}

#[test]
fn the_demo_tells_the_story_and_leaves_nothing_behind() {
    if !require_namespaces("the_demo_tells_the_story_and_leaves_nothing_behind") {
        return;
    }
    let may_create = placement().check_access().is_ok();
    leaves_nothing(|| {
        let out = run_demo(&[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let has = |text: &str| stdout.lines().any(|l| l.contains(text));
        assert!(has("this host: "), "{stdout}");
        let child_sees_root = stdout
            .lines()
            .filter(|l| l.starts_with("[child]") && l.contains("/proc/self/cgroup"))
            .any(|l| l.ends_with(":/"));
        assert!(child_sees_root, "{stdout}");
        assert!(has("/proc/self/mountinfo") && has(", root /"), "{stdout}");
        assert!(has("left named cgroup-demo-") && has("*: 0"), "{stdout}");
        if may_create {
            assert!(has("(moved back where it came from)"), "{stdout}");
            assert!(has("killed by SIGKILL"), "{stdout}");
            assert!(has("oom_kill 1"), "{stdout}");
            assert!(has("-> EAGAIN"), "{stdout}");
            assert!(has("throttled, measured: in"), "{stdout}");
        } else {
            assert!(has("mkdir -> EACCES"), "{stdout}");
            assert_eq!(stdout.matches("-> skipped").count(), 3, "{stdout}");
        }
    });
}

#[test]
fn quiet_prints_only_observations() {
    if !require_namespaces("quiet_prints_only_observations") {
        return;
    }
    leaves_nothing(|| {
        let out = run_demo(&["--quiet", "--step", "namespace"]);
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.lines().all(|l| l.starts_with('[')), "{stdout}");
    });
}

#[test]
fn bad_limits_are_refused_before_any_cgroup_is_made() {
    for (args, expected) in [
        (vec!["--memory", "1m"], "minimum memory limit allowed is 6MB"),
        (vec!["--memory", "lots"], "invalid size \"lots\""),
        (vec!["--cpus", "1000"], "range of CPUs is from 0.01 to"),
        (vec!["--cpus", "half"], "invalid number of CPUs"),
        (vec!["--pids-limit", "0"], "0 is not in 1..=1000"),
        (vec!["--busy", "60"], "not a number of seconds"),
        (vec!["--step", "nowhere"], "invalid value 'nowhere'"),
    ] {
        leaves_nothing(|| {
            let out = run_demo(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
        });
    }
}

/// Runs the demo until it pauses after `step`, sends `signal`, and checks how it ended.
fn interrupt_after(step: &str, signal: Signal) {
    leaves_nothing(|| {
        let mut demo = Command::new(DEMO)
            .args(["--quiet", "--step", step, "--pause-after", step])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = demo.stderr.take().unwrap();
        let mut first = String::new();
        BufReader::new(stderr).read_line(&mut first).unwrap();
        assert!(first.contains("paused after"), "{first}");
        assert!(demo_cgroups() > 0, "paused with its cgroups made");
        kill(Pid::from_raw(demo.id() as i32), signal).unwrap();
        let status = demo.wait().unwrap();
        assert_eq!(status.signal(), Some(signal as i32), "{status:?}");
    });
}

#[test]
fn ctrl_c_with_a_child_in_the_namespace_cgroup_leaves_nothing() {
    if !require_namespaces("ctrl_c_with_a_child_in_the_namespace_cgroup_leaves_nothing")
        || !delegated("ctrl_c_with_a_child_in_the_namespace_cgroup_leaves_nothing")
    {
        return;
    }
    interrupt_after("namespace", Signal::SIGINT);
}

#[test]
fn sigterm_after_the_limits_leaves_nothing() {
    if !delegated("sigterm_after_the_limits_leaves_nothing") {
        return;
    }
    interrupt_after("cpu", Signal::SIGTERM);
}
