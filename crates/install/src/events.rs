//! How the engine reports: the [`Events`] observer, through which everything a run has to
//! say (status lines, warnings, errors, the live progress of each extension) goes out,
//! and [`HumanEvents`], which turns the retry core's events into those status lines.
//!
//! The engine never prints: the command line implements [`Events`] with its terminal or
//! CI printer (`extension_manager::output::Ui`); tests can implement it to collect lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use em_retry::{Event, FailureClass, Operation, Subscriber, fmt_duration};

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

/// The observer of a run: where the engine's status lines, errors and progress go.
///
/// A status line is `verb message` (`Retrying curl ...: attempt 1/3 failed ...`); a task is
/// one extension being installed, which a terminal shows as a live line.
pub trait Events: Send + Sync {
    /// One status line `verb message`, coloured by `tone`.
    fn status(&self, verb: &str, tone: Tone, message: &str);
    /// An error line, then `hint: ...` when there is one.
    fn error(&self, message: &str, hint: Option<&str>);
    /// How chatty the lines should be (-q, default, -v).
    fn verbosity(&self) -> Verbosity;
    /// Whether progress is drawn live (a terminal): then a step's warnings are not also
    /// echoed as its tool's lines.
    fn is_live(&self) -> bool;
    /// Task `name` starts: `verb text` (a live line, or a status line).
    fn task_start(&self, name: &str, verb: &str, text: &str);
    /// Task `name` moves on to step `text`.
    fn task_step(&self, name: &str, verb: &str, text: &str);
    /// What task `name`'s tool said last (a line of output, a percentage).
    fn task_detail(&self, name: &str, detail: &str);
    /// Task `name` is done (its live line goes).
    fn task_end(&self, name: &str);
}

impl dyn Events + '_ {
    /// Starts task `name` and ends it when the guard is dropped.
    pub fn task(&self, name: &str, verb: &str, text: &str) -> TaskGuard<'_> {
        self.task_start(name, verb, text);
        TaskGuard {
            events: self,
            name: name.to_string(),
        }
    }
}

/// Ends a task when dropped (see `<dyn Events>::task`).
pub struct TaskGuard<'a> {
    events: &'a dyn Events,
    name: String,
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        self.events.task_end(&self.name);
    }
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
    ui: Arc<dyn Events>,
    label: Label,
    pending: Mutex<HashMap<Operation, String>>,
}

impl HumanEvents {
    /// Reports through `ui`, naming operations by their `Display`.
    pub fn new(ui: Arc<dyn Events>) -> Self {
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

/// A collecting observer for the engine's tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Mutex;

    use super::{Events, Tone, Verbosity};

    /// An observer that keeps what it was told, one string per call.
    #[derive(Default)]
    pub(crate) struct Collect {
        pub(crate) verbosity: Option<Verbosity>,
        pub(crate) said: Mutex<Vec<String>>,
    }

    impl Collect {
        pub(crate) fn said(&self) -> Vec<String> {
            self.said.lock().expect("not poisoned").clone()
        }
        pub(crate) fn push(&self, line: String) {
            self.said.lock().expect("not poisoned").push(line);
        }
    }

    impl Events for Collect {
        fn status(&self, verb: &str, tone: Tone, message: &str) {
            self.push(format!("{verb} {tone:?} {message}"));
        }
        fn error(&self, message: &str, hint: Option<&str>) {
            self.push(format!("error {message} {hint:?}"));
        }
        fn verbosity(&self) -> Verbosity {
            self.verbosity.unwrap_or(Verbosity::Normal)
        }
        fn is_live(&self) -> bool {
            false
        }
        fn task_start(&self, name: &str, verb: &str, text: &str) {
            self.push(format!("start {name} {verb} {text}"));
        }
        fn task_step(&self, name: &str, verb: &str, text: &str) {
            self.push(format!("step {name} {verb} {text}"));
        }
        fn task_detail(&self, name: &str, detail: &str) {
            self.push(format!("detail {name} {detail}"));
        }
        fn task_end(&self, name: &str) {
            self.push(format!("end {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::testing::Collect;
    use super::*;

    fn operation() -> Arc<Operation> {
        Arc::new(Operation::new("curl", "fetch"))
    }

    #[test]
    fn a_retried_operation_becomes_one_retrying_and_one_succeeded_line() {
        let seen = Arc::new(Collect::default());
        let human = HumanEvents::new(seen.clone()).with_label(|op| format!("{} x", op.name));
        let operation = operation();
        human.on_event(&Event::AttemptStarted {
            operation: operation.clone(),
            attempt: 1,
            max_attempts: 3,
        });
        human.on_event(&Event::AttemptFailed {
            operation: operation.clone(),
            attempt: 1,
            max_attempts: 3,
            class: FailureClass::Transient,
            reason: "exit code 7".into(),
            duration: Duration::from_millis(3),
        });
        human.on_event(&Event::Sleeping {
            operation: operation.clone(),
            next_attempt: 2,
            max_attempts: 3,
            delay: Duration::from_millis(1500),
            why: em_retry::Wait::Backoff,
        });
        human.on_event(&Event::Succeeded {
            operation,
            attempt: 2,
            elapsed: Duration::from_millis(2100),
        });
        assert_eq!(
            seen.said(),
            [
                "Retrying Warn fetch x: attempt 1/3 failed (transient: exit code 7); retrying in 1.5s",
                "Succeeded Good fetch x on attempt 2 after 1 retry (2.1s)",
            ]
        );
    }

    #[test]
    fn verbose_shows_each_attempt_as_it_starts() {
        let seen = Arc::new(Collect {
            verbosity: Some(Verbosity::Verbose),
            ..Collect::default()
        });
        let human = HumanEvents::new(seen.clone()).with_label(|op| op.name.clone());
        human.on_event(&Event::AttemptStarted {
            operation: operation(),
            attempt: 1,
            max_attempts: 2,
        });
        human.on_event(&Event::Succeeded {
            operation: operation(),
            attempt: 1,
            elapsed: Duration::from_millis(5),
        });
        assert_eq!(
            seen.said(),
            ["Running Info fetch (attempt 1/2)", "Succeeded Good fetch"]
        );
    }

    #[test]
    fn a_task_ends_when_its_guard_is_dropped() {
        let seen = Collect::default();
        let events: &dyn Events = &seen;
        {
            let _task = events.task("node", "Installing", "node 22");
            events.task_step("node", "Running", "apt install nodejs");
            seen.push("inside".into());
        }
        assert_eq!(
            seen.said(),
            [
                "start node Installing node 22",
                "step node Running apt install nodejs",
                "inside",
                "end node",
            ]
        );
    }
}
