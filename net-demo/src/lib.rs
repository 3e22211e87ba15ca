//! Chapter: the network namespace, which gives a process its own interfaces, addresses, routes,
//! ports, `/proc/net` and (once remounted) `/sys/class/net` (network_namespaces(7)); the veth pair that
//! links two of them (veth(4)), made over rtnetlink (rtnetlink(7)).
//!
//! Two namespaces, `red` and `blue`, are each held by a process of their own ([`netns::Netns`]). As an
//! ordinary user, `red` is made inside a new user namespace and `blue` joins that user namespace before
//! making its network namespace, so that one user namespace owns both and grants what configuring them
//! needs. Packets only ever travel inside and between these namespaces; the host's namespace is read,
//! never changed.
//!
//! Each function is one step of the lesson and returns plain data; `main.rs` prints it.

pub mod netlink;
pub mod netns;
pub mod subnet;

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nskit::UserNs;
use nskit::ns::{Kind, NsId, Proc, ns_id};

use crate::netlink::{Address, Link, Netlink, NetlinkError, Route};
use crate::netns::{Netns, NetnsError, wait_until};
use crate::subnet::Subnet;

/// The names the demo gives its interfaces: one veth pair between `red` and `blue`, and a second one
/// that step 5 moves around. The host's own interface list must never contain any of them.
pub const RED_VETH: &str = "veth-red";
pub const BLUE_VETH: &str = "veth-blue";
pub const MOVE_RED: &str = "mv-red";
pub const MOVE_BLUE: &str = "mv-blue";
pub const DEMO_LINKS: [&str; 4] = [RED_VETH, BLUE_VETH, MOVE_RED, MOVE_BLUE];

/// The TCP port every server of the demo listens on, in each namespace.
pub const PORT: u16 = 7000;

/// How long any one socket operation may take: every peer is on this machine, so this is generous.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("cannot read the host's namespaces: {0}")]
    Host(#[source] io::Error),
    #[error("{0}")]
    Unexpected(String),
}

/// A TCP conversation as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub sent: String,
    pub received: String,
}

/// A connection the kernel refused, with its errno (ENETUNREACH, ECONNREFUSED, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    #[serde(with = "nskit::channel::errno")]
    pub errno: Errno,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self.errno, self.errno.desc())
    }
}

/// A TCP conversation as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Served {
    pub local: SocketAddr,
    pub client: SocketAddr,
    pub received: String,
}

// ANCHOR: call
/// The client's side of a conversation: connect to `addr`, send `payload`, close the sending half, and
/// read the answer to the end. With `own` (a listener of this process on `addr`) it also answers the
/// call itself: `connect` returns once the kernel has queued the connection, before `accept`.
pub fn call(addr: SocketAddr, payload: &str, own: Option<&TcpListener>) -> io::Result<Exchange> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    let (local, remote) = (stream.local_addr()?, stream.peer_addr()?);
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(payload.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    if let Some(listener) = own {
        serve_one(listener, false)?;
    }
    let mut received = String::new();
    stream.read_to_string(&mut received)?;
    Ok(Exchange {
        local,
        remote,
        sent: payload.to_owned(),
        received,
    })
}

/// The server's side: accept one connection, read it to the end, and answer with the same bytes
/// (`echo`) or with a greeting that names this process's network namespace.
pub fn serve_one(listener: &TcpListener, echo: bool) -> io::Result<Served> {
    let (mut stream, client) = accept_within(listener, IO_TIMEOUT)?;
    let local = stream.local_addr()?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut received = String::new();
    stream.read_to_string(&mut received)?;
    let answer = if echo {
        received.clone()
    } else {
        format!("hello from {}", ns_id(Proc::Current, Kind::Net)?)
    };
    stream.write_all(answer.as_bytes())?;
    Ok(Served {
        local,
        client,
        received,
    })
}
// ANCHOR_END: call

fn accept_within(listener: &TcpListener, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, addr)) => {
                stream.set_nonblocking(false)?;
                return Ok((stream, addr));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no client came"));
            }
            Err(e) => return Err(e),
        }
    }
}

// ANCHOR: proc_views
/// The interface names in `/proc/net/dev` (proc(5)): `/proc/net` is a link to `/proc/self/net`, so it
/// always shows the reader's own network namespace, without any remount.
pub fn proc_net_dev() -> io::Result<Vec<String>> {
    let text = fs::read_to_string("/proc/net/dev")?;
    // Two header lines, then `  name: counters...`.
    Ok(text
        .lines()
        .skip(2)
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.trim().to_owned()))
        .collect())
}

/// The entries of `/sys/class/net`, sorted. sysfs shows the network namespace of whoever mounted it,
/// so until a namespace mounts its own, this lists the host's interfaces.
pub fn sys_class_net() -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}

/// Mounts a new sysfs on `/sys`. The kernel allows it only to a process with CAP_SYS_ADMIN in the
/// user namespace that owns its network namespace (sysfs(5), user_namespaces(7)).
pub fn mount_own_sysfs() -> Result<(), Errno> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("sysfs"), "/sys", Some("sysfs"), flags, None::<&str>)
}
// ANCHOR_END: proc_views

/// Makes every mount in the caller's (new) mount namespace private, so that the sysfs it mounts does
/// not propagate back to the host's mount namespace (mount_namespaces(7)).
pub fn make_mounts_private() -> Result<(), Errno> {
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
}

/// Step 1: what a brand-new network namespace holds, and what loopback needs.
#[derive(Clone, Debug)]
pub struct Loopback {
    pub ns: NsId,
    pub before: Vec<Link>,
    pub while_down: Result<Exchange, Refused>,
    pub after: Vec<Link>,
    pub while_up: Result<Exchange, Refused>,
}

// ANCHOR: loopback
/// Step 1: a new network namespace has one interface, `lo`, and it is down: a listener on
/// 127.0.0.1 can be bound, but connecting to it fails with ENETUNREACH (no route to 127.0.0.0/8 yet).
/// Bringing `lo` up adds its address and routes, and the same call succeeds.
pub fn loopback(netns: &mut Netns) -> Result<Loopback, StepError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PORT));
    let before = netns.links()?;
    netns.listen(addr)?;
    let while_down = netns.call(addr, "ping over lo")?;
    netns.set_up("lo")?;
    let after = netns.links()?;
    let while_up = netns.call(addr, "ping over lo")?;
    Ok(Loopback {
        ns: netns.ns(Kind::Net)?,
        before,
        while_down,
        after,
        while_up,
    })
}
// ANCHOR_END: loopback

/// The two namespaces of the demo, linked by a veth pair once [`Topology::wire`] has run.
#[derive(Debug)]
pub struct Topology {
    pub red: Netns,
    pub blue: Netns,
    pub subnet: Subnet,
}

impl Topology {
    /// Makes `red` (in a new user namespace when `user` wants one) and `blue` (in the same user
    /// namespace as `red`), each with nothing but a loopback interface that is down.
    pub fn create(user: UserNs, subnet: Subnet) -> Result<Topology, StepError> {
        let red = Netns::create("red", user)?;
        let blue = Netns::sibling("blue", &red)?;
        Ok(Topology { red, blue, subnet })
    }

    /// `red`'s address: the subnet's first host.
    pub fn red_addr(&self) -> Ipv4Addr {
        self.subnet.host(1)
    }

    /// `blue`'s address: the subnet's second host.
    pub fn blue_addr(&self) -> Ipv4Addr {
        self.subnet.host(2)
    }

    // ANCHOR: wire
    /// Step 2: the veth pair. `red` creates both ends, then moves `veth-blue` into `blue`'s namespace
    /// (naming it by `blue`'s PID). Each side brings its links up, gives its end a /32 address, and
    /// routes the subnet through its end: with a /32 the kernel adds no route of its own, so the route
    /// is what tells each side the other is on the far end of the cable.
    pub fn wire(&mut self) -> Result<(), StepError> {
        let (red_addr, blue_addr, subnet) = (self.red_addr(), self.blue_addr(), self.subnet);
        self.red.create_veth(RED_VETH, BLUE_VETH)?;
        self.red.move_by_pid(BLUE_VETH, &self.blue)?;
        for (netns, end, addr) in [
            (&mut self.red, RED_VETH, red_addr),
            (&mut self.blue, BLUE_VETH, blue_addr),
        ] {
            netns.set_up("lo")?;
            netns.set_up(end)?;
            netns.add_address(end, addr, 32)?;
            netns.add_route(subnet, end, addr)?;
        }
        Ok(())
    }
    // ANCHOR_END: wire
}

/// Step 2's proof: a TCP echo from `red` to `blue` across the pair.
#[derive(Clone, Debug)]
pub struct Echo {
    pub client_ns: NsId,
    pub server_ns: NsId,
    pub client: Result<Exchange, Refused>,
    pub server: Option<Served>,
}

// ANCHOR: echo
/// Step 2, continued: `blue` listens on its veth address, `red` connects to it and sends `payload`;
/// `blue` sends the same bytes back.
pub fn echo_across(topology: &mut Topology, payload: &str) -> Result<Echo, StepError> {
    let addr = SocketAddr::from((topology.blue_addr(), PORT));
    let listening = topology.blue.serve(addr, true)?;
    let client = topology.red.call(addr, payload)?;
    // A refused client leaves the server to time out; its error then says nothing new.
    let server = match (&client, listening.finish()) {
        (_, Ok(served)) => Some(served),
        (Err(_), Err(_)) => None,
        (Ok(_), Err(e)) => return Err(e.into()),
    };
    Ok(Echo {
        client_ns: topology.red.ns(Kind::Net)?,
        server_ns: topology.blue.ns(Kind::Net)?,
        client,
        server,
    })
}
// ANCHOR_END: echo

/// Step 3: one namespace's use of [`PORT`] on its loopback.
#[derive(Clone, Debug)]
pub struct PortUse {
    pub ns: NsId,
    /// Binding the port a second time in the same namespace.
    pub second_bind: Result<(), Errno>,
    pub exchange: Result<Exchange, Refused>,
}

// ANCHOR: same_port
/// Step 3: `red` and `blue` both bind 127.0.0.1:[`PORT`] and hold it at the same time; a second bind
/// in the same namespace fails with EADDRINUSE. Then each namespace calls 127.0.0.1:PORT, and the
/// server that answers names its namespace: each client reaches its own.
pub fn same_port(topology: &mut Topology) -> Result<[PortUse; 2], StepError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PORT));
    let [red, blue] = [&mut topology.red, &mut topology.blue];
    red.listen(addr)?;
    blue.listen(addr)?;
    let mut uses = Vec::new();
    for netns in [red, blue] {
        let second_bind = match netns.listen(addr) {
            Ok(()) => Ok(()),
            Err(NetnsError::Remote {
                errno: Some(errno), ..
            }) => Err(errno),
            Err(e) => return Err(e.into()),
        };
        let exchange = netns.call(addr, "who answers?")?;
        uses.push(PortUse {
            ns: netns.ns(Kind::Net)?,
            second_bind,
            exchange,
        });
    }
    uses.try_into()
        .map_err(|_| StepError::Unexpected("two namespaces, two answers".into()))
}
// ANCHOR_END: same_port

/// Step 4: one namespace's network, as seen from inside it.
#[derive(Clone, Debug)]
pub struct View {
    pub ns: NsId,
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub proc_net_dev: Vec<String>,
}

impl View {
    /// The name of link `index`, for printing routes and addresses.
    pub fn link_name(&self, index: u32) -> &str {
        self.links
            .iter()
            .find(|l| l.index == index)
            .map_or("?", |l| l.name.as_str())
    }
}

/// Step 4: everything `netns` sees of its network.
pub fn view(netns: &mut Netns) -> Result<View, StepError> {
    Ok(View {
        ns: netns.ns(Kind::Net)?,
        links: netns.links()?,
        addresses: netns.addresses()?,
        routes: netns.routes()?,
        proc_net_dev: netns.proc_net_dev()?,
    })
}

/// The host's side, reduced to what is the same on every machine: how many interfaces it has, and
/// which of the demo's names among them (there must be none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostView {
    pub ns: NsId,
    pub names: Vec<String>,
}

impl HostView {
    pub fn demo_links(&self) -> Vec<&str> {
        DEMO_LINKS
            .into_iter()
            .filter(|name| self.names.iter().any(|n| n == name))
            .collect()
    }
}

/// Reads the host's interface list over netlink. A dump changes nothing and needs no privilege.
pub fn host_view() -> Result<HostView, StepError> {
    let mut names: Vec<String> = Netlink::open()?.links()?.into_iter().map(|l| l.name).collect();
    names.sort();
    Ok(HostView {
        ns: ns_id(Proc::Current, Kind::Net).map_err(StepError::Host)?,
        names,
    })
}

/// Step 4, sysfs: what `/sys/class/net` lists in a namespace before and after it mounts its own sysfs.
#[derive(Clone, Debug)]
pub struct Sysfs {
    pub ns: NsId,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

// ANCHOR: sysfs
/// Step 4, continued: `netns` lists `/sys/class/net`, mounts a fresh sysfs in its own mount namespace,
/// and lists it again. Before, it sees the host's interfaces; after, its own.
pub fn remount_sysfs(netns: &mut Netns) -> Result<Sysfs, StepError> {
    let before = netns.sys_class_net()?;
    netns.remount_sysfs()?;
    let after = netns.sys_class_net()?;
    Ok(Sysfs {
        ns: netns.ns(Kind::Net)?,
        before,
        after,
    })
}
// ANCHOR_END: sysfs

/// Step 5: a second veth pair made in `blue`, one end moved into `red` by fd.
#[derive(Clone, Debug)]
pub struct Moved {
    pub blue_before: Vec<Link>,
    pub blue_after: Vec<Link>,
    pub red_after: Vec<Link>,
    /// Trying to move `lo`, which the kernel pins to its namespace.
    pub lo_refused: Option<Errno>,
}

// ANCHOR: move_device
/// Step 5: `blue` creates the pair `mv-blue`/`mv-red` and moves `mv-red` into `red`'s namespace
/// through an open `/proc/<red>/ns/net`. Then it tries the same with `lo`, which the kernel refuses
/// (EINVAL): a loopback device belongs to its namespace for life.
pub fn move_device(topology: &mut Topology) -> Result<Moved, StepError> {
    let blue = &mut topology.blue;
    blue.create_veth(MOVE_BLUE, MOVE_RED)?;
    let blue_before = blue.links()?;
    blue.move_by_fd(MOVE_RED, &topology.red)?;
    let lo_refused = match blue.move_by_fd("lo", &topology.red) {
        Ok(()) => None,
        Err(NetnsError::Remote { errno, .. }) => errno,
        Err(e) => return Err(e.into()),
    };
    Ok(Moved {
        blue_before,
        blue_after: blue.links()?,
        red_after: topology.red.links()?,
        lo_refused,
    })
}
// ANCHOR_END: move_device

/// Step 5, continued: what `red` has left once `blue` is gone.
#[derive(Clone, Debug)]
pub struct Vanished {
    pub blue_ns: NsId,
    pub red_before: Vec<Link>,
    pub red_after: Vec<Link>,
}

// ANCHOR: vanish
/// Step 5, continued: `blue`'s process exits. Nothing else holds its network namespace, so the kernel
/// destroys it, and with it every virtual device inside: `veth-blue` and `mv-blue`. A veth end never
/// outlives its peer, so `veth-red` and `mv-red` vanish from `red` too. (Namespaces are torn down
/// asynchronously, so this waits for it, up to a few seconds.)
pub fn blue_exits(topology: Topology) -> Result<(Netns, Vanished), StepError> {
    let Topology { mut red, blue, .. } = topology;
    let blue_ns = blue.ns(Kind::Net)?;
    let red_before = red.links()?;
    blue.finish()?;
    let mut red_after = red_before.clone();
    let mut failure = None;
    wait_until(IO_TIMEOUT, || match red.links() {
        Ok(links) => {
            red_after = links;
            !red_after.iter().any(|l| l.name == RED_VETH || l.name == MOVE_RED)
        }
        Err(e) => {
            failure = Some(e);
            true
        }
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok((
        red,
        Vanished {
            blue_ns,
            red_before,
            red_after,
        },
    ))
}
// ANCHOR_END: vanish

/// Step 6: which user namespace each side is in.
#[derive(Clone, Copy, Debug)]
pub struct Owners {
    pub host: NsId,
    pub red: NsId,
    pub blue: NsId,
}

/// Step 6: the user namespaces of the host, `red` and `blue`.
pub fn owners(topology: &Topology) -> Result<Owners, StepError> {
    Ok(Owners {
        host: ns_id(Proc::Current, Kind::User).map_err(StepError::Host)?,
        red: topology.red.ns(Kind::User)?,
        blue: topology.blue.ns(Kind::User)?,
    })
}
