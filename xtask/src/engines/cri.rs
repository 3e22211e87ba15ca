//! Kubernetes' CRI: containerd's CRI plugin with a runtime handler `combined` whose runc shim runs the
//! runtime under test (`BinaryName`), driven by crictl (built from the project's cri-tools snapshot)
//! exactly as a node's kubelet drives it: a pod sandbox (`runp`), two containers in it that join the
//! sandbox's namespaces by path and share its PID namespace, `exec`, `exec -it`, `logs`, and
//! `stopp` and `rmp` leaving nothing behind. The pod gets a network namespace of its own from a CNI
//! configuration of the run's own (a bridge with no route out, see [`pod_network`]), so its
//! containers reach each other on localhost and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::json;

use super::containerd;
use super::terminal::Terminal;
use super::{Context, Report, ensure_installed, eventually, ok, ran};

const ENGINE: &str = "cri";
const SCENARIOS: [&str; 6] = [
    "runp: a pod sandbox",
    "create + start two containers",
    "shared PID namespace",
    "localhost between containers",
    "exec, exec -it, logs",
    "stopp + rmp: nothing left",
];
/// Where the project keeps the cri-tools snapshot (../shared/conformance/, beside the workspace).
const CRI_TOOLS: &str = "../shared/conformance/cri-tools-1.26.1.tar.gz";

/// Builds crictl from the snapshot, offline (its modules are vendored), once: kept in `target/engines`.
fn crictl_binary(root: &Path) -> anyhow::Result<PathBuf> {
    let out = crate::util::target_dir(root).join("engines/crictl-1.26.1");
    let binary = out.join("crictl");
    if binary.is_file() {
        return Ok(binary);
    }
    let tarball = root.join(CRI_TOOLS);
    if !tarball.is_file() {
        bail!(
            "no cri-tools snapshot at {} (see ../shared/conformance/README.md)",
            tarball.display()
        );
    }
    ensure_installed("go", "golang-go").map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&out)?;
    let file = std::fs::File::open(&tarball)?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&out)
        .with_context(|| format!("cannot unpack {}", tarball.display()))?;
    let source = out.join("cri-tools-1.26.1");
    let mut build = Command::new("go");
    build
        .current_dir(&source)
        .args(["build", "-o"])
        .arg(&binary)
        .arg("./cmd/crictl")
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("GOCACHE", out.join("go-cache"))
        .env("GOPATH", out.join("go-path"));
    ok(&mut build, 600)?;
    Ok(binary)
}

/// The CRI plugin's part of containerd's configuration: the `combined` handler, the local image as the
/// sandbox's, no OOM score below the runtime's own (no CAP_SYS_RESOURCE here), and CNI from `dir`.
fn plugin_config(context: &Context, dir: &Path, image: &str) -> String {
    let cri = "[plugins.\"io.containerd.grpc.v1.cri\"]";
    format!(
        r#"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{opt}"
  {cri}
    sandbox_image = "{image}"
    restrict_oom_score_adj = true
    enable_selinux = false
    disable_apparmor = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "combined"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.combined]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.combined.options]
          BinaryName = "{runtime}"
          Root = "{runc_root}"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{cni_conf}"
"#,
        opt = dir.join("opt").display(),
        runtime = context.runtime.display(),
        runc_root = dir.join("runc-root").display(),
        cni_conf = dir.join("cni").display(),
    )
}

/// The bridge the pod's network hangs from, on the host; removed after the run (the `bridge` plugin
/// leaves it).
const BRIDGE: &str = "xtask-cri0";

/// The pod's network namespace, as a node's CNI gives it one: containerd needs an `eth0` from the
/// plugin, so a veth to a bridge of the run's own with a fixed address (the `static` IPAM plugin, which
/// keeps no state on the host), no gateway, no masquerading and no route out: its containers meet on
/// localhost, and nothing reaches the outside.
fn pod_network(dir: &Path) -> anyhow::Result<()> {
    let conf = dir.join("cni");
    std::fs::create_dir_all(&conf)?;
    let network = json!({
        "cniVersion": "0.4.0",
        "name": "xtask-pods",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": false, "ipMasq": false,
             "ipam": {"type": "static", "addresses": [{"address": "10.254.77.2/24"}]}},
            {"type": "loopback"}
        ]
    });
    std::fs::write(conf.join("10-xtask-pods.conflist"), network.to_string())?;
    Ok(())
}

struct Crictl {
    binary: PathBuf,
    socket: PathBuf,
}

impl Crictl {
    fn cmd(&self, args: &[&str]) -> Command {
        let endpoint = format!("unix://{}", self.socket.display());
        let mut cmd = Command::new(&self.binary);
        cmd.args([
            "--runtime-endpoint",
            &endpoint,
            "--image-endpoint",
            &endpoint,
            "--timeout",
            "60s",
        ])
        .args(args);
        cmd
    }

    /// Runs crictl and returns its trimmed stdout.
    fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        Ok(ok(&mut self.cmd(args), 120)?.stdout.trim().to_owned())
    }
}

fn run_all(report: &mut Report, dir: &Path, crictl: &Crictl) -> anyhow::Result<()> {
    let files = dir.join("specs");
    std::fs::create_dir_all(&files)?;
    let pod = files.join("pod.json");
    let pod_spec = json!({
        "metadata": {"name": "xtask-pod", "namespace": "default", "uid": "xtask-pod-uid", "attempt": 1},
        "hostname": "xtask-pod",
        "log_directory": dir.join("logs").to_string_lossy(),
        // The pod's own network namespace (POD), its containers sharing its PID namespace (POD).
        "linux": {"cgroup_parent": "/xtask-kubepods/pod1",
                  "security_context": {"namespace_options": {"network": 0, "pid": 0}}}
    });
    std::fs::write(&pod, pod_spec.to_string())?;
    let container = |name: &str, script: &str| -> anyhow::Result<PathBuf> {
        let path = files.join(format!("{name}.json"));
        let spec = json!({
            "metadata": {"name": name},
            "image": {"image": containerd::IMAGE},
            "command": ["sh", "-c", script],
            "log_path": format!("{name}.log"),
            "linux": {"security_context": {"namespace_options": {"network": 0, "pid": 0}}}
        });
        std::fs::write(&path, spec.to_string())?;
        Ok(path)
    };
    let mut pod_id = String::new();
    report.scenario(ENGINE, SCENARIOS[0], || {
        pod_id = crictl.ok(&["runp", "--runtime", "combined", &pod.to_string_lossy()])?;
        let state = crictl.ok(&[
            "inspectp",
            "--output",
            "go-template",
            "--template",
            "{{.status.state}}",
            &pod_id,
        ])?;
        if state != "SANDBOX_READY" {
            bail!("the sandbox is {state}");
        }
        Ok(())
    });
    if pod_id.is_empty() {
        bail!("no pod sandbox to run containers in");
    }
    let mut ids = Vec::new();
    report.scenario(ENGINE, SCENARIOS[1], || {
        for (name, script) in [
            (
                "first",
                "echo hello from first; nc -l -p 8080 -e echo reply-from-first; exec sleep 3600",
            ),
            ("second", "echo hello from second; exec sleep 3600"),
        ] {
            let spec = container(name, script)?;
            let id = crictl.ok(&["create", &pod_id, &spec.to_string_lossy(), &pod.to_string_lossy()])?;
            crictl.ok(&["start", &id])?;
            ids.push(id);
        }
        for id in &ids {
            eventually("the container runs", 30, || {
                crictl
                    .ok(&[
                        "inspect",
                        "--output",
                        "go-template",
                        "--template",
                        "{{.status.state}}",
                        id,
                    ])
                    .is_ok_and(|s| s == "CONTAINER_RUNNING")
            })?;
        }
        Ok(())
    });
    if ids.len() != 2 {
        bail!("the pod's containers did not start");
    }
    let (first, second) = (ids[0].clone(), ids[1].clone());
    report.scenario(ENGINE, SCENARIOS[2], || {
        let seen = crictl.ok(&["exec", &second, "ps", "-o", "comm"])?;
        // The sandbox's sleep, the first container's nc and the second's sleep: one PID namespace.
        if !seen.contains("nc") || seen.matches("sleep").count() < 2 {
            bail!("the second container does not see the pod's other processes: {seen:?}");
        }
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[3], || {
        let reply = crictl.ok(&["exec", &second, "sh", "-c", "nc -w 5 127.0.0.1 8080 </dev/null"])?;
        if !reply.contains("reply-from-first") {
            bail!("the first container's port is not reachable on localhost: {reply:?}");
        }
        let links = crictl.ok(&["exec", &second, "ls", "/sys/class/net"])?;
        if links.split_whitespace().collect::<Vec<_>>() != ["eth0", "lo"] {
            bail!("the pod's network namespace should hold its eth0 and lo: {links:?}");
        }
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[4], || {
        let out = ran(
            &mut crictl.cmd(&["exec", &first, "sh", "-c", "echo in exec; exit 3"]),
            60,
        )?;
        out.expect_output("in exec")?;
        if out.code == Some(0) {
            bail!("exec's exit status 3 was lost: {out}");
        }
        let mut term = Terminal::spawn(
            crictl.cmd(&["exec", "-it", &first, "sh", "-c", "tty; echo DONE"]),
            24,
            80,
        )?;
        term.expect("DONE", 60)?;
        if !term.seen.contains("/dev/pts/") {
            bail!("exec -it got no pty: {:?}", term.seen);
        }
        term.finish(30)?;
        crictl
            .ok(&["logs", &first])?
            .contains("hello from first")
            .then_some(())
            .context("logs lack the first container's output")?;
        Ok(())
    });
    report.scenario(ENGINE, SCENARIOS[5], || {
        crictl.ok(&["stopp", &pod_id])?;
        crictl.ok(&["rmp", &pod_id])?;
        let pods = crictl.ok(&["pods", "-q"])?;
        let containers = crictl.ok(&["ps", "-a", "-q"])?;
        if !pods.is_empty() || !containers.is_empty() {
            bail!("left: pods {pods:?}, containers {containers:?}");
        }
        containerd::no_tasks_left(dir, "k8s.io")
    });
    Ok(())
}

pub fn run(context: &Context, report: &mut Report) {
    if let Err(why) = ensure_installed("containerd", "containerd") {
        report.not_run(ENGINE, &SCENARIOS, &why);
        return;
    }
    if !Path::new("/usr/lib/cni/loopback").is_file() {
        if let Err(why) = ensure_installed("podman", "containernetworking-plugins") {
            report.not_run(ENGINE, &SCENARIOS, &why);
            return;
        }
    }
    let root = crate::util::workspace_root();
    let binary = match crictl_binary(&root) {
        Ok(binary) => binary,
        Err(e) => {
            report.not_run(ENGINE, &SCENARIOS, &format!("no crictl: {e:#}"));
            return;
        }
    };
    let dir = context.dir.join("cri");
    let _network = NetworkLeftovers::note();
    let started = pod_network(&dir).and_then(|()| {
        let daemon = containerd::start(&dir, &plugin_config(context, &dir, containerd::IMAGE))?;
        containerd::import_image(context, &dir, "k8s.io")?;
        Ok(daemon)
    });
    let daemon = match started {
        Ok(daemon) => daemon,
        Err(e) => {
            report.failed_rest(
                ENGINE,
                &SCENARIOS,
                &format!("containerd's CRI could not be set up: {e:#}"),
            );
            return;
        }
    };
    let crictl = Crictl {
        binary,
        socket: dir.join("containerd.sock"),
    };
    if let Err(e) = run_all(report, &dir, &crictl) {
        report.failed_rest(ENGINE, &SCENARIOS, &format!("{e:#}"));
    }
    // Whatever a failed scenario left: every pod, stopped and removed.
    if let Ok(pods) = crictl.ok(&["pods", "-q"]) {
        for pod in pods.lines() {
            let _ = crictl.ok(&["stopp", pod]);
            let _ = crictl.ok(&["rmp", pod]);
        }
    }
    drop(daemon);
}

/// What the pod network leaves on the host, removed when dropped: the `bridge` plugin's bridge, and the
/// cache of network results containerd's CNI library makes in /var/lib/cni when it is missing.
struct NetworkLeftovers {
    had_cache: bool,
}

const CNI_CACHE: &str = "/var/lib/cni";

impl NetworkLeftovers {
    fn note() -> NetworkLeftovers {
        NetworkLeftovers {
            had_cache: Path::new(CNI_CACHE).exists(),
        }
    }
}

impl Drop for NetworkLeftovers {
    fn drop(&mut self) {
        let _ = ran(Command::new("ip").args(["link", "delete", BRIDGE]), 30);
        if !self.had_cache {
            let _ = std::fs::remove_dir_all(CNI_CACHE);
        }
    }
}
