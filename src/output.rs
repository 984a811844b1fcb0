//! Where output goes: data to stdout (text or JSON), narration and errors to stderr. Commands never call
//! `println!` directly, so `--format json`, `-q` and colour rules hold everywhere.
//!
//! Nothing here may panic on a failed write: `print!`/`eprint!` do when stdout or stderr is a closed pipe or a
//! full disk (`2>/dev/full`), turning a finished command into exit 101. Output that cannot be delivered is dropped,
//! and the exit code stays the command's.

use std::io::{self, Write};

use serde::Serialize;

use crate::error::Error;

/// The shape of data on stdout: text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    pub quiet: u8,
    pub verbose: u8,
    pub color: bool,
}

impl Output {
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Data for stdout. A closed pipe (`ragctl profiles | head -1`) is not an error.
    pub fn data(&self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    }

    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(mut s) => {
                s.push('\n');
                self.data(&s);
            }
            Err(e) => self.warn(&format!("failed to encode JSON output: {e}")),
        }
    }

    /// Narration on stderr, hidden by `-q`.
    pub fn info(&self, msg: &str) {
        if self.quiet == 0 {
            narrate(msg);
        }
    }

    /// Extra detail on stderr, shown with `-v`.
    pub fn detail(&self, msg: &str) {
        if self.verbose > 0 && self.quiet == 0 {
            narrate(msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        if self.quiet < 2 {
            narrate(&format!("{}: {msg}", self.paint("warning", "33")));
        }
    }

    pub fn error(&self, err: &Error) {
        let mut text = format!("{}: {err}", self.paint("error", "31"));
        if let Some(hint) = err.hint() {
            text.push_str(&format!("\n\n{}: {hint}", self.paint("hint", "36")));
        }
        narrate(&text);
    }

    fn paint(&self, word: &str, ansi: &str) -> String {
        if self.color { format!("\x1b[1;{ansi}m{word}\x1b[0m") } else { word.to_string() }
    }
}

/// One line on stderr in one write. There is nowhere left to report a failure to write to stderr, so it is ignored.
fn narrate(line: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(format!("{line}\n").as_bytes()).and_then(|()| err.flush());
}
