//! `--check BASELINE.json`: fails when combined no longer passes a program it passed in an earlier
//! run's JSON (what CI keeps). Programs this run did not run (`--only`) are not compared; programs
//! combined passes now and did not then are progress, and are listed too.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use super::RuntimeRun;
use super::outcome::Status;

/// The runtime a baseline guards.
pub const GUARDED: &str = "combined";

/// What comparing with a baseline found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Passed in the baseline, run now and not passed.
    pub regressions: Vec<String>,
    /// Not passed in the baseline, passed now.
    pub newly_passed: Vec<String>,
    /// Programs compared: passed in the baseline and run now.
    pub compared: usize,
}

/// Reads the baseline, compares, prints the comparison and fails on any regression.
pub fn check(path: &Path, runs: &[RuntimeRun]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let baseline: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let passed_before = passed_in(&baseline, GUARDED)
        .with_context(|| format!("{} is not a conformance run's JSON", path.display()))?;
    let Some(now) = runs.iter().find(|r| r.runtime.name == GUARDED) else {
        bail!("--check compares {GUARDED}'s results, and {GUARDED} was not among the runtimes run");
    };
    if let Err(why) = &now.runtime.command {
        bail!("{GUARDED} could not be run, so nothing can be compared with the baseline: {why}");
    }
    let comparison = compare(&passed_before, now);
    println!(
        "xtask: conformance: {GUARDED} against {}: {} program(s) passed there and ran here; newly passed: {}",
        path.display(),
        comparison.compared,
        list_or_none(&comparison.newly_passed)
    );
    if !comparison.regressions.is_empty() {
        bail!(
            "{GUARDED} no longer passes {} program(s) it passed in {}: {}",
            comparison.regressions.len(),
            path.display(),
            comparison.regressions.join(", ")
        );
    }
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The programs `runtime` passed in a run's JSON.
pub fn passed_in(document: &Value, runtime: &str) -> anyhow::Result<BTreeSet<String>> {
    let runs = document["runtimes"].as_array().context("no `runtimes` list")?;
    let run = runs
        .iter()
        .find(|r| r["name"] == runtime)
        .with_context(|| format!("no results for {runtime}"))?;
    let programs = run["programs"]
        .as_object()
        .context("no `programs` in its results")?;
    Ok(programs
        .iter()
        .filter(|(_, result)| result["status"].as_str().and_then(Status::parse) == Some(Status::Pass))
        .map(|(program, _)| program.clone())
        .collect())
}

/// Compares the programs passed before with this run's outcomes.
pub fn compare(passed_before: &BTreeSet<String>, now: &RuntimeRun) -> Comparison {
    let passes_now = |program: &str| now.outcomes.get(program).map(|o| o.status == Status::Pass);
    Comparison {
        regressions: passed_before
            .iter()
            .filter(|p| passes_now(p) == Some(false))
            .cloned()
            .collect(),
        newly_passed: now
            .outcomes
            .iter()
            .filter(|(p, o)| o.status == Status::Pass && !passed_before.contains(*p))
            .map(|(p, _)| p.clone())
            .collect(),
        compared: passed_before.iter().filter(|p| passes_now(p).is_some()).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::outcome::{Exit, Outcome};
    use crate::conformance::report;
    use crate::conformance::runtimes::Runtime;

    fn outcome(status: Status) -> Outcome {
        Outcome {
            plan: Some(1),
            ok: u32::from(status == Status::Pass),
            not_ok: u32::from(status == Status::Fail),
            skipped: 0,
            exit: Exit::Code(0),
            status,
            evidence: None,
            failures: vec![],
            seconds: 0.1,
        }
    }

    fn combined(outcomes: &[(&str, Status)]) -> RuntimeRun {
        RuntimeRun {
            runtime: Runtime {
                name: GUARDED.into(),
                command: Ok("/c".into()),
                version: None,
                note: None,
            },
            outcomes: outcomes
                .iter()
                .map(|(p, s)| ((*p).to_owned(), outcome(*s)))
                .collect(),
            leftovers: None,
            seconds: 1.0,
        }
    }

    fn baseline_of(outcomes: &[(&str, Status)]) -> Value {
        let programs: Vec<&str> = outcomes.iter().map(|(p, _)| *p).collect();
        report::json(&report::results_for(vec![combined(outcomes)], &programs))
    }

    #[test]
    fn a_run_reads_back_as_the_programs_it_passed() {
        let baseline = baseline_of(&[
            ("create", Status::Pass),
            ("kill", Status::Fail),
            ("state", Status::Pass),
        ]);
        let passed: Vec<String> = passed_in(&baseline, GUARDED).unwrap().into_iter().collect();
        assert_eq!(passed, ["create", "state"]);
        assert!(passed_in(&baseline, "runc").is_err());
        assert!(passed_in(&serde_json::json!({"x": 1}), GUARDED).is_err());
    }

    #[test]
    fn a_program_passed_before_and_failed_now_is_a_regression() {
        let before: BTreeSet<String> = ["create".to_owned(), "state".to_owned()].into();
        let now = combined(&[
            ("create", Status::Pass),
            ("state", Status::Timeout),
            ("kill", Status::Pass),
        ]);
        assert_eq!(
            compare(&before, &now),
            Comparison {
                regressions: vec!["state".into()],
                newly_passed: vec!["kill".into()],
                compared: 2,
            }
        );
    }

    #[test]
    fn programs_not_run_now_are_not_compared() {
        let before: BTreeSet<String> = ["create".to_owned(), "state".to_owned()].into();
        let only_create = combined(&[("create", Status::Pass)]);
        let comparison = compare(&before, &only_create);
        assert_eq!((comparison.regressions.len(), comparison.compared), (0, 1));
    }

    #[test]
    fn check_fails_on_a_regression_and_passes_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        let baseline = baseline_of(&[("create", Status::Pass)]);
        std::fs::write(&path, baseline.to_string()).unwrap();
        assert!(check(&path, &[combined(&[("create", Status::Pass)])]).is_ok());
        let error = check(&path, &[combined(&[("create", Status::Error)])]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "combined no longer passes 1 program(s) it passed in {}: create",
                path.display()
            )
        );
        assert!(check(&path, &[]).is_err());
    }
}
