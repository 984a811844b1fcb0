//! The data's own records: the newest Dify release that ran against it ([`crate::backup::data_release`]).

use std::time::Duration;

use futures_util::FutureExt;

use crate::backup::data_release::{self, Decision};
use crate::doctor::{CheckDef, DoctorContext, Outcome};
use crate::env_vars::{compose_lookup, compose_variable};

pub fn checks() -> Vec<CheckDef> {
    vec![CheckDef {
        id: "data.release",
        title: "the selected Dify release is not older than the newest that ran against the data",
        needs: &["docker.reachable"],
        timeout: Duration::from_secs(5),
        applies: |ctx| ctx.service_enabled(data_release::SERVICE),
        run: |ctx| async move { release(ctx).await }.boxed(),
    }]
}

async fn release(ctx: &DoctorContext) -> Outcome {
    let selected = &ctx.settings.release;
    let Ok(stack) = &ctx.stack else { return Outcome::skip("the stack could not be built") };
    let desired = match &ctx.env {
        Ok(Some(doc)) => crate::engine::spec::desired(stack, &compose_lookup(doc), &ctx.settings.project_dir, None),
        _ => crate::engine::spec::desired(stack, &compose_variable, &ctx.settings.project_dir, None),
    };
    let Some(at) = desired.ok().as_ref().and_then(data_release::location) else {
        return Outcome::skip(format!("`{}` keeps no data in a named volume", data_release::SERVICE));
    };
    let Some(container) = ctx.container_of(data_release::SERVICE).await else {
        return Outcome::skip(format!("no `{}` container yet (selected {selected})", data_release::SERVICE));
    };
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "check that Docker is reachable"),
    };
    let recorded = match data_release::read_in(docker, &container.id, &container.name, &at.dir).await {
        Ok(r) => r,
        Err(e) => return Outcome::fail(e.to_string(), e.hint().unwrap_or_default()),
    };
    let Some(recorded) = recorded else {
        return Outcome::pass(format!("no release recorded with the data yet (selected {selected})"));
    };
    match data_release::decide(Some(&recorded.release), selected, false) {
        Ok(Decision::Keep | Decision::Raise | Decision::Lower) => {
            Outcome::pass(format!("data last run by {}, selected {selected}", recorded.release))
        }
        Err(e) => Outcome::fail(
            format!("data last run by {}, selected {selected}, which is older", recorded.release),
            e.hint().unwrap_or_default(),
        ),
    }
}
