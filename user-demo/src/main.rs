//! `cargo run -p user-demo`: the user namespace chapter's demo, the child's ids and capabilities side by
//! side with the host's (user_namespaces(7), capabilities(7)). It parses, calls the library's steps and
//! prints; the lesson is in the library, one module per step.

use nskit::show::Out;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use nix::errno::Errno;
use nskit::ns::{Kind, NsId, Proc, ns_id};
use nskit::show::{explain, line, line_noted, outcome, step};
use nskit::userns::is_root;
use user_demo::{IdMap, IdRange, IdView, MapWrite, Rule};

/// The hostname the child of step 4 gives its own UTS namespace.
const CHILD_HOSTNAME: &str = "userns-demo";

/// Shows what a user namespace is: ids mapped to other ids, capabilities that count only inside, and
/// the rules for writing the maps.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user or as root. As root the default map is 0:100000:65536, so that \
                  root inside is not root on the host."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A uid map entry, inside:outside:count (repeatable). An ordinary user may map only its own uid.
    #[arg(long = "map", value_name = "INSIDE:OUTSIDE:COUNT", value_parser = parse_range)]
    map: Vec<IdRange>,
    /// A gid map entry, inside:outside:count (repeatable; default: the same as --map).
    #[arg(long = "gid-map", value_name = "INSIDE:OUTSIDE:COUNT", value_parser = parse_range)]
    gid_map: Vec<IdRange>,
    /// Print the observations only, without the explanations.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print this process's user namespace, uid, gid and capability sets as one JSON line, each set in
    /// hex as /proc/<pid>/status shows it (step 5 executes it inside the namespace; the format is
    /// described in the library's `exec` module).
    #[command(hide = true)]
    CapsReport,
}

fn parse_range(entry: &str) -> Result<IdRange, user_demo::MapError> {
    entry.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CapsReport) = cli.command {
        return match user_demo::caps_report() {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("user-demo caps-report: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Invalid maps are refused here, with clap's exit code 2, before any namespace exists.
    let maps = user_demo::choose_maps(&cli.map, &cli.gid_map)
        .unwrap_or_else(|e| Cli::command().error(ErrorKind::ValueValidation, e).exit());
    let program = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("user-demo: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&cli, &maps.0, &maps.1, &program) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("user-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, uid_map: &IdMap, gid_map: &IdMap, program: &Path) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    out.say(
        "user-demo: a user namespace gives a process its own uids, gids and capabilities (user_namespaces(7))"
            .into(),
    );
    out.say(banner(uid_map, gid_map));
    let host = user_demo::observe().context("cannot read the host's ids")?;
    handshake(&out, &host, uid_map, gid_map)?;
    map_rules(&out, &host)?;
    inside_powers(&out, uid_map, gid_map)?;
    exec_caps(&out, uid_map, gid_map, program)?;
    nesting(&out, &host, uid_map, gid_map)?;
    Ok(())
}

fn banner(uid_map: &IdMap, gid_map: &IdMap) -> String {
    let who = if is_root() {
        "running as root: every child below gets a user namespace anyway, because it is the subject; \
         root may write any map"
            .to_owned()
    } else {
        format!(
            "running as uid {} (not root): a map written by this user may name only its own uid and gid",
            nix::unistd::geteuid()
        )
    };
    format!(
        "{who}\nmaps for this run: uid_map \"{}\", gid_map \"{}\" (inside outside count)",
        map_text(uid_map),
        map_text(gid_map)
    )
}

fn map_text(map: &IdMap) -> String {
    map.to_proc_format().trim_end().replace('\n', "; ")
}

fn errno_text(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => format!("{errno:?}"),
    }
}

fn view_line(who: &str, view: &IdView) -> String {
    line(who, view.userns, view)
}

fn write_line(who: &str, ns: NsId, pid: impl std::fmt::Display, write: &MapWrite) -> String {
    // Padding the file name alone keeps the columns stable whatever the PID's length.
    line(
        who,
        ns,
        format!(
            "write /proc/{pid}/{:<9} {:<16} -> {}",
            write.file,
            format!("\"{}\"", write.contents),
            errno_text(write.result)
        ),
    )
}

// Steps 1 and 2.
fn handshake(out: &Out, host: &IdView, uid_map: &IdMap, gid_map: &IdMap) -> anyhow::Result<()> {
    out.say(step(
        1,
        "A child in a new user namespace, before any map is written",
    ));
    let (inside_uid, inside_gid) = user_demo::inside_ids(uid_map, gid_map);
    let unmapped = user_demo::spawn_unmapped(inside_uid, inside_gid)
        .context("cannot clone a child in a new user namespace")?;
    let pid = unmapped.pid();
    let before = &unmapped.before;
    out.see(view_line("host", host));
    out.see(view_line("child", &before.view));
    out.say(explain(&format!(
        "different user namespaces. No map yet: the child's ids have no number inside, so they read as the\n\
         overflow id {} (/proc/sys/kernel/overflowuid); yet its capability sets are full",
        user_demo::overflow_uid()
    )));
    if host.uid == user_demo::overflow_uid() {
        out.say(explain(
            "(this run's own uid is 65534 too, \"nobody\", so here the two numbers coincide)",
        ));
    }
    out.see(line(
        "child",
        before.view.userns,
        format!("/proc/self/status   {}", before.status),
    ));
    out.see(line(
        "host",
        host.userns,
        format!(
            "/proc/{pid}/status  {}",
            unmapped.host_sees().context("cannot read the child's status")?
        ),
    ));
    out.say(explain(
        "the kernel still knows who the child is: the host reads its real ids",
    ));
    out.see(line(
        "child",
        ns_id(Proc::Current, Kind::Uts)?,
        format!(
            "sethostname(<the host's name>) -> {}",
            errno_text(before.rename_host)
        ),
    ));
    out.say(outcome(
        "refused",
        "its capabilities count only in namespaces its user namespace owns; the host's UTS namespace\n   \
         belongs to the initial user namespace, where the child has none",
    ));

    out.say(step(
        2,
        "The parent writes setgroups, gid_map and uid_map while the child waits",
    ));
    let writes = unmapped.write_maps(uid_map, gid_map);
    for write in &writes {
        out.see(write_line("host", host.userns, pid, write));
    }
    if let Some(failed) = writes.iter().find(|w| w.result.is_err()) {
        anyhow::bail!(
            "the kernel refused /proc/{pid}/{} \"{}\": {}",
            failed.file,
            failed.contents,
            errno_text(failed.result)
        );
    }
    if is_root() {
        out.say(explain(
            "setgroups stays \"allow\": root holds CAP_SETGID over the parent namespace, so it may write\n\
             gid_map without giving up setgroups(2) in the child",
        ));
    } else {
        out.say(explain(
            "setgroups \"deny\" first: without it the kernel refuses an unprivileged gid_map (step 3)",
        ));
    }
    let mapped = unmapped
        .release()
        .context("the child did not report after its maps")?;
    let took = mapped.after.took_ids.unwrap_or(Ok(()));
    out.see(line(
        "child",
        mapped.after.view.userns,
        format!(
            "setresgid({inside_gid}), setresuid({inside_uid}) -> {}",
            errno_text(took)
        ),
    ));
    if is_root() {
        out.say(explain(&format!(
            "a map only names ids: root's child still had the host's kernel uid 0, which this map does\n\
             not name; with CAP_SETUID in its namespace it takes uid {inside_uid} inside, kernel uid {} outside",
            uid_map.to_outside(inside_uid).map_or("?".to_owned(), |id| id.to_string())
        )));
    } else {
        out.say(explain(
            "a map only names ids: the child already had the id the map names, so this changes nothing;\n\
             runtimes call it anyway, because root's children need it",
        ));
    }
    out.see(view_line("child", &mapped.after.view));
    out.see(line(
        "child",
        mapped.after.view.userns,
        format!("/proc/self/status   {}", mapped.after.status),
    ));
    let host_sees = mapped.host_sees().context("cannot read the child's status")?;
    out.see(line(
        "host",
        host.userns,
        format!("/proc/{pid}/status  {host_sees}"),
    ));
    let outside = host_sees.uid.split(' ').next().unwrap_or("?").to_owned();
    out.say(explain(&if is_root() {
        format!(
            "same process, two answers: uid {} inside, uid {outside} for the host, which is what root\n\
             inside is everywhere outside the namespace",
            mapped.after.view.uid
        )
    } else {
        format!(
            "same process, two answers: uid {} inside, and still uid {outside} for the host: the map gave\n\
             the child's own id a second name inside; its id in the kernel never changed",
            mapped.after.view.uid
        )
    }));
    mapped.finish().context("the child did not exit cleanly")?;
    Ok(())
}

// Step 3.
fn map_rules(out: &Out, host: &IdView) -> anyhow::Result<()> {
    out.say(step(
        3,
        "Failure first: the rules for writing a map (user_namespaces(7))",
    ));
    let rules = user_demo::map_rules().context("cannot run the map-rules experiment")?;
    let mut about = format!(
        "the writer: uid {}, gid {}, with no capability on the host, and a fresh child to map",
        rules.writer_uid, rules.writer_gid
    );
    if rules.dropped_from_root {
        about.push_str(&format!(
            "\n(running as root: a helper dropped to uid and gid {} first, because these rules bind only\n\
             writers without CAP_SETUID/CAP_SETGID over the parent namespace)",
            user_demo::NOBODY
        ));
    }
    out.say(explain(&about));
    for attempt in &rules.attempts {
        out.see(write_line("write", host.userns, "<pid>", &attempt.write));
        let why = match (attempt.rule, attempt.write.result) {
            (Rule::GidMapBeforeDeny, Err(_)) => Some(
                "an unprivileged gid_map needs setgroups \"deny\" first: otherwise root inside could drop\n   \
                 a group with setgroups(2) and escape a \"deny this group\" permission (CVE-2014-8989)",
            ),
            (Rule::NotOwned, Err(_)) => Some(
                "an unprivileged writer may map exactly one id, its own: mapping 0 outside would be\n   \
                 becoming the host's root",
            ),
            (Rule::Twice, Err(_)) => Some("a map is written once; it can never be changed or extended"),
            _ => None,
        };
        if let Some(why) = why {
            out.say(outcome(&errno_text(attempt.write.result), why));
        }
    }
    Ok(())
}

// Step 4.
fn inside_powers(out: &Out, uid_map: &IdMap, gid_map: &IdMap) -> anyhow::Result<()> {
    out.say(step(
        4,
        "Root inside: the namespaces its user namespace owns, and nothing else",
    ));
    let secret = user_demo::RootOnlyFile::prepare().context("cannot prepare a root-only file")?;
    let host_uts = ns_id(Proc::Current, Kind::Uts)?;
    let host_mnt = ns_id(Proc::Current, Kind::Mnt)?;
    let hostname_before = nix::unistd::gethostname()?;
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")?;
    let powers = user_demo::inside_powers(
        uid_map,
        gid_map,
        secret.as_ref().map(|s| s.path()),
        CHILD_HOSTNAME,
    )
    .context("cannot run the child of step 4")?;
    out.see(view_line("child", &powers.view));
    out.see(line(
        "child",
        powers.host_uts,
        format!(
            "sethostname(<the host's name>) in the host's UTS namespace -> {}",
            errno_text(powers.rename_host)
        ),
    ));
    out.say(outcome(
        &errno_text(powers.rename_host),
        "full capabilities, but in its own user namespace, which does not own the host's UTS namespace",
    ));
    match (&secret, powers.read_secret) {
        (Some(secret), Some(result)) => {
            let owner = uid_map.to_outside(powers.view.uid);
            out.see(line(
                "child",
                powers.view.userns,
                format!(
                    "open({}) for reading -> {}",
                    secret.path().display(),
                    errno_text(result)
                ),
            ));
            let mode = std::fs::metadata(secret.path()).map_or(0, |m| m.mode() & 0o777);
            let why = match (result, owner) {
                (Err(_), Some(owner)) => format!(
                    "the file is root's, mode {mode:04o}; the kernel checks the child's outside uid, {owner},\n   \
                     and CAP_DAC_OVERRIDE in a user namespace counts only on files whose uid and gid are both mapped"
                ),
                (Ok(()), Some(0)) => "the map makes root inside the host's root (0 -> 0): it owns the file, \
                                      and owners need no capability"
                    .to_owned(),
                _ => "see the map: file access is checked on the outside ids".to_owned(),
            };
            out.say(outcome(&errno_text(result), &why));
        }
        _ => out.say(explain(
            "(no root-only file to try on this host: /etc/shadow is missing or readable)",
        )),
    }
    out.see(line(
        "child",
        powers.uts,
        format!(
            "unshare(CLONE_NEWUTS|CLONE_NEWNS) -> {}",
            errno_text(powers.unshare)
        ),
    ));
    out.see(line(
        "child",
        powers.uts,
        format!(
            "sethostname({CHILD_HOSTNAME:?}) -> {}, hostname={}",
            errno_text(powers.rename_own),
            powers.hostname
        ),
    ));
    out.see(line(
        "child",
        powers.mnt,
        format!("mount tmpfs on /tmp -> {}", errno_text(powers.mount_tmpfs)),
    ));
    out.say(explain(
        "new inodes: a new UTS and a new mount namespace, created and owned by the child's user\n\
         namespace, so its capabilities count there",
    ));
    let hostname_after = nix::unistd::gethostname()?;
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo")?;
    let name = format!("hostname={}", hostname_after.to_string_lossy());
    if hostname_after == hostname_before {
        out.see(line_noted("host", host_uts, name, "unchanged"));
    } else {
        out.see(line_noted("host", host_uts, name, "CHANGED"));
    }
    let mounts = if mounts_before == mounts_after {
        "unchanged"
    } else {
        "CHANGED"
    };
    out.see(line_noted("host", host_mnt, "mount table", mounts));
    drop(secret);
    Ok(())
}

// Step 5.
fn exec_caps(out: &Out, uid_map: &IdMap, gid_map: &IdMap, program: &Path) -> anyhow::Result<()> {
    out.say(step(
        5,
        "Capabilities are recalculated on execve (capabilities(7))",
    ));
    out.say(explain(&format!(
        "each child runs `{} caps-report`, which prints its own sets",
        program.file_name().unwrap_or_default().to_string_lossy()
    )));
    for (uid_map, gid_map) in user_demo::exec_maps(uid_map, gid_map) {
        let report = user_demo::caps_across_exec(program, &uid_map, &gid_map)
            .context("cannot run the execve experiment")?;
        out.see(line(
            "child",
            report.before.userns,
            format!(
                "uid={:<5} before execve: {}",
                report.before.uid, report.before.caps
            ),
        ));
        let kept = report.after.caps.permitted.is_full();
        out.see(line_noted(
            "exec",
            report.after.userns,
            format!("uid={:<5} after  execve: {}", report.after.uid, report.after.caps),
            if kept { "kept" } else { "lost" },
        ));
        if report.after.uid == 0 {
            out.say(explain(
                "uid 0 in its namespace: execve treats the program as if its file capabilities were full,\n\
                 so the new sets are the bounding set, which is full in a new user namespace",
            ));
        } else {
            out.say(explain(
                "any other uid: the program has no file capabilities and the process no ambient ones, so\n\
                 execve empties the permitted and effective sets; the bounding set only limits, it grants nothing",
            ));
        }
    }
    Ok(())
}

// Step 6.
fn nesting(out: &Out, host: &IdView, uid_map: &IdMap, gid_map: &IdMap) -> anyhow::Result<()> {
    out.say(step(6, "Nesting: a user namespace inside a user namespace"));
    let nest = user_demo::nesting(uid_map, gid_map).context("cannot run the nesting experiment")?;
    let pid = nest.level2_pid;
    out.see(view_line("host", host));
    out.see(view_line("lvl1", &nest.level1));
    out.see(write_line("lvl1", nest.level1.userns, pid, &nest.refused));
    out.say(outcome(
        &errno_text(nest.refused.result),
        "level 1 is root in its namespace, but that id has no mapping there: a map may only use ids\n   \
         that the writer's namespace maps",
    ));
    for write in &nest.written {
        out.see(write_line("lvl1", nest.level1.userns, pid, write));
    }
    out.say(explain(
        "level 1 holds CAP_SETUID/CAP_SETGID in its own namespace, the parent of level 2's, so it needs no\n\
         setgroups \"deny\"; the outside column is in level 1's ids",
    ));
    out.see(view_line("lvl2", &nest.level2));
    out.say(explain(&format!(
        "level 2's /proc/{pid}/uid_map, as each side reads it:"
    )));
    out.see(line(
        "lvl1",
        nest.level1.userns,
        format!("\"{}\"", nest.map_seen_by_level1),
    ));
    out.see(line(
        "host",
        host.userns,
        format!("\"{}\"", nest.map_seen_by_host),
    ));
    out.say(explain(
        "the outside column is translated into the reader's namespace: each map is relative to its parent's",
    ));
    out.say(explain(&format!(
        "level 2's /proc/{pid}/status, as each side reads it:"
    )));
    out.see(line("lvl2", nest.level2.userns, &nest.status_seen_by_level2));
    out.see(line("lvl1", nest.level1.userns, &nest.status_seen_by_level1));
    out.see(line("host", host.userns, &nest.status_seen_by_host));
    out.see(line(
        "lvl2",
        nest.level2.userns,
        format!(
            "fchown(file, uid {}) -> {}",
            nest.unmapped_id,
            errno_text(nest.chown_unmapped)
        ),
    ));
    out.say(outcome(
        &errno_text(nest.chown_unmapped),
        "that uid has no mapping in level 2's namespace, so there is no kernel id to give the file",
    ));
    out.see(line(
        "lvl2",
        nest.level2.userns,
        format!("fchown(file, uid 0) -> {}", errno_text(nest.chown_root)),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn map_entries_are_parsed_by_clap() {
        let cli = Cli::try_parse_from(["user-demo", "--map", "0:1000:1", "--gid-map", "0:1001:1"]).unwrap();
        assert_eq!(
            cli.map,
            [IdRange {
                inside: 0,
                outside: 1000,
                count: 1
            }]
        );
        assert_eq!(cli.gid_map[0].outside, 1001);
        for bad in ["", "x", "0:1", "0:1:1:1", "-1:0:1", "0:1:1x"] {
            let err = Cli::try_parse_from(["user-demo".to_owned(), format!("--map={bad}")]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad:?}");
            assert_eq!(err.exit_code(), 2);
        }
    }
}
