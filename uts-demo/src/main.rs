//! `cargo run -p uts-demo`: chapter 1's demo, the UTS namespace side by side with the host
//! (uts_namespaces(7)). It parses, calls the library's steps, and prints; the lesson is in `lib.rs`.

use nskit::show::Out;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use nskit::show::{explain, line, line_noted, outcome, privilege_banner, step};
use uts_demo::{Name, NsHandles, UtsView};

/// Shows what the UTS namespace isolates (hostname, domain name) and what it does not (uname -r).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user (through a user namespace) or as root."
)]
struct Cli {
    /// The hostname the child sets in its own UTS namespace.
    #[arg(long, default_value = "demo", value_parser = |s: &str| Name::parse("hostname", s))]
    hostname: Name,
    /// The NIS domain name the child sets.
    #[arg(long, default_value = "course.test", value_parser = |s: &str| Name::parse("domainname", s))]
    domainname: Name,
    /// Give the child a user namespace even when running as root.
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
            eprintln!("uts-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    let spawn = uts_demo::child_spawn(cli.userns);
    out.say("uts-demo: the UTS namespace gives a process its own hostname and NIS domain name".into());
    out.say(privilege_banner(
        spawn.flags().contains(nix::sched::CloneFlags::CLONE_NEWUSER),
    ));

    out.say(step(1, "What the host sees"));
    let host = uts_demo::observe().context("cannot read the host's names")?;
    out.see(view_line("host", &host, None));

    out.say(step(
        2,
        "Failure first: renaming without a namespace of one's own",
    ));
    failure_first(&out, &host)?;

    out.say(step(3, "A child in a new UTS namespace renames itself"));
    let renamed = uts_demo::spawn_renamed(&spawn, &cli.hostname, &cli.domainname)
        .context("cannot start the child in a new UTS namespace")?;
    let host_after = uts_demo::observe().context("cannot read the host's names")?;
    out.see(view_line("child", &renamed.view, None));
    let unchanged = (host_after == host).then_some("unchanged");
    out.see(view_line("host", &host_after, unchanged));
    out.say(explain(
        "different inodes: two UTS namespaces; each holds its own hostname and domain name",
    ));
    if renamed.view.release == host.release {
        out.say(explain(
            "uname -r is the same on both sides: the kernel release is not namespaced",
        ));
    }

    out.say(step(4, "Joining with setns(2), and keeping a namespace alive"));
    let handles = renamed
        .handles()
        .context("cannot open the child's /proc/<pid>/ns files")?;
    let joined = uts_demo::join_and_observe(&handles).context("cannot join the child's UTS namespace")?;
    out.see(view_line(
        "join",
        &joined,
        Some("same inode as the child: setns joined it"),
    ));
    keep_alive(&out, renamed, handles)?;
    Ok(())
}

fn view_line(who: &str, view: &UtsView, note: Option<&str>) -> String {
    match note {
        Some(note) => line_noted(who, view.ns, view, note),
        None => line(who, view.ns, view),
    }
}

fn failure_first(out: &Out, host: &UtsView) -> anyhow::Result<()> {
    let current = &host.hostname;
    if uts_demo::could_rename_host() {
        out.see(line(
            "host",
            host.ns,
            format!("sethostname({current:?}) -> not attempted"),
        ));
        out.say(outcome(
            "would succeed",
            "root holds CAP_SYS_ADMIN over the host's UTS namespace and would rename the machine for everyone",
        ));
    } else {
        let result = uts_demo::try_rename_host_directly();
        out.see(line(
            "host",
            host.ns,
            format!("sethostname({current:?}) -> {}", errno_text(result)),
        ));
        out.say(outcome(
            "refused",
            "no CAP_SYS_ADMIN in the user namespace that owns the host's UTS namespace",
        ));
    }
    let result =
        uts_demo::try_rename_host_from_userns().context("cannot start a child in a user namespace")?;
    out.see(line(
        "usrns",
        host.ns,
        format!("sethostname({current:?}) -> {}", errno_text(result)),
    ));
    out.say(outcome(
        "refused",
        "uid 0 with every capability in a new user namespace, but the host's UTS namespace\n   \
         belongs to the initial user namespace, where this child has none",
    ));
    Ok(())
}

fn errno_text(result: Result<(), nix::errno::Errno>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => format!("{errno:?}"),
    }
}

fn keep_alive(out: &Out, renamed: uts_demo::Renamed, handles: NsHandles) -> anyhow::Result<()> {
    let pid = renamed.pid();
    let binding = if nskit::userns::is_root() && handles.user.is_none() {
        let path = std::env::temp_dir().join(format!("uts-demo-{}.uts", std::process::id()));
        Some(uts_demo::bind_ns_file(pid, &path).context("cannot keep the namespace with a bind mount")?)
    } else {
        None
    };
    renamed.finish().context("the child did not exit cleanly")?;
    out.say(explain("the child has exited; its namespace is still reachable:"));
    let through_fd = uts_demo::join_and_observe(&handles).context("cannot join through the open fd")?;
    out.see(view_line(
        "fd",
        &through_fd,
        Some("an open fd on /proc/<pid>/ns/uts keeps it alive"),
    ));
    drop(handles);
    match binding {
        Some(binding) => {
            let via_mount = binding
                .open()
                .context("cannot open the bind-mounted namespace file")?;
            let through_mount =
                uts_demo::join_and_observe(&via_mount).context("cannot join through the bind mount")?;
            let note = "a bind mount of the ns file keeps it alive, as `ip netns add` does";
            out.see(view_line("mount", &through_mount, Some(note)));
            drop(via_mount);
            drop(binding);
            out.say(explain(
                "bind mount removed: with no process, fd or mount left, the namespace is freed",
            ));
        }
        None => out.say(explain(
            "(skipped: keeping it with a bind mount of the ns file needs root, without --userns)",
        )),
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
}
