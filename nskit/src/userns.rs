//! Whether this machine lets an ordinary user create user namespaces, and what to do when it does not
//! (user_namespaces(7); the distribution switches listed below are not in the man page).
//!
//! Every demo that runs without root enters a user namespace first. When the host forbids that, the
//! demos fail closed with one of these explanations instead of a bare EPERM.

use std::fs;

use nix::errno::Errno;
use nix::unistd::geteuid;

/// True when the caller is root in the initial user namespace's sense (effective uid 0): then no user
/// namespace is needed to create the others.
pub fn is_root() -> bool {
    geteuid().is_root()
}

/// A host setting that stops unprivileged user namespaces, with the command that lifts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    pub setting: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
}

/// Reads a sysctl as a number; `None` when the file does not exist on this kernel.
fn sysctl(path: &str) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The restrictions in force on this host, read from `/proc/sys`.
pub fn restrictions() -> Vec<Restriction> {
    let mut found = Vec::new();
    if sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        found.push(Restriction {
            setting: "kernel.apparmor_restrict_unprivileged_userns=1",
            why: "Ubuntu's AppArmor lets unprivileged programs create a user namespace but strips its capabilities",
            fix: "sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0 (or run as root)",
        });
    }
    if sysctl("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        found.push(Restriction {
            setting: "kernel.unprivileged_userns_clone=0",
            why: "this kernel (an older Debian patch) forbids user namespaces to unprivileged users",
            fix: "sudo sysctl kernel.unprivileged_userns_clone=1 (or run as root)",
        });
    }
    if sysctl("/proc/sys/user/max_user_namespaces") == Some(0) {
        found.push(Restriction {
            setting: "user.max_user_namespaces=0",
            why: "the limit on user namespaces is zero",
            fix: "sudo sysctl user.max_user_namespaces=15000 (or run as root)",
        });
    }
    found
}

/// One line saying why creating or using a user namespace failed with `errno`, and how to fix it.
pub fn explain_failure(errno: Errno) -> String {
    if let Some(r) = restrictions().first() {
        return format!(
            "user namespaces are restricted on this host ({}): {}; fix: {}",
            r.setting, r.why, r.fix
        );
    }
    match errno {
        Errno::ENOSPC => {
            "the limit on nested or total user namespaces is reached (user.max_user_namespaces)".into()
        }
        Errno::EINVAL => {
            "the caller is multi-threaded or chrooted, and the kernel refuses it a user namespace".into()
        }
        Errno::EPERM => {
            "the kernel refused a user namespace (EPERM): a seccomp filter or a container runtime \
                         may forbid it; run as root, or outside that container"
                .into()
        }
        other => format!("cannot create a user namespace: {other}"),
    }
}
