//! `cargo run -p pid-demo`: the PID namespace chapter's demo, what the host sees beside what the
//! namespace sees (pid_namespaces(7)). It parses, calls the library's steps, and prints; the lesson is
//! in the library: `lib.rs`, and one module per step in `steps/`.

use nskit::show::Out;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use nix::sched::CloneFlags;
use nskit::Exit;
use nskit::show::{explain, line, outcome, privilege_banner, step};
use pid_demo::procfs::Status;
use pid_demo::{MAX_PID_NS_LEVEL, join};

/// Shows what a PID namespace is: PID 1 and two PIDs per process, /proc, nesting, orphans, init's
/// signals, what happens when init dies, and what unshare(CLONE_NEWPID) really moves.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user (through a user namespace) or as root."
)]
struct Cli {
    /// How many PID namespaces to nest in the nesting step (1 to 32, the kernel's limit).
    #[arg(long, default_value_t = 3, value_parser = parse_levels)]
    levels: usize,
    /// Run this step alone.
    #[arg(long, value_enum)]
    step: Option<StepName>,
    /// Give the children a user namespace even when running as root.
    #[arg(long)]
    userns: bool,
    /// Print the observations only, without the explanations.
    #[arg(long, short)]
    quiet: bool,
}

/// The steps, in the order the demo runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StepName {
    /// 1. PID 1 inside, another PID outside.
    Pid1,
    /// 2. ps before and after mounting a new /proc.
    Proc,
    /// 3. Nested namespaces, drawn as a tree.
    Nesting,
    /// 4. Orphans are re-parented to init and reaped.
    Orphans,
    /// 5. Init's protection against signals.
    Signals,
    /// 6. When init dies, the namespace dies.
    InitDeath,
    /// 7. unshare(CLONE_NEWPID) moves the next child, not the caller.
    Unshare,
}

const ALL_STEPS: [StepName; 7] = [
    StepName::Pid1,
    StepName::Proc,
    StepName::Nesting,
    StepName::Orphans,
    StepName::Signals,
    StepName::InitDeath,
    StepName::Unshare,
];

/// `--levels`: a nesting depth the kernel can give.
fn parse_levels(text: &str) -> Result<usize, String> {
    let levels: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of levels: expected 1 to {MAX_PID_NS_LEVEL}"))?;
    match levels {
        0 => Err("at least 1 level is needed".into()),
        n if n > MAX_PID_NS_LEVEL => Err(format!(
            "{n} levels is past the kernel's limit: PID namespaces nest at most {MAX_PID_NS_LEVEL} deep \
             (MAX_PID_NS_LEVEL), and clone fails with ENOSPC beyond"
        )),
        n => Ok(n),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Bad input is refused before any namespace exists: the nesting must fit below this process's
    // own level, which is not 0 if the demo itself runs in a container.
    if cli.step.is_none_or(|s| s == StepName::Nesting) {
        match pid_demo::procfs::pid_ns_level() {
            Ok(here) if here + cli.levels > MAX_PID_NS_LEVEL => {
                eprintln!(
                    "pid-demo: --levels {}: this process is already {here} levels deep, and PID namespaces \
                     nest at most {MAX_PID_NS_LEVEL} deep: use --levels {} or fewer",
                    cli.levels,
                    MAX_PID_NS_LEVEL - here
                );
                return ExitCode::from(2);
            }
            _ => {}
        }
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pid-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    out.say(
        "pid-demo: a PID namespace gives a process tree its own PIDs, its own init and its own /proc".into(),
    );
    let user_ns = pid_demo::init_spawn(cli.userns)
        .flags()
        .contains(CloneFlags::CLONE_NEWUSER);
    out.say(privilege_banner(user_ns));
    let steps: Vec<StepName> = match cli.step {
        Some(one) => vec![one],
        None => ALL_STEPS.to_vec(),
    };
    for name in steps {
        let number = ALL_STEPS.iter().position(|&s| s == name).unwrap_or(0) + 1;
        match name {
            StepName::Pid1 => pid1(&out, cli, number)?,
            StepName::Proc => proc(&out, cli, number)?,
            StepName::Nesting => nesting(&out, cli, number)?,
            StepName::Orphans => orphans(&out, cli, number)?,
            StepName::Signals => signals(&out, cli, number)?,
            StepName::InitDeath => init_death(&out, cli, number)?,
            StepName::Unshare => unshare(&out, cli, number)?,
        }
    }
    Ok(())
}

fn pid1(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(
        number,
        "A child in a new PID namespace: PID 1 inside, another PID outside",
    ));
    let r = pid_demo::two_pids(&pid_demo::init_spawn(cli.userns)).context("step pid1")?;
    out.see(line(
        "host",
        r.host_ns,
        format!("clone() returned {}", r.clone_returned),
    ));
    out.see(line(
        "init",
        r.child_ns,
        format!("getpid() = {}   getppid() = {}", r.getpid, r.getppid),
    ));
    out.say(explain(
        "one process, two PIDs: clone() returns the PID the parent's namespace gave the child,\n\
         getpid() the one its own namespace gave it; getppid() is 0 because its parent lives in a\n\
         namespace it cannot see",
    ));
    out.see(line(
        "host",
        r.host_ns,
        format!(
            "NSpid: {}   (/proc/{}/status, read on the host)",
            join(&r.nspid_from_host),
            r.clone_returned
        ),
    ));
    out.see(line(
        "init",
        r.child_ns,
        format!(
            "NSpid: {}   (/proc/self/status, read inside through its own /proc)",
            join(&r.nspid_from_inside)
        ),
    ));
    out.say(explain(
        "the NSpid line holds the process's PID in every namespace from the one of the /proc it is\n\
         read through down to its own: two on the host, one inside",
    ));
    Ok(())
}

fn proc(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(
        number,
        "ps inside the namespace, before and after mounting its own /proc",
    ));
    let r = pid_demo::ps_before_and_after(&pid_demo::init_spawn(cli.userns)).context("step proc")?;
    out.see(line(
        "init",
        r.ns,
        "ps, through the host's /proc (inherited with the mount namespace):",
    ));
    let ours: Vec<&Status> = r
        .before
        .iter()
        .filter(|s| s.pid == r.init_host_pid || s.ppid == r.init_host_pid)
        .collect();
    for row in ps_table(&ours, |s| {
        (s.pid == r.init_host_pid).then_some("<- this namespace's init, by its host PID")
    }) {
        out.see(explain(&row));
    }
    let host_init = r
        .before
        .iter()
        .find(|s| s.pid == 1)
        .map_or("?", |s| s.name.as_str());
    out.see(explain(&format!(
        "and the host's other processes, from its PID 1 on: {} more (PID 1 is {host_init})",
        r.before.len() - ours.len()
    )));
    out.say(outcome(
        "the host's processes",
        "a proc filesystem shows the PID namespace of whoever mounted it",
    ));
    out.see(line(
        "init",
        r.ns,
        "ps, after `mount -t proc proc /proc` in its own, private, mount namespace:",
    ));
    let after: Vec<&Status> = r.after.iter().collect();
    for row in ps_table(&after, |s| {
        (s.pid == 1).then_some("<- PID 1: this namespace's init")
    }) {
        out.see(explain(&row));
    }
    out.say(outcome(
        "only the namespace's own",
        "the new proc belongs to this PID namespace; the mounts were made\n   \
         private first, so the new /proc does not appear on the host",
    ));
    Ok(())
}

/// `ps`-style rows: the command, its PID and PPID, and a note for some rows. Nothing is aligned on the
/// width of a PID, which varies from host to host (the recorded transcripts mask the host's PIDs).
fn ps_table<'a>(rows: &[&'a Status], note: impl Fn(&'a Status) -> Option<&'static str>) -> Vec<String> {
    rows.iter()
        .map(|&s| {
            let text = format!(
                "{:<10} PID {}  PPID {}   {}",
                s.name,
                s.pid,
                s.ppid,
                note(s).unwrap_or("")
            );
            text.trim_end().to_owned()
        })
        .collect()
}

fn nesting(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(
        number,
        &format!("Nested PID namespaces, {} levels deep", cli.levels),
    ));
    out.say(explain(
        "each level's init starts a worker, mounts its own /proc and spawns the next level's init;\n\
         the host reads every process's NSpid line: its PID at each level it is visible at",
    ));
    let tree =
        pid_demo::nested_tree(&pid_demo::init_spawn(cli.userns), cli.levels).context("step nesting")?;
    out.see(line(
        "host",
        tree.host_ns,
        "the demo's processes, with their PID at every level:",
    ));
    for row in pid_demo::tree::draw(&tree) {
        out.see(explain(&row));
    }
    out.say(explain(
        "`-`: the process has no PID at that level, and no one there can see it",
    ));
    for view in &tree.views {
        let deepest = view.level == cli.levels;
        let note = match (view.level, deepest) {
            (_, true) => "only its own",
            (1, false) => "its own and every deeper level's",
            _ => "its own and the deeper levels'",
        };
        out.see(line(
            &format!("L{}", view.level),
            view.ns,
            format!(
                "getppid() = {}   its /proc lists PIDs {}: {note}",
                view.getppid,
                ranges(&view.visible)
            ),
        ));
    }
    out.say(outcome(
        "visible downwards only",
        "a namespace sees the processes of the namespaces it contains,\n   \
         never those of its parent: each init's getppid() is 0",
    ));
    Ok(())
}

/// `1 2 3 5` as `1-3 5`.
fn ranges(pids: &[i32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < pids.len() {
        let start = pids[i];
        while i + 1 < pids.len() && pids[i + 1] == pids[i] + 1 {
            i += 1;
        }
        parts.push(if pids[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", pids[i])
        });
        i += 1;
    }
    parts.join(" ")
}

fn orphans(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(
        number,
        "Orphans are re-parented to the namespace's init, which reaps them",
    ));
    out.say(explain(
        "init (PID 1) runs the reaper of pid_demo::init with one main child; the main child starts a\n\
         parent, the parent starts a child and exits",
    ));
    let r = pid_demo::orphans(&pid_demo::init_spawn(cli.userns)).context("step orphans")?;
    out.see(line(
        "main",
        r.ns,
        format!(
            "PID {} (ns-orphan): PPid {} while PID {} (ns-parent) lives",
            r.orphan, r.ppid_before, r.parent
        ),
    ));
    out.see(line(
        "main",
        r.ns,
        format!(
            "PID {} (ns-orphan): PPid {} once its parent has exited",
            r.orphan, r.ppid_after
        ),
    ));
    out.say(outcome(
        "re-parented to PID 1",
        "an orphan goes to the init of its own namespace, not the host's",
    ));
    out.see(line("main", r.ns, "after the orphan has exited, ps:"));
    let after: Vec<&Status> = r.after.iter().collect();
    for row in ps_table(&after, |_| None) {
        out.see(explain(&row));
    }
    out.see(line(
        "init",
        r.ns,
        format!(
            "reaped orphans: PID {}; main child's status: {}",
            join(&r.orphans_reaped),
            describe(r.main_exit)
        ),
    ));
    out.say(outcome(
        "no zombie left",
        &format!(
            "init's waitpid(-1) reaped the orphan; the main child's exit code\n   \
             ({}) is what the reaper returns, for init to exit with",
            pid_demo::MAIN_EXIT_CODE
        ),
    ));
    Ok(())
}

fn signals(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(
        number,
        "Init's protection: signals it has no handler for are dropped",
    ));
    out.say(explain(
        "init has a handler for SIGUSR1 only; PID 2 (ns-sender) sends it three signals",
    ));
    let r = pid_demo::signals(&pid_demo::init_spawn(cli.userns)).context("step signals")?;
    for (signal, result) in &r.sent_from_inside {
        let what = match signal {
            nix::sys::signal::Signal::SIGUSR1 => {
                format!("handled: the handler ran {}", times(r.handled_usr1))
            }
            _ => "dropped: init lives on".to_owned(),
        };
        out.see(line(
            "init",
            r.ns,
            format!("kill(1, {signal}) from PID 2 -> {result}, {what}"),
        ));
    }
    out.say(outcome(
        "even SIGKILL is dropped",
        "from its own namespace, init gets only the signals it handles",
    ));
    let host_ns = pid_demo::own_pid_ns().context("cannot read the host's PID namespace")?;
    let answered = if r.alive_after_host_sigterm {
        "dropped: init still answers"
    } else {
        "init stopped answering"
    };
    out.see(line(
        "host",
        host_ns,
        format!("kill(init, SIGTERM) -> {answered}"),
    ));
    out.see(line(
        "host",
        host_ns,
        format!("kill(init, SIGKILL) -> init {}", describe(r.after_host_sigkill)),
    ));
    out.say(outcome(
        "SIGKILL works from the parent",
        "an ancestor namespace may send init SIGKILL or SIGSTOP, and\n   \
         other signals only if init handles them: hence a container's init that forwards SIGTERM",
    ));
    Ok(())
}

fn init_death(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(number, "When init dies, its namespace dies"));
    out.say(explain(
        "a process calls unshare(CLONE_NEWPID) (see the next step) and forks the namespace's init,\n\
         which forks two workers; then init exits",
    ));
    let r = pid_demo::init_death(&pid_demo::plain_spawn(cli.userns)).context("step init-death")?;
    out.see(line(
        "unshr",
        r.caller_ns,
        format!("the processes of {} while init lives:", r.new_ns),
    ));
    for m in &r.members {
        out.see(explain(&format!("{:<10} NSpid: {}", m.name, join(&m.nspid))));
    }
    out.see(line(
        "unshr",
        r.caller_ns,
        format!("init exited: {}", describe(r.init_exit)),
    ));
    for (m, there) in r.members.iter().zip(&r.still_there).skip(1) {
        let fate = if *there {
            "still there"
        } else {
            "gone: killed by the kernel"
        };
        out.see(line(
            "unshr",
            r.caller_ns,
            format!("{} {}: {fate}", m.name, m.pid),
        ));
    }
    out.say(outcome(
        "every process killed",
        "when a namespace's init ends, the kernel sends SIGKILL to every\n   \
         other process in it (and in the namespaces below it) and reaps them",
    ));
    out.see(line(
        "unshr",
        r.caller_ns,
        format!(
            "fork() -> {}   (pid_for_children is still {}, whose init is dead)",
            r.fork_after, r.new_ns
        ),
    ));
    out.say(outcome(
        "ENOMEM",
        "a namespace whose init has died takes no new process; fork reports it as\n   \
         ENOMEM, for historical reasons. setns(2) into it through a saved /proc/<pid>/ns/pid fd\n   \
         succeeds, and the fork after it fails the same way; this process simply made it with unshare",
    ));
    Ok(())
}

fn unshare(out: &Out, cli: &Cli, number: usize) -> anyhow::Result<()> {
    out.say(step(
        number,
        "unshare(CLONE_NEWPID) moves the caller's next child, not the caller",
    ));
    let r = pid_demo::unshare_story(&pid_demo::plain_spawn(cli.userns)).context("step unshare")?;
    out.see(line(
        "unshr",
        r.pid_before,
        format!(
            "before unshare:  getpid() = {}   pid_for_children = {}",
            r.getpid_before, r.for_children_before
        ),
    ));
    let after = match r.for_children_after {
        Ok(ns) => ns.to_string(),
        Err(errno) => format!("{errno:?} (no process in it yet)"),
    };
    out.see(line(
        "unshr",
        r.pid_after,
        format!(
            "after unshare:   getpid() = {}   pid_for_children = {after}",
            r.getpid_after
        ),
    ));
    out.say(outcome(
        "the caller stays",
        "same PID, same /proc/self/ns/pid: a process never changes its PID\n   \
         namespace, for its PID would change under the programs that know it",
    ));
    out.see(line(
        "child",
        r.child_ns,
        format!("its first child: getpid() = {}", r.child_getpid),
    ));
    out.see(line(
        "unshr",
        r.pid_after,
        format!(
            "pid_for_children = {}   (the child's namespace)",
            r.for_children_with_child
        ),
    ));
    out.say(outcome(
        "the child moves",
        "the first child becomes PID 1 of the new namespace, and its later\n   \
         siblings join it there. setns(2) into a PID namespace works the same way",
    ));
    Ok(())
}

/// `once`, `twice`, `3 times`.
fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// `exit code 0` or `killed by SIGKILL`.
fn describe(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit code {code}"),
        Exit::Signal(signal) => format!("killed by {signal}"),
    }
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
    fn levels_are_bounded() {
        assert_eq!(parse_levels("1"), Ok(1));
        assert_eq!(parse_levels("32"), Ok(32));
        assert!(parse_levels("0").is_err());
        assert!(parse_levels("33").unwrap_err().contains("MAX_PID_NS_LEVEL"));
        assert!(parse_levels("three").is_err());
        assert!(parse_levels("-1").is_err());
    }

    #[test]
    fn ranges_are_compact() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3 5 7-8");
        assert_eq!(ranges(&[1]), "1");
        assert_eq!(ranges(&[]), "");
    }
}
