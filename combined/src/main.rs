//! `combined`: the course's container launcher. `combined run` starts a command in new user (when
//! rootless), PID, mount, UTS, IPC and network namespaces on a root filesystem; `combined doctor` says
//! what this machine allows; `create`, `start`, `state`, `kill`, `delete` and the rest make it an OCI
//! runtime that container engines drive (`runtime_cli.rs`). The steps themselves are in the library
//! (`container.rs`).
//!
//! Exit status, as `docker run` reports it: the command's own status (or 128 + the signal that killed
//! it); 125 when the launcher itself fails, including a command it cannot find in the root filesystem
//! before starting; 126 when the command cannot be executed; 127 when execve finds no file after all
//! (a script's missing interpreter, say).

mod runtime_cli;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use combined::caps::CapArg;
use combined::values::{EnvVar, NetMode, Volume};
use combined::{EXIT_LAUNCHER, RunRequest};
use nskit::idmap::IdRange;
use uts_demo::Name;

/// A small, honest container launcher, composed from the namespaces course's six chapters.
#[derive(Debug, Parser)]
#[command(
    name = "combined",
    version,
    propagate_version = true,
    subcommand_required = true
)]
struct Cli {
    #[command(flatten)]
    global: runtime_cli::Global,
    #[command(subcommand)]
    command: Command,
}

/// Each command's options are built only when that command is the one run (clap's `defer`): a start
/// of `combined run` would otherwise build every command's, the OCI runtime's among them, and touch
/// their memory.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// Run a command in a new container (default: an interactive shell).
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Check what this machine allows, and say what to do about each failure.
    Doctor,
    /// Write the seccomp filter `run` loads with the same options, compiled: classic BPF, as
    /// seccomp(2) takes it and `bwrap --seccomp FD` reads it (to a file or a pipe, not a terminal).
    Seccomp(SeccompArgs),
    #[command(flatten)]
    Runtime(runtime_cli::RuntimeCommand),
}

const RUN_EXAMPLES: &str = "Examples:
  combined run -- sh -c 'hostname; ps'          the host's programs, read-only, in a fresh container
  combined run --rootfs ./rootfs -- /bin/sh      a root filesystem directory
  combined run --image alpine.tar.gz             a tarball, unpacked once into ~/.cache/combined
  combined run -v \"$PWD\":/work:ro -w /work -- ls

  combined spec && combined run mybox           an OCI bundle (config.json and its rootfs) here

Exit status: the command's, or 128+signal; 125 launcher error (bad input, a command not in the\nroot filesystem, a failed setup step); 126 not executable; 127 not found at execve.";

// `combined seccomp`: the options of `run` that decide its filter. (A plain comment: a doc comment here would be the command's help, since clap builds
// the options after the command's own text.)
#[derive(Debug, Args)]
struct SeccompArgs {
    /// Add a capability to the default set (repeatable; ALL for every one): profiles allow some
    /// calls only to containers that keep a capability.
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<CapArg>,
    /// Drop a capability from the default set (repeatable; ALL for every one).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<CapArg>,
    /// seccomp=PROFILE.json (a Docker-format profile) instead of the default filter.
    #[arg(long = "security-opt", value_name = "seccomp=VALUE", value_parser = security_opt)]
    security_opt: Vec<combined::seccomp::Setting>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Root filesystem directory, used as it is: what the container writes lands in it, as with
    /// podman's --rootfs.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    rootfs: Option<PathBuf>,
    /// Root filesystem tarball (.tar or .tar.gz), unpacked once into a cache directory. Every run
    /// starts from the image as unpacked: the container's writes go to a throwaway layer in memory.
    #[arg(long, value_name = "FILE.tar[.gz]")]
    image: Option<PathBuf>,
    /// The container's hostname.
    #[arg(long, default_value = "container", value_parser = combined::values::hostname)]
    hostname: Name,
    /// Set an environment variable (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<EnvVar>,
    /// Working directory inside the container.
    #[arg(long, short = 'w', value_name = "DIR", default_value = "/")]
    workdir: String,
    /// Bind-mount a host path (repeatable); `:ro` makes it read-only.
    #[arg(long = "volume", short = 'v', value_name = "SRC:DST[:ro]")]
    volumes: Vec<Volume>,
    /// A uid map line, inside:outside:count (repeatable; default: your uid is root inside).
    #[arg(long = "uid-map", value_name = "IN:OUT:COUNT")]
    uid_map: Vec<IdRange>,
    /// A gid map line, inside:outside:count (repeatable; default: your gid is root inside).
    #[arg(long = "gid-map", value_name = "IN:OUT:COUNT")]
    gid_map: Vec<IdRange>,
    /// Networking: none, loopback only, or a veth pair to the host (root only).
    #[arg(long, value_enum, default_value = "loopback")]
    net: NetMode,
    /// The subnet for --net veth: the host end gets the first address, the container the second
    /// (default: a free /30 from 10.200.0.0/16; a subnet another container uses is refused).
    #[arg(long, value_name = "CIDR")]
    subnet: Option<String>,
    /// Add a capability to the default set (repeatable; ALL for every one).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<CapArg>,
    /// Drop a capability from the default set (repeatable; ALL for every one).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<CapArg>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Run the command as PID 1 itself, without the small init that reaps orphans and forwards signals.
    #[arg(long)]
    no_init: bool,
    /// Use a user namespace even as root.
    #[arg(long)]
    userns: bool,
    /// seccomp=unconfined (no system-call filter) or seccomp=PROFILE.json (a Docker-format profile);
    /// the default filter refuses what Docker's default profile refuses.
    #[arg(long = "security-opt", value_name = "seccomp=VALUE", value_parser = security_opt)]
    security_opt: Vec<combined::seccomp::Setting>,
    /// Give the container a pty of its own, relayed to this terminal (default: when stdin and stdout
    /// are a terminal and the launcher is in its foreground). `--tty=false`: never; the container then
    /// has no controlling terminal at all.
    #[arg(short = 't', long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    tty: Option<bool>,
    /// Limit the container's memory (docker's sizes: 32m, 1g; the OOM killer ends a process that
    /// needs more, exit 137).
    #[arg(long, short = 'm', value_name = "BYTES", value_parser = |s: &str| cgroup_demo::parse_memory(s).map_err(|e| e.to_string()))]
    memory: Option<cgroup_demo::Bytes>,
    /// Limit the number of processes and threads in the container (fork fails with EAGAIN past it).
    #[arg(long, value_name = "N", value_parser = |s: &str| cgroup_demo::PidsLimit::parse(s).map_err(|e| e.to_string()))]
    pids_limit: Option<cgroup_demo::PidsLimit>,
    /// Limit the container to this many CPUs' worth of time (0.5: half of one).
    #[arg(long, value_name = "DECIMAL", value_parser = |s: &str| cgroup_demo::Cpus::parse(s).map_err(|e| e.to_string()))]
    cpus: Option<cgroup_demo::Cpus>,
    /// The OCI form, `run [--bundle DIR] ID`: the bundle's config.json instead of the options above
    /// (also chosen when the only argument is an id and ./config.json exists).
    #[command(flatten)]
    oci: runtime_cli::BundleArgs,
    /// The command and its arguments: everything after the options (or after `--`); in the OCI form,
    /// the container's id.
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    // Parsing opens nothing; the descriptors an OCI caller asks to hand on are known only after it.
    let cli = Cli::try_parse();
    let preserve = cli.as_ref().map_or(0, preserved_fds);
    close_inherited_fds(preserve);
    if let Err(e) = combined::oci::commands::preserved(preserve) {
        eprintln!("combined: {e}");
        return ExitCode::from(1);
    }
    combined::timings::open_from_env();
    let cli = match cli {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("combined: {}", one_line(&e));
            return ExitCode::from(EXIT_LAUNCHER);
        }
    };
    match cli.command {
        Command::Doctor => doctor(),
        Command::Seccomp(args) => write_filter(&args),
        Command::Run(args) => match oci_run(&args) {
            Some((id, bundle)) => runtime_cli::run_bundle(&cli.global, &id, &bundle),
            None => run(args),
        },
        Command::Runtime(command) => runtime_cli::dispatch(&cli.global, command),
    }
}

/// clap's error on one line: the error itself, then its hints in parentheses (a similar argument or
/// subcommand, the values it takes), without the usage text around them.
fn one_line(e: &clap::Error) -> String {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return "a subcommand is needed: run, doctor, seccomp or an OCI runtime command (combined --help lists them)"
            .into();
    }
    if e.kind() == ErrorKind::MissingRequiredArgument {
        // clap lists the missing arguments on lines of their own, which the first line alone lost.
        let missing = e
            .get(clap::error::ContextKind::InvalidArg)
            .map(ToString::to_string);
        let usage = e.get(clap::error::ContextKind::Usage).map(|u| {
            u.to_string()
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or_default()
                .trim_start_matches("Usage: ")
                .to_owned()
        });
        let verb = |missing: &str| if missing.contains(", ") { "are" } else { "is" };
        return match (missing, usage) {
            (Some(missing), Some(usage)) => format!("{missing} {} missing (usage: {usage})", verb(&missing)),
            (Some(missing), None) => format!("{missing} {} missing", verb(&missing)),
            _ => "a required argument is missing".into(),
        };
    }
    if e.kind() == ErrorKind::ValueValidation {
        // clap's own line quotes the raw value, which may hold a newline; our parsers' messages show it
        // escaped.
        if let Some(why) = std::error::Error::source(e) {
            let arg = e
                .get(clap::error::ContextKind::InvalidArg)
                .map(ToString::to_string);
            return format!("{}: {why}", arg.unwrap_or_else(|| "a value".into()));
        }
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ");
    let hints: Vec<&str> = lines
        .filter_map(|l| {
            l.strip_prefix("tip: ")
                .or_else(|| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        })
        .collect();
    if hints.is_empty() {
        first.to_owned()
    } else {
        format!("{first} ({})", hints.join("; "))
    }
}

/// Closes every descriptor above stderr that the launcher inherited, but the first `preserved` of them
/// (3, 4, ...: an OCI caller's `--preserve-fds`, handed on to the container's command on purpose). The
/// container's init is a fork of the launcher that never execs, so it would hold them for the
/// container's whole life: a leaked host directory there is one `pidfd_getfd(2)` or `/proc/1/fd/N`
/// away from a process with CAP_SYS_PTRACE (`--cap-add SYS_PTRACE`), and that is a way out
/// (CVE-2024-21626).
fn close_inherited_fds(preserved: u32) {
    let keep: Vec<i32> = (3..3 + i32::try_from(preserved).unwrap_or(0)).collect();
    // SAFETY: this runs first in main, before anything in this process has opened a descriptor (clap's
    // parsing opens none), so no Rust object owns one above 2 that closing could invalidate.
    let _ = unsafe { nskit::process::close_from_3_except(&keep) };
}

/// The `--preserve-fds` of the OCI commands that take it.
fn preserved_fds(cli: &Cli) -> u32 {
    match &cli.command {
        Command::Run(args) => oci_run(args).map_or(0, |(_, bundle)| bundle.preserve_fds),
        Command::Runtime(runtime_cli::RuntimeCommand::Create(args)) => args.bundle.preserve_fds,
        Command::Runtime(runtime_cli::RuntimeCommand::Exec(args)) => args.preserve_fds,
        _ => 0,
    }
}

/// `--security-opt seccomp=VALUE`, the one security option the launcher takes.
fn security_opt(value: &str) -> Result<combined::seccomp::Setting, String> {
    match value.split_once(['=', ':']) {
        Some(("seccomp", setting)) => setting
            .parse()
            .map_err(|e: combined::seccomp::SeccompError| e.to_string()),
        _ => Err(format!(
            "unsupported security option {value:?}: combined takes seccomp=unconfined or seccomp=PROFILE.json"
        )),
    }
}

/// `combined seccomp`: the filter compiled as `run` compiles it, its instructions to stdout.
fn write_filter(args: &SeccompArgs) -> ExitCode {
    let fail = |message: String| {
        eprintln!("combined: {message}");
        ExitCode::from(EXIT_LAUNCHER)
    };
    if std::io::stdout().is_terminal() {
        return fail("the filter is binary: redirect it to a file (combined seccomp > filter.bpf)".into());
    }
    let caps = combined::caps::resolve(&args.cap_add, &args.cap_drop);
    let setting = (args.security_opt.last().cloned()).unwrap_or(combined::seccomp::Setting::Default);
    match combined::seccomp::compile(&setting, &caps) {
        // Flags are seccomp(2)'s arguments, not part of the program: written without them, the filter
        // would be loaded otherwise than `run` loads it.
        Ok(Some(filter)) if filter.flags() != 0 => fail(format!(
            "the profile asks for seccomp flags ({:#x}), which the written program cannot carry: remove its \"flags\"",
            filter.flags()
        )),
        Ok(Some(filter)) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&filter.to_bpf()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("cannot write the filter: {e}")),
            }
        }
        Ok(None) => fail("seccomp=unconfined has no filter to write".into()),
        Err(e) => fail(e.to_string()),
    }
}

fn doctor() -> ExitCode {
    let report = combined::doctor::run();
    for check in &report {
        println!("{check}");
    }
    if combined::doctor::healthy(&report) {
        println!("combined run will work here");
        ExitCode::SUCCESS
    } else {
        println!("combined run will not work here until the failures above are fixed");
        ExitCode::FAILURE
    }
}

/// `run` in its OCI form: an id and a bundle (`--bundle`, before or after the id, or ./config.json
/// when the id is all there is), rather than a root filesystem and a command.
fn oci_run(args: &RunArgs) -> Option<(String, runtime_cli::BundleArgs)> {
    if args.rootfs.is_some() || args.image.is_some() {
        return None;
    }
    if args.oci.bundle.is_some() {
        return match args.command.as_slice() {
            [id] => Some((id.clone(), args.oci.clone())),
            _ => None,
        };
    }
    // `run ID --bundle DIR`: after the first positional argument, clap hands everything to CMD.
    #[derive(Debug, Parser)]
    struct Trailing {
        #[command(flatten)]
        oci: runtime_cli::BundleArgs,
        id: String,
    }
    let trailing =
        Trailing::try_parse_from(std::iter::once("run").chain(args.command.iter().map(String::as_str)))
            .ok()?;
    let here = args.command.len() == 1 && Path::new(combined::oci::bundle::CONFIG).is_file();
    // Options may come before the id (in `args.oci`) and after it (in `trailing.oci`).
    let before = &args.oci;
    let mut oci = trailing.oci;
    oci.pid_file = oci.pid_file.or_else(|| before.pid_file.clone());
    oci.console_socket = oci.console_socket.or_else(|| before.console_socket.clone());
    oci.detach |= before.detach;
    oci.no_pivot |= before.no_pivot;
    oci.no_new_keyring |= before.no_new_keyring;
    oci.preserve_fds = oci.preserve_fds.max(before.preserve_fds);
    (oci.bundle.is_some() || here).then_some((trailing.id, oci))
}

fn run(args: Box<RunArgs>) -> ExitCode {
    let args = *args;
    if args.oci.detach {
        eprintln!(
            "combined: --detach is for the OCI form, run [--bundle DIR] -d ID; combined run stays with its container"
        );
        return ExitCode::from(EXIT_LAUNCHER);
    }
    // A container that could reach its init (`init_reachable`): the launcher runs from a sealed copy
    // of itself first, so that what it reaches is not the host's binary (`sealed.rs`).
    let user_ns = args.userns || !nskit::userns::is_root();
    let caps = combined::caps::resolve(&args.cap_add, &args.cap_drop);
    if combined::init_reachable(user_ns, !args.no_init, &caps) {
        if let Err(e) = combined::sealed::ensure() {
            eprintln!("combined: {e}");
            return ExitCode::from(EXIT_LAUNCHER);
        }
    }
    let request = RunRequest {
        rootfs: args.rootfs,
        image: args.image,
        hostname: args.hostname,
        env: args.env,
        workdir: args.workdir,
        volumes: args.volumes,
        uid_map: args.uid_map,
        gid_map: args.gid_map,
        net: args.net,
        subnet: args.subnet,
        cap_add: args.cap_add,
        cap_drop: args.cap_drop,
        read_only: args.read_only,
        no_init: args.no_init,
        userns: args.userns,
        tty: args.tty,
        memory: args.memory,
        pids_limit: args.pids_limit,
        cpus: args.cpus,
        seccomp: args
            .security_opt
            .into_iter()
            .last()
            .unwrap_or(combined::seccomp::Setting::Default),
        command: args.command,
    };
    let status = combined::run(request);
    ExitCode::from(u8::try_from(status).unwrap_or(EXIT_LAUNCHER))
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
