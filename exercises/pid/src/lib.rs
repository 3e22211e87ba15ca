//! Exercises for the PID namespace chapter (pid_namespaces(7), proc(5), PR_SET_CHILD_SUBREAPER(2const);
//! in the book: "The PID namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise pid-nspid` (or `cargo test -p pid-exercises --features check -- nspid::`);
//! `--solution` runs the same test on the solution. Both versions are always compiled, so neither can
//! rot; [`checked`] is the one the tests call.
//!
//! - `pid-nspid`: a process's PID in every namespace it is in, from `NSpid:` ([`start::nspid`]);
//! - `pid-proc`, break it: forget the fresh /proc and see the host's processes ([`start::proc`]);
//! - `pid-subreaper`: adopt your orphaned grandchildren, as a namespace's init does
//!   ([`start::subreaper`]);
//! - `pid-lastpid`: choose the PID of the next child with `ns_last_pid` ([`start::lastpid`]).
//!
//! [`given`] holds what the exercises give you: an init in a new PID namespace, fresh processes.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;
