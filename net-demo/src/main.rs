//! `cargo run -p net-demo`: the network namespace chapter's demo, two namespaces side by side with the
//! host (network_namespaces(7), veth(4)). It parses, calls the library's steps, and prints; the lesson
//! is in `lib.rs`.

use nskit::show::Out;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use net_demo::netlink::Link;
use net_demo::subnet::{DEFAULT_SUBNET, Subnet};
use net_demo::{Exchange, HostView, PORT, Refused, Topology, View};
use nskit::UserNs;
use nskit::ns::{Kind, NsId};
use nskit::show::{explain, line, line_noted, outcome, privilege_banner, step};

/// Shows what a network namespace isolates: interfaces, addresses, routes, ports, /proc/net, sysfs.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Runs as an ordinary user (through a user namespace) or as root. Traffic only flows \
                  inside and between the namespaces the demo makes; the host's network is never changed."
)]
struct Cli {
    /// The private IPv4 subnet for the veth pair: red gets its first address, blue its second.
    #[arg(long, default_value = DEFAULT_SUBNET, value_parser = |s: &str| s.parse::<Subnet>())]
    subnet: Subnet,
    /// Put the namespaces in a user namespace even when running as root.
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
            eprintln!("net-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { quiet: cli.quiet };
    let user = if cli.userns { UserNs::Always } else { UserNs::Auto };
    out.say(
        "net-demo: a network namespace gives a process its own interfaces, addresses, routes and ports"
            .into(),
    );
    out.say(privilege_banner(user.wanted()));
    out.say(format!(
        "subnet {}: red is {}, blue is {}; packets never leave the demo's own namespaces",
        cli.subnet,
        cli.subnet.host(1),
        cli.subnet.host(2)
    ));
    let host_before = net_demo::host_view().context("cannot list the host's interfaces")?;

    out.say(step(1, "A new network namespace has only lo, and it is down"));
    let mut topology = Topology::create(user, cli.subnet).context("cannot create the namespaces")?;
    step_loopback(&out, &mut topology)?;

    out.say(step(
        2,
        "A veth pair made over netlink, one end in each namespace, and TCP across it",
    ));
    step_veth(&out, &mut topology)?;

    out.say(step(3, "The same port, bound in two namespaces at once"));
    step_same_port(&out, &mut topology)?;

    out.say(step(
        4,
        "Interfaces, addresses, routes, /proc/net/dev and /sys/class/net from each side",
    ));
    step_views(&out, &mut topology, &host_before)?;

    out.say(step(
        5,
        "Moving a device between namespaces; a veth end dies with its namespace",
    ));
    let owners = net_demo::owners(&topology).context("cannot read the user namespaces")?;
    let red = step_move(&out, topology)?;
    red.finish().context("red did not exit cleanly")?;

    out.say(step(6, "Rootless: who owns these namespaces"));
    step_rootless(&out, cli, owners)?;

    let host_after = net_demo::host_view().context("cannot list the host's interfaces")?;
    let note = if host_after == host_before {
        "unchanged"
    } else {
        "CHANGED"
    };
    out.see(line_noted("host", host_after.ns, host_text(&host_after), note));
    out.say(explain(
        "every namespace has exited; no interface of the demo is left anywhere",
    ));
    Ok(())
}

fn links_text(links: &[Link]) -> String {
    let names: Vec<String> = links.iter().map(Link::to_string).collect();
    format!("links: {}", names.join(", "))
}

fn call_text(addr: &str, result: &Result<Exchange, Refused>) -> String {
    match result {
        Ok(x) => format!("connect {addr} -> ok, answer {:?}", x.received),
        Err(refused) => format!("connect {addr} -> {refused}"),
    }
}

fn host_text(host: &HostView) -> String {
    let demo = host.demo_links();
    let demo = if demo.is_empty() {
        "none".to_owned()
    } else {
        demo.join(" ")
    };
    // The count comes last: it differs from machine to machine (transcript.masks).
    format!("demo interfaces: {demo}; interfaces in all: {}", host.names.len())
}

fn step_loopback(out: &Out, topology: &mut Topology) -> anyhow::Result<()> {
    let report = net_demo::loopback(&mut topology.red).context("cannot probe loopback in red")?;
    let ns = report.ns;
    let addr = format!("127.0.0.1:{PORT}");
    out.see(line("red", ns, links_text(&report.before)));
    out.see(line("red", ns, call_text(&addr, &report.while_down)));
    out.say(outcome(
        "refused",
        "lo is down, so 127.0.0.0/8 has no route yet (the listener could still be bound)",
    ));
    out.see(line(
        "red",
        ns,
        format!("RTM_SETLINK lo IFF_UP -> {}", links_text(&report.after)),
    ));
    out.see(line("red", ns, call_text(&addr, &report.while_up)));
    out.say(outcome(
        "ok",
        "lo is up: the kernel added 127.0.0.1/8 and its routes, and red answered itself",
    ));
    Ok(())
}

fn step_veth(out: &Out, topology: &mut Topology) -> anyhow::Result<()> {
    let red_ns = topology.red.ns(Kind::Net)?;
    let blue_ns = topology.blue.ns(Kind::Net)?;
    let blue_links = topology.blue.links().context("cannot list blue's links")?;
    out.see(line_noted(
        "blue",
        blue_ns,
        links_text(&blue_links),
        "another new namespace",
    ));
    topology.wire().context("cannot wire the veth pair")?;
    let (red_addr, blue_addr, subnet) = (topology.red_addr(), topology.blue_addr(), topology.subnet);
    out.see(line(
        "red",
        red_ns,
        format!(
            "RTM_NEWLINK veth {} + peer {}",
            net_demo::RED_VETH,
            net_demo::BLUE_VETH
        ),
    ));
    out.see(line(
        "red",
        red_ns,
        format!(
            "RTM_SETLINK {} IFLA_NET_NS_PID=<blue's pid>: moved into blue",
            net_demo::BLUE_VETH
        ),
    ));
    out.see(line(
        "red",
        red_ns,
        format!(
            "{} up, {red_addr}/32, route {subnet} dev {}",
            net_demo::RED_VETH,
            net_demo::RED_VETH
        ),
    ));
    out.see(line(
        "blue",
        blue_ns,
        format!(
            "{} up, {blue_addr}/32, route {subnet} dev {}",
            net_demo::BLUE_VETH,
            net_demo::BLUE_VETH
        ),
    ));
    out.say(explain(
        "all over rtnetlink from Rust: a socket acts on the namespace it was opened in, so each side\n\
         configures its own end",
    ));
    let echo = net_demo::echo_across(topology, "hello across the veth").context("cannot run the echo")?;
    match &echo.client {
        Ok(x) => out.see(line(
            "red",
            echo.client_ns,
            format!(
                "{} -> {} sent {:?} ({} bytes), got back {:?}",
                x.local,
                x.remote,
                x.sent,
                x.sent.len(),
                x.received
            ),
        )),
        Err(refused) => out.see(line(
            "red",
            echo.client_ns,
            format!("connect {blue_addr}:{PORT} -> {refused}"),
        )),
    }
    if let Some(served) = &echo.server {
        out.see(line(
            "blue",
            echo.server_ns,
            format!(
                "{} <- {} received {} bytes and echoed them",
                served.local,
                served.client,
                served.received.len()
            ),
        ));
    }
    out.say(explain(
        "each end sees the other's address: the bytes left red's namespace through veth-red and\n\
         arrived in blue's through veth-blue",
    ));
    Ok(())
}

fn step_same_port(out: &Out, topology: &mut Topology) -> anyhow::Result<()> {
    let uses = net_demo::same_port(topology).context("cannot bind the port twice")?;
    let addr = format!("127.0.0.1:{PORT}");
    for (label, u) in ["red", "blue"].into_iter().zip(&uses) {
        let again = match u.second_bind {
            Ok(()) => "ok".to_owned(),
            Err(errno) => format!("{errno:?}"),
        };
        out.see(line(
            label,
            u.ns,
            format!("bind {addr} -> ok; bind it again here -> {again}"),
        ));
    }
    out.say(explain(
        "both binds hold at once: each namespace has its own port space",
    ));
    for (label, u) in ["red", "blue"].into_iter().zip(&uses) {
        out.see(line(label, u.ns, call_text(&addr, &u.exchange)));
    }
    out.say(explain(
        "each client reached the server of its own namespace, as the inodes show",
    ));
    Ok(())
}

fn view_lines(out: &Out, label: &str, view: &View) {
    out.see(line(label, view.ns, links_text(&view.links)));
    let addresses: Vec<String> = view
        .addresses
        .iter()
        .map(|a| format!("{} {}/{}", view.link_name(a.index), a.addr, a.prefix))
        .collect();
    out.see(line(
        label,
        view.ns,
        format!("addresses: {}", addresses.join(", ")),
    ));
    let routes: Vec<String> = view
        .routes
        .iter()
        .map(|r| {
            let dev = r.oif.map_or("?", |i| view.link_name(i));
            format!("{}/{} dev {dev} proto {}", r.destination, r.prefix, r.protocol)
        })
        .collect();
    out.see(line(label, view.ns, format!("routes: {}", routes.join(", "))));
    out.see(line(
        label,
        view.ns,
        format!("/proc/net/dev: {}", view.proc_net_dev.join(" ")),
    ));
}

fn step_views(out: &Out, topology: &mut Topology, host: &HostView) -> anyhow::Result<()> {
    out.see(line("host", host.ns, host_text(host)));
    let red = net_demo::view(&mut topology.red).context("cannot read red's view")?;
    let blue = net_demo::view(&mut topology.blue).context("cannot read blue's view")?;
    view_lines(out, "red", &red);
    view_lines(out, "blue", &blue);
    out.say(explain(
        "the host's list holds none of the demo's interfaces; /proc/net always shows the reader's own\n\
         namespace",
    ));
    for (label, netns) in [("red", &mut topology.red), ("blue", &mut topology.blue)] {
        let sysfs =
            net_demo::remount_sysfs(netns).with_context(|| format!("cannot remount sysfs in {label}"))?;
        let before = if sysfs.before == host.names {
            "the host's list".to_owned()
        } else {
            sysfs.before.join(" ")
        };
        out.see(line(
            label,
            sysfs.ns,
            format!("/sys/class/net before remount: {before}"),
        ));
        out.see(line(
            label,
            sysfs.ns,
            format!("/sys/class/net after remount:  {}", sysfs.after.join(" ")),
        ));
    }
    out.say(explain(
        "sysfs shows the network namespace it was mounted in: the inherited /sys is the host's; a\n\
         sysfs mounted by a process whose user namespace owns the network namespace shows its own",
    ));
    Ok(())
}

fn step_move(out: &Out, mut topology: Topology) -> anyhow::Result<net_demo::netns::Netns> {
    let red_ns = topology.red.ns(Kind::Net)?;
    let blue_ns = topology.blue.ns(Kind::Net)?;
    let moved = net_demo::move_device(&mut topology).context("cannot move a device")?;
    out.see(line("blue", blue_ns, links_text(&moved.blue_before)));
    out.see(line(
        "blue",
        blue_ns,
        format!(
            "RTM_SETLINK {} IFLA_NET_NS_FD=<open /proc/<red>/ns/net>",
            net_demo::MOVE_RED
        ),
    ));
    out.see(line("blue", blue_ns, links_text(&moved.blue_after)));
    out.see(line("red", red_ns, links_text(&moved.red_after)));
    out.say(explain(
        "the device left blue and appeared in red, still linked to its peer mv-blue",
    ));
    let lo = match moved.lo_refused {
        Some(errno) => format!("{errno:?}"),
        None => "ok".into(),
    };
    out.see(line(
        "blue",
        blue_ns,
        format!("RTM_SETLINK lo IFLA_NET_NS_FD=<red> -> {lo}"),
    ));
    out.say(outcome(
        "refused",
        "the loopback device is marked as bound to its namespace, and the kernel refuses to move it",
    ));
    let (red, vanished) = net_demo::blue_exits(topology).context("cannot end blue")?;
    out.see(line(
        "red",
        red_ns,
        format!("before blue exits: {}", links_text(&vanished.red_before)),
    ));
    out.see(line_noted(
        "blue",
        vanished.blue_ns,
        "exited",
        "nothing holds its network namespace now",
    ));
    out.see(line(
        "red",
        red_ns,
        format!("after blue exits:  {}", links_text(&vanished.red_after)),
    ));
    out.say(explain(
        "blue's namespace was destroyed with its veth ends, and a veth end never outlives its peer:\n\
         veth-red and mv-red went too",
    ));
    Ok(red)
}

fn step_rootless(out: &Out, cli: &Cli, owners: net_demo::Owners) -> anyhow::Result<()> {
    out.see(line("host", owners.host, ""));
    out.see(line("red", owners.red, ""));
    out.see(line("blue", owners.blue, ""));
    if owners.red != owners.host {
        out.say(explain(
            "red and blue are in one user namespace of the demo's own, which owns both network\n\
             namespaces: there the demo holds CAP_NET_ADMIN, and that is all it took",
        ));
        return Ok(());
    }
    out.say(explain(
        "as root no user namespace was needed; now the same topology inside one, as any user would:",
    ));
    let mut rootless =
        Topology::create(UserNs::Always, cli.subnet).context("cannot create a user namespace")?;
    rootless
        .wire()
        .context("cannot wire the veth pair in a user namespace")?;
    let echo = net_demo::echo_across(&mut rootless, "hello, rootless").context("cannot run the echo")?;
    let user: NsId = rootless.red.ns(Kind::User)?;
    let result = match &echo.client {
        Ok(x) => format!("veth pair and echo {:?} -> {:?}: ok", x.sent, x.received),
        Err(refused) => format!("echo -> {refused}"),
    };
    out.see(line("usrns", user, result));
    let Topology { red, blue, .. } = rootless;
    blue.finish().context("blue did not exit cleanly")?;
    red.finish().context("red did not exit cleanly")?;
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

    #[test]
    fn subnet_defaults_to_the_documented_constant() {
        let cli = Cli::try_parse_from(["net-demo"]).unwrap();
        assert_eq!(cli.subnet.to_string(), DEFAULT_SUBNET);
        let err = Cli::try_parse_from(["net-demo", "--subnet", "10.1.2.3/8"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
