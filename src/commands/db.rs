//! `ragctl db check`: inspect the stack's PostgreSQL ([`crate::db::check`]) and print the one report as text or
//! JSON. Exit 0 when nothing failed, 1 when something did, 3 when Docker cannot be reached.

use crate::db::{self, DbReport, Finding, InstanceReport, Level};
use crate::docker::DockerClient;
use crate::doctor::DoctorContext;
use crate::error::{Error, exit};
use crate::output::Output;
use crate::settings::Settings;

pub fn run(settings: &Settings, out: &Output) -> Result<i32, Error> {
    let runtime = super::runtime()?;
    let report = runtime.block_on(super::interruptible(async {
        // Connect here first so an unreachable engine is its own error (exit 3), not a failed check.
        DockerClient::connect(settings.docker_host.as_deref()).await?;
        let doctor = DoctorContext::new(settings.clone());
        Ok::<_, Error>(db::check(&doctor.db().await).await)
    }))?;
    if out.is_json() {
        out.json(&report);
    } else {
        out.data(&render_text(&report, settings.unicode));
    }
    Ok(if report.ok { super::OK } else { exit::FAILURE })
}

/// Facts first (one line each), then every warning and failure with its hint, then a count.
fn render_text(report: &DbReport, unicode: bool) -> String {
    let mut text = render_instance(&report.postgres, "");
    if let Some(pgvector) = &report.pgvector {
        text.push_str("\npgvector:\n");
        text.push_str(&render_instance(pgvector, "  "));
    }
    let problems: Vec<&Finding> = report.findings().filter(|f| f.level != Level::Pass).collect();
    if !problems.is_empty() {
        text.push('\n');
        for f in &problems {
            let mark = match (f.level, unicode) {
                (Level::Fail, true) => "✗",
                (Level::Fail, false) => "[FAIL]",
                (_, true) => "!",
                (_, false) => "[warn]",
            };
            let mut lines = f.detail.lines();
            text.push_str(&format!("{mark} {}: {}\n", f.check, lines.next().unwrap_or_default()));
            for more in lines {
                text.push_str(&format!("    {more}\n"));
            }
            if let Some(hint) = &f.hint {
                text.push_str(&format!("    hint: {hint}\n"));
            }
        }
        let failed = problems.iter().filter(|f| f.level == Level::Fail).count();
        let warned = problems.len() - failed;
        text.push_str(&format!(
            "\n{failed} problem{} found, {warned} warning{}\n",
            if failed == 1 { "" } else { "s" },
            if warned == 1 { "" } else { "s" }
        ));
    }
    text
}

fn render_instance(r: &InstanceReport, indent: &str) -> String {
    // The first finding of a check is its fact; a later one is an error that cut the inspection short.
    let finding = |check: &str| r.findings.iter().find(|f| f.check == check);
    let mut lines = Vec::new();
    match (&r.server, &r.image) {
        (Some(server), Some(image)) => lines.push(db::assess_version(r.service, server, image).detail),
        (Some(s), None) => lines.push(format!("PostgreSQL {} (major {})", s.server_version, s.major)),
        (None, _) => lines.push(format!("PostgreSQL: not reached (`{}`)", r.service)),
    }
    if let Some(route) = &r.route {
        lines.push(format!("route: {route}"));
    }
    if let Some(container) = &r.container {
        lines.push(format!("container: {container}"));
    }
    if let Some(dir) = &r.data_dir {
        let version = dir.pg_version.map_or("no PG_VERSION".into(), |v| format!("PG_VERSION {v}"));
        let image = r.image.as_ref().and_then(|i| i.major).map(|m| format!(", image major {m}")).unwrap_or_default();
        lines.push(format!("data directory: {} ({version}{image})", dir.path));
    }
    if let Some(ext) = &r.extensions {
        let mut names: Vec<String> = ext.installed.iter().map(|e| format!("{} {}", e.name, e.version)).collect();
        names.extend(ext.available.iter().map(|a| format!("{a} (available, not created yet)")));
        names.extend(ext.missing.iter().map(|m| format!("{m} (MISSING)")));
        lines.push(format!("extensions: {}", names.join(", ")));
    }
    if let Some(c) = &r.connections {
        lines.push(format!("connections: {} of {} in use ({} %)", c.in_use, c.max, c.percent()));
    }
    if r.replication.is_some()
        && let Some(f) = finding("postgres.replication")
    {
        let mut detail = f.detail.lines();
        lines.push(format!("replication: {}", detail.next().unwrap_or_default()));
        lines.extend(detail.map(|l| format!("  {l}")));
    }
    lines.iter().map(|l| format!("{indent}{l}\n")).collect()
}
