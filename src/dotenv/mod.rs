//! A lossless, comment-preserving model of a `.env` file as docker-compose reads it.
//!
//! ragctl edits users' `.env` files; an edit must change only the lines it is about, so every line keeps its
//! original text and rendering an unedited document gives back the input byte for byte (CRLF and a missing final
//! newline included). Values are read decoded (quotes and escapes removed) and written through
//! [`encode_value`]; `${..}` references are understood only by [`DotEnv::resolved`] and never expanded on write.
//!
//! This module must not touch the process environment and does no I/O except [`load`]; writing goes through
//! `atomic_file::write_atomic`.
//!
//! Where docker-compose 1.29.2 (python-dotenv 0.21) and compose v2 read a construct differently, the reading
//! here follows compose v2, and [`encode_value`] never writes such a construct:
//! - `\$` in double quotes is a literal `$` (1.29.2 keeps the backslash);
//! - `\\` in single quotes stays two backslashes (1.29.2 reads one);
//! - `${..}` inside single quotes is literal (1.29.2 expands it);
//! - `${NAME-default}` uses the default only when `NAME` is unset (1.29.2 looks up a variable literally named
//!   `NAME-default`), and `${NAME:-default}` also when it is empty (1.29.2: only when unset).
//! - `${NAME:+alternative}` / `${NAME+alternative}` give `alternative` when `NAME` is set and non-empty / set,
//!   and nothing otherwise (1.29.2 keeps the first literally and looks up a variable named `NAME+alternative`).
//! - a default or alternative may hold references (`${A:-${B}}`); 1.29.2 takes it literally up to the first `}`.
//!
//! A bare `$NAME` is literal, as in 1.29.2. A lone carriage return is rejected rather than guessed at.

mod encode;
mod interpolate;
mod parse;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

pub use encode::encode_value;
pub use parse::{ParseError, ParseErrorKind, is_valid_key};

use parse::{ParsedEntry, ParsedLine, Quoting};

/// A parsed `.env` document: every line in order, each keeping its original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotEnv {
    lines: Vec<ParsedLine>,
    /// Line terminator for lines we add: the file's own (CRLF if its first line ends in CRLF).
    newline: &'static str,
}

/// Failure to read a `.env` file from disk.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{}:{}: {}", path.display(), source.line, source.column, source.kind)]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
}

/// Read and parse the `.env` file at `path`. Bytes that are not UTF-8 are a parse error at their position.
pub fn load(path: &Path) -> Result<DotEnv, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
    let src = std::str::from_utf8(&bytes)
        .map_err(|e| LoadError::Parse { path: path.to_owned(), source: invalid_utf8(&bytes, e.valid_up_to()) })?;
    DotEnv::parse(src).map_err(|source| LoadError::Parse { path: path.to_owned(), source })
}

/// Where the first invalid byte is, counted like every other parse error: 1-based line, column in characters.
fn invalid_utf8(bytes: &[u8], valid_up_to: usize) -> ParseError {
    // Everything before `valid_up_to` is valid UTF-8 by definition.
    let valid = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    ParseError {
        line: valid.matches('\n').count() + 1,
        column: valid[line_start..].chars().count() + 1,
        kind: ParseErrorKind::InvalidUtf8 { byte: bytes.get(valid_up_to).copied().unwrap_or_default() },
    }
}

impl DotEnv {
    /// Parse `src`. Fails on the first malformed line; never panics.
    pub fn parse(src: &str) -> Result<DotEnv, ParseError> {
        let lines = parse::parse_lines(src)?;
        let newline = match src.find('\n') {
            Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        };
        Ok(DotEnv { lines, newline })
    }

    /// A new document (for a file that does not exist yet) starting with `header` as `#` comment lines,
    /// followed by a blank line. An empty header gives an empty document.
    pub fn new_with_header(header: &str) -> DotEnv {
        let mut doc = DotEnv { lines: Vec::new(), newline: "\n" };
        if header.is_empty() {
            return doc;
        }
        for line in header.lines() {
            let text = match line {
                "" => "#".to_owned(),
                l if l.starts_with('#') => l.to_owned(),
                l => format!("# {l}"),
            };
            doc.push_verbatim(text);
        }
        doc.push_verbatim(String::new());
        doc
    }

    /// The decoded value of `key` (no interpolation); the last assignment wins.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.last_index_of(key).and_then(|i| match &self.lines[i] {
            ParsedLine::Entry(e) => Some(e.value.as_str()),
            ParsedLine::Verbatim(_) => None,
        })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.last_index_of(key).is_some()
    }

    /// Every key once, in order of its first assignment, with the decoded value of its last assignment
    /// (the same order and values as reading the file into a map).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut map: IndexMap<&str, &str> = IndexMap::new();
        for e in self.entry_iter() {
            map.insert(e.key.as_str(), e.value.as_str());
        }
        map.into_iter()
    }

    /// Set `key` to `value`. An existing assignment (the last one, if repeated) is edited in place, keeping its
    /// position, `export` prefix, spacing and inline comment; otherwise a line is appended at the end.
    ///
    /// # Panics
    /// If `key` is not a valid key (`[A-Za-z_][A-Za-z0-9_.-]*`); keys come from code, not from input.
    pub fn set(&mut self, key: &str, value: &str) {
        assert!(is_valid_key(key), "invalid .env key {key:?}");
        match self.last_index_of(key) {
            Some(i) => {
                if let ParsedLine::Entry(e) = &mut self.lines[i] {
                    *e = replaced_value(e, value);
                }
            }
            None => {
                let line = self.new_entry(key, value);
                self.push_line(line);
            }
        }
    }

    /// Like [`set`](Self::set), but a new key goes under the comment header `# --- <group> ---`: after the
    /// last assignment that follows the header (before the next blank line), or, if the header does not exist
    /// yet, under a new header appended at the end.
    pub fn set_in_group(&mut self, group: &str, key: &str, value: &str) {
        if self.contains(key) {
            self.set(key, value);
            return;
        }
        assert!(is_valid_key(key), "invalid .env key {key:?}");
        let header = format!("# --- {group} ---");
        let header_index =
            self.lines.iter().position(|l| matches!(l, ParsedLine::Verbatim(t) if t.trim_end() == header));
        let Some(header_index) = header_index else {
            if let Some(ParsedLine::Entry(_)) = self.lines.last() {
                self.push_verbatim(String::new());
            } else if let Some(ParsedLine::Verbatim(t)) = self.lines.last()
                && !t.trim().is_empty()
            {
                self.push_verbatim(String::new());
            }
            self.push_verbatim(header);
            let line = self.new_entry(key, value);
            self.push_line(line);
            return;
        };
        // The group runs until the first blank line or the next group header.
        let mut insert_at = header_index + 1;
        while let Some(line) = self.lines.get(insert_at) {
            match line {
                ParsedLine::Entry(_) => insert_at += 1,
                ParsedLine::Verbatim(t) if !t.trim().is_empty() && !t.trim_start().starts_with("# ---") => {
                    insert_at += 1
                }
                ParsedLine::Verbatim(_) => break,
            }
        }
        if insert_at == self.lines.len() {
            let line = self.new_entry(key, value);
            self.push_line(line);
        } else {
            let line = self.new_entry(key, value);
            self.lines.insert(insert_at, line);
        }
    }

    /// Remove every assignment of `key`; returns whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|l| !matches!(l, ParsedLine::Entry(e) if e.key == key));
        self.lines.len() != before
    }

    /// The document as text; lines that were not edited are byte-identical to the input.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|l| match l {
                ParsedLine::Verbatim(t) => t.as_str(),
                ParsedLine::Entry(e) => e.raw.as_str(),
            })
            .collect()
    }

    /// All keys with `${NAME}`, `${NAME:-default}` and `${NAME-default}` expanded, in file order (last
    /// assignment wins). A reference sees keys assigned earlier in the file first, then `outer` (typically the
    /// process environment). Single-quoted values and `\$` are never expanded.
    pub fn resolved(&self, outer: &dyn Fn(&str) -> Option<String>) -> IndexMap<String, String> {
        let mut out: IndexMap<String, String> = IndexMap::new();
        for e in self.entry_iter() {
            let value = if e.quoting == Quoting::Single {
                e.value.clone()
            } else {
                let lookup = |name: &str| out.get(name).cloned().or_else(|| outer(name));
                interpolate::interpolate(&e.value, &e.escaped_dollars, &lookup)
            };
            out.insert(e.key.clone(), value);
        }
        out
    }

    fn entry_iter(&self) -> impl Iterator<Item = &ParsedEntry> {
        self.lines.iter().filter_map(|l| match l {
            ParsedLine::Entry(e) => Some(e),
            ParsedLine::Verbatim(_) => None,
        })
    }

    fn last_index_of(&self, key: &str) -> Option<usize> {
        self.lines.iter().rposition(|l| matches!(l, ParsedLine::Entry(e) if e.key == key))
    }

    fn new_entry(&self, key: &str, value: &str) -> ParsedLine {
        let raw = format!("{key}={}{}", encode_value(value), self.newline);
        ParsedLine::Entry(reparse_entry(raw))
    }

    fn push_verbatim(&mut self, text: String) {
        let line = ParsedLine::Verbatim(text + self.newline);
        self.push_line(line);
    }

    /// Append a line, first ending the current last line if the file had no final newline.
    fn push_line(&mut self, line: ParsedLine) {
        let newline = self.newline;
        if let Some(last) = self.lines.last_mut() {
            let raw = match last {
                ParsedLine::Verbatim(t) => t,
                ParsedLine::Entry(e) => &mut e.raw,
            };
            if !raw.ends_with('\n') {
                raw.push_str(newline);
            }
        }
        self.lines.push(line);
    }
}

/// `entry` with its value replaced by `value`, everything else on its line(s) kept.
fn replaced_value(entry: &ParsedEntry, value: &str) -> ParsedEntry {
    let mut encoded = encode_value(value);
    let after = &entry.raw[entry.value_span.end..];
    let comment_follows = after.trim_start_matches(parse::is_inline_space).starts_with('#');
    // An empty bare value followed by ` # comment` would read the comment as the value.
    if encoded.is_empty() && comment_follows {
        encoded = "''".to_owned();
    }
    // `KEY="x"#c` is valid after a quote; after a bare value the `#` would join the value.
    let separator = if after.starts_with('#') && !encoded.ends_with(['\'', '"']) { " " } else { "" };
    let raw = format!("{}{encoded}{separator}{after}", &entry.raw[..entry.value_span.start]);
    reparse_entry(raw)
}

/// Build an entry from text we generated. The text is valid by construction; re-parsing it (rather than
/// assembling the fields by hand) keeps the decoded value and the raw text from ever disagreeing.
fn reparse_entry(raw: String) -> ParsedEntry {
    match parse::parse_lines(&raw) {
        Ok(mut lines) if lines.len() == 1 => match lines.pop() {
            Some(ParsedLine::Entry(e)) => e,
            other => unreachable!("generated .env text {raw:?} parsed as {other:?}"),
        },
        other => unreachable!("generated .env text {raw:?} parsed as {other:?}"),
    }
}

#[cfg(test)]
mod tests;
