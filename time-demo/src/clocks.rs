//! The clocks a time namespace shifts and the file that holds the shifts: clock readings
//! (clock_gettime(2)), `/proc/uptime` (proc(5)), and `/proc/<pid>/timens_offsets`, read and written
//! (time_namespaces(7)).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::ops::Sub;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::time::{ClockId, clock_gettime};
use nskit::Proc;
use serde::{Deserialize, Serialize};

/// A clock reading, or the distance between two, in nanoseconds. An `i64` holds 292 years of them,
/// twice what a namespaced clock may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Nanos(pub i64);

impl Nanos {
    pub const PER_SEC: i64 = 1_000_000_000;

    pub fn from_secs(secs: i64) -> Nanos {
        Nanos(secs * Nanos::PER_SEC)
    }

    /// Whole seconds, rounded to the nearest (halves away from zero).
    pub fn round_secs(self) -> i64 {
        let half = Nanos::PER_SEC / 2;
        if self.0 >= 0 {
            (self.0 + half) / Nanos::PER_SEC
        } else {
            (self.0 - half) / Nanos::PER_SEC
        }
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Nanos::PER_SEC as f64
    }
}

impl Sub for Nanos {
    type Output = Nanos;
    fn sub(self, other: Nanos) -> Nanos {
        Nanos(self.0 - other.0)
    }
}

/// Seconds with milliseconds: `13140.590 s`.
impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per_sec = Nanos::PER_SEC as u64;
        write!(f, "{sign}{}.{:03} s", abs / per_sec, abs % per_sec / 1_000_000)
    }
}

/// The three clocks of the lesson: two that a time namespace shifts, one that it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Clock {
    /// Time since boot, stopped while the machine is suspended.
    Monotonic,
    /// Time since boot, suspend included: what `/proc/uptime` shows.
    Boottime,
    /// The wall clock, seconds since 1970. Not namespaced.
    Realtime,
}

impl Clock {
    pub fn id(self) -> ClockId {
        match self {
            Clock::Monotonic => ClockId::CLOCK_MONOTONIC,
            Clock::Boottime => ClockId::CLOCK_BOOTTIME,
            Clock::Realtime => ClockId::CLOCK_REALTIME,
        }
    }

    /// How a line of `timens_offsets` names the clock: `monotonic` and `boottime` have names there;
    /// any other clock can only be given by its number (0 for CLOCK_REALTIME), which the kernel
    /// accepts as well, and then refuses, since that clock has no offset.
    pub fn key(self) -> String {
        match self {
            Clock::Monotonic => "monotonic".into(),
            Clock::Boottime => "boottime".into(),
            Clock::Realtime => self.id().as_raw().to_string(),
        }
    }

    /// Reads the clock through the C library, which answers from the vDSO (vdso(7)): in user space,
    /// without entering the kernel, and in a time namespace with the namespace's offset added.
    pub fn now(self) -> Result<Nanos, Errno> {
        let t = clock_gettime(self.id())?;
        Ok(Nanos(t.tv_sec() * Nanos::PER_SEC + t.tv_nsec()))
    }
}

/// The largest offset the kernel could accept: a namespaced clock may not pass half of
/// `KTIME_SEC_MAX` (about 146 years), and it starts from at least zero.
pub const MAX_OFFSET_SECS: i64 = i64::MAX / Nanos::PER_SEC / 2;

/// One clock's offset, as `timens_offsets` writes it: seconds (which may be negative) plus
/// nanoseconds (never negative, below one second).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offset {
    pub secs: i64,
    pub nanos: u32,
}

/// Why an offset given on the command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetError {
    #[error(
        "invalid offset {0:?}: expected a whole number with an optional unit, such as 7d, 12h, -30m or 90s"
    )]
    Syntax(String),
    #[error(
        "invalid offset {text:?}: past {MAX_OFFSET_SECS} seconds (about 146 years), which no clock may reach"
    )]
    TooFar { text: String },
}

impl Offset {
    pub const ZERO: Offset = Offset { secs: 0, nanos: 0 };

    pub const fn from_secs(secs: i64) -> Offset {
        Offset { secs, nanos: 0 }
    }

    pub fn as_nanos(self) -> Nanos {
        Nanos(self.secs * Nanos::PER_SEC + i64::from(self.nanos))
    }

    /// Parses `7d`, `12h`, `-30m`, `90s` or `90` (seconds).
    pub fn parse(text: &str) -> Result<Offset, OffsetError> {
        let syntax = || OffsetError::Syntax(text.to_owned());
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let scale = match unit {
            "" | "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(syntax()),
        };
        let value: i64 = number.parse().map_err(|_| syntax())?;
        match value.checked_mul(scale) {
            Some(secs) if secs.abs() <= MAX_OFFSET_SECS => Ok(Offset::from_secs(secs)),
            _ => Err(OffsetError::TooFar {
                text: text.to_owned(),
            }),
        }
    }
}

/// A time namespace's offsets: one for CLOCK_MONOTONIC, one for CLOCK_BOOTTIME, nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offsets {
    pub monotonic: Offset,
    pub boottime: Offset,
}

impl Offsets {
    pub const ZERO: Offsets = Offsets {
        monotonic: Offset::ZERO,
        boottime: Offset::ZERO,
    };

    /// The offset of `clock`; CLOCK_REALTIME's is always zero.
    pub fn of(&self, clock: Clock) -> Offset {
        match clock {
            Clock::Monotonic => self.monotonic,
            Clock::Boottime => self.boottime,
            Clock::Realtime => Offset::ZERO,
        }
    }

    /// The lines that set both offsets, in the file's format.
    pub fn lines(&self) -> String {
        line(Clock::Monotonic, self.monotonic) + &line(Clock::Boottime, self.boottime)
    }

    /// Parses the file: one `<clock> <secs> <nanos>` line per clock, the fields padded with spaces.
    pub fn parse(text: &str) -> Option<Offsets> {
        let mut offsets = Offsets::ZERO;
        let (mut monotonic, mut boottime) = (false, false);
        for fields in text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()) {
            let [clock, secs, nanos] = fields[..] else {
                return None;
            };
            let offset = Offset {
                secs: secs.parse().ok()?,
                nanos: nanos.parse().ok()?,
            };
            match clock {
                "monotonic" => (offsets.monotonic, monotonic) = (offset, true),
                "boottime" => (offsets.boottime, boottime) = (offset, true),
                _ => return None,
            }
        }
        (monotonic && boottime).then_some(offsets)
    }
}

/// `monotonic 604800 0, boottime 2592000 0`: the file's content on one line.
impl fmt::Display for Offsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, b) = (self.monotonic, self.boottime);
        write!(
            f,
            "monotonic {} {}, boottime {} {}",
            m.secs, m.nanos, b.secs, b.nanos
        )
    }
}

/// One line of `timens_offsets`: `monotonic 604800 0\n`.
pub fn line(clock: Clock, offset: Offset) -> String {
    format!("{} {} {}\n", clock.key(), offset.secs, offset.nanos)
}

/// `/proc/<pid>/timens_offsets`.
pub fn offsets_path(who: Proc) -> PathBuf {
    who.dir().join("timens_offsets")
}

// ANCHOR: offsets_file
/// Reads the offsets of `who`'s `time_for_children` namespace: the file shows the namespace the
/// process's next children will be born in, which is its own unless it has just unshared.
pub fn read_offsets(who: Proc) -> io::Result<Offsets> {
    let text = fs::read_to_string(offsets_path(who))?;
    Offsets::parse(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected timens_offsets: {text:?}"),
        )
    })
}

/// Writes `lines` to `who`'s `timens_offsets` in one write(2): the kernel checks every line before it
/// applies any. It refuses with EPERM without CAP_SYS_TIME in the user namespace that owns the time
/// namespace, EACCES once a process is in it, EINVAL for a clock that has no offset, and ERANGE for
/// an offset that would put a clock below zero.
pub fn write_offsets(who: Proc, lines: &str) -> Result<(), Errno> {
    let errno = |e: io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let mut file = OpenOptions::new()
        .write(true)
        .open(offsets_path(who))
        .map_err(errno)?;
    file.write_all(lines.as_bytes()).map_err(errno)
}
// ANCHOR_END: offsets_file

/// Reads `/proc/uptime`'s first field, the seconds since boot that uptime(1) prints: CLOCK_BOOTTIME, as
/// the reader's time namespace sees it. (The second field, the idle time, is not offset.)
pub fn read_uptime() -> io::Result<Nanos> {
    let text = fs::read_to_string("/proc/uptime")?;
    parse_uptime(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/uptime: {text:?}"),
        )
    })
}

/// `13145.12 9245.40` -> 13145.12 s. The kernel prints hundredths of a second.
fn parse_uptime(text: &str) -> Option<Nanos> {
    let (secs, hundredths) = text.split_whitespace().next()?.split_once('.')?;
    if hundredths.len() != 2 {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let hundredths: i64 = hundredths.parse().ok()?;
    Some(Nanos(secs * Nanos::PER_SEC + hundredths * 10_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_with_units_and_signs() {
        assert_eq!(Offset::parse("7d"), Ok(Offset::from_secs(604_800)));
        assert_eq!(Offset::parse("-12h"), Ok(Offset::from_secs(-43_200)));
        assert_eq!(Offset::parse("90m"), Ok(Offset::from_secs(5_400)));
        assert_eq!(Offset::parse("45s"), Ok(Offset::from_secs(45)));
        assert_eq!(Offset::parse("3600"), Ok(Offset::from_secs(3_600)));
        assert_eq!(Offset::parse("0"), Ok(Offset::ZERO));
        for bad in ["", "d", "7 days", "7w", "1.5h", "seven"] {
            assert_eq!(
                Offset::parse(bad),
                Err(OffsetError::Syntax(bad.into())),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Offset::parse("999999999999d"),
            Err(OffsetError::TooFar { .. })
        ));
        assert!(matches!(
            Offset::parse("-54000000d"),
            Err(OffsetError::TooFar { .. })
        ));
        assert!(Offset::parse(&format!("{MAX_OFFSET_SECS}")).is_ok());
    }

    #[test]
    fn the_file_format_round_trips() {
        let offsets = Offsets {
            monotonic: Offset::from_secs(604_800),
            boottime: Offset {
                secs: -2,
                nanos: 500_000_000,
            },
        };
        assert_eq!(offsets.lines(), "monotonic 604800 0\nboottime -2 500000000\n");
        // The kernel pads its fields with spaces.
        let file = "monotonic      604800         0\nboottime           -2 500000000\n";
        assert_eq!(Offsets::parse(file), Some(offsets));
        assert_eq!(Offsets::parse("monotonic 1 0\n"), None, "both clocks are listed");
        assert_eq!(Offsets::parse("realtime 1 0\nboottime 0 0\n"), None);
        assert_eq!(line(Clock::Realtime, Offset::from_secs(3600)), "0 3600 0\n");
        assert_eq!(offsets.to_string(), "monotonic 604800 0, boottime -2 500000000");
    }

    #[test]
    fn readings_print_as_seconds_and_round_to_whole_ones() {
        assert_eq!(Nanos(13_140_590_123_456).to_string(), "13140.590 s");
        assert_eq!(Nanos(-1_500_000_000).to_string(), "-1.500 s");
        assert_eq!(Nanos(1_499_999_999).round_secs(), 1);
        assert_eq!(Nanos(1_500_000_000).round_secs(), 2);
        assert_eq!(Nanos(-1_500_000_000).round_secs(), -2);
        assert_eq!(Offset::from_secs(-3).as_nanos(), Nanos(-3_000_000_000));
    }

    #[test]
    fn uptime_is_parsed_in_hundredths() {
        assert_eq!(
            parse_uptime("13145.12 9245.40\n"),
            Some(Nanos(13_145_120_000_000))
        );
        assert_eq!(parse_uptime("13145 9245.40"), None);
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn uptime_is_boottime() {
        let boottime = Clock::Boottime.now().unwrap();
        let uptime = read_uptime().unwrap();
        let apart = (boottime - uptime).0.abs();
        assert!(
            apart < Nanos::PER_SEC,
            "boottime {boottime}, /proc/uptime {uptime}"
        );
    }
}
