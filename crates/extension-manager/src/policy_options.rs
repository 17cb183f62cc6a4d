//! The retry policy flags shared by `retry` and the adapter commands, and their parsers.
//! Every parser names the accepted form, so `--delay 5x` tells the user what to write.

use std::time::Duration;

use em_retry::{BackoffKind, Jitter, PolicyError, PolicyOverride, RetryPolicy};

/// The policy flags. Unset flags keep the base policy's values (the defaults of the
/// command: for `retry`, 3 attempts, exponential from 1s, x2, max 30s, equal jitter).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PolicyOptions {
    /// Attempts in all, the first included (1 = no retry) [default: 3]
    #[arg(long, value_name = "N", value_parser = parse_attempts, help_heading = "Retry policy")]
    pub attempts: Option<u32>,
    /// How delays grow: none, fixed (--delay every time), linear (--delay times the retry
    /// number, up to --max), exponential (--delay times --multiplier per retry, up to --max)
    /// [default: exponential]
    #[arg(long, value_name = "KIND", value_parser = parse_backoff, help_heading = "Retry policy")]
    pub backoff: Option<BackoffKind>,
    /// The fixed delay, or the first delay of linear and exponential, e.g. 500ms, 2s [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Retry policy")]
    pub delay: Option<Duration>,
    /// The longest delay of linear and exponential [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Retry policy")]
    pub max: Option<Duration>,
    /// The growth factor of exponential, at least 1.0 [default: 2]
    #[arg(long, value_name = "FACTOR", value_parser = parse_multiplier, allow_negative_numbers = true, help_heading = "Retry policy")]
    pub multiplier: Option<f64>,
    /// Randomness added to each delay: none, full (uniform in [0, delay]), equal
    /// (delay/2 + uniform[0, delay/2]), decorrelated [default: equal]
    #[arg(long, value_name = "KIND", value_parser = parse_jitter, help_heading = "Retry policy")]
    pub jitter: Option<Jitter>,
    /// Limit of one attempt; the attempt is killed past it and counts as transient
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Retry policy")]
    pub timeout: Option<Duration>,
    /// Limit of the whole run: no attempt or wait starts that would end past it
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Retry policy")]
    pub deadline: Option<Duration>,
}

impl PolicyOptions {
    /// `base` with the flags that were given applied; an error names the flag at fault.
    pub fn apply(&self, base: &RetryPolicy) -> Result<RetryPolicy, String> {
        let overrides = PolicyOverride {
            attempts: self.attempts,
            backoff: self.backoff,
            delay: self.delay,
            max: self.max,
            multiplier: self.multiplier,
            jitter: self.jitter,
            timeout: self.timeout,
            deadline: self.deadline,
        };
        overrides.apply(base).map_err(|e| match e {
            PolicyError::MaxBelowBase { base, max } => format!(
                "--max ({}) is below --delay ({}); the delays would never grow",
                em_retry::fmt_duration(max),
                em_retry::fmt_duration(base)
            ),
            other => other.to_string(),
        })
    }
}

/// Parses `--backoff`.
fn parse_backoff(text: &str) -> Result<BackoffKind, String> {
    BackoffKind::parse(text.trim())
        .ok_or_else(|| format!("expected one of {}", BackoffKind::NAMES.join(", ")))
}

/// Parses `--jitter`.
fn parse_jitter(text: &str) -> Result<Jitter, String> {
    Jitter::parse(text.trim())
        .ok_or_else(|| format!("expected one of {}", Jitter::NAMES.join(", ")))
}

/// Parses `--attempts`: a whole number of at least 1.
pub fn parse_attempts(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1 (1 = run once, no retry)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of at least 1, e.g. 3".into()),
    }
}

/// Parses a humane duration: `500ms`, `2s`, `5m`, `1h 30m` ([`em_retry::parse_duration`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    em_retry::parse_duration(text).map_err(|hint| {
        if hint.starts_with("write ") {
            "expected a duration with a unit, e.g. 500ms, 2s, 5m or 1h30m".to_string()
        } else {
            format!("expected a duration with a unit: {hint}")
        }
    })
}

/// Parses `--multiplier`: a finite number of at least 1.0.
pub fn parse_multiplier(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(m) if m.is_finite() && m >= 1.0 => Ok(m),
        Ok(_) => Err("must be a number of at least 1.0, e.g. 2 or 1.5".into()),
        Err(_) => Err("expected a number of at least 1.0, e.g. 2 or 1.5".into()),
    }
}

/// A set of exit codes: `1,2,75` or ranges `1-5,75`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitCodes(Vec<(i32, i32)>);

impl ExitCodes {
    /// Whether `code` is in the set.
    pub fn contains(&self, code: i32) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }
}

/// Parses `--retry-on-exit` / `--stop-on-exit`.
pub fn parse_exit_codes(text: &str) -> Result<ExitCodes, String> {
    const FORM: &str =
        "expected exit codes 0-255 separated by commas, with ranges, e.g. 1,75 or 100-110";
    let mut ranges = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<i32>()
                .ok()
                .filter(|c| (0..=255).contains(c))
        };
        match (parse(lo), parse(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => ranges.push((lo, hi)),
            _ => return Err(FORM.into()),
        }
    }
    Ok(ExitCodes(ranges))
}

/// Parses a regular expression (`--retry-if-output`, `--stop-if-output`).
pub fn parse_regex(text: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(text).map_err(|e| format!("not a valid regular expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_retry::Backoff;

    #[test]
    fn defaults_are_the_base() {
        let p = PolicyOptions::default()
            .apply(&RetryPolicy::default())
            .expect("valid");
        assert_eq!(p, RetryPolicy::default());
    }

    #[test]
    fn flags_override_and_delay_feeds_every_kind() {
        let opts = PolicyOptions {
            attempts: Some(30),
            backoff: Some(BackoffKind::Fixed),
            delay: Some(Duration::from_secs(2)),
            ..PolicyOptions::default()
        };
        let p = opts.apply(&RetryPolicy::default()).expect("valid");
        assert_eq!(p.max_attempts(), 30);
        assert_eq!(
            p.backoff(),
            &Backoff::Fixed {
                delay: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn inconsistent_flags_name_the_flag() {
        let raised = PolicyOptions {
            delay: Some(Duration::from_secs(60)),
            ..PolicyOptions::default()
        };
        assert!(
            raised.apply(&RetryPolicy::default()).is_ok(),
            "the cap follows --delay"
        );
        let opts = PolicyOptions {
            delay: Some(Duration::from_secs(60)),
            max: Some(Duration::from_secs(30)),
            ..PolicyOptions::default()
        };
        let err = opts
            .apply(&RetryPolicy::default())
            .expect_err("max below delay");
        assert!(err.contains("--max (30s) is below --delay (1m)"), "{err}");
    }

    #[test]
    fn parsers_explain_the_accepted_form() {
        assert!(parse_duration("5x").expect_err("bad").contains("500ms"));
        assert!(
            parse_duration("5")
                .expect_err("bad")
                .contains("add a unit, e.g. \"5s\"")
        );
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_attempts("0").is_err());
        assert!(parse_multiplier("-1").is_err());
        assert!(parse_multiplier("NaN").is_err());
        let codes = parse_exit_codes("1, 75,100-110").expect("codes");
        assert!(codes.contains(1) && codes.contains(105) && !codes.contains(2));
        assert!(parse_exit_codes("1,x").is_err());
        assert!(parse_exit_codes("300").is_err());
    }
}
