//! The sync channel between a parent and the child it spawned into new namespaces: a connected pair of
//! Unix sockets (unix(7)) carrying one line per message. The parent uses it to say "your maps are
//! written, go on"; the child uses it to send back what it observed, as plain fields.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// One end of a line-oriented, bidirectional channel.
#[derive(Debug)]
pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    /// A connected pair: one end for the parent, one for the child. Both are close-on-exec, so a
    /// program the child `execve`s does not inherit them.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Channel::new(a)?, Channel::new(b)?))
    }

    fn new(stream: UnixStream) -> io::Result<Channel> {
        Ok(Channel {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends one message. A message is a line: it must not contain `\n`.
    pub fn send(&mut self, message: &str) -> io::Result<()> {
        debug_assert!(!message.contains('\n'), "a message is one line");
        self.writer.write_all(format!("{message}\n").as_bytes())
    }

    /// Receives one message; `UnexpectedEof` when the other side has gone (exited or closed its end).
    pub fn recv(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other side of the channel has gone",
            ));
        }
        line.pop();
        Ok(line)
    }

    /// Receives one message and checks it is `expected`: the way two sides wait for each other.
    pub fn expect(&mut self, expected: &str) -> io::Result<()> {
        let got = self.recv()?;
        if got == expected {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected {expected:?}, got {got:?}"),
            ))
        }
    }

    /// Sends several values as one message (see [`encode_fields`]).
    pub fn send_fields<S: AsRef<str>>(&mut self, fields: &[S]) -> io::Result<()> {
        self.send(&encode_fields(fields))
    }

    /// Receives a message sent with [`Channel::send_fields`].
    pub fn recv_fields(&mut self) -> io::Result<Vec<String>> {
        Ok(decode_fields(&self.recv()?))
    }
}

/// Joins values with tabs, escaping `\\`, `\t` and `\n`, so that any string survives the trip.
pub fn encode_fields<S: AsRef<str>>(fields: &[S]) -> String {
    let escaped: Vec<String> = fields
        .iter()
        .map(|f| {
            f.as_ref()
                .replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
        })
        .collect();
    escaped.join("\t")
}

/// The inverse of [`encode_fields`].
pub fn decode_fields(line: &str) -> Vec<String> {
    line.split('\t')
        .map(|field| {
            let mut out = String::with_capacity(field.len());
            let mut chars = field.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let fields = ["plain", "tab\there", "line\nbreak", "back\\slash", ""];
        assert_eq!(decode_fields(&encode_fields(&fields)), fields);
    }

    #[test]
    fn pair_carries_lines_both_ways() {
        let (mut a, mut b) = Channel::pair().unwrap();
        a.send("hello").unwrap();
        b.expect("hello").unwrap();
        b.send_fields(&["x", "y z"]).unwrap();
        assert_eq!(a.recv_fields().unwrap(), ["x", "y z"]);
        drop(b);
        assert_eq!(a.recv().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
