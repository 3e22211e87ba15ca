//! Exercises for the introspection chapter, namespaces seen from outside (namespaces(7) "The
//! /proc/[pid]/ns/ directory" and "The /proc/sys/user directory", setns(2), lsns(8), nsenter(1); in the
//! book: "Looking at namespaces from outside: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise introspect-lsns` (or `cargo test -p introspect-exercises --features check --
//! lsns::`); `--solution` runs the same test on the solution. Both versions are always compiled, so
//! neither can rot; [`checked`] is the one the tests call.
//!
//! - `introspect-lsns`: list the namespaces of a kind from `/proc/*/ns/`, as `lsns` does
//!   ([`start::lsns`]);
//! - `introspect-nsenter`: join a running process's UTS namespace, its user namespace first when
//!   that one is not yours, as `nsenter` does ([`start::nsenter`]);
//! - `introspect-limits`, break it: a runtime limits the namespaces a container may make in the
//!   container's own user namespace, not in the host's ([`start::limits`]).
//!
//! [`given`] holds what the exercises give you: a helper without privileges, the children the tools
//! look at, and their answers.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;
