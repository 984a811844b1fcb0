//! Readiness, liveness and startup probes from the readiness declarations, and resource requests and limits.
//! Compose units (durations, CPUs, sizes) are converted here; sizes through [`crate::byte_size`], never a parser of
//! its own.

use super::*;

impl<'a> Model<'a> {
    pub(super) fn probes(&self, svc: &Service) -> Result<Probes, Error> {
        let hc = svc.healthcheck.as_ref();
        let healthcheck_handler = |hc: &HealthcheckDef| self.healthcheck_handler(svc, hc);
        let readiness_handler = match &svc.ready {
            ReadinessProbe::Exec(cmd) => json!({ "exec": { "command": cmd } }),
            ReadinessProbe::Tcp(port) => json!({ "tcpSocket": { "port": port } }),
            ReadinessProbe::Http { port, path } => json!({ "httpGet": { "path": path, "port": port } }),
            // The kubelet cannot speak the PostgreSQL protocol: pg_isready in the container decides the same way,
            // as the user and database the container's own environment names (expanded by the shell).
            ReadinessProbe::Postgres(port) => {
                let cmd =
                    crate::postgres::probe::isready_argv(*port, "\"$POSTGRES_USER\"", "\"$POSTGRES_DB\"").join(" ");
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
    pub(super) fn healthcheck_handler(&self, svc: &Service, hc: &HealthcheckDef) -> Result<Value, Error> {
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
    pub(super) fn resources(&self, svc: &Service) -> Value {
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
}

pub(super) fn no_probe(svc: &Service) -> Error {
    Error::config_hint(
        format!("service `{}` declares no way to tell it is ready, which Kubernetes probes need", svc.name),
        "add a `healthcheck` or `ready:` to its profile",
    )
}

pub(super) struct Probes {
    pub(super) startup: Value,
    pub(super) readiness: Value,
    pub(super) liveness: Value,
}

/// Compose durations (`30s`, `1m30s`, `1.5s`) in whole seconds, rounded up; the parser is the profiles' own.
pub(super) fn duration_seconds(s: &str) -> Option<u64> {
    crate::profile::compose_duration(s).map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// Compose `cpus` (`"1.5"`) in millicores.
pub(super) fn cpu_millis(s: &str) -> Option<u64> {
    let v: f64 = s.trim().parse().ok()?;
    (v > 0.0).then(|| (v * 1000.0).round() as u64)
}
