//! `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:+alternative}` and `${NAME+alternative}` references
//! inside `.env` values, for reading only.
//!
//! Interpolation is applied when a caller asks for resolved values; the document model never stores or writes an
//! expanded value. This module must not know about quoting: the parser tells it which `$` signs were escaped.
//! A bare `$NAME` stays literal (as docker-compose 1.29.2 reads it) and so does any `${` that does not form a
//! reference. A default or alternative may hold references itself, as in compose v2; a reference whose braces
//! never balance leaves the rest of the value literal rather than guess where it was meant to end.

/// Expand the references in `value`. `escaped_dollars` are byte offsets of `$` signs that must stay literal.
pub(crate) fn interpolate(value: &str, escaped_dollars: &[usize], lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest_start = 0;
    let mut search_from = 0;
    while let Some(found) = value[search_from..].find("${") {
        let dollar = search_from + found;
        search_from = dollar + 1;
        if escaped_dollars.contains(&dollar) {
            continue;
        }
        // Offsets of the escaped `$` signs, relative to this reference.
        let escaped: Vec<usize> = escaped_dollars.iter().filter_map(|&d| d.checked_sub(dollar)).collect();
        match Reference::parse(&value[dollar..], &escaped) {
            Parsed::NotAReference => continue,
            Parsed::Unbalanced => break,
            Parsed::Reference(reference) => {
                out.push_str(&value[rest_start..dollar]);
                out.push_str(&reference.resolve(&escaped, lookup));
                rest_start = dollar + reference.len;
                search_from = rest_start;
            }
        }
    }
    out.push_str(&value[rest_start..]);
    out
}

enum Parsed<'a> {
    Reference(Reference<'a>),
    /// Not the start of a reference (`${}`, `${1A}`, `${SET:x}`): literal, and the scan goes on after it.
    NotAReference,
    /// A `${NAME:-` whose closing brace never comes.
    Unbalanced,
}

#[derive(Debug, PartialEq, Eq)]
struct Reference<'a> {
    name: &'a str,
    operand: Option<Operand<'a>>,
    /// Bytes from `$` through `}`.
    len: usize,
}

/// What follows the name: `:-default`, `-default`, `:+alternative` or `+alternative`.
#[derive(Debug, PartialEq, Eq)]
struct Operand<'a> {
    text: &'a str,
    /// Where `text` starts, in bytes from the reference's `$`.
    offset: usize,
    /// `-` (false): `text` stands in for a missing value; `+` (true): `text` stands in for a present one.
    alternative: bool,
    /// With `:`, an empty value counts as unset.
    colon: bool,
}

impl<'a> Reference<'a> {
    /// Parse a reference at the start of `text`, which begins with `${`. `escaped` are offsets into `text`.
    fn parse(text: &'a str, escaped: &[usize]) -> Parsed<'a> {
        let Some(body) = text.strip_prefix("${") else { return Parsed::NotAReference };
        let name_len = body
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
            .map_or(body.len(), |(i, _)| i);
        if name_len == 0 {
            return Parsed::NotAReference;
        }
        let name = &body[..name_len];
        let after = &body[name_len..];
        if after.starts_with('}') {
            return Parsed::Reference(Reference { name, operand: None, len: 2 + name_len + 1 });
        }
        let colon = after.starts_with(':');
        let operator_start = usize::from(colon);
        let alternative = match after[operator_start..].chars().next() {
            Some('-') => false,
            Some('+') => true,
            _ => return Parsed::NotAReference,
        };
        let offset = 2 + name_len + operator_start + 1;
        let Some(close) = closing_brace(&text[offset..], offset, escaped) else { return Parsed::Unbalanced };
        let operand = Operand { text: &text[offset..offset + close], offset, alternative, colon };
        Parsed::Reference(Reference { name, operand: Some(operand), len: offset + close + 1 })
    }

    fn resolve(&self, escaped: &[usize], lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let found = lookup(self.name);
        let Some(operand) = &self.operand else { return found.unwrap_or_default() };
        let present = found.as_deref().is_some_and(|v| !(operand.colon && v.is_empty()));
        let expand_operand = || {
            let inner: Vec<usize> = escaped.iter().filter_map(|&d| d.checked_sub(operand.offset)).collect();
            interpolate(operand.text, &inner, lookup)
        };
        match (operand.alternative, present) {
            (false, true) => found.unwrap_or_default(),
            (false, false) | (true, true) => expand_operand(),
            (true, false) => String::new(),
        }
    }
}

/// The offset in `text` of the `}` that closes the reference, skipping nested (unescaped) `${..}`. `base` is
/// where `text` starts relative to the offsets in `escaped`.
fn closing_brace(text: &str, base: usize, escaped: &[usize]) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') && !escaped.contains(&(base + i)) => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn expand(value: &str) -> String {
        interpolate(value, &[], &env)
    }

    #[test]
    fn braced_reference_is_replaced() {
        assert_eq!(expand("a${SET}b"), "avalueb");
        assert_eq!(expand("${SET}${SET}"), "valuevalue");
    }

    #[test]
    fn unset_reference_becomes_empty() {
        assert_eq!(expand("a${UNSET}b"), "ab");
    }

    #[test]
    fn colon_dash_default_applies_to_unset_and_empty() {
        assert_eq!(expand("${UNSET:-d}"), "d");
        assert_eq!(expand("${EMPTY:-d}"), "d");
        assert_eq!(expand("${SET:-d}"), "value");
    }

    #[test]
    fn dash_default_applies_to_unset_only() {
        assert_eq!(expand("${UNSET-d}"), "d");
        assert_eq!(expand("${EMPTY-d}"), "");
        assert_eq!(expand("${SET-d}"), "value");
    }

    #[test]
    fn colon_plus_alternative_applies_to_set_and_non_empty_only() {
        assert_eq!(expand("${SET:+alt}"), "alt");
        assert_eq!(expand("${EMPTY:+alt}"), "");
        assert_eq!(expand("${UNSET:+alt}"), "");
        assert_eq!(expand("a${SET:+b}c"), "abc");
    }

    #[test]
    fn plus_alternative_applies_to_any_set_variable() {
        assert_eq!(expand("${SET+alt}"), "alt");
        assert_eq!(expand("${EMPTY+alt}"), "alt");
        assert_eq!(expand("${UNSET+alt}"), "");
    }

    #[test]
    fn defaults_and_alternatives_may_hold_references_as_in_compose_v2() {
        assert_eq!(expand("${UNSET:-${SET}}"), "value");
        assert_eq!(expand("${UNSET:-a${SET}b}"), "avalueb");
        assert_eq!(expand("${SET:+[${SET}]}"), "[value]");
        assert_eq!(expand("${UNSET:-${ALSO_UNSET:-deep}}"), "deep");
        assert_eq!(expand("${EMPTY+${UNSET-x}y}"), "xy");
        assert_eq!(expand("${SET:-${UNSET:-never}}"), "value");
        // An escaped `$` inside a default stays literal; so does a bare `$`.
        assert_eq!(interpolate("${UNSET:-${SET}}", &[9], &env), "${SET}");
        assert_eq!(expand("${UNSET:-$x}"), "$x");
    }

    #[test]
    fn a_reference_whose_braces_never_balance_stays_literal_with_everything_after_it() {
        assert_eq!(expand("${UNSET:-$x ${y}"), "${UNSET:-$x ${y}");
        assert_eq!(expand("${SET}${UNSET:-${SET}"), "value${UNSET:-${SET}");
    }

    #[test]
    fn incomplete_or_bare_references_stay_literal() {
        for text in ["$SET", "${SET", "${}", "${1A}", "${SET:x}", "${ SET}", "$", "${", "x${SET:-no end"] {
            assert_eq!(expand(text), text, "{text}");
        }
    }

    #[test]
    fn escaped_dollar_is_not_a_reference() {
        assert_eq!(interpolate("${SET}", &[0], &env), "${SET}");
        assert_eq!(interpolate("${SET}${SET}", &[6], &env), "value${SET}");
    }

    #[test]
    fn multibyte_text_around_references() {
        assert_eq!(expand("é${SET}ü${UNSET:-ß}"), "évalueüß");
    }
}
