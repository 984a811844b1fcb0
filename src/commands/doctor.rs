//! `ragctl doctor`: run the checks, render the one report as text or JSON.

use crate::cli::DoctorArgs;
use crate::doctor::{self, DoctorContext, checks};
use crate::error::{Error, exit};
use crate::output::Output;
use crate::settings::Settings;

pub fn run(settings: &Settings, out: &Output, args: &DoctorArgs) -> Result<i32, Error> {
    let defs = checks::all();
    if let Some(unknown) = args.checks.iter().find(|id| !defs.iter().any(|d| d.id == *id)) {
        return Err(Error::config_hint(
            format!("unknown check `{unknown}`"),
            "`ragctl doctor --list-checks` lists the check ids",
        ));
    }
    let ctx = DoctorContext::new(settings.clone());
    if args.list_checks {
        let rows: Vec<serde_json::Value> = defs
            .iter()
            .map(|d| serde_json::json!({"id": d.id, "title": d.title, "needs": d.needs, "applies": (d.applies)(&ctx)}))
            .collect();
        if out.is_json() {
            out.json(&rows);
        } else {
            let width = defs.iter().map(|d| d.id.len()).max().unwrap_or(0);
            let text: String = defs
                .iter()
                .map(|d| {
                    format!(
                        "{:<width$}  {}{}\n",
                        d.id,
                        d.title,
                        if (d.applies)(&ctx) { "" } else { " (not applicable here)" }
                    )
                })
                .collect();
            out.data(&text);
        }
        return Ok(super::OK);
    }
    let runtime = super::runtime()?;
    let report = runtime.block_on(super::interruptible(async {
        Ok::<_, Error>(doctor::run(&ctx, &defs, &args.checks, args.strict).await)
    }))?;
    if out.is_json() {
        out.json(&report);
    } else {
        out.data(&doctor::render_text(&report, settings.unicode, settings.color));
    }
    Ok(if report.summary.problems == 0 { super::OK } else { exit::FAILURE })
}
