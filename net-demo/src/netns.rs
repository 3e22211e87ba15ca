//! A network namespace held by a small process of its own (network_namespaces(7)).
//!
//! A netlink socket talks to the namespace it was created in, and a TCP socket lives in one; other
//! namespaces are reached only through explicit attributes (`IFLA_NET_NS_FD` to move a device,
//! `IFLA_TARGET_NETNSID`). The simple way is a process inside: so each namespace of the demo is a
//! child process that made it (or, for the second one, entered the first one's user namespace and
//! then made it) and then does what the host side asks over its [`nskit::Channel`], one request at a
//! time, answering with plain fields. The host process itself never enters any of them and never
//! changes its own namespace.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use nskit::ns::{Kind, NsId, Proc, ns_id, open_ns};
use nskit::{Channel, Child, Exit, Spawn, SpawnError, UserNs};

use crate::netlink::{Address, Link, Netlink, NetlinkError, Route, Target};
use crate::subnet::Subnet;
use crate::{Exchange, Refused, Served};

/// Why talking to a namespace's process failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot open the namespaces of {label}: {source}")]
    Open {
        label: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("lost contact with {label}: {source}")]
    Channel {
        label: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("in {label}: {message}")]
    Remote {
        label: &'static str,
        message: String,
        /// The errno behind the failure, when the kernel refused something.
        errno: Option<Errno>,
    },
    #[error("{label} answered something unexpected: {reply:?}")]
    Reply { label: &'static str, reply: Vec<String> },
}

/// A process holding a network namespace (and a mount namespace, for its own sysfs).
#[derive(Debug)]
pub struct Netns {
    label: &'static str,
    child: Child,
    user_ns: bool,
}

impl Netns {
    // ANCHOR: create
    /// A process in new network and mount namespaces; with `user` wanting one, also in a new user
    /// namespace, which then owns the other two. That is all an ordinary user needs.
    pub fn create(label: &'static str, user: UserNs) -> Result<Netns, NetnsError> {
        let spawn = Spawn::new(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).user(user);
        let child = spawn.run(|channel| agent(channel, || Ok(())))?;
        Netns::ready(label, child, user.wanted())
    }

    /// A second network namespace owned by the same user namespace as `first`: the new process joins
    /// `first`'s user namespace (setns(2)), where it holds every capability, and only then unshares
    /// its network and mount namespaces. Without that, `first` could not move a device into it.
    pub fn sibling(label: &'static str, first: &Netns) -> Result<Netns, NetnsError> {
        let user = match first.user_ns {
            true => Some(
                open_ns(Proc::Pid(first.pid()), Kind::User).map_err(|source| NetnsError::Open {
                    label: first.label,
                    source,
                })?,
            ),
            false => None,
        };
        let spawn = Spawn::new(CloneFlags::empty()).user(UserNs::Never);
        let child = spawn.run(|channel| {
            agent(channel, || {
                if let Some(user) = &user {
                    setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
                        .map_err(|e| format!("cannot join the user namespace: {e}"))?;
                }
                unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("cannot unshare the network namespace: {e}"))
            })
        })?;
        Netns::ready(label, child, first.user_ns)
    }
    // ANCHOR_END: create

    fn ready(label: &'static str, child: Child, user_ns: bool) -> Result<Netns, NetnsError> {
        let mut netns = Netns {
            label,
            child,
            user_ns,
        };
        let reply = netns.receive()?;
        netns.expect_ok(reply)?;
        Ok(netns)
    }

    pub fn label(&self) -> &'static str {
        self.label
    }

    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// Whether this namespace is owned by a user namespace the demo made.
    pub fn in_user_ns(&self) -> bool {
        self.user_ns
    }

    /// The process's namespace of `kind`, read from the host side.
    pub fn ns(&self, kind: Kind) -> Result<NsId, NetnsError> {
        ns_id(Proc::Pid(self.pid()), kind).map_err(|source| NetnsError::Open {
            label: self.label,
            source,
        })
    }

    fn receive(&mut self) -> Result<Vec<String>, NetnsError> {
        let label = self.label;
        self.child
            .channel()
            .recv_fields()
            .map_err(|source| NetnsError::Channel { label, source })
    }

    /// Turns `["ok", rest...]` into `rest`, `["error", why]` into [`NetnsError::Remote`].
    fn expect_ok(&self, mut reply: Vec<String>) -> Result<Vec<String>, NetnsError> {
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(reply.split_off(1)),
            Some("error") if reply.len() == 3 => Err(NetnsError::Remote {
                label: self.label,
                errno: reply[2].parse().ok().map(Errno::from_raw),
                message: reply[1].clone(),
            }),
            _ => Err(self.bad(reply)),
        }
    }

    fn bad(&self, reply: Vec<String>) -> NetnsError {
        NetnsError::Reply {
            label: self.label,
            reply,
        }
    }

    fn ask(&mut self, request: &[&str]) -> Result<Vec<String>, NetnsError> {
        let label = self.label;
        self.child
            .channel()
            .send_fields(request)
            .map_err(|source| NetnsError::Channel { label, source })?;
        let reply = self.receive()?;
        self.expect_ok(reply)
    }

    /// The links of this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetnsError> {
        let fields = self.ask(&["links"])?;
        fields
            .chunks(4)
            .map(|f| match f {
                [index, name, up, kind] => Ok(Link {
                    index: index.parse().map_err(|_| self.bad(f.to_vec()))?,
                    name: name.clone(),
                    up: up == "up",
                    kind: (!kind.is_empty()).then(|| kind.clone()),
                }),
                _ => Err(self.bad(f.to_vec())),
            })
            .collect()
    }

    /// The IPv4 addresses of this namespace.
    pub fn addresses(&mut self) -> Result<Vec<Address>, NetnsError> {
        let fields = self.ask(&["addrs"])?;
        fields
            .chunks(3)
            .map(|f| match f {
                [index, addr, prefix] => Ok(Address {
                    index: index.parse().map_err(|_| self.bad(f.to_vec()))?,
                    addr: addr.parse().map_err(|_| self.bad(f.to_vec()))?,
                    prefix: prefix.parse().map_err(|_| self.bad(f.to_vec()))?,
                }),
                _ => Err(self.bad(f.to_vec())),
            })
            .collect()
    }

    /// The main routing table of this namespace.
    pub fn routes(&mut self) -> Result<Vec<Route>, NetnsError> {
        let fields = self.ask(&["routes"])?;
        fields
            .chunks(5)
            .map(|f| match f {
                [dest, prefix, oif, gateway, protocol] => Ok(Route {
                    destination: dest.parse().map_err(|_| self.bad(f.to_vec()))?,
                    prefix: prefix.parse().map_err(|_| self.bad(f.to_vec()))?,
                    oif: oif.parse().ok(),
                    gateway: gateway.parse().ok(),
                    protocol: protocol.clone(),
                }),
                _ => Err(self.bad(f.to_vec())),
            })
            .collect()
    }

    pub fn set_up(&mut self, name: &str) -> Result<(), NetnsError> {
        self.ask(&["up", name]).map(drop)
    }

    pub fn create_veth(&mut self, name: &str, peer: &str) -> Result<(), NetnsError> {
        self.ask(&["veth", name, peer]).map(drop)
    }

    /// Moves link `name` into `other`'s namespace, naming it by `other`'s PID.
    pub fn move_by_pid(&mut self, name: &str, other: &Netns) -> Result<(), NetnsError> {
        self.ask(&["move-pid", name, &other.pid().to_string()]).map(drop)
    }

    /// Moves link `name` into `other`'s namespace through an fd on `/proc/<pid>/ns/net`.
    pub fn move_by_fd(&mut self, name: &str, other: &Netns) -> Result<(), NetnsError> {
        self.ask(&["move-fd", name, &other.pid().to_string()]).map(drop)
    }

    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetnsError> {
        self.ask(&["addr", name, &addr.to_string(), &prefix.to_string()])
            .map(drop)
    }

    /// Routes `subnet` through link `name`, with `source` as the preferred source address.
    pub fn add_route(&mut self, subnet: Subnet, name: &str, source: Ipv4Addr) -> Result<(), NetnsError> {
        self.ask(&["route", &subnet.to_string(), name, &source.to_string()])
            .map(drop)
    }

    /// Binds a TCP listener on `addr` inside this namespace and keeps it until [`Netns::call`] uses it.
    pub fn listen(&mut self, addr: SocketAddr) -> Result<(), NetnsError> {
        self.ask(&["listen", &addr.to_string()]).map(drop)
    }

    /// Starts a one-connection TCP server on `addr`; [`Listening::finish`] collects what it served.
    /// With `echo`, it sends back the bytes it got; otherwise it greets with its own namespace.
    pub fn serve(&mut self, addr: SocketAddr, echo: bool) -> Result<Listening<'_>, NetnsError> {
        let mode = if echo { "echo" } else { "greet" };
        self.ask(&["serve", &addr.to_string(), mode])?;
        Ok(Listening { netns: self })
    }

    /// Connects to `addr` from inside this namespace, sends `payload`, and reads the answer. When this
    /// namespace's own listener is on `addr`, it also answers the call (the kernel completes the
    /// handshake before `accept`, so one thread can be both ends).
    pub fn call(&mut self, addr: SocketAddr, payload: &str) -> Result<Result<Exchange, Refused>, NetnsError> {
        let reply = self.ask(&["call", &addr.to_string(), payload])?;
        self.exchange(reply)
    }

    fn exchange(&self, reply: Vec<String>) -> Result<Result<Exchange, Refused>, NetnsError> {
        match reply.as_slice() {
            [local, remote, sent, received] => Ok(Ok(Exchange {
                local: local.parse().map_err(|_| self.bad(reply.clone()))?,
                remote: remote.parse().map_err(|_| self.bad(reply.clone()))?,
                sent: sent.clone(),
                received: received.clone(),
            })),
            [errno] => Ok(Err(Refused {
                errno: nix::errno::Errno::from_raw(errno.parse().map_err(|_| self.bad(reply.clone()))?),
            })),
            _ => Err(self.bad(reply)),
        }
    }

    /// The interface names in `/proc/net/dev`, which always shows the reader's network namespace.
    pub fn proc_net_dev(&mut self) -> Result<Vec<String>, NetnsError> {
        self.ask(&["procnetdev"])
    }

    /// The entries of `/sys/class/net`, which show the network namespace sysfs was mounted in.
    pub fn sys_class_net(&mut self) -> Result<Vec<String>, NetnsError> {
        self.ask(&["sysnet"])
    }

    /// Mounts a fresh sysfs on `/sys` in this process's own mount namespace.
    pub fn remount_sysfs(&mut self) -> Result<(), NetnsError> {
        self.ask(&["mount-sysfs"]).map(drop)
    }

    /// Asks the process to exit, and reaps it: the namespaces die with it unless something else holds
    /// them.
    pub fn finish(mut self) -> Result<Exit, NetnsError> {
        let label = self.label;
        self.child
            .channel()
            .send("exit")
            .map_err(|source| NetnsError::Channel { label, source })?;
        self.child
            .wait()
            .map_err(|source| NetnsError::Channel { label, source })
    }
}

/// A server waiting for its one connection.
#[derive(Debug)]
pub struct Listening<'a> {
    netns: &'a mut Netns,
}

impl Listening<'_> {
    /// Waits for the server to have answered its client.
    pub fn finish(self) -> Result<Served, NetnsError> {
        let reply = self.netns.receive()?;
        let fields = self.netns.expect_ok(reply)?;
        match fields.as_slice() {
            [local, client, received] => Ok(Served {
                local: local.parse().map_err(|_| self.netns.bad(fields.clone()))?,
                client: client.parse().map_err(|_| self.netns.bad(fields.clone()))?,
                received: received.clone(),
            }),
            _ => Err(self.netns.bad(fields)),
        }
    }
}

/// What the namespace's process runs: enter, say ready, then answer requests until `exit`.
fn agent(channel: &mut Channel, enter: impl FnOnce() -> Result<(), String>) -> i32 {
    // If the demo dies, so does every namespace it made: nothing is left running.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let entered = enter().and_then(|()| crate::make_mounts_private().map_err(|e| e.to_string()));
    let ready = match entered {
        Ok(()) => vec!["ok".to_owned()],
        Err(e) => vec!["error".to_owned(), e, String::new()],
    };
    if channel.send_fields(&ready).is_err() || ready.len() > 1 {
        return 1;
    }
    let mut agent = Agent {
        listeners: Vec::new(),
    };
    loop {
        let Ok(request) = channel.recv_fields() else {
            return 1;
        };
        if request.first().map(String::as_str) == Some("exit") {
            return 0;
        }
        let reply = match agent.answer(channel, &request) {
            Ok(mut fields) => {
                fields.insert(0, "ok".to_owned());
                fields
            }
            Err(failure) => vec![
                "error".to_owned(),
                failure.message,
                failure.errno.map(|e| (e as i32).to_string()).unwrap_or_default(),
            ],
        };
        if channel.send_fields(&reply).is_err() {
            return 1;
        }
    }
}

/// A request that failed inside the namespace.
struct Failure {
    message: String,
    errno: Option<Errno>,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, errno: None }
    }
}

impl From<NetlinkError> for Failure {
    fn from(e: NetlinkError) -> Failure {
        Failure {
            errno: e.errno(),
            message: e.to_string(),
        }
    }
}

fn io_failure(what: String, e: io::Error) -> Failure {
    Failure {
        message: format!("{what}: {e}"),
        errno: e.raw_os_error().map(Errno::from_raw),
    }
}

fn parse<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, Failure> {
    text.parse()
        .map_err(|_| Failure::from(format!("bad {what} {text:?}")))
}

/// The agent's state between requests: listeners bound and not yet called.
struct Agent {
    listeners: Vec<TcpListener>,
}

impl Agent {
    /// One request, answered inside the namespace.
    fn answer(&mut self, channel: &mut Channel, request: &[String]) -> Result<Vec<String>, Failure> {
        let args: Vec<&str> = request.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["links"] => Ok(Netlink::open()?
                .links()?
                .into_iter()
                .flat_map(|l| {
                    let up = if l.up { "up" } else { "down" };
                    [
                        l.index.to_string(),
                        l.name,
                        up.to_owned(),
                        l.kind.unwrap_or_default(),
                    ]
                })
                .collect()),
            ["addrs"] => Ok(Netlink::open()?
                .addresses()?
                .into_iter()
                .flat_map(|a| [a.index.to_string(), a.addr.to_string(), a.prefix.to_string()])
                .collect()),
            ["routes"] => Ok(Netlink::open()?
                .routes()?
                .into_iter()
                .flat_map(|r| {
                    [
                        r.destination.to_string(),
                        r.prefix.to_string(),
                        r.oif.map(|i| i.to_string()).unwrap_or_default(),
                        r.gateway.map(|g| g.to_string()).unwrap_or_default(),
                        r.protocol,
                    ]
                })
                .collect()),
            ["up", name] => netlink(|n| n.set_up(name)),
            ["veth", name, peer] => netlink(|n| n.create_veth(name, peer)),
            ["move-pid", name, pid] => {
                let pid = Pid::from_raw(parse("pid", pid)?);
                netlink(|n| n.move_link(name, Target::Pid(pid)))
            }
            ["move-fd", name, pid] => {
                let path = format!("/proc/{pid}/ns/net");
                let file = File::open(&path).map_err(|e| io_failure(format!("cannot open {path}"), e))?;
                netlink(|n| n.move_link(name, Target::Fd(file.as_fd())))
            }
            ["addr", name, addr, prefix] => {
                let (addr, prefix) = (parse("address", addr)?, parse("prefix", prefix)?);
                netlink(|n| n.add_address(name, addr, prefix))
            }
            ["route", subnet, name, source] => {
                let (subnet, source) = (parse("subnet", subnet)?, parse("address", source)?);
                netlink(|n| n.add_route(subnet, name, None, Some(source)))
            }
            ["listen", addr] => {
                let addr: SocketAddr = parse("address", addr)?;
                let listener = TcpListener::bind(addr).map_err(|e| io_failure(format!("bind {addr}"), e))?;
                self.listeners.push(listener);
                Ok(vec![])
            }
            ["call", addr, payload] => {
                let addr: SocketAddr = parse("address", addr)?;
                let own = self
                    .listeners
                    .iter()
                    .position(|l| l.local_addr().is_ok_and(|local| local == addr));
                let result = crate::call(addr, payload, own.map(|i| &self.listeners[i]));
                if let (Ok(_), Some(i)) = (&result, own) {
                    self.listeners.remove(i);
                }
                Ok(exchange_fields(result))
            }
            ["serve", addr, mode] => serve(channel, parse("address", addr)?, *mode == "echo"),
            ["procnetdev"] => crate::proc_net_dev().map_err(|e| io_failure("read /proc/net/dev".into(), e)),
            ["sysnet"] => crate::sys_class_net().map_err(|e| io_failure("read /sys/class/net".into(), e)),
            ["mount-sysfs"] => crate::mount_own_sysfs()
                .map(|()| vec![])
                .map_err(|e| io_failure("mount sysfs on /sys".into(), e.into())),
            _ => Err(format!("unknown request {request:?}").into()),
        }
    }
}

fn netlink(op: impl FnOnce(&mut Netlink) -> Result<(), NetlinkError>) -> Result<Vec<String>, Failure> {
    let mut netlink = Netlink::open()?;
    op(&mut netlink)?;
    Ok(vec![])
}

fn exchange_fields(result: io::Result<Exchange>) -> Vec<String> {
    match result {
        Ok(x) => vec![x.local.to_string(), x.remote.to_string(), x.sent, x.received],
        Err(e) => vec![e.raw_os_error().unwrap_or(libc::EIO).to_string()],
    }
}

/// Binds, says so (a first answer), serves one client, then answers again with what it served.
fn serve(channel: &mut Channel, addr: SocketAddr, echo: bool) -> Result<Vec<String>, Failure> {
    let listener = TcpListener::bind(addr).map_err(|e| io_failure(format!("bind {addr}"), e))?;
    channel
        .send_fields(&["ok"])
        .map_err(|e| io_failure("send on the channel".into(), e))?;
    let served = crate::serve_one(&listener, echo).map_err(|e| io_failure(format!("serve on {addr}"), e))?;
    Ok(vec![
        served.local.to_string(),
        served.client.to_string(),
        served.received,
    ])
}

/// Polls `check` until it holds or `timeout` passes; namespaces are torn down asynchronously.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
