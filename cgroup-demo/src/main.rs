//! `cargo run -p cgroup-demo`: the cgroup chapter's demo (cgroups(7), cgroup_namespaces(7)): what a
//! cgroup is on this host, whether this user may make one, the cgroup namespace side by side with the
//! host, and memory, pids and cpu limits that bite. It parses, calls the library's steps, and prints;
//! the lesson is in `lib.rs`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cgroup_demo::{
    Bytes, Cgroup, Controller, Cpus, Delegation, Hierarchies, HostKind, HostView, Limits, Membership,
    PidsLimit, Swap, Version, Written, cleanup,
};
use clap::{Parser, ValueEnum};
use nix::sched::CloneFlags;
use nskit::NsId;
use nskit::show::{Out, explain, line, line_noted, outcome, privilege_banner, step};

/// Shows what a cgroup is on this host (v2, v1 or hybrid), whether this user may make cgroups, the
/// cgroup namespace, and memory, pids and cpu limits that bite.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as root, or as an ordinary user: the cgroup namespace through a user namespace, and the \
                  limits only in a delegated cgroup subtree. Every cgroup made is removed at the end, also on \
                  failure or Ctrl-C."
)]
struct Cli {
    /// Run only this step (after step 1, which finds the hierarchies).
    #[arg(long, value_enum)]
    step: Option<Step>,
    /// The memory limit of step 4 (docker's --memory; no swap on top).
    #[arg(long, default_value = "32m", value_parser = cgroup_demo::parse_memory)]
    memory: Bytes,
    /// How much step 4's child allocates.
    #[arg(long, default_value = "64m", value_parser = Bytes::parse)]
    allocate: Bytes,
    /// The pids limit of step 5 (docker's --pids-limit), counting the child itself.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pids_limit: u32,
    /// The CPU limit of step 6 (docker's --cpus).
    #[arg(long, default_value = "0.5", value_parser = Cpus::parse)]
    cpus: Cpus,
    /// How long step 6's child spins, in seconds.
    #[arg(long, default_value_t = 1.0, value_parser = parse_seconds)]
    busy: f64,
    /// Give step 3's child a user namespace even when running as root.
    #[arg(long)]
    userns: bool,
    /// Print the observations only, without the explanations.
    #[arg(long, short)]
    quiet: bool,
    /// For tests: after this step, say so on stderr and wait for a signal.
    #[arg(long, value_enum, hide = true)]
    pause_after: Option<Step>,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.1..=10.0).contains(&s) => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds from 0.1 to 10")),
    }
}

/// The demo's steps after step 1; cleaning up (step 7) always runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Step {
    /// 2. Whether this process may make cgroups (delegation).
    Delegation,
    /// 3. The cgroup namespace.
    Namespace,
    /// 4. A memory limit and the OOM killer.
    Memory,
    /// 5. A pids limit and fork's EAGAIN.
    Pids,
    /// 6. A cpu limit and the share a busy loop gets.
    Cpu,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cgroup-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The cgroups made so far, removed in step 7, or on the way out if a step fails.
#[derive(Default)]
struct Made(Vec<Cgroup>);

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    cleanup::remove_on_signals().context("cannot install the SIGINT/SIGTERM handler")?;
    let spawn = cgroup_demo::ns_spawn(cli.userns);
    out.say(
        "cgroup-demo: control groups count and limit what groups of processes use; the cgroup namespace \
         hides where a group sits"
            .into(),
    );
    out.say(privilege_banner(
        spawn.flags().contains(CloneFlags::CLONE_NEWUSER),
    ));

    out.say(step(
        1,
        "What a cgroup is: a directory in a cgroup filesystem, named in /proc/self/cgroup",
    ));
    let host = cgroup_demo::observe_host().context("cannot read this process's cgroups")?;
    show_host(&out, &host);

    let wanted = |s: Step| cli.step.is_none_or(|only| only == s);
    let name = format!("cgroup-demo-{}", std::process::id());
    let mut made = Made::default();
    let delegation =
        cgroup_demo::delegation(&host.hierarchies).context("cannot find where cgroups would go")?;
    if wanted(Step::Delegation) {
        out.say(step(2, "May this process make cgroups? Delegation"));
        show_delegation(&out, &host, &delegation, &name)?;
        pause_if(cli, Step::Delegation);
    }
    if wanted(Step::Namespace) {
        out.say(step(
            3,
            "The cgroup namespace: the cgroup a process is in becomes its /",
        ));
        namespace(&out, cli, &spawn, &host, &delegation, &name, &mut made)?;
    }
    let limits_wanted = [Step::Memory, Step::Pids, Step::Cpu]
        .into_iter()
        .filter(|&s| wanted(s));
    for s in limits_wanted {
        let title = match s {
            Step::Memory => (
                4,
                "memory: the OOM killer ends a process that allocates past the limit",
            ),
            Step::Pids => (5, "pids: fork fails with EAGAIN at the limit"),
            _ => (6, "cpu: a busy loop gets the share of a CPU asked for"),
        };
        out.say(step(title.0, title.1));
        if !delegation.may_create() {
            out.say(outcome(
                "skipped",
                "a limit needs a cgroup of one's own, and this process may not make one (step 2)",
            ));
            continue;
        }
        let controller = controller_of(s);
        let cgroup = Cgroup::create(
            &delegation.placement.only(&[controller]),
            &format!("{name}-{controller}"),
        )
        .context("cannot make the cgroup")?;
        let cgroup = made.keep(cgroup);
        match s {
            Step::Memory => memory(&out, &host, cli, cgroup)?,
            Step::Pids => pids(&out, &host, cli, cgroup)?,
            _ => cpu(&out, &host, cli, cgroup)?,
        }
        pause_if(cli, s);
    }
    out.say(step(
        7,
        "Cleaning up: every cgroup made is removed, once its processes are gone",
    ));
    clean_up(&out, &host, &delegation, &name, made)
}

/// The controller a limit step uses.
fn controller_of(s: Step) -> Controller {
    match s {
        Step::Memory => Controller::Memory,
        Step::Pids => Controller::Pids,
        _ => Controller::Cpu,
    }
}

impl Made {
    fn keep(&mut self, cgroup: Cgroup) -> &Cgroup {
        self.0.push(cgroup);
        self.0.last().expect("just pushed")
    }
}

/// Waits for a signal, so that a test can check that Ctrl-C leaves nothing behind.
fn pause_if(cli: &Cli, s: Step) {
    if cli.pause_after != Some(s) {
        return;
    }
    let _ = std::io::stdout().flush();
    eprintln!(
        "cgroup-demo: paused after {s:?} (pid {}); waiting for a signal",
        std::process::id()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

// ---- step 1 ---------------------------------------------------------------------------------------

fn show_host(out: &Out, host: &HostView) {
    out.see(line(
        "host",
        host.ns,
        format!("this host: {}", describe_kind(host)),
    ));
    let width = host
        .lines
        .iter()
        .map(|l| l.membership.to_string().len())
        .max()
        .unwrap_or(0);
    for l in &host.lines {
        let dir = l
            .dir
            .as_ref()
            .map_or("(not mounted here)".to_owned(), |d| d.display().to_string());
        out.see(line(
            "host",
            host.ns,
            format!("/proc/self/cgroup {:<width$}  -> {dir}", l.membership.to_string()),
        ));
    }
    out.say(explain(
        "each line is hierarchy-ID:controllers:path; the path names a directory below that hierarchy's\n\
         mount, and the process is listed in that directory's cgroup.procs",
    ));
    out.say(explain(match host.kind {
        HostKind::V2 => {
            "cgroup v2: one hierarchy (the 0:: line) for every controller; its top lists them in\n\
             cgroup.controllers. The limits below are memory.max, pids.max and cpu.max"
        }
        HostKind::Hybrid => {
            "a hybrid host: each v1 controller has a hierarchy of its own (a line, a directory tree), and\n\
             the v2 hierarchy (0::) is mounted too, without the controllers this chapter uses. The limits\n\
             below go to the v1 files (memory.limit_in_bytes, pids.max, cpu.cfs_quota_us); on a cgroup v2\n\
             host the same steps write memory.max, pids.max and cpu.max in one directory"
        }
        HostKind::V1 => {
            "cgroup v1: each controller in a hierarchy of its own (a line, a directory tree). The limits\n\
             below are memory.limit_in_bytes, pids.max and cpu.cfs_quota_us"
        }
    }));
}

fn describe_kind(host: &HostView) -> String {
    let h = &host.hierarchies;
    let v1: Vec<String> = h
        .mounts
        .iter()
        .filter(|m| m.version == Version::V1)
        .map(|m| m.controllers.join(","))
        .collect();
    let v2 = |m: &cgroup_demo::Mount| {
        let offered = if m.controllers.is_empty() {
            "no controllers".to_owned()
        } else {
            format!("controllers {}", m.controllers.join(" "))
        };
        format!("cgroup2 on {} ({offered})", m.mount_point.display())
    };
    match host.kind {
        HostKind::V2 => format!("cgroup v2: {}", h.v2().map(v2).unwrap_or_default()),
        HostKind::Hybrid => format!(
            "hybrid: v1 hierarchies {}, and {}",
            v1.join(" "),
            h.v2().map(v2).unwrap_or_default()
        ),
        HostKind::V1 => format!("cgroup v1: hierarchies {}", v1.join(" ")),
    }
}

// ---- step 2 ---------------------------------------------------------------------------------------

fn controllers_of(dir: &cgroup_demo::Dir) -> String {
    dir.controllers
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn show_delegation(out: &Out, host: &HostView, d: &Delegation, name: &str) -> anyhow::Result<()> {
    let uid = nix::unistd::geteuid();
    for (dir, access) in d.placement.parents.iter().zip(&d.access) {
        let verdict = if access.may_create {
            "may create"
        } else {
            "may not"
        };
        out.see(line(
            "host",
            host.ns,
            format!(
                "{verdict:<10}  {} cgroups in {} (owner uid {})",
                controllers_of(dir),
                access.dir.display(),
                access.owner
            ),
        ));
    }
    out.say(explain(
        "a cgroup is made with mkdir(2) and filled by writing PIDs to cgroup.procs, so making one is a\n\
         matter of file permissions: root may; another user needs a directory delegated to it (one it\n\
         owns, with its cgroup.procs, cgroup.subtree_control and cgroup.threads)",
    ));
    if d.may_create() {
        out.say(outcome(
            "may create",
            &format!("uid {uid} may write every one of these directories"),
        ));
        return Ok(());
    }
    let refused = d.access.iter().find(|a| !a.may_create).expect("one is refused");
    let tried = cgroup_demo::mkdir_from_userns(&refused.dir, name)
        .context("cannot start a child in a user namespace")?;
    let errno = match tried {
        Ok(()) => "ok".to_owned(),
        Err(errno) => format!("{errno:?}"),
    };
    out.see(line_noted(
        "usrns",
        host.ns,
        format!("mkdir -> {errno}"),
        &format!("in {}", refused.dir.join(name).display()),
    ));
    out.say(outcome(
        "refused",
        "uid 0 in a user namespace is still this user to the host's cgroup files, and its\n   \
         capabilities do not reach files the initial user namespace owns",
    ));
    out.say(explain(&wrap(&format!(
        "without delegation this demo shows the cgroup namespace (which needs only a user namespace) \
         and skips the limits. To get delegation: {}",
        cgroup_demo::HOW_TO_DELEGATE
    ))));
    Ok(())
}

/// Breaks a long sentence onto lines of about 90 columns, for `explain`.
fn wrap(text: &str) -> String {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let current = lines.last_mut().expect("one line");
        if current.len() + word.len() > 90 {
            lines.push(word.to_owned());
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
    }
    lines.join("\n")
}

// ---- step 3 ---------------------------------------------------------------------------------------

/// The membership lines of the hierarchies this chapter uses (memory, pids, cpu).
fn used_lines<'a>(h: &Hierarchies, lines: &'a [Membership]) -> Vec<&'a Membership> {
    lines
        .iter()
        .filter(|m| {
            h.mount_of(m)
                .is_some_and(|mount| Controller::ALL.iter().any(|c| h.holding(c.name()) == Some(mount)))
        })
        .collect()
}

fn namespace(
    out: &Out,
    cli: &Cli,
    spawn: &nskit::Spawn,
    host: &HostView,
    d: &Delegation,
    name: &str,
    made: &mut Made,
) -> anyhow::Result<()> {
    let h = &host.hierarchies;
    let mount = cgroup_demo::ns_mount(h).context("no cgroup hierarchy to mount")?;
    let inner = if d.may_create() {
        let outer = made.keep(Cgroup::create(&d.placement, name).context("cannot make the cgroup")?);
        let inner = outer.nested("inner").context("cannot make the nested cgroup")?;
        let inner = made.keep(inner);
        for dir in inner.dirs() {
            out.see(line("host", host.ns, format!("made {}", dir.path.display())));
        }
        out.say(explain(
            "the child is moved into that cgroup, then calls unshare(CLONE_NEWCGROUP): the cgroups it is\n\
             in at that moment become the root of its new cgroup namespace",
        ));
        Some(inner)
    } else {
        out.say(explain(
            "the child calls unshare(CLONE_NEWCGROUP) where it is, in this process's cgroups: they become\n\
             the root of its new cgroup namespace",
        ));
        None
    };
    let mut child = cgroup_demo::enter_cgroup_ns(spawn, inner, mount)
        .context("cannot start the child in a new cgroup namespace")?;
    let seen = child
        .seen_from_host()
        .context("cannot read the child's /proc files")?;
    let inside = child.inside.clone();
    let pid = child.pid();
    // Not padded to a common width: a PID's digits would shift the columns from run to run.
    let file = |who: &str, name: &str| format!("/proc/{who}/{name}:");
    for (theirs, mine) in used_lines(h, &seen.memberships)
        .into_iter()
        .zip(used_lines(h, &inside.own))
    {
        out.see(line(
            "host",
            seen.ns,
            format!("{}  {theirs}", file(&pid.to_string(), "cgroup")),
        ));
        out.see(line(
            "child",
            inside.ns,
            format!("{}  {mine}", file("self", "cgroup")),
        ));
    }
    out.say(explain(
        "the same process, the same cgroups: the host reads the whole path, the child reads /",
    ));
    let kind = match mount.version {
        Version::V2 => "cgroup2",
        Version::V1 => "cgroup",
    };
    let on = mount.mount_point.display();
    out.see(line(
        "host",
        seen.ns,
        format!(
            "{}  {kind} on {on}, root {}",
            file(&pid.to_string(), "mountinfo"),
            seen.mount_root
        ),
    ));
    out.see(line(
        "child",
        inside.ns,
        format!(
            "{}  {kind} on {on}, root {}",
            file("self", "mountinfo"),
            inside.mount.root
        ),
    ));
    let ns_root_dir = match &inner {
        Some(inner) => inner
            .dirs()
            .iter()
            .find(|dir| dir.path.starts_with(&mount.mount_point))
            .map(|dir| dir.path.clone()),
        None => cgroup_demo::own_dirs(h, &Controller::ALL)
            .ok()
            .and_then(|dirs| {
                dirs.into_iter()
                    .find(|dir| dir.path.starts_with(&mount.mount_point))
            })
            .map(|dir| dir.path),
    };
    let host_listing = ns_root_dir
        .as_deref()
        .and_then(|dir| cgroup_demo::list_cgroups(dir).ok())
        .unwrap_or_default();
    out.see(line_noted(
        "child",
        inside.ns,
        format!(
            "cgroups at the top of its mount: {}",
            names(&inside.mount.cgroups)
        ),
        if host_listing == inside.mount.cgroups {
            "as in its root cgroup's directory on the host"
        } else {
            "unlike its root cgroup's directory on the host"
        },
    ));
    out.say(explain(
        "a cgroup filesystem mounted inside the namespace has the namespace's root at its top: the\n\
         host's cgroups above and beside it are not there to see",
    ));
    for (init, membership) in used_lines(h, &inside.init)
        .into_iter()
        .zip(used_lines(h, &inside.own))
    {
        out.see(line_noted(
            "child",
            inside.ns,
            format!("{}  {init}", file("1", "cgroup")),
            if init.path.starts_with("/..") {
                "PID 1 is outside the namespace's root"
            } else if membership.path == init.path {
                "PID 1 is in the namespace's root"
            } else {
                "PID 1 is below the namespace's root"
            },
        ));
    }
    // Paused here, the child is still in the cgroup this demo made (a test sends Ctrl-C now).
    pause_if(cli, Step::Namespace);
    if inner.is_some() {
        let own = cgroup_demo::own_dirs(h, &Controller::ALL).context("cannot find this process's cgroups")?;
        for dir in &own {
            cgroup_demo::move_process(&dir.path, pid).context("cannot move the child back")?;
        }
        let after = child.look().context("the child did not look again")?;
        for membership in used_lines(h, &after) {
            out.see(line_noted(
                "child",
                inside.ns,
                format!("{}  {membership}", file("self", "cgroup")),
                "moved back where it came from",
            ));
        }
        out.say(explain(
            "a process outside its namespace's root sees a path that climbs out of it with /..; the\n\
             namespace hides names, it is no wall: what may move where is still up to permissions",
        ));
    }
    child.finish().context("the child did not exit cleanly")?;
    Ok(())
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "(none)".into()
    } else {
        list.join(" ")
    }
}

// ---- steps 4 to 6 ---------------------------------------------------------------------------------

fn show_made(out: &Out, ns: NsId, cgroup: &Cgroup) {
    for dir in cgroup.dirs() {
        out.see(line("host", ns, format!("made {}", dir.path.display())));
    }
}

fn show_written(out: &Out, ns: NsId, written: &[Written], notes: &dyn Fn(&str) -> Option<String>) {
    for w in written {
        let file = w
            .path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let text = format!("{file} = {}", w.value);
        match notes(&file) {
            Some(note) => out.see(line_noted("host", ns, text, &note)),
            None => out.see(line("host", ns, text)),
        }
    }
}

fn memory(out: &Out, host: &HostView, cli: &Cli, cgroup: &Cgroup) -> anyhow::Result<()> {
    show_made(out, host.ns, cgroup);
    let limits = Limits {
        memory: Some(cli.memory),
        memory_swap: Swap::Total(cli.memory),
        ..Limits::default()
    };
    let written = cgroup.apply(&limits).context("cannot set the memory limit")?;
    show_written(out, host.ns, &written, &|file| match file {
        "memory.max" | "memory.limit_in_bytes" => Some(cli.memory.to_string()),
        "memory.swap.max" => Some("no swap on top".into()),
        "memory.memsw.limit_in_bytes" => Some("memory and swap together: no swap".into()),
        _ => None,
    });
    out.say(explain(
        "docker run --memory sets these files; without --memory-swap docker would allow as much swap\n\
         again, so that a limit could be outrun by swapping: here it is none",
    ));
    let story = cgroup_demo::allocate(cgroup, cli.allocate).context("cannot run the allocating child")?;
    out.see(line(
        "child",
        host.ns,
        format!("allocating {}, writing every byte, a MiB at a time", cli.allocate),
    ));
    let ended = match story.exit {
        nskit::Exit::Signal(signal) => format!("was killed by {signal:?}"),
        nskit::Exit::Code(code) => format!("exited with {code}"),
    };
    let how_far = if story.finished {
        "it allocated everything".to_owned()
    } else {
        format!("it had touched {} MiB", story.touched_mib)
    };
    out.see(line(
        "host",
        host.ns,
        format!("the child {ended}; measured: {how_far}"),
    ));
    let file = story
        .events
        .file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let oom = story.events.oom.map_or(String::new(), |n| format!("oom {n}, "));
    out.see(line(
        "host",
        host.ns,
        format!("{file}: {oom}oom_kill {}", story.events.oom_kill),
    ));
    if story.events.oom_kill > 0 {
        out.say(outcome(
            "OOM-killed",
            "past the limit the kernel reclaims what it can; with nothing left\n   \
             to reclaim, the cgroup's OOM killer chose its largest process and sent SIGKILL",
        ));
    } else {
        out.say(outcome("fits", "under the limit, nothing is killed"));
    }
    Ok(())
}

fn pids(out: &Out, host: &HostView, cli: &Cli, cgroup: &Cgroup) -> anyhow::Result<()> {
    show_made(out, host.ns, cgroup);
    let limits = Limits {
        pids: Some(PidsLimit::Max(u64::from(cli.pids_limit))),
        ..Limits::default()
    };
    let written = cgroup.apply(&limits).context("cannot set the pids limit")?;
    show_written(out, host.ns, &written, &|_| {
        Some("tasks: processes and threads".into())
    });
    let attempts = cli.pids_limit + 2;
    let story = cgroup_demo::fork_until_refused(cgroup, attempts).context("cannot run the forking child")?;
    let refused = story.refused.map_or("none refused".to_owned(), |errno| {
        format!("fork {} -> {errno:?}", story.forked + 1)
    });
    out.see(line(
        "child",
        host.ns,
        format!("fork 1..{} -> ok, {refused}", story.forked),
    ));
    out.see(line(
        "host",
        host.ns,
        format!(
            "pids.current = {}, pids.events: max {}",
            story.events.current, story.events.max
        ),
    ));
    out.say(outcome(
        "EAGAIN",
        "the child and its children fill the cgroup to pids.max; the next fork(2)\n   \
         is refused, and pids.events counts it: a fork bomb in a container stops there",
    ));
    Ok(())
}

fn cpu(out: &Out, host: &HostView, cli: &Cli, cgroup: &Cgroup) -> anyhow::Result<()> {
    show_made(out, host.ns, cgroup);
    let limits = Limits {
        cpus: Some(cli.cpus),
        ..Limits::default()
    };
    let written = cgroup.apply(&limits).context("cannot set the cpu limit")?;
    let quota_ms = cli.cpus.quota_us / 1000;
    show_written(out, host.ns, &written, &|file| match file {
        "cpu.max" => Some(format!(
            "--cpus {}: {quota_ms} ms of CPU per 100 ms period",
            cli.cpus
        )),
        "cpu.cfs_quota_us" => Some(format!("--cpus {}: {quota_ms} ms of CPU per period", cli.cpus)),
        _ => None,
    });
    let story = cgroup_demo::busy_loop(cgroup, Duration::from_secs_f64(cli.busy))
        .context("cannot run the spinning child")?;
    out.see(line(
        "child",
        host.ns,
        format!(
            "spun; measured: {:.1} s of wall time, {:.2} s of CPU, {:.0}% of one CPU",
            story.wall.as_secs_f64(),
            story.cpu.as_secs_f64(),
            story.share() * 100.0
        ),
    ));
    let file = story
        .stat
        .file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    out.see(line(
        "host",
        host.ns,
        format!(
            "{file}: throttled, measured: in {} of {} periods, {:.2} s in all",
            story.stat.nr_throttled,
            story.stat.nr_periods,
            story.stat.throttled.as_secs_f64()
        ),
    ));
    out.say(outcome(
        "throttled",
        &format!(
            "asked for {:.0}% of one CPU: each period the child ran until its quota\n   \
             was used, then waited for the next period, however idle the machine",
            cli.cpus.as_f64() * 100.0
        ),
    ));
    Ok(())
}

// ---- step 7 ---------------------------------------------------------------------------------------

fn clean_up(out: &Out, host: &HostView, d: &Delegation, name: &str, made: Made) -> anyhow::Result<()> {
    let mut removed = 0;
    for cgroup in made.0 {
        removed += cgroup.remove().context("cannot remove a cgroup")?.len();
    }
    let left: usize = d.placement.parents.iter().map(|p| leftovers(&p.path, name)).sum();
    out.see(line(
        "host",
        host.ns,
        format!("removed {removed} cgroup directories; left named {name}*: {left}"),
    ));
    out.say(explain(
        "rmdir(2) removes a cgroup only when no process and no cgroup is left in it, so each is emptied\n\
         first (its processes killed), innermost first; a Ctrl-C in any step does the same",
    ));
    Ok(())
}

/// Directories named `name...` right below `parent`.
fn leftovers(parent: &Path, name: &str) -> usize {
    cgroup_demo::list_cgroups(parent)
        .map(|names| names.iter().filter(|n| n.starts_with(name)).count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn long_sentences_wrap() {
        let wrapped = wrap(&"word ".repeat(40));
        assert!(wrapped.lines().all(|l| l.len() <= 90), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 40);
    }
}
