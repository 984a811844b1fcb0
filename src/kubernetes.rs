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
//!   override); requests are half the limits.
//! - Public entry: an Ingress for `settings.domain` with TLS from the Secret `<project>-tls` (created by the
//!   operator or cert-manager) passes HTTPS to nginx's port 443 (ingress-nginx's `backend-protocol: HTTPS`), so
//!   nginx keeps its rate limits and routing; nginx mounts the same certificate. No nginx, no Ingress.

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

    /// Networks a service's pods belong to. The middleware shape has no networks: its data services are `data`.
    fn networks_of<'s>(&self, svc: &'s Service) -> Vec<&'s str> {
        if svc.networks.is_empty() { vec!["data"] } else { svc.networks.iter().map(String::as_str).collect() }
    }

    fn networks_in_use(&self) -> BTreeSet<&'a str> {
        self.input.stack.services.values().flat_map(|s| self.networks_of(s)).collect()
    }

    /// Default deny, then one policy per network: `data` accepts its own members, `backend` its members and
    /// `frontend` members, `frontend` (nginx) anyone. Pods only on `data` (compose `internal: true`) may only
    /// talk within the namespace and to cluster DNS.
    fn network_policies(&self) -> Vec<Value> {
        let policy = |name: &str, selector: Value, spec: Value| {
            let mut spec_map = Map::new();
            spec_map.insert("podSelector".into(), selector);
            if let Value::Object(rest) = spec {
                spec_map.extend(rest);
            }
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self.metadata(name, self.common_labels(None)),
                "spec": spec_map,
            })
        };
        let member = |network: &str| json!({ "matchLabels": { network_label(network): "true" } });
        let mut out = vec![policy("default-deny-ingress", json!({}), json!({ "policyTypes": ["Ingress"] }))];
        let in_use = self.networks_in_use();
        for network in ["frontend", "backend", "data"] {
            if !in_use.contains(network) {
                continue;
            }
            let ingress = match network {
                "frontend" => json!([{}]),
                "backend" => {
                    json!([{ "from": [{ "podSelector": member("backend") }, { "podSelector": member("frontend") }] }])
                }
                _ => json!([{ "from": [{ "podSelector": member("data") }] }]),
            };
            out.push(policy(
                &format!("network-{network}"),
                member(network),
                json!({ "policyTypes": ["Ingress"], "ingress": ingress }),
            ));
        }
        if self.input.stack.services.values().any(|s| self.internal_only(s)) {
            out.push(policy(
                "internal-egress",
                json!({ "matchLabels": { INTERNAL_LABEL: "true" } }),
                json!({
                    "policyTypes": ["Egress"],
                    "egress": [
                        { "to": [{ "podSelector": {} }] },
                        {
                            "to": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } } }],
                            "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
                        },
                    ],
                }),
            ));
        }
        out
    }

    /// Only on internal networks (compose `data`, `internal: true`): no egress beyond the namespace.
    fn internal_only(&self, svc: &Service) -> bool {
        let internal: BTreeSet<&str> =
            crate::stack::FULL_NETWORKS.iter().filter(|(_, internal)| *internal).map(|(n, _)| *n).collect();
        self.networks_of(svc).iter().all(|n| internal.contains(n))
    }

    fn shared_claims(&self) -> Vec<Value> {
        self.shared_volumes
            .iter()
            .map(|volume| {
                json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": self.metadata(&dns_name(volume), self.common_labels(None)),
                    "spec": {
                        "accessModes": ["ReadWriteMany"],
                        "resources": { "requests": { "storage": VOLUME_SIZE } },
                    },
                })
            })
            .collect()
    }

    fn ingress(&self) -> Option<Value> {
        let nginx = self.input.stack.services.get("nginx")?;
        let port = if self.ports_of(nginx).contains(&443) { 443 } else { 80 };
        let domain = &self.input.settings.domain;
        let mut annotations = Map::new();
        if port == 443 {
            annotations.insert("nginx.ingress.kubernetes.io/backend-protocol".into(), json!("HTTPS"));
        }
        let mut metadata = self.metadata(&self.namespace, self.common_labels(Some("nginx")));
        metadata["annotations"] = Value::Object(annotations);
        Some(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": {
                "tls": [{ "hosts": [domain], "secretName": self.tls_secret() }],
                "rules": [{
                    "host": domain,
                    "http": { "paths": [{
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": { "service": { "name": "nginx", "port": { "number": port } } },
                    }] },
                }],
            },
        }))
    }

    fn tls_secret(&self) -> String {
        format!("{}-tls", self.namespace)
    }

    fn is_stateful(&self, svc: &Service) -> bool {
        !svc.stateless || !self.own_volumes(svc).is_empty()
    }

    /// Named volumes only this service (and only one replica) uses, plus image data directories it leaves
    /// unnamed: `(claim name, mount path)`.
    fn own_volumes(&self, svc: &Service) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = svc
            .volumes
            .iter()
            .filter_map(|v| named_volume(v).map(|n| (n, mount_target(v))))
            .filter(|(n, _)| !self.shared_volumes.contains(*n))
            .map(|(n, target)| (dns_name(n), target))
            .collect();
        if out.is_empty()
            && let Some((_, dir)) = IMAGE_DATA_DIRS.iter().find(|(prefix, _)| image_matches(&svc.image, prefix))
            && !svc.volumes.iter().any(|v| mount_target(v) == *dir)
        {
            out.push(("data".to_string(), dir.to_string()));
        }
        out
    }

    /// Container ports: declared (any shape), probed, and addressed by other services or config files.
    fn ports_of(&self, svc: &Service) -> BTreeSet<u16> {
        let mut ports = BTreeSet::new();
        if let Some(def) = self.input.catalog.get(&svc.profile).and_then(|e| e.profile.services.get(&svc.name)) {
            ports.extend(def.ports.iter().map(|p| p.target));
        }
        match &svc.ready {
            ReadinessProbe::Tcp(p) => {
                ports.insert(*p);
            }
            ReadinessProbe::Http { port, .. } | ReadinessProbe::Postgres(port) => {
                ports.insert(*port);
            }
            _ => {}
        }
        if let Some(hc) = &svc.healthcheck {
            for arg in &hc.test {
                for host in ["127.0.0.1", "localhost"] {
                    ports.extend(ports_after_host(arg, host));
                }
            }
        }
        for other in self.input.stack.services.values().filter(|o| o.name != svc.name) {
            for v in other.environment.values() {
                ports.extend(ports_after_host(v, &svc.name));
            }
        }
        for f in self.input.config_files.iter().filter(|f| f.path.starts_with("config/")) {
            ports.extend(ports_after_host(&f.contents, &svc.name));
        }
        if ports.is_empty()
            && let Some((_, p)) = IMAGE_PORTS.iter().find(|(prefix, _)| image_matches(&svc.image, prefix))
        {
            ports.insert(*p);
        }
        ports
    }

    /// The workload, its Service and its ConfigMap.
    fn service_documents(&self, svc: &Service) -> Result<Vec<Value>, Error> {
        let name = dns_name(&svc.name);
        let ports = self.ports_of(svc);
        let stateful = self.is_stateful(svc);
        let mut docs = Vec::new();

        let mounts = self.mounts(svc)?;
        if !mounts.config_data.is_empty() {
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": self.metadata(&format!("{name}-config"), self.common_labels(Some(&name))),
                "data": mounts.config_data,
            }));
        }
        if stateful || !ports.is_empty() {
            let mut spec = Map::new();
            if stateful {
                // Headless: the name resolves to the pods themselves, as a compose service name does.
                spec.insert("clusterIP".into(), json!("None"));
            } else {
                spec.insert("type".into(), json!("ClusterIP"));
            }
            spec.insert("selector".into(), selector_labels(&name));
            if !ports.is_empty() {
                spec.insert(
                    "ports".into(),
                    json!(
                        ports
                            .iter()
                            .map(
                                |p| json!({ "name": format!("tcp-{p}"), "port": p, "targetPort": p, "protocol": "TCP" })
                            )
                            .collect::<Vec<_>>()
                    ),
                );
            }
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": self.metadata(&name, self.common_labels(Some(&name))),
                "spec": spec,
            }));
        }

        let container = self.container(svc, &name, &ports, &mounts)?;
        let mut pod_labels = self.common_labels(Some(&name));
        pod_labels["app.kubernetes.io/instance"] = json!(self.namespace);
        for n in self.networks_of(svc) {
            pod_labels[network_label(n)] = json!("true");
        }
        if self.internal_only(svc) {
            pod_labels[INTERNAL_LABEL] = json!("true");
        }
        let mut pod_spec = Map::new();
        pod_spec.insert("automountServiceAccountToken".into(), json!(false));
        pod_spec.insert("securityContext".into(), json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        if let Some(secs) = svc.stop_grace_period.as_deref().and_then(duration_seconds) {
            pod_spec.insert("terminationGracePeriodSeconds".into(), json!(secs));
        }
        pod_spec.insert("containers".into(), json!([container]));
        if !mounts.volumes.is_empty() {
            pod_spec.insert("volumes".into(), Value::Array(mounts.volumes.clone()));
        }
        let mut pod_metadata = Map::new();
        pod_metadata.insert("labels".into(), pod_labels);
        let mut workload_metadata = self.metadata(&name, self.common_labels(Some(&name)));
        let secrets_in_env = container["env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e.pointer("/valueFrom/secretKeyRef").is_some()));
        workload_metadata["annotations"] = checkov_skips(secrets_in_env);

        let mut spec = Map::new();
        spec.insert("replicas".into(), json!(svc.replicas));
        spec.insert("selector".into(), json!({ "matchLabels": selector_labels(&name) }));
        if stateful {
            spec.insert("serviceName".into(), json!(name));
        }
        spec.insert("template".into(), json!({ "metadata": pod_metadata, "spec": pod_spec }));
        if stateful {
            let claims: Vec<Value> = self
                .own_volumes(svc)
                .iter()
                .map(|(claim, _)| {
                    json!({
                        "metadata": { "name": claim },
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": { "requests": { "storage": VOLUME_SIZE } },
                        },
                    })
                })
                .collect();
            if !claims.is_empty() {
                spec.insert("volumeClaimTemplates".into(), Value::Array(claims));
            }
        }
        docs.push(json!({
            "apiVersion": "apps/v1",
            "kind": if stateful { "StatefulSet" } else { "Deployment" },
            "metadata": workload_metadata,
            "spec": spec,
        }));
        Ok(docs)
    }

    fn container(&self, svc: &Service, name: &str, ports: &BTreeSet<u16>, mounts: &Mounts) -> Result<Value, Error> {
        let mut env: Vec<Value> = Vec::new();
        let mut defined: BTreeSet<String> = BTreeSet::new();
        let mut needed_secrets: BTreeSet<String> = BTreeSet::new();
        let mut entries: Vec<Value> = Vec::new();
        for (key, raw) in &svc.environment {
            let resolved = self.resolve(raw, &format!("environment `{key}` of service `{}`", svc.name))?;
            match resolved.secrets.as_slice() {
                [only] if resolved.text == secret_mark(only) => {
                    entries.push(json!({ "name": key, "valueFrom": { "secretKeyRef": { "name": self.secret_name, "key": only } } }));
                    if key == only {
                        defined.insert(key.clone());
                    }
                }
                [] => {
                    let value = self.rewrite_hosts(&resolved.text, false);
                    entries.push(json!({ "name": key, "value": escape_references(&value) }));
                }
                refs => {
                    needed_secrets.extend(refs.iter().cloned());
                    entries.push(json!({ "name": key, "value": resolved.for_kubernetes() }));
                }
            }
        }
        let mut args_of = |words: &Option<Vec<String>>, what: &str| -> Result<Option<Value>, Error> {
            let Some(words) = words else { return Ok(None) };
            let mut out = Vec::new();
            for w in words {
                let r = self.resolve(w, &format!("{what} of service `{}`", svc.name))?;
                needed_secrets.extend(r.secrets.iter().cloned());
                out.push(json!(r.for_kubernetes()));
            }
            Ok(Some(Value::Array(out)))
        };
        let command = args_of(&svc.entrypoint, "entrypoint")?;
        let args = args_of(&svc.command, "command")?;
        for secret in &needed_secrets {
            if defined.contains(secret) {
                continue;
            }
            if svc.environment.contains_key(secret) {
                return Err(Error::config(format!(
                    "service `{}` sets `{secret}` to something other than the secret `{secret}` it also references",
                    svc.name
                )));
            }
            env.push(
                json!({ "name": secret, "valueFrom": { "secretKeyRef": { "name": self.secret_name, "key": secret } } }),
            );
        }
        env.extend(entries);

        let mut c = Map::new();
        c.insert("name".into(), json!(name));
        c.insert("image".into(), json!(svc.image));
        c.insert("imagePullPolicy".into(), json!("Always"));
        if let Some(command) = command {
            c.insert("command".into(), command);
        }
        if let Some(args) = args {
            c.insert("args".into(), args);
        }
        if !env.is_empty() {
            c.insert("env".into(), Value::Array(env));
        }
        if !ports.is_empty() {
            c.insert(
                "ports".into(),
                json!(ports.iter().map(|p| json!({ "containerPort": p, "protocol": "TCP" })).collect::<Vec<_>>()),
            );
        }
        let probes = self.probes(svc)?;
        c.insert("startupProbe".into(), probes.startup);
        c.insert("readinessProbe".into(), probes.readiness);
        c.insert("livenessProbe".into(), probes.liveness);
        c.insert("resources".into(), self.resources(svc));
        let mut security = json!({
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "capabilities": { "drop": ["NET_RAW"] },
        });
        if !svc.cap_add.is_empty() {
            security["capabilities"]["add"] = json!(svc.cap_add);
        }
        if let Some((uid, gid)) = svc.user.as_deref().and_then(numeric_user) {
            security["runAsUser"] = json!(uid);
            if let Some(gid) = gid {
                security["runAsGroup"] = json!(gid);
            }
        }
        c.insert("securityContext".into(), security);
        if !mounts.mounts.is_empty() {
            c.insert("volumeMounts".into(), Value::Array(mounts.mounts.clone()));
        }
        Ok(Value::Object(c))
    }

    fn probes(&self, svc: &Service) -> Result<Probes, Error> {
        let hc = svc.healthcheck.as_ref();
        let healthcheck_handler = |hc: &HealthcheckDef| self.healthcheck_handler(svc, hc);
        let readiness_handler = match &svc.ready {
            ReadinessProbe::Exec(cmd) => json!({ "exec": { "command": cmd } }),
            ReadinessProbe::Tcp(port) => json!({ "tcpSocket": { "port": port } }),
            ReadinessProbe::Http { port, path } => json!({ "httpGet": { "path": path, "port": port } }),
            // The kubelet cannot speak the PostgreSQL protocol: pg_isready in the container decides the same way.
            ReadinessProbe::Postgres(port) => {
                let port_arg = if *port == 5432 { String::new() } else { format!(" -p {port}") };
                let cmd = format!("pg_isready -h 127.0.0.1{port_arg} -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\"");
                json!({ "exec": { "command": ["sh", "-c", cmd] } })
            }
            ReadinessProbe::Healthcheck => match hc {
                Some(hc) => healthcheck_handler(hc)?,
                None => return Err(no_probe(svc)),
            },
            ReadinessProbe::Started => match (hc, self.ports_of(svc).first()) {
                (Some(hc), _) => healthcheck_handler(hc)?,
                (None, Some(port)) => json!({ "tcpSocket": { "port": port } }),
                (None, None) => return Err(no_probe(svc)),
            },
            ReadinessProbe::Exit(_) => {
                return Err(Error::config(format!(
                    "service `{}` is a one-shot job (`ready: exit`), which `--target kubernetes` does not render",
                    svc.name
                )));
            }
        };
        let liveness_handler = match hc {
            Some(hc) => healthcheck_handler(hc)?,
            None => readiness_handler.clone(),
        };
        let period = hc.and_then(|h| duration_seconds(&h.interval)).unwrap_or(10).max(1);
        let timeout = hc.and_then(|h| duration_seconds(&h.timeout)).unwrap_or(5).max(1);
        let retries = hc.map(|h| h.retries).unwrap_or(3).max(1);
        let start = hc.and_then(|h| duration_seconds(&h.start_period)).unwrap_or(0);
        let with_timing = |handler: Value, extra: Value| {
            let mut m = handler.as_object().cloned().unwrap_or_default();
            m.insert("periodSeconds".into(), json!(period));
            m.insert("timeoutSeconds".into(), json!(timeout));
            if let Value::Object(extra) = extra {
                m.extend(extra);
            }
            Value::Object(m)
        };
        // The startup probe gives a first start as long as `up` would wait (migrations, index loading) before
        // liveness may restart the container; liveness then tolerates as many failures as compose does before it
        // calls the container unhealthy, and readiness follows the healthcheck's rhythm.
        let budget = svc.timeout.unwrap_or(0).max(start + u64::from(retries) * period);
        let startup = with_timing(readiness_handler.clone(), json!({ "failureThreshold": budget.div_ceil(period) }));
        let readiness = with_timing(readiness_handler, json!({ "failureThreshold": 3 }));
        let liveness = with_timing(liveness_handler, json!({ "failureThreshold": retries }));
        Ok(Probes { startup, readiness, liveness })
    }

    /// The healthcheck's test as an exec probe: compose interpolation applied (`$$` → `$`), `CMD-SHELL` via `sh -c`.
    fn healthcheck_handler(&self, svc: &Service, hc: &HealthcheckDef) -> Result<Value, Error> {
        let what = format!("healthcheck of service `{}`", svc.name);
        let mut words = Vec::new();
        for w in hc.test.iter().skip(1) {
            let r = self.resolve(w, &what)?;
            if let Some(secret) = r.secrets.first() {
                return Err(Error::config(format!(
                    "{what} references the secret `{secret}`, which an exec probe would have to carry in the manifest"
                )));
            }
            words.push(r.text);
        }
        let command = match hc.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["sh".to_string(), "-c".to_string(), words.join(" ")],
            Some("CMD") => words,
            _ => return Err(Error::config(format!("{what} has a test that is neither CMD nor CMD-SHELL"))),
        };
        Ok(json!({ "exec": { "command": command } }))
    }

    /// Limits from the model (or the profile's declaration in the middleware shape), requests at half.
    fn resources(&self, svc: &Service) -> Value {
        let declared = svc.resources.clone().or_else(|| {
            self.input
                .catalog
                .get(&svc.profile)
                .and_then(|e| e.profile.services.get(&svc.name))
                .and_then(|d| d.resources.clone())
        });
        let Resources { cpus, memory } = declared.unwrap_or(Resources { cpus: None, memory: None });
        let cpu_millis = cpus.as_deref().and_then(cpu_millis).unwrap_or(1000);
        let memory =
            memory.as_deref().and_then(ByteSize::parse).filter(|m| m.bytes() > 0).unwrap_or(DEFAULT_MEMORY_LIMIT);
        let request = ByteSize::from_bytes((memory.bytes() / 2).max(1));
        json!({
            "requests": { "cpu": format!("{}m", (cpu_millis / 2).max(1)), "memory": request.kubernetes_quantity() },
            "limits": { "cpu": format!("{cpu_millis}m"), "memory": memory.kubernetes_quantity() },
        })
    }

    /// Volumes and mounts of a service: claims, config files (ConfigMap items), the TLS Secret, host paths.
    fn mounts(&self, svc: &Service) -> Result<Mounts, Error> {
        let name = dns_name(&svc.name);
        let mut m = Mounts::default();
        let mut config_items: Vec<Value> = Vec::new();
        let qualify = self.needs_cluster_dns(svc);
        for spec in &svc.volumes {
            let target = mount_target(spec);
            let read_only = spec.ends_with(":ro");
            if let Some(volume) = named_volume(spec) {
                let claim = dns_name(volume);
                if self.shared_volumes.contains(volume) {
                    m.volumes.push(json!({ "name": claim, "persistentVolumeClaim": { "claimName": claim } }));
                }
                m.mounts.push(json!({ "name": claim, "mountPath": target, "readOnly": read_only }));
                continue;
            }
            let source = spec.split(':').next().unwrap_or_default();
            let rendered = source.strip_prefix("./").and_then(|p| self.input.config_files.iter().find(|f| f.path == p));
            if let Some(file) = rendered {
                let key = file.path.rsplit('/').next().unwrap_or(&file.path).to_string();
                if m.config_data.contains_key(&key) {
                    return Err(Error::config(format!(
                        "service `{}` mounts two config files named `{key}`; Kubernetes keeps them in one ConfigMap",
                        svc.name
                    )));
                }
                let contents = self.rewrite_hosts(&file.contents, qualify);
                let contents = if qualify { contents.replace(DOCKER_DNS, CLUSTER_DNS) } else { contents };
                m.config_data.insert(key.clone(), json!(contents));
                let mut item = json!({ "key": key, "path": key });
                if file.executable {
                    item["mode"] = json!(0o755);
                }
                config_items.push(item);
                m.mounts.push(json!({ "name": "config", "mountPath": target, "subPath": key, "readOnly": true }));
            } else if source.contains(CERT_DIR_VAR) {
                let tls = &self.input.settings.tls;
                m.volumes.push(json!({
                    "name": "tls",
                    "secret": {
                        "secretName": self.tls_secret(),
                        "items": [{ "key": "tls.crt", "path": tls.certificate }, { "key": "tls.key", "path": tls.key }],
                    },
                }));
                m.mounts.push(json!({ "name": "tls", "mountPath": target, "readOnly": true }));
            } else if source.starts_with('/') {
                let volume = format!("host{}", m.volumes.len());
                m.volumes.push(json!({ "name": volume, "hostPath": { "path": source } }));
                m.mounts.push(json!({ "name": volume, "mountPath": target, "readOnly": read_only }));
            } else {
                return Err(Error::config(format!(
                    "volume `{spec}` of service `{}` is neither a named volume, a rendered config file nor an absolute host path; Kubernetes has no equivalent",
                    svc.name
                )));
            }
        }
        if !config_items.is_empty() {
            m.volumes.insert(
                0,
                json!({ "name": "config", "configMap": { "name": format!("{name}-config"), "items": config_items } }),
            );
        }
        if self.is_stateful(svc) {
            for (claim, dir) in self.own_volumes(svc) {
                if !m.mounts.iter().any(|mount| mount["name"] == json!(claim)) {
                    m.mounts.push(json!({ "name": claim, "mountPath": dir, "readOnly": false }));
                }
            }
        }
        if let Some(size) = svc.shm_size.as_deref().and_then(ByteSize::parse).filter(|s| s.bytes() > 0) {
            m.volumes.push(
                json!({ "name": "shm", "emptyDir": { "medium": "Memory", "sizeLimit": size.kubernetes_quantity() } }),
            );
            m.mounts.push(json!({ "name": "shm", "mountPath": "/dev/shm" }));
        }
        for (i, path) in svc.tmpfs.iter().enumerate() {
            let volume = format!("tmpfs{i}");
            m.volumes.push(json!({ "name": volume, "emptyDir": { "medium": "Memory" } }));
            m.mounts.push(json!({ "name": volume, "mountPath": path.split(':').next().unwrap_or(path) }));
        }
        Ok(m)
    }

    /// nginx with Docker's resolver: it resolves upstreams itself, without search domains.
    fn needs_cluster_dns(&self, svc: &Service) -> bool {
        svc.volumes.iter().any(|spec| {
            let source = spec.split(':').next().unwrap_or_default();
            source
                .strip_prefix("./")
                .and_then(|p| self.input.config_files.iter().find(|f| f.path == p))
                .is_some_and(|f| f.contents.contains(DOCKER_DNS))
        })
    }

    /// Compose interpolation of one value: secrets stay references (marked), everything else is resolved from
    /// `.env` and the profiles' defaults.
    fn resolve(&self, raw: &str, what: &str) -> Result<Resolved, Error> {
        let secrets = std::cell::RefCell::new(Vec::<String>::new());
        let lookup = |name: &str| -> Option<String> {
            if self.secrets.contains(name) {
                let mut s = secrets.borrow_mut();
                if !s.iter().any(|n| n == name) {
                    s.push(name.to_string());
                }
                return Some(secret_mark(name));
            }
            (self.input.vars)(name).or_else(|| self.input.stack.env.get(name).map(|e| e.default.clone()))
        };
        let text = interpolate(raw, &lookup).map_err(|e| {
            Error::config_hint(format!("failed to resolve {what}: {e}"), format!("set `{}` in `.env`", e.name))
        })?;
        Ok(Resolved { text, secrets: secrets.into_inner() })
    }

    /// Compose service names that are not valid Kubernetes names, in host positions (`//db_postgres:5432`,
    /// `"postgres_exporter:9187"`, a value that is just the name), become the Service names; with `qualify`, every
    /// service host becomes its cluster FQDN.
    fn rewrite_hosts(&self, text: &str, qualify: bool) -> String {
        let mut out = text.to_string();
        // Longest first: `db_postgres_replica` before `db_postgres`.
        let mut names: Vec<&String> = self.input.stack.services.keys().collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for name in names {
            let dns = dns_name(name);
            let replacement =
                if qualify { format!("{dns}.{}.svc.{CLUSTER_DOMAIN}", self.namespace) } else { dns.clone() };
            if replacement != *name {
                out = replace_host(&out, name, &replacement);
            }
        }
        out
    }
}

const INTERNAL_LABEL: &str = "ragctl/internal-only";

fn network_label(network: &str) -> String {
    format!("ragctl/network-{network}")
}

fn selector_labels(name: &str) -> Value {
    json!({ "app.kubernetes.io/name": name })
}

/// The `checkov.io/skip<N>` annotations for a workload; the env-secret check only where secrets are in env.
fn checkov_skips(secrets_in_env: bool) -> Value {
    let mut m = Map::new();
    let applicable = CHECKOV_SKIPS.iter().filter(|(id, _)| secrets_in_env || *id != SECRETS_IN_ENV_CHECK);
    for (i, (id, reason)) in applicable.enumerate() {
        m.insert(format!("checkov.io/skip{}", i + 1), json!(format!("{id}={reason}")));
    }
    Value::Object(m)
}

fn no_probe(svc: &Service) -> Error {
    Error::config_hint(
        format!("service `{}` declares no way to tell it is ready, which Kubernetes probes need", svc.name),
        "add a `healthcheck` or `ready:` to its profile",
    )
}

struct Probes {
    startup: Value,
    readiness: Value,
    liveness: Value,
}

#[derive(Default)]
struct Mounts {
    volumes: Vec<Value>,
    mounts: Vec<Value>,
    config_data: IndexMap<String, Value>,
}

struct Resolved {
    text: String,
    secrets: Vec<String>,
}

impl Resolved {
    /// For `command`, `args` and `env` values, where Kubernetes expands `$(NAME)`: literal `$(` is escaped and
    /// secret marks become `$(NAME)`.
    fn for_kubernetes(&self) -> String {
        let mut out = escape_references(&self.text);
        for s in &self.secrets {
            out = out.replace(&secret_mark(s), &format!("$({s})"));
        }
        out
    }
}

fn secret_mark(name: &str) -> String {
    format!("{SECRET_MARK}{name}{SECRET_MARK}")
}

fn escape_references(s: &str) -> String {
    s.replace("$(", "$$(")
}

fn mount_target(spec: &str) -> String {
    // `${VAR:-./x}:/target:ro`: skip the interpolation, which may itself hold `:`.
    let rest = match spec.strip_prefix("${").and_then(|r| r.find('}').map(|i| &r[i + 1..])) {
        Some(after) => after.trim_start_matches(':'),
        None => spec.split_once(':').map(|(_, r)| r).unwrap_or(spec),
    };
    rest.split(':').next().unwrap_or(rest).to_string()
}

fn image_matches(image: &str, prefix: &str) -> bool {
    image.starts_with(prefix) || image.contains(&format!("/{prefix}"))
}

/// Ports written right after `host:` in `text`, where `host` stands as a host name.
fn ports_after_host(text: &str, host: &str) -> Vec<u16> {
    let pattern = format!("{host}:");
    let mut out = Vec::new();
    for (i, _) in text.match_indices(&pattern) {
        if !host_boundary_before(text, i) {
            continue;
        }
        let digits: String = text[i + pattern.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(p) = digits.parse::<u16>() {
            out.push(p);
        }
    }
    out
}

fn host_boundary_before(text: &str, i: usize) -> bool {
    let before = &text[..i];
    before.is_empty() || before.ends_with("//") || before.ends_with(['@', '"', '\'', ' ', '=', '\t', '\n', '['])
}

/// Replace `name` where it stands as a host: a whole value (`db_postgres`), a URL host (`//name:5432`, `//name/`,
/// `@name:6379`) or `name:PORT` after a quote, space or `=`. Words in comments and paths stay as they are.
fn replace_host(text: &str, name: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(name) {
        if i < last || !host_boundary_before(text, i) {
            continue;
        }
        let before = &text[..i];
        let after = &text[i + name.len()..];
        let with_port = after.starts_with(':') && after[1..].starts_with(|c: char| c.is_ascii_digit());
        let url_path = after.starts_with('/') && (before.ends_with("//") || before.ends_with('@'));
        let whole = before.is_empty() && after.is_empty();
        let quoted = after.starts_with(['"', '\'']) && before.ends_with(['"', '\'']);
        if with_port || url_path || whole || quoted {
            out.push_str(&text[last..i]);
            out.push_str(replacement);
            last = i + name.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Compose durations (`30s`, `1m30s`, `2m`) in whole seconds.
fn duration_seconds(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'h' => n * 3600,
            'm' => n * 60,
            's' => n,
            _ => return None,
        };
    }
    if !number.is_empty() {
        total += number.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Compose `cpus` (`"1.5"`) in millicores.
fn cpu_millis(s: &str) -> Option<u64> {
    let v: f64 = s.trim().parse().ok()?;
    (v > 0.0).then(|| (v * 1000.0).round() as u64)
}

/// `user: "1000:1000"` as runAsUser/runAsGroup; names cannot be mapped.
fn numeric_user(user: &str) -> Option<(u64, Option<u64>)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    Some((uid.parse().ok()?, gid.map(|g| g.parse().ok()).unwrap_or(None)))
}

#[cfg(test)]
mod tests {
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
        let conf = nginx["data"]["nginx.conf"].as_str().unwrap();
        assert!(conf.contains("resolver kube-dns.kube-system.svc.cluster.local "), "{conf}");
        assert!(conf.contains("user nginx;"));
        let site = nginx["data"]["default.conf"].as_str().unwrap();
        assert!(site.contains("set $plugin_upstream http://plugin-daemon.demo.svc.cluster.local:5002;"), "{site}");
        assert!(site.contains("location /api {"));
        let prometheus = find(&docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"].as_str().unwrap();
        assert!(prometheus.contains("\"postgres-exporter:9187\""), "{prometheus}");
        let mounts = &container(find(&docs, "StatefulSet", "nginx"))["volumeMounts"];
        assert!(
            mounts
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mountPath"] == "/etc/nginx/nginx.conf" && m["subPath"] == "nginx.conf")
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
        assert_eq!(duration_seconds("5"), Some(5));
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
