//! Reading a kernel's build configuration (the `.config` that `make menuconfig` writes and Debian
//! installs as `/boot/config-<release>`; Documentation/kbuild/kconfig-language.rst): which features
//! are built in (`=y`), built as modules (`=m`), or absent (`# CONFIG_X is not set`, or not listed).
//! The VM needs some features built in, and others either way, loading the modules itself.

use std::collections::HashMap;

/// How a kernel provides one feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tristate {
    BuiltIn,
    Module,
    Absent,
}

/// A parsed kernel configuration.
#[derive(Debug, Default)]
pub struct Config {
    values: HashMap<String, String>,
}

impl Config {
    /// Parses `CONFIG_X=value` lines; comments (including `# CONFIG_X is not set`) mean absent.
    pub fn parse(text: &str) -> Config {
        let values = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .filter_map(|(k, v)| Some((k.strip_prefix("CONFIG_")?.to_owned(), v.to_owned())))
            .collect();
        Config { values }
    }

    /// The state of `symbol`, given without its `CONFIG_` prefix.
    pub fn get(&self, symbol: &str) -> Tristate {
        match self.values.get(symbol).map(String::as_str) {
            Some("y") => Tristate::BuiltIn,
            Some("m") => Tristate::Module,
            _ => Tristate::Absent,
        }
    }
}

/// A kernel feature the VM uses.
#[derive(Clone, Copy, Debug)]
pub struct Feature {
    /// The Kconfig symbol, without `CONFIG_`.
    pub symbol: &'static str,
    /// The module that provides it when it is `=m`.
    pub module: &'static str,
    /// What it is for, for error messages.
    pub purpose: &'static str,
    /// What the VM does without it.
    pub need: Need,
}

/// How much the VM depends on a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Must be compiled into the kernel (needed before any module can be loaded, or not modular).
    BuiltIn,
    /// Built in or as a module; without it the VM cannot run the tests.
    Required,
    /// Needed to share the host's root over 9p; without it test binaries are copied in instead.
    Share,
    /// Used by some tests (a chapter's devices); loaded when present.
    Wanted,
}

/// Every feature the VM looks for, in the order the modules are loaded.
pub const FEATURES: &[Feature] = &[
    Feature {
        symbol: "BLK_DEV_INITRD",
        module: "",
        purpose: "booting from an initramfs",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "DEVTMPFS",
        module: "",
        purpose: "device nodes in /dev",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "TMPFS",
        module: "",
        purpose: "writable /tmp",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "SERIAL_8250_CONSOLE",
        module: "",
        purpose: "the serial console",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "NAMESPACES",
        module: "",
        purpose: "namespaces",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "UTS_NS",
        module: "",
        purpose: "UTS namespaces",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "IPC_NS",
        module: "",
        purpose: "IPC namespaces",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "PID_NS",
        module: "",
        purpose: "PID namespaces",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "NET_NS",
        module: "",
        purpose: "network namespaces",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "USER_NS",
        module: "",
        purpose: "user namespaces",
        need: Need::BuiltIn,
    },
    Feature {
        symbol: "VIRTIO_PCI",
        module: "virtio_pci",
        purpose: "virtio devices on PCI",
        need: Need::Required,
    },
    Feature {
        symbol: "VIRTIO_CONSOLE",
        module: "virtio_console",
        purpose: "the result port (virtio-serial)",
        need: Need::Required,
    },
    Feature {
        symbol: "NET_9P_VIRTIO",
        module: "9pnet_virtio",
        purpose: "9p over virtio",
        need: Need::Share,
    },
    Feature {
        symbol: "9P_FS",
        module: "9p",
        purpose: "the 9p file system",
        need: Need::Share,
    },
    Feature {
        symbol: "OVERLAY_FS",
        module: "overlay",
        purpose: "a writable layer over the shared root",
        need: Need::Share,
    },
    Feature {
        symbol: "VETH",
        module: "veth",
        purpose: "veth pairs (network chapter)",
        need: Need::Wanted,
    },
    Feature {
        symbol: "BRIDGE",
        module: "bridge",
        purpose: "bridges (network chapter)",
        need: Need::Wanted,
    },
];

/// Modules the share needs that the tests need as well, whatever the root: combined lays a
/// container's writable layer over its image with overlayfs.
pub const TESTS_USE: &[&str] = &["overlay"];

/// What the configuration means for the VM.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Modules to pack into the initramfs and load, in order (their dependencies not yet added).
    pub modules: Vec<&'static str>,
    /// The features for sharing the host's root over 9p that this kernel lacks (`9P_FS` ...); empty
    /// when it can share.
    pub missing_share: Vec<&'static str>,
    /// Features the tests would use that this kernel lacks (`VETH` ...), for a warning.
    pub missing_wanted: Vec<&'static str>,
}

impl Plan {
    /// Whether the kernel provides 9p over virtio and overlayfs, built in or as modules.
    pub fn can_share(&self) -> bool {
        self.missing_share.is_empty()
    }

    /// Leaves out the modules only the 9p share needs (when the test binaries are copied instead);
    /// those the tests use too ([`TESTS_USE`]) stay.
    pub fn drop_share_modules(&mut self) {
        let share: Vec<&str> = FEATURES
            .iter()
            .filter(|f| f.need == Need::Share && !TESTS_USE.contains(&f.module))
            .map(|f| f.module)
            .collect();
        self.modules.retain(|m| !share.contains(m));
    }
}

/// Checks the configuration against [`FEATURES`]: an error names every missing required feature.
pub fn plan(config: &Config) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut missing = Vec::new();
    for f in FEATURES {
        match (config.get(f.symbol), f.need) {
            (Tristate::BuiltIn, _) => {}
            (Tristate::Module, Need::BuiltIn) => missing.push(format!(
                "CONFIG_{} ({}) is a module but must be built in",
                f.symbol, f.purpose
            )),
            (Tristate::Module, _) => plan.modules.push(f.module),
            (Tristate::Absent, Need::BuiltIn | Need::Required) => {
                missing.push(format!("CONFIG_{} ({})", f.symbol, f.purpose))
            }
            (Tristate::Absent, Need::Share) => plan.missing_share.push(f.symbol),
            (Tristate::Absent, Need::Wanted) => plan.missing_wanted.push(f.symbol),
        }
    }
    if !plan.can_share() {
        plan.drop_share_modules();
    }
    if missing.is_empty() {
        Ok(plan)
    } else {
        Err(missing.join("; "))
    }
}

/// Finds the configuration compiled into a kernel with `CONFIG_IKCONFIG` (between the markers
/// `IKCFG_ST` and `IKCFG_ED`, gzip-compressed), for kernels that ship no config file.
pub fn embedded(vmlinux: &[u8]) -> Option<String> {
    use std::io::Read;
    let start = find(vmlinux, b"IKCFG_ST")? + 8;
    let len = find(&vmlinux[start..], b"IKCFG_ED")?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&vmlinux[start..start + len])
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_LIKE: &str = "\
# Automatically generated file; DO NOT EDIT.
CONFIG_BLK_DEV_INITRD=y
CONFIG_DEVTMPFS=y
CONFIG_TMPFS=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_IPC_NS=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
CONFIG_USER_NS=y
CONFIG_VIRTIO_PCI=m
CONFIG_VIRTIO_CONSOLE=m
CONFIG_NET_9P_VIRTIO=m
CONFIG_9P_FS=m
CONFIG_OVERLAY_FS=m
CONFIG_VETH=m
# CONFIG_BRIDGE is not set
CONFIG_LOCALVERSION=\"-amd64\"
";

    #[test]
    fn reads_tristates() {
        let c = Config::parse(DEBIAN_LIKE);
        assert_eq!(c.get("DEVTMPFS"), Tristate::BuiltIn);
        assert_eq!(c.get("VETH"), Tristate::Module);
        assert_eq!(c.get("BRIDGE"), Tristate::Absent);
        assert_eq!(c.get("NOT_MENTIONED"), Tristate::Absent);
        assert_eq!(c.get("LOCALVERSION"), Tristate::Absent);
    }

    #[test]
    fn modules_are_loaded_built_ins_are_not() {
        let p = plan(&Config::parse(DEBIAN_LIKE)).unwrap();
        assert_eq!(
            p.modules,
            [
                "virtio_pci",
                "virtio_console",
                "9pnet_virtio",
                "9p",
                "overlay",
                "veth"
            ]
        );
        assert!(p.can_share());
        assert_eq!(p.missing_wanted, ["BRIDGE"]);
    }

    #[test]
    fn all_built_in_needs_no_modules() {
        let text = DEBIAN_LIKE.replace("=m", "=y");
        let p = plan(&Config::parse(&text)).unwrap();
        assert!(p.modules.is_empty());
    }

    #[test]
    fn without_9p_the_share_is_off_and_its_modules_dropped() {
        let text = DEBIAN_LIKE.replace("CONFIG_9P_FS=m", "# CONFIG_9P_FS is not set");
        let p = plan(&Config::parse(&text)).unwrap();
        assert!(!p.can_share());
        assert_eq!(p.missing_share, ["9P_FS"]);
        assert_eq!(p.modules, ["virtio_pci", "virtio_console", "overlay", "veth"]);
    }

    #[test]
    fn a_copied_root_leaves_out_9p_but_keeps_overlayfs_for_the_tests() {
        let mut p = plan(&Config::parse(DEBIAN_LIKE)).unwrap();
        p.drop_share_modules();
        assert_eq!(p.modules, ["virtio_pci", "virtio_console", "overlay", "veth"]);
    }

    #[test]
    fn a_missing_feature_is_named() {
        let text = DEBIAN_LIKE
            .replace("CONFIG_USER_NS=y", "# CONFIG_USER_NS is not set")
            .replace("CONFIG_VIRTIO_CONSOLE=m", "")
            .replace("CONFIG_DEVTMPFS=y", "CONFIG_DEVTMPFS=m");
        let err = plan(&Config::parse(&text)).unwrap_err();
        assert!(err.contains("CONFIG_USER_NS (user namespaces)"), "{err}");
        assert!(err.contains("CONFIG_VIRTIO_CONSOLE"), "{err}");
        assert!(
            err.contains("CONFIG_DEVTMPFS (device nodes in /dev) is a module"),
            "{err}"
        );
    }

    #[test]
    fn finds_an_embedded_config() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"CONFIG_VETH=y\n").unwrap();
        let mut image = b"\x7fELF....IKCFG_ST".to_vec();
        image.extend(gz.finish().unwrap());
        image.extend(b"IKCFG_ED....");
        let text = embedded(&image).unwrap();
        assert_eq!(Config::parse(&text).get("VETH"), Tristate::BuiltIn);
        assert!(embedded(b"no config here").is_none());
    }
}
