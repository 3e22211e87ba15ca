//! Step 5 of the PID namespace chapter: init's protection against signals (pid_namespaces(7), "The
//! namespace "init" process"; kill(2), sigaction(2)).
//!
//! The kernel drops a signal sent to a namespace's init when init has no handler for it, if it comes
//! from inside the namespace, even SIGKILL. From an ancestor namespace, SIGKILL and SIGSTOP are always
//! delivered; other signals still need a handler.

use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::Pid;
use nskit::ns::NsId;
use nskit::spawn::wait_for;
use nskit::{Exit, Spawn};

use crate::StepError;
use crate::child::{Failed, fork_named, own_pid_ns, receive, serve, set_name, spawn_init};

/// Signals sent to an init, from inside its namespace and from the parent namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalStory {
    pub ns: NsId,
    /// The signals PID 2 sent to PID 1, in order, with kill's result (`ok` or the errno).
    pub sent_from_inside: Vec<(Signal, String)>,
    /// How many times init's SIGUSR1 handler ran.
    pub handled_usr1: usize,
    /// After the host's SIGTERM, init still answered.
    pub alive_after_host_sigterm: bool,
    /// How init ended after the host's SIGKILL.
    pub after_host_sigkill: Exit,
}

/// The signals the sender inside sends to its init, in this order.
pub const SENT_FROM_INSIDE: [Signal; 3] = [Signal::SIGTERM, Signal::SIGKILL, Signal::SIGUSR1];

static USR1_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_usr1(_: libc::c_int) {
    USR1_HANDLED.fetch_add(1, Ordering::SeqCst); // an atomic add is async-signal-safe
}

// ANCHOR: signals
/// Step 5: init has a handler for SIGUSR1 only. A process inside sends it SIGTERM, SIGKILL, SIGUSR1:
/// the first two are dropped, the third runs the handler. Then the host sends SIGTERM (dropped too:
/// no handler) and SIGKILL, which the kernel always delivers from an ancestor namespace.
pub fn signals(spawn: &Spawn) -> Result<SignalStory, StepError> {
    let mut child = spawn_init(spawn, |channel| {
        let code = serve(channel, "signals", |_| {
            set_name("ns-init");
            let handler = SigAction::new(
                SigHandler::Handler(count_usr1),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            // SAFETY: the handler only does an atomic add, which is async-signal-safe, and this
            // process is single-threaded.
            unsafe { sigaction(Signal::SIGUSR1, &handler) }?;
            let sender = fork_named("ns-sender", || {
                let init = Pid::from_raw(1);
                let results: Vec<i32> = SENT_FROM_INSIDE
                    .iter()
                    .map(|&s| kill(init, s).map_or_else(|e| e as i32, |()| 0))
                    .collect();
                // Exit code: a bit per signal whose kill(2) failed.
                results
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| i32::from(r != 0) << i)
                    .sum()
            })?;
            let failed = match wait_for(sender)? {
                Exit::Code(bits) => bits,
                other => return Err(Failed(format!("the sender ended with {other:?}"))),
            };
            let results: Vec<String> = (0..SENT_FROM_INSIDE.len())
                .map(|i| if failed >> i & 1 == 0 { "ok" } else { "failed" }.to_string())
                .collect();
            Ok((own_pid_ns()?, USR1_HANDLED.load(Ordering::SeqCst), results))
        });
        // Answer pings until the host closes the channel (or kills this process).
        while let Ok(message) = channel.recv() {
            if message == "ping" && channel.send("alive").is_err() {
                break;
            }
        }
        code
    })?;
    let (ns, handled_usr1, results): (NsId, usize, Vec<String>) = receive(child.channel())?;
    let pid = child.pid();
    kill(pid, Signal::SIGTERM).map_err(StepError::Signal)?;
    let alive = child.channel().send("ping").is_ok() && child.channel().recv().is_ok_and(|m| m == "alive");
    kill(pid, Signal::SIGKILL).map_err(StepError::Signal)?;
    Ok(SignalStory {
        ns,
        handled_usr1,
        sent_from_inside: SENT_FROM_INSIDE.iter().copied().zip(results).collect(),
        alive_after_host_sigterm: alive,
        after_host_sigkill: child.wait().map_err(StepError::Channel)?,
    })
}
// ANCHOR_END: signals
