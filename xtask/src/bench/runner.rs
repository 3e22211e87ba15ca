//! Running one launcher and measuring it: the benchmark forks and execs each command itself and reaps
//! it with wait4(2), whose rusage covers the waited-for process *and every descendant it reaped*
//! (getrusage(2), RUSAGE_CHILDREN): CPU time is the sum over that tree, peak RSS the largest single
//! process in it. A launcher may exit before its container's processes do (bubblewrap's parent
//! reads the exit status from an eventfd and leaves while the sandbox's PID 1 is still exiting):
//! those orphans would be reaped by the system's init, uncounted. So the benchmark makes itself a
//! child subreaper (PR_SET_CHILD_SUBREAPER, prctl(2)): orphans of a run come back to it, and a run
//! ends when its last process has been reaped, with their CPU time and RSS counted too.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What one run cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// From just before the fork to the return of wait4.
    pub wall_ms: f64,
    /// User plus system CPU time of the process tree.
    pub cpu_ms: f64,
    /// Peak resident set of the largest process in the tree.
    pub rss_kib: u64,
    /// Processes that outlived the launcher and were reaped by the benchmark as subreaper.
    pub orphans: u32,
}

/// How one run ended, for the first (checked) run of each launcher.
#[derive(Debug)]
pub struct Outcome {
    pub sample: Sample,
    pub success: bool,
    pub stderr: String,
    /// CLOCK_MONOTONIC just before the fork and at the return of the last wait4, in nanoseconds: the
    /// run's span on the clock a launcher's own timings use (`--breakdown`).
    pub span_ns: (u64, u64),
}

/// Runs `argv` once with stdio on /dev/null and measures it.
pub fn measure(argv: &[String]) -> anyhow::Result<Sample> {
    measure_all(std::slice::from_ref(&argv.to_vec()), None)
}

/// Runs `commands` one after another, as one run (an OCI runtime's create, start, delete), and
/// measures them together. The container a `create` leaves behind outlives its command and comes
/// back to the benchmark, a subreaper: it is waited for before the last command (the `delete`).
/// `stdin`: a file each command reads as its standard input, else /dev/null.
pub fn measure_all(commands: &[Vec<String>], stdin: Option<&Path>) -> anyhow::Result<Sample> {
    let outcome = run(commands, stdin, false)?;
    if !outcome.success {
        bail!("`{}` failed during the benchmark", describe(commands));
    }
    Ok(outcome.sample)
}

/// Runs `commands` once, keeping their stderr, so that a launcher that does not work here says why.
pub fn check(commands: &[Vec<String>], stdin: Option<&Path>) -> anyhow::Result<Outcome> {
    run(commands, stdin, true)
}

/// Runs `argv` once, as [`measure`] does, and also returns its span on CLOCK_MONOTONIC.
pub fn measure_span(argv: &[String]) -> anyhow::Result<(Sample, (u64, u64))> {
    let outcome = run(std::slice::from_ref(&argv.to_vec()), None, false)?;
    if !outcome.success {
        bail!("`{}` failed during the benchmark", argv.join(" "));
    }
    Ok((outcome.sample, outcome.span_ns))
}

/// The commands as one line, `;` between them.
pub fn describe(commands: &[Vec<String>]) -> String {
    commands
        .iter()
        .map(|argv| argv.join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

fn run(commands: &[Vec<String>], stdin: Option<&Path>, keep_stderr: bool) -> anyhow::Result<Outcome> {
    let commands: Vec<Vec<String>> = commands.iter().map(|argv| numbered(argv, 0)).collect();
    let started_ns = monotonic_ns();
    let start = Instant::now();
    let mut total = sample(Duration::ZERO, &zero_usage());
    let mut success = true;
    let mut stderr = String::new();
    for (i, argv) in commands.iter().enumerate() {
        let last = i + 1 == commands.len();
        if last && i > 0 && success {
            reap_orphans(&mut total)?;
        }
        if !success && !last {
            continue; // Straight to the last command, the clean-up.
        }
        let (pid, stderr_pipe) = spawn(argv, stdin, keep_stderr)?;
        let (status, usage) = wait4(pid)?;
        if let Some(pipe) = stderr_pipe {
            stderr.push_str(&read_available(pipe));
        }
        let step = sample(Duration::ZERO, &usage);
        total.cpu_ms += step.cpu_ms;
        total.rss_kib = total.rss_kib.max(step.rss_kib);
        success &= libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    }
    reap_orphans(&mut total)?;
    total.wall_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(Outcome {
        sample: total,
        success,
        stderr,
        span_ns: (started_ns, monotonic_ns()),
    })
}

fn zero_usage() -> libc::rusage {
    // SAFETY: rusage is a plain C struct of integers, for which all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The uid and gid every measured command runs as (`--rootless`); unset, the benchmark's own.
static RUN_AS: std::sync::OnceLock<(libc::uid_t, libc::gid_t)> = std::sync::OnceLock::new();

/// Makes every command from now on run as `uid` and `gid`, with no supplementary group.
pub fn run_as(uid: libc::uid_t, gid: libc::gid_t) {
    let _ = RUN_AS.set((uid, gid));
}

/// Starts `count` copies of `argv` at once and waits for them all. Returns the wall time from the
/// first fork to the last exit, and each copy's sample (its own wall time is from the first fork).
pub fn measure_concurrent(
    argv: &[String],
    stdin: Option<&Path>,
    count: usize,
) -> anyhow::Result<(f64, Vec<Sample>)> {
    let start = Instant::now();
    let mut pids = Vec::with_capacity(count);
    for i in 0..count {
        pids.push(spawn(&numbered(argv, i), stdin, false)?.0);
    }
    let mut samples = Vec::with_capacity(count);
    let mut failed = 0;
    for pid in pids {
        let (status, usage) = wait4(pid)?;
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failed += 1;
        }
        samples.push(sample(start.elapsed(), &usage));
    }
    // The orphans of all copies, counted with the first copy: the batch's totals are what matter.
    if let Some(first) = samples.first_mut() {
        reap_orphans(first)?;
    }
    if failed > 0 {
        bail!("{failed} of {count} concurrent `{}` failed", argv.join(" "));
    }
    Ok((start.elapsed().as_secs_f64() * 1e3, samples))
}

/// Container ids must be unique among concurrent runs (crun, runc): `{n}` in an argument becomes the
/// copy's number.
fn numbered(argv: &[String], i: usize) -> Vec<String> {
    argv.iter().map(|a| a.replace("{n}", &i.to_string())).collect()
}

/// fork(2) and execv(3), with stdin on /dev/null or the file `stdin`, stdout on /dev/null and stderr
/// there too or on a pipe.
///
/// Why not `std::process::Command`: it spawns with posix_spawn, whose child shares this process's
/// memory until it execs, and the kernel carries the peak RSS of the memory a process had before
/// execve into its own (exec_mmap): every launcher would be charged xtask's RSS. A forked child
/// starts with only the pages it has copied, a few hundred KiB, which the report shows as the floor
/// of the RSS column (the `/bin/true` line in the JSON's machine section).
fn spawn(
    argv: &[String],
    stdin: Option<&Path>,
    keep_stderr: bool,
) -> anyhow::Result<(libc::pid_t, Option<File>)> {
    let program = resolve(&argv[0])?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument contains a NUL byte")?;
    let mut pointers: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());
    let null = File::options().read(true).write(true).open("/dev/null")?;
    // Opened for each run: a file read to its end by one run would be at its end for the next.
    let input = match stdin {
        Some(path) => File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        None => null.try_clone()?,
    };
    let (reader, writer) = if keep_stderr {
        let (r, w) = pipe()?;
        (Some(File::from(r)), Some(w))
    } else {
        (None, None)
    };
    let err_fd = writer.as_ref().map_or(null.as_raw_fd(), |w| w.as_raw_fd());
    // SAFETY: fork has no memory-safety preconditions; the child below only calls async-signal-safe
    // functions (dup2, signal, execv, _exit) on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        child([input.as_raw_fd(), null.as_raw_fd(), err_fd], &program, &pointers);
    }
    Ok((pid, reader))
}

/// The forked child: stdio, default SIGPIPE (Rust ignores it, and an ignored signal survives execve),
/// then the program.
fn child(stdio: [RawFd; 3], program: &CString, argv: &[*const libc::c_char]) -> ! {
    for (to, from) in (0..).zip(stdio) {
        // SAFETY: dup2 on descriptors this process holds open.
        if unsafe { libc::dup2(from, to) } < 0 {
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(127) };
        }
    }
    // SAFETY: restoring the default disposition of SIGPIPE touches no memory.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if let Some(&(uid, gid)) = RUN_AS.get() {
        // Groups first, while the process may still change them; each call only changes this
        // process's credentials.
        // SAFETY: setgroups reads no memory with a count of 0.
        let groups = unsafe { libc::setgroups(0, std::ptr::null()) } == 0;
        // SAFETY: integers only.
        let gid_set = groups && unsafe { libc::setresgid(gid, gid, gid) } == 0;
        // SAFETY: integers only.
        let dropped = gid_set && unsafe { libc::setresuid(uid, uid, uid) } == 0;
        if !dropped {
            // SAFETY: as below.
            unsafe { libc::_exit(127) };
        }
    }
    // SAFETY: program and argv point at NUL-terminated strings (and a null-terminated array) that
    // live until execv replaces this process.
    unsafe { libc::execv(program.as_ptr(), argv.as_ptr()) };
    // SAFETY: as above.
    unsafe { libc::_exit(127) }
}

/// What a command wrote to its stderr pipe, read once it has exited, without waiting: a container it
/// left running (an OCI `create`'s) holds the pipe open, so it may never reach end of file. (A
/// message longer than the pipe's 64 KiB would block the command: these are one-line errors.)
fn read_available(mut pipe: File) -> String {
    // SAFETY: fcntl on a descriptor this process owns; O_NONBLOCK changes no memory.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A close-on-exec pipe: read end, write end.
fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: the descriptor was just created by pipe2 and is owned by nothing else.
    let reader = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above.
    let writer = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((reader, writer))
}

/// An absolute path as it is, a bare name looked up in PATH.
fn resolve(program: &str) -> anyhow::Result<CString> {
    let path = if program.contains('/') {
        PathBuf::from(program)
    } else {
        super::launchers::which(program).map_err(anyhow::Error::msg)?
    };
    CString::new(path.as_os_str().as_bytes()).context("a program path contains a NUL byte")
}

/// wait4(2) for `pid`, retrying on EINTR: the raw status and the rusage of its tree.
fn wait4(pid: libc::pid_t) -> anyhow::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is a plain C struct of integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes an int and a struct rusage through pointers to live locals.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc > 0 {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err).context("wait4");
        }
    }
}

/// Makes this process the reaper of its descendants' orphans (PR_SET_CHILD_SUBREAPER).
pub fn become_subreaper() -> anyhow::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes no pointers; it sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_CHILD_SUBREAPER)");
    }
    Ok(())
}

/// Waits for every remaining child (orphans reparented to this subreaper) and adds their CPU time
/// and peak RSS to `sample`.
fn reap_orphans(sample: &mut Sample) -> anyhow::Result<()> {
    loop {
        match wait4(-1) {
            Ok((_, usage)) => {
                let orphan = self::sample(Duration::ZERO, &usage);
                sample.cpu_ms += orphan.cpu_ms;
                sample.rss_kib = sample.rss_kib.max(orphan.rss_kib);
                sample.orphans += 1;
            }
            Err(e)
                if e.downcast_ref::<std::io::Error>().and_then(|e| e.raw_os_error())
                    == Some(libc::ECHILD) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

fn sample(wall: Duration, usage: &libc::rusage) -> Sample {
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    Sample {
        wall_ms: wall.as_secs_f64() * 1e3,
        cpu_ms: ms(usage.ru_utime) + ms(usage.ru_stime),
        // ru_maxrss is in KiB on Linux.
        rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        orphans: 0,
    }
}

/// CLOCK_MONOTONIC in nanoseconds (clock_gettime(2)), the clock `Instant` reads and `combined`'s
/// timings use.
pub fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain C data, for which all zeroes is a valid value.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// The load average over the last minute, from /proc/loadavg, to record how quiet the machine was.
pub fn load_average() -> Option<f64> {
    let mut text = String::new();
    File::open("/proc/loadavg").ok()?.read_to_string(&mut text).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_process_tree() {
        let argv: Vec<String> = ["sh", "-c", "true"].map(String::from).to_vec();
        let sample = measure(&argv).unwrap();
        assert!(sample.wall_ms > 0.0);
        assert!(sample.rss_kib > 0, "wait4 reports the peak RSS");
        assert!(measure(&["false".to_owned()]).is_err());
        let outcome = check(
            &[vec!["sh".into(), "-c".into(), "echo why >&2; exit 3".into()]],
            None,
        )
        .unwrap();
        assert!(!outcome.success);
        assert_eq!(outcome.stderr.trim(), "why");
    }

    /// Each run reads the file from its start (what `bwrap --seccomp 0` needs), however many runs.
    #[test]
    fn each_run_gets_the_whole_stdin_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input");
        std::fs::write(&input, "hello\n").unwrap();
        let reads: Vec<String> = ["sh", "-c", r#"read line && test "$line" = hello"#]
            .map(String::from)
            .to_vec();
        for _ in 0..2 {
            let outcome = check(std::slice::from_ref(&reads), Some(&input)).unwrap();
            assert!(outcome.success, "{}", outcome.stderr);
        }
        let (_, samples) = measure_concurrent(&reads, Some(&input), 3).unwrap();
        assert_eq!(samples.len(), 3);
        assert!(
            !check(std::slice::from_ref(&reads), None).unwrap().success,
            "/dev/null otherwise"
        );
    }

    #[test]
    fn counts_the_orphans_a_launcher_leaves() {
        become_subreaper().unwrap();
        // The shell exits at once; its background child outlives it and comes back to us.
        let argv: Vec<String> = ["sh", "-c", "sleep 0.2 & exit 0"].map(String::from).to_vec();
        let sample = measure(&argv).unwrap();
        assert_eq!(sample.orphans, 1);
        assert!(
            sample.wall_ms >= 200.0,
            "the run ends when its last process is reaped"
        );
    }

    #[test]
    fn a_sequence_waits_for_what_it_left_running_before_its_last_command() {
        become_subreaper().unwrap();
        let create = ["sh", "-c", "sleep 0.2 & exit 0"].map(String::from).to_vec();
        // The orphan is waited for before the last command, and counted.
        let sample = measure_all(&[create, vec!["true".into()], vec!["true".into()]], None).unwrap();
        assert_eq!(sample.orphans, 1);
        assert!(sample.wall_ms >= 200.0);
        let failing = [vec!["false".to_owned()], vec!["true".to_owned()]];
        assert!(
            !check(&failing, None).unwrap().success,
            "a failed step fails the run"
        );
    }

    #[test]
    fn numbers_concurrent_copies() {
        let argv: Vec<String> = ["crun", "run", "bench-{n}"].map(String::from).to_vec();
        assert_eq!(numbered(&argv, 7)[2], "bench-7");
        let (wall, samples) = measure_concurrent(&["true".to_owned()], None, 3).unwrap();
        assert_eq!(samples.len(), 3);
        assert!(samples.iter().all(|s| s.wall_ms <= wall));
    }
}
