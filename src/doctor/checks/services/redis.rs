//! Redis: AUTH with REDIS_PASSWORD and PING, and the eviction policy (Redis is the cache and Celery's broker).

use std::io;

use super::endpoint::{Endpoint, IO_TIMEOUT, connect, endpoint, unreachable};
use crate::doctor::{DoctorContext, Outcome};
use crate::net::resp::{Connection, Reply};

/// What Redis said to `AUTH <password>`.
#[derive(Debug, PartialEq)]
enum AuthAnswer {
    Accepted,
    /// `-WRONGPASS` (Redis 6+) or `-ERR invalid password` (before 6).
    WrongPassword(String),
    /// The server has no requirepass: it takes any client.
    NoPasswordConfigured,
    Other(String),
}

fn classify_auth(reply: &Reply) -> AuthAnswer {
    match reply {
        Reply::Simple(s) if s == "OK" => AuthAnswer::Accepted,
        Reply::Error(e) if e.starts_with("WRONGPASS") || e.starts_with("ERR invalid password") => {
            AuthAnswer::WrongPassword(e.clone())
        }
        Reply::Error(e) if e.contains("without any password configured") || e.contains("no password is set") => {
            AuthAnswer::NoPasswordConfigured
        }
        other => AuthAnswer::Other(format!("{other:?}")),
    }
}

/// A connection that passed AUTH (or needed none), and what that took.
struct RedisSession {
    conn: Connection,
    endpoint: Endpoint,
    /// Set when the server accepts clients without a password although REDIS_PASSWORD is set.
    unprotected: bool,
    authenticated: bool,
}

/// Connect and authenticate with REDIS_PASSWORD; every failure is an outcome with its fix.
async fn login(ctx: &DoctorContext) -> Result<RedisSession, Outcome> {
    let ep = endpoint(ctx, "redis", 6379).await?;
    let stream = connect(&ep).await.map_err(|e| unreachable("redis", &ep, &e))?;
    let mut conn = Connection::new(stream, IO_TIMEOUT);
    let io_failed = |e: io::Error| {
        Outcome::fail(format!("redis at {ep}: {e}"), "`ragctl logs redis` shows what the server is doing")
    };
    let password = ctx.value("REDIS_PASSWORD");
    let mut unprotected = false;
    if let Some(pw) = &password {
        match classify_auth(&conn.command(&["AUTH", pw]).await.map_err(io_failed)?) {
            AuthAnswer::Accepted => {}
            AuthAnswer::NoPasswordConfigured => unprotected = true,
            AuthAnswer::WrongPassword(e) => {
                return Err(Outcome::fail(
                    format!("redis at {ep} rejected REDIS_PASSWORD: -{e}"),
                    "REDIS_PASSWORD in .env differs from the running server's requirepass: `ragctl up` recreates \
                     redis with the current value (CELERY_BROKER_URL must carry the same password: `ragctl secret check`)",
                ));
            }
            AuthAnswer::Other(e) => {
                return Err(Outcome::fail(
                    format!("redis at {ep} answered AUTH with {e}"),
                    "`ragctl logs redis` shows what the server is doing",
                ));
            }
        }
    }
    match conn.command(&["PING"]).await.map_err(io_failed)? {
        Reply::Simple(s) if s == "PONG" => {}
        Reply::Error(e) if e.starts_with("NOAUTH") => {
            return Err(Outcome::fail(
                format!("redis at {ep} requires a password (-{e}) but REDIS_PASSWORD is empty"),
                "set REDIS_PASSWORD in .env to the server's requirepass (`ragctl secret gen` creates one; \
                 `ragctl up` then recreates redis with it)",
            ));
        }
        other => {
            return Err(Outcome::fail(
                format!("redis at {ep} answered PING with {other:?}"),
                "`ragctl logs redis` shows what the server is doing",
            ));
        }
    }
    Ok(RedisSession { conn, endpoint: ep, unprotected, authenticated: password.is_some() && !unprotected })
}

pub(super) async fn ping(ctx: &DoctorContext) -> Outcome {
    let session = match login(ctx).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let ep = &session.endpoint;
    if session.unprotected {
        return Outcome::warn(
            format!("PONG from redis at {ep}, but the server has no password: any container on its network can use it"),
            "REDIS_PASSWORD is set in .env but the running server has no requirepass: `ragctl up` recreates redis \
             with --requirepass from REDIS_PASSWORD",
        );
    }
    if session.authenticated {
        Outcome::pass(format!("PONG from redis at {ep}, authenticated with REDIS_PASSWORD"))
    } else {
        Outcome::warn(
            format!("PONG from redis at {ep} without a password"),
            "set REDIS_PASSWORD in .env (`ragctl secret gen`), then `ragctl up` recreates redis with it",
        )
    }
}

/// `CONFIG GET name` → the value, or why not.
async fn config_get(conn: &mut Connection, name: &str) -> Result<String, String> {
    match conn.command(&["CONFIG", "GET", name]).await.map_err(|e| e.to_string())? {
        Reply::Array(Some(items)) => match items.as_slice() {
            [_, Reply::Bulk(Some(value))] => Ok(value.clone()),
            _ => Err(format!("CONFIG GET {name} returned {items:?}")),
        },
        Reply::Error(e) => Err(e),
        other => Err(format!("CONFIG GET {name} returned {other:?}")),
    }
}

/// The eviction rule. Redis is both the API's cache and Celery's broker here: with a maxmemory limit,
/// `noeviction` makes every write fail once full (cache writes and task publishing alike), and `allkeys-*`
/// may evict Celery's queues (keys without a TTL). `volatile-*` evicts only keys with a TTL — cache entries.
/// Without a limit no policy applies.
fn assess_eviction(maxmemory: u64, policy: &str, celery_broker: bool) -> Outcome {
    let fix = "add `--maxmemory-policy volatile-lru` to redis's command (in a project copy of profiles/base.yaml), \
               then `ragctl up`; `redis-cli CONFIG SET maxmemory-policy volatile-lru` applies it until the next restart";
    if maxmemory == 0 {
        return Outcome::pass(format!(
            "no maxmemory limit: policy {policy} never applies (Redis grows up to the container's memory limit)"
        ));
    }
    let limit = human_bytes(maxmemory);
    if policy == "noeviction" {
        return Outcome::warn(
            format!(
                "maxmemory {limit} with policy noeviction: once full, every write fails with OOM instead of \
                 evicting cache entries"
            ),
            fix,
        );
    }
    if celery_broker && policy.starts_with("allkeys-") {
        return Outcome::warn(
            format!(
                "maxmemory {limit} with policy {policy}: Redis is also Celery's broker, and allkeys-* may evict its \
                 queues (keys without a TTL), losing tasks"
            ),
            fix,
        );
    }
    Outcome::pass(format!("maxmemory {limit}, policy {policy}: full memory evicts keys instead of failing writes"))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} B")
}

pub(super) async fn maxmemory_policy(ctx: &DoctorContext) -> Outcome {
    let mut session = match login(ctx).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let policy = config_get(&mut session.conn, "maxmemory-policy").await;
    let maxmemory = config_get(&mut session.conn, "maxmemory").await;
    match (policy, maxmemory) {
        (Ok(policy), Ok(max)) => match max.parse::<u64>() {
            Ok(max) => assess_eviction(max, &policy, ctx.service_enabled("worker")),
            Err(_) => Outcome::fail(format!("maxmemory is `{max}`, not a number of bytes"), "`ragctl logs redis`"),
        },
        (Err(e), _) | (_, Err(e)) if e.contains("unknown command") => {
            Outcome::skip(format!("CONFIG is disabled on this server ({e})"))
        }
        (Err(e), _) | (_, Err(e)) => Outcome::fail(
            format!("redis at {}: {e}", session.endpoint),
            "`ragctl logs redis` shows what the server is doing",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn auth_answers_are_told_apart() {
        let err = |s: &str| Reply::Error(s.into());
        assert_eq!(classify_auth(&Reply::Simple("OK".into())), AuthAnswer::Accepted);
        assert!(matches!(
            classify_auth(&err("WRONGPASS invalid username-password pair or user is disabled.")),
            AuthAnswer::WrongPassword(_)
        ));
        assert!(matches!(classify_auth(&err("ERR invalid password")), AuthAnswer::WrongPassword(_)));
        assert_eq!(
            classify_auth(&err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
            )),
            AuthAnswer::NoPasswordConfigured
        );
        assert_eq!(
            classify_auth(&err("ERR Client sent AUTH, but no password is set")),
            AuthAnswer::NoPasswordConfigured
        );
        assert!(matches!(classify_auth(&err("LOADING Redis is loading")), AuthAnswer::Other(_)));
    }

    #[test]
    fn eviction_rule() {
        assert_eq!(assess_eviction(0, "noeviction", true).status, Status::Pass);
        let full = assess_eviction(256 << 20, "noeviction", true);
        assert_eq!(full.status, Status::Warn);
        assert!(full.detail.contains("256.0 MiB") && full.detail.contains("OOM"), "{}", full.detail);
        assert!(full.hint.unwrap().contains("volatile-lru"));
        assert_eq!(assess_eviction(1 << 30, "allkeys-lru", true).status, Status::Warn);
        assert_eq!(assess_eviction(1 << 30, "allkeys-lru", false).status, Status::Pass);
        assert_eq!(assess_eviction(1 << 30, "volatile-lru", true).status, Status::Pass);
    }
}
