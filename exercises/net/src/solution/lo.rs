//! Solution to net-lo: a link dump, and `lo` set up, over rtnetlink in the caller's namespace
//! (rtnetlink(7)).

use net_demo::netlink::{Netlink, NetlinkError};

// ANCHOR: solution
/// The caller's network interfaces, by name, each with whether it is up.
pub fn interfaces() -> Result<Vec<(String, bool)>, NetlinkError> {
    let links = Netlink::open()?.links()?;
    Ok(links.into_iter().map(|link| (link.name, link.up)).collect())
}

/// Brings the caller's loopback interface up.
pub fn loopback_up() -> Result<(), NetlinkError> {
    // A netlink socket talks to the namespace it was opened in: this process's.
    Netlink::open()?.set_up("lo")
}
// ANCHOR_END: solution
