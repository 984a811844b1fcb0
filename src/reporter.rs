//! Progress narration for commands that drive Docker (`up`, `down`, …).
//!
//! The engine emits [`Event`]s through a [`Reporter`] and never decides how they look; the binary picks the
//! reporter once ([`reporter`]): indicatif bars on a terminal, plain lines in CI logs, JSON lines for tools, or
//! nothing but failures. Every reporter writes to stderr only — stdout is reserved for the command's final data —
//! and every reporter may be called from several tasks at once.
//!
//! This module must not talk to Docker, read environment variables or decide exit codes; it only renders.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// What the engine reports. `container` is the Docker container name, `service` the stack's service name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlanReady {
        actions: usize,
    },
    NetworkCreated {
        name: String,
    },
    VolumeCreated {
        name: String,
    },
    PullStarted {
        image: String,
    },
    /// Bytes of one layer of `image`; `total` 0 means the size is not known yet.
    PullProgress {
        image: String,
        layer: String,
        current: u64,
        total: u64,
    },
    PullFinished {
        image: String,
    },
    ContainerCreated {
        service: String,
        container: String,
    },
    ContainerStarted {
        service: String,
        container: String,
    },
    /// `condition` reads after "waiting for": `healthy`, `dependency db_postgres healthy`.
    Waiting {
        service: String,
        container: String,
        condition: String,
    },
    Ready {
        service: String,
        container: String,
        elapsed_ms: u64,
    },
    Unchanged {
        service: String,
        container: String,
    },
    Recreating {
        service: String,
        container: String,
        reason: String,
    },
    Stopping {
        service: String,
        container: String,
    },
    /// `kind` is `container`, `network` or `volume`.
    Removed {
        kind: String,
        name: String,
    },
    Failed {
        service: String,
        container: String,
        message: String,
    },
    Note {
        message: String,
    },
    /// Bytes of one member of a backup (or restore) so far and the rate over the last interval, in bytes per
    /// second; sent a few times a second at most.
    Transfer {
        member: String,
        bytes: u64,
        rate: u64,
    },
    /// A member is complete: its size and how long it took.
    Transferred {
        member: String,
        bytes: u64,
        elapsed_ms: u64,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
    /// Called once at the end so bars can be cleared/finished.
    fn finish(&self) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    Auto,
    Plain,
    Json,
    Quiet,
}

/// Auto = bars when stderr is a terminal, plain lines otherwise. `color` false disables ANSI.
pub fn reporter(mode: ProgressMode, color: bool) -> Arc<dyn Reporter> {
    match mode {
        ProgressMode::Auto => {
            // indicatif hides its stderr target when stderr is not a TTY or `TERM` is dumb/unset; asking the
            // target itself means bars are chosen exactly when they would be drawn, never for a silent screen.
            let target = ProgressDrawTarget::stderr();
            if target.is_hidden() {
                Arc::new(PlainReporter::new(color))
            } else {
                Arc::new(BarsReporter::with_draw_target(target, color))
            }
        }
        ProgressMode::Plain => Arc::new(PlainReporter::new(color)),
        ProgressMode::Json => Arc::new(JsonReporter),
        ProgressMode::Quiet => Arc::new(QuietReporter { color }),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Plain lines

/// The line for one event, without a trailing newline. `None` for [`Event::PullProgress`]: a layer's bytes are not
/// worth a line; [`PullTally`] decides when an image's progress is, and [`pull_progress_line`] words it.
fn plain_line(event: &Event, color: bool) -> Option<String> {
    let paint = |word: &str, ansi: &str| if color { format!("\x1b[{ansi}m{word}\x1b[0m") } else { word.to_string() };
    let line = match event {
        Event::PlanReady { actions: 1 } => "plan: 1 action".to_string(),
        Event::PlanReady { actions } => format!("plan: {actions} actions"),
        Event::NetworkCreated { name } => format!("network {name} created"),
        Event::VolumeCreated { name } => format!("volume {name} created"),
        Event::PullStarted { image } => format!("pulling {image}"),
        Event::PullProgress { .. } => return None,
        Event::PullFinished { image } => format!("pulled {image}"),
        Event::ContainerCreated { service, container } => format!("{service}  {container}  created"),
        Event::ContainerStarted { service, container } => format!("{service}  {container}  started"),
        Event::Waiting { service, container, condition } => format!("{service}  {container}  waiting for {condition}"),
        Event::Ready { service, container, elapsed_ms } => {
            format!("{service}  {container}  {} after {}", paint("ready", "32"), seconds_2dp(*elapsed_ms))
        }
        Event::Unchanged { service, container } => format!("{service}  {container}  unchanged"),
        Event::Recreating { service, container, reason } => {
            format!("{service}  {container}  {}: {reason}", paint("recreating", "33"))
        }
        Event::Stopping { service, container } => format!("{service}  {container}  stopping"),
        Event::Removed { kind, name } => format!("{kind} {name} removed"),
        Event::Failed { service, container, message } => {
            format!("{service}  {container}  {}: {message}", paint("failed", "1;31"))
        }
        Event::Note { message } => message.clone(),
        Event::Transfer { .. } => return None,
        Event::Transferred { member, bytes, elapsed_ms } => transferred_line(member, *bytes, *elapsed_ms),
    };
    Some(line)
}

/// `db_postgres/dify.dump  12.00 MiB in 1.20s (10.00 MiB/s)`.
fn transferred_line(member: &str, bytes: u64, elapsed_ms: u64) -> String {
    let rate = bytes.saturating_mul(1000) / elapsed_ms.max(1);
    format!("{member}  {} in {} ({}/s)", HumanBytes(bytes), seconds_2dp(elapsed_ms), HumanBytes(rate))
}

/// `pulling postgres:15-alpine  50%  (12.00 MiB/24.00 MiB)`: `percent` is the step just passed, bytes are the sums.
fn pull_progress_line(image: &str, percent: u8, current: u64, total: u64) -> String {
    format!("pulling {image}  {percent}%  ({}/{})", HumanBytes(current), HumanBytes(total))
}

/// `1234` → `1.23s`; truncated rather than rounded so a line never claims more time than passed.
fn seconds_2dp(ms: u64) -> String {
    format!("{}.{:02}s", ms / 1000, ms % 1000 / 10)
}

/// `1234` → `1.2s`, for the narrower bar lines.
fn seconds_1dp(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, ms % 1000 / 100)
}

/// One whole line in one `write_all` on a locked stderr, so lines from concurrent tasks never interleave.
/// A closed stderr is not worth failing a deployment over, hence the ignored error.
fn write_stderr_line(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let mut err = io::stderr().lock();
    let _ = err.write_all(buf.as_bytes()).and_then(|()| err.flush());
}

/// A poisoned lock only means another reporter call panicked mid-update; the maps are still usable for narration.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Byte counts of one image's layers, and how far its progress has already been reported.
#[derive(Debug, Default)]
struct PullTally {
    /// layer id → (current, total); total 0 = not known yet.
    layers: HashMap<String, (u64, u64)>,
    /// Quarters already reported (0..=3).
    reported_quarters: u8,
}

impl PullTally {
    fn record(&mut self, layer: &str, current: u64, total: u64) {
        self.layers.insert(layer.to_string(), (current, total));
    }

    /// Bytes downloaded across all layers, and the sum of the sizes known so far.
    fn bytes(&self) -> (u64, u64) {
        self.layers.values().fold((0, 0), |(cur, tot), &(c, t)| (cur.saturating_add(c), tot.saturating_add(t)))
    }

    /// The 25 % step just passed (25, 50 or 75), at most once each and never going backwards, even when a layer
    /// that appears late makes the known total grow. 100 % is left to `PullFinished`, which says it better.
    /// Only layers of known size count, so a layer of unknown size cannot push the ratio past 100 %.
    fn next_step(&mut self) -> Option<u8> {
        let (current, total) = self
            .layers
            .values()
            .filter(|(_, t)| *t > 0)
            .fold((0u128, 0u128), |(cur, tot), &(c, t)| (cur + u128::from(c.min(t)), tot + u128::from(t)));
        if total == 0 {
            return None;
        }
        let quarters = (current * 4 / total).min(3) as u8;
        if quarters > self.reported_quarters {
            self.reported_quarters = quarters;
            Some(quarters * 25)
        } else {
            None
        }
    }
}

/// One line per event on stderr; pull progress only at 25 % steps per image. ANSI only when `color`.
pub struct PlainReporter {
    color: bool,
    pulls: Mutex<HashMap<String, PullTally>>,
}

impl PlainReporter {
    pub fn new(color: bool) -> Self {
        Self { color, pulls: Mutex::new(HashMap::new()) }
    }
}

impl PlainReporter {
    /// The line `event` deserves, if any; keeps the per-image pull tallies that throttle progress lines.
    fn line(&self, event: &Event) -> Option<String> {
        match event {
            Event::PullStarted { image } => {
                lock(&self.pulls).insert(image.clone(), PullTally::default());
            }
            Event::PullProgress { image, layer, current, total } => {
                let mut pulls = lock(&self.pulls);
                let tally = pulls.entry(image.clone()).or_default();
                tally.record(layer, *current, *total);
                let step = tally.next_step()?;
                let (current, total) = tally.bytes();
                return Some(pull_progress_line(image, step, current, total));
            }
            Event::PullFinished { image } => {
                lock(&self.pulls).remove(image);
            }
            _ => {}
        }
        plain_line(event, self.color)
    }
}

impl Reporter for PlainReporter {
    fn event(&self, event: Event) {
        if let Some(line) = self.line(&event) {
            write_stderr_line(&line);
        }
    }
}

/// Only failures, as plain lines: `-q` still has to say what went wrong.
pub struct QuietReporter {
    color: bool,
}

impl QuietReporter {
    fn line(&self, event: &Event) -> Option<String> {
        matches!(event, Event::Failed { .. }).then(|| plain_line(event, self.color)).flatten()
    }
}

impl Reporter for QuietReporter {
    fn event(&self, event: Event) {
        if let Some(line) = self.line(&event) {
            write_stderr_line(&line);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON lines

/// One compact JSON object, tagged by `event`.
fn json_line(event: &Event) -> String {
    // Every field is a string or an integer, so serialisation cannot fail.
    serde_json::to_string(event).expect("an Event always serialises to JSON")
}

/// One compact JSON object per line on stderr, every event including each layer's progress: a program reading the
/// stream decides for itself what to throttle.
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&self, event: Event) {
        write_stderr_line(&json_line(&event));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Bars

const SPINNER_FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICK: Duration = Duration::from_millis(100);

struct BarStyles {
    /// A spinner: the service is on its way somewhere.
    running: ProgressStyle,
    /// Ends on ✓: ready, unchanged or removed.
    done: ProgressStyle,
    /// Ends on ✗.
    failed: ProgressStyle,
    /// Bytes of one image across its layers.
    pull: ProgressStyle,
}

impl BarStyles {
    fn new(color: bool) -> Self {
        // `{key:.color}` / `{bar:24.fg/bg}` when colour is on, the bare key otherwise.
        let paint = |spec: &str| if color { spec.to_string() } else { String::new() };
        let line = |spinner_color: &str| format!("{{spinner{}}} {{prefix}}  {{wide_msg}}", paint(spinner_color));
        let spinner = |color: &str, last: &str| {
            let mut frames = SPINNER_FRAMES.to_vec();
            frames.push(last);
            ProgressStyle::with_template(&line(color)).expect("valid spinner template").tick_strings(&frames)
        };
        let pull = format!(
            "{{spinner{}}} {{prefix}}  {{bar:24{}}} {{bytes}}/{{total_bytes}}",
            paint(":.cyan"),
            paint(".cyan/blue")
        );
        Self {
            running: spinner(":.cyan", " "),
            done: spinner(":.green", "✓"),
            failed: spinner(":.red", "✗"),
            pull: ProgressStyle::with_template(&pull)
                .expect("valid pull template")
                .tick_strings(&SPINNER_FRAMES.iter().copied().chain([" "]).collect::<Vec<_>>())
                .progress_chars("=> "),
        }
    }
}

struct ServiceLine {
    bar: ProgressBar,
    service: String,
}

struct PullLine {
    bar: ProgressBar,
    tally: PullTally,
}

#[derive(Default)]
struct BarsState {
    /// Keyed by container name: replicas of one service get a line each.
    services: HashMap<String, ServiceLine>,
    pulls: HashMap<String, PullLine>,
    /// Members of a backup or restore being transferred, by name.
    transfers: HashMap<String, ProgressBar>,
    /// Widest service and container name so far, to keep the state column aligned.
    service_width: usize,
    container_width: usize,
}

/// indicatif bars on stderr: one spinner line per container with its state, one bar per image being pulled.
pub struct BarsReporter {
    multi: MultiProgress,
    styles: BarStyles,
    color: bool,
    state: Mutex<BarsState>,
}

impl BarsReporter {
    /// `target` is [`ProgressDrawTarget::stderr`] in use and [`ProgressDrawTarget::hidden`] in tests.
    pub fn with_draw_target(target: ProgressDrawTarget, color: bool) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(target),
            styles: BarStyles::new(color),
            color,
            state: Mutex::new(BarsState::default()),
        }
    }

    /// A line above the bars; the bars redraw below it.
    fn println(&self, event: &Event) {
        if let Some(line) = plain_line(event, self.color) {
            let _ = self.multi.println(line);
        }
    }

    /// The container's line, created on first sight. Adding a wider name re-pads every prefix so states line up.
    fn service_line<'a>(&self, state: &'a mut BarsState, service: &str, container: &str) -> &'a ProgressBar {
        if !state.services.contains_key(container) {
            let bar = self.multi.add(ProgressBar::new_spinner().with_style(self.styles.running.clone()));
            bar.enable_steady_tick(TICK);
            state.services.insert(container.to_string(), ServiceLine { bar, service: service.to_string() });
            if service.len() > state.service_width || container.len() > state.container_width {
                state.service_width = state.service_width.max(service.len());
                state.container_width = state.container_width.max(container.len());
                for (container, line) in &state.services {
                    let (sw, cw) = (state.service_width, state.container_width);
                    line.bar.set_prefix(format!("{:<sw$}  {container:<cw$}", line.service));
                }
            } else {
                let (sw, cw) = (state.service_width, state.container_width);
                state.services[container].bar.set_prefix(format!("{service:<sw$}  {container:<cw$}"));
            }
        }
        &state.services[container].bar
    }

    /// A spinning state; a finished line is revived when its container moves on again (`unchanged` → `stopping`).
    fn running(&self, service: &str, container: &str, message: String) {
        let mut state = lock(&self.state);
        let bar = self.service_line(&mut state, service, container);
        if bar.is_finished() {
            bar.reset();
            bar.set_style(self.styles.running.clone());
            bar.enable_steady_tick(TICK);
        }
        bar.set_message(message);
    }

    fn done(&self, service: &str, container: &str, message: String, style: &ProgressStyle) {
        let mut state = lock(&self.state);
        let bar = self.service_line(&mut state, service, container);
        bar.set_style(style.clone());
        bar.finish_with_message(message);
    }

    fn pull_progress(&self, image: &str, layer: &str, current: u64, total: u64) {
        let mut state = lock(&self.state);
        let line = self.pull_line(&mut state, image);
        line.tally.record(layer, current, total);
        let (current, total) = line.tally.bytes();
        // Position first: with a steady tick installed `set_position` never draws, `set_length` does.
        line.bar.set_position(current);
        line.bar.set_length(total);
    }

    fn pull_line<'a>(&self, state: &'a mut BarsState, image: &str) -> &'a mut PullLine {
        state.pulls.entry(image.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0).with_style(self.styles.pull.clone()));
            bar.set_prefix(format!("pulling {image}"));
            bar.enable_steady_tick(TICK);
            PullLine { bar, tally: PullTally::default() }
        })
    }
}

impl Reporter for BarsReporter {
    fn event(&self, event: Event) {
        match &event {
            Event::PlanReady { .. }
            | Event::NetworkCreated { .. }
            | Event::VolumeCreated { .. }
            | Event::Note { .. } => {
                self.println(&event);
            }
            Event::PullStarted { image } => {
                self.pull_line(&mut lock(&self.state), image);
            }
            Event::PullProgress { image, layer, current, total } => self.pull_progress(image, layer, *current, *total),
            Event::PullFinished { image } => {
                if let Some(line) = lock(&self.state).pulls.remove(image) {
                    line.bar.finish_and_clear();
                    self.multi.remove(&line.bar);
                }
                self.println(&event);
            }
            Event::ContainerCreated { service, container } => self.running(service, container, "created".into()),
            Event::ContainerStarted { service, container } => self.running(service, container, "started".into()),
            Event::Waiting { service, container, condition } => {
                self.running(service, container, format!("waiting for {condition}"));
            }
            Event::Recreating { service, container, reason } => {
                self.running(service, container, format!("recreating: {reason}"));
            }
            Event::Stopping { service, container } => self.running(service, container, "stopping".into()),
            Event::Ready { service, container, elapsed_ms } => {
                let message = format!("ready in {}", seconds_1dp(*elapsed_ms));
                self.done(service, container, message, &self.styles.done);
            }
            Event::Unchanged { service, container } => {
                self.done(service, container, "unchanged".into(), &self.styles.done);
            }
            Event::Removed { kind, name } => {
                let state = lock(&self.state);
                match state.services.get(name) {
                    Some(line) if kind == "container" => {
                        line.bar.set_style(self.styles.done.clone());
                        line.bar.finish_with_message("removed");
                    }
                    _ => {
                        drop(state);
                        self.println(&event);
                    }
                }
            }
            Event::Transfer { member, bytes, rate } => {
                let mut state = lock(&self.state);
                let bar = state.transfers.entry(member.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new_spinner().with_style(self.styles.running.clone()));
                    bar.set_prefix(member.clone());
                    bar.enable_steady_tick(TICK);
                    bar
                });
                bar.set_message(format!("{}  {}/s", HumanBytes(*bytes), HumanBytes(*rate)));
            }
            Event::Transferred { member, .. } => {
                if let Some(bar) = lock(&self.state).transfers.remove(member) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.println(&event);
            }
            Event::Failed { service, container, message } => {
                // The bar line has room for one line; a longer story goes above the bars so it is not lost.
                let mut lines = message.lines();
                let first = lines.next().unwrap_or_default();
                if lines.next().is_some() {
                    self.println(&event);
                }
                self.done(service, container, format!("failed: {first}"), &self.styles.failed);
            }
        }
    }

    fn finish(&self) {
        let mut state = lock(&self.state);
        for (_, line) in state.pulls.drain() {
            line.bar.finish_and_clear();
            self.multi.remove(&line.bar);
        }
        for (_, bar) in state.transfers.drain() {
            bar.abandon();
        }
        // A line still spinning at the end (the command stopped early) keeps its last state on screen.
        for line in state.services.values() {
            if !line.bar.is_finished() {
                line.bar.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(f: impl Fn(String, String) -> Event) -> Event {
        f("db_postgres".into(), "demo-db_postgres-1".into())
    }

    /// Every variant, in declaration order, with its plain line and its JSON line.
    fn every_event() -> Vec<(Event, Option<&'static str>, &'static str)> {
        vec![
            (Event::PlanReady { actions: 1 }, Some("plan: 1 action"), r#"{"event":"plan_ready","actions":1}"#),
            (Event::PlanReady { actions: 7 }, Some("plan: 7 actions"), r#"{"event":"plan_ready","actions":7}"#),
            (
                Event::NetworkCreated { name: "demo_data".into() },
                Some("network demo_data created"),
                r#"{"event":"network_created","name":"demo_data"}"#,
            ),
            (
                Event::VolumeCreated { name: "demo_pgdata".into() },
                Some("volume demo_pgdata created"),
                r#"{"event":"volume_created","name":"demo_pgdata"}"#,
            ),
            (
                Event::PullStarted { image: "postgres:15-alpine".into() },
                Some("pulling postgres:15-alpine"),
                r#"{"event":"pull_started","image":"postgres:15-alpine"}"#,
            ),
            (
                Event::PullProgress {
                    image: "postgres:15-alpine".into(),
                    layer: "a1b2".into(),
                    current: 10,
                    total: 40,
                },
                None,
                r#"{"event":"pull_progress","image":"postgres:15-alpine","layer":"a1b2","current":10,"total":40}"#,
            ),
            (
                Event::PullFinished { image: "postgres:15-alpine".into() },
                Some("pulled postgres:15-alpine"),
                r#"{"event":"pull_finished","image":"postgres:15-alpine"}"#,
            ),
            (
                svc(|service, container| Event::ContainerCreated { service, container }),
                Some("db_postgres  demo-db_postgres-1  created"),
                r#"{"event":"container_created","service":"db_postgres","container":"demo-db_postgres-1"}"#,
            ),
            (
                svc(|service, container| Event::ContainerStarted { service, container }),
                Some("db_postgres  demo-db_postgres-1  started"),
                r#"{"event":"container_started","service":"db_postgres","container":"demo-db_postgres-1"}"#,
            ),
            (
                svc(|service, container| Event::Waiting { service, container, condition: "healthy".into() }),
                Some("db_postgres  demo-db_postgres-1  waiting for healthy"),
                r#"{"event":"waiting","service":"db_postgres","container":"demo-db_postgres-1","condition":"healthy"}"#,
            ),
            (
                svc(|service, container| Event::Ready { service, container, elapsed_ms: 1234 }),
                Some("db_postgres  demo-db_postgres-1  ready after 1.23s"),
                r#"{"event":"ready","service":"db_postgres","container":"demo-db_postgres-1","elapsed_ms":1234}"#,
            ),
            (
                svc(|service, container| Event::Unchanged { service, container }),
                Some("db_postgres  demo-db_postgres-1  unchanged"),
                r#"{"event":"unchanged","service":"db_postgres","container":"demo-db_postgres-1"}"#,
            ),
            (
                svc(|service, container| Event::Recreating { service, container, reason: "image changed".into() }),
                Some("db_postgres  demo-db_postgres-1  recreating: image changed"),
                r#"{"event":"recreating","service":"db_postgres","container":"demo-db_postgres-1","reason":"image changed"}"#,
            ),
            (
                svc(|service, container| Event::Stopping { service, container }),
                Some("db_postgres  demo-db_postgres-1  stopping"),
                r#"{"event":"stopping","service":"db_postgres","container":"demo-db_postgres-1"}"#,
            ),
            (
                Event::Removed { kind: "container".into(), name: "demo-db_postgres-1".into() },
                Some("container demo-db_postgres-1 removed"),
                r#"{"event":"removed","kind":"container","name":"demo-db_postgres-1"}"#,
            ),
            (
                Event::Removed { kind: "network".into(), name: "demo_data".into() },
                Some("network demo_data removed"),
                r#"{"event":"removed","kind":"network","name":"demo_data"}"#,
            ),
            (
                svc(|service, container| Event::Failed { service, container, message: "exited with code 1".into() }),
                Some("db_postgres  demo-db_postgres-1  failed: exited with code 1"),
                r#"{"event":"failed","service":"db_postgres","container":"demo-db_postgres-1","message":"exited with code 1"}"#,
            ),
            (
                Event::Note { message: "using project `demo`".into() },
                Some("using project `demo`"),
                r#"{"event":"note","message":"using project `demo`"}"#,
            ),
            (
                Event::Transfer { member: "postgres/db_postgres/dify.dump".into(), bytes: 2048, rate: 1024 },
                None,
                r#"{"event":"transfer","member":"postgres/db_postgres/dify.dump","bytes":2048,"rate":1024}"#,
            ),
            (
                Event::Transferred { member: "redis/redis.tar".into(), bytes: 3 * 1024 * 1024, elapsed_ms: 1500 },
                Some("redis/redis.tar  3.00 MiB in 1.50s (2.00 MiB/s)"),
                r#"{"event":"transferred","member":"redis/redis.tar","bytes":3145728,"elapsed_ms":1500}"#,
            ),
        ]
    }

    #[test]
    fn plain_line_words_every_event() {
        for (event, plain, _) in every_event() {
            assert_eq!(plain_line(&event, false).as_deref(), plain, "{event:?}");
        }
    }

    #[test]
    fn plain_line_without_color_has_no_ansi() {
        for (event, _, _) in every_event() {
            assert!(!plain_line(&event, false).unwrap_or_default().contains('\x1b'), "{event:?}");
        }
    }

    #[test]
    fn plain_line_with_color_paints_only_the_state_word() {
        let failed = svc(|service, container| Event::Failed { service, container, message: "boom".into() });
        assert_eq!(
            plain_line(&failed, true).unwrap(),
            "db_postgres  demo-db_postgres-1  \x1b[1;31mfailed\x1b[0m: boom"
        );
        let ready = svc(|service, container| Event::Ready { service, container, elapsed_ms: 50 });
        assert_eq!(
            plain_line(&ready, true).unwrap(),
            "db_postgres  demo-db_postgres-1  \x1b[32mready\x1b[0m after 0.05s"
        );
        let network = Event::NetworkCreated { name: "demo_data".into() };
        assert_eq!(plain_line(&network, true), plain_line(&network, false));
    }

    #[test]
    fn json_line_is_one_compact_tagged_object_for_every_event() {
        for (event, _, json) in every_event() {
            let line = json_line(&event);
            assert_eq!(line, json, "{event:?}");
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn json_line_escapes_newlines_in_messages() {
        let event = Event::Note { message: "two\nlines".into() };
        assert_eq!(json_line(&event), r#"{"event":"note","message":"two\nlines"}"#);
    }

    #[test]
    fn durations_are_truncated_not_rounded() {
        assert_eq!(seconds_2dp(0), "0.00s");
        assert_eq!(seconds_2dp(1239), "1.23s");
        assert_eq!(seconds_2dp(61_005), "61.00s");
        assert_eq!(seconds_1dp(1299), "1.2s");
        assert_eq!(seconds_1dp(999), "0.9s");
    }

    #[test]
    fn pull_progress_is_reported_at_each_quarter_once() {
        let mut tally = PullTally::default();
        let mut steps = Vec::new();
        // One 1000-byte layer, reported in 10-byte chunks: 100 events, three lines.
        for current in (10..=1000).step_by(10) {
            tally.record("l1", current, 1000);
            steps.extend(tally.next_step());
        }
        assert_eq!(steps, [25, 50, 75]);
    }

    #[test]
    fn pull_progress_skips_passed_quarters_and_never_goes_back() {
        let mut tally = PullTally::default();
        tally.record("l1", 0, 100);
        assert_eq!(tally.next_step(), None);
        // A jump over two steps reports only the latest.
        tally.record("l1", 60, 100);
        assert_eq!(tally.next_step(), Some(50));
        // A late layer lowers the ratio to 20 %: no line, and 25 % is not reported again.
        tally.record("l2", 0, 200);
        assert_eq!(tally.next_step(), None);
        tally.record("l2", 100, 200);
        assert_eq!(tally.next_step(), None, "160/300 is still in the 50 % step");
        tally.record("l2", 200, 200);
        assert_eq!(tally.next_step(), Some(75));
        tally.record("l1", 100, 100);
        assert_eq!(tally.next_step(), None, "100 % is PullFinished's line");
        assert_eq!(tally.bytes(), (300, 300));
    }

    #[test]
    fn pull_progress_ignores_layers_of_unknown_size() {
        let mut tally = PullTally::default();
        tally.record("unknown", 5_000, 0);
        assert_eq!(tally.next_step(), None);
        tally.record("known", 30, 100);
        assert_eq!(tally.next_step(), Some(25));
        assert_eq!(tally.bytes(), (5_030, 100));
    }

    #[test]
    fn pull_progress_line_sums_bytes() {
        assert_eq!(
            pull_progress_line("postgres:15-alpine", 50, 12 * 1024 * 1024, 24 * 1024 * 1024),
            "pulling postgres:15-alpine  50%  (12.00 MiB/24.00 MiB)"
        );
    }

    const SCREEN_WIDTH: usize = 100;

    /// Just enough of a terminal to see what the bars leave on screen: a cursor that overwrites, `\r`, cursor
    /// movement, line clearing and the auto-wrap indicatif relies on when it pads a line to the full width.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<ScreenState>>);

    #[derive(Debug, Default)]
    struct ScreenState {
        rows: Vec<Vec<char>>,
        row: usize,
        /// `SCREEN_WIDTH` means a wrap is pending, as on a real terminal.
        col: usize,
    }

    impl ScreenState {
        fn put(&mut self, c: char) {
            match c {
                '\r' => self.col = 0,
                '\n' => (self.row, self.col) = (self.row + 1, 0),
                c => {
                    if self.col == SCREEN_WIDTH {
                        (self.row, self.col) = (self.row + 1, 0);
                    }
                    let col = self.col;
                    let row = self.row_mut();
                    if row.len() <= col {
                        row.resize(col + 1, ' ');
                    }
                    row[col] = c;
                    self.col += 1;
                }
            }
        }

        fn row_mut(&mut self) -> &mut Vec<char> {
            if self.rows.len() <= self.row {
                self.rows.resize(self.row + 1, Vec::new());
            }
            &mut self.rows[self.row]
        }
    }

    impl Screen {
        fn text(&self) -> Vec<String> {
            let rows = lock(&self.0)
                .rows
                .iter()
                .map(|row| row.iter().collect::<String>().trim_end().to_string())
                .collect::<Vec<_>>();
            rows.into_iter().filter(|row| !row.is_empty()).collect()
        }
    }

    /// Whether console emits colour depends on the test's own stdout; dropping escapes makes the screen the same
    /// either way. indicatif writes whole escape sequences in one call, so per-call stripping is enough.
    fn without_ansi(s: &str) -> impl Iterator<Item = char> + '_ {
        let mut in_escape = false;
        s.chars().filter(move |&c| {
            if c == '\x1b' {
                in_escape = true;
            } else if in_escape && ('@'..='~').contains(&c) && c != '[' {
                in_escape = false;
                return false;
            }
            !in_escape
        })
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            SCREEN_WIDTH as u16
        }
        fn height(&self) -> u16 {
            40
        }
        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            let mut screen = lock(&self.0);
            screen.row = screen.row.saturating_sub(n);
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> io::Result<()> {
            lock(&self.0).row += n;
            Ok(())
        }
        fn move_cursor_right(&self, n: usize) -> io::Result<()> {
            let mut screen = lock(&self.0);
            screen.col = (screen.col + n).min(SCREEN_WIDTH - 1);
            Ok(())
        }
        fn move_cursor_left(&self, n: usize) -> io::Result<()> {
            let mut screen = lock(&self.0);
            screen.col = screen.col.saturating_sub(n);
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            let mut screen = lock(&self.0);
            without_ansi(s).chain(['\n']).for_each(|c| screen.put(c));
            Ok(())
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            let mut screen = lock(&self.0);
            without_ansi(s).for_each(|c| screen.put(c));
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            let mut screen = lock(&self.0);
            screen.row_mut().clear();
            screen.col = 0;
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bars_leave_one_aligned_line_per_container_and_clear_pulls() {
        for color in [false, true] {
            bars_leave_one_aligned_line_per_container_and_clear_pulls_with(color);
        }
    }

    fn bars_leave_one_aligned_line_per_container_and_clear_pulls_with(color: bool) {
        let screen = Screen::default();
        let bars = BarsReporter::with_draw_target(ProgressDrawTarget::term_like(Box::new(screen.clone())), color);
        let (pg, pgc) = (|| "db_postgres".to_string(), || "demo-db_postgres-1".to_string());
        let (wv, wvc) = (|| "weaviate".to_string(), || "demo-weaviate-1".to_string());
        bars.event(Event::NetworkCreated { name: "demo_data".into() });
        bars.event(Event::PullStarted { image: "postgres:15-alpine".into() });
        bars.event(Event::PullProgress {
            image: "postgres:15-alpine".into(),
            layer: "a".into(),
            current: 512,
            total: 2048,
        });
        assert!(
            screen
                .text()
                .iter()
                .any(|row| row.ends_with("pulling postgres:15-alpine  ======>                  512 B/2.00 KiB")),
            "color {color}: {:#?}",
            screen.text()
        );
        bars.event(Event::PullFinished { image: "postgres:15-alpine".into() });
        bars.event(Event::ContainerCreated { service: wv(), container: wvc() });
        bars.event(Event::Waiting { service: pg(), container: pgc(), condition: "healthy".into() });
        bars.event(Event::Ready { service: pg(), container: pgc(), elapsed_ms: 1234 });
        bars.event(Event::Failed { service: wv(), container: wvc(), message: "exited with code 1".into() });
        bars.finish();
        assert_eq!(
            screen.text(),
            [
                "network demo_data created",
                "pulled postgres:15-alpine",
                "✗ weaviate     demo-weaviate-1     failed: exited with code 1",
                "✓ db_postgres  demo-db_postgres-1  ready in 1.2s",
            ],
            "color {color}"
        );
    }

    #[test]
    fn bars_track_each_container_and_image_from_many_threads() {
        let bars = Arc::new(BarsReporter::with_draw_target(ProgressDrawTarget::hidden(), true));
        let image = "postgres:15-alpine";
        std::thread::scope(|scope| {
            for n in 0..8 {
                let bars = Arc::clone(&bars);
                scope.spawn(move || {
                    let (service, container) = (format!("svc{n}"), format!("demo-svc{n}-1"));
                    let (s, c) = (|| service.clone(), || container.clone());
                    bars.event(Event::PullStarted { image: image.into() });
                    for current in (0..=1000).step_by(100) {
                        let layer = format!("layer{n}");
                        bars.event(Event::PullProgress { image: image.into(), layer, current, total: 1000 });
                    }
                    bars.event(Event::ContainerCreated { service: s(), container: c() });
                    bars.event(Event::ContainerStarted { service: s(), container: c() });
                    bars.event(Event::Waiting { service: s(), container: c(), condition: "healthy".into() });
                    bars.event(Event::Note { message: format!("note from {n}") });
                    if n == 7 {
                        let message = "exited with code 1\n\nhint: ragctl logs svc7".to_string();
                        bars.event(Event::Failed { service: s(), container: c(), message });
                    } else {
                        bars.event(Event::Ready { service: s(), container: c(), elapsed_ms: 1200 + n });
                    }
                });
            }
        });

        {
            let state = lock(&bars.state);
            let pull = &state.pulls[image];
            assert_eq!((pull.bar.position(), pull.bar.length()), (8000, Some(8000)));
            assert_eq!(state.services.len(), 8);
            for n in 0..8 {
                let line = &state.services[&format!("demo-svc{n}-1")];
                assert!(line.bar.is_finished());
                let expected = if n == 7 { "failed: exited with code 1" } else { "ready in 1.2s" };
                assert_eq!(line.bar.message(), expected);
                // Every prefix is padded to the widest names seen, whichever thread came first.
                assert_eq!(line.bar.prefix(), format!("svc{n}  demo-svc{n}-1"));
            }
        }

        bars.event(Event::PullFinished { image: image.into() });
        assert!(lock(&bars.state).pulls.is_empty());
        bars.finish();
    }

    #[test]
    fn bars_revive_a_finished_line_and_finish_leftovers() {
        let bars = BarsReporter::with_draw_target(ProgressDrawTarget::hidden(), false);
        let (s, c) = (|| "redis".to_string(), || "demo-redis-1".to_string());
        bars.event(Event::Unchanged { service: s(), container: c() });
        bars.event(Event::Stopping { service: s(), container: c() });
        {
            let state = lock(&bars.state);
            let bar = &state.services["demo-redis-1"].bar;
            assert!(!bar.is_finished());
            assert_eq!(bar.message(), "stopping");
        }
        bars.event(Event::Removed { kind: "container".into(), name: c() });
        assert_eq!(lock(&bars.state).services["demo-redis-1"].bar.message(), "removed");

        bars.event(Event::Waiting {
            service: "web".into(),
            container: "demo-web-1".into(),
            condition: "healthy".into(),
        });
        bars.event(Event::PullProgress { image: "nginx".into(), layer: "l".into(), current: 1, total: 0 });
        bars.finish();
        let state = lock(&bars.state);
        assert!(state.services["demo-web-1"].bar.is_finished());
        assert!(state.pulls.is_empty());
    }

    #[test]
    fn plain_reporter_throttles_pull_progress_per_image() {
        let plain = PlainReporter::new(false);
        let progress = |image: &str, layer: &str, current| Event::PullProgress {
            image: image.into(),
            layer: layer.into(),
            current,
            total: 100,
        };
        let events = [
            Event::PullStarted { image: "redis:7".into() },
            Event::PullStarted { image: "nginx:1".into() },
            progress("redis:7", "a", 10),
            progress("redis:7", "a", 30),
            progress("nginx:1", "b", 20),
            progress("redis:7", "a", 35),
            progress("nginx:1", "b", 80),
            progress("redis:7", "a", 100),
            Event::PullFinished { image: "redis:7".into() },
            // A second pull of the same image starts counting again.
            Event::PullStarted { image: "redis:7".into() },
            progress("redis:7", "a", 26),
        ];
        let lines: Vec<String> = events.iter().filter_map(|event| plain.line(event)).collect();
        assert_eq!(
            lines,
            [
                "pulling redis:7",
                "pulling nginx:1",
                "pulling redis:7  25%  (30 B/100 B)",
                "pulling nginx:1  75%  (80 B/100 B)",
                "pulling redis:7  75%  (100 B/100 B)",
                "pulled redis:7",
                "pulling redis:7",
                "pulling redis:7  25%  (26 B/100 B)",
            ]
        );
        assert_eq!(lock(&plain.pulls).len(), 2, "nginx:1 is still being pulled");
    }

    #[test]
    fn quiet_reporter_keeps_only_failures() {
        let quiet = QuietReporter { color: false };
        let lines: Vec<String> = every_event().iter().filter_map(|(event, _, _)| quiet.line(event)).collect();
        assert_eq!(lines, ["db_postgres  demo-db_postgres-1  failed: exited with code 1"]);
    }
}
