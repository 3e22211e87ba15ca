//! Solution to user-maps: `setgroups` denied, then one line in `gid_map`, then one in `uid_map`
//! (user_namespaces(7) "Defining user and group ID mappings: writing to uid_map and gid_map").

use std::fs;
use std::io;

use nix::unistd::Pid;

// ANCHOR: solution
/// Maps uid 0 and gid 0 of `child`'s user namespace to the writer's own `uid` and `gid`. The writer is
/// unprivileged (the test gives up root first, when it has it), so the rules for an ordinary user
/// apply: one line per map, naming only the writer's own ids, and `setgroups` denied before `gid_map`.
pub fn write_maps(child: Pid, uid: u32, gid: u32) -> io::Result<()> {
    let file = |name: &str| format!("/proc/{child}/{name}");
    // Without CAP_SETGID over the parent namespace, gid_map is refused while setgroups(2) is still
    // allowed inside: the child could otherwise drop a group that denies it access on the host.
    fs::write(file("setgroups"), "deny")?;
    fs::write(file("gid_map"), format!("0 {gid} 1\n"))?;
    fs::write(file("uid_map"), format!("0 {uid} 1\n"))
}
// ANCHOR_END: solution
