//! What the cgroup chapter's two test files share: the delegation gate, and a count of the cgroup
//! directories this chapter makes, to compare before and after.

// Each test file uses part of this module.
#![allow(dead_code)]

use std::path::Path;

use cgroup_demo::{Controller, Hierarchies, Placement};
use nskit::testing;

/// Where this process would make cgroups (memory, pids, cpu).
pub fn placement() -> Placement {
    let h = Hierarchies::read().expect("read the cgroup mounts");
    Placement::own(&h, &Controller::ALL).expect("find this process's cgroups")
}

/// The gate for tests that make cgroups: root, or a delegated subtree. Returns false (and says why)
/// when this process may not, or panics under `NS_REQUIRE_PRIV=1`.
pub fn delegated(test: &str) -> bool {
    let refused = placement().check_access().err();
    let why = refused.map(|e| e.to_string()).unwrap_or_default();
    testing::gate(
        why.is_empty(),
        test,
        &format!("needs a cgroup it may create: {why}"),
    )
}

/// The directories named `cgroup-demo*` at or below (three levels deep) each parent where this
/// process makes cgroups: a test that makes one must leave the count as it found it.
pub fn demo_cgroups() -> usize {
    placement().parents.iter().map(|p| count_below(&p.path, 3)).sum()
}

fn count_below(dir: &Path, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let own = usize::from(e.file_name().to_string_lossy().starts_with("cgroup-demo"));
            own + count_below(&e.path(), depth - 1)
        })
        .sum()
}

/// A cgroup name no other test (or run) uses.
pub fn unique(what: &str) -> String {
    format!("cgroup-demo-test-{}-{what}", std::process::id())
}
