//! `cargo xtask bench --breakdown`: where one `combined run` spends its time, step by step. The
//! benchmark runs combined with `COMBINED_TIMINGS` naming a file, into which each of combined's
//! processes appends a line per set-up step (`combined/src/timings.rs`: label, start and end on
//! CLOCK_MONOTONIC, clock_gettime(2)); the benchmark's own fork and the return of its wait4 are on the
//! same clock. Per step: the median over the runs of when it began (from the fork) and of how long it
//! took, with the stretches no step covers (the launcher's execve, the command's run, the exits)
//! derived from their neighbours.
//!
//! Then the same steps with many containers started at once (`measure_at_once`): which of them
//! stretch when containers contend for the kernel's machine-wide locks (the mount namespace's, the
//! network's) and for the CPUs. The lines of concurrent containers cannot be told apart (a
//! container's first process is PID 1 in its own namespace), so there each step's figure is the
//! median of its records times the records a container writes.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::runner;
use super::stats::Summary;

/// One step's figures over the runs.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub label: String,
    /// When it began, from the benchmark's fork (median).
    pub at_ms: f64,
    /// How long it took, summed over its records in a run (median).
    pub ms: f64,
}

/// The breakdown: the steps in the order they happen, and the runs' wall time.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    pub steps: Vec<StepRow>,
    pub wall_ms: Summary,
}

/// One run's records: each label's first start and total time, in ns, plus the run's own span.
#[derive(Debug, Default)]
struct Run {
    steps: HashMap<String, (u64, u64)>,
    first_end: HashMap<String, u64>,
    order: Vec<String>,
}

/// The gaps between steps that are named: a label, from where, to where. `fork` and `wait4` are the
/// benchmark's; `X.start`/`X.end` a step's first start and first end.
const DERIVED: [(&str, &str, &str); 4] = [
    ("launcher:execve", "fork", "parent:main.start"),
    ("command:run", "command:execve.start", "init:wait.end"),
    ("init:exit", "init:wait.end", "parent:supervise.end"),
    ("launcher:exit", "parent:supervise.end", "wait4"),
];

/// Runs `argv` (combined) `warmup + runs` times with timings on, and summarizes the measured runs.
pub fn measure(argv: &[String], work: &Path, warmup: usize, runs: usize) -> anyhow::Result<Breakdown> {
    let file = work.join("timings.txt");
    let mut parsed = Vec::new();
    let mut walls = Vec::new();
    for round in 0..warmup + runs {
        let _ = std::fs::remove_file(&file);
        // SAFETY: the benchmark is single-threaded (it unshared its mount namespace, which a
        // multi-threaded process cannot), so no other thread reads the environment meanwhile.
        unsafe { std::env::set_var("COMBINED_TIMINGS", &file) };
        let measured = runner::measure_span(argv);
        // SAFETY: as above.
        unsafe { std::env::remove_var("COMBINED_TIMINGS") };
        let (sample, (fork, wait4)) = measured?;
        if round < warmup {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("combined wrote no {}", file.display()))?;
        parsed.push(parse(&text, fork, wait4));
        walls.push(sample.wall_ms);
    }
    let _ = std::fs::remove_file(&file);
    Ok(Breakdown {
        steps: summarize(&parsed),
        wall_ms: Summary::of(&walls).context("no runs")?,
    })
}

/// One step's time per container, alone and with many at once.
#[derive(Clone, Debug, PartialEq)]
pub struct AtOnceRow {
    pub label: String,
    /// Median per run, one container at a time ([`Breakdown`]'s figure).
    pub alone_ms: f64,
    /// With `AtOnce::containers` started together: the median record times records per container.
    pub at_once_ms: f64,
}

/// The steps of containers started together, against the same steps alone.
#[derive(Clone, Debug, PartialEq)]
pub struct AtOnce {
    pub containers: usize,
    pub rows: Vec<AtOnceRow>,
}

/// Starts `count` copies of `argv` (combined) at once, `rounds` times, with timings on, and sets
/// each step's figure beside the one-at-a-time figure of `alone`.
pub fn measure_at_once(
    argv: &[String],
    work: &Path,
    count: usize,
    rounds: usize,
    alone: &Breakdown,
) -> anyhow::Result<AtOnce> {
    let file = work.join("timings-at-once.txt");
    let mut text = String::new();
    for _ in 0..rounds {
        let _ = std::fs::remove_file(&file);
        // SAFETY: as in `measure`: the benchmark is single-threaded.
        unsafe { std::env::set_var("COMBINED_TIMINGS", &file) };
        let measured = runner::measure_concurrent(argv, None, count);
        // SAFETY: as above.
        unsafe { std::env::remove_var("COMBINED_TIMINGS") };
        measured?;
        text += &std::fs::read_to_string(&file)
            .with_context(|| format!("combined wrote no {}", file.display()))?;
    }
    let _ = std::fs::remove_file(&file);
    Ok(AtOnce {
        containers: count,
        rows: per_container(&text, count * rounds, alone),
    })
}

/// Each step of `alone` that the concurrent lines in `text` (of `containers` containers) also have:
/// the median of its records, times its records per container.
fn per_container(text: &str, containers: usize, alone: &Breakdown) -> Vec<AtOnceRow> {
    let mut records: HashMap<&str, Vec<f64>> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, label, start, end] = fields.as_slice() {
            if let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>()) {
                records
                    .entry(label)
                    .or_default()
                    .push(end.saturating_sub(start) as f64 / 1e6);
            }
        }
    }
    alone
        .steps
        .iter()
        .filter_map(|step| {
            let times = records.get(step.label.as_str())?;
            let per_container = (times.len() as f64 / containers.max(1) as f64).round().max(1.0);
            Some(AtOnceRow {
                label: step.label.clone(),
                alone_ms: step.ms,
                at_once_ms: Summary::of(times)?.median * per_container,
            })
        })
        .collect()
}

/// Parses one run's lines (`<pid> <label> <start ns> <end ns>`), with the benchmark's fork and
/// wait4 as the instants `fork` and `wait4`, then adds the [`DERIVED`] gaps.
fn parse(text: &str, fork: u64, wait4: u64) -> Run {
    let mut run = Run::default();
    let add = |run: &mut Run, label: &str, start: u64, end: u64| {
        let entry = run.steps.entry(label.to_owned()).or_insert_with(|| (start, 0));
        entry.0 = entry.0.min(start);
        entry.1 += end.saturating_sub(start);
        run.first_end.entry(label.to_owned()).or_insert(end);
        if !run.order.iter().any(|l| l == label) {
            run.order.push(label.to_owned());
        }
    };
    add(&mut run, "fork", fork, fork);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, label, start, end] = fields.as_slice() {
            if let (Ok(start), Ok(end)) = (start.parse(), end.parse()) {
                add(&mut run, label, start, end);
            }
        }
    }
    add(&mut run, "wait4", wait4, wait4);
    for (label, from, to) in DERIVED {
        if let (Some(from), Some(to)) = (instant(&run, from), instant(&run, to)) {
            add(&mut run, label, from, to.max(from));
        }
    }
    run
}

/// `label.start`, `label.end` or a bare instant's label, in one run.
fn instant(run: &Run, name: &str) -> Option<u64> {
    match name.rsplit_once('.') {
        Some((label, "start")) => run.steps.get(label).map(|s| s.0),
        Some((label, "end")) => run.first_end.get(label).copied(),
        _ => run.steps.get(name).map(|s| s.0),
    }
}

/// Each label's medians over the runs, in the order of when it began; the instants `fork` and
/// `wait4` are left out (the wall time says it).
fn summarize(runs: &[Run]) -> Vec<StepRow> {
    let mut labels: Vec<&String> = Vec::new();
    for run in runs {
        for label in &run.order {
            if !labels.contains(&label) && label != "fork" && label != "wait4" {
                labels.push(label);
            }
        }
    }
    let mut rows: Vec<StepRow> = labels
        .into_iter()
        .filter_map(|label| {
            let (at, ms): (Vec<f64>, Vec<f64>) = runs
                .iter()
                .filter_map(|run| {
                    let fork = run.steps.get("fork")?.0;
                    let (start, total) = run.steps.get(label)?;
                    Some((start.saturating_sub(fork) as f64 / 1e6, *total as f64 / 1e6))
                })
                .unzip();
            Some(StepRow {
                label: label.clone(),
                at_ms: Summary::of(&at)?.median,
                ms: Summary::of(&ms)?.median,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    rows
}

/// The table: each step, when it began and how long it took.
pub fn table(breakdown: &Breakdown) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{:<22} {:>8} {:>8}", "step", "at ms", "ms");
    for row in &breakdown.steps {
        let _ = writeln!(out, "{:<22} {:>8.3} {:>8.3}", row.label, row.at_ms, row.ms);
    }
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>8.3}",
        "(wall, fork to wait4)", "", breakdown.wall_ms.median
    );
    out
}

/// The table of steps alone and at once, with how many times longer each took.
pub fn at_once_table(at_once: &AtOnce) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let heading = format!("{} at once", at_once.containers);
    let _ = writeln!(out, "{:<22} {:>8} {:>12} {:>6}", "step", "alone ms", heading, "x");
    for row in &at_once.rows {
        let ratio = if row.alone_ms > 0.0 {
            row.at_once_ms / row.alone_ms
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{:<22} {:>8.3} {:>12.3} {:>6.1}",
            row.label, row.alone_ms, row.at_once_ms, ratio
        );
    }
    out
}

pub fn at_once_json(at_once: &AtOnce) -> Value {
    json!({
        "containers": at_once.containers,
        "steps": at_once.rows.iter().map(|r| json!({ "step": r.label, "alone_ms": r.alone_ms, "at_once_ms": r.at_once_ms })).collect::<Vec<_>>(),
    })
}

pub fn json(breakdown: &Breakdown) -> Value {
    json!({
        "wall_ms": breakdown.wall_ms.to_json(),
        "steps": breakdown.steps.iter().map(|s| json!({ "step": s.label, "at_ms": s.at_ms, "ms": s.ms })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
10 parent:main 1000 1000
10 parent:plan 1100 1300
1 child:masks 1400 1500
1 child:masks 1600 1650
2 command:execve 1700 1700
1 init:wait 1650 1900
10 parent:supervise 1350 2000
";

    #[test]
    fn steps_are_summed_and_gaps_derived() {
        let run = parse(RUN, 900, 2100);
        assert_eq!(
            run.steps["child:masks"],
            (1400, 150),
            "both records, from the first start"
        );
        assert_eq!(run.steps["launcher:execve"], (900, 100));
        assert_eq!(run.steps["command:run"], (1700, 200));
        assert_eq!(run.steps["init:exit"], (1900, 100));
        assert_eq!(run.steps["launcher:exit"], (2000, 100));
    }

    #[test]
    fn at_once_each_step_is_its_median_record_times_records_per_container() {
        let alone = Breakdown {
            steps: summarize(&[parse(RUN, 900, 2100)]),
            wall_ms: Summary::of(&[1.2e-3]).unwrap(),
        };
        // Two containers: masks twice each (100 to 400 ns), plan once each (200 and 600 ns).
        let text = "1 child:masks 0 100\n1 child:masks 0 200\n1 child:masks 0 300\n1 child:masks 0 400\n\
                    9 parent:plan 0 200\n8 parent:plan 0 600\n";
        let rows = per_container(text, 2, &alone);
        let masks = rows.iter().find(|r| r.label == "child:masks").unwrap();
        assert!((masks.at_once_ms - 2.0 * 250e-6).abs() < 1e-12, "{masks:?}");
        assert_eq!(masks.alone_ms, 150e-6);
        let plan = rows.iter().find(|r| r.label == "parent:plan").unwrap();
        assert!((plan.at_once_ms - 400e-6).abs() < 1e-12, "{plan:?}");
        assert!(
            rows.iter().all(|r| r.label != "launcher:execve"),
            "a derived gap has no records"
        );
        let table = at_once_table(&AtOnce { containers: 2, rows });
        assert!(table.contains("2 at once"), "{table}");
    }

    #[test]
    fn rows_come_in_the_order_they_began() {
        let runs = [parse(RUN, 900, 2100), parse(RUN, 900, 2100)];
        let rows = summarize(&runs);
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels.first(), Some(&"launcher:execve"));
        assert_eq!(labels.last(), Some(&"launcher:exit"));
        let masks = rows.iter().find(|r| r.label == "child:masks").unwrap();
        assert_eq!(masks.ms, 150e-6);
        assert_eq!(masks.at_ms, 500e-6);
        let table = table(&Breakdown {
            steps: rows,
            wall_ms: Summary::of(&[1.2e-3]).unwrap(),
        });
        assert!(table.contains("child:masks"), "{table}");
    }
}
