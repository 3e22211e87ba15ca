//! Solution to oci-state: the status observed from /proc at each request, the pid only while the
//! process it names is the container's (the OCI runtime spec's `runtime.md`, "State"; proc(5)).

use combined::oci::state::{OCI_VERSION, Record, process_start_time};
use oci_spec::runtime::ContainerState;

// ANCHOR: solution
/// The runtime spec's state of the container `record` describes, as JSON: `ociVersion` (this
/// runtime's [`OCI_VERSION`]), `id`, `status`, `pid` while the container's process exists, `bundle`
/// and `annotations`, and `created`, which this runtime adds.
pub fn oci_state(record: &Record) -> serde_json::Value {
    // A PID alone names a process only until it exits: the start time makes it one process for ever.
    let alive = process_start_time(record.pid)
        .is_some_and(|(start_time, zombie)| start_time == record.start_time && !zombie);
    let status = match (alive, record.started) {
        (false, _) => ContainerState::Stopped,
        (true, false) => ContainerState::Created,
        (true, true) => ContainerState::Running,
    };
    let mut state = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "status": status.to_string(),
        "bundle": record.bundle,
        "annotations": record.annotations,
        "created": record.created,
    });
    // Required while the process exists; once it has gone, the PID may be another process's.
    if status != ContainerState::Stopped {
        state["pid"] = record.pid.into();
    }
    state
}
// ANCHOR_END: solution
