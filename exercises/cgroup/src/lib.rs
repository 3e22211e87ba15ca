//! Exercises for the cgroup chapter (cgroups(7), cgroup_namespaces(7), the kernel's cgroup-v1/pids and
//! cgroup-v2 documents; in the book: "Control groups and the cgroup namespace: exercises").
//!
//! Each exercise is a file in `src/start/`, the starting point you edit, with its solution beside it
//! in `src/solution/`; `tests/exercises.rs` says when your version is right. Run one with
//! `cargo xtask exercise cgroup-lines` (or `cargo test -p cgroup-exercises --features check --
//! lines::`); `--solution` runs the same test on the solution. Both versions are always compiled, so
//! neither can rot; [`checked`] is the one the tests call.
//!
//! - `cgroup-lines`: parse a line of `/proc/<pid>/cgroup`, v1 and v2 ([`start::lines`]);
//! - `cgroup-pids`: a pids limit, and a process moved under it ([`start::pids`]);
//! - `cgroup-ns`, break it: unshare the cgroup namespace before joining the cgroup, and see the
//!   namespace's root land one level too high ([`start::ns`]).
//!
//! The last two make cgroups: they need root, or a cgroup delegated to you; without either, their tests
//! say so and return. [`given`] holds what the exercises give you.

pub mod given;
pub mod solution;
pub mod start;

/// The versions the tests check: your starting points, or with the `solution` feature the solutions.
#[cfg(not(feature = "solution"))]
pub use start as checked;

#[cfg(feature = "solution")]
pub use solution as checked;

/// One line of `/proc/<pid>/cgroup` (cgroups(7)).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    /// The hierarchy's number: 0 for the v2 hierarchy, that of a v1 hierarchy otherwise.
    pub hierarchy: u32,
    /// The v1 controllers bound to the hierarchy (`cpu,cpuacct` gives two, `name=systemd` one); none
    /// for v2.
    pub controllers: Vec<String>,
    /// The cgroup, relative to the reader's cgroup namespace root.
    pub path: String,
}

/// The two steps of the namespace exercise, run by the child in the order it is given them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// Move itself into the test's new cgroup (write 0 to its `cgroup.procs`, in every hierarchy).
    JoinCgroup,
    /// `unshare(CLONE_NEWCGROUP)`.
    UnshareCgroupNs,
}
