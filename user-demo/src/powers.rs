//! Step 4: root inside a user namespace has every capability, but only over the namespaces its user
//! namespace owns. It cannot rename the host or read a root-only host file; it can create a UTS and a
//! mount namespace and use them (user_namespaces(7), capabilities(7), mount_namespaces(7)).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::userns::is_root;
use nskit::{ChildError, Spawn};
use serde::{Deserialize, Serialize};

use crate::mapping::take_ids_in_child;
use crate::view::{IdView, observe, rename_host};
use crate::{IdMap, UserError, inside_ids, reply};

/// A file only root may read. As root the demo makes one (mode 0600, removed on drop); as an ordinary
/// user it uses `/etc/shadow`, the host's own.
#[derive(Debug)]
pub struct RootOnlyFile {
    path: PathBuf,
    made_dir: Option<PathBuf>,
}

impl RootOnlyFile {
    /// Finds or makes the file; `None` when not root and the host has no unreadable `/etc/shadow`.
    pub fn prepare() -> io::Result<Option<RootOnlyFile>> {
        if !is_root() {
            let shadow = Path::new("/etc/shadow");
            let unreadable =
                matches!(File::open(shadow), Err(e) if e.kind() == io::ErrorKind::PermissionDenied);
            return Ok(unreadable.then(|| RootOnlyFile {
                path: shadow.to_owned(),
                made_dir: None,
            }));
        }
        let dir = std::env::temp_dir().join(format!("user-demo-{}", std::process::id()));
        fs::DirBuilder::new().mode(0o755).create(&dir)?;
        let file = RootOnlyFile {
            path: dir.join("secret"),
            made_dir: Some(dir),
        };
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)?
            .write_all(b"only root may read this\n")?;
        Ok(Some(file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootOnlyFile {
    fn drop(&mut self) {
        if let Some(dir) = &self.made_dir {
            let _ = fs::remove_file(&self.path);
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Step 4's results, all observed by a child that is mapped (root inside, by default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Powers {
    pub view: IdView,
    /// The host's UTS and mount namespaces, where the child starts.
    pub host_uts: NsId,
    pub host_mnt: NsId,
    /// sethostname in the host's UTS namespace.
    #[serde(with = "nskit::channel::errno_result")]
    pub rename_host: Result<(), Errno>,
    /// Opening the root-only file for reading, when there is one.
    #[serde(with = "nskit::channel::errno_result_option")]
    pub read_secret: Option<Result<(), Errno>>,
    /// unshare(CLONE_NEWUTS | CLONE_NEWNS).
    #[serde(with = "nskit::channel::errno_result")]
    pub unshare: Result<(), Errno>,
    /// The namespaces the child is in after unshare.
    pub uts: NsId,
    pub mnt: NsId,
    /// sethostname in its own new UTS namespace, and the name it reads back.
    #[serde(with = "nskit::channel::errno_result")]
    pub rename_own: Result<(), Errno>,
    pub hostname: String,
    /// Mounting a tmpfs on /tmp in its own new mount namespace.
    #[serde(with = "nskit::channel::errno_result")]
    pub mount_tmpfs: Result<(), Errno>,
}

// ANCHOR: inside_powers
/// Step 4: a mapped child tries the host's hostname and a root-only host file (both refused: its
/// capabilities count only inside its user namespace, and file access is checked on its outside ids),
/// then creates a UTS and a mount namespace, which its user namespace owns, and uses them.
pub fn inside_powers(
    uid_map: &IdMap,
    gid_map: &IdMap,
    secret: Option<&Path>,
    hostname: &str,
) -> Result<Powers, UserError> {
    let (uid, gid) = inside_ids(uid_map, gid_map);
    let spawn = Spawn::new(CloneFlags::CLONE_NEWUSER).maps(uid_map.clone(), gid_map.clone());
    let mut child = spawn.run(|channel| {
        let powers = (|| -> Result<Powers, ChildError> {
            take_ids_in_child(uid, gid)?;
            let view = observe().map_err(|e| ChildError::new("observe", e))?;
            let (host_uts, host_mnt) = (my_ns(Kind::Uts)?, my_ns(Kind::Mnt)?);
            let rename_host = rename_host();
            let read_secret = secret.map(|path| File::open(path).map(drop).map_err(|e| io_errno(&e)));
            let unshare = nix::sched::unshare(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWNS);
            let (rename_own, mount_tmpfs) = if unshare.is_ok() {
                (nix::unistd::sethostname(hostname), mount_tmpfs_on_tmp())
            } else {
                (Err(Errno::ENOSYS), Err(Errno::ENOSYS))
            };
            let own_name = nix::unistd::gethostname().map_err(|e| ChildError::sys("gethostname", e))?;
            Ok(Powers {
                view,
                host_uts,
                host_mnt,
                rename_host,
                read_secret,
                unshare,
                uts: my_ns(Kind::Uts)?,
                mnt: my_ns(Kind::Mnt)?,
                rename_own,
                hostname: own_name.to_string_lossy().into_owned(),
                mount_tmpfs,
            })
        })();
        reply(channel, &powers)
    })?;
    let powers = child.channel().recv_reply()?;
    child.wait().map_err(UserError::Lost)?;
    Ok(powers)
}

/// Mounts a tmpfs over /tmp: allowed because the child's user namespace owns its new mount namespace.
/// That namespace was created by a less privileged user namespace, so the kernel turned its copies of
/// the host's shared mounts into slaves (mount_namespaces(7)): nothing propagates back to the host.
fn mount_tmpfs_on_tmp() -> Result<(), Errno> {
    use nix::mount::{MsFlags, mount};
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m"),
    )
}
// ANCHOR_END: inside_powers

/// The caller's namespace of `kind`, in a child that reports a failure to read it.
fn my_ns(kind: Kind) -> Result<NsId, ChildError> {
    ns_id(Proc::Current, kind)
        .map_err(|e| ChildError::new(&format!("read /proc/self/ns/{}", kind.proc_name()), e))
}

fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}
