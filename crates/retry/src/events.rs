//! What happens during a retried operation, as events that subscribers (logs, metrics,
//! reports, progress bars) consume. The retry loop itself never prints anything.

use std::sync::Arc;
use std::time::Duration;

use crate::fmt_duration;

/// Names the operation in events, logs and metrics: which component (an adapter, a client,
/// a host) and what it was doing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The system the operation talks to, e.g. `apt` or `billing-api`.
    pub component: String,
    /// What it does, e.g. `install python3`.
    pub name: String,
    /// The source it goes to when that is not the one its name implies (a mirror):
    /// shown after the name (`... via http://mirror.example.org/`), not part of the
    /// operation's identity in metrics and reports, which use `component` and `name`.
    pub via: Option<String>,
}

impl Operation {
    /// An operation named `name` of `component`.
    pub fn new(component: impl Into<String>, name: impl Into<String>) -> Self {
        Operation {
            component: component.into(),
            name: name.into(),
            via: None,
        }
    }

    /// The same operation, going to `source`.
    pub fn via(mut self, source: impl Into<String>) -> Self {
        self.via = Some(source.into());
        self
    }
}

impl Operation {
    /// What kind of operation this is, for a metrics label: the component and the first
    /// word of the name when it is a plain verb (`apt-install`, `npm-install`,
    /// `curl-download`), else the component alone. Never the package list, path, URL or
    /// command line: a label's values must stay few, and free of secrets.
    ///
    /// ```
    /// use em_retry::Operation;
    /// assert_eq!(Operation::new("apt", "install python3 git").kind(), "apt-install");
    /// assert_eq!(Operation::new("run", "/opt/x.sh --token=s3cret").kind(), "run");
    /// ```
    pub fn kind(&self) -> String {
        let verb = self.name.split_whitespace().next().filter(|w| {
            w.len() <= 32
                && w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        });
        match (self.component.is_empty(), verb) {
            (false, Some(verb)) => format!("{}-{verb}", self.component),
            (false, None) => self.component.clone(),
            (true, Some(verb)) => verb.to_string(),
            (true, None) => String::new(),
        }
    }

    /// The host (and port) of the first URL of the source (`via`) or the name, without any
    /// userinfo: `127.0.0.1:8080` for `download https://user:pw@127.0.0.1:8080/f`.
    ///
    /// ```
    /// use em_retry::Operation;
    /// let op = Operation::new("curl", "download https://u:p@127.0.0.1:8080/f.tgz");
    /// assert_eq!(op.host().as_deref(), Some("127.0.0.1:8080"));
    /// assert_eq!(Operation::new("apt", "install git").host(), None);
    /// ```
    pub fn host(&self) -> Option<String> {
        [self.via.as_deref(), Some(self.name.as_str())]
            .into_iter()
            .flatten()
            .find_map(|text| {
                let from_scheme = &text[text.find("://")?..];
                let host = crate::url::authority(crate::url::leading(from_scheme));
                (!host.is_empty()).then(|| host.to_string())
            })
    }

    /// The `operation` label of metrics: [`kind`](Self::kind), then the
    /// [`host`](Self::host) when there is one (`curl-download 127.0.0.1:8080`).
    pub fn metric_label(&self) -> String {
        match self.host() {
            Some(host) => format!("{} {host}", self.kind()),
            None => self.kind(),
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.component.is_empty(), self.name.is_empty()) {
            (true, _) => f.write_str(&self.name),
            (false, true) => f.write_str(&self.component),
            (false, false) => write!(f, "{} {}", self.component, self.name),
        }?;
        match &self.via {
            Some(via) => write!(f, " via {via}"),
            None => Ok(()),
        }
    }
}

/// How a failed attempt was classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Worth another attempt.
    Transient,
    /// The other side asked to wait at least this long.
    RetryAfter(Duration),
    /// Worth another attempt after the named repair.
    Repairable(String),
    /// Another attempt would fail the same way.
    Permanent,
    /// This source cannot serve it now (why): another source or a later run may.
    SourceExhausted(String),
    /// The attempt ran past its per-attempt timeout and was cancelled.
    TimedOut(Duration),
}

impl FailureClass {
    /// A short label for metrics: `transient`, `retry_after`, `repairable`, `permanent`, `timeout`.
    pub fn label(&self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::RetryAfter(_) => "retry_after",
            FailureClass::Repairable(_) => "repairable",
            FailureClass::Permanent => "permanent",
            FailureClass::SourceExhausted(_) => "source_exhausted",
            FailureClass::TimedOut(_) => "timeout",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureClass::RetryAfter(d) => write!(f, "transient, retry after {}", fmt_duration(*d)),
            FailureClass::Repairable(r) => write!(f, "repairable by {r}"),
            FailureClass::TimedOut(d) => write!(f, "timed out after {}", fmt_duration(*d)),
            FailureClass::SourceExhausted(why) => write!(f, "source exhausted: {why}"),
            other => f.write_str(other.label()),
        }
    }
}

/// Why an operation stopped without success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiveUpReason {
    /// Every attempt failed with a failure worth retrying.
    Exhausted,
    /// An attempt failed permanently.
    Permanent,
    /// The classifier gave this source up early (why): transient for an outer layer.
    SourceExhausted(String),
    /// The next attempt or sleep would have ended past the deadline.
    Deadline,
    /// The circuit of the named key is open: nothing was attempted.
    CircuitOpen(String),
}

impl GiveUpReason {
    /// Whether an outer layer may try again later (EX_TEMPFAIL): every reason but
    /// [`GiveUpReason::Permanent`].
    pub fn is_transient(&self) -> bool {
        !matches!(self, GiveUpReason::Permanent)
    }

    /// A short label for metrics and reports: `exhausted`, `permanent`, `source_exhausted`,
    /// `deadline`, `circuit_open`.
    pub fn label(&self) -> &'static str {
        match self {
            GiveUpReason::Exhausted => "exhausted",
            GiveUpReason::Permanent => "permanent",
            GiveUpReason::SourceExhausted(_) => "source_exhausted",
            GiveUpReason::Deadline => "deadline",
            GiveUpReason::CircuitOpen(_) => "circuit_open",
        }
    }
}

impl std::fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GiveUpReason::Exhausted => f.write_str("retries exhausted"),
            GiveUpReason::Permanent => f.write_str("permanent failure"),
            GiveUpReason::SourceExhausted(why) => write!(f, "source exhausted: {why}"),
            GiveUpReason::Deadline => f.write_str("deadline reached"),
            GiveUpReason::CircuitOpen(key) => write!(f, "circuit open for {key}"),
        }
    }
}

/// Why a retry waits as long as it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The policy's backoff (raised to a server's Retry-After when it asked for more).
    Backoff,
    /// No wait: a repair ran and succeeded, so the cause was fixed.
    Repaired,
    /// No wait (but a server's Retry-After): the attempt made progress (bytes resumed,
    /// packages fetched). It did not use up an attempt, and the backoff starts over.
    Progressed,
}

impl Wait {
    /// How a status line says it: `retrying in 1.5s`, `retrying now (the repair fixed
    /// the cause)`, `retrying now (the attempt made progress, so it does not count)`.
    pub fn describe(self, delay: Duration) -> String {
        match (self, delay.is_zero()) {
            (Wait::Repaired, true) => "retrying now (the repair fixed the cause)".into(),
            (Wait::Progressed, true) => {
                "retrying now (the attempt made progress, so it does not count)".into()
            }
            (Wait::Progressed, false) => format!(
                "retrying in {} (the attempt made progress, so it does not count; the server asked for the wait)",
                fmt_duration(delay)
            ),
            _ => format!("retrying in {}", fmt_duration(delay)),
        }
    }
}

/// One thing that happened while running an operation under a policy.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Attempt `attempt` of `max_attempts` begins.
    AttemptStarted {
        /// Which operation.
        operation: Arc<Operation>,
        /// 1-based.
        attempt: u32,
        /// The policy's attempts in all.
        max_attempts: u32,
    },
    /// An attempt failed.
    AttemptFailed {
        /// Which operation.
        operation: Arc<Operation>,
        /// 1-based.
        attempt: u32,
        /// The policy's attempts in all.
        max_attempts: u32,
        /// How the failure was classified.
        class: FailureClass,
        /// The error, as its `Display` shows it.
        reason: String,
        /// How long the attempt ran.
        duration: Duration,
    },
    /// A repair ran between two attempts.
    Repaired {
        /// Which operation.
        operation: Arc<Operation>,
        /// The repair's name, e.g. `dpkg --configure -a`.
        repair: String,
        /// `Err` with the reason when the repair failed (the next attempt still runs).
        outcome: Result<(), String>,
        /// How long the repair ran.
        duration: Duration,
    },
    /// Waiting before the next attempt (a retry; `delay` is zero when it starts at once).
    Sleeping {
        /// Which operation.
        operation: Arc<Operation>,
        /// The attempt that will follow the sleep.
        next_attempt: u32,
        /// The attempts allowed in all, as of now (the policy's, plus one for each attempt
        /// that made progress).
        max_attempts: u32,
        /// How long.
        delay: Duration,
        /// Why it waits that long.
        why: Wait,
    },
    /// The operation succeeded.
    Succeeded {
        /// Which operation.
        operation: Arc<Operation>,
        /// The attempt that succeeded.
        attempt: u32,
        /// From the first attempt's start to now.
        elapsed: Duration,
    },
    /// The operation stopped without success.
    GaveUp {
        /// Which operation.
        operation: Arc<Operation>,
        /// Attempts made.
        attempts: u32,
        /// Why it stopped.
        reason: GiveUpReason,
        /// The last failure, as its `Display` shows it.
        last_error: String,
        /// From the first attempt's start to now.
        elapsed: Duration,
    },
}

impl Event {
    /// The operation the event belongs to.
    pub fn operation(&self) -> &Operation {
        match self {
            Event::AttemptStarted { operation, .. }
            | Event::AttemptFailed { operation, .. }
            | Event::Repaired { operation, .. }
            | Event::Sleeping { operation, .. }
            | Event::Succeeded { operation, .. }
            | Event::GaveUp { operation, .. } => operation,
        }
    }
}

/// Receives every [`Event`] of the operations it is subscribed to.
///
/// Closures `Fn(&Event)` are subscribers too:
/// ```
/// use std::sync::{Arc, Mutex};
/// use em_retry::{Event, Subscriber};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let subscriber: Arc<dyn Subscriber> = Arc::new(move |e: &Event| {
///     sink.lock().expect("not poisoned").push(e.clone())
/// });
/// # let _ = subscriber;
/// ```
pub trait Subscriber: Send + Sync {
    /// Called synchronously from the retry loop: keep it quick.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Subscriber for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// Logs every event through `tracing` (target `em_retry`): failures and retries at WARN,
/// repairs at INFO (WARN when they fail), give-ups at ERROR, attempts at DEBUG.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingLog;

impl Subscriber for TracingLog {
    fn on_event(&self, event: &Event) {
        match event {
            Event::AttemptStarted {
                operation,
                attempt,
                max_attempts,
            } => {
                tracing::debug!(target: "em_retry", operation = %operation, attempt, max_attempts, "attempt started")
            }
            Event::AttemptFailed {
                operation,
                attempt,
                max_attempts,
                class,
                reason,
                duration,
            } => tracing::warn!(
                target: "em_retry",
                operation = %operation,
                attempt,
                max_attempts,
                class = class.label(),
                duration_ms = duration.as_millis() as u64,
                "attempt {attempt}/{max_attempts} failed ({class}: {reason})"
            ),
            Event::Repaired {
                operation,
                repair,
                outcome: Ok(()),
                ..
            } => tracing::info!(target: "em_retry", operation = %operation, repair, "repaired"),
            Event::Repaired {
                operation,
                repair,
                outcome: Err(e),
                ..
            } => {
                tracing::warn!(target: "em_retry", operation = %operation, repair, "repair failed: {e}")
            }
            Event::Sleeping {
                operation,
                delay,
                why,
                ..
            } => tracing::info!(
                target: "em_retry",
                operation = %operation,
                delay_ms = delay.as_millis() as u64,
                "{}",
                why.describe(*delay)
            ),
            Event::Succeeded {
                operation, attempt, ..
            } => tracing::debug!(target: "em_retry", operation = %operation, attempt, "succeeded"),
            Event::GaveUp {
                operation,
                attempts,
                reason,
                last_error,
                ..
            } => tracing::error!(
                target: "em_retry",
                operation = %operation,
                attempts,
                "gave up after {attempts} attempt(s) ({reason}): {last_error}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_says_why_it_is_that_long() {
        let ms = Duration::from_millis;
        assert_eq!(Wait::Backoff.describe(ms(1500)), "retrying in 1.5s");
        assert_eq!(
            Wait::Repaired.describe(Duration::ZERO),
            "retrying now (the repair fixed the cause)"
        );
        assert_eq!(
            Wait::Progressed.describe(Duration::ZERO),
            "retrying now (the attempt made progress, so it does not count)"
        );
        assert_eq!(
            Wait::Progressed.describe(ms(2000)),
            "retrying in 2s (the attempt made progress, so it does not count; the server asked for the wait)"
        );
    }
}
