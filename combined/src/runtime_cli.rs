//! The OCI runtime's command line (runtime-spec `runtime.md`; the flags and their spelling are runc's,
//! which podman, docker's and containerd's shims and the spec's validation suite all call): the
//! global flags engines put before the command, the commands themselves, and their output. The
//! commands' work is in the library (`oci/commands.rs`).
//!
//! Errors go to stderr as one line, and, with `--log FILE`, to that file too: as JSON lines
//! (`{"level":"error","msg":"...","time":"..."}`) with `--log-format json`, which is where podman and
//! containerd read the message they show their user.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};
use combined::oci::commands::{self, CreateOptions, OciError};
use combined::oci::state::Root;

/// The flags an engine puts before any runtime command, and only there, as runc and crun take them:
/// clap would copy a `global` option into each of the commands at every start, 70 KB of heap that a
/// container's start would pay for in page faults.
#[derive(Debug, Args)]
pub struct Global {
    /// Where containers' state is kept (default: /run/combined as root, $XDG_RUNTIME_DIR/combined
    /// otherwise).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Also write errors to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The --log file's format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Use systemd to manage cgroups (not supported: refused when asked).
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// Accepted for engines that pass it; combined logs the same either way.
    #[arg(long)]
    pub debug: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The runtime's commands, each built only when it is the one run (see `main.rs`'s `Command`).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum RuntimeCommand {
    /// Set up a container from a bundle and leave it waiting for `start` (OCI runtime).
    Create(CreateArgs),
    /// Start a created container's process.
    Start(IdArg),
    /// Print a container's state as the OCI spec's JSON.
    State(IdArg),
    /// Send a signal to a container's process (default SIGTERM).
    Kill(KillArgs),
    /// Remove a stopped container (--force: kill it first).
    Delete(DeleteArgs),
    /// Run a further process in a created or running container.
    Exec(Box<ExecArgs>),
    /// Set new resource limits for a created or running container.
    Update(UpdateArgs),
    /// List the containers.
    List(ListArgs),
    /// The container's processes (host PIDs): `--format json` prints them as a JSON array.
    Ps(PsArgs),
    /// Write a default config.json into a bundle directory.
    Spec(SpecArgs),
    /// Print what this runtime supports, as the OCI spec's features JSON.
    Features,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    pub id: String,
}

// The options `create` and the OCI form of `run` share. (A plain comment: a doc comment here would be the command's help, since clap builds
// the options after the command's own text.)
#[derive(Clone, Debug, Args)]
pub struct BundleArgs {
    /// The bundle directory (default: the current one).
    #[arg(long, short = 'b', value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Write the container's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket to send the pty's master to, when process.terminal is true.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for compatibility; the root is always pivoted into.
    #[arg(long)]
    pub no_pivot: bool,
    /// Not supported: every container gets a new session keyring (refused when given).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many descriptors above stderr (3, 4, ...) on to the container's command.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// `run` only: return once the container has started, leaving it to run (`delete` removes it).
    #[arg(long, short = 'd')]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    /// A signal name (TERM, SIGKILL) or number.
    #[arg(default_value = "TERM", value_parser = commands::parse_signal)]
    pub signal: nix::sys::signal::Signal,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running; a missing container is no error.
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The new limits, as a config's `linux.resources` object in a JSON file (`-`: standard input).
    #[arg(long, short = 'r', value_name = "FILE")]
    pub resources: PathBuf,
    pub id: String,
}

// `exec [OPTIONS] ID [COMMAND [ARG...]]`, runc's spelling. (A plain comment: a doc comment here would be the command's help, since clap builds
// the options after the command's own text.)
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The process as a JSON file (the config's `process` object) instead of a command.
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Give the process a pty of its own.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// A Unix socket to send the pty's master to.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// The working directory inside the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// An environment variable, NAME=VALUE (repeatable).
    #[arg(long, short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// UID[:GID] inside the container.
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// A supplementary group (repeatable).
    #[arg(long, short = 'g', value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// A capability to add (repeatable), as CAP_NET_ADMIN.
    #[arg(long = "cap", short = 'c', value_name = "CAP")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass this many descriptors above stderr (3, 4, ...) on to the process.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// An SELinux label (not supported: refused unless empty).
    #[arg(long, value_name = "LABEL", default_value = "")]
    pub process_label: String,
    /// An AppArmor profile (not supported: refused unless empty).
    #[arg(long, value_name = "PROFILE", default_value = "")]
    pub apparmor: String,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// Print the ids only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// A config for an ordinary user: a user namespace mapping you to root.
    #[arg(long)]
    pub rootless: bool,
    /// Where to write config.json (default: the current directory).
    #[arg(long, short = 'b', value_name = "DIR")]
    pub bundle: Option<PathBuf>,
}

/// Runs one runtime command; the exit status is 0 on success, 1 on failure (runc's), and `exec`'s
/// that of its process.
pub fn dispatch(global: &Global, command: RuntimeCommand) -> ExitCode {
    match execute(global, command) {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(combined::EXIT_LAUNCHER)),
        Err(e) => fail(global, &e),
    }
}

fn execute(global: &Global, command: RuntimeCommand) -> Result<i32, OciError> {
    check_global(global)?;
    let done: Result<(), OciError> = match command {
        RuntimeCommand::Spec(args) => {
            let bundle = args.bundle.unwrap_or_else(|| PathBuf::from("."));
            commands::write_spec(&bundle, args.rootless).map(drop)
        }
        RuntimeCommand::Features => {
            print_json(&commands::features());
            Ok(())
        }
        RuntimeCommand::Create(args) => {
            let root = root(global)?;
            let (bundle, options) = create_options(&args.bundle)?;
            commands::create(&root, &args.id, &bundle, &options).map(drop)
        }
        RuntimeCommand::Start(args) => commands::start(&root(global)?, &args.id),
        RuntimeCommand::State(args) => {
            print_json(&commands::state(&root(global)?, &args.id)?);
            Ok(())
        }
        RuntimeCommand::Kill(args) => {
            commands::kill_container(&root(global)?, &args.id, args.signal, args.all)
        }
        RuntimeCommand::Delete(args) => commands::delete(&root(global)?, &args.id, args.force),
        RuntimeCommand::List(args) => list(&root(global)?, &args),
        RuntimeCommand::Ps(args) => ps(&root(global)?, &args),
        RuntimeCommand::Exec(args) => return exec(&root(global)?, &args),
        RuntimeCommand::Update(args) => {
            let resources = read_input(&args.resources)?;
            commands::update(&root(global)?, &args.id, &resources)
        }
    };
    done.map(|()| 0)
}

/// `run ID` with a bundle: create, start, wait, delete; the command's exit status.
pub fn run_bundle(global: &Global, id: &str, args: &BundleArgs) -> ExitCode {
    let outcome = check_global(global).and_then(|()| root(global)).and_then(|root| {
        let (bundle, options) = create_options(args)?;
        if args.detach {
            commands::create(&root, id, &bundle, &options)?;
            return commands::start(&root, id).map(|()| 0);
        }
        commands::run(&root, id, &bundle, &options)
    });
    match outcome {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(combined::EXIT_LAUNCHER)),
        Err(e) => fail(global, &e),
    }
}

/// `exec`: the process's exit status (0 once it runs, detached).
fn exec(root: &Root, args: &ExecArgs) -> Result<i32, OciError> {
    {
        let refused = |what: &str| Err(OciError::Refused(format!("{what} is not supported")));
        if !args.process_label.is_empty() {
            return refused("--process-label (SELinux)");
        }
        if !args.apparmor.is_empty() {
            return refused("--apparmor");
        }
        let process = commands::ExecProcess {
            file: args.process.clone(),
            args: args.command.clone(),
            env: args.env.clone(),
            cwd: args.cwd.clone(),
            user: args.user.clone(),
            additional_gids: args.additional_gids.clone(),
            tty: args.tty,
            caps: args.caps.clone(),
            no_new_privs: args.no_new_privs,
        };
        let options = commands::ExecOptions {
            pid_file: args.pid_file.clone(),
            console_socket: args.console_socket.clone(),
            detach: args.detach,
            preserve_fds: args.preserve_fds,
        };
        commands::exec(root, &args.id, &process, &options)
    }
}

fn check_global(global: &Global) -> Result<(), OciError> {
    if global.systemd_cgroup {
        return Err(OciError::Refused(
            "--systemd-cgroup is not supported: combined manages cgroups itself (leave the flag out)".into(),
        ));
    }
    Ok(())
}

fn create_options(args: &BundleArgs) -> Result<(PathBuf, CreateOptions), OciError> {
    if args.no_new_keyring {
        return Err(OciError::Refused(
            "--no-new-keyring is not supported: every container gets a new session keyring, so that none reaches the host's keys".into(),
        ));
    }
    let bundle = args.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
    let options = CreateOptions {
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
    };
    Ok((bundle, options))
}

fn root(global: &Global) -> Result<Root, OciError> {
    let path = global.root.clone().unwrap_or_else(Root::default_path);
    Ok(Root::open(&path)?)
}

fn list(root: &Root, args: &ListArgs) -> Result<(), OciError> {
    let records = commands::list(root)?;
    if args.quiet {
        for record in &records {
            println!("{}", record.id);
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => {
            let states: Vec<serde_json::Value> = records.iter().map(|r| r.oci_state()).collect();
            print_json(&serde_json::Value::Array(states));
        }
        "table" => {
            println!(
                "{:<24} {:<8} {:<8} {:<24} BUNDLE",
                "ID", "PID", "STATUS", "CREATED"
            );
            for r in &records {
                let status = r.status();
                let pid = match status {
                    oci_spec::runtime::ContainerState::Stopped => 0,
                    _ => r.pid,
                };
                println!(
                    "{:<24} {:<8} {:<8} {:<24} {}",
                    r.id,
                    pid,
                    status,
                    r.created,
                    r.bundle.display()
                );
            }
        }
        other => {
            return Err(OciError::Refused(format!(
                "unknown list format {other:?}: use table or json"
            )));
        }
    }
    Ok(())
}

fn ps(root: &Root, args: &PsArgs) -> Result<(), OciError> {
    let pids = commands::ps(root, &args.id)?;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::Value::from(pids)),
        "table" => {
            println!("{:<8} CMD", "PID");
            for pid in pids {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let words: Vec<String> = cmdline
                    .split(|b| *b == 0)
                    .filter(|w| !w.is_empty())
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                println!("{pid:<8} {}", words.join(" "));
            }
        }
        other => {
            return Err(OciError::Refused(format!(
                "unknown ps format {other:?}: use table or json"
            )));
        }
    }
    Ok(())
}

/// A file's text, or standard input's for `-`.
fn read_input(path: &std::path::Path) -> Result<String, OciError> {
    let read = match path == std::path::Path::new("-") {
        true => std::io::read_to_string(std::io::stdin()),
        false => std::fs::read_to_string(path),
    };
    read.map_err(|source| OciError::Io {
        what: format!("cannot read {}", path.display()),
        source,
    })
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

/// Reports an error on stderr and in the --log file; exit status 1.
fn fail(global: &Global, e: &OciError) -> ExitCode {
    let message = e.to_string();
    eprintln!("combined: {message}");
    if let Some(path) = &global.log {
        let line = match global.log_format {
            LogFormat::Json => serde_json::json!({
                "level": "error",
                "msg": message,
                "time": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            })
            .to_string(),
            LogFormat::Text => format!("combined: {message}"),
        };
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{line}");
        }
    }
    ExitCode::FAILURE
}
