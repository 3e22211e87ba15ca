//! `cargo run -p mnt-demo`: the mount namespace side by side with the host (mount_namespaces(7),
//! pivot_root(2), chroot(2), proc(5)). It parses, calls the library's experiments, and prints; the
//! lesson is in `lib.rs`.

use nskit::show::Out;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mnt_demo::lab::{self, LeakCase, PropagationCase, RootView};
use mnt_demo::{Propagation, PropagationTags, Scratch};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::show::{explain, line, line_noted, outcome, privilege_banner, step};
use nskit::{Kind, NsId, Proc};

/// Shows what the mount namespace isolates, how propagation lets mounts cross anyway, and why a
/// container pivots its root instead of chrooting.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user (through a user namespace) or as root. Everything it mounts \
                  is under a scratch directory of its own, removed at the end."
)]
struct Cli {
    /// Give the children a user namespace even when running as root.
    #[arg(long)]
    userns: bool,
    /// Print the observations only, without the explanations.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mnt-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn errno_text(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => format!("{errno:?}"),
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    let host_table =
        std::fs::read_to_string("/proc/self/mountinfo").context("cannot read the host's mount table")?;
    let host_ns =
        nskit::ns::ns_id(Proc::Current, Kind::Mnt).context("cannot read the host's mount namespace")?;
    let spawn = lab::child_spawn(CloneFlags::empty(), cli.userns);
    out.say("mnt-demo: the mount namespace gives a process its own mount table; propagation decides which mounts cross".into());
    out.say(privilege_banner(
        spawn.flags().contains(CloneFlags::CLONE_NEWUSER),
    ));

    let scratch = Scratch::new().context("cannot create the scratch directory")?;
    out.say(explain(&format!(
        "everything below happens under $SCRATCH = {}, removed at the end",
        std::env::temp_dir().join("mnt-demo-<pid>-0").display()
    )));

    visibility(&out, &spawn, &scratch)?;
    propagation(&out, &spawn, &scratch)?;
    leak(&out, &scratch, cli.userns)?;
    let rootfs = the_rootfs(&out, &scratch, host_ns)?;
    chroot_escape(&out, &spawn, &scratch, &rootfs)?;
    pivot(&out, &scratch, &rootfs, cli.userns)?;

    out.say(step(8, "Cleaning up"));
    let dir = scratch.path().to_owned();
    drop(scratch);
    let after =
        std::fs::read_to_string("/proc/self/mountinfo").context("cannot read the host's mount table")?;
    out.see(line(
        "host",
        host_ns,
        format!(
            "mount table identical to before the demo: {}",
            yes(after == host_table)
        ),
    ));
    out.see(line(
        "host",
        host_ns,
        format!("$SCRATCH removed: {}", yes(!dir.exists())),
    ));
    anyhow::ensure!(after == host_table, "the host's mount table changed");
    anyhow::ensure!(
        !dir.exists(),
        "the scratch directory is still there: {}",
        dir.display()
    );
    Ok(())
}

fn visibility(out: &Out, spawn: &nskit::Spawn, scratch: &Scratch) -> anyhow::Result<()> {
    out.say(step(
        1,
        "A tmpfs mounted in a new mount namespace, read from both sides' /proc files",
    ));
    let seen = lab::tmpfs_visibility(spawn, scratch).context("cannot run the child that mounts a tmpfs")?;
    for (who, files) in [("child", &seen.child), ("host", &seen.host)] {
        let pid = files.pid;
        let show = |text: &str| scratch.show(text);
        let first = |v: &Vec<String>| v.first().map_or("(absent)".to_owned(), |l| show(l));
        out.see(line(
            who,
            files.ns,
            format!("/proc/{pid}/mounts      {}", first(&files.mounts)),
        ));
        let info = files.mountinfo.first().map_or("(absent)".to_owned(), |e| {
            format!(
                "{} {} {} {} {}   (mount ID {}, parent {}, device {}:{})",
                show(&e.mount_point),
                e.fs_type,
                e.source,
                e.mount_options,
                e.propagation.kind(),
                e.mount_id,
                e.parent_id,
                e.major,
                e.minor
            )
        });
        out.see(line(who, files.ns, format!("/proc/{pid}/mountinfo   {info}")));
        out.see(line(
            who,
            files.ns,
            format!("/proc/{pid}/mountstats  {}", first(&files.mountstats)),
        ));
    }
    out.say(explain(
        "the three files describe the mount namespace of the process they belong to, whoever reads them:\n\
         mounts (the fstab format), mountinfo (IDs, parent, root, propagation), mountstats (per-mount statistics)",
    ));
    let extra = seen.child.total as i64 - seen.host.total as i64;
    out.say(explain(&format!(
        "the child's table is a copy of the host's, made by clone(CLONE_NEWNS), plus {extra} mount: the tmpfs"
    )));
    Ok(())
}

fn tags_text(tags: &PropagationTags) -> String {
    tags.fields()
}

/// How `b` relates to `a`, from their mountinfo tags.
fn relation(case: &PropagationCase) -> String {
    let (a, b) = (&case.a, &case.b);
    if case.bind.is_err() {
        return format!("a is {}: it cannot be bound anywhere", a.kind());
    }
    if a.shared.is_some() && a.shared == b.shared {
        "b is a's peer: the same peer group".into()
    } else if b.master.is_some() && b.master == a.shared {
        "b is a slave of a's peer group".into()
    } else {
        format!("a is {}, b is {}: no group joins them", a.kind(), b.kind())
    }
}

fn propagation(out: &Out, spawn: &nskit::Spawn, scratch: &Scratch) -> anyhow::Result<()> {
    out.say(step(
        2,
        "Propagation: which mount events cross between a mount `a` and its bind mount `b`",
    ));
    out.say(explain(
        "in a child's own mount namespace, on a tmpfs at $SCRATCH/lab: for each type, mount a tmpfs at a,\n\
         set its propagation, bind it at b, then mount something under a and under b and look at the other",
    ));
    let lab = lab::propagation_lab(spawn, scratch).context("cannot run the propagation lab")?;
    for case in &lab.cases {
        let name = case.propagation.name();
        if let Err(errno) = case.bind {
            out.see(line(
                "lab",
                lab.ns,
                format!("{name:<10}  bind a at b -> {errno:?}"),
            ));
        } else {
            out.see(line(
                "lab",
                lab.ns,
                format!(
                    "{name:<10}  mount under a shows under b: {:<3}  under b shows under a: {}",
                    yes(case.a_to_b),
                    yes(case.b_to_a)
                ),
            ));
        }
        out.see(line(
            "lab",
            lab.ns,
            format!(
                "{:<10}  {}   [mountinfo a: {}  b: {}]",
                "",
                relation(case),
                tags_text(&case.a),
                tags_text(&case.b)
            ),
        ));
    }
    out.say(explain(
        "shared: peers pass every mount and unmount to each other; slave: receives from its master's group,\n\
         sends nothing back; private: nothing in or out; unbindable: private, and cannot be bind-mounted\n\
         (so a recursive bind of a tree skips it). The numbers are peer group IDs: shared:N is the group a\n\
         mount belongs to, master:N the group it receives from",
    ));
    Ok(())
}

fn isolation_text(isolation: Option<Propagation>) -> &'static str {
    match isolation {
        None => "mounts at once, isolating nothing",
        Some(Propagation::Slave) => "mount --make-rslave / first",
        Some(_) => "mount --make-rprivate / first",
    }
}

fn leak(out: &Out, scratch: &Scratch, force_userns: bool) -> anyhow::Result<()> {
    out.say(step(
        3,
        "Why a launcher makes / private or slave before mounting anything",
    ));
    let lab = lab::leak_lab(scratch, force_userns).context("cannot run the leak lab")?;
    let who = if lab.observer_is_host { "host" } else { "outer" };
    if lab.observer_is_host {
        out.say(explain(
            "as root, on a scratch mount of the demo's own in the host's mount table (never on the real /):",
        ));
    } else {
        out.say(explain(
            "not root (or --userns): the demo cannot mount on the host, so a mount namespace of its own plays the\n\
             host. (Namespaces made in a new user namespace get the host's shared mounts as slaves, so an\n\
             unprivileged container cannot leak to the real host; a root one can, as a run as root shows.)",
        ));
    }
    out.see(line(
        who,
        lab.observer_ns,
        format!(
            "{} is {}, as systemd makes /   [mountinfo: {}]",
            scratch.show(&lab.shared_point.display().to_string()),
            lab.shared_tags.kind(),
            tags_text(&lab.shared_tags)
        ),
    ));
    for case in &lab.cases {
        leak_case(out, &lab, case, who);
    }
    out.say(explain(
        "clone(CLONE_NEWNS) copies a shared mount into the same peer group: whatever the container mounts\n\
         there appears in the host's table (and outlives the container). MS_REC|MS_SLAVE stops the leak but\n\
         still lets the host's new mounts in; MS_REC|MS_PRIVATE cuts both ways. The demo then unmounts it all",
    ));
    Ok(())
}

fn leak_case(out: &Out, lab: &lab::LeakLab, case: &LeakCase, who: &str) {
    let relation = if case.tags.shared.is_some() && case.tags.shared == lab.shared_tags.shared {
        format!("its copy is the {who}'s peer")
    } else if case.tags.master.is_some() && case.tags.master == lab.shared_tags.shared {
        format!("its copy is a slave of the {who}'s group")
    } else {
        format!("its copy is {}", case.tags.kind())
    };
    out.see(line(
        "ctr",
        case.container_ns,
        format!(
            "{}: {relation}   [mountinfo: {}]",
            isolation_text(case.isolation),
            tags_text(&case.tags)
        ),
    ));
    let leaked = if case.leaked { "YES, a leak" } else { "no" };
    out.see(line_noted(
        who,
        lab.observer_ns,
        format!(
            "sees the container's mount: {leaked:<11}  container sees the {who}'s new mount: {}",
            yes(case.received)
        ),
        if case.isolation.is_none() {
            "the tutorial bug"
        } else {
            "contained"
        },
    ));
}

fn the_rootfs(out: &Out, scratch: &Scratch, host_ns: NsId) -> anyhow::Result<std::path::PathBuf> {
    out.say(step(
        4,
        "A rootfs made on the spot, and a symlink that points out of it",
    ));
    let rootfs = scratch
        .build_rootfs()
        .context("cannot build the scratch rootfs")?;
    out.see(line(
        "host",
        host_ns,
        "$SCRATCH/rootfs: etc/os-release escape/ proc/ dev/ sys/ tmp/ var/run -> /run",
    ));
    out.say(explain(
        "no download: the experiments run in cloned children, so no program has to be exec'd inside it",
    ));
    let check = lab::symlink_check(&rootfs);
    let naive = check
        .naive
        .as_ref()
        .map_or("(nothing)".to_owned(), |p| scratch.show(&p.display().to_string()));
    out.see(line(
        "host",
        host_ns,
        format!("$SCRATCH/rootfs{} followed by the kernel  -> {naive}", check.path),
    ));
    let resolved = match &check.resolved {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("refused ({:?})", e.errno()),
    };
    out.see(line(
        "host",
        host_ns,
        format!("resolve_in_root(rootfs, {})       -> {resolved}", check.path),
    ));
    out.say(explain(
        "a launcher that mounted onto rootfs/var/run would have mounted onto the host's /run: every mount\n\
         target is opened with openat2(RESOLVE_BENEATH), which refuses to leave the rootfs, and mounted\n\
         onto through /proc/self/fd/N",
    ));
    Ok(rootfs)
}

fn root_view(view: &RootView) -> String {
    format!(
        "/ is the rootfs: {:<3}  / is the host's /: {:<3}  $SCRATCH reachable: {}",
        yes(view.sees_rootfs),
        yes(view.is_host_root),
        yes(view.sees_scratch)
    )
}

fn chroot_escape(
    out: &Out,
    spawn: &nskit::Spawn,
    scratch: &Scratch,
    rootfs: &std::path::Path,
) -> anyhow::Result<()> {
    out.say(step(
        5,
        "chroot(2) only moves a process's idea of /: a privileged process walks out",
    ));
    let seen = lab::chroot_escape(spawn, scratch, rootfs).context("cannot run the chroot child")?;
    out.see(line(
        "child",
        seen.ns,
        format!("after chroot(rootfs):   {}", root_view(&seen.chrooted)),
    ));
    out.see(line(
        "child",
        seen.ns,
        format!("after the escape trick: {}", root_view(&seen.escaped)),
    ));
    out.say(explain(
        "the trick: chroot(\"escape\") without entering it leaves the working directory outside the root,\n\
         where `..` is never stopped; climb, then chroot(\".\"). It needs CAP_SYS_CHROOT, which root in a\n\
         container has unless it is dropped: chroot is not a security boundary",
    ));
    Ok(())
}

fn pivot(out: &Out, scratch: &Scratch, rootfs: &std::path::Path, force_userns: bool) -> anyhow::Result<()> {
    out.say(step(6, "pivot_root(2)'s rules, failure first"));
    let seen = lab::pivot_lab(force_userns, scratch, rootfs).context("cannot run the pivot_root child")?;
    out.see(line(
        "child",
        seen.ns,
        format!(
            "pivot_root(\".\", \".\") in a plain directory       -> {}",
            errno_text(seen.not_a_mount_point)
        ),
    ));
    out.say(outcome(
        &errno_text(seen.not_a_mount_point),
        "the new root must be a mount point; a directory is not one",
    ));
    out.see(line_noted(
        "temp",
        seen.shared_attempt_ns,
        format!(
            "bound onto itself, but the bind mount is shared -> {}",
            errno_text(seen.shared_mount)
        ),
        "a throwaway copy of the child's namespace",
    ));
    out.say(outcome(
        &errno_text(seen.shared_mount),
        "a mount point now, but pivot_root refuses if new_root's parent mount, the current root's parent\n   \
         mount or put_old's mount is shared; with pivot_root(\".\", \".\") put_old is new_root's own mount,\n   \
         shared here. The rule keeps a pivot from ever propagating into another namespace",
    ));
    out.see(line(
        "child",
        seen.ns,
        format!(
            "bound onto itself, all private: pivot_into     -> {}",
            errno_text(seen.pivoted)
        ),
    ));
    out.say(outcome(
        "ok",
        "pivot_root(\".\", \".\") stacks the old root on the new one; made slave and detached, it is gone",
    ));

    out.say(step(
        7,
        "After pivot_root and detaching the old root, the same escape fails",
    ));
    out.see(line(
        "child",
        seen.ns,
        format!("after pivot_into(rootfs): {}", root_view(&seen.after_pivot)),
    ));
    out.see(line(
        "child",
        seen.ns,
        format!("after the escape trick:   {}", root_view(&seen.after_escape)),
    ));
    out.see(line_noted(
        "child",
        seen.ns,
        format!("mount points left: {}", seen.mounts_inside.join(" ")),
        "the rootfs bind and its own /proc",
    ));
    out.say(explain(
        "`..` from the root of a mount namespace leads to itself, and no mount of the host is left to reach:\n\
         the old root was detached. /proc was mounted before the pivot, while the host's proc was still\n\
         visible: in a user namespace the kernel allows a new proc only then (and only with a new PID namespace)",
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
