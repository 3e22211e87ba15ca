//! What the exercises give you: children in new namespaces, which run your code and send back what
//! it returned over nskit's channel (`clone(2)`), keys and names no other test uses, and host objects
//! removed when the test ends, whatever happens. You need not read this to do the exercises, but
//! nothing in it is hidden.

use ipc_demo::posix::{PosixName, shm_create, shm_remove};
use ipc_demo::sysv::{self, Key, msg_create};
use nix::errno::Errno;
use nskit::Spawn;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(body)
}

/// `errno` as the tests print it: `EEXIST: File exists`.
pub fn said(step: &str, errno: Errno) -> String {
    format!("{step}: {errno}")
}

/// A key no other test and no other run uses: `0xe1` and 24 bits of this process's PID, then `n`.
pub fn own_key(n: u8) -> Key {
    let pid = std::process::id() & 0x000f_ffff;
    Key::new(0xe100_0000 | (pid << 4) | u32::from(n & 0xf))
}

/// A System V message queue made on the host, removed on drop.
#[derive(Debug)]
pub struct HostQueue {
    id: i32,
}

impl HostQueue {
    pub fn make(key: Key) -> Result<HostQueue, String> {
        let id = msg_create(key).map_err(|e| said("msgget on the host", e))?;
        Ok(HostQueue { id })
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        let _ = sysv::remove(sysv::Kind::Msg, self.id);
    }
}

/// A POSIX shared memory object made on the host (a file in the host's /dev/shm), removed on drop.
#[derive(Debug)]
pub struct HostShm {
    pub name: PosixName,
}

impl HostShm {
    pub fn make(key: Key, text: &str) -> Result<HostShm, String> {
        let name = PosixName::of(key);
        shm_create(&name, text.as_bytes()).map_err(|e| said("shm_open on the host", e))?;
        Ok(HostShm { name })
    }
}

impl Drop for HostShm {
    fn drop(&mut self) {
        let _ = shm_remove(&self.name);
    }
}
