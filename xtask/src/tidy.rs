//! `cargo xtask tidy`: the invariants of ARCHITECTURE.md that code can check, checked by reading the
//! tree's text, as rust-analyzer's `xtask/src/tidy.rs` does. A chapter depends on no workspace crate but
//! `nskit` (Cargo's manifest format, doc.rust-lang.org/cargo/reference/manifest.html); every Rust file
//! opens with `//!`; every `unsafe` block and impl has a `// SAFETY:` comment; a test gives its
//! privilege gate its own name; the book includes code by anchor, never by line numbers (mdBook's
//! `{{#include}}`, rust-lang.github.io/mdBook/format/mdbook.html); a package with more than one binary
//! names the one `cargo run -p` runs (`default-run`), as the README's commands need. `cargo test` runs
//! it on the tree.

use std::fmt;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::book::parse_includes;

/// An invariant tidy checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A chapter (a `*-demo` crate) depends on a workspace crate other than `nskit`.
    ChapterDependency,
    /// A Rust file's first non-empty line is not a `//!` comment.
    FileHeader,
    /// An `unsafe` block or impl has no `// SAFETY:` comment.
    SafetyComment,
    /// A test calls its privilege gate with a name other than its own.
    GateName,
    /// A book include selects lines by number instead of by anchor.
    IncludeByLine,
    /// A package with more than one `[[bin]]` sets no `default-run`: `cargo run -p` then asks which
    /// binary to run (even those whose `required-features` are off count).
    DefaultRun,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::ChapterDependency => "chapter-dependency",
            Rule::FileHeader => "file-header",
            Rule::SafetyComment => "safety-comment",
            Rule::GateName => "gate-name",
            Rule::IncludeByLine => "include-by-line",
            Rule::DefaultRun => "default-run",
        })
    }
}

/// One place where the tree breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    /// Relative to the root checked.
    pub file: PathBuf,
    /// Counted from 1.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Violation {
            rule,
            file,
            line,
            message,
        } = self;
        write!(f, "{}:{line}: {rule}: {message}", file.display())
    }
}

/// `cargo xtask tidy`: prints every violation, one per line, and fails if there is any.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let violations = check(root)?;
    for violation in &violations {
        eprintln!("tidy: {violation}");
    }
    if !violations.is_empty() {
        bail!("{} tidy violation(s)", violations.len());
    }
    Ok(())
}

/// Every violation in the tree under `root`: a workspace root, with its `Cargo.toml`.
pub fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let mut found = chapter_dependencies(root)?;
    for path in files(root, "rs")? {
        let text = read(&path)?;
        let file = path.strip_prefix(root).unwrap_or(&path);
        found.extend(missing_header(file, &text));
        found.extend(unsafe_without_safety(file, &text));
        found.extend(misnamed_gates(file, &text));
    }
    let book = root.join("book").join("src");
    if book.is_dir() {
        for path in files(&book, "md")? {
            let text = read(&path)?;
            found.extend(includes_by_line(path.strip_prefix(root).unwrap_or(&path), &text));
        }
    }
    Ok(found)
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The files under `dir` whose name ends in `.{extension}`, sorted, leaving out what cargo builds
/// (`target`) and hidden directories (`.git`, `.cargo`). Symbolic links are not followed.
fn files(dir: &Path, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() && name != "target" && !name.starts_with('.') {
            found.extend(files(&path, extension)?);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn violation(rule: Rule, file: &Path, line: usize, message: String) -> Violation {
    Violation {
        rule,
        file: file.to_path_buf(),
        line,
        message,
    }
}

// ---- chapters depend only on nskit ----------------------------------------------------------------

/// A chapter that names a workspace crate other than `nskit` in any dependency table. `combined`
/// (which composes the chapters) and `xtask` are not chapters.
fn chapter_dependencies(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let mut crates = Vec::new();
    for member in workspace_members(&read(&root.join("Cargo.toml"))?) {
        let manifest = Path::new(&member).join("Cargo.toml");
        let text = read(&root.join(&manifest))?;
        let name = package_name(&text).with_context(|| format!("{} names no package", manifest.display()))?;
        crates.push((manifest, name, text));
    }
    let mut found: Vec<Violation> = crates
        .iter()
        .filter_map(|(manifest, name, text)| without_default_run(manifest, name, text))
        .collect();
    for (manifest, name, text) in crates.iter().filter(|(_, name, _)| name.ends_with("-demo")) {
        for (line, dependency) in dependencies(text) {
            if dependency != "nskit" && crates.iter().any(|(_, other, _)| *other == dependency) {
                found.push(violation(
                    Rule::ChapterDependency,
                    manifest,
                    line,
                    format!(
                        "chapter {name} depends on {dependency}: a chapter may depend on no workspace crate \
                         but nskit, and what two chapters share belongs in nskit"
                    ),
                ));
            }
        }
    }
    Ok(found)
}

/// A manifest with two or more `[[bin]]` tables and no `default-run` key in `[package]`.
fn without_default_run(manifest: &Path, name: &str, text: &str) -> Option<Violation> {
    let lines: Vec<&str> = text.lines().map(without_comment).collect();
    let bins: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == "[[bin]]")
        .collect();
    let names_default = lines.iter().any(|line| key(line) == Some("default-run"));
    (bins.len() > 1 && !names_default).then(|| {
        violation(
            Rule::DefaultRun,
            manifest,
            bins[1] + 1,
            format!(
                "{name} has {} binaries and no default-run: `cargo run -p {name}` would ask which to run",
                bins.len()
            ),
        )
    })
}

/// The directories listed in `[workspace] members = [...]`.
fn workspace_members(manifest: &str) -> Vec<String> {
    let mut members = Vec::new();
    let lines = manifest
        .lines()
        .map(without_comment)
        .skip_while(|line| key(line) != Some("members"));
    for line in lines {
        members.extend(quoted(line));
        if line.contains(']') {
            break;
        }
    }
    members
}

/// `name` in the `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(without_comment) {
        if let Some(header) = table_header(line) {
            in_package = header == "package";
        } else if in_package && key(line) == Some("name") {
            return quoted(line).next();
        }
    }
    None
}

/// The crates a manifest depends on, each with the line that names it: the keys of
/// `[dependencies]`, `[dev-dependencies]` and `[build-dependencies]` (and of their `[target.….]`
/// forms), the name in a `[dependencies.NAME]` header, and the `package = "…"` a renamed dependency
/// stands for.
fn dependencies(manifest: &str) -> Vec<(usize, String)> {
    enum Table {
        /// Not about dependencies.
        Other,
        /// `[dependencies]`: each key names one.
        Dependencies,
        /// `[dependencies.NAME]`: the keys are that dependency's fields.
        OneDependency,
    }
    let mut found = Vec::new();
    let mut table = Table::Other;
    for (index, line) in manifest.lines().map(without_comment).enumerate() {
        let line_number = index + 1;
        if let Some(header) = table_header(line) {
            let parts: Vec<&str> = header.split('.').map(str::trim).collect();
            table = match parts[..] {
                [.., last] if is_dependency_table(last) => Table::Dependencies,
                [.., kind, name] if is_dependency_table(kind) => {
                    found.push((line_number, name.trim_matches(['"', '\'']).to_owned()));
                    Table::OneDependency
                }
                _ => Table::Other,
            };
            continue;
        }
        if let Table::Other = table {
            continue;
        }
        if let (Table::Dependencies, Some(key)) = (&table, key(line)) {
            // `nskit.workspace = true` names nskit as `nskit = { workspace = true }` does.
            let name = key.split('.').next().unwrap_or_default();
            found.push((line_number, name.trim_matches('"').to_owned()));
        }
        if let Some(at) = line.find("package") {
            let rest = line[at + "package".len()..].trim_start();
            if let Some(package) = rest.strip_prefix('=').and_then(|value| quoted(value).next()) {
                found.push((line_number, package));
            }
        }
    }
    found
}

fn is_dependency_table(name: &str) -> bool {
    matches!(name, "dependencies" | "dev-dependencies" | "build-dependencies")
}

/// A TOML line without its `#` comment (no string in these manifests holds a `#`).
fn without_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim()
}

/// `table` for a `[table]` line.
fn table_header(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// The key of a `key = value` line.
fn key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    Some(key.trim()).filter(|key| !key.is_empty())
}

/// The `"…"` strings in a line, in order.
fn quoted(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split('"').skip(1).step_by(2).map(str::to_owned)
}

// ---- every Rust file opens with //! ---------------------------------------------------------------

fn missing_header(file: &Path, text: &str) -> Option<Violation> {
    let first = text.lines().enumerate().find(|(_, line)| !line.trim().is_empty());
    match first {
        Some((_, line)) if line.trim_start().starts_with("//!") => None,
        first => Some(violation(
            Rule::FileHeader,
            file,
            first.map_or(1, |(index, _)| index + 1),
            "the file does not open with a `//!` comment saying what it does and which man page or \
             spec it follows"
                .to_owned(),
        )),
    }
}

// ---- every unsafe block and impl says why it is sound ---------------------------------------------

/// An `unsafe {` or `unsafe impl` whose line has no `SAFETY:` comment and whose statement has none in
/// the `//` lines just above it. Clippy's `undocumented_unsafe_blocks` denies most of these already;
/// this also covers whatever clippy is not run on, and impls.
fn unsafe_without_safety(file: &Path, text: &str) -> Vec<Violation> {
    let code = code_only(text);
    let code: Vec<&str> = code.lines().collect();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (index, code_line) in code.iter().enumerate() {
        if opens_unsafe(code_line) && !has_safety_comment(&lines, &code, index) {
            found.push(violation(
                Rule::SafetyComment,
                file,
                index + 1,
                "an `unsafe` block or impl without a `// SAFETY:` comment just above it, saying why it \
                 is sound"
                    .to_owned(),
            ));
        }
    }
    found
}

fn opens_unsafe(code_line: &str) -> bool {
    word_offsets(code_line, "unsafe").any(|at| {
        let rest = code_line[at + "unsafe".len()..].trim_start();
        rest.starts_with('{') || word_offsets(rest, "impl").next() == Some(0)
    })
}

/// Whether the `unsafe` on line `index` is explained: by a `SAFETY:` comment on its own line, or in
/// the comment lines above its statement. rustfmt wraps a long call over several lines, leaving the
/// `unsafe` on a later one; the lines before it that end in `(`, `[`, `,` or `=` are the same statement
/// (unless they hold an `unsafe` of their own, which the comment above is about).
fn has_safety_comment(lines: &[&str], code: &[&str], index: usize) -> bool {
    let in_comment = |i: usize| lines[i].contains("SAFETY:") && !code[i].contains("SAFETY:");
    if in_comment(index) {
        return true;
    }
    let continues = |line: &str| line.trim_end().ends_with(['(', '[', ',', '=']);
    let mut start = index;
    while start > 0 && continues(code[start - 1]) && !opens_unsafe(code[start - 1]) {
        start -= 1;
    }
    (0..start)
        .rev()
        .take_while(|&i| lines[i].trim_start().starts_with("//"))
        .any(in_comment)
}

// ---- a test names itself to its privilege gate ----------------------------------------------------

/// The privilege gates, each with the directory whose tests call it. A test calls its gate first, with
/// its own name, which the gate prints when it skips the test (`skipped NAME: needs root`) and when
/// `NS_REQUIRE_PRIV` makes that a failure. nskit::testing's gates serve every test; the others wrap
/// them for one suite, under names that mean something else elsewhere (bench-floor's `namespaces`
/// parses a list).
const GATES: &[(&str, &str)] = &[
    ("require_namespaces", ""),
    ("require_root", ""),
    ("require_userns", ""),
    ("namespaces", "combined/tests"),
    ("have_busybox", "combined/tests"),
    ("ready", "combined/tests"),
    ("leak_checked", "pid-demo/tests"),
    ("delegated", "cgroup-demo/tests"),
    ("in_lab", "time-demo/tests"),
    ("gate", "xtask/tests"),
];

fn misnamed_gates(file: &Path, text: &str) -> Vec<Violation> {
    let code = code_only(text);
    let mut found = Vec::new();
    for (at, attribute) in code.match_indices("#[test]") {
        let Some((name, body)) = test_function(&code, at + attribute.len()) else {
            continue;
        };
        for (gate, _) in GATES.iter().filter(|(_, dir)| file.starts_with(dir)) {
            for quote in gate_calls(&code, text, body.clone(), gate) {
                let given = text[quote + 1..].split('"').next().unwrap_or_default();
                if given != name {
                    found.push(violation(
                        Rule::GateName,
                        file,
                        line_of(text, quote),
                        format!(
                            "test {name} calls {gate}(\"{given}\"): a gate is given its test's own name, \
                             which it prints when it skips the test"
                        ),
                    ));
                }
            }
        }
    }
    found
}

/// The name and the body (inside its braces) of the first function after `from` in `code`.
fn test_function(code: &str, from: usize) -> Option<(&str, Range<usize>)> {
    let fn_at = from + word_offsets(&code[from..], "fn").next()?;
    let after_fn = &code[fn_at + "fn".len()..];
    let name = after_fn.trim_start();
    let name = &name[..name.find(|c: char| !is_ident(c))?];
    let open = fn_at + code[fn_at..].find('{')?;
    let mut depth = 0;
    for (offset, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => continue,
        }
        if depth == 0 {
            return Some((name, open + 1..open + offset));
        }
    }
    None
}

/// Where, in `body`, `gate("…")` is called with a string literal: the offsets of the opening quotes.
/// The literal's text is blanked in `code`, so the quote is looked for in `text`.
fn gate_calls(code: &str, text: &str, body: Range<usize>, gate: &str) -> Vec<usize> {
    let start = body.start;
    word_offsets(&code[body], gate)
        .map(|at| start + at)
        // A method of the same name (`.ready(`) is not the gate.
        .filter(|&at| !code[..at].ends_with('.'))
        .filter_map(|at| {
            let after = at + gate.len();
            let open = after + code[after..].find(|c: char| !c.is_whitespace())?;
            if !code[open..].starts_with('(') {
                return None;
            }
            let quote = open + 1 + text[open + 1..].find(|c: char| !c.is_whitespace())?;
            text[quote..].starts_with('"').then_some(quote)
        })
        .collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

// ---- the book includes code by anchor -------------------------------------------------------------

/// `{{#include file:10:20}}` and `{{#include file:10}}`: a line range goes on including lines 10 to 20
/// when the code moves, where an anchor moves with the code (and `book-check` fails when it is gone).
fn includes_by_line(file: &Path, text: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for include in parse_includes(line) {
            let Some(selector) = include.selector.filter(|s| is_line_range(s)) else {
                continue;
            };
            found.push(violation(
                Rule::IncludeByLine,
                file,
                index + 1,
                format!(
                    "includes {path}:{selector} by line number: mark the lines in {path} with \
                     `// ANCHOR: name` and `// ANCHOR_END: name` and include {path}:name",
                    path = include.path
                ),
            ));
        }
    }
    found
}

/// mdBook's line selectors: `N`, `N:M`, `N:`, `:M`.
fn is_line_range(selector: &str) -> bool {
    selector.contains(|c: char| c.is_ascii_digit())
        && selector.chars().all(|c| c.is_ascii_digit() || c == ':')
}

// ---- reading Rust as text -------------------------------------------------------------------------

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where `word` occurs in `code` as a whole word, not as part of a longer identifier.
fn word_offsets<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word).map(|(at, _)| at).filter(move |&at| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// `text` with its comments and its string and character literals blanked out, newlines kept, so
/// lines and offsets stay where they were. What is left is code: an `unsafe` or a `#[test]` found in it
/// is not a word in a comment or a string (such as the trees this file's tests write).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut code = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let Some(end) = literal_or_comment_end(text, i) else {
            i += 1;
            continue;
        };
        for byte in &mut code[i..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
        i = end;
    }
    // Each blanked range starts and ends at an ASCII delimiter, so it holds only whole characters.
    String::from_utf8(code).expect("blanking whole characters keeps UTF-8")
}

/// If a comment or a literal starts at `i`, the offset just past its end.
fn literal_or_comment_end(text: &str, i: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let rest = &bytes[i..];
    let past = |offset: Option<usize>, len: usize| offset.map_or(bytes.len(), |at| i + at + len);
    let after_identifier = i > 0 && is_ident(char::from(bytes[i - 1]));
    if rest.starts_with(b"//") {
        return Some(past(rest.iter().position(|&b| b == b'\n'), 0));
    }
    if rest.starts_with(b"/*") {
        return Some(block_comment_end(bytes, i));
    }
    if !after_identifier {
        if let Some(end) = raw_string_end(bytes, i) {
            return Some(end);
        }
    }
    match rest[0] {
        b'"' => {
            let mut j = i + 1;
            while j < bytes.len() {
                match bytes[j] {
                    b'\\' => j += 2,
                    b'"' => return Some(j + 1),
                    _ => j += 1,
                }
            }
            Some(bytes.len())
        }
        // A character literal (`'x'`, `'\n'`, `'\''`), not a lifetime (`'a`).
        b'\'' if rest.get(1) == Some(&b'\\') => {
            let closing = rest
                .get(3..)
                .and_then(|tail| tail.iter().position(|&b| b == b'\''));
            Some(past(closing, 4))
        }
        b'\'' => {
            let len = text[i + 1..].chars().next()?.len_utf8();
            (rest.get(1 + len) == Some(&b'\'')).then_some(i + len + 2)
        }
        _ => None,
    }
}

/// Comments nest in Rust.
fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match &bytes[i..i + 2] {
            b"/*" => depth += 1,
            b"*/" => depth -= 1,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
        if depth == 0 {
            return i;
        }
    }
    bytes.len()
}

/// `r"…"`, `r#"…"#`, `br"…"`, `cr"…"`: no escapes, and quotes inside when there are `#`s.
fn raw_string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if matches!(bytes.get(i), Some(b'b' | b'c')) {
        i += 1;
    }
    if bytes.get(i) != Some(&b'r') {
        return None;
    }
    let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
    i += 1 + hashes;
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let mut closing = vec![b'"'];
    closing.resize(1 + hashes, b'#');
    let body = &bytes[i + 1..];
    let at = body.windows(closing.len()).position(|w| w == closing.as_slice());
    Some(at.map_or(bytes.len(), |at| i + 1 + at + closing.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::util;

    /// The chapter source of the test trees: one anchor the book includes, one unsafe block with its
    /// comment, one gated test.
    const CHAPTER: &str = r#"//! A chapter, in a tree for tidy's tests.

// ANCHOR: uname
pub fn uname() -> libc::c_int {
    let mut buf = std::mem::MaybeUninit::uninit();
    // SAFETY: uname writes one `struct utsname` through the pointer, which points at one.
    unsafe { libc::uname(buf.as_mut_ptr()) }
}
// ANCHOR_END: uname

#[test]
fn uname_answers() {
    if !nskit::testing::require_namespaces("uname_answers") {
        return;
    }
    assert_eq!(uname(), 0);
}
"#;

    /// A small workspace that breaks no rule: two chapters, nskit, combined (which may depend on the
    /// chapters), and a book chapter.
    fn tidy_tree() -> tempfile::TempDir {
        let tree = tempfile::tempdir().unwrap();
        let files = [
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\n    \"nskit\",\n    \"a-demo\",\n    \"b-demo\",\n    \"combined\",\n]\n",
            ),
            ("nskit/Cargo.toml", "[package]\nname = \"nskit\"\n"),
            (
                "a-demo/Cargo.toml",
                "[package]\nname = \"a-demo\"\n\n[dependencies]\nnskit.workspace = true\nlibc = \"0.2\"\n",
            ),
            (
                "b-demo/Cargo.toml",
                "[package]\nname = \"b-demo\"\n\n[dependencies]\nnskit = { path = \"../nskit\" }\n",
            ),
            (
                "combined/Cargo.toml",
                "[package]\nname = \"combined\"\n\n[dependencies]\na-demo.workspace = true\nb-demo = { path = \"../b-demo\" }\n",
            ),
            ("a-demo/src/lib.rs", CHAPTER),
            (
                "book/src/a.md",
                "# A\n\n```rust\n{{#include ../../a-demo/src/lib.rs:uname}}\n```\n",
            ),
        ];
        for (path, text) in files {
            write(&tree, path, text);
        }
        tree
    }

    fn write(tree: &tempfile::TempDir, path: &str, text: &str) {
        let path = tree.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Plants a violation by replacing `from` (which must be there) with `to` in one file.
    fn replace(tree: &tempfile::TempDir, path: &str, from: &str, to: &str) {
        let text = fs::read_to_string(tree.path().join(path)).unwrap();
        assert!(text.contains(from), "{path} has no {from:?}");
        write(tree, path, &text.replacen(from, to, 1));
    }

    /// The one violation found in `tree`, whose rule must be `rule`.
    fn only_violation(tree: &tempfile::TempDir, rule: Rule) -> Violation {
        let violations = check(tree.path()).unwrap();
        let rules: Vec<Rule> = violations.iter().map(|v| v.rule).collect();
        assert_eq!(rules, [rule], "{violations:#?}");
        violations.into_iter().next().unwrap()
    }

    #[test]
    fn the_workspace_is_tidy() {
        let violations = check(&util::workspace_root()).unwrap();
        let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(violations.is_empty(), "tidy violations:\n{}", listed.join("\n"));
    }

    #[test]
    fn the_test_tree_is_tidy() {
        assert_eq!(check(tidy_tree().path()).unwrap(), []);
    }

    #[test]
    fn a_chapter_depending_on_another_chapter_is_refused() {
        let tree = tidy_tree();
        replace(
            &tree,
            "a-demo/Cargo.toml",
            "libc = \"0.2\"\n",
            "libc = \"0.2\"\n\n[dev-dependencies]\nb-demo = { path = \"../b-demo\" }\n",
        );
        let found = only_violation(&tree, Rule::ChapterDependency);
        assert_eq!((found.file.to_str(), found.line), (Some("a-demo/Cargo.toml"), 9));
    }

    #[test]
    fn a_package_with_two_binaries_names_the_one_cargo_run_runs() {
        let tree = tidy_tree();
        let two = "[[bin]]\nname = \"combined\"\n\n[[bin]]\nname = \"probe\"\nrequired-features = [\"x\"]\n";
        replace(
            &tree,
            "combined/Cargo.toml",
            "[dependencies]\n",
            &format!("{two}\n[dependencies]\n"),
        );
        let found = only_violation(&tree, Rule::DefaultRun);
        assert_eq!(
            (found.file.to_str(), found.line),
            (Some("combined/Cargo.toml"), 7)
        );
        replace(
            &tree,
            "combined/Cargo.toml",
            "name = \"combined\"\n",
            "name = \"combined\"\ndefault-run = \"combined\"\n",
        );
        assert_eq!(check(tree.path()).unwrap(), []);
    }

    #[test]
    fn a_chapter_depending_on_combined_is_refused_even_renamed() {
        let tree = tidy_tree();
        replace(
            &tree,
            "b-demo/Cargo.toml",
            "[dependencies]\n",
            "[dependencies]\nlauncher = { package = \"combined\", path = \"../combined\" }\n",
        );
        let found = only_violation(&tree, Rule::ChapterDependency);
        assert!(found.message.contains("depends on combined"), "{found}");
    }

    #[test]
    fn a_file_without_its_header_is_refused() {
        let tree = tidy_tree();
        write(
            &tree,
            "a-demo/src/main.rs",
            "// a comment, but not the file's `//!` header\nfn main() {}\n",
        );
        let found = only_violation(&tree, Rule::FileHeader);
        assert_eq!((found.file.to_str(), found.line), (Some("a-demo/src/main.rs"), 1));
    }

    #[test]
    fn an_unsafe_block_without_safety_is_refused() {
        let tree = tidy_tree();
        replace(
            &tree,
            "a-demo/src/lib.rs",
            "    // SAFETY: uname writes",
            "    // uname writes",
        );
        let found = only_violation(&tree, Rule::SafetyComment);
        assert_eq!((found.file.to_str(), found.line), (Some("a-demo/src/lib.rs"), 7));
    }

    #[test]
    fn an_unsafe_impl_without_safety_is_refused() {
        let tree = tidy_tree();
        replace(
            &tree,
            "a-demo/src/lib.rs",
            "// ANCHOR_END: uname\n",
            "// ANCHOR_END: uname\n\npub struct Handle(*mut u8);\n\n/// Sent between threads.\nunsafe impl Send for Handle {}\n",
        );
        only_violation(&tree, Rule::SafetyComment);
    }

    #[test]
    fn a_gate_given_another_tests_name_is_refused() {
        let tree = tidy_tree();
        replace(
            &tree,
            "a-demo/src/lib.rs",
            "require_namespaces(\"uname_answers\")",
            "require_namespaces(\"uname\")",
        );
        let found = only_violation(&tree, Rule::GateName);
        assert_eq!((found.file.to_str(), found.line), (Some("a-demo/src/lib.rs"), 13));
    }

    #[test]
    fn an_include_by_line_number_is_refused() {
        let tree = tidy_tree();
        replace(&tree, "book/src/a.md", "lib.rs:uname}}", "lib.rs:4:8}}");
        let found = only_violation(&tree, Rule::IncludeByLine);
        assert_eq!((found.file.to_str(), found.line), (Some("book/src/a.md"), 4));
    }

    #[test]
    fn a_safety_comment_above_a_wrapped_call_counts() {
        let text = "//! x\nfn f() {\n    // SAFETY: getpid takes no argument.\n    say(\n        \"pid\",\n        \
                    outcome(unsafe { libc::getpid() }),\n    );\n    say(\"again\", unsafe { libc::getpid() });\n}\n";
        let found = unsafe_without_safety(Path::new("f.rs"), text);
        let lines: Vec<usize> = found.iter().map(|v| v.line).collect();
        assert_eq!(lines, [8], "{found:#?}");
    }

    #[test]
    fn comments_and_literals_are_not_code() {
        let text = "let a = \"unsafe {\"; // unsafe {\n/* a /* nested */ unsafe { */ let b = r#\"\"unsafe {\"#;\n\
                    let c = '\"'; let d: &'static str = \"é\"; unsafe { }";
        let code = code_only(text);
        assert_eq!(code.len(), text.len());
        assert_eq!(code.lines().count(), text.lines().count());
        assert_eq!(code.matches("unsafe").count(), 1, "{code}");
        assert!(code.contains("&'static str"), "{code}");
    }
}
