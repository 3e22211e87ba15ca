//! Exercise cgroup-ns, break it: a new cgroup namespace's root is the cgroup its creator is in at that
//! moment, and `/proc/<pid>/cgroup` shows paths relative to that root (cgroup_namespaces(7)).

use crate::Step;

// ANCHOR: exercise
/// The order in which the test's child joins the test's new cgroup and unshares its cgroup namespace.
/// Afterwards it reads its own `/proc/self/cgroup`.
pub fn order() -> Vec<Step> {
    vec![Step::JoinCgroup, Step::UnshareCgroupNs]
}
// ANCHOR_END: exercise
