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

/// Non-default values for the `.env` keys ssrf_proxy's environment reads.
const SSRF_ENV: &[(&str, &str)] = &[
    ("SSRF_HTTP_PORT", "3129"),
    ("SSRF_REVERSE_PROXY_PORT", "8195"),
    ("SSRF_SANDBOX_HOST", "sandbox-peer"),
    ("SSRF_COREDUMP_DIR", "/var/spool/squid-dumps"),
];

/// A service's environment as the engine gives it to the container: `${NAME:-default}` from `env`, else the default.
fn container_env(t: &Test, service: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let compose: yaml_serde::Value = yaml_serde::from_str(&t.read("docker-compose.yaml")).unwrap();
    let map = compose["services"][service]["environment"].as_mapping().expect("environment is a map");
    map.iter()
        .map(|(k, v)| {
            let (k, v) = (k.as_str().unwrap(), v.as_str().unwrap_or_default());
            let value = match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')).and_then(|r| r.split_once(":-")) {
                Some((name, default)) => env.iter().find(|(n, _)| *n == name).map_or(default, |(_, v)| *v),
                None => v,
            };
            (k.to_string(), value.to_string())
        })
        .collect()
}

/// Runs the rendered ssrf_proxy entrypoint on the host as the container would, with its paths pointed into the
/// project and `squid -k parse` in place of squid's foreground run: the exit status and squid's output.
fn run_ssrf_entrypoint(t: &Test, squid: &Path, env: &[(String, String)]) -> (bool, String) {
    let dir = t.path().join("config/ssrf_proxy");
    let script = t
        .read("config/ssrf_proxy/docker-entrypoint.sh")
        .replace("/etc/squid/", &format!("{}/", dir.display()))
        .replace("rm -f /run/squid.pid /run/squid/squid.pid", ":")
        .replace("exec squid -f \"$conf\" -NYC", &format!("exec {} -k parse -f \"$conf\"", squid.display()));
    assert!(script.contains("-k parse"), "the entrypoint no longer ends in `exec squid -f \"$conf\" -NYC`");
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
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
            let template = "config/ssrf_proxy/squid.conf.template";
            let entrypoint = "config/ssrf_proxy/docker-entrypoint.sh";
            let mounted = bind_mounts(&t, "ssrf_proxy");
            for (file, target) in
                [(template, "/etc/squid/squid.conf.template"), (entrypoint, "/docker-entrypoint-mount.sh")]
            {
                assert!(t.exists(file), "{profiles} ({shape}) rendered no {file}");
                assert!(
                    mounted.iter().any(|(t_, source)| t_ == target && *source == t.path().join(file)),
                    "{profiles} ({shape}): ssrf_proxy does not mount {file} as {target}: {mounted:?}"
                );
            }
            // With Dify's defaults and with a non-default value for every SSRF_* key: the entrypoint writes
            // squid.conf from them, and -k parse reads the file and its ACLs and exits; it starts nothing. An
            // unknown directive is only an "unrecognized" line and overlapping ACL ranges are WARNINGs, so those
            // fail the test too.
            for (env, http, reverse) in [
                (&[][..], "3128", "8194 accel defaultsite=sandbox "),
                (SSRF_ENV, "3129", "8195 accel defaultsite=sandbox-peer "),
            ] {
                let (ok, text) = run_ssrf_entrypoint(&t, &squid, &container_env(&t, "ssrf_proxy", env));
                let complaints: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("| Processing: "))
                    .filter(|l| ["FATAL", "ERROR", "WARNING", "unrecognized", "Bungled"].iter().any(|w| l.contains(w)))
                    .collect();
                assert!(ok && complaints.is_empty(), "squid -k parse: {profiles} ({shape}):\n{text}");
                for line in [format!("Processing: http_port {http}\n"), format!("Processing: http_port {reverse}")] {
                    assert!(text.contains(&line), "squid did not read `{line}` ({profiles}, {shape}):\n{text}");
                }
                let conf = t.read("config/ssrf_proxy/squid.conf");
                assert!(!conf.contains("${"), "a placeholder is left in squid.conf:\n{conf}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} rendered squid.conf checked");
}

#[test]
fn the_ssrf_proxy_entrypoint_refuses_a_port_that_is_not_a_number() {
    let Some(squid) = require_tool("squid", &[PathBuf::from("/usr/sbin/squid")]) else {
        return;
    };
    let t = render("weaviate", "middleware");
    let env = container_env(&t, "ssrf_proxy", &[("SSRF_HTTP_PORT", "3128 | evil")]);
    let (ok, text) = run_ssrf_entrypoint(&t, &squid, &env);
    assert!(!ok, "{text}");
    assert!(text.contains("HTTP_PORT=3128 | evil is not a port number"), "{text}");
    assert!(!t.exists("config/ssrf_proxy/squid.conf"), "a squid.conf was written");
}
