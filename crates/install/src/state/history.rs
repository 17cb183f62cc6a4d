//! `history.jsonl`: one line per operation, appended.

use super::*;

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// The run it belongs to ([`new_run_id`]).
    pub run_id: String,
    /// The command of the run, without the program name (`install python nodejs`).
    pub command: String,
    /// The extension concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// What happened: `installed`, `failed`, `removed`, `skipped`, ...
    pub event: String,
    /// Details for a human (the version installed, the failure).
    #[serde(default)]
    pub detail: String,
}

impl HistoryEntry {
    /// An entry that happens now.
    pub fn new(
        run_id: &str,
        command: &str,
        extension: Option<&str>,
        event: &str,
        detail: &str,
    ) -> Self {
        HistoryEntry {
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            run_id: run_id.to_string(),
            command: command.to_string(),
            extension: extension.map(str::to_string),
            event: event.to_string(),
            detail: detail.to_string(),
        }
    }

    /// [`time`](Self::time) as a time, when it parses.
    pub fn parsed_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.time).ok()
    }
}
