//! `cargo xtask ci`: every check CI makes, each step summarized on one line. As root, the tests run
//! twice: as root with `NS_REQUIRE_PRIV=1` (a missing privilege fails), then the same binaries as the
//! unprivileged user 65534 with `NS_REQUIRE_PRIV=userns` (user namespaces must work; root-only tests
//! say why they skip).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::util::{self, UNPRIVILEGED_UID, as_unprivileged, cargo, is_root, step};

pub fn run(root: &Path) -> anyhow::Result<()> {
    util::build_without_incremental_caches();
    let mut results: Vec<(&str, bool)> = Vec::new();
    let mut record = |name: &'static str, result: anyhow::Result<()>| results.push((name, result.is_ok()));

    record(
        "fmt",
        step("cargo fmt --check", || {
            util::run(cargo().current_dir(root).args(["fmt", "--all", "--check"]))
        }),
    );
    record(
        "clippy",
        step("cargo clippy -D warnings", || {
            util::run(cargo().current_dir(root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        }),
    );
    if is_root() {
        // The end-to-end test of test-vm (in the host tests) boots a VM: install QEMU and a kernel first.
        record(
            "vm-prerequisites",
            step("test-vm prerequisites", crate::vm::prepare),
        );
        // combined's tests run containers on a static busybox rootfs.
        record(
            "busybox",
            step("static busybox for combined's tests", || {
                crate::rootfs::find_or_install_busybox().map(drop)
            }),
        );
    }
    let who = if is_root() {
        "tests as root, NS_REQUIRE_PRIV=1"
    } else {
        "tests as this user"
    };
    record("tests", step(who, || tests_as_current_user(root)));
    if is_root() {
        record(
            "tests-unprivileged",
            step("tests as uid 65534, NS_REQUIRE_PRIV=userns", || {
                tests_unprivileged(root)
            }),
        );
    }
    record(
        "test-vm",
        step("test-vm (the tests in VMs, as root and uid 65534)", || {
            crate::vm::ci_step(root)
        }),
    );
    record(
        "exercises",
        step("exercises (solutions pass, starting points compile)", || {
            crate::exercise::ci_step(root)
        }),
    );
    record("book-check", step("book-check", || crate::book::check(root)));
    // The OCI runtime spec's validation suite against combined: it fails when combined no longer
    // passes a program it passed in the committed baseline (CONFORMANCE.md). Root only: it installs
    // Go, and the suite runs its containers as root.
    let suite = root.join(crate::conformance::suite::DEFAULT_TARBALL);
    if util::is_root() && !suite.is_file() {
        // The suite is a snapshot kept beside the project (`../shared/conformance/`), not in it.
        println!(
            "xtask: conformance skipped: no suite at {} (put runtime-tools-260e151.tar.gz there, see CONFORMANCE.md)",
            suite.display()
        );
    } else if util::is_root() {
        record(
            "conformance",
            step(
                "conformance (the OCI validation suite, against the baseline)",
                || {
                    util::run(cargo().current_dir(root).args([
                        "xtask",
                        "conformance",
                        "--runtime",
                        "combined",
                        "--check",
                        "xtask/conformance-baseline.json",
                    ]))
                },
            ),
        );
    }
    // The engines people run (podman, docker, containerd, Kubernetes' CRI through crictl) driving
    // combined through whole container lifecycles. Root only: it installs and starts their daemons.
    if util::is_root() {
        record(
            "engines",
            step("engines (podman, docker, containerd, CRI on combined)", || {
                util::run(cargo().current_dir(root).args(["xtask", "engines"]))
            }),
        );
    }
    // A smoke check that the benchmark runs (combined and the floor at least, on the debug build the
    // tests made): it fails only when a launcher it needs does not work, never on the figures. A
    // process of its own, because on a hybrid-cgroup machine the benchmark moves itself into a
    // mount namespace of its own.
    record(
        "bench-smoke",
        step("bench --quick --debug (smoke, never fails on timing)", || {
            util::run(
                cargo()
                    .current_dir(root)
                    .args(["xtask", "bench", "--quick", "--debug"]),
            )
        }),
    );

    println!("\nxtask ci summary:");
    for (name, ok) in &results {
        println!("  {name:<20} {}", if *ok { "ok" } else { "FAILED" });
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    // The closing line in the plain form CI systems read: the steps, each a whole suite or check.
    println!(
        "steps: {} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("ci failed: {}", failed.join(", "));
    }
    Ok(())
}

fn tests_as_current_user(root: &Path) -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.current_dir(root).args(["test", "--workspace"]);
    if is_root() {
        cmd.env(nskit_require_priv(), "1");
    }
    util::run(&mut cmd)
}

/// The variable's name, as `nskit::testing::REQUIRE_PRIV` spells it (xtask does not depend on nskit).
fn nskit_require_priv() -> &'static str {
    "NS_REQUIRE_PRIV"
}

/// A test executable cargo built, and the package directory it must run in.
#[derive(Debug)]
pub struct TestBinary {
    pub executable: PathBuf,
    pub package_dir: PathBuf,
}

/// Builds the workspace's tests without running them and lists the executables
/// (`cargo test --no-run --message-format=json`).
pub fn build_test_binaries(root: &Path, extra: &[&str]) -> anyhow::Result<Vec<TestBinary>> {
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--workspace", "--no-run", "--message-format=json"])
        .args(extra);
    let json = util::output(&mut cmd)?;
    parse_test_binaries(&json)
}

/// Picks the test executables out of cargo's JSON messages.
pub fn parse_test_binaries(json: &str) -> anyhow::Result<Vec<TestBinary>> {
    let mut binaries = Vec::new();
    for line in json.lines().filter(|l| l.starts_with('{')) {
        let msg: serde_json::Value = serde_json::from_str(line).context("cargo printed malformed JSON")?;
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let (Some(executable), Some(manifest)) = (msg["executable"].as_str(), msg["manifest_path"].as_str())
        else {
            continue;
        };
        let package_dir = Path::new(manifest)
            .parent()
            .context("manifest path has no parent")?
            .to_path_buf();
        binaries.push(TestBinary {
            executable: executable.into(),
            package_dir,
        });
    }
    Ok(binaries)
}

fn tests_unprivileged(root: &Path) -> anyhow::Result<()> {
    let binaries = build_test_binaries(root, &[])?;
    util::make_reachable(&util::target_dir(root).join("debug").join("deps"))?;
    util::give_test_cache(root)?;
    let mut failed = Vec::new();
    for binary in &binaries {
        let name = binary
            .executable
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        println!("xtask: running {name} as uid {UNPRIVILEGED_UID}");
        let status = as_unprivileged(&binary.executable)
            .current_dir(&binary.package_dir)
            .env(nskit_require_priv(), "userns")
            // As `.cargo/config.toml` sets it for cargo: one test at a time (see that file for why).
            .env("RUST_TEST_THREADS", "1")
            .env_remove("HOME")
            .status()
            .with_context(|| format!("cannot run {name} with setpriv"))?;
        if !status.success() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("failed as uid {UNPRIVILEGED_UID}: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executables_in_cargo_json() {
        let json = r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/a-123","manifest_path":"/w/a/Cargo.toml"}
{"reason":"compiler-artifact","profile":{"test":false},"executable":"/t/debug/a","manifest_path":"/w/a/Cargo.toml"}
{"reason":"compiler-artifact","profile":{"test":true},"executable":null,"manifest_path":"/w/b/Cargo.toml"}
{"reason":"build-finished","success":true}"#;
        let found = parse_test_binaries(json).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].executable, Path::new("/t/deps/a-123"));
        assert_eq!(found[0].package_dir, Path::new("/w/a"));
    }
}
