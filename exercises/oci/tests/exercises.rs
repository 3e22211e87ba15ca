//! The tests that say when an exercise of the OCI runtime chapter is done, one module per exercise.
//! They call [`oci_exercises::checked`]: your starting points, or the solutions with `--features
//! solution`. Namespace work happens in children (`oci_exercises::given`), never in a test's thread:
//! a child plays the container, and its mounts die with it; the runtime's state, the bundles and the
//! sockets are in scratch directories that go when the test ends.

mod gate {
    use nskit::testing::require_namespaces;
    use oci_exercises::checked::gate::wait_at_gate;
    use oci_exercises::given::{GateView, gate_lab};

    #[test]
    fn the_command_runs_only_once_start_opens_the_gate() {
        if !require_namespaces("the_command_runs_only_once_start_opens_the_gate") {
            return;
        }
        let view = gate_lab(wait_at_gate).unwrap_or_else(|why| panic!("the runtime's part failed: {why}"));
        let gated = match view {
            GateView::DidNotWait(what) => {
                let hint = if what.contains("ENXIO") {
                    "\n(a fifo opened for writing with O_NONBLOCK fails with ENXIO while no one reads it: \
                     the open itself must wait, fifo(7))"
                } else if what.contains("ENOENT") {
                    "\n(the fifo's path is the runtime's, and names nothing in the container: reopen the \
                     descriptor itself, /proc/self/fd/N)"
                } else {
                    ""
                };
                panic!("before start, the container's process {what}{hint}");
            }
            GateView::Waited(gated) => gated,
        };
        assert_eq!(
            gated.status_before, "created",
            "while the process waited at its gate, combined state said {:?}",
            gated.status_before
        );
        assert_ne!(
            gated.exe_before, gated.command,
            "before start, the process already ran the command"
        );
        if let Err(why) = &gated.start {
            panic!(
                "combined start failed: {why}\n(start opens the fifo for reading, which lets the \
                 container's open for writing return, then waits for one byte from it)"
            );
        }
        if let Some(what) = &gated.after_start {
            panic!("after start, the container's process {what}");
        }
        assert_eq!(
            gated.exe_after,
            gated.command,
            "after start, the process runs {}, not the command",
            gated.exe_after.display()
        );
        assert_eq!(
            gated.status_after, "running",
            "after start, combined state said {:?}",
            gated.status_after
        );
    }
}

mod console {
    use nskit::testing::require_namespaces;
    use oci_exercises::checked::console::{receive_pty, send_pty};
    use oci_exercises::given::{TYPED, console_lab};

    #[test]
    fn the_engine_types_into_the_container_s_terminal_through_the_received_master() {
        if !require_namespaces("the_engine_types_into_the_container_s_terminal_through_the_received_master") {
            return;
        }
        let view = console_lab(send_pty, receive_pty).unwrap_or_else(|why| {
            let hint = if why.contains("ENOMSG") || why.contains("EAGAIN") {
                "\n(no descriptor came with the data: over a SOCK_STREAM socket, a descriptor travels \
                 only with at least one byte of data, unix(7))"
            } else {
                ""
            };
            panic!("{why}{hint}")
        });
        assert!(
            view.is_terminal,
            "the descriptor the engine received is not a terminal: it is not the pty's master"
        );
        let answer = format!("the container read: {TYPED}");
        assert!(
            view.engine_read.contains(&answer),
            "the engine typed {TYPED:?} into the descriptor it received, and read back {:?}, without \
             the container's answer: it is not the master of the container's pty",
            view.engine_read
        );
        assert_eq!(
            view.container_read.as_deref(),
            Some(TYPED),
            "the container's command did not read what the engine typed"
        );
        assert!(
            view.close_on_exec,
            "the received descriptor is not close-on-exec: every program the engine starts from now on \
             (a hook, the next container's runtime) inherits the container's terminal, \
             and with it what its user types"
        );
    }
}

mod hooks {
    use nskit::testing::require_namespaces;
    use oci_exercises::checked::hooks::keep_hooks;
    use oci_exercises::given::{HOOKS_ID, HookRun, hooks_lab};
    use oci_spec::runtime::State;

    #[test]
    fn the_late_hooks_run_what_the_bundle_held_at_create() {
        if !require_namespaces("the_late_hooks_run_what_the_bundle_held_at_create") {
            return;
        }
        let seen = hooks_lab(keep_hooks).unwrap_or_else(|why| panic!("{why}"));
        let hijacked: Vec<String> = seen
            .iter()
            .filter_map(|hook| match &hook.ran {
                HookRun::Containers(said) => Some(format!(
                    "the {} hook's {} ({}) wrote, outside the container's root:\n    {said}",
                    hook.kind,
                    hook.program.display(),
                    hook.place
                )),
                _ => None,
            })
            .collect();
        assert!(
            hijacked.is_empty(),
            "after the container's own code had run, the runtime ran on the host, with its own \
             privileges, what the container had written over its hooks' programs:\n  {}\nThe container \
             could have written anything there (keep_late_hooks)",
            hijacked.join("\n  ")
        );
        for hook in seen {
            let kind = hook.kind;
            match hook.ran {
                HookRun::Containers(_) => {}
                HookRun::Failed(why) => panic!("the {kind} hook failed: {why}"),
                HookRun::Original(stdin) => {
                    let state: State = serde_json::from_str(&stdin).unwrap_or_else(|e| {
                        panic!("the {kind} hook read {stdin:?} on its stdin, not the spec's state: {e}")
                    });
                    assert_eq!(state.id(), HOOKS_ID, "the {kind} hook's state: {stdin}");
                    let status = if kind == "poststart" { "running" } else { "stopped" };
                    assert_eq!(
                        state.status().to_string(),
                        status,
                        "the {kind} hook's state: {stdin}"
                    );
                }
            }
        }
    }
}

mod state {
    use std::path::Path;

    use combined::oci::state::OCI_VERSION;
    use oci_exercises::checked::state::oci_state;
    use oci_exercises::given::{STATE_BUNDLE, STATE_CREATED, STATE_ID, state_annotations, state_lab};
    use oci_spec::runtime::{ContainerState, State};

    #[test]
    fn the_state_is_the_spec_s_and_its_status_is_observed() {
        let seen = state_lab(oci_state).unwrap_or_else(|why| panic!("{why}"));
        for at in seen {
            let (moment, json) = (at.moment, &at.state);
            let missing: Vec<&str> = ["ociVersion", "id", "status", "bundle"]
                .into_iter()
                .filter(|key| json.get(key).is_none())
                .collect();
            assert!(
                missing.is_empty(),
                "when {moment}, the state {json} has no {missing:?}, which the runtime spec requires \
                 (runtime.md, \"State\")"
            );
            let state: State = serde_json::from_value(json.clone())
                .unwrap_or_else(|e| panic!("when {moment}, the state {json} is not the spec's: {e}"));
            assert_eq!(state.version(), OCI_VERSION, "when {moment}: {json}");
            assert_eq!(state.id(), STATE_ID, "when {moment}: {json}");
            assert_eq!(state.bundle(), Path::new(STATE_BUNDLE), "when {moment}: {json}");
            assert_eq!(
                state.annotations(),
                &Some(state_annotations()),
                "when {moment}: {json}"
            );
            assert_eq!(json["created"], STATE_CREATED, "when {moment}: {json}");
            assert_eq!(
                *state.status(),
                at.expected,
                "when {moment}, the status is {}, not {}: {json}",
                state.status(),
                at.expected
            );
            match at.expected {
                ContainerState::Stopped => assert_eq!(
                    *state.pid(),
                    None,
                    "when {moment}, the container is stopped and its state still names pid {}: that \
                     PID may be another process's by now, and an engine that signals it would hit a \
                     stranger",
                    at.pid
                ),
                _ => assert_eq!(
                    *state.pid(),
                    Some(at.pid),
                    "when {moment}, the state must name the container's process, as the host sees it \
                     (pid {}): {json}",
                    at.pid
                ),
            }
        }
    }
}
