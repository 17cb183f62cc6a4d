//! What a run reports: each step's attempts, failures, repairs, delays and mirror switches
//! (recorded from the retry events), each extension's outcome, and the run's.

use super::*;

/// The result of one extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Outcome {
    /// Installed and validated.
    Installed,
    /// Already installed with this manifest; its checks passed.
    UpToDate,
    /// Failed.
    Failed {
        /// What went wrong.
        message: String,
        /// How it ended: permanent (exit 1) or transient (exit 75, try later).
        fault: Fault,
    },
    /// Not attempted.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// What happened in one step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepReport {
    /// The step's index in the manifest.
    pub index: usize,
    /// One line: `apt install nodejs npm`.
    pub summary: String,
    /// `ok`, `skipped` or `failed`.
    pub result: String,
    /// Why it was skipped or failed.
    pub detail: Option<String>,
    /// The attempts of the step's busiest operation (a pip step creates its venv, then
    /// installs: one attempt each is 1, not 2); every operation's own count is in
    /// `operations`.
    pub attempts: u32,
    /// Each operation the step ran (`pip: install em-fixture-hello`) and its attempts,
    /// over all the sources it tried, in the order they started.
    pub operations: Vec<(String, u32)>,
    /// Each failed attempt: (class, reason).
    pub failures: Vec<(String, String)>,
    /// Each repair: (name, ok).
    pub repairs: Vec<(String, bool)>,
    /// Each delay before a retry, in milliseconds.
    pub delays_ms: Vec<u64>,
    /// Each move from a source given up to the next mirror: (from, to, why).
    pub mirror_switches: Vec<(String, String, String)>,
    /// How long the step took.
    pub duration_ms: u64,
}

/// What happened to one extension.
#[derive(Clone, Debug, Serialize)]
pub struct ExtensionReport {
    /// The extension.
    pub name: String,
    /// The result.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    pub duration_ms: u64,
    /// Its steps.
    pub steps: Vec<StepReport>,
    /// Its log file, when it ran anything.
    pub log: Option<PathBuf>,
}

impl ExtensionReport {
    /// Attempts over all steps.
    pub fn attempts(&self) -> u32 {
        self.steps.iter().map(|s| s.attempts).sum()
    }
    /// Retries over all steps.
    pub fn retries(&self) -> usize {
        self.steps.iter().map(|s| s.delays_ms.len()).sum()
    }
    /// Repairs over all steps.
    pub fn repairs(&self) -> usize {
        self.steps.iter().map(|s| s.repairs.len()).sum()
    }
}

/// Records the events of one step.
#[derive(Default)]
pub(super) struct StepRecorder(pub(super) Mutex<StepReport>);

impl Subscriber for StepRecorder {
    fn on_event(&self, event: &Event) {
        let Ok(mut r) = self.0.lock() else { return };
        match event {
            Event::AttemptStarted { operation, .. } => {
                let key = format!("{}: {}", operation.component, operation.name);
                let attempts = match r.operations.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        r.operations.push((key, 1));
                        1
                    }
                };
                r.attempts = r.attempts.max(attempts);
            }
            Event::AttemptFailed { class, reason, .. } => {
                let class = match class {
                    FailureClass::TimedOut(_) => "timeout".to_string(),
                    other => other.label().to_string(),
                };
                r.failures.push((class, reason.clone()));
            }
            Event::Repaired {
                repair, outcome, ..
            } => r.repairs.push((repair.clone(), outcome.is_ok())),
            Event::Sleeping { delay, .. } => r.delays_ms.push(delay.as_millis() as u64),
            Event::Succeeded { .. } | Event::GaveUp { .. } => {}
        }
    }
}

/// The outcome of a whole run.
pub struct RunReport {
    /// Per extension, in plan order.
    pub extensions: Vec<ExtensionReport>,
}

impl RunReport {
    /// 0 all well; 1 a permanent failure (or an extension skipped for one); 75 only
    /// transient failures.
    pub fn exit_code(&self) -> u8 {
        let faults = self.extensions.iter().filter_map(|e| match &e.outcome {
            Outcome::Failed { fault, .. } => Some(*fault),
            // Skipped for a dependency's failure: that failure decides, unless none is in
            // the report (skipped for another reason).
            Outcome::Skipped { .. } => Some(Fault::Permanent).filter(|_| {
                !self
                    .extensions
                    .iter()
                    .any(|e| matches!(e.outcome, Outcome::Failed { .. }))
            }),
            Outcome::Installed | Outcome::UpToDate => None,
        });
        Fault::worst(faults)
    }
}

impl StepReport {
    /// Takes what `recorder` saw of the step's attempts into this report.
    pub(super) fn take_recorded(&mut self, recorder: &StepRecorder) {
        let recorded = recorder.0.lock().map(|r| r.clone()).unwrap_or_default();
        self.attempts = recorded.attempts;
        self.operations = recorded.operations;
        self.failures = recorded.failures;
        self.repairs = recorded.repairs;
        self.delays_ms = recorded.delays_ms;
        self.mirror_switches = recorded.mirror_switches;
    }
}
