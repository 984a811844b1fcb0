//! Dify releases as data: `releases/*.yaml` (layout in `releases/README.md`), embedded in the binary by
//! `build.rs` as JSON. A release gives the images of Dify's services and the environment Dify's compose passes
//! each service, with Dify's variable names and defaults; the stack takes both from the selected release, and
//! [`DIFFERENCES`] lists every place where ragctl deliberately gives a service something else.

use std::cmp::Ordering;
use std::sync::OnceLock;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

static RELEASES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/releases.json"));

/// Dify's own services: their images come from the selected release unless `images:` / `RAGCTL_IMAGE_<SVC>`
/// override them.
pub const DIFY_SERVICES: &[&str] = &["api", "worker", "worker_beat", "web", "sandbox", "plugin_daemon"];

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Release {
    pub release: String,
    /// Compose service → image; `None` for a locally built one.
    pub images: IndexMap<String, Option<String>>,
    pub shared_env: IndexMap<String, EnvValue>,
    pub services: IndexMap<String, ReleaseService>,
    /// Every key of Dify's `.env.example`, with its default.
    pub dotenv: IndexMap<String, String>,
    #[serde(default)]
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReleaseService {
    #[serde(default)]
    pub shared_env: bool,
    #[serde(default)]
    pub environment: IndexMap<String, EnvValue>,
    /// Compose's `command` as Dify writes it (text or a list), for the settings it passes as flags.
    #[serde(default)]
    pub command: Option<serde_json::Value>,
}

/// One environment entry of Dify's compose: `${var:-default}`, a fixed `value`, or a `template` of compose text.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct EnvValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl EnvValue {
    /// The `.env` variable this entry reads, if it reads exactly one.
    pub fn variable<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        match (&self.value, &self.template) {
            (None, None) => Some(self.var.as_deref().unwrap_or(key)),
            _ => None,
        }
    }

    /// Compose text for `key`. A variable that is one of the stack's secrets is required (`${VAR:?...}`) instead
    /// of falling back to Dify's publicly known default.
    pub fn compose_text(&self, key: &str, is_secret: &dyn Fn(&str) -> bool) -> String {
        if let Some(v) = &self.value {
            return v.replace('$', "$$");
        }
        if let Some(t) = &self.template {
            return t.clone();
        }
        let var = self.var.as_deref().unwrap_or(key);
        if is_secret(var) {
            return format!("${{{var}:?{var} is not set, run ragctl secret gen}}");
        }
        match &self.default {
            Some(d) => format!("${{{var}:-{}}}", d.replace('$', "$$")),
            None => format!("${{{var}}}"),
        }
    }
}

impl Release {
    /// The environment Dify's compose gives `service`: the shared block (when the service merges it), then the
    /// service's own keys, which replace shared ones in place. `None` for a service this release does not have.
    pub fn service_env(&self, service: &str) -> Option<IndexMap<String, EnvValue>> {
        let svc = self.services.get(service)?;
        let mut env = if svc.shared_env { self.shared_env.clone() } else { IndexMap::new() };
        for (k, v) in &svc.environment {
            env.insert(k.clone(), v.clone());
        }
        Some(env)
    }

    /// The image of a compose service in this release.
    pub fn image(&self, service: &str) -> Option<&str> {
        self.images.get(service).and_then(|i| i.as_deref())
    }

    /// Whether `key` is a variable this release reads from `.env` (listed in `.env.example` or referenced by a
    /// service's environment).
    pub fn knows_key(&self, key: &str) -> bool {
        self.dotenv.contains_key(key)
            || self
                .shared_env
                .iter()
                .chain(self.services.values().flat_map(|s| s.environment.iter()))
                .any(|(k, v)| v.variable(k) == Some(key) || v.template.as_deref().is_some_and(|t| references(t, key)))
    }
}

/// Whether compose text `text` references `${key...}`.
fn references(text: &str, key: &str) -> bool {
    let needle = format!("${{{key}");
    text.match_indices(&needle)
        .any(|(at, _)| !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// Every embedded release, oldest first.
pub fn all() -> &'static [Release] {
    static ALL: OnceLock<Vec<Release>> = OnceLock::new();
    ALL.get_or_init(|| {
        // The data is embedded at build time and parsed by the unit tests, so this cannot fail at run time.
        let mut all: Vec<Release> = serde_json::from_str(RELEASES_JSON).unwrap_or_default();
        all.sort_by(|a, b| compare_versions(&a.release, &b.release));
        all
    })
}

/// The newest embedded release: the default.
pub fn newest() -> Option<&'static Release> {
    all().last()
}

pub fn get(name: &str) -> Option<&'static Release> {
    all().iter().find(|r| r.release == name)
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|r| r.release.as_str()).collect()
}

/// Order Dify versions (`crate::version`: `1.10.1-fix.1` < `1.13.3`); a name that is not a version sorts as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    crate::version::compare(a, b).unwrap_or_else(|| a.cmp(b))
}

/// How ragctl's service differs from Dify's compose for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// ragctl sets the key itself (a fixed value, or another variable) where Dify reads `.env`, or passes a key
    /// Dify's compose does not give this service.
    Fixed,
    /// ragctl does not pass this key to the service.
    Omitted,
}

/// A deliberate difference between a service of ragctl's full shape and the same service of Dify's compose.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Difference {
    /// A service name, or `*` for every service that receives the key.
    pub service: &'static str,
    pub key: &'static str,
    pub kind: DifferenceKind,
    pub reason: &'static str,
}

const fn diff(service: &'static str, key: &'static str, kind: DifferenceKind, reason: &'static str) -> Difference {
    Difference { service, key, kind, reason }
}

use DifferenceKind::Fixed;

/// Every deliberate difference (the README's table is checked against this list, and `tests/release_env.rs`
/// fails on any difference not listed here).
pub const DIFFERENCES: &[Difference] = &[
    diff("worker", "MIGRATION_ENABLED", Fixed, "fixed `false`: only api migrates, workers must not race it"),
    diff("worker_beat", "MIGRATION_ENABLED", Fixed, "fixed `false`: only api migrates"),
    diff(
        "db_postgres",
        "PGDATA",
        Fixed,
        "fixed: the data directory must stay where ragctl's volume and backups expect it",
    ),
    diff("weaviate", "PERSISTENCE_DATA_PATH", Fixed, "fixed `/var/lib/weaviate`: the volume is mounted there"),
    diff("web", "PM2_INSTANCES", Fixed, "fixed `1`: replicas scale out, one Node process per container"),
    diff("web", "NEXT_TELEMETRY_DISABLED", Fixed, "fixed `1`: no telemetry from the web front end"),
    diff("sandbox", "HTTP_PROXY", Fixed, "fixed to ragctl's ssrf_proxy: the sandbox's only way out"),
    diff("sandbox", "HTTPS_PROXY", Fixed, "fixed to ragctl's ssrf_proxy: the sandbox's only way out"),
    diff("sandbox", "SANDBOX_PORT", Fixed, "fixed `8194`: readiness probes and the proxy's reverse port use it"),
    diff("plugin_daemon", "SERVER_PORT", Fixed, "fixed `5002`: the api reaches plugin_daemon there"),
    diff(
        "*",
        "INNER_API_KEY_FOR_PLUGIN",
        Fixed,
        "read from its own required secret, which `secret check` keeps equal to PLUGIN_DIFY_INNER_API_KEY",
    ),
    diff(
        "plugin_daemon",
        "PLUGIN_STORAGE_LOCAL_ROOT",
        Fixed,
        "fixed `/app/storage`: the plugin volume is mounted there",
    ),
    diff("plugin_daemon", "PLUGIN_WORKING_PATH", Fixed, "fixed `/app/storage/cwd`: on the plugin volume"),
    diff(
        "weaviate",
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED",
        Fixed,
        "fixed `false`: weaviate never answers without an API key",
    ),
    diff("weaviate", "AUTHENTICATION_APIKEY_ENABLED", Fixed, "fixed `true`: weaviate never answers without an API key"),
    diff("weaviate", "AUTHORIZATION_ADMINLIST_ENABLED", Fixed, "fixed `true`: only the listed users administer"),
];

/// Services whose image ragctl pins instead of taking the release's (`images:` / RAGCTL_IMAGE_<SVC> still
/// override them): service, why.
pub const IMAGE_DIFFERENCES: &[(&str, &str)] = &[
    ("redis", "`redis:7-alpine` instead of Dify's 6: a supported major with the same commands and data format"),
    ("nginx", "`nginx:1.27-alpine` instead of `nginx:latest`: a fixed version, so a pull never changes it"),
    (
        "ssrf_proxy",
        "a fixed `ubuntu/squid` tag instead of `latest`, with ragctl's own squid.conf (no templated entrypoint)",
    ),
];

/// The listed difference for `service` / `key`, if any.
pub fn difference(service: &str, key: &str) -> Option<&'static Difference> {
    DIFFERENCES.iter().find(|d| (d.service == service || d.service == "*") && d.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_releases_parse_and_sort_oldest_first() {
        let names = names();
        assert_eq!(names, ["1.10.1-fix.1", "1.13.3"]);
        assert_eq!(newest().map(|r| r.release.as_str()), Some("1.13.3"));
        let r = get("1.13.3").unwrap();
        assert_eq!(r.image("api"), Some("langgenius/dify-api:1.13.3"));
        assert_eq!(r.service_env("api").unwrap().len(), 710);
        assert_eq!(r.service_env("plugin_daemon").unwrap().len(), 724);
        assert_eq!(r.service_env("web").unwrap().len(), 23);
        assert!(get("9.9.9").is_none());
    }

    #[test]
    fn versions_compare_numerically_and_fixes_follow_their_base() {
        use Ordering::*;
        assert_eq!(compare_versions("1.10.1-fix.1", "1.13.3"), Less);
        assert_eq!(compare_versions("1.9.2", "1.10.1"), Less);
        assert_eq!(compare_versions("1.10.1", "1.10.1-fix.1"), Less);
        assert_eq!(compare_versions("1.10.1-fix.2", "1.10.1-fix.10"), Less);
        assert_eq!(compare_versions("1.10.1-rc.1", "1.10.1"), Less);
        assert_eq!(compare_versions("1.13.3", "1.13.3"), Equal);
        assert_eq!(compare_versions("2.0", "1.99.99"), Greater);
    }

    #[test]
    fn compose_text_requires_secrets_and_escapes_literals() {
        let no = |_: &str| false;
        let yes = |v: &str| v == "PLUGIN_DAEMON_KEY";
        let v = EnvValue { var: Some("PLUGIN_DAEMON_KEY".into()), default: Some("pub".into()), ..Default::default() };
        assert_eq!(v.compose_text("SERVER_KEY", &no), "${PLUGIN_DAEMON_KEY:-pub}");
        assert_eq!(
            v.compose_text("SERVER_KEY", &yes),
            "${PLUGIN_DAEMON_KEY:?PLUGIN_DAEMON_KEY is not set, run ragctl secret gen}"
        );
        assert_eq!(EnvValue::default().compose_text("K", &no), "${K}");
        let lit = EnvValue { value: Some("a$b".into()), ..Default::default() };
        assert_eq!(lit.compose_text("K", &no), "a$$b");
        assert_eq!(lit.variable("K"), None);
    }
}
