//! `cargo xtask book --screenshots DIR`: every chapter of the built book as a new reader sees it, in
//! headless Chromium at a 1280 px window with the sidebar open, saved as one full-page PNG per chapter,
//! and checked in the browser's own layout rather than guessed from the Markdown:
//!
//! - no code block or recorded output is cut off or needs a sideways scroll, and a line too long for the
//!   column wraps between words, never inside one (the theme's `book/theme/fit.css` makes them wrap);
//! - every picture loaded, every figure the chapter's Markdown shows is on the page, and none is shrunk
//!   below the size its text was drawn at;
//! - no `{{#include}}` was left unexpanded.
//!
//! How: each page is copied with a small script injected (`screenshots.js`) that writes its verdict into
//! the page, which `chromium --headless --dump-dom` prints. A first run, in a reader's window, gives the
//! page's height; a second, in a window that tall, takes the picture (`--screenshot`) and prints the
//! verdict on the very layout it shows. Chromium's headless flags:
//! <https://developer.chrome.com/docs/automation-and-testing/headless-cli>.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::util::{self, is_root};

/// The window a reader opens the book in: wide enough for mdBook to show the sidebar beside the page.
pub const WINDOW_WIDTH: u32 = 1280;

/// The window's height while the page is checked; the screenshot's window is as tall as the page.
const CHECK_HEIGHT: u32 = 800;

/// How long, in the page's virtual time, Chromium lets the page run before it prints the DOM or takes
/// the picture: the book's own scripts, its web fonts and the check all finish well within it.
const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;

/// The browsers looked for in PATH, Debian's name first.
const BROWSERS: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

/// What the check found on one page.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The page's full height at [`WINDOW_WIDTH`], in CSS pixels.
    pub height: u32,
    /// Whether the sidebar was open, as mdBook decides for a reader who never touched it.
    pub sidebar: bool,
    /// Lines of code or output too long for the column, which wrapped between words.
    pub wrapped: u32,
    pub problems: Vec<Finding>,
}

/// One thing wrong on a page.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    /// `clipped`, `mid-word`, `image`, `diagram`, `include` or `page`.
    pub what: String,
    pub message: String,
    /// The first offending line of the block, where there is one.
    pub line: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.line {
            Some(line) => write!(f, "{}: {}", self.message, line.trim_end()),
            None => f.write_str(&self.message),
        }
    }
}

// ---- the book's pages -----------------------------------------------------------------------------

/// A page of the book: its Markdown under `book/src` and the HTML mdBook makes of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Chapter {
    pub markdown: PathBuf,
    pub html: PathBuf,
}

/// The chapters `SUMMARY.md` lists, in the book's order (a draft chapter, with no file, is left out).
pub fn chapters(summary: &str) -> Vec<Chapter> {
    summary
        .lines()
        .filter_map(|line| {
            let target = line.split_once("](")?.1.split_once(')')?.0.trim();
            let stem = target.strip_suffix(".md")?;
            Some(Chapter {
                markdown: PathBuf::from(target),
                html: PathBuf::from(format!("{stem}.html")),
            })
        })
        .collect()
}

/// The figures a chapter's Markdown shows: every `….svg` path with a `diagrams/` directory in it,
/// whether written as `<img src="…">` or `![…](…)`.
pub fn expected_diagrams(markdown: &str) -> Vec<String> {
    let is_delimiter = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '(' | ')' | '<' | '>');
    let mut found: Vec<String> = Vec::new();
    for (end, _) in markdown.match_indices(".svg") {
        let end = end + ".svg".len();
        let start = markdown[..end].rfind(is_delimiter).map_or(0, |i| i + 1);
        let path = &markdown[start..end];
        if path.contains("diagrams/") && !found.iter().any(|p| p == path) {
            found.push(path.to_owned());
        }
    }
    found
}

/// The page with the check injected before `</body>`, told which figures to expect.
pub fn inject(html: &str, expected: &[String]) -> String {
    let expected = serde_json::to_string(expected).expect("a list of strings is JSON");
    let script = format!(
        "<script>const XTASK_EXPECTED_DIAGRAMS = {expected};</script>\n<script>\n{}</script>\n",
        include_str!("screenshots.js")
    );
    let at = html.rfind("</body>").unwrap_or(html.len());
    format!("{}{script}{}", &html[..at], &html[at..])
}

/// The verdict the check wrote into the page, from the DOM Chromium printed.
pub fn read_verdict(dom: &str) -> anyhow::Result<Verdict> {
    const OPEN: &str = r#"<script type="application/json" id="xtask-verdict">"#;
    let start = dom
        .find(OPEN)
        .context("the page holds no verdict: its check did not run or did not finish")?
        + OPEN.len();
    let end = start
        + dom[start..]
            .find("</script>")
            .context("the verdict is not closed")?;
    let json: Value = serde_json::from_str(&dom[start..end]).context("the verdict is not JSON")?;
    let number = |key: &str| {
        json[key]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .with_context(|| format!("the verdict has no {key}"))
    };
    let text = |value: &Value, key: &str| value[key].as_str().map(str::to_owned);
    let problems = json["problems"]
        .as_array()
        .context("the verdict has no problems list")?
        .iter()
        .map(|p| {
            Ok(Finding {
                what: text(p, "what").context("a finding without its kind")?,
                message: text(p, "message").context("a finding without its message")?,
                line: text(p, "line"),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Verdict {
        height: number("height")?,
        sidebar: json["sidebar"].as_bool().context("the verdict has no sidebar")?,
        wrapped: number("wrapped")?,
        problems,
    })
}

// ---- Chromium -------------------------------------------------------------------------------------

/// Headless Chromium, each run with a new profile and home in a temporary directory: a new reader's
/// browser (mdBook remembers a closed sidebar in the profile's local storage), and nothing left behind.
pub struct Chromium {
    program: PathBuf,
}

impl Chromium {
    /// The browser in PATH, or `None`.
    pub fn find() -> Option<Chromium> {
        BROWSERS
            .iter()
            .find_map(|name| util::which(name))
            .map(|program| Chromium { program })
    }

    /// The browser, or the one line that says how to install it.
    pub fn require() -> anyhow::Result<Chromium> {
        Chromium::find()
            .context("headless Chromium is needed for the screenshots: sudo apt-get install chromium")
    }

    /// Loads `page` in a window [`WINDOW_WIDTH`] wide and `height` tall and returns what its injected
    /// check found.
    pub fn check(&self, page: &Path, height: u32) -> anyhow::Result<Verdict> {
        let dom = self.run(page, height, &["--dump-dom"])?;
        read_verdict(&dom).with_context(|| format!("checking {}", page.display()))
    }

    /// Saves `page` as a PNG [`WINDOW_WIDTH`] wide and `height` tall, the page's own height, so that
    /// one window holds all of it; returns the check's verdict on that same layout.
    pub fn screenshot(&self, page: &Path, height: u32, png: &Path) -> anyhow::Result<Verdict> {
        // Chromium writes the file itself and says so; a missing file is its only sign of failure.
        let _ = fs::remove_file(png);
        let dom = self.run(
            page,
            height,
            &["--dump-dom", &format!("--screenshot={}", png.display())],
        )?;
        if fs::metadata(png).map(|m| m.len()).unwrap_or(0) == 0 {
            bail!("chromium wrote no screenshot of {}", page.display());
        }
        read_verdict(&dom).with_context(|| format!("checking {}", page.display()))
    }

    fn run(&self, page: &Path, height: u32, action: &[&str]) -> anyhow::Result<String> {
        let scratch = tempfile::Builder::new()
            .prefix("xtask-chromium-")
            .tempdir()
            .context("cannot make a profile directory for chromium")?;
        let home = scratch.path();
        let mut cmd = Command::new(&self.program);
        // Besides its profile, Chromium writes its crash reports' settings under ~/.config and GTK's
        // under ~/.cache: a home of its own keeps those in the temporary directory too.
        cmd.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"));
        cmd.arg("--headless")
            .arg(format!("--user-data-dir={}", home.join("profile").display()))
            .arg(format!("--window-size={WINDOW_WIDTH},{height}"))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
            .arg("--no-first-run")
            .args(action);
        if is_root() {
            // Chromium refuses to start as root with its sandbox on: a root browser would keep every
            // privilege the sandbox exists to take away from the page's renderer. The pages are our own
            // book, read from disk, with no network; an ordinary user keeps the sandbox.
            cmd.arg("--no-sandbox");
        }
        let page = page
            .canonicalize()
            .with_context(|| format!("cannot find {}", page.display()))?;
        util::output(cmd.arg(file_url(&page)))
    }
}

/// A `file://` URL for an absolute path, with the characters a URL gives a meaning to escaped.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | ' ' | '#' | '?' | '"' => url.push_str(&format!("%{:02X}", c as u32)),
            c => url.push(c),
        }
    }
    url
}

// ---- the run --------------------------------------------------------------------------------------

/// `cargo xtask book [--check] --screenshots DIR`: the HTML built (Chromium is looked for first, so a
/// machine without it fails at once), then a PNG per chapter in `out`, named by its place in the book
/// (`02-uts.png`), and every chapter checked. Fails, after taking every picture, when any chapter has a
/// problem.
pub fn build_and_take(root: &Path, check_first: bool, out: &Path) -> anyhow::Result<()> {
    let chromium = Chromium::require()?;
    crate::book::build_html(root, check_first)?;
    let src = root.join("book/src");
    let summary = src.join("SUMMARY.md");
    let summary =
        fs::read_to_string(&summary).with_context(|| format!("cannot read {}", summary.display()))?;
    // The injected pages are copies in a directory of their own, beside the book's styles, scripts and
    // figures as the built book has them; the built book is left as mdBook wrote it.
    let scratch = tempfile::Builder::new()
        .prefix("xtask-screenshots-")
        .tempdir()
        .context("cannot make a scratch directory")?;
    let book = scratch.path().join("book");
    copy_dir(&root.join("book/build"), &book)?;
    fs::create_dir_all(out).with_context(|| format!("cannot make {}", out.display()))?;

    let started = Instant::now();
    let chapters = chapters(&summary);
    let mut failed = 0;
    for (index, chapter) in chapters.iter().enumerate() {
        let markdown = src.join(&chapter.markdown);
        let markdown =
            fs::read_to_string(&markdown).with_context(|| format!("cannot read {}", markdown.display()))?;
        let page = book.join(&chapter.html);
        let html = fs::read_to_string(&page)
            .with_context(|| format!("cannot read {}: build the book first", page.display()))?;
        fs::write(&page, inject(&html, &expected_diagrams(&markdown)))
            .with_context(|| format!("cannot write {}", page.display()))?;

        // Once in a reader's window, for the page's height; then in a window that tall, for the
        // picture, and the verdict on the layout the picture shows.
        let height = chromium.check(&page, CHECK_HEIGHT)?.height;
        let png = out.join(png_name(index + 1, &chapter.html));
        let mut verdict = chromium.screenshot(&page, height, &png)?;
        if verdict.height > height {
            verdict.problems.push(Finding {
                what: "page".into(),
                message: format!(
                    "the page grew from {height} to {} px in the screenshot's window, past the picture",
                    verdict.height
                ),
                line: None,
            });
        }
        report(&chapter.html, &png, &verdict);
        failed += usize::from(!verdict.problems.is_empty());
    }
    println!(
        "xtask: {} chapters in {} ({:.1} s)",
        chapters.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        bail!("{failed} of {} chapters have problems", chapters.len());
    }
    Ok(())
}

/// `exercises/uts.html`, 3rd in the book: `03-exercises-uts.png`.
fn png_name(place: usize, html: &Path) -> String {
    let stem = html.with_extension("").to_string_lossy().replace('/', "-");
    format!("{place:02}-{stem}.png")
}

fn report(html: &Path, png: &Path, verdict: &Verdict) {
    let name = png.file_name().unwrap_or_default().to_string_lossy();
    let sidebar = if verdict.sidebar { "" } else { ", sidebar closed" };
    let status = if verdict.problems.is_empty() {
        "ok"
    } else {
        "PROBLEMS"
    };
    println!(
        "xtask: {name:<34} {:>6} px, {:>2} long lines wrapped between words{sidebar}  {status}",
        verdict.height, verdict.wrapped
    );
    for finding in &verdict.problems {
        eprintln!("xtask: {}: {finding}", html.display());
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot make {}", to.display()))?;
    let entries = fs::read_dir(from)
        .with_context(|| format!("cannot list {}: build the book first", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            fs::copy(&source, &target)
                .with_context(|| format!("cannot copy {} to {}", source.display(), target.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_chapters_from_the_summary() {
        let summary = "# Summary\n\n[Introduction](intro.md)\n\n- [The UTS namespace](uts.md)\n  \
                       - [Exercises](exercises/uts.md)\n- [Draft]()\n\n---\n\n[Appendix](appendix-vm.md)\n";
        let html: Vec<_> = chapters(summary).into_iter().map(|c| c.html).collect();
        assert_eq!(
            html,
            ["intro.html", "uts.html", "exercises/uts.html", "appendix-vm.html"].map(PathBuf::from)
        );
        assert_eq!(
            png_name(3, Path::new("exercises/uts.html")),
            "03-exercises-uts.png"
        );
    }

    #[test]
    fn the_real_summary_lists_every_chapter_file() {
        let src = util::workspace_root().join("book/src");
        let summary = fs::read_to_string(src.join("SUMMARY.md")).unwrap();
        let chapters = chapters(&summary);
        assert!(chapters.len() > 10, "{chapters:?}");
        for chapter in chapters {
            assert!(src.join(&chapter.markdown).is_file(), "{chapter:?}");
        }
    }

    #[test]
    fn finds_the_figures_a_chapter_shows() {
        let md = "<img src=\"diagrams/a.svg\" alt=\"x\">\n![b](../diagrams/b.svg)\n\
                  <img src=\"diagrams/a.svg\" alt=\"again\">\n<img src=\"logo.svg\">";
        assert_eq!(expected_diagrams(md), ["diagrams/a.svg", "../diagrams/b.svg"]);
        assert_eq!(expected_diagrams("no figure here"), Vec::<String>::new());
    }

    #[test]
    fn injects_before_the_end_of_the_body() {
        let page = inject(
            "<html><body><main>x</main></body></html>",
            &["diagrams/a.svg".into()],
        );
        let at = page
            .find("XTASK_EXPECTED_DIAGRAMS = [\"diagrams/a.svg\"]")
            .unwrap();
        assert!(page.find("<main>").unwrap() < at && at < page.find("</body>").unwrap());
        assert!(page.contains("xtask-verdict"), "the check itself is in the page");
    }

    #[test]
    fn reads_a_verdict_and_refuses_a_page_without_one() {
        let dom = concat!(
            r#"<body><script type="application/json" id="xtask-verdict">"#,
            r#"{"height":900,"sidebar":true,"wrapped":2,"#,
            r#""problems":[{"what":"clipped","message":"too wide","line":"a \u003c b"}]}"#,
            "</script></body>",
        );
        assert_eq!(
            read_verdict(dom).unwrap(),
            Verdict {
                height: 900,
                sidebar: true,
                wrapped: 2,
                problems: vec![Finding {
                    what: "clipped".into(),
                    message: "too wide".into(),
                    line: Some("a < b".into()),
                }],
            }
        );
        let error = read_verdict("<body></body>").unwrap_err().to_string();
        assert!(error.contains("no verdict"), "{error}");
    }

    #[test]
    fn escapes_what_a_url_would_read_otherwise() {
        assert_eq!(
            file_url(Path::new("/tmp/a b#c/ch.html")),
            "file:///tmp/a%20b%23c/ch.html"
        );
    }

    // ---- in Chromium ------------------------------------------------------------------------------

    /// The browser, or `None` after saying why the test does nothing: Chromium is a tool to install,
    /// not a privilege, so its absence skips these tests everywhere.
    fn chromium(test: &str) -> Option<Chromium> {
        let found = Chromium::find();
        if found.is_none() {
            eprintln!("skipped {test}: chromium is not installed (sudo apt-get install chromium)");
        }
        found
    }

    /// A page in a scratch directory, with a figure beside it: `diagrams/fig.svg`, `figure_width` px wide.
    fn scratch_page(style: &str, body: &str, figure_width: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new().prefix("xtask-shots-").tempdir().unwrap();
        fs::create_dir(dir.path().join("diagrams")).unwrap();
        let (w, h) = (figure_width, 100);
        let svg = r#"xmlns="http://www.w3.org/2000/svg""#;
        let figure = format!(r#"<svg {svg} width="{w}" height="{h}"><rect width="{w}" height="{h}"/></svg>"#);
        fs::write(dir.path().join("diagrams/fig.svg"), figure).unwrap();
        let page = dir.path().join("ch.html");
        let html = format!(
            "<!DOCTYPE html>\n<html><head><style>{style}</style></head>\n\
             <body><main>{body}</main></body></html>"
        );
        fs::write(&page, html).unwrap();
        (dir, page)
    }

    fn check(chromium: &Chromium, page: &Path, expected: &[&str]) -> Verdict {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        fs::write(page, inject(&fs::read_to_string(page).unwrap(), &expected)).unwrap();
        chromium.check(page, CHECK_HEIGHT).unwrap()
    }

    fn found<'a>(verdict: &'a Verdict, what: &str) -> Vec<&'a Finding> {
        verdict.problems.iter().filter(|p| p.what == what).collect()
    }

    /// A column 55 characters wide, code blocks as mdBook lays them out (`pre > code` a block).
    const NARROW: &str = "main { font: 13px monospace; width: 55ch } pre, code { font: inherit; margin: 0 } \
                          pre > code { display: block }";

    /// How the book's theme wraps (book/theme/fit.css), without the script that keeps words whole.
    const WRAPPING: &str = "white-space: pre-wrap; overflow-wrap: anywhere";

    #[test]
    fn flags_a_clipped_line_a_word_cut_a_missing_figure_and_an_unexpanded_include() {
        let test = "flags_a_clipped_line_a_word_cut_a_missing_figure_and_an_unexpanded_include";
        let Some(chromium) = chromium(test) else {
            return;
        };
        let long = "[host ] this line is far wider than a column of 55 characters, so it scrolls";
        let path = "/sys/fs/cgroup/memory/cgroup-demo-26347/inner";
        let cell = "a_table_cell_too_wide_for_the_column_whatever_the_browser_may_do_with_it";
        let body = [
            format!("<pre><code>short\n{long}\n</code></pre>"),
            // 58 columns: the browser breaks the line after "demo-", the last hyphen that fits.
            format!("<pre style=\"{WRAPPING}\"><code>[host ] made {path}</code></pre>"),
            format!("<div class=\"table-wrapper\"><table><tr><td>{cell}</td></tr></table></div>"),
            "<img src=\"diagrams/fig.svg\"><img src=\"diagrams/gone.svg\">".into(),
            "<p>{{#include ../../demo/src/lib.rs:step}}</p>".into(),
        ]
        .concat();
        let style = format!("{NARROW} pre, .table-wrapper {{ overflow-x: auto }}");
        let (_dir, page) = scratch_page(&style, &body, 300);
        let verdict = check(&chromium, &page, &["diagrams/fig.svg", "diagrams/elsewhere.svg"]);

        let clipped: Vec<_> = found(&verdict, "clipped")
            .iter()
            .map(|f| f.line.clone())
            .collect();
        assert_eq!(
            clipped,
            [Some(long.into()), Some(cell.into())],
            "the first line too wide: {verdict:?}"
        );
        let cut = found(&verdict, "mid-word");
        assert_eq!(cut.len(), 1, "{verdict:?}");
        assert!(cut[0].message.contains(path), "{cut:?}");
        let images: Vec<_> = found(&verdict, "image")
            .iter()
            .map(|f| f.message.clone())
            .collect();
        assert_eq!(images, ["diagrams/gone.svg did not load"], "{verdict:?}");
        let diagrams = found(&verdict, "diagram");
        assert_eq!(diagrams.len(), 1, "{verdict:?}");
        assert!(
            diagrams[0].message.starts_with("diagrams/elsewhere.svg,"),
            "{diagrams:?}"
        );
        let include = found(&verdict, "include");
        assert_eq!(include.len(), 1, "{verdict:?}");
        assert_eq!(
            include[0].line.as_deref(),
            Some("{{#include ../../demo/src/lib.rs:step}}")
        );
    }

    #[test]
    fn passes_a_page_that_fits_and_counts_the_lines_wrapped_between_words() {
        let test = "passes_a_page_that_fits_and_counts_the_lines_wrapped_between_words";
        let Some(chromium) = chromium(test) else {
            return;
        };
        let words = "[host ] a line of words that is too long for the column, so it wraps between two";
        let body = [
            "<pre><code>fn main() {}\n</code></pre>".into(),
            format!("<pre style=\"{WRAPPING}\"><code>{words}</code></pre>"),
            "<div class=\"table-wrapper\"><table><tr><td>a cell</td></tr></table></div>".into(),
            "<img src=\"diagrams/fig.svg\">".into(),
        ]
        .concat();
        let (_dir, page) = scratch_page(NARROW, &body, 300);
        let verdict = check(&chromium, &page, &["diagrams/fig.svg"]);
        assert_eq!(verdict.problems, [], "{verdict:?}");
        assert_eq!(verdict.wrapped, 1, "{verdict:?}");
    }

    #[test]
    fn flags_a_figure_shrunk_below_its_drawn_size() {
        let Some(chromium) = chromium("flags_a_figure_shrunk_below_its_drawn_size") else {
            return;
        };
        let (_dir, page) = scratch_page(
            &format!("{NARROW} main {{ width: 400px }} img {{ max-width: 100% }}"),
            "<img src=\"diagrams/fig.svg\">",
            800,
        );
        let verdict = check(&chromium, &page, &["diagrams/fig.svg"]);
        let images = found(&verdict, "image");
        assert_eq!(images.len(), 1, "{verdict:?}");
        assert!(
            images[0].message.contains("is shown at 50% of its size"),
            "{images:?}"
        );
    }

    /// The book's own theme: with words.js, a long line of recorded output wraps before a hyphenated
    /// path, not inside it; the same line in a block the script leaves alone is cut at the hyphen.
    #[test]
    fn the_theme_keeps_a_hyphenated_word_of_output_whole() {
        let Some(chromium) = chromium("the_theme_keeps_a_hyphenated_word_of_output_whole") else {
            return;
        };
        let theme = util::workspace_root().join("book/theme");
        // 60 columns in a column of 55: the break falls after "demo-", unless the path moves whole.
        let line = "[host ] cgroup:[4026531835] made /cg/cgroup-demo-26347/inner";
        let body = format!(
            "<pre><code class=\"language-text\">{line}</code></pre>\
             <pre><code class=\"language-console\">{line}</code></pre>\
             <script src=\"{}\"></script>",
            file_url(&theme.join("words.js"))
        );
        let style = format!("{NARROW}\n{}", fs::read_to_string(theme.join("fit.css")).unwrap());
        let (_dir, page) = scratch_page(&style, &body, 300);
        let verdict = check(&chromium, &page, &[]);
        assert_eq!(verdict.wrapped, 2, "{verdict:?}");
        let cut = found(&verdict, "mid-word");
        assert_eq!(cut.len(), 1, "only the block words.js leaves alone: {verdict:?}");
        assert_eq!(verdict.problems.len(), 1, "{verdict:?}");
    }

    #[test]
    fn a_screenshot_is_the_window_the_page_is_measured_in() {
        let Some(chromium) = chromium("a_screenshot_is_the_window_the_page_is_measured_in") else {
            return;
        };
        let (dir, page) = scratch_page(
            "body { margin: 0 } main { height: 1500px }",
            "<div>a tall page</div>",
            100,
        );
        let height = check(&chromium, &page, &[]).height;
        assert_eq!(height, 1500);
        let png = dir.path().join("ch.png");
        let verdict = chromium.screenshot(&page, height, &png).unwrap();
        assert_eq!(verdict.height, height);
        // A PNG's size: width and height, big-endian, at bytes 16..24 (its IHDR chunk).
        let bytes = fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (WINDOW_WIDTH, height));
    }
}
