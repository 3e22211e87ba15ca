//! The labelled, aligned output every demo prints, so that what the host sees and what a namespace sees
//! stand one above the other:
//!
//! ```text
//! [host ] uts:[4026531838] hostname=build-box
//! [child] uts:[4026532301] hostname=demo
//! ```
//!
//! Functions here return strings; the demos' `main.rs` prints them, and tests compare them.

use std::fmt::Display;

use crate::ns::NsId;

/// Where a demo prints: observations always, explanations unless `--quiet`. A closed stdout
/// (`demo | head`) is not an error: the demo runs to its end, cleaning up after itself, and what it
/// would have printed is dropped.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub quiet: bool,
}

impl Out {
    /// An observation: always printed.
    pub fn see(&self, text: String) {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{text}");
    }

    /// An explanation: printed unless `--quiet`.
    pub fn say(&self, text: String) {
        if !self.quiet {
            self.see(text);
        }
    }
}

/// Labels are padded to this many characters, so that the columns after them line up.
pub const LABEL_WIDTH: usize = 5;

/// `[host ]`: a label in brackets, padded.
pub fn label(name: &str) -> String {
    format!("[{name:<LABEL_WIDTH$}]")
}

/// One observation: `[label] kind:[inode] text`.
pub fn line(who: &str, ns: NsId, text: impl Display) -> String {
    format!("{} {ns} {text}", label(who)).trim_end().to_owned()
}

/// An observation with a remark after it, `(unchanged)` say, separated so it stands out.
pub fn line_noted(who: &str, ns: NsId, text: impl Display, note: &str) -> String {
    format!("{}   ({note})", line(who, ns, text))
}

/// A numbered step's heading.
pub fn step(number: usize, title: &str) -> String {
    format!("\n{number}. {title}")
}

/// An explanation under a step, indented to the column where observations start.
pub fn explain(text: &str) -> String {
    let indent = " ".repeat(LABEL_WIDTH + 3);
    text.lines()
        .map(|l| format!("{indent}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `-> ok` or `-> EPERM` outcome with its one-line reason.
pub fn outcome(result: &str, why: &str) -> String {
    explain(&format!("-> {result}: {why}"))
}

/// What the demo will do about privileges, said once at the start: every demo says whether it is
/// entering a user namespace and why.
pub fn privilege_banner(user_ns: bool) -> String {
    let uid = nix::unistd::geteuid();
    match (uid.is_root(), user_ns) {
        (true, false) => "running as root: the namespaces are made directly, no user namespace needed".into(),
        (true, true) => "running as root, asked for a user namespace: each child gets one anyway".into(),
        (false, _) => format!(
            "running as uid {uid} (not root): each child enters a new user namespace first (user_namespaces(7))"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::Kind;

    #[test]
    fn labels_align() {
        assert_eq!(label("host"), "[host ]");
        assert_eq!(label("child"), "[child]");
        let ns = NsId {
            kind: Kind::Uts,
            inode: 4026531838,
        };
        assert_eq!(
            line("host", ns, "hostname=a"),
            "[host ] uts:[4026531838] hostname=a"
        );
        assert_eq!(
            line_noted("host", ns, "x", "unchanged"),
            "[host ] uts:[4026531838] x   (unchanged)"
        );
        assert_eq!(explain("a\nb"), "        a\n        b");
    }
}
