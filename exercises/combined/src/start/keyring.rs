//! Exercise combined-keyring: keyrings are not a namespace, so a container joins a session keyring
//! of its own, or it searches the launcher's (keyrings(7), keyctl(2) KEYCTL_JOIN_SESSION_KEYRING).

use nix::errno::Errno;

// ANCHOR: exercise
/// Runs in the container right after it takes its ids: replaces the session keyring it inherited
/// from the launcher with a new, empty one.
pub fn join_fresh_session_keyring() -> Result<(), Errno> {
    // Your code here: one system call, which nix and libc do not wrap:
    // `libc::syscall(libc::SYS_keyctl, libc::c_long::from(libc::KEYCTL_JOIN_SESSION_KEYRING), name)`,
    // where a null `name` (`std::ptr::null::<libc::c_char>()`) asks for a new anonymous keyring.
    // It is `unsafe`: say in a `// SAFETY:` comment why the call is sound. `Errno::result(rc)` turns
    // its -1 into the errno.
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
