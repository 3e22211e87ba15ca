//! The demo binary as a learner runs it: the story in six steps, bad input refused with exit code 2
//! before any namespace exists, and nothing left behind, not even by a run killed half-way.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use net_demo::netns::wait_until;
use nskit::testing::{exclusive, interfaces, processes_named, require_namespaces};

const DEMO: &str = env!("CARGO_BIN_EXE_net-demo");

#[test]
fn demo_tells_the_story_and_leaves_no_interface_behind() {
    if !require_namespaces("demo_tells_the_story_and_leaves_no_interface_behind") {
        return;
    }
    let _guard = exclusive();
    let before = interfaces();
    let output = Command::new(DEMO).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for heading in ["\n1. ", "\n2. ", "\n3. ", "\n4. ", "\n5. ", "\n6. "] {
        assert!(stdout.contains(heading), "missing step {heading:?}:\n{stdout}");
    }
    for claim in [
        "links: lo DOWN",
        "-> ENETUNREACH",
        "got back \"hello across the veth\"",
        "bind it again here -> EADDRINUSE",
        "/sys/class/net after remount:  lo veth-red",
        "after blue exits:  links: lo UP",
        "demo interfaces: none",
        "(unchanged)",
    ] {
        assert!(stdout.contains(claim), "missing {claim:?}:\n{stdout}");
    }
    assert_eq!(interfaces(), before);
}

#[test]
fn quiet_prints_observations_only() {
    if !require_namespaces("quiet_prints_observations_only") {
        return;
    }
    let _guard = exclusive();
    let output = Command::new(DEMO).arg("--quiet").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().all(|l| l.starts_with('[')), "{stdout}");
}

#[test]
fn bad_subnets_exit_2_before_any_namespace() {
    let _guard = exclusive();
    let before = interfaces();
    for bad in [
        "10.200.0.0",
        "10.200.0.5/24",
        "8.8.8.0/24",
        "10.0.0.0/31",
        "nonsense",
    ] {
        let output = Command::new(DEMO).args(["--subnet", bad]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "--subnet {bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid subnet"), "{stderr}");
        assert!(output.stdout.is_empty(), "nothing ran");
    }
    assert_eq!(interfaces(), before);
}

#[test]
fn a_killed_run_leaves_no_process_and_no_interface() {
    if !require_namespaces("a_killed_run_leaves_no_process_and_no_interface") {
        return;
    }
    let _guard = exclusive();
    let before = interfaces();
    let already = processes_named("net-demo");
    let mut demo = Command::new(DEMO).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = demo.stdout.take().unwrap();
    // Kill it once the veth pair is up, with both namespaces alive.
    let reached = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("3. "));
    assert!(reached, "the demo never reached step 3");
    demo.kill().unwrap();
    demo.wait().unwrap();
    let gone = wait_until(Duration::from_secs(5), || processes_named("net-demo") == already);
    assert!(gone, "the namespaces' processes outlived the demo");
    assert_eq!(interfaces(), before);
}
