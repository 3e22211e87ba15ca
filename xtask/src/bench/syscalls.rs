//! `cargo xtask bench --syscalls`: where each process of a container's start spends its time, told
//! apart by the kernel's own tracepoints rather than by timers in the launcher, so that launchers
//! that write no timings (the floor, with and without protections) are measured alike. Each launcher
//! runs `/bin/true` in a loop under `perf record` of `raw_syscalls:sys_enter` and `sys_exit`,
//! `sched:sched_switch`, `sched:sched_process_fork` and `sched:sched_process_exec` (perf-record(1),
//! the tracepoints of Documentation/trace/events.rst); every stretch between two events of a process
//! is then one of:
//!
//! - **in calls**: on the CPU inside a system call, the kernel's work for the process (by call);
//! - **own**: on the CPU between system calls: the program's own code, and the page faults its
//!   memory costs (a fault is the kernel's work too, but what the program's size and memory use
//!   bring about, not what it asks for);
//! - **waiting**: off the CPU, from the process being switched out (asleep, or preempted) to its next
//!   event.
//!
//! The processes are told apart by where they stand in the tree of forks under the loop: the
//! launcher (from its `execve`), the container's first process, and the command's process (each from
//! its fork), each up to its `execve` of the next program or its `exit_group`. Every traced event
//! costs the process about a microsecond, which lands in "own" at each call's boundary: compare
//! launchers by their differences, call by call, not by the sums alone.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::launchers::Launcher;

/// The processes of one start, by depth under the loop's shell.
pub const ROLES: [&str; 3] = ["launcher", "first process", "command, to execve"];

/// One process's time, summed over the runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Times {
    pub calls: u64,
    pub in_calls_ns: u64,
    pub own_ns: u64,
    pub waiting_ns: u64,
    /// Of `own_ns`, the stretch before the first system call: for the launcher, a static binary's
    /// start-up (its relocation, glibc's reading of the CPU's features and caches).
    pub before_first_call_ns: u64,
    /// Per system call: how many, and their time on the CPU.
    pub by_call: BTreeMap<String, (u64, u64)>,
}

/// One launcher's profile: its processes' times, summed over `runs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub launcher: String,
    pub runs: usize,
    pub roles: [Times; 3],
}

impl Profile {
    /// Every role's time in each call, summed.
    fn by_call(&self) -> BTreeMap<String, (u64, u64)> {
        let mut all: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for role in &self.roles {
            for (name, (calls, ns)) in &role.by_call {
                let entry = all.entry(name.clone()).or_default();
                entry.0 += calls;
                entry.1 += ns;
            }
        }
        all
    }
}

/// Runs `launcher` `runs` times under `perf record` and reads the trace back.
pub fn measure(launcher: &Launcher, runs: usize, work: &Path) -> anyhow::Result<Profile> {
    let data = work.join("syscalls.perf.data");
    let script = "i=0; while [ $i -lt \"$0\" ]; do \"$@\" </dev/null >/dev/null || exit 1; i=$((i+1)); done";
    let mut record = Command::new("perf");
    record
        .args(["record", "--quiet", "--output"])
        .arg(&data)
        .args(EVENTS.iter().flat_map(|event| ["--event", event]))
        .args(["--", "sh", "-c", script])
        .arg(runs.to_string())
        .args(&launcher.argv);
    let status = record
        .status()
        .context("cannot run perf (apt-get install linux-perf)")?;
    if !status.success() {
        bail!("perf record of {} failed ({status})", launcher.name);
    }
    let output = Command::new("perf")
        .args(["script", "--input"])
        .arg(&data)
        .args(["--fields", "comm,pid,time,event,trace"])
        .stderr(std::process::Stdio::null())
        .output()
        .context("cannot run perf script")?;
    let _ = std::fs::remove_file(&data);
    if !output.status.success() {
        bail!("perf script failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let names = syscall_names();
    let roles = parse(&text, &names);
    Ok(Profile {
        launcher: launcher.name.to_owned(),
        runs,
        roles,
    })
}

const EVENTS: [&str; 5] = [
    "raw_syscalls:sys_enter",
    "raw_syscalls:sys_exit",
    "sched:sched_switch",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
];

const NR_EXECVE: &str = "execve";
const NR_EXIT_GROUP: &str = "exit_group";

/// One line of `perf script`: the task, its time in ns, and the event.
#[derive(Debug, PartialEq)]
enum Event<'a> {
    Enter(&'a str),
    Exit,
    SwitchedOut,
    Fork { child: i32 },
    Exec,
}

fn event<'a>(line: &str, names: &'a HashMap<u32, String>) -> Option<(i32, u64, Event<'a>)> {
    // `comm pid seconds.micros: group:event: fields`; comm may hold spaces, so from the event back.
    let (head, rest) = line.split_once(": ")?;
    let (event, fields) = rest.split_once(": ").unwrap_or((rest, ""));
    let mut head = head.split_whitespace().rev();
    let time = head.next()?;
    let pid = head.next()?.parse().ok()?;
    let (seconds, micros) = time.split_once('.')?;
    let ns = seconds.parse::<u64>().ok()? * 1_000_000_000 + micros.parse::<u64>().ok()? * 1_000;
    let parsed = match event.trim() {
        "raw_syscalls:sys_enter" => {
            let nr: u32 = fields
                .strip_prefix("NR ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Event::Enter(names.get(&nr).map_or("?", String::as_str))
        }
        "raw_syscalls:sys_exit" => Event::Exit,
        "sched:sched_switch" => Event::SwitchedOut,
        "sched:sched_process_fork" => {
            let child = fields
                .split_whitespace()
                .find_map(|f| f.strip_prefix("child_pid="))?;
            Event::Fork {
                child: child.parse().ok()?,
            }
        }
        "sched:sched_process_exec" => Event::Exec,
        _ => return None,
    };
    Some((pid, ns, parsed))
}

/// Where a traced process is.
#[derive(Debug)]
struct Track {
    role: usize,
    /// Counting: from the launcher's exec, from the others' first event; until `execve` or `exit_group`.
    counting: bool,
    done: bool,
    last: u64,
    in_call: Option<String>,
    switched_out: bool,
    /// Whether it has entered a system call since counting began.
    called: bool,
}

/// Sums the trace's stretches by role ([`ROLES`]) and kind.
fn parse(text: &str, names: &HashMap<u32, String>) -> [Times; 3] {
    let mut times: [Times; 3] = Default::default();
    let mut depth: HashMap<i32, usize> = HashMap::new();
    let mut tracks: HashMap<i32, Track> = HashMap::new();
    let mut root: Option<i32> = None;
    for line in text.lines() {
        let Some((pid, at, event)) = event(line, names) else {
            continue;
        };
        if let Event::Fork { child } = event {
            // The first fork is the loop's shell starting a launcher: the shell is the root.
            let parent = match depth.get(&pid) {
                Some(parent) => *parent,
                None if root.is_none() => {
                    root = Some(pid);
                    depth.insert(pid, 0);
                    0
                }
                None => continue,
            };
            depth.insert(child, parent + 1);
            if (1..=ROLES.len()).contains(&(parent + 1)) {
                tracks.insert(child, Track::new(parent, at));
            }
            continue;
        }
        let Some(track) = tracks.get_mut(&pid) else {
            continue;
        };
        if track.done {
            continue;
        }
        if !track.counting {
            // The launcher from its exec (before, it is the shell's copy); the others from their first
            // event, the return from the fork (the wait before it is the scheduler's).
            if track.role == 0 && event != Event::Exec {
                continue;
            }
            track.counting = true;
            track.last = at;
        }
        let own_before = times[track.role].own_ns;
        track.account(at, &mut times[track.role]);
        if !track.called {
            times[track.role].before_first_call_ns += times[track.role].own_ns - own_before;
            track.called = matches!(event, Event::Enter(_));
        }
        match event {
            Event::Enter(name) if name == NR_EXIT_GROUP || (name == NR_EXECVE && track.role != 0) => {
                track.done = true;
            }
            Event::Enter(name) => {
                times[track.role].calls += 1;
                times[track.role].by_call.entry(name.to_owned()).or_default().0 += 1;
                track.in_call = Some(name.to_owned());
            }
            Event::Exit => track.in_call = None,
            Event::SwitchedOut => track.switched_out = true,
            Event::Fork { .. } | Event::Exec => {}
        }
    }
    times
}

impl Track {
    fn new(role: usize, at: u64) -> Track {
        Track {
            role,
            counting: false,
            done: false,
            last: at,
            in_call: None,
            switched_out: false,
            called: false,
        }
    }

    /// The stretch since this process's last event, to what it was doing.
    fn account(&mut self, at: u64, times: &mut Times) {
        let stretch = at.saturating_sub(self.last);
        self.last = at;
        if std::mem::take(&mut self.switched_out) {
            times.waiting_ns += stretch;
        } else if let Some(name) = &self.in_call {
            times.in_calls_ns += stretch;
            times.by_call.entry(name.clone()).or_default().1 += stretch;
        } else {
            times.own_ns += stretch;
        }
    }
}

/// x86-64's system call numbers, from the kernel headers (linux-libc-dev), or none.
fn syscall_names() -> HashMap<u32, String> {
    let header = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
        .or_else(|_| std::fs::read_to_string("/usr/include/asm/unistd_64.h"))
        .unwrap_or_default();
    header
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define __NR_")?.split_whitespace();
            let name = words.next()?;
            Some((words.next()?.parse().ok()?, name.to_owned()))
        })
        .collect()
}

fn ms(ns: u64, runs: usize) -> f64 {
    ns as f64 / runs.max(1) as f64 / 1e6
}

/// Each launcher's processes side by side: calls, in calls, own, waiting (means per run, ms).
pub fn table(profiles: &[Profile]) -> String {
    let mut out = format!(
        "{:<20} {:<19} {:>6} {:>9} {:>7} {:>12} {:>8}\n",
        "launcher", "process", "calls", "in calls", "own", "(1st call)", "waiting"
    );
    for profile in profiles {
        let mut total = Times::default();
        for (role, times) in ROLES.iter().zip(&profile.roles) {
            out += &row(&profile.launcher, role, times, profile.runs);
            total.calls += times.calls;
            total.in_calls_ns += times.in_calls_ns;
            total.own_ns += times.own_ns;
            total.waiting_ns += times.waiting_ns;
            total.before_first_call_ns += times.before_first_call_ns;
        }
        out += &row(&profile.launcher, "all three", &total, profile.runs);
    }
    out
}

fn row(launcher: &str, role: &str, times: &Times, runs: usize) -> String {
    format!(
        "{:<20} {:<19} {:>6.0} {:>9.3} {:>7.3} {:>12.3} {:>8.3}\n",
        launcher,
        role,
        times.calls as f64 / runs.max(1) as f64,
        ms(times.in_calls_ns, runs),
        ms(times.own_ns, runs),
        ms(times.before_first_call_ns, runs),
        ms(times.waiting_ns, runs)
    )
}

/// The system calls whose time on the CPU differs most between `a` and `b`, all processes together.
pub fn difference_table(a: &Profile, b: &Profile, rows: usize) -> String {
    let (ours, theirs) = (a.by_call(), b.by_call());
    let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    names.sort();
    names.dedup();
    let per_run = |calls: u64, runs: usize| calls as f64 / runs.max(1) as f64;
    let mut lines: Vec<(f64, String)> = names
        .into_iter()
        .map(|name| {
            let (ca, na) = ours.get(name).copied().unwrap_or_default();
            let (cb, nb) = theirs.get(name).copied().unwrap_or_default();
            let difference = ms(na, a.runs) - ms(nb, b.runs);
            let line = format!(
                "{:<18} {:>6.0} {:>8.3} {:>6.0} {:>8.3} {:>+9.3}\n",
                name,
                per_run(ca, a.runs),
                ms(na, a.runs),
                per_run(cb, b.runs),
                ms(nb, b.runs),
                difference
            );
            (difference, line)
        })
        .collect();
    lines.sort_by(|x, y| y.0.abs().total_cmp(&x.0.abs()));
    let mut out = format!(
        "{:<18} {:>6} {:>8} {:>6} {:>8} {:>9}\n",
        "system call", "calls", "ms", "calls", "ms", "ms more"
    );
    out.insert_str(0, &format!("{:<18} {:>15} {:>15}\n", "", a.launcher, b.launcher));
    for (_, line) in lines.into_iter().take(rows) {
        out += &line;
    }
    out
}

pub fn json(profiles: &[Profile]) -> Value {
    let role = |times: &Times, runs: usize| {
        json!({
            "calls": times.calls as f64 / runs.max(1) as f64,
            "in_calls_ms": ms(times.in_calls_ns, runs),
            "own_ms": ms(times.own_ns, runs),
            "waiting_ms": ms(times.waiting_ns, runs),
            "own_before_first_call_ms": ms(times.before_first_call_ns, runs),
            "by_call": times.by_call.iter().map(|(name, (calls, ns))| {
                (name.clone(), json!({ "calls": *calls as f64 / runs.max(1) as f64, "ms": ms(*ns, runs) }))
            }).collect::<serde_json::Map<_, _>>(),
        })
    };
    json!(profiles
        .iter()
        .map(|p| json!({
            "launcher": p.launcher,
            "runs": p.runs,
            "processes": ROLES.iter().zip(&p.roles).map(|(name, times)| (name.to_string(), role(times, p.runs))).collect::<serde_json::Map<_, _>>(),
        }))
        .collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HashMap<u32, String> {
        [(0, "read"), (59, "execve"), (231, "exit_group"), (165, "mount")]
            .into_iter()
            .map(|(nr, name)| (nr, name.to_owned()))
            .collect()
    }

    /// A loop's shell (10) starting one launcher (11), which starts a first process (12), which starts
    /// the command (13); times in microseconds.
    const TRACE: &str = "\
              sh    10 100.000000: sched:sched_process_fork: comm=sh pid=10 child_comm=sh child_pid=11
              sh    11 100.000010: raw_syscalls:sys_enter: NR 59 (1, 2)
        launcher    11 100.000050: sched:sched_process_exec: filename=/x pid=11 old_pid=11
        launcher    11 100.000060: raw_syscalls:sys_exit: NR 59 = 0
        launcher    11 100.000100: raw_syscalls:sys_enter: NR 0 (3)
        launcher    11 100.000103: raw_syscalls:sys_exit: NR 0 = 1
        launcher    11 100.000110: sched:sched_process_fork: comm=launcher pid=11 child_comm=launcher child_pid=12
        launcher    11 100.000120: raw_syscalls:sys_enter: NR 0 (3)
        launcher    11 100.000121: sched:sched_switch: prev_comm=launcher prev_pid=11 prev_prio=120 prev_state=S ==> next_comm=launcher next_pid=12 next_prio=120
        launcher    12 100.000125: raw_syscalls:sys_exit: NR 56 = 0
        launcher    12 100.000135: raw_syscalls:sys_enter: NR 165 (0)
        launcher    12 100.000145: raw_syscalls:sys_exit: NR 165 = 0
        launcher    12 100.000150: sched:sched_process_fork: comm=launcher pid=12 child_comm=launcher child_pid=13
        launcher    13 100.000160: raw_syscalls:sys_exit: NR 56 = 0
        launcher    13 100.000170: raw_syscalls:sys_enter: NR 59 (1)
            true    13 100.000300: raw_syscalls:sys_enter: NR 231 (0)
        launcher    12 100.000160: raw_syscalls:sys_enter: NR 231 (0)
        launcher    11 100.000400: raw_syscalls:sys_exit: NR 0 = 1
        launcher    11 100.000410: raw_syscalls:sys_enter: NR 231 (0)
";

    #[test]
    fn stretches_go_to_the_process_and_to_calls_own_code_or_waiting() {
        let [launcher, first, command] = parse(TRACE, &names());
        // From the exec (50): own 50..100, 103..120, 400..410; in read 100..103 and 120..121; waiting
        // 121..400, switched out.
        assert_eq!(launcher.own_ns, 50_000 + 17_000 + 10_000);
        assert_eq!(launcher.in_calls_ns, 4_000);
        assert_eq!(launcher.waiting_ns, 279_000);
        assert_eq!(launcher.calls, 2);
        assert_eq!(launcher.by_call["read"], (2, 4_000));
        // Its start-up: from the exec to its first call (50..100), the execve's own return included.
        assert_eq!(launcher.before_first_call_ns, 50_000);
        // The first process from its return from the fork (125): own 125..135 and 145..160, the mount
        // 135..145, to its exit_group.
        assert_eq!(first.by_call["mount"], (1, 10_000));
        assert_eq!(first.own_ns, 25_000);
        assert_eq!(first.before_first_call_ns, 10_000);
        assert_eq!(first.waiting_ns, 0);
        // The command up to its execve (160..170), not after.
        assert_eq!(command.own_ns, 10_000);
        assert_eq!(command.calls, 0);
    }

    #[test]
    fn the_table_of_differences_puts_the_largest_first() {
        let mut a = Profile {
            launcher: "a".into(),
            runs: 1,
            roles: Default::default(),
        };
        let mut b = a.clone();
        b.launcher = "b".into();
        a.roles[0].by_call.insert("mount".into(), (2, 3_000_000));
        b.roles[1].by_call.insert("mount".into(), (1, 1_000_000));
        a.roles[1].by_call.insert("read".into(), (1, 500_000));
        let table = difference_table(&a, &b, 5);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[2].starts_with("mount") && lines[2].ends_with("+2.000"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("read") && lines[3].ends_with("+0.500"),
            "{table}"
        );
    }
}
