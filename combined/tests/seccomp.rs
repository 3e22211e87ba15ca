//! The seccomp filter, seen from inside a container: `tests/probes/syscalls.rs` (the `combined-syscalls` test
//! binary), run by `combined run` from a read-only volume, makes the system calls the default filter refuses
//! and a few it must allow, and reports each as `key=value`. The tests run it under the default filter, with
//! no filter (`--security-opt seccomp=unconfined`, which shows that the attacks are real: the kernel lets
//! them through), under a profile the test writes, and with a profile that is refused before anything starts.
//! seccomp(2), proc(5) (`Seccomp:` in /proc/<pid>/status).
//!
//! Every test runs as root and, through a user namespace, as an ordinary user (CI runs the binary as
//! uid 65534 with `NS_REQUIRE_PRIV=userns`). Under the filter both see the same errors: it answers
//! before the kernel's permission checks, which are where root and a user differ.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{Outcome, TempDir, combined, namespaces, output};

/// The system-call probe (`tests/probes/syscalls.rs`) on a read-only volume at /probe/syscalls.
fn probe_volume() -> String {
    format!("{}:/probe/syscalls:ro", env!("CARGO_BIN_EXE_combined-syscalls"))
}

/// One run of the probe: how the launcher ended and what the probe reported.
#[derive(Debug)]
struct Report {
    outcome: Outcome,
    values: BTreeMap<String, String>,
}

impl Report {
    /// The value reported for `key`; a missing key fails the test.
    fn get(&self, key: &str) -> &str {
        self.values
            .get(key)
            .unwrap_or_else(|| panic!("the probe reported no {key:?}: {self:#?}"))
    }

    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.get(key), want, "{key}: {self:#?}");
    }

    fn expect_not(&self, key: &str, unwanted: &str) {
        assert_ne!(self.get(key), unwanted, "{key}: {self:#?}");
    }
}

/// `combined run <options> --volume <the probe>:/probe/syscalls:ro -- /probe/syscalls`; the run must
// succeed.
fn syscalls(options: &[&str]) -> Report {
    let volume = probe_volume();
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--volume", &volume, "--", "/probe/syscalls"]);
    let outcome = output(&mut combined(&args));
    let values = outcome
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let report = Report { outcome, values };
    assert_eq!(report.outcome.code(), 0, "combined run failed: {report:#?}");
    report
}

/// The calls the default filter refuses with EPERM (clone3 is apart: ENOSYS).
const REFUSED: [&str; 20] = [
    "unshare_user",
    "unshare_mount",
    "clone_newuser",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "ioctl_tiocsti",
    "ioctl_tiocsti_high_bits",
    "ioctl_tioclinux",
    "clock_settime",
    "personality_addr_no_randomize",
    "socket_vsock",
    "socket_vsock_high_bits",
    "socket_alg",
];

// ANCHOR: default_filter_test
/// Asserts what the default filter does, whatever the way it was chosen.
fn assert_default_filter(run: &Report) {
    run.expect("seccomp_mode", "2");
    // One filter: the command inherits the one its parent loaded; a second copy would run every call
    // through the program twice.
    run.expect("seccomp_filters", "1");
    for key in REFUSED {
        run.expect(key, "err:EPERM");
    }
    // ENOSYS, not EPERM, makes the C library fall back from clone3 to clone.
    run.expect("clone3", "err:ENOSYS");
    for key in [
        "clone_plain",
        "fork_wait",
        "socket_inet",
        "getpid",
        "pty",
        "ioctl_tiocgwinsz",
        "personality_query",
        "personality_linux32",
    ] {
        run.expect(key, "ok");
    }
    run.expect("getcwd", "/");
}

#[test]
fn the_default_filter_refuses_the_attacks() {
    if !namespaces("the_default_filter_refuses_the_attacks") {
        return;
    }
    // Without the option (as Docker, the filter is on unless turned off), by name, and with the
    // command as PID 1 (`--no-init`), which loads the filter itself.
    for options in [&[][..], &["--security-opt", "seccomp=default"], &["--no-init"]] {
        let run = syscalls(options);
        assert_default_filter(&run);
    }
}

// ANCHOR_END: default_filter_test

#[test]
fn unconfined_lets_the_attacks_reach_the_kernel() {
    if !namespaces("unconfined_lets_the_attacks_reach_the_kernel") {
        return;
    }
    let run = syscalls(&["--security-opt", "seccomp=unconfined"]);
    run.expect("seccomp_mode", "0");
    run.expect("seccomp_filters", "0");
    // What the kernel answers once nothing is in the way: needs no privilege, root or not.
    run.expect("clone3", "ok");
    run.expect("personality_addr_no_randomize", "ok");
    // The kernel checks the time before the capability, so this never changes the clock.
    run.expect("clock_settime", "err:EINVAL");
    run.expect_not("ioctl_tioclinux", "err:EPERM");
    // AF_VSOCK reaches the kernel (ok where the host has vsock, EAFNOSUPPORT where it has none).
    run.expect_not("socket_vsock_high_bits", "err:EPERM");
    // A user namespace needs no capability, so the container's process can make one, unless the host
    // forbids unprivileged user namespaces (the container's root has no CAP_SYS_ADMIN on the host).
    let restrictions = nskit::userns::restrictions();
    if restrictions.is_empty() {
        run.expect("unshare_user", "ok");
        run.expect("clone_newuser", "ok");
    } else {
        eprintln!("unshare_user not checked: the host restricts user namespaces: {restrictions:?}");
    }
}

#[test]
fn capabilities_open_the_calls_that_need_them() {
    if !namespaces("capabilities_open_the_calls_that_need_them") {
        return;
    }
    // With CAP_SYS_ADMIN the filter allows namespaces and clone3: the launcher compiled the profile for
    // the capabilities the command keeps. It is the container's own user namespace's (`--userns`: the
    // host's is refused to a container), which suffices for a mount namespace.
    let run = syscalls(&["--userns", "--cap-add", "SYS_ADMIN"]);
    run.expect("seccomp_mode", "2");
    run.expect("unshare_mount", "ok");
    run.expect("clone3", "ok");
    // Never allowed, whatever the capabilities.
    run.expect("keyctl", "err:EPERM");
    run.expect("ioctl_tiocsti", "err:EPERM");
}

/// A profile file in a directory uid 65534 can read too.
fn profile_file(dir: &TempDir, json: &str) -> String {
    let path = dir.path().join("profile.json");
    fs::write(&path, json).expect("write the profile");
    path.to_str().expect("a UTF-8 path").to_owned()
}

#[test]
fn a_docker_format_profile_is_applied() {
    if !namespaces("a_docker_format_profile_is_applied") {
        return;
    }
    let dir = TempDir::new("seccomp-profile");
    let profile = profile_file(
        &dir,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]
        }"#,
    );
    let run = syscalls(&["--security-opt", &format!("seccomp={profile}")]);
    run.expect("seccomp_mode", "2");
    run.expect("getcwd", "err:EACCES");
    run.expect("personality_linux32", "err:EINVAL");
    // Everything else is allowed by this profile: the default profile's refusals are gone.
    run.expect("personality_query", "ok");
    run.expect("clone3", "ok");
    run.expect("personality_addr_no_randomize", "ok");
}

/// Runs `combined run --security-opt seccomp=<value> -- /probe/syscalls` and asserts a launcher error
/// that mentions `says`: exit 125, one line on stderr, nothing from the probe.
fn refused(value: &str, says: &str) {
    let volume = probe_volume();
    let option = format!("seccomp={value}");
    let args = [
        "run",
        "--security-opt",
        &option,
        "--volume",
        &volume,
        "--",
        "/probe/syscalls",
    ];
    let outcome = output(&mut combined(&args));
    let line = outcome.launcher_error();
    assert!(line.contains(says), "{says:?} not in: {line}");
}

#[test]
fn a_bad_profile_is_refused_before_the_container_starts() {
    // No namespace is needed: the profile is compiled while the request is checked, before any.
    let dir = TempDir::new("seccomp-bad");
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().expect("a UTF-8 path");
    refused(missing, &format!("cannot read seccomp profile {missing}"));

    let broken = profile_file(
        &dir,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"]"#,
    );
    refused(&broken, "is not a Docker or OCI seccomp profile");

    let notify = profile_file(
        &dir,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    );
    refused(&notify, "SCMP_ACT_NOTIFY");

    let op = profile_file(
        &dir,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_BETWEEN"}]}]}"#,
    );
    refused(&op, "unknown comparison \"SCMP_CMP_BETWEEN\"");

    refused("", "seccomp");
}

// ANCHOR: cache_test
/// The compiled filter is kept between runs (compiling the default profile takes about 11 ms), in the
/// user's own cache, readable by no one else; the next run loads it instead of compiling, and an
/// entry someone else could have written is not trusted.
#[test]
fn compiled_filters_are_kept_privately_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    if !namespaces("compiled_filters_are_kept_privately_and_reused") {
        return;
    }
    let cache = TempDir::new("seccomp-cache");
    let run = || {
        let mut cmd = combined(&["run", "--", "true"]);
        cmd.env("XDG_CACHE_HOME", cache.path());
        output(&mut cmd).ok().to_owned()
    };
    run();
    let dir = cache.path().join("combined/seccomp");
    let entries: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&entries[0]), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let written = fs::metadata(&entries[0]).unwrap().modified().unwrap();
    run();
    assert_eq!(
        fs::metadata(&entries[0]).unwrap().modified().unwrap(),
        written,
        "loaded, not compiled again"
    );
    // Writable by others: compiled again and replaced by an entry of the launcher's own.
    fs::set_permissions(&entries[0], fs::Permissions::from_mode(0o666)).unwrap();
    run();
    assert_eq!(mode(&entries[0]), 0o600);
}
// ANCHOR_END: cache_test

/// Loads `program` (classic BPF, as `combined seccomp` writes it) into a forked child, as `bwrap
/// --seccomp FD` would, and returns what `keyctl(2)` and `getpid(2)` gave there: the errno of each, 0
/// for success.
fn under_filter(program: &[u8]) -> (i32, i32) {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len() / 8).expect("a filter of at most 65535 instructions"),
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    let mut report = [0i32; 2];
    // Close-on-exec: processes other tests start meanwhile must not hold the write end open.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    // SAFETY: the child makes system calls only (prctl, seccomp, keyctl, getpid, write, _exit), on
    // memory prepared before the fork or on its stack, and never returns.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let raw = |rc: libc::c_long| {
                if rc == -1 {
                    nix::errno::Errno::last_raw()
                } else {
                    0
                }
            };
            let _ = nix::sys::prctl::set_no_new_privs();
            // SAFETY: the kernel only reads `prog` and the instructions it points at, alive until _exit.
            let loaded = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog) };
            if loaded != 0 {
                // SAFETY: ends the child without running the test harness's exit handlers.
                unsafe { libc::_exit(2) };
            }
            // KEYCTL_GET_KEYRING_ID of the session keyring (-3).
            // SAFETY: integers only.
            report[0] = raw(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) });
            // SAFETY: no arguments.
            report[1] = raw(unsafe { libc::syscall(libc::SYS_getpid) });
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&report[0].to_ne_bytes());
            bytes[4..].copy_from_slice(&report[1].to_ne_bytes());
            let _ = nix::unistd::write(&write, &bytes);
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let status = nix::sys::wait::waitpid(child, None).expect("wait for the child");
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(child, 0),
                "the filter did not load"
            );
            let mut bytes = [0u8; 8];
            nix::unistd::read(&read, &mut bytes).expect("the child's report");
            let word = |i: usize| i32::from_ne_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
            (word(0), word(4))
        }
    }
}

/// `combined seccomp` writes the filter `run` compiles for the same options, 8 bytes an instruction as
/// the kernel takes it, and a process that loads it itself is refused what the default profile refuses.
#[test]
fn combined_seccomp_writes_the_filter_run_loads() {
    let written = combined(&["seccomp"]).output().expect("run combined seccomp");
    assert!(written.status.success(), "{written:?}");
    let caps = combined::caps::resolve(&[], &[]);
    let setting = combined::seccomp::Setting::Default;
    let compiled = combined::seccomp::compile(&setting, &caps)
        .expect("the default profile compiles")
        .expect("a filter");
    assert_eq!(written.stdout, compiled.to_bpf());
    assert_eq!(written.stdout.len(), compiled.len() * 8);
    assert_eq!(
        under_filter(&written.stdout),
        (libc::EPERM, 0),
        "keyctl refused, getpid allowed"
    );

    // The profile opens calls to capabilities: another set, another program.
    let admin = combined(&["seccomp", "--cap-add", "SYS_ADMIN"])
        .output()
        .expect("run combined seccomp --cap-add SYS_ADMIN");
    assert!(admin.status.success(), "{admin:?}");
    assert_ne!(admin.stdout, written.stdout);

    let unconfined = output(&mut combined(&[
        "seccomp",
        "--security-opt",
        "seccomp=unconfined",
    ]));
    assert!(unconfined.launcher_error().contains("no filter to write"));

    // A profile's flags are seccomp(2)'s arguments, which the written program cannot carry: refused.
    let dir = TempDir::new("seccomp-flags");
    let flagged = profile_file(
        &dir,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": []}"#,
    );
    let option = format!("seccomp={flagged}");
    let refused = output(&mut combined(&["seccomp", "--security-opt", &option]));
    assert!(refused.launcher_error().contains("seccomp flags"));
}
