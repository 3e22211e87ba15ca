//! Kernel modules for the guest: which files to pack and in which order /init loads them. The
//! dependencies come from `/lib/modules/<release>/modules.dep` (modules.dep(5): `path: dep dep ...`,
//! written by depmod(8)); a module is loaded only after everything it depends on. Compressed modules
//! (`.ko.xz`, `.ko.zst`, `.ko.gz`, as Ubuntu, Fedora and Arch ship them) are decompressed on the
//! host, so /init needs only finit_module(2).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};

use super::kernel::{Compression, decompress};

/// A parsed `modules.dep`: module name to its file and its direct dependencies.
#[derive(Debug, Default)]
pub struct DepTable {
    entries: HashMap<String, (String, Vec<String>)>,
}

/// `kernel/net/9p/9pnet_virtio.ko.zst` -> `9pnet_virtio`. The kernel treats `-` and `_` alike in
/// module names, so names are kept with `_`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl DepTable {
    pub fn parse(text: &str) -> DepTable {
        let mut entries = HashMap::new();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(module_name).collect();
            entries.insert(module_name(path), (path.trim().to_owned(), deps));
        }
        DepTable { entries }
    }

    /// The modules to load for `wanted`, dependencies first, each once: a depth-first walk that
    /// emits a module after all of its dependencies.
    pub fn resolve(&self, wanted: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
        let mut order = Vec::new();
        let mut done = HashSet::new();
        for name in wanted {
            self.visit(&name.replace('-', "_"), &mut done, &mut Vec::new(), &mut order)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut HashSet<String>,
        path: &mut Vec<String>,
        order: &mut Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            bail!(
                "modules.dep has a dependency cycle: {} -> {name}",
                path.join(" -> ")
            );
        }
        let (file, deps) = self
            .entries
            .get(name)
            .with_context(|| format!("module {name} is not in modules.dep"))?;
        path.push(name.to_owned());
        for dep in deps {
            self.visit(dep, done, path, order)?;
        }
        path.pop();
        done.insert(name.to_owned());
        order.push((name.to_owned(), file.clone()));
        Ok(())
    }
}

/// One module ready for the initramfs.
#[derive(Debug)]
pub struct Module {
    pub name: String,
    /// The uncompressed ELF object.
    pub data: Vec<u8>,
}

/// Reads the modules `wanted` and their dependencies from `dir` (`/lib/modules/<release>`), in
/// load order, decompressing them.
pub fn collect(dir: &Path, wanted: &[&str]) -> anyhow::Result<Vec<Module>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let dep_file = dir.join("modules.dep");
    let text = fs::read_to_string(&dep_file).with_context(|| {
        format!(
            "the kernel builds {} as modules, but {} cannot be read",
            wanted.join(", "),
            dep_file.display()
        )
    })?;
    let order = DepTable::parse(&text).resolve(wanted)?;
    order
        .into_iter()
        .map(|(name, file)| {
            let source = dir.join(&file);
            let raw = fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
            let data =
                uncompressed(&raw).with_context(|| format!("cannot decompress {}", source.display()))?;
            Ok(Module { name, data })
        })
        .collect()
}

/// The module's ELF bytes, decompressing `.ko.xz`/`.ko.zst`/`.ko.gz` by their magic.
fn uncompressed(raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    match Compression::sniff(raw) {
        Some(Compression::None) => Ok(raw.to_vec()),
        Some(kind) => decompress(kind, raw),
        None => bail!("not an ELF object nor gzip, xz or zstd data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/overlayfs/overlay.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/9p/9pnet_virtio.ko.zst: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/drivers/net/my-nic.ko:
";

    fn names(order: &[(String, String)]) -> Vec<&str> {
        order.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn names_drop_directories_and_compression() {
        assert_eq!(module_name("kernel/net/9p/9pnet_virtio.ko.zst"), "9pnet_virtio");
        assert_eq!(module_name("kernel/fs/9p/9p.ko"), "9p");
        assert_eq!(module_name("kernel/drivers/net/my-nic.ko.xz"), "my_nic");
    }

    #[test]
    fn dependencies_come_first_each_once() {
        let t = DepTable::parse(DEP);
        let order = t
            .resolve(&["virtio_pci", "9pnet_virtio", "9p", "overlay", "bridge"])
            .unwrap();
        assert_eq!(
            names(&order),
            [
                "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "9pnet",
                "9pnet_virtio",
                "netfs",
                "fscache",
                "9p",
                "overlay",
                "llc",
                "stp",
                "bridge"
            ]
        );
        assert_eq!(order[6].1, "kernel/net/9p/9pnet_virtio.ko.zst");
    }

    #[test]
    fn every_module_after_its_dependencies() {
        let t = DepTable::parse(DEP);
        let order = names(&t.resolve(&["9p", "bridge", "virtio_pci"]).unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for (i, name) in order.iter().enumerate() {
            for dep in &t.entries[name].1 {
                let at = order.iter().position(|n| n == dep).unwrap();
                assert!(at < i, "{dep} must load before {name}");
            }
        }
    }

    #[test]
    fn dashes_and_underscores_are_one_name() {
        let t = DepTable::parse(DEP);
        assert_eq!(names(&t.resolve(&["my_nic"]).unwrap()), ["my_nic"]);
        assert_eq!(names(&t.resolve(&["my-nic"]).unwrap()), ["my_nic"]);
    }

    #[test]
    fn unknown_modules_and_cycles_are_errors() {
        let t = DepTable::parse(DEP);
        let err = t.resolve(&["nosuch"]).unwrap_err().to_string();
        assert_eq!(err, "module nosuch is not in modules.dep");
        let cyclic = DepTable::parse("a.ko: b.ko\nb.ko: a.ko\n");
        let err = cyclic.resolve(&["a"]).unwrap_err().to_string();
        assert!(err.contains("cycle: a -> b -> a"), "{err}");
    }

    #[test]
    fn decompresses_gzip_modules_and_refuses_garbage() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"\x7fELF module").unwrap();
        assert_eq!(uncompressed(&gz.finish().unwrap()).unwrap(), b"\x7fELF module");
        assert_eq!(uncompressed(b"\x7fELF plain").unwrap(), b"\x7fELF plain");
        assert!(uncompressed(b"garbage").is_err());
    }
}
