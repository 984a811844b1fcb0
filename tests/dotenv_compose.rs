//! Values written by `DotEnv::set` must reach docker-compose unchanged.
//!
//! The reference reader is Debian's `docker-compose` 1.29.2 (python-dotenv 0.21). `docker-compose config` needs
//! no Docker engine, so this runs wherever the binary is installed. Without it the test is skipped, unless
//! `CI=true` or `RAGCTL_E2E=1`, where a missing reader is a failure rather than a silent pass.

use std::path::Path;
use std::process::Command;

use indexmap::IndexMap;
use ragctl::dotenv::DotEnv;

const COMPOSE: &str = "docker-compose";

/// Values that must round-trip, each with why it is tricky.
const TRICKY_VALUES: &[(&str, &str)] = &[
    ("plain", "plain-value_1.2"),
    ("empty", ""),
    ("spaces", "two words  inside"),
    ("leading and trailing spaces", "  padded  "),
    ("hash after space", "a #not-a-comment"),
    ("hash without space", "a#b"),
    ("leading hash", "#start"),
    ("dollar", "pa$word $HOME $"),
    ("dollar and apostrophe", "it's $5"),
    ("dollar brace without close", "${open"),
    ("double quotes", r#"say "hi""#),
    ("apostrophe", "it's"),
    ("both quotes", r#"'single' and "double""#),
    ("backslash", r"back\slash \n not a newline"),
    ("backslash before quote", r#"a\"b"#),
    ("trailing backslash", r"C:\dir\"),
    ("equals", "a=b=c"),
    ("url", "postgres://user:p%40ss@db:5432/app?sslmode=disable"),
    ("newline", "line1\nline2"),
    ("tab", "a\tb"),
    ("unicode", "ünïcödé ☃ 日本"),
    ("yaml-looking", "yes"),
    ("number-looking", "007"),
];

/// Whether the reference reader is here; `Err` explains why the test cannot run.
fn compose_available() -> Result<(), String> {
    match Command::new(COMPOSE).arg("version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{COMPOSE} version` exited with {}", out.status)),
        Err(e) => Err(format!("`{COMPOSE}` not runnable: {e}")),
    }
}

/// Skip (return false) or fail when the reader is missing, depending on whether this run demands it.
fn require_compose() -> bool {
    let Err(why) = compose_available() else {
        return true;
    };
    let demanded =
        std::env::var("CI").is_ok_and(|v| v == "true") || std::env::var("RAGCTL_E2E").is_ok_and(|v| v == "1");
    if demanded {
        panic!("{why}; install it (Debian: `apt-get install docker-compose`) or unset CI/RAGCTL_E2E");
    }
    eprintln!("skipping: {why} (set RAGCTL_E2E=1 to make this a failure)");
    false
}

#[derive(serde::Deserialize)]
struct Config {
    services: IndexMap<String, Service>,
}

#[derive(serde::Deserialize)]
struct Service {
    environment: IndexMap<String, Option<String>>,
}

/// Write `.env` and a compose file referencing every key, and return what `docker-compose config` resolves.
fn compose_environment(dir: &Path, env: &DotEnv, keys: &[String]) -> IndexMap<String, String> {
    let envfile = dir.join(".env");
    ragctl::atomic_file::write_atomic(&envfile, env.render().as_bytes(), Some(0o600)).expect("write .env");
    let mut compose = String::from("version: \"3\"\nservices:\n  probe:\n    image: busybox\n    environment:\n");
    for key in keys {
        compose.push_str(&format!("      {key}: ${{{key}}}\n"));
    }
    let compose_file = dir.join("docker-compose.yaml");
    std::fs::write(&compose_file, compose).expect("write compose file");

    let out = Command::new(COMPOSE)
        .arg("--project-directory")
        .arg(dir)
        .arg("-f")
        .arg(&compose_file)
        .arg("config")
        // The values must come from the .env file, not from this process.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("run docker-compose config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docker-compose config failed ({}):\n{stderr}\n.env was:\n{}",
        out.status,
        env.render()
    );
    assert!(
        !stderr.contains("could not parse"),
        "python-dotenv rejected a line:\n{stderr}\n.env was:\n{}",
        env.render()
    );
    let config: Config = yaml_serde::from_str(&stdout).expect("parse docker-compose config output");
    let service = config.services.into_values().next().expect("one service");
    service
        .environment
        .into_iter()
        // `config` escapes every `$` as `$$` in its output.
        .map(|(k, v)| (k, v.unwrap_or_default().replace("$$", "$")))
        .collect()
}

#[test]
fn values_written_by_set_reach_docker_compose_unchanged() {
    if !require_compose() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = DotEnv::new_with_header("written by dotenv_compose test");
    let mut keys = Vec::new();
    for (i, (_, value)) in TRICKY_VALUES.iter().enumerate() {
        let key = format!("K{i}");
        env.set(&key, value);
        keys.push(key);
    }
    // A later line containing `"` is what exposes 1.29.2's greedy double-quote match after a trailing backslash.
    env.set_in_group("after", "LATE", r#"has "quotes""#);
    keys.push("LATE".to_owned());

    let seen = compose_environment(dir.path(), &env, &keys);
    let mut failures = Vec::new();
    for (i, (why, value)) in TRICKY_VALUES.iter().enumerate() {
        let got = seen.get(&format!("K{i}")).map(String::as_str);
        if got != Some(*value) {
            failures.push(format!("{why}: wrote {value:?}, compose read {got:?}"));
        }
    }
    assert_eq!(seen.get("LATE").map(String::as_str), Some(r#"has "quotes""#));
    assert!(failures.is_empty(), "{}\n.env was:\n{}", failures.join("\n"), env.render());
}

/// Pins the one limit `encode_value` cannot work around (see `src/dotenv/encode.rs`): 1.29.2 expands
/// `${NAME}` even inside single quotes and has no escape for `$`. If this starts failing, the reader changed
/// and the limitation note can go.
#[test]
fn docker_compose_1_29_expands_references_even_in_single_quotes() {
    if !require_compose() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = DotEnv::parse("").expect("empty");
    env.set("REF", "x");
    env.set("LITERAL", "${REF}");
    assert_eq!(env.render(), "REF=x\nLITERAL='${REF}'\n");
    // This crate (like compose v2) reads it literally ...
    assert_eq!(env.resolved(&|_| None)["LITERAL"], "${REF}");
    // ... 1.29.2 does not.
    let seen = compose_environment(dir.path(), &env, &["LITERAL".to_owned()]);
    assert_eq!(seen.get("LITERAL").map(String::as_str), Some("x"));
}
