//! The seccomp filter the container's command runs under: `--security-opt seccomp=...`, a profile in
//! Docker's JSON format compiled by libseccomp into the BPF program that seccomp(2) loads.
//! seccomp(2), seccomp_rule_add(3), seccomp_export_bpf(3), Docker's "Seccomp security profiles for
//! Docker", and the OCI runtime spec's `linux.seccomp` (config-linux.md).
//!
//! Namespaces decide what a process can see, and capabilities what the kernel lets it do there. A
//! seccomp filter acts before both: it decides which system calls reach the kernel at all. Each system
//! call of a filtered process first runs a small classic-BPF program, which sees only the call's number,
//! its architecture and its six argument registers (never memory they point to), and answers with a
//! verdict: allow, fail with an errno, kill. Many container escapes go through kernel code that ordinary
//! programs never call; a filter takes that code away from the container, bugs and all.
//!
//! [`compile`] turns the setting into a [`Filter`] before anything is created, so that a bad profile is
//! refused before the container starts. [`Filter::install`] loads it in the container's process, after
//! no_new_privs is set and just before execve.
//!
//! # Compiling a profile, as Docker and runc do
//!
//! 1. Architectures. The program first checks the architecture of each call: a 32-bit x86 call on
//!    x86-64 has other numbers. A Docker profile's `archMap` gives, for the native architecture, the
//!    others its processes may also use (x86 and x32 on x86-64); an OCI profile lists them all in
//!    `architectures`. A call from an architecture not in the filter kills the thread.
//! 2. Conditions. `includes` and `excludes` keep or drop an entry by the capabilities the container
//!    keeps (`includes`: all those listed; `excludes`: any of them), the native architecture (Go's names:
//!    `amd64`, `arm64`), and the running kernel (`minKernel`, like `4.8`). Capabilities are compared by
//!    name, as moby does: one this launcher does not know is one the container does not have.
//! 3. Names. libseccomp finds each name's number on every architecture in the filter. A name unknown to
//!    it is skipped, as runc skips it: a profile may list calls newer than the library. A call that only
//!    some of the filter's architectures have (`chown32` is 32-bit x86's) gets its rule there.
//! 4. Arguments. Conditions on different arguments must all hold. Conditions on the same argument are
//!    alternatives: libseccomp refuses to compare one argument twice in a rule, so runc makes each such
//!    condition a rule of its own, and so does this module.
//! 5. An entry whose action is the default action is skipped: it changes nothing, and libseccomp
//!    refuses it.
//! 6. libseccomp generates the program and writes it to a memfd, from which it is read back
//!    (libseccomp 2.5.4 has no `seccomp_export_bpf_mem`). As runc does, it is asked for a binary tree
//!    of call numbers rather than a list tested one after another. The tree takes longer to compile
//!    (21 ms instead of 12 ms for the default profile here, Linux 6.18, libseccomp 2.5.4), but the
//!    compiled program is cached (`seccomp/cache.rs`), and loading is what every container pays: when
//!    a filter is loaded, the kernel runs it once for every system call number of every architecture
//!    in it, to find the calls it always allows and spare them the program later (Linux 5.11). Along
//!    a list that is half the program per call, along a tree a few dozen instructions: measured here,
//!    loading the default profile took 0.9 ms as a list and 0.4 ms as a tree, and each `ioctl` or
//!    `socket` (whose arguments are tested) runs about 90 ns faster.
//!
//! Actions are libseccomp's: `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO` (errno `errnoRet`, EPERM without one),
//! `SCMP_ACT_KILL_PROCESS`, `SCMP_ACT_KILL_THREAD` (and `SCMP_ACT_KILL`, which kills the thread, as in
//! runc), `SCMP_ACT_TRAP`, `SCMP_ACT_TRACE` and `SCMP_ACT_LOG`. `SCMP_ACT_NOTIFY` is refused: it hands the
//! call to a supervising process over a listener socket, and this launcher runs none.
//!
//! # The default profile (`seccomp/default.json`)
//!
//! Docker's default profile (moby's `profiles/seccomp/default.json`, v0.2.3), regrouped by topic, with
//! notes in Docker's `comment` fields, two rules made exact (the low 32 bits, below) and one addition
//! (TIOCSTI, below). In short:
//!
//! - Any call not listed fails with EPERM. Never listed, so never allowed: the keyring (`keyctl`,
//!   `add_key`, `request_key`: keys are not namespaced), `kexec_load` and `kexec_file_load`,
//!   `userfaultfd` (it lets an exploit pause the kernel in mid-copy), `io_uring_*`, and old or obscure
//!   calls (`uselib`, `nfsservctl`, `vm86`, ...).
//! - About 360 ordinary calls are allowed: files, memory, processes, signals, time, identity,
//!   scheduling, sockets once made, System V and POSIX IPC.
//! - Namespaces and mounts (`unshare`, `setns`, `mount`, `umount2`, the new mount API), `bpf`,
//!   `perf_event_open`, `fanotify_init`, `quotactl`, `syslog`, `lookup_dcookie` and `sethostname` /
//!   `setdomainname` need CAP_SYS_ADMIN (`bpf` also CAP_BPF, `perf_event_open` CAP_PERFMON, `syslog`
//!   CAP_SYSLOG). The kernel checks these capabilities itself, but a filter refuses before any of the
//!   call's code runs; and `unshare(CLONE_NEWUSER)` needs no capability at all, yet gives a process a
//!   namespace where it is root and can reach code written for root: only the filter stops that.
//! - `clone` without CAP_SYS_ADMIN only without the namespace flags: CLONE_NEWNS, NEWCGROUP, NEWUTS,
//!   NEWIPC, NEWUSER, NEWPID, NEWNET and NEWTIME, mask 0x7E020000, must all be clear. `clone3` fails
//!   with ENOSYS instead: its flags are in memory, where a filter cannot look, and ENOSYS (not EPERM)
//!   makes the C library fall back to `clone`.
//! - ptrace: Docker allows `ptrace`, `process_vm_readv` and `process_vm_writev` to everyone on Linux
//!   4.8 and later (moby's "seccomp: allow ptrace for 4.8+ kernels"; before 4.8 a tracer could change a
//!   call after the filter had checked it), and this profile does the same. The kernel's own check
//!   still applies (ptrace(2), "Ptrace access mode checking"): a process can trace only processes of its
//!   own uid and no more privileged than itself, and a non-dumpable one, such as the container's init,
//!   only with CAP_SYS_PTRACE. `kcmp`, `pidfd_getfd` and `process_madvise` need CAP_SYS_PTRACE.
//! - The other calls that need a capability: `reboot` (CAP_SYS_BOOT), `chroot` (CAP_SYS_CHROOT),
//!   modules (CAP_SYS_MODULE), `acct` (CAP_SYS_PACCT), `iopl` / `ioperm` (CAP_SYS_RAWIO),
//!   `settimeofday`, `stime` and `clock_settime` (CAP_SYS_TIME; `adjtimex` and `clock_adjtime` are
//!   allowed because they also read the clock, and the kernel refuses their changes without
//!   CAP_SYS_TIME), `vhangup` (CAP_SYS_TTY_CONFIG), the NUMA memory policy calls (CAP_SYS_NICE), and
//!   `open_by_handle_at` (CAP_DAC_READ_SEARCH: a guessed handle opens a host file, the "shocker" escape).
//!   `name_to_handle_at` is allowed, as in Docker: it only makes a handle.
//! - `personality`: only PER_LINUX, PER_LINUX32, UNAME26, the last two together, and 0xffffffff (which
//!   only asks); flags such as ADDR_NO_RANDOMIZE (no address space randomisation) are refused.
//! - `socket`: every address family but AF_ALG (38, the kernel's crypto API) and AF_VSOCK (40, sockets to
//!   a hypervisor), as in moby since profiles v0.2.1.
//!
//! ## The low 32 bits
//!
//! A filter compares 64-bit registers, but `socket`'s family is an `int` and `ioctl`'s request an
//! `unsigned int`: the kernel reads only their low 32 bits. Docker allows `socket` when `family > 40`,
//! and `socket(0x1_0000_0028, ...)` is greater than 40 to the filter but AF_VSOCK to the kernel (tried
//! here on Linux 6.18: that rule lets it make a vsock socket). So every comparison of these two arguments
//! here is a SCMP_CMP_MASKED_EQ on the low 32 bits. A masked comparison only tests equality, so "anything
//! but 38 and 40" is written as alternatives: one for each of the 29 bits where 38 and 40 agree (the
//! bit differs from theirs), and three two-bit patterns for bits 1 to 3, where they differ, covering the
//! six values of those bits that are neither 38's nor 40's. That is 32 alternatives, the fewest there
//! can be: each of the 32 values one bit away from 38 needs its own. The tests check the alternatives
//! against every value they could confuse.
//!
//! ## The addition: TIOCSTI and TIOCLINUX
//!
//! `ioctl(fd, TIOCSTI, &c)` pushes a character into a terminal's input queue as if it had been typed,
//! so a process sharing a terminal with a shell can type commands into that shell; TIOCLINUX's selection
//! calls can do the same on a virtual console. Since Linux 6.2 a host can make TIOCSTI need
//! CAP_SYS_ADMIN (`dev.tty.legacy_tiocsti=0`), but not every host does. So `ioctl` is allowed for every
//! request but these two (0x5412 and 0x541C), with 32 masked alternatives as above.
//!
//! The obvious way does not work. With libseccomp 2.5.4, when `ioctl` is allowed unconditionally, a
//! conditional rule for it is accepted and then silently dropped (the unconditional rule already matches
//! every argument), whatever the order; and a rule returning EPERM is refused (EACCES) because EPERM is
//! the default action. Allowing everything else is the one way to say it in a single filter.
//!
//! ## Limits
//!
//! - 32-bit x86 programs can make sockets through `socketcall`, whose arguments are in memory: the
//!   family rule cannot apply there (Docker blocks AF_ALG in that path with AppArmor or SELinux).
//! - A call newer than the installed libseccomp cannot be named in a filter, so it fails with EPERM
//!   (here libseccomp 2.5.4 does not know `listmount`, `statmount`, `mseal`, `uretprobe` and the
//!   `*xattrat` calls). runc patches its programs so that such calls fail with ENOSYS, which makes the
//!   C library fall back to an older call; this module does not.

mod cache;
mod profile;

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::CapsHashSet;
use libseccomp::{ScmpFilterContext, ScmpSyscall};
use nix::errno::Errno;
use nix::sys::memfd::{MFdFlags, memfd_create};

use profile::{Host, Plan, Profile, Rule};

/// The launcher's default profile (see the module comment).
const DEFAULT_PROFILE: &str = include_str!("seccomp/default.json");

/// Where the default profile lives in the source, for the error that cannot happen.
const DEFAULT_PROFILE_PATH: &str = "combined/src/seccomp/default.json";

/// The most instructions the kernel accepts in one program (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// `--security-opt seccomp=...`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// The launcher's default profile: Docker's, with TIOCSTI refused.
    Default,
    /// No filter at all.
    Unconfined,
    /// A profile file in Docker's format (or the OCI runtime spec's `linux.seccomp` object).
    Profile(PathBuf),
}

impl FromStr for Setting {
    type Err = SeccompError;

    /// The value after `seccomp=`: `unconfined`, `default` (or Docker's `builtin`), or a profile's path
    /// (`./default` for a file of that name).
    fn from_str(value: &str) -> Result<Setting, SeccompError> {
        match value {
            "" => Err(SeccompError::NoSetting),
            "unconfined" => Ok(Setting::Unconfined),
            "default" | "builtin" => Ok(Setting::Default),
            path => Ok(Setting::Profile(PathBuf::from(path))),
        }
    }
}

/// A compiled BPF program, ready to load.
#[derive(Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` from the profile's `flags`.
    flags: libc::c_ulong,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .finish()
    }
}

impl Filter {
    /// Loads the filter into the calling thread with seccomp(2) SECCOMP_SET_MODE_FILTER; the caller has
    /// set no_new_privs already (or holds CAP_SYS_ADMIN in its user namespace). It does not allocate,
    /// so that it can run in a cloned child just before execve. The filter stays for the life of the
    /// process and its children, across execve.
    pub fn install(&self) -> Result<(), Errno> {
        let len = u16::try_from(self.program.len()).map_err(|_| Errno::EINVAL)?;
        let program = libc::sock_fprog {
            len,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at `len` instructions owned by `self`, which outlives the call; the
        // kernel copies them and never writes through the pointer. The other arguments are integers.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &program as *const libc::sock_fprog,
            )
        };
        Errno::result(rc).map(drop)
    }

    /// The program as the kernel takes it: each instruction's code (2 bytes), jt, jf and k (4 bytes)
    /// in this machine's byte order, 8 bytes each (`struct sock_filter`, bpf(4)). What `combined
    /// seccomp` writes, and what `bwrap --seccomp FD` reads.
    pub fn to_bpf(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.program.len() * 8);
        for insn in &self.program {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.extend_from_slice(&[insn.jt, insn.jf]);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// The `SECCOMP_FILTER_FLAG_*` the profile asks seccomp(2) to load it with (0 for none).
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (a compiled one never is).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }
}

/// Compiles the setting for a container whose capability set will be `caps` (Docker profiles include
/// and exclude rules by capability). None for [`Setting::Unconfined`].
pub fn compile(setting: &Setting, caps: &CapsHashSet) -> Result<Option<Filter>, SeccompError> {
    compile_with_cache(setting, caps, None)
}

// ANCHOR: compile_with_cache
/// [`compile`], looking in `cache` first for the same profile compiled for the same capabilities,
/// kernel and library, and keeping what it compiles there (`seccomp/cache.rs`).
pub fn compile_with_cache(
    setting: &Setting,
    caps: &CapsHashSet,
    cache: Option<&Path>,
) -> Result<Option<Filter>, SeccompError> {
    let (text, path) = match setting {
        Setting::Unconfined => return Ok(None),
        Setting::Default => (Cow::Borrowed(DEFAULT_PROFILE), None),
        Setting::Profile(path) => (Cow::Owned(read(path)?), Some(path)),
    };
    let key = cache.map(|_| cache::key(&text, caps));
    if let (Some(dir), Some(key)) = (cache, &key) {
        if let Some(filter) = cache::load(dir, key) {
            return Ok(Some(filter));
        }
    }
    let filter = compile_text(&text, path, caps)?;
    if let (Some(dir), Some(key)) = (cache, &key) {
        cache::store(dir, key, &filter);
    }
    Ok(Some(filter))
}
// ANCHOR_END: compile_with_cache

/// Compiles a profile given as JSON text (an OCI config's `linux.seccomp` section), naming `origin`
/// (the config file) in its errors.
pub fn compile_json(text: &str, origin: &Path, caps: &CapsHashSet) -> Result<Filter, SeccompError> {
    compile_text(text, Some(&origin.to_path_buf()), caps)
}

fn compile_text(text: &str, path: Option<&PathBuf>, caps: &CapsHashSet) -> Result<Filter, SeccompError> {
    let profile: Profile = serde_json::from_str(text).map_err(|source| SeccompError::Parse {
        path: path.cloned().unwrap_or_else(|| DEFAULT_PROFILE_PATH.into()),
        source,
    })?;
    let origin = match path {
        Some(path) => format!("seccomp profile {}", path.display()),
        None => "the default seccomp profile".to_owned(),
    };
    // Names libseccomp does not know are skipped, as runc skips them (module comment, step 3).
    let (filter, _skipped) = build(&profile, &Host::this(caps), &origin)?;
    Ok(filter)
}

fn read(path: &Path) -> Result<String, SeccompError> {
    std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Steps 2 to 6 of the module comment: the rules that apply to `host`, into libseccomp, out as BPF.
/// Also returns the names libseccomp does not know, which were skipped.
fn build(profile: &Profile, host: &Host, origin: &str) -> Result<(Filter, Vec<String>), SeccompError> {
    let plan = profile.plan(host, origin)?;
    let libseccomp = |what: &'static str| {
        move |source| SeccompError::Libseccomp {
            profile: origin.to_owned(),
            what,
            source,
        }
    };
    let mut context = ScmpFilterContext::new(plan.default).map_err(libseccomp("create a filter"))?;
    // A binary tree of system-call numbers (module comment, step 6).
    context
        .set_ctl_optimize(2)
        .map_err(libseccomp("ask for a binary tree"))?;
    for arch in &plan.arches {
        context
            .add_arch(*arch)
            .map_err(libseccomp("add an architecture"))?;
    }
    let skipped = add_rules(&mut context, &plan, origin)?;
    let program = export(&context).map_err(|source| SeccompError::Export { source })?;
    if program.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong {
            profile: origin.to_owned(),
            instructions: program.len(),
        });
    }
    let filter = Filter {
        program,
        flags: plan.flags,
    };
    Ok((filter, skipped))
}

/// Adds every rule but those with the default action; returns the names libseccomp does not know.
fn add_rules(
    context: &mut ScmpFilterContext,
    plan: &Plan,
    origin: &str,
) -> Result<Vec<String>, SeccompError> {
    let mut skipped = Vec::new();
    let mut earlier = Earlier::default();
    for rule in plan.rules.iter().filter(|r| r.action != plan.default) {
        for name in &rule.names {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                skipped.push(name.clone());
                continue;
            };
            if earlier.check(name, rule, origin)? == Keep::First {
                continue;
            }
            add_rule(context, rule, syscall).map_err(|source| SeccompError::Rule {
                profile: origin.to_owned(),
                place: rule.place.clone(),
                syscall: name.clone(),
                source,
            })?;
        }
    }
    Ok(skipped)
}

/// The rules each system call got so far. libseccomp 2.5.4 resolves two of a call's rules with
/// different actions silently when either is unconditional: of two unconditional rules it keeps the
/// first, and an unconditional rule swallows any conditional one, in either order.
///
/// Two unconditional rules are taken as libseccomp, and so runc and crun, take them: the first one
/// holds (`Keep::First`). Engines write such profiles: podman's default allows `setns` in its long
/// list and refuses it again, for a container without CAP_SYS_ADMIN, in a later one; under runc and
/// crun the call is allowed (the kernel then refuses it for want of the capability), and a profile
/// must mean here what it means there. An unconditional rule against a conditional one with another
/// action says two things at once that no reading reconciles, and is refused.
#[derive(Default)]
struct Earlier<'a> {
    rules: std::collections::HashMap<&'a str, Vec<&'a Rule>>,
}

/// Whether a system call's rule goes into the filter.
#[derive(Debug, PartialEq, Eq)]
enum Keep {
    This,
    /// An earlier unconditional rule holds, as in libseccomp.
    First,
}

impl<'a> Earlier<'a> {
    fn check(&mut self, name: &'a str, rule: &'a Rule, origin: &str) -> Result<Keep, SeccompError> {
        let before = self.rules.entry(name).or_default();
        let unconditional = rule.alternatives.is_empty();
        let others: Vec<&&Rule> = before.iter().filter(|e| e.action != rule.action).collect();
        if unconditional && !others.is_empty() && others.iter().all(|e| e.alternatives.is_empty()) {
            return Ok(Keep::First);
        }
        let clash = before
            .iter()
            .find(|e| e.action != rule.action && (unconditional || e.alternatives.is_empty()));
        if let Some(clash) = clash {
            return Err(SeccompError::Conflict {
                profile: origin.to_owned(),
                place: rule.place.clone(),
                syscall: name.to_owned(),
                earlier: clash.place.clone(),
            });
        }
        before.push(rule);
        Ok(Keep::This)
    }
}

/// One system call's rule: unconditional, or one libseccomp rule per alternative.
fn add_rule(
    context: &mut ScmpFilterContext,
    rule: &Rule,
    syscall: ScmpSyscall,
) -> Result<(), libseccomp::error::SeccompError> {
    if rule.alternatives.is_empty() {
        context.add_rule(rule.action, syscall)?;
    }
    for conditions in &rule.alternatives {
        context.add_rule_conditional(rule.action, syscall, conditions)?;
    }
    Ok(())
}

/// The program libseccomp generates, through a memfd.
fn export(context: &ScmpFilterContext) -> io::Result<Vec<libc::sock_filter>> {
    let fd = memfd_create(c"combined-seccomp", MFdFlags::MFD_CLOEXEC)?;
    context.export_bpf(&fd).map_err(io::Error::other)?;
    let mut file = File::from(fd);
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    decode(&bytes)
}

/// Instructions from their bytes: `struct sock_filter` is 8 bytes in the machine's byte order.
fn decode(bytes: &[u8]) -> io::Result<Vec<libc::sock_filter>> {
    const SIZE: usize = size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % SIZE != 0 {
        return Err(io::Error::other(format!(
            "libseccomp wrote {} bytes, not a whole number of {SIZE}-byte instructions",
            bytes.len()
        )));
    }
    let instruction = |b: &[u8]| libc::sock_filter {
        code: u16::from_ne_bytes([b[0], b[1]]),
        jt: b[2],
        jf: b[3],
        k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
    };
    Ok(bytes.chunks_exact(SIZE).map(instruction).collect())
}

/// Why a seccomp setting could not be turned into a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("--security-opt seccomp= needs a value: unconfined, default, or the path of a profile")]
    NoSetting,
    #[error("cannot read seccomp profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "seccomp profile {} is not a Docker or OCI seccomp profile: {source} (see \
         https://docs.docker.com/engine/security/seccomp/)",
        path.display()
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{profile}: {place}: unknown action {action:?}: use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, \
         SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_TRACE or \
         SCMP_ACT_LOG"
    )]
    UnknownAction {
        profile: String,
        place: String,
        action: String,
    },
    #[error(
        "{profile}: {place}: SCMP_ACT_NOTIFY hands calls to a seccomp agent, and combined runs none: use \
         SCMP_ACT_ERRNO to refuse the call, or SCMP_ACT_ALLOW"
    )]
    Notify { profile: String, place: String },
    #[error(
        "{profile}: {place}: unknown comparison {op:?}: use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, \
         SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE or SCMP_CMP_MASKED_EQ"
    )]
    UnknownOp {
        profile: String,
        place: String,
        op: String,
    },
    #[error("{profile}: unknown architecture {arch:?}: use libseccomp's names, such as SCMP_ARCH_X86_64")]
    UnknownArch { profile: String, arch: String },
    #[error("{profile}: {place}: {problem}")]
    Invalid {
        profile: String,
        place: String,
        problem: String,
    },
    #[error(
        "{profile} has minKernel conditions, and the running kernel's version cannot be read from \
         /proc/sys/kernel/osrelease: mount /proc"
    )]
    KernelVersion { profile: String },
    #[error(
        "{profile}: {place}: {syscall} already has a rule with another action in {earlier}, and one of \
         them has no argument conditions, so libseccomp would silently keep only one: keep one action, or \
         give both rules conditions on the arguments"
    )]
    Conflict {
        profile: String,
        place: String,
        syscall: String,
        earlier: String,
    },
    #[error("{profile}: {place}: libseccomp refused the rule for {syscall}: {source}")]
    Rule {
        profile: String,
        place: String,
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("{profile}: libseccomp cannot {what}: {source}")]
    Libseccomp {
        profile: String,
        what: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("cannot export the compiled seccomp filter: {source}")]
    Export {
        #[source]
        source: io::Error,
    },
    #[error(
        "{profile} compiles to {instructions} BPF instructions, more than the kernel's {MAX_INSTRUCTIONS}: \
         give it fewer rules or conditions"
    )]
    TooLong { profile: String, instructions: usize },
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use caps::Capability;
    use libseccomp::ScmpAction;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    use super::profile::Kernel;
    use super::profile::tests::host;
    use super::*;
    use crate::caps::DEFAULT_CAPS;

    fn default_caps() -> CapsHashSet {
        DEFAULT_CAPS.into_iter().collect()
    }

    fn default_profile() -> Profile {
        serde_json::from_str(DEFAULT_PROFILE).expect("the default profile parses")
    }

    /// Compiles a profile given as text, for a container with Docker's default capabilities.
    fn compile_text(json: &str) -> Result<(Filter, Vec<String>), SeccompError> {
        let profile: Profile = serde_json::from_str(json).expect("valid JSON");
        build(&profile, &Host::this(&default_caps()), "test profile")
    }

    /// A file `profile.json` in a directory of its own, removed on drop.
    struct ProfileFile(tempfile::TempDir);

    impl ProfileFile {
        fn new(name: &str, json: &str) -> ProfileFile {
            let dir = tempfile::Builder::new()
                .prefix(&format!("combined-seccomp-{name}-"))
                .tempdir()
                .expect("create a directory");
            std::fs::write(dir.path().join("profile.json"), json).expect("write the profile");
            ProfileFile(dir)
        }

        fn setting(&self) -> Setting {
            Setting::Profile(self.0.path().join("profile.json"))
        }
    }

    // ---- settings -------------------------------------------------------------------------------------

    #[test]
    fn settings_parse_like_docker() {
        assert_eq!("unconfined".parse::<Setting>().unwrap(), Setting::Unconfined);
        assert_eq!("default".parse::<Setting>().unwrap(), Setting::Default);
        assert_eq!("builtin".parse::<Setting>().unwrap(), Setting::Default);
        assert_eq!(
            "/etc/profile.json".parse::<Setting>().unwrap(),
            Setting::Profile("/etc/profile.json".into())
        );
        let empty = "".parse::<Setting>().unwrap_err().to_string();
        assert!(empty.contains("unconfined, default, or the path"), "{empty}");
    }

    #[test]
    fn unconfined_compiles_to_no_filter() {
        assert!(compile(&Setting::Unconfined, &default_caps()).unwrap().is_none());
    }

    // ---- the default profile --------------------------------------------------------------------------

    #[test]
    fn the_default_profile_compiles_for_any_capability_set() {
        let all: CapsHashSet = caps::all();
        for caps in [default_caps(), CapsHashSet::new(), all] {
            let filter = compile(&Setting::Default, &caps).unwrap().expect("a filter");
            assert!(
                filter.len() > 100 && filter.len() <= MAX_INSTRUCTIONS,
                "{filter:?}"
            );
            assert!(!filter.is_empty());
        }
    }

    #[test]
    fn the_default_profile_resolves_every_name_this_libseccomp_knows() {
        let (_, skipped) = build(&default_profile(), &Host::this(&default_caps()), "default").unwrap();
        // Only calls newer than the library, or other architectures' own, may be skipped.
        for name in &skipped {
            assert!(!["read", "clone", "socket", "ioctl", "personality", "mkdir"].contains(&name.as_str()));
        }
    }

    /// The names that get `action` on a host with `caps`.
    fn names_with(caps: &[&str], action: ScmpAction) -> HashSet<String> {
        let plan = default_profile()
            .plan(&host(caps, Kernel(6, 1)), "default")
            .unwrap();
        super::profile::tests::names_with(&plan, action)
    }

    #[test]
    fn namespaces_mounts_bpf_and_perf_need_their_capabilities() {
        let plain = names_with(&[], ScmpAction::Allow);
        let admin = names_with(&["CAP_SYS_ADMIN"], ScmpAction::Allow);
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "bpf",
            "perf_event_open",
            "sethostname",
            "clone3",
        ] {
            assert!(!plain.contains(name) && admin.contains(name), "{name}");
        }
        assert!(names_with(&["CAP_BPF"], ScmpAction::Allow).contains("bpf"));
        assert!(names_with(&["CAP_PERFMON"], ScmpAction::Allow).contains("perf_event_open"));
        assert!(names_with(&["CAP_SYSLOG"], ScmpAction::Allow).contains("syslog"));
        // clone3 gets ENOSYS without CAP_SYS_ADMIN, so that the C library falls back to clone.
        assert!(names_with(&[], ScmpAction::Errno(libc::ENOSYS)).contains("clone3"));
        assert!(!names_with(&["CAP_SYS_ADMIN"], ScmpAction::Errno(libc::ENOSYS)).contains("clone3"));
    }

    #[test]
    fn some_calls_are_never_allowed() {
        let everything: Vec<String> = caps::all().iter().map(ToString::to_string).collect();
        let everything: Vec<&str> = everything.iter().map(String::as_str).collect();
        let allowed = names_with(&everything, ScmpAction::Allow);
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "kexec_load",
            "kexec_file_load",
            "userfaultfd",
            "io_uring_setup",
        ] {
            assert!(!allowed.contains(name), "{name} is allowed");
        }
        assert!(!names_with(&[], ScmpAction::Allow).contains("open_by_handle_at"));
        assert!(names_with(&["CAP_DAC_READ_SEARCH"], ScmpAction::Allow).contains("open_by_handle_at"));
    }

    #[test]
    fn ptrace_is_allowed_from_linux_4_8_as_in_docker() {
        let on = |kernel| {
            let plan = default_profile().plan(&host(&[], kernel), "default").unwrap();
            plan.rules
                .iter()
                .any(|r| r.action == ScmpAction::Allow && r.names.iter().any(|n| n == "ptrace"))
        };
        assert!(on(Kernel(4, 8)));
        assert!(!on(Kernel(4, 7)));
    }

    /// The default profile's masked alternatives for `name`, as (mask, value) pairs.
    fn masked_alternatives(name: &str) -> Vec<(u64, u64)> {
        #[derive(serde::Deserialize)]
        struct Entry {
            names: Vec<String>,
            #[serde(default)]
            args: Vec<Arg>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Arg {
            value: u64,
            #[serde(default)]
            value_two: u64,
            op: String,
        }
        let mut profile: serde_json::Value = serde_json::from_str(DEFAULT_PROFILE).unwrap();
        let syscalls: Vec<Entry> = serde_json::from_value(profile["syscalls"].take()).unwrap();
        let entry = syscalls
            .iter()
            .find(|e| e.names == [name])
            .expect("an entry for the call alone");
        assert!(
            entry
                .args
                .iter()
                .all(|a| a.op == "SCMP_CMP_MASKED_EQ" && a.value <= u64::from(u32::MAX))
        );
        entry.args.iter().map(|a| (a.value, a.value_two)).collect()
    }

    /// Every value the masked alternatives could confuse: the low 16 bits in full, the refused values
    /// with each bit of the high 48 set, and a spread of others.
    fn values_near(refused: &[u64]) -> Vec<u64> {
        let mut values: Vec<u64> = (0..=0xFFFF).collect();
        for &r in refused {
            values.extend((16..64).map(|bit| r | 1 << bit));
            values.extend((0..32).map(|bit| r ^ 1 << bit));
        }
        values.extend((0..64).map(|bit| 1u64 << bit));
        values.push(u64::MAX);
        values
    }

    #[test]
    fn socket_refuses_af_alg_and_af_vsock_whatever_the_high_bits() {
        let refused = [libc::AF_ALG as u64, libc::AF_VSOCK as u64];
        let alternatives = masked_alternatives("socket");
        assert_eq!(alternatives.len(), 32);
        for family in values_near(&refused) {
            let passes = alternatives.iter().any(|(mask, value)| family & mask == *value);
            assert_eq!(
                passes,
                !refused.contains(&(family & 0xFFFF_FFFF)),
                "family {family:#x}"
            );
        }
    }

    #[test]
    fn ioctl_refuses_tiocsti_and_tioclinux_whatever_the_high_bits() {
        #[allow(clippy::useless_conversion, reason = "a request is a u32 on 32-bit machines")]
        let refused = [u64::from(libc::TIOCSTI), u64::from(libc::TIOCLINUX)];
        let alternatives = masked_alternatives("ioctl");
        assert_eq!(alternatives.len(), 32);
        for request in values_near(&refused) {
            let passes = alternatives.iter().any(|(mask, value)| request & mask == *value);
            assert_eq!(
                passes,
                !refused.contains(&(request & 0xFFFF_FFFF)),
                "request {request:#x}"
            );
        }
    }

    // ---- other profiles -------------------------------------------------------------------------------

    #[test]
    fn a_docker_format_profile_compiles() {
        let (filter, skipped) = compile_text(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
                "syscalls": [
                    {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "test"},
                    {"name": "mkdir", "action": "SCMP_ACT_KILL_PROCESS",
                     "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
                    {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
                ]
            }"#,
        )
        .unwrap();
        assert!(filter.len() > 5, "{filter:?}");
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn an_oci_shaped_profile_compiles() {
        let (filter, _) = compile_text(
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [
                    {"names": ["read", "write", "exit_group", "chown32"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
                ]
            }"#,
        )
        .unwrap();
        assert_eq!(filter.flags, libc::SECCOMP_FILTER_FLAG_LOG);
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let (_, skipped) = compile_text(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["no_such_call", "getcwd"], "action": "SCMP_ACT_ERRNO"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(skipped, ["no_such_call"]);
    }

    #[test]
    fn rules_with_the_default_action_are_skipped() {
        // libseccomp would refuse both rules (EACCES): they say what the default says.
        compile_text(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]}"#,
        )
        .unwrap();
    }

    // ---- refusals -------------------------------------------------------------------------------------

    fn refusal(json: &str) -> SeccompError {
        let file = ProfileFile::new("refusal", json);
        compile(&file.setting(), &default_caps()).expect_err("a refused profile")
    }

    #[test]
    fn notify_is_refused() {
        let err = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}
            ]}"#,
        );
        assert!(matches!(err, SeccompError::Notify { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("syscalls[0] (mkdir, mkdirat)"), "{text}");
        assert!(text.contains("combined runs none"), "{text}");
        let default = refusal(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
        assert!(matches!(default, SeccompError::Notify { ref place, .. } if place == "defaultAction"));
    }

    #[test]
    fn unknown_actions_ops_and_arches_are_refused() {
        let action = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}"#,
        );
        assert!(matches!(action, SeccompError::UnknownAction { .. }), "{action:?}");
        assert!(action.to_string().contains("\"SCMP_ACT_DENY\""), "{action}");

        let op = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_MASKED_NE"}]}]}"#,
        );
        assert!(matches!(op, SeccompError::UnknownOp { .. }), "{op:?}");
        let text = op.to_string();
        assert!(
            text.contains("syscalls[0] (mkdir) args[0]") && text.contains("SCMP_CMP_MASKED_NE"),
            "{text}"
        );

        let arch = refusal(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#);
        assert!(matches!(arch, SeccompError::UnknownArch { .. }), "{arch:?}");
    }

    #[test]
    fn malformed_profiles_are_refused() {
        for (json, says) in [
            (r#"{"defaultAction": "SCMP_ACT_ALLOW""#, "EOF"),
            (r#"{"syscalls": []}"#, "missing field `defaultAction`"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRett": 1}"#,
                "unknown field `defaultErrnoRett`",
            ),
        ] {
            let err = refusal(json);
            assert!(matches!(err, SeccompError::Parse { .. }), "{err:?}");
            let text = err.to_string();
            assert!(text.contains("profile.json") && text.contains(says), "{text}");
            assert!(
                std::error::Error::source(&err).is_some(),
                "the serde error is kept as the source"
            );
        }
        for (json, says) in [
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_LOG"}]}"#,
                "both name and names",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                 "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}]}"#,
                "both architectures and archMap",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_LOG",
                 "includes": {"minKernel": "4"}}]}"#,
                "minKernel \"4\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
                "index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}]}"#,
                "needs the names",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#,
                "not supported",
            ),
        ] {
            let err = refusal(json);
            assert!(matches!(err, SeccompError::Invalid { .. }), "{err:?}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn an_unreadable_profile_is_refused_with_its_path() {
        let missing = Path::new("/nonexistent/combined/profile.json");
        let err = compile(&Setting::Profile(missing.into()), &default_caps()).unwrap_err();
        assert!(matches!(err, SeccompError::Read { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("cannot read seccomp profile /nonexistent/combined/profile.json: "),
            "{text}"
        );
        let dir = std::env::temp_dir();
        let err = compile(&Setting::Profile(dir), &default_caps()).unwrap_err();
        assert!(matches!(err, SeccompError::Read { .. }), "{err:?}");
    }

    #[test]
    fn a_rule_libseccomp_refuses_names_its_system_call() {
        // The same conditions with two actions: libseccomp refuses the second (EEXIST).
        let err = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["rmdir"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]}"#,
        );
        assert!(
            matches!(err, SeccompError::Rule { ref syscall, .. } if syscall == "rmdir"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("syscalls[1] (rmdir): libseccomp refused the rule for rmdir"),
            "{err}"
        );
    }

    #[test]
    fn rules_libseccomp_would_silently_drop_are_refused_or_resolved_as_it_does() {
        let conditional = r#"{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 1, "value": 4294967295, "valueTwo": 21522, "op": "SCMP_CMP_MASKED_EQ"}]}"#;
        let unconditional = r#"{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW"}"#;
        for (first, second) in [(unconditional, conditional), (conditional, unconditional)] {
            let json =
                format!(r#"{{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [{first}, {second}]}}"#);
            let err = compile_text(&json).unwrap_err();
            assert!(
                matches!(err, SeccompError::Conflict { ref earlier, .. } if earlier == "syscalls[0] (ioctl)")
            );
        }
        // Two unconditional rules: the first holds, as in libseccomp (and so runc and crun).
        let twice = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#;
        let first_holds = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#;
        assert_eq!(
            compile_text(twice).unwrap().0.program,
            compile_text(first_holds).unwrap().0.program
        );
        // The same action twice merges; so do conditional rules with different conditions.
        compile_text(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["rmdir"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
            ]}"#,
        )
        .unwrap();
    }

    #[test]
    fn a_program_over_the_kernels_limit_is_refused() {
        // 400 rules comparing all six arguments: about twice what it takes to pass the kernel's 4,096
        // instructions, and far quicker for libseccomp to compile than one argument's 5,000
        // alternatives (which the emulated CPU of `cargo xtask test-vm` took 4 s over).
        let rules: Vec<String> = (0..400)
            .map(|v| {
                let args: Vec<String> = (0..6)
                    .map(|i| format!(r#"{{"index": {i}, "value": {}, "op": "SCMP_CMP_EQ"}}"#, v * 6 + i))
                    .collect();
                format!(
                    r#"{{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{}]}}"#,
                    args.join(",")
                )
            })
            .collect();
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]}}"#,
            rules.join(",")
        );
        let err = compile_text(&json).unwrap_err();
        assert!(matches!(err, SeccompError::TooLong { .. }), "{err:?}");
    }

    // ---- loading, in a forked child -------------------------------------------------------------------

    /// Forks; the child sets no_new_privs, loads `filter`, runs `probe` and exits with what it
    /// returns. The test harness has other threads, so the child may only make system calls: `probe`
    /// must not allocate, print or panic.
    fn exit_code_under(filter: &Filter, probe: fn() -> i32) -> i32 {
        // SAFETY: the child makes only async-signal-safe system calls (prctl, seccomp, the probe's raw
        // calls) and leaves with _exit, so locks held by the harness's other threads cannot block it.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let loaded = nix::sys::prctl::set_no_new_privs().and_then(|()| filter.install());
                let code = if loaded.is_ok() { probe() } else { 100 };
                // SAFETY: _exit ends the child at once, running none of the harness's exit handlers or
                // destructors, which belong to the parent.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => code,
                other => panic!("the child did not exit: {other:?}"),
            },
        }
    }

    /// The errno a raw system call's return value leaves, 0 for success.
    fn errno_of(rc: libc::c_long) -> i32 {
        if rc < 0 { Errno::last_raw() } else { 0 }
    }

    /// Checks `(errno got, errno wanted)` pairs; 0 when all match, else the first mismatch's number.
    fn first_mismatch(checks: &[(i32, i32)]) -> i32 {
        checks
            .iter()
            .position(|(got, want)| got != want)
            .map_or(0, |i| i as i32 + 1)
    }

    /// What the default filter does, seen from inside: refusals (EPERM, ENOSYS for clone3) come from the
    /// filter, EBADF (fd -1) and EINVAL from the kernel behind it.
    fn default_filter_probe() -> i32 {
        let high = 1i64 << 32;
        let syscall = |nr: libc::c_long, a: i64, b: i64| {
            // SAFETY: every call below passes integers and null pointers only; the kernel writes nothing.
            errno_of(unsafe { libc::syscall(nr, a, b, 0, 0, 0) })
        };
        let ioctl = |request: i64| syscall(libc::SYS_ioctl, -1, request);
        let socket = |family: i64| syscall(libc::SYS_socket, family, libc::SOCK_STREAM as i64);
        first_mismatch(&[
            (syscall(libc::SYS_getpid, 0, 0), 0),
            (syscall(libc::SYS_keyctl, 0, -4), libc::EPERM),
            (ioctl(libc::TIOCSTI as i64), libc::EPERM),
            (ioctl(high | libc::TIOCSTI as i64), libc::EPERM),
            (ioctl(libc::TIOCLINUX as i64), libc::EPERM),
            (ioctl(libc::TCGETS as i64), libc::EBADF),
            (ioctl(high | libc::TCGETS as i64), libc::EBADF),
            (socket(libc::AF_VSOCK as i64), libc::EPERM),
            (socket(high | libc::AF_VSOCK as i64), libc::EPERM),
            (socket(libc::AF_ALG as i64), libc::EPERM),
            (syscall(libc::SYS_clone3, 0, 0), libc::ENOSYS),
            (syscall(libc::SYS_personality, 0x0040000, 0), libc::EPERM),
            (
                syscall(libc::SYS_unshare, libc::CLONE_NEWUTS as i64, 0),
                libc::EPERM,
            ),
            (syscall(libc::SYS_kexec_load, 0, 0), libc::EPERM),
            (syscall(libc::SYS_userfaultfd, 0, 0), libc::EPERM),
        ])
    }

    #[test]
    fn the_default_filter_loads_and_refuses() {
        let filter = compile(&Setting::Default, &default_caps())
            .unwrap()
            .expect("a filter");
        assert_eq!(
            exit_code_under(&filter, default_filter_probe),
            0,
            "check number (0: all passed)"
        );
    }

    fn getcwd_probe() -> i32 {
        // SAFETY: getcwd with a null buffer of size 0 writes nothing (it fails with ERANGE if allowed).
        let cwd = errno_of(unsafe { libc::syscall(libc::SYS_getcwd, 0, 0) });
        // SAFETY: getpid takes no arguments.
        let pid = errno_of(unsafe { libc::syscall(libc::SYS_getpid) });
        first_mismatch(&[(cwd, libc::EACCES), (pid, 0)])
    }

    #[test]
    fn a_custom_profile_loads_and_refuses_what_it_names() {
        let file = ProfileFile::new(
            "getcwd",
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        );
        let filter = compile(&file.setting(), &default_caps())
            .unwrap()
            .expect("a filter");
        assert_eq!(
            exit_code_under(&filter, getcwd_probe),
            0,
            "check number (0: all passed)"
        );
    }

    #[test]
    fn the_debug_form_counts_instructions() {
        let filter = compile(&Setting::Default, &[Capability::CAP_CHOWN].into_iter().collect())
            .unwrap()
            .unwrap();
        assert_eq!(
            format!("{filter:?}"),
            format!("Filter {{ instructions: {}, flags: 0 }}", filter.len())
        );
    }
}
