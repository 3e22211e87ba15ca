//! Sequence diagrams: processes side by side as lanes, time running down, messages between them and
//! notes on a lane. The text they are drawn from:
//!
//! ```text
//! diagram sequence
//! title: ...
//! alt: ...
//! lane parent "launcher\n(parent)"         a lane: an id and its heading
//! lane child "container" late=yes          late: its heading appears with the first message to it
//! parent -> child "1. clone(...)"          a message, with an optional style=dashed
//! note child "3. take ids\n4. mounts"      a note on one lane
//! ```

use anyhow::{Context, bail};

use super::svg::{Anchor, Rect, Svg, Tip, lines_height, lines_width};
use super::text::{Tokens, split_label};

const MARGIN: i32 = 12;
const PAD: i32 = 8;
/// The least room between two lanes' widest boxes.
const LANE_GAP: i32 = 24;
/// Room on each side of a message's label.
const LABEL_ROOM: i32 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceDiagram {
    pub title: String,
    pub alt: String,
    pub lanes: Vec<Lane>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub id: String,
    pub heading: Vec<String>,
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message {
        from: usize,
        to: usize,
        label: Vec<String>,
        dashed: bool,
    },
    Note {
        lane: usize,
        text: Vec<String>,
    },
}

/// Parses a sequence diagram's text (see the module's documentation).
pub fn parse(text: &str) -> anyhow::Result<SequenceDiagram> {
    let lines = super::text::lines(text)?;
    let mut title = None;
    let mut alt = None;
    let mut lanes: Vec<Lane> = Vec::new();
    let mut events = Vec::new();
    let mut lines = lines.iter();
    match lines.next() {
        Some(l) if l.text == "diagram sequence" => {}
        _ => bail!("a sequence diagram starts with `diagram sequence`"),
    }
    for line in lines {
        let context = || format!("line {}: {}", line.number, line.text);
        if let Some(rest) = line.text.strip_prefix("title:") {
            title = Some(rest.trim().to_owned());
            continue;
        }
        if let Some(rest) = line.text.strip_prefix("alt:") {
            alt = Some(rest.trim().to_owned());
            continue;
        }
        let lane_index = |lanes: &[Lane], id: &str| {
            lanes
                .iter()
                .position(|l| l.id == id)
                .with_context(|| format!("no lane is called {id:?}"))
        };
        let mut tokens = Tokens::new(line.text).with_context(context)?;
        let first = tokens.word().with_context(context)?;
        match first.as_str() {
            "lane" => {
                let id = tokens.word().with_context(context)?;
                let heading = split_label(&tokens.quoted().with_context(context)?);
                let options = tokens.options(&["late"]).with_context(context)?;
                if lanes.iter().any(|l| l.id == id) {
                    bail!("line {}: two lanes are called {id:?}", line.number);
                }
                lanes.push(Lane {
                    id,
                    heading,
                    late: options.get("late").is_some_and(|v| v == "yes"),
                });
            }
            "note" => {
                let lane = lane_index(&lanes, &tokens.word().with_context(context)?).with_context(context)?;
                let text = split_label(&tokens.quoted().with_context(context)?);
                events.push(Event::Note { lane, text });
            }
            from => {
                let from = lane_index(&lanes, from).with_context(context)?;
                let arrow = tokens.word().with_context(context)?;
                if arrow != "->" {
                    bail!("line {}: a message is `FROM -> TO \"label\"`", line.number);
                }
                let to = lane_index(&lanes, &tokens.word().with_context(context)?).with_context(context)?;
                if to == from {
                    bail!("line {}: a message to its own lane is a note", line.number);
                }
                let label = split_label(&tokens.quoted().with_context(context)?);
                let options = tokens.options(&["style"]).with_context(context)?;
                let dashed = match options.get("style").map(String::as_str) {
                    None | Some("plain") => false,
                    Some("dashed") => true,
                    Some(other) => bail!("line {}: style={other}: plain or dashed", line.number),
                };
                events.push(Event::Message {
                    from,
                    to,
                    label,
                    dashed,
                });
            }
        }
    }
    if lanes.is_empty() {
        bail!("the diagram has no lane");
    }
    Ok(SequenceDiagram {
        title: title.context("the diagram has no `title:` line")?,
        alt: alt.context("the diagram has no `alt:` line")?,
        lanes,
        events,
    })
}

fn heading_size(lane: &Lane) -> (i32, i32) {
    (
        lines_width(&lane.heading) + 2 * PAD,
        lines_height(&lane.heading) + 2 * PAD,
    )
}

fn note_size(text: &[String]) -> (i32, i32) {
    (lines_width(text) + 2 * PAD, lines_height(text) + 2 * PAD)
}

/// The x of every lane's lifeline: far enough apart for the widest heading or note of each, and for
/// every message's label between them.
pub fn lane_positions(d: &SequenceDiagram) -> Vec<i32> {
    let mut half: Vec<i32> = d.lanes.iter().map(|l| heading_size(l).0 / 2).collect();
    for event in &d.events {
        if let Event::Note { lane, text } = event {
            half[*lane] = half[*lane].max(note_size(text).0 / 2);
        }
    }
    let n = d.lanes.len();
    let mut gaps: Vec<i32> = (1..n).map(|i| half[i - 1] + half[i] + LANE_GAP).collect();
    let mut spans: Vec<(usize, usize, i32)> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message { from, to, label, .. } => Some((
                (*from).min(*to),
                (*from).max(*to),
                lines_width(label) + 2 * LABEL_ROOM,
            )),
            Event::Note { .. } => None,
        })
        .collect();
    // A message that creates a late lane ends at its heading, half the heading short of the lifeline.
    let mut shown: Vec<bool> = d.lanes.iter().map(|l| !l.late).collect();
    for (event, span) in d
        .events
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .zip(spans.iter_mut())
    {
        let Event::Message { to, .. } = event else {
            continue;
        };
        if !shown[*to] {
            shown[*to] = true;
            span.2 += heading_size(&d.lanes[*to]).0 / 2;
        }
    }
    spans.sort_by_key(|&(a, b, _)| b - a);
    for (a, b, need) in spans {
        let have: i32 = gaps[a..b].iter().sum();
        if have < need {
            gaps[b - 1] += need - have;
        }
    }
    let mut xs = vec![MARGIN + half[0]];
    for gap in gaps {
        let last = *xs.last().expect("one lane at least");
        xs.push(last + gap);
    }
    xs
}

/// The SVG of a sequence diagram.
pub fn render(d: &SequenceDiagram) -> String {
    let xs = lane_positions(d);
    let mut svg = Svg::new();
    let mut lifeline_tops = vec![0; d.lanes.len()];
    let mut headings = Vec::new();
    let top_height = d
        .lanes
        .iter()
        .filter(|l| !l.late)
        .map(|l| heading_size(l).1)
        .max()
        .unwrap_or(0);
    let mut shown = vec![false; d.lanes.len()];
    for (i, lane) in d.lanes.iter().enumerate().filter(|(_, l)| !l.late) {
        let (w, h) = heading_size(lane);
        headings.push((
            i,
            Rect {
                x: xs[i] - w / 2,
                y: MARGIN,
                w,
                h,
            },
        ));
        lifeline_tops[i] = MARGIN + h;
        shown[i] = true;
    }
    let mut y = MARGIN + top_height + 14;
    let mut arrows = Vec::new();
    let mut labels = Vec::new();
    let mut notes = Vec::new();
    for event in &d.events {
        match event {
            Event::Message {
                from,
                to,
                label,
                dashed,
            } => {
                let label_h = lines_height(label);
                let creates = !shown[*to];
                let heading = heading_size(&d.lanes[*to]);
                let arrow_y = if creates {
                    y + (label_h + 6).max(heading.1 / 2)
                } else {
                    y + label_h + 6
                };
                let mut end = xs[*to];
                if creates {
                    let rect = Rect {
                        x: xs[*to] - heading.0 / 2,
                        y: arrow_y - heading.1 / 2,
                        w: heading.0,
                        h: heading.1,
                    };
                    headings.push((*to, rect));
                    lifeline_tops[*to] = rect.bottom();
                    shown[*to] = true;
                    end = if xs[*to] > xs[*from] { rect.x } else { rect.right() };
                }
                let class = if *dashed { "edge dashed" } else { "edge" };
                arrows.push(((xs[*from], arrow_y), (end, arrow_y), class));
                let mid = (xs[*from] + end) / 2;
                let w = lines_width(label) + 8;
                labels.push((
                    Rect {
                        x: mid - w / 2,
                        y: arrow_y - label_h - 4,
                        w,
                        h: label_h + 2,
                    },
                    label.clone(),
                ));
                y = arrow_y + if creates { heading.1 / 2 + 12 } else { 14 };
            }
            Event::Note { lane, text } => {
                let (w, h) = note_size(text);
                notes.push((
                    Rect {
                        x: xs[*lane] - w / 2,
                        y,
                        w,
                        h,
                    },
                    text.clone(),
                ));
                y += h + 12;
            }
        }
    }
    let bottom = y + 4;
    for (i, x) in xs.iter().enumerate() {
        if shown[i] {
            svg.line(
                (*x, lifeline_tops[i]),
                (*x, bottom),
                "lifeline",
                Tip::None,
                Tip::None,
            );
        }
    }
    for (i, rect) in &headings {
        svg.rect(*rect, "proc");
        svg.text(
            rect.x + rect.w / 2,
            rect.y + PAD,
            &d.lanes[*i].heading,
            Anchor::Middle,
            "title",
        );
    }
    for (rect, text) in &notes {
        svg.rect(*rect, "note");
        svg.text(rect.x + PAD, rect.y + PAD, text, Anchor::Start, "");
    }
    for (from, to, class) in &arrows {
        svg.line(*from, *to, class, Tip::None, Tip::Arrow);
    }
    for (rect, label) in &labels {
        svg.label_background(*rect);
        svg.text(rect.x + rect.w / 2, rect.y + 1, label, Anchor::Middle, "");
    }
    let right = headings
        .iter()
        .map(|(_, r)| r.right())
        .chain(notes.iter().map(|(r, _)| r.right()))
        .chain(labels.iter().map(|(r, _)| r.right()))
        .max()
        .unwrap_or(0);
    svg.finish(right + MARGIN, bottom + MARGIN, &d.title, &d.alt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"diagram sequence
title: A parent and its child
alt: The parent clones the child, which says ready.
lane parent "parent"
lane child "child" late=yes
parent -> child "clone(CLONE_NEWPID)"
note child "sets itself up"
child -> parent "\"ready\"" style=dashed
"#;

    #[test]
    fn parses_lanes_messages_and_notes() {
        let d = parse(SAMPLE).unwrap();
        assert_eq!(d.lanes.len(), 2);
        assert!(d.lanes[1].late && !d.lanes[0].late);
        assert_eq!(d.events.len(), 3);
        assert_eq!(
            d.events[2],
            Event::Message {
                from: 1,
                to: 0,
                label: vec!["\"ready\"".into()],
                dashed: true
            }
        );
    }

    #[test]
    fn lanes_leave_room_for_the_labels_between_them() {
        let d = parse(SAMPLE).unwrap();
        let xs = lane_positions(&d);
        assert!(xs[1] - xs[0] >= lines_width(&["clone(CLONE_NEWPID)".to_owned()]) + 2 * LABEL_ROOM);
    }

    #[test]
    fn a_late_lane_is_headed_where_it_is_created() {
        let svg = render(&parse(SAMPLE).unwrap());
        // Two headings, the child's below the parent's: its lifeline starts lower.
        let lifelines: Vec<&str> = svg
            .lines()
            .filter(|l| l.contains(r#"class="lifeline""#))
            .collect();
        assert_eq!(lifelines.len(), 2);
        assert_ne!(lifelines[0].split("y1=").nth(1), lifelines[1].split("y1=").nth(1));
        assert!(svg.contains(r#"class="edge dashed""#), "the dashed reply");
    }

    #[test]
    fn mistakes_are_refused() {
        let head = "diagram sequence\ntitle: t\nalt: a\nlane a \"a\"\n";
        let bad = |t: &str| format!("{:#}", parse(t).unwrap_err());
        assert!(bad(&format!("{head}a -> b \"x\"")).contains("no lane is called \"b\""));
        assert!(bad(&format!("{head}a -> a \"x\"")).contains("is a note"));
        assert!(bad(&format!("{head}a => a \"x\"")).contains("FROM -> TO"));
        assert!(bad(&format!("{head}lane a \"again\"")).contains("two lanes"));
        assert!(bad("lane a \"a\"").contains("starts with"));
    }
}
