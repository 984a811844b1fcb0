//! nginx: its configuration (`nginx -t` in the container) and the TLS certificate pair it serves.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::endpoint::running_container;
use super::tls_certificate::{assess_certificate, assess_key};
use crate::doctor::{DoctorContext, Outcome, Status};

pub(super) async fn config(ctx: &DoctorContext) -> Outcome {
    let hint = "fix the file and line `nginx -t` names: a NGINX_* value in .env or the templates in templates/nginx/ \
                (then `ragctl up`), or the certificate files in NGINX_CERT_DIR";
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
        Ok((0, _)) => Outcome::pass(format!("`nginx -t` in `{}`: configuration is valid", container.name)),
        Ok((code, output)) => {
            Outcome::fail(format!("`nginx -t` in `{}` exited {code}:\n{}", container.name, output.trim()), hint)
        }
        Err(e) => Outcome::fail(e.to_string(), "`ragctl ps` shows the state of `nginx`"),
    }
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
