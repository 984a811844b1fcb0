//! `ragctl doctor`: everything that commonly goes wrong, checked at once.
//!
//! Checks are data ([`CheckDef`]): a stable id (`postgres.version`), a title, prerequisites, a timeout, when it
//! applies, and an async function returning an [`Outcome`]. The runner runs every applicable check
//! concurrently (in waves ordered by prerequisites), each under its own timeout; a check whose prerequisite
//! failed is skipped, a check that panics is reported as failed, never aborting the run. The result is one
//! [`Report`] value, rendered as text or JSON. Checks never change anything.

pub mod checks;
pub mod context;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, join_all};
use serde::Serialize;

pub use context::DoctorContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

impl Outcome {
    pub fn pass(detail: impl Into<String>) -> Self {
        Outcome { status: Status::Pass, detail: detail.into(), hint: None }
    }
    pub fn warn(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome { status: Status::Warn, detail: detail.into(), hint: Some(hint.into()) }
    }
    pub fn fail(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome { status: Status::Fail, detail: detail.into(), hint: Some(hint.into()) }
    }
    pub fn skip(detail: impl Into<String>) -> Self {
        Outcome { status: Status::Skip, detail: detail.into(), hint: None }
    }
}

pub type CheckFn = for<'a> fn(&'a DoctorContext) -> BoxFuture<'a, Outcome>;

/// One check, as data.
pub struct CheckDef {
    pub id: &'static str,
    pub title: &'static str,
    /// Checks that must pass (or warn) first; otherwise this one is skipped.
    pub needs: &'static [&'static str],
    pub timeout: Duration,
    /// Whether the check applies to this project (its profiles, its shape).
    pub applies: fn(&DoctorContext) -> bool,
    pub run: CheckFn,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: &'static str,
    pub status: Status,
    pub title: &'static str,
    pub detail: String,
    pub hint: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Failures, plus warnings with `--strict`.
    pub problems: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<CheckResult>,
    pub summary: Summary,
}

/// Run the applicable checks among `defs` (all, or the `only` ids and their prerequisites).
pub async fn run(ctx: &DoctorContext, defs: &[CheckDef], only: &[String], strict: bool) -> Report {
    let mut selected: Vec<&CheckDef> =
        defs.iter().filter(|d| only.is_empty() || only.iter().any(|o| o == d.id)).collect();
    // Prerequisites of selected checks run too (they are what the selected check stands on).
    let mut i = 0;
    while i < selected.len() {
        for need in selected[i].needs {
            if !selected.iter().any(|d| d.id == *need)
                && let Some(def) = defs.iter().find(|d| d.id == *need)
            {
                selected.push(def);
            }
        }
        i += 1;
    }
    let applicable: Vec<&CheckDef> = selected.into_iter().filter(|d| (d.applies)(ctx)).collect();

    let mut results: HashMap<&'static str, CheckResult> = HashMap::new();
    let mut pending: Vec<&CheckDef> = applicable.clone();
    while !pending.is_empty() {
        let (wave, rest): (Vec<&CheckDef>, Vec<&CheckDef>) = pending
            .into_iter()
            .partition(|d| d.needs.iter().all(|n| results.contains_key(n) || !applicable.iter().any(|a| a.id == *n)));
        if wave.is_empty() {
            // Cannot happen with the built-in checks; never loop forever.
            for d in rest {
                results.insert(d.id, skipped(d, "its prerequisites form a cycle".into()));
            }
            break;
        }
        let runs = wave.iter().map(|def| {
            let blocked = def
                .needs
                .iter()
                .find_map(|n| results.get(n).filter(|r| matches!(r.status, Status::Fail | Status::Skip)).map(|r| r.id));
            async move {
                if let Some(need) = blocked {
                    return skipped(def, format!("skipped: {need} did not pass"));
                }
                run_one(ctx, def).await
            }
        });
        for r in join_all(runs).await {
            results.insert(r.id, r);
        }
        pending = rest;
    }

    // Report in definition order.
    let checks: Vec<CheckResult> = defs.iter().filter_map(|d| results.remove(d.id)).collect();
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (passed, warnings, failed, skipped) =
        (count(Status::Pass), count(Status::Warn), count(Status::Fail), count(Status::Skip));
    Report {
        summary: Summary { passed, warnings, failed, skipped, problems: failed + if strict { warnings } else { 0 } },
        checks,
    }
}

fn skipped(def: &CheckDef, detail: String) -> CheckResult {
    CheckResult { id: def.id, status: Status::Skip, title: def.title, detail, hint: None, duration_ms: 0 }
}

async fn run_one(ctx: &DoctorContext, def: &CheckDef) -> CheckResult {
    let started = Instant::now();
    let guarded = AssertUnwindSafe((def.run)(ctx)).catch_unwind();
    let outcome = match tokio::time::timeout(def.timeout, guarded).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Outcome::fail(format!("the check crashed: {what}"), "this is a bug in ragctl; please report it")
        }
        Err(_) => Outcome::fail(
            format!("no answer within {:.1}s", def.timeout.as_secs_f64()),
            "the component did not answer in time: see `ragctl ps` and `ragctl logs`",
        ),
    };
    CheckResult {
        id: def.id,
        status: outcome.status,
        title: def.title,
        detail: outcome.detail,
        hint: outcome.hint,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The human rendering: one line per check, hints indented, a closing count.
pub fn render_text(report: &Report, unicode: bool, color: bool) -> String {
    let mark = |s: Status| -> (&str, &str) {
        match (s, unicode) {
            (Status::Pass, true) => ("✓", "32"),
            (Status::Warn, true) => ("!", "33"),
            (Status::Fail, true) => ("✗", "31"),
            (Status::Skip, true) => ("-", "2"),
            (Status::Pass, false) => ("[ok]", "32"),
            (Status::Warn, false) => ("[warn]", "33"),
            (Status::Fail, false) => ("[FAIL]", "31"),
            (Status::Skip, false) => ("[skip]", "2"),
        }
    };
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        let (m, code) = mark(c.status);
        let m = if color { format!("\x1b[{code}m{m}\x1b[0m") } else { m.to_string() };
        let mut lines = c.detail.lines();
        out.push_str(&format!("{m} {:<width$}  {}\n", c.id, lines.next().unwrap_or_default()));
        for more in lines {
            out.push_str(&format!("    {more}\n"));
        }
        if let Some(h) = &c.hint
            && c.status != Status::Pass
        {
            out.push_str(&format!("    hint: {h}\n"));
        }
    }
    let s = &report.summary;
    if s.problems == 0 && s.warnings == 0 {
        out.push_str(&format!("\nno problems found ({} checks passed, {} skipped)\n", s.passed, s.skipped));
    } else {
        out.push_str(&format!(
            "\n{} problem{} found ({} failed, {} warning{}, {} passed, {} skipped)\n",
            s.problems,
            if s.problems == 1 { "" } else { "s" },
            s.failed,
            s.warnings,
            if s.warnings == 1 { "" } else { "s" },
            s.passed,
            s.skipped
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[Status]) -> Report {
        let checks: Vec<CheckResult> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| CheckResult {
                id: ["a.one", "b.two", "c.three", "d.four"][i],
                status: *s,
                title: "t",
                detail: format!("detail {i}\nsecond line"),
                hint: Some("do this".into()),
                duration_ms: 1,
            })
            .collect();
        let count = |x: Status| checks.iter().filter(|c| c.status == x).count();
        Report {
            summary: Summary {
                passed: count(Status::Pass),
                warnings: count(Status::Warn),
                failed: count(Status::Fail),
                skipped: count(Status::Skip),
                problems: count(Status::Fail),
            },
            checks,
        }
    }

    #[test]
    fn text_rendering_has_marks_hints_and_a_count() {
        let r = report(&[Status::Pass, Status::Warn, Status::Fail, Status::Skip]);
        let text = render_text(&r, true, false);
        assert!(text.starts_with("✓ a.one    detail 0\n    second line\n! b.two    detail 1\n"), "{text}");
        assert!(text.contains("✗ c.three  detail 2\n    second line\n    hint: do this\n"), "{text}");
        assert!(text.ends_with("\n1 problem found (1 failed, 1 warning, 1 passed, 1 skipped)\n"), "{text}");
        assert!(!text.lines().next().unwrap().contains("hint"), "passing checks show no hint");
        let ascii = render_text(&r, false, false);
        assert!(ascii.contains("[FAIL] c.three") && ascii.contains("[ok] a.one"), "{ascii}");
    }
}
