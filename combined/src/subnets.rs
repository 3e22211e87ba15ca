//! Which subnet a `--net veth` container gets: the one `--subnet` names, if no other interface on the
//! host has an address in it, or else the first free /30 of a pool (ip(7), rtnetlink(7)).
//!
//! Two containers on one subnet would get the same addresses, and the host two identical routes, one
//! of which silently wins. The host's own addresses are the record of what is in use: a container's
//! host end holds the first address of its subnet for as long as the container lives, and the kernel
//! deletes it with the container's network namespace. So nothing is written anywhere, and nothing is
//! left stale by a launcher that was killed. Choosing and taking a subnet happen under a lock, so that
//! two launchers starting together cannot choose the same one.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use net_demo::netlink::{Netlink, NetlinkError};
use net_demo::subnet::Subnet;
use nix::fcntl::{Flock, FlockArg};

/// The pool containers take a /30 from when `--subnet` is not given.
pub const POOL: &str = "10.200.0.0/16";

/// Where launchers serialize their choice of subnet (root only: `--net veth` needs root).
const LOCK: &str = "/run/combined/subnets.lock";

/// Why no subnet could be had.
#[derive(Debug, thiserror::Error)]
pub enum SubnetError {
    #[error("cannot lock {LOCK}: {0}")]
    Lock(#[source] std::io::Error),
    #[error("cannot list the host's addresses: {0}")]
    Addresses(#[source] NetlinkError),
    #[error(
        "subnet {subnet} is in use on the host (address {address}): choose another --subnet, or leave it out to get a free one"
    )]
    InUse { subnet: String, address: String },
    #[error("no free /30 is left in {POOL}: stop a container, or give --subnet")]
    PoolExhausted,
}

/// The lock held while a subnet is chosen and its first address taken; released on drop.
#[derive(Debug)]
pub struct Claim {
    _lock: Flock<File>,
}

// ANCHOR: choose
/// Takes the lock and chooses: `wanted` if it is free, or the pool's first free /30.
pub fn choose(netlink: &mut Netlink, wanted: Option<Subnet>) -> Result<(Subnet, Claim), SubnetError> {
    let claim = Claim { _lock: lock()? };
    let used: Vec<(Ipv4Addr, u8)> = netlink
        .addresses()
        .map_err(SubnetError::Addresses)?
        .into_iter()
        .map(|a| (a.addr, a.prefix))
        .collect();
    let subnet = match wanted {
        Some(subnet) => match used
            .iter()
            .find(|(addr, prefix)| overlaps(subnet, *addr, *prefix))
        {
            Some((addr, prefix)) => {
                return Err(SubnetError::InUse {
                    subnet: format!("{}/{}", subnet.network(), subnet.prefix()),
                    address: format!("{addr}/{prefix}"),
                });
            }
            None => subnet,
        },
        None => pool()
            .find(|candidate| {
                !used
                    .iter()
                    .any(|(addr, prefix)| overlaps(*candidate, *addr, *prefix))
            })
            .ok_or(SubnetError::PoolExhausted)?,
    };
    Ok((subnet, claim))
}
// ANCHOR_END: choose

/// Every /30 of [`POOL`], in order.
fn pool() -> impl Iterator<Item = Subnet> {
    let pool: Subnet = POOL.parse().expect("a valid pool");
    let first = u32::from(pool.network());
    let count = 1u32 << (32 - u32::from(pool.prefix()) - 2);
    (0..count).filter_map(move |i| Subnet::new(Ipv4Addr::from(first + i * 4), 30).ok())
}

/// Whether `subnet` and the network of `addr/prefix` share any address.
fn overlaps(subnet: Subnet, addr: Ipv4Addr, prefix: u8) -> bool {
    let range = |network: u32, prefix: u8| {
        let size = 1u64 << (32 - u32::from(prefix));
        let start = u64::from(network) & !(size - 1);
        (start, start + size)
    };
    let (a_start, a_end) = range(u32::from(subnet.network()), subnet.prefix());
    let (b_start, b_end) = range(u32::from(addr), prefix);
    a_start < b_end && b_start < a_end
}

fn lock() -> Result<Flock<File>, SubnetError> {
    let path = Path::new(LOCK);
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(SubnetError::Lock)?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(SubnetError::Lock)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| SubnetError::Lock(errno.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn overlap_is_any_shared_address() {
        let s = subnet("10.200.1.0/30");
        assert!(overlaps(s, "10.200.1.1".parse().unwrap(), 30));
        assert!(overlaps(s, "10.200.1.2".parse().unwrap(), 32));
        assert!(
            overlaps(s, "10.0.0.1".parse().unwrap(), 8),
            "a wider network around it"
        );
        assert!(!overlaps(s, "10.200.1.5".parse().unwrap(), 30));
        assert!(!overlaps(s, "192.0.2.2".parse().unwrap(), 24));
    }

    #[test]
    fn the_pool_is_every_slash_30_in_order() {
        let mut pool = pool();
        assert_eq!(pool.next(), Some(subnet("10.200.0.0/30")));
        assert_eq!(pool.next(), Some(subnet("10.200.0.4/30")));
        assert_eq!(super::pool().count(), 16384);
    }
}
