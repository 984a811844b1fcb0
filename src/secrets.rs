//! Secrets: generating them from the OS CSPRNG, judging existing values, and planning what `secret gen`
//! changes. Pure apart from the random source: reading and writing `.env` is the command layer's job.
//!
//! Secret values live in [`SecretValue`], whose `Debug` and `Display` redact, so a value can only reach
//! output through an explicit [`SecretValue::expose`] (used for writing `.env` and for `--show`).

use std::fmt;

use base64::Engine;
use rand::TryRng;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::dotenv::DotEnv;
use crate::error::Error;
use crate::profile::SecretFormat;
use crate::stack::{Stack, StackSecret, derive_references};

/// A secret value. Redacted in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value itself, for writing `.env` or for `--show`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Below this estimated strength an existing value is weak, whatever its format.
pub const MIN_BITS: f64 = 96.0;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Generate a value of `format` from the operating system's CSPRNG.
pub fn generate(format: SecretFormat) -> Result<SecretValue, Error> {
    let mut rng = rand::rngs::SysRng;
    let mut bytes = |n: usize| -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; n];
        rng.try_fill_bytes(&mut buf).map_err(|e| Error::config(format!("failed to read the OS random source: {e}")))?;
        Ok(buf)
    };
    let value = match format {
        SecretFormat::Base64 { bytes: n } => base64::engine::general_purpose::STANDARD.encode(bytes(n)?),
        SecretFormat::Hex { bytes: n } => bytes(n)?.iter().map(|b| format!("{b:02x}")).collect(),
        SecretFormat::Alnum { length } => {
            // Rejection sampling keeps every character equally likely (256 is not a multiple of 62).
            let limit = 256 - (256 % ALNUM.len());
            let mut out = String::with_capacity(length);
            while out.len() < length {
                for b in bytes(length * 2)? {
                    if (b as usize) < limit && out.len() < length {
                        out.push(ALNUM[b as usize % ALNUM.len()] as char);
                    }
                }
            }
            out
        }
    };
    Ok(SecretValue(value))
}

/// Words that make up most human-chosen "secrets"; each occurrence counts as one guess from a small list.
const COMMON_WORDS: &[&str] = &[
    "password", "passwd", "secret", "admin", "changeme", "letmein", "qwerty", "welcome", "dify", "sandbox", "plugin",
    "daemon", "redis", "postgres", "weaviate", "default", "example", "test", "root", "key",
];

/// Bits one [`COMMON_WORDS`] occurrence is worth: an attacker tries a few thousand words first.
const WORD_BITS: f64 = 12.0;

/// A rough strength estimate, deliberately pessimistic about the shapes people type: a value that repeats a
/// shorter unit is worth that unit, a common word is worth one guess from a short list, and the remaining
/// characters are worth log2 of their class pool, but no more than their own variety supports.
pub fn estimated_bits(value: &str) -> f64 {
    let chars: Vec<char> = value.chars().collect();
    let period = (1..=chars.len()).find(|&p| (p..chars.len()).all(|i| chars[i] == chars[i - p])).unwrap_or(0);
    if period == 0 {
        return 0.0;
    }
    let unit: String = chars[..period].iter().collect();
    let repeats = chars.len() as f64 / period as f64;
    let (words, rest) = strip_common_words(&unit);
    words as f64 * WORD_BITS + character_bits(&rest) + repeats.log2()
}

/// The number of [`COMMON_WORDS`] in `unit` and what is left without them.
fn strip_common_words(unit: &str) -> (usize, String) {
    let mut rest = unit.to_ascii_lowercase();
    let original: Vec<char> = unit.chars().collect();
    let mut keep = vec![true; original.len()];
    let mut words = 0;
    for word in COMMON_WORDS {
        while let Some(at) = rest.find(word) {
            // Positions are bytes of an ASCII-lowercased copy; non-ASCII characters keep their width.
            let start = rest[..at].chars().count();
            for k in keep.iter_mut().skip(start).take(word.len()) {
                *k = false;
            }
            rest.replace_range(at..at + word.len(), &"\0".repeat(word.len()));
            words += 1;
        }
    }
    (words, original.iter().zip(keep).filter(|(_, k)| *k).map(|(c, _)| c).collect())
}

fn character_bits(value: &str) -> f64 {
    let mut pool = 0u32;
    if value.chars().any(|c| c.is_ascii_lowercase()) {
        pool += 26;
    }
    if value.chars().any(|c| c.is_ascii_uppercase()) {
        pool += 26;
    }
    if value.chars().any(|c| c.is_ascii_digit()) {
        pool += 10;
    }
    if value.chars().any(|c| !c.is_ascii_alphanumeric()) {
        pool += 33;
    }
    if pool == 0 {
        return 0.0;
    }
    let distinct = value.chars().collect::<std::collections::BTreeSet<_>>().len();
    // A value drawn from a large pool uses many different characters; one that does not was not drawn from it.
    let per_char = f64::from(pool).log2().min((distinct as f64).log2() + 1.0);
    value.chars().count() as f64 * per_char
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SecretStatus {
    Set,
    Missing,
    Weak {
        bits: u32,
    },
    PublicDefault,
    /// Differs from the secret it must equal, or from what it is derived from.
    PairMismatch {
        other: String,
    },
    /// Derived and meant to be a URL, but its consumer cannot parse it (typically an unencoded password).
    Malformed {
        reason: String,
    },
}

impl SecretStatus {
    pub fn label(&self) -> &'static str {
        match self {
            SecretStatus::Set => "set",
            SecretStatus::Missing => "missing",
            SecretStatus::Weak { .. } => "weak",
            SecretStatus::PublicDefault => "public default",
            SecretStatus::PairMismatch { .. } => "pair mismatch",
            SecretStatus::Malformed { .. } => "malformed",
        }
    }

    pub fn is_ok(&self) -> bool {
        *self == SecretStatus::Set
    }
}

/// One secret of the stack, judged against `.env`.
#[derive(Debug, Clone, Serialize)]
pub struct SecretAssessment {
    pub name: String,
    pub profile: String,
    #[serde(flatten)]
    pub status: SecretStatus,
    pub consumers: Vec<String>,
    #[serde(skip)]
    pub value: Option<SecretValue>,
}

impl SecretAssessment {
    /// What to run to fix this secret.
    pub fn hint(&self) -> Option<String> {
        match &self.status {
            SecretStatus::Set => None,
            SecretStatus::Missing => Some("run `ragctl secret gen`".into()),
            SecretStatus::Weak { .. } | SecretStatus::PublicDefault => {
                Some(format!("run `ragctl secret gen --rotate {}`", self.name))
            }
            SecretStatus::PairMismatch { other } => Some(format!(
                "run `ragctl secret gen --rotate {other}` to set both again, or make `{}` equal in .env",
                self.name
            )),
            SecretStatus::Malformed { .. } => Some(format!(
                "run `ragctl secret gen --rotate {}` to derive it again, or percent-encode the password in .env",
                self.name
            )),
        }
    }
}

fn value_of<'a>(env: &'a DotEnv, name: &str) -> Option<&'a str> {
    env.get(name).filter(|v| !v.is_empty())
}

/// The secrets `secret` commands and the doctor work on: the stack's own, plus a secret of another profile
/// that `.env` holds when it follows one of them (the `CELERY_BROKER_URL` that carries `REDIS_PASSWORD` in the
/// middleware shape) or when it is `named` (`--rotate SECRET_KEY` after an import), with what it equals or is
/// derived from, so it is checked and rotated like the rest.
pub fn in_scope(stack: &Stack, catalog: &Catalog, env: &DotEnv, named: &[String]) -> Vec<StackSecret> {
    let mut scope = stack.secrets.clone();
    let known = |scope: &[StackSecret], n: &str| scope.iter().any(|s| s.spec.name == n);
    let others: Vec<StackSecret> = catalog
        .iter()
        .flat_map(|e| {
            e.profile.secrets.iter().map(|s| StackSecret { spec: s.clone(), profile: e.profile.name.clone() })
        })
        .collect();
    for s in &others {
        let follows =
            s.spec.equals.iter().map(String::as_str).chain(s.spec.derive.iter().flat_map(|t| derive_references(t)));
        let follows_the_stack = follows.into_iter().any(|r| known(&stack.secrets, r));
        let wanted = follows_the_stack || named.contains(&s.spec.name);
        if wanted && value_of(env, &s.spec.name).is_some() && !known(&scope, &s.spec.name) {
            scope.push(s.clone());
        }
    }
    // What a secret in scope equals or is derived from, so rotating it has a root to rotate.
    let roots: Vec<String> = scope
        .iter()
        .flat_map(|s| {
            s.spec.equals.iter().map(String::as_str).chain(s.spec.derive.iter().flat_map(|t| derive_references(t)))
        })
        .map(str::to_string)
        .collect();
    for root in roots {
        if !known(&scope, &root)
            && let Some(s) = others.iter().find(|s| s.spec.name == root)
        {
            scope.push(s.clone());
        }
    }
    scope
}

/// Judge every secret in `scope` (see [`in_scope`]) against `.env`.
pub fn assess(scope: &[StackSecret], env: &DotEnv) -> Vec<SecretAssessment> {
    scope
        .iter()
        .map(|s| {
            let value = value_of(env, &s.spec.name);
            let status = match value {
                None => SecretStatus::Missing,
                Some(v) if s.spec.public_defaults.iter().any(|d| d == v) => SecretStatus::PublicDefault,
                Some(v) => {
                    if let Some(other) = &s.spec.equals {
                        if value_of(env, other).is_some_and(|o| o != v) {
                            SecretStatus::PairMismatch { other: other.clone() }
                        } else {
                            SecretStatus::Set
                        }
                    } else if let Some(template) = &s.spec.derive {
                        let other = derive_references(template).next().unwrap_or_default().to_string();
                        match derive_value(template, &|n| value_of(env, n).map(str::to_string)) {
                            Some(expected) => match same_as_consumed(&expected, v) {
                                Ok(true) => SecretStatus::Set,
                                Ok(false) => SecretStatus::PairMismatch { other },
                                Err(reason) => SecretStatus::Malformed { reason },
                            },
                            None => SecretStatus::Set,
                        }
                    } else if estimated_bits(v) < MIN_BITS {
                        SecretStatus::Weak { bits: estimated_bits(v) as u32 }
                    } else {
                        SecretStatus::Set
                    }
                }
            };
            SecretAssessment {
                name: s.spec.name.clone(),
                profile: s.profile.clone(),
                status,
                consumers: s.spec.consumers.clone(),
                value: value.map(SecretValue::new),
            }
        })
        .collect()
}

/// Fill `{NAME}` placeholders; `None` when one of them has no value. In a URL template a placeholder in the
/// user-info part (before the `@`) is percent-encoded, as a URL's consumer decodes it there.
pub fn derive_value(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let userinfo_end = template.split_once("://").and(template.rfind('@'));
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let offset = template.len() - rest.len() + start;
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let value = lookup(&after[..end])?;
        if userinfo_end.is_some_and(|at| offset < at) {
            out.push_str(&percent_encode_userinfo(&value));
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Every byte but RFC 3986's unreserved characters as `%XX`.
fn percent_encode_userinfo(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `%XX` sequences decoded, as Celery (kombu) decodes a broker URL's user and password.
fn percent_decode(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Whether `actual` means what `expected` means to the consumer. Values that are URLs are compared as parsed:
/// scheme, host, port and path as they are, user and password percent-decoded; other values as text.
/// `Err` says why `actual` is not a usable URL when `expected` is one.
fn same_as_consumed(expected: &str, actual: &str) -> Result<bool, String> {
    let Ok(want) = url::Url::parse(expected) else {
        return Ok(expected == actual);
    };
    let got =
        url::Url::parse(actual).map_err(|e| format!("not a valid URL ({e}); is the password percent-encoded?"))?;
    let parts = |u: &url::Url| {
        (
            u.scheme().to_string(),
            percent_decode(u.username()),
            u.password().map(percent_decode),
            u.host_str().map(str::to_string),
            u.port(),
            u.path().to_string(),
        )
    };
    Ok(parts(&want) == parts(&got))
}

/// Why `secret gen` sets a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// Was missing; freshly generated.
    Generated,
    /// Was missing; copied from the secret it must equal.
    Paired,
    /// Computed from the secrets it is derived from.
    Derived,
    /// Regenerated on request (`--rotate`), or follows a rotated secret.
    Rotated,
}

#[derive(Debug, Clone)]
pub struct SecretChange {
    pub name: String,
    pub profile: String,
    pub value: SecretValue,
    pub reason: ChangeReason,
    /// Set when the old value may already be stored in a data directory (see `SecretSpec::baked_into`).
    pub baked_into: Option<String>,
}

/// The changes `secret gen [--rotate ...]` makes to `.env`: missing secrets filled, rotated ones and
/// everything paired with or derived from them regenerated. Existing values are never touched otherwise.
pub fn plan_gen(scope: &[StackSecret], env: &DotEnv, rotate: &[String]) -> Result<Vec<SecretChange>, Error> {
    let by_name = |n: &str| scope.iter().find(|s| s.spec.name == n);
    // A rotated `equals`/`derive` secret is rotated through its root.
    let mut roots: Vec<&StackSecret> = Vec::new();
    for name in rotate {
        let Some(secret) = by_name(name) else {
            return Err(Error::config_hint(
                format!("unknown secret `{name}`"),
                format!(
                    "secrets of the enabled profiles and in .env: {}",
                    scope.iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let root = match (&secret.spec.equals, &secret.spec.derive) {
            (Some(other), _) => by_name(other).unwrap_or(secret),
            (None, Some(template)) => match derive_references(template).next().and_then(by_name) {
                Some(r) => r,
                None => secret,
            },
            _ => secret,
        };
        if !roots.iter().any(|r| r.spec.name == root.spec.name) {
            roots.push(root);
        }
    }

    let mut changes: Vec<SecretChange> = Vec::new();
    let current = |changes: &[SecretChange], n: &str| -> Option<String> {
        changes
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.value.expose().to_string())
            .or_else(|| value_of(env, n).map(str::to_string))
    };

    // 1. Secrets with a format: rotate the requested ones, generate the missing ones.
    for s in scope.iter().filter(|s| s.spec.format.is_some()) {
        let Some(format) = s.spec.format else { continue };
        let rotating = roots.iter().any(|r| r.spec.name == s.spec.name);
        let missing = value_of(env, &s.spec.name).is_none();
        if !rotating && !missing {
            continue;
        }
        // An imported partner value is adopted rather than creating a mismatch.
        let partner = scope
            .iter()
            .filter(|o| o.spec.equals.as_deref() == Some(&s.spec.name))
            .find_map(|o| value_of(env, &o.spec.name));
        let (value, reason) = match (rotating, partner) {
            (true, _) => (generate(format)?, ChangeReason::Rotated),
            (false, Some(p)) => (SecretValue::new(p), ChangeReason::Paired),
            (false, None) => (generate(format)?, ChangeReason::Generated),
        };
        changes.push(SecretChange {
            name: s.spec.name.clone(),
            profile: s.profile.clone(),
            value,
            reason,
            baked_into: if rotating && !missing { s.spec.baked_into.clone() } else { None },
        });
    }
    // 2. Secrets that must equal another: follow a rotation, or fill when missing.
    for s in scope {
        let Some(other) = &s.spec.equals else { continue };
        let follows = changes.iter().any(|c| &c.name == other && c.reason == ChangeReason::Rotated);
        if !follows && value_of(env, &s.spec.name).is_some() {
            continue;
        }
        if let Some(v) = current(&changes, other) {
            let reason = if follows { ChangeReason::Rotated } else { ChangeReason::Paired };
            changes.push(SecretChange {
                name: s.spec.name.clone(),
                profile: s.profile.clone(),
                value: SecretValue::new(v),
                reason,
                baked_into: None,
            });
        }
    }
    // 3. Derived secrets: recompute when missing or when an input changed.
    for s in scope {
        let Some(template) = &s.spec.derive else { continue };
        let input_changed = derive_references(template).any(|r| changes.iter().any(|c| c.name == r));
        if !input_changed && value_of(env, &s.spec.name).is_some() {
            continue;
        }
        if let Some(v) = derive_value(template, &|n| current(&changes, n)) {
            if value_of(env, &s.spec.name) == Some(v.as_str()) {
                continue;
            }
            let reason = if input_changed && value_of(env, &s.spec.name).is_some() {
                ChangeReason::Rotated
            } else {
                ChangeReason::Derived
            };
            changes.push(SecretChange {
                name: s.spec.name.clone(),
                profile: s.profile.clone(),
                value: SecretValue::new(v),
                reason,
                baked_into: None,
            });
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(profiles: &[&str]) -> Stack {
        crate::stack::test_support::embedded_stack(profiles, "shape: full\n")
    }

    fn apply(env: &mut DotEnv, changes: &[SecretChange]) {
        for c in changes {
            env.set(&c.name, c.value.expose());
        }
    }

    #[test]
    fn generated_values_match_their_formats() {
        let key = generate(SecretFormat::Base64 { bytes: 42 }).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(key.expose()).unwrap();
        assert_eq!(decoded.len(), 42);
        let pw = generate(SecretFormat::Alnum { length: 32 }).unwrap();
        assert_eq!(pw.expose().len(), 32);
        assert!(pw.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(pw, generate(SecretFormat::Alnum { length: 32 }).unwrap());
        let hex = generate(SecretFormat::Hex { bytes: 16 }).unwrap();
        assert!(hex.expose().len() == 32 && hex.expose().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn debug_and_display_redact() {
        let v = SecretValue::new("hunter2hunter2");
        assert_eq!(format!("{v:?} {v}"), "SecretValue(<redacted>) <redacted>");
    }

    #[test]
    fn gen_fills_missing_pairs_and_derived_then_is_a_no_op() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        apply(&mut env, &changes);
        let a = assess(&stack.secrets, &env);
        assert!(a.iter().all(|s| s.status.is_ok()), "{a:?}");
        assert_eq!(env.get("CODE_EXECUTION_API_KEY"), env.get("SANDBOX_API_KEY"));
        assert_eq!(env.get("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"), env.get("WEAVIATE_API_KEY"));
        let broker = env.get("CELERY_BROKER_URL").unwrap();
        assert!(broker.contains(env.get("REDIS_PASSWORD").unwrap()), "{broker}");
        assert!(plan_gen(&stack.secrets, &env, &[]).unwrap().is_empty());
    }

    #[test]
    fn rotate_regenerates_the_root_and_everything_following_it() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        apply(&mut env, &changes);
        let before = env.clone();
        let changes = plan_gen(&stack.secrets, &env, &["REDIS_PASSWORD".into()]).unwrap();
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["REDIS_PASSWORD", "CELERY_BROKER_URL"]);
        apply(&mut env, &changes);
        assert_ne!(env.get("REDIS_PASSWORD"), before.get("REDIS_PASSWORD"));
        assert_eq!(env.get("DB_PASSWORD"), before.get("DB_PASSWORD"));
        assert!(assess(&stack.secrets, &env).iter().all(|s| s.status.is_ok()));
        // Rotating the paired name rotates its root.
        let changes = plan_gen(&stack.secrets, &env, &["CODE_EXECUTION_API_KEY".into()]).unwrap();
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["SANDBOX_API_KEY", "CODE_EXECUTION_API_KEY"]);
        let db = plan_gen(&stack.secrets, &env, &["DB_PASSWORD".into()]).unwrap();
        assert!(db[0].baked_into.is_some());
        assert!(matches!(plan_gen(&stack.secrets, &env, &["NOPE".into()]), Err(Error::Config { .. })));
    }

    #[test]
    fn assess_finds_public_defaults_weak_values_and_mismatches() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        apply(&mut env, &changes);
        env.set("DB_PASSWORD", "difyai123456");
        env.set("REDIS_PASSWORD", "short1");
        env.set("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "something-else-entirely-long-enough-0123456789");
        let a = assess(&stack.secrets, &env);
        let status = |n: &str| a.iter().find(|s| s.name == n).unwrap().status.clone();
        assert_eq!(status("DB_PASSWORD"), SecretStatus::PublicDefault);
        assert!(matches!(status("REDIS_PASSWORD"), SecretStatus::Weak { .. }));
        assert_eq!(
            status("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"),
            SecretStatus::PairMismatch { other: "WEAVIATE_API_KEY".into() }
        );
        // CELERY_BROKER_URL still embeds the old password.
        assert!(matches!(status("CELERY_BROKER_URL"), SecretStatus::PairMismatch { .. }));
    }

    #[test]
    fn an_imported_partner_value_is_adopted() {
        let stack = stack(&["app", "weaviate"]);
        let env = DotEnv::parse("CODE_EXECUTION_API_KEY=Zq8sX2p9Lm4nB7vC1xK5wE3rT6yU0iO2\n").unwrap();
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        let sandbox = changes.iter().find(|c| c.name == "SANDBOX_API_KEY").unwrap();
        assert_eq!(
            (sandbox.value.expose(), sandbox.reason),
            ("Zq8sX2p9Lm4nB7vC1xK5wE3rT6yU0iO2", ChangeReason::Paired)
        );
    }

    #[test]
    fn strength_estimate() {
        assert!(estimated_bits("difyai123456") < MIN_BITS);
        assert!(estimated_bits(generate(SecretFormat::Alnum { length: 32 }).unwrap().expose()) > MIN_BITS);
    }

    #[test]
    fn a_broker_url_is_compared_as_celery_parses_it() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        apply(&mut env, &changes);
        let status = |env: &DotEnv| {
            assess(&stack.secrets, env).into_iter().find(|a| a.name == "CELERY_BROKER_URL").unwrap().status
        };
        env.set("REDIS_PASSWORD", "Zq8s/X2p9#Lm4n@B7vC1xK5wE3rT6yU0iO2");
        env.set("CELERY_BROKER_URL", "redis://:Zq8s%2FX2p9%23Lm4n%40B7vC1xK5wE3rT6yU0iO2@redis:6379/1");
        assert_eq!(status(&env), SecretStatus::Set, "a correctly percent-encoded password is the same password");
        env.set("CELERY_BROKER_URL", "redis://:Zq8s/X2p9#Lm4n@B7vC1xK5wE3rT6yU0iO2@redis:6379/1");
        assert!(!status(&env).is_ok(), "an unencoded password breaks the URL: {:?}", status(&env));
        env.set("CELERY_BROKER_URL", "redis://:Zq8s%2FX2p9%23Lm4n%40B7vC1xK5wE3rT6yU0iO3@redis:6379/1");
        assert_eq!(status(&env), SecretStatus::PairMismatch { other: "REDIS_PASSWORD".into() });
        // What gen derives is encoded the same way, and judged consistent.
        env.remove("CELERY_BROKER_URL");
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        apply(&mut env, &changes);
        assert_eq!(
            env.get("CELERY_BROKER_URL"),
            Some("redis://:Zq8s%2FX2p9%23Lm4n%40B7vC1xK5wE3rT6yU0iO2@redis:6379/1")
        );
        assert_eq!(status(&env), SecretStatus::Set);
    }

    #[test]
    fn obviously_weak_values_are_weak_whatever_their_length() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack.secrets, &env, &[]).unwrap();
        apply(&mut env, &changes);
        env.set("SANDBOX_API_KEY", &"a".repeat(32));
        env.set("CODE_EXECUTION_API_KEY", &"a".repeat(32));
        env.set("PLUGIN_DAEMON_KEY", "passwordpasswordpasswordpassword");
        env.set("PLUGIN_DIFY_INNER_API_KEY", "abcabcabcabcabcabcabcabcabcabcabcabcabcabc");
        env.set("INNER_API_KEY_FOR_PLUGIN", "abcabcabcabcabcabcabcabcabcabcabcabcabcabc");
        env.set("SECRET_KEY", "Password1Password1Password1Password1");
        let a = assess(&stack.secrets, &env);
        for name in ["SANDBOX_API_KEY", "PLUGIN_DAEMON_KEY", "PLUGIN_DIFY_INNER_API_KEY", "SECRET_KEY"] {
            let status = &a.iter().find(|s| s.name == name).unwrap().status;
            assert!(matches!(status, SecretStatus::Weak { .. }), "{name}: {status:?}");
        }
    }

    #[test]
    fn generated_values_of_every_format_are_never_judged_weak() {
        for format in [
            SecretFormat::Alnum { length: 32 },
            SecretFormat::Base64 { bytes: 42 },
            SecretFormat::Hex { bytes: 16 },
            SecretFormat::Hex { bytes: 32 },
        ] {
            for _ in 0..500 {
                let v = generate(format).unwrap();
                assert!(estimated_bits(v.expose()) >= MIN_BITS, "{format:?}: {} bits", estimated_bits(v.expose()));
            }
        }
    }
}
