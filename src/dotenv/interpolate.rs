//! `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:+alternative}` and `${NAME+alternative}` references
//! inside `.env` values, for reading only.
//!
//! Interpolation is applied when a caller asks for resolved values; the document model never stores or writes an
//! expanded value. This module must not know about quoting: the parser tells it which `$` signs were escaped.
//! A bare `$NAME` stays literal (as docker-compose 1.29.2 reads it) and so does any `${` that does not form a
//! complete reference; a default or alternative is taken literally (no nested references).

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
        let Some(reference) = Reference::parse(&value[dollar..]) else {
            continue;
        };
        out.push_str(&value[rest_start..dollar]);
        out.push_str(&reference.resolve(lookup));
        rest_start = dollar + reference.len;
        search_from = rest_start;
    }
    out.push_str(&value[rest_start..]);
    out
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
    /// `-` (false): `text` stands in for a missing value; `+` (true): `text` stands in for a present one.
    alternative: bool,
    /// With `:`, an empty value counts as unset.
    colon: bool,
}

impl<'a> Reference<'a> {
    /// Parse a reference at the start of `text`, which begins with `${`.
    fn parse(text: &'a str) -> Option<Self> {
        let body = text.strip_prefix("${")?;
        let name_len = body
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
            .map_or(body.len(), |(i, _)| i);
        if name_len == 0 {
            return None;
        }
        let name = &body[..name_len];
        let after = &body[name_len..];
        let (operand, consumed) = if after.starts_with('}') {
            (None, 0)
        } else {
            let colon = after.starts_with(':');
            let operator_start = usize::from(colon);
            let alternative = match after[operator_start..].chars().next() {
                Some('-') => false,
                Some('+') => true,
                _ => return None,
            };
            let text_start = operator_start + 1;
            let close = after[text_start..].find('}')?;
            let text = &after[text_start..text_start + close];
            (Some(Operand { text, alternative, colon }), text_start + close)
        };
        Some(Reference { name, operand, len: 2 + name_len + consumed + 1 })
    }

    fn resolve(&self, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let found = lookup(self.name);
        let Some(operand) = &self.operand else { return found.unwrap_or_default() };
        let present = found.as_deref().is_some_and(|v| !(operand.colon && v.is_empty()));
        match (operand.alternative, present) {
            (false, true) => found.unwrap_or_default(),
            (false, false) => operand.text.to_owned(),
            (true, true) => operand.text.to_owned(),
            (true, false) => String::new(),
        }
    }
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
    fn default_is_literal_and_may_contain_dollar() {
        assert_eq!(expand("${UNSET:-$x ${y}"), "$x ${y");
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
