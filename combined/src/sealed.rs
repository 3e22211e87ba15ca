//! The launcher runs from a sealed, in-memory copy of itself when it starts a container whose init is
//! the launcher's own code (memfd_create(2), fcntl(2) `F_ADD_SEALS`, fexecve(3)).
//!
//! A container's init is a fork of the launcher that never execs, so `/proc/1/exe` inside names the
//! launcher's binary. A process that may ptrace init (CAP_SYS_PTRACE in the user namespace init's
//! memory belongs to) can open that link: read the host's binary and, once nothing runs it, write it,
//! which is how CVE-2019-5736 replaced runc on the host. So before anything else, a launcher that will
//! give a container such an init re-executes itself from a memfd copy, sealed against every change:
//! `/proc/1/exe` then names that copy, which is nowhere on the host's filesystems and cannot be
//! written by anyone.
//!
//! Only a container that could reach init needs it (`init_reachable` in lib.rs): one without a user
//! namespace that was granted CAP_SYS_PTRACE. Init is non-dumpable, so the kernel lets only a process
//! with CAP_SYS_PTRACE in the user namespace that init's memory belongs to (the launcher's) open
//! anything of it (ptrace(2), "Ptrace access mode checking"); a container with a user namespace holds
//! no capability there, and one without CAP_SYS_PTRACE cannot regain it (no_new_privs, bounding set).
//! The copy costs about 2.5 ms per start for a 3 MiB binary (memfd pages are allocated and filled, then
//! executed; BENCHMARKS.md), which the other cases do not pay.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// Why the sealed copy could not be made or run.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot open the launcher's own binary: {0}")]
    OpenSelf(#[source] io::Error),
    #[error("cannot create a memfd for the launcher's sealed copy: {0}")]
    Create(#[source] Errno),
    #[error("cannot copy the launcher into its memfd: {0}")]
    Copy(#[source] io::Error),
    #[error("cannot seal the launcher's copy: {0}")]
    Seal(#[source] Errno),
    #[error("cannot execute the launcher's sealed copy: {0}")]
    Exec(#[source] Errno),
}

/// The seals that make the copy immutable: no write, no resize, and no removing these seals.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

// ANCHOR: ensure
/// Returns when this process already runs from a sealed copy; otherwise makes one and executes it with
/// the same arguments and environment, so it returns only on failure.
pub fn ensure() -> Result<(), SealError> {
    let mut exe = File::open("/proc/self/exe").map_err(SealError::OpenSelf)?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let copy = File::from(create_memfd()?);
    io::copy(&mut exe, &mut &copy).map_err(SealError::Copy)?;
    drop(exe);
    seal(&copy)?;
    let args = c_strings(std::env::args_os());
    let env = c_strings(std::env::vars_os().map(|(key, value)| {
        let mut pair = key;
        pair.push("=");
        pair.push(value);
        pair
    }));
    // The memfd is close-on-exec: the kernel reads the binary before it closes the descriptor, and the
    // new program holds no descriptor to its own file.
    let errno = match nix::unistd::fexecve(copy.as_fd(), &args, &env) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    Err(SealError::Exec(errno))
}
// ANCHOR_END: ensure

/// Adds [`seals`]. `F_SEAL_WRITE` waits for the kernel's other references to the copy's pages to go
/// (memfd_wait_for_pins in mm/memfd.c, about 75 ms) and fails with EBUSY if one outlasts that:
/// on a busy machine (page migration, compaction), one `exec` in some hundreds did, in CI. Tried
/// again for up to a quarter of a second before giving up.
fn seal(copy: &File) -> Result<(), SealError> {
    let mut tries = 0;
    loop {
        match fcntl(copy, FcntlArg::F_ADD_SEALS(seals())) {
            Err(Errno::EBUSY) if tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => return other.map(drop).map_err(SealError::Seal),
        }
    }
}

/// Whether `exe` is a memfd carrying every one of [`seals`] (a file on disk has no seals: EINVAL).
fn is_sealed(exe: &File) -> bool {
    fcntl(exe, FcntlArg::F_GET_SEALS).is_ok_and(|bits| SealFlag::from_bits_truncate(bits).contains(seals()))
}

/// A memfd that may be sealed and executed. `MFD_EXEC` says it will be executed, for kernels (6.3 and
/// later) where `vm.memfd_noexec` would otherwise make it non-executable; older kernels do not know
/// the flag (EINVAL) and make every memfd executable.
fn create_memfd() -> Result<std::os::fd::OwnedFd, SealError> {
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let exec = MFdFlags::from_bits_retain(libc::MFD_EXEC);
    match memfd_create("combined", base | exec) {
        Err(Errno::EINVAL) => memfd_create("combined", base),
        other => other,
    }
    .map_err(SealError::Create)
}

/// Arguments or `KEY=VALUE` pairs as C strings; the kernel gave them to this process, so none holds a
/// NUL byte.
fn c_strings(items: impl Iterator<Item = OsString>) -> Vec<CString> {
    items
        .filter_map(|item| CString::new(item.into_vec()).ok())
        .collect()
}
