//! The tests that say when an exercise of the time chapter is done, one module per exercise. They
//! call [`time_exercises::checked`]: your starting points, or the solutions with `--features solution`.
//! The namespace is made in a child (`time_exercises::given`), never in a test's thread.

mod offsets {
    use nskit::testing::require_namespaces;
    use time_exercises::checked::offsets::write_offsets;
    use time_exercises::given::{across_a_time_namespace, read_clocks, shifted_by};

    const WEEK: i64 = 7 * 86_400;
    const MONTH: i64 = 30 * 86_400;

    #[test]
    fn the_first_child_reads_both_clocks_moved_and_the_wall_clock_not() {
        if !require_namespaces("the_first_child_reads_both_clocks_moved_and_the_wall_clock_not") {
            return;
        }
        let seen = across_a_time_namespace(
            || write_offsets(WEEK, MONTH).map_err(|e| format!("write_offsets: {e}")),
            read_clocks,
        );
        let seen = seen.unwrap_or_else(|why| panic!("{why}"));
        let (outside, inside) = (seen.outside, seen.inside);
        assert!(
            shifted_by(outside.monotonic, inside.monotonic, WEEK),
            "CLOCK_MONOTONIC a week ahead inside: {outside:?} outside, {inside:?} inside"
        );
        assert!(
            shifted_by(outside.boottime, inside.boottime, MONTH),
            "CLOCK_BOOTTIME thirty days ahead inside: {outside:?} outside, {inside:?} inside"
        );
        assert!(
            shifted_by(outside.realtime, inside.realtime, 0),
            "the wall clock the same: {outside:?} outside, {inside:?} inside"
        );
    }
}

mod realtime {
    use nskit::Proc;
    use nskit::testing::require_namespaces;
    use time_demo::clocks::{Clock, Offset, line, write_offsets};
    use time_exercises::checked::realtime::shifts;
    use time_exercises::given::{across_a_time_namespace, read_clocks, shifted_by};

    #[test]
    fn every_clock_shifted_moves_by_its_offset() {
        if !require_namespaces("every_clock_shifted_moves_by_its_offset") {
            return;
        }
        let asked = shifts();
        let lines: String = asked
            .iter()
            .map(|&(clock, secs)| line(clock, Offset::from_secs(secs)))
            .collect();
        let seen = across_a_time_namespace(
            || {
                write_offsets(Proc::Current, &lines).map_err(|e| {
                    format!(
                        "write {lines:?} to timens_offsets: {e}\n\nA time namespace has an offset for \
                         CLOCK_MONOTONIC and one for CLOCK_BOOTTIME, and for no other clock: the kernel \
                         refuses any other line with EINVAL, and refuses the whole write with it \
                         (time_namespaces(7)). CLOCK_REALTIME, the wall clock, is shared by every \
                         namespace: moving it is settimeofday(2) for the whole machine, and takes \
                         CAP_SYS_TIME in the initial user namespace. Take the CLOCK_REALTIME line out."
                    )
                })
            },
            read_clocks,
        );
        let seen = seen.unwrap_or_else(|why| panic!("{why}"));
        for (clock, secs) in asked {
            let pick = |c: time_exercises::Clocks| match clock {
                Clock::Monotonic => c.monotonic,
                Clock::Boottime => c.boottime,
                Clock::Realtime => c.realtime,
            };
            assert!(
                shifted_by(pick(seen.outside), pick(seen.inside), secs),
                "{clock:?} moved by {secs} s: {:?} outside, {:?} inside",
                seen.outside,
                seen.inside
            );
        }
    }
}

mod uptime {
    use nskit::Proc;
    use nskit::testing::require_namespaces;
    use time_demo::clocks::{Clock, Offset, line, write_offsets};
    use time_exercises::checked::uptime::uptime;
    use time_exercises::given::{across_a_time_namespace, shifted_by};

    const YEAR: i64 = 365 * 86_400;

    fn look() -> Result<(f64, f64), String> {
        let boottime = Clock::Boottime.now().map_err(|e| e.to_string())?.as_secs_f64();
        Ok((uptime().map_err(|e| format!("uptime: {e}"))?, boottime))
    }

    #[test]
    fn uptime_is_boottime_and_a_year_longer_inside() {
        if !require_namespaces("uptime_is_boottime_and_a_year_longer_inside") {
            return;
        }
        let shift = line(Clock::Boottime, Offset::from_secs(YEAR));
        let seen = across_a_time_namespace(
            || write_offsets(Proc::Current, &shift).map_err(|e| e.to_string()),
            look,
        );
        let seen = seen.unwrap_or_else(|why| panic!("{why}"));
        let ((up_outside, boottime_outside), (up_inside, _)) = (seen.outside, seen.inside);
        assert!(
            shifted_by(boottime_outside, up_outside, 0),
            "outside, the uptime {up_outside} is CLOCK_BOOTTIME {boottime_outside}"
        );
        assert!(
            shifted_by(up_outside, up_inside, YEAR),
            "inside, the machine has been up a year longer: {up_outside} outside, {up_inside} inside"
        );
    }
}
