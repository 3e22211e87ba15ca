//! Solution to combined-keyring: KEYCTL_JOIN_SESSION_KEYRING with a null name, as runc does and as
//! the launcher's keyring step does (keyrings(7), keyctl(2)).

use nix::errno::Errno;

// ANCHOR: solution
/// Runs in the container right after it takes its ids: replaces the session keyring it inherited
/// from the launcher with a new, empty one.
pub fn join_fresh_session_keyring() -> Result<(), Errno> {
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a null name reads no memory; it only replaces this
    // process's session keyring with a new anonymous one.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::c_long::from(libc::KEYCTL_JOIN_SESSION_KEYRING),
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(rc).map(drop)
}
// ANCHOR_END: solution
