//! Every claim of the IPC namespace chapter, checked on the real kernel (ipc_namespaces(7),
//! sysvipc(7), mq_overview(7)): through the library's steps, and through the demo binary, including
//! its cleanup on failure and on SIGINT.
//!
//! Each test uses its own key (from its name and this process's PID), so tests never see each other's
//! objects; tests that make host objects hold `exclusive()` and check that the host's count of System V
//! objects is the same before and after.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use ipc_demo::posix::{self, PosixName};
use ipc_demo::sysv::{self, Key};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nskit::testing::{self, exclusive, require_namespaces};

const DEMO: &str = env!("CARGO_BIN_EXE_ipc-demo");

/// A key no other test, and no other run of these tests, uses.
fn key_for(test: &str) -> Key {
    let mut hasher = DefaultHasher::new();
    (test, std::process::id()).hash(&mut hasher);
    Key::new(0x5e00_0000 | (hasher.finish() as u32 & 0x00ff_ffff))
}

/// How many System V objects the host's IPC namespace holds, all keys.
fn host_total() -> usize {
    sysv::counts().expect("read /proc/sysvipc").iter().sum()
}

/// Fails if anything the demo makes with `key` is on the host.
fn assert_no_trace(key: Key) {
    let view = ipc_demo::look(key).unwrap();
    for s in &view.sightings {
        assert_eq!(s.reached, Err(Errno::ENOENT), "{s:?} left on the host");
        assert_eq!(s.listed, None, "{s:?} left on the host");
    }
    let name = PosixName::of(key);
    assert_eq!(
        posix::mq_open_existing(&name).map(drop),
        Err(Errno::ENOENT),
        "POSIX queue left"
    );
    assert!(!name.shm_path().exists(), "{} left", name.shm_path().display());
}

/// Takes the host's count, runs `body`, and checks the count and `key` afterwards.
fn leaves_host_as_found(key: Key, body: impl FnOnce()) {
    let _serial = exclusive();
    let before = host_total();
    body();
    assert_no_trace(key);
    assert_eq!(
        host_total(),
        before,
        "the host's count of System V objects changed"
    );
}

fn spawn_for_tests(extra: CloneFlags) -> nskit::Spawn {
    ipc_demo::namespace_spawn(extra, false)
}

#[test]
fn host_objects_are_listed_and_reachable_by_key_until_removed() {
    let key = key_for("host_objects");
    leaves_host_as_found(key, || {
        let objects = ipc_demo::make_host_objects(key).unwrap();
        let view = ipc_demo::look(key).unwrap();
        for s in &view.sightings {
            let listed = s.listed.expect("listed in /proc/sysvipc");
            assert_eq!(s.reached, Ok(listed.id), "{s:?}");
        }
        assert_eq!(view.of(sysv::Kind::Msg).listed.unwrap().count, 1);
        assert_eq!(
            view.of(sysv::Kind::Msg).listed.unwrap().size,
            ipc_demo::HOST_MESSAGE.len() as u64
        );
        assert_eq!(
            view.of(sysv::Kind::Sem).listed.unwrap().size,
            ipc_demo::HOST_SEMS as u64
        );
        assert_eq!(
            view.of(sysv::Kind::Shm).listed.unwrap().size,
            ipc_demo::HOST_SHM_SIZE as u64
        );
        for (_, result) in objects.remove() {
            assert_eq!(result, Ok(()));
        }
    });
}

#[test]
fn a_taken_key_is_refused_and_nothing_is_left() {
    let key = key_for("taken_key");
    leaves_host_as_found(key, || {
        // Another "program" owns a semaphore set with the key: the maker must fail with a clear error
        // and undo the queue it already made.
        let sem = sysv::sem_create(key, 1).unwrap();
        let err = ipc_demo::make_host_objects(key).unwrap_err();
        assert!(matches!(err, ipc_demo::StepError::Taken { .. }), "{err}");
        assert!(err.to_string().contains("ipcrm -S"), "{err}");
        assert_eq!(sysv::get(sysv::Kind::Msg, key), Err(Errno::ENOENT));
        sysv::remove(sysv::Kind::Sem, sem).unwrap();
    });
}

#[test]
fn a_new_ipc_namespace_sees_none_of_the_hosts_objects() {
    if !require_namespaces("a_new_ipc_namespace_sees_none_of_the_hosts_objects") {
        return;
    }
    let key = key_for("hidden");
    leaves_host_as_found(key, || {
        let _objects = ipc_demo::make_host_objects(key).unwrap();
        let host = ipc_demo::look(key).unwrap();
        let child = ipc_demo::look_in_new_namespace(&spawn_for_tests(CloneFlags::empty()), key).unwrap();
        assert_ne!(child.ns, host.ns);
        for s in &child.sightings {
            assert_eq!(s.reached, Err(Errno::ENOENT), "{s:?}");
            assert_eq!(s.listed, None, "{s:?}");
        }
        assert_eq!(child.counts, [0, 0, 0], "a new IPC namespace starts empty");
    });
}

#[test]
fn two_namespaces_each_own_an_object_with_the_same_key() {
    if !require_namespaces("two_namespaces_each_own_an_object_with_the_same_key") {
        return;
    }
    let key = key_for("same_key");
    leaves_host_as_found(key, || {
        let _objects = ipc_demo::make_host_objects(key).unwrap();
        let host_before = ipc_demo::look(key).unwrap();
        let total_before = host_total();
        let child =
            ipc_demo::make_same_key_in_new_namespace(&spawn_for_tests(CloneFlags::empty()), key).unwrap();
        assert_eq!(child.counts, [1, 1, 1]);
        assert_eq!(
            child.of(sysv::Kind::Sem).listed.unwrap().size,
            ipc_demo::NS_SEMS as u64
        );
        assert_eq!(
            child.of(sysv::Kind::Shm).listed.unwrap().size,
            ipc_demo::NS_SHM_SIZE as u64
        );
        for s in &child.sightings {
            assert!(s.reached.is_ok(), "{s:?}");
        }
        // The reverse: the host still reaches and lists only its own objects with that key.
        let host_after = ipc_demo::look(key).unwrap();
        assert_eq!(host_after.sightings, host_before.sightings);
        for kind in sysv::Kind::ALL {
            let with_key = sysv::list(kind)
                .unwrap()
                .into_iter()
                .filter(|o| o.key == key)
                .count();
            assert_eq!(with_key, 1, "{kind:?}: the host lists only its own");
        }
        assert_eq!(host_total(), total_before);
    });
}

#[test]
fn a_message_sent_inside_is_received_inside_and_the_hosts_queue_is_untouched() {
    if !require_namespaces("a_message_sent_inside_is_received_inside_and_the_hosts_queue_is_untouched") {
        return;
    }
    let key = key_for("messages");
    leaves_host_as_found(key, || {
        let _objects = ipc_demo::make_host_objects(key).unwrap();
        let before = ipc_demo::look(key).unwrap();
        let report = ipc_demo::message_in_new_namespace(&spawn_for_tests(CloneFlags::empty()), key).unwrap();
        assert_eq!(report.received, ipc_demo::NS_MESSAGE);
        assert_ne!(report.ns, before.ns);
        let queued = report.queued.listed.unwrap();
        assert_eq!(
            (queued.count, queued.size),
            (1, ipc_demo::NS_MESSAGE.len() as u64)
        );
        let after = ipc_demo::look(key).unwrap();
        assert_eq!(after.of(sysv::Kind::Msg), before.of(sysv::Kind::Msg));
        // The host's message is the host's own.
        let id = sysv::get(sysv::Kind::Msg, key).unwrap();
        assert_eq!(sysv::msg_receive(id).unwrap(), ipc_demo::HOST_MESSAGE.as_bytes());
    });
}

#[test]
fn posix_message_queues_are_isolated_with_a_fresh_mqueue_mount() {
    if !require_namespaces("posix_message_queues_are_isolated_with_a_fresh_mqueue_mount") {
        return;
    }
    let key = key_for("mqueue");
    leaves_host_as_found(key, || {
        let mounts = testing::mount_table();
        let queue = ipc_demo::make_host_queue(key).unwrap();
        assert_eq!(queue.messages().unwrap(), 1);
        let report =
            ipc_demo::mqueue_in_new_namespace(&spawn_for_tests(CloneFlags::CLONE_NEWNS), key).unwrap();
        assert_eq!(report.before, [], "a fresh mqueue filesystem lists no queue");
        assert_eq!(report.open_host_name, Err(Errno::ENOENT));
        assert_eq!(report.after.len(), 1);
        assert_eq!(report.after[0].name, queue.name.file_name());
        assert!(
            report.after[0]
                .status
                .starts_with(&format!("QSIZE:{} ", ipc_demo::NS_MESSAGE.len())),
            "{:?}",
            report.after[0]
        );
        assert_eq!(report.received, ipc_demo::NS_MESSAGE);
        assert_eq!(queue.messages().unwrap(), 1, "the host's queue is untouched");
        assert_eq!(
            testing::mount_table(),
            mounts,
            "the child's mounts leaked to the host"
        );
        let (_, removed) = queue.remove();
        assert_eq!(removed, Ok(()));
    });
}

#[test]
fn posix_shared_memory_is_not_isolated_by_the_ipc_namespace_but_by_the_mount_namespace() {
    if !require_namespaces(
        "posix_shared_memory_is_not_isolated_by_the_ipc_namespace_but_by_the_mount_namespace",
    ) {
        return;
    }
    let key = key_for("posix_shm");
    leaves_host_as_found(key, || {
        let mounts = testing::mount_table();
        let shm = ipc_demo::make_host_shm(key).unwrap();
        let host_ns = ipc_demo::look(key).unwrap().ns;
        let shared =
            ipc_demo::read_shm_in_new_namespace(&spawn_for_tests(CloneFlags::empty()), key, false).unwrap();
        assert_ne!(shared.ipc, host_ns);
        assert_eq!(shared.read.as_deref(), Ok(ipc_demo::HOST_SHM_TEXT));
        let private =
            ipc_demo::read_shm_in_new_namespace(&spawn_for_tests(CloneFlags::CLONE_NEWNS), key, true)
                .unwrap();
        assert_eq!(private.read, Err(Errno::ENOENT));
        assert_eq!(shm.read().as_deref(), Ok(ipc_demo::HOST_SHM_TEXT));
        assert_eq!(
            testing::mount_table(),
            mounts,
            "the child's tmpfs leaked to the host"
        );
        drop(shm);
    });
}

#[test]
fn objects_live_as_long_as_their_namespace() {
    if !require_namespaces("objects_live_as_long_as_their_namespace") {
        return;
    }
    let key = key_for("lifetime");
    leaves_host_as_found(key, || {
        let _objects = ipc_demo::make_host_objects(key).unwrap();
        let host_before = ipc_demo::look(key).unwrap();
        let spawn = spawn_for_tests(CloneFlags::empty());
        let populated = ipc_demo::populate_new_namespace(&spawn, key).unwrap();
        assert_eq!(populated.view.counts, [1, 1, 1]);
        let made_in = populated.view.ns;
        let handles = populated.handles().unwrap();
        populated.exit().unwrap();

        // No process is left, but the open fd keeps the namespace and everything in it.
        let joined = ipc_demo::join_and_look(&handles, key).unwrap();
        assert_eq!(joined.view.ns, made_in, "joined the same namespace");
        assert_eq!(joined.view.counts, [1, 1, 1]);
        assert_eq!(joined.view.of(sysv::Kind::Msg).listed.unwrap().count, 1);
        assert_eq!(
            joined.second_queue,
            Err(Errno::EMFILE),
            "the first big queue still counts"
        );
        // The control: from another IPC namespace of the same user, the big queue still counts while
        // the fd is open; so what changes below is the namespace's death, nothing else.
        let control = ipc_demo::witness_from_new_namespace(handles.user.as_ref(), key).unwrap();
        assert_ne!(control.view.ns, made_in);
        assert_eq!(
            control.second_queue,
            Err(Errno::EMFILE),
            "alive while the fd is open"
        );

        // No process and no handle: the kernel destroys the namespace's objects, and the big queue's
        // memory is given back to its user.
        let user = handles.close_ipc();
        let after = ipc_demo::witness_from_new_namespace(user.as_ref(), key).unwrap();
        assert_eq!(
            after.second_queue,
            Ok(()),
            "the dead namespace's queue was destroyed"
        );
        assert_eq!(after.view.counts, [0, 0, 0]);
        assert_eq!(ipc_demo::look(key).unwrap().sightings, host_before.sightings);
    });
}

#[test]
fn mount_mqueue_needs_a_directory_and_reports_the_target() {
    // The public function `combined` uses: a clear, typed error for a missing target. Run in a forked
    // child with its own namespaces, so that nothing can be mounted on the host even by mistake.
    if !require_namespaces("mount_mqueue_needs_a_directory_and_reports_the_target") {
        return;
    }
    let spawn = spawn_for_tests(CloneFlags::CLONE_NEWNS);
    let mut child = spawn
        .run(|channel| {
            let private = posix::make_mounts_private();
            let missing = posix::mount_mqueue(std::path::Path::new("/nonexistent-ipc-demo"));
            let text = match (private, missing) {
                (Ok(()), Err(e)) => e.to_string(),
                (Err(e), _) => format!("private: {e}"),
                (Ok(()), Ok(())) => "mounted".into(),
            };
            ipc_demo::end_child(i32::from(channel.send(&text).is_err()))
        })
        .unwrap();
    let text = child.channel().recv().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        text,
        "cannot mount mqueue on /nonexistent-ipc-demo: ENOENT: No such file or directory"
    );
}

// The demo binary, as a learner runs it.

fn run_demo(args: &[&str]) -> Output {
    Command::new(DEMO).args(args).output().expect("run the demo")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_demo_tells_the_story(output: &Output, key: Key) {
    let stdout = stdout_of(output);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let host = ipc_demo::look(key).unwrap().ns.to_string();
    for expected in [
        format!("[host ] {host} msg queue     key={key}  msgget -> ok"),
        format!("semaphore set key={key}  semget -> ENOENT  not listed"),
        "/proc/sysvipc: 0 msg queues, 0 semaphore sets, 0 shm segments".into(),
        "listed: 2 semaphores".into(),
        "(its own)".into(),
        format!("msgrcv(key={key}) -> \"hello from the namespace\""),
        "(untouched)".into(),
        "ls /dev/mqueue -> (empty)".into(),
        "-> ENOENT".into(),
        "(NOT isolated)".into(),
        "(own tmpfs on /dev/shm)".into(),
        "(still there: the fd keeps the namespace alive)".into(),
        "a second 80 KiB queue -> EMFILE   (the first one still exists)".into(),
        "a second 80 KiB queue -> ok   (the first was destroyed, its memory given back)".into(),
        "(a new namespace starts empty)".into(),
        format!("/proc/sysvipc: no object with key {key} left"),
    ] {
        assert!(stdout.contains(&expected), "missing {expected:?} in\n{stdout}");
    }
    for n in 1..=8 {
        assert!(
            stdout.contains(&format!("\n{n}. ")),
            "step {n} missing in\n{stdout}"
        );
    }
}

#[test]
fn the_demo_tells_the_story_and_leaves_nothing() {
    if !require_namespaces("the_demo_tells_the_story_and_leaves_nothing") {
        return;
    }
    let key = key_for("demo");
    leaves_host_as_found(key, || {
        let output = run_demo(&["--key", &key.to_string()]);
        assert_demo_tells_the_story(&output, key);
        let banner = if nskit::userns::is_root() {
            "running as root"
        } else {
            "not root"
        };
        assert!(stdout_of(&output).contains(banner));
    });
}

#[test]
fn the_demo_through_a_user_namespace() {
    // An ordinary user always goes through one; root does when asked with --userns.
    if !testing::require_userns("the_demo_through_a_user_namespace") {
        return;
    }
    let key = key_for("demo_userns");
    leaves_host_as_found(key, || {
        let key_text = key.to_string();
        let mut args = vec!["--key", &key_text];
        if nskit::userns::is_root() {
            args.push("--userns");
        }
        let output = run_demo(&args);
        assert_demo_tells_the_story(&output, key);
        let banner = if nskit::userns::is_root() {
            "asked for a user namespace"
        } else {
            "each child enters a new user namespace first"
        };
        assert!(stdout_of(&output).contains(banner));
    });
}

#[test]
fn quiet_prints_observations_only() {
    if !require_namespaces("quiet_prints_observations_only") {
        return;
    }
    let key = key_for("quiet");
    leaves_host_as_found(key, || {
        let output = run_demo(&["--key", &key.to_string(), "--quiet", "--step", "hidden"]);
        assert!(output.status.success());
        let stdout = stdout_of(&output);
        assert!(stdout.lines().all(|l| l.starts_with('[')), "{stdout}");
        assert!(stdout.contains("msgget -> ENOENT"), "{stdout}");
    });
}

#[test]
fn one_step_runs_after_step_one() {
    if !require_namespaces("one_step_runs_after_step_one") {
        return;
    }
    let key = key_for("one_step");
    leaves_host_as_found(key, || {
        let output = run_demo(&["--key", &key.to_string(), "--step", "posix-shm"]);
        assert!(output.status.success());
        let stdout = stdout_of(&output);
        for (present, heading) in [
            (true, "\n1. "),
            (false, "\n2. "),
            (false, "\n5. "),
            (true, "\n6. "),
            (false, "\n7. "),
            (true, "\n8. "),
        ] {
            assert_eq!(stdout.contains(heading), present, "{heading:?} in\n{stdout}");
        }
    });
}

#[test]
fn bad_input_is_refused_with_exit_code_2_before_anything_is_made() {
    let _serial = exclusive();
    let before = host_total();
    for (args, message) in [
        (&["--key", "0"][..], "IPC_PRIVATE"),
        (&["--key", "0x1g"][..], "expected a number"),
        (&["--key", "0x100000000"][..], "does not fit in 32 bits"),
        (&["--step", "everything"][..], "invalid value 'everything'"),
        (&["--frobnicate"][..], "unexpected argument"),
    ] {
        let output = run_demo(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed before failing");
    }
    assert_eq!(host_total(), before);
}

#[test]
fn a_failing_run_removes_what_it_made() {
    if !require_namespaces("a_failing_run_removes_what_it_made") {
        return;
    }
    let key = key_for("failing");
    leaves_host_as_found(key, || {
        // Someone else holds the POSIX shared memory name: step 6 fails after steps 1 and 5 made their
        // host objects, and the demo must remove those on its way out.
        let name = PosixName::of(key);
        posix::shm_create(&name, b"not the demo's").unwrap();
        let output = run_demo(&["--key", &key.to_string()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("already exists on the host"), "{stderr}");
        assert!(
            stdout_of(&output).contains("\n5. "),
            "the run got as far as step 5"
        );
        assert_eq!(
            posix::shm_read(&name).as_deref(),
            Ok("not the demo's"),
            "someone else's object kept"
        );
        posix::shm_remove(&name).unwrap();
    });
}

/// Starts the demo paused after `step`, checks its host objects exist, sends `signal`, and checks it
/// died of that signal and left nothing.
fn interrupt_after(step: &str, signal: Signal) {
    let key = key_for(&format!("interrupt_{step}_{signal}"));
    leaves_host_as_found(key, || {
        let mut child = Command::new(DEMO)
            .args(["--key", &key.to_string(), "--pause-after", step])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("paused after") {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("the demo ended before pausing: {status}");
            }
        }
        let view = ipc_demo::look(key).unwrap();
        assert!(
            view.sightings.iter().all(|s| s.reached.is_ok()),
            "host objects exist while paused"
        );
        if step == "posix-shm" {
            assert!(PosixName::of(key).shm_path().exists());
        }
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(signal as i32), "{status}");
    });
}

#[test]
fn ctrl_c_after_step_one_removes_the_host_objects() {
    interrupt_after("host", Signal::SIGINT);
}

#[test]
fn ctrl_c_after_the_posix_steps_removes_everything() {
    if !require_namespaces("ctrl_c_after_the_posix_steps_removes_everything") {
        return;
    }
    interrupt_after("posix-shm", Signal::SIGINT);
}

#[test]
fn sigterm_removes_the_host_objects_too() {
    if !require_namespaces("sigterm_removes_the_host_objects_too") {
        return;
    }
    interrupt_after("mqueue", Signal::SIGTERM);
}

#[test]
fn a_closed_stdout_does_not_stop_the_cleanup() {
    // `ipc-demo | head -3`: once the reader is gone every write fails with EPIPE; the demo must still
    // run to its end and remove what it made.
    if !require_namespaces("a_closed_stdout_does_not_stop_the_cleanup") {
        return;
    }
    let key = key_for("closed_stdout");
    leaves_host_as_found(key, || {
        let mut child = Command::new(DEMO)
            .args(["--key", &key.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
