//! Exercises for the network namespace chapter (network_namespaces(7), rtnetlink(7), unix(7); in the
//! book: "The network namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise net-lo` (or `cargo test -p net-exercises --features check -- lo::`);
//! `--solution` runs the same test on the solution. Both versions are always compiled, so neither can
//! rot; [`checked`] is the one the tests call.
//!
//! - `net-lo`: list a new namespace's interfaces and bring loopback up ([`start::lo`]);
//! - `net-abstract`: abstract UNIX sockets belong to a network namespace, pathname ones do not
//!   ([`start::abstract_socket`]);
//! - `net-route`, break it: leave out the route across a veth pair and read ENETUNREACH
//!   ([`start::route`]).
//!
//! [`given`] holds what the exercises give you: children in new network namespaces, made by the test
//! and talking only to each other.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;

/// One step of setting up a namespace's end of a veth pair, as the route exercise lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Bring the link up.
    Up(&'static str),
    /// Give the link an address, `addr/prefix`.
    Address(&'static str, std::net::Ipv4Addr, u8),
    /// Route the subnet through the link, from the address given.
    Route(&'static str, std::net::Ipv4Addr),
}
