//! nginx: its configuration (`nginx -t` in the container) and the TLS certificate pair it serves.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::endpoint::running_container;
use super::tls_certificate::{assess_certificate, assess_key};
use crate::doctor::{DoctorContext, Outcome, Status};

pub(super) async fn config(ctx: &DoctorContext) -> Outcome {
    let hint = "fix the file and line `nginx -t` names: the templates in templates/nginx/ (then `ragctl render` and \
                `ragctl restart nginx`), or the certificate files in NGINX_CERT_DIR";
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let container = match running_container(ctx, "nginx").await {
        Ok(c) => c,
        Err(outcome) => {
            // A crash-looping nginx cannot be exec'd into; its log says why it exits.
            if let Some(c) = ctx.container_of("nginx").await {
                let emerg: Vec<String> =
                    docker.log_tail(&c.id, 30).await.into_iter().filter(|l| l.contains("[emerg]")).collect();
                if !emerg.is_empty() {
                    return Outcome::fail(format!("`{}` is {}:\n{}", c.name, c.state, emerg.join("\n")), hint);
                }
            }
            return outcome;
        }
    };
    let cmd = ["nginx".to_string(), "-t".to_string()];
    match docker.exec_output(&container.id, &container.name, &cmd).await {
        Ok((0, _)) => {
            let valid = format!("`nginx -t` in `{}`: configuration is valid", container.name);
            match redirect_port_drift(ctx) {
                None => Outcome::pass(valid),
                Some((key, rendered, effective)) => Outcome::warn(
                    format!(
                        "{valid}, but port 80 redirects to HTTPS on port {rendered} while {key}={effective} publishes                          HTTPS on {effective}"
                    ),
                    format!(
                        "the rendered config cannot read .env: set `{key}: {effective}` under `ports:` in ragctl.yaml                          (and drop it from .env), then `ragctl up`"
                    ),
                ),
            }
        }
        Ok((code, output)) => {
            Outcome::fail(format!("`nginx -t` in `{}` exited {code}:\n{}", container.name, output.trim()), hint)
        }
        Err(e) => Outcome::fail(e.to_string(), "`ragctl ps` shows the state of `nginx`"),
    }
}

/// The rendered redirect of port 80 names the HTTPS host port the stack was rendered with (ragctl.yaml's `ports:`
/// or the profile's default); a different value in `.env` or the environment moves the published port, not the
/// redirect. (key, rendered port, effective value) when they differ, for the app profile's nginx config.
fn redirect_port_drift(ctx: &DoctorContext) -> Option<(String, u16, String)> {
    let stack = ctx.stack.as_ref().ok()?;
    if !stack.files.iter().any(|f| f.output == "config/nginx/conf.d/default.conf") {
        return None;
    }
    let https = stack.services.get("nginx")?.ports.iter().find(|p| p.target == 443)?;
    let effective = ctx.value(&https.env)?;
    (effective != https.default.to_string()).then(|| (https.env.clone(), https.default, effective))
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// NGINX_CERT_DIR (default `./certs`), relative to the project directory.
fn cert_dir(ctx: &DoctorContext) -> PathBuf {
    let dir = ctx.value("NGINX_CERT_DIR").unwrap_or_else(|| "./certs".into());
    // `./certs` under project dir `.` reads better as `./certs` than `././certs`.
    ctx.settings.project_dir.join(dir).components().collect()
}

pub(super) fn tls_certificate(ctx: &DoctorContext, now: i64) -> Outcome {
    let dir = cert_dir(ctx);
    let cert_path = dir.join(&ctx.settings.tls.certificate);
    let key_path = dir.join(&ctx.settings.tls.key);
    let mut outcomes = [assess_certificate(&cert_path, now), assess_key(&key_path)];
    // Report the worst first; passing lines follow as context.
    outcomes.sort_by_key(|o| match o.status {
        Status::Fail => 0,
        Status::Warn => 1,
        _ => 2,
    });
    let status = outcomes[0].status;
    let detail = outcomes.iter().map(|o| o.detail.as_str()).collect::<Vec<_>>().join("\n");
    let hints: Vec<&str> = outcomes.iter().filter_map(|o| o.hint.as_deref()).collect();
    match status {
        Status::Pass | Status::Skip => Outcome::pass(detail),
        Status::Warn => Outcome::warn(detail, hints.join("; ")),
        Status::Fail => Outcome::fail(detail, hints.join("; ")),
    }
}
