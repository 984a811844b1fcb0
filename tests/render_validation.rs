//! Every profile alone and the combinations operators use, in both shapes, rendered by the real binary and
//! validated by the reference tools: `dclint` (compose schema + lint, 0 errors) and Debian's
//! `docker-compose` 1.29.2 (`config -q` with a matching `.env`); the config files by the software that reads
//! them: Prometheus's `promtool check config` / `check rules` (Debian's `prometheus`) and `squid -k parse`
//! (Debian's `squid`). Snapshots pin every rendered file.
//!
//! The tools are installed by `tests/setup.sh`. Outside CI a missing tool skips with a message; under
//! `CI=true` or `RAGCTL_E2E=1` it fails.

mod common;
use common::{Test, repo_root, require_tool};
use std::path::{Path, PathBuf};
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

/// The shapes a combination renders in: a profile whose services all run only in the full shape (app,
/// monitoring) makes an explicit middleware shape a usage error (render_cli tests that).
fn shapes_of(profiles: &str) -> &'static [&'static str] {
    if profiles.split(',').any(|p| p == "app" || p == "monitoring") { &SHAPES[1..] } else { SHAPES }
}

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
        for shape in shapes_of(profiles) {
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
        for shape in shapes_of(profiles) {
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
        for shape in shapes_of(profiles) {
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

/// `tool ARGS` in `dir`: whether it exited 0, and stdout + stderr.
fn run_tool(tool: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Host path of each file a service bind-mounts, by its path in the container (compose's `./src:/dst[:mode]`).
fn bind_mounts(t: &Test, service: &str) -> Vec<(String, PathBuf)> {
    let compose: yaml_serde::Value = yaml_serde::from_str(&t.read("docker-compose.yaml")).unwrap();
    compose["services"][service]["volumes"]
        .as_sequence()
        .unwrap_or_else(|| panic!("`{service}` has no volumes"))
        .iter()
        .filter_map(|v| {
            let (source, rest) = v.as_str()?.split_once(':')?;
            let source = source.strip_prefix("./")?;
            let target = rest.split(':').next()?;
            Some((target.to_string(), t.path().join(source)))
        })
        .collect()
}

#[test]
fn promtool_accepts_the_prometheus_config_and_rules_of_every_monitoring_combination() {
    let Some(promtool) = require_tool("promtool", &[PathBuf::from("/usr/bin/promtool")]) else {
        return;
    };
    let mut checked = 0;
    for profiles in COMBINATIONS.iter().filter(|p| p.split(',').any(|p| p == "monitoring")) {
        for shape in shapes_of(profiles) {
            let t = render(profiles, shape);
            if !t.exists("config/prometheus/prometheus.yml") {
                // Prometheus runs in the full shape only; the middleware shape renders none of its files.
                assert_eq!(*shape, "middleware", "{profiles} ({shape}) rendered no prometheus.yml");
                assert!(!t.exists("config/prometheus/alert_rules.yml"), "{profiles} ({shape})");
                continue;
            }
            // prometheus.yml names its rule files by their path in the container. promtool opens them, so
            // point each at the host file compose mounts there: a rule file that is not mounted fails here.
            let mounts = bind_mounts(&t, "prometheus");
            let mut config = t.read("config/prometheus/prometheus.yml");
            let parsed: yaml_serde::Value = yaml_serde::from_str(&config).unwrap();
            let rule_files = parsed["rule_files"].as_sequence().expect("prometheus.yml has rule_files");
            assert!(!rule_files.is_empty(), "{profiles} ({shape}): no rule files");
            for rule_file in rule_files {
                let in_container = rule_file.as_str().unwrap();
                let (_, on_host) = mounts
                    .iter()
                    .find(|(target, _)| target == in_container)
                    .unwrap_or_else(|| panic!("{profiles} ({shape}): rule file {in_container} is not mounted"));
                config = config.replace(in_container, on_host.to_str().unwrap());
            }
            let host_config = t.path().join("prometheus-host-paths.yml");
            std::fs::write(&host_config, &config).unwrap();

            let (ok, text) = run_tool(&promtool, &["check", "config", host_config.to_str().unwrap()], t.path());
            assert!(ok && text.contains("SUCCESS"), "promtool check config: {profiles} ({shape}):\n{text}\n{config}");
            let (ok, text) = run_tool(&promtool, &["check", "rules", "config/prometheus/alert_rules.yml"], t.path());
            assert!(ok && text.contains("SUCCESS"), "promtool check rules: {profiles} ({shape}):\n{text}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} rendered prometheus.yml checked");
}

#[test]
fn squid_parses_the_ssrf_proxy_config_of_every_combination() {
    let Some(squid) = require_tool("squid", &[PathBuf::from("/usr/sbin/squid")]) else {
        return;
    };
    let mut checked = 0;
    // ssrf_proxy is the runtime profile's, on in every combination and both shapes.
    for profiles in COMBINATIONS {
        for shape in shapes_of(profiles) {
            let t = render(profiles, shape);
            let conf = "config/ssrf_proxy/squid.conf";
            assert!(t.exists(conf), "{profiles} ({shape}) rendered no {conf}");
            let mounted = bind_mounts(&t, "ssrf_proxy");
            assert!(
                mounted
                    .iter()
                    .any(|(target, source)| target == "/etc/squid/squid.conf" && *source == t.path().join(conf)),
                "{profiles} ({shape}): ssrf_proxy does not mount {conf} as /etc/squid/squid.conf: {mounted:?}"
            );
            // -k parse reads the file and its ACLs and exits; it starts nothing. An unknown directive is only
            // an "unrecognized" line and overlapping ACL ranges are WARNINGs, so those fail the test too.
            let (ok, text) = run_tool(&squid, &["-k", "parse", "-f", conf], t.path());
            let complaints: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("| Processing: "))
                .filter(|l| ["FATAL", "ERROR", "WARNING", "unrecognized", "Bungled"].iter().any(|w| l.contains(w)))
                .collect();
            assert!(ok && complaints.is_empty(), "squid -k parse: {profiles} ({shape}):\n{text}");
            assert!(text.contains("Processing: http_port 3128"), "squid did not read {conf}:\n{text}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} rendered squid.conf checked");
}
