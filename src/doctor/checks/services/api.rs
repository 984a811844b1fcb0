//! The API: `/health/api` through nginx answers in time, and the image's Python packages agree (`pip check`).

use std::io;
use std::time::Instant;

use super::endpoint::{endpoint, http_get};
use crate::doctor::{DoctorContext, Outcome};

/// The monitoring profile's alert threshold for API response time.
const API_SLOW_MS: u128 = 500;

pub(super) async fn health(ctx: &DoctorContext) -> Outcome {
    let ep = match endpoint(ctx, "nginx", 80).await {
        Ok(ep) => ep,
        Err(outcome) => return outcome,
    };
    let started = Instant::now();
    let response = http_get(&ep, "/health/api", None).await;
    let ms = started.elapsed().as_millis();
    match response {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::fail(
            format!("GET /health/api through nginx at {ep}: {e}"),
            "nginx took the request but gave no answer: usually it is waiting for the API (`ragctl ps`, \
             `ragctl logs api`)",
        ),
        Err(e) => Outcome::fail(
            format!("GET /health/api through nginx at {ep}: {e}"),
            "`ragctl logs nginx`; EXPOSE_NGINX_PORT in .env is the host port nginx listens on",
        ),
        Ok(r) if !(200..300).contains(&r.status) => Outcome::fail(
            format!("GET /health/api through nginx at {ep} answered HTTP {} in {ms} ms", r.status),
            "502/504 mean nginx cannot reach the API: `ragctl logs api` and `ragctl logs nginx`",
        ),
        Ok(r) if ms > API_SLOW_MS => Outcome::warn(
            format!("GET /health/api through nginx at {ep}: HTTP {} in {ms} ms (over {API_SLOW_MS} ms)", r.status),
            "find what slows it: `ragctl logs api`, `docker stats` for CPU or memory pressure",
        ),
        Ok(r) => Outcome::pass(format!("GET /health/api through nginx at {ep}: HTTP {} in {ms} ms", r.status)),
    }
}

/// `pip check` where the image has it: `uv pip check` in a uv-managed virtualenv (current Dify images), else pip.
const PIP_CHECK_SCRIPT: &str = r#"
if [ -n "$VIRTUAL_ENV" ] && command -v uv >/dev/null 2>&1; then exec uv pip check; fi
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then exec python3 -m pip check; fi
if command -v pip >/dev/null 2>&1; then exec pip check; fi
echo "neither uv nor pip in this image"
exit 127
"#;

pub(super) async fn pip_check(ctx: &DoctorContext) -> Outcome {
    let Some(container) = ctx.container_of("api").await.filter(|c| c.state == "running") else {
        return Outcome::skip("no api container runs");
    };
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let cmd = ["sh".to_string(), "-c".to_string(), PIP_CHECK_SCRIPT.to_string()];
    match docker.exec_output(&container.id, &container.name, &cmd).await {
        Ok((0, output)) => Outcome::pass(format!("`pip check` in `{}`: {}", container.name, output.trim())),
        Ok((126 | 127, output)) => {
            Outcome::skip(format!("cannot run pip check in `{}`: {}", container.name, output.trim()))
        }
        Ok((_, output)) => Outcome::fail(
            format!("`pip check` in `{}` found conflicts:\n{}", container.name, output.trim()),
            "the API image has conflicting packages: use the image version the release names (`images: {api: ...}` in \
             ragctl.yaml), or rebuild your custom image with consistent pins",
        ),
        Err(e) => Outcome::fail(e.to_string(), "`ragctl ps` shows the state of `api`"),
    }
}
