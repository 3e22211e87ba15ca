//! What a clock read costs: `clock_gettime(2)` through the vDSO, the code the kernel maps into every
//! process so that reading a clock needs no system call (vdso(7)), timed against the real system call.
//!
//! These are measurements for the learner to read, never assertions: the tests only check that both
//! paths work and agree.

use std::hint::black_box;
use std::time::Instant;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::clocks::{Clock, Nanos};

/// How many rounds [`measure`] runs; it keeps the fastest, the one least disturbed by other work on
/// the machine.
pub const ROUNDS: u32 = 5;

/// The cost of one CLOCK_MONOTONIC read, both ways, in nanoseconds per call.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Calls per round.
    pub calls: u32,
    pub vdso_ns: f64,
    pub syscall_ns: f64,
}

// ANCHOR: syscall
/// Reads CLOCK_MONOTONIC with the real system call, past the vDSO. The kernel adds the time
/// namespace's offset on this path too.
pub fn monotonic_by_syscall() -> Result<Nanos, Errno> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one `struct timespec` through its second argument, which points
    // to `ts`, a live, writable timespec; the first is a clock id. No other memory is touched.
    let rc = unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) };
    Errno::result(rc)?;
    Ok(Nanos(ts.tv_sec * Nanos::PER_SEC + ts.tv_nsec))
}
// ANCHOR_END: syscall

// ANCHOR: measure
/// Times `calls` reads of CLOCK_MONOTONIC through the vDSO, then through the system call, [`ROUNDS`]
/// times, and keeps the fastest round of each.
pub fn measure(calls: u32) -> Result<Cost, Errno> {
    let mut cost = Cost {
        calls,
        vdso_ns: f64::INFINITY,
        syscall_ns: f64::INFINITY,
    };
    for _ in 0..ROUNDS {
        cost.vdso_ns = cost.vdso_ns.min(per_call(calls, || Clock::Monotonic.now())?);
        cost.syscall_ns = cost.syscall_ns.min(per_call(calls, monotonic_by_syscall)?);
    }
    Ok(cost)
}

/// Nanoseconds per call of `read`, over `calls` calls.
fn per_call(calls: u32, read: impl Fn() -> Result<Nanos, Errno>) -> Result<f64, Errno> {
    let start = Instant::now();
    for _ in 0..calls {
        black_box(read()?);
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(calls.max(1)))
}
// ANCHOR_END: measure

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_read_the_same_clock() {
        let by_vdso = Clock::Monotonic.now().unwrap();
        let by_syscall = monotonic_by_syscall().unwrap();
        let apart = (by_syscall - by_vdso).0.abs();
        assert!(apart < Nanos::PER_SEC, "vDSO {by_vdso}, system call {by_syscall}");
    }

    #[test]
    fn a_measurement_has_a_cost_per_call_for_each_path() {
        let cost = measure(100).unwrap();
        assert_eq!(cost.calls, 100);
        assert!(cost.vdso_ns.is_finite() && cost.vdso_ns > 0.0, "{cost:?}");
        assert!(cost.syscall_ns.is_finite() && cost.syscall_ns > 0.0, "{cost:?}");
    }
}
