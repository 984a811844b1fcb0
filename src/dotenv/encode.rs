//! Choosing how a value is written into a `.env` file so that it reads back as exactly that value.
//!
//! The representation must read back identically here, in docker-compose 1.29.2 (python-dotenv 0.21) and,
//! where the two agree, in compose v2. This module must not write files or decide which key gets which value.
//!
//! Known limits, all caused by how 1.29.2 reads files (see the tests in `tests/dotenv_compose.rs`):
//! - 1.29.2 expands `${NAME}` and `${NAME:-x}` even inside single quotes and has no escape for `$`, so a value
//!   containing such a reference cannot be written literally for it. We write it single-quoted, which is literal
//!   for compose v2 and for this crate.
//! - 1.29.2's double-quote pattern lets a closing `"` preceded by `\` be swallowed as `\"` when a later `"`
//!   exists in the file, so a value ending in `\` is written unquoted when that is possible; otherwise it is
//!   double-quoted and only safe for 1.29.2 if no `"` follows later in the file.
//! - A value that needs double quotes and contains `$` is read literally by 1.29.2 but compose v2 expands
//!   `$NAME` in double quotes; there is no spelling both read the same way.

/// Characters that mean nothing special to any reader, so a value made only of them needs no quotes.
fn is_bare_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ',' | '/' | ':' | '@' | '%' | '+' | '=' | '~' | '^')
}

/// Write `value` with minimal quoting: bare when every character is plainly safe, single quotes when it needs
/// quoting but has no `'`, `\` or line break, otherwise double quotes with `\\`, `\"`, `\n` and `\r` escapes.
pub fn encode_value(value: &str) -> String {
    if value.chars().all(is_bare_safe) {
        return value.to_owned();
    }
    if !value.contains(['\'', '\\', '\n', '\r']) {
        return format!("'{value}'");
    }
    if value.ends_with('\\') && reads_back_unquoted(value) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` written without quotes reads back unchanged (one line, no padding, no comment, no quote
/// or `#` in front).
fn reads_back_unquoted(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return true;
    };
    if matches!(first, '\'' | '"' | '#') || first.is_whitespace() || value.contains(['\n', '\r']) {
        return false;
    }
    super::parse::unquoted_value(value) == value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_bare() {
        assert_eq!(encode_value(""), "");
        assert_eq!(encode_value("abc-1.2_3"), "abc-1.2_3");
        assert_eq!(encode_value("postgres://u@h:5432/db?"), "'postgres://u@h:5432/db?'");
        assert_eq!(encode_value("a=b"), "a=b");
    }

    #[test]
    fn specials_use_single_quotes() {
        assert_eq!(encode_value("a b"), "'a b'");
        assert_eq!(encode_value("a#b"), "'a#b'");
        assert_eq!(encode_value("pa$word"), "'pa$word'");
        assert_eq!(encode_value(r#"say "hi""#), r#"'say "hi"'"#);
        assert_eq!(encode_value(" padded "), "' padded '");
        assert_eq!(encode_value("${X}"), "'${X}'");
        assert_eq!(encode_value("ünï"), "'ünï'");
    }

    #[test]
    fn apostrophe_backslash_and_newline_use_double_quotes() {
        assert_eq!(encode_value("it's"), r#""it's""#);
        assert_eq!(encode_value(r"a\b c"), r#""a\\b c""#);
        assert_eq!(encode_value("l1\nl2\r"), r#""l1\nl2\r""#);
        assert_eq!(encode_value(r#"it's "x""#), r#""it's \"x\"""#);
    }

    #[test]
    fn trailing_backslash_prefers_unquoted() {
        assert_eq!(encode_value(r"C:\dir\"), r"C:\dir\");
        assert_eq!(encode_value(r"a b\"), r"a b\");
        // Cannot be unquoted: a comment would start at ` #`.
        assert_eq!(encode_value(r"a #b\"), r#""a #b\\""#);
        assert_eq!(encode_value(r" x\"), r#"" x\\""#);
    }
}
