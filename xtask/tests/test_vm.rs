//! End-to-end tests of `cargo xtask test-vm`: a VM whose only guest test fails must make test-vm
//! exit non-zero, and one whose guest test passes must make it exit zero, in both root modes. The
//! guest tests check that the guest runs them as root with `NS_REQUIRE_PRIV=1` and as uid 65534 with
//! `NS_REQUIRE_PRIV=userns`, in their own directory, and that their output reaches the host. With the
//! host's root shared (`--root share`) they are two tiny shell scripts; with a copied root
//! (`--root copy`, no shell in the guest) one tiny static Rust program under two names, which also
//! checks that its root is the initramfs, not an overlay over 9p, and finds the copied root's `/etc` and a writable `/tmp`.
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

fn test_vm(root: &str, guest_test: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["test-vm", "--timeout", "180", "--root", root, "--guest-test"])
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

    let passed = test_vm("share", &pass);
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

    let failed = test_vm("share", &fail);
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

/// The copied root's guest test: passes under any name but `copy-fail`, after checking the run's
/// user and environment and what the copied root must provide.
const GUEST_PROGRAM: &str = r#"
use std::path::Path;
fn main() {
    let exe = std::env::current_exe().unwrap();
    if exe.ends_with("copy-fail") {
        println!("e2e-guest deliberate failure");
        std::process::exit(3);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().nth(1).unwrap().to_owned();
    let require = std::env::var("NS_REQUIRE_PRIV").unwrap_or_default();
    // The root is the initramfs (bound onto itself), not the share's overlay over 9p.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let root_type = mounts.lines().filter(|l| l.split(' ').nth(1) == Some("/")).last().and_then(|l| l.split(' ').nth(2)).unwrap_or("none").to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let scratch = Path::new("/tmp").join(format!("e2e-{uid}"));
    let checks = [
        ("runs in its own directory", std::env::current_dir().ok().as_deref() == exe.parent()),
        ("root with 1 or 65534 with userns", matches!((uid.as_str(), require.as_str()), ("0", "1") | ("65534", "userns"))),
        ("the initramfs as root", !matches!(root_type.as_str(), "overlay" | "9p" | "none")),
        ("nobody in /etc/passwd", passwd.contains("nobody:x:65534:")),
        ("/tmp writable", std::fs::write(&scratch, "x").is_ok() && std::fs::remove_file(&scratch).is_ok()),
    ];
    for (what, ok) in checks {
        if !ok {
            println!("e2e-guest check failed: {what}");
            std::process::exit(1);
        }
    }
    println!("e2e-guest copy uid={uid} NS_REQUIRE_PRIV={require} root={root_type}");
}
"#;

/// Compiles [`GUEST_PROGRAM`] static (the copied root has no C library) as `dir/name`.
fn compile_guest_program(dir: &Path, name: &str) -> PathBuf {
    let source = dir.join("guest.rs");
    fs::write(&source, GUEST_PROGRAM).unwrap();
    let exe = dir.join(name);
    let status = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args([
            "--edition",
            "2021",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(&exe)
        .arg(&source)
        .status()
        .expect("run rustc");
    assert!(status.success(), "cannot compile the guest program");
    exe
}

#[test]
fn in_a_copied_root_a_failing_guest_test_fails_and_a_passing_one_passes() {
    if !gate("in_a_copied_root_a_failing_guest_test_fails_and_a_passing_one_passes") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-vm-e2e-copy");
    fs::create_dir_all(&dir).unwrap();
    let pass = compile_guest_program(&dir, "copy-pass");
    let fail = dir.join("copy-fail");
    fs::copy(&pass, &fail).unwrap();

    let passed = test_vm("copy", &pass);
    let stdout = String::from_utf8_lossy(&passed.stdout);
    let stderr = String::from_utf8_lossy(&passed.stderr);
    assert!(
        passed.status.success(),
        "a passing guest test failed test-vm --root copy:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("xtask: root: copy (--root copy)"), "{stdout}");
    assert!(
        stdout.contains("e2e-guest copy uid=0 NS_REQUIRE_PRIV=1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("e2e-guest copy uid=65534 NS_REQUIRE_PRIV=userns"),
        "{stdout}"
    );

    let failed = test_vm("copy", &fail);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a failing guest test passed test-vm --root copy:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("e2e-guest deliberate failure"), "{stdout}");
    assert!(stderr.contains("copy-fail as root (exit:3)"), "{stderr}");
    assert!(stderr.contains("copy-fail as user (exit:3)"), "{stderr}");
}
