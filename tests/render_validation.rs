//! Every profile alone and the combinations operators use, in both shapes, rendered by the real binary and
//! validated by the reference tools: `dclint` (compose schema + lint, 0 errors) and Debian's
//! `docker-compose` 1.29.2 (`config -q` with a matching `.env`). Snapshots pin every rendered file.
//!
//! The tools are installed by `tests/setup.sh`. Outside CI a missing tool skips with a message; under
//! `CI=true` or `RAGCTL_E2E=1` it fails.

mod common;
use common::{Test, repo_root, require_tool};
use std::path::PathBuf;
use std::process::Command;

const COMBINATIONS: &[&str] = &[
    "weaviate",
    "qdrant",
    "pgvector",
    "milvus",
    "pg_cluster",
    "app",
    "monitoring",
    "weaviate,pg_cluster",
    "app,weaviate",
    "app,weaviate,pg_cluster,monitoring",
];
const SHAPES: &[&str] = &["middleware", "full"];

/// A `.env` holding a placeholder for every secret any profile declares, so `${VAR:?}` resolves.
fn env_with_every_secret(t: &Test) -> String {
    let profiles = t.run(["profiles", "--format", "json"]).json();
    let mut env = String::new();
    for p in profiles.as_array().unwrap() {
        for s in p["secrets"].as_array().unwrap() {
            env.push_str(&format!("{}=placeholder{}\n", s.as_str().unwrap(), env.len()));
        }
    }
    env
}

fn render(profiles: &str, shape: &str) -> Test {
    let t = Test::new();
    let env = env_with_every_secret(&t);
    std::fs::write(t.path().join(".env"), env).unwrap();
    t.run(["render", "-p", "demo", "--shape", shape, "--profile", profiles]).assert_status(0);
    t
}

/// Every rendered file of a project, concatenated with headers, for one snapshot per combination.
fn rendered_files(t: &Test) -> String {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![t.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != ".env" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            format!("==> {} <==\n{}", p.strip_prefix(t.path()).unwrap().display(), std::fs::read_to_string(p).unwrap())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshots_of_every_combination() {
    for profiles in COMBINATIONS {
        for shape in SHAPES {
            let t = render(profiles, shape);
            let name = format!("{}__{shape}", profiles.replace(',', "+"));
            insta::assert_snapshot!(name, rendered_files(&t));
        }
    }
}

#[test]
fn docker_compose_1_29_accepts_every_combination() {
    let Some(compose) = require_tool("docker-compose", &[PathBuf::from("/usr/bin/docker-compose")]) else {
        return;
    };
    for profiles in COMBINATIONS {
        for shape in SHAPES {
            let t = render(profiles, shape);
            let out = Command::new(&compose)
                .args(["-p", "demo", "-f", "docker-compose.yaml", "config", "-q"])
                .current_dir(t.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "docker-compose rejected {profiles} ({shape}):\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                t.read("docker-compose.yaml")
            );
        }
    }
}

#[test]
fn dclint_reports_no_errors_for_any_combination() {
    let mut candidates = vec![repo_root().join("target/tools/node_modules/.bin/dclint")];
    if let Some(p) = std::env::var_os("RAGCTL_DCLINT") {
        candidates.insert(0, PathBuf::from(p));
    }
    let Some(dclint) = require_tool("dclint", &candidates) else {
        return;
    };
    for profiles in COMBINATIONS {
        for shape in SHAPES {
            let t = render(profiles, shape);
            let out = Command::new(&dclint).arg("docker-compose.yaml").current_dir(t.path()).output().unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(
                out.status.success() && !text.contains(" error "),
                "dclint found errors in {profiles} ({shape}):\n{text}"
            );
            // The one accepted warning: no top-level `name` (docker-compose 1.29 rejects it).
            let warnings: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("  warning  ") && !l.contains("require-project-name-field"))
                .collect();
            assert!(warnings.is_empty(), "dclint warnings in {profiles} ({shape}):\n{}", warnings.join("\n"));
        }
    }
}
