//! Checks of the host: disk and memory headroom, published ports.

use std::time::Duration;

use futures_util::FutureExt;

use crate::byte_size::ByteSize;
use crate::doctor::{CheckDef, DoctorContext, Outcome};
use crate::port_holder;

fn always(_: &DoctorContext) -> bool {
    true
}

pub fn checks() -> Vec<CheckDef> {
    vec![
        CheckDef {
            id: "host.disk",
            title: "enough free disk where Docker keeps images and volumes",
            needs: &["docker.reachable"],
            timeout: Duration::from_secs(2),
            applies: always,
            run: |ctx| async move { disk(ctx).await }.boxed(),
        },
        CheckDef {
            id: "host.memory",
            title: "enough available memory for the stack's limits",
            needs: &["config.stack"],
            timeout: Duration::from_secs(2),
            applies: always,
            run: |ctx| async move { memory(ctx) }.boxed(),
        },
        CheckDef {
            id: "ports.published",
            title: "published host ports are free before `up`, and answer after it",
            needs: &["config.stack", "docker.reachable"],
            timeout: Duration::from_secs(4),
            applies: always,
            run: |ctx| async move { ports(ctx).await }.boxed(),
        },
    ]
}

const GIB: u64 = 1024 * 1024 * 1024;

async fn disk(ctx: &DoctorContext) -> Outcome {
    let Ok(docker) = ctx.docker().await else { return Outcome::skip("needs Docker") };
    let root = docker.root_dir().await.unwrap_or_else(|_| "/var/lib/docker".into());
    let stat = match rustix::fs::statvfs(root.as_str()) {
        Ok(s) => s,
        Err(e) => return Outcome::warn(format!("cannot read free space of `{root}`: {e}"), "check it with `df -h`"),
    };
    let free = stat.f_bavail * stat.f_frsize;
    let total = stat.f_blocks * stat.f_frsize;
    let pct = if total > 0 { free as f64 * 100.0 / total as f64 } else { 100.0 };
    let detail = format!("{:.1} GiB free ({pct:.0} %) at `{root}`", free as f64 / GIB as f64);
    if free < GIB {
        Outcome::fail(detail, "free disk space: `docker system prune`, remove old volumes, or grow the disk")
    } else if free < 5 * GIB || pct < 10.0 {
        Outcome::warn(detail, "free disk space soon: `docker system prune`, or grow the disk")
    } else {
        Outcome::pass(detail)
    }
}

fn memory(ctx: &DoctorContext) -> Outcome {
    let Some(available) = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse::<u64>().ok()
    }) else {
        return Outcome::skip("no /proc/meminfo on this host");
    };
    let available = available * 1024;
    let limits: u64 = ctx
        .stack
        .as_ref()
        .map(|s| {
            s.services
                .values()
                .filter_map(|svc| {
                    let m = svc.resources.as_ref()?.memory.as_deref()?;
                    ByteSize::parse(m).map(|size| size.bytes() * u64::from(svc.replicas.max(1)))
                })
                .sum()
        })
        .unwrap_or(0);
    let detail = format!(
        "{:.1} GiB available{}",
        available as f64 / GIB as f64,
        if limits > 0 {
            format!("; the stack's memory limits add up to {:.1} GiB", limits as f64 / GIB as f64)
        } else {
            String::new()
        }
    );
    if available < GIB / 2 {
        Outcome::fail(detail, "free memory or add some: services will be OOM-killed")
    } else if limits > available {
        Outcome::warn(
            detail,
            "the limits are upper bounds, but under load the host will swap or OOM-kill: lower `resources:` in ragctl.yaml or add memory",
        )
    } else {
        Outcome::pass(detail)
    }
}

async fn ports(ctx: &DoctorContext) -> Outcome {
    let (Ok(stack), Ok(docker)) = (&ctx.stack, ctx.docker().await) else {
        return Outcome::skip("needs Docker and the stack");
    };
    let ours = ctx.containers().await.map(|c| c.to_vec()).unwrap_or_default();
    let mut problems = Vec::new();
    let mut hints = Vec::new();
    let mut count = 0;
    for svc in stack.services.values() {
        for p in &svc.ports {
            count += 1;
            let port = ctx.value(&p.env).and_then(|v| v.parse::<u16>().ok()).unwrap_or(p.default);
            let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() };
            let connect_ip = if ip == "0.0.0.0" { "127.0.0.1" } else { ip };
            let held_by_us = ours
                .iter()
                .any(|c| c.service == svc.name && c.ports.iter().any(|cp| cp.contains(&format!(":{port}->"))));
            if held_by_us {
                let answers = crate::net::answers((connect_ip, port), Duration::from_secs(1)).await;
                if !answers {
                    problems
                        .push(format!("{ip}:{port} ({}) is published by `{}` but does not answer", p.env, svc.name));
                    hints.push(format!("ragctl logs {}", svc.name));
                }
                continue;
            }
            match port_holder::is_free(ip, port) {
                Ok(true) => {}
                Ok(false) => {
                    let holder = match docker.containers_publishing(port).await.ok().and_then(|c| c.into_iter().next())
                    {
                        Some((name, project)) if !project.is_empty() => {
                            format!("container `{name}` of project `{project}`")
                        }
                        Some((name, _)) => format!("container `{name}`"),
                        None => match port_holder::holders(port).first() {
                            Some(h) => format!("process `{}` (pid {})", h.name, h.pid),
                            None => "a process this user cannot see (try `sudo ss -ltnp`)".into(),
                        },
                    };
                    problems.push(format!("{ip}:{port} for `{}` is taken by {holder}", svc.name));
                    hints.push(format!("set {}=<free port> in .env, or stop {holder}", p.env));
                }
                Err(e) => problems.push(format!("{ip}:{port} for `{}`: {e}", svc.name)),
            }
        }
    }
    if problems.is_empty() {
        Outcome::pass(format!("{count} published ports free or answering"))
    } else {
        Outcome::fail(problems.join("\n"), hints.join("; "))
    }
}
