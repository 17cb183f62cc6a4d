//! Changing a policy's parts: what command-line flags, a manifest step's `retry` table and
//! the configuration's `[policy.NAME]` tables all do, in one place.

use std::time::Duration;

use crate::policy::{Backoff, Jitter, PolicyError, RetryPolicy};

/// The shape of a [`Backoff`], without its durations: what `--backoff` and `backoff = `
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffKind {
    /// Retry at once.
    None,
    /// The same delay every time.
    Fixed,
    /// The first delay times the retry number, up to the cap.
    Linear,
    /// The first delay times the multiplier per retry, up to the cap.
    Exponential,
}

impl BackoffKind {
    /// Every name, as written in flags and files.
    pub const NAMES: [&'static str; 4] = ["none", "fixed", "linear", "exponential"];

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BackoffKind::None => "none",
            BackoffKind::Fixed => "fixed",
            BackoffKind::Linear => "linear",
            BackoffKind::Exponential => "exponential",
        }
    }

    /// The kind named `name` (one of [`BackoffKind::NAMES`]).
    pub fn parse(name: &str) -> Option<BackoffKind> {
        match name {
            "none" => Some(BackoffKind::None),
            "fixed" => Some(BackoffKind::Fixed),
            "linear" => Some(BackoffKind::Linear),
            "exponential" => Some(BackoffKind::Exponential),
            _ => None,
        }
    }
}

impl Jitter {
    /// Every name, as written in flags and files.
    pub const NAMES: [&'static str; 4] = ["none", "full", "equal", "decorrelated"];

    /// The jitter named `name` (one of [`Jitter::NAMES`]).
    pub fn parse(name: &str) -> Option<Jitter> {
        match name {
            "none" => Some(Jitter::None),
            "full" => Some(Jitter::Full),
            "equal" => Some(Jitter::Equal),
            "decorrelated" => Some(Jitter::Decorrelated),
            _ => None,
        }
    }
}

/// Parts of a policy to change; what is `None` comes from the policy it is applied to.
///
/// `delay` is the fixed delay, or the first delay of linear and exponential. A first delay
/// above the base's cap raises the cap, rather than being an error.
///
/// ```
/// use std::time::Duration;
/// use em_retry::{Backoff, BackoffKind, PolicyOverride, RetryPolicy};
/// let base = RetryPolicy::new(4).with_backoff(Backoff::Fixed { delay: Duration::from_secs(1) });
/// let over = PolicyOverride { attempts: Some(2), backoff: Some(BackoffKind::Linear), ..Default::default() };
/// let policy = over.apply(&base).unwrap();
/// assert_eq!(policy.max_attempts(), 2);
/// assert_eq!(policy.backoff(), &Backoff::Linear { base: Duration::from_secs(1), max: Duration::from_secs(30) });
/// assert_eq!(PolicyOverride::default().apply(&base).unwrap(), base);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyOverride {
    /// Attempts in all, the first included.
    pub attempts: Option<u32>,
    /// The backoff's shape.
    pub backoff: Option<BackoffKind>,
    /// The fixed delay, or the first delay of linear and exponential.
    pub delay: Option<Duration>,
    /// The cap of linear and exponential.
    pub max: Option<Duration>,
    /// The growth factor of exponential.
    pub multiplier: Option<f64>,
    /// The jitter.
    pub jitter: Option<Jitter>,
    /// The limit of one attempt.
    pub timeout: Option<Duration>,
    /// The limit of all attempts and waits.
    pub deadline: Option<Duration>,
}

impl PolicyOverride {
    /// `base` with the parts that are set changed, validated.
    pub fn apply(&self, base: &RetryPolicy) -> Result<RetryPolicy, PolicyError> {
        let (base_kind, base_delay, base_max, base_multiplier) = match *base.backoff() {
            Backoff::None => (
                BackoffKind::None,
                Duration::from_secs(1),
                Duration::from_secs(30),
                2.0,
            ),
            Backoff::Fixed { delay } => (BackoffKind::Fixed, delay, Duration::from_secs(30), 2.0),
            Backoff::Linear { base, max } => (BackoffKind::Linear, base, max, 2.0),
            Backoff::Exponential {
                base,
                multiplier,
                max,
            } => (BackoffKind::Exponential, base, max, multiplier),
        };
        let delay = self.delay.unwrap_or(base_delay);
        let max = self.max.unwrap_or(base_max.max(delay));
        let multiplier = self.multiplier.unwrap_or(base_multiplier);
        let backoff = match self.backoff.unwrap_or(base_kind) {
            BackoffKind::None => Backoff::None,
            BackoffKind::Fixed => Backoff::Fixed { delay },
            BackoffKind::Linear => Backoff::Linear { base: delay, max },
            BackoffKind::Exponential => Backoff::Exponential {
                base: delay,
                multiplier,
                max,
            },
        };
        let mut policy = RetryPolicy::new(self.attempts.unwrap_or(base.max_attempts()))
            .with_backoff(backoff)
            .with_jitter(self.jitter.unwrap_or(base.jitter()));
        if let Some(t) = self.timeout.or(base.timeout()) {
            policy = policy.with_timeout(t);
        }
        if let Some(d) = self.deadline.or(base.deadline()) {
            policy = policy.with_deadline(d);
        }
        policy.validate()?;
        Ok(policy)
    }

    /// This override, then `later` on top of it: `later`'s parts win, what it leaves out
    /// is kept (a system config file, then the user's).
    pub fn overlay(&mut self, later: &PolicyOverride) {
        self.attempts = later.attempts.or(self.attempts);
        self.backoff = later.backoff.or(self.backoff);
        self.delay = later.delay.or(self.delay);
        self.max = later.max.or(self.max);
        self.multiplier = later.multiplier.or(self.multiplier);
        self.jitter = later.jitter.or(self.jitter);
        self.timeout = later.timeout.or(self.timeout);
        self.deadline = later.deadline.or(self.deadline);
    }
}

/// The longest duration accepted anywhere (a delay, a timeout, a deadline, a cooldown):
/// longer is a typo, and would overflow clocks and calendars.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Parses a duration as people write it: `500ms`, `2s`, `5m`, `1h30m`, `1d`. The error
/// says what to write instead: a bare number asks for a unit; more than a year (
/// [`MAX_DURATION`]) is refused.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(em_retry::parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(em_retry::parse_duration("30").unwrap_err(), "add a unit, e.g. \"30s\"");
/// assert!(em_retry::parse_duration("10000years").unwrap_err().contains("at most a year"));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match humantime::parse_duration(text) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) => Err(format!(
            "\"{text}\" is too long: write at most a year, e.g. \"30d\""
        )),
        Err(_) if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) => {
            Err(format!("add a unit, e.g. \"{text}s\""))
        }
        Err(_) => Err("write a number with a unit: \"500ms\", \"2s\", \"5m\", \"1h30m\"".into()),
    }
}
