//! The adapter of a manifest's `run` steps (`sh -c`): a snippet's failure is its own
//! business, so there is little to classify. A missing command (126, 127) will not appear
//! by retrying; anything else is retried when the step's policy allows it (the default
//! policy of `run` steps is one attempt: a snippet need not be idempotent).

use em_exec::{Adapter, ToolFailure, Verdict};

/// `sh -c` snippets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shell;

/// The shell adapter has no repairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoRepair {}

impl std::fmt::Display for NoRepair {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl Adapter for Shell {
    type Repair = NoRepair;

    fn name(&self) -> &'static str {
        "run"
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<NoRepair> {
        let last = failure.tail(1).pop().unwrap_or_default();
        let reason = if last.is_empty() {
            format!("exit code {}", failure.code)
        } else {
            format!("exit code {}: {last}", failure.code)
        };
        match failure.code {
            126 | 127 => Verdict::Permanent(
                reason,
                Some("a command of the snippet is missing or not executable".into()),
            ),
            _ => Verdict::Transient(reason),
        }
    }

    async fn repair(&self, repair: NoRepair) -> Result<(), String> {
        match repair {}
    }
}
