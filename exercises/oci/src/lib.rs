//! Exercises for the OCI runtime chapter (the OCI runtime spec's `runtime.md` and `config.md`,
//! fifo(7), unix(7); in the book: "The launcher as an OCI runtime: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise oci-gate` (or `cargo test -p oci-exercises --features check -- gate::`);
//! `--solution` runs the same test on the solution. Both versions are always compiled, so neither can
//! rot; [`checked`] is the one the tests call.
//!
//! - `oci-gate`: a created container waits at its `exec.fifo` until `start` ([`start::gate`]);
//! - `oci-console`: the container's pty handed to the engine over the console socket
//!   ([`start::console`]);
//! - `oci-hooks`, break it: the late hooks run the programs kept at create, not what the container
//!   wrote over them ([`start::hooks`]);
//! - `oci-state`: the spec's state, its status observed at each request ([`start::state`]).
//!
//! [`given`] holds what the exercises give you: the runtime's and the engine's sides of each
//! conversation, and children that play the container.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;
