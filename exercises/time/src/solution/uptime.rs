//! Solution to time-uptime: the first field of `/proc/uptime` (proc(5) "/proc/uptime").

use std::fs;
use std::io;

// ANCHOR: solution
/// The seconds since boot, as the first field of `/proc/uptime` gives them (`13145.12 9245.40`: up,
/// then idle).
pub fn uptime() -> io::Result<f64> {
    let text = fs::read_to_string("/proc/uptime")?;
    text.split_whitespace()
        .next()
        .and_then(|up| up.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected /proc/uptime: {text:?}"),
            )
        })
}
// ANCHOR_END: solution
