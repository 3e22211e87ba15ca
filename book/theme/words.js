// Recorded output wider than the column wraps (theme/fit.css), and a browser may break a line after any
// hyphen, so a path such as /sys/fs/cgroup/cgroup-demo-26347/inner would be cut in two at the end of a
// line. Each word of recorded output (a `text` block) that holds a hyphen is put in a span that
// fit.css keeps whole, so that a line wraps between words. The text itself is unchanged: copying it
// gives what the demo printed. This runs after mdBook's book.js has highlighted the code blocks, which
// for `text` blocks leaves plain text.
(() => {
    "use strict";
    for (const code of document.querySelectorAll("pre > code.language-text")) {
        const text = code.textContent;
        if (!/\S-|-\S/.test(text)) continue;
        const words = document.createDocumentFragment();
        // Split on runs of non-blanks, keeping them: words at odd indices, the blanks between at even.
        text.split(/(\S+)/).forEach((part, i) => {
            if (i % 2 === 1 && part.includes("-")) {
                const word = document.createElement("span");
                word.className = "word";
                word.textContent = part;
                words.append(word);
            } else {
                words.append(part);
            }
        });
        code.replaceChildren(words);
    }
})();
