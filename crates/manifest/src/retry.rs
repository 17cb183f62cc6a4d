//! A step's `retry` table: an override of the adapter's default [`RetryPolicy`].

use std::time::Duration;

use em_retry::{Backoff, Jitter, PolicyError, RetryPolicy};

use crate::diagnostic::Span;

/// The `backoff` key of a `retry` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffKind {
    /// Retry at once.
    None,
    /// `delay` every time.
    Fixed,
    /// `base * n`, up to `max`.
    Linear,
    /// `base * multiplier^(n-1)`, up to `max`.
    Exponential,
}

impl BackoffKind {
    pub(crate) const NAMES: [&'static str; 4] = ["none", "fixed", "linear", "exponential"];

    /// The name as written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            BackoffKind::None => "none",
            BackoffKind::Fixed => "fixed",
            BackoffKind::Linear => "linear",
            BackoffKind::Exponential => "exponential",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<BackoffKind> {
        match name {
            "none" => Some(BackoffKind::None),
            "fixed" => Some(BackoffKind::Fixed),
            "linear" => Some(BackoffKind::Linear),
            "exponential" => Some(BackoffKind::Exponential),
            _ => None,
        }
    }
}

pub(crate) const JITTER_NAMES: [&str; 4] = ["none", "full", "equal", "decorrelated"];

pub(crate) fn parse_jitter(name: &str) -> Option<Jitter> {
    match name {
        "none" => Some(Jitter::None),
        "full" => Some(Jitter::Full),
        "equal" => Some(Jitter::Equal),
        "decorrelated" => Some(Jitter::Decorrelated),
        _ => None,
    }
}

/// `retry = { attempts, backoff, delay, base, max, multiplier, jitter, timeout, deadline }`.
///
/// Every key is optional: what the table leaves out comes from the policy it is applied
/// to (the adapter's default), the same way the `retry` command's options apply to the
/// default policy. `delay` (fixed) and `base` (linear, exponential) both set the first delay.
///
/// ```
/// # use std::time::Duration;
/// use em_manifest::StepRetry;
/// use em_retry::RetryPolicy;
/// let retry = StepRetry { attempts: Some(5), ..StepRetry::default() };
/// let policy = retry.apply(&RetryPolicy::default()).unwrap();
/// assert_eq!(policy.max_attempts(), 5);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepRetry {
    /// `attempts`: in all, the first included.
    pub attempts: Option<u32>,
    /// `backoff`.
    pub backoff: Option<BackoffKind>,
    /// `delay` or `base`: the fixed delay, or the first delay of linear and exponential.
    pub delay: Option<Duration>,
    /// `max`: the cap of linear and exponential.
    pub max: Option<Duration>,
    /// `multiplier`: the exponential growth factor.
    pub multiplier: Option<f64>,
    /// `jitter`.
    pub jitter: Option<Jitter>,
    /// `timeout`: the limit of one attempt.
    pub timeout: Option<Duration>,
    /// `deadline`: the limit of all attempts and waits.
    pub deadline: Option<Duration>,
    /// Where the table is written.
    pub span: Span,
}

impl StepRetry {
    /// The policy of `base` with this table's keys applied, validated.
    ///
    /// A first delay above the base's cap raises the cap (as `--delay` does without `--max`).
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

    /// The policy of this table over the default policy (3 attempts, exponential from 1s,
    /// x2, up to 30s, equal jitter): what a load checks.
    pub fn policy(&self) -> Result<RetryPolicy, PolicyError> {
        self.apply(&RetryPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_override_the_base() {
        let r = StepRetry {
            attempts: Some(5),
            backoff: Some(BackoffKind::Exponential),
            delay: Some(Duration::from_secs(2)),
            max: Some(Duration::from_secs(30)),
            multiplier: Some(3.0),
            jitter: Some(Jitter::Full),
            timeout: Some(Duration::from_secs(300)),
            deadline: None,
            span: 0..0,
        };
        let p = r.policy().expect("valid");
        assert_eq!(p.max_attempts(), 5);
        assert_eq!(
            p.backoff(),
            &Backoff::Exponential {
                base: Duration::from_secs(2),
                multiplier: 3.0,
                max: Duration::from_secs(30)
            }
        );
        assert_eq!(p.jitter(), Jitter::Full);
        assert_eq!(p.timeout(), Some(Duration::from_secs(300)));
    }

    #[test]
    fn a_long_first_delay_raises_the_default_cap() {
        let r = StepRetry {
            delay: Some(Duration::from_secs(60)),
            ..StepRetry::default()
        };
        assert_eq!(
            r.policy().expect("valid").backoff().max(),
            Duration::from_secs(60)
        );
        let fixed = RetryPolicy::new(2).with_backoff(Backoff::Fixed {
            delay: Duration::from_secs(1),
        });
        let p = StepRetry::default().apply(&fixed).expect("valid");
        assert_eq!(p, fixed);
    }

    #[test]
    fn nonsense_is_reported() {
        let zero = StepRetry {
            attempts: Some(0),
            ..StepRetry::default()
        };
        assert_eq!(zero.policy(), Err(PolicyError::ZeroAttempts));
        let below = StepRetry {
            max: Some(Duration::from_millis(500)),
            ..StepRetry::default()
        };
        assert!(matches!(
            below.policy(),
            Err(PolicyError::MaxBelowBase { .. })
        ));
    }
}
