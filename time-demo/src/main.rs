//! `cargo run -p time-demo`: the time namespace chapter's demo, what the host sees beside what the
//! namespace sees (time_namespaces(7)). It parses, calls the library's steps, and prints; the lesson is
//! in `lib.rs`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::show::{Out, explain, line, line_noted, outcome, privilege_banner, step};
use time_demo::clocks::{Clock, Nanos, Offset, Offsets, line as offset_line};
use time_demo::vdso::ROUNDS;
use time_demo::{Clocks, HOST_WRITE, REALTIME_TRY, TimeView, errno_name, why_not_written};

/// Shows what a time namespace is: CLOCK_MONOTONIC and CLOCK_BOOTTIME offset from the host's, set
/// before the first process enters; CLOCK_REALTIME not namespaced; /proc/uptime; execve; nesting;
/// and the cost of reading a clock inside and outside.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user (through a user namespace) or as root. Offsets are whole \
                  numbers with an optional unit: s, m, h or d (90s, 12h, 7d, -30m)."
)]
struct Cli {
    /// The new namespace's CLOCK_MONOTONIC offset (negative down to the clock's current reading).
    #[arg(long, default_value = "7d", allow_hyphen_values = true, value_parser = |s: &str| parse_offset(Clock::Monotonic, s))]
    monotonic: Offset,
    /// The new namespace's CLOCK_BOOTTIME offset, which /proc/uptime shows.
    #[arg(long, default_value = "30d", allow_hyphen_values = true, value_parser = |s: &str| parse_offset(Clock::Boottime, s))]
    boottime: Offset,
    /// Clock reads per timed round in the vDSO step (it keeps the fastest of 5 rounds).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    calls: u32,
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
    /// 1. The host's clocks, offsets and uptime.
    Host,
    /// 2. The host's offsets cannot be written.
    Failure,
    /// 3. unshare(CLONE_NEWTIME), then the offsets.
    Unshare,
    /// 4. The first child enters; the offsets freeze.
    Enter,
    /// 5. execve(2) moves the caller itself (Linux 6.2 and later).
    Exec,
    /// 6. A namespace inside a namespace.
    Nesting,
    /// 7. The cost of a clock read, inside and outside.
    Vdso,
}

const ALL_STEPS: [StepName; 7] = [
    StepName::Host,
    StepName::Failure,
    StepName::Unshare,
    StepName::Enter,
    StepName::Exec,
    StepName::Nesting,
    StepName::Vdso,
];

/// `--monotonic` and `--boottime`: the syntax, and, for a negative offset, that the clock would not
/// go below zero, which the kernel refuses with ERANGE. (The kernel checks against the initial
/// namespace's clock; this is the same clock unless the demo itself runs in a time namespace.)
fn parse_offset(clock: Clock, text: &str) -> Result<Offset, String> {
    let offset = Offset::parse(text).map_err(|e| e.to_string())?;
    let now = clock.now().map_err(|e| format!("cannot read the clock: {e}"))?;
    if now.0 + offset.as_nanos().0 < 0 {
        return Err(format!(
            "offset {text}: {} reads {} s now, and the kernel refuses an offset that puts a clock below \
             zero (ERANGE)",
            clock_name(clock),
            now.round_secs()
        ));
    }
    Ok(offset)
}

fn clock_name(clock: Clock) -> &'static str {
    match clock {
        Clock::Monotonic => "CLOCK_MONOTONIC",
        Clock::Boottime => "CLOCK_BOOTTIME",
        Clock::Realtime => "CLOCK_REALTIME",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("time-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    out.say(
        "time-demo: a time namespace gives its processes their own CLOCK_MONOTONIC and CLOCK_BOOTTIME".into(),
    );
    let user_ns = time_demo::caller_spawn(cli.userns)
        .flags()
        .contains(CloneFlags::CLONE_NEWUSER);
    out.say(privilege_banner(user_ns));
    // Fail closed, before any step, on a kernel without time namespaces.
    let host = time_demo::observe().context("cannot read the host's time namespace")?;
    let steps: Vec<StepName> = match cli.step {
        Some(one) => vec![one],
        None => ALL_STEPS.to_vec(),
    };
    let demo = Demo { out, cli, host };
    for name in steps {
        let number = ALL_STEPS.iter().position(|&s| s == name).unwrap_or(0) + 1;
        match name {
            StepName::Host => demo.host(number),
            StepName::Failure => demo.failure(number).context("step failure")?,
            StepName::Unshare => demo.unshare(number).context("step unshare")?,
            StepName::Enter => demo.enter(number).context("step enter")?,
            StepName::Exec => demo.exec(number).context("step exec")?,
            StepName::Nesting => demo.nesting(number).context("step nesting")?,
            StepName::Vdso => demo.vdso(number).context("step vdso")?,
        }
    }
    Ok(())
}

struct Demo<'a> {
    out: Out,
    cli: &'a Cli,
    /// What the demo process saw at the start: the host's namespace.
    host: TimeView,
}

impl Demo<'_> {
    fn offsets(&self) -> Offsets {
        Offsets {
            monotonic: self.cli.monotonic,
            boottime: self.cli.boottime,
        }
    }

    fn spawn(&self) -> nskit::Spawn {
        time_demo::caller_spawn(self.cli.userns)
    }

    fn host(&self, number: usize) {
        let (out, host) = (&self.out, &self.host);
        out.say(step(number, "What the host sees"));
        out.see(line("host", host.ns.time, clocks_text(&host.clocks)));
        out.see(line(
            "host",
            host.ns.time,
            format!(
                "time_for_children={}  timens_offsets: {}",
                host.ns.for_children, host.offsets
            ),
        ));
        out.see(line("host", host.ns.time, uptime_text(host.uptime)));
        out.say(explain(
            "monotonic and boottime count from boot (boottime also counts the time the machine was\n\
             suspended); realtime is the wall clock, in seconds since 1970; /proc/uptime, which\n\
             uptime(1) prints, is boottime",
        ));
    }

    fn failure(&self, number: usize) -> anyhow::Result<()> {
        let (out, ns) = (&self.out, self.host.ns.time);
        out.say(step(number, "Failure first: changing the host's clocks"));
        let result = time_demo::try_write_host_offsets();
        out.see(line(
            "host",
            ns,
            format!("write {} -> {}", quoted(HOST_WRITE), result_text(result)),
        ));
        match result {
            Err(Errno::EACCES) => out.say(outcome(
                "refused",
                "root holds CAP_SYS_TIME, but processes have been in the host's time namespace\n   \
                 since boot, so its offsets are frozen",
            )),
            Err(Errno::EPERM) => out.say(outcome(
                "refused",
                "no CAP_SYS_TIME in the user namespace that owns the host's time namespace",
            )),
            _ => {}
        }
        let result = time_demo::try_write_host_offsets_from_userns()
            .context("cannot start a child in a user namespace")?;
        out.see(line(
            "usrns",
            ns,
            format!("write {} -> {}", quoted(HOST_WRITE), result_text(result)),
        ));
        out.say(outcome(
            "refused",
            "uid 0 with every capability in a new user namespace, but the host's time namespace\n   \
             belongs to the initial user namespace, where this child has none",
        ));
        Ok(())
    }

    fn unshare(&self, number: usize) -> anyhow::Result<()> {
        let out = &self.out;
        out.say(step(
            number,
            "unshare(CLONE_NEWTIME): a new namespace for the caller's next children",
        ));
        let offsets = self.offsets();
        let r = time_demo::unshare_story(&self.spawn(), offsets)?;
        let ns = r.before.time;
        out.see(line(
            "unshr",
            ns,
            format!("before unshare: time_for_children={}", r.before.for_children),
        ));
        out.see(line(
            "unshr",
            r.after.time,
            format!("after unshare:  time_for_children={}", r.after.for_children),
        ));
        out.say(outcome(
            "the caller stays",
            "its own clocks do not change; the new namespace is for the children\n   \
             it creates next",
        ));
        out.see(line_noted(
            "unshr",
            ns,
            format!("timens_offsets: {}", r.inherited),
            "copied from the caller's namespace",
        ));
        out.say(explain(
            "/proc/<pid>/timens_offsets shows the offsets of the process's time_for_children, and takes\n\
             new ones as long as no process is in that namespace",
        ));
        let realtime = offset_line(Clock::Realtime, REALTIME_TRY);
        out.see(line(
            "unshr",
            ns,
            format!("write {} -> {}", quoted(&realtime), result_text(r.realtime)),
        ));
        out.say(outcome(
            "refused",
            "0 is CLOCK_REALTIME's number, and that clock has no offset: the wall clock is\n   \
             the same in every time namespace",
        ));
        let below_zero = offset_line(Clock::Boottime, Offset::from_secs(r.below_zero_secs));
        out.see(line(
            "unshr",
            ns,
            format!("write {} -> {}", quoted(&below_zero), result_text(r.below_zero)),
        ));
        out.say(outcome(
            "refused",
            "CLOCK_BOOTTIME would read a day below zero: an offset may be negative, but no\n   \
             namespace's clock may read less than zero",
        ));
        out.see(line(
            "unshr",
            ns,
            format!("write {} -> {}", quoted(&offsets.lines()), result_text(r.written)),
        ));
        out.see(line_noted(
            "unshr",
            ns,
            format!("timens_offsets: {}", r.offsets),
            &format!(
                "{}, {}",
                signed(r.offsets.monotonic.as_nanos()),
                signed(r.offsets.boottime.as_nanos())
            ),
        ));
        match r.written {
            Ok(()) => out.say(outcome(
                "accepted",
                "no process is in the namespace yet, and the caller holds CAP_SYS_TIME in the\n   \
                 user namespace that owns it",
            )),
            Err(errno) => out.say(outcome("refused", why_not_written(errno))),
        }
        out.say(explain(
            "why time namespaces exist: CRIU, restoring a checkpointed container on another machine,\n\
             writes here the difference between the clocks it saved and the new machine's, so that\n\
             the restored processes' monotonic clocks go on from where they stopped",
        ));
        Ok(())
    }

    fn enter(&self, number: usize) -> anyhow::Result<()> {
        let out = &self.out;
        out.say(step(
            number,
            "The first child enters: the host's clocks plus the offsets, but the same wall clock",
        ));
        let r = time_demo::enter_story(&self.spawn(), self.offsets())?;
        let (caller, child) = (&r.caller, &r.child);
        out.see(line("unshr", caller.ns.time, clocks_text(&caller.clocks)));
        out.see(line("child", child.ns.time, clocks_text(&child.clocks)));
        out.see(line(
            "child",
            child.ns.time,
            format!(
                "minus the caller's: {}",
                differences(&child.clocks, &caller.clocks, &ALL_CLOCKS)
            ),
        ));
        out.say(outcome(
            "offset",
            "a plain child of the caller, born in its time_for_children: CLOCK_MONOTONIC\n   \
             and CLOCK_BOOTTIME carry the offsets; CLOCK_REALTIME is the host's, since time\n   \
             namespaces do not virtualize the wall clock",
        ));
        out.see(line("unshr", caller.ns.time, uptime_text(caller.uptime)));
        out.see(line("child", child.ns.time, uptime_text(child.uptime)));
        out.see(line(
            "child",
            child.ns.time,
            format!(
                "/proc/uptime minus the caller's: {}",
                signed(child.uptime - caller.uptime)
            ),
        ));
        out.say(outcome(
            "a longer uptime",
            "uptime(1) in the child would report the offset boot time: /proc/uptime\n   \
             is CLOCK_BOOTTIME as the reader's time namespace sees it",
        ));
        out.see(line(
            "unshr",
            caller.ns.time,
            format!("write {} -> {}", quoted(HOST_WRITE), result_text(r.too_late)),
        ));
        out.say(outcome(
            "too late",
            "a process is in the namespace, so its offsets are frozen: clocks that jumped\n   \
             under running programs would break every timeout they measure",
        ));
        Ok(())
    }

    fn exec(&self, number: usize) -> anyhow::Result<()> {
        let out = &self.out;
        out.say(step(
            number,
            "execve(2): since Linux 6.2, the other way in, for the caller itself",
        ));
        let r = time_demo::exec_story(&self.spawn(), self.offsets())?;
        let caller = r.before_exec.time;
        out.see(line(
            "unshr",
            caller,
            format!(
                "after unshare and the offsets: time_for_children={}",
                r.before_exec.for_children
            ),
        ));
        let thread = match r.thread {
            Ok(ns) => format!("ok, the thread ran in {ns}"),
            Err(errno) => errno_name(errno),
        };
        out.see(line("unshr", caller, format!("{THREAD_LINE} {thread}")));
        out.see(line("unshr", caller, "then execve under ptrace"));
        out.see(line(
            "exec",
            r.after_exec.time,
            format!(
                "same PID, stopped after execve ({}): time_for_children={}",
                r.program, r.after_exec.for_children
            ),
        ));
        let verdict = if r.moved() {
            "moved into its time_for_children, as Linux 6.2 and later do"
        } else {
            "stayed where it was, as kernels before 6.2 do"
        };
        out.see(line(
            "exec",
            r.after_exec.time,
            format!("{VERDICT_LINE} {verdict}"),
        ));
        out.say(outcome(
            "Linux 6.2 and later",
            "a time namespace goes with a memory map, where the vDSO finds the\n   \
             namespace's offsets: a process enters its time_for_children when it gets a new map, as\n   \
             a child or at execve (`unshare --time program` relies on it), and a thread, which shares\n   \
             the caller's map, stays with the caller. Until its execve, the caller's clocks never changed",
        ));
        out.say(outcome(
            "Linux 5.6 to 6.1",
            "only a new child enters: execve leaves the caller where it was, and a\n   \
             thread, which would share its memory, is refused with EINVAL while the caller's\n   \
             time_for_children is another namespace",
        ));
        Ok(())
    }

    fn nesting(&self, number: usize) -> anyhow::Result<()> {
        let out = &self.out;
        out.say(step(
            number,
            "Nesting: offsets count from the host's clocks, not the parent namespace's",
        ));
        let r = time_demo::nested_story(&self.spawn(), self.offsets())?;
        let two = [Clock::Monotonic, Clock::Boottime];
        let (outer, inner) = (r.outer.ns.time, r.inner.ns.time);
        out.see(line(
            "child",
            outer,
            format!(
                "minus the host's: {}",
                differences(&r.outer.clocks, &r.host, &two)
            ),
        ));
        out.see(line_noted(
            "child",
            outer,
            format!("after its own unshare, timens_offsets: {}", r.inherited),
            "copied",
        ));
        out.see(line(
            "child",
            outer,
            format!(
                "write {} -> {}",
                quoted(&Offsets::ZERO.lines()),
                result_text(r.reset)
            ),
        ));
        out.see(line(
            "nest",
            inner,
            format!(
                "minus the host's: {}",
                differences(&r.inner.clocks, &r.host, &two)
            ),
        ));
        out.say(outcome(
            "the host's clocks",
            "a nested namespace starts with a copy of its parent's offsets, but\n   \
             an offset always counts from the initial time namespace's clocks: zero is the host's\n   \
             clocks, whatever the parent's offsets are",
        ));
        Ok(())
    }

    fn vdso(&self, number: usize) -> anyhow::Result<()> {
        let out = &self.out;
        out.say(step(
            number,
            "The vDSO: a namespaced clock is still read without a system call",
        ));
        out.say(explain(
            "clock_gettime(2) runs in the vDSO (vdso(7)), code and data the kernel maps into every\n\
             process; the demo times it against the system call itself, syscall(SYS_clock_gettime)",
        ));
        let r = time_demo::vdso_story(&self.spawn(), self.offsets(), self.cli.calls)?;
        let (host, child) = (&r.host, &r.child);
        out.see(line(
            "child",
            child.ns,
            format!(
                "CLOCK_MONOTONIC minus the host's: by the vDSO {}, by the system call {}",
                signed(child.by_vdso - host.by_vdso),
                signed(child.by_syscall - host.by_syscall)
            ),
        ));
        for (who, m) in [("host", host), ("child", child)] {
            out.see(line(
                who,
                m.ns,
                format!(
                    "clock_gettime per call, fastest of {ROUNDS} rounds of {} calls: vDSO {:.1} ns, syscall {:.1} ns",
                    m.cost.calls, m.cost.vdso_ns, m.cost.syscall_ns
                ),
            ));
        }
        // The same words on every machine: the figures above say how fast it is on this one.
        out.say(outcome(
            "both apply the offset",
            "where the clock source allows it (the TSC, kvm-clock), the\n   \
             vDSO answers in user space, several times faster than the system call, inside as\n   \
             outside: in a time namespace it reads one more page, the namespace's offsets, and\n   \
             adds them",
        ));
        Ok(())
    }
}

/// Step 5's two observations whose ends differ from kernel to kernel (Linux 6.2 changed them):
/// `transcript.masks` cuts the lines after these words.
const THREAD_LINE: &str = "a thread, sharing its memory ->";
const VERDICT_LINE: &str = "at execve, it";

const ALL_CLOCKS: [Clock; 3] = [Clock::Monotonic, Clock::Boottime, Clock::Realtime];

/// `monotonic=13140.590 s  boottime=13145.120 s  realtime=1764604576.123 s`.
fn clocks_text(c: &Clocks) -> String {
    format!(
        "monotonic={}  boottime={}  realtime={}",
        c.monotonic, c.boottime, c.realtime
    )
}

/// `/proc/uptime=13145.12 s: up 3 h 39 min 5 s`.
fn uptime_text(uptime: Nanos) -> String {
    let hundredths = uptime.0 / 10_000_000;
    format!(
        "/proc/uptime={}.{:02} s: up {}",
        hundredths / 100,
        hundredths % 100,
        span(uptime.0.div_euclid(Nanos::PER_SEC))
    )
}

/// `monotonic +7 d, boottime +30 d, realtime +0 s`: each clock of `a` minus the same clock of `b`,
/// to the nearest second.
fn differences(a: &Clocks, b: &Clocks, clocks: &[Clock]) -> String {
    clocks
        .iter()
        .map(|&clock| {
            let name = clock_name(clock)["CLOCK_".len()..].to_lowercase();
            format!("{name} {}", signed(a.of(clock) - b.of(clock)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `+7 d`, `-1 h 30 min`, `+0 s`: a difference to the nearest second.
fn signed(difference: Nanos) -> String {
    let secs = difference.round_secs();
    let sign = if secs < 0 { "-" } else { "+" };
    format!("{sign}{}", span(secs.abs()))
}

/// `30 d 3 h 39 min 5 s`; `0 s`.
fn span(secs: i64) -> String {
    let parts: Vec<String> = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")]
        .iter()
        .scan(secs, |left, &(size, unit)| {
            let count = *left / size;
            *left %= size;
            Some((count, unit))
        })
        .filter(|&(count, _)| count != 0)
        .map(|(count, unit)| format!("{count} {unit}"))
        .collect();
    if parts.is_empty() {
        "0 s".into()
    } else {
        parts.join(" ")
    }
}

/// `"monotonic 0 0"`, or `"monotonic 1 0" + "boottime 2 0"` for two lines.
fn quoted(lines: &str) -> String {
    lines
        .lines()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// `ok` or `EPERM`.
fn result_text(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => errno_name(errno),
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
    fn spans_read_like_uptime() {
        assert_eq!(span(0), "0 s");
        assert_eq!(span(604_800), "7 d");
        assert_eq!(span(2_605_145), "30 d 3 h 39 min 5 s");
        assert_eq!(signed(Nanos::from_secs(-5_400)), "-1 h 30 min");
        assert_eq!(signed(Nanos(400_000_000)), "+0 s");
        assert_eq!(signed(Nanos(-600_000_000)), "-1 s");
    }

    #[test]
    fn lines_are_quoted_one_by_one() {
        assert_eq!(quoted("monotonic 0 0\n"), "\"monotonic 0 0\"");
        assert_eq!(quoted("a 1 0\nb 2 0\n"), "\"a 1 0\" + \"b 2 0\"");
    }

    #[test]
    fn uptime_keeps_the_files_hundredths() {
        assert_eq!(
            uptime_text(Nanos(13_145_120_000_000)),
            "/proc/uptime=13145.12 s: up 3 h 39 min 5 s"
        );
    }

    #[test]
    fn negative_offsets_stop_at_zero() {
        assert!(parse_offset(Clock::Boottime, "-1s").is_ok());
        let err = parse_offset(Clock::Boottime, "-10000d").unwrap_err();
        assert!(
            err.contains("CLOCK_BOOTTIME reads") && err.contains("ERANGE"),
            "{err}"
        );
        assert!(
            parse_offset(Clock::Monotonic, "7 days")
                .unwrap_err()
                .contains("invalid offset")
        );
    }
}
