//! What the user sees on stderr: cargo-style status lines (`    Retrying ...`), coloured on a
//! terminal, plain and timestamped anywhere else (CI logs, `docker build`, pipes).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use em_retry::{Event, FailureClass, Operation, Subscriber, fmt_duration};

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// `--progress`: how progress is shown on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// `tty` on a terminal (unless `CI` is set), else `plain`.
    Auto,
    /// Terminal style: status lines without timestamps, coloured under `--color auto`
    /// (each a line of its own: no live redraw).
    Tty,
    /// Plain timestamped lines, no colour unless `--color always` (CI logs, files).
    Plain,
    /// No progress lines (starting extensions and steps); retries, repairs, failures,
    /// results and the summary are still shown.
    None,
}

/// `--output`: what stdout carries for the read commands and `install`/`remove`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables and text for people.
    Text,
    /// One JSON document, for machines (`| jq`).
    Json,
}

/// The colour of a status verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Progress (cyan).
    Info,
    /// Success (green).
    Good,
    /// A retry or repair (yellow).
    Warn,
    /// A failure (red).
    Bad,
}

/// How chatty the status lines are: -q, default, -v.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Failures only.
    Quiet,
    /// Every attempt that failed, every repair and delay, every result.
    Normal,
    /// Also every attempt as it starts.
    Verbose,
}

/// The status-line printer of one run.
#[derive(Debug)]
pub struct Ui {
    color: bool,
    timestamps: bool,
    progress_lines: bool,
    verbosity: Verbosity,
    lock: Mutex<()>,
}

impl Ui {
    /// Decides colour and timestamps from the flags, the environment and whether stderr is
    /// a terminal: `CI` set counts as not a terminal, even on a pseudo-terminal.
    pub fn detect(color: ColorChoice, progress: Progress, verbosity: Verbosity) -> Self {
        let tty = match progress {
            Progress::Tty => true,
            Progress::Plain => false,
            Progress::Auto | Progress::None => {
                std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
            }
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Ui {
            color,
            timestamps: !tty,
            progress_lines: progress != Progress::None,
            verbosity,
            lock: Mutex::new(()),
        }
    }

    /// The verbosity.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Prints `verb message` as one status line, the verb right-aligned in 12 columns.
    pub fn status(&self, verb: &str, tone: Tone, message: &str) {
        if self.verbosity == Verbosity::Quiet && tone != Tone::Bad {
            return;
        }
        if !self.progress_lines && tone == Tone::Info {
            return;
        }
        let verb = if self.color {
            let code = match tone {
                Tone::Info => "36",
                Tone::Good => "32",
                Tone::Warn => "33",
                Tone::Bad => "31",
            };
            format!("\x1b[1;{code}m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        self.line(&format!("{verb} {}", shown(message)));
    }

    /// Prints a block of lines (a table) on stderr, as they are.
    pub fn block(&self, text: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        for line in shown(text).lines() {
            self.write(&format!("  {line}"), false);
        }
    }

    /// Prints `error: message`, then `hint: ...` when there is one.
    pub fn error(&self, message: &str, hint: Option<&str>) {
        let (e, h) = if self.color {
            ("\x1b[1;31merror\x1b[0m", "\x1b[1;36mhint\x1b[0m")
        } else {
            ("error", "hint")
        };
        self.line(&format!("{e}: {}", shown(message)));
        if let Some(hint) = hint {
            self.line(&format!("{h}: {}", shown(hint)));
        }
    }

    fn line(&self, text: &str) {
        self.write(text, true);
    }

    /// Writes one line; with timestamps, a status label's right-aligning padding goes
    /// (`trim`), a block's indentation stays.
    fn write(&self, text: &str, trim: bool) {
        let _guard = self.lock.lock();
        let mut err = std::io::stderr().lock();
        let _ = if self.timestamps {
            writeln!(
                err,
                "{} {}",
                humantime::format_rfc3339_seconds(SystemTime::now()),
                if trim { text.trim_start() } else { text }
            )
        } else {
            writeln!(err, "{text}")
        };
    }
}

/// What a status line, block or error may show of a text: URL userinfo redacted, control
/// characters escaped and `::` workflow commands defused (see `em_exec::printable`). Our
/// own messages quote tool output, server replies and URLs: this is the last stop before
/// the terminal or the CI log, whatever the message was built from.
fn shown(text: &str) -> String {
    em_exec::printable_text(&em_exec::redact_urls(text))
}

type Label = Box<dyn Fn(&Operation) -> String + Send + Sync>;

/// Turns retry events into status lines:
///
/// ```text
///     Retrying curl -fsSL http://127.0.0.1:8080/x: attempt 1/3 failed (transient: exit code 7); retrying in 1.1s
///    Repairing apt install python3: dpkg --configure -a
///       Failed curl -fsSL http://127.0.0.1:8080/x: attempt 3/3 failed (transient: exit code 7); retries exhausted
/// ```
pub struct HumanEvents {
    ui: Arc<Ui>,
    label: Label,
    pending: Mutex<HashMap<Operation, String>>,
}

impl HumanEvents {
    /// Reports through `ui`, naming operations by their `Display`.
    pub fn new(ui: Arc<Ui>) -> Self {
        HumanEvents {
            ui,
            label: Box::new(|op| op.to_string()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Names operations with `label` instead.
    pub fn with_label(
        mut self,
        label: impl Fn(&Operation) -> String + Send + Sync + 'static,
    ) -> Self {
        self.label = Box::new(label);
        self
    }

    fn take_pending(&self, op: &Operation) -> Option<String> {
        self.pending.lock().ok().and_then(|mut p| p.remove(op))
    }
}

/// `attempt 1/4 failed (transient: 503 from ...)`: how a failed attempt is shown, on
/// status lines and in CI annotations.
pub fn failure_text(attempt: u32, max: u32, class: &FailureClass, reason: &str) -> String {
    match class {
        FailureClass::TimedOut(_) => format!("attempt {attempt}/{max} failed ({class})"),
        FailureClass::Repairable(_) => {
            format!("attempt {attempt}/{max} failed (repairable: {reason})")
        }
        _ => format!("attempt {attempt}/{max} failed ({class}: {reason})"),
    }
}

impl Subscriber for HumanEvents {
    fn on_event(&self, event: &Event) {
        let op = event.operation();
        let label = (self.label)(op);
        match event {
            Event::AttemptStarted {
                attempt,
                max_attempts,
                ..
            } => {
                if self.ui.verbosity() >= Verbosity::Verbose {
                    self.ui.status(
                        "Running",
                        Tone::Info,
                        &format!("{label} (attempt {attempt}/{max_attempts})"),
                    );
                }
            }
            Event::AttemptFailed {
                attempt,
                max_attempts,
                class,
                reason,
                ..
            } => {
                let text = failure_text(*attempt, *max_attempts, class, reason);
                if let FailureClass::Repairable(repair) = class
                    && *attempt < *max_attempts
                {
                    self.ui.status(
                        "Retrying",
                        Tone::Warn,
                        &format!("{label}: {text}; repairing with {repair}"),
                    );
                } else if let Ok(mut p) = self.pending.lock() {
                    p.insert(op.clone(), text);
                }
            }
            Event::Repaired {
                repair,
                outcome,
                duration,
                ..
            } => match outcome {
                Ok(()) => self.ui.status(
                    "Repaired",
                    Tone::Good,
                    &format!("{label}: {repair} ({})", fmt_duration(*duration)),
                ),
                Err(e) => self.ui.status(
                    "Repairing",
                    Tone::Bad,
                    &format!("{label}: {repair} failed: {e} (retrying anyway)"),
                ),
            },
            Event::Sleeping {
                next_attempt,
                max_attempts,
                delay,
                why,
                ..
            } => {
                let text = match self.take_pending(op) {
                    Some(failed) => format!("{label}: {failed}; {}", why.describe(*delay)),
                    None => format!(
                        "{label}: attempt {next_attempt}/{max_attempts}: {}",
                        why.describe(*delay)
                    ),
                };
                self.ui.status("Retrying", Tone::Warn, &text);
            }
            Event::Succeeded {
                attempt, elapsed, ..
            } => {
                if *attempt > 1 {
                    self.ui.status(
                        "Succeeded",
                        Tone::Good,
                        &format!(
                            "{label} on attempt {attempt} after {} retr{} ({})",
                            attempt - 1,
                            if *attempt == 2 { "y" } else { "ies" },
                            fmt_duration(*elapsed)
                        ),
                    );
                } else if self.ui.verbosity() >= Verbosity::Verbose {
                    self.ui.status("Succeeded", Tone::Good, &label);
                }
            }
            Event::GaveUp {
                reason, last_error, ..
            } => {
                let text = match self.take_pending(op) {
                    Some(failed) => format!("{label}: {failed}; {reason}"),
                    None if last_error.is_empty() => format!("{label}: {reason}"),
                    None => format!("{label}: {last_error}; {reason}"),
                };
                self.ui.status("Failed", Tone::Bad, &text);
            }
        }
    }
}
