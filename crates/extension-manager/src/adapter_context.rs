//! What every adapter command (`apt`, `npm`, `pip`, `fetch`) shares: the Runner it runs
//! under (policy, event subscribers, circuit breaker, mirror notices), and how a failed
//! operation is shown to the user.

use std::sync::Arc;
use std::time::Duration;

use em_exec::{Runner, ToolError};
use em_retry::{Backoff, CircuitBreaker, FileStore, Jitter, RetryPolicy, Subscriber};

use crate::output::{Tone, Ui, Verbosity};

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

/// Where the retry budget's records live: `budget/`, next to the state directory's
/// `circuits/`.
pub fn budget_dir(circuits: &std::path::Path) -> std::path::PathBuf {
    circuits.with_file_name("budget")
}

/// The shared parts of an adapter command's run.
pub struct AdapterContext {
    /// Status lines.
    pub ui: Arc<Ui>,
    /// Event subscribers (status lines, metrics, JSON logs).
    pub subscribers: Vec<Arc<dyn Subscriber>>,
    /// Where circuit records live.
    pub circuits: std::path::PathBuf,
    /// The configuration: default policies, mirrors and registries per adapter.
    pub config: crate::config::Config,
    /// What each registry or host did over the run (the CI step summary).
    pub tally: Arc<em_exec::SourceTally>,
}

impl AdapterContext {
    /// The policy of `adapter`'s operations before command-line flags: the configuration's.
    pub fn base_policy(&self, adapter: PolicyName) -> RetryPolicy {
        self.config.policy(adapter)
    }

    /// The mirrors of `adapter`: the command line's first, then the configuration's.
    pub fn mirrors(&self, adapter: &str, from_flags: &[String]) -> Vec<String> {
        let mut all = from_flags.to_vec();
        for m in self.config.mirrors.of(adapter) {
            if !all.contains(m) {
                all.push(m.clone());
            }
        }
        all
    }

    /// A runner under `policy`; with `echo`, the tool's output is copied to stderr as it
    /// arrives (unless -q). Without it the output is kept, and its tail shown on failure.
    pub fn runner(&self, policy: RetryPolicy, echo: bool) -> Runner {
        let ui = self.ui.clone();
        let breaker = CircuitBreaker::new(Arc::new(FileStore::new(&self.circuits)))
            .with_threshold(self.config.circuit.threshold)
            .with_cooldown(self.config.circuit.cooldown);
        Runner::new(policy)
            .subscribe_all(&self.subscribers)
            .with_tally(self.tally.clone())
            .with_circuit(Arc::new(breaker))
            .with_budget(self.config.retry_budget.budget(&budget_dir(&self.circuits)))
            .with_echo(echo && self.ui.verbosity() > Verbosity::Quiet)
            .on_mirror(Arc::new(move |from: &str, to: &str, why: &str| {
                ui.status(
                    "Switching",
                    Tone::Warn,
                    &format!("from {from} to mirror {to} ({why})"),
                )
            }))
    }

    /// Shows a failed operation: what failed, why, the tool's last lines (unless they were
    /// `echoed` as they came), a hint; returns its exit code (1 permanent, 75 exhausted).
    pub fn report(&self, error: &ToolError, echoed: bool) -> u8 {
        let mut message = format!("{}: {}", error.operation, error.reason);
        if let Some(last) = &error.last {
            message.push_str(&format!("\n  command: {}", last.command));
            let tail = last.tail(5);
            let shown = echoed && self.ui.verbosity() > Verbosity::Quiet;
            if !tail.is_empty() && !shown {
                message.push_str("\n  last output:");
                for line in tail {
                    message.push_str(&format!("\n    {line}"));
                }
            }
        }
        let hint = error.hint.clone().or_else(|| match error.exit_code() {
            75 => Some("the failures were transient: try again later, or add a mirror".to_string()),
            _ => None,
        });
        self.ui.error(&message, hint.as_deref());
        error.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_steps_get_one_attempt_and_the_tools_four() {
        assert_eq!(PolicyName::Run.default_policy().max_attempts(), 1);
        assert_eq!(
            PolicyName::Run.default_policy().timeout(),
            Some(Duration::from_secs(15 * 60))
        );
        for name in PolicyName::ALL {
            assert_eq!(PolicyName::parse(name.as_str()), Some(name));
            if name != PolicyName::Run {
                assert_eq!(name.default_policy().max_attempts(), 4, "{name:?}");
            }
        }
    }
}
