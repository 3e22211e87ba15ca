//! The launcher's pieces (`mnt_demo::rootfs`), run in a spawned child against a scratch rootfs, in
//! the order `combined` calls them (mount(2), pivot_root(2), proc(5), pts(4), sysfs(5)); and the
//! refusal to follow a rootfs's symlinks out of it when mounting.

mod common;

use common::on_clean_host;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};

use mnt_demo::mountinfo::{self, MountEntry};
use mnt_demo::rootfs::{self, DEFAULT_MASKED, DEFAULT_READONLY, PathOutcome, Propagation};
use mnt_demo::scratch::Scratch;
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nskit::testing::require_namespaces;
use nskit::{Proc, Spawn};

/// Runs `check` in a child with new mount, PID, IPC and network namespaces (and a user namespace when
/// not root); the child reports failures as text. The host's mount table must not change.
fn in_child(name: &str, scratch: &Scratch, check: impl FnOnce(bool) -> Result<(), String>) {
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    let spawn = Spawn::new(flags);
    let in_userns = spawn.flags().contains(CloneFlags::CLONE_NEWUSER);
    let mut child = spawn
        .run(|channel| {
            let reply = match check(in_userns) {
                Ok(()) => "ok".to_owned(),
                Err(e) => e,
            };
            i32::from(channel.send(&reply.replace('\n', " | ")).is_err())
        })
        .unwrap();
    let reply = child.channel().recv().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(reply, "ok", "{name}");
    let _ = scratch;
}

fn table() -> Result<Vec<MountEntry>, String> {
    mountinfo::read(Proc::Current).map_err(|e| e.to_string())
}

fn mounted(table: &[MountEntry], point: &str, fs_type: &str) -> Result<MountEntry, String> {
    let entry = mountinfo::find(table, Path::new(point)).ok_or(format!("nothing mounted at {point}"))?;
    if entry.fs_type != fs_type {
        return Err(format!("{point} is {}, expected {fs_type}", entry.fs_type));
    }
    // The source names the kernel's filesystems by their type, as mount(8) and every runtime do:
    // tools (the OCI validation suite) look for `proc` there. /dev/shm's is `shm`.
    let source = if point == "/dev/shm" { "shm" } else { fs_type };
    if entry.source != source {
        return Err(format!("{point}'s source is {}, expected {source}", entry.source));
    }
    Ok(entry.clone())
}

fn ensure(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

/// The read-only tests' start, in the child: every mount private, the rootfs bound onto itself, and
/// `volume` bound at `at` inside it when given.
fn bound_rootfs(rootfs: &Path, volume: Option<(&Path, &str)>) -> Result<(), String> {
    rootfs::isolate_root(Propagation::Private).map_err(|e| e.to_string())?;
    rootfs::bind_rootfs(rootfs).map_err(|e| e.to_string())?;
    if let Some((source, at)) = volume {
        nix::mount::mount(
            Some(source),
            &rootfs.join(at),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind the volume: {e}"))?;
    }
    Ok(())
}

/// Each of `files` refuses to be opened for writing as a file on a read-only mount does (EROFS); a
/// file that opens is not written to.
fn all_read_only(files: &[PathBuf]) -> Result<(), String> {
    for file in files {
        match fs::OpenOptions::new().append(true).create(true).open(file) {
            Err(err) if err.raw_os_error() == Some(libc::EROFS) => {}
            other => return Err(format!("{} opened: {other:?}, expected EROFS", file.display())),
        }
    }
    Ok(())
}

/// The whole recipe, then a look around from inside.
fn build_and_check(rootfs: &Path, in_userns: bool) -> Result<(), String> {
    let e = |e: rootfs::MountError| e.to_string();
    rootfs::isolate_root(Propagation::Slave).map_err(e)?;
    rootfs::bind_rootfs(rootfs).map_err(e)?;
    rootfs::mount_proc(rootfs).map_err(e)?;
    let dev = rootfs::mount_dev(rootfs, in_userns).map_err(e)?;
    rootfs::mount_mqueue(&mnt_demo::resolve::fd_path(&dev)).map_err(e)?;
    rootfs::mount_sysfs_readonly(rootfs).map_err(e)?;
    rootfs::pivot_into(rootfs).map_err(e)?;
    let masked = rootfs::mask_paths(Path::new("/"), &DEFAULT_MASKED).map_err(e)?;
    let readonly = rootfs::readonly_paths(Path::new("/"), &DEFAULT_READONLY).map_err(e)?;

    let t = table()?;
    ensure(
        t.iter().all(|m| !m.mount_point.starts_with("/tmp/mnt-demo")),
        "the old root is still attached",
    )?;
    mounted(&t, "/proc", "proc")?;
    mounted(&t, "/dev", "tmpfs")?;
    mounted(&t, "/dev/pts", "devpts")?;
    mounted(&t, "/dev/shm", "tmpfs")?;
    mounted(&t, "/dev/mqueue", "mqueue")?;
    let sys = mounted(&t, "/sys", "sysfs")?;
    ensure(
        sys.mount_options.split(',').any(|o| o == "ro"),
        "/sys is not read-only",
    )?;

    for (name, _, _) in rootfs::DEVICES {
        let meta = fs::metadata(format!("/dev/{name}")).map_err(|e| format!("/dev/{name}: {e}"))?;
        ensure(
            meta.file_type().is_char_device(),
            &format!("/dev/{name} is not a character device"),
        )?;
    }
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .and_then(|mut f| f.write_all(b"x"))
        .map_err(|e| format!("write /dev/null: {e}"))?;
    let mut zeros = [1u8; 8];
    fs::File::open("/dev/zero")
        .and_then(|mut f| f.read_exact(&mut zeros))
        .map_err(|e| format!("read /dev/zero: {e}"))?;
    ensure(zeros == [0; 8], "/dev/zero gave something else than zeros")?;
    for (name, target) in rootfs::DEV_SYMLINKS {
        let link = fs::read_link(format!("/dev/{name}")).map_err(|e| format!("/dev/{name}: {e}"))?;
        ensure(
            link == Path::new(target),
            &format!("/dev/{name} -> {}", link.display()),
        )?;
    }
    // The private devpts instance hands out ptys through /dev/ptmx.
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/ptmx")
        .map_err(|e| format!("open /dev/ptmx: {e}"))?;

    // Masks: a masked file reads as empty (it is /dev/null), a masked directory is empty; a path this
    // kernel lacks is reported absent. /proc/interrupts exists on every Linux.
    for (path, outcome) in DEFAULT_MASKED.iter().zip(&masked) {
        let ok = match outcome {
            PathOutcome::MaskedFile => fs::read(path).is_ok_and(|b| b.is_empty()),
            PathOutcome::MaskedDir => fs::read_dir(path).is_ok_and(|mut d| d.next().is_none()),
            PathOutcome::Absent => !Path::new(path).exists(),
            PathOutcome::ReadOnly => false,
        };
        ensure(ok, &format!("{path}: {outcome:?} does not hold"))?;
    }
    let interrupts = DEFAULT_MASKED
        .iter()
        .position(|p| *p == "/proc/interrupts")
        .unwrap_or(0);
    ensure(
        masked[interrupts] == PathOutcome::MaskedFile,
        "/proc/interrupts was not masked",
    )?;
    // Read-only: /proc/sys is there, and its bind is mounted ro.
    let sys_index = DEFAULT_READONLY
        .iter()
        .position(|p| *p == "/proc/sys")
        .unwrap_or(0);
    ensure(
        readonly[sys_index] == PathOutcome::ReadOnly,
        "/proc/sys was not made read-only",
    )?;
    let t = table()?;
    let procsys = mounted(&t, "/proc/sys", "proc")?;
    ensure(
        procsys.mount_options.split(',').any(|o| o == "ro"),
        "/proc/sys is not ro",
    )?;
    match fs::write("/proc/sys/kernel/hostname", "x") {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        other => Err(format!(
            "write /proc/sys/kernel/hostname: {other:?}, expected EROFS"
        )),
    }
}

#[test]
fn the_launcher_recipe_builds_a_usable_root() {
    if !require_namespaces("the_launcher_recipe_builds_a_usable_root") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        in_child("recipe", scratch, |in_userns| build_and_check(&rootfs, in_userns));
    });
}

/// A tree of two mounts, made read-only and nodev both ways: mount_setattr(2) with AT_RECURSIVE, and
/// the remount of each that kernels before 5.12 need, given the tree by a descriptor's path as the
/// launcher gives a volume.
#[test]
fn flags_reach_every_mount_of_a_tree_both_ways() {
    if !require_namespaces("flags_reach_every_mount_of_a_tree_both_ways") {
        return;
    }
    on_clean_host(|scratch| {
        let top = scratch.subdir("tree").unwrap();
        let inner = top.join("inner");
        in_child("tree", scratch, |_| {
            for (way, add) in [
                (
                    "mount_setattr",
                    rootfs::add_flags_recursively as fn(&Path, MsFlags) -> Result<(), Errno>,
                ),
                ("remounts", rootfs::add_flags_by_remounts),
            ] {
                for dir in [&top, &inner] {
                    // The inner directory is made in the outer tmpfs, just mounted.
                    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                    nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::empty(), None::<&str>)
                        .map_err(|e| format!("mount a tmpfs at {}: {e}", dir.display()))?;
                }
                let held = fs::File::open(&top).map_err(|e| e.to_string())?;
                add(
                    &mnt_demo::resolve::fd_path(&held),
                    MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
                )
                .map_err(|e| format!("{way}: {e}"))?;
                let table = table()?;
                for dir in [&top, &inner] {
                    let entry = mounted(&table, &dir.to_string_lossy(), "tmpfs")?;
                    let options: Vec<&str> = entry.mount_options.split(',').collect();
                    ensure(
                        options.contains(&"ro") && options.contains(&"nodev"),
                        &format!("{way}: {} is {}", dir.display(), entry.mount_options),
                    )?;
                }
                drop(held);
                nix::mount::umount2(&top, nix::mount::MntFlags::MNT_DETACH).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
    });
}

#[test]
fn mount_targets_that_leave_the_rootfs_are_refused() {
    if !require_namespaces("mount_targets_that_leave_the_rootfs_are_refused") {
        return;
    }
    on_clean_host(|scratch| {
        let outside = scratch.subdir("outside").unwrap();
        let rootfs = scratch.path().join("hostile");
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        symlink(&outside, rootfs.join("proc")).unwrap();
        symlink("../outside", rootfs.join("dev")).unwrap();
        symlink("/", rootfs.join("sys")).unwrap();
        fs::write(outside.join("keys"), "secret").unwrap();
        symlink("../../outside/keys", rootfs.join("etc/keys")).unwrap();
        let outside_in_child = outside.clone();
        in_child("hostile", scratch, move |in_userns| {
            let e = |e: rootfs::MountError| e.to_string();
            rootfs::isolate_root(Propagation::Private).map_err(e)?;
            rootfs::bind_rootfs(&rootfs).map_err(e)?;
            let refused = |what: &str, result: Result<(), rootfs::MountError>| match result {
                Err(err) if err.errno() == Errno::EXDEV => ensure(
                    err.to_string().contains("leads out of the rootfs"),
                    &format!("{what}: {err}"),
                ),
                other => Err(format!("{what}: {other:?}, expected a refusal")),
            };
            refused("mount_proc", rootfs::mount_proc(&rootfs).map(drop))?;
            refused("mount_dev", rootfs::mount_dev(&rootfs, in_userns).map(drop))?;
            refused(
                "mount_sysfs_readonly",
                rootfs::mount_sysfs_readonly(&rootfs).map(drop),
            )?;
            refused(
                "mask_paths",
                rootfs::mask_paths(&rootfs, &["/etc/keys"]).map(drop),
            )?;
            refused(
                "readonly_paths",
                rootfs::readonly_paths(&rootfs, &["/sys/kernel"]).map(drop),
            )?;
            let t = table()?;
            ensure(
                t.iter()
                    .all(|m| !m.mount_point.starts_with(outside_in_child.to_str().unwrap())),
                "something was mounted outside the rootfs",
            )?;
            ensure(
                fs::read_to_string(outside_in_child.join("keys")).ok().as_deref() == Some("secret"),
                "keys",
            )
        });
    });
}

/// A read-only path may lead to the root itself (a rootfs's link `etc/app -> ..`, or `/` in a
/// config's list): it is bound read-only over the root, and the paths after it must be made read-only
/// in that bind, which is what the container sees after the pivot. Looked up beneath the root as it
/// was before that bind, the next path's read-only mount went underneath, out of sight, and a volume
/// at /data stayed writable (found by review, 2026-12-02).
#[test]
fn a_read_only_path_that_leads_to_the_root_leaves_the_next_ones_read_only() {
    if !require_namespaces("a_read_only_path_that_leads_to_the_root_leaves_the_next_ones_read_only") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        let volume = scratch.subdir("volume").unwrap();
        fs::write(volume.join("config"), "v").unwrap();
        fs::create_dir_all(rootfs.join("data")).unwrap();
        symlink("..", rootfs.join("etc/app")).unwrap();
        in_child("read-only-root", scratch, move |_| {
            bound_rootfs(&rootfs, Some((&volume, "data")))?;
            let got =
                rootfs::readonly_paths(&rootfs, &["/etc/app", "/data/config"]).map_err(|e| e.to_string())?;
            ensure(
                got == [PathOutcome::ReadOnly, PathOutcome::ReadOnly],
                &format!("{got:?}"),
            )?;
            // What the container will see: the root opened by its path, as pivot_into opens it.
            all_read_only(&[rootfs.join("data/config")])
        });
    });
}

/// A read-only path with a mount beneath it (an OCI config's `/data` with a volume at `/data/cache`,
/// or /proc/sys with binfmt_misc): the mount beneath is read-only too. Remounting the bind alone, as
/// runc does and this did until 2026-12-03, left it writable under a path the config says is
/// read-only.
#[test]
fn a_read_only_path_makes_the_mounts_beneath_it_read_only_too() {
    if !require_namespaces("a_read_only_path_makes_the_mounts_beneath_it_read_only_too") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        let volume = scratch.subdir("cache").unwrap();
        fs::create_dir_all(rootfs.join("data/cache")).unwrap();
        in_child("read-only-beneath", scratch, move |_| {
            bound_rootfs(&rootfs, Some((&volume, "data/cache")))?;
            let got = rootfs::readonly_paths(&rootfs, &["/data"]).map_err(|e| e.to_string())?;
            ensure(got == [PathOutcome::ReadOnly], &format!("{got:?}"))?;
            all_read_only(&[rootfs.join("data/new"), rootfs.join("data/cache/new")])?;
            // Only the bind and what it brought: the mounts it was made from stay writable, the
            // volume's source and the rest of the rootfs.
            for file in [volume.join("new"), rootfs.join("etc/new")] {
                fs::write(&file, "x").map_err(|e| format!("{} after readonly_paths: {e}", file.display()))?;
            }
            Ok(())
        });
    });
}

/// Before Linux 5.12 there is no mount_setattr(2) (refused here with ENOSYS by a seccomp filter, as such
/// a kernel would): the mounts beneath a read-only path are then remounted read-only one by one, found
/// in mountinfo. The bind's top alone left them writable: a volume under a read-only `/data` here, and
/// (found by review, reproduced end to end with `combined run --bundle` on such a kernel) the
/// container's copy of /proc under a read-only `/`, the host's `kernel/core_pattern` with it.
#[test]
fn without_mount_setattr_a_read_only_path_still_covers_the_mounts_beneath_it() {
    if !require_namespaces("without_mount_setattr_a_read_only_path_still_covers_the_mounts_beneath_it") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        let volume = scratch.subdir("cache").unwrap();
        fs::create_dir_all(rootfs.join("data/cache")).unwrap();
        in_child("read-only-old-kernel", scratch, move |_| {
            let e = |e: rootfs::MountError| e.to_string();
            bound_rootfs(&rootfs, Some((&volume, "data/cache")))?;
            let proc = rootfs::mount_proc(&rootfs).map_err(e)?;
            refuse_mount_setattr()?;
            // In combined's order: /proc's paths first, beneath its mount, then the root's.
            rootfs::readonly_paths(&mnt_demo::resolve::fd_path(&proc), &["/sys"]).map_err(e)?;
            rootfs::readonly_paths(&rootfs, &["/data", "/"]).map_err(e)?;
            // `shmmax`, of the IPC namespace, is writable by its owner, root inside a user namespace too.
            all_read_only(&[
                rootfs.join("data/cache/new"),
                rootfs.join("proc/sys/kernel/shmmax"),
            ])
        });
    });
}

/// A read-only path that leads to the root of /proc itself, given as its mount's descriptor
/// (`/proc/self/fd/N`, as combined gives /proc and /sys), then one beneath it: the second goes into
/// the read-only copy just bound over /proc, found through that copy's own descriptor. Opened again by
/// its `/proc/self/fd` path, the root named the proc mount underneath, and before Linux 5.12 the second
/// path's remount then failed, the container with it (found by review).
#[test]
fn a_read_only_proc_then_a_path_in_it_without_mount_setattr() {
    if !require_namespaces("a_read_only_proc_then_a_path_in_it_without_mount_setattr") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        in_child("read-only-proc-old-kernel", scratch, move |_| {
            let e = |e: rootfs::MountError| e.to_string();
            bound_rootfs(&rootfs, None)?;
            let proc = rootfs::mount_proc(&rootfs).map_err(e)?;
            refuse_mount_setattr()?;
            let got =
                rootfs::readonly_paths(&mnt_demo::resolve::fd_path(&proc), &["/", "/sys"]).map_err(e)?;
            ensure(got == [PathOutcome::ReadOnly; 2], &format!("{got:?}"))?;
            // Of the IPC namespace: writable by its owner, root inside a user namespace too.
            all_read_only(&[rootfs.join("proc/sys/kernel/shmmax")])
        });
    });
}

/// This process's mount_setattr(2) calls fail with ENOSYS from now on, as on Linux before 5.12.
fn refuse_mount_setattr() -> Result<(), String> {
    use libseccomp::{ScmpAction, ScmpFilterContext, ScmpSyscall};
    let e = |e: libseccomp::error::SeccompError| format!("seccomp: {e}");
    let mut filter = ScmpFilterContext::new(ScmpAction::Allow).map_err(e)?;
    let call = ScmpSyscall::from_name("mount_setattr").map_err(e)?;
    filter
        .add_rule(ScmpAction::Errno(libc::ENOSYS), call)
        .map_err(e)?;
    filter.load().map_err(e)
}

/// The masks look their paths up in what is mounted now, as the read-only paths do: once a mask
/// covers the root itself (a path that leads to it), the next paths are looked up in that empty tmpfs,
/// which is what the container sees, and are absent there, not masked underneath it, out of sight.
#[test]
fn a_mask_that_leads_to_the_root_is_what_the_next_ones_are_looked_up_in() {
    if !require_namespaces("a_mask_that_leads_to_the_root_is_what_the_next_ones_are_looked_up_in") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        fs::write(rootfs.join("etc/secret"), "s").unwrap();
        symlink("..", rootfs.join("etc/app")).unwrap();
        in_child("mask-root", scratch, move |_| {
            let e = |e: rootfs::MountError| e.to_string();
            rootfs::isolate_root(Propagation::Private).map_err(e)?;
            rootfs::bind_rootfs(&rootfs).map_err(e)?;
            let got = rootfs::mask_paths(&rootfs, &["/etc/app", "/etc/secret"]).map_err(e)?;
            ensure(
                got == [PathOutcome::MaskedDir, PathOutcome::Absent],
                &format!("{got:?}, expected the root masked and /etc/secret absent in the mask"),
            )
        });
    });
}

#[test]
fn missing_paths_are_skipped_and_errors_name_the_step() {
    if !require_namespaces("missing_paths_are_skipped_and_errors_name_the_step") {
        return;
    }
    on_clean_host(|scratch| {
        let rootfs = scratch.build_rootfs().unwrap();
        in_child("missing", scratch, |_| {
            let e = |e: rootfs::MountError| e.to_string();
            rootfs::isolate_root(Propagation::Private).map_err(e)?;
            let got = rootfs::mask_paths(&rootfs, &["/no/such/file"]).map_err(e)?;
            ensure(
                got == [PathOutcome::Absent],
                "a missing mask path was not skipped",
            )?;
            let got = rootfs::readonly_paths(&rootfs, &["/no/such/dir"]).map_err(e)?;
            ensure(
                got == [PathOutcome::Absent],
                "a missing read-only path was not skipped",
            )?;
            // pivot_into on a directory that is not a mount point: the error names the step and path.
            let err = rootfs::pivot_into(&rootfs.join("etc")).expect_err("pivot into a plain directory");
            // EINVAL where /tmp is a mount of its own, EBUSY where it is on the root mount.
            ensure(
                matches!(err.errno(), Errno::EINVAL | Errno::EBUSY),
                &format!("{err}"),
            )?;
            let text = err.to_string();
            ensure(
                text.starts_with("pivot_root into ") && text.contains("/etc"),
                &text,
            )
        });
    });
}

/// openat2(2) with `RESOLVE_IN_ROOT` gives up on a `..` it is resolving, with EAGAIN, when a mount
/// happens anywhere on the system meanwhile. The lookups retry, so a busy host (an engine mounting
/// other containers' roots) never turns a command that is there (busybox's `/bin/sh`, a link to
/// `../bin/busybox`) into a missing one.
#[test]
fn lookups_through_dotdot_survive_mounts_elsewhere() {
    if !require_namespaces("lookups_through_dotdot_survive_mounts_elsewhere") {
        return;
    }
    let scratch = Scratch::new().unwrap();
    let root = scratch.path().join("root");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("bin/busybox"), b"").unwrap();
    symlink("../bin/busybox", root.join("bin/sh")).unwrap();
    let target = scratch.path().join("churn");
    fs::create_dir(&target).unwrap();
    // A child in a mount namespace of its own mounts and unmounts a tmpfs, and renames a file back
    // and forth, until it is killed: either makes a scoped `..` retry.
    let mut churn = Spawn::new(CloneFlags::CLONE_NEWNS)
        .run(|channel| {
            if nskit::mount::make_mounts_private().is_err() || channel.send("churning").is_err() {
                return 1;
            }
            let (a, b) = (target.join("a"), target.join("b"));
            loop {
                let flags = nix::mount::MsFlags::empty();
                if nix::mount::mount(Some("tmpfs"), &target, Some("tmpfs"), flags, None::<&str>).is_ok() {
                    let _ = nix::mount::umount(&target);
                }
                let _ = fs::write(&a, b"");
                for _ in 0..100 {
                    let _ = fs::rename(&a, &b);
                    let _ = fs::rename(&b, &a);
                }
            }
        })
        .unwrap();
    assert_eq!(churn.channel().recv().unwrap(), "churning");
    let mut failures = Vec::new();
    // Scaled down in an emulated guest (NS_TEST_SCALE): what is tested is that none fails.
    for _ in 0..nskit::testing::scaled(100_000) {
        if let Err(e) = mnt_demo::resolve::open_in_root(&root, Path::new("/bin/sh")) {
            failures.push(e.to_string());
        }
    }
    drop(churn);
    assert!(
        failures.is_empty(),
        "{} lookups failed: {:?}",
        failures.len(),
        failures.first()
    );
}
