//! The kinds of operation with a retry policy of their own, and their built-in policies.
//! A module of its own so that the configuration ([`crate::config`]) and the adapter
//! context ([`crate::adapter_context`]), which reads the configuration, both use it
//! without importing each other.

use std::time::Duration;

use em_retry::{Backoff, Jitter, RetryPolicy};

/// The kinds of operation with a retry policy of their own: the `[policy.NAME]` tables of
/// the configuration, the defaults of the adapter commands and of manifest steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyName {
    /// apt-get install, update, remove.
    Apt,
    /// npm global installs.
    Npm,
    /// pip installs.
    Pip,
    /// pipx, cargo install, gem and go install (`pipx`/`cargo`/`gem`/`go` steps).
    Lang,
    /// curl and wget downloads (`fetch`, manifest `download` steps, repository keys).
    Download,
    /// A manifest's `run` snippets.
    Run,
}

impl PolicyName {
    /// Every one, in the order the documentation lists them.
    pub const ALL: [PolicyName; 6] = [
        PolicyName::Apt,
        PolicyName::Npm,
        PolicyName::Pip,
        PolicyName::Lang,
        PolicyName::Download,
        PolicyName::Run,
    ];

    /// The name in `[policy.NAME]`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Apt => "apt",
            PolicyName::Npm => "npm",
            PolicyName::Pip => "pip",
            PolicyName::Lang => "lang",
            PolicyName::Download => "download",
            PolicyName::Run => "run",
        }
    }

    /// The one called `name`.
    pub fn parse(name: &str) -> Option<PolicyName> {
        PolicyName::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The built-in policy (SPEC 6: each adapter command takes the policy options of
    /// `retry`; unset ones come from the configuration, then from here).
    pub fn default_policy(self) -> RetryPolicy {
        let base = RetryPolicy::new(4)
            .with_backoff(Backoff::Exponential {
                base: Duration::from_secs(2),
                multiplier: 2.0,
                max: Duration::from_secs(60),
            })
            .with_jitter(Jitter::Equal);
        match self {
            // Installs can be long (maintainer scripts, native builds): a generous bound
            // that still ends a hung tool.
            // cargo and go build from source: as long as a native pip build.
            PolicyName::Apt | PolicyName::Pip | PolicyName::Lang => {
                base.with_timeout(Duration::from_secs(30 * 60))
            }
            // npm gives up on an unanswered connect only after ~130 s: bound each attempt.
            PolicyName::Npm => base.with_timeout(Duration::from_secs(10 * 60)),
            PolicyName::Download => base.with_timeout(Duration::from_secs(15 * 60)),
            // A snippet need not be idempotent: one attempt unless the step asks for more.
            PolicyName::Run => RetryPolicy::once().with_timeout(Duration::from_secs(15 * 60)),
        }
    }
}
