//! How a command shows what it found: a table for people or one JSON
//! document for scripts, on stdout; and, for anything that waits, a
//! one-line progress indicator on stderr (redrawn in place on a terminal,
//! one line per new message otherwise; never on stdout, so the JSON stays
//! parseable).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use aws_sdk_iam::primitives::{DateTime, DateTimeFormat};
use serde_json::Value;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    // Aligned columns and sentences, for people.
    Table,
    // One JSON document, for scripts.
    Json,
}

/// Where a command writes: the format, and the progress line.
pub struct Out {
    pub format: Format,
    progress: Progress,
    /// Values that must never be printed (a token given to the command):
    /// replaced by `***` in everything written, as a last guard.
    never: Mutex<Vec<String>>,
}

impl Out {
    pub fn new(format: Format, quiet: bool) -> Self {
        Self {
            format,
            progress: Progress::new(!quiet),
            never: Mutex::new(Vec::new()),
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Never prints `value` (nor any text holding it).
    pub fn never_print(&self, value: &str) {
        if value.len() >= 4 {
            self.never.lock().unwrap().push(value.to_string());
        }
    }

    fn guard(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in self.never.lock().unwrap().iter() {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }

    /// Says what the command is waiting for, on stderr.
    pub fn progress(&self, what: &str) {
        self.progress.show(&self.guard(what));
    }

    /// Like [`Out::progress`], with `ticking` (an elapsed time, say) shown
    /// on a terminal only: elsewhere a new line comes only when `what` changes.
    pub fn progress_ticking(&self, what: &str, ticking: &str) {
        if self.progress.tty {
            self.progress(&format!("{what} ({ticking})"));
        } else {
            self.progress(what);
        }
    }

    /// Prints `text` on stdout (after clearing the progress line).
    pub fn line(&self, text: &str) {
        self.progress.clear();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.guard(text));
        let _ = out.flush();
    }

    /// Prints the JSON document.
    pub fn document(&self, doc: &Value) {
        let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| doc.to_string());
        self.line(&text);
    }

    /// Clears the progress line (the command is done).
    pub fn done(&self) {
        self.progress.clear();
    }

    /// An error, on stderr.
    pub fn error(&self, text: &str) {
        self.progress.clear();
        let _ = writeln!(std::io::stderr(), "cloudapps: {}", self.guard(text));
    }
}

/// The progress line on stderr.
struct Progress {
    enabled: bool,
    tty: bool,
    shown: Mutex<Option<String>>,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            tty: std::io::stderr().is_terminal(),
            shown: Mutex::new(None),
        }
    }

    fn show(&self, what: &str) {
        if !self.enabled {
            return;
        }
        let mut shown = self.shown.lock().unwrap();
        if shown.as_deref() == Some(what) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K... {what}")
        } else {
            writeln!(err, "... {what}")
        };
        let _ = err.flush();
        *shown = Some(what.to_string());
    }

    fn clear(&self) {
        // Off a terminal, lines stay: only a new message is written again.
        if self.tty && self.shown.lock().unwrap().take().is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// Rows as aligned columns (the last column is not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        line.trim_end().to_string()
    };
    let mut lines = vec![render(header.to_vec())];
    for row in rows {
        lines.push(render(row.iter().map(String::as_str).collect()));
    }
    lines.join("\n")
}

/// Seconds since the Unix epoch as `2026-11-23T10:00:00Z`.
pub fn when(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// A duration in seconds for people: `42 s`, `17 min`, `5.2 h`, `12 days`.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{} days", s / 86_400),
    }
}

/// Now, in seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    i64::try_from(cloudapps::time::now_millis() / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_times_read() {
        let t = table(
            &["A", "BB", "C"],
            &[vec!["long cell".into(), "x".into(), "last".into()]],
        );
        assert_eq!(t, "A          BB  C\nlong cell  x   last");
        assert_eq!(when(0), "1970-01-01T00:00:00Z");
        assert_eq!(age(30), "30 s");
        assert_eq!(age(3 * 86_400 + 5), "3 days");
    }

    #[test]
    fn what_must_never_be_printed_is_masked() {
        let out = Out::new(Format::Table, true);
        out.never_print("s3cr3t-token");
        assert_eq!(out.guard("Token s3cr3t-token here"), "Token *** here");
    }
}
