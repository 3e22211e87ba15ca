//! What the exercises give you: children cloned into new network namespaces (and a user namespace when
//! you are not root), which run your code and send back what they saw over nskit's channel
//! (`clone(2)`). Every packet a test sends stays between namespaces the test made. You need not read
//! this to do the exercises, but nothing in it is hidden.

use std::net::{Ipv4Addr, TcpListener};

use net_demo::netns::Netns;
use net_demo::subnet::Subnet;
use net_demo::{BLUE_VETH, RED_VETH, StepError, Topology, echo_across};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nskit::{Child, ChildError, Spawn, StepError as ChannelError, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Setup;

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(body)
}

/// A child in a new network namespace.
pub fn new_netns() -> Spawn {
    Spawn::new(CloneFlags::CLONE_NEWNET)
}

/// Connects to 127.0.0.1 in the caller's namespace, on a listener of its own: the kernel queues the
/// connection before anyone accepts it. The errno's name (`ENETUNREACH`) when connect(2) fails.
pub fn call_own_loopback() -> Result<Result<(), String>, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(net_demo::call(addr, "ping", Some(&listener))
        .map(drop)
        .map_err(|e| {
            format!(
                "{:?}",
                Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32))
            )
        }))
}

/// A child in a new network namespace that runs `setup` and then waits, until dropped (its `Child`
/// kills and reaps it, and its namespace goes with it), for the test's other children.
pub fn waiting_in_new_netns<T, F>(setup: F) -> Result<(Child, T), String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let mut child = new_netns()
        .run(|channel| {
            let result = setup().map_err(|why| ChildError::new("exercise", why));
            let failed = result.is_err();
            if channel.reply(&result).is_err() || failed {
                return 1;
            }
            i32::from(channel.expect("exit").is_err())
        })
        .map_err(|e| e.to_string())?;
    let reply = child.channel().recv_reply::<T>().map_err(|e| match e {
        ChannelError::Child(e) => e.message,
        other => other.to_string(),
    })?;
    Ok((child, reply))
}

/// The subnet of the route exercise: private to the two namespaces the test makes, never the host's.
pub fn lab_subnet() -> Subnet {
    Subnet::new(Ipv4Addr::new(10, 77, 0, 0), 24).expect("a valid subnet")
}

/// The route lab: two namespaces, `red` and `blue`, joined by a veth pair, each end set up by the
/// steps `setup` lists for it; then `red` calls `blue` over TCP. What `red`'s connect said.
pub fn route_lab(setup: fn(&'static str, Ipv4Addr) -> Vec<Setup>) -> Result<Result<(), Errno>, String> {
    let subnet = lab_subnet();
    let mut topology = Topology::create(UserNs::Auto, subnet).map_err(|e| e.to_string())?;
    let (red_addr, blue_addr) = (topology.red_addr(), topology.blue_addr());
    wire(&mut topology, setup, red_addr, blue_addr).map_err(|e| e.to_string())?;
    let echo = echo_across(&mut topology, "across the pair").map_err(|e| e.to_string())?;
    let _ = (topology.red.finish(), topology.blue.finish());
    Ok(echo.client.map(drop).map_err(|refused| refused.errno))
}

fn wire(
    topology: &mut Topology,
    setup: fn(&'static str, Ipv4Addr) -> Vec<Setup>,
    red_addr: Ipv4Addr,
    blue_addr: Ipv4Addr,
) -> Result<(), StepError> {
    let subnet = topology.subnet;
    topology.red.create_veth(RED_VETH, BLUE_VETH)?;
    topology.red.move_by_pid(BLUE_VETH, &topology.blue)?;
    for (netns, end, addr) in [
        (&mut topology.red, RED_VETH, red_addr),
        (&mut topology.blue, BLUE_VETH, blue_addr),
    ] {
        for step in setup(end, addr) {
            apply(netns, &step, subnet)?;
        }
    }
    Ok(())
}

fn apply(netns: &mut Netns, step: &Setup, subnet: Subnet) -> Result<(), StepError> {
    match *step {
        Setup::Up(name) => netns.set_up(name)?,
        Setup::Address(name, addr, prefix) => netns.add_address(name, addr, prefix)?,
        Setup::Route(name, source) => netns.add_route(subnet, name, source)?,
    }
    Ok(())
}
