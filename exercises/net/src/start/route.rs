//! Exercise net-route, break it: an address with a /32 prefix gives the kernel no route to anyone
//! else, so each end of a veth pair also routes the subnet through its link (rtnetlink(7), veth(4)).

use std::net::Ipv4Addr;

use crate::Setup;

// ANCHOR: exercise
/// How the test sets up each namespace's end of the veth pair, `end` (`veth-red` or `veth-blue`),
/// whose address is `addr`. The test applies the steps in order, in each namespace; a route is to the
/// test's subnet, `10.77.0.0/24`.
pub fn setup(end: &'static str, addr: Ipv4Addr) -> Vec<Setup> {
    vec![
        Setup::Up("lo"),
        Setup::Up(end),
        Setup::Address(end, addr, 32),
        Setup::Route(end, addr),
    ]
}
// ANCHOR_END: exercise
