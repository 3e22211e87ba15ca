//! Diagrams whose facts come from a demo's recorded output (book/src/transcripts), not from a hand:
//! the PID tree of pid-demo's step 3, the veth pair of net-demo, the propagation cases of mnt-demo.
//! Each reads the transcript and writes the text of a box diagram (`boxes.rs`), so that re-recording
//! a transcript redraws its picture, and a transcript that no longer says what the picture needs
//! fails `book-check` with the reason.

use std::fmt::Write as _;

use anyhow::{Context, bail};

/// A labelled observation line of a demo: `[label] kind:[inode] text`.
#[derive(Debug, PartialEq, Eq)]
struct Observation<'a> {
    label: &'a str,
    ns: &'a str,
    text: &'a str,
}

fn observation(line: &str) -> Option<Observation<'_>> {
    let rest = line.strip_prefix('[')?;
    let (label, rest) = rest.split_once("] ")?;
    let (ns, text) = rest.split_once(' ').unwrap_or((rest, ""));
    ns.contains(":[").then_some(Observation {
        label: label.trim(),
        ns,
        text,
    })
}

/// Quotes a label for the diagram text.
fn q(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The numbered sections of a transcript (`3. Nested PID namespaces...` and the lines under it).
fn sections(transcript: &str) -> Vec<Vec<&str>> {
    let mut found: Vec<Vec<&str>> = Vec::new();
    for line in transcript.lines() {
        let numbered = line
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            found.push(vec![line]);
        } else if let Some(section) = found.last_mut() {
            section.push(line);
        }
    }
    found
}

// ---- the PID tree ---------------------------------------------------------------------------------

/// One row of pid-demo's table of processes.
#[derive(Debug, PartialEq, Eq)]
struct Process {
    depth: usize,
    name: String,
    /// The PID at each level (L1, L2, ...), where it has one.
    pids: Vec<Option<u32>>,
    ns: String,
    host_pid: u32,
}

fn process_table(transcript: &str) -> anyhow::Result<(Vec<String>, Vec<Process>)> {
    let mut lines = transcript.lines();
    let header = lines
        .by_ref()
        .find(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.first() == Some(&"process") && words.ends_with(&["namespace", "host"])
        })
        .context(
            "pid-demo's transcript has no table of processes (a line `process L1 ... namespace host`)",
        )?;
    let words: Vec<&str> = header.split_whitespace().collect();
    let levels: Vec<String> = words[1..words.len() - 2]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let indent = header.len() - header.trim_start().len();
    let mut processes = Vec::new();
    for line in lines {
        let Some(row) = line
            .get(indent..)
            .filter(|r| line[..indent].trim().is_empty() && r.contains("pid:["))
        else {
            break;
        };
        let name_at = row
            .find(|c: char| c.is_alphanumeric())
            .context("a row of the process table has no name")?;
        let depth = row[..name_at].chars().count() / 3;
        let fields: Vec<&str> = row[name_at..].split_whitespace().collect();
        if fields.len() != levels.len() + 3 {
            bail!(
                "a row of the process table has {} fields, not {}: {row}",
                fields.len(),
                levels.len() + 3
            );
        }
        let pid = |s: &str| {
            s.parse::<u32>()
                .with_context(|| format!("{s:?} is not a PID in: {row}"))
        };
        let pids = fields[1..=levels.len()]
            .iter()
            .map(|f| if *f == "-" { Ok(None) } else { pid(f).map(Some) })
            .collect::<anyhow::Result<_>>()?;
        processes.push(Process {
            depth,
            name: fields[0].to_owned(),
            pids,
            ns: fields[levels.len() + 1].to_owned(),
            host_pid: pid(fields[levels.len() + 2])?,
        });
    }
    if processes.is_empty() {
        bail!("pid-demo's table of processes has no rows");
    }
    Ok((levels, processes))
}

/// The box diagram of pid-demo's nested PID namespaces: one box per namespace, each inside its
/// parent's, each process with its PID at every level it is visible at.
pub fn pid_tree(transcript: &str) -> anyhow::Result<String> {
    let (levels, processes) = process_table(transcript)?;
    let level_of = |p: &Process| p.pids.iter().filter(|p| p.is_some()).count();
    // One namespace per level, in order: the host's (level 0), then L1, L2...
    let mut namespaces: Vec<&str> = Vec::new();
    for p in &processes {
        let level = level_of(p);
        match namespaces.get(level) {
            Some(ns) if *ns == p.ns => {}
            Some(_) => bail!("two PID namespaces at level {level}: the diagram draws one chain"),
            None if level == namespaces.len() => namespaces.push(&p.ns),
            None => bail!("level {level} appears before level {}", namespaces.len()),
        }
    }
    let pid_line = |p: &Process| {
        let mut parts: Vec<String> = (0..level_of(p))
            .rev()
            .map(|l| format!("{}:{}", levels[l], p.pids[l].unwrap_or(0)))
            .collect();
        parts.push(format!("host:{}", p.host_pid));
        parts.join("  ")
    };
    let mut out = String::from("diagram boxes\n");
    let _ = writeln!(
        out,
        "title: pid-demo's nested PID namespaces, each process with its PID at every level it is visible at"
    );
    let mut alt = format!(
        "{} nested boxes, one per PID namespace, each inside its parent's: the host's, then {}. ",
        namespaces.len(),
        levels[..namespaces.len() - 1].join(", ")
    );
    for (i, p) in processes.iter().enumerate() {
        let parent = processes[..i].iter().rposition(|q| q.depth + 1 == p.depth);
        let _ = write!(alt, "{} ({})", p.name, pid_line(p).replace(':', " "));
        if let Some(parent) = parent {
            let _ = write!(alt, ", child of process {}", parent + 1);
        }
        alt.push_str(if i + 1 == processes.len() { "." } else { "; " });
    }
    let _ = writeln!(out, "alt: {alt}");
    for (level, ns) in namespaces.iter().enumerate() {
        let indent = "  ".repeat(level);
        let name = if level == 0 { "host" } else { &levels[level - 1] };
        let style = if level == 0 { "host" } else { "ns" };
        let _ = writeln!(
            out,
            "{indent}box ns{level} {} style={style} title=right",
            q(&format!("{name}  {ns}"))
        );
        let _ = writeln!(out, "{indent}  row gap=40");
        for (i, p) in processes.iter().enumerate().filter(|(_, p)| level_of(p) == level) {
            let _ = writeln!(out, "{indent}    box p{i} {}", q(&p.name));
            let _ = writeln!(out, "{indent}      | {}", pid_line(p));
        }
    }
    for (i, p) in processes.iter().enumerate() {
        if let Some(parent) = processes[..i].iter().rposition(|q| q.depth + 1 == p.depth) {
            let _ = writeln!(out, "edge p{parent} -> p{i}");
        }
    }
    Ok(out)
}

// ---- the veth pair --------------------------------------------------------------------------------

/// What net-demo printed about one namespace's links, addresses and routes.
#[derive(Debug, Default, PartialEq, Eq)]
struct NetView {
    label: String,
    ns: String,
    /// (name, kind, state): `veth-red(veth) UP` is ("veth-red", "veth", "UP").
    links: Vec<(String, String, String)>,
    addresses: Vec<(String, String)>,
    routes: Vec<String>,
}

fn net_views(section: &[&str]) -> anyhow::Result<Vec<NetView>> {
    let mut views: Vec<NetView> = Vec::new();
    for o in section.iter().filter_map(|l| observation(l)) {
        let view = match views.iter().position(|v| v.label == o.label) {
            Some(i) => &mut views[i],
            None => {
                views.push(NetView {
                    label: o.label.to_owned(),
                    ns: o.ns.to_owned(),
                    ..NetView::default()
                });
                views.last_mut().expect("just pushed")
            }
        };
        let list = |rest: &str| {
            rest.split(", ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        if let Some(rest) = o.text.strip_prefix("links: ") {
            for link in list(rest) {
                let (name, state) = link
                    .rsplit_once(' ')
                    .with_context(|| format!("a link without a state: {link}"))?;
                let (name, kind) = match name.split_once('(') {
                    Some((n, k)) => (n, k.trim_end_matches(')')),
                    None => (name, ""),
                };
                view.links
                    .push((name.to_owned(), kind.to_owned(), state.to_owned()));
            }
        } else if let Some(rest) = o.text.strip_prefix("addresses: ") {
            for address in list(rest) {
                let (dev, addr) = address
                    .split_once(' ')
                    .with_context(|| format!("an address without a device: {address}"))?;
                view.addresses.push((dev.to_owned(), addr.to_owned()));
            }
        } else if let Some(rest) = o.text.strip_prefix("routes: ") {
            view.routes.extend(list(rest));
        }
    }
    views.retain(|v| !v.links.is_empty());
    Ok(views)
}

/// The box diagram of net-demo's two namespaces and the veth pair between them, with each end's
/// address and each namespace's route, as the demo printed them.
pub fn veth(transcript: &str) -> anyhow::Result<String> {
    let section = sections(transcript)
        .into_iter()
        .find(|s| {
            s.iter()
                .any(|l| observation(l).is_some_and(|o| o.text.starts_with("addresses: ")))
        })
        .context("net-demo's transcript has no step that lists addresses")?;
    let views = net_views(&section)?;
    let [a, b] = views.as_slice() else {
        bail!(
            "expected two namespaces with links in net-demo's transcript, found {}",
            views.len()
        );
    };
    let host = section
        .iter()
        .filter_map(|l| observation(l))
        .find(|o| o.label == "host")
        .context("net-demo's step that lists addresses has no host line")?;
    let veth_of = |v: &NetView| {
        v.links
            .iter()
            .find(|(_, kind, _)| kind == "veth")
            .map(|(name, _, _)| name.clone())
            .with_context(|| format!("{} has no veth link", v.label))
    };
    let (end_a, end_b) = (veth_of(a)?, veth_of(b)?);
    let mut out = String::from("diagram boxes\n");
    let _ = writeln!(
        out,
        "title: net-demo's two network namespaces, joined by a veth pair"
    );
    let describe = |v: &NetView| {
        let addresses: Vec<String> = v.addresses.iter().map(|(d, a)| format!("{d} {a}")).collect();
        format!(
            "{} ({}) holds {}; route {}",
            v.label,
            v.ns,
            addresses.join(" and "),
            v.routes.join(", ")
        )
    };
    let _ = writeln!(
        out,
        "alt: Two boxes side by side inside the host, which sees none of their interfaces. {}. {}. A line joins {end_a} and {end_b}, the two ends of one veth pair: a frame sent into one end comes out of the other.",
        describe(a),
        describe(b)
    );
    // "demo interfaces: none; interfaces in all: 4": the first part is the point.
    let seen = host.text.split(';').next().unwrap_or_default();
    let _ = writeln!(
        out,
        "box host {} style=host",
        q(&format!("the host  {}: {seen}", host.ns))
    );
    let _ = writeln!(out, "  row gap=120");
    for v in [a, b] {
        let _ = writeln!(
            out,
            "    box {} {} style=ns",
            v.label,
            q(&format!("{}  {}", v.label, v.ns))
        );
        // The veth end first on both sides, so the pair's line runs straight across.
        let mut links: Vec<&(String, String, String)> = v.links.iter().collect();
        links.sort_by_key(|(_, kind, _)| kind != "veth");
        for (name, kind, state) in links {
            let title = if kind.is_empty() {
                format!("{name}  {state}")
            } else {
                format!("{name}  {kind} {state}")
            };
            let _ = writeln!(out, "      box {}-{name} {}", v.label, q(&title));
            for (_, addr) in v.addresses.iter().filter(|(d, _)| d == name) {
                let _ = writeln!(out, "        | {addr}");
            }
        }
        for route in &v.routes {
            match route.split_once(" dev ") {
                Some((dest, rest)) => {
                    let _ = writeln!(out, "      | route {dest}");
                    let _ = writeln!(out, "      |   dev {rest}");
                }
                None => {
                    let _ = writeln!(out, "      | route {route}");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "edge {}-{end_a} <-> {}-{end_b} \"veth pair\"",
        a.label, b.label
    );
    Ok(out)
}

// ---- mount propagation ----------------------------------------------------------------------------

/// One of mnt-demo's leak cases: what the container did first, its copy's tags, and what crossed.
#[derive(Debug, PartialEq, Eq)]
struct LeakCase {
    did: String,
    tags: String,
    leaked: bool,
    received: bool,
}

fn tags_of(text: &str) -> anyhow::Result<String> {
    let at = text
        .find("[mountinfo: ")
        .with_context(|| format!("no [mountinfo: ...] in: {text}"))?;
    Ok(text[at + "[mountinfo: ".len()..]
        .trim_end()
        .trim_end_matches(']')
        .to_owned())
}

fn yes_after(text: &str, phrase: &str) -> anyhow::Result<bool> {
    let at = text
        .find(phrase)
        .with_context(|| format!("no {phrase:?} in: {text}"))?;
    Ok(text[at + phrase.len()..]
        .trim_start()
        .to_lowercase()
        .starts_with("yes"))
}

/// The box diagram of mnt-demo's step on why a launcher isolates `/`: for each case, the host's
/// shared mount and the container's copy, and the mounts that crossed between them.
pub fn propagation(transcript: &str) -> anyhow::Result<String> {
    let section = sections(transcript)
        .into_iter()
        .find(|s| s.iter().any(|l| l.contains("sees the container's mount:")))
        .context("mnt-demo's transcript has no step where the host looks for the container's mount")?;
    let observations: Vec<Observation<'_>> = section.iter().filter_map(|l| observation(l)).collect();
    let shared = observations
        .iter()
        .find(|o| o.text.contains(" is shared"))
        .context("mnt-demo's step names no shared mount")?;
    let host = shared.label;
    let mount_point = shared.text.split(' ').next().unwrap_or_default().to_owned();
    let host_tags = tags_of(shared.text)?;
    let mut cases = Vec::new();
    let mut container_ns = String::new();
    for pair in observations.windows(2) {
        let (ctr, seen) = (&pair[0], &pair[1]);
        if seen.label != host || !seen.text.contains("sees the container's mount:") {
            continue;
        }
        container_ns = ctr.ns.to_owned();
        let did = ctr.text.split(':').next().unwrap_or_default().trim().to_owned();
        cases.push(LeakCase {
            did,
            tags: tags_of(ctr.text)?,
            leaked: yes_after(seen.text, "sees the container's mount:")?,
            received: yes_after(seen.text, &format!("container sees the {host}'s new mount:"))?,
        });
    }
    if cases.is_empty() {
        bail!("mnt-demo's step has no container cases");
    }
    let mut out = String::from("diagram boxes\n");
    let _ = writeln!(
        out,
        "title: mnt-demo's propagation cases: which mounts cross between the {host} and a container"
    );
    let mut alt = format!(
        "{} rows, one per container. In each, on the left the {host}'s mount namespace with {mount_point}, {host_tags}; on the right the container's copy of it. ",
        cases.len()
    );
    for (i, c) in cases.iter().enumerate() {
        let _ = write!(
            alt,
            "{}. The container that {}: its copy is {}; its own mount {} the {host}; the {host}'s later mount {} the container. ",
            i + 1,
            c.did.replace("mounts at once, ", ""),
            if c.tags == "-" {
                "private".to_owned()
            } else {
                c.tags.clone()
            },
            if c.leaked { "appears on" } else { "does not reach" },
            if c.received {
                "appears in"
            } else {
                "does not reach"
            },
        );
    }
    let _ = writeln!(out, "alt: {}", alt.trim_end());
    let mount_box = |id: &str, title: &str, style: &str, line: &str| {
        format!(
            "        box {id} {} style={style}\n          | {line}\n",
            q(title)
        )
    };
    for (i, c) in cases.iter().enumerate() {
        let _ = writeln!(out, "col gap=6");
        let _ = writeln!(out, "  | {}. the container: {}", i + 1, c.did);
        let _ = writeln!(out, "  row gap=150");
        let _ = writeln!(
            out,
            "    box h{i} {} style=host",
            q(&format!("{host}  {}", shared.ns))
        );
        let _ = writeln!(
            out,
            "      box hs{i} {} style=mount",
            q(&format!("{mount_point}  {host_tags}"))
        );
        out.push_str(&if c.leaked {
            mount_box(
                &format!("hc{i}"),
                "container's tmpfs",
                "leak",
                "LEAKED onto the host",
            )
        } else {
            mount_box(&format!("hc{i}"), "container's tmpfs", "gone", "not here")
        });
        out.push_str(&mount_box(
            &format!("hh{i}"),
            &format!("{host}'s later tmpfs"),
            "mount",
            "mounted here",
        ));
        let _ = writeln!(
            out,
            "    box c{i} {} style=ns",
            q(&format!("container  {container_ns}"))
        );
        let tags = if c.tags == "-" {
            "- (private)"
        } else {
            c.tags.as_str()
        };
        let _ = writeln!(
            out,
            "      box cs{i} {} style=mount",
            q(&format!("the copy  {tags}"))
        );
        out.push_str(&mount_box(
            &format!("cc{i}"),
            "container's tmpfs",
            "mount",
            "mounted here",
        ));
        out.push_str(&if c.received {
            mount_box(
                &format!("ch{i}"),
                &format!("{host}'s later tmpfs"),
                "mount",
                "propagated in",
            )
        } else {
            mount_box(
                &format!("ch{i}"),
                &format!("{host}'s later tmpfs"),
                "gone",
                "not here",
            )
        });
        if c.leaked {
            let _ = writeln!(out, "edge cc{i} -> hc{i} \"leaks out\" style=leak");
        }
        if c.received {
            let _ = writeln!(out, "edge hh{i} -> ch{i} \"propagates in\"");
        }
    }
    let _ = writeln!(
        out,
        "| shared:N: a member of peer group N   master:N: a slave of group N   -: private"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagrams::boxes;

    const PID: &str = "\
3. Nested PID namespaces, 2 levels deep
[host ] pid:[4026531836] the demo's processes, with their PID at every level:
        process            L1  L2  namespace         host
        pid-demo            -   -  pid:[4026531836]  900
        └─ ns-init          1   -  pid:[4026532191]  901
           ├─ ns-worker     2   -  pid:[4026532191]  902
           └─ ns-init       3   1  pid:[4026532193]  903
        `-`: the process has no PID at that level
";

    #[test]
    fn reads_the_pid_table() {
        let (levels, processes) = process_table(PID).unwrap();
        assert_eq!(levels, ["L1", "L2"]);
        assert_eq!(processes.len(), 4);
        assert_eq!(
            processes[3],
            Process {
                depth: 2,
                name: "ns-init".into(),
                pids: vec![Some(3), Some(1)],
                ns: "pid:[4026532193]".into(),
                host_pid: 903
            }
        );
    }

    #[test]
    fn draws_the_pid_tree() {
        let text = pid_tree(PID).unwrap();
        assert!(text.contains("| L2:1  L1:3  host:903"), "{text}");
        assert!(text.contains("edge p1 -> p3"), "{text}");
        assert!(text.contains("edge p0 -> p1"), "{text}");
        let d = boxes::parse(&text).unwrap();
        assert!(
            d.alt.contains("ns-worker (L1 2  host 902), child of process 2"),
            "{}",
            d.alt
        );
        let l = boxes::layout(&d);
        let rect = |id: &str| l.boxes.iter().find(|b| b.id == id).unwrap().rect;
        assert!(rect("ns0").contains(rect("ns1")) && rect("ns1").contains(rect("ns2")));
        assert!(rect("ns2").contains(rect("p3")) && !rect("ns2").contains(rect("p2")));
        assert!(boxes::legibility_problems(&d).is_empty());
    }

    #[test]
    fn a_changed_table_is_an_error_not_a_wrong_picture() {
        assert!(pid_tree("1. nothing here\n").is_err());
        let broken = PID.replace(
            "   1   -  pid:[4026532191]  901",
            "   x   -  pid:[4026532191]  901",
        );
        assert!(format!("{:#}", pid_tree(&broken).unwrap_err()).contains("not a PID"));
    }

    const NET: &str = "\
2. A veth pair
[red  ] net:[1] RTM_NEWLINK veth veth-red + peer veth-blue
4. Interfaces
[host ] net:[9] demo interfaces: none; interfaces in all: 4
[red  ] net:[1] links: lo UP, veth-red(veth) UP
[red  ] net:[1] addresses: lo 127.0.0.1/8, veth-red 10.200.0.1/32
[red  ] net:[1] routes: 10.200.0.0/24 dev veth-red proto static
[blue ] net:[2] links: lo UP, veth-blue(veth) UP
[blue ] net:[2] addresses: lo 127.0.0.1/8, veth-blue 10.200.0.2/32
[blue ] net:[2] routes: 10.200.0.0/24 dev veth-blue proto static
5. Moving
[blue ] net:[2] links: lo UP, mv-red(veth) DOWN
";

    #[test]
    fn draws_the_veth_pair() {
        let text = veth(NET).unwrap();
        let d = boxes::parse(&text).unwrap();
        assert_eq!(d.edges.len(), 1);
        assert_eq!(
            (d.edges[0].from.as_str(), d.edges[0].to.as_str()),
            ("red-veth-red", "blue-veth-blue")
        );
        assert!(text.contains("| 10.200.0.2/32") && text.contains("|   dev veth-red proto static"));
        assert!(
            !text.contains("mv-red"),
            "only the step that lists addresses is drawn"
        );
        assert!(
            d.alt
                .contains("red (net:[1]) holds lo 127.0.0.1/8 and veth-red 10.200.0.1/32")
        );
        let l = boxes::layout(&d);
        let e = &l.edges[0];
        assert_eq!(e.from.1, e.to.1, "the pair's line runs straight across");
        assert!(boxes::legibility_problems(&d).is_empty());
    }

    const MNT: &str = "\
3. Why a launcher makes / private
[host ] mnt:[8] $SCRATCH/shared is shared, as systemd makes /   [mountinfo: shared:1]
[ctr  ] mnt:[9] mounts at once, isolating nothing: its copy is the host's peer   [mountinfo: shared:1]
[host ] mnt:[8] sees the container's mount: YES, a leak  container sees the host's new mount: yes   (the tutorial bug)
[ctr  ] mnt:[9] mount --make-rprivate / first: its copy is private   [mountinfo: -]
[host ] mnt:[8] sees the container's mount: no           container sees the host's new mount: no   (contained)
4. Next
";

    #[test]
    fn draws_the_leak_and_its_fix() {
        let text = propagation(MNT).unwrap();
        let d = boxes::parse(&text).unwrap();
        assert_eq!(d.edges.len(), 2, "{text}");
        assert_eq!(d.edges[0].style, "leak");
        assert!(
            text.contains("box hc1 \"container's tmpfs\" style=gone"),
            "{text}"
        );
        assert!(
            d.alt
                .contains("2. The container that mount --make-rprivate / first: its copy is private"),
            "{}",
            d.alt
        );
        assert!(
            boxes::legibility_problems(&d).is_empty(),
            "{:?}",
            boxes::legibility_problems(&d)
        );
    }

    #[test]
    fn reads_observations() {
        assert_eq!(
            observation("[red  ] net:[1] links: lo UP"),
            Some(Observation {
                label: "red",
                ns: "net:[1]",
                text: "links: lo UP"
            })
        );
        assert_eq!(observation("        an explanation"), None);
        assert_eq!(observation("[x] not an ns"), None);
    }
}
