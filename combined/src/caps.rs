//! Which capabilities the container's command keeps, and dropping the rest (capabilities(7)).
//!
//! The default is Docker's set of 14, minus CAP_MKNOD: Docker can leave MKNOD in because its device
//! cgroup stops a new device node from being opened, and this launcher has no device cgroup. Dropping
//! follows the order the production runtimes use: the bounding set first (so no later execve can regain
//! a capability), then the uid/gid switch, then the effective, permitted and inheritable sets, and the
//! ambient set cleared.

use std::fmt;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

/// Docker's default capabilities without CAP_MKNOD (see the module comment).
pub const DEFAULT_CAPS: [Capability; 13] = [
    Capability::CAP_AUDIT_WRITE,
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETGID,
    Capability::CAP_SETPCAP,
    Capability::CAP_SETUID,
    Capability::CAP_SYS_CHROOT,
];

/// The capabilities that, held in the host's user namespace (a root container without `--userns`),
/// reach the host whatever the namespaces hide, each with what it opens. Within a user namespace of
/// the container's own they are that namespace's, and harmless to the host.
pub const HOST_ROOT_CAPS: [(Capability, &str); 14] = [
    (
        Capability::CAP_SYS_ADMIN,
        "mount a cgroup v1 hierarchy and set its release_agent, a program the host's kernel runs as root",
    ),
    (
        Capability::CAP_DAC_READ_SEARCH,
        "open_by_handle_at(2) opens any file of the filesystem the rootfs is on, outside the rootfs",
    ),
    (Capability::CAP_SYS_MODULE, "load a module into the host's kernel"),
    (
        Capability::CAP_SYS_RAWIO,
        "iopl(2) and ioperm(2) reach the machine's I/O ports",
    ),
    (Capability::CAP_BPF, "load BPF programs into the host's kernel"),
    (
        Capability::CAP_SYSLOG,
        "read the host's kernel log and the kernel's real addresses in /proc/kallsyms, which undoes its \
         address randomization",
    ),
    (
        Capability::CAP_SYS_TIME,
        "set the host's clock (no namespace holds the real-time clock)",
    ),
    (
        Capability::CAP_AUDIT_CONTROL,
        "change the host's audit rules, or turn auditing off",
    ),
    (
        Capability::CAP_AUDIT_READ,
        "read the host's audit log as it is written",
    ),
    (
        Capability::CAP_PERFMON,
        "profile and trace the host's kernel and every process with perf_event_open(2)",
    ),
    (
        Capability::CAP_SYS_PACCT,
        "turn on the host's process accounting into a file of its choosing",
    ),
    (
        Capability::CAP_MAC_ADMIN,
        "change the host's mandatory access control (an LSM's policy)",
    ),
    (
        Capability::CAP_MAC_OVERRIDE,
        "pass the host's mandatory access control",
    ),
    (
        Capability::CAP_WAKE_ALARM,
        "set alarms that wake the host from suspend",
    ),
];

/// The first of [`HOST_ROOT_CAPS`] among `kept`, with what it opens.
pub fn host_root_cap(kept: &CapsHashSet) -> Option<(Capability, &'static str)> {
    HOST_ROOT_CAPS.into_iter().find(|(cap, _)| kept.contains(cap))
}

/// A `--cap-add`/`--cap-drop` argument: one capability, or `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapArg {
    All,
    One(Capability),
}

impl FromStr for CapArg {
    type Err = String;

    /// Accepts `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin`, like Docker.
    fn from_str(s: &str) -> Result<CapArg, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(CapArg::All);
        }
        let canonical = caps::to_canonical(s);
        let canonical = if canonical.starts_with("CAP_") {
            canonical
        } else {
            format!("CAP_{canonical}")
        };
        canonical
            .parse()
            .map(CapArg::One)
            .map_err(|_| format!("unknown capability {s:?}"))
    }
}

impl fmt::Display for CapArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapArg::All => f.write_str("ALL"),
            CapArg::One(cap) => write!(f, "{cap}"),
        }
    }
}

/// The set the command keeps, with Docker's rules: `--cap-add ALL` keeps everything (that the launcher's
/// bounding set holds) but the drops;
/// `--cap-drop ALL` keeps only the adds; otherwise the default, plus the adds, minus the drops.
pub fn resolve(add: &[CapArg], drop: &[CapArg]) -> CapsHashSet {
    let named = |args: &[CapArg]| -> CapsHashSet {
        args.iter()
            .filter_map(|a| {
                if let CapArg::One(cap) = a {
                    Some(*cap)
                } else {
                    None
                }
            })
            .collect()
    };
    let (adds, drops) = (named(add), named(drop));
    if add.contains(&CapArg::All) {
        // Every capability the launcher could pass on: those in its bounding set. A machine may have
        // removed some for everyone (this project's CI has no CAP_SYS_RESOURCE), and asking the
        // kernel for one of those fails the whole capset(2).
        let all = caps::read(None, caps::CapSet::Bounding).unwrap_or_else(|_| caps::all());
        all.into_iter().filter(|c| !drops.contains(c)).collect()
    } else if drop.contains(&CapArg::All) {
        adds
    } else {
        DEFAULT_CAPS
            .into_iter()
            .chain(adds)
            .filter(|c| !drops.contains(c))
            .collect()
    }
}

/// Why dropping failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot drop capabilities ({set}): {source}")]
pub struct DropError {
    set: &'static str,
    #[source]
    source: caps::errors::CapsError,
}

// ANCHOR: drop_bounding
/// Step 1 of dropping: removes everything but `keep` from the bounding set, the ceiling on what any
/// later execve can grant, file capabilities and setuid-root binaries included.
pub fn drop_bounding(keep: &CapsHashSet) -> Result<(), DropError> {
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|source| DropError {
                set: "bounding",
                source,
            })?;
        }
    }
    Ok(())
}

/// Step 2, after the uid/gid switch: the effective and permitted sets become `keep`, the inheritable
/// set `inheritable` and the ambient set `ambient` (`combined run`: both empty; an OCI config may
/// name some, which a non-root command then keeps across execve). Ambient ones must be permitted and
/// inheritable too (capabilities(7)), so they are raised last.
pub fn set_process_caps(
    keep: &CapsHashSet,
    inheritable: &CapsHashSet,
    ambient: &CapsHashSet,
) -> Result<(), DropError> {
    let failed = |set: &'static str| move |source| DropError { set, source };
    caps::clear(None, CapSet::Ambient).map_err(failed("ambient"))?;
    caps::set(None, CapSet::Inheritable, inheritable).map_err(failed("inheritable"))?;
    caps::set(None, CapSet::Effective, keep).map_err(failed("effective"))?;
    caps::set(None, CapSet::Permitted, keep).map_err(failed("permitted"))?;
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, *cap).map_err(failed("ambient"))?;
    }
    Ok(())
}
// ANCHOR_END: drop_bounding

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capability_names_like_docker() {
        assert_eq!("NET_ADMIN".parse(), Ok(CapArg::One(Capability::CAP_NET_ADMIN)));
        assert_eq!(
            "cap_net_admin".parse(),
            Ok(CapArg::One(Capability::CAP_NET_ADMIN))
        );
        assert_eq!("all".parse(), Ok(CapArg::All));
        assert_eq!(
            "NET_WIZARD".parse::<CapArg>(),
            Err("unknown capability \"NET_WIZARD\"".to_owned())
        );
    }

    #[test]
    fn default_set_is_dockers_without_mknod() {
        let keep = resolve(&[], &[]);
        assert_eq!(keep.len(), 13);
        assert!(!keep.contains(&Capability::CAP_MKNOD));
        assert!(!keep.contains(&Capability::CAP_SYS_ADMIN));
    }

    #[test]
    fn drops_apply_after_adds() {
        let keep = resolve(
            &[CapArg::One(Capability::CAP_SYS_ADMIN)],
            &[CapArg::One(Capability::CAP_CHOWN)],
        );
        assert!(keep.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!keep.contains(&Capability::CAP_CHOWN));
        assert_eq!(resolve(&[], &[CapArg::All]), CapsHashSet::new());
        let only = resolve(&[CapArg::One(Capability::CAP_NET_ADMIN)], &[CapArg::All]);
        assert_eq!(
            only,
            [Capability::CAP_NET_ADMIN].into(),
            "drop ALL keeps only the adds"
        );
        let all_but = resolve(&[CapArg::All], &[CapArg::One(Capability::CAP_SYS_ADMIN)]);
        let bounding = caps::read(None, caps::CapSet::Bounding).unwrap();
        assert!(!all_but.contains(&Capability::CAP_SYS_ADMIN));
        assert_eq!(
            all_but.len(),
            bounding.len() - 1,
            "ALL is every capability the launcher holds"
        );
    }
}
