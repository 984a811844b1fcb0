//! Compose variable substitution for values of the stack model, with compose's semantics: `$$` is a literal
//! `$`, `${VAR}` / `$VAR`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` and
//! `${VAR?message}` (required). Pure: values come from a lookup function.

use std::fmt;

/// A required variable was unset (or empty, for `:?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariable {
    pub name: String,
    pub message: String,
}

impl fmt::Display for MissingVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "required variable `{}` is not set", self.name)
        } else {
            write!(f, "required variable `{}` is not set: {}", self.name, self.message)
        }
    }
}

/// Substitute every reference in `input`.
pub fn interpolate(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, MissingVariable> {
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
                // Unterminated: compose rejects it; keep it literal so the error surfaces where it is used.
                out.push_str(&rest[pos..]);
                return Ok(out);
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

fn substitute(expr: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, MissingVariable> {
    let name_len = expr.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').map(char::len_utf8).sum();
    let (name, op) = expr.split_at(name_len);
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let result = if let Some(default) = op.strip_prefix(":-") {
        if set_nonempty { value.unwrap_or_default() } else { interpolate(default, lookup)? }
    } else if let Some(default) = op.strip_prefix('-') {
        match value {
            Some(v) => v,
            None => interpolate(default, lookup)?,
        }
    } else if let Some(message) = op.strip_prefix(":?") {
        if set_nonempty {
            value.unwrap_or_default()
        } else {
            return Err(MissingVariable { name: name.to_string(), message: message.to_string() });
        }
    } else if let Some(message) = op.strip_prefix('?') {
        match value {
            Some(v) => v,
            None => return Err(MissingVariable { name: name.to_string(), message: message.to_string() }),
        }
    } else {
        value.unwrap_or_default()
    };
    Ok(result)
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
    fn required_variables() {
        let err = interpolate("${B:?B is not set, run ragctl secret gen}", &vars).unwrap_err();
        assert_eq!(err, MissingVariable { name: "B".into(), message: "B is not set, run ragctl secret gen".into() });
        assert!(interpolate("${EMPTY:?no}", &vars).is_err());
        assert_eq!(interpolate("${EMPTY?no}", &vars).unwrap(), "");
        assert_eq!(interpolate("${A:?no}", &vars).unwrap(), "alpha");
    }
}
