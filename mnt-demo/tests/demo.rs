//! The demo binary as a learner runs it: the story in both modes, `--quiet`, bad input, and a failing
//! run; each leaves the host's mount table and /tmp as they were.

use std::path::PathBuf;
use std::process::{Command, Output};

use nskit::testing::{exclusive, mount_table, require_namespaces};

const DEMO: &str = env!("CARGO_BIN_EXE_mnt-demo");

/// The scratch directories a demo with this PID would have made.
fn leftovers(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("mnt-demo-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the demo and checks it left nothing mounted or on disk.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let _guard = exclusive();
    let before = mount_table();
    let child = Command::new(DEMO)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert_eq!(mount_table(), before, "the demo changed the host's mount table");
    assert_eq!(
        leftovers(pid),
        Vec::<PathBuf>::new(),
        "the demo left its scratch directory"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_demo_tells_the_whole_story() {
    if !require_namespaces("the_demo_tells_the_whole_story") {
        return;
    }
    let output = run(&[], &[]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "/mounts      mnt-demo $SCRATCH/visible tmpfs",
        "/mountinfo   (absent)",
        "/mountstats  device mnt-demo mounted on $SCRATCH/visible with fstype tmpfs",
        "shared      mount under a shows under b: yes  under b shows under a: yes",
        "slave       mount under a shows under b: yes  under b shows under a: no",
        "unbindable  bind a at b -> EINVAL",
        "sees the container's mount: YES, a leak",
        "resolve_in_root(rootfs, /var/run)       -> refused (EXDEV)",
        "after the escape trick: / is the rootfs: no   / is the host's /: yes",
        "in a plain directory       -> EINVAL",
        "but the bind mount is shared -> EINVAL",
        "all private: pivot_into     -> ok",
        "after the escape trick:   / is the rootfs: yes  / is the host's /: no",
        "mount points left: / /proc",
        "mount table identical to before the demo: yes",
        "$SCRATCH removed: yes",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let who = if nskit::userns::is_root() {
        "[host ]"
    } else {
        "[outer]"
    };
    assert!(text.contains(&format!("{who} mnt:[")), "{text}");
}

#[test]
fn quiet_prints_observations_only() {
    if !require_namespaces("quiet_prints_observations_only") {
        return;
    }
    let output = run(&["--quiet"], &[]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.lines().all(|l| l.starts_with('[')), "{text}");
    assert!(text.lines().count() > 20);
}

/// `--userns` gives every child a user namespace: as root too, the leak lab then plays the host in a
/// namespace of its own.
#[test]
fn userns_flag_moves_the_leak_lab_off_the_host() {
    if !require_namespaces("userns_flag_moves_the_leak_lab_off_the_host") {
        return;
    }
    let output = run(&["--userns", "--quiet"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout(&output).contains("[outer]"));
}

#[test]
fn bad_arguments_exit_2_before_anything_happens() {
    let output = run(&["--no-such-flag"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-such-flag"));
}

#[test]
fn a_failing_run_says_why_and_leaves_nothing() {
    let output = run(&[], &[("TMPDIR", "/nonexistent/mnt-demo-test")]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.starts_with("mnt-demo: cannot create the scratch directory"),
        "{err}"
    );
}
