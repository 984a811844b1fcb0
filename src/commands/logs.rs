//! `ragctl logs`: every selected container's log, each line prefixed with its container name, interleaved as
//! lines arrive (like compose). A closed stdout (`| head`) ends it quietly with exit 0.

use std::io::Write;

use futures_util::StreamExt;

use crate::cli::LogsArgs;
use crate::docker::DockerClient;
use crate::error::Error;
use crate::output::Output;
use crate::settings::Settings;

pub fn run(settings: &Settings, _out: &Output, args: &LogsArgs) -> Result<i32, Error> {
    let project = super::project_name(settings);
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let runtime = super::runtime()?;
    runtime.block_on(super::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let containers: Vec<_> = docker
            .list_containers(project)
            .await?
            .into_iter()
            .filter(|c| args.services.is_empty() || args.services.contains(&c.service))
            .collect();
        if let Some(unknown) = args.services.iter().find(|s| !containers.iter().any(|c| &c.service == *s)) {
            return Err(Error::config_hint(
                format!("no container of service `{unknown}` in project `{project}`"),
                "see `ragctl ps` for the project's services",
            ));
        }
        let width = containers.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let streams = containers.iter().map(|c| {
            let prefix = format!("{:<width$} | ", c.name);
            docker.logs(&c.id, args.tail, since, args.follow).map(move |chunk| (prefix.clone(), chunk)).boxed()
        });
        let mut merged = futures_util::stream::select_all(streams);
        let mut stdout = std::io::stdout().lock();
        let mut pending: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        while let Some((prefix, chunk)) = merged.next().await {
            let chunk = chunk?;
            // Docker delivers chunks, not lines: emit complete lines, keep the rest for the next chunk.
            let buf = pending.entry(prefix.clone()).or_default();
            buf.push_str(&chunk);
            while let Some(pos) = buf.find('\n') {
                let line: String = buf.drain(..=pos).collect();
                if stdout.write_all(prefix.as_bytes()).and_then(|_| stdout.write_all(line.as_bytes())).is_err() {
                    return Ok(()); // reader went away
                }
            }
            if stdout.flush().is_err() {
                return Ok(());
            }
        }
        for (prefix, rest) in pending {
            if !rest.is_empty() && writeln!(stdout, "{prefix}{rest}").is_err() {
                return Ok(());
            }
        }
        Ok(())
    }))?;
    Ok(super::OK)
}

/// `10m`, `1h30m`, `45s` before now, or a Unix timestamp.
fn parse_since(value: &str) -> Result<i64, Error> {
    if let Ok(ts) = value.parse::<i64>() {
        return Ok(ts);
    }
    let ns = crate::engine::spec::duration_ns(value, "logs --since").map_err(|_| {
        Error::config_hint(
            format!("invalid value `{value}` for --since"),
            "use a duration like 10m or a Unix timestamp",
        )
    })?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    Ok(now - ns / 1_000_000_000)
}
