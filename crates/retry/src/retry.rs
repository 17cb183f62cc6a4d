//! The retry loop: attempts, classification, repairs, sleeps, limits.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::budget::RetryBudget;
use crate::circuit::CircuitBreaker;
use crate::events::{Event, FailureClass, GiveUpReason, Operation, Subscriber, Wait};
use crate::policy::{DelaySchedule, RetryPolicy};
use crate::random::Random;

type RepairFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type RepairFn = Box<dyn FnOnce() -> RepairFuture + Send>;
type Classifier<E> = Box<dyn FnMut(&E) -> Decision + Send>;
type ProgressProbe = Box<dyn FnMut() -> bool + Send>;

/// How many attempts that made progress may run beyond the policy's attempts, unless
/// [`Retry::progress_limit`] says otherwise: the total-attempts cap of progress-aware
/// retries (the deadline bounds them too).
pub const DEFAULT_PROGRESS_LIMIT: u32 = 20;

/// What to do after a failed attempt. The classifier returns one for each error.
pub enum Decision {
    /// Try again after the policy's delay.
    Retry,
    /// Try again after `max(d, the policy's delay)`: the other side said when (Retry-After).
    RetryAfter(Duration),
    /// Run the repair, then try again: at once when the repair succeeded (it fixed the
    /// cause, so waiting would only waste time), after the policy's delay when it failed.
    Repair(Repair),
    /// Stop now: another attempt would fail the same way.
    Fail,
    /// Stop now, but not because the request is wrong: this source cannot serve it now
    /// (a repair that did not help, a mirror mid-sync). The operation ends as
    /// [`GiveUpReason::SourceExhausted`]: transient for an outer layer (another source, a
    /// later run), and a failure for the source's circuit.
    GiveUp(String),
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Retry => f.write_str("Retry"),
            Decision::RetryAfter(d) => write!(f, "RetryAfter({d:?})"),
            Decision::Repair(r) => write!(f, "Repair({:?})", r.name),
            Decision::Fail => f.write_str("Fail"),
            Decision::GiveUp(why) => write!(f, "GiveUp({why:?})"),
        }
    }
}

/// A named action that puts things right between two attempts (e.g. `dpkg --configure -a`).
///
/// A repair that fails is reported as an event, and the next attempt still runs.
pub struct Repair {
    name: String,
    action: RepairFn,
}

impl Repair {
    /// A repair called `name` that runs `action`.
    pub fn new<F, Fut>(name: impl Into<String>, action: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Repair {
            name: name.into(),
            action: Box::new(move || Box::pin(action())),
        }
    }

    /// The repair's name, as events show it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repair").field("name", &self.name).finish()
    }
}

/// What an attempt knows about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// The policy's attempts in all.
    pub max_attempts: u32,
    /// The time this attempt has before it is cancelled: the per-attempt timeout, shortened
    /// to what is left of the deadline. An operation that runs a tool can pass it on.
    pub timeout: Option<Duration>,
}

impl Attempt {
    /// Whether this is the last attempt the policy allows.
    pub fn is_last(&self) -> bool {
        self.number >= self.max_attempts
    }
}

/// The last failure of an operation that gave up.
#[derive(Debug)]
pub enum Failure<E> {
    /// The operation returned this error.
    Error(E),
    /// The attempt ran past this timeout and was cancelled.
    TimedOut(Duration),
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => e.fmt(f),
            Failure::TimedOut(d) => write!(f, "timed out after {}", crate::fmt_duration(*d)),
        }
    }
}

/// An operation that did not succeed under its policy.
#[derive(Debug)]
pub struct RetryError<E> {
    reason: GiveUpReason,
    attempts: u32,
    last: Option<Failure<E>>,
    message: String,
}

impl<E> RetryError<E> {
    /// Why it stopped.
    pub fn reason(&self) -> &GiveUpReason {
        &self.reason
    }

    /// Attempts made (0 when an open circuit or the deadline prevented the first).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The last failure, if an attempt was made.
    pub fn last(&self) -> Option<&Failure<E>> {
        self.last.as_ref()
    }

    /// The last error the operation returned, unless the last attempt timed out.
    pub fn last_error(&self) -> Option<&E> {
        match &self.last {
            Some(Failure::Error(e)) => Some(e),
            _ => None,
        }
    }

    /// Takes the last failure out.
    pub fn into_last(self) -> Option<Failure<E>> {
        self.last
    }

    /// Whether the last attempt was cancelled by its timeout.
    pub fn timed_out(&self) -> bool {
        matches!(self.last, Some(Failure::TimedOut(_)))
    }

    /// Whether it stopped on failures worth retrying (exhausted, deadline, open circuit):
    /// the case in which an outer layer may try again later (EX_TEMPFAIL).
    pub fn is_transient(&self) -> bool {
        self.reason.is_transient()
    }
}

impl<E> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: fmt::Debug> std::error::Error for RetryError<E> {}

/// Runs an operation under a [`RetryPolicy`].
///
/// Time is tokio's clock, so tests run with `#[tokio::test(start_paused = true)]` and
/// never sleep for real.
///
/// ```
/// use std::time::Duration;
/// use em_retry::{Backoff, Decision, Retry, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let policy = RetryPolicy::new(5).with_backoff(Backoff::Fixed { delay: Duration::from_millis(1) });
/// let mut calls = 0;
/// let result: Result<u32, _> = Retry::new(policy)
///     .classify(|e: &String| if e.contains("404") { Decision::Fail } else { Decision::Retry })
///     .run(|attempt| {
///         calls += 1;
///         async move {
///             if attempt.number < 3 { Err("503 Service Unavailable".to_string()) } else { Ok(attempt.number) }
///         }
///     })
///     .await;
/// assert_eq!(result.unwrap(), 3);
/// assert_eq!(calls, 3);
/// # }
/// ```
pub struct Retry<E> {
    policy: RetryPolicy,
    operation: Arc<Operation>,
    classify: Classifier<E>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    random: Box<dyn Random>,
    circuit: Option<(Arc<CircuitBreaker>, String)>,
    budget: Option<(Arc<RetryBudget>, String)>,
    progress: Option<ProgressProbe>,
    progress_limit: u32,
}

impl<E: fmt::Display> Retry<E> {
    /// Runs under `policy`; every error retries until a classifier says otherwise.
    pub fn new(policy: RetryPolicy) -> Self {
        Retry {
            policy,
            operation: Arc::new(Operation::default()),
            classify: Box::new(|_| Decision::Retry),
            subscribers: Vec::new(),
            random: Box::new(fastrand::Rng::new()),
            circuit: None,
            budget: None,
            progress: None,
            progress_limit: DEFAULT_PROGRESS_LIMIT,
        }
    }

    /// Makes the retries progress-aware: after each failed attempt whose failure is worth
    /// a retry (transient, Retry-After, timed out), `probe` says whether that attempt made
    /// progress (e.g. a download's partial file grew, a package got fetched). Such an
    /// attempt does not use up one of the policy's attempts, the next one starts at once
    /// (after a server's Retry-After, if it gave one), and the backoff schedule starts
    /// over. At most [`Retry::progress_limit`] attempts are added this way, and the
    /// deadline still holds.
    pub fn progress(mut self, probe: impl FnMut() -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(probe));
        self
    }

    /// At most `limit` attempts beyond the policy's for attempts that made progress
    /// (default [`DEFAULT_PROGRESS_LIMIT`]; 0 turns progress-awareness off).
    pub fn progress_limit(mut self, limit: u32) -> Self {
        self.progress_limit = limit;
        self
    }

    /// Names the operation in events.
    pub fn operation(mut self, operation: Operation) -> Self {
        self.operation = Arc::new(operation);
        self
    }

    /// Sets the classifier: error -> [`Decision`]. It may keep state (e.g. "repair once,
    /// then fail").
    pub fn classify(mut self, classifier: impl FnMut(&E) -> Decision + Send + 'static) -> Self {
        self.classify = Box::new(classifier);
        self
    }

    /// Adds a subscriber to this operation's events.
    pub fn subscribe(mut self, subscriber: Arc<dyn Subscriber>) -> Self {
        self.subscribers.push(subscriber);
        self
    }

    /// Adds several subscribers.
    pub fn subscribe_all(mut self, subscribers: &[Arc<dyn Subscriber>]) -> Self {
        self.subscribers.extend(subscribers.iter().cloned());
        self
    }

    /// Sets the jitter's random source.
    pub fn random(mut self, random: impl Random + 'static) -> Self {
        self.random = Box::new(random);
        self
    }

    /// Seeds the jitter's random source, for repeatable runs.
    pub fn seed(self, seed: u64) -> Self {
        self.random(fastrand::Rng::with_seed(seed))
    }

    /// Guards the operation with `breaker` under `key` (e.g. a registry host): when the
    /// circuit is open, nothing is attempted; an exhausted operation counts as a failure.
    pub fn circuit(mut self, breaker: Arc<CircuitBreaker>, key: impl Into<String>) -> Self {
        self.circuit = Some((breaker, key.into()));
        self
    }

    /// Spends `budget`'s tokens of `key` (e.g. a registry host) on this operation's retries:
    /// the first attempt deposits, each retry withdraws, and a retry without a token is not
    /// made: the operation gives up as [`GiveUpReason::SourceExhausted`] ("retry budget
    /// exhausted for KEY"). Repairs that worked and attempts that made progress retry at
    /// once and are counted like any retry.
    pub fn budget(mut self, budget: Arc<RetryBudget>, key: impl Into<String>) -> Self {
        self.budget = Some((budget, key.into()));
        self
    }

    fn emit(&self, event: Event) {
        for s in &self.subscribers {
            s.on_event(&event);
        }
    }

    fn give_up(
        &self,
        reason: GiveUpReason,
        attempts: u32,
        last: Option<Failure<E>>,
        start: Instant,
    ) -> RetryError<E> {
        let last_error = match &last {
            Some(f) => f.to_string(),
            None => String::new(),
        };
        if let Some((breaker, key)) = &self.circuit {
            match reason {
                // A run that never reached the host says nothing about it.
                GiveUpReason::Exhausted
                | GiveUpReason::Deadline
                | GiveUpReason::SourceExhausted(_)
                    if attempts > 0 =>
                {
                    breaker.record_failure(key, &last_error)
                }
                GiveUpReason::Exhausted
                | GiveUpReason::Deadline
                | GiveUpReason::SourceExhausted(_) => {}
                // The other side answered: it is up, whatever it said.
                GiveUpReason::Permanent => breaker.record_success(key),
                GiveUpReason::CircuitOpen(_) => {}
            }
        }
        self.emit(Event::GaveUp {
            operation: self.operation.clone(),
            attempts,
            reason: reason.clone(),
            last_error: last_error.clone(),
            elapsed: start.elapsed(),
        });
        let message = match (&reason, last_error.is_empty()) {
            (GiveUpReason::CircuitOpen(_), _) | (_, true) => format!("{}", reason),
            (_, false) => format!(
                "{last_error} ({reason} after {attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            ),
        };
        RetryError {
            reason,
            attempts,
            last,
            message,
        }
    }

    /// Runs `op` until it succeeds, fails permanently, or the policy runs out.
    ///
    /// `op` is called once per attempt; the future it returns is dropped (cancelled) when
    /// the attempt's timeout passes, so it must clean up on drop (e.g. kill its process).
    pub async fn run<T, F, Fut>(mut self, mut op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut run = self.start_run()?;
        loop {
            let attempt = self.next_attempt(&mut run)?;
            let began = Instant::now();
            let failure = match run_attempt(&mut op, attempt).await {
                Ok(value) => {
                    self.record_success(&run);
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let (decision, progressed) = self.judge_failure(failure, began, &mut run);
            if let Some(reason) = self.why_stop(&decision, &run) {
                return Err(self.stop(reason, run.number, &mut run));
            }
            let wait = self.wait_before_next(decision, progressed, &mut run).await;
            self.sleep_before_next(wait, &mut run).await?;
        }
    }

    /// Whether the run may start at all (not while its circuit is open); a run that starts
    /// deposits in its budget and gets its state.
    fn start_run(&self) -> Result<RunState<E>, RetryError<E>> {
        let start = Instant::now();
        let deadline_at = self.policy.deadline().and_then(|d| start.checked_add(d));
        if let Some((breaker, key)) = &self.circuit
            && let Err(open) = breaker.acquire(key)
        {
            let key = key.clone();
            let mut err = self.give_up(GiveUpReason::CircuitOpen(key), 0, None, start);
            err.message = open.to_string();
            return Err(err);
        }
        if let Some((budget, key)) = &self.budget {
            budget.record_first_attempt(key);
        }
        Ok(RunState {
            start,
            deadline_at,
            allowed: self.policy.max_attempts(),
            free_left: self.progress_limit,
            schedule: self.policy.schedule(),
            backoff_retry: 0,
            number: 1,
            last: None,
        })
    }

    /// The next attempt with the time it has (its timeout, shortened to what is left of
    /// the deadline), announced to subscribers; a deadline already passed ends the run.
    fn next_attempt(&self, run: &mut RunState<E>) -> Result<Attempt, RetryError<E>> {
        let remaining = run
            .deadline_at
            .map(|d| d.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) {
            return Err(self.stop(GiveUpReason::Deadline, run.number - 1, run));
        }
        let timeout = match (self.policy.timeout(), remaining) {
            (Some(t), Some(r)) => Some(t.min(r)),
            (t, r) => t.or(r),
        };
        let attempt = Attempt {
            number: run.number,
            max_attempts: run.allowed,
            timeout,
        };
        self.emit(Event::AttemptStarted {
            operation: self.operation.clone(),
            attempt: run.number,
            max_attempts: run.allowed,
        });
        Ok(attempt)
    }

    /// Tells the circuit (the host is up), the budget (a retry paid off) and subscribers
    /// that the attempt succeeded.
    fn record_success(&self, run: &RunState<E>) {
        if let Some((breaker, key)) = &self.circuit {
            breaker.record_success(key);
        }
        if let Some((budget, key)) = &self.budget
            && run.number > 1
        {
            budget.record_retried_success(key);
        }
        self.emit(Event::Succeeded {
            operation: self.operation.clone(),
            attempt: run.number,
            elapsed: run.start.elapsed(),
        });
    }

    /// What a failed attempt means: its decision, and whether it made progress (which
    /// earns it an attempt); tells subscribers, and keeps it as the last failure.
    fn judge_failure(
        &mut self,
        failure: Failure<E>,
        began: Instant,
        run: &mut RunState<E>,
    ) -> (Decision, bool) {
        let (class, decision) = self.classify_failure(&failure);
        // Progress only matters for a failure that would be retried as it is.
        let progressed = matches!(decision, Decision::Retry | Decision::RetryAfter(_))
            && run.free_left > 0
            && self.progress.as_mut().is_some_and(|probe| probe());
        // The failure is told against the attempts allowed when it began ("1/3"); the
        // one it earned shows from the next attempt on ("2/4").
        self.emit(Event::AttemptFailed {
            operation: self.operation.clone(),
            attempt: run.number,
            max_attempts: run.allowed,
            class,
            reason: failure.to_string(),
            duration: began.elapsed(),
        });
        if progressed {
            run.free_left -= 1;
            run.allowed = run.allowed.saturating_add(1);
        }
        run.last = Some(failure);
        (decision, progressed)
    }

    /// The failure's class and what to do about it: a timed-out attempt is retried, an
    /// error gets the classifier's decision.
    fn classify_failure(&mut self, failure: &Failure<E>) -> (FailureClass, Decision) {
        match failure {
            Failure::TimedOut(t) => (FailureClass::TimedOut(*t), Decision::Retry),
            Failure::Error(e) => {
                let decision = (self.classify)(e);
                let class = match &decision {
                    Decision::Retry => FailureClass::Transient,
                    Decision::RetryAfter(d) => FailureClass::RetryAfter(*d),
                    Decision::Repair(r) => FailureClass::Repairable(r.name.clone()),
                    Decision::Fail => FailureClass::Permanent,
                    Decision::GiveUp(why) => FailureClass::SourceExhausted(why.clone()),
                };
                (class, decision)
            }
        }
    }

    /// Why the run ends after this failure, if it does: the decision says stop, the
    /// attempts allowed are used up, or the budget has no token for a retry (asking
    /// withdraws one).
    fn why_stop(&self, decision: &Decision, run: &RunState<E>) -> Option<GiveUpReason> {
        match decision {
            Decision::Fail => return Some(GiveUpReason::Permanent),
            Decision::GiveUp(why) => return Some(GiveUpReason::SourceExhausted(why.clone())),
            Decision::Retry | Decision::RetryAfter(_) | Decision::Repair(_) => {}
        }
        if run.number >= run.allowed {
            return Some(GiveUpReason::Exhausted);
        }
        if let Some((budget, key)) = &self.budget
            && let Err(dry) = budget.try_retry(key)
        {
            return Some(GiveUpReason::SourceExhausted(dry.to_string()));
        }
        None
    }

    /// How long to wait before the next attempt, and why: no backoff after a repair that
    /// worked or an attempt that made progress (a server's Retry-After still holds), the
    /// backoff otherwise. Runs the decision's repair, if it has one.
    async fn wait_before_next(
        &mut self,
        decision: Decision,
        progressed: bool,
        run: &mut RunState<E>,
    ) -> (Duration, Wait) {
        // A wait of its own (no backoff) after a repair that worked or an attempt that
        // made progress; `floor` is a server's Retry-After.
        let (floor, own_wait) = match decision {
            Decision::Repair(repair) => {
                let repaired = self.repair(repair, run.deadline_at).await;
                (Duration::ZERO, repaired.then_some(Wait::Repaired))
            }
            Decision::RetryAfter(d) => (d, progressed.then_some(Wait::Progressed)),
            Decision::Retry | Decision::Fail | Decision::GiveUp(_) => {
                (Duration::ZERO, progressed.then_some(Wait::Progressed))
            }
        };
        let wait = match own_wait {
            Some(wait) => (floor, wait),
            None => {
                run.backoff_retry += 1;
                let backoff = run
                    .schedule
                    .next_delay(run.backoff_retry, self.random.as_mut());
                (backoff.max(floor), Wait::Backoff)
            }
        };
        if progressed {
            run.backoff_retry = 0;
            run.schedule = self.policy.schedule();
        }
        wait
    }

    /// Runs `repair`, stopped at the deadline, and tells subscribers how it went; whether
    /// it worked.
    async fn repair(&mut self, repair: Repair, deadline_at: Option<Instant>) -> bool {
        let began = Instant::now();
        let left = deadline_at.map(|d| d.saturating_duration_since(began));
        let outcome = match left {
            Some(left) => tokio::time::timeout(left, (repair.action)())
                .await
                .unwrap_or_else(|_| Err("stopped at the deadline".to_string())),
            None => (repair.action)().await,
        };
        let repaired = outcome.is_ok();
        self.emit(Event::Repaired {
            operation: self.operation.clone(),
            repair: repair.name,
            outcome,
            duration: began.elapsed(),
        });
        repaired
    }

    /// Sleeps `delay` before the next attempt, announced to subscribers; a next attempt
    /// that would wake at or past the deadline ends the run instead.
    async fn sleep_before_next(
        &mut self,
        (delay, why): (Duration, Wait),
        run: &mut RunState<E>,
    ) -> Result<(), RetryError<E>> {
        if let Some(deadline_at) = run.deadline_at {
            let wakes = Instant::now().checked_add(delay);
            if wakes.is_none_or(|w| w >= deadline_at) {
                return Err(self.stop(GiveUpReason::Deadline, run.number, run));
            }
        }
        run.number += 1;
        self.emit(Event::Sleeping {
            operation: self.operation.clone(),
            next_attempt: run.number,
            max_attempts: run.allowed,
            delay,
            why,
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// Ends the run as `reason` after `attempts` attempts, with its last failure.
    fn stop(&self, reason: GiveUpReason, attempts: u32, run: &mut RunState<E>) -> RetryError<E> {
        self.give_up(reason, attempts, run.last.take(), run.start)
    }

    /// [`Retry::run`] for code without a tokio runtime: runs on a private current-thread
    /// runtime. A synchronous operation can be passed as `|a| std::future::ready(f(a))`;
    /// its timeout then cannot interrupt it, since nothing awaits inside.
    ///
    /// Panics if called from inside a tokio runtime (use [`Retry::run`] there).
    pub fn run_blocking<T, F, Fut>(self, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect(
                "a current-thread runtime with only the timer needs no OS resource that can fail",
            );
        runtime.block_on(self.run(op))
    }
}

/// Where one run of the retry loop stands between attempts.
struct RunState<E> {
    start: Instant,
    deadline_at: Option<Instant>,
    /// The attempts allowed: the policy's, grown by one for each attempt that made
    /// progress (up to the limit).
    allowed: u32,
    /// How many more attempts progress may still add.
    free_left: u32,
    schedule: DelaySchedule,
    /// Retries since the backoff schedule last started (it starts over after progress).
    backoff_retry: u32,
    /// The current attempt's number, 1-based.
    number: u32,
    last: Option<Failure<E>>,
}

/// Runs one attempt of `op`; its future is dropped (cancelled) when the attempt's timeout
/// passes.
async fn run_attempt<T, E, F, Fut>(op: &mut F, attempt: Attempt) -> Result<T, Failure<E>>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match attempt.timeout {
        Some(t) => match tokio::time::timeout(t, op(attempt)).await {
            Ok(result) => result.map_err(Failure::Error),
            Err(_) => Err(Failure::TimedOut(t)),
        },
        None => op(attempt).await.map_err(Failure::Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The loop's awaits sit in methods taking `&mut self`, so the run future stays `Send`
    /// (a `&self` held across an await would need `Retry: Sync`, which it is not).
    #[test]
    fn the_run_future_can_be_spawned() {
        let run = Retry::<String>::new(RetryPolicy::new(2))
            .classify(|_| Decision::Repair(Repair::new("fix", || async { Ok(()) })))
            .run(|_| async { Err::<(), _>("no".to_string()) });
        assert_send(&run);
    }
}
