//! The `time-demo` binary as a learner runs it: every step tells its story, bad input is refused with
//! exit code 2 before any namespace exists, the output is the same from run to run apart from clock
//! readings, costs and ns inodes, and nothing is left running (time_namespaces(7)).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use nskit::testing::{self, child_processes, exclusive, processes_named, require_namespaces};

const DEMO: &str = env!("CARGO_BIN_EXE_time-demo");

fn census() -> (BTreeSet<i32>, BTreeSet<i32>) {
    (processes_named("time-demo"), child_processes())
}

/// Runs `test` where time namespaces can be made, one test at a time.
fn in_lab(name: &str, test: impl FnOnce()) {
    if !require_namespaces(name) {
        return;
    }
    let supported = Path::new("/proc/self/ns/time").exists();
    if !testing::gate(
        supported,
        name,
        "needs a kernel with time namespaces (CONFIG_TIME_NS)",
    ) {
        return;
    }
    let _guard = exclusive();
    test();
}

/// Runs the demo with `args`, checking that it leaves no process behind.
fn demo(args: &[&str]) -> Output {
    let before = census();
    let output = Command::new(DEMO).args(args).output().expect("run time-demo");
    assert_eq!(census(), before, "time-demo {args:?} left processes behind");
    output
}

fn stdout_of(args: &[&str]) -> String {
    let output = demo(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "time-demo {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// What the book's transcript check does: numbers of three or more digits become `…`, and the rest
/// of a line after one of `transcript.masks` is cut.
fn masked(text: &str) -> String {
    let masks: Vec<String> =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/transcript.masks"))
            .expect("read transcript.masks")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
    text.lines()
        .map(|line| {
            let cut = masks
                .iter()
                .filter_map(|m| line.find(m.as_str()).map(|i| i + m.len()))
                .min()
                .map_or(line.to_owned(), |end| format!("{}…", &line[..end]));
            mask_numbers(&cut)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn mask_numbers(line: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in line.chars().chain(std::iter::once('\0')) {
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
    out
}

#[test]
fn the_whole_story_is_told_and_is_deterministic() {
    in_lab("the_whole_story_is_told_and_is_deterministic", || {
        // Fewer timed calls than the default: the costs are not compared, and the emulated test
        // machine makes each system call slow.
        let first = stdout_of(&["--calls", "1000"]);
        for heading in [
            "1. What the host sees",
            "2. Failure first",
            "3. unshare(CLONE_NEWTIME)",
            "4. The first child enters",
            "5. execve(2)",
            "6. Nesting",
            "7. The vDSO",
        ] {
            assert!(first.contains(heading), "missing {heading:?} in:\n{first}");
        }
        let refused_on_host = if nskit::userns::is_root() {
            "write \"monotonic 0 0\" -> EACCES"
        } else {
            "write \"monotonic 0 0\" -> EPERM"
        };
        for observation in [
            refused_on_host,
            "[usrns] time:[",
            "write \"0 3600 0\" -> EINVAL",
            "-> ERANGE",
            "write \"monotonic 604800 0\" + \"boottime 2592000 0\" -> ok",
            "minus the caller's: monotonic +7 d, boottime +30 d, realtime +0 s",
            "/proc/uptime minus the caller's: +30 d",
            "write \"monotonic 0 0\" -> EACCES",
            "stopped after execve (time-demo)",
            "(copied)",
            "minus the host's: monotonic +0 s, boottime +0 s",
            "by the vDSO +7 d, by the system call +7 d",
        ] {
            assert!(
                first.contains(observation),
                "missing {observation:?} in:\n{first}"
            );
        }
        // Step 5's two kernel-dependent lines (transcript.masks cuts their ends): one rule or the
        // other, never a mix of the two.
        let since_6_2 = first.contains("sharing its memory -> ok, the thread ran in time:[")
            && first.contains("at execve, it moved into its time_for_children");
        let before_6_2 = first.contains("sharing its memory -> EINVAL")
            && first.contains("at execve, it stayed where it was");
        assert!(
            since_6_2 ^ before_6_2,
            "step 5 tells neither rule, or both:\n{first}"
        );
        let second = stdout_of(&["--calls", "1000"]);
        assert_eq!(
            masked(&first),
            masked(&second),
            "the output varies beyond readings, costs and inodes"
        );
        // The chapter's recorded output for this mode is still what the demo prints.
        let mode = if nskit::userns::is_root() { "root" } else { "user" };
        let path = format!(
            "{}/../book/src/transcripts/time-demo.{mode}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let recorded = std::fs::read_to_string(&path).expect("read the recorded transcript");
        assert_eq!(masked(&recorded), masked(&first), "re-record {path}");
    });
}

/// The inodes printed after `label` on the lines that start with it.
fn inodes(stdout: &str, label: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter(|l| l.starts_with(label))
        .map(|l| {
            let start = l.find(":[").unwrap() + 2;
            let end = start + l[start..].find(']').unwrap();
            l[start..end].parse().unwrap()
        })
        .collect()
}

#[test]
fn the_namespaces_printed_are_the_real_ones() {
    in_lab("the_namespaces_printed_are_the_real_ones", || {
        let host = nskit::ns::ns_id(nskit::Proc::Current, nskit::Kind::Time).unwrap();
        let out = stdout_of(&["--step", "enter"]);
        assert!(inodes(&out, "[unshr]").iter().all(|&i| i == host.inode), "{out}");
        let child = inodes(&out, "[child]");
        assert!(
            !child.is_empty() && child.iter().all(|&i| i == child[0] && i != host.inode),
            "{out}"
        );
        let out = stdout_of(&["--step", "host"]);
        assert!(inodes(&out, "[host ]").iter().all(|&i| i == host.inode), "{out}");
    });
}

#[test]
fn each_step_runs_alone_with_its_own_number() {
    in_lab("each_step_runs_alone_with_its_own_number", || {
        for (number, name) in ["host", "failure", "unshare", "enter", "exec", "nesting", "vdso"]
            .iter()
            .enumerate()
        {
            let out = stdout_of(&["--step", name, "--calls", "10"]);
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
    });
}

#[test]
fn offsets_from_the_command_line_are_the_ones_applied() {
    in_lab("offsets_from_the_command_line_are_the_ones_applied", || {
        let out = stdout_of(&["--monotonic", "-1s", "--boottime", "2d", "--step", "enter"]);
        assert!(
            out.contains("minus the caller's: monotonic -1 s, boottime +2 d, realtime +0 s"),
            "{out}"
        );
        assert!(out.contains("/proc/uptime minus the caller's: +2 d"), "{out}");
    });
}

#[test]
fn quiet_prints_observations_only() {
    in_lab("quiet_prints_observations_only", || {
        let out = stdout_of(&["--quiet", "--calls", "10"]);
        assert!(out.lines().all(|l| l.starts_with('[')), "{out}");
        assert!(out.contains("realtime +0 s"), "{out}");
    });
}

#[test]
fn a_user_namespace_on_request_gives_the_same_story() {
    in_lab("a_user_namespace_on_request_gives_the_same_story", || {
        let out = stdout_of(&["--userns", "--step", "enter"]);
        assert!(
            out.contains("each child") && out.contains("user namespace"),
            "{out}"
        );
        assert!(out.contains("monotonic +7 d, boottime +30 d"), "{out}");
    });
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let _guard = exclusive();
    for (args, message) in [
        (&["--monotonic", "7w"][..], "invalid offset \"7w\""),
        (&["--boottime", "1.5d"], "expected a whole number"),
        (&["--monotonic", "999999999999d"], "about 146 years"),
        (&["--boottime", "-10000d"], "below zero (ERANGE)"),
        (&["--calls", "0"], "--calls"),
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
