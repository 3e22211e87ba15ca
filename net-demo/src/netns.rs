//! A network namespace held by a small process of its own (network_namespaces(7)).
//!
//! A netlink socket talks to the namespace it was created in, and a TCP socket lives in one; other
//! namespaces are reached only through explicit attributes (`IFLA_NET_NS_FD` to move a device,
//! `IFLA_TARGET_NETNSID`). The simple way is a process inside: so each namespace of the demo is a
//! child process that made it (or, for the second one, entered the first one's user namespace and
//! then made it) and then does what the host side asks over its [`nskit::Channel`], one [`Request`] at
//! a time, answering with the data it asked for (links, addresses, what a connection exchanged) or
//! with the step that failed and its errno. The host process itself never enters any of them and never
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
use nskit::{Channel, Child, ChildError, Exit, Spawn, SpawnError, UserNs};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
}

/// What the host side asks of a namespace's process.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Request {
    Links,
    Addrs,
    Routes,
    Up {
        name: String,
    },
    Veth {
        name: String,
        peer: String,
    },
    Bridge {
        name: String,
    },
    Attach {
        name: String,
        bridge: String,
    },
    MovePid {
        name: String,
        pid: i32,
    },
    MoveFd {
        name: String,
        pid: i32,
    },
    Addr {
        name: String,
        addr: Ipv4Addr,
        prefix: u8,
    },
    Route {
        network: Ipv4Addr,
        prefix: u8,
        name: String,
        source: Ipv4Addr,
    },
    Listen {
        addr: SocketAddr,
    },
    Serve {
        addr: SocketAddr,
        echo: bool,
    },
    Call {
        addr: SocketAddr,
        payload: String,
    },
    ProcNetDev,
    SysNet,
    MountSysfs,
    Exit,
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
        netns.receive::<()>()?;
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

    /// The answer to the last request: the data asked for, or the failure inside the namespace.
    fn receive<T: DeserializeOwned>(&mut self) -> Result<T, NetnsError> {
        let label = self.label;
        self.child.channel().recv_reply().map_err(|e| match e {
            nskit::StepError::Child(e) => NetnsError::Remote {
                label,
                errno: e.errno(),
                message: e.message,
            },
            nskit::StepError::Channel(source) => NetnsError::Channel { label, source },
            nskit::StepError::Spawn(e) => NetnsError::Spawn(e),
        })
    }

    fn ask<T: DeserializeOwned>(&mut self, request: Request) -> Result<T, NetnsError> {
        let label = self.label;
        self.child
            .channel()
            .send_msg(&request)
            .map_err(|source| NetnsError::Channel { label, source })?;
        self.receive()
    }

    /// The links of this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetnsError> {
        self.ask(Request::Links)
    }

    /// The IPv4 addresses of this namespace.
    pub fn addresses(&mut self) -> Result<Vec<Address>, NetnsError> {
        self.ask(Request::Addrs)
    }

    /// The main routing table of this namespace.
    pub fn routes(&mut self) -> Result<Vec<Route>, NetnsError> {
        self.ask(Request::Routes)
    }

    pub fn set_up(&mut self, name: &str) -> Result<(), NetnsError> {
        self.ask(Request::Up { name: name.into() })
    }

    pub fn create_veth(&mut self, name: &str, peer: &str) -> Result<(), NetnsError> {
        self.ask(Request::Veth {
            name: name.into(),
            peer: peer.into(),
        })
    }

    pub fn create_bridge(&mut self, name: &str) -> Result<(), NetnsError> {
        self.ask(Request::Bridge { name: name.into() })
    }

    /// Makes link `name` a port of the bridge `bridge`, both in this namespace.
    pub fn attach(&mut self, name: &str, bridge: &str) -> Result<(), NetnsError> {
        self.ask(Request::Attach {
            name: name.into(),
            bridge: bridge.into(),
        })
    }

    /// Moves link `name` into `other`'s namespace, naming it by `other`'s PID.
    pub fn move_by_pid(&mut self, name: &str, other: &Netns) -> Result<(), NetnsError> {
        self.ask(Request::MovePid {
            name: name.into(),
            pid: other.pid().as_raw(),
        })
    }

    /// Moves link `name` into `other`'s namespace through an fd on `/proc/<pid>/ns/net`.
    pub fn move_by_fd(&mut self, name: &str, other: &Netns) -> Result<(), NetnsError> {
        self.ask(Request::MoveFd {
            name: name.into(),
            pid: other.pid().as_raw(),
        })
    }

    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetnsError> {
        self.ask(Request::Addr {
            name: name.into(),
            addr,
            prefix,
        })
    }

    /// Routes `subnet` through link `name`, with `source` as the preferred source address.
    pub fn add_route(&mut self, subnet: Subnet, name: &str, source: Ipv4Addr) -> Result<(), NetnsError> {
        self.ask(Request::Route {
            network: subnet.network(),
            prefix: subnet.prefix(),
            name: name.into(),
            source,
        })
    }

    /// Binds a TCP listener on `addr` inside this namespace and keeps it until [`Netns::call`] uses it.
    pub fn listen(&mut self, addr: SocketAddr) -> Result<(), NetnsError> {
        self.ask(Request::Listen { addr })
    }

    /// Starts a one-connection TCP server on `addr`; [`Listening::finish`] collects what it served.
    /// With `echo`, it sends back the bytes it got; otherwise it greets with its own namespace.
    pub fn serve(&mut self, addr: SocketAddr, echo: bool) -> Result<Listening<'_>, NetnsError> {
        self.ask::<()>(Request::Serve { addr, echo })?;
        Ok(Listening { netns: self })
    }

    /// Connects to `addr` from inside this namespace, sends `payload`, and reads the answer. When this
    /// namespace's own listener is on `addr`, it also answers the call (the kernel completes the
    /// handshake before `accept`, so one thread can be both ends).
    pub fn call(&mut self, addr: SocketAddr, payload: &str) -> Result<Result<Exchange, Refused>, NetnsError> {
        self.ask(Request::Call {
            addr,
            payload: payload.into(),
        })
    }

    /// The interface names in `/proc/net/dev`, which always shows the reader's network namespace.
    pub fn proc_net_dev(&mut self) -> Result<Vec<String>, NetnsError> {
        self.ask(Request::ProcNetDev)
    }

    /// The entries of `/sys/class/net`, which show the network namespace sysfs was mounted in.
    pub fn sys_class_net(&mut self) -> Result<Vec<String>, NetnsError> {
        self.ask(Request::SysNet)
    }

    /// Mounts a fresh sysfs on `/sys` in this process's own mount namespace.
    pub fn remount_sysfs(&mut self) -> Result<(), NetnsError> {
        self.ask(Request::MountSysfs)
    }

    /// Asks the process to exit, and reaps it: the namespaces die with it unless something else holds
    /// them.
    pub fn finish(mut self) -> Result<Exit, NetnsError> {
        let label = self.label;
        self.child
            .channel()
            .send_msg(&Request::Exit)
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
        self.netns.receive()
    }
}

/// What the namespace's process runs: enter, say ready, then answer requests until `Exit`.
fn agent(channel: &mut Channel, enter: impl FnOnce() -> Result<(), String>) -> i32 {
    // If the demo dies, so does every namespace it made: nothing is left running.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let entered = enter().and_then(|()| crate::make_mounts_private().map_err(|e| e.to_string()));
    let ready = entered.map_err(|why| ChildError::new("enter", why));
    if channel.reply(&ready).is_err() || ready.is_err() {
        return 1;
    }
    let mut agent = Agent {
        listeners: Vec::new(),
    };
    loop {
        let request = match channel.recv_msg::<Request>() {
            Ok(Request::Exit) => return 0,
            Ok(request) => request,
            Err(_) => return 1,
        };
        let reply = agent.answer(channel, request).map_err(|failure| ChildError {
            step: "request".into(),
            errno: failure.errno.map(|e| e as i32),
            message: failure.message,
        });
        if channel.reply(&reply).is_err() {
            return 1;
        }
    }
}

/// An answer, as the data it carries.
fn data(value: impl Serialize) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::from(format!("cannot encode the answer: {e}")))
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

/// The agent's state between requests: listeners bound and not yet called.
struct Agent {
    listeners: Vec<TcpListener>,
}

impl Agent {
    /// One request, answered inside the namespace.
    fn answer(&mut self, channel: &mut Channel, request: Request) -> Result<serde_json::Value, Failure> {
        match request {
            Request::Links => data(Netlink::open()?.links()?),
            Request::Addrs => data(Netlink::open()?.addresses()?),
            Request::Routes => data(Netlink::open()?.routes()?),
            Request::Up { name } => netlink(|n| n.set_up(&name)),
            Request::Veth { name, peer } => netlink(|n| n.create_veth(&name, &peer)),
            Request::Bridge { name } => netlink(|n| n.create_bridge(&name)),
            Request::Attach { name, bridge } => netlink(|n| n.attach(&name, &bridge)),
            Request::MovePid { name, pid } => {
                netlink(|n| n.move_link(&name, Target::Pid(Pid::from_raw(pid))))
            }
            Request::MoveFd { name, pid } => {
                let path = format!("/proc/{pid}/ns/net");
                let file = File::open(&path).map_err(|e| io_failure(format!("cannot open {path}"), e))?;
                netlink(|n| n.move_link(&name, Target::Fd(file.as_fd())))
            }
            Request::Addr { name, addr, prefix } => netlink(|n| n.add_address(&name, addr, prefix)),
            Request::Route {
                network,
                prefix,
                name,
                source,
            } => {
                let subnet = Subnet::new(network, prefix).map_err(|e| Failure::from(e.to_string()))?;
                netlink(|n| n.add_route(subnet, &name, None, Some(source)))
            }
            Request::Listen { addr } => {
                let listener = TcpListener::bind(addr).map_err(|e| io_failure(format!("bind {addr}"), e))?;
                self.listeners.push(listener);
                data(())
            }
            Request::Call { addr, payload } => {
                let own = self
                    .listeners
                    .iter()
                    .position(|l| l.local_addr().is_ok_and(|local| local == addr));
                let result = crate::call(addr, &payload, own.map(|i| &self.listeners[i]));
                if let (Ok(_), Some(i)) = (&result, own) {
                    self.listeners.remove(i);
                }
                data(result.map_err(|e| Refused {
                    errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                }))
            }
            Request::Serve { addr, echo } => serve(channel, addr, echo),
            Request::ProcNetDev => {
                data(crate::proc_net_dev().map_err(|e| io_failure("read /proc/net/dev".into(), e))?)
            }
            Request::SysNet => {
                data(crate::sys_class_net().map_err(|e| io_failure("read /sys/class/net".into(), e))?)
            }
            Request::MountSysfs => crate::mount_own_sysfs()
                .map_err(|e| io_failure("mount sysfs on /sys".into(), e.into()))
                .and_then(|()| data(())),
            Request::Exit => data(()),
        }
    }
}

fn netlink(op: impl FnOnce(&mut Netlink) -> Result<(), NetlinkError>) -> Result<serde_json::Value, Failure> {
    let mut netlink = Netlink::open()?;
    op(&mut netlink)?;
    data(())
}

/// Binds, says so (a first answer), serves one client, then answers again with what it served.
fn serve(channel: &mut Channel, addr: SocketAddr, echo: bool) -> Result<serde_json::Value, Failure> {
    let listener = TcpListener::bind(addr).map_err(|e| io_failure(format!("bind {addr}"), e))?;
    channel
        .reply(&Ok::<(), ChildError>(()))
        .map_err(|e| io_failure("send on the channel".into(), e))?;
    data(crate::serve_one(&listener, echo).map_err(|e| io_failure(format!("serve on {addr}"), e))?)
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
