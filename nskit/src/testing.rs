//! Test support shared by every chapter: privilege gates and leak counters.
//!
//! A test that needs a privilege the caller lacks prints why and passes, so that `cargo test` runs
//! everywhere; with `NS_REQUIRE_PRIV=1` (CI and the VM set it) the same missing privilege fails the test.
//! `NS_REQUIRE_PRIV=userns` is the setting for an unprivileged run: user namespaces must work, and only
//! tests that need real root may skip.
//! The counters take a snapshot of host state (mounts, child processes, interfaces) to compare before
//! and after, because a namespace test must leave the host as it found it.
//!
//! Tests that look for leaks by repetition (two hundred runs, a kill at every millisecond) take their
//! counts through [`scaled`]: `NS_TEST_SCALE` multiplies them. `cargo xtask test-vm` sets it below 1 in
//! its emulated guest, where each run costs ten times more; everywhere else the full count runs.

use std::collections::BTreeSet;
use std::fs;
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::spawn::{Spawn, UserNs};
use crate::userns;

/// The variable that turns a missing privilege from a skip into a failure.
pub const REQUIRE_PRIV: &str = "NS_REQUIRE_PRIV";

/// What a test run demands, from `NS_REQUIRE_PRIV`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Required {
    /// Unset: every missing privilege is a skip, with the reason printed.
    Nothing,
    /// `userns`: user namespaces must work; a missing root is still a skip.
    UserNamespaces,
    /// `1`: every privilege a test asks for must be there.
    Everything,
}

/// Reads `NS_REQUIRE_PRIV`.
pub fn required() -> Required {
    match std::env::var(REQUIRE_PRIV).as_deref() {
        Ok("1") => Required::Everything,
        Ok("userns") => Required::UserNamespaces,
        _ => Required::Nothing,
    }
}

/// Whether missing privileges must fail tests (`NS_REQUIRE_PRIV=1`).
pub fn privileges_required() -> bool {
    required() == Required::Everything
}

/// The gate: returns `have`; when it is false, says why `test` did not run, or panics under
/// `NS_REQUIRE_PRIV=1`.
pub fn gate(have: bool, test: &str, missing: &str) -> bool {
    gate_at(Required::Everything, have, test, missing)
}

/// Like [`gate`], but fails already at `level` (`UserNamespaces` for gates on user namespaces).
fn gate_at(level: Required, have: bool, test: &str, missing: &str) -> bool {
    if !have {
        let demanded = required();
        if demanded == Required::Everything || (demanded == level && level != Required::Nothing) {
            panic!("{test}: {missing}, and {REQUIRE_PRIV} requires it");
        }
        eprintln!("skipped {test}: {missing} (set {REQUIRE_PRIV}=1 to make this a failure)");
    }
    have
}

/// Runs the rest of a test only as root.
pub fn require_root(test: &str) -> bool {
    gate(userns::is_root(), test, "needs root")
}

/// Whether this process can create a user namespace and gets capabilities in it, probed once.
pub fn userns_available() -> bool {
    static PROBE: OnceLock<bool> = OnceLock::new();
    *PROBE.get_or_init(
        || match Spawn::new(CloneFlags::empty()).user(UserNs::Always).run(|_| 0) {
            Ok(child) => child.wait().is_ok_and(|exit| exit.success()),
            Err(_) => false,
        },
    )
}

/// Runs the rest of a test only where namespaces can be made: as root, or through a user namespace.
pub fn require_namespaces(test: &str) -> bool {
    gate_at(
        Required::UserNamespaces,
        userns::is_root() || userns_available(),
        test,
        "needs root or unprivileged user namespaces, which this host does not allow",
    )
}

/// Runs the rest of a test only where an unprivileged user namespace works, even as root.
pub fn require_userns(test: &str) -> bool {
    gate(
        userns_available(),
        test,
        "needs user namespaces, which this host does not allow",
    )
}

/// The variable that scales the repetition counts of leak-finding loops: a positive number (`0.2`
/// runs a fifth of each count, `5` five times as many); unset means 1.
pub const SCALE: &str = "NS_TEST_SCALE";

/// `count` repetitions, multiplied by `NS_TEST_SCALE` and rounded, but never fewer than one: a loop
/// that finds a leak per run still finds it in a fifth of the runs, and the full count runs wherever
/// the variable is unset. A malformed value panics rather than silently running the full count.
pub fn scaled(count: usize) -> usize {
    scale_by(count, scale())
}

/// The factor `NS_TEST_SCALE` asks for.
fn scale() -> f64 {
    let Ok(text) = std::env::var(SCALE) else {
        return 1.0;
    };
    match text.trim().parse::<f64>() {
        Ok(factor) if factor.is_finite() && factor > 0.0 => factor,
        _ => panic!("{SCALE}={text:?}: expected a positive number such as 0.2"),
    }
}

fn scale_by(count: usize, factor: f64) -> usize {
    ((count as f64 * factor).round() as usize).max(1)
}

/// The instants `0, 1, ..., last` thinned by the same factor, evenly, and always with both ends (at
/// scale 0.2, `0..=50` becomes `0, 5, 10, ..., 50`): for a loop that tries every instant of an
/// interval, a smaller scale samples the interval more coarsely, never a shorter one.
pub fn scaled_points(last: u64) -> Vec<u64> {
    points_by(last, scale())
}

fn points_by(last: u64, factor: f64) -> Vec<u64> {
    let step = (1.0 / factor).round().max(1.0) as usize;
    let mut points: Vec<u64> = (0..=last).step_by(step).collect();
    if points.last() != Some(&last) {
        points.push(last);
    }
    points
}

/// The share of `items` that turn `turn` of `turns` tries, for a test that tries every item in each of
/// several set-ups (a fault at every step, in each configuration): unscaled, every turn takes every
/// item; scaled down, the items are dealt round-robin between `round(1 / scale)` groups of turns (at
/// most `turns`), so that every item is still tried, in fewer set-ups.
pub fn scaled_share<T: Copy>(items: &[T], turn: usize, turns: usize) -> Vec<T> {
    share_by(items, turn, turns, scale())
}

fn share_by<T: Copy>(items: &[T], turn: usize, turns: usize, factor: f64) -> Vec<T> {
    let groups = ((1.0 / factor).round() as usize).clamp(1, turns.max(1));
    (0..items.len())
        .filter(|i| i % groups == turn % groups)
        .map(|i| items[i])
        .collect()
}

/// Serializes the tests of one test binary that compare host state before and after: while one holds
/// this, no other test taking it runs. (Test binaries themselves run one after another.)
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The host's mount table as this process sees it (`/proc/self/mountinfo`).
pub fn mount_table() -> String {
    fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo")
}

/// The network interfaces in this process's network namespace.
pub fn interfaces() -> BTreeSet<String> {
    fs::read_dir("/sys/class/net")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The PIDs of this process's children, zombies included.
pub fn child_processes() -> BTreeSet<i32> {
    processes_where(|_, ppid, _| ppid == getpid().as_raw())
}

/// The PIDs of processes whose command name (`/proc/<pid>/comm`, 15 bytes at most) is `comm`.
pub fn processes_named(comm: &str) -> BTreeSet<i32> {
    let comm: String = comm.chars().take(15).collect();
    processes_where(|_, _, name| name == comm)
}

/// Scans `/proc/<pid>/stat`: `pid (comm) state ppid ...` (proc(5)).
fn processes_where(keep: impl Fn(i32, i32, &str) -> bool) -> BTreeSet<i32> {
    let mut found = BTreeSet::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(-1);
        if keep(pid, ppid, comm) {
            found.insert(pid);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_own_children() {
        // A child of our own plumbing, waiting on its channel: no outside program needed.
        let before = child_processes();
        let mut child = Spawn::new(CloneFlags::empty())
            .user(UserNs::Never)
            .run(|channel| i32::from(channel.recv().is_err()))
            .unwrap();
        assert!(child_processes().contains(&child.pid().as_raw()));
        child.channel().send("exit").unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(child_processes(), before);
    }

    #[test]
    fn scaling_rounds_and_never_reaches_zero() {
        assert_eq!(scale_by(200, 1.0), 200);
        assert_eq!(scale_by(200, 0.2), 40);
        assert_eq!(scale_by(50, 0.25), 13);
        assert_eq!(scale_by(3, 0.01), 1);
        assert_eq!(scale_by(200, 5.0), 1000);
    }

    #[test]
    fn scaled_points_keep_both_ends_and_stay_even() {
        assert_eq!(points_by(50, 1.0), (0..=50).collect::<Vec<u64>>());
        assert_eq!(points_by(50, 0.2), [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
        assert_eq!(
            points_by(50, 0.3),
            [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, 50]
        );
        assert_eq!(points_by(50, 0.001), [0, 50]);
        assert_eq!(points_by(50, 10.0).len(), 51, "never more than every point");
        assert_eq!(points_by(0, 0.2), [0]);
    }

    #[test]
    fn a_scaled_share_still_tries_every_item_somewhere() {
        let steps = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let all: Vec<Vec<i32>> = (0..4).map(|turn| share_by(&steps, turn, 4, 1.0)).collect();
        assert!(
            all.iter().all(|share| share == &steps),
            "unscaled: every turn, every item"
        );
        let dealt: Vec<Vec<i32>> = (0..4).map(|turn| share_by(&steps, turn, 4, 0.2)).collect();
        assert_eq!(dealt, [vec![0, 4, 8], vec![1, 5, 9], vec![2, 6], vec![3, 7]]);
        let halves: Vec<Vec<i32>> = (0..3).map(|turn| share_by(&steps, turn, 3, 0.5)).collect();
        assert_eq!(
            halves[0], halves[2],
            "two groups: turns 0 and 2 take the same half"
        );
        assert_eq!(halves[0].len() + halves[1].len(), steps.len());
        assert_eq!(share_by(&steps, 0, 1, 0.2), steps, "one turn takes everything");
    }

    #[test]
    fn loopback_is_listed() {
        assert!(interfaces().contains("lo"));
    }
}
