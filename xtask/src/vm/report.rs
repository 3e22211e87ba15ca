//! Reading what each guest's /init reported over its result port (a virtio-serial port QEMU writes to
//! a host file). One line per event, written as it happens, so a guest that dies midway leaves a
//! readable prefix:
//!
//! ```text
//! booted 1904                             (ms from the kernel's start to /init's)
//! phase modules 310                       (ms each step of /init's set-up took)
//! phase ports 20
//! phase root 95
//! test root pass 1234 /w/target/debug/deps/nskit-0a1b2c
//! test user exit:101 56 /w/target/debug/deps/uts_demo-3d4e5f
//! verdict fail
//! ```
//!
//! The verdict is the host's, not the guests': a pass needs every guest booted, every job handed out
//! and reported by the guest that took it, at least one test, no test failed, and every guest's own
//! `verdict pass`.

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

/// Everything one guest reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Milliseconds from kernel start to /init's start, when it got far enough to say.
    pub booted_ms: Option<u64>,
    /// /init's set-up steps and their milliseconds, in order.
    pub phases: Vec<(String, u64)>,
    pub tests: Vec<TestRun>,
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
            (Some("phase"), Some(name)) => match words.next().map(str::parse) {
                Some(Ok(ms)) => {
                    self.phases.push((name.to_owned(), ms));
                    true
                }
                _ => false,
            },
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
}

/// One guest's part in a run: what it reported, and the jobs (run name, binary) the host handed it.
#[derive(Debug)]
pub struct GuestPart<'a> {
    pub report: &'a Report,
    pub handed: Vec<(&'a str, &'a str)>,
}

// ANCHOR: verdict
/// The host's verdict on a run of several guests, given how many jobs no guest ever asked for.
pub fn verdict(guests: &[GuestPart<'_>], jobs_left: usize) -> Verdict {
    let failed: Vec<String> = guests
        .iter()
        .flat_map(|g| &g.report.tests)
        .filter(|t| !t.passed())
        .map(|t| format!("{} as {} ({})", short_name(&t.binary), t.run, t.outcome))
        .collect();
    if !failed.is_empty() {
        return Verdict::Failed(failed);
    }
    for (number, guest) in numbered(guests) {
        if guest.report.booted_ms.is_none() {
            return Verdict::NoResult(format!("guest {number} never reported that it booted"));
        }
        let unreported = guest.handed.iter().find(|(run, binary)| {
            !guest
                .report
                .tests
                .iter()
                .any(|t| t.run == *run && t.binary == *binary)
        });
        if let Some((run, binary)) = unreported {
            return Verdict::NoResult(format!(
                "guest {number} stopped while running {} as {run}",
                short_name(binary)
            ));
        }
    }
    if jobs_left > 0 {
        return Verdict::NoResult(format!("{jobs_left} jobs never ran"));
    }
    if guests.iter().all(|g| g.report.tests.is_empty()) {
        return Verdict::NoResult("the guests ran no test".into());
    }
    for (number, guest) in numbered(guests) {
        match guest.report.guest_verdict {
            Some(true) => {}
            Some(false) => return Verdict::Failed(vec![format!("guest {number}'s own verdict")]),
            None => return Verdict::NoResult(format!("guest {number} reported no verdict")),
        }
    }
    Verdict::Passed
}
// ANCHOR_END: verdict

/// Guests numbered from 1, as the host's messages name them.
fn numbered<'a, 'b>(guests: &'b [GuestPart<'a>]) -> impl Iterator<Item = (usize, &'b GuestPart<'a>)> {
    guests.iter().enumerate().map(|(i, g)| (i + 1, g))
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

    const NSKIT: &str = "/w/target/debug/deps/nskit-0a1b";
    const UTS: &str = "/w/target/debug/deps/uts-9f8e";

    /// Guest 1 ran nskit as root and uts as user; guest 2 uts as root and nskit as user.
    const GUEST_1: &str = "booted 1904
phase modules 310
phase ports 20
phase root 95
test root pass 1234 /w/target/debug/deps/nskit-0a1b
test user pass 56 /w/target/debug/deps/uts-9f8e
verdict pass
";
    const GUEST_2: &str = "booted 2011
test root pass 800 /w/target/debug/deps/uts-9f8e
test user pass 60 /w/target/debug/deps/nskit-0a1b
verdict pass
";

    fn parts<'a>(one: &'a Report, two: &'a Report) -> Vec<GuestPart<'a>> {
        vec![
            GuestPart {
                report: one,
                handed: vec![("root", NSKIT), ("user", UTS)],
            },
            GuestPart {
                report: two,
                handed: vec![("root", UTS), ("user", NSKIT)],
            },
        ]
    }

    #[test]
    fn a_complete_passing_report_passes() {
        let (one, two) = (Report::parse(GUEST_1), Report::parse(GUEST_2));
        assert_eq!(one.booted_ms, Some(1904));
        let phases = [("modules", 310), ("ports", 20), ("root", 95)].map(|(n, ms)| (n.to_owned(), ms));
        assert_eq!(one.phases, phases);
        assert_eq!(one.tests.len(), 2);
        assert_eq!(one.tests[0].binary, NSKIT);
        assert_eq!(one.tests[0].millis, 1234);
        assert!(one.garbled.is_empty());
        assert_eq!(verdict(&parts(&one, &two), 0), Verdict::Passed);
    }

    #[test]
    fn one_failed_test_fails_and_is_named() {
        let one = Report::parse(&GUEST_1.replace("test user pass", "test user exit:101"));
        let two = Report::parse(GUEST_2);
        assert_eq!(
            verdict(&parts(&one, &two), 0),
            Verdict::Failed(vec!["uts-9f8e as user (exit:101)".into()])
        );
    }

    #[test]
    fn a_guest_that_stopped_midway_has_no_result() {
        let cut = &GUEST_2[..GUEST_2.find("test user").unwrap()];
        let (one, two) = (Report::parse(GUEST_1), Report::parse(cut));
        assert_eq!(
            verdict(&parts(&one, &two), 0),
            Verdict::NoResult("guest 2 stopped while running nskit-0a1b as user".into())
        );
        let silent = Report::parse("");
        assert_eq!(
            verdict(&parts(&one, &silent), 0),
            Verdict::NoResult("guest 2 never reported that it booted".into())
        );
    }

    #[test]
    fn jobs_nobody_took_are_no_result() {
        let (one, two) = (Report::parse(GUEST_1), Report::parse(GUEST_2));
        assert_eq!(
            verdict(&parts(&one, &two), 3),
            Verdict::NoResult("3 jobs never ran".into())
        );
    }

    #[test]
    fn a_half_written_last_line_is_ignored() {
        let r = Report::parse("booted 5\ntest root pa");
        assert_eq!(r.booted_ms, Some(5));
        assert!(r.tests.is_empty() && r.garbled.is_empty());
    }

    #[test]
    fn no_tests_or_no_verdict_is_not_a_pass() {
        let idle = Report::parse("booted 1\nverdict pass\n");
        let none = [GuestPart {
            report: &idle,
            handed: Vec::new(),
        }];
        assert!(matches!(verdict(&none, 0), Verdict::NoResult(_)));
        let one = Report::parse(GUEST_1);
        let no_verdict = Report::parse(&GUEST_2.replace("verdict pass\n", ""));
        assert_eq!(
            verdict(&parts(&one, &no_verdict), 0),
            Verdict::NoResult("guest 2 reported no verdict".into())
        );
        let says_fail = Report::parse(&GUEST_2.replace("verdict pass", "verdict fail"));
        assert!(matches!(verdict(&parts(&one, &says_fail), 0), Verdict::Failed(_)));
    }

    #[test]
    fn a_guest_given_no_job_may_pass_beside_one_that_ran_them_all() {
        let all = "booted 1\ntest root pass 5 /t/a-1\ntest user pass 5 /t/a-1\nverdict pass\n";
        let (busy, idle) = (Report::parse(all), Report::parse("booted 1\nverdict pass\n"));
        let guests = [
            GuestPart {
                report: &busy,
                handed: vec![("root", "/t/a-1"), ("user", "/t/a-1")],
            },
            GuestPart {
                report: &idle,
                handed: Vec::new(),
            },
        ];
        assert_eq!(verdict(&guests, 0), Verdict::Passed);
    }

    #[test]
    fn garbage_is_kept_aside() {
        let r = Report::parse("booted x\nhello\ntest root pass notanumber /x\nphase root soon\n");
        assert_eq!(r.garbled.len(), 4);
        assert_eq!(r.booted_ms, None);
    }
}
