//! Exercise net-lo: a new network namespace has one interface, `lo`, and it is down; nothing, not even
//! 127.0.0.1, is reachable until it is up (network_namespaces(7), rtnetlink(7)).

use net_demo::netlink::{Netlink, NetlinkError};

// ANCHOR: exercise
/// The caller's network interfaces, by name, each with whether it is up.
pub fn interfaces() -> Result<Vec<(String, bool)>, NetlinkError> {
    // Your code here: `Netlink::open()?` talks to the caller's namespace; its `links()` returns
    // `Link`s, which have a `name` and an `up`.
    Ok(Vec::new())
}

/// Brings the caller's loopback interface up.
pub fn loopback_up() -> Result<(), NetlinkError> {
    // Your code here: one call on a `Netlink`.
    Ok(())
}
// ANCHOR_END: exercise
