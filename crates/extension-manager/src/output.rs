//! What the user sees on stderr: cargo-style status lines (`    Retrying ...`), coloured on a
//! terminal, plain and timestamped anywhere else (CI logs, `docker build`, pipes).
//!
//! On a terminal (and not under `CI`), each running extension also has one live line
//! (indicatif): a spinner, its current step, the last thing its tool said (apt's own
//! percentages, a download's bytes) and the elapsed time. Status lines print above the
//! live area; a finished extension's line goes and its result line stays. Anywhere else
//! nothing is redrawn: the same lines as always, without CR or ANSI.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::SystemTime;

pub use em_install::events::{HumanEvents, Tone, Verbosity, failure_text};

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
    /// Terminal style: status lines without timestamps, coloured under `--color auto`,
    /// and a live line per running extension when stderr is a terminal.
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

/// The status-line printer of one run.
#[derive(Debug)]
pub struct Ui {
    color: bool,
    timestamps: bool,
    progress_lines: bool,
    verbosity: Verbosity,
    lock: Mutex<()>,
    live: Option<Live>,
    /// `--log-format json`: every line becomes a tracing event (one JSON object each).
    json: bool,
}

/// The live area: one spinner line per running task (an extension being installed).
struct Live {
    multi: indicatif::MultiProgress,
    style: indicatif::ProgressStyle,
    tasks: Mutex<HashMap<String, LiveTask>>,
}

#[derive(Debug)]
struct LiveTask {
    bar: indicatif::ProgressBar,
    /// The current step, before the tool's last words.
    step: String,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    fn new(color: bool) -> Live {
        let template = if color {
            "{prefix:>12.cyan.bold} {spinner:.cyan} {wide_msg} {elapsed:>4}"
        } else {
            "{prefix:>12} {spinner} {wide_msg} {elapsed:>4}"
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        Live {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr_with_hz(10),
            ),
            style,
            tasks: Mutex::new(HashMap::new()),
        }
    }
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
        let live = tty
            && progress != Progress::None
            && verbosity != Verbosity::Quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Ui {
            color,
            timestamps: !tty,
            progress_lines: progress != Progress::None,
            verbosity,
            lock: Mutex::new(()),
            live: live.then(|| Live::new(color)),
            json: false,
        }
    }

    /// This printer for `--log-format json`: status lines, tables and errors become
    /// tracing events (target `extension_manager::status`, fields `verb` and `message`),
    /// which the JSON formatter writes as one object per line, so stderr is JSON only.
    /// No live area, no colour.
    pub fn json_lines(mut self) -> Self {
        self.json = true;
        self.live = None;
        self.color = false;
        self
    }

    /// Whether there is a live area (a terminal; see the module doc).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Starts task `name` (an extension being installed): a live line `verb text` on a
    /// terminal, else the status line `verb text` as always. [`Ui::task_end`] ends it.
    pub fn task_start(&self, name: &str, verb: &str, text: &str) {
        match &self.live {
            None => self.status(verb, Tone::Info, text),
            Some(live) => {
                let bar = live.multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(live.style.clone());
                bar.set_prefix(verb.to_string());
                bar.set_message(shown(text));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                if let Ok(mut tasks) = live.tasks.lock() {
                    tasks.insert(
                        name.to_string(),
                        LiveTask {
                            bar,
                            step: shown(text),
                        },
                    );
                }
            }
        }
    }

    /// Ends task `name`: its live line goes (its result line, a status line, stays).
    pub fn task_end(&self, name: &str) {
        if let Some(live) = &self.live
            && let Ok(mut tasks) = live.tasks.lock()
            && let Some(task) = tasks.remove(name)
        {
            task.bar.finish_and_clear();
            live.multi.remove(&task.bar);
        }
    }

    /// Task `name` moves on to `text`: its live line says so, or (no live area) the status
    /// line `verb text` is printed.
    pub fn task_step(&self, name: &str, verb: &str, text: &str) {
        match &self.live {
            None => self.status(verb, Tone::Info, text),
            Some(live) => {
                if let Ok(mut tasks) = live.tasks.lock()
                    && let Some(task) = tasks.get_mut(name)
                {
                    task.step = shown(text);
                    task.bar.set_message(task.step.clone());
                }
            }
        }
    }

    /// What task `name`'s tool said last (a line of its output, apt's percentage): shown
    /// after the step on its live line; nothing without a live area.
    pub fn task_detail(&self, name: &str, detail: &str) {
        let Some(live) = &self.live else {
            return;
        };
        let detail = detail.trim();
        if detail.is_empty() {
            return;
        }
        if let Ok(tasks) = live.tasks.lock()
            && let Some(task) = tasks.get(name)
        {
            task.bar
                .set_message(format!("{} · {}", short(&task.step, 48), shown(detail)));
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
        if self.json {
            let message = shown(message);
            match tone {
                Tone::Info | Tone::Good => {
                    tracing::info!(target: "extension_manager::status", verb, "{message}");
                }
                Tone::Warn => {
                    tracing::warn!(target: "extension_manager::status", verb, "{message}")
                }
                Tone::Bad => {
                    tracing::error!(target: "extension_manager::status", verb, "{message}")
                }
            }
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
            if self.json {
                tracing::info!(target: "extension_manager::status", verb = "Table", "{line}");
                continue;
            }
            self.write(&format!("  {line}"), false);
        }
    }

    /// Prints `error: message`, then `hint: ...` when there is one.
    pub fn error(&self, message: &str, hint: Option<&str>) {
        if self.json {
            let (message, hint) = (shown(message), hint.map(shown).unwrap_or_default());
            tracing::error!(target: "extension_manager::status", verb = "error", hint, "{message}");
            return;
        }
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
    /// (`trim`), a block's indentation stays. With a live area, above it.
    fn write(&self, text: &str, trim: bool) {
        if let Some(live) = &self.live {
            let _ = live.multi.println(text);
            return;
        }
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

/// `text` cut to `max` characters (with `…`): a long step leaves room for its tool's
/// last words on a live line, which the terminal's width cuts at the end.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// What a status line, block or error may show of a text: URL userinfo redacted, control
/// characters escaped and `::` workflow commands defused (see `em_exec::printable`). Our
/// own messages quote tool output, server replies and URLs: this is the last stop before
/// the terminal or the CI log, whatever the message was built from.
fn shown(text: &str) -> String {
    em_exec::printable_text(&em_exec::redact_urls(text))
}

/// The engine reports through the printer.
impl em_install::events::Events for Ui {
    fn status(&self, verb: &str, tone: Tone, message: &str) {
        Ui::status(self, verb, tone, message);
    }
    fn error(&self, message: &str, hint: Option<&str>) {
        Ui::error(self, message, hint);
    }
    fn verbosity(&self) -> Verbosity {
        Ui::verbosity(self)
    }
    fn is_live(&self) -> bool {
        Ui::is_live(self)
    }
    fn task_start(&self, name: &str, verb: &str, text: &str) {
        Ui::task_start(self, name, verb, text);
    }
    fn task_step(&self, name: &str, verb: &str, text: &str) {
        Ui::task_step(self, name, verb, text);
    }
    fn task_detail(&self, name: &str, detail: &str) {
        Ui::task_detail(self, name, detail);
    }
    fn task_end(&self, name: &str) {
        Ui::task_end(self, name);
    }
}
