//! Solution to combined-caps: the bounding set first, while CAP_SETPCAP is still effective, then the
//! process's own sets (capabilities(7), prctl(2) PR_CAPBSET_DROP).

use caps::errors::CapsError;
use caps::{CapSet, CapsHashSet};

// ANCHOR: solution
/// Runs in the container, as its root, just before execve: afterwards the bounding, effective and
/// permitted sets are exactly `keep`, and the inheritable and ambient sets are empty.
pub fn drop_to(keep: &CapsHashSet) -> Result<(), CapsError> {
    // PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set: once the effective set is `keep`,
    // which lacks it, the bounding set can no longer be lowered.
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)?;
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    // Effective before permitted: the effective set must always be a subset of the permitted one.
    caps::set(None, CapSet::Effective, keep)?;
    caps::set(None, CapSet::Permitted, keep)
}
// ANCHOR_END: solution
