//! The tests that say when an exercise of the network chapter is done, one module per exercise. They
//! call [`net_exercises::checked`]: your starting points, or the solutions with `--features solution`.
//! Namespace work happens in children (`net_exercises::given`), never in a test's thread, and every
//! packet stays between namespaces the test made.

mod lo {
    use net_exercises::checked::lo::{interfaces, loopback_up};
    use net_exercises::given::{call_own_loopback, in_child, new_netns};
    use nskit::testing::require_namespaces;

    #[test]
    fn a_new_namespace_has_lo_down_and_reaches_127_0_0_1_once_it_is_up() {
        if !require_namespaces("a_new_namespace_has_lo_down_and_reaches_127_0_0_1_once_it_is_up") {
            return;
        }
        let seen = in_child(&new_netns(), || {
            let before = interfaces().map_err(|e| format!("interfaces: {e}"))?;
            let while_down = call_own_loopback()?;
            loopback_up().map_err(|e| format!("loopback_up: {e}"))?;
            let after = interfaces().map_err(|e| format!("interfaces: {e}"))?;
            Ok((before, while_down, after, call_own_loopback()?))
        });
        let (before, while_down, after, while_up) =
            seen.unwrap_or_else(|why| panic!("the child failed: {why}"));
        assert_eq!(
            before,
            [("lo".to_owned(), false)],
            "a new namespace's interfaces: lo alone, down"
        );
        assert_eq!(
            while_down,
            Err("ENETUNREACH".to_owned()),
            "with lo down, 127.0.0.1 has no route"
        );
        assert_eq!(after, [("lo".to_owned(), true)], "lo, up");
        assert_eq!(while_up, Ok(()), "with lo up, a call to 127.0.0.1 connects");
    }
}

mod abstract_socket {
    use std::io::ErrorKind;
    use std::os::unix::net::{UnixListener, UnixStream};

    use net_exercises::checked::abstract_socket::{connect_abstract, listen_abstract};
    use net_exercises::given::{in_child, new_netns, waiting_in_new_netns};
    use nskit::testing::require_namespaces;

    #[test]
    fn the_abstract_name_is_reached_only_from_its_own_network_namespace() {
        if !require_namespaces("the_abstract_name_is_reached_only_from_its_own_network_namespace") {
            return;
        }
        let name = format!("ns-course-exercise-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("net-abstract-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let (listener_name, listener_path) = (name.clone(), path.clone());
        let server = waiting_in_new_netns(move || {
            // Leaked on purpose: the listeners must stay open while the process waits.
            let own = listen_abstract(&listener_name).map_err(|e| format!("listen_abstract: {e}"))?;
            let file = UnixListener::bind(&listener_path).map_err(|e| format!("bind a path: {e}"))?;
            let from_inside = connect_abstract(&listener_name)
                .map(drop)
                .map_err(|e| format!("connect_abstract from the listener's own namespace: {e}"));
            std::mem::forget((own, file));
            from_inside
        });
        let (server, ()) = server.unwrap_or_else(|why| panic!("the listener failed: {why}"));
        let (client_name, client_path) = (name.clone(), path.clone());
        let seen = in_child(&new_netns(), move || {
            let by_name = connect_abstract(&client_name)
                .map(drop)
                .map_err(|e| e.kind() == ErrorKind::ConnectionRefused);
            let by_path = UnixStream::connect(&client_path)
                .map(drop)
                .map_err(|e| e.to_string());
            Ok((by_name, by_path))
        });
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        let (by_name, by_path) = seen.unwrap_or_else(|why| panic!("the client failed: {why}"));
        assert_eq!(
            by_name,
            Err(true),
            "from another network namespace, connect to @{name} is refused: no such name there"
        );
        assert_eq!(
            by_path,
            Ok(()),
            "a socket bound to a path is reached by its file, whichever network namespace the caller is in"
        );
    }
}

mod route {
    use std::net::Ipv4Addr;

    use net_exercises::Setup;
    use net_exercises::checked::route::setup;
    use net_exercises::given::route_lab;
    use nskit::testing::require_namespaces;

    /// The book's question: a /24 and no route of one's own.
    fn prefix_24(end: &'static str, addr: Ipv4Addr) -> Vec<Setup> {
        vec![Setup::Up("lo"), Setup::Up(end), Setup::Address(end, addr, 24)]
    }

    #[test]
    fn with_a_24_the_kernels_own_route_is_enough() {
        if !require_namespaces("with_a_24_the_kernels_own_route_is_enough") {
            return;
        }
        let called = route_lab(prefix_24).unwrap_or_else(|why| panic!("the lab failed: {why}"));
        assert_eq!(
            called,
            Ok(()),
            "red reaches blue through the route a /24 address adds"
        );
    }

    #[test]
    fn red_reaches_blue_across_the_pair() {
        if !require_namespaces("red_reaches_blue_across_the_pair") {
            return;
        }
        let called = route_lab(setup).unwrap_or_else(|why| panic!("the lab failed: {why}"));
        if let Err(errno) = called {
            panic!(
                "red's connect to blue: {errno}\n\nEach end has an address, both links are up, and the \
                 cable is there, yet red's kernel does not know where 10.77.0.2 is. An address \
                 addr/prefix adds a route to the prefix's network through its link (`ip route` shows it \
                 as `proto kernel scope link`); a /32 is a network of one, itself, so it adds no route \
                 to anyone else. Put the Setup::Route step back (or give the addresses a /24, and see \
                 the kernel's own route do the same work)."
            );
        }
    }
}
