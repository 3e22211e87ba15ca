//! Solution to net-route: the steps as they were, the route to the subnet included (rtnetlink(7),
//! veth(4)).

use std::net::Ipv4Addr;

use crate::Setup;

// ANCHOR: solution
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
// ANCHOR_END: solution
