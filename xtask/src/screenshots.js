// The check `cargo xtask book --screenshots` injects into a copy of each chapter's page (see
// screenshots.rs). It runs in headless Chromium once the page, its images and its fonts have loaded, reads
// the browser's own layout, and writes its verdict as JSON into a `<script type="application/json"
// id="xtask-verdict">` element, which `--dump-dom` prints. It changes nothing a reader would see.
//
// xtask defines XTASK_EXPECTED_DIAGRAMS before this script: the figures the chapter's Markdown shows.
(() => {
    "use strict";

    // A pixel of slack: layout sizes are fractional, scrollWidth and clientWidth are rounded.
    const SLACK = 1;

    // The text of `element` as one string, and a way to make a Range over any part of it: highlighted
    // code is split into many text nodes (one per token), while lines and words are spans of the whole.
    function textOf(element) {
        const nodes = [];
        let text = "";
        const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            nodes.push({ node, start: text.length });
            text += node.data;
        }
        // The text node an offset falls in: the last one starting at or before it.
        function at(offset) {
            let low = 0;
            let high = nodes.length - 1;
            while (low < high) {
                const mid = Math.ceil((low + high) / 2);
                if (nodes[mid].start <= offset) low = mid;
                else high = mid - 1;
            }
            return { node: nodes[low].node, offset: offset - nodes[low].start };
        }
        function range(start, end) {
            const r = document.createRange();
            const a = at(start);
            const b = at(end);
            r.setStart(a.node, a.offset);
            r.setEnd(b.node, b.offset);
            return r;
        }
        return { text, range };
    }

    // Each line of `element`'s text with its offsets, leaving out empty ones.
    function linesOf(text) {
        const lines = [];
        let start = 0;
        for (const line of text.split("\n")) {
            if (line.trim() !== "") lines.push({ line, start, end: start + line.length });
            start += line.length + 1;
        }
        return lines;
    }

    // The rows a range is laid out on: its boxes' tops, told apart by more than a pixel. A hidden line
    // (mdBook's hidden Rust lines) has none.
    function rows(range) {
        const tops = [];
        for (const rect of range.getClientRects()) {
            if (rect.width === 0 && rect.height === 0) continue;
            if (!tops.some((top) => Math.abs(top - rect.top) <= SLACK)) tops.push(rect.top);
        }
        return tops.length;
    }

    function rightEdge(range) {
        let right = -Infinity;
        for (const rect of range.getClientRects()) right = Math.max(right, rect.right);
        return right;
    }

    // Where an element's visible content ends: its left edge, border and client width.
    function visibleRight(element) {
        return element.getBoundingClientRect().left + element.clientLeft + element.clientWidth;
    }

    function overflows(element) {
        return (
            element.scrollWidth > element.clientWidth + SLACK ||
            element.scrollHeight > element.clientHeight + SLACK
        );
    }

    const problems = [];
    let wrapped = 0;
    const main = document.querySelector("main");

    function problem(what, message, line) {
        problems.push({ what, message, line: line === undefined ? null : line });
    }

    // (a) Code and recorded output: nothing scrolls or is cut off, and a line too long for the column
    // wraps between words, never inside one.
    function checkCode(pre) {
        const code = pre.querySelector("code") || pre;
        const { text, range } = textOf(code);
        const lines = linesOf(text);
        const clipped = [pre, code].find(overflows);
        if (clipped) {
            const limit = visibleRight(clipped);
            const first = lines.find((l) => rightEdge(range(l.start, l.end)) > limit + SLACK);
            problem(
                "clipped",
                "a code block is wider than the column and scrolls or is cut off",
                (first || lines[0] || { line: "" }).line,
            );
        }
        for (const l of lines) {
            if (rows(range(l.start, l.end)) < 2) continue;
            wrapped++;
            const word = /\S+/g;
            for (let m = word.exec(l.line); m; m = word.exec(l.line)) {
                const start = l.start + m.index;
                if (rows(range(start, start + m[0].length)) > 1) {
                    problem("mid-word", `a line wraps inside the word "${m[0]}"`, l.line);
                    break;
                }
            }
        }
    }

    // Tables: mdBook lets a wide one scroll sideways inside its wrapper, out of sight.
    function checkTable(wrapper) {
        if (!overflows(wrapper)) return;
        const limit = visibleRight(wrapper);
        const row = [...wrapper.querySelectorAll("tr")].find(
            (tr) => tr.getBoundingClientRect().right > limit + SLACK,
        );
        const text = row ? row.innerText.replace(/\s+/g, " ").trim() : undefined;
        problem("clipped", "a table is wider than the column and scrolls", text);
    }

    // (b) Every picture loaded, every figure the Markdown shows is on the page, and none is shrunk
    // below the size its text was drawn at.
    function checkImages() {
        const images = [...main.querySelectorAll("img")];
        for (const img of images) {
            const src = img.getAttribute("src");
            if (!img.complete || img.naturalWidth === 0) {
                problem("image", `${src} did not load`);
            } else if (img.getBoundingClientRect().width < img.naturalWidth - SLACK) {
                const percent = Math.round((100 * img.getBoundingClientRect().width) / img.naturalWidth);
                problem("image", `${src} is shown at ${percent}% of its size, its text smaller than drawn`);
            }
        }
        for (const expected of XTASK_EXPECTED_DIAGRAMS) {
            const url = new URL(expected, document.baseURI).href;
            if (!images.some((img) => img.src === url)) {
                problem("diagram", `${expected}, which the chapter's Markdown shows, is not on the page`);
            }
        }
    }

    // (c) Every include expanded: mdBook leaves a directive it could not read as it was written.
    function checkIncludes() {
        // innerText, not textContent: the text as laid out, a block's lines apart from the next block's.
        const line = main.innerText.split("\n").find((l) => l.includes("{{#"));
        if (line !== undefined) problem("include", "an include was left unexpanded", line.trim());
    }

    function verdict() {
        if (!main) {
            problem("page", "the page has no <main>: not an mdBook chapter");
        } else {
            main.querySelectorAll("pre").forEach(checkCode);
            main.querySelectorAll(".table-wrapper").forEach(checkTable);
            checkImages();
            checkIncludes();
        }
        const out = document.createElement("script");
        out.type = "application/json";
        out.id = "xtask-verdict";
        // `<` escaped, so no text from the page can end this element early.
        out.textContent = JSON.stringify({
            height: Math.ceil(document.documentElement.scrollHeight),
            sidebar: document.documentElement.classList.contains("sidebar-visible"),
            wrapped,
            problems,
        }).replace(/</g, "\\u003c");
        document.body.appendChild(out);
    }

    window.addEventListener("load", () => document.fonts.ready.then(verdict));
})();
