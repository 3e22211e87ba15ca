//! Solution to time-realtime: the two clocks a time namespace can shift, as they were; the wall clock,
//! CLOCK_REALTIME, is never namespaced (time_namespaces(7)).

use time_demo::clocks::Clock;

// ANCHOR: solution
/// The clocks the test shifts in its new time namespace, and by how many seconds: it writes them all
/// to `timens_offsets` in one write, then reads every clock inside and outside.
pub fn shifts() -> Vec<(Clock, i64)> {
    vec![(Clock::Monotonic, 3600), (Clock::Boottime, 7200)]
}
// ANCHOR_END: solution
