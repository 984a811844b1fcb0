//! Secrets: generating them from the OS CSPRNG, judging existing values, and planning what `secret gen`
//! changes. Pure apart from the random source: reading and writing `.env` is the command layer's job.
//!
//! Secret values live in [`SecretValue`], whose `Debug` and `Display` redact, so a value can only reach
//! output through an explicit [`SecretValue::expose`] (used for writing `.env` and for `--show`).

use std::fmt;

use base64::Engine;
use rand::TryRng;
use serde::Serialize;

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

/// A rough strength estimate: length × log2(size of the character classes used).
pub fn estimated_bits(value: &str) -> f64 {
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
    value.chars().count() as f64 * f64::from(pool).log2()
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
}

impl SecretStatus {
    pub fn label(&self) -> &'static str {
        match self {
            SecretStatus::Set => "set",
            SecretStatus::Missing => "missing",
            SecretStatus::Weak { .. } => "weak",
            SecretStatus::PublicDefault => "public default",
            SecretStatus::PairMismatch { .. } => "pair mismatch",
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
        }
    }
}

fn value_of<'a>(env: &'a DotEnv, name: &str) -> Option<&'a str> {
    env.get(name).filter(|v| !v.is_empty())
}

/// Judge every secret of the stack against `.env`.
pub fn assess(stack: &Stack, env: &DotEnv) -> Vec<SecretAssessment> {
    stack
        .secrets
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
                        match derive_value(template, &|n| value_of(env, n).map(str::to_string)) {
                            Some(expected) if expected != v => SecretStatus::PairMismatch {
                                other: derive_references(template).next().unwrap_or_default().to_string(),
                            },
                            _ => SecretStatus::Set,
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

/// Fill `{NAME}` placeholders; `None` when one of them has no value.
pub fn derive_value(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        out.push_str(&lookup(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
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
pub fn plan_gen(stack: &Stack, env: &DotEnv, rotate: &[String]) -> Result<Vec<SecretChange>, Error> {
    let by_name = |n: &str| stack.secrets.iter().find(|s| s.spec.name == n);
    // A rotated `equals`/`derive` secret is rotated through its root.
    let mut roots: Vec<&StackSecret> = Vec::new();
    for name in rotate {
        let Some(secret) = by_name(name) else {
            return Err(Error::config_hint(
                format!("unknown secret `{name}`"),
                format!(
                    "secrets of the enabled profiles: {}",
                    stack.secrets.iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>().join(", ")
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
    for s in stack.secrets.iter().filter(|s| s.spec.format.is_some()) {
        let Some(format) = s.spec.format else { continue };
        let rotating = roots.iter().any(|r| r.spec.name == s.spec.name);
        let missing = value_of(env, &s.spec.name).is_none();
        if !rotating && !missing {
            continue;
        }
        // An imported partner value is adopted rather than creating a mismatch.
        let partner = stack
            .secrets
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
    for s in &stack.secrets {
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
    for s in &stack.secrets {
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
        let changes = plan_gen(&stack, &env, &[]).unwrap();
        apply(&mut env, &changes);
        let a = assess(&stack, &env);
        assert!(a.iter().all(|s| s.status.is_ok()), "{a:?}");
        assert_eq!(env.get("CODE_EXECUTION_API_KEY"), env.get("SANDBOX_API_KEY"));
        assert_eq!(env.get("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"), env.get("WEAVIATE_API_KEY"));
        let broker = env.get("CELERY_BROKER_URL").unwrap();
        assert!(broker.contains(env.get("REDIS_PASSWORD").unwrap()), "{broker}");
        assert!(plan_gen(&stack, &env, &[]).unwrap().is_empty());
    }

    #[test]
    fn rotate_regenerates_the_root_and_everything_following_it() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack, &env, &[]).unwrap();
        apply(&mut env, &changes);
        let before = env.clone();
        let changes = plan_gen(&stack, &env, &["REDIS_PASSWORD".into()]).unwrap();
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["REDIS_PASSWORD", "CELERY_BROKER_URL"]);
        apply(&mut env, &changes);
        assert_ne!(env.get("REDIS_PASSWORD"), before.get("REDIS_PASSWORD"));
        assert_eq!(env.get("DB_PASSWORD"), before.get("DB_PASSWORD"));
        assert!(assess(&stack, &env).iter().all(|s| s.status.is_ok()));
        // Rotating the paired name rotates its root.
        let changes = plan_gen(&stack, &env, &["CODE_EXECUTION_API_KEY".into()]).unwrap();
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["SANDBOX_API_KEY", "CODE_EXECUTION_API_KEY"]);
        let db = plan_gen(&stack, &env, &["DB_PASSWORD".into()]).unwrap();
        assert!(db[0].baked_into.is_some());
        assert!(matches!(plan_gen(&stack, &env, &["NOPE".into()]), Err(Error::Config { .. })));
    }

    #[test]
    fn assess_finds_public_defaults_weak_values_and_mismatches() {
        let stack = stack(&["app", "weaviate"]);
        let mut env = DotEnv::parse("").unwrap();
        let changes = plan_gen(&stack, &env, &[]).unwrap();
        apply(&mut env, &changes);
        env.set("DB_PASSWORD", "difyai123456");
        env.set("REDIS_PASSWORD", "short1");
        env.set("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "something-else-entirely-long-enough-0123456789");
        let a = assess(&stack, &env);
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
        let changes = plan_gen(&stack, &env, &[]).unwrap();
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
}
