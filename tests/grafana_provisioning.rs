//! Grafana's provisioning file, validated against Grafana's documented provisioning schema (Debian packages no
//! Grafana, so no test runs a real one: the e2e stack runs ragctl-test/monitoring-standin in its place, see
//! tests/images/README.md). The schema is a typed serde model of the fields Grafana documents for
//! `provisioning/datasources/*.yaml` ("Provision Grafana", data sources: `apiVersion`, `deleteDatasources`,
//! `prune`, `datasources[].{name,type,access,orgId,uid,url,user,database,basicAuth,basicAuthUser,withCredentials,
//! isDefault,jsonData,secureJsonData,version,editable}`), every struct `deny_unknown_fields` so a misspelt key
//! fails, plus the rules Grafana applies when it loads the file (apiVersion 1, access `proxy`|`direct`, at most
//! one default per organisation, a uid of at most 40 characters from `[a-zA-Z0-9_-]`).
//!
//! The rendered stack provisions data sources only: there is no dashboards provider and no dashboard JSON to
//! validate; the test asserts that, so adding one without extending the model fails here.

mod common;
use common::Test;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // Parsed to enforce the schema.
struct DatasourcesFile {
    api_version: u32,
    #[serde(default)]
    delete_datasources: Vec<DeleteDatasource>,
    #[serde(default)]
    prune: Option<bool>,
    #[serde(default)]
    datasources: Vec<Datasource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // Parsed to enforce the schema.
struct DeleteDatasource {
    name: String,
    #[serde(default)]
    org_id: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // Every documented field is parsed; not all are asserted on.
struct Datasource {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    access: String,
    #[serde(default)]
    org_id: Option<u32>,
    #[serde(default)]
    uid: Option<String>,
    url: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    basic_auth: Option<bool>,
    #[serde(default)]
    basic_auth_user: Option<String>,
    #[serde(default)]
    with_credentials: Option<bool>,
    #[serde(default)]
    is_default: Option<bool>,
    #[serde(default)]
    json_data: Option<PrometheusJsonData>,
    #[serde(default)]
    secure_json_data: Option<BTreeMap<String, String>>,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    editable: Option<bool>,
}

/// The Prometheus data source's documented `jsonData` keys that a provisioning file may set (the subset a
/// typo would most likely hit; an unknown key fails).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct PrometheusJsonData {
    #[serde(default)]
    time_interval: Option<String>,
    #[serde(default)]
    query_timeout: Option<String>,
    #[serde(default)]
    http_method: Option<String>,
    #[serde(default)]
    manage_alerts: Option<bool>,
    #[serde(default)]
    prometheus_type: Option<String>,
    #[serde(default)]
    prometheus_version: Option<String>,
    #[serde(default)]
    cache_level: Option<String>,
    #[serde(default)]
    incremental_querying: Option<bool>,
    #[serde(default)]
    disable_recording_rules: Option<bool>,
}

/// The full shape with app and monitoring, secrets as placeholders.
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
    t.run(["render", "-p", "demo", "--shape", "full", "--profile", "app,monitoring"]).assert_status(0);
    t
}

/// A Prometheus-style duration as Grafana's `timeInterval` accepts it: digits then one of its units.
fn is_duration(s: &str) -> bool {
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    unit_at > 0 && ["ms", "s", "m", "h", "d", "w", "y"].contains(&&s[unit_at..])
}

/// Grafana's rules for a data-sources file, beyond its shape.
fn validate(file: &DatasourcesFile) -> Result<(), String> {
    if file.api_version != 1 {
        return Err(format!("apiVersion {} (Grafana reads 1)", file.api_version));
    }
    let mut defaults: BTreeMap<u32, usize> = BTreeMap::new();
    for ds in &file.datasources {
        if ds.name.trim().is_empty() {
            return Err("a data source without a name".into());
        }
        if !["proxy", "direct"].contains(&ds.access.as_str()) {
            return Err(format!("{}: access {:?} is neither proxy nor direct", ds.name, ds.access));
        }
        if let Some(uid) = &ds.uid
            && (uid.is_empty()
                || uid.len() > 40
                || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!("{}: uid {uid:?} is not 1-40 characters of [a-zA-Z0-9_-]", ds.name));
        }
        let url = url::Url::parse(&ds.url).map_err(|e| format!("{}: url {:?}: {e}", ds.name, ds.url))?;
        if !["http", "https"].contains(&url.scheme()) || url.host_str().is_none() {
            return Err(format!("{}: url {:?} is not an http(s) address with a host", ds.name, ds.url));
        }
        if let Some(interval) = ds.json_data.as_ref().and_then(|j| j.time_interval.as_deref())
            && !is_duration(interval)
        {
            return Err(format!("{}: jsonData.timeInterval {interval:?} is not a duration", ds.name));
        }
        if ds.is_default == Some(true) {
            *defaults.entry(ds.org_id.unwrap_or(1)).or_default() += 1;
        }
    }
    if let Some((org, n)) = defaults.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{n} default data sources in organisation {org} (Grafana allows one)"));
    }
    Ok(())
}

fn parse(text: &str) -> Result<DatasourcesFile, String> {
    let file: DatasourcesFile = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    validate(&file)?;
    Ok(file)
}

#[test]
fn the_rendered_datasources_file_follows_grafanas_provisioning_schema() {
    let t = render_full_monitoring();
    let text = t.read("config/grafana/datasources.yml");
    let file = parse(&text).unwrap_or_else(|e| panic!("config/grafana/datasources.yml: {e}\n{text}"));
    assert_eq!(file.datasources.len(), 1, "{text}");
    let ds = &file.datasources[0];
    assert_eq!((ds.kind.as_str(), ds.access.as_str(), ds.is_default), ("prometheus", "proxy", Some(true)));

    // The data source points at the prometheus service on the port it listens on, across a network both share,
    // and the file is mounted where Grafana reads data-source provisioning.
    let url = url::Url::parse(&ds.url).unwrap();
    assert_eq!((url.host_str(), url.port()), (Some("prometheus"), Some(9090)), "{}", ds.url);
    let compose: yaml_serde::Value = yaml_serde::from_str(&t.read("docker-compose.yaml")).unwrap();
    let services = &compose["services"];
    let mounts: Vec<&str> =
        services["grafana"]["volumes"].as_sequence().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(
        mounts.contains(&"./config/grafana/datasources.yml:/etc/grafana/provisioning/datasources/datasources.yml:ro"),
        "{mounts:?}"
    );
    let networks = |s: &str| -> Vec<String> {
        match &services[s]["networks"] {
            yaml_serde::Value::Sequence(seq) => seq.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            yaml_serde::Value::Mapping(map) => map.keys().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    };
    let prometheus = networks("prometheus");
    assert!(networks("grafana").iter().any(|n| prometheus.contains(n)), "grafana and prometheus share no network");

    // Data sources only: no dashboards provider, no dashboard JSON (extend the model when one is added).
    let grafana_files: Vec<String> = std::fs::read_dir(t.path().join("config/grafana"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(grafana_files, ["datasources.yml"]);
}

#[test]
fn the_model_refuses_what_grafana_would_refuse() {
    let good = "apiVersion: 1\ndatasources:\n  - name: P\n    type: prometheus\n    access: proxy\n    uid: prometheus\n    url: http://prometheus:9090\n    isDefault: true\n    jsonData:\n      timeInterval: 15s\n";
    parse(good).unwrap();
    for (bad, why) in [
        (good.replace("apiVersion: 1", "apiVersion: 2"), "apiVersion"),
        (good.replace("isDefault", "is_default"), "unknown field"),
        (good.replace("access: proxy", "access: server"), "access"),
        (good.replace("uid: prometheus", "uid: prom etheus"), "uid"),
        (good.replace("url: http://prometheus:9090", "url: prometheus:9090:x"), "url"),
        (good.replace("timeInterval: 15s", "timeInterval: fifteen"), "timeInterval"),
        (good.replace("timeInterval", "timeIntervall"), "unknown field"),
        (
            format!(
                "{good}  - name: Q\n    type: prometheus\n    access: proxy\n    url: http://q:9090\n    isDefault: true\n"
            ),
            "default",
        ),
    ] {
        let err = parse(&bad).expect_err(&bad);
        assert!(err.contains(why), "{why}: {err}");
    }
}
