//! GitHub Actions (SPEC 9): what a failing or flaky CI job shows without anyone reading
//! the whole log.
//!
//! - Under `GITHUB_ACTIONS=true`, every retry is a `::warning::` line and every operation
//!   that gives up an `::error::` line, so they appear as annotations on the run's page.
//!   They go to stderr with the other status lines: stdout carries only the requested
//!   output, and the runner reads workflow commands from both streams.
//! - When `GITHUB_STEP_SUMMARY` names a file, a markdown table of what each registry or
//!   host did (operations, attempts, retries, repairs, give-ups) is appended to it when
//!   the command ends, if any operation ran.
//!
//! Outside GitHub Actions nothing here does anything.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use em_exec::SourceCounts;
use em_retry::{Event, Subscriber};

/// `::warning::` and `::error::` lines for retries and give-ups.
#[derive(Default)]
pub struct Annotations {
    /// The last failure of each operation, shown with the retry that follows it.
    last_failure: Mutex<HashMap<String, String>>,
}

impl Annotations {
    /// The annotations subscriber when `GITHUB_ACTIONS=true`.
    pub fn from_env() -> Option<Annotations> {
        std::env::var("GITHUB_ACTIONS")
            .is_ok_and(|v| v == "true")
            .then(Annotations::default)
    }

    /// The workflow command for `event`, if it is one that gets an annotation.
    fn line(&self, event: &Event) -> Option<String> {
        let op = event.operation();
        let label = format!("{}: {}", op.component, op.name);
        let mut last = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::AttemptFailed {
                attempt,
                max_attempts,
                class,
                reason,
                ..
            } => {
                last.insert(
                    label,
                    crate::output::failure_text(*attempt, *max_attempts, class, reason),
                );
                None
            }
            Event::Sleeping { delay, why, .. } => {
                let failed = last
                    .get(&label)
                    .cloned()
                    .unwrap_or_else(|| "an attempt failed".into());
                Some(command(
                    "warning",
                    &format!("extension-manager retried {}", op.component),
                    &format!("{label}: {failed}; {}", why.describe(*delay)),
                ))
            }
            Event::GaveUp {
                attempts,
                reason,
                last_error,
                ..
            } => {
                last.remove(&label);
                Some(command(
                    "error",
                    &format!("extension-manager: {} failed", op.component),
                    &format!(
                        "{label}: gave up after {attempts} attempt{} ({reason}): {last_error}",
                        if *attempts == 1 { "" } else { "s" }
                    ),
                ))
            }
            Event::Succeeded { .. } => {
                last.remove(&label);
                None
            }
            Event::AttemptStarted { .. } | Event::Repaired { .. } => None,
        }
    }
}

impl Subscriber for Annotations {
    fn on_event(&self, event: &Event) {
        if let Some(line) = self.line(event) {
            eprintln!("{line}");
        }
    }
}

/// `::kind title=TITLE::MESSAGE`, escaped as the runner expects.
fn command(kind: &str, title: &str, message: &str) -> String {
    // The message quotes tool output and URLs: no passwords, no control characters
    // (newlines are %0A-escaped below, the rest made printable first).
    let message = em_exec::printable_text(&em_exec::redact_urls(message));
    format!(
        "::{kind} title={}::{}",
        escape_property(&em_exec::redact_urls(title)),
        escape_data(&message)
    )
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The file named by `GITHUB_STEP_SUMMARY`, when set and not empty.
pub fn step_summary_file() -> Option<PathBuf> {
    std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The markdown appended to the step summary: a heading naming the command and its exit
/// code, and one row per source. `None` when no operation ran.
pub fn summary_markdown(
    command: &str,
    exit_code: u8,
    sources: &BTreeMap<String, SourceCounts>,
) -> Option<String> {
    if sources.is_empty() {
        return None;
    }
    let command = em_exec::redact_urls(command);
    let mut md = format!("### `{command}`: exit {exit_code}\n\n");
    md.push_str(
        "| registry or host | operations | attempts | retries | repairs | gave up | circuit |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---|\n");
    for (source, c) in sources {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            source.replace('|', "\\|"),
            c.operations,
            c.attempts,
            c.retries,
            c.repairs,
            c.gave_up,
            match c.circuit_open {
                Some(true) => "open",
                Some(false) => "closed",
                None => "-",
            }
        );
    }
    md.push('\n');
    Some(md)
}

/// Appends `markdown` to `file` (the runner gives each step its own file).
pub fn append(file: &Path, markdown: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(markdown.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use em_retry::{GiveUpReason, Operation};

    use super::*;

    fn op() -> Arc<Operation> {
        Arc::new(Operation::new("apt", "install em-fixture-hello"))
    }

    #[test]
    fn a_retry_is_a_warning_naming_the_failure_and_a_give_up_an_error() {
        let a = Annotations::default();
        assert_eq!(
            a.line(&Event::AttemptFailed {
                operation: op(),
                attempt: 1,
                max_attempts: 4,
                class: em_retry::FailureClass::Transient,
                reason: "503 from 127.0.0.1:8080\nmore".into(),
                duration: Duration::from_millis(5),
            }),
            None
        );
        let warning = a
            .line(&Event::Sleeping {
                operation: op(),
                next_attempt: 2,
                max_attempts: 4,
                delay: Duration::from_millis(1500),
                why: em_retry::Wait::Backoff,
            })
            .expect("a warning");
        assert_eq!(
            warning,
            "::warning title=extension-manager retried apt::apt: install em-fixture-hello: \
             attempt 1/4 failed (transient: 503 from 127.0.0.1:8080%0Amore); retrying in 1.5s"
        );
        let error = a
            .line(&Event::GaveUp {
                operation: op(),
                attempts: 4,
                reason: GiveUpReason::Exhausted,
                last_error: "100% broken".into(),
                elapsed: Duration::from_secs(3),
            })
            .expect("an error");
        assert!(
            error.starts_with("::error title=extension-manager%3A apt failed::"),
            "{error}"
        );
        assert!(
            error.ends_with("gave up after 4 attempts (retries exhausted): 100%25 broken"),
            "{error}"
        );
    }

    #[test]
    fn the_summary_has_a_row_per_source_and_nothing_without_operations() {
        assert_eq!(summary_markdown("em install x", 0, &BTreeMap::new()), None);
        let sources = BTreeMap::from([(
            "127.0.0.1:8080".to_string(),
            SourceCounts {
                operations: 2,
                attempts: 5,
                retries: 3,
                repairs: 1,
                gave_up: 0,
                circuit_open: Some(true),
            },
        )]);
        let md = summary_markdown("em install x", 75, &sources).expect("a table");
        assert!(md.starts_with("### `em install x`: exit 75\n"), "{md}");
        assert!(
            md.contains("| 127.0.0.1:8080 | 2 | 5 | 3 | 1 | 0 | open |\n"),
            "{md}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("summary.md");
        append(&file, "a\n").expect("append");
        append(&file, &md).expect("append");
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.starts_with("a\n###"), "{text}");
    }
}
