//! Exercise user-maps: the parent's half of the handshake, the three files it writes for a child
//! that waits in a new user namespace with no map (user_namespaces(7) "Defining user and group ID
//! mappings: writing to uid_map and gid_map").

use std::fs;
use std::io;

use nix::unistd::Pid;

// ANCHOR: exercise
/// Maps uid 0 and gid 0 of `child`'s user namespace to the writer's own `uid` and `gid`. The writer is
/// unprivileged (the test gives up root first, when it has it), so the rules for an ordinary user
/// apply: one line per map, naming only the writer's own ids, and `setgroups` denied before `gid_map`.
pub fn write_maps(child: Pid, uid: u32, gid: u32) -> io::Result<()> {
    // Your code here: three `fs::write` calls, each file written once, in one write(2), in the right
    // order: `/proc/<child>/setgroups`, `gid_map`, `uid_map`. A map line is
    // `<first id inside> <first id outside> <count>`.
    Err(io::Error::other("not written yet: write_maps"))
}
// ANCHOR_END: exercise
