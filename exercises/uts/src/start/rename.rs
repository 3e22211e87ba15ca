//! Exercise uts-rename: a child with a UTS namespace of its own names itself, and the host keeps its
//! names (sethostname(2), setdomainname(2), uts_namespaces(7)).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::unistd::sethostname;

// ANCHOR: exercise
/// Sets the hostname and the NIS domain name of the caller's UTS namespace. The tests call it in a
/// child cloned with `CLONE_NEWUTS`, so only the child's namespace changes.
pub fn rename(hostname: &str, domainname: &str) -> Result<(), Errno> {
    // Your code here. nix has `sethostname`; for the domain name there is no wrapper: call
    // `libc::setdomainname(pointer, length)` in an `unsafe` block with a `// SAFETY:` comment that says
    // why the call is sound, and turn its return value into a Result with `Errno::result`.
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
