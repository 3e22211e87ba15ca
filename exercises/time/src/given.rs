//! What the exercises give you: a process that calls `unshare(CLONE_NEWTIME)` (the chapter's
//! `caller_spawn`, with a user namespace when you are not root), and its first child, born in the new
//! namespace, each reporting over nskit's channel (`clone(2)`). You need not read this to do the
//! exercises, but nothing in it is hidden.

use nix::sched::CloneFlags;
use nskit::{Spawn, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time_demo::clocks::Clock;
use time_demo::{caller_spawn, unshare_time};

use crate::Clocks;

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(body)
}

/// What `look` saw outside the new time namespace (in the process that made it) and inside (in its
/// first child).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Across<T> {
    pub outside: T,
    pub inside: T,
}

/// A process unshares a new time namespace for its children, runs `offsets` (which writes the new
/// namespace's offsets, or not), then runs `look` itself and in its first child, which the kernel puts
/// in the new namespace.
pub fn across_a_time_namespace<T, W>(offsets: W, look: fn() -> Result<T, String>) -> Result<Across<T>, String>
where
    T: Serialize + DeserializeOwned,
    W: FnOnce() -> Result<(), String>,
{
    in_child(&caller_spawn(false), || {
        unshare_time().map_err(|e| e.to_string())?;
        offsets()?;
        let outside = look()?;
        let inside = in_child(&Spawn::new(CloneFlags::empty()).user(UserNs::Never), look)?;
        Ok(Across { outside, inside })
    })
}

/// Reads the three clocks of the chapter.
pub fn read_clocks() -> Result<Clocks, String> {
    let now = |clock: Clock| {
        clock
            .now()
            .map(|t| t.as_secs_f64())
            .map_err(|e| format!("clock_gettime({clock:?}): {e}"))
    };
    Ok(Clocks {
        monotonic: now(Clock::Monotonic)?,
        boottime: now(Clock::Boottime)?,
        realtime: now(Clock::Realtime)?,
    })
}

/// Whether `inside` is `outside` moved by `offset` seconds, give or take the two seconds a slow
/// machine may take between the two readings.
pub fn shifted_by(outside: f64, inside: f64, offset: i64) -> bool {
    (inside - outside - offset as f64).abs() < 2.0
}
