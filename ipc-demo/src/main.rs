//! `cargo run -p ipc-demo`: chapter 2's demo, the IPC namespace side by side with the host
//! (ipc_namespaces(7), sysvipc(7), mq_overview(7)). It parses, calls the library's steps, and prints;
//! the lesson is in `lib.rs`.

use nskit::show::Out;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use ipc_demo::cleanup::{self, What};
use ipc_demo::posix::PosixName;
use ipc_demo::sysv::{self, Key, Sighting};
use ipc_demo::{HostObjects, HostQueue, HostShm, View};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::NsId;
use nskit::show::{explain, line, line_noted, outcome, privilege_banner, step};

/// Shows what the IPC namespace isolates (System V IPC objects, POSIX message queues) and what it does
/// not (POSIX shared memory), then removes everything it made on the host.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user (through a user namespace) or as root. Every object made on the \
                  host side is removed at the end, also on failure or Ctrl-C."
)]
struct Cli {
    /// The System V key (hex like 0x1d5e0001, or decimal); the POSIX names are made from it too.
    #[arg(long, default_value_t = ipc_demo::DEFAULT_KEY, value_parser = Key::parse)]
    key: Key,
    /// Run only this step (after step 1, which makes the host's objects the others look for).
    #[arg(long, value_enum)]
    step: Option<Step>,
    /// Give each child a user namespace even when running as root.
    #[arg(long)]
    userns: bool,
    /// Print the observations only, without the explanations.
    #[arg(long, short)]
    quiet: bool,
    /// For tests: after this step, say so on stderr and wait for a signal.
    #[arg(long, value_enum, hide = true)]
    pause_after: Option<Step>,
}

/// The demo's steps, in order; step 8, cleaning up, always runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Step {
    /// 1. System V objects made on the host side.
    Host,
    /// 2. A new IPC namespace sees none of them.
    Hidden,
    /// 3. The namespace makes its own with the same key; the host sees none of those.
    SameKey,
    /// 4. A message through the namespace's queue stays in the namespace.
    Messages,
    /// 5. POSIX message queues, with a fresh mqueue filesystem on /dev/mqueue.
    Mqueue,
    /// 6. POSIX shared memory is not isolated by the IPC namespace.
    PosixShm,
    /// 7. Objects die with their namespace.
    Lifetime,
}

impl Step {
    fn number(self) -> usize {
        self as usize + 1
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipc-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the demo made on the host side, removed in step 8 or, on failure, when dropped.
#[derive(Default)]
struct HostSide {
    sysv: Option<HostObjects>,
    queue: Option<HostQueue>,
    shm: Option<HostShm>,
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    cleanup::remove_on_signals().context("cannot install the SIGINT/SIGTERM handler")?;
    let spawn = ipc_demo::namespace_spawn(CloneFlags::empty(), cli.userns);
    out.say(
        "ipc-demo: the IPC namespace gives a process its own System V IPC objects and POSIX message queues"
            .into(),
    );
    out.say(privilege_banner(
        spawn.flags().contains(CloneFlags::CLONE_NEWUSER),
    ));
    out.say(format!(
        "System V key {}; POSIX name {}",
        cli.key,
        PosixName::of(cli.key).as_str()
    ));

    let mut host = HostSide::default();
    let wanted = |s: Step| cli.step.is_none_or(|only| only == s);
    let steps = [
        Step::Host,
        Step::Hidden,
        Step::SameKey,
        Step::Messages,
        Step::Mqueue,
        Step::PosixShm,
        Step::Lifetime,
    ];
    for s in steps.into_iter().filter(|&s| s == Step::Host || wanted(s)) {
        match s {
            Step::Host => host.sysv = Some(host_objects(&out, cli.key)?),
            Step::Hidden => hidden(&out, cli)?,
            Step::SameKey => same_key(&out, cli)?,
            Step::Messages => messages(&out, cli)?,
            Step::Mqueue => host.queue = Some(mqueue(&out, cli)?),
            Step::PosixShm => host.shm = Some(posix_shm(&out, cli)?),
            Step::Lifetime => lifetime(&out, cli)?,
        }
        if cli.pause_after == Some(s) {
            pause_here(s);
        }
    }
    clean_up(&out, cli.key, host)
}

/// Waits for a signal, so that a test can check that Ctrl-C leaves nothing behind.
fn pause_here(s: Step) {
    let _ = std::io::stdout().flush();
    eprintln!(
        "ipc-demo: paused after step {} (pid {}); waiting for a signal",
        s.number(),
        std::process::id()
    );
    loop {
        nix::unistd::pause();
    }
}

fn host_ns() -> anyhow::Result<NsId> {
    nskit::ns::ns_id(nskit::Proc::Current, nskit::Kind::Ipc).context("cannot read /proc/self/ns/ipc")
}

/// `msg queue     key=0x1d5e0001  msgget -> ok      listed: 1 message, 19 bytes`
fn sighting_text(s: &Sighting) -> String {
    let reached = match s.reached {
        Ok(_) => "ok".to_owned(),
        Err(errno) => format!("{errno:?}"),
    };
    let listed = match s.listed {
        Some(object) => format!("listed: {object}"),
        None => "not listed".to_owned(),
    };
    format!(
        "{:<13} key={}  {} -> {reached:<6}  {listed}",
        s.kind.noun(),
        s.key,
        s.kind.get_call()
    )
}

fn counts_text(counts: [usize; 3]) -> String {
    let parts: Vec<String> = sysv::Kind::ALL
        .iter()
        .zip(counts)
        .map(|(kind, n)| format!("{n} {}{}", kind.noun(), if n == 1 { "" } else { "s" }))
        .collect();
    format!("/proc/sysvipc: {}", parts.join(", "))
}

fn show_view(out: &Out, who: &str, view: &View, note: Option<&str>) {
    for sighting in &view.sightings {
        out.see(match note {
            Some(note) => line_noted(who, view.ns, sighting_text(sighting), note),
            None => line(who, view.ns, sighting_text(sighting)),
        });
    }
}

fn host_objects(out: &Out, key: Key) -> anyhow::Result<HostObjects> {
    out.say(step(Step::Host.number(), "System V objects on the host side"));
    let objects = ipc_demo::make_host_objects(key).context("cannot make the host's System V objects")?;
    let view = ipc_demo::look(key).context("cannot look at the host's objects")?;
    show_view(out, "host", &view, None);
    out.say(explain(
        "a child of the demo made these with msgget/semget/shmget(key, IPC_CREAT|IPC_EXCL) and exited:\n\
         System V objects belong to the IPC namespace, not to a process, and stay until removed.\n\
         \"-> ok\": the key reaches the object; \"listed\": /proc/sysvipc/{msg,sem,shm} shows it.\n\
         Both answer for the IPC namespace of the process that asks.",
    ));
    Ok(objects)
}

fn hidden(out: &Out, cli: &Cli) -> anyhow::Result<()> {
    out.say(step(
        Step::Hidden.number(),
        "A child in a new IPC namespace looks for them",
    ));
    let spawn = ipc_demo::namespace_spawn(CloneFlags::empty(), cli.userns);
    let view =
        ipc_demo::look_in_new_namespace(&spawn, cli.key).context("cannot look from a new IPC namespace")?;
    show_view(out, "child", &view, None);
    out.see(line("child", view.ns, counts_text(view.counts)));
    out.say(outcome(
        "invisible and unreachable",
        "a new IPC namespace starts with no objects at all;\n   \
         the same key names nothing there",
    ));
    Ok(())
}

fn same_key(out: &Out, cli: &Cli) -> anyhow::Result<()> {
    out.say(step(
        Step::SameKey.number(),
        "The reverse: the namespace makes its own, with the same key",
    ));
    let spawn = ipc_demo::namespace_spawn(CloneFlags::empty(), cli.userns);
    let inside = ipc_demo::make_same_key_in_new_namespace(&spawn, cli.key)
        .context("cannot make objects in a new IPC namespace")?;
    show_view(out, "child", &inside, None);
    let host = ipc_demo::look(cli.key).context("cannot look at the host's objects")?;
    show_view(out, "host", &host, Some("its own"));
    out.say(explain(&format!(
        "the child's set has {} semaphores and its segment {} bytes; the host still finds its\n\
         own ({} semaphore, {} bytes): two IPC namespaces each own an object with key {},\n\
         and neither can see or reach the other's",
        ipc_demo::NS_SEMS,
        ipc_demo::NS_SHM_SIZE,
        ipc_demo::HOST_SEMS,
        ipc_demo::HOST_SHM_SIZE,
        cli.key
    )));
    Ok(())
}

fn messages(out: &Out, cli: &Cli) -> anyhow::Result<()> {
    out.say(step(
        Step::Messages.number(),
        "A message through the namespace's queue",
    ));
    let before = ipc_demo::look(cli.key).context("cannot look at the host's queue")?;
    let spawn = ipc_demo::namespace_spawn(CloneFlags::empty(), cli.userns);
    let report =
        ipc_demo::message_in_new_namespace(&spawn, cli.key).context("cannot use a queue in a namespace")?;
    let queued = report
        .queued
        .listed
        .map_or("not listed".into(), |o| format!("listed: {o}"));
    out.see(line(
        "child",
        report.ns,
        format!(
            "msgsnd(key={}, {:?}) -> ok, {queued}",
            cli.key,
            ipc_demo::NS_MESSAGE
        ),
    ));
    out.see(line(
        "child",
        report.ns,
        format!("msgrcv(key={}) -> {:?}", cli.key, report.received),
    ));
    let after = ipc_demo::look(cli.key).context("cannot look at the host's queue")?;
    let (was, is) = (before.of(sysv::Kind::Msg), after.of(sysv::Kind::Msg));
    let note = if was == is { "untouched" } else { "CHANGED" };
    out.see(line_noted("host", after.ns, sighting_text(is), note));
    out.say(explain(&format!(
        "the host's queue with the same key still holds only {:?}",
        ipc_demo::HOST_MESSAGE
    )));
    if was != is {
        bail!("the host's queue changed while the namespace used its own");
    }
    Ok(())
}

fn errno_or_ok(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => format!("{errno:?}"),
    }
}

fn mqueue(out: &Out, cli: &Cli) -> anyhow::Result<HostQueue> {
    out.say(step(Step::Mqueue.number(), "POSIX message queues"));
    let host_ns = host_ns()?;
    let queue = ipc_demo::make_host_queue(cli.key).context("cannot make the host's POSIX message queue")?;
    let name = queue.name.as_str().to_owned();
    let before = queue.messages()?;
    out.see(line(
        "host",
        host_ns,
        format!(
            "mq_open({name:?}) -> {}, {before} message{}",
            errno_or_ok(queue.reachable()),
            if before == 1 { "" } else { "s" }
        ),
    ));
    let spawn = ipc_demo::namespace_spawn(CloneFlags::CLONE_NEWNS, cli.userns);
    let report = ipc_demo::mqueue_in_new_namespace(&spawn, cli.key)
        .context("cannot use POSIX message queues in a new IPC namespace")?;
    out.say(explain(&format!(
        "the child is in new IPC and mount namespaces ({}); it makes / private,\n\
         mounts a tmpfs on /dev and a fresh mqueue filesystem on {}, which lists\n\
         the queues of the IPC namespace of the process that mounted it",
        report.mnt, report.mounted_on
    )));
    let listing = |queues: &[ipc_demo::posix::QueueFile]| -> String {
        if queues.is_empty() {
            "(empty)".into()
        } else {
            let names: Vec<String> = queues
                .iter()
                .map(|q| format!("{}  {}", q.name, q.status))
                .collect();
            names.join("; ")
        }
    };
    out.see(line(
        "child",
        report.ns,
        format!("ls {} -> {}", report.mounted_on, listing(&report.before)),
    ));
    out.see(line(
        "child",
        report.ns,
        format!("mq_open({name:?}) -> {}", errno_or_ok(report.open_host_name)),
    ));
    out.see(line(
        "child",
        report.ns,
        format!(
            "mq_open({name:?}, O_CREAT|O_EXCL), mq_send({:?}) -> ok",
            ipc_demo::NS_MESSAGE
        ),
    ));
    out.see(line(
        "child",
        report.ns,
        format!("ls {} -> {}", report.mounted_on, listing(&report.after)),
    ));
    out.see(line(
        "child",
        report.ns,
        format!("mq_receive -> {:?}", report.received),
    ));
    let after = queue.messages()?;
    let note = if after == before { "untouched" } else { "CHANGED" };
    out.see(line_noted(
        "host",
        host_ns,
        format!(
            "mq_open({name:?}) -> ok, {after} message{}",
            if after == 1 { "" } else { "s" }
        ),
        note,
    ));
    out.say(outcome(
        "isolated",
        "each IPC namespace has its own set of POSIX queue names; the host's queue\n   \
         is neither listed nor reachable inside, and the child's same-named queue is its own",
    ));
    if after != before {
        bail!("the host's POSIX queue changed while the namespace used its own");
    }
    Ok(queue)
}

fn posix_shm(out: &Out, cli: &Cli) -> anyhow::Result<HostShm> {
    out.say(step(
        Step::PosixShm.number(),
        "What the IPC namespace does not isolate: POSIX shared memory",
    ));
    let host_ns = host_ns()?;
    let shm = ipc_demo::make_host_shm(cli.key).context("cannot make the host's POSIX shared memory")?;
    let name = shm.name.as_str().to_owned();
    let read_text = |read: &Result<String, Errno>| match read {
        Ok(text) => format!("ok, reads {text:?}"),
        Err(errno) => format!("{errno:?}"),
    };
    out.see(line(
        "host",
        host_ns,
        format!(
            "shm_open({name:?}) -> {}   ({})",
            read_text(&shm.read()),
            shm.name.shm_path().display()
        ),
    ));
    let spawn = ipc_demo::namespace_spawn(CloneFlags::empty(), cli.userns);
    let shared = ipc_demo::read_shm_in_new_namespace(&spawn, cli.key, false)
        .context("cannot open POSIX shared memory from a new IPC namespace")?;
    out.see(line_noted(
        "child",
        shared.ipc,
        format!("shm_open({name:?}) -> {}", read_text(&shared.read)),
        "NOT isolated",
    ));
    out.say(explain(
        "shm_open is open(2) on a file in the tmpfs mounted on /dev/shm: the child's new IPC\n\
         namespace changes nothing, because it shares the host's mount namespace",
    ));
    let spawn = ipc_demo::namespace_spawn(CloneFlags::CLONE_NEWNS, cli.userns);
    let private = ipc_demo::read_shm_in_new_namespace(&spawn, cli.key, true)
        .context("cannot open POSIX shared memory from new IPC and mount namespaces")?;
    out.see(line_noted(
        "child",
        private.ipc,
        format!("shm_open({name:?}) -> {}", read_text(&private.read)),
        "own tmpfs on /dev/shm",
    ));
    out.say(outcome(
        "hidden by the mount namespace",
        &format!(
            "this child is also in a new mount\n   \
             namespace ({}) with its own tmpfs on /dev/shm, as a container has:\n   \
             that, not the IPC namespace, is what isolates POSIX shared memory",
            private.mnt
        ),
    ));
    Ok(shm)
}

fn lifetime(out: &Out, cli: &Cli) -> anyhow::Result<()> {
    out.say(step(
        Step::Lifetime.number(),
        "Objects live as long as their namespace",
    ));
    let spawn = ipc_demo::namespace_spawn(CloneFlags::empty(), cli.userns);
    let populated =
        ipc_demo::populate_new_namespace(&spawn, cli.key).context("cannot fill a new IPC namespace")?;
    let made = populated.view.clone();
    let big = format!(
        "{} KiB queue",
        ipc_demo::posix::BIG_MAXMSG * ipc_demo::posix::BIG_MSGSIZE / 1024
    );
    out.see(line_noted(
        "child",
        made.ns,
        format!("{}; a POSIX {big}", counts_text(made.counts)),
        "made here",
    ));
    out.say(explain(&format!(
        "the child runs with RLIMIT_MSGQUEUE = {} KiB: its user has room for one such queue, not two",
        ipc_demo::posix::ONE_BIG_QUEUE / 1024
    )));
    let handles = populated
        .handles()
        .context("cannot open the child's /proc/<pid>/ns files")?;
    populated.exit().context("the child did not exit cleanly")?;
    out.say(explain(
        "the child exits; the demo still holds an open fd on its /proc/<pid>/ns/ipc",
    ));
    let joined = ipc_demo::join_and_look(&handles, cli.key).context("cannot join the namespace")?;
    out.see(line_noted(
        "join",
        joined.view.ns,
        counts_text(joined.view.counts),
        "still there: the fd keeps the namespace alive",
    ));
    out.see(line_noted(
        "join",
        joined.view.ns,
        format!("a second {big} -> {}", errno_or_ok(joined.second_queue)),
        "the first one still exists",
    ));
    let user = handles.close_ipc();
    out.say(explain(
        "the fd is closed: no process and no handle is left, so the kernel frees the namespace\n\
         and destroys every object in it. Nothing can enter it any more, but the memory tells:",
    ));
    let after = ipc_demo::witness_from_new_namespace(user.as_ref(), cli.key)
        .context("cannot look from a new namespace")?;
    out.see(line_noted(
        "new",
        after.view.ns,
        format!("a second {big} -> {}", errno_or_ok(after.second_queue)),
        "the first was destroyed, its memory given back",
    ));
    out.see(line_noted(
        "new",
        after.view.ns,
        counts_text(after.view.counts),
        "a new namespace starts empty",
    ));
    let host = ipc_demo::look(cli.key).context("cannot look at the host's objects")?;
    show_view(out, "host", &host, Some("still there"));
    out.say(explain(
        "the host's objects, made by a process long gone, stay until someone removes them:\n\
         the host's IPC namespace never dies",
    ));
    if joined.second_queue != Err(Errno::EMFILE) || after.second_queue.is_err() {
        bail!("the queue limit did not show the namespace's lifetime as expected");
    }
    Ok(())
}

fn removal_text(what: What, result: Result<(), Errno>) -> String {
    let object = match what {
        What::Sysv(kind, _) => format!("{:<13} (IPC_RMID)", kind.noun()),
        What::Mqueue(key) => format!("POSIX queue   {} (mq_unlink)", PosixName::of(key).as_str()),
        What::PosixShm(key) => format!("POSIX shm     {} (shm_unlink)", PosixName::of(key).as_str()),
    };
    format!("removed {object} -> {}", errno_or_ok(result))
}

fn clean_up(out: &Out, key: Key, host: HostSide) -> anyhow::Result<()> {
    out.say(step(8, "Cleaning up the host side"));
    let host_ns = host_ns()?;
    let mut removals = Vec::new();
    if let Some(objects) = host.sysv {
        removals.extend(objects.remove());
    }
    if let Some(queue) = host.queue {
        removals.push(queue.remove());
    }
    if let Some(shm) = host.shm {
        removals.push(shm.remove());
    }
    for &(what, result) in &removals {
        out.see(line("host", host_ns, removal_text(what, result)));
    }
    let left = ipc_demo::look(key).context("cannot look at the host's objects")?;
    let leftovers: Vec<&Sighting> = left
        .sightings
        .iter()
        .filter(|s| s.reached.is_ok() || s.listed.is_some())
        .collect();
    if leftovers.is_empty() {
        out.see(line(
            "host",
            host_ns,
            format!("/proc/sysvipc: no object with key {key} left"),
        ));
    }
    out.say(explain(
        "the demo removes what it made on the host, also when it fails or is interrupted (Ctrl-C);\n\
         what it made inside namespaces went with them",
    ));
    if let Some(&(what, Err(errno))) = removals.iter().find(|(_, r)| r.is_err()) {
        bail!("cannot remove {what:?}: {errno}");
    }
    if !leftovers.is_empty() {
        bail!("objects with key {key} are still on the host");
    }
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

    #[test]
    fn step_numbers_follow_the_order() {
        assert_eq!(Step::Host.number(), 1);
        assert_eq!(Step::Lifetime.number(), 7);
    }
}
