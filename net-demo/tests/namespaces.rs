//! Every claim of the network namespace chapter, checked on the real kernel through the library
//! (network_namespaces(7), veth(4)). Each test makes its own namespaces, sends packets only inside and
//! between them, and checks that the host's interface list is the same before and after.

use std::net::{Ipv4Addr, SocketAddr};

use net_demo::netlink::{Link, LinkGuard, Netlink};
use net_demo::netns::Netns;
use net_demo::subnet::{DEFAULT_SUBNET, Subnet};
use net_demo::{BLUE_VETH, MOVE_BLUE, MOVE_RED, PORT, RED_VETH, Topology};
use nix::errno::Errno;
use nskit::UserNs;
use nskit::ns::{Kind, Proc, ns_id};
use nskit::testing::{self, exclusive, interfaces, require_namespaces, require_userns};

fn subnet() -> Subnet {
    DEFAULT_SUBNET.parse().unwrap()
}

fn names(links: &[Link]) -> Vec<&str> {
    links.iter().map(|l| l.name.as_str()).collect()
}

/// Runs `body` and checks the host's interfaces are the same afterwards.
fn host_unchanged(body: impl FnOnce()) {
    let _guard = exclusive();
    let before = interfaces();
    body();
    assert_eq!(interfaces(), before, "the host's interface list changed");
}

#[test]
fn new_namespace_has_only_lo_and_it_is_down_until_brought_up() {
    if !require_namespaces("new_namespace_has_only_lo_and_it_is_down_until_brought_up") {
        return;
    }
    host_unchanged(|| {
        let mut red = Netns::create("red", UserNs::Auto).unwrap();
        let report = net_demo::loopback(&mut red).unwrap();
        assert_ne!(
            report.ns,
            ns_id(Proc::Current, Kind::Net).unwrap(),
            "a new namespace"
        );
        assert_eq!(names(&report.before), ["lo"]);
        assert!(!report.before[0].up, "lo starts down");
        assert_eq!(report.while_down.unwrap_err().errno, Errno::ENETUNREACH);
        assert!(report.after[0].up, "lo is up");
        let exchange = report.while_up.unwrap();
        assert_eq!(exchange.received, format!("hello from {}", report.ns));
        assert_eq!(exchange.remote, SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)));
        red.finish().unwrap();
    });
}

#[test]
fn veth_pair_carries_tcp_between_two_namespaces() {
    if !require_namespaces("veth_pair_carries_tcp_between_two_namespaces") {
        return;
    }
    host_unchanged(|| {
        let mut topology = Topology::create(UserNs::Auto, subnet()).unwrap();
        topology.wire().unwrap();
        let echo = net_demo::echo_across(&mut topology, "across").unwrap();
        let host = ns_id(Proc::Current, Kind::Net).unwrap();
        assert!(echo.client_ns != echo.server_ns && echo.client_ns != host && echo.server_ns != host);
        let client = echo.client.unwrap();
        assert_eq!(client.received, "across", "the bytes came back");
        assert_eq!(client.local.ip(), Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!(
            client.remote,
            SocketAddr::from((Ipv4Addr::new(10, 200, 0, 2), PORT))
        );
        let server = echo.server.unwrap();
        assert_eq!(server.received, "across");
        assert_eq!(
            server.client, client.local,
            "the server saw red's address and port"
        );
        assert_eq!(server.local, client.remote);
        let Topology { red, blue, .. } = topology;
        blue.finish().unwrap();
        red.finish().unwrap();
    });
}

#[test]
fn another_subnet_is_used_when_asked() {
    if !require_namespaces("another_subnet_is_used_when_asked") {
        return;
    }
    host_unchanged(|| {
        let mut topology = Topology::create(UserNs::Auto, "192.168.77.0/30".parse().unwrap()).unwrap();
        topology.wire().unwrap();
        let client = net_demo::echo_across(&mut topology, "x").unwrap().client.unwrap();
        assert_eq!(client.local.ip(), Ipv4Addr::new(192, 168, 77, 1));
        assert_eq!(client.remote.ip(), Ipv4Addr::new(192, 168, 77, 2));
    });
}

#[test]
fn the_same_port_is_bound_in_two_namespaces_at_once() {
    if !require_namespaces("the_same_port_is_bound_in_two_namespaces_at_once") {
        return;
    }
    host_unchanged(|| {
        let mut topology = Topology::create(UserNs::Auto, subnet()).unwrap();
        topology.wire().unwrap();
        let [red, blue] = net_demo::same_port(&mut topology).unwrap();
        assert_ne!(red.ns, blue.ns);
        for side in [&red, &blue] {
            assert_eq!(
                side.second_bind,
                Err(Errno::EADDRINUSE),
                "one port space per namespace"
            );
            let exchange = side.exchange.as_ref().unwrap();
            assert_eq!(exchange.remote, SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)));
            assert_eq!(
                exchange.received,
                format!("hello from {}", side.ns),
                "its own server answered"
            );
        }
    });
}

#[test]
fn each_side_sees_only_its_own_network_and_sysfs_follows_the_mounter() {
    if !require_namespaces("each_side_sees_only_its_own_network_and_sysfs_follows_the_mounter") {
        return;
    }
    host_unchanged(|| {
        let host = net_demo::host_view().unwrap();
        assert!(host.demo_links().is_empty(), "{host:?}");
        let mut topology = Topology::create(UserNs::Auto, subnet()).unwrap();
        topology.wire().unwrap();
        for (netns, end, addr) in [
            (&mut topology.red, RED_VETH, Ipv4Addr::new(10, 200, 0, 1)),
            (&mut topology.blue, BLUE_VETH, Ipv4Addr::new(10, 200, 0, 2)),
        ] {
            let view = net_demo::view(netns).unwrap();
            assert_eq!(names(&view.links), ["lo", end]);
            assert!(view.links.iter().all(|l| l.up));
            assert_eq!(view.links[1].kind.as_deref(), Some("veth"));
            let index = view.links[1].index;
            assert!(
                view.addresses
                    .iter()
                    .any(|a| a.index == index && a.addr == addr && a.prefix == 32)
            );
            let route = view
                .routes
                .iter()
                .find(|r| r.destination == Ipv4Addr::new(10, 200, 0, 0) && r.prefix == 24)
                .expect("the subnet's route");
            assert_eq!((route.oif, route.protocol.as_str()), (Some(index), "static"));
            assert!(
                view.routes.iter().all(|r| r.gateway.is_none()),
                "no route leads anywhere else"
            );
            assert_eq!(view.proc_net_dev, ["lo", end]);

            let sysfs = net_demo::remount_sysfs(netns).unwrap();
            assert_eq!(sysfs.before, host.names, "the inherited sysfs is the host's");
            assert_eq!(sysfs.after, ["lo", end]);
        }
        assert_eq!(net_demo::host_view().unwrap(), host);
    });
}

#[test]
fn sysfs_remount_does_not_reach_the_host() {
    if !require_namespaces("sysfs_remount_does_not_reach_the_host") {
        return;
    }
    let _guard = exclusive();
    let mounts = testing::mount_table();
    let mut red = Netns::create("red", UserNs::Auto).unwrap();
    net_demo::remount_sysfs(&mut red).unwrap();
    assert_eq!(
        testing::mount_table(),
        mounts,
        "the sysfs mount stayed in red's mount namespace"
    );
    red.finish().unwrap();
}

#[test]
fn a_moved_device_changes_namespace_and_veth_ends_die_with_theirs() {
    if !require_namespaces("a_moved_device_changes_namespace_and_veth_ends_die_with_theirs") {
        return;
    }
    host_unchanged(|| {
        let mut topology = Topology::create(UserNs::Auto, subnet()).unwrap();
        topology.wire().unwrap();
        let moved = net_demo::move_device(&mut topology).unwrap();
        assert!(names(&moved.blue_before).contains(&MOVE_RED));
        assert!(!names(&moved.blue_after).contains(&MOVE_RED), "it left blue");
        assert!(names(&moved.blue_after).contains(&MOVE_BLUE));
        assert!(names(&moved.red_after).contains(&MOVE_RED), "it arrived in red");
        assert_eq!(moved.lo_refused, Some(Errno::EINVAL), "lo cannot move");

        let (red, vanished) = net_demo::blue_exits(topology).unwrap();
        assert!(names(&vanished.red_before).contains(&RED_VETH));
        assert_eq!(
            names(&vanished.red_after),
            ["lo"],
            "both peers went with blue's namespace"
        );
        red.finish().unwrap();
    });
}

#[test]
fn an_ordinary_user_builds_the_topology_in_its_own_user_namespace() {
    if !require_userns("an_ordinary_user_builds_the_topology_in_its_own_user_namespace") {
        return;
    }
    host_unchanged(|| {
        // Always a user namespace, even as root: what the kernel allows there is what any user gets.
        let mut topology = Topology::create(UserNs::Always, subnet()).unwrap();
        assert!(topology.red.in_user_ns() && topology.blue.in_user_ns());
        let owners = net_demo::owners(&topology).unwrap();
        assert_ne!(owners.red, owners.host, "red has its own user namespace");
        assert_eq!(owners.blue, owners.red, "blue joined red's");
        topology.wire().unwrap();
        let client = net_demo::echo_across(&mut topology, "rootless")
            .unwrap()
            .client
            .unwrap();
        assert_eq!(client.received, "rootless");
        let moved = net_demo::move_device(&mut topology).unwrap();
        assert!(names(&moved.red_after).contains(&MOVE_RED));
    });
}

#[test]
fn a_second_namespace_needs_the_first_ones_user_namespace() {
    // Moving a device needs CAP_NET_ADMIN over both namespaces, so blue must be owned by red's user
    // namespace: it shares red's user namespace and has a network namespace of its own.
    if !require_namespaces("a_second_namespace_needs_the_first_ones_user_namespace") {
        return;
    }
    let _guard = exclusive();
    let red = Netns::create("red", UserNs::Auto).unwrap();
    let blue = Netns::sibling("blue", &red).unwrap();
    assert_eq!(red.ns(Kind::User).unwrap(), blue.ns(Kind::User).unwrap());
    assert_ne!(red.ns(Kind::Net).unwrap(), blue.ns(Kind::Net).unwrap());
}

#[test]
fn a_link_guard_deletes_both_veth_ends_on_drop() {
    if !require_namespaces("a_link_guard_deletes_both_veth_ends_on_drop") {
        return;
    }
    host_unchanged(|| {
        // In a cloned child with a network namespace of its own, never the host's. The child reports
        // by exit code rather than by panicking: it must not print from a copy of a threaded process.
        let spawn = nskit::Spawn::new(nix::sched::CloneFlags::CLONE_NEWNET);
        let child = spawn
            .run(|_| {
                let names = |n: &mut Netlink| -> Option<Vec<String>> {
                    Some(n.links().ok()?.into_iter().map(|l| l.name).collect())
                };
                let Ok(mut netlink) = Netlink::open() else {
                    return 10;
                };
                let Ok(guard) = LinkGuard::veth(&mut netlink, "guard0", "guard1") else {
                    return 11;
                };
                let Some(made) = names(&mut netlink) else {
                    return 12;
                };
                if !(made.contains(&"guard0".to_owned()) && made.contains(&"guard1".to_owned())) {
                    return 13;
                }
                drop(guard);
                match names(&mut netlink) {
                    Some(left) if left == ["lo"] => 0,
                    _ => 14,
                }
            })
            .unwrap();
        assert_eq!(
            child.wait().unwrap(),
            nskit::Exit::Code(0),
            "the guard left a link behind"
        );
    });
}
