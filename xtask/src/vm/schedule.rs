//! Which guest runs what: every test binary once per run (root, then uid 65534) is a job, and the jobs
//! wait in one queue on the host that every guest draws from over its control port, one job at a
//! time, so a guest that finishes early takes the next job instead of waiting for the others. The
//! queue is ordered longest first (the classic greedy rule for sharing work between machines,
//! Graham's LPT): by the durations recorded on earlier runs (`target/vm/durations`), and a binary
//! never timed goes first, biggest executable first, since the binaries that link the most code are
//! the ones that run the most.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use crate::ci::TestBinary;

/// One test binary (by index in the guest's list) under one run (by index in [`super::RUNS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub run: usize,
    pub test: usize,
}

impl Job {
    /// The line that hands this job to a guest, as vm-init's `Conf::job` reads it.
    pub fn line(self) -> String {
        format!("job {} {}", self.run, self.test)
    }
}

/// The durations of earlier runs, in milliseconds, by run name and [`binary_key`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct History {
    millis: BTreeMap<(String, String), u64>,
}

/// A test binary's name across rebuilds: its package directory's name and its file name without
/// cargo's hash (`combined/leaks` for `.../deps/leaks-ab31e5ddf5a319a1` of `combined/`).
pub fn binary_key(binary: &TestBinary) -> String {
    let package = binary
        .package_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let file = binary
        .executable
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let stem = match file.rsplit_once('-') {
        Some((stem, hash)) if !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()) => stem,
        _ => &file,
    };
    format!("{package}/{stem}")
}

impl History {
    /// Where the durations are kept.
    pub fn path(cache: &Path) -> PathBuf {
        cache.join("durations")
    }

    /// Reads `RUN<TAB>KEY<TAB>MS` lines; a missing or damaged file is an empty history.
    pub fn load(cache: &Path) -> History {
        let text = fs::read_to_string(History::path(cache)).unwrap_or_default();
        History::parse(&text)
    }

    fn parse(text: &str) -> History {
        let mut millis = BTreeMap::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [run, key, ms] = fields[..] else { continue };
            if let Ok(ms) = ms.parse() {
                millis.insert((run.to_owned(), key.to_owned()), ms);
            }
        }
        History { millis }
    }

    fn render(&self) -> String {
        self.millis
            .iter()
            .map(|((run, key), ms)| format!("{run}\t{key}\t{ms}\n"))
            .collect()
    }

    pub fn get(&self, run: &str, key: &str) -> Option<u64> {
        self.millis.get(&(run.to_owned(), key.to_owned())).copied()
    }

    pub fn record(&mut self, run: &str, key: &str, ms: u64) {
        self.millis.insert((run.to_owned(), key.to_owned()), ms);
    }

    /// Writes the history back; a failure only costs the next run its order, so it is not an error.
    pub fn save(&self, cache: &Path) {
        let path = History::path(cache);
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        if fs::write(&partial, self.render()).is_ok() {
            let _ = fs::rename(&partial, &path);
        }
    }
}

// ANCHOR: order
/// Every test under every run, longest first: binaries never timed before the rest, biggest first;
/// then by the time they took last, longest first. Ties keep cargo's order, root before user.
pub fn order(tests: &[TestBinary], runs: &[&str], history: &History) -> VecDeque<Job> {
    let mut jobs: Vec<(Job, Estimate)> = Vec::new();
    for (run, name) in runs.iter().enumerate() {
        for (test, binary) in tests.iter().enumerate() {
            let estimate = match history.get(name, &binary_key(binary)) {
                Some(ms) => Estimate::Took(ms),
                None => Estimate::Unknown {
                    bytes: fs::metadata(&binary.executable).map_or(0, |m| m.len()),
                },
            };
            jobs.push((Job { run, test }, estimate));
        }
    }
    // A stable sort, largest estimate first.
    jobs.sort_by_key(|(_, estimate)| std::cmp::Reverse(*estimate));
    jobs.into_iter().map(|(job, _)| job).collect()
}
// ANCHOR_END: order

/// How long a job is expected to take. Unknown sorts above every known duration: a binary nobody
/// has timed may be the longest of all, and a long job started last keeps every other guest idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Estimate {
    Took(u64),
    Unknown { bytes: u64 },
}

/// The host's side of the queue: the jobs not yet handed out, and which guest got which.
#[derive(Debug)]
pub struct Dispatcher {
    queue: VecDeque<Job>,
    handed: Vec<(usize, Job)>,
}

impl Dispatcher {
    pub fn new(queue: VecDeque<Job>) -> Dispatcher {
        Dispatcher {
            queue,
            handed: Vec::new(),
        }
    }

    /// The reply to guest `guest`'s `next`: its next job's line, or `stop` when the queue is empty.
    pub fn reply(&mut self, guest: usize) -> String {
        match self.queue.pop_front() {
            Some(job) => {
                self.handed.push((guest, job));
                job.line()
            }
            None => "stop".to_owned(),
        }
    }

    /// The jobs handed to `guest`, in order.
    pub fn handed_to(&self, guest: usize) -> Vec<Job> {
        self.handed
            .iter()
            .filter(|(g, _)| *g == guest)
            .map(|(_, job)| *job)
            .collect()
    }

    /// How many jobs no guest asked for.
    pub fn left(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(package: &str, file: &str) -> TestBinary {
        TestBinary {
            executable: PathBuf::from(format!("/no/such/target/debug/deps/{file}")),
            package_dir: PathBuf::from(format!("/w/{package}")),
        }
    }

    #[test]
    fn a_binary_is_known_across_rebuilds_by_package_and_name() {
        assert_eq!(
            binary_key(&binary("combined", "leaks-ab31e5ddf5a319a1")),
            "combined/leaks"
        );
        assert_eq!(
            binary_key(&binary("uts-demo", "uts_demo-eb905a86d8cc2734")),
            "uts-demo/uts_demo"
        );
        // --guest-test executables have no hash to drop.
        assert_eq!(binary_key(&binary("e2e", "copy-pass")), "e2e/copy-pass");
        assert_eq!(binary_key(&binary("e2e", "pass.sh")), "e2e/pass.sh");
    }

    #[test]
    fn the_history_survives_a_round_trip_and_ignores_damage() {
        let mut history = History::default();
        history.record("root", "combined/leaks", 92444);
        history.record("user", "combined/leaks", 72379);
        let text = history.render();
        assert_eq!(History::parse(&text), history);
        let damaged = format!("{text}garbage\nroot\tx\tnot-a-number\nroot\ta\t1\textra\n");
        assert_eq!(History::parse(&damaged), history);
    }

    #[test]
    fn the_longest_jobs_go_first_and_unknown_ones_before_them() {
        let tests = [
            binary("uts-demo", "uts-1"),
            binary("combined", "leaks-2"),
            binary("pid-demo", "steps-3"),
        ];
        let mut history = History::default();
        history.record("root", "uts-demo/uts", 1300);
        history.record("root", "combined/leaks", 92000);
        history.record("user", "uts-demo/uts", 700);
        history.record("user", "combined/leaks", 72000);
        let jobs: Vec<(usize, usize)> = order(&tests, &["root", "user"], &history)
            .into_iter()
            .map(|j| (j.run, j.test))
            .collect();
        // steps was never timed (as root or as user): first, root before user; then by duration.
        assert_eq!(jobs, [(0, 2), (1, 2), (0, 1), (1, 1), (0, 0), (1, 0)]);
    }

    #[test]
    fn each_job_is_handed_out_once_then_stop() {
        let jobs = VecDeque::from([Job { run: 0, test: 1 }, Job { run: 1, test: 0 }]);
        let mut dispatcher = Dispatcher::new(jobs);
        assert_eq!(dispatcher.reply(0), "job 0 1");
        assert_eq!(dispatcher.reply(1), "job 1 0");
        assert_eq!(dispatcher.reply(0), "stop");
        assert_eq!(dispatcher.reply(1), "stop");
        assert_eq!(dispatcher.handed_to(0), [Job { run: 0, test: 1 }]);
        assert_eq!(dispatcher.handed_to(1), [Job { run: 1, test: 0 }]);
        assert_eq!(dispatcher.left(), 0);
    }
}
