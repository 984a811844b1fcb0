//! The only module that reads process environment variables. Every variable ragctl honours is a constant
//! here and is documented in the README ("Environment variables").

use std::ffi::OsString;

pub const RAGCTL_PROJECT_DIR: &str = "RAGCTL_PROJECT_DIR";
pub const RAGCTL_PROJECT_NAME: &str = "RAGCTL_PROJECT_NAME";
/// Compose's own project-name variable, honoured after RAGCTL_PROJECT_NAME.
pub const COMPOSE_PROJECT_NAME: &str = "COMPOSE_PROJECT_NAME";
pub const RAGCTL_PROFILES: &str = "RAGCTL_PROFILES";
/// Compose's own profile variable, honoured after RAGCTL_PROFILES.
pub const COMPOSE_PROFILES: &str = "COMPOSE_PROFILES";
pub const RAGCTL_ENV_FILE: &str = "RAGCTL_ENV_FILE";
pub const RAGCTL_FORMAT: &str = "RAGCTL_FORMAT";
pub const RAGCTL_SHAPE: &str = "RAGCTL_SHAPE";
/// The Dify release to run, over ragctl.yaml `release:`.
pub const RAGCTL_RELEASE: &str = "RAGCTL_RELEASE";
pub const RAGCTL_REGISTRY: &str = "RAGCTL_REGISTRY";
/// Prefix of per-service image overrides: `RAGCTL_IMAGE_<SERVICE>` (service upper-cased, `-` → `_`).
pub const RAGCTL_IMAGE_PREFIX: &str = "RAGCTL_IMAGE_";
pub const RAGCTL_YES: &str = "RAGCTL_YES";
pub const RAGCTL_PROGRESS: &str = "RAGCTL_PROGRESS";
pub const RAGCTL_QUIET: &str = "RAGCTL_QUIET";
pub const RAGCTL_VERBOSE: &str = "RAGCTL_VERBOSE";
pub const RAGCTL_NO_COLOR: &str = "RAGCTL_NO_COLOR";
/// The Docker endpoint (`unix:///var/run/docker.sock`, `tcp://host:2375`), as the docker CLI reads it.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// How `--target swarm` routes: `mesh` (default; ingress routing mesh and virtual IPs) or `host` (ports published
/// on the node running the task, DNS round robin), for nodes whose kernel lacks IPVS.
pub const RAGCTL_SWARM_ROUTING: &str = "RAGCTL_SWARM_ROUTING";
/// Locale variables, read only to decide whether ✓ / ✗ can be printed or ASCII marks are needed.
pub const LOCALE_VARS: [&str; 3] = ["LC_ALL", "LC_CTYPE", "LANG"];
/// <https://no-color.org>: any non-empty value disables colour.
pub const NO_COLOR: &str = "NO_COLOR";

/// A snapshot of the variables ragctl reads. Tests build one by hand instead of mutating the process env.
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    vars: Vec<(String, String)>,
}

impl EnvSnapshot {
    /// Capture the process environment (only UTF-8 variables; others cannot be meaningful settings).
    pub fn capture() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v): (OsString, OsString)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| {
                k.starts_with("RAGCTL_")
                    || k.starts_with("COMPOSE_")
                    || k == NO_COLOR
                    || k == DOCKER_HOST
                    || LOCALE_VARS.contains(&k.as_str())
            })
            .collect();
        EnvSnapshot { vars }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        EnvSnapshot { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A variable's value; empty values count as unset, as compose does.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// Whether the locale says UTF-8 (the first of LC_ALL, LC_CTYPE, LANG that is set decides).
    pub fn utf8_locale(&self) -> bool {
        LOCALE_VARS.iter().find_map(|v| self.get(v)).is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        })
    }

    /// Variables whose names start with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
            .filter(|(_, v)| !v.is_empty())
    }
}

/// Any variable, for compose-style `${VAR}` substitution: the process environment overrides `.env`, as in
/// compose. This is the one read of arbitrary variables.
pub fn compose_variable(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Compose's substitution for a project: the process environment over the `.env` values in `doc` (resolved
/// once, their own `${VAR}` references included).
pub fn compose_lookup(doc: &crate::dotenv::DotEnv) -> impl Fn(&str) -> Option<String> + use<> {
    let dotenv_values = doc.resolved(&|name| compose_variable(name));
    move |name| compose_variable(name).or_else(|| dotenv_values.get(name).cloned())
}
