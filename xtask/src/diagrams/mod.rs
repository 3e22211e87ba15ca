//! `cargo xtask diagrams`: the course's figures, drawn as SVG by our own code from text kept in the
//! repository, so that a figure is reviewed, diffed and regenerated like the code it explains.
//!
//! Two sources: the hand-written descriptions in `book/diagrams/*.txt` (a box diagram, `boxes.rs`, or a
//! sequence diagram, `sequence.rs`), and the demos' recorded output in `book/src/transcripts`, for the
//! figures whose facts a demo already knows (`from_demos.rs`). Every figure is written to
//! `book/src/diagrams/<name>.svg`, which the chapters show with `<img src="diagrams/<name>.svg" alt=...>`.
//! `book-check` regenerates them all and fails when a committed file differs, when a figure does not
//! fit the book's column or a label covers a box, and when a chapter shows one without alt text.

pub mod boxes;
pub mod from_demos;
pub mod sequence;
pub mod svg;
pub mod text;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::book::Problem;

/// The widest a figure may be: mdBook's content column (`--content-max-width`), so that no figure is
/// shrunk below the size its text was drawn at.
pub const MAX_WIDTH: i32 = 750;

/// A figure drawn from a demo's transcript.
struct FromDemo {
    name: &'static str,
    transcript: &'static str,
    draw: fn(&str) -> anyhow::Result<String>,
}

const FROM_DEMOS: &[FromDemo] = &[
    FromDemo {
        name: "pid-tree",
        transcript: "pid-demo.user.txt",
        draw: from_demos::pid_tree,
    },
    FromDemo {
        name: "veth-pair",
        transcript: "net-demo.user.txt",
        draw: from_demos::veth,
    },
    FromDemo {
        name: "mount-leak",
        transcript: "mnt-demo.root.txt",
        draw: from_demos::propagation,
    },
];

/// One figure: its name and the text of its description.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    /// Where the description came from, for messages.
    pub origin: PathBuf,
    pub text: String,
}

fn descriptions_dir(root: &Path) -> PathBuf {
    root.join("book/diagrams")
}

fn output_dir(root: &Path) -> PathBuf {
    root.join("book/src/diagrams")
}

/// Every figure's description, hand-written ones first, each list sorted by name.
pub fn sources(root: &Path) -> anyhow::Result<Vec<Source>> {
    let mut found = Vec::new();
    let dir = descriptions_dir(root);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    files.sort();
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("a description's name is not UTF-8")?
            .to_owned();
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        found.push(Source {
            name,
            origin: path,
            text,
        });
    }
    for figure in FROM_DEMOS {
        let path = root.join("book/src/transcripts").join(figure.transcript);
        let transcript =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = (figure.draw)(&transcript)
            .with_context(|| format!("cannot draw {} from {}", figure.name, path.display()))?;
        found.push(Source {
            name: figure.name.to_owned(),
            origin: path,
            text,
        });
    }
    Ok(found)
}

/// A figure's SVG, and what makes it hard to read.
pub fn draw(source: &Source) -> anyhow::Result<(String, Vec<String>)> {
    let kind = text::lines(&source.text)?
        .first()
        .map(|l| l.text.to_owned())
        .unwrap_or_default();
    let (svg, mut problems) = match kind.as_str() {
        "diagram boxes" => {
            let d = boxes::parse(&source.text)?;
            (boxes::render(&d), boxes::legibility_problems(&d))
        }
        "diagram sequence" => (sequence::render(&sequence::parse(&source.text)?), Vec::new()),
        _ => bail!("a description starts with `diagram boxes` or `diagram sequence`"),
    };
    let width = svg_width(&svg);
    if width > MAX_WIDTH {
        problems.push(format!(
            "{width} px wide: more than the book's column, {MAX_WIDTH} px"
        ));
    }
    Ok((svg, problems))
}

/// The width an SVG of ours declares.
fn svg_width(svg: &str) -> i32 {
    svg.split("width=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `cargo xtask diagrams`: writes every figure, and removes the SVGs no description makes any more.
pub fn generate(root: &Path) -> anyhow::Result<()> {
    let out = output_dir(root);
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    for source in sources(root)? {
        let (svg, problems) = draw(&source).with_context(|| format!("{}", source.origin.display()))?;
        for problem in &problems {
            eprintln!("xtask: warning: {}: {problem}", source.name);
        }
        let path = out.join(format!("{}.svg", source.name));
        fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "xtask: drew {}",
            path.strip_prefix(root).unwrap_or(&path).display()
        );
        written.push(path);
    }
    for stale in svg_files(&out)?.into_iter().filter(|p| !written.contains(p)) {
        fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
        println!("xtask: removed {}, which no description draws", stale.display());
    }
    Ok(())
}

/// `cargo xtask diagrams --print NAME`: the description a figure is drawn from (for the ones made
/// from a transcript, the text generated from it).
pub fn print(root: &Path, name: &str) -> anyhow::Result<()> {
    let source = sources(root)?
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no figure is called {name}"))?;
    print!("{}", source.text);
    Ok(())
}

fn svg_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    found.retain(|p| p.extension().is_some_and(|e| e == "svg"));
    found.sort();
    Ok(found)
}

/// What `book-check` reports about the figures: out of date, missing, unused, illegible, or shown
/// without alt text.
pub fn problems(root: &Path) -> anyhow::Result<Vec<Problem>> {
    let out = output_dir(root);
    let mut problems = Vec::new();
    let mut names = Vec::new();
    for source in sources(root)? {
        let path = out.join(format!("{}.svg", source.name));
        let problem = |message: String| Problem {
            file: path.clone(),
            message,
        };
        names.push(source.name.clone());
        let (svg, illegible) = match draw(&source) {
            Ok(drawn) => drawn,
            Err(e) => {
                problems.push(problem(format!(
                    "cannot be drawn from {}: {e:#}",
                    source.origin.display()
                )));
                continue;
            }
        };
        problems.extend(
            illegible
                .into_iter()
                .map(|p| problem(format!("hard to read: {p}"))),
        );
        match fs::read_to_string(&path) {
            Ok(committed) if committed == svg => {}
            Ok(_) => problems.push(problem(format!(
                "no longer what {} draws (run cargo xtask diagrams)",
                source
                    .origin
                    .strip_prefix(root)
                    .unwrap_or(&source.origin)
                    .display()
            ))),
            Err(_) => problems.push(problem("missing (run cargo xtask diagrams)".into())),
        }
    }
    for stale in svg_files(&out)? {
        let name = stale.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if !names.iter().any(|n| n == name) {
            problems.push(Problem {
                file: stale.clone(),
                message: "no description draws it (run cargo xtask diagrams)".into(),
            });
        }
    }
    problems.extend(image_problems(&root.join("book/src"), &names)?);
    Ok(problems)
}

/// An `<img>` in a chapter: where it points and its alt text.
#[derive(Debug, PartialEq, Eq)]
pub struct Image {
    pub src: String,
    pub alt: Option<String>,
}

/// The `<img ...>` tags of a chapter.
pub fn images(markdown: &str) -> Vec<Image> {
    let attribute = |tag: &str, name: &str| {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[at..].find('"')?;
        Some(tag[at..at + end].to_owned())
    };
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("<img ") {
        let tag_end = rest[start..].find('>').map_or(rest.len(), |e| start + e);
        let tag = &rest[start..tag_end];
        found.push(Image {
            src: attribute(tag, "src").unwrap_or_default(),
            alt: attribute(tag, "alt"),
        });
        rest = &rest[tag_end..];
    }
    found
}

/// Every figure shown by a chapter, with alt text; every figure drawn is shown somewhere.
fn image_problems(src: &Path, names: &[String]) -> anyhow::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let mut shown = Vec::new();
    let mut chapters: Vec<PathBuf> = fs::read_dir(src)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    chapters.retain(|p| p.extension().is_some_and(|e| e == "md"));
    chapters.sort();
    for chapter in chapters {
        let text = fs::read_to_string(&chapter)?;
        for image in images(&text) {
            let problem = |message: String| Problem {
                file: chapter.clone(),
                message,
            };
            if !src.join(&image.src).is_file() {
                problems.push(problem(format!("shows {}, which does not exist", image.src)));
            }
            if image.alt.as_deref().is_none_or(|a| a.trim().is_empty()) {
                problems.push(problem(format!("shows {} without alt text", image.src)));
            }
            shown.push(image.src);
        }
    }
    for name in names {
        if !shown.contains(&format!("diagrams/{name}.svg")) {
            problems.push(Problem {
                file: src.join("diagrams").join(format!("{name}.svg")),
                message: "no chapter shows it".into(),
            });
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util;

    #[test]
    fn finds_images_and_their_alt_text() {
        let md = "a <img src=\"diagrams/a.svg\" alt=\"A thing\"> b\n<img src=\"x.svg\">";
        assert_eq!(
            images(md),
            [
                Image {
                    src: "diagrams/a.svg".into(),
                    alt: Some("A thing".into())
                },
                Image {
                    src: "x.svg".into(),
                    alt: None
                }
            ]
        );
    }

    #[test]
    fn the_committed_figures_are_up_to_date_and_legible() {
        let root = util::workspace_root();
        let problems = problems(&root).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn an_edited_description_makes_the_check_fail() {
        let root = util::workspace_root();
        let scratch = tempfile::Builder::new()
            .prefix("xtask-diagrams-")
            .tempdir()
            .unwrap();
        let copy = scratch.path();
        util::run(
            std::process::Command::new("cp")
                .arg("-r")
                .arg(root.join("book"))
                .arg(copy),
        )
        .unwrap();
        assert!(problems(copy).unwrap().is_empty());
        let description = descriptions_dir(copy).join("pivot-root.txt");
        let text = fs::read_to_string(&description).unwrap();
        fs::write(&description, text.replace("title:", "title: changed,")).unwrap();
        let found = problems(copy).unwrap();
        assert!(
            found.iter().any(|p| p.message.contains("no longer what")),
            "{found:?}"
        );
        generate(copy).unwrap();
        assert!(problems(copy).unwrap().is_empty());
    }

    #[test]
    fn every_figure_fits_the_column() {
        for source in sources(&util::workspace_root()).unwrap() {
            let (svg, _) = draw(&source).unwrap();
            assert!(
                svg_width(&svg) <= MAX_WIDTH,
                "{} is {} px wide",
                source.name,
                svg_width(&svg)
            );
            assert!(svg.contains("<title") && svg.contains("<desc"), "{}", source.name);
        }
    }
}
