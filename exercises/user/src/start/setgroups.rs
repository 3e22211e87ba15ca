//! Exercise user-setgroups, break it: an unprivileged writer must deny setgroups(2) in the child's
//! namespace before it may write the child's gid_map (user_namespaces(7) "Interaction with system
//! calls that change process UIDs or GIDs", "The /proc/[pid]/setgroups file").

use crate::MapFile;

// ANCHOR: exercise
/// The writes of the handshake, in the order the test makes them, each to `/proc/<child>/<file>`,
/// by a writer that holds no capability outside the child's namespace.
pub fn handshake() -> Vec<MapFile> {
    vec![MapFile::SetgroupsDeny, MapFile::GidMap, MapFile::UidMap]
}
// ANCHOR_END: exercise
