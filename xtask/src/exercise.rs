//! `cargo xtask exercise`: the course's exercises, in the form Comprehensive Rust uses. Each is a
//! starting point the learner edits (`exercises/<chapter>/src/start/<name>.rs`), its solution beside
//! it (`src/solution/`), a test that says when the learner's version is right (`tests/exercises.rs`,
//! one module per exercise), and a page of the book with the task and one with the solution.
//!
//! `cargo xtask exercise` lists them; `cargo xtask exercise NAME` runs its test on your version,
//! `--solution` on the solution, `--reset` puts the starting point back as committed. In `cargo xtask
//! ci` (and with `--check-all`), [`ci_step`] checks that every solution passes its test (as root and
//! as uid 65534), that every starting point compiles against its test, and that each starting point
//! is where its page says: failing its test until written, or, for a "break it" exercise, passing
//! until broken.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::ci::parse_test_binaries;
use crate::util::{self, UNPRIVILEGED_UID, as_unprivileged, cargo, is_root};

/// What the learner does with the starting point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Write the missing code: the starting point fails its test.
    Write,
    /// Break working code and read the failure: the starting point passes its test.
    BreakIt,
}

/// One exercise.
#[derive(Debug)]
pub struct Exercise {
    /// What `cargo xtask exercise` takes: `<chapter>-<module>`.
    pub name: &'static str,
    /// The exercises' crate, its directory under `exercises/`, and its package name.
    pub chapter: &'static str,
    /// The module of the starting point, the solution and the test.
    pub module: &'static str,
    pub kind: Kind,
    pub task: &'static str,
}

impl Exercise {
    pub fn package(&self) -> String {
        format!("{}-exercises", self.chapter)
    }

    /// The starting point, from the workspace root.
    pub fn start_file(&self) -> PathBuf {
        Path::new("exercises")
            .join(self.chapter)
            .join("src/start")
            .join(format!("{}.rs", self.module))
    }

    /// The book's page with the task.
    pub fn page(&self) -> PathBuf {
        Path::new("book/src/exercises").join(format!("{}.md", self.chapter))
    }

    /// The test filter that selects this exercise's tests.
    fn filter(&self) -> String {
        format!("{}::", self.module)
    }
}

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        name: "uts-names",
        chapter: "uts",
        module: "names",
        kind: Kind::Write,
        task: "read the hostname, the domain name and the UTS namespace's inode",
    },
    Exercise {
        name: "uts-rename",
        chapter: "uts",
        module: "rename",
        kind: Kind::Write,
        task: "rename a child's own UTS namespace (sethostname, and setdomainname through libc)",
    },
    Exercise {
        name: "uts-keepalive",
        chapter: "uts",
        module: "keepalive",
        kind: Kind::Write,
        task: "keep a namespace alive with an open fd after its child exits, and join it with setns",
    },
    Exercise {
        name: "uts-owner",
        chapter: "uts",
        module: "owner",
        kind: Kind::BreakIt,
        task: "break it: clone without CLONE_NEWUTS and read why root in a user namespace gets EPERM",
    },
    Exercise {
        name: "user-maps",
        chapter: "user",
        module: "maps",
        kind: Kind::Write,
        task: "write a child's setgroups, gid_map and uid_map as an unprivileged parent",
    },
    Exercise {
        name: "user-setgroups",
        chapter: "user",
        module: "setgroups",
        kind: Kind::BreakIt,
        task: "break it: skip `setgroups deny` and read why gid_map is refused with EPERM",
    },
    Exercise {
        name: "user-owner",
        chapter: "user",
        module: "owner",
        kind: Kind::Write,
        task: "ask which user namespace owns a namespace, and its parent (ioctl NS_GET_USERNS, NS_GET_PARENT)",
    },
    Exercise {
        name: "introspect-lsns",
        chapter: "introspect",
        module: "lsns",
        kind: Kind::Write,
        task: "list the namespaces of a kind from /proc/*/ns/, as lsns does: skip what is gone or not yours",
    },
    Exercise {
        name: "introspect-nsenter",
        chapter: "introspect",
        module: "nsenter",
        kind: Kind::Write,
        task: "join a running process's UTS namespace with setns, its user namespace first when not yours",
    },
    Exercise {
        name: "introspect-limits",
        chapter: "introspect",
        module: "limits",
        kind: Kind::BreakIt,
        task: "break it: set the namespace limit in the runtime's user namespace and limit the whole host",
    },
    Exercise {
        name: "pid-nspid",
        chapter: "pid",
        module: "nspid",
        kind: Kind::Write,
        task: "read a process's PID in every namespace it is in, from the NSpid line",
    },
    Exercise {
        name: "pid-proc",
        chapter: "pid",
        module: "proc",
        kind: Kind::BreakIt,
        task: "break it: forget to mount a fresh /proc and see the host's processes",
    },
    Exercise {
        name: "pid-subreaper",
        chapter: "pid",
        module: "subreaper",
        kind: Kind::Write,
        task: "become a child subreaper and adopt an orphaned grandchild, as an init does",
    },
    Exercise {
        name: "pid-lastpid",
        chapter: "pid",
        module: "lastpid",
        kind: Kind::Write,
        task: "choose the PID of the next child with /proc/sys/kernel/ns_last_pid, as checkpoint/restore does",
    },
    Exercise {
        name: "time-offsets",
        chapter: "time",
        module: "offsets",
        kind: Kind::Write,
        task: "write a new time namespace's offsets before its first process enters",
    },
    Exercise {
        name: "time-realtime",
        chapter: "time",
        module: "realtime",
        kind: Kind::BreakIt,
        task: "break it: shift CLOCK_REALTIME too and read why the kernel refuses the offsets",
    },
    Exercise {
        name: "time-uptime",
        chapter: "time",
        module: "uptime",
        kind: Kind::Write,
        task: "read /proc/uptime, which a time namespace moves with CLOCK_BOOTTIME",
    },
    Exercise {
        name: "ipc-keys",
        chapter: "ipc",
        module: "keys",
        kind: Kind::Write,
        task: "list the message queue keys of the caller's IPC namespace from /proc/sysvipc/msg",
    },
    Exercise {
        name: "ipc-flags",
        chapter: "ipc",
        module: "flags",
        kind: Kind::BreakIt,
        task: "break it: clone without CLONE_NEWIPC and meet the host's queue under the same key",
    },
    Exercise {
        name: "ipc-shm",
        chapter: "ipc",
        module: "shm",
        kind: Kind::Write,
        task: "give a child a /dev/shm of its own: the IPC namespace does not isolate POSIX shm",
    },
    Exercise {
        name: "mnt-mountinfo",
        chapter: "mnt",
        module: "mountinfo",
        kind: Kind::Write,
        task: "parse a line of /proc/<pid>/mountinfo: optional fields, the lone -, octal escapes",
    },
    Exercise {
        name: "mnt-private",
        chapter: "mnt",
        module: "private",
        kind: Kind::Write,
        task: "make every mount private, then mount a tmpfs of the child's own",
    },
    Exercise {
        name: "mnt-leak",
        chapter: "mnt",
        module: "leak",
        kind: Kind::BreakIt,
        task: "break it: skip --make-rprivate and watch the container's mount leak to the host",
    },
    Exercise {
        name: "mnt-pivot",
        chapter: "mnt",
        module: "pivot",
        kind: Kind::Write,
        task: "pivot_root into a rootfs and detach the old root, so the chroot escape fails",
    },
    Exercise {
        name: "cgroup-lines",
        chapter: "cgroup",
        module: "lines",
        kind: Kind::Write,
        task: "parse a line of /proc/<pid>/cgroup, v1 (ID:controllers:path) and v2 (0::path)",
    },
    Exercise {
        name: "cgroup-pids",
        chapter: "cgroup",
        module: "pids",
        kind: Kind::Write,
        task: "set pids.max and move a process in: its fourth child's fork fails with EAGAIN",
    },
    Exercise {
        name: "cgroup-ns",
        chapter: "cgroup",
        module: "ns",
        kind: Kind::BreakIt,
        task: "break it: unshare the cgroup namespace before joining the cgroup, and see the root stay above",
    },
    Exercise {
        name: "net-lo",
        chapter: "net",
        module: "lo",
        kind: Kind::Write,
        task: "list a new network namespace's interfaces and bring loopback up",
    },
    Exercise {
        name: "net-abstract",
        chapter: "net",
        module: "abstract_socket",
        kind: Kind::Write,
        task: "bind and reach an abstract UNIX socket: it lives in one network namespace",
    },
    Exercise {
        name: "net-route",
        chapter: "net",
        module: "route",
        kind: Kind::BreakIt,
        task: "break it: leave out the route across the veth pair and read ENETUNREACH",
    },
    Exercise {
        name: "combined-caps",
        chapter: "combined",
        module: "caps",
        kind: Kind::Write,
        task: "drop the container's capabilities to the default set: the bounding set first",
    },
    Exercise {
        name: "combined-keyring",
        chapter: "combined",
        module: "keyring",
        kind: Kind::Write,
        task: "give the container a session keyring of its own, out of reach of the launcher's keys",
    },
    Exercise {
        name: "combined-masks",
        chapter: "combined",
        module: "masks",
        kind: Kind::BreakIt,
        task: "break it: leave /proc unmasked and read the host's interrupts and timers from a container",
    },
    Exercise {
        name: "oci-gate",
        chapter: "oci",
        module: "gate",
        kind: Kind::Write,
        task: "wait at the exec.fifo until start opens it: the open for writing is the wait",
    },
    Exercise {
        name: "oci-console",
        chapter: "oci",
        module: "console",
        kind: Kind::Write,
        task: "hand the container's pty master to the engine over the console socket (SCM_RIGHTS)",
    },
    Exercise {
        name: "oci-hooks",
        chapter: "oci",
        module: "hooks",
        kind: Kind::BreakIt,
        task: "break it: skip the copy of the late hooks and watch the host run what the container wrote",
    },
    Exercise {
        name: "oci-state",
        chapter: "oci",
        module: "state",
        kind: Kind::Write,
        task: "report the spec's state, its status observed: a PID reused or a zombie is stopped",
    },
];

/// `cargo xtask exercise`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The exercise, e.g. `uts-names`; without one, the list.
    pub name: Option<String>,
    /// Run the test on the solution instead of your version.
    #[arg(long)]
    pub solution: bool,
    /// Put your starting point back as it was committed (your edits to it are lost).
    #[arg(long, conflicts_with = "solution")]
    pub reset: bool,
    /// Check every exercise as `cargo xtask ci` does: solutions pass, starting points compile and
    /// fail (or, to be broken, pass) their tests.
    #[arg(long, conflicts_with_all = ["name", "solution", "reset"])]
    pub check_all: bool,
}

pub fn find(name: &str) -> anyhow::Result<&'static Exercise> {
    EXERCISES.iter().find(|e| e.name == name).with_context(|| {
        let names: Vec<&str> = EXERCISES.iter().map(|e| e.name).collect();
        format!("no exercise is called {name:?}; there are: {}", names.join(", "))
    })
}

/// `cargo xtask exercise [NAME] [--solution | --reset]`.
pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    if options.check_all {
        return ci_step(root);
    }
    let Some(name) = &options.name else {
        list();
        return Ok(());
    };
    let exercise = find(name)?;
    if options.reset {
        return reset(root, exercise);
    }
    println!("{}: {}", exercise.name, exercise.task);
    println!("  the task:   {}", exercise.page().display());
    println!("  edit:       {}", exercise.start_file().display());
    let whose = if options.solution {
        "the solution"
    } else {
        "your version"
    };
    println!("  testing {whose} (cargo test -p {} ...)\n", exercise.package());
    let passed = test_exercise(root, exercise, options.solution)?;
    println!();
    match (passed, exercise.kind, options.solution) {
        (true, _, true) => println!("{}: the solution passes its test", exercise.name),
        (false, _, true) => bail!("{}: the solution fails its test", exercise.name),
        (true, Kind::Write, false) => println!("{}: done, your version passes its test", exercise.name),
        (false, Kind::Write, false) => {
            bail!(
                "{}: not yet: the test's message above says what is missing",
                exercise.name
            )
        }
        (true, Kind::BreakIt, false) => println!(
            "{}: your version passes its test: break it as the page says, run this again, and read why \
             it fails",
            exercise.name
        ),
        (false, Kind::BreakIt, false) => bail!(
            "{}: broken, as the page asked: read the test's message above, then put the code back \
             (cargo xtask exercise {} --reset)",
            exercise.name,
            exercise.name
        ),
    }
    Ok(())
}

fn list() {
    println!("The exercises (cargo xtask exercise NAME runs one's test on your version):\n");
    let width = EXERCISES.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in EXERCISES {
        println!("  {:<width$} {}", e.name, e.task);
    }
    println!(
        "\nEach chapter's page: book/src/exercises/<chapter>.md; your files: exercises/<chapter>/src/start/."
    );
}

/// Runs one exercise's test through cargo, its output shown; whether it passed. The output of passing
/// tests is shown too: a test that lacked a privilege (a cgroup it may create, say) passed by saying
/// why it did not run, and the learner must read that rather than "done".
fn test_exercise(root: &Path, exercise: &Exercise, solution: bool) -> anyhow::Result<bool> {
    let features = if solution { "check,solution" } else { "check" };
    let status = cargo()
        .current_dir(root)
        .args(["test", "-p", &exercise.package(), "--features", features])
        .args(["--test", "exercises", "--", "--show-output", &exercise.filter()])
        .status()
        .context("cannot run cargo test")?;
    Ok(status.success())
}

/// Restores the starting point from git's index of the last commit.
fn reset(root: &Path, exercise: &Exercise) -> anyhow::Result<()> {
    let file = exercise.start_file();
    util::run(
        Command::new("git")
            .current_dir(root)
            .args(["checkout", "HEAD", "--"])
            .arg(&file),
    )?;
    println!("{}: {} is as committed again", exercise.name, file.display());
    Ok(())
}

// ---- CI -------------------------------------------------------------------------------------------

/// The chapters that have exercises, each once.
fn chapters() -> Vec<&'static str> {
    let mut chapters: Vec<&str> = EXERCISES.iter().map(|e| e.chapter).collect();
    chapters.dedup();
    chapters
}

/// Builds a chapter's test binary with `features` and returns it (`cargo test --no-run`).
fn build_tests(root: &Path, chapter: &str, features: &str) -> anyhow::Result<PathBuf> {
    let package = format!("{chapter}-exercises");
    let json = util::output(
        cargo()
            .current_dir(root)
            .args(["test", "--no-run", "--message-format=json", "-p", &package])
            .args(["--features", features, "--test", "exercises"]),
    )?;
    let binaries = parse_test_binaries(&json)?;
    match binaries.as_slice() {
        [binary] => Ok(binary.executable.clone()),
        _ => bail!(
            "expected one test binary for {package}, cargo built {}",
            binaries.len()
        ),
    }
}

/// Runs a test binary, quietly, in the crate's directory, with the environment `cargo xtask ci` gives
/// tests: one at a time, privileges demanded as `require` says. Whether it passed, and its output.
fn run_tests(
    root: &Path,
    binary: &Path,
    chapter: &str,
    filter: Option<&str>,
    unprivileged: bool,
) -> anyhow::Result<(bool, String)> {
    let mut cmd = if unprivileged {
        as_unprivileged(binary)
    } else {
        Command::new(binary)
    };
    cmd.current_dir(root.join("exercises").join(chapter))
        .env("RUST_TEST_THREADS", "1")
        .env_remove("RUST_BACKTRACE");
    if unprivileged {
        cmd.env("NS_REQUIRE_PRIV", "userns").env_remove("HOME");
    } else if is_root() {
        cmd.env("NS_REQUIRE_PRIV", "1");
    }
    if let Some(filter) = filter {
        cmd.arg(filter);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// `cargo xtask ci`'s exercises step: every solution passes its test (as root, and as uid 65534
/// when root), every starting point compiles against its test and is where its page says it is.
pub fn ci_step(root: &Path) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for chapter in chapters() {
        let solutions = build_tests(root, chapter, "check,solution")?;
        let starts = build_tests(root, chapter, "check")?;
        let mut runs = vec![false];
        if is_root() {
            util::make_reachable(solutions.parent().context("a test binary is in a directory")?)?;
            runs.push(true);
        }
        for unprivileged in runs {
            let (passed, output) = run_tests(root, &solutions, chapter, None, unprivileged)?;
            if !passed {
                let who = if unprivileged {
                    format!("uid {UNPRIVILEGED_UID}")
                } else {
                    "this user".to_owned()
                };
                failures.push(format!(
                    "{chapter}'s solutions fail their tests as {who}:\n{output}"
                ));
            }
        }
        for exercise in EXERCISES.iter().filter(|e| e.chapter == chapter) {
            let (passed, output) = run_tests(root, &starts, chapter, Some(&exercise.filter()), false)?;
            match (exercise.kind, passed) {
                (Kind::Write, true) => failures.push(format!(
                    "{}'s starting point already passes its test (or the test skipped: see below), so there \
                     is nothing to write:\n{output}",
                    exercise.name
                )),
                (Kind::BreakIt, false) => failures.push(format!(
                    "{}'s starting point should pass its test until the learner breaks it:\n{output}",
                    exercise.name
                )),
                _ => {}
            }
        }
        println!(
            "xtask: {chapter} exercises: solutions pass, starting points compile and fail or pass as their pages say"
        );
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exercise_has_its_files_and_its_page() {
        let root = util::workspace_root();
        for e in EXERCISES {
            assert!(e.name.starts_with(&format!("{}-", e.chapter)), "{}", e.name);
            assert!(
                root.join(e.start_file()).is_file(),
                "{}",
                e.start_file().display()
            );
            let solution = root
                .join("exercises")
                .join(e.chapter)
                .join("src/solution")
                .join(format!("{}.rs", e.module));
            assert!(solution.is_file(), "{}", solution.display());
            let page = std::fs::read_to_string(root.join(e.page())).unwrap();
            assert!(
                page.contains(e.name),
                "{} does not name {}",
                e.page().display(),
                e.name
            );
            let tests =
                std::fs::read_to_string(root.join("exercises").join(e.chapter).join("tests/exercises.rs"))
                    .unwrap();
            assert!(
                tests.contains(&format!("mod {} {{", e.module)),
                "no test module for {}",
                e.name
            );
        }
    }

    #[test]
    fn a_break_it_starting_point_is_its_solution() {
        // Until the learner breaks it, the starting point is the working code, anchors aside.
        let root = util::workspace_root();
        let body = |path: PathBuf| {
            let text = std::fs::read_to_string(&path).unwrap();
            crate::book::select(&text, Some("exercise"))
                .or_else(|| crate::book::select(&text, Some("solution")))
                .unwrap_or_else(|| panic!("{} has no anchor", path.display()))
        };
        for e in EXERCISES.iter().filter(|e| e.kind == Kind::BreakIt) {
            let dir = root.join("exercises").join(e.chapter).join("src");
            assert_eq!(
                body(dir.join("start").join(format!("{}.rs", e.module))),
                body(dir.join("solution").join(format!("{}.rs", e.module))),
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn names_are_found_or_listed() {
        assert_eq!(find("mnt-leak").unwrap().kind, Kind::BreakIt);
        let err = format!("{:#}", find("nope").unwrap_err());
        assert!(err.contains("uts-names") && err.contains("mnt-pivot"), "{err}");
    }
}
