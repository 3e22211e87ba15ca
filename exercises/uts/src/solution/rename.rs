//! Solution to uts-rename: `sethostname(2)` through nix, `setdomainname(2)` through libc, which nix does
//! not wrap (uts_namespaces(7)).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::unistd::sethostname;

// ANCHOR: solution
/// Sets the hostname and the NIS domain name of the caller's UTS namespace. The tests call it in a
/// child cloned with `CLONE_NEWUTS`, so only the child's namespace changes.
pub fn rename(hostname: &str, domainname: &str) -> Result<(), Errno> {
    sethostname(hostname)?;
    let bytes = OsStr::new(domainname).as_bytes();
    // SAFETY: setdomainname(2) reads exactly `bytes.len()` bytes from a pointer valid for that length;
    // it needs no NUL terminator and keeps no reference after returning.
    let rc = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
    Errno::result(rc).map(drop)
}
// ANCHOR_END: solution
