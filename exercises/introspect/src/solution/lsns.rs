//! Solution to introspect-lsns: one `stat(2)` per process of its `/proc/<pid>/ns/<kind>` link, the
//! processes grouped by the device and inode it leads to; processes that are gone, or not the
//! caller's to inspect, are skipped (namespaces(7) "The /proc/[pid]/ns/ directory", proc(5)).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use nskit::ns::Kind;

use crate::given::Namespace;

// ANCHOR: solution
/// Every namespace of `kind` that holds a process the caller may look at, once, with the lowest PID in
/// it and how many processes are in it: `lsns --type <kind> --output NS,PID,NPROCS`.
pub fn list_namespaces(kind: Kind) -> io::Result<Vec<Namespace>> {
    // Two links lead to the same namespace when their device and inode are equal (namespaces(7)).
    let mut found: BTreeMap<(u64, u64), Namespace> = BTreeMap::new();
    for entry in fs::read_dir("/proc")? {
        let entry = entry?;
        // Processes are the entries named by a number; `self`, `sys` and the rest are not.
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let ns = match fs::metadata(entry.path().join("ns").join(kind.proc_name())) {
            Ok(ns) => ns,
            // ENOENT: the process has exited since readdir listed it, or is a zombie, whose namespaces
            // went when it exited. ESRCH: the same, through a /proc/<pid> opened before it was reaped.
            // EACCES: a ptrace access check refused it (another user's process), or it was reaped
            // between the lookup and the link. None of these is the listing's failure.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH | libc::EACCES)) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        found
            .entry((ns.dev(), ns.ino()))
            .and_modify(|listed| {
                listed.lowest_pid = listed.lowest_pid.min(pid);
                listed.processes += 1;
            })
            .or_insert(Namespace {
                inode: ns.ino(),
                lowest_pid: pid,
                processes: 1,
            });
    }
    Ok(found.into_values().collect())
}
// ANCHOR_END: solution
