//! `${NAME}`, `${NAME:-default}` and `${NAME-default}` references inside `.env` values, for reading only.
//!
//! Interpolation is applied when a caller asks for resolved values; the document model never stores or writes an
//! expanded value. This module must not know about quoting: the parser tells it which `$` signs were escaped.
//! A bare `$NAME` stays literal (as docker-compose 1.29.2 reads it) and so does any `${` that does not form a
//! complete reference; a default is taken literally (no nested references).

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
    default: Option<Default<'a>>,
    /// Bytes from `$` through `}`.
    len: usize,
}

#[derive(Debug, PartialEq, Eq)]
struct Default<'a> {
    text: &'a str,
    /// `:-` (true) also replaces an empty value; `-` (false) only an unset one.
    when_empty: bool,
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
        let (default, consumed) = if after.starts_with('}') {
            (None, 0)
        } else {
            let (when_empty, default_start) = if after.starts_with(":-") {
                (true, 2)
            } else if after.starts_with('-') {
                (false, 1)
            } else {
                return None;
            };
            let close = after[default_start..].find('}')?;
            let text = &after[default_start..default_start + close];
            (Some(Default { text, when_empty }), default_start + close)
        };
        Some(Reference { name, default, len: 2 + name_len + consumed + 1 })
    }

    fn resolve(&self, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let found = lookup(self.name);
        match (&self.default, found) {
            (Some(default), Some(v)) if default.when_empty && v.is_empty() => default.text.to_owned(),
            (_, Some(v)) => v,
            (Some(default), None) => default.text.to_owned(),
            (None, None) => String::new(),
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
