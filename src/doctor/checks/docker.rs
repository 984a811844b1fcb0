//! Checks of the engine and the project's containers.

use std::time::Duration;

use futures_util::FutureExt;

use crate::doctor::{CheckDef, DoctorContext, Outcome};

fn always(_: &DoctorContext) -> bool {
    true
}

pub fn engine_checks() -> Vec<CheckDef> {
    vec![CheckDef {
        id: "docker.reachable",
        title: "the Docker engine answers and speaks a supported API version",
        needs: &[],
        timeout: Duration::from_secs(3),
        applies: always,
        run: |ctx| async move { reachable(ctx).await }.boxed(),
    }]
}

pub fn container_checks() -> Vec<CheckDef> {
    vec![
        CheckDef {
            id: "images.present",
            title: "every image is present locally, or its registry (or mirror) is reachable",
            needs: &["docker.reachable", "config.stack"],
            timeout: Duration::from_secs(4),
            applies: always,
            run: |ctx| async move { images(ctx).await }.boxed(),
        },
        CheckDef {
            id: "containers.state",
            title: "every service's containers run and are healthy (not restarting, not OOM-killed)",
            needs: &["docker.reachable", "config.stack"],
            timeout: Duration::from_secs(4),
            applies: always,
            run: |ctx| async move { containers(ctx).await }.boxed(),
        },
        CheckDef {
            id: "containers.memory",
            title: "no container uses more than 85 % of its memory limit",
            needs: &["docker.reachable"],
            timeout: Duration::from_secs(5),
            applies: always,
            run: |ctx| async move { memory(ctx).await }.boxed(),
        },
    ]
}

async fn reachable(ctx: &DoctorContext) -> Outcome {
    match ctx.docker().await {
        Ok(d) => {
            let version = d.server_version().await.unwrap_or_else(|_| "?".into());
            let api: f32 = d.api_version.parse().unwrap_or(0.0);
            if api < 1.41 {
                return Outcome::fail(
                    format!(
                        "Docker Engine {version} speaks API {} at `{}`; ragctl needs 1.41 (Engine 20.10) or newer",
                        d.api_version, d.endpoint
                    ),
                    "upgrade the Docker engine",
                );
            }
            Outcome::pass(format!("Docker Engine {version} (API {}) at `{}`", d.api_version, d.endpoint))
        }
        Err(e) => Outcome::fail(
            e,
            "start the engine (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running one",
        ),
    }
}

/// The registry host of an image reference (`quay.io/coreos/etcd:v3` → `quay.io`; Docker Hub otherwise).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "registry-1.docker.io",
    }
}

async fn images(ctx: &DoctorContext) -> Outcome {
    let (Ok(stack), Ok(docker)) = (&ctx.stack, ctx.docker().await) else {
        return Outcome::skip("needs Docker and the stack");
    };
    let mut images: Vec<&str> = stack.services.values().map(|s| s.image.as_str()).collect();
    images.sort();
    images.dedup();
    let mut missing = Vec::new();
    for image in &images {
        match docker.image_present(image).await {
            Ok(true) => {}
            Ok(false) => missing.push(*image),
            Err(e) => return Outcome::fail(e.to_string(), "see `ragctl doctor --check docker.reachable`"),
        }
    }
    if missing.is_empty() {
        return Outcome::pass(format!("{} images present locally", images.len()));
    }
    let mut unreachable = Vec::new();
    for image in &missing {
        let host = registry_of(image);
        let (name, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().unwrap_or(443)),
            None => (host, 443),
        };
        let ok = crate::net::answers((name, port), Duration::from_millis(1500)).await;
        if !ok {
            unreachable.push(format!("{image} (registry {host} unreachable)"));
        }
    }
    if unreachable.is_empty() {
        Outcome::warn(
            format!("not present locally (`ragctl up` will pull them): {}", missing.join(", ")),
            "run `ragctl up`, or pull them ahead of time",
        )
    } else {
        Outcome::fail(
            format!("missing locally and cannot be pulled: {}", unreachable.join(", ")),
            "use a reachable mirror (`registry:` in ragctl.yaml or RAGCTL_REGISTRY), or `docker load` the images and override them (`images:` in ragctl.yaml)",
        )
    }
}

async fn containers(ctx: &DoctorContext) -> Outcome {
    let (Ok(stack), Ok(docker)) = (&ctx.stack, ctx.docker().await) else {
        return Outcome::skip("needs Docker and the stack");
    };
    let containers = match ctx.containers().await {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    if containers.is_empty() {
        return Outcome::warn(
            format!("project `{}` has no containers: the stack is not running", stack.project),
            "run `ragctl up`",
        );
    }
    let mut problems = Vec::new();
    let mut hints = Vec::new();
    for svc in stack.services.keys() {
        let mine: Vec<_> = containers.iter().filter(|c| &c.service == svc).collect();
        if mine.is_empty() {
            problems.push(format!("{svc}: no container"));
            continue;
        }
        for c in mine {
            let Ok(st) = docker.inspect(&c.id, &c.name).await else {
                problems.push(format!("{}: cannot be inspected", c.name));
                continue;
            };
            let issue = if st.oom_killed {
                Some(format!("was OOM-killed (exit code {}): its memory limit is too low", st.exit_code))
            } else if st.restarting || (st.restart_count > 0 && st.health.as_deref() != Some("healthy")) {
                let code = docker.last_exit_code(&c.id).await.unwrap_or(st.exit_code);
                Some(format!("is restarting ({} restarts, last exit code {code})", st.restart_count))
            } else if !st.running {
                Some(format!("is {} (exit code {})", st.state, st.exit_code))
            } else if st.health.as_deref() == Some("unhealthy") {
                Some(format!("is unhealthy: {}", st.health_log.last().cloned().unwrap_or_default()))
            } else {
                None
            };
            if let Some(issue) = issue {
                let tail = docker.log_tail(&c.id, 5).await;
                let mut line = format!("{} {issue}", c.name);
                for l in tail {
                    line.push_str(&format!("\n  | {l}"));
                }
                problems.push(line);
                hints.push(format!("ragctl logs {svc}"));
            }
        }
    }
    if problems.is_empty() {
        return Outcome::pass(format!("{} containers running and healthy", containers.len()));
    }
    hints.dedup();
    Outcome::fail(problems.join("\n"), format!("see `{}`; fix the cause, then `ragctl up`", hints.join("`, `")))
}

async fn memory(ctx: &DoctorContext) -> Outcome {
    let Ok(docker) = ctx.docker().await else { return Outcome::skip("needs Docker") };
    let containers = match ctx.containers().await {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return Outcome::skip("no containers"),
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let readings =
        futures_util::future::join_all(containers.iter().filter(|c| c.state == "running").map(|c| async move {
            // The engine's stats endpoint waits for its 1 s collection cycle; on the engine's own host the same
            // numbers are in the container's cgroup.
            let reading = match cgroup_memory(&c.id) {
                Some(r) => Ok(r),
                None => docker.memory_usage(&c.id, &c.name).await,
            };
            (c, reading)
        }))
        .await;
    let mut high = Vec::new();
    let mut measured = 0;
    for (c, r) in readings {
        if let Ok((used, limit)) = r
            && limit > 0
        {
            measured += 1;
            let pct = used as f64 * 100.0 / limit as f64;
            if pct > 85.0 {
                high.push(format!("{}: {:.0} % of {} MiB", c.name, pct, limit / (1024 * 1024)));
            }
        }
    }
    if high.is_empty() {
        Outcome::pass(format!("{measured} containers below 85 % of their memory limit"))
    } else {
        Outcome::warn(
            high.join("\n"),
            "raise the service's memory limit (`resources:` in ragctl.yaml) or find what grows",
        )
    }
}

/// (usage minus inactive file cache, limit) from the container's cgroup (v2, then v1 layouts of the
/// cgroupfs and systemd drivers); `None` when not on the engine's host. An unlimited container reports the
/// host's memory as its limit, as `docker stats` does.
fn cgroup_memory(id: &str) -> Option<(u64, u64)> {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let stat_value = |text: &str, key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok());
    let host_total = || -> Option<u64> {
        let m = std::fs::read_to_string("/proc/meminfo").ok()?;
        Some(m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    for dir in [format!("/sys/fs/cgroup/system.slice/docker-{id}.scope"), format!("/sys/fs/cgroup/docker/{id}")] {
        if let Some(usage) = read(&format!("{dir}/memory.current")).and_then(|v| v.parse::<u64>().ok()) {
            let inactive =
                read(&format!("{dir}/memory.stat")).and_then(|s| stat_value(&s, "inactive_file ")).unwrap_or(0);
            let limit = match read(&format!("{dir}/memory.max")).as_deref() {
                Some("max") | None => host_total()?,
                Some(v) => v.parse().ok()?,
            };
            return Some((usage.saturating_sub(inactive), limit));
        }
    }
    for dir in
        [format!("/sys/fs/cgroup/memory/docker/{id}"), format!("/sys/fs/cgroup/memory/system.slice/docker-{id}.scope")]
    {
        if let Some(usage) = read(&format!("{dir}/memory.usage_in_bytes")).and_then(|v| v.parse::<u64>().ok()) {
            let inactive =
                read(&format!("{dir}/memory.stat")).and_then(|s| stat_value(&s, "total_inactive_file ")).unwrap_or(0);
            let limit = read(&format!("{dir}/memory.limit_in_bytes")).and_then(|v| v.parse::<u64>().ok())?;
            // cgroup v1 reports "no limit" as a huge number.
            let limit = if limit > (1u64 << 60) { host_total()? } else { limit.min(host_total().unwrap_or(limit)) };
            return Some((usage.saturating_sub(inactive), limit));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::registry_of;

    #[test]
    fn registry_hosts() {
        assert_eq!(registry_of("postgres:15-alpine"), "registry-1.docker.io");
        assert_eq!(registry_of("langgenius/dify-api:1.4.0"), "registry-1.docker.io");
        assert_eq!(registry_of("quay.io/coreos/etcd:v3.5"), "quay.io");
        assert_eq!(registry_of("mirror.local:5000/postgres:15"), "mirror.local:5000");
    }
}
