//! Mount options as mount(8) and the OCI runtime spec write them (`ro`, `nosuid`, `rslave`,
//! `mode=755`), turned into what mount(2) takes: flags to set, flags the option clears, a propagation
//! change (which mount(2) applies in a call of its own), and the rest as the filesystem's data string.
//! mount(8) "FILESYSTEM-INDEPENDENT MOUNT OPTIONS"; mount_namespaces(7) for the propagation ones.

use nix::mount::MsFlags;

use crate::rootfs::Propagation;

/// One mount's options, sorted by what mount(2) does with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set (`ro` is MS_RDONLY).
    pub flags: MsFlags,
    /// Flags an option turns off (`rw`, `suid`, `dev`, `exec`).
    pub cleared: MsFlags,
    /// `bind` or `rbind`.
    pub bind: Option<Recursion>,
    /// A propagation change, and whether it applies to the mounts below too (`rshared`).
    pub propagation: Option<(Propagation, Recursion)>,
    /// Everything else, for the filesystem itself (`mode=755,size=1k` for tmpfs), in order.
    pub data: Vec<String>,
}

/// Whether an option applies to one mount or to it and every mount below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recursion {
    One,
    Recursive,
}

impl Default for MountOptions {
    fn default() -> MountOptions {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            bind: None,
            propagation: None,
            data: Vec::new(),
        }
    }
}

impl MountOptions {
    /// The data string for mount(2), or none.
    pub fn data(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

// ANCHOR: parse
/// Sorts `options`; an option with no flag of its own that is not `key=value` or a known
/// filesystem-specific word is passed on as data, where the filesystem judges it.
pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut parsed = MountOptions::default();
    for option in options {
        let option = option.as_ref();
        if let Some(flag) = set_flag(option) {
            parsed.flags |= flag;
            parsed.cleared.remove(flag);
        } else if let Some(flag) = clear_flag(option) {
            parsed.cleared |= flag;
            parsed.flags.remove(flag);
        } else if let Some(propagation) = propagation(option) {
            parsed.propagation = Some(propagation);
        } else if option == "bind" {
            parsed.bind = Some(Recursion::One);
        } else if option == "rbind" {
            parsed.bind = Some(Recursion::Recursive);
        } else if option != "defaults" {
            parsed.data.push(option.to_owned());
        }
    }
    parsed
}
// ANCHOR_END: parse

fn set_flag(option: &str) -> Option<MsFlags> {
    Some(match option {
        "ro" => MsFlags::MS_RDONLY,
        "nosuid" => MsFlags::MS_NOSUID,
        "nodev" => MsFlags::MS_NODEV,
        "noexec" => MsFlags::MS_NOEXEC,
        "sync" => MsFlags::MS_SYNCHRONOUS,
        "dirsync" => MsFlags::MS_DIRSYNC,
        "mand" => MsFlags::MS_MANDLOCK,
        "noatime" => MsFlags::MS_NOATIME,
        "nodiratime" => MsFlags::MS_NODIRATIME,
        "relatime" => MsFlags::MS_RELATIME,
        "strictatime" => MsFlags::MS_STRICTATIME,
        "silent" => MsFlags::MS_SILENT,
        _ => return None,
    })
}

fn clear_flag(option: &str) -> Option<MsFlags> {
    Some(match option {
        "rw" => MsFlags::MS_RDONLY,
        "suid" => MsFlags::MS_NOSUID,
        "dev" => MsFlags::MS_NODEV,
        "exec" => MsFlags::MS_NOEXEC,
        "async" => MsFlags::MS_SYNCHRONOUS,
        "nomand" => MsFlags::MS_MANDLOCK,
        "atime" => MsFlags::MS_NOATIME,
        "diratime" => MsFlags::MS_NODIRATIME,
        "norelatime" => MsFlags::MS_RELATIME,
        "nostrictatime" => MsFlags::MS_STRICTATIME,
        "loud" => MsFlags::MS_SILENT,
        _ => return None,
    })
}

fn propagation(option: &str) -> Option<(Propagation, Recursion)> {
    let (name, recursion) = match option.strip_prefix('r') {
        Some(rest @ ("shared" | "slave" | "private" | "unbindable")) => (rest, Recursion::Recursive),
        _ => (option, Recursion::One),
    };
    let propagation = match name {
        "shared" => Propagation::Shared,
        "slave" => Propagation::Slave,
        "private" => Propagation::Private,
        "unbindable" => Propagation::Unbindable,
        _ => return None,
    };
    Some((propagation, recursion))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_sort_into_flags_propagation_and_data() {
        let parsed = parse(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=1k",
            "rbind",
            "rslave",
            "ro",
        ]);
        assert_eq!(
            parsed.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_RDONLY
        );
        assert_eq!(parsed.bind, Some(Recursion::Recursive));
        assert_eq!(
            parsed.propagation,
            Some((Propagation::Slave, Recursion::Recursive))
        );
        assert_eq!(parsed.data().as_deref(), Some("mode=755,size=1k"));
    }

    #[test]
    fn a_later_option_wins() {
        let parsed = parse(&["ro", "rw", "noexec", "exec", "suid"]);
        assert!(parsed.flags.is_empty(), "{parsed:?}");
        assert_eq!(
            parsed.cleared,
            MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID
        );
        assert_eq!(
            parse(&["private", "unbindable"]).propagation,
            Some((Propagation::Unbindable, Recursion::One))
        );
        assert_eq!(parse(&["defaults"]), MountOptions::default());
    }
}
