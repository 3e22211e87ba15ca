//! What the conformance run prints and saves: one table, program by program, with `plan/ok/not ok`
//! and the verdict for each runtime side by side, then the totals; the same as markdown (with the
//! evidence for every failure, and the failures put down to the host or the suite), and as one JSON
//! document that `--check` reads back as a baseline.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::host::{Kind, Label};
use super::outcome::{Outcome, Status};
use super::{Results, RuntimeRun};

/// The lines the generated markdown sits between, so a hand-written document can hold it.
pub const BEGIN: &str = "<!-- conformance: begin (written by `cargo xtask conformance --markdown`) -->";
pub const END: &str = "<!-- conformance: end -->";

/// One runtime's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub programs: usize,
    /// Programs whose verdict is `pass`.
    pub clean: usize,
    pub ok: u64,
    pub not_ok: u64,
}

pub fn totals(run: &RuntimeRun) -> Totals {
    run.outcomes.values().fold(
        Totals {
            programs: run.outcomes.len(),
            ..Totals::default()
        },
        |t, o| Totals {
            clean: t.clean + usize::from(o.status == Status::Pass),
            ok: t.ok + u64::from(o.ok),
            not_ok: t.not_ok + u64::from(o.not_ok),
            ..t
        },
    )
}

/// `plan/ok/not ok verdict`, `?` for a missing plan; `-` when the runtime did not run.
pub fn cell(outcome: Option<&Outcome>) -> String {
    let Some(o) = outcome else { return "-".into() };
    let plan = o.plan.map_or("?".to_owned(), |p| p.to_string());
    format!("{plan}/{}/{} {}", o.ok, o.not_ok, o.status.as_str())
}

/// The table for the terminal: aligned columns, a note column for known causes, totals below.
pub fn terminal(results: &Results) -> String {
    let name_width = results
        .programs
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(7)
        .max(24);
    let widths: Vec<usize> = results
        .runs
        .iter()
        .map(|run| {
            let cells = results.programs.iter().map(|p| cell(run.outcomes.get(p)).len());
            cells.chain([run.runtime.name.len(), 10]).max().unwrap_or(10)
        })
        .collect();
    let mut out = String::new();
    let row = |out: &mut String, first: &str, cells: &[String], note: &str| {
        let mut line = format!("{first:<name_width$}");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(line, "  {cell:<width$}");
        }
        let _ = write!(line, "  {note}");
        let _ = writeln!(out, "{}", line.trim_end());
    };
    let names: Vec<String> = results.runs.iter().map(|r| r.runtime.name.clone()).collect();
    row(&mut out, "program", &names, "");
    for program in &results.programs {
        let cells: Vec<String> = results
            .runs
            .iter()
            .map(|r| cell(r.outcomes.get(program)))
            .collect();
        let note = results.labels.get(program).map(Label::note).unwrap_or_default();
        row(&mut out, program, &cells, &note);
    }
    out.push('\n');
    for (label, values) in total_rows(results) {
        row(&mut out, &label, &values, "");
    }
    for run in results.runs.iter().filter(|r| r.runtime.command.is_err()) {
        let why = run.runtime.command.as_ref().err().map_or("", String::as_str);
        let _ = writeln!(out, "{}: not run: {why}", run.runtime.name);
    }
    out
}

/// The three total rows, one value per runtime.
fn total_rows(results: &Results) -> Vec<(String, Vec<String>)> {
    let all: Vec<Option<Totals>> = results
        .runs
        .iter()
        .map(|r| r.runtime.command.is_ok().then(|| totals(r)))
        .collect();
    let values = |f: &dyn Fn(&Totals) -> String| -> Vec<String> {
        all.iter().map(|t| t.as_ref().map_or("-".into(), f)).collect()
    };
    vec![
        (
            "programs passed cleanly".into(),
            values(&|t| format!("{} of {}", t.clean, t.programs)),
        ),
        ("ok".into(), values(&|t| t.ok.to_string())),
        ("not ok".into(), values(&|t| t.not_ok.to_string())),
    ]
}

/// The markdown section, between [`BEGIN`] and [`END`].
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}\n");
    markdown_context(&mut out, results);
    markdown_table(&mut out, results);
    markdown_labels(&mut out, &results.labels);
    markdown_evidence(&mut out, results);
    markdown_leftovers(&mut out, results);
    let _ = writeln!(out, "{END}");
    out
}

fn markdown_context(out: &mut String, results: &Results) {
    let meta = &results.meta;
    let host = &results.host;
    let _ = writeln!(
        out,
        "Measured {} at workspace commit `{}`, on Linux {}, {} CPUs, as {} (CAP_SYS_RESOURCE: {}; cgroup2 root at /sys/fs/cgroup/unified \
         lists: {}), with `{}` (sha256 `{}`), one program at a time, {} s timeout each; the whole run took \
         {:.0} s.\n",
        meta.date.as_deref().unwrap_or("(date unknown)"),
        meta.commit.as_deref().unwrap_or("unknown"),
        host.kernel,
        meta.cpus,
        if meta.root { "root" } else { "an unprivileged user" },
        if host.cap_sys_resource { "yes" } else { "no" },
        host.unified_controllers
            .as_deref()
            .map_or("(not hybrid)", |c| if c.is_empty() { "nothing" } else { c }),
        meta.tarball,
        &meta.sha256[..16.min(meta.sha256.len())],
        meta.timeout_seconds,
        meta.seconds,
    );
    let _ = writeln!(out, "| runtime | version | run as |\n|---|---|---|");
    for run in &results.runs {
        let how = match &run.runtime.command {
            Ok(path) => format!(
                "`{}`{}",
                path.strip_prefix(&results.meta.workspace)
                    .unwrap_or(path)
                    .display(),
                run.runtime
                    .note
                    .as_ref()
                    .map_or(String::new(), |n| format!(", {n}"))
            ),
            Err(why) => format!("not run: {why}"),
        };
        let version = run.runtime.version.as_deref().unwrap_or("?");
        let _ = writeln!(out, "| {} | {version} | {how} |", run.runtime.name);
    }
    out.push('\n');
}

fn markdown_table(out: &mut String, results: &Results) {
    let names: Vec<&str> = results.runs.iter().map(|r| r.runtime.name.as_str()).collect();
    let _ = writeln!(out, "| program | {} | not the runtime's |", names.join(" | "));
    let _ = writeln!(out, "|---|{}---|", "---:|".repeat(names.len()));
    for program in &results.programs {
        let cells: Vec<String> = results
            .runs
            .iter()
            .map(|r| cell(r.outcomes.get(program)))
            .collect();
        let note = results.labels.get(program).map(Label::note).unwrap_or_default();
        let _ = writeln!(out, "| {program} | {} | {note} |", cells.join(" | "));
    }
    for (label, values) in total_rows(results) {
        let _ = writeln!(out, "| **{label}** | {} | |", values.join(" | "));
    }
    let _ = writeln!(
        out,
        "\nEach cell is `plan/ok/not ok` and the verdict: `pass` only when the program printed its plan, ran \
         every test in it, failed none, reported no error and exited 0; `fail` when a test printed `not \
         ok`; `error` when the program failed otherwise (no plan, a plan not met, an error under a `1..0` \
         plan as the hook programs report theirs, a non-zero exit); `timeout` when it was killed.\n"
    );
}

fn markdown_labels(out: &mut String, labels: &BTreeMap<String, Label>) {
    if labels.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Failures that are not the runtimes'\n\nrunc and crun fail these programs the same way, for a \
         reason checked on this host (or a fault of the suite itself):\n"
    );
    for (program, label) in labels {
        let kind = match label.kind {
            Kind::Host => "the host",
            Kind::Suite => "the suite",
        };
        let part = if label.partial { ", in part" } else { "" };
        let _ = writeln!(out, "- **{program}** ({kind}{part}): {}.", label.explanation);
        for (runtime, evidence) in &label.evidence {
            let _ = writeln!(out, "  - {runtime}: `{}`", code_span(evidence));
        }
    }
    out.push('\n');
}

fn markdown_evidence(out: &mut String, results: &Results) {
    let _ = writeln!(out, "### Every other failure, with its evidence\n");
    for run in results.runs.iter().filter(|r| r.runtime.command.is_ok()) {
        let failed: Vec<(&String, &Outcome)> = results
            .programs
            .iter()
            .filter(|p| !results.labels.contains_key(*p))
            .filter_map(|p| Some((p, run.outcomes.get(p)?)))
            .filter(|(_, o)| o.status != Status::Pass)
            .collect();
        let _ = writeln!(
            out,
            "<details><summary>{}: {} program(s)</summary>\n",
            run.runtime.name,
            failed.len()
        );
        for (program, outcome) in failed {
            let evidence = outcome.evidence.as_deref().unwrap_or("");
            let _ = writeln!(out, "- {program}: `{}`", code_span(evidence));
        }
        let _ = writeln!(out, "\n</details>\n");
    }
}

fn markdown_leftovers(out: &mut String, results: &Results) {
    let _ = writeln!(out, "### What each run left, cleaned up after it\n");
    for run in &results.runs {
        if let Some(leftovers) = &run.leftovers {
            let _ = writeln!(
                out,
                "- {} ({:.0} s): {}",
                run.runtime.name,
                run.seconds,
                leftovers.summary()
            );
        }
    }
    out.push('\n');
}

/// Text safe inside a markdown code span on one table line: no backticks, no pipes, no newlines.
fn code_span(text: &str) -> String {
    text.replace('`', "'").replace('|', "/").replace('\n', " ")
}

/// Puts the generated section into `existing`: between its markers when it has them, as the whole
/// file when there is none. A file without the markers is not overwritten.
pub fn splice(existing: Option<&str>, generated: &str) -> Result<String, String> {
    let Some(existing) = existing else {
        return Ok(generated.to_owned());
    };
    match (existing.find(BEGIN), existing.find(END)) {
        (Some(begin), Some(end)) if begin < end => Ok(format!(
            "{}{generated}{}",
            &existing[..begin],
            after_marker(&existing[end + END.len()..])
        )),
        _ => Err(format!(
            "it has no `{BEGIN}` ... `{END}` lines to write the table between"
        )),
    }
}

/// What followed the end marker, less the newline the generated section ends with itself.
fn after_marker(rest: &str) -> &str {
    rest.strip_prefix('\n').unwrap_or(rest)
}

/// The whole run as JSON.
pub fn json(results: &Results) -> Value {
    let meta = &results.meta;
    json!({
        "suite": { "tarball": meta.tarball, "sha256": meta.sha256, "programs": results.programs },
        "date": meta.date,
        "commit": meta.commit,
        "seconds": meta.seconds,
        "timeout_seconds": meta.timeout_seconds,
        "host": results.host.to_json(),
        "runtimes": results.runs.iter().map(run_json).collect::<Vec<_>>(),
        "not_the_runtimes": results.labels.iter().map(|(p, l)| (p.clone(), label_json(l))).collect::<serde_json::Map<_, _>>(),
    })
}

fn run_json(run: &RuntimeRun) -> Value {
    let t = totals(run);
    json!({
        "name": run.runtime.name,
        "command": run.runtime.command.as_ref().ok(),
        "not_run": run.runtime.command.as_ref().err(),
        "version": run.runtime.version,
        "note": run.runtime.note,
        "seconds": run.seconds,
        "totals": { "programs": t.programs, "clean": t.clean, "ok": t.ok, "not_ok": t.not_ok },
        "leftovers": run.leftovers.as_ref().map(super::leftovers::Leftovers::to_json),
        "programs": run.outcomes.iter().map(|(p, o)| (p.clone(), outcome_json(o))).collect::<serde_json::Map<_, _>>(),
    })
}

fn outcome_json(o: &Outcome) -> Value {
    json!({
        "status": o.status.as_str(),
        "plan": o.plan,
        "ok": o.ok,
        "not_ok": o.not_ok,
        "skipped": o.skipped,
        "exit": o.exit.to_string(),
        "seconds": (o.seconds * 1000.0).round() / 1000.0,
        "evidence": o.evidence,
    })
}

fn label_json(l: &Label) -> Value {
    json!({
        "cause": l.cause,
        "partial": l.partial,
        "kind": match l.kind { Kind::Host => "host", Kind::Suite => "suite" },
        "explanation": l.explanation,
        "evidence": l.evidence.iter().map(|(r, e)| (r.clone(), Value::from(e.clone()))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Used by the tests here and in `baseline`: a results value with the given runtimes.
#[cfg(test)]
pub fn results_for(runs: Vec<RuntimeRun>, programs: &[&str]) -> Results {
    Results {
        programs: programs.iter().map(|p| (*p).to_owned()).collect(),
        runs,
        labels: BTreeMap::new(),
        host: super::host::Host::default(),
        meta: super::Meta {
            workspace: "/w".into(),
            commit: Some("abc1234-dirty".into()),
            tarball: "suite.tar.gz".into(),
            sha256: "0".repeat(64),
            date: Some("2025-01-01".into()),
            cpus: 2,
            root: true,
            timeout_seconds: 60,
            seconds: 12.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::outcome::Exit;
    use crate::conformance::runtimes::Runtime;

    fn outcome(plan: Option<u32>, ok: u32, not_ok: u32, status: Status) -> Outcome {
        Outcome {
            plan,
            ok,
            not_ok,
            skipped: 0,
            exit: Exit::Code(0),
            status,
            evidence: (status != Status::Pass).then(|| "not ok 2 - a | b".into()),
            failures: vec![],
            seconds: 0.5,
        }
    }

    pub fn run(name: &str, command: Result<&str, &str>, outcomes: &[(&str, Outcome)]) -> RuntimeRun {
        RuntimeRun {
            runtime: Runtime {
                name: name.into(),
                command: command.map(Into::into).map_err(Into::into),
                version: Some(format!("{name} version 1")),
                note: None,
            },
            outcomes: outcomes
                .iter()
                .map(|(p, o)| ((*p).to_owned(), o.clone()))
                .collect(),
            leftovers: None,
            seconds: 3.0,
        }
    }

    fn sample() -> Results {
        results_for(
            vec![
                run(
                    "combined",
                    Ok("/w/target/debug/combined"),
                    &[
                        ("create", outcome(None, 0, 0, Status::Error)),
                        ("kill", outcome(Some(5), 3, 2, Status::Fail)),
                    ],
                ),
                run(
                    "runc",
                    Ok("/r"),
                    &[
                        ("create", outcome(Some(4), 4, 0, Status::Pass)),
                        ("kill", outcome(Some(5), 5, 0, Status::Pass)),
                    ],
                ),
                run(
                    "crun",
                    Err("not installed: run `sudo apt-get install -y crun`"),
                    &[],
                ),
            ],
            &["create", "kill"],
        )
    }

    #[test]
    fn cells_show_plan_ok_not_ok_and_the_verdict() {
        assert_eq!(cell(Some(&outcome(Some(5), 3, 2, Status::Fail))), "5/3/2 fail");
        assert_eq!(cell(Some(&outcome(None, 0, 0, Status::Error))), "?/0/0 error");
        assert_eq!(cell(None), "-");
    }

    #[test]
    fn totals_count_clean_programs_and_every_test() {
        let results = sample();
        assert_eq!(
            totals(&results.runs[0]),
            Totals {
                programs: 2,
                clean: 0,
                ok: 3,
                not_ok: 2
            }
        );
        assert_eq!(totals(&results.runs[1]).clean, 2);
        assert_eq!(totals(&results.runs[2]), Totals::default());
    }

    #[test]
    fn the_terminal_table_puts_runtimes_side_by_side_and_says_which_did_not_run() {
        let table = terminal(&sample());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["program", "combined", "runc", "crun"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["create", "?/0/0", "error", "4/4/0", "pass", "-"]
        );
        assert!(table.contains("programs passed cleanly   0 of 2"));
        assert!(table.contains("crun: not run: not installed: run `sudo apt-get install -y crun`"));
        // The columns line up: every runtime's cell starts at the same offset on every row.
        let at = |line: &str| line.find("4/4/0").or_else(|| line.find("runc"));
        assert_eq!(at(lines[0]), at(lines[1]));
    }

    #[test]
    fn the_markdown_table_has_a_row_per_program_totals_and_the_evidence() {
        let text = markdown(&sample());
        assert!(text.starts_with(BEGIN) && text.trim_end().ends_with(END));
        assert!(text.contains("Measured 2025-01-01 at workspace commit `abc1234-dirty`, on Linux"));
        assert!(text.contains("| program | combined | runc | crun | not the runtime's |"));
        assert!(text.contains("| kill | 5/3/2 fail | 5/5/0 pass | - |  |"));
        assert!(text.contains("| **programs passed cleanly** | 0 of 2 | 2 of 2 | - | |"));
        // Pipes in evidence would split a table cell or a list line: they are replaced.
        assert!(text.contains("- kill: `not ok 2 - a / b`"));
        assert!(text.contains("| crun | crun version 1 | not run: not installed"));
        // Paths in the workspace are shown from its root, so the document reads the same anywhere.
        assert!(text.contains("| combined | combined version 1 | `target/debug/combined` |"));
    }

    #[test]
    fn the_markdown_goes_between_the_markers_and_never_over_a_document_without_them() {
        let generated = format!("{BEGIN}\nnew\n{END}\n");
        assert_eq!(splice(None, &generated).unwrap(), generated);
        let document = format!("# Title\n\nprose\n\n{BEGIN}\nold\n{END}\n\nmore prose\n");
        assert_eq!(
            splice(Some(&document), &generated).unwrap(),
            format!("# Title\n\nprose\n\n{BEGIN}\nnew\n{END}\n\nmore prose\n")
        );
        assert!(splice(Some("# prose only\n"), &generated).is_err());
    }

    #[test]
    fn the_json_has_every_outcome_and_the_totals() {
        let value = json(&sample());
        assert_eq!(value["runtimes"][0]["programs"]["kill"]["status"], "fail");
        assert_eq!(value["runtimes"][1]["totals"]["clean"], 2);
        assert_eq!(
            value["runtimes"][2]["not_run"],
            "not installed: run `sudo apt-get install -y crun`"
        );
        assert_eq!(value["suite"]["programs"], serde_json::json!(["create", "kill"]));
    }
}
