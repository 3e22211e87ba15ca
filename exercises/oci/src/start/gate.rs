//! Exercise oci-gate: a created container waits at its gate, the `exec.fifo`, until `start` opens it
//! (fifo(7), open(2), proc(5) /proc/self/fd; the OCI runtime spec's `runtime.md`, "Lifecycle", steps 2
//! to 4, and "Operations", create and start).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

// ANCHOR: exercise
/// Runs in the container's process once it is set up, just before it executes the command: waits
/// until `start` opens the container's `exec.fifo` for reading, then writes one byte to it, which
/// tells `start` that the container went on. `gate` is an `O_PATH` descriptor of the fifo, opened
/// by the runtime before the clone; the fifo's path names nothing in the container.
pub fn wait_at_gate(gate: BorrowedFd<'_>) -> Result<(), Errno> {
    // Your code here, in two steps:
    // 1. open `/proc/self/fd/<gate's number>` for writing (`nix::fcntl::open`, `OFlag::O_WRONLY |
    //    OFlag::O_CLOEXEC`, `Mode::empty()`), again on EINTR. Opening a fifo for writing waits until
    //    some process opens it for reading (fifo(7)): that open is the wait;
    // 2. write one byte to what it returned (`nix::unistd::write`).
    // Why does the runtime open the fifo with O_PATH, and not for writing, before the clone?
    Err(Errno::ENOSYS)
}
// ANCHOR_END: exercise
