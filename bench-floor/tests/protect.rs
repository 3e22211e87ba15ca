//! `bench-floor --protect` does what it says, on this kernel, as root and through a user namespace:
//! the command runs with the hostname, a cgroup namespace, its signals' default actions, no inherited
//! descriptor, capabilities, no_new_privs and seccomp filter, the /dev, /sys, masks and read-only
//! paths, `lo` up and an init as PID 1, and the host's mount table is as before.
//! The benchmark's row "floor + protections" stands for the kernel work of combined's defaults only if
//! all of it is really done.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use nskit::testing;

const FLOOR: &str = env!("CARGO_BIN_EXE_bench-floor");
const BUSYBOX: &str = "/bin/busybox";

/// A busybox rootfs in `dir` with the directories the floor mounts on.
fn rootfs(dir: &Path) {
    for sub in ["bin", "proc", "dev", "sys"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "cut", "grep", "hostname", "ip", "stat", "touch", "mount",
    ] {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
}

/// What the container's shell prints, one fact a line.
const PROBE: &str = r#"
hostname
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
echo "shell pid $$"
echo "session $(cut -d' ' -f6 /proc/1/stat)"
grep -E '^(SigIgn|SigBlk):' /proc/self/status
[ -e /proc/self/fd/3 ] || echo 'no fd 3'
echo "cgroup $(readlink /proc/self/ns/cgroup)"
stat -c 'null %t:%T' /dev/null
grep -q 'tmpfs /proc/acpi tmpfs ro' /proc/mounts && echo 'acpi masked'
[ -z "$(cat /proc/interrupts)" ] && echo 'interrupts empty'
touch /proc/sys/kernel/hostname 2>/dev/null || echo 'proc/sys read-only'
grep -q 'sysfs /sys sysfs ro' /proc/mounts && echo 'sys read-only'
ip link show lo | grep -q 'UP' && echo 'lo up'
"#;

#[test]
fn the_protected_floor_does_the_work_of_combined_s_defaults() {
    let test = "the_protected_floor_does_the_work_of_combined_s_defaults";
    if !testing::require_namespaces(test) {
        return;
    }
    if !testing::gate(
        Path::new(BUSYBOX).exists(),
        test,
        "needs /bin/busybox (apt-get install busybox-static)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    rootfs(&root);
    // One instruction: return SECCOMP_RET_ALLOW. The benchmark gives combined's filter instead.
    let filter = dir.path().join("allow.bpf");
    let allow: [u8; 8] = [0x06, 0, 0, 0, 0, 0, 0xff, 0x7f];
    std::fs::write(&filter, allow).unwrap();
    let namespaces = if nskit::userns::is_root() {
        "pid,mnt,uts,ipc,net"
    } else {
        "user,pid,mnt,uts,ipc,net"
    };
    let mounts_before = testing::mount_table();
    let mut floor = Command::new(FLOOR);
    // A descriptor the launcher inherited (its stderr again, as 3), which the command must not get.
    let stderr_as_3 = || {
        // SAFETY: dup2 takes two descriptor numbers; 2 is open, 3 is made a copy of it.
        if unsafe { libc::dup2(2, 3) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: between fork and exec only dup2 runs, which is async-signal-safe.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut floor, stderr_as_3) };
    let out = floor
        .args(["--ns", namespaces, "--rootfs"])
        .arg(&root)
        .args(["--protect", "--seccomp"])
        .arg(&filter)
        .args([
            "--mask",
            "/proc/acpi",
            "--mask",
            "/proc/interrupts",
            "--mask",
            "/proc/no-such-file",
        ])
        .args(["--read-only", "/proc/sys", "--", "/bin/sh", "-c", PROBE])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        "floor",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "CapEff:\t00000000a00425fb",
        "shell pid 2",
        "session 1",
        "SigIgn:\t0000000000000000",
        "SigBlk:\t0000000000000000",
        "no fd 3",
        "null 1:3",
        "acpi masked",
        "interrupts empty",
        "proc/sys read-only",
        "sys read-only",
        "lo up",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{stdout}"
        );
    }
    let host_cgroup = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    let own_cgroup = format!("cgroup {}", host_cgroup.display());
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("cgroup cgroup:[") && l != own_cgroup),
        "no cgroup namespace of its own in:\n{stdout}"
    );
    assert_eq!(testing::mount_table(), mounts_before, "the host's mounts changed");
}

#[test]
fn protections_need_a_filter_and_a_rootfs() {
    let run = |args: &[&str]| Command::new(FLOOR).args(args).output().unwrap();
    for args in [
        &["--rootfs", "/nonexistent", "--protect", "--", "/bin/true"][..],
        &["--protect", "--seccomp", "/dev/null", "--", "/bin/true"][..],
        &["--rootfs", "/", "--mask", "/proc/interrupts", "--", "/bin/true"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("bench-floor: "), "{args:?}: {stderr}");
    }
}
