//! Reading one CSV file of the import: RFC 4180 records, streamed, each with the physical line
//! it starts on.
//!
//! Our own reader, not the `csv` crate's: that one accepts a bare quote inside an unquoted field,
//! reads an unterminated quote to the end of the file without a word, and would hold any cell in
//! memory however large. This one refuses all three, keeps at most `max_cell` bytes of a cell,
//! and counts lines as an editor does (`\n`, `\r\n` and a lone `\r` each end one line, also
//! inside a quoted field).
use std::io::{self, BufRead};

/// What is wrong with a record: (physical line, 0-based field index, message).
pub type Flaw = (u64, usize, String);

/// One record: its fields, the line it starts on, and what is wrong with it, if anything.
#[derive(Debug, Default)]
pub struct Record {
    pub fields: Vec<String>,
    /// The physical line (1-based) the record starts on.
    pub line: u64,
    /// The first problem: (physical line, 0-based field index, message). The record is to be
    /// left out; the fields read are kept so that the row can still be named (by its ID).
    pub problem: Option<Flaw>,
}

/// A streaming reader of RFC 4180 records.
pub struct Reader<R> {
    input: R,
    max_cell: usize,
    /// The physical line the next byte is on.
    line: u64,
    /// The previous byte was a `\r` that ended a line (a `\n` right after it ends no other).
    after_cr: bool,
    /// Nothing was read yet (a byte order mark may come first).
    fresh: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    /// In an unquoted field.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// In a quoted field, right after a quote: it closes the field or, doubled, is a quote.
    QuoteInQuoted,
    /// After a closing quote and stray text (already reported): up to the next separator.
    AfterQuoted,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, max_cell: usize) -> Self {
        Reader {
            input,
            max_cell,
            line: 1,
            after_cr: false,
            fresh: true,
        }
    }

    /// The next record that is not an empty line, or `None` at the end of the input.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            match self.record()? {
                None => return Ok(None),
                // An empty line is no record (a file may end with several).
                Some(r) if r.is_empty_line() => {}
                Some(r) => return Ok(Some(r.record)),
            }
        }
    }

    fn record(&mut self) -> io::Result<Option<Raw>> {
        if std::mem::take(&mut self.fresh) && self.input.fill_buf()?.starts_with(b"\xef\xbb\xbf") {
            self.input.consume(3);
        }
        let mut rec = Raw::default();
        let mut state = State::Start;
        let mut cell: Vec<u8> = Vec::new();
        let mut quote_line = 0;
        let mut started = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                if !started {
                    return Ok(None);
                }
                if state == State::Quoted {
                    let field = rec.record.fields.len();
                    rec.fail(
                        quote_line,
                        field,
                        "the quote opened here is never closed (a quote inside a quoted field is written twice)",
                    );
                }
                rec.push(cell, self.line);
                return Ok(Some(rec));
            }
            let mut used = 0;
            let mut done = false;
            for &b in buf {
                used += 1;
                if !started {
                    started = true;
                    rec.record.line = self.line;
                }
                let after_cr = std::mem::replace(&mut self.after_cr, false);
                if b == b'\n' && after_cr {
                    // The `\n` of a `\r\n`: the line was counted at the `\r`.
                    if state == State::Quoted {
                        rec.keep(&mut cell, b, self.max_cell, self.line);
                    } else if rec.record.fields.is_empty() && cell.is_empty() && state == State::Start {
                        // A record never starts with the second half of a line end.
                        rec.record.line = self.line;
                    }
                    continue;
                }
                let newline = b == b'\n' || b == b'\r';
                if newline {
                    self.line += 1;
                    self.after_cr = b == b'\r';
                }
                match state {
                    State::Quoted => match b {
                        b'"' => state = State::QuoteInQuoted,
                        _ => rec.keep(&mut cell, b, self.max_cell, self.line),
                    },
                    State::QuoteInQuoted => match b {
                        b'"' => {
                            rec.keep(&mut cell, b, self.max_cell, self.line);
                            state = State::Quoted;
                        }
                        b',' => {
                            rec.push(std::mem::take(&mut cell), self.line);
                            state = State::Start;
                        }
                        _ if newline => {
                            rec.push(std::mem::take(&mut cell), self.line - 1);
                            done = true;
                            break;
                        }
                        _ => {
                            let field = rec.record.fields.len();
                            rec.fail(
                                self.line,
                                field,
                                "text after the closing quote (a quote inside a quoted field is written twice)",
                            );
                            state = State::AfterQuoted;
                        }
                    },
                    State::Start | State::Unquoted | State::AfterQuoted => match b {
                        b',' => {
                            rec.push(std::mem::take(&mut cell), self.line);
                            state = State::Start;
                        }
                        _ if newline => {
                            rec.push(std::mem::take(&mut cell), self.line - 1);
                            done = true;
                            break;
                        }
                        b'"' if state == State::Start => {
                            rec.first_quoted |= rec.record.fields.is_empty();
                            quote_line = self.line;
                            state = State::Quoted;
                        }
                        b'"' if state == State::Unquoted => {
                            let field = rec.record.fields.len();
                            rec.fail(
                                self.line,
                                field,
                                "a quote inside an unquoted field (quote the whole field and write the quote twice)",
                            );
                            rec.keep(&mut cell, b, self.max_cell, self.line);
                        }
                        _ => {
                            if state == State::Start {
                                state = State::Unquoted;
                            }
                            if state == State::Unquoted {
                                rec.keep(&mut cell, b, self.max_cell, self.line);
                            }
                        }
                    },
                }
            }
            self.input.consume(used);
            if done {
                return Ok(Some(rec));
            }
        }
    }
}

/// A record being read.
#[derive(Default)]
struct Raw {
    record: Record,
    first_quoted: bool,
    /// The current cell went over the limit (reported once).
    oversized: bool,
}

impl Raw {
    /// A line with nothing on it (`""` is a record of one empty field).
    fn is_empty_line(&self) -> bool {
        let r = &self.record;
        r.problem.is_none() && r.fields.len() == 1 && r.fields[0].is_empty() && !self.first_quoted
    }

    fn fail(&mut self, line: u64, field: usize, message: &str) {
        if self.record.problem.is_none() {
            self.record.problem = Some((line, field, message.to_owned()));
        }
    }

    /// Adds a byte to the cell unless it is over the limit already.
    fn keep(&mut self, cell: &mut Vec<u8>, b: u8, max: usize, line: u64) {
        if cell.len() < max {
            cell.push(b);
        } else if !self.oversized {
            self.oversized = true;
            let field = self.record.fields.len();
            self.fail(line, field, &format!("the cell is larger than {}", size(max)));
        }
    }

    /// Ends the current cell.
    fn push(&mut self, cell: Vec<u8>, line: u64) {
        self.oversized = false;
        let field = self.record.fields.len();
        let text = match String::from_utf8(cell) {
            Ok(s) => s,
            Err(e) => {
                self.fail(line, field, "is not valid UTF-8");
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        self.record.fields.push(text);
    }
}

/// A byte count as people write it: 64 KiB, 1 MiB, 100 bytes.
pub fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the tests see it: its line, and its fields or its flaw.
    type Seen = (u64, Result<Vec<String>, Flaw>);

    /// Every record of `text`.
    fn records(text: &str, max: usize) -> Vec<Seen> {
        let mut r = Reader::new(text.as_bytes(), max);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push((rec.line, rec.problem.map_or(Ok(rec.fields), Err)));
        }
        out
    }

    fn ok(line: u64, fields: &[&str]) -> Seen {
        (line, Ok(fields.iter().map(|f| f.to_string()).collect()))
    }

    #[test]
    fn lines_are_physical_with_every_line_ending() {
        for eol in ["\n", "\r\n", "\r"] {
            let text = format!("a,b{eol}{eol}1,\"x{eol}y\"{eol}2,z{eol}{eol}");
            let expected = vec![ok(1, &["a", "b"]), ok(3, &["1", &format!("x{eol}y")]), ok(5, &["2", "z"])];
            assert_eq!(records(&text, 100), expected, "{eol:?}");
        }
        // No line end after the last record, and an empty quoted field is a record.
        assert_eq!(records("a\r\n\"\"", 100), vec![ok(1, &["a"]), ok(2, &[""])]);
    }

    #[test]
    fn quotes_follow_rfc_4180() {
        assert_eq!(records("\"a,\"\"b\"\"\",c\n", 100), vec![ok(1, &["a,\"b\"", "c"])]);
        let bad = records("x\nab\"c,d\n\"ab\"c,d\ne,\"f\n\ng\n", 100);
        assert_eq!(bad[0], ok(1, &["x"]));
        assert!(
            matches!(&bad[1], (2, Err((2, 0, m))) if m.starts_with("a quote inside an unquoted field")),
            "{bad:?}"
        );
        assert!(
            matches!(&bad[2], (3, Err((3, 0, m))) if m.starts_with("text after the closing quote")),
            "{bad:?}"
        );
        assert!(
            matches!(&bad[3], (4, Err((4, 1, m))) if m.starts_with("the quote opened here is never closed")),
            "{bad:?}"
        );
        assert_eq!(bad.len(), 4);
    }

    #[test]
    fn cells_are_limited_and_utf8() {
        let text = format!("a,{}\nb,c\n", "x".repeat(1000));
        let recs = records(&text, 999);
        assert!(
            matches!(&recs[0], (1, Err((1, 1, m))) if m == "the cell is larger than 999 bytes"),
            "{recs:?}"
        );
        assert_eq!(recs[1], ok(2, &["b", "c"]));
        let mut r = Reader::new(&b"a,\xff\n"[..], 10);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.problem, Some((1, 1, "is not valid UTF-8".to_owned())));
        assert_eq!(size(64 * 1024), "64 KiB");
    }
}
