//! Exercise time-realtime, break it: a time namespace shifts CLOCK_MONOTONIC and CLOCK_BOOTTIME,
//! never the wall clock, CLOCK_REALTIME (time_namespaces(7)).

use time_demo::clocks::Clock;

// ANCHOR: exercise
/// The clocks the test shifts in its new time namespace, and by how many seconds: it writes them all
/// to `timens_offsets` in one write, then reads every clock inside and outside.
pub fn shifts() -> Vec<(Clock, i64)> {
    vec![(Clock::Monotonic, 3600), (Clock::Boottime, 7200)]
}
// ANCHOR_END: exercise
