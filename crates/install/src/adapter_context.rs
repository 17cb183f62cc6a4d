//! What every adapter command (`apt`, `npm`, `pip`, `fetch`) shares: the Runner it runs
//! under (policy, event subscribers, circuit breaker, mirror notices), and how a failed
//! operation is shown to the user. [`build_runner`] is the one place a runner with circuits
//! and mirror notices is built; the executor's steps use it too.

use std::path::Path;
use std::sync::Arc;

use em_exec::{Runner, ToolError};
use em_retry::{CircuitBreaker, FileStore, RetryBudget, RetryPolicy, Subscriber};

use crate::config::CircuitSettings;

use crate::events::{Events, Tone, Verbosity};

pub use crate::policy_name::PolicyName;

/// Where the retry budget's records live: `budget/`, next to the state directory's
/// `circuits/`.
pub fn budget_dir(circuits: &std::path::Path) -> std::path::PathBuf {
    circuits.with_file_name("budget")
}

/// The circuit breaker over the records in `circuits` (the state directory's
/// `circuits/`), with the configuration's threshold and cooldown.
pub fn circuit_breaker(circuits: &Path, settings: &CircuitSettings) -> Arc<CircuitBreaker> {
    Arc::new(
        CircuitBreaker::new(Arc::new(FileStore::new(circuits)))
            .with_threshold(settings.threshold)
            .with_cooldown(settings.cooldown),
    )
}

/// Every runner of ours is built here (an adapter command's and an install step's):
/// `policy` with the command's subscribers, circuit breaker, retry budget and tally; a
/// switch to a mirror is shown as a status line on `ui` and then handed to `noted`.
pub fn build_runner(
    policy: RetryPolicy,
    subscribers: &[Arc<dyn Subscriber>],
    circuit: Arc<CircuitBreaker>,
    budget: Option<Arc<RetryBudget>>,
    tally: Arc<em_exec::SourceTally>,
    ui: Arc<dyn Events>,
    noted: impl Fn(&str, &str, &str) + Send + Sync + 'static,
) -> Runner {
    Runner::new(policy)
        .subscribe_all(subscribers)
        .with_tally(tally)
        .with_circuit(circuit)
        .with_budget(budget)
        .on_mirror(Arc::new(move |from: &str, to: &str, why: &str| {
            ui.status(
                "Switching",
                Tone::Warn,
                &format!("from {from} to mirror {to} ({why})"),
            );
            noted(from, to, why);
        }))
}

/// The shared parts of an adapter command's run.
pub struct AdapterContext {
    /// Status lines.
    pub ui: Arc<dyn Events>,
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
        build_runner(
            policy,
            &self.subscribers,
            circuit_breaker(&self.circuits, &self.config.circuit),
            self.config.retry_budget.budget(&budget_dir(&self.circuits)),
            self.tally.clone(),
            self.ui.clone(),
            |_, _, _| {},
        )
        .with_echo(echo && self.ui.verbosity() > Verbosity::Quiet)
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
    use std::time::Duration;

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
