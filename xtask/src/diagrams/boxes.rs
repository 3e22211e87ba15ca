//! Box diagrams: nested boxes of labelled text, laid out in rows and columns, and arrows between
//! named boxes. The text they are drawn from:
//!
//! ```text
//! diagram boxes
//! title: What the picture shows, in one line (the SVG's <title>)
//! alt: What a reader who cannot see it needs to know (the SVG's <desc>)
//! # a comment
//! row gap=120                          a group laid out across (col: down); gap in pixels
//!   box red "red\nnet:[4026532181]" style=ns    a box: an id, a title (\n breaks it), a style
//!     | 10.200.0.1/32                  a line of text in the box above
//!     box lo "lo" style=proc           boxes nest; a box lays its children down, or across=yes
//!   box blue "blue" style=ns title=right
//! edge red <-> blue "veth pair" style=dashed     -> <- <-> or --, an optional label, a style
//! ```
//!
//! Styles are the classes of `svg.rs`: host, ns, user, proc, mount, leak, gone, note; edges are plain,
//! dashed, refused or leak. Layout is like CSS flexbox with `align-items: stretch`: children sit side
//! by side or one under another, and a box is stretched across the whole row or column it is in.

use std::collections::HashMap;

use anyhow::{Context, bail};

use super::svg::{Anchor, LINE_H, Rect, Svg, Tip, lines_height, lines_width, text_width};
use super::text::{Line, Tokens, split_label};

/// Padding inside a box.
const PAD: i32 = 10;
/// Between a box's title and its content.
const TITLE_GAP: i32 = 4;
/// Default gaps between the children of a column and of a row.
const GAP_DOWN: i32 = 14;
const GAP_ACROSS: i32 = 28;
/// Around the whole picture.
const MARGIN: i32 = 12;

/// A parsed box diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxDiagram {
    pub title: String,
    pub alt: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Box(BoxNode),
    Group(Group),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxNode {
    pub id: String,
    pub title: Vec<String>,
    pub style: String,
    pub across: bool,
    pub gap: Option<i32>,
    pub title_right: bool,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub across: bool,
    pub gap: Option<i32>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: Vec<String>,
    pub start: Tip,
    pub end: Tip,
    pub style: String,
}

const BOX_STYLES: &[&str] = &["host", "ns", "user", "proc", "mount", "leak", "gone", "note"];
const EDGE_STYLES: &[&str] = &["plain", "dashed", "refused", "leak"];

// ---- parsing --------------------------------------------------------------------------------------

/// Parses a box diagram's text (see the module's documentation).
pub fn parse(text: &str) -> anyhow::Result<BoxDiagram> {
    let lines = super::text::lines(text)?;
    let mut title = None;
    let mut alt = None;
    let mut edges = Vec::new();
    // The stack of open containers: (indent of their children, the nodes so far, the container).
    let mut stack: Vec<(usize, Vec<Node>, Option<Node>)> = vec![(0, Vec::new(), None)];
    let mut saw_kind = false;
    for line in &lines {
        let Line { number, indent, text } = line;
        let context = || format!("line {number}: {text}");
        if !saw_kind {
            if *text != "diagram boxes" {
                bail!("line {number}: a box diagram starts with `diagram boxes`");
            }
            saw_kind = true;
            continue;
        }
        if *indent == 0 {
            if let Some(rest) = text.strip_prefix("title:") {
                title = Some(rest.trim().to_owned());
                continue;
            }
            if let Some(rest) = text.strip_prefix("alt:") {
                alt = Some(rest.trim().to_owned());
                continue;
            }
            if text.starts_with("edge ") {
                edges.push(parse_edge(text).with_context(context)?);
                continue;
            }
        }
        // Close the containers this line is not inside.
        while stack
            .last()
            .is_some_and(|(child_indent, _, _)| *indent < *child_indent)
        {
            close(&mut stack);
        }
        let expected = stack.last().map_or(0, |(i, _, _)| *i);
        if *indent != expected {
            bail!("line {number}: indented {indent} spaces where {expected} were expected");
        }
        let node = parse_node(text).with_context(context)?;
        let opens = matches!(node, Node::Box(_) | Node::Group(_));
        if opens {
            stack.push((indent + 2, Vec::new(), Some(node)));
        } else {
            stack.last_mut().expect("the root stays").1.push(node);
        }
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    let nodes = stack.pop().expect("the root stays").1;
    let diagram = BoxDiagram {
        title: title.context("the diagram has no `title:` line")?,
        alt: alt.context("the diagram has no `alt:` line")?,
        nodes,
        edges,
    };
    check_ids(&diagram)?;
    Ok(diagram)
}

/// Ends the innermost open container, giving it the children collected for it.
fn close(stack: &mut Vec<(usize, Vec<Node>, Option<Node>)>) {
    let (_, children, node) = stack.pop().expect("only called with an open container");
    let node = match node.expect("only the root has none") {
        Node::Box(mut b) => {
            b.children = children;
            Node::Box(b)
        }
        Node::Group(mut g) => {
            g.children = children;
            Node::Group(g)
        }
        Node::Text(_) => unreachable!("text opens nothing"),
    };
    stack.last_mut().expect("the root stays").1.push(node);
}

fn parse_node(text: &str) -> anyhow::Result<Node> {
    if let Some(rest) = text.strip_prefix('|') {
        return Ok(Node::Text(rest.strip_prefix(' ').unwrap_or(rest).to_owned()));
    }
    let mut tokens = Tokens::new(text)?;
    match tokens.word()?.as_str() {
        kind @ ("row" | "col") => {
            let options = tokens.options(&["gap"])?;
            Ok(Node::Group(Group {
                across: kind == "row",
                gap: gap(&options)?,
                children: Vec::new(),
            }))
        }
        "box" => {
            let id = tokens.word()?;
            let title = split_label(&tokens.quoted()?);
            let options = tokens.options(&["style", "across", "gap", "title"])?;
            let style = options.get("style").cloned().unwrap_or_else(|| "proc".into());
            if !BOX_STYLES.contains(&style.as_str()) {
                bail!("unknown box style {style:?} (known: {})", BOX_STYLES.join(", "));
            }
            Ok(Node::Box(BoxNode {
                id,
                title,
                style,
                across: yes(&options, "across")?,
                gap: gap(&options)?,
                title_right: match options.get("title").map(String::as_str) {
                    None | Some("left") => false,
                    Some("right") => true,
                    Some(other) => bail!("title={other}: left or right"),
                },
                children: Vec::new(),
            }))
        }
        other => bail!("unknown element {other:?}: box, row, col, `| text` or (unindented) edge"),
    }
}

fn parse_edge(text: &str) -> anyhow::Result<Edge> {
    let mut tokens = Tokens::new(text)?;
    tokens.word()?; // "edge"
    let from = tokens.word()?;
    let (start, end) = match tokens.word()?.as_str() {
        "->" => (Tip::None, Tip::Arrow),
        "<-" => (Tip::Arrow, Tip::None),
        "<->" => (Tip::Arrow, Tip::Arrow),
        "--" => (Tip::None, Tip::None),
        other => bail!("{other:?} is not an arrow: ->, <-, <-> or --"),
    };
    let to = tokens.word()?;
    let label = if tokens.peek_quoted() {
        split_label(&tokens.quoted()?)
    } else {
        Vec::new()
    };
    let options = tokens.options(&["style"])?;
    let style = options.get("style").cloned().unwrap_or_else(|| "plain".into());
    if !EDGE_STYLES.contains(&style.as_str()) {
        bail!("unknown edge style {style:?} (known: {})", EDGE_STYLES.join(", "));
    }
    Ok(Edge {
        from,
        to,
        label,
        start,
        end,
        style,
    })
}

fn gap(options: &HashMap<String, String>) -> anyhow::Result<Option<i32>> {
    options
        .get("gap")
        .map(|g| {
            g.parse::<i32>()
                .with_context(|| format!("gap={g} is not a number of pixels"))
        })
        .transpose()
}

fn yes(options: &HashMap<String, String>, key: &str) -> anyhow::Result<bool> {
    match options.get(key).map(String::as_str) {
        None | Some("no") => Ok(false),
        Some("yes") => Ok(true),
        Some(other) => bail!("{key}={other}: yes or no"),
    }
}

/// Every box id is unique, and every edge names boxes that exist.
fn check_ids(diagram: &BoxDiagram) -> anyhow::Result<()> {
    fn collect<'a>(nodes: &'a [Node], ids: &mut Vec<&'a str>) {
        for node in nodes {
            match node {
                Node::Box(b) => {
                    ids.push(&b.id);
                    collect(&b.children, ids);
                }
                Node::Group(g) => collect(&g.children, ids),
                Node::Text(_) => {}
            }
        }
    }
    let mut ids = Vec::new();
    collect(&diagram.nodes, &mut ids);
    let mut seen = std::collections::HashSet::new();
    for id in &ids {
        if !seen.insert(*id) {
            bail!("two boxes are called {id:?}");
        }
    }
    for edge in &diagram.edges {
        for end in [&edge.from, &edge.to] {
            if !seen.contains(end.as_str()) {
                bail!("an edge names {end:?}, and no box is called that");
            }
        }
    }
    Ok(())
}

// ---- layout ---------------------------------------------------------------------------------------

/// What layout produced: every box's place, every text line's, every edge's line and label.
#[derive(Debug, Default)]
pub struct Layout {
    pub width: i32,
    pub height: i32,
    pub boxes: Vec<PlacedBox>,
    pub texts: Vec<(i32, i32, String)>,
    pub edges: Vec<PlacedEdge>,
}

#[derive(Debug)]
pub struct PlacedBox {
    pub id: String,
    pub rect: Rect,
    pub style: String,
    pub title: Vec<String>,
    pub title_right: bool,
}

#[derive(Debug)]
pub struct PlacedEdge {
    pub from: (i32, i32),
    pub to: (i32, i32),
    pub class: String,
    pub start: Tip,
    pub end: Tip,
    pub label: Vec<String>,
    /// Where the label goes, background included.
    pub label_rect: Option<Rect>,
}

fn stack_gap(across: bool, gap: Option<i32>) -> i32 {
    gap.unwrap_or(if across { GAP_ACROSS } else { GAP_DOWN })
}

/// The gap before child `i`: none between two lines of text that follow each other down a box.
fn gap_before(children: &[Node], i: usize, across: bool, gap: i32) -> i32 {
    if i == 0 {
        return 0;
    }
    if !across && matches!(children[i - 1], Node::Text(_)) && matches!(children[i], Node::Text(_)) {
        return 0;
    }
    gap
}

fn stack_size(children: &[Node], across: bool, gap: i32) -> (i32, i32) {
    let (mut main, mut cross) = (0, 0);
    for (i, child) in children.iter().enumerate() {
        let (w, h) = size(child);
        main += gap_before(children, i, across, gap) + if across { w } else { h };
        cross = cross.max(if across { h } else { w });
    }
    if across { (main, cross) } else { (cross, main) }
}

fn title_height(title: &[String], has_children: bool) -> i32 {
    if title.is_empty() {
        0
    } else if has_children {
        lines_height(title) + TITLE_GAP
    } else {
        lines_height(title)
    }
}

/// The natural size of a node.
fn size(node: &Node) -> (i32, i32) {
    match node {
        Node::Text(t) => (text_width(t), LINE_H),
        Node::Group(g) => stack_size(&g.children, g.across, stack_gap(g.across, g.gap)),
        Node::Box(b) => {
            let (cw, ch) = stack_size(&b.children, b.across, stack_gap(b.across, b.gap));
            let w = lines_width(&b.title).max(cw) + 2 * PAD;
            let h = title_height(&b.title, !b.children.is_empty()) + ch + 2 * PAD;
            (w, h)
        }
    }
}

/// Places `children` in a stack whose content area is `area`, stretching boxes across it.
fn place_stack(children: &[Node], across: bool, gap: i32, area: Rect, out: &mut Layout) {
    let (mut x, mut y) = (area.x, area.y);
    for (i, child) in children.iter().enumerate() {
        let before = gap_before(children, i, across, gap);
        if across {
            x += before;
        } else {
            y += before;
        }
        let (w, h) = size(child);
        let (w, h) = match child {
            Node::Box(_) if across => (w, area.h),
            Node::Box(_) => (area.w, h),
            _ => (w, h),
        };
        place(child, Rect { x, y, w, h }, out);
        if across {
            x += w;
        } else {
            y += h;
        }
    }
}

fn place(node: &Node, at: Rect, out: &mut Layout) {
    match node {
        Node::Text(t) => out.texts.push((at.x, at.y, t.clone())),
        Node::Group(g) => place_stack(&g.children, g.across, stack_gap(g.across, g.gap), at, out),
        Node::Box(b) => {
            out.boxes.push(PlacedBox {
                id: b.id.clone(),
                rect: at,
                style: b.style.clone(),
                title: b.title.clone(),
                title_right: b.title_right,
            });
            let top = at.y + PAD + title_height(&b.title, !b.children.is_empty());
            let area = Rect {
                x: at.x + PAD,
                y: top,
                w: at.w - 2 * PAD,
                h: at.bottom() - PAD - top,
            };
            place_stack(&b.children, b.across, stack_gap(b.across, b.gap), area, out);
        }
    }
}

/// Lays the diagram out.
pub fn layout(diagram: &BoxDiagram) -> Layout {
    let mut out = Layout::default();
    let (w, h) = stack_size(&diagram.nodes, false, GAP_DOWN);
    let area = Rect {
        x: MARGIN,
        y: MARGIN,
        w,
        h,
    };
    place_stack(&diagram.nodes, false, GAP_DOWN, area, &mut out);
    let rects: HashMap<&str, Rect> = out.boxes.iter().map(|b| (b.id.as_str(), b.rect)).collect();
    let edges = diagram
        .edges
        .iter()
        .map(|e| route(e, rects[e.from.as_str()], rects[e.to.as_str()]))
        .collect();
    out.edges = edges;
    out.width = w + 2 * MARGIN;
    out.height = h + 2 * MARGIN;
    // A label may stick out of the boxes' area (a long one beside a vertical line): make room.
    for edge in &out.edges {
        if let Some(r) = edge.label_rect {
            out.width = out.width.max(r.right() + MARGIN);
            out.height = out.height.max(r.bottom() + MARGIN);
        }
    }
    out
}

/// The middle of the overlap of two ranges, if they overlap.
fn overlap_middle(a: (i32, i32), b: (i32, i32)) -> Option<i32> {
    let (start, end) = (a.0.max(b.0), a.1.min(b.1));
    (start < end).then_some((start + end) / 2)
}

/// Where the line between two boxes goes: straight across when they face each other side by side,
/// straight down when one is above the other, otherwise from centre to centre, cut at the borders.
fn route(edge: &Edge, a: Rect, b: Rect) -> PlacedEdge {
    let side_by_side = a.right() <= b.x || b.right() <= a.x;
    let stacked = a.bottom() <= b.y || b.bottom() <= a.y;
    let (from, to) = match (
        overlap_middle((a.y, a.bottom()), (b.y, b.bottom())),
        overlap_middle((a.x, a.right()), (b.x, b.right())),
    ) {
        (Some(y), _) if side_by_side => {
            if a.right() <= b.x {
                ((a.right(), y), (b.x, y))
            } else {
                ((a.x, y), (b.right(), y))
            }
        }
        (_, Some(x)) if stacked => {
            if a.bottom() <= b.y {
                ((x, a.bottom()), (x, b.y))
            } else {
                ((x, a.y), (x, b.bottom()))
            }
        }
        _ => (clip(a, b.center()), clip(b, a.center())),
    };
    let label_rect = label_rect(&edge.label, from, to);
    let class = match edge.style.as_str() {
        "plain" => "edge".to_owned(),
        other => format!("edge {other}"),
    };
    PlacedEdge {
        from,
        to,
        class,
        start: edge.start,
        end: edge.end,
        label: edge.label.clone(),
        label_rect,
    }
}

/// The point where the line from `r`'s centre towards `towards` leaves `r`.
fn clip(r: Rect, towards: (i32, i32)) -> (i32, i32) {
    let (cx, cy) = r.center();
    let (dx, dy) = (f64::from(towards.0 - cx), f64::from(towards.1 - cy));
    if dx == 0.0 && dy == 0.0 {
        return (cx, cy);
    }
    let sx = if dx == 0.0 {
        f64::INFINITY
    } else {
        f64::from(r.w) / 2.0 / dx.abs()
    };
    let sy = if dy == 0.0 {
        f64::INFINITY
    } else {
        f64::from(r.h) / 2.0 / dy.abs()
    };
    let s = sx.min(sy);
    // Rounded to whole pixels: the file stays the same from run to run and machine to machine.
    (cx + (dx * s).round() as i32, cy + (dy * s).round() as i32)
}

/// A label's place: above a horizontal line, beside a vertical one, on a slanted one.
fn label_rect(label: &[String], from: (i32, i32), to: (i32, i32)) -> Option<Rect> {
    if label.is_empty() {
        return None;
    }
    let (w, h) = (lines_width(label) + 8, lines_height(label) + 2);
    let (mx, my) = ((from.0 + to.0) / 2, (from.1 + to.1) / 2);
    Some(if from.1 == to.1 {
        Rect {
            x: mx - w / 2,
            y: my - h - 3,
            w,
            h,
        }
    } else if from.0 == to.0 {
        Rect {
            x: mx + 5,
            y: my - h / 2,
            w,
            h,
        }
    } else {
        // On a slanted line, two thirds of the way: its middle is where the labels of the straight
        // lines between the same rows already are.
        let (tx, ty) = (from.0 + (to.0 - from.0) * 2 / 3, from.1 + (to.1 - from.1) * 2 / 3);
        Rect {
            x: tx - w / 2,
            y: ty - h / 2,
            w,
            h,
        }
    })
}

// ---- drawing --------------------------------------------------------------------------------------

/// The SVG of a laid-out diagram.
pub fn render(diagram: &BoxDiagram) -> String {
    let layout = layout(diagram);
    let mut svg = Svg::new();
    for b in &layout.boxes {
        svg.rect(b.rect, &b.style);
        if b.title_right {
            svg.text(
                b.rect.right() - PAD,
                b.rect.y + PAD,
                &b.title,
                Anchor::End,
                "title",
            );
        } else {
            svg.text(b.rect.x + PAD, b.rect.y + PAD, &b.title, Anchor::Start, "title");
        }
    }
    for (x, y, t) in &layout.texts {
        svg.text(*x, *y, std::slice::from_ref(t), Anchor::Start, "");
    }
    for e in &layout.edges {
        svg.line(e.from, e.to, &e.class, e.start, e.end);
    }
    for e in &layout.edges {
        if let Some(r) = e.label_rect {
            svg.label_background(r);
            svg.text(r.x + r.w / 2, r.y + 1, &e.label, Anchor::Middle, "");
        }
    }
    svg.finish(layout.width, layout.height, &diagram.title, &diagram.alt)
}

/// What makes a laid-out diagram hard to read: a label over a box it is not inside, two boxes that
/// overlap without one containing the other, text that sticks out of its box.
pub fn legibility_problems(diagram: &BoxDiagram) -> Vec<String> {
    let layout = layout(diagram);
    let mut problems = Vec::new();
    for (i, a) in layout.boxes.iter().enumerate() {
        for b in &layout.boxes[i + 1..] {
            if a.rect.overlaps(b.rect) && !a.rect.contains(b.rect) && !b.rect.contains(a.rect) {
                problems.push(format!("boxes {} and {} overlap", a.id, b.id));
            }
        }
        let title = Rect {
            x: a.rect.x,
            y: a.rect.y,
            w: lines_width(&a.title) + 2 * PAD,
            h: lines_height(&a.title) + PAD,
        };
        if !a.rect.contains(title) {
            problems.push(format!("the title of {} does not fit it", a.id));
        }
    }
    let labels: Vec<(&PlacedEdge, Rect)> = layout
        .edges
        .iter()
        .filter_map(|e| e.label_rect.map(|r| (e, r)))
        .collect();
    for (i, (a, ra)) in labels.iter().enumerate() {
        for (b, rb) in &labels[i + 1..] {
            if ra.overlaps(*rb) {
                problems.push(format!(
                    "the labels {:?} and {:?} overlap",
                    a.label.join(" "),
                    b.label.join(" ")
                ));
            }
        }
    }
    for edge in &layout.edges {
        let Some(label) = edge.label_rect else { continue };
        for b in &layout.boxes {
            // A label may sit inside a box (on a line that crosses it), never over its border.
            if label.overlaps(b.rect) && !b.rect.contains(label) {
                problems.push(format!(
                    "the label {:?} covers the border of box {}",
                    edge.label.join(" "),
                    b.id
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"diagram boxes
title: Two namespaces joined by a veth pair
alt: Two boxes side by side.
# two namespaces
row gap=140
  box red "red" style=ns
    | 10.200.0.1/32
    | route 10.200.0.0/24
    box lo "lo"
  box blue "blue\nnet:[2]" style=ns title=right
    | 10.200.0.2/32
edge red <-> blue "veth pair" style=dashed
"#;

    #[test]
    fn parses_the_sample() {
        let d = parse(SAMPLE).unwrap();
        assert_eq!(d.title, "Two namespaces joined by a veth pair");
        assert_eq!(d.nodes.len(), 1);
        let Node::Group(row) = &d.nodes[0] else {
            panic!("{:?}", d.nodes)
        };
        assert!(row.across);
        assert_eq!(row.gap, Some(140));
        let Node::Box(blue) = &row.children[1] else {
            panic!()
        };
        assert_eq!(blue.title, ["blue", "net:[2]"]);
        assert!(blue.title_right);
        let Node::Box(red) = &row.children[0] else {
            panic!()
        };
        assert_eq!(red.children.len(), 3);
        assert_eq!(d.edges[0].style, "dashed");
        assert_eq!((d.edges[0].start, d.edges[0].end), (Tip::Arrow, Tip::Arrow));
    }

    #[test]
    fn lays_out_side_by_side_and_stretches() {
        let d = parse(SAMPLE).unwrap();
        let l = layout(&d);
        let red = l.boxes.iter().find(|b| b.id == "red").unwrap().rect;
        let blue = l.boxes.iter().find(|b| b.id == "blue").unwrap().rect;
        let lo = l.boxes.iter().find(|b| b.id == "lo").unwrap().rect;
        assert_eq!(blue.x, red.right() + 140);
        assert_eq!(red.h, blue.h, "boxes in a row are stretched to the same height");
        assert!(red.contains(lo));
        assert_eq!(lo.w, red.w - 2 * PAD, "a box in a column is stretched across it");
        // The two lines of text follow each other with no gap.
        let ys: Vec<i32> = l
            .texts
            .iter()
            .filter(|t| t.0 == red.x + PAD)
            .map(|t| t.1)
            .collect();
        assert_eq!(ys[1] - ys[0], LINE_H);
        // The edge runs straight across, from border to border.
        let e = &l.edges[0];
        assert_eq!(e.from.1, e.to.1);
        assert_eq!((e.from.0, e.to.0), (red.right(), blue.x));
        assert!(
            legibility_problems(&d).is_empty(),
            "{:?}",
            legibility_problems(&d)
        );
    }

    #[test]
    fn a_stacked_pair_gets_a_vertical_line() {
        let text = "diagram boxes\ntitle: t\nalt: a\nbox a \"a\"\nbox b \"b\"\nedge a -> b \"down\"\n";
        let l = layout(&parse(text).unwrap());
        let e = &l.edges[0];
        assert_eq!(e.from.0, e.to.0);
        assert!(e.from.1 < e.to.1);
        let r = e.label_rect.unwrap();
        assert!(r.x > e.from.0, "the label sits beside the line");
    }

    #[test]
    fn a_diagonal_edge_is_cut_at_the_borders() {
        let a = Rect {
            x: 0,
            y: 0,
            w: 100,
            h: 40,
        };
        let b = Rect {
            x: 200,
            y: 100,
            w: 100,
            h: 40,
        };
        assert_eq!(clip(a, b.center()), (90, 40));
        assert_eq!(clip(b, a.center()), (210, 100));
    }

    #[test]
    fn a_too_narrow_gap_is_reported() {
        let text = SAMPLE.replace("gap=140", "gap=20");
        let problems = legibility_problems(&parse(&text).unwrap());
        assert!(problems.iter().any(|p| p.contains("veth pair")), "{problems:?}");
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        let bad = |text: &str| format!("{:#}", parse(text).unwrap_err());
        assert!(bad("box a \"a\"").contains("starts with `diagram boxes`"));
        let head = "diagram boxes\ntitle: t\nalt: a\n";
        assert!(bad(&format!("{head}box a \"a\" style=fancy")).contains("unknown box style"));
        assert!(bad(&format!("{head}box a \"a\"\n   | odd")).contains("line 5"));
        assert!(bad(&format!("{head}box a \"a\"\nbox a \"b\"")).contains("two boxes"));
        assert!(bad(&format!("{head}box a \"a\"\nedge a -> z")).contains("\"z\""));
        assert!(bad(&format!("{head}box a \"a\"\nedge a => a")).contains("not an arrow"));
        assert!(bad(&format!("{head}box a \"unclosed")).contains("quote"));
        assert!(bad("diagram boxes\nalt: a\nbox a \"a\"").contains("title"));
        assert!(bad(&format!("{head}circle c")).contains("unknown element"));
    }

    #[test]
    fn renders_deterministically() {
        let d = parse(SAMPLE).unwrap();
        let svg = render(&d);
        assert_eq!(svg, render(&d));
        assert!(svg.contains(">veth pair</text>"));
        assert!(svg.contains("marker-start") && svg.contains("marker-end"));
        assert!(
            svg.contains(r#"text-anchor="end" class="title""#),
            "blue's title is on the right"
        );
    }
}
