//! The PID namespace chapter: a process tree with its own PIDs, its own init and its own `/proc`
//! (pid_namespaces(7)).
//!
//! The lesson is seven steps, one module each in [`steps`], in the order the demo runs them and the
//! book tells them:
//!
//! 1. [`steps::two_pids`]: PID 1 inside, another PID outside;
//! 2. [`steps::proc_mount`]: `ps` shows the host until `/proc` is remounted;
//! 3. [`steps::nesting`]: nested namespaces, and what each level sees;
//! 4. [`steps::orphans`]: orphans go to init, which must reap them;
//! 5. [`steps::signals`]: init's protection against signals;
//! 6. [`steps::init_death`]: when init dies, the namespace dies;
//! 7. [`steps::unshare`]: `unshare(CLONE_NEWPID)` moves the next child, not the caller.
//!
//! Each step's `pub fn` makes the namespaces, lets the processes in them observe what they see, and
//! returns those observations as plain data; `main.rs` prints them. Every step starts its processes
//! the same way, with [`child`] (an init in a new PID namespace, named forks, the child's report to its
//! parent). The pieces a container launcher reuses are [`init`] (a reaper init, PID 1 of the container)
//! and [`procfs`] (mounting a fresh `/proc`), plus [`init_spawn`] (an init in a new PID namespace);
//! [`tree`] draws step 3's tree. The steps' functions and types are re-exported here.

pub mod child;
pub mod init;
pub mod procfs;
pub mod steps;
pub mod tree;

use std::io;

use nix::errno::Errno;
use nskit::{Exit, SpawnError};

pub use child::{fork_named, init_spawn, own_pid_ns, plain_spawn, set_name, spawn_init};
pub use steps::init_death::{DeathStory, init_death};
pub use steps::nesting::{LevelView, MAX_PID_NS_LEVEL, NestedTree, TreeProcess, descendants_of, nested_tree};
pub use steps::orphans::{MAIN_EXIT_CODE, OrphanStory, orphans};
pub use steps::proc_mount::{ProcStory, ps_before_and_after};
pub use steps::signals::{SENT_FROM_INSIDE, SignalStory, signals};
pub use steps::two_pids::{TwoPids, two_pids};
pub use steps::unshare::{UnshareStory, unshare_story};

/// The command names (`comm`) the demo gives its processes, so that `ps` output says who is who, and
/// so that a test can check none of them is left behind.
pub const PROCESS_NAMES: [&str; 7] = [
    "ns-init",
    "ns-worker",
    "ns-main",
    "ns-parent",
    "ns-orphan",
    "ns-sender",
    "ns-child",
];

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Spawning the child, the channel, or the child's own step (nskit's, as in every chapter).
    #[error(transparent)]
    Child(#[from] nskit::StepError),
    #[error("lost contact with the child: {0}")]
    Channel(#[source] io::Error),
    #[error("the init ended with {0:?}")]
    InitEnded(Exit),
    #[error("cannot read /proc: {0}")]
    Proc(#[source] io::Error),
    #[error("cannot signal the init: {0}")]
    Signal(#[source] Errno),
}

impl From<SpawnError> for StepError {
    fn from(e: SpawnError) -> StepError {
        StepError::Child(nskit::StepError::Spawn(e))
    }
}

/// `[1, 2, 3]` as `"1 2 3"`.
pub fn join<T: ToString>(values: &[T]) -> String {
    values.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
}
