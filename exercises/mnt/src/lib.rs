//! Exercises for the mount chapter (mount_namespaces(7), pivot_root(2), proc(5); in the book: "The
//! mount namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise mnt-mountinfo` (or `cargo test -p mnt-exercises --features check --
//! mountinfo::`); `--solution` runs the same test on the solution. Both versions are always
//! compiled, so neither can rot; [`checked`] is the one the tests call.
//!
//! - `mnt-mountinfo`: parse a line of `/proc/<pid>/mountinfo` ([`start::mountinfo`]);
//! - `mnt-private`: a mount of one's own, and nothing shared ([`start::private`]);
//! - `mnt-leak`, break it: skip `--make-rprivate` and watch a mount leak ([`start::leak`]);
//! - `mnt-pivot`: into a rootfs with pivot_root, and the old root gone ([`start::pivot`]).
//!
//! [`given`] holds what the exercises give you: children in new mount namespaces, and their answers.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;

/// One line of `/proc/<pid>/mountinfo`, the fields the exercises need (proc(5)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Field 1: the mount's ID.
    pub id: u32,
    /// Field 2: its parent mount's ID.
    pub parent: u32,
    /// Field 5: where it is mounted, with the kernel's octal escapes (`\040` for a blank) undone.
    pub mount_point: String,
    /// The optional fields between the mount options and the `-`: `shared:N`, `master:N`,
    /// `propagate_from:N`, `unbindable`; none for a private mount.
    pub propagation: Vec<String>,
    /// The first field after the `-`.
    pub fs_type: String,
    /// The second field after the `-`, unescaped.
    pub source: String,
}
