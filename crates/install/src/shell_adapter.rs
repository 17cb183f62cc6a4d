//! The adapter of a manifest's `run` steps (`sh -c`): a snippet's failure is its own
//! business, so there is little to classify. A missing command (126, 127) will not appear
//! by retrying. Any other exit code is permanent, unless the step has a `retry` table: its
//! author then said the snippet is worth retrying (and idempotent), so the failure is
//! transient, and retries that run out end as "try again later" (75). Without one a
//! snippet runs once and its failure is a failure (1): nothing says a later run would do
//! better.

use em_exec::{Adapter, ToolFailure, Verdict};

/// `sh -c` snippets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shell {
    /// The step asked for retries (`retry = { ... }`): failures are transient.
    pub retried: bool,
}

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
            _ if self.retried => Verdict::Transient(reason),
            _ => Verdict::Permanent(reason, None),
        }
    }

    async fn repair(&self, repair: NoRepair) -> Result<(), String> {
        match repair {}
    }
}
