//! The `user-demo` binary as a learner runs it: the six steps with their outcomes, `--quiet`, the hidden
//! `caps-report` subcommand, and invalid maps refused with exit code 2 before anything is created
//! (user_namespaces(7)).

use std::process::{Command, Output};

use nix::unistd::geteuid;
use nskit::testing::{self, require_userns};
use nskit::userns::is_root;

const BIN: &str = env!("CARGO_BIN_EXE_user-demo");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run user-demo")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn tells_the_whole_story() {
    if !require_userns("tells_the_whole_story") {
        return;
    }
    let _guard = testing::exclusive();
    let out = run(&[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    for step in 1..=6 {
        assert!(
            stdout.contains(&format!("\n{step}. ")),
            "step {step} missing:\n{stdout}"
        );
    }
    for expected in [
        "eff=all perm=all bnd=all",
        "sethostname(<the host's name>) -> EPERM",
        "setresgid(0), setresuid(0) -> ok",
        "uid=0 gid=0",
        "-> EACCES",
        "unshare(CLONE_NEWUTS|CLONE_NEWNS) -> ok",
        "mount table   (unchanged)",
        "(kept)",
        "(lost)",
        "fchown(file, uid 1) -> EINVAL",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    let root_line = stdout
        .lines()
        .find(|l| l.starts_with("[child]") && l.contains("/proc/self/status   Uid: 0 0 0 0"));
    assert!(root_line.is_some(), "{stdout}");
    let refused: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('[') && l.ends_with("-> EPERM"))
        .collect();
    // Step 1's sethostname, step 3's three broken rules, step 4's sethostname, step 6's map.
    assert_eq!(refused.len(), 6, "{stdout}");
    assert!(
        refused
            .iter()
            .any(|l| l.contains("uid_map") && l.contains("\"0 0 1\"")),
        "{stdout}"
    );
}

#[test]
fn quiet_prints_observations_only() {
    if !require_userns("quiet_prints_observations_only") {
        return;
    }
    let _guard = testing::exclusive();
    let out = run(&["--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        assert!(line.starts_with('['), "not an observation: {line:?}");
    }
}

#[test]
fn caps_report_prints_its_own_view() {
    let out = run(&["caps-report"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout:?}");
    let view: user_demo::IdView = serde_json::from_str(&stdout).unwrap();
    assert_eq!(view, user_demo::observe().unwrap());
    // Each set is written as /proc/<pid>/status writes it.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    assert!(
        stdout.contains(&format!(r#""effective":"{effective}""#)),
        "{stdout}"
    );
}

/// Runs the binary with `args` and checks it refused them with exit code 2, a message naming
/// `message`, and nothing on stdout (no step ran, so no namespace was made).
fn assert_refused(out: &Output, message: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(message), "{message:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn invalid_maps_exit_2_before_anything_is_created() {
    let cases: &[(&[&str], &str)] = &[
        (&["--map", "garbage"], "invalid id map entry \"garbage\""),
        (&["--map", "0:1000"], "expected inside:outside:count"),
        (&["--map=0:1:1:1"], "invalid id map entry \"0:1:1:1\""),
        (&["--map", "0:x:1"], "invalid id map entry \"0:x:1\""),
        (&["--map", "0:1000:0"], "the count must be at least 1"),
        (
            &["--map", "0:1000:10", "--map", "5:2000:1"],
            "inside ranges 0:1000:10 and 5:2000:1 overlap",
        ),
        (
            &["--map", "0:1000:10", "--map", "20:1009:1"],
            "outside ranges 0:1000:10 and 20:1009:1 overlap",
        ),
        (&["--map", "0:4294967290:10"], "runs past the largest id"),
        (&["--gid-map", "0:1000:0"], "the count must be at least 1"),
    ];
    for (args, message) in cases {
        assert_refused(&run(args), message);
    }
}

#[test]
fn ordinary_user_may_not_map_ids_it_does_not_own() {
    // As root, drop to 65534 to be the ordinary user (the binary must be readable by it).
    let out = if is_root() {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "--map",
                "0:0:1",
            ])
            .output()
            .expect("run setpriv")
    } else {
        run(&["--map", "0:0:1"])
    };
    let own = if is_root() { 65534 } else { geteuid().as_raw() };
    assert_refused(
        &out,
        &format!("an unprivileged process may map only its own id {own}"),
    );
}
