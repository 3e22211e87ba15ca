//! An image's throwaway writable layer: the unpacked image is the read-only lower layer of an overlay
//! filesystem whose upper layer is a tmpfs in the container's own mount namespace (overlayfs in the
//! kernel's filesystems/overlayfs documentation, tmpfs(5), mount(2)).
//!
//! Every run of an image starts from the image as it was unpacked: what a container writes, deletes
//! or replaces lands in its upper layer, which lives in memory and vanishes with the container's mount
//! namespace, even when the launcher is killed. (The image cache itself is never written, so one run
//! deleting `python3` no longer breaks every later run.) Unprivileged users may mount overlayfs in a
//! user namespace since Linux 5.11; where the kernel refuses, the image is mounted read-only instead,
//! with a tmpfs on `/tmp` and `/run`, and the launcher says so.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use mnt_demo::resolve::fd_path;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

/// Why the layer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot open the image {path}: {errno}")]
    Open { path: PathBuf, errno: Errno },
    #[error("cannot {what} at {path}: {errno}")]
    Mount {
        what: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How the image was mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// An overlay with a writable tmpfs upper layer.
    Overlay,
    /// The kernel refused overlayfs (this errno): the image read-only, tmpfs on /tmp and /run.
    ReadOnly(Errno),
}

// ANCHOR: mount_layer
/// Mounts `image` with a throwaway writable layer, assembled under `staging` (which a tmpfs covers, in
/// this mount namespace only). Returns the new root, a mount point ready for pivot_root.
pub fn mount_layer(image: &Path, staging: &Path) -> Result<(PathBuf, Layer), LayerError> {
    // Opened first: the staging tmpfs may cover the image's own path (a cache under /tmp).
    let lower = open(
        image,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| LayerError::Open {
        path: image.to_owned(),
        errno,
    })?;
    let layers = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_at("mount a tmpfs", staging, "tmpfs", layers, Some("mode=0755"))?;
    let (upper, work, root) = (staging.join("upper"), staging.join("work"), staging.join("root"));
    for dir in [&upper, &work, &root] {
        fs::create_dir(dir).map_err(|source| LayerError::Create {
            path: dir.clone(),
            source,
        })?;
    }
    // MS_NODEV: without a device cgroup, a device node in the image must not open.
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        fd_path(&lower).display(),
        upper.display(),
        work.display()
    );
    match mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(options.as_str()),
    ) {
        Ok(()) => Ok((root, Layer::Overlay)),
        Err(errno @ (Errno::EPERM | Errno::EINVAL | Errno::ENODEV)) => {
            read_only_image(&lower, &root)?;
            Ok((root, Layer::ReadOnly(errno)))
        }
        Err(errno) => Err(LayerError::Mount {
            what: "mount the overlay",
            path: root,
            errno,
        }),
    }
}
// ANCHOR_END: mount_layer

/// The fallback: the image bound read-only, with a tmpfs on each of /tmp and /run that it has.
fn read_only_image(lower: &OwnedFd, root: &Path) -> Result<(), LayerError> {
    mount(
        Some(&fd_path(lower)),
        root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| LayerError::Mount {
        what: "bind the image",
        path: root.to_owned(),
        errno,
    })?;
    mnt_demo::rootfs::remount_flags(root, MsFlags::MS_RDONLY | MsFlags::MS_NODEV).map_err(|errno| {
        LayerError::Mount {
            what: "make the image read-only",
            path: root.to_owned(),
            errno,
        }
    })?;
    for dir in ["tmp", "run"] {
        let target = root.join(dir);
        if target.is_dir() {
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount_at("mount a tmpfs", &target, "tmpfs", flags, Some("mode=1777"))?;
        }
    }
    Ok(())
}

fn mount_at(
    what: &'static str,
    path: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), LayerError> {
    let source = (!fstype.is_empty()).then_some(fstype);
    mount(source, path, source, flags, data).map_err(|errno| LayerError::Mount {
        what,
        path: path.to_owned(),
        errno,
    })
}
