//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does (the
//! cargo-xtask pattern). Each subcommand lives in its own module.

mod bench;
mod book;
mod ci;
mod conformance;
mod diagrams;
mod dist;
mod engines;
mod exercise;
mod listings;
mod rootfs;
mod screenshots;
mod tidy;
mod util;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Automation for the namespaces course")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything CI checks: fmt, clippy, tests (as root with NS_REQUIRE_PRIV=1, then as an
    /// unprivileged user), book-check.
    Ci,
    /// Builds the book's HTML into book/build (installs mdBook with cargo if missing).
    Book {
        /// Run book-check first (every demo, as root and as uid 65534 when root), and build only if it
        /// passes.
        #[arg(long)]
        check: bool,
        /// Then render every chapter in headless Chromium at a 1280 px window, save a full-page PNG of
        /// each in DIR, and fail on a clipped line, a missing figure or an unexpanded include.
        #[arg(long, value_name = "DIR")]
        screenshots: Option<std::path::PathBuf>,
    },
    /// Fails when a book include points at a missing file or anchor, a recorded demo output no
    /// longer matches what the demo prints, or a figure is not what `diagrams` would draw.
    BookCheck,
    /// Draws the book's figures (book/src/diagrams/*.svg) from their descriptions in book/diagrams and
    /// from the demos' recorded output.
    Diagrams {
        /// Print the description a figure is drawn from (generated, for a figure made from a transcript).
        #[arg(long, value_name = "NAME")]
        print: Option<String>,
    },
    /// Lists the exercises; with a NAME, runs its test on your version (`--solution`: on the solution;
    /// `--reset`: puts your starting point back as committed).
    Exercise(exercise::Options),
    /// The book's mdBook preprocessor (book.toml runs it): a caption above every included listing and
    /// recorded output, naming its file.
    #[command(hide = true)]
    MdbookListings {
        /// `supports RENDERER`, when mdBook asks.
        args: Vec<String>,
    },
    /// Re-records every demo's output into book/src/transcripts (as this user, and as 65534 when root),
    /// and redraws the figures drawn from them.
    Transcripts,
    /// Builds combined as it is shipped: a static binary, size-optimized with LTO
    /// (target/<host triple>/dist/combined).
    Dist,
    /// Records with perf which functions a container's start runs, into combined/link-order.txt,
    /// which `dist` lays out side by side (fewer pages touched per start).
    LinkOrder,
    /// Builds a busybox root filesystem (from Debian's busybox-static) for `combined run --rootfs`.
    Rootfs {
        /// Where to build it (default: target/busybox-rootfs).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Boots a Linux kernel in QEMU and runs every test binary inside it, as root with
    /// NS_REQUIRE_PRIV=1 and as uid 65534 with NS_REQUIRE_PRIV=userns (installs QEMU and a kernel
    /// with apt-get when root on Debian/Ubuntu and they are missing).
    TestVm(vm::Options),
    /// Times `combined run` against unshare, bubblewrap, crun, runc and the kernel floor (see BENCHMARKS.md).
    Bench(bench::Options),
    /// Fails when the tree breaks an invariant of ARCHITECTURE.md that code can check: a chapter
    /// depending on another, a file without its `//!` header, `unsafe` without `// SAFETY:`, a
    /// privilege gate given another test's name, a book include by line number.
    Tidy,
    /// Runs the OCI runtime spec's validation suite (opencontainers/runtime-tools) against combined, runc
    /// and crun, and prints their results side by side (see CONFORMANCE.md).
    Conformance(conformance::Options),
    /// Runs podman, docker, containerd and Kubernetes' CRI (containerd's CRI plugin, driven by crictl)
    /// on combined as their OCI runtime, scenario by scenario (root; installs the engines with apt-get).
    Engines(engines::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = util::workspace_root();
    match cli.command {
        Command::Ci => ci::run(&root),
        Command::Book {
            check,
            screenshots: None,
        } => book::build_html(&root, check),
        Command::Book {
            check,
            screenshots: Some(dir),
        } => screenshots::build_and_take(&root, check, &dir),
        Command::BookCheck => book::check(&root),
        Command::Diagrams { print: None } => diagrams::generate(&root),
        Command::Diagrams { print: Some(name) } => diagrams::print(&root, &name),
        Command::Exercise(options) => exercise::run(&root, &options),
        Command::MdbookListings { args } => listings::run(&args),
        Command::Transcripts => book::record_transcripts(&root),
        Command::Dist => dist::run(&root),
        Command::LinkOrder => dist::record_link_order(&root),
        Command::Rootfs { out } => rootfs::build(&root, out).map(drop),
        Command::TestVm(options) => vm::run(&root, &options),
        Command::Bench(options) => bench::run(&root, &options),
        Command::Tidy => tidy::run(&root),
        Command::Conformance(options) => conformance::run(&root, &options),
        Command::Engines(options) => engines::run(&root, &options),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
