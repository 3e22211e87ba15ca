//! Step 3 of the PID namespace chapter: nested PID namespaces, and what each level sees
//! (pid_namespaces(7), "Nesting PID namespaces").
//!
//! A process in a child PID namespace can make a grandchild namespace, and so on, 32 levels deep at
//! most. A process has a PID in its own namespace and in every ancestor of it: a namespace sees every
//! process of the namespaces it contains, and nothing of its ancestors. [`crate::tree`] draws the tree
//! this step returns.

use std::io;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::{getpid, getppid};
use nskit::ns::NsId;
use nskit::{Channel, Child, Spawn, UserNs};
use serde::{Deserialize, Serialize};

use crate::StepError;
use crate::child::{finish, fork_named, own_pid_ns, park, receive, serve, set_name, spawn_init};
use crate::procfs::{list_processes, remount_proc};

/// The kernel nests PID namespaces at most this deep below the initial one (`MAX_PID_NS_LEVEL`); one
/// more `clone(CLONE_NEWPID)` fails with ENOSPC.
pub const MAX_PID_NS_LEVEL: usize = 32;

/// One process of the nested tree, as the host's `/proc` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeProcess {
    pub name: String,
    pub host_pid: i32,
    pub host_ppid: i32,
    /// Its PID at every level, host first (`NSpid:` read on the host).
    pub nspid: Vec<i32>,
}

impl TreeProcess {
    /// 0 for a host process, 1 for one in the first nested namespace...
    pub fn level(&self) -> usize {
        self.nspid.len().saturating_sub(1)
    }
}

/// What the init of one nested level sees from inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelView {
    pub level: usize,
    pub ns: NsId,
    /// Its `getppid()`: 0, since its parent lives one level up, out of sight.
    pub getppid: i32,
    /// The PIDs its own `/proc` lists.
    pub visible: Vec<i32>,
}

/// Nested PID namespaces: each level's init and worker, and what each level sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedTree {
    pub host_ns: NsId,
    /// The demo process first, then its descendants in the order they were created.
    pub processes: Vec<TreeProcess>,
    /// Level 1 first.
    pub views: Vec<LevelView>,
}

// ANCHOR: nest
/// Step 3: `levels` nested PID namespaces. The init of each level names itself `ns-init`, starts a
/// worker, mounts its own `/proc` and spawns the next level's init; once the levels below have
/// reported, it lists its `/proc` and reports up. The host then reads every process's `NSpid:`.
pub fn nested_tree(spawn: &Spawn, levels: usize) -> Result<NestedTree, StepError> {
    let mut top = spawn_init(spawn, |channel| nest_level(channel, 1, levels))?;
    let views = receive(top.channel())?;
    // The demo itself, then the tree under the top init (not every child of the demo: a test
    // process may have others).
    let mut processes = descendants_of(getpid().as_raw()).map_err(StepError::Proc)?;
    processes.truncate(1);
    processes.extend(descendants_of(top.pid().as_raw()).map_err(StepError::Proc)?);
    let tree = NestedTree {
        host_ns: own_pid_ns().map_err(StepError::Proc)?,
        processes,
        views,
    };
    finish(top)?;
    Ok(tree)
}

/// One level's init: worker, own /proc, next level, report, then wait for the word to exit.
fn nest_level(channel: &mut Channel, level: usize, levels: usize) -> i32 {
    let mut next: Option<Child> = None;
    let code = serve(channel, "nest", |_| {
        set_name("ns-init");
        fork_named("ns-worker", park)?;
        remount_proc()?;
        let mut deeper: Vec<LevelView> = Vec::new();
        if level < levels {
            let spawn = Spawn::new(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS).user(UserNs::Never);
            let child = next.insert(spawn_init(&spawn, |ch| nest_level(ch, level + 1, levels))?);
            deeper = receive(child.channel())?;
        }
        let visible = list_processes(Path::new("/proc"))?
            .iter()
            .map(|s| s.pid)
            .collect();
        let mine = LevelView {
            level,
            ns: own_pid_ns()?,
            getppid: getppid().as_raw(),
            visible,
        };
        Ok([vec![mine], deeper].concat())
    });
    let code = code + i32::from(channel.expect("exit").is_err());
    // Returning ends this init, and with it every process below: the kernel kills its namespace.
    match next.map(finish) {
        Some(Err(_)) => code + 1,
        _ => code,
    }
}
// ANCHOR_END: nest

// ANCHOR: descendants
/// The process `root` and all its descendants, from the caller's `/proc`, parents before children
/// and siblings in PID order (the order they were created in, on a host that has not wrapped its PIDs).
pub fn descendants_of(root: i32) -> io::Result<Vec<TreeProcess>> {
    let all = list_processes(Path::new("/proc"))?;
    let mut found: Vec<TreeProcess> = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        let Some(me) = all.iter().find(|s| s.pid == pid) else {
            continue;
        };
        found.push(TreeProcess {
            name: me.name.clone(),
            host_pid: me.pid,
            host_ppid: me.ppid,
            nspid: me.nspid.clone(),
        });
        // Reverse, so that the smallest PID is popped first.
        stack.extend(all.iter().filter(|s| s.ppid == pid).map(|s| s.pid).rev());
    }
    Ok(found)
}
// ANCHOR_END: descendants

#[cfg(test)]
mod tests {
    use nskit::ns::Kind;

    use super::*;
    use crate::procfs::Status;

    #[test]
    fn statuses_and_views_survive_the_channel() {
        let status = Status {
            name: "ns init".into(),
            state: 'S',
            pid: 1,
            ppid: 0,
            nspid: vec![12345, 1],
        };
        let view = LevelView {
            level: 2,
            ns: NsId {
                kind: Kind::Pid,
                inode: 4026532002,
            },
            getppid: 0,
            visible: vec![1, 2, 3],
        };
        let (mut parent, mut child) = Channel::pair().unwrap();
        child
            .reply(&Ok::<_, nskit::ChildError>((
                vec![status.clone()],
                vec![view.clone()],
            )))
            .unwrap();
        let (statuses, views): (Vec<Status>, Vec<LevelView>) = receive(&mut parent).unwrap();
        assert_eq!((statuses, views), (vec![status], vec![view]));
    }
}
