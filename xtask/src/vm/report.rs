//! Reading what the guest's /init reported over the result port (a virtio-serial port QEMU writes to
//! a host file). One line per event, written as it happens, so a guest that dies midway leaves a
//! readable prefix:
//!
//! ```text
//! booted 412                              (ms since the kernel started)
//! test root pass 1234 /w/target/debug/deps/nskit-0a1b2c
//! test user exit:101 56 /w/target/debug/deps/uts_demo-3d4e5f
//! done root
//! verdict fail
//! ```
//!
//! The verdict is the host's, not the guest's: a pass needs every expected run finished, at least one
//! test, no test failed, and the guest's own `verdict pass`.

use std::fmt;

/// One test binary's run in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// `root` or `user`.
    pub run: String,
    /// `pass`, `exit:N`, `signal:N` or `error:...`.
    pub outcome: String,
    pub millis: u64,
    pub binary: String,
}

impl TestRun {
    pub fn passed(&self) -> bool {
        self.outcome == "pass"
    }
}

/// Everything the guest reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Milliseconds from kernel start to /init's first line, when it got that far.
    pub booted_ms: Option<u64>,
    pub tests: Vec<TestRun>,
    pub runs_done: Vec<String>,
    /// The guest's own verdict line.
    pub guest_verdict: Option<bool>,
    /// Lines that were not understood (a sign of a mismatched /init).
    pub garbled: Vec<String>,
}

impl Report {
    /// Parses the port's contents; a last line without its newline is still being written and is
    /// left out.
    pub fn parse(text: &str) -> Report {
        let mut report = Report::default();
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        for line in complete.lines().filter(|l| !l.trim().is_empty()) {
            if !report.take(line) {
                report.garbled.push(line.to_owned());
            }
        }
        report
    }

    fn take(&mut self, line: &str) -> bool {
        let mut words = line.splitn(5, ' ');
        match (words.next(), words.next()) {
            (Some("booted"), Some(ms)) => ms.parse().map(|ms| self.booted_ms = Some(ms)).is_ok(),
            (Some("done"), Some(run)) => {
                self.runs_done.push(run.to_owned());
                true
            }
            (Some("verdict"), Some(v @ ("pass" | "fail"))) => {
                self.guest_verdict = Some(v == "pass");
                true
            }
            (Some("test"), Some(run)) => {
                let (Some(outcome), Some(ms), Some(binary)) = (words.next(), words.next(), words.next())
                else {
                    return false;
                };
                let Ok(millis) = ms.parse() else { return false };
                self.tests.push(TestRun {
                    run: run.to_owned(),
                    outcome: outcome.to_owned(),
                    millis,
                    binary: binary.to_owned(),
                });
                true
            }
            _ => false,
        }
    }

    /// The host's verdict, given the runs that had to happen.
    pub fn verdict(&self, expected_runs: &[&str]) -> Verdict {
        if self.booted_ms.is_none() {
            return Verdict::NoResult("the guest never reported that it booted".into());
        }
        let missing: Vec<&str> = expected_runs
            .iter()
            .filter(|r| !self.runs_done.iter().any(|d| d == *r))
            .copied()
            .collect();
        let failed: Vec<String> = self
            .tests
            .iter()
            .filter(|t| !t.passed())
            .map(|t| format!("{} as {} ({})", short_name(&t.binary), t.run, t.outcome))
            .collect();
        if !failed.is_empty() {
            return Verdict::Failed(failed);
        }
        if !missing.is_empty() {
            return Verdict::NoResult(format!(
                "the guest did not finish the {} run",
                missing.join(" and ")
            ));
        }
        if self.tests.is_empty() {
            return Verdict::NoResult("the guest ran no test".into());
        }
        match self.guest_verdict {
            Some(true) => Verdict::Passed,
            Some(false) => Verdict::Failed(vec!["the guest's own verdict".into()]),
            None => Verdict::NoResult("the guest reported no verdict".into()),
        }
    }
}

/// `/w/target/debug/deps/nskit-0a1b2c` -> `nskit-0a1b2c`.
pub fn short_name(binary: &str) -> &str {
    binary.rsplit('/').next().unwrap_or(binary)
}

/// The outcome of a VM run.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// These tests failed.
    Failed(Vec<String>),
    /// The guest stopped before it could say (panic, timeout, crash): why.
    NoResult(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Passed => write!(f, "passed"),
            Verdict::Failed(which) => write!(f, "failed: {}", which.join(", ")),
            Verdict::NoResult(why) => write!(f, "no result: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH_RUNS: [&str; 2] = ["root", "user"];

    const PASSING: &str = "booted 412
test root pass 1234 /w/target/debug/deps/nskit-0a1b
test user pass 56 /w/target/debug/deps/nskit-0a1b
done root
done user
verdict pass
";

    #[test]
    fn a_complete_passing_report_passes() {
        let r = Report::parse(PASSING);
        assert_eq!(r.booted_ms, Some(412));
        assert_eq!(r.tests.len(), 2);
        assert_eq!(r.tests[0].binary, "/w/target/debug/deps/nskit-0a1b");
        assert_eq!(r.tests[0].millis, 1234);
        assert!(r.garbled.is_empty());
        assert_eq!(r.verdict(&BOTH_RUNS), Verdict::Passed);
    }

    #[test]
    fn one_failed_test_fails_and_is_named() {
        let text = PASSING.replace("test user pass", "test user exit:101");
        let v = Report::parse(&text).verdict(&BOTH_RUNS);
        assert_eq!(v, Verdict::Failed(vec!["nskit-0a1b as user (exit:101)".into()]));
    }

    #[test]
    fn a_guest_that_stopped_midway_has_no_result() {
        let cut = &PASSING[..PASSING.find("done user").unwrap()];
        let v = Report::parse(cut).verdict(&BOTH_RUNS);
        assert_eq!(
            v,
            Verdict::NoResult("the guest did not finish the user run".into())
        );
        assert!(matches!(
            Report::parse("").verdict(&BOTH_RUNS),
            Verdict::NoResult(_)
        ));
    }

    #[test]
    fn a_half_written_last_line_is_ignored() {
        let r = Report::parse("booted 5\ntest root pa");
        assert_eq!(r.booted_ms, Some(5));
        assert!(r.tests.is_empty() && r.garbled.is_empty());
    }

    #[test]
    fn no_tests_or_no_verdict_is_not_a_pass() {
        let none = "booted 1\ndone root\ndone user\nverdict pass\n";
        assert!(matches!(
            Report::parse(none).verdict(&BOTH_RUNS),
            Verdict::NoResult(_)
        ));
        let no_verdict = PASSING.replace("verdict pass\n", "");
        assert!(matches!(
            Report::parse(&no_verdict).verdict(&BOTH_RUNS),
            Verdict::NoResult(_)
        ));
        let guest_says_fail = PASSING.replace("verdict pass", "verdict fail");
        assert!(matches!(
            Report::parse(&guest_says_fail).verdict(&BOTH_RUNS),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn garbage_is_kept_aside() {
        let r = Report::parse("booted x\nhello\ntest root pass notanumber /x\n");
        assert_eq!(r.garbled.len(), 3);
        assert_eq!(r.booted_ms, None);
    }
}
