//! The solutions, one file per exercise, each beside its starting point in `src/start/`. The book's
//! solution pages include them by anchor.

pub mod limits;
pub mod lsns;
pub mod nsenter;
