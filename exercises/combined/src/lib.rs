//! Exercises for the launcher chapter (capabilities(7), keyrings(7), proc(5); in the book: "Putting
//! it together: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise combined-caps` (or `cargo test -p combined-exercises --features check --
//! caps::`); `--solution` runs the same test on the solution. Both versions are always compiled, so
//! neither can rot; [`checked`] is the one the tests call.
//!
//! - `combined-caps`: drop a container's capabilities in the order the runtimes use ([`start::caps`]);
//! - `combined-keyring`: a session keyring of the container's own ([`start::keyring`]);
//! - `combined-masks`, break it: the masks over /proc, and what a container reads without them
//!   ([`start::masks`]).
//!
//! [`given`] holds what the exercises give you: children that play the container, and their answers.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;
