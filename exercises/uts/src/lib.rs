//! Exercises for the UTS chapter (uts_namespaces(7), in the book: "The UTS namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise uts-names` (or `cargo test -p uts-exercises --features check -- names::`);
//! `--solution` runs the same test on the solution. Both versions are always compiled, so neither can
//! rot; [`checked`] is the one the tests call.
//!
//! - `uts-names`: read the names and the namespace's identity ([`start::names`]);
//! - `uts-rename`: a child renames its own UTS namespace ([`start::rename`]);
//! - `uts-keepalive`: an open descriptor keeps a namespace alive; join it with setns ([`start::keepalive`]);
//! - `uts-owner`, break it: remove `CLONE_NEWUTS` and read the EPERM ([`start::owner`]).
//!
//! [`given`] holds what the exercises give you: children in new namespaces, and their answers.

use std::fs::File;

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;

/// What a process sees through its UTS namespace, and which namespace that is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Names {
    pub hostname: String,
    pub domainname: String,
    /// The inode of `/proc/self/ns/uts`: the number in `readlink /proc/self/ns/uts`, `uts:[4026531838]`.
    pub uts_inode: u64,
}

/// Open `/proc/<pid>/ns/*` files: while one is open, its namespace lives on.
#[derive(Debug)]
pub struct Handles {
    /// The child's user namespace, when it has one of its own (when you are not root).
    pub user: Option<File>,
    pub uts: File,
}
