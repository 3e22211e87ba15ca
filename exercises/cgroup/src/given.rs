//! What the exercises give you: the delegation gate, a cgroup of the test's own that is removed when
//! the test ends, and children that run your code and report over nskit's channel (`clone(2)`). You
//! need not read this to do the exercises, but nothing in it is hidden.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use cgroup_demo::cleanup::forget_in_child;
use cgroup_demo::{Cgroup, Controller, Hierarchies, Placement, memberships};
use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{ForkResult, Pid, fork, pipe};
use nskit::{Proc, Spawn, UserNs, testing};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Line, Step};

/// Runs `body` in a child spawned by `spawn` and returns what it returned, or why it failed.
pub fn in_child<T, F>(spawn: &Spawn, body: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    spawn.evaluate(|| {
        forget_in_child();
        body()
    })
}

/// Where this process would make cgroups with `controllers`.
pub fn placement(controllers: &[Controller]) -> Placement {
    let h = Hierarchies::read().expect("read the cgroup mounts");
    Placement::own(&h, controllers).expect("find this process's cgroups")
}

/// The gate of the exercises that make cgroups: root, or a delegated subtree. Returns false and says
/// why when this process may not (an ordinary user on a host that delegates nothing to it), or panics
/// under `NS_REQUIRE_PRIV=1`.
pub fn may_make_cgroups(test: &str, controllers: &[Controller]) -> bool {
    let why = placement(controllers).check_access().err().map(|e| e.to_string());
    testing::gate(
        why.is_none(),
        test,
        &format!(
            "needs a cgroup it may create (root, or one delegated to this user): {}",
            why.unwrap_or_default()
        ),
    )
}

/// A cgroup of the test's own, with `controllers`, removed on drop with anything left in it.
#[derive(Debug)]
pub struct TestCgroup(Option<Cgroup>);

impl TestCgroup {
    pub fn create(what: &str, controllers: &[Controller]) -> TestCgroup {
        let name = format!("cgroup-demo-exercise-{}-{what}", std::process::id());
        TestCgroup(Some(Cgroup::create(&placement(controllers), &name).unwrap()))
    }

    pub fn cgroup(&self) -> &Cgroup {
        self.0.as_ref().expect("the cgroup lives until drop")
    }

    /// Its directories, one per hierarchy on v1, the one on v2.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.cgroup().dirs().iter().map(|d| d.path.clone()).collect()
    }

    /// Its directory in the hierarchy holding `controller`.
    pub fn dir_for(&self, controller: Controller) -> PathBuf {
        self.cgroup()
            .dir_for(controller)
            .expect("made with this controller")
            .path
            .clone()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take() {
            let _ = cgroup.remove();
        }
    }
}

/// What the fork lab saw: how many children the process forked before fork failed, and the errno.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Forks {
    pub forked: u32,
    /// The errno's name (`EAGAIN`), when a fork was refused.
    pub refused: Option<String>,
}

/// The fork lab: a child waits while `setup` gets its PID (to limit and move it), then forks up to
/// `attempts` children that wait, counts them, and lets them all go.
pub fn fork_lab(setup: impl FnOnce(Pid) -> Result<(), String>, attempts: u32) -> Result<Forks, String> {
    let mut child = Spawn::new(CloneFlags::empty())
        .user(UserNs::Never)
        .run(|channel| {
            forget_in_child();
            if channel.expect("go").is_err() {
                return 1;
            }
            i32::from(channel.send_msg(&fork_until_refused(attempts)).is_err())
        })
        .map_err(|e| e.to_string())?;
    let set_up = setup(child.pid());
    let _ = child.channel().send("go");
    let forks = child.channel().recv_msg::<Forks>().map_err(|e| e.to_string());
    let _ = child.wait();
    set_up?;
    forks
}

fn fork_until_refused(attempts: u32) -> Forks {
    let mut forks = Forks {
        forked: 0,
        refused: None,
    };
    let Ok((wait_on, release)) = pipe() else {
        forks.refused = Some("pipe".into());
        return forks;
    };
    let mut children = Vec::new();
    for _ in 0..attempts {
        // SAFETY: this process was cloned from one thread and has no other, so the forked child may
        // run anything; it runs only close, read and _exit.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => wait_for_release(&wait_on, release),
            Ok(ForkResult::Parent { child }) => {
                children.push(child);
                forks.forked += 1;
            }
            Err(errno) => {
                forks.refused = Some(format!("{errno:?}"));
                break;
            }
        }
    }
    drop(release);
    for pid in children {
        let _ = nskit::spawn::wait_for(pid);
    }
    forks
}

/// A forked child's whole life: drop its copy of the write end, wait for the parent's to close (read
/// returns 0), and exit.
fn wait_for_release(wait_on: &OwnedFd, release: OwnedFd) -> ! {
    drop(release);
    let mut byte = [0u8; 1];
    let _ = nix::unistd::read(wait_on, &mut byte);
    // SAFETY: _exit(2) ends this forked copy at once, running none of the parent's destructors.
    unsafe { libc::_exit(0) }
}

/// A child that runs `steps` in order, on the cgroup whose directories are `dirs`, and reports its
/// own `/proc/self/cgroup` afterwards. With a user namespace when the caller is not root: unshare
/// needs CAP_SYS_ADMIN.
pub fn ns_lab(dirs: Vec<PathBuf>, steps: Vec<Step>) -> Result<Vec<Line>, String> {
    in_child(&Spawn::new(CloneFlags::empty()), move || {
        for step in steps {
            match step {
                Step::JoinCgroup => join_self(&dirs)?,
                Step::UnshareCgroupNs => unshare(CloneFlags::CLONE_NEWCGROUP)
                    .map_err(|e: Errno| format!("unshare(CLONE_NEWCGROUP): {e}"))?,
            }
        }
        let lines = memberships(Proc::Current).map_err(|e| e.to_string())?;
        Ok(lines
            .into_iter()
            .map(|m| Line {
                hierarchy: m.hierarchy,
                controllers: m.controllers,
                path: m.path,
            })
            .collect())
    })
}

fn join_self(dirs: &[PathBuf]) -> Result<(), String> {
    for dir in dirs {
        write(&dir.join("cgroup.procs"), "0").map_err(|e| format!("join {}: {e}", dir.display()))?;
    }
    Ok(())
}

fn write(file: &Path, text: &str) -> io::Result<()> {
    fs::write(file, text)
}
