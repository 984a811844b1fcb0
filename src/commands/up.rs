//! `ragctl up`: resolve → render → secrets → desired state → observe → plan → preflight → pull → write the
//! rendered files and `.env` → apply. `--dry-run` stops after the plan and writes nothing; a refused `up`
//! (preflight, a failed pull) has written nothing either.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::render::{FileStatus, status_of, write_rendered};
use crate::backup::data_release::{self, Decision, ReleaseRecord};
use crate::cli::UpArgs;
use crate::docker::DockerClient;
use crate::engine::apply::{HINT_RERUN, ServiceOutcome, apply_up, pull_images};
use crate::engine::plan::{Observed, Plan, plan_up};
use crate::engine::preflight::port_conflicts;
use crate::engine::spec::desired;
use crate::env_file::EnvFile;
use crate::env_vars::compose_lookup;
use crate::error::Error;
use crate::output::Output;
use crate::render::{TemplateSource, render_stack};
use crate::reporter::{Event, reporter};
use crate::secrets::plan_gen;
use crate::settings::Settings;

#[derive(Serialize)]
struct UpReport<'a> {
    project: &'a str,
    dry_run: bool,
    files_written: Vec<String>,
    secrets_generated: Vec<String>,
    plan: Vec<String>,
    services: Vec<ServiceOutcome>,
    elapsed_ms: u64,
}

pub fn run(settings: &Settings, out: &Output, args: &UpArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let (_, stack) = super::load_stack(settings)?;
    super::check_env_port_keys(settings)?;
    for w in &stack.warnings {
        out.warn(w);
    }
    let _lock = if args.dry_run { None } else { Some(super::lock_project(&stack.project, "up", out)?) };

    // Render exactly as `render` does: the rendered config files are bind-mounted.
    let files = render_stack(&stack, settings, &TemplateSource::new(&settings.project_dir))?;
    let changed_files: Vec<&crate::render::RenderedFile> =
        files.iter().filter(|f| status_of(&settings.project_dir.join(&f.path), f) != FileStatus::Unchanged).collect();

    // Missing secrets are generated (and, except in a dry run, saved); their names are said, never values.
    let env_file = EnvFile::load(&settings.env_file)?;
    let mut doc = env_file.doc_or_new();
    let generated = plan_gen(&stack.secrets, &doc, &[])?;
    for c in &generated {
        doc.set_in_group(&c.profile, &c.name, c.value.expose());
    }
    if !generated.is_empty() && !args.dry_run {
        // A read-only .env is refused now, not after the images were pulled.
        env_file.ensure_writable()?;
    }
    let say_generated = |verb: &str| {
        if !generated.is_empty() && !out.is_json() {
            let names: Vec<&str> = generated.iter().map(|c| c.name.as_str()).collect();
            out.info(&format!(
                "{verb} {} missing secrets in `{}`: {}",
                names.len(),
                env_file.path.display(),
                names.join(", ")
            ));
        }
    };
    if args.dry_run {
        say_generated("would generate");
    }
    // Rendered files and .env are written only once nothing is left that could refuse the deployment (preflight,
    // pulls): a refused `up` leaves the project directory as it was. `written` says whether they were.
    let written = std::cell::Cell::new(false);
    let write_project_files = || -> Result<(), Error> {
        for f in &changed_files {
            write_rendered(&settings.project_dir, f)?;
        }
        if !generated.is_empty() {
            env_file.save(&doc)?;
        }
        written.set(true);
        Ok(())
    };

    // Compose's rule: the process environment overrides .env.
    let vars = compose_lookup(&doc);
    let desired = desired(&stack, &vars, &settings.project_dir, args.timeout.map(Duration::from_secs))?;

    // --- swarm: the same model, deployed as Swarm services ---
    if args.target == crate::cli::DeployTarget::Swarm {
        if !args.dry_run {
            write_project_files()?;
            say_generated("generated");
        }
        let changed: Vec<String> = changed_files.iter().map(|f| f.path.clone()).collect();
        let generated: Vec<String> = generated.iter().map(|c| c.name.clone()).collect();
        let prelude = super::swarm::UpPrelude { changed_files: &changed, secrets_generated: &generated, started };
        return super::swarm::up(settings, out, args, &stack, &desired, &vars, prelude);
    }
    // --- end swarm ---

    let record = crate::backup::guard::read_record(&settings.project_dir)?;
    let runtime = super::runtime()?;
    let rep = reporter(settings.progress, settings.color);
    let result = runtime.block_on(super::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let observed = observe(&docker, &desired).await?;
        let plan = plan_up(&desired, &observed, args.pull, args.remove_orphans);
        let lines = plan.describe();
        if args.dry_run {
            return Ok((plan, lines, Vec::new()));
        }
        // Data safety first: data last run by a newer Dify release, a volume that held data about to be created
        // empty, a data directory of another major.
        let cache_dir = crate::project_lock::private_state_dir().ok();
        let release = data_release_check(&docker, &desired, &observed, cache_dir.as_deref(), settings, args).await?;
        if !args.allow_empty_data {
            crate::backup::guard::check_missing(record.as_ref(), &desired, &plan.create_volumes)?;
        }
        crate::backup::guard::check_pg_data(
            &docker,
            &desired,
            &observed.containers,
            &observed.volumes,
            record.as_ref(),
            args.allow_empty_data,
        )
        .await?;
        let filled = crate::backup::guard::check_filled(
            &docker,
            &desired,
            &observed.containers,
            &observed.volumes,
            record.as_ref(),
            args.allow_empty_data,
        )
        .await?;
        preflight(&docker, &plan).await?;
        let actions = lines.iter().filter(|l| !l.starts_with("keep ")).count();
        rep.event(Event::PlanReady { actions });
        if !plan.remove_orphans {
            for o in &plan.orphans {
                rep.event(Event::Note {
                    message: format!(
                        "container `{}` belongs to service `{}`, which is not in the stack (remove it with --remove-orphans)",
                        o.name, o.service
                    ),
                });
            }
        }
        pull_images(&docker, &plan, rep.as_ref()).await?;
        write_project_files()?;
        let wait = !args.no_wait;
        // The cache is an optimisation: without a private directory for it, every service is simply probed.
        let proven = cache_dir.as_deref().map(|d| crate::ready_cache::load(d, &stack.project)).unwrap_or_default();
        let outcomes = apply_up(&docker, &plan, rep.as_ref(), wait, &proven).await?;
        record_data_volumes(settings, &desired, record.as_ref(), filled)?;
        record_release(&docker, &desired, &outcomes, cache_dir.as_deref(), settings, release).await?;
        if let Some(dir) = &cache_dir {
            let now_proven = outcomes.iter().flat_map(|o| o.proven.iter().cloned()).collect();
            crate::ready_cache::save(dir, &stack.project, &now_proven);
        }
        Ok((plan, lines, outcomes))
    }));
    rep.finish();
    if written.get() {
        say_generated("generated");
    }
    let (plan, lines, outcomes) = result?;

    let elapsed = started.elapsed();
    if out.is_json() {
        out.json(&UpReport {
            project: &stack.project,
            dry_run: args.dry_run,
            files_written: if args.dry_run {
                Vec::new()
            } else {
                changed_files.iter().map(|f| f.path.clone()).collect()
            },
            secrets_generated: generated.iter().map(|c| c.name.clone()).collect(),
            plan: lines,
            services: outcomes,
            elapsed_ms: elapsed.as_millis() as u64,
        });
    } else if args.dry_run {
        let mut text = String::new();
        for f in &changed_files {
            text.push_str(&format!("write file {}\n", f.path));
        }
        for line in lines.iter().filter(|l| out.verbose > 0 || !l.starts_with("keep ")) {
            text.push_str(line);
            text.push('\n');
        }
        if plan.is_noop() && changed_files.is_empty() && generated.is_empty() {
            text.push_str("nothing to do: the stack is up to date\n");
        }
        out.data(&text);
    } else {
        let changed = outcomes.iter().filter(|o| o.changed).count();
        out.info(&format!(
            "project `{}`: {} services up ({} changed, {} unchanged) in {:.1}s",
            stack.project,
            outcomes.len(),
            changed,
            outcomes.len() - changed,
            elapsed.as_secs_f64()
        ));
    }
    Ok(super::OK)
}

/// Remember which volumes hold the project's data (for the guard above), when that changed.
fn record_data_volumes(
    settings: &Settings,
    desired: &crate::engine::spec::Desired,
    old: Option<&crate::backup::guard::DataRecord>,
    filled: Vec<String>,
) -> Result<(), Error> {
    let mut record = crate::backup::guard::record_of(desired);
    record.filled = filled.into_iter().filter(|v| record.volumes.contains(v)).collect();
    if old == Some(&record) || record.volumes.is_empty() {
        return Ok(());
    }
    let path = settings.project_dir.join(crate::backup::guard::RECORD_FILE);
    let text = serde_json::to_vec_pretty(&record).map_err(|e| Error::config(format!("failed to encode JSON: {e}")))?;
    crate::atomic_file::write_atomic(&path, &text, Some(0o644)).map_err(|e| Error::io("write", &path, e))
}

/// What the release check found: the record, whether it came from the cache, and what to do after `up`.
struct ReleaseCheck {
    recorded: Option<ReleaseRecord>,
    from_cache: bool,
    decision: Decision,
}

/// Read the record of the newest release that ran against the data (from the cache while the `db_postgres`
/// container it was read through stays; else through that container, or a helper container when there is none;
/// nothing to read when the volume does not exist) and refuse an older selected release.
async fn data_release_check(
    docker: &DockerClient,
    desired: &crate::engine::spec::Desired,
    observed: &Observed,
    cache_dir: Option<&std::path::Path>,
    settings: &Settings,
    args: &UpArgs,
) -> Result<ReleaseCheck, Error> {
    let at = data_release::location(desired).filter(|at| observed.volumes.contains(&at.volume));
    let container = observed.containers.iter().find(|c| c.service == data_release::SERVICE && c.number == 1);
    let (recorded, from_cache) = match (&at, container) {
        (None, _) => (None, false),
        (Some(at), Some(c)) => match cache_dir.and_then(|d| data_release::cached(d, &desired.project, &c.id)) {
            Some(r) => (r, true),
            None => (data_release::read_in(docker, &c.id, &c.name, &at.dir).await?, false),
        },
        (Some(at), None) => (data_release::read_volume(docker, &desired.project, at).await?, false),
    };
    let decision =
        data_release::decide(recorded.as_ref().map(|r| r.release.as_str()), &settings.release, args.allow_downgrade)?;
    Ok(ReleaseCheck { recorded, from_cache, decision })
}

/// Once PostgreSQL is proven ready: record the selected release when it is newer (or an allowed downgrade), and
/// cache what the data now says. Skipped with --no-wait when PostgreSQL was not proven ready (the next `up` does it).
async fn record_release(
    docker: &DockerClient,
    desired: &crate::engine::spec::Desired,
    outcomes: &[ServiceOutcome],
    cache_dir: Option<&std::path::Path>,
    settings: &Settings,
    check: ReleaseCheck,
) -> Result<(), Error> {
    if check.decision == Decision::Keep && check.from_cache {
        return Ok(());
    }
    let Some(at) = data_release::location(desired) else { return Ok(()) };
    let ready =
        outcomes.iter().any(|o| o.service == data_release::SERVICE && (o.ready_ms.is_some() || !o.proven.is_empty()));
    if !ready {
        return Ok(());
    }
    let containers = docker.list_containers(&desired.project).await?;
    let Some(c) = containers.iter().find(|c| c.service == data_release::SERVICE && c.number == 1) else {
        return Ok(());
    };
    let record = match check.decision {
        Decision::Keep => check.recorded,
        Decision::Raise | Decision::Lower => Some(
            data_release::write_in(docker, &c.id, &c.name, &at.dir, check.recorded.as_ref(), &settings.release).await?,
        ),
    };
    if let Some(dir) = cache_dir {
        data_release::remember(dir, &desired.project, &c.id, record.as_ref());
    }
    Ok(())
}

async fn observe(docker: &DockerClient, desired: &crate::engine::spec::Desired) -> Result<Observed, Error> {
    let images: BTreeSet<&str> = desired.containers.iter().map(|c| c.image.as_str()).collect();
    let presence = futures_util::future::try_join_all(
        images
            .iter()
            .map(|image| async move { Ok::<_, Error>((image.to_string(), docker.image_present(image).await?)) }),
    );
    let (containers, networks, volumes, presence) = futures_util::try_join!(
        docker.list_containers(&desired.project),
        docker.list_networks_with_ids(&desired.project),
        docker.list_volumes(&desired.project),
        presence
    )?;
    Ok(Observed {
        containers,
        network_ids: networks.iter().map(|(_, id)| id.clone()).collect(),
        networks: networks.into_iter().map(|(name, _)| name).collect(),
        volumes,
        images_present: presence.into_iter().filter(|(_, p)| *p).map(|(i, _)| i).collect(),
    })
}

/// Refuse before creating anything: missing images with `--pull never`, host ports held by others.
async fn preflight(docker: &DockerClient, plan: &Plan) -> Result<(), Error> {
    if !plan.missing_images.is_empty() {
        return Err(Error::Deploy {
            message: format!(
                "{} not present locally and --pull never forbids pulling: {}",
                if plan.missing_images.len() == 1 { "an image is" } else { "images are" },
                plan.missing_images.join(", ")
            ),
            hint: Some("load or build the images (`docker load`, `docker build`), or run with --pull missing".into()),
        });
    }
    // Networks to create: a first deployment here, so check that the project is not already on Swarm (its
    // overlays carry the same name the bridge would get, and its tasks hold the same ports and volumes).
    let swarm_services =
        async { if plan.create_networks.is_empty() { 0 } else { docker.swarm_service_count(&plan.project).await } };
    let (services, conflicts) = futures_util::join!(swarm_services, port_conflicts(docker, plan));
    if services > 0 {
        return Err(Error::Deploy {
            message: format!(
                "project `{}` is deployed on Swarm ({services} services); nothing was created",
                plan.project
            ),
            hint: Some(
                "manage it with `--target swarm` (`ragctl down --target swarm` removes it), or run this one under another project name (-p)".into(),
            ),
        });
    }
    let conflicts = conflicts?;
    if !conflicts.is_empty() {
        let message = conflicts.iter().map(|c| c.describe()).collect::<Vec<_>>().join("\n");
        return Err(Error::Deploy {
            message: format!("preflight failed, nothing was created:\n{message}"),
            hint: Some(HINT_RERUN.replace("fix the cause", "free the ports or move them")),
        });
    }
    Ok(())
}
