//! The OCI runtimes the suite is run against (runtime-spec `runtime.md`: each is a command line the
//! suite drives through `RUNTIME`): by default the workspace's `combined` (built by cargo), and
//! Debian's `runc` and `crun` (installed with apt-get when root and missing, as `cargo xtask bench
//! --install` does). A runtime that cannot be found or installed is kept, with the reason, so its
//! column says so instead of ending the run.
//!
//! crun refuses hybrid cgroups whose cgroup2 root lists a controller ("cgroups in hybrid mode not
//! supported"): where /sys/fs/cgroup/unified is such a mount, crun runs through a wrapper that detaches
//! it in a private mount namespace first (unshare(1), umount(8)), which leaves the host's mounts alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::suite::find_program;
use crate::util::{self, apt_install, can_apt_install, cargo};

/// A runtime as asked for on the command line: `NAME` (found as the defaults are) or `NAME=PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub path: Option<PathBuf>,
}

/// The runtimes run when none is asked for, in the table's order.
pub const DEFAULTS: &[&str] = &["combined", "runc", "crun"];

/// Parses `--runtime NAME[=PATH]` (clap's value parser).
pub fn parse_request(text: &str) -> Result<Request, String> {
    let (name, path) = match text.split_once('=') {
        Some((name, path)) if !path.is_empty() => (name, Some(PathBuf::from(path))),
        Some(_) => return Err(format!("`{text}` names no path after `=`")),
        None => (text, None),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid {
        return Err(format!(
            "`{name}` is not a runtime name (letters, digits, `-`, `_`, `.`)"
        ));
    }
    if path.is_none() && !DEFAULTS.contains(&name) {
        return Err(format!(
            "`{name}` is not one of {}: give its path, `{name}=PATH`",
            DEFAULTS.join(", ")
        ));
    }
    Ok(Request {
        name: name.to_owned(),
        path,
    })
}

/// A runtime ready to run, or why it is not.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub name: String,
    /// What `RUNTIME` is set to (the crun wrapper, for crun on hybrid cgroups), or why there is none.
    pub command: Result<PathBuf, String>,
    /// The first line of `--version`.
    pub version: Option<String>,
    /// How it is run, when that is not plainly.
    pub note: Option<String>,
}

/// Resolves every requested runtime (the defaults when `requests` is empty); `scratch` holds wrappers.
pub fn resolve(root: &Path, requests: &[Request], scratch: &Path) -> Vec<Runtime> {
    let defaults: Vec<Request> = DEFAULTS
        .iter()
        .map(|name| Request {
            name: (*name).to_owned(),
            path: None,
        })
        .collect();
    let requests = if requests.is_empty() { &defaults } else { requests };
    requests.iter().map(|r| resolve_one(root, r, scratch)).collect()
}

fn resolve_one(root: &Path, request: &Request, scratch: &Path) -> Runtime {
    let binary = match (&request.path, request.name.as_str()) {
        (Some(path), _) => std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display())),
        (None, "combined") => build_combined(root),
        (None, name) => find_or_install(name),
    };
    let version = binary.as_ref().ok().and_then(|b| version_of(b));
    let (command, note) = match binary {
        Ok(binary) if is_crun(&binary) && crun_needs_wrapper() => match crun_wrapper(&binary, scratch) {
            Ok(wrapper) => (
                Ok(wrapper),
                Some(
                    "through a wrapper that detaches /sys/fs/cgroup/unified in a private mount namespace \
                     (so a container that keeps the caller's mount namespace gets the wrapper's: \
                     linux_ns_itype's `mnt` test fails for that reason)"
                        .into(),
                ),
            ),
            Err(e) => (Err(format!("{e:#}")), None),
        },
        other => (other, None),
    };
    Runtime {
        name: request.name.clone(),
        command,
        version,
        note,
    }
}

/// `cargo build -p combined`: the debug build, as the tests use it (the suite measures behaviour, not
/// speed). A build that fails (someone's half-done edit) leaves combined's column saying so.
fn build_combined(root: &Path) -> Result<PathBuf, String> {
    println!("xtask: conformance: building combined");
    let mut build = cargo();
    build
        .current_dir(root)
        .args(["build", "--quiet", "-p", "combined"]);
    util::run(&mut build).map_err(|e| format!("cannot build combined: {e:#}"))?;
    let binary = util::target_dir(root).join("debug").join("combined");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "cargo built combined, yet there is no {}",
            binary.display()
        ))
    }
}

/// A runtime from PATH, or installed from Debian's package of the same name when root.
fn find_or_install(name: &str) -> Result<PathBuf, String> {
    if let Some(path) = find_program(name) {
        return Ok(path);
    }
    if !can_apt_install() {
        return Err(format!("not installed: run `sudo apt-get install -y {name}`"));
    }
    apt_install(name).map_err(|e| format!("not installed, and apt-get failed: {e:#}"))?;
    find_program(name).ok_or_else(|| format!("{name} was installed, yet is not in PATH"))
}

fn version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

fn is_crun(binary: &Path) -> bool {
    binary.file_name().is_some_and(|n| n == "crun")
}

/// Whether cgroups are hybrid here with a controller on the v2 root: what crun refuses.
fn crun_needs_wrapper() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|controllers| !controllers.trim().is_empty())
}

/// Writes the wrapper script for `crun` into `scratch` and returns its path.
fn crun_wrapper(crun: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let path = scratch.join("crun-without-unified");
    std::fs::write(&path, wrapper_script(crun))
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))?;
    Ok(path)
}

/// The script: a new mount namespace (private propagation, unshare's default), the cgroup2 mount
/// detached there, then crun with the arguments it was given.
fn wrapper_script(crun: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by `cargo xtask conformance`: crun refuses hybrid cgroups whose cgroup2 root lists a\n\
         # controller, so it runs in a private mount namespace without /sys/fs/cgroup/unified.\n\
         exec unshare --mount sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"' '{}' \"$@\"\n",
        crun.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether to go on: as root, yes; otherwise it says why not, and fails where `NS_REQUIRE_PRIV=1`
    /// demands the privilege (the tests' convention, DEVELOPERS.md).
    fn require_root(test: &str) -> bool {
        if util::is_root() {
            return true;
        }
        if std::env::var("NS_REQUIRE_PRIV").as_deref() == Ok("1") {
            panic!("{test}: needs root (unshare --mount), and NS_REQUIRE_PRIV=1 requires it");
        }
        eprintln!("skipped {test}: needs root (unshare --mount)");
        false
    }

    #[test]
    fn runtime_requests_are_a_known_name_or_a_name_and_a_path() {
        assert_eq!(
            parse_request("runc"),
            Ok(Request {
                name: "runc".into(),
                path: None
            })
        );
        assert_eq!(
            parse_request("youki=/usr/local/bin/youki"),
            Ok(Request {
                name: "youki".into(),
                path: Some("/usr/local/bin/youki".into())
            })
        );
        assert!(parse_request("youki").unwrap_err().contains("youki=PATH"));
        assert!(parse_request("runc=").is_err());
        assert!(parse_request("a b=/x").is_err());
        assert!(parse_request("=/x").is_err());
    }

    #[test]
    fn the_crun_wrapper_passes_every_argument_on() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in for crun that prints its arguments: the wrapper must hand them over unchanged.
        let fake = dir.path().join("crun");
        std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = wrapper_script(&fake);
        assert!(script.contains("umount /sys/fs/cgroup/unified"));
        if !require_root("the_crun_wrapper_passes_every_argument_on") {
            return;
        }
        let wrapper = crun_wrapper(&fake, dir.path()).unwrap();
        let out = Command::new(&wrapper)
            .args(["create", "--bundle", "/b c", "id"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "create\n--bundle\n/b c\nid\n"
        );
    }
}
