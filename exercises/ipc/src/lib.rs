//! Exercises for the IPC namespace chapter (ipc_namespaces(7), sysvipc(7), shm_overview(7), proc(5);
//! in the book: "The IPC namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise ipc-keys` (or `cargo test -p ipc-exercises --features check -- keys::`);
//! `--solution` runs the same test on the solution. Both versions are always compiled, so neither can
//! rot; [`checked`] is the one the tests call.
//!
//! - `ipc-keys`: list the System V keys of the caller's namespace from /proc ([`start::keys`]);
//! - `ipc-flags`, break it: clone without `CLONE_NEWIPC` and meet the host's queue ([`start::flags`]);
//! - `ipc-shm`: POSIX shared memory is files in /dev/shm, which the IPC namespace does not isolate:
//!   give the child a /dev/shm of its own ([`start::shm`]).
//!
//! [`given`] holds what the exercises give you: children, keys of their own, host objects that are
//! removed when the test ends.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;
