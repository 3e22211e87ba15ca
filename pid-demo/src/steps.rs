//! The PID namespace chapter's seven steps, one module each, declared here in the order the demo runs
//! them and the book tells them (pid_namespaces(7)). Each module's header names its step, what it
//! shows, and the part of the man page it follows.

// 1. PID 1 inside, another PID outside.
pub mod two_pids;
// 2. `ps` shows the host until `/proc` is remounted.
pub mod proc_mount;
// 3. Nested namespaces, and what each level sees.
pub mod nesting;
// 4. Orphans go to init, which must reap them.
pub mod orphans;
// 5. Init's protection against signals.
pub mod signals;
// 6. When init dies, the namespace dies.
pub mod init_death;
// 7. `unshare(CLONE_NEWPID)` moves the next child, not the caller.
pub mod unshare;
