//! `ragctl render --target kubernetes` through the real binary: every combination validated by
//! `kubernetes-validate --strict` against Kubernetes 1.30.0 (0 errors) and by `checkov` (0 failed checks; checkov
//! cannot tell severities offline, so every failed check counts, and every skipped one must carry its reason in
//! the manifest), one combination pinned by a snapshot, and the Secret kept private: mode 0600, never printed,
//! no secret value in any other manifest.
//!
//! The validators are installed by `tests/setup.sh` into `target/tools/venv` (or named by `RAGCTL_K8S_VALIDATE`
//! and `RAGCTL_CHECKOV`). Outside CI a missing tool skips with a message; under `CI=true` or `RAGCTL_E2E=1` it
//! fails.

mod common;
use common::{Test, repo_root, require_tool};
use std::path::{Path, PathBuf};
use std::process::Command;

const KUBERNETES_VERSION: &str = "1.30.0";

/// (profiles, shape): the data layer alone in both shapes, the app and monitoring in the full shape.
const COMBINATIONS: &[(&str, &str)] = &[
    ("weaviate", "middleware"),
    ("qdrant", "middleware"),
    ("pgvector", "middleware"),
    ("milvus", "middleware"),
    ("weaviate,pg_cluster", "middleware"),
    ("weaviate", "full"),
    ("qdrant", "full"),
    ("pgvector", "full"),
    ("milvus", "full"),
    ("weaviate,pg_cluster", "full"),
    ("app,weaviate", "full"),
    ("app,weaviate,pg_cluster,monitoring", "full"),
];

/// A project with generated secrets for `profiles`, rendered for Kubernetes into `kubernetes/`.
fn render(profiles: &str, shape: &str) -> Test {
    let t = Test::new();
    let selection = ["-p", "demo", "--shape", shape, "--profile", profiles];
    t.run(["secret", "gen", "--yes"].iter().chain(&selection)).assert_status(0);
    t.run(["render", "--target", "kubernetes"].iter().chain(&selection)).assert_status(0);
    t
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// The values of `.env`: after `secret gen` in a fresh project, every one is a secret.
fn secret_values(t: &Test) -> Vec<String> {
    let values: Vec<String> = t
        .read(".env")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| v.trim_matches(['"', '\'']).to_string())
        .collect();
    assert!(values.len() >= 10, "expected the generated secrets in .env, found {}", values.len());
    values
}

fn tool(name: &str, env: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os(env) {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(repo_root().join("target/tools/venv/bin").join(name));
    require_tool(name, &candidates)
}

#[test]
fn every_combination_passes_kubernetes_validate_strict() {
    let Some(validate) = tool("kubernetes-validate", "RAGCTL_K8S_VALIDATE") else { return };
    for (profiles, shape) in COMBINATIONS {
        let t = render(profiles, shape);
        let files = manifests(&t.path().join("kubernetes"));
        let out = Command::new(&validate)
            .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION, "--quiet"])
            .args(&files)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "kubernetes-validate failed for {profiles} ({shape}):\n{text}");
        assert!(!text.contains("ERROR"), "kubernetes-validate errors for {profiles} ({shape}):\n{text}");
    }
}

#[test]
fn every_combination_passes_checkov_with_reasoned_suppressions_only() {
    let Some(checkov) = tool("checkov", "RAGCTL_CHECKOV") else { return };
    // One checkov run over every combination (it takes seconds to start): each renders into its own directory.
    // Not `tempdir()`: its `.tmpXXXX` name is hidden, and checkov skips hidden directories.
    let root = tempfile::Builder::new().prefix("ragctl-checkov").tempdir().unwrap();
    for (profiles, shape) in COMBINATIONS {
        let t = render(profiles, shape);
        let dir = root.path().join(format!("{}__{shape}", profiles.replace(',', "+")));
        t.run(
            ["render", "--target", "kubernetes", "-p", "demo", "--shape", shape, "--profile", profiles, "--output"]
                .iter()
                .chain(&[dir.to_str().unwrap()]),
        )
        .assert_status(0);
    }
    let out = Command::new(&checkov)
        .env("BC_SKIP_MAPPING", "TRUE")
        .args(["--framework", "kubernetes", "--compact", "--skip-download", "-o", "json", "-d"])
        .arg(root.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov printed no JSON ({e}):\n{}", String::from_utf8_lossy(&out.stderr)));
    // One framework gives one report object; checkov wraps several in a list.
    let report = match report {
        serde_json::Value::Array(reports) => {
            reports.into_iter().find(|r| r["check_type"] == "kubernetes").expect("no kubernetes report")
        }
        report => report,
    };
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} in {} ({})", c["check_id"], c["check_name"], c["file_path"], c["resource"]))
        .collect();
    assert!(failed.is_empty(), "checkov failed checks:\n{}", failed.join("\n"));
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(summary["passed"].as_u64().unwrap() > 1000, "checkov checked too little: {summary}");
    for skipped in report["results"]["skipped_checks"].as_array().into_iter().flatten() {
        let reason = skipped["check_result"]["suppress_comment"].as_str().unwrap_or_default();
        assert!(reason.len() > 20, "{} skipped without a reason in {}", skipped["check_id"], skipped["file_path"]);
    }
}

#[test]
fn snapshot_of_app_weaviate_full_without_the_secret() {
    let t = render("app,weaviate", "full");
    let dir = t.path().join("kubernetes");
    let all: String = manifests(&dir)
        .iter()
        .filter(|p| p.file_name().unwrap() != "secret.yaml")
        .map(|p| {
            format!("==> {} <==\n{}", p.file_name().unwrap().to_string_lossy(), std::fs::read_to_string(p).unwrap())
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("kubernetes__app+weaviate__full", all);
}

#[test]
fn the_secret_is_private_and_its_values_appear_nowhere_else() {
    use std::os::unix::fs::PermissionsExt;
    let t = render("app,weaviate,pg_cluster,monitoring", "full");
    let dir = t.path().join("kubernetes");
    let secret = dir.join("secret.yaml");
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    let values = secret_values(&t);
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    for v in &values {
        assert!(secret_text.contains(v.as_str()), "the Secret lacks a value of .env");
    }
    for path in manifests(&dir).iter().filter(|p| **p != secret) {
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o644, "{}", path.display());
        for v in &values {
            assert!(!text.contains(v.as_str()), "a secret value leaked into {}", path.display());
        }
    }

    // --stdout prints every manifest but the Secret, and says so on stderr.
    let run = t.run([
        "render",
        "--target",
        "kubernetes",
        "--stdout",
        "-p",
        "demo",
        "--shape",
        "full",
        "--profile",
        "app,weaviate,pg_cluster,monitoring",
    ]);
    run.assert_status(0);
    assert!(run.stdout.contains("kind: StatefulSet") && run.stdout.contains("kind: Ingress"));
    assert!(!run.stdout.contains("kind: Secret"), "the Secret was printed");
    for v in &values {
        assert!(!run.stdout.contains(v.as_str()) && !run.stderr.contains(v.as_str()), "a secret value was printed");
    }
    assert!(run.stderr.contains("`secret.yaml` is not printed"), "{}", run.stderr);
}

#[test]
fn check_reports_drift_including_a_readable_secret() {
    use std::os::unix::fs::PermissionsExt;
    let t = render("weaviate", "middleware");
    let check = ["render", "--target", "kubernetes", "--check", "-p", "demo", "--profile", "weaviate"];
    t.run(check).assert_status(0);

    let secret = t.path().join("kubernetes/secret.yaml");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = t.run(check);
    run.assert_status(1);
    assert!(run.stderr.contains("secret.yaml"), "{}", run.stderr);

    // Rendering again restores the mode; a hand edit elsewhere is drift too.
    t.run(["render", "--target", "kubernetes", "-p", "demo", "--profile", "weaviate"]).assert_status(0);
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    let redis = t.path().join("kubernetes/redis.yaml");
    std::fs::write(&redis, std::fs::read_to_string(&redis).unwrap().replace("replicas: 1", "replicas: 2")).unwrap();
    let run = t.run(check);
    run.assert_status(1);
    assert!(run.stderr.contains("redis.yaml"), "{}", run.stderr);
}

#[test]
fn a_missing_secret_is_a_usage_error_naming_the_fix() {
    let t = Test::new();
    let run = t.run(["render", "--target", "kubernetes", "-p", "demo", "--profile", "weaviate"]);
    run.assert_status(2);
    assert!(run.stderr.contains("is not set in"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: run `ragctl secret gen`"), "{}", run.stderr);
    assert!(!t.exists("kubernetes/secret.yaml"));
}
