//! The QEMU command line and the choice of accelerator (qemu-system-x86_64(1); the QEMU docs on
//! "Direct Linux Boot", virtio-serial and 9p `-virtfs`). KVM runs the guest at native speed, but only
//! where `/dev/kvm` opens read-write and the CPU advertises vmx (Intel) or svm (AMD) in
//! `/proc/cpuinfo`; even then some hosts expose a paravirtual /dev/kvm that cannot boot a stock
//! kernel, so a KVM boot that shows no boot marker in time falls back to software emulation (TCG).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the guest's CPU is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's software emulation (the Tiny Code Generator): slow, but runs anywhere.
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What the host offers for KVM.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvmSupport {
    /// `/dev/kvm` opened read-write.
    pub device_usable: bool,
    /// `/proc/cpuinfo` lists vmx or svm.
    pub cpu_has_vmx_or_svm: bool,
}

impl KvmSupport {
    /// Probes this host.
    pub fn probe() -> KvmSupport {
        let device_usable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        KvmSupport {
            device_usable,
            cpu_has_vmx_or_svm: cpu_flags_allow_kvm(&cpuinfo),
        }
    }
}

/// Whether a `flags` line of `/proc/cpuinfo` has `vmx` or `svm`.
pub fn cpu_flags_allow_kvm(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

// ANCHOR: attempts
/// The accelerators to try, in order: what was asked for, else KVM (when the host allows it) with
/// TCG as the fallback, else TCG alone.
pub fn attempts(requested: Option<Accel>, host: KvmSupport) -> Vec<Accel> {
    match requested {
        Some(accel) => vec![accel],
        None if host.device_usable && host.cpu_has_vmx_or_svm => vec![Accel::Kvm, Accel::Tcg],
        None => vec![Accel::Tcg],
    }
}
// ANCHOR_END: attempts

/// How long a KVM boot may take to report that it booted before TCG is tried instead.
pub const KVM_BOOT_PROBE: Duration = Duration::from_secs(8);

/// The result port's name inside the guest (`/sys/class/virtio-ports/*/name`).
pub const RESULT_PORT: &str = "xtask.result";
/// The port that carries the tests' output as they run.
pub const OUTPUT_PORT: &str = "xtask.output";
/// The port on which the guest asks the host for its next job.
pub const CONTROL_PORT: &str = "xtask.control";
/// The 9p mount tag of the shared host root.
pub const ROOT_TAG: &str = "hostroot";

/// Everything a VM is built from.
#[derive(Debug)]
pub struct Machine {
    pub accel: Accel,
    /// An ELF vmlinux (PVH boot) or a bzImage.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub memory_mib: u32,
    /// Virtual CPUs; under TCG more than one runs each on a host thread of its own (multi-threaded
    /// TCG, QEMU's docs/devel/multi-thread-tcg.rst).
    pub vcpus: usize,
    /// Share the host's `/` read-only over 9p.
    pub share_root: bool,
    /// Where the result and output ports are written; `None` for an interactive shell.
    pub ports: Option<(PathBuf, PathBuf)>,
    /// The abstract unix socket the control port connects to; `None` for an interactive shell.
    pub control: Option<String>,
    /// Where the serial console goes; `None` for the terminal (interactive).
    pub console: Option<PathBuf>,
    /// Extra words for the kernel command line.
    pub append: Vec<String>,
}

// ANCHOR: command_line
/// The kernel command line. `quiet` keeps the (slow, emulated) UART nearly silent; `panic=-1` reboots
/// at once on a panic, which `-no-reboot` turns into QEMU exiting; `cryptomgr.notests` and
/// `audit=0` skip work the tests do not need; `nokaslr` saves relocating the kernel.
///
/// `norandmaps` turns off the randomization of user address spaces, and makes the tests three times
/// faster under TCG: QEMU up to 7.2 (Debian 12's) finds the code it already translated by virtual
/// address as well as physical, so a process whose binary and libraries lie at new random addresses
/// translates every instruction it runs again, and the tests start thousands of short-lived
/// processes. Without randomization each run of the same binary reuses the first one's translation
/// (QEMU 8.0 and later translate x86 code position-independently, `CF_PCREL`). No test depends on
/// the randomization, which the host's own runs keep.
///
/// `cgroup_no_v1=all` keeps every controller off cgroup v1, so the guest is a pure cgroup v2 host
/// (vm-init mounts cgroup2 on /sys/fs/cgroup): the CI machine's hybrid hierarchy tests the cgroup
/// chapter's v1 paths, the guest its v2 ones.
pub fn kernel_command_line(extra: &[String]) -> String {
    let mut words: Vec<String> = [
        "console=ttyS0",
        "quiet",
        "panic=-1",
        "cryptomgr.notests",
        "cgroup_no_v1=all",
        "nokaslr",
        "norandmaps",
        "audit=0",
        "rdinit=/init",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    words.extend(extra.iter().cloned());
    words.join(" ")
}
// ANCHOR_END: command_line

impl Machine {
    /// The arguments of `qemu-system-x86_64`.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        // `pc` rather than `microvm`: under TCG, microvm hangs calibrating the TSC.
        push(&["-machine", "pc"]);
        match (self.accel, self.vcpus) {
            (Accel::Kvm, _) => push(&["-accel", "kvm", "-cpu", "host"]),
            (Accel::Tcg, 1) => push(&["-accel", "tcg"]),
            (Accel::Tcg, _) => push(&["-accel", "tcg,thread=multi"]),
        }
        let (memory, vcpus) = (self.memory_mib.to_string(), self.vcpus.to_string());
        push(&["-m", &memory, "-smp", &vcpus]);
        push(&["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
        a.push("-kernel".into());
        a.push(self.kernel.clone().into());
        a.push("-initrd".into());
        a.push(self.initrd.clone().into());
        a.push("-append".into());
        a.push(kernel_command_line(&self.append).into());
        match &self.console {
            Some(path) => {
                a.push("-chardev".into());
                a.push(file_chardev("console", path));
                a.push("-serial".into());
                a.push("chardev:console".into());
            }
            // mon:stdio: the terminal is the guest's console; Ctrl-A x quits QEMU.
            None => a.extend(["-serial".into(), "mon:stdio".into()]),
        }
        a.extend(["-device".into(), "virtio-serial-pci,id=ports".into()]);
        if let Some((result, output)) = &self.ports {
            for (id, path, name) in [("result", result, RESULT_PORT), ("output", output, OUTPUT_PORT)] {
                a.push("-chardev".into());
                a.push(file_chardev(id, path));
                a.push("-device".into());
                a.push(format!("virtserialport,bus=ports.0,chardev={id},name={name}").into());
            }
        }
        if let Some(name) = &self.control {
            a.push("-chardev".into());
            a.push(format!("socket,id=control,path={name},abstract=on").into());
            a.push("-device".into());
            a.push(format!("virtserialport,bus=ports.0,chardev=control,name={CONTROL_PORT}").into());
        }
        if self.share_root {
            a.push("-virtfs".into());
            a.push(
                format!("local,path=/,mount_tag={ROOT_TAG},security_model=none,readonly=on,multidevs=remap")
                    .into(),
            );
        }
        a
    }
}

/// `file,id=ID,path=PATH` (a QEMU chardev that writes to a host file).
fn file_chardev(id: &str, path: &Path) -> OsString {
    let mut s = OsString::from(format!("file,id={id},path="));
    s.push(path);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO_INTEL: &str = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae vmx ept\n";
    const CPUINFO_PLAIN: &str = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae hypervisor\n";

    #[test]
    fn kvm_needs_the_cpu_flag() {
        assert!(cpu_flags_allow_kvm(CPUINFO_INTEL));
        assert!(cpu_flags_allow_kvm("flags : svm lm\n"));
        assert!(!cpu_flags_allow_kvm(CPUINFO_PLAIN));
        assert!(!cpu_flags_allow_kvm("model name : vmx in the name only\n"));
    }

    #[test]
    fn kvm_first_only_when_both_checks_pass() {
        let both = KvmSupport {
            device_usable: true,
            cpu_has_vmx_or_svm: true,
        };
        let no_device = KvmSupport {
            device_usable: false,
            cpu_has_vmx_or_svm: true,
        };
        let no_flag = KvmSupport {
            device_usable: true,
            cpu_has_vmx_or_svm: false,
        };
        assert_eq!(attempts(None, both), [Accel::Kvm, Accel::Tcg]);
        assert_eq!(attempts(None, no_device), [Accel::Tcg]);
        assert_eq!(attempts(None, no_flag), [Accel::Tcg]);
    }

    #[test]
    fn an_explicit_choice_is_the_only_attempt() {
        assert_eq!(attempts(Some(Accel::Kvm), KvmSupport::default()), [Accel::Kvm]);
        let both = KvmSupport {
            device_usable: true,
            cpu_has_vmx_or_svm: true,
        };
        assert_eq!(attempts(Some(Accel::Tcg), both), [Accel::Tcg]);
    }

    fn machine(accel: Accel) -> Machine {
        Machine {
            accel,
            kernel: "/cache/vmlinux".into(),
            initrd: "/work/initrd".into(),
            memory_mib: 512,
            vcpus: 1,
            share_root: true,
            ports: Some(("/work/result".into(), "/work/output".into())),
            control: Some("xtask-vm-1-tcg-1".into()),
            console: Some("/work/console".into()),
            append: vec!["xtask.mode=share".into()],
        }
    }

    fn joined(m: &Machine) -> String {
        m.args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn command_line_for_tcg_and_kvm() {
        let tcg = joined(&machine(Accel::Tcg));
        assert!(tcg.starts_with("-machine pc -accel tcg -m 512 -smp 1"), "{tcg}");
        assert!(!tcg.contains("-cpu host"));
        assert!(tcg.contains("-kernel /cache/vmlinux -initrd /work/initrd"));
        assert!(tcg.contains("console=ttyS0 quiet panic=-1"));
        assert!(tcg.contains(" cgroup_no_v1=all "));
        assert!(tcg.contains("nokaslr norandmaps audit=0 rdinit=/init xtask.mode=share"));
        assert!(tcg.contains("-chardev file,id=result,path=/work/result"));
        assert!(tcg.contains("virtserialport,bus=ports.0,chardev=result,name=xtask.result"));
        assert!(tcg.contains("-serial chardev:console"));
        assert!(tcg.contains("mount_tag=hostroot,security_model=none,readonly=on"));
        assert!(tcg.contains("-chardev socket,id=control,path=xtask-vm-1-tcg-1,abstract=on"));
        assert!(tcg.contains("virtserialport,bus=ports.0,chardev=control,name=xtask.control"));
        let kvm = joined(&machine(Accel::Kvm));
        assert!(
            kvm.starts_with("-machine pc -accel kvm -cpu host -m 512"),
            "{kvm}"
        );
    }

    #[test]
    fn several_vcpus_under_tcg_get_a_thread_each() {
        let mut m = machine(Accel::Tcg);
        m.vcpus = 2;
        let tcg = joined(&m);
        assert!(tcg.contains("-accel tcg,thread=multi -m 512 -smp 2"), "{tcg}");
        m.accel = Accel::Kvm;
        let kvm = joined(&m);
        assert!(kvm.contains("-accel kvm -cpu host -m 512 -smp 2"), "{kvm}");
    }

    #[test]
    fn an_interactive_machine_uses_the_terminal() {
        let mut m = machine(Accel::Tcg);
        m.console = None;
        m.ports = None;
        m.control = None;
        m.share_root = false;
        let args = joined(&m);
        assert!(args.contains("-serial mon:stdio"));
        assert!(!args.contains("virtserialport") && !args.contains("-virtfs"));
    }
}
