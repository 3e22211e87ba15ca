//! The network chapter's section on reaching beyond a namespace, checked on the real kernel
//! (network_namespaces(7), veth(4), bridge(8)): a bridge switches frames between namespaces and needs
//! no address of its own; a user namespace gives no power over the host's network namespace. Every
//! packet stays between namespaces the test made, and the host's interface list is checked before and
//! after.

use std::net::{Ipv4Addr, SocketAddr};

use net_demo::PORT;
use net_demo::netlink::Netlink;
use net_demo::netns::Netns;
use net_demo::subnet::Subnet;
use nix::sched::CloneFlags;
use nskit::testing::{exclusive, interfaces, require_namespaces, require_userns};
use nskit::{Spawn, UserNs};

/// Runs `body` and checks the host's interfaces are the same afterwards.
fn host_unchanged(body: impl FnOnce()) {
    let _guard = exclusive();
    let before = interfaces();
    body();
    assert_eq!(interfaces(), before, "the host's interface list changed");
}

const BRIDGE: &str = "br-hub";

/// In `hub`, a veth pair whose end `end` moves into `side`, and whose other end `port` joins the
/// bridge; `side` gives its end `addr` on the subnet.
fn plug(hub: &mut Netns, side: &mut Netns, (port, end): (&str, &str), addr: Ipv4Addr) {
    hub.create_veth(port, end).unwrap();
    hub.move_by_pid(end, side).unwrap();
    hub.attach(port, BRIDGE).unwrap();
    hub.set_up(port).unwrap();
    side.set_up(end).unwrap();
    side.add_address(end, addr, 24).unwrap();
}

#[test]
fn a_bridge_switches_frames_between_namespaces_and_has_no_address() {
    if !require_namespaces("a_bridge_switches_frames_between_namespaces_and_has_no_address") {
        return;
    }
    host_unchanged(|| {
        let subnet: Subnet = "10.78.0.0/24".parse().unwrap();
        let mut hub = Netns::create("hub", UserNs::Auto).unwrap();
        let mut red = Netns::sibling("red", &hub).unwrap();
        let mut blue = Netns::sibling("blue", &hub).unwrap();
        hub.create_bridge(BRIDGE).unwrap();
        hub.set_up(BRIDGE).unwrap();
        plug(&mut hub, &mut red, ("port-red", "eth-red"), subnet.host(1));
        plug(&mut hub, &mut blue, ("port-blue", "eth-blue"), subnet.host(2));

        let addr = SocketAddr::from((subnet.host(2), PORT));
        let listening = blue.serve(addr, true).unwrap();
        let called = red.call(addr, "through the bridge").unwrap();
        let served = listening.finish();
        let exchange = called.unwrap_or_else(|refused| panic!("red could not reach blue: {refused}"));
        assert_eq!(exchange.received, "through the bridge");
        assert_eq!(served.unwrap().client.ip(), subnet.host(1));
        assert_eq!(
            hub.addresses().unwrap(),
            [],
            "the hub switched the frames without an IPv4 address of its own"
        );
        for netns in [red, blue, hub] {
            netns.finish().unwrap();
        }
    });
}

#[test]
fn a_user_namespace_gives_no_power_over_the_hosts_network() {
    if !require_userns("a_user_namespace_gives_no_power_over_the_hosts_network") {
        return;
    }
    host_unchanged(|| {
        // Root of a new user namespace, still in the host's network namespace, which the initial user
        // namespace owns: even when the test runs as root.
        let mut child = Spawn::new(CloneFlags::empty())
            .user(UserNs::Always)
            .run(|channel| {
                let made = Netlink::open().and_then(|mut netlink| netlink.create_veth("nsx-a", "nsx-b"));
                let errno = made.err().and_then(|e| e.errno()).map(|e| e as i32);
                i32::from(channel.send_msg(&errno).is_err())
            })
            .unwrap();
        let errno: Option<i32> = child.channel().recv_msg().unwrap();
        child.wait().unwrap();
        assert_eq!(
            errno,
            Some(libc::EPERM),
            "creating a link in the host's namespace"
        );
    });
}
