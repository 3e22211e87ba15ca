//! Exercises for the time namespace chapter (time_namespaces(7), clock_gettime(2), proc(5); in the
//! book: "The time namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise time-offsets` (or `cargo test -p time-exercises --features check --
//! offsets::`); `--solution` runs the same test on the solution. Both versions are always compiled,
//! so neither can rot; [`checked`] is the one the tests call.
//!
//! - `time-offsets`: write a new time namespace's offsets before anyone enters ([`start::offsets`]);
//! - `time-realtime`, break it: shift the wall clock too, and read why the kernel refuses
//!   ([`start::realtime`]);
//! - `time-uptime`: read /proc/uptime, which a time namespace shifts ([`start::uptime`]).
//!
//! [`given`] holds what the exercises give you: a process that makes a time namespace, its first child.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;

/// What a process reads on the three clocks of the chapter, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Clocks {
    pub monotonic: f64,
    pub boottime: f64,
    pub realtime: f64,
}
