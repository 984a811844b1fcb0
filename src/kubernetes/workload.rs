//! Workloads: a Deployment or StatefulSet per service with its Service, ConfigMap, claims, container and mounts.
//! Builds values only; probes, resources and value resolution come from the sibling modules.

use super::network::{INTERNAL_LABEL, SSRF_ONLY_LABEL, network_label};
use super::probes::duration_seconds;
use super::resolve::{escape_references, ports_after_host, secret_mark};
use super::*;

impl<'a> Model<'a> {
    pub(super) fn shared_claims(&self) -> Vec<Value> {
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

    pub(super) fn is_stateful(&self, svc: &Service) -> bool {
        !svc.stateless || !self.own_volumes(svc).is_empty()
    }

    /// Named volumes only this service (and only one replica) uses, plus image data directories it leaves
    /// unnamed: `(claim name, mount path)`.
    pub(super) fn own_volumes(&self, svc: &Service) -> Vec<(String, String)> {
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
    pub(super) fn ports_of(&self, svc: &Service) -> BTreeSet<u16> {
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
    pub(super) fn service_documents(&self, svc: &Service) -> Result<Vec<Value>, Error> {
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
        if self.ssrf_only(svc) {
            pod_labels[SSRF_ONLY_LABEL] = json!("true");
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

    pub(super) fn container(
        &self,
        svc: &Service,
        name: &str,
        ports: &BTreeSet<u16>,
        mounts: &Mounts,
    ) -> Result<Value, Error> {
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

    /// Volumes and mounts of a service: claims, config files (ConfigMap items), the TLS Secret, host paths.
    pub(super) fn mounts(&self, svc: &Service) -> Result<Mounts, Error> {
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
}

pub(super) fn selector_labels(name: &str) -> Value {
    json!({ "app.kubernetes.io/name": name })
}

/// The `checkov.io/skip<N>` annotations for a workload; the env-secret check only where secrets are in env.
pub(super) fn checkov_skips(secrets_in_env: bool) -> Value {
    let mut m = Map::new();
    let applicable = CHECKOV_SKIPS.iter().filter(|(id, _)| secrets_in_env || *id != SECRETS_IN_ENV_CHECK);
    for (i, (id, reason)) in applicable.enumerate() {
        m.insert(format!("checkov.io/skip{}", i + 1), json!(format!("{id}={reason}")));
    }
    Value::Object(m)
}

#[derive(Default)]
pub(super) struct Mounts {
    pub(super) volumes: Vec<Value>,
    pub(super) mounts: Vec<Value>,
    pub(super) config_data: IndexMap<String, Value>,
}

pub(super) fn mount_target(spec: &str) -> String {
    // `${VAR:-./x}:/target:ro`: skip the interpolation, which may itself hold `:`.
    let rest = match spec.strip_prefix("${").and_then(|r| r.find('}').map(|i| &r[i + 1..])) {
        Some(after) => after.trim_start_matches(':'),
        None => spec.split_once(':').map(|(_, r)| r).unwrap_or(spec),
    };
    rest.split(':').next().unwrap_or(rest).to_string()
}

pub(super) fn image_matches(image: &str, prefix: &str) -> bool {
    image.starts_with(prefix) || image.contains(&format!("/{prefix}"))
}

/// `user: "1000:1000"` as runAsUser/runAsGroup; names cannot be mapped.
pub(super) fn numeric_user(user: &str) -> Option<(u64, Option<u64>)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    Some((uid.parse().ok()?, gid.map(|g| g.parse().ok()).unwrap_or(None)))
}
