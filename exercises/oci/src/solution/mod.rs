//! The solutions, one file per exercise, each beside its starting point in `src/start/`. The book's
//! solution pages include them by anchor.

pub mod console;
pub mod gate;
pub mod hooks;
pub mod state;
