//! The embedded default root filesystem: a fresh tmpfs holding read-only views of the host's programs
//! and libraries (/usr, /bin, /sbin, /lib*), a minimal /etc of its own, and empty /proc, /dev, /sys,
//! /tmp for the usual mounts. It needs no download, and it is built inside the container's own mount
//! namespace, so nothing of it exists on the host. mount(2), tmpfs(5).

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

use mnt_demo::rootfs::{Propagation, add_flags_recursively, set_propagation};

/// The host directories the container sees read-only (a missing one is skipped; a symlink, as on a
/// merged-/usr system where /bin -> usr/bin, is recreated as the same symlink).
pub const HOST_DIRS: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Host files in /etc that programs from the host's /usr need: the dynamic loader's cache and
/// configuration, Debian's alternatives symlinks, the time zone.
pub const HOST_ETC: [&str; 5] = [
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
];

/// Why the host view could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum HostViewError {
    #[error("cannot mount {what} on {path}: {errno}")]
    Mount {
        what: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
}

fn mount_err<'a>(what: &'static str, path: &'a Path) -> impl Fn(nix::errno::Errno) -> HostViewError + 'a {
    move |errno| HostViewError::Mount {
        what,
        path: path.to_owned(),
        errno,
    }
}

fn create_err(path: &Path) -> impl Fn(io::Error) -> HostViewError + '_ {
    move |source| HostViewError::Create {
        path: path.to_owned(),
        source,
    }
}

// ANCHOR: assemble
/// Builds the view on a tmpfs mounted at `staging` and returns `staging`, ready to be pivoted into.
pub fn assemble(staging: &Path, hostname: &str) -> Result<PathBuf, HostViewError> {
    let fresh = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), staging, Some("tmpfs"), fresh, Some("mode=0755"))
        .map_err(mount_err("tmpfs", staging))?;
    for name in HOST_DIRS {
        share_read_only(&Path::new("/").join(name), &staging.join(name))?;
    }
    let etc = staging.join("etc");
    fs::create_dir(&etc).map_err(create_err(&etc))?;
    for name in HOST_ETC {
        share_read_only(&Path::new("/etc").join(name), &etc.join(name))?;
    }
    write_etc(&etc, hostname)?;
    for dir in [
        "proc", "dev", "sys", "tmp", "root", "home", "run", "var", "var/tmp",
    ] {
        let path = staging.join(dir);
        fs::create_dir(&path).map_err(create_err(&path))?;
    }
    let tmp = staging.join("tmp");
    mount(Some("tmpfs"), &tmp, Some("tmpfs"), fresh, Some("mode=1777")).map_err(mount_err("tmpfs", &tmp))?;
    let var_tmp = staging.join("var/tmp");
    fs::set_permissions(&var_tmp, fs::Permissions::from_mode(0o1777)).map_err(create_err(&var_tmp))?;
    Ok(staging.to_owned())
}
// ANCHOR_END: assemble

/// Shows the host's `host` at `target`: the same symlink if it is one, else a read-only, nosuid bind
/// mount. A missing `host` is skipped.
fn share_read_only(host: &Path, target: &Path) -> Result<(), HostViewError> {
    let Ok(meta) = fs::symlink_metadata(host) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        let link = fs::read_link(host).map_err(create_err(host))?;
        return symlink(&link, target).map_err(create_err(target));
    }
    if meta.is_dir() {
        fs::create_dir(target).map_err(create_err(target))?;
    } else {
        fs::write(target, b"").map_err(create_err(target))?;
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(host), target, None::<&str>, bind, None::<&str>).map_err(mount_err("bind", target))?;
    // Private first: as a slave of the host's mounts it would show a mount the host makes there later
    // (autofs, NFS) without the flags below.
    set_propagation(target, Propagation::Private, true).map_err(|e| HostViewError::Mount {
        what: "make private",
        path: target.to_owned(),
        errno: e.errno(),
    })?;
    // Every mount the bind brought along (a separate /usr/local, an NFS /usr/share), not only its top
    // one: a remount changes one mount, and those below stayed writable.
    add_flags_recursively(
        target,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )
    .map_err(mount_err("read-only bind", target))
}

/// The container's own /etc files: root and nobody, the hostname, localhost.
fn write_etc(etc: &Path, hostname: &str) -> Result<(), HostViewError> {
    let files = [
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                .to_owned(),
        ),
        ("group", "root:x:0:\nnogroup:x:65534:\n".to_owned()),
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"),
        ),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files\n".to_owned(),
        ),
    ];
    for (name, text) in files {
        let path = etc.join(name);
        fs::write(&path, text).map_err(create_err(&path))?;
    }
    Ok(())
}
