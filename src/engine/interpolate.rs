//! Compose variable substitution for values of the stack model, with compose v2's semantics: `$$` is a literal
//! `$`, `${VAR}` / `$VAR`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:+alternative}`
//! (set and non-empty), `${VAR+alternative}` (set), `${VAR:?message}` and `${VAR?message}` (required).
//! Defaults and alternatives may hold references themselves. Anything else inside `${..}` is an error, never a
//! guess. Pure: values come from a lookup function.

use std::fmt;

/// Why a value could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// A required variable (`${VAR?message}`, `${VAR:?message}`) was unset (or empty, for `:?`).
    Missing { name: String, message: String },
    /// A `${..}` compose would reject (`${VAR:x}`, `${}`, `${1A}`): said, never guessed at.
    InvalidSyntax { expression: String },
}

impl InterpolationError {
    /// The variable to set in `.env`, when setting one is the fix.
    pub fn variable(&self) -> Option<&str> {
        match self {
            InterpolationError::Missing { name, .. } => Some(name),
            InterpolationError::InvalidSyntax { .. } => None,
        }
    }
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolationError::Missing { name, message } if message.is_empty() => {
                write!(f, "required variable `{name}` is not set")
            }
            InterpolationError::Missing { name, message } => {
                write!(f, "required variable `{name}` is not set: {message}")
            }
            InterpolationError::InvalidSyntax { expression } => write!(
                f,
                "invalid interpolation `{expression}` (compose understands `${{VAR}}`, `${{VAR:-default}}`, `${{VAR-default}}`, `${{VAR:+alternative}}`, `${{VAR+alternative}}`, `${{VAR:?message}}` and `${{VAR?message}}`; write `$$` for a literal `$`)"
            ),
        }
    }
}

/// Substitute every reference in `input`.
pub fn interpolate(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = matching_brace(body) else {
                // Unterminated: compose rejects it, and so does ragctl rather than guess what was meant.
                return Err(InterpolationError::InvalidSyntax { expression: rest[pos..].to_string() });
            };
            out.push_str(&substitute(&body[..end], lookup)?);
            rest = &body[end + 1..];
        } else {
            let starts_name = after.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            let len = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').map(char::len_utf8).sum();
            if !starts_name || len == 0 {
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, allowing nested `${..}` in defaults.
fn matching_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// One `${..}` body (`expr`, without the braces). Alternatives and defaults are themselves interpolated, as compose
/// v2 does; only the branch that is used is evaluated.
fn substitute(expr: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolationError> {
    let invalid = || InterpolationError::InvalidSyntax { expression: format!("${{{expr}}}") };
    let name_len = expr
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
        .map_or(expr.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(invalid());
    }
    let (name, rest) = expr.split_at(name_len);
    let value = lookup(name);
    let set = value.is_some();
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let missing = |message: &str| InterpolationError::Missing { name: name.to_string(), message: message.to_string() };
    let (operator, operand) = [":-", ":+", ":?", "-", "+", "?"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|operand| (*op, operand)))
        .unwrap_or(("", rest));
    Ok(match operator {
        "" if operand.is_empty() => value.unwrap_or_default(),
        "" => return Err(invalid()),
        ":-" if set_nonempty => value.unwrap_or_default(),
        ":-" => interpolate(operand, lookup)?,
        "-" if set => value.unwrap_or_default(),
        "-" => interpolate(operand, lookup)?,
        ":+" if set_nonempty => interpolate(operand, lookup)?,
        "+" if set => interpolate(operand, lookup)?,
        ":+" | "+" => String::new(),
        ":?" if set_nonempty => value.unwrap_or_default(),
        "?" if set => value.unwrap_or_default(),
        _ => return Err(missing(operand)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("5433".into()),
            _ => None,
        }
    }

    #[test]
    fn compose_substitution_forms() {
        let i = |s: &str| interpolate(s, &vars).unwrap();
        assert_eq!(i("x${A}y"), "xalphay");
        assert_eq!(i("$A-$B."), "alpha-.");
        assert_eq!(i("$$A $${A}"), "$A ${A}");
        assert_eq!(i("${B:-dflt}"), "dflt");
        assert_eq!(i("${EMPTY:-dflt}"), "dflt");
        assert_eq!(i("${EMPTY-dflt}"), "");
        assert_eq!(i("${B-dflt}"), "dflt");
        assert_eq!(i("127.0.0.1:${PORT:-5432}:5432/tcp"), "127.0.0.1:5433:5432/tcp");
        assert_eq!(i("${B:-${A}}"), "alpha");
        assert_eq!(i("pg_isready -U $${POSTGRES_USER}"), "pg_isready -U ${POSTGRES_USER}");
        assert_eq!(i("cost $5"), "cost $5");
        assert_eq!(i("trailing $"), "trailing $");
    }

    #[test]
    fn colon_plus_gives_the_alternative_only_for_a_set_non_empty_variable() {
        let i = |s: &str| interpolate(s, &vars).unwrap();
        assert_eq!(i("${A:+alt}"), "alt");
        assert_eq!(i("${EMPTY:+alt}"), "");
        assert_eq!(i("${B:+alt}"), "");
        assert_eq!(i("--flag=${A:+on}."), "--flag=on.");
    }

    #[test]
    fn plus_gives_the_alternative_for_any_set_variable() {
        let i = |s: &str| interpolate(s, &vars).unwrap();
        assert_eq!(i("${A+alt}"), "alt");
        assert_eq!(i("${EMPTY+alt}"), "alt");
        assert_eq!(i("${B+alt}"), "");
    }

    #[test]
    fn alternatives_and_defaults_nest() {
        let i = |s: &str| interpolate(s, &vars).unwrap();
        assert_eq!(i("${A:+port ${PORT}}"), "port 5433");
        assert_eq!(i("${A+${B:-fallback}}"), "fallback");
        assert_eq!(i("${B:-${A:+x${PORT}}}"), "x5433");
        assert_eq!(i("${EMPTY:-${B+never}}"), "");
        assert_eq!(i("${B:+$${A}}"), "");
        assert_eq!(i("${A:+$${A}}"), "${A}");
    }

    #[test]
    fn an_unsupported_expression_is_rejected_not_guessed() {
        for expr in ["${A:x}", "${A!}", "${}", "${:-d}", "${A B}", "${A:}", "${A#prefix}", "${1A}"] {
            let err = interpolate(expr, &vars).expect_err(expr);
            assert!(
                matches!(err, InterpolationError::InvalidSyntax { ref expression } if expression == expr),
                "{expr}: {err:?}"
            );
            assert!(err.to_string().contains(expr), "the message quotes it: {err}");
        }
    }

    #[test]
    fn required_variables() {
        let err = interpolate("${B:?B is not set, run ragctl secret gen}", &vars).unwrap_err();
        assert_eq!(
            err,
            InterpolationError::Missing { name: "B".into(), message: "B is not set, run ragctl secret gen".into() }
        );
        assert!(interpolate("${EMPTY:?no}", &vars).is_err());
        assert_eq!(interpolate("${EMPTY?no}", &vars).unwrap(), "");
        assert_eq!(interpolate("${A:?no}", &vars).unwrap(), "alpha");
    }
}
