//! The `pid-demo` binary as a learner runs it: every step tells its story, bad input is refused with
//! exit code 2 before any namespace exists, the output is the same from run to run apart from host
//! PIDs and ns inodes, and nothing is left running (pid_namespaces(7)).

use std::collections::BTreeSet;
use std::process::{Command, Output};

use nskit::testing::{child_processes, exclusive, processes_named, require_namespaces};
use pid_demo::PROCESS_NAMES;

const DEMO: &str = env!("CARGO_BIN_EXE_pid-demo");

fn census() -> (BTreeSet<i32>, BTreeSet<i32>) {
    let named = PROCESS_NAMES.iter().flat_map(|n| processes_named(n)).collect();
    (named, child_processes())
}

/// Runs the demo with `args`, checking that it leaves no process behind.
fn demo(args: &[&str]) -> Output {
    let before = census();
    let output = Command::new(DEMO).args(args).output().expect("run pid-demo");
    assert_eq!(census(), before, "pid-demo {args:?} left processes behind");
    output
}

fn stdout_of(args: &[&str]) -> String {
    let output = demo(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "pid-demo {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// What the book's transcript check does: numbers of three or more digits become `…`.
fn masked(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits.len() >= 3 { "…" } else { &digits });
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    let masks: Vec<String> =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/transcript.masks"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
    out.lines()
        .map(|line| {
            match masks
                .iter()
                .find_map(|m| line.find(m.as_str()).map(|i| i + m.len()))
            {
                Some(end) => format!("{}…", &line[..end]),
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_whole_story_is_told_and_is_deterministic() {
    if !require_namespaces("the_whole_story_is_told_and_is_deterministic") {
        return;
    }
    let _guard = exclusive();
    let first = stdout_of(&[]);
    for heading in [
        "1. A child in a new PID namespace: PID 1 inside",
        "2. ps inside the namespace",
        "3. Nested PID namespaces, 3 levels deep",
        "4. Orphans are re-parented",
        "5. Init's protection",
        "6. When init dies",
        "7. unshare(CLONE_NEWPID)",
    ] {
        assert!(first.contains(heading), "missing {heading:?} in:\n{first}");
    }
    for observation in [
        "getpid() = 1   getppid() = 0",
        "ns-init    PID 1  PPID 0   <- PID 1: this namespace's init",
        "PPid 1 once its parent has exited",
        "kill(1, SIGKILL) from PID 2 -> ok, dropped: init lives on",
        "kill(init, SIGKILL) -> init killed by SIGKILL",
        "gone: killed by the kernel",
        "fork() -> ENOMEM",
        "pid_for_children = ENOENT",
        "its first child: getpid() = 1",
    ] {
        assert!(
            first.contains(observation),
            "missing {observation:?} in:\n{first}"
        );
    }
    let second = stdout_of(&[]);
    assert_eq!(
        masked(&first),
        masked(&second),
        "the output varies beyond PIDs and inodes"
    );
    // The chapter's recorded output for this mode is still what the demo prints.
    let mode = if nskit::userns::is_root() { "root" } else { "user" };
    let path = format!(
        "{}/../book/src/transcripts/pid-demo.{mode}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let recorded = std::fs::read_to_string(&path).expect("read the recorded transcript");
    assert_eq!(masked(&recorded), masked(&first), "re-record {path}");
}

#[test]
fn the_tree_has_a_column_per_level_and_every_init_is_pid_1_in_its_own() {
    if !require_namespaces("the_tree_has_a_column_per_level_and_every_init_is_pid_1_in_its_own") {
        return;
    }
    let _guard = exclusive();
    let out = stdout_of(&["--step", "nesting", "--levels", "4"]);
    assert!(out.contains("3. Nested PID namespaces, 4 levels deep"), "{out}");
    assert!(!out.contains("\n1. "), "--step ran other steps:\n{out}");
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("process "))
        .expect("tree header");
    assert!(header.contains("L1  L2  L3  L4"), "{header}");
    let deepest_worker = out
        .lines()
        .find(|l| l.contains("└─ ns-worker") && l.contains("  8   6   4   2  pid:["));
    assert!(
        deepest_worker.is_some(),
        "the L4 worker is PID 8, 6, 4, 2 from L1 down:\n{out}"
    );
    assert!(
        out.contains("[L4   ]") && out.contains("its /proc lists PIDs 1-2: only its own"),
        "{out}"
    );
    assert!(
        out.contains("[L1   ]") && out.contains("its /proc lists PIDs 1-8: its own and every deeper"),
        "{out}"
    );
}

#[test]
fn each_step_runs_alone_with_its_own_number() {
    if !require_namespaces("each_step_runs_alone_with_its_own_number") {
        return;
    }
    let _guard = exclusive();
    for (number, name) in [
        "pid1",
        "proc",
        "nesting",
        "orphans",
        "signals",
        "init-death",
        "unshare",
    ]
    .iter()
    .enumerate()
    {
        let out = stdout_of(&["--step", name]);
        let headings: Vec<&str> = out
            .lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(headings.len(), 1, "--step {name}:\n{out}");
        assert!(
            headings[0].starts_with(&format!("{}. ", number + 1)),
            "--step {name}: {headings:?}"
        );
    }
}

#[test]
fn quiet_prints_observations_only() {
    if !require_namespaces("quiet_prints_observations_only") {
        return;
    }
    let _guard = exclusive();
    let out = stdout_of(&["--quiet"]);
    assert!(!out.lines().any(|l| l.trim_start().starts_with("->")), "{out}");
    assert!(!out.contains("running as"), "{out}");
    assert!(out.contains("getpid() = 1"), "{out}");
}

#[test]
fn a_user_namespace_on_request_gives_the_same_story() {
    if !require_namespaces("a_user_namespace_on_request_gives_the_same_story") {
        return;
    }
    let _guard = exclusive();
    let out = stdout_of(&["--userns", "--step", "orphans"]);
    assert!(
        out.contains("each child") && out.contains("user namespace"),
        "{out}"
    );
    assert!(out.contains("PPid 1 once its parent has exited"), "{out}");
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let _guard = exclusive();
    for (args, message) in [
        (&["--levels", "0"][..], "at least 1 level"),
        (&["--levels", "33"], "MAX_PID_NS_LEVEL"),
        (&["--levels", "many"], "not a number of levels"),
        (&["--levels", "-3"], "'-3'"),
        (&["--step", "nope"], "possible values"),
        (&["--frobnicate"], "unexpected argument"),
    ] {
        let output = demo(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed before refusing");
    }
}
