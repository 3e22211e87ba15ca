//! Exercises for the user namespace chapter (user_namespaces(7), ioctl_ns(2); in the book: "The user
//! namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise user-maps` (or `cargo test -p user-exercises --features check -- maps::`);
//! `--solution` runs the same test on the solution. Both versions are always compiled, so neither can
//! rot; [`checked`] is the one the tests call.
//!
//! - `user-maps`: write a child's `setgroups`, `gid_map` and `uid_map` ([`start::maps`]);
//! - `user-setgroups`, break it: leave out `setgroups deny` and read the EPERM ([`start::setgroups`]);
//! - `user-owner`: ask the kernel which user namespace owns a namespace ([`start::owner`]).
//!
//! [`given`] holds what the exercises give you: an unprivileged map writer, children, their answers.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;

/// One write of the map handshake, to a file in `/proc/<pid>/` of the child (user_namespaces(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MapFile {
    /// `deny` into `setgroups`.
    SetgroupsDeny,
    /// `0 <writer's gid> 1` into `gid_map`.
    GidMap,
    /// `0 <writer's uid> 1` into `uid_map`.
    UidMap,
}
