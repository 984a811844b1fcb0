//! The monitoring profile's alert rules, proven with Prometheus's own `promtool test rules`: the unit tests in
//! tests/prometheus/alert_rules_test.yml feed input series to the rendered alert_rules.yml and state which
//! alerts fire when. This suite renders the rules (full shape, app + monitoring, so every alert is present),
//! runs promtool on them, and makes sure no alert goes without a case that fires it and a case that does not.
//!
//! `promtool` comes from Debian's `prometheus` package (tests/setup.sh). Outside CI a missing promtool skips
//! with a message; under `CI=true` or `RAGCTL_E2E=1` it fails.

mod common;
use common::{Test, repo_root, require_tool};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

const RULE_TESTS: &str = "tests/prometheus/alert_rules_test.yml";

/// The full shape with the app (API and nginx probes) and monitoring profiles, secrets as placeholders.
fn render_full_monitoring() -> Test {
    let t = Test::new();
    let profiles = t.run(["profiles", "--format", "json"]).json();
    let env: String = profiles
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["secrets"].as_array().unwrap().iter())
        .map(|s| format!("{}=placeholder-secret\n", s.as_str().unwrap()))
        .collect();
    let t = t.file(".env", &env);
    t.run(["render", "-p", "demo", "--shape", "full", "--profile", "app,weaviate,monitoring"]).assert_status(0);
    t
}

/// Alert names in a rules file, in order.
fn alert_names(rules_yaml: &str) -> Vec<String> {
    let rules: yaml_serde::Value = yaml_serde::from_str(rules_yaml).expect("alert rules are YAML");
    rules["groups"]
        .as_sequence()
        .expect("a `groups` list")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("a group has `rules`").iter())
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect()
}

/// For each alert the unit tests name: (cases expecting it to fire, cases expecting no such alert).
fn cases_by_alert(tests_yaml: &str) -> BTreeMap<String, (usize, usize)> {
    let tests: yaml_serde::Value = yaml_serde::from_str(tests_yaml).expect("the rule tests are YAML");
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for test in tests["tests"].as_sequence().expect("a `tests` list") {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let fires = case["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty());
            let entry = cases.entry(name).or_default();
            if fires {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
    cases
}

#[test]
fn every_alert_fires_after_its_for_duration_and_not_below_its_threshold() {
    let Some(promtool) = require_tool("promtool", &[PathBuf::from("/usr/bin/promtool")]) else {
        return;
    };
    let t = render_full_monitoring();
    let rules_dir = t.path().join("config/prometheus");
    // The unit tests name `alert_rules.yml` relative to themselves: put them beside the rendered file.
    std::fs::copy(repo_root().join(RULE_TESTS), rules_dir.join("alert_rules_test.yml")).unwrap();

    let out = Command::new(&promtool)
        .args(["test", "rules", "alert_rules_test.yml"])
        .current_dir(&rules_dir)
        .output()
        .expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("SUCCESS"), "promtool test rules failed:\n{text}");

    // promtool passes a rule nobody tests: every rendered alert needs a firing and a quiet case.
    let alerts = alert_names(&t.read("config/prometheus/alert_rules.yml"));
    let cases = cases_by_alert(&std::fs::read_to_string(repo_root().join(RULE_TESTS)).unwrap());
    for wanted in ["ApiSlowResponse", "ContainerMemoryHigh", "PostgresConnectionsNearMax"] {
        assert!(alerts.iter().any(|a| a == wanted), "{wanted} is no longer rendered: {alerts:?}");
    }
    for alert in &alerts {
        let (firing, quiet) = cases.get(alert).copied().unwrap_or_default();
        assert!(firing > 0 && quiet > 0, "{alert}: {firing} firing and {quiet} quiet cases in {RULE_TESTS}");
    }
    let rendered: BTreeSet<&String> = alerts.iter().collect();
    let stale: Vec<&String> = cases.keys().filter(|name| !rendered.contains(name)).collect();
    assert!(stale.is_empty(), "{RULE_TESTS} tests alerts that are not rendered: {stale:?}");
}

#[test]
fn a_broken_rule_fails_promtool_test_rules() {
    // The harness itself can fail: with the memory threshold moved, the 85 % boundary case breaks.
    let Some(promtool) = require_tool("promtool", &[PathBuf::from("/usr/bin/promtool")]) else {
        return;
    };
    let t = render_full_monitoring();
    let rules_dir = t.path().join("config/prometheus");
    let rules = t.read("config/prometheus/alert_rules.yml");
    assert!(rules.contains(") > 0.85"), "the memory rule changed shape:\n{rules}");
    std::fs::write(rules_dir.join("alert_rules.yml"), rules.replace(") > 0.85", ") >= 0.85")).unwrap();
    std::fs::copy(repo_root().join(RULE_TESTS), rules_dir.join("alert_rules_test.yml")).unwrap();

    let out = Command::new(&promtool)
        .args(["test", "rules", "alert_rules_test.yml"])
        .current_dir(&rules_dir)
        .output()
        .expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "promtool accepted a rule that fires at exactly 85 %:\n{text}");
    assert!(text.contains("ContainerMemoryHigh"), "{text}");
}
