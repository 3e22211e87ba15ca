//! The SVG the course's diagrams are drawn in: one style sheet for all of them, text in a monospace
//! font whose width is known in advance (so a label always fits its box), integer coordinates (so the
//! output is stable and diffs stay readable), and a `<title>` and `<desc>` in every file for screen
//! readers (SVG 1.1, "Accessibility": www.w3.org/TR/SVG11/access.html).

use std::fmt::Write as _;

/// The advance of one character of the 13 px font every label is set in (the style sheet). Common monospace fonts advance 0.6 em (7.8 px at 13 px); a little
/// more keeps a label inside its box whichever of them the reader's system picks.
pub const CHAR_W: i32 = 8;
/// The height of one line of text.
pub const LINE_H: i32 = 18;
/// From the top of a line to its baseline.
const ASCENT: i32 = 13;

/// The width `text` takes on one line.
pub fn text_width(text: &str) -> i32 {
    i32::try_from(text.chars().count()).unwrap_or(i32::MAX / CHAR_W) * CHAR_W
}

/// The widest of `lines`.
pub fn lines_width(lines: &[String]) -> i32 {
    lines.iter().map(|l| text_width(l)).max().unwrap_or(0)
}

/// The height `lines` take.
pub fn lines_height(lines: &[String]) -> i32 {
    i32::try_from(lines.len()).unwrap_or(0) * LINE_H
}

/// Escapes text for SVG's XML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A rectangle, in pixels from the picture's top left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn right(self) -> i32 {
        self.x + self.w
    }

    pub fn bottom(self) -> i32 {
        self.y + self.h
    }

    pub fn center(self) -> (i32, i32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }

    /// Whether `other` lies entirely inside this rectangle.
    pub fn contains(self, other: Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    /// Whether the two share any area.
    pub fn overlaps(self, other: Rect) -> bool {
        self.x < other.right() && other.x < self.right() && self.y < other.bottom() && other.y < self.bottom()
    }
}

/// How a label sits against its x coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// The end of a line: plain, or an arrowhead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tip {
    None,
    Arrow,
}

/// The styles of the course's figures, one class per kind of thing, the same in every figure.
/// Colours are paired with a second cue (a dash, a heavier line) for readers who do not tell them apart.
const STYLE: &str = "\
text{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,'Liberation Mono',monospace;font-size:13px;fill:#1f2328}
.title{font-weight:bold}
.caption{font-weight:bold;font-size:14px}
.bg{fill:#ffffff}
.label-bg{fill:#ffffff;fill-opacity:0.92}
.host{fill:#f2f3f5;stroke:#6b7280}
.ns{fill:#eaf2fd;stroke:#3867b0}
.user{fill:#fdf5e2;stroke:#a0661a}
.proc{fill:#ffffff;stroke:#374151}
.mount{fill:#eaf7ee;stroke:#2f7d4f}
.leak{fill:#fde8e7;stroke:#b42318;stroke-width:2}
.gone{fill:#ffffff;stroke:#8b929c;stroke-dasharray:5 4}
.note{fill:#fffbe8;stroke:#a39a6b}
.box{stroke-width:1.2}
.edge{stroke:#374151;stroke-width:1.4;fill:none}
.edge.dashed{stroke-dasharray:6 4}
.edge.refused{stroke:#b42318;stroke-dasharray:6 4}
.edge.leak{stroke:#b42318;stroke-width:2.4}
.lifeline{stroke:#8b929c;stroke-width:1;stroke-dasharray:4 4}
.tip{fill:#374151}
.tip-red{fill:#b42318}
";

/// An SVG picture being drawn.
#[derive(Debug, Default)]
pub struct Svg {
    body: String,
}

impl Svg {
    pub fn new() -> Svg {
        Svg::default()
    }

    /// A box of `class` (see [`STYLE`]).
    pub fn rect(&mut self, r: Rect, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect class="box {class}" x="{}" y="{}" width="{}" height="{}" rx="6"/>"#,
            r.x, r.y, r.w, r.h
        );
    }

    /// A plain background rectangle behind a label, so that a line under it does not cross the text.
    pub fn label_background(&mut self, r: Rect) {
        let _ = writeln!(
            self.body,
            r#"<rect class="label-bg" x="{}" y="{}" width="{}" height="{}" rx="3"/>"#,
            r.x, r.y, r.w, r.h
        );
    }

    /// Lines of text, the first one's top at `top`.
    pub fn text(&mut self, x: i32, top: i32, lines: &[String], anchor: Anchor, class: &str) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        for (i, line) in lines.iter().enumerate() {
            let y = top + ASCENT + i32::try_from(i).unwrap_or(0) * LINE_H;
            let class = if class.is_empty() {
                String::new()
            } else {
                format!(r#" class="{class}""#)
            };
            // xml:space keeps runs of blanks, which align columns in monospace labels.
            let _ = writeln!(
                self.body,
                r#"<text x="{x}" y="{y}" text-anchor="{anchor}"{class} xml:space="preserve">{}</text>"#,
                escape(line)
            );
        }
    }

    /// A line from `from` to `to`, with `class` (`edge`, `edge dashed`, ...) and its tips.
    pub fn line(&mut self, from: (i32, i32), to: (i32, i32), class: &str, start: Tip, end: Tip) {
        let marker = if class.contains("refused") || class.contains("leak") {
            "tip-red"
        } else {
            "tip"
        };
        let mut attrs = String::new();
        if start == Tip::Arrow {
            let _ = write!(attrs, r#" marker-start="url(#{marker}-start)""#);
        }
        if end == Tip::Arrow {
            let _ = write!(attrs, r#" marker-end="url(#{marker})""#);
        }
        let _ = writeln!(
            self.body,
            r#"<line class="{class}" x1="{}" y1="{}" x2="{}" y2="{}"{attrs}/>"#,
            from.0, from.1, to.0, to.1
        );
    }

    /// The finished file: `width` by `height`, with its title and description for assistive
    /// technology, and its picture on a white ground (readable in the book's dark themes too).
    pub fn finish(self, width: i32, height: i32, title: &str, desc: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="title desc">"#
        );
        let _ = writeln!(out, r#"<title id="title">{}</title>"#, escape(title));
        let _ = writeln!(out, r#"<desc id="desc">{}</desc>"#, escape(desc));
        let _ = writeln!(out, "<style>\n{STYLE}</style>");
        out.push_str("<defs>\n");
        for (id, class) in [("tip", "tip"), ("tip-red", "tip-red")] {
            let _ = writeln!(
                out,
                r#"<marker id="{id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path class="{class}" d="M0,0 L10,5 L0,10 z"/></marker>"#
            );
            let _ = writeln!(
                out,
                r#"<marker id="{id}-start" viewBox="0 0 10 10" refX="1" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path class="{class}" d="M10,0 L0,5 L10,10 z"/></marker>"#
            );
        }
        out.push_str("</defs>\n");
        let _ = writeln!(
            out,
            r#"<rect class="bg" x="0" y="0" width="{width}" height="{height}"/>"#
        );
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"a<b & "c">"#), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        assert_eq!(text_width("abc"), 3 * CHAR_W);
        assert_eq!(text_width("└─ é"), 4 * CHAR_W);
    }

    #[test]
    fn a_picture_has_its_title_and_description() {
        let mut svg = Svg::new();
        svg.rect(
            Rect {
                x: 1,
                y: 2,
                w: 3,
                h: 4,
            },
            "ns",
        );
        let file = svg.finish(10, 20, "A & B", "a <desc>");
        assert!(file.contains("<title id=\"title\">A &amp; B</title>"));
        assert!(file.contains("<desc id=\"desc\">a &lt;desc&gt;</desc>"));
        assert!(file.contains(r#"role="img""#));
        assert!(file.contains(r#"class="box ns" x="1" y="2" width="3" height="4""#));
    }

    #[test]
    fn rectangles_know_containment_and_overlap() {
        let outer = Rect {
            x: 0,
            y: 0,
            w: 10,
            h: 10,
        };
        let inner = Rect {
            x: 2,
            y: 2,
            w: 3,
            h: 3,
        };
        let beside = Rect {
            x: 10,
            y: 0,
            w: 5,
            h: 5,
        };
        assert!(outer.contains(inner) && !inner.contains(outer));
        assert!(outer.overlaps(inner) && !outer.overlaps(beside));
    }
}
