//! Kubernetes manifests from the stack model (`ragctl render --target kubernetes`).
//!
//! The same [`Stack`] that becomes a compose file and containers becomes a Namespace, one Secret (from `.env`),
//! a Deployment or StatefulSet per service with its Service and ConfigMap, NetworkPolicies mirroring the three
//! compose networks and an Ingress in front of nginx. There is no second copy of the profiles: ports, probes,
//! resources, volumes and config files all come from the model and from [`crate::render::render_stack`]'s
//! output. Pure: values come from a lookup function and nothing is read or written here; the command layer
//! writes the files (the Secret with mode 0600) and never prints the Secret.
//!
//! Mapping rules (README "Kubernetes"):
//! - Workloads: a service that is not `stateless`, or that owns a named volume, is a StatefulSet (at most one pod
//!   per ordinal, stable storage through `volumeClaimTemplates`); other services are Deployments. A named volume
//!   mounted by several services, or by a replicated stateless service (`app_storage` of api and worker), is one
//!   ReadWriteMany PersistentVolumeClaim instead, which needs a storage class that offers RWX. An image that keeps
//!   data in a declared volume the profile does not name (a PostgreSQL replica) gets a claim template for it.
//! - Names: Kubernetes names cannot hold `_`, so `db_postgres` is the Service `db-postgres`; host names in
//!   non-secret environment values and config files are rewritten to match. nginx resolves upstreams per request
//!   through its own resolver, which does not apply search domains, so its config gets cluster DNS and fully
//!   qualified names (`api.<namespace>.svc.cluster.local`: the cluster domain is assumed to be `cluster.local`).
//! - Environment: a value that is exactly one secret reference is a `secretKeyRef` into the Secret `<project>-env`;
//!   a secret inside a longer value or a command is passed as `$(NAME)` from such an env entry; every other
//!   `${VAR}` is resolved now from `.env` and the profiles' defaults.
//! - Probes: `ready` becomes the readinessProbe (exec, tcpSocket, httpGet; `healthcheck` runs the healthcheck's
//!   test, `CMD-SHELL` through `sh -c`); the livenessProbe runs the healthcheck when there is one, else the same
//!   check. Timings come from the healthcheck; a startupProbe (the readiness check) allows as long a first start
//!   as `up` waits for (`timeout`), at least as long as compose would (start period + retries × interval).
//! - Resources: limits are the profile's `cpus`/`memory` (the stack's in the full shape, which settings may
//!   override); requests are half the limits. Memory is parsed once ([`crate::byte_size`]) and written as an
//!   exact quantity (`1.5g` → `1536Mi`, `512k` → `512Ki`).
//! - Public entry: an Ingress for `settings.domain` with TLS from the Secret `<project>-tls` (created by the
//!   operator or cert-manager) passes HTTPS to nginx's port 443 (ingress-nginx's `backend-protocol: HTTPS`), so
//!   nginx keeps its rate limits and routing; nginx mounts the same certificate. No nginx, no Ingress.
//!
//! Layout: this module holds the inputs, the namespace and the Secret; `workload` the Deployments, StatefulSets,
//! Services, ConfigMaps and mounts; `probes` probes and resources; `network` NetworkPolicies and the Ingress;
//! `resolve` value resolution and host name rewriting.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::byte_size::ByteSize;
use crate::catalog::Catalog;
use crate::engine::interpolate::interpolate;
use crate::error::Error;
use crate::profile::{HealthcheckDef, ReadinessProbe, Resources};
use crate::render::RenderedFile;
use crate::settings::Settings;
use crate::stack::{Service, Stack, named_volume};

mod network;
mod probes;
mod resolve;
mod workload;

/// Where `render --target kubernetes` writes, below the project directory.
pub const OUTPUT_DIR: &str = "kubernetes";
/// The manifest holding secret values: written with mode 0600, never printed.
pub const SECRET_FILE: &str = "secret.yaml";
/// The Kubernetes version the manifests are validated against (tests/kubernetes.rs).
pub const KUBERNETES_VERSION: &str = "1.30.0";
/// Requested size of every PersistentVolumeClaim; resize with a patch (kustomize) for real data.
pub const VOLUME_SIZE: &str = "10Gi";
const CLUSTER_DOMAIN: &str = "cluster.local";
/// Memory limit of a container whose service declares none (requests are half).
const DEFAULT_MEMORY_LIMIT: ByteSize = ByteSize::from_bytes(1024 * 1024 * 1024);
/// Docker's embedded DNS server, which nginx's config names as its resolver.
const DOCKER_DNS: &str = "resolver 127.0.0.11";
const CLUSTER_DNS: &str = "resolver kube-dns.kube-system.svc.cluster.local";
/// The `.env` key of the directory with nginx's certificate; in Kubernetes the TLS Secret takes its place.
const CERT_DIR_VAR: &str = "NGINX_CERT_DIR";
/// Marks a secret reference inside a resolved value until it becomes `$(NAME)`; cannot occur in YAML text.
const SECRET_MARK: char = '\u{1}';

/// Data directories images declare as volumes, for services whose profile mounts nothing there.
const IMAGE_DATA_DIRS: &[(&str, &str)] =
    &[("postgres:", "/var/lib/postgresql/data"), ("pgvector/pgvector:", "/var/lib/postgresql/data")];
/// Ports images listen on that nothing else in the model states (a replica nobody addresses yet).
const IMAGE_PORTS: &[(&str, u16)] = &[("postgres:", 5432), ("pgvector/pgvector:", 5432)];

const SECRETS_IN_ENV_CHECK: &str = "CKV_K8S_35";
/// Checks of checkov that these manifests fail on purpose, and why (`checkov.io/skip<N>` annotations).
const CHECKOV_SKIPS: &[(&str, &str)] = &[
    ("CKV_K8S_43", "images are pinned by tag in the profiles; a digest would defeat the registry and image overrides"),
    (
        "CKV_K8S_35",
        "the images read their credentials from environment variables only (Dify, PostgreSQL, Redis, Weaviate)",
    ),
    (
        "CKV_K8S_22",
        "the images write outside their volumes (PostgreSQL sockets, nginx caches, /tmp); not read-only capable",
    ),
    ("CKV_K8S_23", "the upstream images start as root and drop privileges in their entrypoints"),
    ("CKV_K8S_40", "the upstream images choose their own users; forcing a UID breaks their data directories"),
    ("CKV_K8S_37", "entrypoints that drop root need chown/setuid; NET_RAW is dropped, the rest as Docker grants it"),
];

/// One manifest file, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub path: String,
    pub contents: String,
    /// Holds secret values: mode 0600, never printed.
    pub secret: bool,
}

/// Everything the manifests are built from. `vars` answers compose variables (process environment over `.env`);
/// `config_files` is `render_stack`'s output, whose config files become ConfigMaps.
pub struct KubernetesInput<'a> {
    pub stack: &'a Stack,
    pub catalog: &'a Catalog,
    pub settings: &'a Settings,
    pub config_files: &'a [RenderedFile],
    pub vars: &'a dyn Fn(&str) -> Option<String>,
}

/// Render every manifest. Same inputs → identical bytes.
pub fn render_manifests(input: &KubernetesInput) -> Result<Vec<Manifest>, Error> {
    let model = Model::new(input)?;
    let header = format!(
        "# Generated by `ragctl render --target kubernetes` (profiles: {}; shape: {}). Do not edit: change ragctl.yaml, profiles/ or templates/ and render again.\n",
        input.stack.profiles.join(", "),
        input.stack.shape.as_str()
    );
    let file = |path: &str, docs: Vec<Value>, secret: bool| -> Result<Manifest, Error> {
        let mut contents = header.clone();
        for doc in docs {
            contents.push_str("---\n");
            contents.push_str(
                &yaml_serde::to_string(&doc)
                    .map_err(|e| Error::config(format!("failed to serialise manifest `{path}`: {e}")))?,
            );
        }
        Ok(Manifest { path: path.to_string(), contents, secret })
    };

    let mut out = vec![file("namespace.yaml", vec![model.namespace()], false)?];
    out.push(file(SECRET_FILE, vec![model.secret()?], true)?);
    out.push(file("network-policies.yaml", model.network_policies(), false)?);
    let shared = model.shared_claims();
    if !shared.is_empty() {
        out.push(file("volumes.yaml", shared, false)?);
    }
    if let Some(ingress) = model.ingress() {
        out.push(file("ingress.yaml", vec![ingress], false)?);
    }
    for svc in input.stack.services.values() {
        out.push(file(&format!("{}.yaml", dns_name(&svc.name)), model.service_documents(svc)?, false)?);
    }
    Ok(out)
}

/// A Kubernetes object name for a compose name (`db_postgres` → `db-postgres`).
pub fn dns_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

struct Model<'a> {
    input: &'a KubernetesInput<'a>,
    namespace: String,
    secret_name: String,
    secrets: BTreeSet<&'a str>,
    /// Named volumes shared by several services or replicas: one RWX claim each.
    shared_volumes: BTreeSet<String>,
}

impl<'a> Model<'a> {
    fn new(input: &'a KubernetesInput<'a>) -> Result<Self, Error> {
        let stack = input.stack;
        let namespace = dns_name(&stack.project);
        let mut users: BTreeMap<String, Vec<&Service>> = BTreeMap::new();
        for svc in stack.services.values() {
            for v in &svc.volumes {
                if let Some(name) = named_volume(v) {
                    users.entry(name.to_string()).or_default().push(svc);
                }
            }
        }
        let shared_volumes = users
            .into_iter()
            .filter(|(_, svcs)| svcs.len() > 1 || svcs.iter().any(|s| s.stateless && s.replicas > 1))
            .map(|(name, _)| name)
            .collect();
        Ok(Model {
            input,
            secret_name: format!("{namespace}-env"),
            namespace,
            secrets: stack.secrets.iter().map(|s| s.spec.name.as_str()).collect(),
            shared_volumes,
        })
    }

    fn metadata(&self, name: &str, labels: Value) -> Value {
        json!({ "name": name, "namespace": self.namespace, "labels": labels })
    }

    fn common_labels(&self, component: Option<&str>) -> Value {
        let mut labels = Map::new();
        if let Some(c) = component {
            labels.insert("app.kubernetes.io/name".into(), json!(c));
        }
        labels.insert("app.kubernetes.io/part-of".into(), json!(self.namespace));
        labels.insert("app.kubernetes.io/managed-by".into(), json!("ragctl"));
        Value::Object(labels)
    }

    fn namespace(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": self.namespace, "labels": self.common_labels(None) },
        })
    }

    /// The stack's secrets from `.env`; every one must be set (`ragctl secret gen` sets them).
    fn secret(&self) -> Result<Value, Error> {
        let mut data = Map::new();
        for name in &self.secrets {
            let value = (self.input.vars)(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::config_hint(
                    format!("secret `{name}` is not set in `{}`", self.input.settings.env_file.display()),
                    "run `ragctl secret gen`",
                )
            })?;
            data.insert(name.to_string(), json!(value));
        }
        Ok(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.metadata(&self.secret_name, self.common_labels(None)),
            "type": "Opaque",
            "stringData": data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::network::INTERNAL_LABEL;
    use super::probes::{cpu_millis, duration_seconds};
    use super::resolve::{Resolved, ports_after_host, replace_host, secret_mark};
    use super::workload::mount_target;
    use super::*;
    use crate::env_vars::EnvSnapshot;
    use crate::project_file::ProjectFile;
    use crate::settings::Overrides;
    use std::path::PathBuf;

    /// Manifests of the embedded profiles, with every secret set to `<NAME>-value`.
    fn manifests(profiles: &[&str], shape: &str) -> Vec<Manifest> {
        manifests_with(profiles, &format!("shape: {shape}\n"))
    }

    /// Manifests for a project whose `ragctl.yaml` is `project_file`.
    fn manifests_with(profiles: &[&str], project_file: &str) -> Vec<Manifest> {
        let flags = Overrides {
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
            project_name: Some("demo".into()),
            ..Default::default()
        };
        let file = ProjectFile::parse("ragctl.yaml", project_file).unwrap();
        let settings = Settings::resolve_with(&flags, &EnvSnapshot::default(), PathBuf::from("/p/demo"), file).unwrap();
        let catalog = Catalog::embedded().unwrap();
        let stack = Stack::build(&settings, &catalog).unwrap();
        let files =
            crate::render::render_stack(&stack, &settings, &crate::render::TemplateSource::embedded_only()).unwrap();
        let secrets: Vec<String> = stack.secrets.iter().map(|s| s.spec.name.clone()).collect();
        let vars = move |name: &str| secrets.iter().any(|s| s == name).then(|| format!("{name}-value"));
        let input = KubernetesInput {
            stack: &stack,
            catalog: &catalog,
            settings: &settings,
            config_files: &files,
            vars: &vars,
        };
        render_manifests(&input).unwrap()
    }

    /// Every document of every manifest, parsed.
    fn documents(manifests: &[Manifest]) -> Vec<Value> {
        manifests
            .iter()
            .flat_map(|m| m.contents.split("\n---\n").skip(1).map(|d| yaml_serde::from_str::<Value>(d).unwrap()))
            .collect()
    }

    fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn container(workload: &Value) -> &Value {
        &workload["spec"]["template"]["spec"]["containers"][0]
    }

    fn env<'a>(workload: &'a Value, name: &str) -> &'a Value {
        container(workload)["env"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()
    }

    #[test]
    fn workload_kinds_follow_state_and_volume_sharing() {
        let docs = documents(&manifests(&["app", "weaviate", "pg_cluster"], "full"));
        // Data services keep state in their own claims.
        for name in ["db-postgres", "redis", "weaviate"] {
            let sts = find(&docs, "StatefulSet", name);
            assert_eq!(sts["spec"]["volumeClaimTemplates"].as_array().unwrap().len(), 1, "{name}");
            assert_eq!(find(&docs, "Service", name)["spec"]["clusterIP"], "None");
        }
        // A replica's data directory is the image's, unnamed in the profile: it still gets a claim per pod.
        let replica = find(&docs, "StatefulSet", "db-postgres-replica");
        assert_eq!(replica["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data");
        // api and worker share app_storage: Deployments on one ReadWriteMany claim.
        let api = find(&docs, "Deployment", "api");
        assert_eq!(api["spec"]["replicas"], 3);
        assert_eq!(find(&docs, "PersistentVolumeClaim", "app-storage")["spec"]["accessModes"][0], "ReadWriteMany");
        find(&docs, "Deployment", "worker");
        assert_eq!(find(&docs, "Service", "api")["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn secrets_are_references_and_everything_else_is_resolved() {
        let all = manifests(&["app", "weaviate"], "full");
        let docs = documents(&all);
        let api = find(&docs, "Deployment", "api");
        assert_eq!(
            env(api, "SECRET_KEY")["valueFrom"]["secretKeyRef"],
            json!({ "name": "demo-env", "key": "SECRET_KEY" })
        );
        assert_eq!(env(api, "DB_HOST")["value"], "db-postgres");
        assert_eq!(env(api, "SSRF_PROXY_HTTP_URL")["value"], "http://ssrf-proxy:3128");
        assert_eq!(env(api, "LOG_LEVEL")["value"], "INFO");
        // A secret on a command line is expanded by Kubernetes from an env entry, never written out.
        let redis = find(&docs, "StatefulSet", "redis");
        assert_eq!(container(redis)["args"], json!(["redis-server", "--requirepass", "$(REDIS_PASSWORD)"]));
        assert!(env(redis, "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"].is_object());
        // Only the Secret holds values.
        let secret = find(&docs, "Secret", "demo-env");
        assert_eq!(secret["stringData"]["SECRET_KEY"], "SECRET_KEY-value");
        for m in all.iter().filter(|m| !m.secret) {
            assert!(!m.contents.contains("-value"), "{} holds a secret value", m.path);
        }
        assert_eq!(all.iter().filter(|m| m.secret).map(|m| m.path.as_str()).collect::<Vec<_>>(), [SECRET_FILE]);
    }

    #[test]
    fn probes_come_from_the_readiness_declarations() {
        let docs = documents(&manifests(&["app", "weaviate"], "full"));
        let api = container(find(&docs, "Deployment", "api"));
        assert_eq!(api["readinessProbe"]["httpGet"], json!({ "path": "/health", "port": 5001 }));
        assert_eq!(api["livenessProbe"]["exec"]["command"][0], "curl");
        // api's `timeout: 600` at a 10 s period.
        assert_eq!(api["startupProbe"]["failureThreshold"], 60);
        let ssrf = container(find(&docs, "StatefulSet", "ssrf-proxy"));
        assert_eq!(ssrf["readinessProbe"]["tcpSocket"]["port"], 3128);
        // `ready: healthcheck` with CMD-SHELL runs through sh -c, compose's `$$` unescaped.
        let web = container(find(&docs, "Deployment", "web"));
        assert_eq!(
            web["livenessProbe"]["exec"]["command"],
            json!(["sh", "-c", "wget -q -O /dev/null \"http://$(hostname):3000/\" || exit 1"])
        );
        let beat = container(find(&docs, "StatefulSet", "worker-beat"));
        assert_eq!(beat["readinessProbe"]["exec"]["command"][0], "sh");
    }

    #[test]
    fn config_files_become_config_maps_with_cluster_names() {
        let docs = documents(&manifests(&["app", "weaviate", "monitoring"], "full"));
        let nginx = find(&docs, "ConfigMap", "nginx-config");
        let conf = nginx["data"]["nginx.conf.template"].as_str().unwrap();
        assert!(conf.contains("resolver kube-dns.kube-system.svc.cluster.local "), "{conf}");
        assert!(conf.contains("user nginx;"));
        // Templates: nginx's image entrypoint fills the NGINX_* placeholders from the pod's environment.
        assert!(conf.contains("client_max_body_size ${NGINX_CLIENT_MAX_BODY_SIZE};"), "{conf}");
        let site = nginx["data"]["default.conf.template"].as_str().unwrap();
        assert!(site.contains("set $plugin_upstream http://plugin-daemon.demo.svc.cluster.local:5002;"), "{site}");
        assert!(site.contains("location /api {"));
        let prometheus = find(&docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"].as_str().unwrap();
        assert!(prometheus.contains("\"postgres-exporter:9187\""), "{prometheus}");
        let mounts = &container(find(&docs, "StatefulSet", "nginx"))["volumeMounts"];
        assert!(
            mounts.as_array().unwrap().iter().any(|m| m["mountPath"] == "/etc/nginx/templates/nginx.conf.template"
                && m["subPath"] == "nginx.conf.template")
        );
        assert!(mounts.as_array().unwrap().iter().any(|m| m["name"] == "tls" && m["mountPath"] == "/etc/nginx/certs"));
        let ingress = find(&docs, "Ingress", "demo");
        assert_eq!(ingress["spec"]["tls"][0]["secretName"], "demo-tls");
        assert_eq!(ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"], 443);
    }

    #[test]
    fn network_policies_mirror_the_compose_networks() {
        let docs = documents(&manifests(&["app", "weaviate"], "full"));
        let data = find(&docs, "NetworkPolicy", "network-data");
        assert_eq!(data["spec"]["ingress"][0]["from"].as_array().unwrap().len(), 1);
        let backend = find(&docs, "NetworkPolicy", "network-backend");
        assert_eq!(backend["spec"]["ingress"][0]["from"].as_array().unwrap().len(), 2);
        assert_eq!(find(&docs, "NetworkPolicy", "network-frontend")["spec"]["ingress"], json!([{}]));
        let labels = |kind, name| find(&docs, kind, name)["spec"]["template"]["metadata"]["labels"].clone();
        assert_eq!(labels("StatefulSet", "redis")[INTERNAL_LABEL], "true");
        assert!(labels("Deployment", "api")[INTERNAL_LABEL].is_null());
        assert_eq!(labels("StatefulSet", "nginx")["ragctl/network-frontend"], "true");
        // The middleware shape has no ingress and puts its data services on `data`.
        let docs = documents(&manifests(&["qdrant"], "middleware"));
        assert!(!docs.iter().any(|d| d["kind"] == "Ingress"));
        assert_eq!(
            find(&docs, "StatefulSet", "qdrant")["spec"]["template"]["metadata"]["labels"]["ragctl/network-data"],
            "true"
        );
    }

    #[test]
    fn resources_are_limits_with_half_as_requests() {
        let docs = documents(&manifests(&["weaviate"], "middleware"));
        // The middleware shape has no resources in the stack; the profile's declaration still applies.
        let redis = container(find(&docs, "StatefulSet", "redis"));
        assert_eq!(
            redis["resources"],
            json!({ "requests": { "cpu": "500m", "memory": "256Mi" }, "limits": { "cpu": "1000m", "memory": "512Mi" } })
        );
    }

    #[test]
    fn memory_in_any_compose_unit_becomes_an_exact_quantity() {
        let file = "shape: full\nresources:\n  api: {memory: 1.5g}\n  worker: {memory: 512k}\n  web: {memory: 1t}\n";
        let docs = documents(&manifests_with(&["app", "weaviate"], file));
        let memory = |name: &str| {
            let resources = &container(find(&docs, "Deployment", name))["resources"];
            (resources["limits"]["memory"].clone(), resources["requests"]["memory"].clone())
        };
        assert_eq!(memory("api"), (json!("1536Mi"), json!("768Mi")));
        assert_eq!(memory("worker"), (json!("512Ki"), json!("256Ki")));
        assert_eq!(memory("web"), (json!("1048576Mi"), json!("524288Mi")));
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(
            manifests(&["app", "milvus", "monitoring"], "full"),
            manifests(&["app", "milvus", "monitoring"], "full")
        );
    }

    #[test]
    fn host_names_are_rewritten_only_in_host_positions() {
        let cases = [
            ("db_postgres", "db-postgres"),
            ("http://plugin_daemon:5002", "http://plugin-daemon:5002"),
            ("db_postgres:5432/dify?sslmode=disable", "db-postgres:5432/dify?sslmode=disable"),
            ("targets: [\"postgres_exporter:9187\"]", "targets: [\"postgres-exporter:9187\"]"),
            ("replacement: postgres_exporter:9115", "replacement: postgres-exporter:9115"),
            ("$postgres_exporter_upstream", "$postgres_exporter_upstream"),
            ("location /postgres_exporter/ {", "location /postgres_exporter/ {"),
            ("x_db_postgres", "x_db_postgres"),
            ("postgres_exporter works", "postgres_exporter works"),
            ("(profiles: base, postgres_exporter; shape", "(profiles: base, postgres_exporter; shape"),
            ("user postgres_exporter;", "user postgres_exporter;"),
            ("http://plugin_daemon/health", "http://plugin-daemon/health"),
        ];
        for (input, expected) in cases {
            let name = if input.contains("db_postgres") {
                "db_postgres"
            } else if input.contains("plugin_daemon") {
                "plugin_daemon"
            } else {
                "postgres_exporter"
            };
            assert_eq!(replace_host(input, name, &dns_name(name)), expected, "{input}");
        }
    }

    #[test]
    fn ports_follow_host_names() {
        assert_eq!(ports_after_host("ETCD_ENDPOINTS=etcd:2379", "etcd"), [2379]);
        assert_eq!(ports_after_host("http://minio:9000 and xminio:1", "minio"), [9000]);
        assert_eq!(ports_after_host("\"cadvisor:8080\"", "cadvisor"), [8080]);
    }

    #[test]
    fn compose_units_convert() {
        assert_eq!(duration_seconds("1m30s"), Some(90));
        assert_eq!(duration_seconds("120s"), Some(120));
        // Probes count whole seconds: a fraction rounds up, so a timeout is never shorter than compose's.
        assert_eq!(duration_seconds("1.5s"), Some(2));
        assert_eq!(duration_seconds("500ms"), Some(1));
        assert_eq!(duration_seconds("5"), None);
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
    }

    #[test]
    fn mount_targets_skip_interpolations() {
        assert_eq!(mount_target("${NGINX_CERT_DIR:-./certs}:/etc/nginx/certs:ro"), "/etc/nginx/certs");
        assert_eq!(mount_target("db_data:/var/lib/postgresql/data"), "/var/lib/postgresql/data");
        assert_eq!(mount_target("./config/nginx/nginx.conf:/etc/nginx/nginx.conf:ro"), "/etc/nginx/nginx.conf");
    }

    #[test]
    fn secret_references_become_kubernetes_expansions_and_literals_are_escaped() {
        let r = Resolved { text: format!("--requirepass {} $(hostname)", secret_mark("P")), secrets: vec!["P".into()] };
        assert_eq!(r.for_kubernetes(), "--requirepass $(P) $$(hostname)");
    }
}
