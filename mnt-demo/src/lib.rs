//! Chapter: the mount namespace (mount_namespaces(7)). A process gets its own copy of the mount table;
//! what it mounts afterwards is its own, *unless* propagation carries it across: shared mounts pass
//! mount events to their peers in other namespaces, which is why a container first makes its whole
//! tree private or slave. Then the container's root: chroot(2) only moves a process's idea of `/` and
//! can be escaped; pivot_root(2) swaps the namespace's root mount, and once the old root is detached
//! nothing leads back to the host.
//!
//! - [`mountinfo`]: reading `/proc/<pid>/mountinfo`, with the propagation fields (proc(5));
//! - [`rootfs`]: the pieces a launcher builds a container's mount tree from (used by `combined`);
//! - [`resolve`]: opening a path inside a rootfs without following a symlink out of it (openat2(2));
//! - [`scratch`]: the demo's own scratch directory and tiny rootfs, removed at the end;
//! - [`lab`]: the chapter's experiments, returning what each side saw.

pub mod lab;
pub mod mountinfo;
pub mod options;
pub mod resolve;
pub mod rootfs;
pub mod scratch;

pub use mountinfo::{MountEntry, PropagationTags};
pub use resolve::{ResolveError, resolve_in_root};
pub use rootfs::{
    MountError, PathOutcome, Propagation, bind_rootfs, isolate_root, mask_paths, mount_dev, mount_mqueue,
    mount_proc, mount_sysfs_readonly, pivot_into, readonly_paths, set_propagation,
};
pub use scratch::Scratch;
