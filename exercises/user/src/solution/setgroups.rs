//! Solution to user-setgroups: the handshake as it was, `setgroups` denied first (user_namespaces(7)
//! "The /proc/[pid]/setgroups file").

use crate::MapFile;

// ANCHOR: solution
/// The writes of the handshake, in the order the test makes them, each to `/proc/<child>/<file>`,
/// by a writer that holds no capability outside the child's namespace.
pub fn handshake() -> Vec<MapFile> {
    vec![MapFile::SetgroupsDeny, MapFile::GidMap, MapFile::UidMap]
}
// ANCHOR_END: solution
