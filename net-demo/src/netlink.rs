//! Talking to the kernel's routing subsystem over rtnetlink (rtnetlink(7), netlink(7)), the way `ip`
//! does, from Rust: create a veth pair (veth(4)), move one end into another network namespace, give a
//! link an address, add a route, bring a link up, and list links, addresses and routes.
//!
//! A netlink socket belongs to the network namespace it was created in: every request on it acts on
//! that namespace. The kernel checks CAP_NET_ADMIN against the user namespace that owns it, so a
//! process in its own user namespace may configure the network namespaces that namespace owns.
//!
//! The message builders ([`msg`]) are pure functions, unit-tested byte for byte; [`Netlink`] sends them
//! and turns the kernel's answer into data or a typed [`NetlinkError`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::subnet::Subnet;

/// The kernel's limit on an interface name, in bytes, without the NUL (`IFNAMSIZ - 1`, netdevice(7)).
pub const MAX_IFNAME_LEN: usize = 15;

/// Why a netlink request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("netlink i/o failed during {op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: the kernel answered {errno} ({})", errno.desc())]
    Kernel { op: String, errno: Errno },
    #[error("cannot decode the kernel's answer to {op}: {detail}")]
    Decode { op: String, detail: String },
    #[error("no interface named {0:?} in this network namespace")]
    NoSuchLink(String),
    #[error("invalid interface name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
}

impl NetlinkError {
    /// The errno the kernel answered with, if that is how the request failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Checks an interface name the way the kernel will (`dev_valid_name` in net/core/dev.c): 1 to 15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn check_ifname(name: &str) -> Result<(), NetlinkError> {
    let bad = |why| {
        Err(NetlinkError::BadName {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_IFNAME_LEN {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are reserved");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return bad("`/`, `:`, whitespace and control characters are not allowed");
    }
    Ok(())
}

/// The loopback device's index in every network namespace: the kernel creates `lo` first and gives
/// it index 1 (`LOOPBACK_IFINDEX`, include/net/net_namespace.h, since Linux 3.7).
pub const LOOPBACK_INDEX: u32 = 1;

/// The network namespace a link is sent to: by the PID of a process in it (`IFLA_NET_NS_PID`), or by
/// an open `/proc/<pid>/ns/net` file (`IFLA_NET_NS_FD`).
#[derive(Clone, Copy, Debug)]
pub enum Target<'fd> {
    Pid(Pid),
    Fd(BorrowedFd<'fd>),
}

/// One network interface, as a link dump reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFF_UP`: an administrator brought it up.
    pub up: bool,
    /// The driver kind (`veth`), when the link has one; `lo` and physical devices have none.
    pub kind: Option<String>,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.up { "UP" } else { "DOWN" };
        match &self.kind {
            Some(kind) => write!(f, "{}({kind}) {state}", self.name),
            None => write!(f, "{} {state}", self.name),
        }
    }
}

/// One IPv4 address on a link.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub index: u32,
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// One IPv4 route of the main table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix: u8,
    pub oif: Option<u32>,
    pub gateway: Option<Ipv4Addr>,
    /// `kernel` for the routes the kernel adds with an address, `static` for ours.
    pub protocol: String,
}

/// The builders of the rtnetlink messages, without sending them: what goes on the wire is plain data.
pub mod msg {
    use super::*;

    // ANCHOR: new_veth
    /// `RTM_NEWLINK` for a veth pair: the link `name`, whose `IFLA_LINKINFO` says kind `veth` and, nested
    /// in its data, `VETH_INFO_PEER`: a whole second link message naming the peer (veth(4)).
    pub fn new_veth(name: &str, peer: &str) -> LinkMessage {
        let mut peer_link = LinkMessage::default();
        peer_link.attributes.push(LinkAttribute::IfName(peer.to_owned()));
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))),
            ]),
        ];
        link
    }
    // ANCHOR_END: new_veth

    // ANCHOR: new_bridge
    /// `RTM_NEWLINK` for a bridge: a link of kind `bridge`, a switch in software that forwards frames
    /// between the links attached to it, its ports.
    pub fn new_bridge(name: &str) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        link
    }

    /// `RTM_SETLINK` making link `index` a port of the bridge `bridge`: `IFLA_MASTER`.
    pub fn attach(index: u32, bridge: u32) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes.push(LinkAttribute::Controller(bridge));
        link
    }
    // ANCHOR_END: new_bridge

    /// [`new_veth`] with the peer created directly in another network namespace (`IFLA_NET_NS_PID` or
    /// `IFLA_NET_NS_FD` in the peer's own message): no moment exists when both ends are in this one.
    pub fn new_veth_into(name: &str, peer: &str, target: Target<'_>) -> LinkMessage {
        let mut link = new_veth(name, peer);
        for attribute in &mut link.attributes {
            if let LinkAttribute::LinkInfo(infos) = attribute {
                for info in infos {
                    if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))) = info {
                        peer_link.attributes.push(match target {
                            Target::Pid(pid) => LinkAttribute::NetNsPid(pid.as_raw() as u32),
                            Target::Fd(fd) => LinkAttribute::NetNsFd(fd.as_raw_fd()),
                        });
                    }
                }
            }
        }
        link
    }

    // ANCHOR: move_link
    /// `RTM_SETLINK` moving link `index` into another network namespace. Its index may change there, and
    /// it goes down: a move is an unregister in one namespace and a register in the other.
    pub fn move_link(index: u32, target: Target<'_>) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes.push(match target {
            Target::Pid(pid) => LinkAttribute::NetNsPid(pid.as_raw() as u32),
            Target::Fd(fd) => LinkAttribute::NetNsFd(fd.as_raw_fd()),
        });
        link
    }
    // ANCHOR_END: move_link

    // ANCHOR: set_up
    /// `RTM_SETLINK` setting `IFF_UP` on link `index`; `change_mask` says which flags the message sets.
    pub fn set_up(index: u32) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        link
    }
    // ANCHOR_END: set_up

    /// `RTM_DELLINK` for link `index` (deleting one end of a veth pair deletes both).
    pub fn delete_link(index: u32) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link
    }

    // ANCHOR: new_address
    /// `RTM_NEWADDR`: `addr/prefix` on link `index`. For IPv4, `IFA_LOCAL` is the interface's own
    /// address and `IFA_ADDRESS` the same unless the link is point-to-point (rtnetlink(7)).
    pub fn new_address(index: u32, addr: Ipv4Addr, prefix: u8) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(addr)),
            AddressAttribute::Address(IpAddr::V4(addr)),
        ];
        message
    }
    // ANCHOR_END: new_address

    // ANCHOR: new_route
    /// `RTM_NEWROUTE` in the main table: `destination` reached through link `oif`, directly (scope link)
    /// or through `gateway` (scope universe), with `source` as the preferred source address.
    pub fn new_route(
        destination: Subnet,
        oif: u32,
        gateway: Option<Ipv4Addr>,
        source: Option<Ipv4Addr>,
    ) -> RouteMessage {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet;
        route.header.destination_prefix_length = destination.prefix();
        route.header.table = RouteHeader::RT_TABLE_MAIN;
        route.header.protocol = RouteProtocol::Static;
        route.header.kind = RouteType::Unicast;
        route.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        route.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet(destination.network())),
            RouteAttribute::Oif(oif),
        ];
        if let Some(gateway) = gateway {
            route
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        }
        if let Some(source) = source {
            route
                .attributes
                .push(RouteAttribute::PrefSource(RouteAddress::Inet(source)));
        }
        route
    }
    // ANCHOR_END: new_route

    /// Wraps a message in a netlink header: `NLM_F_REQUEST`, plus `flags`, with sequence number `seq`.
    pub fn request(message: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        bytes
    }
}

/// A netlink route socket, bound to the network namespace of the thread that opened it.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netlink")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Flags for a request that creates something that must not exist yet, and wants an acknowledgement.
const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;

impl Netlink {
    /// Opens a route socket in the caller's current network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Netlink { socket, seq: 0 })
    }

    // ANCHOR: create_veth
    /// Creates a veth pair, `name` and its peer `peer`, both in this socket's namespace and down.
    pub fn create_veth(&mut self, name: &str, peer: &str) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        check_ifname(peer)?;
        let op = format!("create veth pair {name} <-> {peer}");
        self.ack(
            &op,
            RouteNetlinkMessage::NewLink(msg::new_veth(name, peer)),
            CREATE,
        )
    }
    // ANCHOR_END: create_veth

    /// Creates a veth pair whose peer is born in the network namespace `target`: if the caller dies
    /// at any moment, the pair dies with that namespace, and no end is left behind in this one.
    pub fn create_veth_into(
        &mut self,
        name: &str,
        peer: &str,
        target: Target<'_>,
    ) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        check_ifname(peer)?;
        let op = format!("create veth pair {name} <-> {peer} (in another namespace)");
        self.ack(
            &op,
            RouteNetlinkMessage::NewLink(msg::new_veth_into(name, peer, target)),
            CREATE,
        )
    }

    /// Moves link `name` into the network namespace `target`. The caller needs CAP_NET_ADMIN over both
    /// namespaces: here, in the user namespace that owns each of them.
    pub fn move_link(&mut self, name: &str, target: Target<'_>) -> Result<(), NetlinkError> {
        let index = self.link_index(name)?;
        let how = match target {
            Target::Pid(pid) => format!("the netns of pid {pid}"),
            Target::Fd(fd) => format!("the netns behind fd {}", fd.as_raw_fd()),
        };
        let op = format!("move {name} into {how}");
        self.ack(
            &op,
            RouteNetlinkMessage::SetLink(msg::move_link(index, target)),
            NLM_F_ACK,
        )
    }

    /// Creates a bridge `name`, down and with no port.
    pub fn create_bridge(&mut self, name: &str) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        self.ack(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg::new_bridge(name)),
            CREATE,
        )
    }

    /// Makes link `name` a port of the bridge `bridge`.
    pub fn attach(&mut self, name: &str, bridge: &str) -> Result<(), NetlinkError> {
        let (index, bridge_index) = (self.link_index(name)?, self.link_index(bridge)?);
        self.ack(
            &format!("attach {name} to bridge {bridge}"),
            RouteNetlinkMessage::SetLink(msg::attach(index, bridge_index)),
            NLM_F_ACK,
        )
    }

    /// Brings the loopback device up. It needs no lookup: the kernel gives `lo` index 1 in every
    /// network namespace ([`LOOPBACK_INDEX`]), so this is one request and its acknowledgement, where
    /// [`Netlink::set_up`] dumps the links first to find the index.
    pub fn set_loopback_up(&mut self) -> Result<(), NetlinkError> {
        self.ack(
            "bring lo up",
            RouteNetlinkMessage::SetLink(msg::set_up(LOOPBACK_INDEX)),
            NLM_F_ACK,
        )
    }

    /// Brings link `name` up.
    pub fn set_up(&mut self, name: &str) -> Result<(), NetlinkError> {
        let index = self.link_index(name)?;
        self.ack(
            &format!("bring {name} up"),
            RouteNetlinkMessage::SetLink(msg::set_up(index)),
            NLM_F_ACK,
        )
    }

    /// Adds the IPv4 address `addr/prefix` to link `name`.
    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        let index = self.link_index(name)?;
        let message = RouteNetlinkMessage::NewAddress(msg::new_address(index, addr, prefix));
        self.ack(&format!("add {addr}/{prefix} to {name}"), message, CREATE)
    }

    /// Adds a route to `destination` through link `name` (and `gateway`, if given).
    pub fn add_route(
        &mut self,
        destination: Subnet,
        name: &str,
        gateway: Option<Ipv4Addr>,
        source: Option<Ipv4Addr>,
    ) -> Result<(), NetlinkError> {
        let index = self.link_index(name)?;
        let message = RouteNetlinkMessage::NewRoute(msg::new_route(destination, index, gateway, source));
        self.ack(&format!("add route {destination} dev {name}"), message, CREATE)
    }

    /// Deletes link `name` (for a veth, its peer goes too).
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        let index = self.link_index(name)?;
        self.ack(
            &format!("delete {name}"),
            RouteNetlinkMessage::DelLink(msg::delete_link(index)),
            NLM_F_ACK,
        )
    }

    // ANCHOR: links
    /// Every link in this namespace (`RTM_GETLINK` with `NLM_F_DUMP`), in index order.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let dump = self.dump("list links", RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        let mut links: Vec<Link> = dump
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewLink(link) => Some(link_from(&link)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|link| link.index);
        Ok(links)
    }
    // ANCHOR_END: links

    /// The index of link `name`, or [`NetlinkError::NoSuchLink`].
    pub fn link_index(&mut self, name: &str) -> Result<u32, NetlinkError> {
        check_ifname(name)?;
        self.links()?
            .into_iter()
            .find(|link| link.name == name)
            .map(|link| link.index)
            .ok_or_else(|| NetlinkError::NoSuchLink(name.to_owned()))
    }

    /// Every IPv4 address in this namespace.
    pub fn addresses(&mut self) -> Result<Vec<Address>, NetlinkError> {
        let mut request = AddressMessage::default();
        request.header.family = AddressFamily::Inet;
        let dump = self.dump("list addresses", RouteNetlinkMessage::GetAddress(request))?;
        Ok(dump
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewAddress(address) => address_from(&address),
                _ => None,
            })
            .collect())
    }

    /// The IPv4 routes of the main table (the local table's routes to the namespace's own addresses are
    /// left out, as `ip route` leaves them out).
    pub fn routes(&mut self) -> Result<Vec<Route>, NetlinkError> {
        let mut request = RouteMessage::default();
        request.header.address_family = AddressFamily::Inet;
        let dump = self.dump("list routes", RouteNetlinkMessage::GetRoute(request))?;
        Ok(dump
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewRoute(route) => route_from(&route),
                _ => None,
            })
            .collect())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&mut self, op: &str, message: RouteNetlinkMessage, flags: u16) -> Result<u32, NetlinkError> {
        let seq = self.next_seq();
        let bytes = msg::request(message, flags, seq);
        self.socket.send(&bytes, 0).map_err(|source| NetlinkError::Io {
            op: op.to_owned(),
            source,
        })?;
        Ok(seq)
    }

    /// Sends a request that wants an acknowledgement and waits for it: an `NLMSG_ERROR` whose code is 0
    /// means done, a negative code is the errno.
    fn ack(&mut self, op: &str, message: RouteNetlinkMessage, flags: u16) -> Result<(), NetlinkError> {
        let seq = self.send(op, message, flags | NLM_F_ACK)?;
        let mut done = false;
        self.receive(op, seq, |payload| match payload {
            NetlinkPayload::Error(error) => {
                done = true;
                match error.code {
                    None => Ok(true),
                    Some(code) => Err(kernel_error(op, code.get())),
                }
            }
            _ => Ok(false),
        })?;
        debug_assert!(done);
        Ok(())
    }

    /// Sends a dump request and collects every answer up to `NLMSG_DONE`.
    fn dump(
        &mut self,
        op: &str,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let seq = self.send(op, message, NLM_F_DUMP)?;
        let mut found = Vec::new();
        self.receive(op, seq, |payload| match payload {
            NetlinkPayload::InnerMessage(inner) => {
                found.push(inner);
                Ok(false)
            }
            NetlinkPayload::Done(_) => Ok(true),
            NetlinkPayload::Error(error) => Err(kernel_error(op, error.raw_code())),
            _ => Ok(false),
        })?;
        Ok(found)
    }

    /// Reads datagrams, each holding one or more messages, and hands those answering `seq` to `handle`
    /// until it says the exchange is over.
    fn receive(
        &mut self,
        op: &str,
        seq: u32,
        mut handle: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> Result<bool, NetlinkError>,
    ) -> Result<(), NetlinkError> {
        loop {
            let (datagram, _) = self.socket.recv_from_full().map_err(|source| NetlinkError::Io {
                op: op.to_owned(),
                source,
            })?;
            let mut rest = &datagram[..];
            while !rest.is_empty() {
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                    NetlinkError::Decode {
                        op: op.to_owned(),
                        detail: e.to_string(),
                    }
                })?;
                let length = (message.header.length as usize).max(1);
                // Messages are padded to 4 bytes (NLMSG_ALIGN).
                rest = rest.get(length.next_multiple_of(4)..).unwrap_or(&[]);
                if message.header.sequence_number != seq {
                    continue;
                }
                if handle(message.payload)? {
                    return Ok(());
                }
            }
        }
    }
}

/// A link that is deleted when this value is dropped: the way a launcher owns the host's end of a veth
/// pair, so that no interface outlives the container it served (deleting one end deletes both).
///
/// The deletion goes through a socket opened at drop time, in the dropping thread's network namespace:
/// drop the guard in the namespace the link is in.
#[derive(Debug)]
pub struct LinkGuard {
    name: String,
}

impl LinkGuard {
    /// Creates a veth pair `name`/`peer` in the caller's namespace and owns `name`.
    pub fn veth(netlink: &mut Netlink, name: &str, peer: &str) -> Result<LinkGuard, NetlinkError> {
        netlink.create_veth(name, peer)?;
        Ok(LinkGuard {
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        // Already gone is fine: its peer's namespace may have died and taken it along.
        if let Ok(mut netlink) = Netlink::open() {
            let _ = netlink.delete_link(&self.name);
        }
    }
}

fn kernel_error(op: &str, code: i32) -> NetlinkError {
    NetlinkError::Kernel {
        op: op.to_owned(),
        errno: Errno::from_raw(code.abs()),
    }
}

fn link_from(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        up: message.header.flags.contains(LinkFlags::Up),
        kind: None,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn address_from(message: &AddressMessage) -> Option<Address> {
    message.attributes.iter().find_map(|attribute| match attribute {
        AddressAttribute::Local(IpAddr::V4(addr)) => Some(Address {
            index: message.header.index,
            addr: *addr,
            prefix: message.header.prefix_len,
        }),
        _ => None,
    })
}

fn route_from(message: &RouteMessage) -> Option<Route> {
    if message.header.table != RouteHeader::RT_TABLE_MAIN {
        return None;
    }
    let mut route = Route {
        destination: Ipv4Addr::UNSPECIFIED,
        prefix: message.header.destination_prefix_length,
        oif: None,
        gateway: None,
        protocol: format!("{:?}", message.header.protocol).to_lowercase(),
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(addr)) => route.destination = *addr,
            RouteAttribute::Gateway(RouteAddress::Inet(addr)) => route.gateway = Some(*addr),
            RouteAttribute::Oif(index) => route.oif = Some(*index),
            _ => {}
        }
    }
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    const RTM_NEWLINK: u16 = 16;
    const RTM_SETLINK: u16 = 19;
    const RTM_NEWADDR: u16 = 20;
    const RTM_NEWROUTE: u16 = 24;

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([bytes[at], bytes[at + 1]])
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// Finds the first occurrence of `needle` in `hay`.
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn request_header_carries_type_flags_and_length() {
        let bytes = msg::request(RouteNetlinkMessage::SetLink(msg::set_up(7)), NLM_F_ACK, 42);
        assert_eq!(u32_at(&bytes, 0) as usize, bytes.len(), "nlmsg_len");
        assert_eq!(u16_at(&bytes, 4), RTM_SETLINK, "nlmsg_type");
        assert_eq!(u16_at(&bytes, 6), NLM_F_REQUEST | NLM_F_ACK, "nlmsg_flags");
        assert_eq!(u32_at(&bytes, 8), 42, "nlmsg_seq");
        // struct ifinfomsg follows the 16-byte header: family, pad, type, index, flags, change.
        assert_eq!(u32_at(&bytes, 16 + 4), 7, "ifi_index");
        assert_eq!(u32_at(&bytes, 16 + 8), libc::IFF_UP as u32, "ifi_flags");
        assert_eq!(u32_at(&bytes, 16 + 12), libc::IFF_UP as u32, "ifi_change");
        assert_eq!(bytes.len(), 16 + 16, "no attributes");
    }

    #[test]
    fn veth_message_nests_the_peer_in_linkinfo() {
        let message = msg::new_veth("veth-red", "veth-blue");
        let bytes = msg::request(RouteNetlinkMessage::NewLink(message.clone()), CREATE, 1);
        assert_eq!(u16_at(&bytes, 4), RTM_NEWLINK);
        assert_eq!(
            u16_at(&bytes, 6),
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK
        );
        let name = find(&bytes, b"veth-red\0").expect("IFLA_IFNAME");
        let kind = find(&bytes, b"veth\0").expect("IFLA_INFO_KIND");
        let peer = find(&bytes, b"veth-blue\0").expect("peer's IFLA_IFNAME");
        assert!(
            name < kind && kind < peer,
            "name, then kind, then the nested peer"
        );
        // The attribute before the name is IFLA_IFNAME (3), 4 bytes of header + 9 bytes of name.
        assert_eq!(u16_at(&bytes, name - 2), libc::IFLA_IFNAME);
        assert_eq!(u16_at(&bytes, name - 4), 4 + 9);
        // And it parses back into the same message.
        let parsed = LinkMessage::parse(&bytes[16..]).unwrap();
        assert_eq!(parsed, message);
    }

    #[test]
    fn move_message_names_the_namespace_by_pid_or_fd() {
        let by_pid = msg::move_link(3, Target::Pid(Pid::from_raw(4242)));
        assert_eq!(by_pid.header.index, 3);
        assert_eq!(by_pid.attributes, [LinkAttribute::NetNsPid(4242)]);
        let mut bytes = vec![0; by_pid.buffer_len()];
        by_pid.emit(&mut bytes);
        // ifinfomsg (16) then IFLA_NET_NS_PID (19): len 8, type 19, u32 pid.
        assert_eq!(u16_at(&bytes, 16), 8);
        assert_eq!(u16_at(&bytes, 18), libc::IFLA_NET_NS_PID);
        assert_eq!(u32_at(&bytes, 20), 4242);

        let file = std::fs::File::open("/proc/self/ns/net").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&file);
        let by_fd = msg::move_link(3, Target::Fd(fd));
        let mut bytes = vec![0; by_fd.buffer_len()];
        by_fd.emit(&mut bytes);
        assert_eq!(u16_at(&bytes, 18), libc::IFLA_NET_NS_FD);
        assert_eq!(u32_at(&bytes, 20), fd.as_raw_fd() as u32);
    }

    #[test]
    fn address_message_sets_local_and_prefix() {
        let message = msg::new_address(5, Ipv4Addr::new(10, 200, 0, 1), 32);
        let bytes = msg::request(RouteNetlinkMessage::NewAddress(message), CREATE, 1);
        assert_eq!(u16_at(&bytes, 4), RTM_NEWADDR);
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        assert_eq!(bytes[16], libc::AF_INET as u8);
        assert_eq!(bytes[17], 32);
        assert_eq!(u32_at(&bytes, 20), 5);
        assert!(find(&bytes, &[10, 200, 0, 1]).is_some());
        assert_eq!(
            address_from(&msg::new_address(5, Ipv4Addr::new(10, 200, 0, 1), 32))
                .unwrap()
                .addr,
            Ipv4Addr::new(10, 200, 0, 1)
        );
    }

    #[test]
    fn route_message_is_static_in_the_main_table() {
        let subnet: Subnet = "10.200.0.0/24".parse().unwrap();
        let message = msg::new_route(subnet, 9, None, Some(Ipv4Addr::new(10, 200, 0, 1)));
        let bytes = msg::request(RouteNetlinkMessage::NewRoute(message.clone()), CREATE, 1);
        assert_eq!(u16_at(&bytes, 4), RTM_NEWROUTE);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type.
        assert_eq!(
            &bytes[16..24],
            &[
                libc::AF_INET as u8,
                24,
                0,
                0,
                254,
                libc::RTPROT_STATIC,
                libc::RT_SCOPE_LINK,
                libc::RTN_UNICAST
            ]
        );
        let route = route_from(&message).unwrap();
        assert_eq!(route.destination, Ipv4Addr::new(10, 200, 0, 0));
        assert_eq!((route.prefix, route.oif, route.gateway), (24, Some(9), None));
        assert_eq!(route.protocol, "static");

        let via = msg::new_route(subnet, 9, Some(Ipv4Addr::new(10, 200, 0, 2)), None);
        assert_eq!(via.header.scope, RouteScope::Universe);
        assert!(
            via.attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
                    10, 200, 0, 2
                ))))
        );
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("veth-red").is_ok());
        assert!(check_ifname(&"a".repeat(15)).is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a:b", &"a".repeat(16)] {
            assert!(
                matches!(check_ifname(bad), Err(NetlinkError::BadName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lists_loopback_in_own_namespace() {
        // A dump needs no privilege: any process may read its own namespace's links.
        let mut netlink = Netlink::open().unwrap();
        let links = netlink.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
        assert_eq!(netlink.link_index("lo").unwrap(), LOOPBACK_INDEX);
        assert!(matches!(
            netlink.link_index("no-such-link"),
            Err(NetlinkError::NoSuchLink(_))
        ));
    }
}
