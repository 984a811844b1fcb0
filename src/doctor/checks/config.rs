//! Checks of the project's own files: the stack model, `.env`, secrets, host references, rendered files.

use std::time::Duration;

use futures_util::FutureExt;

use crate::doctor::{CheckDef, DoctorContext, Outcome};
use crate::render::{TemplateSource, render_stack};
use crate::secrets::{SecretStatus, assess, in_scope};

const QUICK: Duration = Duration::from_secs(2);

fn always(_: &DoctorContext) -> bool {
    true
}

pub fn checks() -> Vec<CheckDef> {
    vec![
        CheckDef {
            id: "config.stack",
            title: "profiles and ragctl.yaml make a valid stack (no unknown profile, conflict, cycle or depends_on a disabled service)",
            needs: &[],
            timeout: QUICK,
            applies: always,
            run: |ctx| async move { stack(ctx) }.boxed(),
        },
        CheckDef {
            id: "env.file",
            title: ".env is present, parses, is private (mode 0600) and sets no old port key (EXPOSE_DB_PORT)",
            needs: &[],
            timeout: QUICK,
            applies: always,
            run: |ctx| async move { env_file(ctx) }.boxed(),
        },
        CheckDef {
            id: "secrets",
            title: "every secret is set, strong, not a public default, and equal to its pair",
            needs: &["config.stack", "env.file"],
            timeout: QUICK,
            applies: always,
            run: |ctx| async move { secrets(ctx) }.boxed(),
        },
        CheckDef {
            id: "config.hosts",
            title: "every *_HOST and endpoint a service of the stack reads names an enabled service (keys of storage backends and vector stores the stack does not use are not judged)",
            needs: &["config.stack", "env.file"],
            timeout: QUICK,
            applies: always,
            run: |ctx| async move { hosts(ctx) }.boxed(),
        },
        CheckDef {
            id: "config.profiles",
            title: "COMPOSE_PROFILES and VECTOR_STORE in .env agree with the enabled profiles",
            needs: &["config.stack", "env.file"],
            timeout: QUICK,
            applies: always,
            run: |ctx| async move { profiles(ctx) }.boxed(),
        },
        CheckDef {
            id: "render.up_to_date",
            title: "rendered files match the profiles, templates and settings",
            needs: &["config.stack"],
            timeout: QUICK,
            applies: always,
            run: |ctx| async move { rendered(ctx) }.boxed(),
        },
    ]
}

fn stack(ctx: &DoctorContext) -> Outcome {
    match &ctx.stack {
        Ok(s) => Outcome::pass(format!(
            "profiles {} ({} shape): {} services",
            s.profiles.join(", "),
            s.shape.as_str(),
            s.services.len()
        )),
        Err(e) => Outcome::fail(e.clone(), "fix ragctl.yaml or the profiles; `ragctl render` shows the same error"),
    }
}

fn env_file(ctx: &DoctorContext) -> Outcome {
    let path = &ctx.settings.env_file;
    match &ctx.env {
        Err(e) => Outcome::fail(e.clone(), format!("fix the line named above in `{}`", path.display())),
        Ok(None) => Outcome::fail(format!("`{}` does not exist", path.display()), "run `ragctl secret gen`"),
        Ok(Some(doc)) => {
            if let Err(e) = crate::stack::renamed_port_keys_in_env(doc, path) {
                let hint = e.hint().unwrap_or_default();
                return Outcome::fail(e.to_string(), hint);
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(path) {
                    let mode = meta.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Outcome::warn(
                            format!(
                                "`{}` holds secrets but has mode {mode:o}: other users can read it",
                                path.display()
                            ),
                            format!("chmod 600 {}", path.display()),
                        );
                    }
                }
            }
            Outcome::pass(format!("`{}` parses, mode 0600", path.display()))
        }
    }
}

fn secrets(ctx: &DoctorContext) -> Outcome {
    let (Ok(stack), Ok(catalog), Ok(Some(doc))) = (&ctx.stack, &ctx.catalog, &ctx.env) else {
        return Outcome::skip("needs the stack and .env");
    };
    let scope = in_scope(stack, catalog, doc, &[]);
    let problems: Vec<_> = assess(&scope, doc).into_iter().filter(|a| !a.status.is_ok()).collect();
    if problems.is_empty() {
        return Outcome::pass(format!("{} secrets set, strong and consistent", scope.len()));
    }
    let describe = |a: &crate::secrets::SecretAssessment| match &a.status {
        SecretStatus::Missing => format!("{} is missing", a.name),
        SecretStatus::Weak { bits } => format!("{} is weak (about {bits} bits)", a.name),
        SecretStatus::PublicDefault => format!("{} is the reference deployment's publicly known default", a.name),
        SecretStatus::PairMismatch { other } => format!("{} differs from {other}", a.name),
        SecretStatus::Malformed { reason } => format!("{} is malformed: {reason}", a.name),
        SecretStatus::Set => String::new(),
    };
    let detail = problems.iter().map(describe).collect::<Vec<_>>().join("\n");
    let hint = problems.iter().filter_map(|a| a.hint()).collect::<Vec<_>>();
    let mut hints: Vec<String> = Vec::new();
    for h in hint {
        if !hints.contains(&h) {
            hints.push(h);
        }
    }
    Outcome::fail(detail, hints.join("; "))
}

/// Storage backends by `STORAGE_TYPE` value and vector stores by `VECTOR_STORE` value, with the prefix of the
/// keys that only that backend reads. A key of a backend the stack does not use is not judged: Dify's
/// `.env.example` carries every backend's keys with placeholder hosts.
const STORAGE_KEY_PREFIXES: &[(&str, &str)] = &[
    ("opendal", "OPENDAL_"),
    ("s3", "S3_"),
    ("azure-blob", "AZURE_BLOB_"),
    ("aliyun-oss", "ALIYUN_OSS_"),
    ("google-storage", "GOOGLE_STORAGE_"),
    ("tencent-cos", "TENCENT_COS_"),
    ("oci-storage", "OCI_"),
    ("huawei-obs", "HUAWEI_OBS_"),
    ("volcengine-tos", "VOLCENGINE_TOS_"),
    ("baidu-obs", "BAIDU_OBS_"),
    ("supabase", "SUPABASE_"),
    ("clickzetta-volume", "CLICKZETTA_VOLUME_"),
];

/// See [`STORAGE_KEY_PREFIXES`].
const VECTOR_STORE_KEY_PREFIXES: &[(&str, &str)] = &[
    ("weaviate", "WEAVIATE_"),
    ("qdrant", "QDRANT_"),
    ("milvus", "MILVUS_"),
    ("myscale", "MYSCALE_"),
    ("relyt", "RELYT_"),
    ("pgvector", "PGVECTOR_"),
    ("pgvecto-rs", "PGVECTO_RS_"),
    ("chroma", "CHROMA_"),
    ("opensearch", "OPENSEARCH_"),
    ("oracle", "ORACLE_"),
    ("tidb_vector", "TIDB_VECTOR_"),
    ("tidb_on_qdrant", "TIDB_ON_QDRANT_"),
    ("elasticsearch", "ELASTICSEARCH_"),
    ("elasticsearch-ja", "ELASTICSEARCH_"),
    ("couchbase", "COUCHBASE_"),
    ("oceanbase", "OCEANBASE_"),
    ("seekdb", "SEEKDB_"),
    ("opengauss", "OPENGAUSS_"),
    ("tablestore", "TABLESTORE_"),
    ("vastbase", "VASTBASE_"),
    ("lindorm", "LINDORM_"),
    ("matrixone", "MATRIXONE_"),
    ("iris", "IRIS_"),
    ("analyticdb", "ANALYTICDB_"),
    ("baidu", "BAIDU_VECTOR_DB_"),
    ("vikingdb", "VIKINGDB_"),
    ("upstash", "UPSTASH_VECTOR_"),
    ("tencent", "TENCENT_VECTOR_DB_"),
    ("huawei_cloud", "HUAWEI_CLOUD_"),
    ("alibabacloud_mysql", "ALIBABACLOUD_MYSQL_"),
    ("clickzetta", "CLICKZETTA_"),
    ("hologres", "HOLOGRES_"),
];

/// The storage backend and vector store the stack uses (`STORAGE_TYPE`, `VECTOR_STORE`, the enabled profiles).
pub(crate) fn backends_in_use(ctx: &DoctorContext, stack: &crate::stack::Stack) -> Vec<String> {
    let mut in_use: Vec<String> = stack.profiles.clone();
    for key in ["STORAGE_TYPE", "VECTOR_STORE"] {
        if let Some(v) = ctx.value(key).or_else(|| default_in_stack(stack, key)) {
            in_use.push(v);
        }
    }
    if !in_use.iter().any(|u| STORAGE_KEY_PREFIXES.iter().any(|(b, _)| b == u)) {
        in_use.push("opendal".into()); // Dify's default STORAGE_TYPE
    }
    in_use
}

/// Whether `key` belongs to a storage backend or vector store other than the ones in use.
pub(crate) fn key_of_unused_backend(key: &str, in_use: &[String]) -> bool {
    let backends = || STORAGE_KEY_PREFIXES.iter().chain(VECTOR_STORE_KEY_PREFIXES);
    let longest = backends().filter(|(_, prefix)| key.starts_with(prefix)).map(|(_, prefix)| prefix.len()).max();
    let Some(len) = longest else { return false };
    !backends()
        .any(|(backend, prefix)| prefix.len() == len && key.starts_with(prefix) && in_use.iter().any(|u| u == backend))
}

/// Whether a service of the stack reads `key`, by name or through a `${KEY...}` reference.
fn read_by_stack(stack: &crate::stack::Stack, key: &str) -> bool {
    let reference = format!("${{{key}");
    stack.services.values().any(|s| {
        s.environment.iter().any(|(k, v)| {
            k == key
                || v.match_indices(&reference).any(|(at, _)| {
                    !v[at + reference.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
        })
    })
}

/// `*_HOST` keys and URL-valued endpoints whose host part should be a service of the stack. Only keys a service
/// of the stack reads are judged, and none of a storage backend or vector store the stack does not use.
fn hosts(ctx: &DoctorContext) -> Outcome {
    let Ok(stack) = &ctx.stack else { return Outcome::skip("needs the stack") };
    let in_use = backends_in_use(ctx, stack);
    let mut bad = Vec::new();
    let mut checked = 0;
    let mut keys: Vec<&String> = ctx.env_values.keys().collect();
    for svc in stack.services.values() {
        keys.extend(svc.environment.keys());
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        if !(key.ends_with("_HOST") || key.ends_with("_ENDPOINT")) || key == "DOCKER_HOST" {
            continue;
        }
        if !read_by_stack(stack, key) || key_of_unused_backend(key, &in_use) {
            continue;
        }
        let Some(value) = ctx.value(key).or_else(|| default_in_stack(stack, key)) else { continue };
        let host = host_of(&value);
        if host.is_empty() || host.contains('.') || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
            continue; // an outside address: not ours to judge
        }
        checked += 1;
        if !stack.services.contains_key(host) {
            let provider =
                ctx.catalog.as_ref().ok().and_then(|c| {
                    c.iter().find(|e| e.profile.services.contains_key(host)).map(|e| e.profile.name.clone())
                });
            bad.push((key.clone(), value.clone(), host.to_string(), provider));
        }
    }
    if bad.is_empty() {
        return Outcome::pass(format!("{checked} host references name enabled services"));
    }
    let detail = bad
        .iter()
        .map(|(k, v, h, _)| format!("{k}={v}: `{h}` is not a service of this stack"))
        .collect::<Vec<_>>()
        .join("\n");
    let hint = bad
        .iter()
        .map(|(k, _, h, provider)| match provider {
            Some(p) => format!("enable profile `{p}` (it starts `{h}`), or fix {k} in .env"),
            None => format!("set {k} to one of: {}", stack.services.keys().cloned().collect::<Vec<_>>().join(", ")),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Outcome::fail(detail, hint)
}

/// The default a service's environment gives a key, from `${KEY:-default}`.
fn default_in_stack(stack: &crate::stack::Stack, key: &str) -> Option<String> {
    let needle = format!("${{{key}:-");
    stack.services.values().flat_map(|s| s.environment.values()).find_map(|v| {
        let start = v.find(&needle)? + needle.len();
        let end = v[start..].find('}')? + start;
        Some(v[start..end].to_string()).filter(|d| !d.is_empty())
    })
}

/// `db_postgres`, `http://weaviate:8080` → `weaviate`, `redis://:pw@redis:6379/1` → `redis`.
pub fn host_of(value: &str) -> &str {
    let rest = value.split_once("://").map(|(_, r)| r).unwrap_or(value);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let end = rest.find([':', '/', '?']).unwrap_or(rest.len());
    &rest[..end]
}

fn profiles(ctx: &DoctorContext) -> Outcome {
    let Ok(stack) = &ctx.stack else { return Outcome::skip("needs the stack") };
    let mut problems = Vec::new();
    if let Some(cp) = ctx.env_values.get("COMPOSE_PROFILES").filter(|v| !v.is_empty()) {
        let listed: Vec<&str> = cp.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        // Always-on profiles (base, runtime) carry no compose profile: their services run whatever COMPOSE_PROFILES says.
        let always = |p: &str| ctx.catalog.as_ref().is_ok_and(|c| c.get(p).is_some_and(|e| e.profile.always));
        let enabled: Vec<&str> = stack.profiles.iter().map(String::as_str).filter(|p| !always(p)).collect();
        let missing: Vec<&&str> = enabled.iter().filter(|p| !listed.contains(p)).collect();
        let extra: Vec<&&str> = listed.iter().filter(|p| !enabled.contains(p)).collect();
        if !missing.is_empty() || !extra.is_empty() {
            problems.push(format!(
                "COMPOSE_PROFILES={cp} in .env, but ragctl enables {} (docker compose run by hand would start another stack)",
                enabled.join(",")
            ));
        }
    }
    if let Some(vs) = ctx.value("VECTOR_STORE") {
        let vector_profiles = ["weaviate", "qdrant", "pgvector", "milvus"];
        if vector_profiles.contains(&vs.as_str()) && !stack.profiles.contains(&vs) {
            problems.push(format!(
                "VECTOR_STORE={vs}, but profile `{vs}` is not enabled (enabled: {})",
                stack.profiles.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Outcome::pass(format!("enabled: {}", stack.profiles.join(", ")))
    } else {
        Outcome::fail(
            problems.join("\n"),
            "make .env agree with the profiles: fix COMPOSE_PROFILES / VECTOR_STORE, or enable the profile with --profile or `profiles:` in ragctl.yaml",
        )
    }
}

fn rendered(ctx: &DoctorContext) -> Outcome {
    let Ok(stack) = &ctx.stack else { return Outcome::skip("needs the stack") };
    let files = match render_stack(stack, &ctx.settings, &TemplateSource::new(&ctx.settings.project_dir)) {
        Ok(f) => f,
        Err(e) => return Outcome::fail(e.to_string(), "fix the template named above"),
    };
    let stale: Vec<&str> = files
        .iter()
        .filter(|f| {
            std::fs::read(ctx.settings.project_dir.join(&f.path)).ok().as_deref() != Some(f.contents.as_bytes())
        })
        .map(|f| f.path.as_str())
        .collect();
    if stale.is_empty() {
        Outcome::pass(format!("{} rendered files up to date", files.len()))
    } else {
        Outcome::fail(
            format!("out of date or missing: {}", stale.join(", ")),
            "run `ragctl render` (or `ragctl up`, which renders first)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_part_of_references() {
        assert_eq!(host_of("db_postgres"), "db_postgres");
        assert_eq!(host_of("http://weaviate:8080"), "weaviate");
        assert_eq!(host_of("redis://:secret@redis:6379/1"), "redis");
        assert_eq!(host_of("weaviate:50051"), "weaviate");
        assert_eq!(host_of("https://api.example.com/v1"), "api.example.com");
    }
}
