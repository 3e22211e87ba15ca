//! Solution to oci-gate: the open for writing through /proc/self/fd is the wait, and the byte written
//! after it is the container's answer to `start` (fifo(7), open(2), proc(5); the OCI runtime spec's
//! `runtime.md`, "Lifecycle").

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

// ANCHOR: solution
/// Runs in the container's process once it is set up, just before it executes the command: waits
/// until `start` opens the container's `exec.fifo` for reading, then writes one byte to it, which
/// tells `start` that the container went on. `gate` is an `O_PATH` descriptor of the fifo, opened
/// by the runtime before the clone; the fifo's path names nothing in the container.
pub fn wait_at_gate(gate: BorrowedFd<'_>) -> Result<(), Errno> {
    // /proc/self/fd/N is not the fifo's path: it names the open file itself, whatever the mounts
    // of this namespace hide. Opening it anew gives a new open file description, with new flags.
    let path = format!("/proc/self/fd/{}", gate.as_raw_fd());
    let fifo = loop {
        match nix::fcntl::open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    nix::unistd::write(&fifo, &[0u8]).map(drop)
}
// ANCHOR_END: solution
