//! The guest's initial root file system, as two concatenated newc archives (the kernel unpacks one
//! after the other; Documentation/driver-api/early-userspace/buffer-format.rst):
//!
//! - the base: `/init`, `/dev/console` and the modules, built once and cached under a name that is a
//!   hash of its inputs, so a run where nothing changed rebuilds nothing;
//! - in copy mode, the copied root (`guestroot`), cached the same way;
//! - the run's own: `/xtask-vm.conf`, what /init is to do this time (a few hundred bytes).

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::cpio;
use super::modules::Module;

/// Inputs of the base archive.
#[derive(Debug)]
pub struct Base<'a> {
    pub init: &'a Path,
    pub modules: &'a [Module],
}

impl Base<'_> {
    /// Where the module `m` (the `i`th to load) lives in the guest: the number keeps the order visible.
    pub fn module_path(i: usize, m: &Module) -> String {
        format!("/modules/{i:02}-{}.ko", m.name)
    }

    /// A hash of everything the base holds.
    fn key(&self, init_bytes: &[u8]) -> u64 {
        let mut h = DefaultHasher::new();
        init_bytes.hash(&mut h);
        for m in self.modules {
            m.name.hash(&mut h);
            m.data.hash(&mut h);
        }
        h.finish()
    }

    /// The cached base archive, written when it does not exist yet. Returns its path and whether it
    /// was (re)built.
    pub fn build(&self, cache: &Path) -> anyhow::Result<(PathBuf, bool)> {
        let init = fs::read(self.init).with_context(|| format!("cannot read {}", self.init.display()))?;
        let path = cache.join(format!("base-{:016x}.cpio", self.key(&init)));
        if path.is_file() {
            return Ok((path, false));
        }
        let mut w = cpio::Writer::new(Vec::new());
        w.file("init", 0o755, &init)?;
        w.char_device("dev/console", 0o600, 5, 1)?;
        for dir in ["proc", "sys", "tmp", "run", "root"] {
            w.dir(dir, 0o755)?;
        }
        for (i, m) in self.modules.iter().enumerate() {
            w.file(&Self::module_path(i, m), 0o644, &m.data)?;
        }
        let bytes = w.finish()?;
        fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
        fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
        remove_stale(cache, &path);
        Ok((path, true))
    }
}

/// Removes the base archives of earlier inputs, so the cache holds one.
fn remove_stale(cache: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("base-") && name.ends_with(".cpio") && entry.path() != keep {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The run's archive: just `/xtask-vm.conf`.
pub fn run_archive(conf: &str) -> anyhow::Result<Vec<u8>> {
    let mut w = cpio::Writer::new(Vec::new());
    w.file("xtask-vm.conf", 0o644, conf.as_bytes())?;
    Ok(w.finish()?)
}

/// Writes the cached archives `parts` (the base, and the copied root in copy mode) followed by the
/// run's archive to `dest`.
pub fn assemble(parts: &[&Path], conf: &str, dest: &Path) -> anyhow::Result<()> {
    let mut out = fs::File::create(dest).with_context(|| format!("cannot write {}", dest.display()))?;
    for part in parts {
        let mut input = fs::File::open(part).with_context(|| format!("cannot read {}", part.display()))?;
        std::io::copy(&mut input, &mut out).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    out.write_all(&run_archive(conf)?)
        .with_context(|| format!("cannot write {}", dest.display()))
}

/// What /init is to do, in the format vm-init's `conf` module reads.
#[derive(Debug)]
pub struct GuestConf<'a> {
    pub module_paths: Vec<String>,
    pub share_tag: Option<&'a str>,
    /// (package dir, executable)
    pub tests: Vec<(&'a Path, &'a Path)>,
    pub args: &'a [String],
    /// Variables set for every test binary (`NS_TEST_SCALE`).
    pub env: Vec<(&'a str, String)>,
    /// (name, uid, NS_REQUIRE_PRIV)
    pub runs: &'a [(&'a str, u32, &'a str)],
    pub shell: Option<&'a str>,
}

impl GuestConf<'_> {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for m in &self.module_paths {
            out.push_str(&format!("module {m}\n"));
        }
        if let Some(tag) = self.share_tag {
            out.push_str(&format!("share {tag}\n"));
        }
        for (dir, exe) in &self.tests {
            out.push_str(&format!("test {}\t{}\n", dir.display(), exe.display()));
        }
        for arg in self.args {
            out.push_str(&format!("arg {arg}\n"));
        }
        for (name, value) in &self.env {
            out.push_str(&format!("env {name} {value}\n"));
        }
        for (name, uid, require) in self.runs {
            out.push_str(&format!("run {name} {uid} {require}\n"));
        }
        if let Some(shell) = self.shell {
            out.push_str(&format!("shell {shell}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_vm_init_reads() {
        let args = vec!["uts".to_string()];
        let conf = GuestConf {
            module_paths: vec!["/modules/00-virtio_ring.ko".into()],
            share_tag: Some("hostroot"),
            tests: vec![(
                Path::new("/w/uts-demo"),
                Path::new("/w/target/debug/deps/uts_demo-1"),
            )],
            args: &args,
            env: vec![("NS_TEST_SCALE", "0.2".into())],
            runs: &[("root", 0, "1"), ("user", 65534, "userns")],
            shell: None,
        };
        assert_eq!(
            conf.render(),
            "module /modules/00-virtio_ring.ko\nshare hostroot\n\
             test /w/uts-demo\t/w/target/debug/deps/uts_demo-1\narg uts\nenv NS_TEST_SCALE 0.2\n\
             run root 0 1\nrun user 65534 userns\n"
        );
    }

    #[test]
    fn the_base_is_built_once_per_content() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let init = dir.join("init");
        fs::write(&init, b"\x7fELF init").unwrap();
        let modules = [Module {
            name: "veth".into(),
            data: b"\x7fELF veth".to_vec(),
        }];
        let base = Base {
            init: &init,
            modules: &modules,
        };
        let (first, built) = base.build(dir).unwrap();
        assert!(built);
        let (again, rebuilt) = base.build(dir).unwrap();
        assert_eq!((first.clone(), rebuilt), (again, false));
        fs::write(&init, b"\x7fELF new init").unwrap();
        let (changed, built) = base.build(dir).unwrap();
        assert!(built && changed != first);
        let bytes = fs::read(&changed).unwrap();
        assert!(bytes.windows(19).any(|w| w == b"modules/00-veth.ko\0"));
    }
}
