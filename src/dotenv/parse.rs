//! The `.env` grammar: turns source text into lines that remember their exact bytes.
//!
//! This is the only place that knows the syntax (quoting, escapes, comments, `export`). It must not interpolate
//! `${..}` references (see `interpolate`) and must never panic, whatever the input: every byte of the input is
//! accounted for in exactly one returned line, so rendering the lines back gives the input unchanged.

use std::fmt;
use std::ops::Range;

/// Why a line could not be parsed; the position lives in [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("missing key before `=`")]
    MissingKey,
    #[error("key must start with a letter or `_`, found `{found}`")]
    InvalidKeyStart { found: char },
    #[error("unexpected `{found}` in key")]
    InvalidKeyChar { found: char },
    #[error("expected `=` after key, found {}", describe(*.found))]
    MissingEquals { found: Option<char> },
    #[error("unterminated single quote")]
    UnterminatedSingleQuote,
    #[error("unterminated double quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected `{found}` after closing quote")]
    TrailingGarbage { found: char },
    // A lone CR is a line break to python-dotenv (universal newlines) but not to compose v2; rejecting it
    // avoids silently meaning two different things.
    #[error("carriage return not followed by a line feed")]
    BareCarriageReturn,
    /// compose reads `.env` as UTF-8; a file saved in another encoding (Latin-1, UTF-16) is not guessed at.
    #[error("invalid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8")]
    InvalidUtf8 { byte: u8 },
}

fn describe(found: Option<char>) -> String {
    match found {
        Some(c) => format!("`{}`", c.escape_debug()),
        None => "end of line".to_owned(),
    }
}

/// A malformed `.env` line. `line` and `column` are 1-based; `column` counts characters, not bytes.
///
/// Displays as `line 3, column 7: unterminated double quote` so callers can prefix the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.kind)
    }
}

/// How a value was written, which decides how it is decoded and whether `${..}` is understood in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quoting {
    Bare,
    Single,
    Double,
}

/// One assignment, possibly spanning several physical lines (multi-line quoted values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedEntry {
    /// Exact source text, including the line terminator if there was one.
    pub raw: String,
    pub key: String,
    /// Decoded value (escapes applied, no interpolation).
    pub value: String,
    pub quoting: Quoting,
    /// Byte offsets into `value` of `$` signs written as `\$`; they never start a `${..}` reference.
    pub escaped_dollars: Vec<usize>,
    /// Byte range in `raw` of the value as written (quotes included, inline comment and padding excluded).
    pub value_span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParsedLine {
    /// Blank line or comment, kept as-is (terminator included).
    Verbatim(String),
    Entry(ParsedEntry),
}

pub(crate) fn parse_lines(src: &str) -> Result<Vec<ParsedLine>, ParseError> {
    let mut parser = Parser { src, pos: 0, line: 1, line_start: 0 };
    let mut lines = Vec::new();
    while parser.pos < src.len() {
        lines.push(parser.statement()?);
    }
    Ok(lines)
}

/// Whitespace inside a line (never a line break).
pub(crate) fn is_inline_space(c: char) -> bool {
    c.is_whitespace() && c != '\n' && c != '\r'
}

pub(crate) fn is_key_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(crate) fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `key` is a valid key under this grammar (`[A-Za-z_][A-Za-z0-9_.-]*`).
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(is_key_start) && chars.all(is_key_char)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    line_start: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.src[self.pos..].chars();
        chars.next();
        chars.next()
    }

    fn error(&self, at: usize, kind: ParseErrorKind) -> ParseError {
        // `at` may sit on an earlier line than the cursor only for quote errors, which pass their own line.
        let column = self.src[self.line_start..at].chars().count() + 1;
        ParseError { line: self.line, column, kind }
    }

    fn skip_inline_space(&mut self) {
        while let Some(c) = self.peek().filter(|&c| is_inline_space(c)) {
            self.pos += c.len_utf8();
        }
    }

    /// At a line end (or end of input): consume the terminator. Otherwise return what is there.
    fn end_of_line(&mut self) -> Result<bool, ParseError> {
        match self.peek() {
            None => Ok(true),
            Some('\n') => {
                self.newline(1);
                Ok(true)
            }
            Some('\r') if self.peek_second() == Some('\n') => {
                self.newline(2);
                Ok(true)
            }
            Some('\r') => Err(self.error(self.pos, ParseErrorKind::BareCarriageReturn)),
            Some(_) => Ok(false),
        }
    }

    fn newline(&mut self, len: usize) {
        self.pos += len;
        self.line += 1;
        self.line_start = self.pos;
    }

    /// Consume the rest of the line up to (not including) its terminator, rejecting a lone CR.
    fn rest_of_line(&mut self) -> Result<Range<usize>, ParseError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                '\n' => break,
                '\r' if self.peek_second() == Some('\n') => break,
                '\r' => return Err(self.error(self.pos, ParseErrorKind::BareCarriageReturn)),
                _ => self.pos += c.len_utf8(),
            }
        }
        Ok(start..self.pos)
    }

    fn statement(&mut self) -> Result<ParsedLine, ParseError> {
        let start = self.pos;
        self.skip_inline_space();
        if self.end_of_line()? {
            return Ok(ParsedLine::Verbatim(self.src[start..self.pos].to_owned()));
        }
        if self.peek() == Some('#') {
            self.rest_of_line()?;
            self.end_of_line()?;
            return Ok(ParsedLine::Verbatim(self.src[start..self.pos].to_owned()));
        }

        self.skip_export();
        let key = self.key()?;

        self.skip_inline_space();
        match self.peek() {
            Some('=') => self.pos += 1,
            Some('\r') if self.peek_second() != Some('\n') => {
                return Err(self.error(self.pos, ParseErrorKind::BareCarriageReturn));
            }
            found => {
                let found = found.filter(|&c| c != '\n' && c != '\r');
                return Err(self.error(self.pos, ParseErrorKind::MissingEquals { found }));
            }
        }
        self.skip_inline_space();

        let value_start = self.pos;
        let (value, quoting, escaped_dollars, value_end) = match self.peek() {
            Some(quote @ ('\'' | '"')) => {
                let (value, escaped) = self.quoted(quote)?;
                let value_end = self.pos;
                self.after_closing_quote()?;
                let quoting = if quote == '"' { Quoting::Double } else { Quoting::Single };
                (value, quoting, escaped, value_end)
            }
            _ => {
                let range = self.rest_of_line()?;
                let text = &self.src[range];
                let value = unquoted_value(text);
                let value_end = value_start + value.len();
                (value.to_owned(), Quoting::Bare, Vec::new(), value_end)
            }
        };
        self.end_of_line()?;
        Ok(ParsedLine::Entry(ParsedEntry {
            raw: self.src[start..self.pos].to_owned(),
            key,
            value,
            quoting,
            escaped_dollars,
            value_span: value_start - start..value_end - start,
        }))
    }

    /// `export` followed by inline space is a prefix, unless what follows is `=` (then `export` is the key).
    fn skip_export(&mut self) {
        let rest = &self.src[self.pos..];
        let Some(after) = rest.strip_prefix("export") else {
            return;
        };
        if !after.chars().next().is_some_and(is_inline_space) {
            return;
        }
        let trimmed = after.trim_start_matches(is_inline_space);
        if trimmed.starts_with('=') {
            return;
        }
        self.pos += rest.len() - trimmed.len();
    }

    fn key(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if is_key_start(c) => self.pos += 1,
            Some('=') => return Err(self.error(self.pos, ParseErrorKind::MissingKey)),
            Some(found) => {
                return Err(self.error(self.pos, ParseErrorKind::InvalidKeyStart { found }));
            }
            // `statement` only calls us on a non-empty line.
            None => return Err(self.error(self.pos, ParseErrorKind::MissingEquals { found: None })),
        }
        while let Some(c) = self.peek() {
            if is_key_char(c) {
                self.pos += 1;
            } else if c == '=' || is_inline_space(c) || c == '\n' || c == '\r' {
                break;
            } else {
                return Err(self.error(self.pos, ParseErrorKind::InvalidKeyChar { found: c }));
            }
        }
        Ok(self.src[start..self.pos].to_owned())
    }

    /// Read a quoted value starting at its opening quote; returns the decoded text and escaped-`$` offsets.
    fn quoted(&mut self, quote: char) -> Result<(String, Vec<usize>), ParseError> {
        // Report an unterminated quote where it opened, not at the end of the file.
        let unterminated = ParseError {
            line: self.line,
            column: self.src[self.line_start..self.pos].chars().count() + 1,
            kind: if quote == '"' {
                ParseErrorKind::UnterminatedDoubleQuote
            } else {
                ParseErrorKind::UnterminatedSingleQuote
            },
        };
        self.pos += 1;
        let mut value = String::new();
        let mut escaped_dollars = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated);
            };
            match c {
                c if c == quote => {
                    self.pos += 1;
                    return Ok((value, escaped_dollars));
                }
                '\\' => {
                    let Some(next) = self.peek_second() else {
                        return Err(unterminated);
                    };
                    match decode_escape(quote, next) {
                        Some(decoded) => {
                            if next == '$' {
                                escaped_dollars.push(value.len());
                            }
                            value.push(decoded);
                            self.pos += 1 + next.len_utf8();
                        }
                        // Not an escape: the backslash is literal and the next char is read normally.
                        None => {
                            value.push('\\');
                            self.pos += 1;
                        }
                    }
                }
                '\n' => {
                    value.push('\n');
                    self.newline(1);
                }
                // CRLF inside a value reads as LF, as python's universal newlines do.
                '\r' if self.peek_second() == Some('\n') => {
                    value.push('\n');
                    self.newline(2);
                }
                '\r' => return Err(self.error(self.pos, ParseErrorKind::BareCarriageReturn)),
                c => {
                    value.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// After a closing quote only inline space and an optional `#` comment may follow on the line.
    fn after_closing_quote(&mut self) -> Result<(), ParseError> {
        self.skip_inline_space();
        match self.peek() {
            None | Some('\n') | Some('\r') => Ok(()),
            Some('#') => self.rest_of_line().map(drop),
            Some(found) => Err(self.error(self.pos, ParseErrorKind::TrailingGarbage { found })),
        }
    }
}

/// What `\<next>` means inside a value quoted with `quote`, or `None` if the backslash is literal.
///
/// Double quotes follow python-dotenv (`\\ \' \" \a \b \f \n \r \t \v`) plus `\$` from compose v2.
/// Single quotes only know `\'` (both python-dotenv and compose v2 end the value at an unescaped `'`).
fn decode_escape(quote: char, next: char) -> Option<char> {
    if quote == '\'' {
        return (next == '\'').then_some('\'');
    }
    Some(match next {
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        '$' => '$',
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{07}',
        'b' => '\u{08}',
        'f' => '\u{0c}',
        'v' => '\u{0b}',
        _ => return None,
    })
}

/// An unquoted value: a `#` preceded by whitespace starts a comment; trailing whitespace is dropped.
pub(crate) fn unquoted_value(text: &str) -> &str {
    let mut prev_space = false;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        if c == '#' && prev_space {
            end = i;
            break;
        }
        prev_space = c.is_whitespace();
    }
    text[..end].trim_end()
}
