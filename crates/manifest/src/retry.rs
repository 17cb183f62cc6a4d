//! A step's `retry` table: an override of the adapter's default [`RetryPolicy`].

use em_retry::{PolicyError, PolicyOverride, RetryPolicy};

use crate::diagnostic::Span;

/// `retry = { attempts, backoff, delay, base, max, multiplier, jitter, timeout, deadline }`.
///
/// Every key is optional: what the table leaves out comes from the policy it is applied
/// to (the adapter's default), the same way the `retry` command's options apply to the
/// default policy. `delay` (fixed) and `base` (linear, exponential) both set the first delay.
///
/// ```
/// use em_manifest::StepRetry;
/// use em_retry::{PolicyOverride, RetryPolicy};
/// let retry = StepRetry { overrides: PolicyOverride { attempts: Some(5), ..Default::default() }, span: 0..0 };
/// let policy = retry.apply(&RetryPolicy::default()).unwrap();
/// assert_eq!(policy.max_attempts(), 5);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepRetry {
    /// The keys, as a change of the policy they are applied to.
    pub overrides: PolicyOverride,
    /// Where the table is written.
    pub span: Span,
}

impl StepRetry {
    /// The policy of `base` with this table's keys applied, validated.
    pub fn apply(&self, base: &RetryPolicy) -> Result<RetryPolicy, PolicyError> {
        self.overrides.apply(base)
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
    use em_retry::{Backoff, BackoffKind, Jitter};
    use std::time::Duration;

    fn table(overrides: PolicyOverride) -> StepRetry {
        StepRetry {
            overrides,
            span: 0..0,
        }
    }

    #[test]
    fn keys_override_the_base() {
        let r = table(PolicyOverride {
            attempts: Some(5),
            backoff: Some(BackoffKind::Exponential),
            delay: Some(Duration::from_secs(2)),
            max: Some(Duration::from_secs(30)),
            multiplier: Some(3.0),
            jitter: Some(Jitter::Full),
            timeout: Some(Duration::from_secs(300)),
            deadline: None,
        });
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
        let r = table(PolicyOverride {
            delay: Some(Duration::from_secs(60)),
            ..PolicyOverride::default()
        });
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
        let zero = table(PolicyOverride {
            attempts: Some(0),
            ..PolicyOverride::default()
        });
        assert_eq!(zero.policy(), Err(PolicyError::ZeroAttempts));
        let below = table(PolicyOverride {
            max: Some(Duration::from_millis(500)),
            ..PolicyOverride::default()
        });
        assert!(matches!(
            below.policy(),
            Err(PolicyError::MaxBelowBase { .. })
        ));
    }
}
