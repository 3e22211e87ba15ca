//! The book's checks and tools. mdBook silently includes nothing for an anchor it cannot find, so
//! `book-check` does what mdBook does not: every `{{#include}}` must resolve to text, and every recorded
//! demo output (`book/src/transcripts/<crate>.<user|root>.txt`) must still be what the demo prints,
//! once the parts that vary between machines and runs are masked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::util::{self, as_unprivileged, cargo, is_root};

/// One thing wrong with the book.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub message: String,
}

/// `cargo xtask book-check`.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let mut problems = check_includes(&root.join("book").join("src"))?;
    problems.extend(check_transcripts(root)?);
    problems.extend(crate::diagrams::problems(root)?);
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        eprintln!("book-check: {}: {}", p.file.display(), p.message);
    }
    bail!("{} problem(s) in the book", problems.len())
}

// ---- includes -------------------------------------------------------------------------------------

/// An `{{#include path}}` or `{{#include path:selector}}` directive.
#[derive(Debug, PartialEq, Eq)]
pub struct Include {
    pub path: String,
    pub selector: Option<String>,
}

/// Finds the include directives in a chapter (`#include` and `#rustdoc_include`).
pub fn parse_includes(markdown: &str) -> Vec<Include> {
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        // mdBook allows blanks between the braces and the `#`.
        let Some(directive) = rest[..end].trim().strip_prefix('#') else {
            continue;
        };
        rest = &rest[end + 2..];
        let Some(arg) = directive
            .strip_prefix("include")
            .or_else(|| directive.strip_prefix("rustdoc_include"))
        else {
            continue;
        };
        let arg = arg.trim();
        let (path, selector) = match arg.split_once(':') {
            Some((path, selector)) => (path, Some(selector.to_owned())),
            None => (arg, None),
        };
        found.push(Include {
            path: path.to_owned(),
            selector,
        });
    }
    found
}

/// The text an include selects, as mdBook would: a named anchor, a line range, or the whole file.
/// `None` when the anchor does not exist.
pub fn select(text: &str, selector: Option<&str>) -> Option<String> {
    let Some(selector) = selector else {
        return Some(text.to_owned());
    };
    let lines: Vec<&str> = text.lines().collect();
    let is_range = selector.chars().all(|c| c.is_ascii_digit() || c == ':');
    if is_range {
        let mut parts = selector.splitn(2, ':');
        let start = parts
            .next()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let end = parts
            .next()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(lines.len())
            .min(lines.len());
        return Some(
            lines
                .get(start - 1..end)
                .map(|l| l.join("\n"))
                .unwrap_or_default(),
        );
    }
    let begin = lines
        .iter()
        .position(|l| anchor_name(l, "ANCHOR:") == Some(selector))?;
    let end = lines[begin..]
        .iter()
        .position(|l| anchor_name(l, "ANCHOR_END:") == Some(selector))?;
    let body = lines[begin + 1..begin + end]
        .iter()
        .filter(|l| anchor_name(l, "ANCHOR:").is_none() && anchor_name(l, "ANCHOR_END:").is_none());
    Some(body.copied().collect::<Vec<_>>().join("\n"))
}

/// The anchor name on a line like `// ANCHOR: name` or `<!-- ANCHOR: name -->`: as mdBook reads it,
/// the word characters (and `-`) after the marker.
fn anchor_name<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let at = line.find(marker)?;
    let rest = line[at + marker.len()..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Checks every include of every chapter under `src`.
pub fn check_includes(src: &Path) -> anyhow::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for chapter in markdown_files(src)? {
        let text =
            fs::read_to_string(&chapter).with_context(|| format!("cannot read {}", chapter.display()))?;
        let dir = chapter.parent().expect("a chapter is in a directory");
        for include in parse_includes(&text) {
            let target = dir.join(&include.path);
            let problem = |message: String| Problem {
                file: chapter.clone(),
                message,
            };
            let Ok(source) = fs::read_to_string(&target) else {
                problems.push(problem(format!(
                    "includes {}, which does not exist",
                    include.path
                )));
                continue;
            };
            match select(&source, include.selector.as_deref()) {
                None => problems.push(problem(format!(
                    "includes {}:{}, an anchor that file does not have",
                    include.path,
                    include.selector.as_deref().unwrap_or_default()
                ))),
                Some(body) if body.trim().is_empty() => {
                    problems.push(problem(format!("includes {} and gets no text", include.path)))
                }
                Some(_) => {}
            }
        }
        for path in transcripts_fenced_otherwise(&text) {
            problems.push(Problem {
                file: chapter.clone(),
                message: format!(
                    "includes {path} in a fence other than ```text: recorded output is fenced as text \
                     everywhere (console is for a shell session, commands and their output)"
                ),
            });
        }
        for path in includes_outside_code_blocks(&text) {
            problems.push(Problem {
                file: chapter.clone(),
                message: format!("includes {path} outside a ``` code block: mdBook would render it as prose"),
            });
        }
    }
    Ok(problems)
}

/// The includes that are not inside a fenced code block. Code and recorded output must be fenced, or
/// mdBook renders them as Markdown (a Rust doc comment becomes a paragraph, indentation is lost);
/// Markdown itself (`.md`) is included unfenced, to be rendered.
pub fn includes_outside_code_blocks(markdown: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            found.extend(
                parse_includes(line)
                    .into_iter()
                    .map(|i| i.path)
                    .filter(|p| !p.ends_with(".md")),
            );
        }
    }
    found
}

/// The transcripts included in a fence other than ```` ```text ````: every chapter shows recorded
/// output the same way.
pub fn transcripts_fenced_otherwise(markdown: &str) -> Vec<String> {
    let mut fence: Option<&str> = None;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            fence = if fence.is_some() { None } else { Some(info.trim()) };
            continue;
        }
        if let Some(info) = fence.filter(|info| *info != "text") {
            found.extend(
                parse_includes(line)
                    .into_iter()
                    .map(|i| i.path)
                    .filter(|p| p.starts_with("transcripts/"))
                    .map(|p| format!("{p} (```{info})")),
            );
        }
    }
    found
}

fn markdown_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(markdown_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

// ---- transcripts ----------------------------------------------------------------------------------

/// Who a transcript was recorded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Root,
    User,
}

impl Mode {
    fn suffix(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::User => "user",
        }
    }
}

/// The modes this process can record or check: as root, both (the user mode through setpriv).
fn available_modes() -> Vec<Mode> {
    if is_root() {
        vec![Mode::Root, Mode::User]
    } else {
        vec![Mode::User]
    }
}

/// The workspace's demo crates: directories named `*-demo` with a Cargo.toml.
pub fn demo_crates(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut demos = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-demo") && entry.path().join("Cargo.toml").exists() {
            demos.push(name);
        }
    }
    demos.sort();
    Ok(demos)
}

fn transcript_path(root: &Path, demo: &str, mode: Mode) -> PathBuf {
    root.join("book/src/transcripts")
        .join(format!("{demo}.{}.txt", mode.suffix()))
}

/// Builds the demos and runs one with no arguments, as `mode`, returning its stdout.
fn run_demo(root: &Path, demo: &str, mode: Mode) -> anyhow::Result<String> {
    let binary = util::target_dir(root).join("debug").join(demo);
    let mut cmd = match mode {
        Mode::Root => Command::new(&binary),
        Mode::User => {
            util::make_reachable(binary.parent().expect("target/debug"))?;
            as_unprivileged(&binary)
        }
    };
    cmd.current_dir(std::env::temp_dir());
    util::output(&mut cmd).with_context(|| format!("{demo} failed as {}", mode.suffix()))
}

fn build_demos(root: &Path, demos: &[String]) -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.current_dir(root).arg("build").arg("--quiet");
    for demo in demos {
        cmd.args(["-p", demo]);
    }
    util::run(&mut cmd)
}

/// `cargo xtask transcripts`.
pub fn record_transcripts(root: &Path) -> anyhow::Result<()> {
    let demos = demo_crates(root)?;
    build_demos(root, &demos)?;
    for demo in &demos {
        for mode in available_modes() {
            let path = transcript_path(root, demo, mode);
            let output = run_demo(root, demo, mode)?;
            fs::write(&path, output).with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "xtask: recorded {}",
                path.strip_prefix(root).unwrap_or(&path).display()
            );
        }
    }
    if !is_root() {
        println!("xtask: not root, so the .root.txt transcripts were left as they are");
    }
    // Some figures are drawn from the transcripts: redraw them with what was just recorded.
    crate::diagrams::generate(root)
}

fn check_transcripts(root: &Path) -> anyhow::Result<Vec<Problem>> {
    let demos = demo_crates(root)?;
    build_demos(root, &demos)?;
    let machine = Machine::this()?;
    let mut problems = Vec::new();
    for demo in &demos {
        let masks = read_masks(&root.join(demo).join("transcript.masks"))?;
        for mode in [Mode::Root, Mode::User] {
            let path = transcript_path(root, demo, mode);
            let Ok(recorded) = fs::read_to_string(&path) else {
                problems.push(Problem {
                    file: path,
                    message: "missing: run cargo xtask transcripts as root".into(),
                });
                continue;
            };
            if !available_modes().contains(&mode) {
                continue;
            }
            let actual = run_demo(root, demo, mode)?;
            if let Some(diff) =
                first_difference(&machine.mask(&recorded, &masks), &machine.mask(&actual, &masks))
            {
                problems.push(Problem {
                    file: path,
                    message: format!("no longer what `{demo}` prints (run cargo xtask transcripts):\n{diff}"),
                });
            }
        }
    }
    Ok(problems)
}

/// The values that differ from machine to machine and are masked before comparing.
pub struct Machine {
    pub hostname: String,
    pub release: String,
}

impl Machine {
    fn this() -> anyhow::Result<Machine> {
        let read = |p: &str| {
            fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .with_context(|| format!("cannot read {p}"))
        };
        Ok(Machine {
            hostname: read("/proc/sys/kernel/hostname")?,
            release: read("/proc/sys/kernel/osrelease")?,
        })
    }

    /// Masks an output: ns inodes, numbers of three or more digits, this machine's hostname and
    /// release, and the rest of any line after one of the crate's `masks`.
    pub fn mask(&self, text: &str, masks: &[String]) -> String {
        text.lines()
            .map(|line| {
                let mut line = line.to_owned();
                if let Some(at) = masks
                    .iter()
                    .filter_map(|m| line.find(m.as_str()).map(|i| i + m.len()))
                    .min()
                {
                    line.truncate(at);
                    line.push('…');
                }
                let line = replace_word(&line, &self.release, "<release>");
                let line = replace_word(&line, &self.hostname, "<hostname>");
                mask_numbers(&line)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Replaces `word` where it is not part of a longer word.
fn replace_word(line: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return line.to_owned();
    }
    let is_word =
        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.');
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(word) {
        let before = out.chars().last().or_else(|| rest[..at].chars().last());
        let before = if at > 0 { rest[..at].chars().last() } else { before };
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if is_word(before) || is_word(after) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces every run of three or more digits with `…`: PIDs, ns inodes, ids.
fn mask_numbers(line: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in line.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 3 {
            out.push('…');
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

fn read_masks(path: &Path) -> anyhow::Result<Vec<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The first differing line, as a two-line diff; `None` when equal.
fn first_difference(expected: &str, actual: &str) -> Option<String> {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y {
            return Some(format!(
                "  line {}:\n  - recorded: {}\n  + now:      {}",
                i + 1,
                x.unwrap_or("<end of transcript>"),
                y.unwrap_or("<end of output>")
            ));
        }
    }
    None
}

// ---- HTML -----------------------------------------------------------------------------------------

/// `cargo xtask book [--check]`: the HTML, on any machine; with `check`, only once `book-check` has
/// passed (which runs every demo, as root and as 65534 when root).
pub fn build_html(root: &Path, check_first: bool) -> anyhow::Result<()> {
    if Command::new("mdbook").arg("--version").output().is_err() {
        println!("xtask: mdbook is not installed; installing it with cargo install --locked mdbook");
        util::run(cargo().args(["install", "--locked", "mdbook"]))?;
    }
    if check_first {
        check(root)?;
    }
    util::run(Command::new("mdbook").arg("build").arg(root.join("book")))?;
    println!(
        "xtask: the book is in {}",
        root.join("book/build/index.html").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_include_directives() {
        let md = "x {{#include ../../a/src/lib.rs:spawn}} y {{ #include transcripts/a.txt }} {{#title t}}\n\
                  {{#rustdoc_include f.rs:2:5}}";
        assert_eq!(
            parse_includes(md),
            [
                Include {
                    path: "../../a/src/lib.rs".into(),
                    selector: Some("spawn".into())
                },
                Include {
                    path: "transcripts/a.txt".into(),
                    selector: None
                },
                Include {
                    path: "f.rs".into(),
                    selector: Some("2:5".into())
                },
            ]
        );
    }

    #[test]
    fn includes_must_be_fenced() {
        let md = "text\n```rust,ignore\n{{#include a.rs:x}}\n```\n{{#include b.rs:y}}\n{{#include c.md:z}}\n";
        assert_eq!(includes_outside_code_blocks(md), ["b.rs"]);
    }

    #[test]
    fn transcripts_are_fenced_as_text() {
        let md = "```text\n{{#include transcripts/a.txt}}\n```\n```console\n{{#include transcripts/b.txt}}\n```\n\
                  ```console\n$ cargo run\n```\n```rust\n{{#include ../../a/src/lib.rs:x}}\n```\n";
        assert_eq!(
            transcripts_fenced_otherwise(md),
            ["transcripts/b.txt (```console)"]
        );
    }

    #[test]
    fn selects_anchors_and_ranges() {
        let src = "a\n// ANCHOR: x\nb\n// ANCHOR: inner\nc\n// ANCHOR_END: inner\n// ANCHOR_END: x\nd";
        assert_eq!(select(src, Some("x")).unwrap(), "b\nc");
        let md = "<!-- ANCHOR: figures -->\n| a |\n<!-- ANCHOR_END: figures -->";
        assert_eq!(select(md, Some("figures")).unwrap(), "| a |");
        assert_eq!(select(src, Some("inner")).unwrap(), "c");
        assert_eq!(select(src, Some("missing")), None);
        assert_eq!(select(src, Some("1:1")).unwrap(), "a");
        assert_eq!(select(src, None).unwrap(), src);
    }

    /// A book in a scratch directory: one chapter including one anchor of one source file.
    fn scratch_book(source: &str) -> tempfile::TempDir {
        let tmp = tempfile::Builder::new().prefix("xtask-book-").tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("book/src")).unwrap();
        fs::create_dir_all(dir.join("demo/src")).unwrap();
        fs::write(
            dir.join("book/src/ch.md"),
            "# Ch\n```rust\n{{#include ../../demo/src/lib.rs:step}}\n```\n",
        )
        .unwrap();
        fs::write(dir.join("demo/src/lib.rs"), source).unwrap();
        tmp
    }

    #[test]
    fn a_removed_anchor_fails_the_check() {
        let good = scratch_book("// ANCHOR: step\nfn step() {}\n// ANCHOR_END: step\n");
        assert_eq!(check_includes(&good.path().join("book/src")).unwrap(), []);
        let bad = scratch_book("fn step() {}\n");
        let problems = check_includes(&bad.path().join("book/src")).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("an anchor that file does not have"),
            "{:?}",
            problems
        );
    }

    #[test]
    fn the_real_book_resolves_and_breaks_without_an_anchor() {
        let root = util::workspace_root();
        assert_eq!(check_includes(&root.join("book/src")).unwrap(), []);
        // Copy the book and the UTS chapter's source, drop one anchor the chapter uses: the check fails.
        let scratch = tempfile::Builder::new()
            .prefix("xtask-realbook-")
            .tempdir()
            .unwrap();
        let copy = scratch.path();
        fs::create_dir_all(copy.join("book")).unwrap();
        fs::create_dir_all(copy.join("uts-demo/src")).unwrap();
        util::run(
            Command::new("cp")
                .arg("-r")
                .arg(root.join("book/src"))
                .arg(copy.join("book")),
        )
        .unwrap();
        let lib = fs::read_to_string(root.join("uts-demo/src/lib.rs")).unwrap();
        let without: String = lib
            .lines()
            .filter(|l| !l.contains("ANCHOR: observe"))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(copy.join("uts-demo/src/lib.rs"), without).unwrap();
        let problems = check_includes(&copy.join("book/src")).unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("uts-demo/src/lib.rs:observe")),
            "{problems:?}"
        );
    }

    #[test]
    fn masks_what_varies() {
        let m = Machine {
            hostname: "vm".into(),
            release: "6.1.0-1-amd64".into(),
        };
        let text = "[host ] uts:[4026531838] hostname=vm  uname -r=6.1.0-1-amd64 pid=12345 PID 1 vmx";
        assert_eq!(
            m.mask(text, &[]),
            "[host ] uts:[…] hostname=<hostname>  uname -r=<release> pid=… PID 1 vmx"
        );
        assert_eq!(m.mask("[host ] lo eth0 wlan0", &["[host ] ".into()]), "[host ] …");
    }

    #[test]
    fn reports_the_first_difference() {
        assert_eq!(first_difference("a\nb", "a\nb"), None);
        assert!(first_difference("a\nb", "a\nc").unwrap().contains("line 2"));
        assert!(
            first_difference("a", "a\nc")
                .unwrap()
                .contains("<end of transcript>")
        );
    }
}
