//! Exercise introspect-lsns: which namespaces of a kind exist, found as `lsns(8)` finds them, by
//! walking the `/proc/<pid>/ns/<kind>` links of every process and grouping the processes by the
//! namespace's inode (namespaces(7) "The /proc/[pid]/ns/ directory").

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use nskit::ns::Kind;

use crate::given::Namespace;

// ANCHOR: exercise
/// Every namespace of `kind` that holds a process the caller may look at, once, with the lowest PID in
/// it and how many processes are in it: `lsns --type <kind> --output NS,PID,NPROCS`.
pub fn list_namespaces(kind: Kind) -> io::Result<Vec<Namespace>> {
    // Your code here. Read the directory /proc: each entry whose name is a number is a process. Its
    // link /proc/<pid>/ns/<kind> (`kind.proc_name()`) names its namespace, and `fs::metadata` follows
    // it to the namespace's inode (`MetadataExt::dev`, `ino`). Group the processes by namespace.
    // Some processes will not answer: decide which errors mean "skip this one", and which a failure.
    Err(io::Error::other("not written yet: list_namespaces"))
}
// ANCHOR_END: exercise
