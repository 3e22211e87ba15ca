//! Plumbing that every chapter of the course needs, written once (namespaces(7)).
//!
//! This crate never teaches a namespace by itself: each demo crate does that. It holds what they all
//! share: naming namespaces by their `/proc/<pid>/ns/<kind>` inode ([`ns`]), spawning a child into new
//! namespaces with a sync channel ([`spawn`], [`channel`]), user-namespace id maps ([`idmap`]) and the
//! diagnosis of hosts that forbid them ([`userns`]), the labelled host/namespace output ([`show`]),
//! what a supervising process forwards and closes ([`process`]), and the privilege gates and leak
//! counters the tests use ([`testing`]).

pub mod channel;
pub mod idmap;
pub mod mount;
pub mod ns;
pub mod process;
pub mod show;
pub mod spawn;
pub mod testing;
pub mod userns;

pub use channel::{Channel, ChildError, Reply, StepError};
pub use ns::{Kind, NsId, Proc};
pub use spawn::{Child, Exit, Spawn, SpawnError, UserNs, clone_sibling};
