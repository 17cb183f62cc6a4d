//! Retry policies: how many attempts, how long to wait between them, and the time limits.

use std::fmt;
use std::time::Duration;

use crate::random::Random;

/// How the delay before each retry grows (before jitter).
///
/// `retry` counts retries, not attempts: retry 1 is the wait before the second attempt.
/// Every strategy saturates instead of overflowing, for any retry number.
#[derive(Clone, Debug, PartialEq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// The same delay every time: 2s, 2s, 2s.
    Fixed {
        /// The delay before every retry.
        delay: Duration,
    },
    /// `min(base * n, max)`: 2s, 4s, 6s, 8s, 10s, 10s.
    Linear {
        /// The first delay, and the step.
        base: Duration,
        /// The cap.
        max: Duration,
    },
    /// `min(base * multiplier^(n-1), max)`: 2s, 4s, 8s, 16s, 30s.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The growth factor, at least 1 (smaller or non-finite values count as 1).
        multiplier: f64,
        /// The cap.
        max: Duration,
    },
}

impl Backoff {
    /// The delay before retry number `retry` (1 = before the second attempt), before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use em_retry::Backoff;
    /// let b = Backoff::Exponential {
    ///     base: Duration::from_secs(2),
    ///     multiplier: 2.0,
    ///     max: Duration::from_secs(30),
    /// };
    /// let secs: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
    /// assert_eq!(secs, [2, 4, 8, 16, 30, 30]);
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        let n = retry.max(1);
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed { delay } => delay,
            Backoff::Linear { base, max } => base.checked_mul(n).unwrap_or(Duration::MAX).min(max),
            Backoff::Exponential {
                base,
                multiplier,
                max,
            } => {
                let multiplier = effective_multiplier(multiplier);
                // powf saturates to +inf for huge exponents; the comparison below catches it.
                let secs = base.as_secs_f64() * multiplier.powf(f64::from(n - 1));
                if !secs.is_finite() || secs >= max.as_secs_f64() {
                    max
                } else {
                    Duration::try_from_secs_f64(secs).unwrap_or(max).min(max)
                }
            }
        }
    }

    /// The smallest delay the strategy produces (the lower bound of decorrelated jitter).
    pub fn base(&self) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed { delay } => delay,
            Backoff::Linear { base, max } | Backoff::Exponential { base, max, .. } => base.min(max),
        }
    }

    /// The largest delay the strategy produces (the cap of decorrelated jitter).
    pub fn max(&self) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed { delay } => delay,
            Backoff::Linear { max, .. } | Backoff::Exponential { max, .. } => max,
        }
    }
}

fn effective_multiplier(multiplier: f64) -> f64 {
    if multiplier.is_finite() && multiplier >= 1.0 {
        multiplier
    } else {
        1.0
    }
}

/// Randomness added to each delay, so that many clients do not retry in lockstep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// The delay as computed.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// `d/2 + uniform[0, d/2]`: never less than half the delay.
    #[default]
    Equal,
    /// `min(max, uniform[base, 3 * previous])`, starting from `previous = base`.
    Decorrelated,
}

/// How often and how long to try an operation.
///
/// ```
/// use std::time::Duration;
/// use em_retry::{Backoff, Jitter, RetryPolicy};
/// let policy = RetryPolicy::new(4)
///     .with_backoff(Backoff::Fixed { delay: Duration::from_millis(500) })
///     .with_jitter(Jitter::None)
///     .with_timeout(Duration::from_secs(60))
///     .with_deadline(Duration::from_secs(300));
/// assert_eq!(policy.max_attempts(), 4);
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    jitter: Jitter,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// 3 attempts, exponential from 1s doubling up to 30s, equal jitter, no time limits.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                multiplier: 2.0,
                max: Duration::from_secs(30),
            },
            jitter: Jitter::Equal,
            timeout: None,
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts in all, the first included (1 = no retry; 0
    /// counts as 1 and is reported by [`RetryPolicy::validate`]), with the default backoff.
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        }
    }

    /// A policy that runs the operation once.
    pub fn once() -> Self {
        RetryPolicy::new(1).with_backoff(Backoff::None)
    }

    /// Sets how delays grow.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the jitter applied after the cap.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the limit of one attempt; an attempt past it is cancelled and counts as transient.
    pub fn with_timeout(mut self, per_attempt: Duration) -> Self {
        self.timeout = Some(per_attempt);
        self
    }

    /// Sets the limit of the whole operation: no attempt starts, and no sleep begins, that
    /// would end past it.
    pub fn with_deadline(mut self, total: Duration) -> Self {
        self.deadline = Some(total);
        self
    }

    /// Attempts in all, at least 1.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The backoff strategy.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The jitter.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The per-attempt timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The total deadline, if any.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Reports values that the builder accepted (it never fails) but that make no sense:
    /// zero attempts, a multiplier below 1 or not finite, a cap below the base, a zero timeout.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError::ZeroAttempts);
        }
        match self.backoff {
            Backoff::Exponential {
                base,
                multiplier,
                max,
            } => {
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(PolicyError::Multiplier(multiplier));
                }
                if max < base {
                    return Err(PolicyError::MaxBelowBase { base, max });
                }
            }
            Backoff::Linear { base, max } if max < base => {
                return Err(PolicyError::MaxBelowBase { base, max });
            }
            _ => {}
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(PolicyError::ZeroTimeout);
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(PolicyError::ZeroDeadline);
        }
        Ok(())
    }

    /// A fresh sequence of delays for one run of an operation under this policy.
    pub fn schedule(&self) -> DelaySchedule {
        DelaySchedule {
            backoff: self.backoff.clone(),
            jitter: self.jitter,
            previous: self.backoff.base(),
        }
    }
}

/// A policy value that makes no sense (see [`RetryPolicy::validate`]).
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyError {
    /// `max_attempts` is 0.
    ZeroAttempts,
    /// The exponential multiplier is below 1 or not a finite number.
    Multiplier(f64),
    /// The cap is below the first delay.
    MaxBelowBase {
        /// The first delay.
        base: Duration,
        /// The cap.
        max: Duration,
    },
    /// A per-attempt timeout of zero would fail every attempt.
    ZeroTimeout,
    /// A deadline of zero would run nothing.
    ZeroDeadline,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::ZeroAttempts => write!(f, "attempts must be at least 1 (1 = no retry)"),
            PolicyError::Multiplier(m) => {
                write!(f, "multiplier must be a number of at least 1.0, got {m}")
            }
            PolicyError::MaxBelowBase { base, max } => write!(
                f,
                "max delay ({}) is below the first delay ({})",
                crate::fmt_duration(*max),
                crate::fmt_duration(*base)
            ),
            PolicyError::ZeroTimeout => write!(f, "a per-attempt timeout must be above zero"),
            PolicyError::ZeroDeadline => write!(f, "a deadline must be above zero"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The delays of one run: backoff, cap, then jitter. Decorrelated jitter needs the previous
/// delay, which is why this is a stateful sequence rather than a function of `n`.
#[derive(Clone, Debug)]
pub struct DelaySchedule {
    backoff: Backoff,
    jitter: Jitter,
    previous: Duration,
}

impl DelaySchedule {
    /// The delay before retry number `retry` (1 = before the second attempt).
    pub fn next_delay(&mut self, retry: u32, random: &mut dyn Random) -> Duration {
        let capped = self.backoff.delay(retry);
        let delay = match self.jitter {
            Jitter::None => capped,
            Jitter::Full => scale(capped, random.unit()),
            Jitter::Equal => {
                let half = capped / 2;
                half + scale(capped - half, random.unit())
            }
            Jitter::Decorrelated => {
                let base = self.backoff.base();
                let max = self.backoff.max();
                let upper = self.previous.saturating_mul(3).max(base);
                (base + scale(upper - base, random.unit())).min(max)
            }
        };
        self.previous = delay;
        delay
    }
}

/// `d * u` for `u` in `[0, 1)`, never above `d`, never panicking.
fn scale(d: Duration, u: f64) -> Duration {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Duration::try_from_secs_f64(d.as_secs_f64() * u)
        .unwrap_or(d)
        .min(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Sequence;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn spec_tables() {
        let fixed = Backoff::Fixed {
            delay: Duration::from_secs(2),
        };
        let linear = Backoff::Linear {
            base: Duration::from_secs(2),
            max: Duration::from_secs(10),
        };
        let exp = Backoff::Exponential {
            base: Duration::from_secs(2),
            multiplier: 2.0,
            max: Duration::from_secs(30),
        };
        let take = |b: &Backoff, k: u32| (1..=k).map(|n| b.delay(n)).collect::<Vec<_>>();
        assert_eq!(take(&Backoff::None, 3), secs(&[0, 0, 0]));
        assert_eq!(take(&fixed, 3), secs(&[2, 2, 2]));
        assert_eq!(take(&linear, 6), secs(&[2, 4, 6, 8, 10, 10]));
        assert_eq!(take(&exp, 5), secs(&[2, 4, 8, 16, 30]));
    }

    #[test]
    fn huge_retry_numbers_saturate() {
        let exp = Backoff::Exponential {
            base: Duration::MAX,
            multiplier: f64::MAX,
            max: Duration::MAX,
        };
        assert_eq!(exp.delay(u32::MAX), Duration::MAX);
        let lin = Backoff::Linear {
            base: Duration::MAX,
            max: Duration::from_secs(5),
        };
        assert_eq!(lin.delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn bad_multipliers_count_as_one_and_are_reported() {
        for m in [f64::NAN, -1.0, 0.5, f64::INFINITY] {
            let b = Backoff::Exponential {
                base: Duration::from_secs(1),
                multiplier: m,
                max: Duration::from_secs(9),
            };
            assert_eq!(b.delay(7), Duration::from_secs(1));
            let p = RetryPolicy::new(2).with_backoff(b);
            assert!(matches!(p.validate(), Err(PolicyError::Multiplier(_))));
        }
    }

    #[test]
    fn jitter_extremes() {
        let exp = RetryPolicy::new(5)
            .with_backoff(Backoff::Fixed {
                delay: Duration::from_secs(10),
            })
            .with_jitter(Jitter::Equal);
        let mut s = exp.schedule();
        assert_eq!(
            s.next_delay(1, &mut Sequence::new([0.0])),
            Duration::from_secs(5)
        );
        let d = s.next_delay(2, &mut Sequence::new([0.999_999]));
        assert!(d < Duration::from_secs(10) && d > Duration::from_millis(9_999));

        let full = exp.clone().with_jitter(Jitter::Full);
        assert_eq!(
            full.schedule().next_delay(1, &mut Sequence::new([0.0])),
            Duration::ZERO
        );
    }

    #[test]
    fn decorrelated_grows_from_previous_and_is_capped() {
        let p = RetryPolicy::new(10)
            .with_backoff(Backoff::Exponential {
                base: Duration::from_secs(1),
                multiplier: 2.0,
                max: Duration::from_secs(20),
            })
            .with_jitter(Jitter::Decorrelated);
        let mut s = p.schedule();
        // u = 1 always takes the upper bound 3 * previous: 3, 9, 20 (capped), 20.
        let mut top = Sequence::new([1.0]);
        let got: Vec<_> = (1..=4).map(|n| s.next_delay(n, &mut top)).collect();
        assert_eq!(got, secs(&[3, 9, 20, 20]));
    }

    #[test]
    fn validate_reports_nonsense() {
        assert_eq!(
            RetryPolicy::new(0).validate(),
            Err(PolicyError::ZeroAttempts)
        );
        assert_eq!(RetryPolicy::new(0).max_attempts(), 1);
        let p = RetryPolicy::new(3).with_backoff(Backoff::Linear {
            base: Duration::from_secs(5),
            max: Duration::from_secs(1),
        });
        assert!(matches!(
            p.validate(),
            Err(PolicyError::MaxBelowBase { .. })
        ));
        assert!(RetryPolicy::default().validate().is_ok());
    }
}
