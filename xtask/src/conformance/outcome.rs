//! How one validation program went for one runtime: its TAP counts, a verdict, and the line that shows
//! why when it did not pass. The verdict is stricter than the exit status alone: a program passes
//! cleanly only when it printed a plan, ran every test in it, failed none, reported no error and exited
//! 0. So a hook program whose error comes under a `1..0` plan with exit status 0 has failed, and so has
//! a program that printed nothing at all (the suite's `*_fail` programs report success by silence, but
//! silence is also what a runtime that refuses every `create` would earn).

use std::fmt;

use super::tap;

/// How a program's process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed, with its process group, after the per-program timeout.
    TimedOut,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit status {code}"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
            Exit::TimedOut => write!(f, "timed out"),
        }
    }
}

/// The verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Every planned test ran and passed, no error, exit status 0.
    Pass,
    /// At least one `not ok`.
    Fail,
    /// No `not ok`, but something else went wrong: no plan, a plan not met, an error reported outside
    /// any test, or a non-zero exit.
    Error,
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Pass, Status::Fail, Status::Error, Status::Timeout]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One program, one runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub plan: Option<u32>,
    pub ok: u32,
    pub not_ok: u32,
    pub skipped: u32,
    pub exit: Exit,
    pub status: Status,
    /// Why it did not pass: the first `not ok` line with the runtime's message, the reported error, or
    /// the program's standard error. `None` when it passed.
    pub evidence: Option<String>,
    /// The failing lines without their numbers, to tell whether two runtimes failed alike.
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Longest evidence kept, in characters: a line of a report, not a log.
const EVIDENCE_CHARS: usize = 300;

/// Judges a program from what it printed on standard output (`tap`), how it ended and its standard
/// error.
pub fn judge(tap: &tap::Report, exit: Exit, stderr: &str, seconds: f64) -> Outcome {
    let (status, evidence) = verdict(tap, exit, stderr);
    Outcome {
        plan: tap.plan,
        ok: tap.ok(),
        not_ok: tap.not_ok(),
        skipped: tap.skipped(),
        exit,
        status,
        evidence: evidence.map(|e| shorten(&e)),
        failures: tap.failures().map(tap::TestLine::unnumbered).collect(),
        seconds,
    }
}

fn verdict(tap: &tap::Report, exit: Exit, stderr: &str) -> (Status, Option<String>) {
    let stderr = stderr_suffix(stderr);
    if exit == Exit::TimedOut {
        return (
            Status::Timeout,
            Some(format!("no result before the timeout{stderr}")),
        );
    }
    if let Some(failure) = tap.failures().next() {
        let reason = failure.reason().map_or(stderr, |r| format!(" ({r})"));
        return (Status::Fail, Some(format!("{}{reason}", failure.line)));
    }
    let error = match (tap.plan, tap.errors.first()) {
        (_, Some(error)) => format!("reported: {error} (program {exit}){stderr}"),
        (None, None) if tap.tests.is_empty() => format!("no TAP output, {exit}{stderr}"),
        (None, None) => format!("no plan, {exit}{stderr}"),
        (Some(plan), None) if plan != tap.ok() => format!("planned {plan}, ran {}{stderr}", tap.ok()),
        (Some(_), None) if exit != Exit::Code(0) => format!("{exit}{stderr}"),
        (Some(_), None) => return (Status::Pass, None),
    };
    (Status::Error, Some(error))
}

/// `; stderr: ...`: the program's standard error on one line, the runtime's messages without the
/// harness's own ("failed to create the container", "exit status 1", "Clean: Delete: ..."), which
/// say nothing the verdict does not; empty when nothing is left.
fn stderr_suffix(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_harness_line(l))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", lines.join(" | "))
    }
}

fn is_harness_line(line: &str) -> bool {
    let generic_step = line.starts_with("failed to ") && line.ends_with(" the container");
    let exit_status = line
        .strip_prefix("exit status ")
        .is_some_and(|code| code.chars().all(|c| c.is_ascii_digit()));
    generic_step || exit_status || line.starts_with("Clean: Delete: ")
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= EVIDENCE_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(EVIDENCE_CHARS - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(stdout: &str, exit: Exit, stderr: &str) -> Outcome {
        judge(&tap::parse(stdout), exit, stderr, 0.1)
    }

    #[test]
    fn a_clean_run_passes_with_no_evidence() {
        let outcome = judged("1..2\nok 1 - a\nok 2 # SKIP b\n", Exit::Code(0), "");
        assert_eq!(
            (outcome.status, outcome.plan, outcome.ok, outcome.skipped),
            (Status::Pass, Some(2), 2, 1)
        );
        assert_eq!(outcome.evidence, None);
    }

    #[test]
    fn a_not_ok_fails_with_its_line_and_reason() {
        let outcome = judged(
            "not ok 1 - exit status 1\n  ---\n  {\"stderr\": \"cannot set hugetlb limit\"}\n  ...\nok 2 - b\n1..2\n",
            Exit::Code(0),
            "",
        );
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(
            outcome.evidence.as_deref(),
            Some("not ok 1 - exit status 1 (cannot set hugetlb limit)")
        );
        assert_eq!(outcome.failures, ["not ok - exit status 1"]);
    }

    #[test]
    fn a_not_ok_without_a_diagnostic_borrows_the_runtimes_message_from_stderr() {
        let outcome = judged(
            "not ok 1 - exit status 1\n1..1\n",
            Exit::Code(0),
            "failed to create the container\nruntime: cannot set hugetlb limit\n",
        );
        assert_eq!(
            outcome.evidence.as_deref(),
            Some("not ok 1 - exit status 1; stderr: runtime: cannot set hugetlb limit")
        );
    }

    #[test]
    fn an_error_under_an_empty_plan_is_an_error_even_with_exit_status_0() {
        let outcome = judged(
            "TAP version 13\n  ---\n  {\"error\": \"Hooks MUST be called in the listed order\"}\n  ...\n1..0\n",
            Exit::Code(0),
            "",
        );
        assert_eq!(outcome.status, Status::Error);
        assert_eq!(
            outcome.evidence.as_deref(),
            Some("reported: Hooks MUST be called in the listed order (program exit status 0)")
        );
        // Without the error, an empty plan is how a hook program reports success.
        assert_eq!(
            judged("TAP version 13\n1..0\n", Exit::Code(0), "").status,
            Status::Pass
        );
    }

    #[test]
    fn silence_is_an_error_that_shows_the_runtimes_message() {
        let outcome = judged(
            "",
            Exit::Code(0),
            "failed to create the container\nruntime: unrecognized subcommand 'create'\nClean: Delete:  exit status 125\nexit status 1\n",
        );
        assert_eq!(outcome.status, Status::Error);
        assert_eq!(
            outcome.evidence.as_deref(),
            Some("no TAP output, exit status 0; stderr: runtime: unrecognized subcommand 'create'")
        );
    }

    #[test]
    fn a_plan_not_met_or_a_failed_exit_is_an_error() {
        assert_eq!(judged("1..3\nok 1\n", Exit::Code(0), "").status, Status::Error);
        let all_ok_but_exit_1 = judged("1..1\nok 1\n", Exit::Code(1), "MUST cause an error\n");
        assert_eq!(all_ok_but_exit_1.status, Status::Error);
        assert_eq!(
            all_ok_but_exit_1.evidence.as_deref(),
            Some("exit status 1; stderr: MUST cause an error")
        );
        assert_eq!(judged("ok 1\n", Exit::Code(0), "").status, Status::Error);
    }

    #[test]
    fn a_timeout_wins_over_what_was_printed() {
        let outcome = judged("1..1\nok 1\n", Exit::TimedOut, "");
        assert_eq!(outcome.status, Status::Timeout);
        assert_eq!(outcome.evidence.as_deref(), Some("no result before the timeout"));
    }

    #[test]
    fn long_evidence_is_shortened_and_statuses_read_back() {
        let outcome = judged("", Exit::Code(1), &"x".repeat(1000));
        assert_eq!(outcome.evidence.unwrap().chars().count(), EVIDENCE_CHARS);
        for status in [Status::Pass, Status::Fail, Status::Error, Status::Timeout] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }
}
