//! What a process sees of itself, which every step of the chapter reads: its user namespace, its uid
//! and gid, and its capability sets (capabilities(7)); and what another process reads of it in
//! `/proc/<pid>/status` and `/proc/<pid>/uid_map`, which the kernel translates into the reader's user
//! namespace (user_namespaces(7)).

use std::fmt;
use std::fs;

use caps::{CapSet, Capability};
use nix::errno::Errno;
use nskit::ns::{Kind, NsId, Proc, ns_id};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{NOBODY, UserError};

/// One capability set as the kernel keeps it: bit `n` is capability number `n` (capabilities(7)).
///
/// In a message, and in `caps-report`'s output, a set is written as `/proc/<pid>/status` writes it
/// (`CapEff: 000001ffffffffff`): sixteen hex digits, so that the two can be compared by eye.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CapMask(pub u64);

/// The three sets that decide what a process may do and keep: effective (checked now), permitted
/// (may be made effective) and bounding (the most an `execve` can ever give back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    pub effective: CapMask,
    pub permitted: CapMask,
    pub bounding: CapMask,
}

// ANCHOR: read_caps
/// Reads the calling thread's effective, permitted and bounding sets with the `caps` crate (capget(2)
/// and prctl(PR_CAPBSET_READ)). Capabilities are always relative to the caller's user namespace: a
/// full set here means "everything, in the namespaces this user namespace owns".
pub fn read_caps() -> Result<CapSets, UserError> {
    let mask = |set: CapSet| {
        caps::read(None, set)
            .map(|caps| CapMask(caps.iter().fold(0, |acc, cap| acc | cap.bitmask())))
            .map_err(|e| UserError::Caps(e.to_string()))
    };
    Ok(CapSets {
        effective: mask(CapSet::Effective)?,
        permitted: mask(CapSet::Permitted)?,
        bounding: mask(CapSet::Bounding)?,
    })
}
// ANCHOR_END: read_caps

/// Every capability this kernel knows (`/proc/sys/kernel/cap_last_cap`), as a mask.
pub fn all_caps() -> CapMask {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    CapMask(known.iter().fold(0, |acc, cap| acc | cap.bitmask()))
}

impl CapMask {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every capability this kernel knows is in the set.
    pub fn is_full(self) -> bool {
        let all = all_caps().0;
        self.0 & all == all
    }

    /// The names of the capabilities in `self`, `CAP_CHOWN` first.
    pub fn names(self) -> Vec<String> {
        let mut caps: Vec<Capability> = caps::all()
            .into_iter()
            .filter(|cap| self.0 & cap.bitmask() != 0)
            .collect();
        caps.sort_by_key(Capability::index);
        caps.iter().map(Capability::to_string).collect()
    }
}

impl fmt::Display for CapMask {
    /// `all`, `none`, `all but CAP_X`, or the list of names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let missing = CapMask(all_caps().0 & !self.0);
        if self.is_empty() {
            f.write_str("none")
        } else if missing.is_empty() {
            f.write_str("all")
        } else if missing.names().len() <= 3 {
            write!(f, "all but {}", missing.names().join(","))
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

impl Serialize for CapMask {
    fn serialize<S: Serializer>(&self, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(&format!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for CapMask {
    fn deserialize<D: Deserializer<'de>>(from: D) -> Result<CapMask, D::Error> {
        let text = String::deserialize(from)?;
        u64::from_str_radix(&text, 16)
            .map(CapMask)
            .map_err(|_| serde::de::Error::custom(format!("not a capability set in hex: {text:?}")))
    }
}

impl fmt::Display for CapSets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "eff={} perm={} bnd={}",
            self.effective, self.permitted, self.bounding
        )
    }
}

/// Who a process is, in its own user namespace's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdView {
    pub userns: NsId,
    pub uid: u32,
    pub gid: u32,
    pub caps: CapSets,
}

impl fmt::Display for IdView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid={} gid={}  {}", self.uid, self.gid, self.caps)
    }
}

// ANCHOR: observe
/// Reads the caller's user namespace, ids and capabilities. `getuid(2)` answers in the caller's own
/// namespace: an id that has no mapping there reads as the overflow id (`/proc/sys/kernel/overflowuid`).
pub fn observe() -> Result<IdView, UserError> {
    Ok(IdView {
        userns: ns_id(Proc::Current, Kind::User).map_err(|source| UserError::Read {
            what: "/proc/self/ns/user".into(),
            source,
        })?,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        caps: read_caps()?,
    })
}
// ANCHOR_END: observe

/// The overflow uid the kernel shows for an id with no mapping (`/proc/sys/kernel/overflowuid`).
pub fn overflow_uid() -> u32 {
    fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NOBODY)
}

/// The `Uid:` and `Gid:` lines of `/proc/<pid>/status` (real, effective, saved, filesystem). The kernel
/// translates them into the *reader's* user namespace, so two readers may see different numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIds {
    pub uid: String,
    pub gid: String,
}

impl fmt::Display for StatusIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid: {}  Gid: {}", self.uid, self.gid)
    }
}

/// Reads the `Uid:` and `Gid:` lines of `/proc/<pid>/status`, as seen by the caller.
pub fn status_ids(who: Proc) -> Result<StatusIds, UserError> {
    let path = who.dir().join("status");
    let text = fs::read_to_string(&path).map_err(|source| UserError::Read {
        what: path.display().to_string(),
        source,
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| rest.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    Ok(StatusIds {
        uid: field("Uid:"),
        gid: field("Gid:"),
    })
}

/// Reads `/proc/<pid>/uid_map` or `gid_map` as the caller sees it: the kernel prints the outside column
/// relative to the *reader's* user namespace. Lines are joined with `; `; an unwritten map is empty.
pub fn read_map(who: Proc, file: &str) -> Result<String, UserError> {
    let path = who.dir().join(file);
    let text = fs::read_to_string(&path).map_err(|source| UserError::Read {
        what: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; "))
}

/// Tries to set the host's hostname to the name it already has, so that even a success would change
/// nothing: a probe for CAP_SYS_ADMIN over the UTS namespace the caller is in.
pub fn rename_host() -> Result<(), Errno> {
    let current = nix::unistd::gethostname()?;
    nix::unistd::sethostname(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_round_trip() {
        let view = IdView {
            userns: NsId {
                kind: Kind::User,
                inode: 4026531837,
            },
            uid: 0,
            gid: 65534,
            caps: CapSets {
                effective: CapMask(0x1ff_ffff_ffff),
                permitted: CapMask(0),
                bounding: CapMask(1 << 21),
            },
        };
        let line = serde_json::to_string(&view).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains(r#""effective":"000001ffffffffff""#),
            "sets read as in /proc/<pid>/status: {line}"
        );
        assert_eq!(serde_json::from_str::<IdView>(&line).unwrap(), view);
        assert!(serde_json::from_str::<IdView>(r#"["1"]"#).is_err());
        let bad_set = line.replace("000001ffffffffff", "all");
        assert!(serde_json::from_str::<IdView>(&bad_set).is_err());
    }

    #[test]
    fn cap_masks_read_as_words() {
        assert_eq!(CapMask(0).to_string(), "none");
        assert_eq!(all_caps().to_string(), "all");
        let sys_admin = Capability::CAP_SYS_ADMIN.bitmask();
        assert_eq!(
            CapMask(all_caps().0 & !sys_admin).to_string(),
            "all but CAP_SYS_ADMIN"
        );
        assert_eq!(
            CapMask(Capability::CAP_CHOWN.bitmask() | Capability::CAP_KILL.bitmask()).to_string(),
            "CAP_CHOWN,CAP_KILL"
        );
        assert!(all_caps().is_full());
        assert!(!CapMask(sys_admin).is_full());
    }
}
