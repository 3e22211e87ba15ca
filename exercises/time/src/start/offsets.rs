//! Exercise time-offsets: a new time namespace's clocks are the host's plus two offsets, written to
//! `/proc/self/timens_offsets` after `unshare(CLONE_NEWTIME)` and before the first process enters
//! (time_namespaces(7) "/proc/PID/timens_offsets").

use std::fs;
use std::io;

// ANCHOR: exercise
/// Sets the offsets of the caller's new time namespace, the one its next children will be born in:
/// CLOCK_MONOTONIC ahead by `monotonic_secs`, CLOCK_BOOTTIME by `boottime_secs`.
pub fn write_offsets(monotonic_secs: i64, boottime_secs: i64) -> io::Result<()> {
    // Your code here: one `fs::write` of two lines, `<clock> <seconds> <nanoseconds>`, where the
    // clock is `monotonic` or `boottime`.
    Err(io::Error::other("not written yet: write_offsets"))
}
// ANCHOR_END: exercise
