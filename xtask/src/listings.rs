//! `cargo xtask mdbook-listings`: an mdBook preprocessor (rust-lang.github.io/mdBook/for_developers/
//! preprocessors.html) that puts a caption above every listing and recorded output the chapters
//! include, naming the file it comes from: "Listing: uts-demo/src/lib.rs (observe)", "Output of
//! cargo run -p uts-demo, as root: book/src/transcripts/uts-demo.root.txt". It runs before mdBook's
//! own `links` preprocessor, while the `{{#include}}` lines still say where each block comes from, so
//! a caption can never name the wrong file, and the chapters' Markdown stays as it is.
//!
//! mdBook calls it twice: `supports <renderer>` (every renderer is), then with `[context, book]` as
//! JSON on stdin, expecting the book back on stdout. The book is walked generically: every object with
//! a `content` string and a `path` is a chapter.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::book::parse_includes;

/// `cargo xtask mdbook-listings [supports RENDERER]`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) == Some("supports") {
        return Ok(());
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read the book mdBook sends")?;
    let [_context, mut book]: [Value; 2] = serde_json::from_str::<Vec<Value>>(&input)
        .context("mdBook sent something other than [context, book]")?
        .try_into()
        .map_err(|v: Vec<Value>| anyhow::anyhow!("mdBook sent {} values, not [context, book]", v.len()))?;
    caption_chapters(&mut book);
    serde_json::to_writer(std::io::stdout().lock(), &book).context("cannot write the book back")?;
    Ok(())
}

/// Captions the listings of every chapter in the book's JSON.
fn caption_chapters(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let path = map.get("path").and_then(Value::as_str).map(PathBuf::from);
            if let (Some(path), Some(Value::String(content))) = (path, map.get_mut("content")) {
                *content = caption(content, &path);
            }
            for child in map.values_mut() {
                caption_chapters(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(caption_chapters),
        _ => {}
    }
}

/// `path`, relative to the chapter at `chapter` (relative to `book/src`), as a path from the
/// workspace's root, `..` resolved.
fn from_root(chapter: &Path, path: &str) -> String {
    let mut parts: Vec<String> = vec!["book".into(), "src".into()];
    let joined = chapter.parent().unwrap_or(Path::new("")).join(path);
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// The caption of one included block, or `None` for an include that is not a listing (Markdown).
fn caption_for(chapter: &Path, path: &str, selector: Option<&str>) -> Option<String> {
    let file = from_root(chapter, path);
    if let Some(name) = file.strip_prefix("book/src/transcripts/") {
        let (demo, who) = name.strip_suffix(".txt")?.rsplit_once('.')?;
        let who = match who {
            "root" => "as root",
            "user" => "as an ordinary user (uid 65534)",
            _ => return None,
        };
        return Some(format!(
            "Output of <code>cargo run -p {demo}</code>, {who}: <code>{file}</code>"
        ));
    }
    if file.ends_with(".md") {
        return None;
    }
    Some(match selector {
        Some(anchor) if !anchor.chars().all(|c| c.is_ascii_digit() || c == ':') => {
            format!("Listing: <code>{file}</code> ({anchor})")
        }
        _ => format!("Listing: <code>{file}</code>"),
    })
}

/// A chapter with a caption above every fenced block that is one include.
pub fn caption(markdown: &str, chapter: &Path) -> String {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = String::with_capacity(markdown.len() + 1024);
    let mut in_fence = false;
    for (i, line) in lines.iter().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if fence && !in_fence {
            // A block of exactly one include: the fence, the include, the closing fence.
            let body = lines.get(i + 1).copied().unwrap_or_default();
            let closes = lines
                .get(i + 2)
                .is_some_and(|l| l.trim_start().starts_with("```"));
            let includes = parse_includes(body);
            let caption = match (includes.as_slice(), closes) {
                ([include], true) => caption_for(chapter, &include.path, include.selector.as_deref()),
                _ => None,
            };
            if let Some(caption) = caption {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(&format!("{indent}<p class=\"listing-caption\">{caption}</p>\n\n"));
            }
        }
        if fence {
            in_fence = !in_fence;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !markdown.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_listings_and_outputs() {
        let md = "Text.\n\n```rust,ignore\n{{#include ../../uts-demo/src/lib.rs:observe}}\n```\n\n\
                  ```text\n{{#include transcripts/uts-demo.root.txt}}\n```\n\n```console\n$ cargo run\n```\n";
        let out = caption(md, Path::new("uts.md"));
        assert!(
            out.contains(
                "<p class=\"listing-caption\">Listing: <code>uts-demo/src/lib.rs</code> (observe)</p>\n\n```rust,ignore\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("Output of <code>cargo run -p uts-demo</code>, as root: <code>book/src/transcripts/uts-demo.root.txt</code>"),
            "{out}"
        );
        assert_eq!(
            out.matches("listing-caption").count(),
            2,
            "a block that is not an include gets none"
        );
        assert!(out.ends_with("$ cargo run\n```\n"));
    }

    #[test]
    fn paths_are_shown_from_the_workspace_root() {
        assert_eq!(
            from_root(
                Path::new("exercises/uts.md"),
                "../../../exercises/uts/src/start/names.rs"
            ),
            "exercises/uts/src/start/names.rs"
        );
        assert_eq!(
            from_root(Path::new("mnt.md"), "../../mnt-demo/src/lab.rs"),
            "mnt-demo/src/lab.rs"
        );
    }

    #[test]
    fn walks_the_book_json_whatever_its_shape() {
        let mut book = serde_json::json!({
            "items": [
                {"Chapter": {"name": "UTS", "path": "uts.md",
                  "content": "```rust\n{{#include ../../a/src/lib.rs:x}}\n```\n",
                  "sub_items": [{"Chapter": {"path": "exercises/uts.md", "content": "```rust\n{{#include ../../../b.rs}}\n```\n"}}]}},
                "Separator"
            ]
        });
        caption_chapters(&mut book);
        let text = book.to_string();
        assert!(text.contains("Listing: <code>a/src/lib.rs</code> (x)"), "{text}");
        assert!(text.contains("Listing: <code>b.rs</code>"), "{text}");
    }
}
