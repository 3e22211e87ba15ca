//! The one IPv4 subnet the demo's namespaces use (ip(7)), checked before anything is created: a private
//! range (RFC 1918), so that no address the demo uses can belong to anyone else, and room for two hosts.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The subnet the demo uses unless `--subnet` says otherwise. Its first host address goes to the `red`
/// namespace's end of the veth pair, its second to `blue`'s. Packets only ever travel between the
/// demo's own namespaces, whatever the subnet: no namespace has a route anywhere else.
pub const DEFAULT_SUBNET: &str = "10.200.0.0/24";

/// An IPv4 network: `10.200.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a subnet was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetError {
    #[error("invalid subnet {0:?}: expected an IPv4 network in CIDR form, such as {DEFAULT_SUBNET}")]
    Syntax(String),
    #[error("invalid subnet {given}: the prefix length must be 8 to 30, so that it holds two hosts")]
    Prefix { given: String },
    #[error("invalid subnet {given}: host bits are set; the network is {network}")]
    HostBits { given: String, network: String },
    #[error("invalid subnet {0}: not a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)")]
    NotPrivate(String),
}

impl Subnet {
    /// A subnet from its parts; the same checks as parsing.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Subnet, SubnetError> {
        let given = format!("{network}/{prefix}");
        if !(8..=30).contains(&prefix) {
            return Err(SubnetError::Prefix { given });
        }
        let masked = Ipv4Addr::from(u32::from(network) & mask(prefix));
        if masked != network {
            return Err(SubnetError::HostBits {
                given,
                network: format!("{masked}/{prefix}"),
            });
        }
        if !network.is_private() {
            return Err(SubnetError::NotPrivate(given));
        }
        Ok(Subnet { network, prefix })
    }

    pub fn network(self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// The `n`th host address (1 is the first after the network address).
    pub fn host(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Subnet, SubnetError> {
        let syntax = || SubnetError::Syntax(s.to_owned());
        let (network, prefix) = s.split_once('/').ok_or_else(syntax)?;
        let network: Ipv4Addr = network.parse().map_err(|_| syntax())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        if prefix > 32 {
            return Err(syntax());
        }
        Subnet::new(network, prefix)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses_and_gives_two_hosts() {
        let subnet: Subnet = DEFAULT_SUBNET.parse().unwrap();
        assert_eq!(subnet.to_string(), DEFAULT_SUBNET);
        assert_eq!(subnet.host(1), Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!(subnet.host(2), Ipv4Addr::new(10, 200, 0, 2));
        assert!("192.168.77.0/30".parse::<Subnet>().is_ok());
        assert!("172.20.0.0/16".parse::<Subnet>().is_ok());
    }

    #[test]
    fn bad_subnets_are_refused_with_the_reason() {
        for s in [
            "",
            "10.200.0.0",
            "10.200.0/24",
            "10.200.0.0/",
            "10.200.0.0/x",
            "10.200.0.0/33",
            "10.200.0.0/+4",
            "a/24",
        ] {
            assert!(
                matches!(s.parse::<Subnet>(), Err(SubnetError::Syntax(_))),
                "{s:?}"
            );
        }
        assert!(matches!(
            "10.0.0.0/31".parse::<Subnet>(),
            Err(SubnetError::Prefix { .. })
        ));
        assert!(matches!(
            "10.0.0.0/4".parse::<Subnet>(),
            Err(SubnetError::Prefix { .. })
        ));
        assert_eq!(
            "10.200.0.5/24".parse::<Subnet>(),
            Err(SubnetError::HostBits {
                given: "10.200.0.5/24".into(),
                network: "10.200.0.0/24".into()
            })
        );
        assert!(matches!(
            "8.8.8.0/24".parse::<Subnet>(),
            Err(SubnetError::NotPrivate(_))
        ));
        assert!(matches!(
            "127.0.0.0/8".parse::<Subnet>(),
            Err(SubnetError::NotPrivate(_))
        ));
    }
}
