//! What the benchmark prints and saves: aligned tables for the terminal (and, pasted as they are,
//! for BENCHMARKS.md) and one JSON document with every figure.

use std::fmt::Write;

use serde_json::{Value, json};

use super::stats::{Summary, pairwise_ratio};

/// One launcher's sequential runs, summarized.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub argv: Vec<String>,
    pub note: String,
    pub wall_ms: Summary,
    pub cpu_ms: Summary,
    pub rss_mib: Summary,
    /// Median of this launcher's wall time over combined's, pair by pair.
    pub vs_combined: Option<f64>,
    /// The sum of the wall times: what `runs` sequential containers took.
    pub total_ms: f64,
    /// Most processes of one run that outlived the launcher (reaped, and counted, by the benchmark).
    pub orphans: u32,
}

impl Row {
    /// Summarizes one launcher's samples; `combined_wall` are combined's, run by run.
    pub fn new(
        name: &str,
        argv: &[String],
        note: &str,
        samples: &[super::runner::Sample],
        combined_wall: &[f64],
    ) -> Option<Row> {
        let wall: Vec<f64> = samples.iter().map(|s| s.wall_ms).collect();
        let cpu: Vec<f64> = samples.iter().map(|s| s.cpu_ms).collect();
        let rss: Vec<f64> = samples.iter().map(|s| s.rss_kib as f64 / 1024.0).collect();
        Some(Row {
            name: name.to_owned(),
            argv: argv.to_vec(),
            note: note.to_owned(),
            wall_ms: Summary::of(&wall)?,
            cpu_ms: Summary::of(&cpu)?,
            rss_mib: Summary::of(&rss)?,
            vs_combined: pairwise_ratio(&wall, combined_wall),
            total_ms: wall.iter().sum(),
            orphans: samples.iter().map(|s| s.orphans).max().unwrap_or(0),
        })
    }
}

/// N containers started at once, for one launcher.
#[derive(Clone, Debug, PartialEq)]
pub struct ConcurrentRow {
    pub name: String,
    pub containers: usize,
    /// From the first fork to the last exit, over the rounds.
    pub batch_ms: Summary,
    pub cpu_ms_per_container: f64,
    pub rss_mib_max: f64,
}

/// One namespace kind alone, measured with the floor program.
#[derive(Clone, Debug, PartialEq)]
pub struct NamespaceRow {
    pub kind: String,
    pub wall_ms: Summary,
    /// Median over runs of (this kind's wall − the baseline's wall), pair by pair.
    pub added_ms: Option<f64>,
}

/// The sequential comparison. `runs` names the total column.
pub fn sequential_table(rows: &[Row], runs: usize) -> String {
    let mut out = String::new();
    let total = format!("{runs} runs");
    let w = name_width(rows);
    let _ = writeln!(
        out,
        "{:<w$} {:>8} {:>7} {:>7} {:>8} {:>8} {:>12} {:>9}",
        "launcher", "wall ms", "min", "max", "cpu ms", "RSS MiB", "vs combined", total
    );
    for row in rows {
        let ratio = row.vs_combined.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            out,
            "{:<w$} {:>8.2} {:>7.2} {:>7.2} {:>8.2} {:>8.2} {:>12} {:>7.2} s",
            row.name,
            row.wall_ms.median,
            row.wall_ms.min,
            row.wall_ms.max,
            row.cpu_ms.median,
            row.rss_mib.max,
            ratio,
            row.total_ms / 1e3
        );
    }
    out
}

/// The width of the sequential table's first column: its longest name, at least 16.
pub fn name_width(rows: &[Row]) -> usize {
    rows.iter().map(|row| row.name.len()).max().unwrap_or(0).max(16)
}

/// How the cost grows with the number of containers started at once.
pub fn concurrent_table(rows: &[ConcurrentRow]) -> String {
    let mut out = String::new();
    let w = rows.iter().map(|row| row.name.len()).max().unwrap_or(0).max(10);
    let _ = writeln!(
        out,
        "{:<w$} {:>10} {:>10} {:>7} {:>7} {:>14} {:>14} {:>8}",
        "launcher", "containers", "batch ms", "min", "max", "ms/container", "cpu ms/cont.", "RSS MiB"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<w$} {:>10} {:>10.1} {:>7.1} {:>7.1} {:>14.2} {:>14.2} {:>8.2}",
            row.name,
            row.containers,
            row.batch_ms.median,
            row.batch_ms.min,
            row.batch_ms.max,
            row.batch_ms.median / row.containers as f64,
            row.cpu_ms_per_container,
            row.rss_mib_max
        );
    }
    out
}

/// What each namespace kind adds to a bare clone + exec + wait.
pub fn namespace_table(rows: &[NamespaceRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>7} {:>7} {:>10}",
        "namespace", "wall ms", "min", "max", "added ms"
    );
    for row in rows {
        let added = row.added_ms.map_or("-".to_owned(), |a| format!("{a:+.2}"));
        let _ = writeln!(
            out,
            "{:<10} {:>8.2} {:>7.2} {:>7.2} {:>10}",
            row.kind, row.wall_ms.median, row.wall_ms.min, row.wall_ms.max, added
        );
    }
    out
}

pub fn row_json(row: &Row) -> Value {
    json!({
        "launcher": row.name,
        "argv": row.argv,
        "note": row.note,
        "wall_ms": row.wall_ms.to_json(),
        "cpu_ms": row.cpu_ms.to_json(),
        "peak_rss_mib": row.rss_mib.to_json(),
        "wall_vs_combined": row.vs_combined,
        "total_ms": row.total_ms,
        "orphans_per_run": row.orphans,
    })
}

pub fn concurrent_json(row: &ConcurrentRow) -> Value {
    json!({
        "launcher": row.name,
        "containers": row.containers,
        "batch_ms": row.batch_ms.to_json(),
        "ms_per_container": row.batch_ms.median / row.containers as f64,
        "cpu_ms_per_container": row.cpu_ms_per_container,
        "peak_rss_mib": row.rss_mib_max,
    })
}

pub fn namespace_json(row: &NamespaceRow) -> Value {
    json!({ "namespaces": row.kind, "wall_ms": row.wall_ms.to_json(), "added_ms": row.added_ms })
}

#[cfg(test)]
mod tests {
    use super::super::runner::Sample;
    use super::*;

    fn samples(walls: &[f64]) -> Vec<Sample> {
        walls
            .iter()
            .map(|w| Sample {
                wall_ms: *w,
                cpu_ms: w / 2.0,
                rss_kib: 2048,
                orphans: 0,
            })
            .collect()
    }

    fn rows() -> Vec<Row> {
        let combined = [2.0, 3.0, 2.5];
        let argv = vec!["x".to_owned()];
        vec![
            Row::new("combined", &argv, "", &samples(&combined), &combined).unwrap(),
            Row::new("bwrap", &argv, "", &samples(&[4.0, 6.0, 6.0]), &combined).unwrap(),
        ]
    }

    #[test]
    fn a_row_summarizes_its_runs() {
        let rows = rows();
        assert_eq!(rows[0].vs_combined, Some(1.0));
        assert_eq!(rows[1].vs_combined, Some(2.0), "pairs 2.0, 2.0, 2.4");
        assert_eq!(rows[1].wall_ms.median, 6.0);
        assert_eq!(rows[1].total_ms, 16.0);
        assert_eq!(rows[1].rss_mib.max, 2.0);
        assert_eq!(Row::new("none", &[], "", &[], &[]), None);
    }

    #[test]
    fn sequential_table_is_aligned() {
        let table = sequential_table(&rows(), 3);
        let expected = "\
launcher          wall ms     min     max   cpu ms  RSS MiB  vs combined    3 runs
combined             2.50    2.00    3.00     1.25     2.00        1.00x    0.01 s
bwrap                6.00    4.00    6.00     3.00     2.00        2.00x    0.02 s
";
        assert_eq!(table, expected);
    }

    #[test]
    fn concurrent_and_namespace_tables() {
        let row = ConcurrentRow {
            name: "floor".into(),
            containers: 10,
            batch_ms: Summary::of(&[20.0, 30.0, 25.0]).unwrap(),
            cpu_ms_per_container: 1.5,
            rss_mib_max: 1.25,
        };
        let table = concurrent_table(std::slice::from_ref(&row));
        assert_eq!(
            table.lines().nth(1).unwrap(),
            "floor              10       25.0    20.0    30.0           2.50           1.50     1.25"
        );
        assert_eq!(concurrent_json(&row)["ms_per_container"], 2.5);
        let ns = [
            NamespaceRow {
                kind: "none".into(),
                wall_ms: Summary::of(&[1.0]).unwrap(),
                added_ms: None,
            },
            NamespaceRow {
                kind: "net".into(),
                wall_ms: Summary::of(&[1.5]).unwrap(),
                added_ms: Some(0.5),
            },
        ];
        let table = namespace_table(&ns);
        assert!(
            table.contains("none           1.00    1.00    1.00          -\n"),
            "{table}"
        );
        assert!(
            table.contains("net            1.50    1.50    1.50      +0.50\n"),
            "{table}"
        );
        assert_eq!(namespace_json(&ns[1])["added_ms"], 0.5);
    }

    #[test]
    fn json_carries_every_figure() {
        let json = row_json(&rows()[1]);
        assert_eq!(json["launcher"], "bwrap");
        assert_eq!(json["wall_ms"]["median"], 6.0);
        assert_eq!(json["wall_ms"]["min"], 4.0);
        assert_eq!(json["cpu_ms"]["max"], 3.0);
        assert_eq!(json["wall_vs_combined"], 2.0);
        assert_eq!(json["total_ms"], 16.0);
    }
}
