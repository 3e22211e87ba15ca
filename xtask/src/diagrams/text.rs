//! Reading the diagrams' text: lines with their indentation, comments dropped, and the words,
//! quoted labels and `key=value` options a line is made of.

use std::collections::HashMap;

use anyhow::{Context, bail};

/// A line that means something: not blank, not a `#` comment.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Counted from 1, as an editor shows it.
    pub number: usize,
    pub indent: usize,
    pub text: &'a str,
}

/// The lines of a diagram's text. Indentation is spaces only.
pub fn lines(text: &str) -> anyhow::Result<Vec<Line<'_>>> {
    let mut found = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.starts_with('\t') {
            bail!("line {}: indent with spaces, not tabs", i + 1);
        }
        let text = trimmed.trim_end();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        found.push(Line {
            number: i + 1,
            indent: raw.len() - trimmed.len(),
            text,
        });
    }
    Ok(found)
}

/// A label's lines: `\n` in the quoted text breaks it.
pub fn split_label(label: &str) -> Vec<String> {
    if label.is_empty() {
        return Vec::new();
    }
    label.split('\n').map(str::to_owned).collect()
}

/// The tokens of one line: bare words, `"quoted labels"` (with `\"`, `\\` and `\n`), `key=value`.
#[derive(Debug)]
pub struct Tokens {
    tokens: std::collections::VecDeque<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
}

impl Tokens {
    pub fn new(line: &str) -> anyhow::Result<Tokens> {
        let mut tokens = std::collections::VecDeque::new();
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c == ' ' {
                chars.next();
            } else if c == '"' {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => bail!("a quote is not closed"),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some(c @ ('"' | '\\')) => s.push(c),
                            other => {
                                bail!("unknown escape \\{}", other.map(String::from).unwrap_or_default())
                            }
                        },
                        Some(c) => s.push(c),
                    }
                }
                tokens.push_back(Token::Quoted(s));
            } else {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                tokens.push_back(Token::Word(s));
            }
        }
        Ok(Tokens { tokens })
    }

    /// The next bare word.
    pub fn word(&mut self) -> anyhow::Result<String> {
        match self.tokens.pop_front() {
            Some(Token::Word(w)) => Ok(w),
            Some(Token::Quoted(q)) => bail!("expected a word, found the label {q:?}"),
            None => bail!("the line ends too early"),
        }
    }

    /// The next quoted label.
    pub fn quoted(&mut self) -> anyhow::Result<String> {
        match self.tokens.pop_front() {
            Some(Token::Quoted(q)) => Ok(q),
            Some(Token::Word(w)) => bail!("expected a \"quoted label\", found {w:?}"),
            None => bail!("expected a \"quoted label\" and the line ends"),
        }
    }

    pub fn peek_quoted(&self) -> bool {
        matches!(self.tokens.front(), Some(Token::Quoted(_)))
    }

    /// The rest of the line, as `key=value` options among `known`.
    pub fn options(&mut self, known: &[&str]) -> anyhow::Result<HashMap<String, String>> {
        let mut options = HashMap::new();
        while let Some(token) = self.tokens.pop_front() {
            let Token::Word(word) = token else {
                bail!("a label where an option (key=value) was expected");
            };
            let (key, value) = word
                .split_once('=')
                .with_context(|| format!("{word:?} is not an option (key=value)"))?;
            if !known.contains(&key) {
                bail!("unknown option {key:?} (known here: {})", known.join(", "));
            }
            options.insert(key.to_owned(), value.to_owned());
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_numbers_and_indentation() {
        let text = "diagram boxes\n\n# comment\n  | text # not a comment\n";
        let l = lines(text).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[1],
            Line {
                number: 4,
                indent: 2,
                text: "| text # not a comment"
            }
        );
        assert!(lines("\tbox").is_err());
    }

    #[test]
    fn tokens_words_labels_and_options() {
        let mut t = Tokens::new(r#"box a "say \"hi\"\nthere" style=ns gap=3"#).unwrap();
        assert_eq!(t.word().unwrap(), "box");
        assert_eq!(t.word().unwrap(), "a");
        assert!(t.peek_quoted());
        assert_eq!(split_label(&t.quoted().unwrap()), ["say \"hi\"", "there"]);
        let o = t.options(&["style", "gap"]).unwrap();
        assert_eq!(o["style"], "ns");
        assert_eq!(o["gap"], "3");
        assert!(Tokens::new("x y=1").unwrap().options(&["x"]).is_err());
        assert!(Tokens::new(r#""\q""#).is_err());
    }
}
