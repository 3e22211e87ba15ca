//! The tests that say when an exercise of the IPC chapter is done, one module per exercise. They call
//! [`ipc_exercises::checked`]: your starting points, or the solutions with `--features solution`.
//! Namespace work happens in children (`ipc_exercises::given`), never in a test's thread; every key and
//! name is the test's own, and what the host side makes is removed when the test ends.

mod keys {
    use ipc_demo::namespace_spawn;
    use ipc_demo::sysv::msg_create;
    use ipc_exercises::checked::keys::queue_keys;
    use ipc_exercises::given::{HostQueue, in_child, own_key, said};
    use nix::sched::CloneFlags;
    use nskit::testing::require_namespaces;

    #[test]
    fn each_namespace_lists_its_own_queue_under_the_same_key() {
        if !require_namespaces("each_namespace_lists_its_own_queue_under_the_same_key") {
            return;
        }
        let key = own_key(1);
        let _host = HostQueue::make(key).unwrap();
        let host_keys = queue_keys().unwrap_or_else(|e| panic!("queue_keys on the host failed: {e}"));
        assert!(
            host_keys.contains(&key.raw()),
            "the host lists its queue's key {}: {host_keys:?}",
            key.raw()
        );
        let child_keys = in_child(&namespace_spawn(CloneFlags::empty(), false), || {
            msg_create(key).map_err(|e| said("msgget in the child", e))?;
            queue_keys().map_err(|e| format!("queue_keys in the child: {e}"))
        });
        let child_keys = child_keys.unwrap_or_else(|why| panic!("the child failed: {why}"));
        assert_eq!(
            child_keys,
            [key.raw()],
            "the child's new IPC namespace holds its own queue only"
        );
    }
}

mod flags {
    use ipc_demo::sysv::{self, msg_create};
    use ipc_exercises::checked::flags::child_flags;
    use ipc_exercises::given::{HostQueue, in_child, own_key, said};
    use nskit::Spawn;
    use nskit::testing::require_namespaces;

    #[test]
    fn the_child_makes_a_queue_with_a_key_the_host_uses() {
        if !require_namespaces("the_child_makes_a_queue_with_a_key_the_host_uses") {
            return;
        }
        let key = own_key(2);
        let _host = HostQueue::make(key).unwrap();
        let made = in_child(&Spawn::new(child_flags()), || {
            let id = msg_create(key).map_err(|e| said("msgget(key, IPC_CREAT | IPC_EXCL)", e))?;
            // Had it been made in the host's namespace, it would outlive the child: remove it.
            sysv::remove(sysv::Kind::Msg, id).map_err(|e| said("msgctl(IPC_RMID)", e))
        });
        if let Err(why) = made {
            panic!(
                "{why}\n\nThe key is taken: the child looked it up in the IPC namespace it is in, and \
                 without CLONE_NEWIPC that is the host's, where the test made a queue with this key \
                 first. System V keys are names in a namespace, like file names in a directory: two \
                 containers that both use a well-known key (a database's, say) need IPC namespaces of \
                 their own, or they meet (ipc_namespaces(7)). Put CLONE_NEWIPC back."
            );
        }
    }
}

mod shm {
    use ipc_demo::namespace_spawn;
    use ipc_demo::posix::{PosixName, make_mounts_private, shm_create, shm_read};
    use ipc_exercises::checked::shm::private_shm;
    use ipc_exercises::given::{HostShm, in_child, own_key, said};
    use nix::errno::Errno;
    use nix::sched::CloneFlags;
    use nskit::testing::require_namespaces;

    #[test]
    fn the_childs_shared_memory_and_the_hosts_do_not_meet() {
        if !require_namespaces("the_childs_shared_memory_and_the_hosts_do_not_meet") {
            return;
        }
        let host = HostShm::make(own_key(3), "the host's").unwrap();
        let childs = PosixName::of(own_key(4));
        let host_name = host.name;
        let seen = in_child(&namespace_spawn(CloneFlags::CLONE_NEWNS, false), move || {
            make_mounts_private().map_err(|e| e.to_string())?;
            private_shm().map_err(|e| e.to_string())?;
            shm_create(&childs, b"the child's").map_err(|e| said("shm_open in the child", e))?;
            Ok(shm_read(&host_name).ok())
        });
        let seen = seen.unwrap_or_else(|why| panic!("the child failed: {why}"));
        let leaked = shm_read(&childs);
        if leaked.is_ok() {
            let _ = ipc_demo::posix::shm_remove(&childs);
        }
        assert_eq!(
            seen,
            None,
            "the child, in an IPC namespace of its own, opened the host's {}: shm_open(3) is open(2) \
             of a file in /dev/shm, and /dev/shm is the host's until the child's mount namespace has \
             a /dev/shm of its own. The IPC namespace isolates System V objects and POSIX message \
             queues only (ipc_namespaces(7)).",
            host.name.as_str()
        );
        assert_eq!(
            leaked,
            Err(Errno::ENOENT),
            "the host sees the child's object {}",
            childs.as_str()
        );
    }
}
