//! `combined` as an OCI runtime (the runtime spec's `runtime.md`): the command line container
//! engines call (podman through conmon, docker and containerd through their shims), on the same
//! library as `combined run`. A bundle's `config.json` becomes the same validated [`crate::Plan`]
//! (`bundle.rs`), the same steps set it up (`container.rs`), and what the separate commands of one
//! container's life share is kept on disk (`state.rs`).

pub mod bundle;
pub mod commands;
pub mod hooks;
pub mod state;
