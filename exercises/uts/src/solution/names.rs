//! Solution to uts-names: `uname(2)` for the names, the inode of `/proc/self/ns/uts` for the
//! namespace (namespaces(7) "The /proc/[pid]/ns/ directory").

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use nix::sys::utsname::uname;

use crate::Names;

// ANCHOR: solution
/// Reads the hostname and NIS domain name of the caller's UTS namespace, and the inode number of
/// `/proc/self/ns/uts`, which identifies the namespace.
pub fn read_names() -> io::Result<Names> {
    let uts = uname()?;
    Ok(Names {
        hostname: uts.nodename().to_string_lossy().into_owned(),
        domainname: uts.domainname().to_string_lossy().into_owned(),
        // `metadata` follows the magic link to the namespace's file in nsfs: its inode is the
        // namespace's identity, the number `readlink` prints in `uts:[...]`.
        uts_inode: fs::metadata("/proc/self/ns/uts")?.ino(),
    })
}
// ANCHOR_END: solution
