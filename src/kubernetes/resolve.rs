//! Values for the manifests: `${VAR}` resolved from `.env`, secrets kept as references, compose host names
//! rewritten to Kubernetes Service names. Never writes a secret value into a manifest.

use super::*;

impl<'a> Model<'a> {
    /// nginx with Docker's resolver: it resolves upstreams itself, without search domains.
    pub(super) fn needs_cluster_dns(&self, svc: &Service) -> bool {
        svc.volumes.iter().any(|spec| {
            let source = spec.split(':').next().unwrap_or_default();
            source
                .strip_prefix("./")
                .and_then(|p| self.input.config_files.iter().find(|f| f.path == p))
                .is_some_and(|f| f.contents.contains(DOCKER_DNS))
        })
    }

    /// Compose interpolation of one value: secrets stay references (marked), everything else is resolved from
    /// `.env` and the profiles' defaults.
    pub(super) fn resolve(&self, raw: &str, what: &str) -> Result<Resolved, Error> {
        let secrets = std::cell::RefCell::new(Vec::<String>::new());
        let lookup = |name: &str| -> Option<String> {
            if self.secrets.contains(name) {
                let mut s = secrets.borrow_mut();
                if !s.iter().any(|n| n == name) {
                    s.push(name.to_string());
                }
                return Some(secret_mark(name));
            }
            (self.input.vars)(name).or_else(|| self.input.stack.env.get(name).map(|e| e.default.clone()))
        };
        let text = interpolate(raw, &lookup).map_err(|e| {
            Error::config_hint(
                format!("failed to resolve {what}: {e}"),
                e.variable()
                    .map_or("write `$$` for a literal `$`".to_string(), |name| format!("set `{name}` in `.env`")),
            )
        })?;
        Ok(Resolved { text, secrets: secrets.into_inner() })
    }

    /// Compose service names that are not valid Kubernetes names, in host positions (`//db_postgres:5432`,
    /// `"postgres_exporter:9187"`, a value that is just the name), become the Service names; with `qualify`, every
    /// service host becomes its cluster FQDN.
    pub(super) fn rewrite_hosts(&self, text: &str, qualify: bool) -> String {
        let mut out = text.to_string();
        // Longest first: `db_postgres_replica` before `db_postgres`.
        let mut names: Vec<&String> = self.input.stack.services.keys().collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for name in names {
            let dns = dns_name(name);
            let replacement =
                if qualify { format!("{dns}.{}.svc.{CLUSTER_DOMAIN}", self.namespace) } else { dns.clone() };
            if replacement != *name {
                out = replace_host(&out, name, &replacement);
            }
        }
        out
    }
}

pub(super) struct Resolved {
    pub(super) text: String,
    pub(super) secrets: Vec<String>,
}

impl Resolved {
    /// For `command`, `args` and `env` values, where Kubernetes expands `$(NAME)`: literal `$(` is escaped and
    /// secret marks become `$(NAME)`.
    pub(super) fn for_kubernetes(&self) -> String {
        let mut out = escape_references(&self.text);
        for s in &self.secrets {
            out = out.replace(&secret_mark(s), &format!("$({s})"));
        }
        out
    }
}

pub(super) fn secret_mark(name: &str) -> String {
    format!("{SECRET_MARK}{name}{SECRET_MARK}")
}

pub(super) fn escape_references(s: &str) -> String {
    s.replace("$(", "$$(")
}

/// Ports written right after `host:` in `text`, where `host` stands as a host name.
pub(super) fn ports_after_host(text: &str, host: &str) -> Vec<u16> {
    let pattern = format!("{host}:");
    let mut out = Vec::new();
    for (i, _) in text.match_indices(&pattern) {
        if !host_boundary_before(text, i) {
            continue;
        }
        let digits: String = text[i + pattern.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(p) = digits.parse::<u16>() {
            out.push(p);
        }
    }
    out
}

pub(super) fn host_boundary_before(text: &str, i: usize) -> bool {
    let before = &text[..i];
    before.is_empty() || before.ends_with("//") || before.ends_with(['@', '"', '\'', ' ', '=', '\t', '\n', '['])
}

/// Replace `name` where it stands as a host: a whole value (`db_postgres`), a URL host (`//name:5432`, `//name/`,
/// `@name:6379`) or `name:PORT` after a quote, space or `=`. Words in comments and paths stay as they are.
pub(super) fn replace_host(text: &str, name: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(name) {
        if i < last || !host_boundary_before(text, i) {
            continue;
        }
        let before = &text[..i];
        let after = &text[i + name.len()..];
        let with_port = after.starts_with(':') && after[1..].starts_with(|c: char| c.is_ascii_digit());
        let url_path = after.starts_with('/') && (before.ends_with("//") || before.ends_with('@'));
        let whole = before.is_empty() && after.is_empty();
        let quoted = after.starts_with(['"', '\'']) && before.ends_with(['"', '\'']);
        if with_port || url_path || whole || quoted {
            out.push_str(&text[last..i]);
            out.push_str(replacement);
            last = i + name.len();
        }
    }
    out.push_str(&text[last..]);
    out
}
