//! Solution to cgroup-ns: the order as it was, the cgroup joined first, so that it becomes the
//! namespace's root (cgroup_namespaces(7)).

use crate::Step;

// ANCHOR: solution
/// The order in which the test's child joins the test's new cgroup and unshares its cgroup namespace.
/// Afterwards it reads its own `/proc/self/cgroup`.
pub fn order() -> Vec<Step> {
    vec![Step::JoinCgroup, Step::UnshareCgroupNs]
}
// ANCHOR_END: solution
