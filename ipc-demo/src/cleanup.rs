//! Leaving nothing behind. System V objects and POSIX IPC names made in the host's IPC namespace
//! outlive the program that made them (sysvipc(7): "kernel persistence"), so every one the demo makes
//! there is owned by a [`HostObject`] guard that removes it on drop, and recorded in a small static
//! registry that a SIGINT/SIGTERM/SIGHUP handler empties before the signal ends the process
//! (signal-safety(7): the handler only makes system calls, it never allocates or locks).
//!
//! Objects made inside a new IPC namespace need none of this: the kernel destroys them with it.

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use nix::errno::Errno;

use crate::posix::{self, PosixName};
use crate::sysv::{self, Key};

/// What a registry slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A System V object, by id.
    Sysv(sysv::Kind, i32),
    /// A POSIX message queue, by the key its name is made from.
    Mqueue(Key),
    /// A POSIX shared memory object, likewise.
    PosixShm(Key),
}

const EMPTY: u8 = 0;
const RESERVED: u8 = 255;
const SLOTS: usize = 64;

/// The registry: a tag per slot (0 empty, 255 being filled, else [`What`]'s kind) and its number (id
/// or key). Atomics, because the signal handler reads it at any moment.
static TAGS: [AtomicU8; SLOTS] = [const { AtomicU8::new(EMPTY) }; SLOTS];
static VALUES: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

impl What {
    fn encode(self) -> (u8, i32) {
        match self {
            What::Sysv(sysv::Kind::Msg, id) => (1, id),
            What::Sysv(sysv::Kind::Sem, id) => (2, id),
            What::Sysv(sysv::Kind::Shm, id) => (3, id),
            What::Mqueue(key) => (4, key.raw()),
            What::PosixShm(key) => (5, key.raw()),
        }
    }

    fn decode(tag: u8, value: i32) -> Option<What> {
        Some(match tag {
            1 => What::Sysv(sysv::Kind::Msg, value),
            2 => What::Sysv(sysv::Kind::Sem, value),
            3 => What::Sysv(sysv::Kind::Shm, value),
            4 => What::Mqueue(Key::new(value as u32)),
            5 => What::PosixShm(Key::new(value as u32)),
            _ => return None,
        })
    }

    /// Removes the object. System calls only, no allocation: safe in a signal handler.
    fn remove(self) -> Result<(), Errno> {
        match self {
            What::Sysv(kind, id) => sysv::remove(kind, id),
            What::Mqueue(key) => posix::mq_remove(&PosixName::of(key)),
            What::PosixShm(key) => posix::shm_remove(&PosixName::of(key)),
        }
    }
}

/// Why an object could not be put under a guard.
#[derive(Debug, thiserror::Error)]
#[error("the cleanup registry is full ({SLOTS} host objects)")]
pub struct RegistryFull;

// ANCHOR: guard
/// An object in the host's IPC namespace that this process made and must remove: on drop, or, if a
/// signal ends the process first, in the signal handler.
#[derive(Debug)]
pub struct HostObject {
    slot: usize,
    what: What,
}

impl HostObject {
    /// Puts `what` under a guard. Call it with the signals held (see [`SignalsHeld`]) from before the
    /// object is made, so that no signal can end the process between making and recording it.
    pub fn register(what: What) -> Result<HostObject, RegistryFull> {
        let (tag, value) = what.encode();
        for slot in 0..SLOTS {
            if TAGS[slot]
                .compare_exchange(EMPTY, RESERVED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                VALUES[slot].store(value, Ordering::Release);
                TAGS[slot].store(tag, Ordering::Release);
                return Ok(HostObject { slot, what });
            }
        }
        Err(RegistryFull)
    }

    pub fn what(&self) -> What {
        self.what
    }

    /// Removes the object now and reports how that went.
    pub fn remove(self) -> Result<(), Errno> {
        let result = self.take();
        std::mem::forget(self);
        result
    }

    /// Empties the slot and removes the object, unless the signal handler got there first.
    fn take(&self) -> Result<(), Errno> {
        let tag = TAGS[self.slot].swap(EMPTY, Ordering::AcqRel);
        match What::decode(tag, VALUES[self.slot].load(Ordering::Acquire)) {
            Some(what) => what.remove(),
            None => Ok(()),
        }
    }
}

impl Drop for HostObject {
    fn drop(&mut self) {
        let _ = self.take();
    }
}

/// Removes every registered object: what the signal handler does.
fn remove_all_registered() {
    for slot in 0..SLOTS {
        let tag = TAGS[slot].swap(EMPTY, Ordering::AcqRel);
        if let Some(what) = What::decode(tag, VALUES[slot].load(Ordering::Acquire)) {
            let _ = what.remove();
        }
    }
}

extern "C" fn on_terminating_signal(signal: libc::c_int) {
    remove_all_registered();
    // The handler was installed with SA_RESETHAND, so the signal's action is the default again: raising
    // it ends the process as the signal would have, with the status a shell expects (128 + signal).
    // SAFETY: raise(3) is async-signal-safe.
    unsafe { libc::raise(signal) };
}

/// The signals that end a program run from a terminal or a service manager (nskit's).
pub use nskit::process::TERMINATING;

/// Installs the handler that removes the registered host objects when SIGINT, SIGTERM or SIGHUP
/// arrives, then lets the signal end the process.
pub fn remove_on_signals() -> Result<(), Errno> {
    // SAFETY: the handler only makes async-signal-safe system calls (IPC_RMID, mq_unlink, unlink,
    // raise) on data read from atomics; it allocates nothing and takes no lock.
    unsafe { nskit::process::on_terminating(on_terminating_signal) }
}
// ANCHOR_END: guard

/// In a child the demo spawned: forget the parent's registry and restore the default actions, so that
/// a Ctrl-C reaching the child's process group does not make the child remove the host's objects.
pub fn forget_in_child() {
    for tag in &TAGS {
        tag.store(EMPTY, Ordering::Release);
    }
    nskit::process::default_terminating_actions();
}

/// The terminating signals held while a host object is made and recorded (nskit's).
pub use nskit::process::SignalsHeld;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_round_trips() {
        for what in [
            What::Sysv(sysv::Kind::Sem, 32769),
            What::Mqueue(Key::new(0xfeedf00d)),
            What::PosixShm(Key::new(1)),
        ] {
            let (tag, value) = what.encode();
            assert_eq!(What::decode(tag, value), Some(what));
        }
        assert_eq!(What::decode(EMPTY, 0), None);
        assert_eq!(What::decode(RESERVED, 0), None);
    }
}
