//! Drawing nested PID namespaces as a tree, one column per level, so that a glance shows which
//! namespaces see which process (pid_namespaces(7), "Nesting PID namespaces").
//!
//! A process has a PID in its own namespace and in every ancestor of it, and in no other: the columns
//! to the right of its own level are empty (`-`).

use crate::steps::nesting::{NestedTree, TreeProcess};
use nskit::NsId;

/// The tree's lines: a header, then one row per process with its name (indented under its parent),
/// its PID at each nested level, the namespace it lives in, and last its PID on the host. The host's
/// PIDs come last so that nothing is aligned on their width, which varies from machine to machine.
pub fn draw(tree: &NestedTree) -> Vec<String> {
    let levels = tree.processes.iter().map(TreeProcess::level).max().unwrap_or(0);
    let names: Vec<String> = branches(&tree.processes)
        .into_iter()
        .zip(&tree.processes)
        .map(|(branch, p)| format!("{branch}{}", p.name))
        .collect();
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max(7);
    let headers: Vec<String> = (1..=levels).map(|l| format!("L{l}")).collect();
    let widths: Vec<usize> = (1..=levels)
        .map(|l| {
            let widest = tree
                .processes
                .iter()
                .filter_map(|p| p.nspid.get(l))
                .map(|pid| pid.to_string().len());
            widest.max().unwrap_or(1).max(headers[l - 1].len())
        })
        .collect();
    let namespaces: Vec<String> = tree
        .processes
        .iter()
        .map(|p| namespace_of(tree, p).map_or(String::new(), |ns| ns.to_string()))
        .collect();
    let ns_width = namespaces.iter().map(String::len).max().unwrap_or(0).max(9);

    let mut lines = vec![format!(
        "{:name_width$}  {}  {:ns_width$}  host",
        "process",
        cells(&headers, &widths),
        "namespace"
    )];
    for ((name, p), ns) in names.iter().zip(&tree.processes).zip(&namespaces) {
        let pids: Vec<String> = (1..=levels)
            .map(|l| p.nspid.get(l).map_or("-".to_owned(), i32::to_string))
            .collect();
        let pad = name_width - name.chars().count();
        lines.push(format!(
            "{name}{:pad$}  {}  {ns:ns_width$}  {}",
            "",
            cells(&pids, &widths),
            p.host_pid
        ));
    }
    lines
}

/// Right-aligned cells, two spaces apart.
fn cells(values: &[String], widths: &[usize]) -> String {
    values
        .iter()
        .zip(widths)
        .map(|(v, &w)| format!("{v:>w$}"))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The namespace a process lives in: the host's, or the one its level's init reported.
fn namespace_of(tree: &NestedTree, p: &TreeProcess) -> Option<NsId> {
    match p.level() {
        0 => Some(tree.host_ns),
        level => tree.views.iter().find(|v| v.level == level).map(|v| v.ns),
    }
}

/// The `├─ `, `└─ ` and `│  ` prefixes that draw each process under its parent. `processes` is in
/// depth-first order (parents before children), as `descendants_of` returns it.
fn branches(processes: &[TreeProcess]) -> Vec<String> {
    let parent_index = |i: usize| {
        processes[..i]
            .iter()
            .rposition(|q| q.host_pid == processes[i].host_ppid)
    };
    let is_last_child = |i: usize| {
        let parent = processes[i].host_ppid;
        !processes[i + 1..].iter().any(|q| q.host_ppid == parent)
    };
    let mut prefixes: Vec<String> = Vec::with_capacity(processes.len());
    // For each process, the prefix its own children continue with.
    let mut continuation: Vec<String> = Vec::with_capacity(processes.len());
    for i in 0..processes.len() {
        match parent_index(i) {
            None => {
                prefixes.push(String::new());
                continuation.push(String::new());
            }
            Some(parent) => {
                let last = is_last_child(i);
                let above = &continuation[parent];
                prefixes.push(format!("{above}{}", if last { "└─ " } else { "├─ " }));
                continuation.push(format!("{above}{}", if last { "   " } else { "│  " }));
            }
        }
    }
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LevelView;
    use nskit::ns::Kind;

    fn process(name: &str, host_pid: i32, host_ppid: i32, nspid: &[i32]) -> TreeProcess {
        TreeProcess {
            name: name.into(),
            host_pid,
            host_ppid,
            nspid: nspid.to_vec(),
        }
    }

    fn ns(inode: u64) -> NsId {
        NsId {
            kind: Kind::Pid,
            inode,
        }
    }

    #[test]
    fn two_levels_are_drawn_with_one_column_each() {
        let tree = NestedTree {
            host_ns: ns(10),
            processes: vec![
                process("pid-demo", 100, 50, &[100]),
                process("ns-init", 101, 100, &[101, 1]),
                process("ns-worker", 102, 101, &[102, 2]),
                process("ns-init", 103, 101, &[103, 3, 1]),
                process("ns-worker", 104, 103, &[104, 4, 2]),
            ],
            views: vec![
                LevelView {
                    level: 1,
                    ns: ns(11),
                    getppid: 0,
                    visible: vec![1, 2, 3, 4],
                },
                LevelView {
                    level: 2,
                    ns: ns(12),
                    getppid: 0,
                    visible: vec![1, 2],
                },
            ],
        };
        let drawn = draw(&tree);
        let expected = [
            "process             L1  L2  namespace  host",
            "pid-demo             -   -  pid:[10]   100",
            "└─ ns-init           1   -  pid:[11]   101",
            "   ├─ ns-worker      2   -  pid:[11]   102",
            "   └─ ns-init        3   1  pid:[12]   103",
            "      └─ ns-worker   4   2  pid:[12]   104",
        ];
        assert_eq!(drawn, expected);
    }
}
