//! Exercise combined-caps: the container's root keeps only the capabilities it was granted, dropped
//! in the order runc, crun and youki use (capabilities(7), prctl(2) PR_CAPBSET_DROP).

use caps::errors::CapsError;
use caps::{CapSet, CapsHashSet};

// ANCHOR: exercise
/// Runs in the container, as its root, just before execve: afterwards the bounding, effective and
/// permitted sets are exactly `keep`, and the inheritable and ambient sets are empty.
pub fn drop_to(keep: &CapsHashSet) -> Result<(), CapsError> {
    // Your code here, in this order:
    // 1. the bounding set: `caps::drop(None, CapSet::Bounding, cap)` for every cap of `caps::all()`
    //    that is not in `keep` (skip the ones `caps::has_cap` says are not there: an older kernel
    //    does not know the newest);
    // 2. the ambient and inheritable sets: `caps::clear`;
    // 3. the effective, then the permitted set: `caps::set(None, CapSet::Effective, keep)`.
    // Why must the bounding set come first? (Which capability does PR_CAPBSET_DROP need, and does
    // `--cap-drop ALL` keep it?)
    Err(CapsError::from("drop_to is not written yet"))
}
// ANCHOR_END: exercise
