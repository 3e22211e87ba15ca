//! End-to-end test of `cargo xtask test-vm`: a VM whose only guest test fails must make test-vm exit
//! non-zero, and one whose guest test passes must make it exit zero. The guest tests are two tiny
//! shell scripts (the guest shares the host's root, so /bin/sh is there), which also check that the
//! guest runs them as root with `NS_REQUIRE_PRIV=1` and as uid 65534 with `NS_REQUIRE_PRIV=userns`,
//! in their own directory, and that their output reaches the host.
//!
//! It needs root, QEMU and a kernel; without them it says why and passes, except under
//! `NS_REQUIRE_PRIV=1` (the nskit::testing convention), where it fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn have_vm_prerequisites() -> Result<(), String> {
    if !nix_is_root() {
        return Err("needs root".into());
    }
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output();
    if !qemu.is_ok_and(|o| o.status.success()) {
        return Err("needs qemu-system-x86_64 (cargo xtask test-vm installs it)".into());
    }
    let has_kernel = std::env::var_os("NS_VM_KERNEL").is_some()
        || fs::read_dir("/boot").is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        });
    if !has_kernel {
        return Err("needs a kernel in /boot (cargo xtask test-vm installs one)".into());
    }
    Ok(())
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Whether to go on: prints why not, and panics when `NS_REQUIRE_PRIV=1` demands it.
fn gate(test: &str) -> bool {
    match have_vm_prerequisites() {
        Ok(()) => true,
        Err(why) if std::env::var("NS_REQUIRE_PRIV").as_deref() == Ok("1") => {
            panic!("{test}: {why}, and NS_REQUIRE_PRIV requires it")
        }
        Err(why) => {
            eprintln!("skipped {test}: {why} (set NS_REQUIRE_PRIV=1 to make this a failure)");
            false
        }
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn test_vm(guest_test: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["test-vm", "--timeout", "180", "--guest-test"])
        .arg(guest_test)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run xtask test-vm")
}

#[test]
fn a_failing_guest_test_fails_test_vm_and_a_passing_one_passes() {
    if !gate("a_failing_guest_test_fails_test_vm_and_a_passing_one_passes") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-vm-e2e");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let pass = script(
        &dir,
        "pass.sh",
        r#"uid=$(id -u)
[ "$(pwd)" = "$(dirname "$0")" ] || { echo "wrong cwd $(pwd)"; exit 1; }
case "$uid:$NS_REQUIRE_PRIV" in
  0:1|65534:userns) echo "e2e-guest uid=$uid NS_REQUIRE_PRIV=$NS_REQUIRE_PRIV" ;;
  *) echo "unexpected uid=$uid NS_REQUIRE_PRIV=$NS_REQUIRE_PRIV"; exit 1 ;;
esac"#,
    );
    let fail = script(&dir, "fail.sh", "echo 'e2e-guest deliberate failure'; exit 3");

    let passed = test_vm(&pass);
    let stdout = String::from_utf8_lossy(&passed.stdout);
    let stderr = String::from_utf8_lossy(&passed.stderr);
    assert!(
        passed.status.success(),
        "a passing guest test failed test-vm:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("e2e-guest uid=0 NS_REQUIRE_PRIV=1"), "{stdout}");
    assert!(
        stdout.contains("e2e-guest uid=65534 NS_REQUIRE_PRIV=userns"),
        "{stdout}"
    );
    assert!(stdout.contains("bench: test-vm boot-to-verdict"), "{stdout}");

    let failed = test_vm(&fail);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a failing guest test passed test-vm:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("e2e-guest deliberate failure"), "{stdout}");
    assert!(stderr.contains("fail.sh as root (exit:3)"), "{stderr}");
    assert!(stderr.contains("fail.sh as user (exit:3)"), "{stderr}");
}
