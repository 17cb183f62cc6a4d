//! The contract every adapter keeps: build a command, run it, read its failure, repair.
//!
//! An adapter (apt, npm, pip, curl, wget) implements [`Adapter`]: it classifies a
//! [`ToolFailure`] into a [`Verdict`] and knows how to run its repairs. [`Runner`] drives
//! it under an `em_retry` policy: it runs the command, turns the verdict into a retry
//! decision, runs repairs between attempts (each kind of repair at most
//! [`Adapter::repair_limit`] times per operation: a repair that did not help becomes a
//! permanent failure), and walks a list of mirrors when a source is exhausted.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_retry::{
    CircuitBreaker, Decision, Failure, GiveUpReason, Operation, Repair, Retry, RetryPolicy,
    Subscriber,
};

use crate::{Cmd, ExecError, LineSink, Output, OutputMode};

/// The longest line [`ToolFailure::tail`] quotes, in characters.
pub const TAIL_LINE: usize = 500;

/// A failed run of a tool: what ran, how it ended, what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolFailure {
    /// The command line, as a user would retype it (URL userinfo redacted).
    pub command: String,
    /// The exit code (128 + signal when killed).
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl ToolFailure {
    /// A failure of `command` with `code` and the two streams.
    pub fn new(
        command: impl Into<String>,
        code: i32,
        stdout: impl Into<String>,
        stderr: impl Into<String>,
    ) -> Self {
        ToolFailure {
            command: command.into(),
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// From a finished run.
    pub fn from_output(command: &Cmd, output: &Output) -> Self {
        ToolFailure::new(
            crate::redact_urls(&command.command_line()),
            output.code(),
            output.stdout_text(),
            output.stderr_text(),
        )
    }

    /// Stderr then stdout, the way classification reads them.
    pub fn text(&self) -> String {
        let mut text = self.stderr.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.stdout);
        text
    }

    /// The last `n` non-empty lines of the output, for an error message: each made
    /// [`printable`](crate::printable) (what a tool or a server printed must not steer the
    /// terminal or the CI log it is quoted into) and cut at [`TAIL_LINE`] characters.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let text = self.text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| {
                let line = crate::printable(l.trim_end_matches('\r'));
                match line.char_indices().nth(TAIL_LINE) {
                    Some((cut, _)) => format!("{} ...", &line[..cut]),
                    None => line.into_owned(),
                }
            })
            .collect()
    }
}

/// How an adapter reads a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<R> {
    /// Worth another attempt; the reason as a user should read it.
    Transient(String),
    /// Worth another attempt after at least this long (a server's Retry-After).
    RetryAfter(String, Duration),
    /// Worth another attempt after this repair.
    Repairable(R, String),
    /// Another attempt would fail the same way; the reason, and what to do about it.
    Permanent(String, Option<String>),
}

impl<R> Verdict<R> {
    /// The reason text.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Transient(r)
            | Verdict::RetryAfter(r, _)
            | Verdict::Repairable(_, r)
            | Verdict::Permanent(r, _) => r,
        }
    }

    /// `transient`, `repairable` or `permanent`, as the fixtures' `expect:` field says.
    pub fn class(&self) -> &'static str {
        match self {
            Verdict::Transient(_) | Verdict::RetryAfter(..) => "transient",
            Verdict::Repairable(..) => "repairable",
            Verdict::Permanent(..) => "permanent",
        }
    }
}

/// A tool's knowledge: how its failures read, and how to repair them.
pub trait Adapter: Send + Sync + 'static {
    /// A repair this tool knows. `Display` is its name in logs (`dpkg --configure -a`);
    /// `Eq + Hash` lets the runner count how often each ran.
    type Repair: Clone + Eq + std::hash::Hash + fmt::Display + Send + Sync + 'static;

    /// The adapter's name, the `adapter` label of metrics: `apt`, `npm`, ...
    fn name(&self) -> &'static str;

    /// Reads a failed run.
    fn classify(&self, failure: &ToolFailure) -> Verdict<Self::Repair>;

    /// Runs a repair.
    fn repair(&self, repair: Self::Repair) -> impl Future<Output = Result<(), String>> + Send;

    /// How often a repair may run within one operation before the failure it answers
    /// counts as permanent ("the repair did not help"). Default 1.
    fn repair_limit(&self, _repair: &Self::Repair) -> u32 {
        1
    }

    /// Whether a failure that its repair did not fix ends the whole operation (`true`,
    /// the default) or only this source, so that the next mirror is tried (`false`: e.g.
    /// apt's Hash Sum mismatch after the lists were cleared is a mirror mid-sync).
    fn exhausted_repair_is_permanent(&self, _repair: &Self::Repair) -> bool {
        true
    }
}

/// Why an adapter operation failed, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolErrorKind {
    /// A permanent failure (exit 1).
    Permanent,
    /// Transient failures until the policy ran out, on every source (exit 75).
    Exhausted,
    /// The circuit of every source was open (exit 75).
    CircuitOpen,
    /// The tool could not be run at all (exit 1).
    NotRunnable,
}

/// An adapter operation that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolError {
    /// What kind of end.
    pub kind: ToolErrorKind,
    /// The operation, e.g. `apt install python3`.
    pub operation: String,
    /// The reason, as a user should read it.
    pub reason: String,
    /// What to do about it, when we know.
    pub hint: Option<String>,
    /// Attempts made in all (over every source).
    pub attempts: u32,
    /// The last failed run, if any ran.
    pub last: Option<ToolFailure>,
    /// Whether the last attempt timed out.
    pub timed_out: bool,
}

impl ToolError {
    /// A permanent error before anything ran (e.g. the tool is missing, a bad argument).
    pub fn permanent(
        operation: impl Into<String>,
        reason: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        ToolError {
            kind: ToolErrorKind::Permanent,
            operation: operation.into(),
            reason: reason.into(),
            hint,
            attempts: 0,
            last: None,
            timed_out: false,
        }
    }

    /// The exit code of SPEC section 6: 1 permanent, 75 retries exhausted (EX_TEMPFAIL).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ToolErrorKind::Exhausted | ToolErrorKind::CircuitOpen => 75,
            ToolErrorKind::Permanent | ToolErrorKind::NotRunnable => 1,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.reason)
    }
}

impl std::error::Error for ToolError {}

/// The error of one attempt, inside the retry loop: read by the adapter as soon as the
/// tool exits, so that events show the adapter's reason ("503 from host"), not an exit code.
#[derive(Debug)]
enum AttemptError<R> {
    NotRunnable(ExecError),
    Failed(ToolFailure, Verdict<R>),
}

impl<R> fmt::Display for AttemptError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::NotRunnable(e) => e.fmt(f),
            AttemptError::Failed(_, verdict) => f.write_str(verdict.reason()),
        }
    }
}

/// Called when a source is given up and the next one is tried: (from, to, why).
pub type MirrorNotice = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// What happened on one source (a registry or host, as circuits key it) over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Operations run against it.
    pub operations: u32,
    /// Attempts made.
    pub attempts: u32,
    /// Retries: waits before another attempt.
    pub retries: u32,
    /// Repairs run between attempts.
    pub repairs: u32,
    /// Operations that gave up on it (permanent, exhausted, circuit open).
    pub gave_up: u32,
    /// Whether its circuit was open after the last operation; `None` when no circuit
    /// guards it.
    pub circuit_open: Option<bool>,
}

/// Counts, per source, what the operations of a run did there: for "retries per
/// registry" summaries (a CI job's step summary). Shared by every runner of a run
/// ([`Runner::with_tally`]); an operation without a source counts under its component
/// (`apt`, `npm`, ...).
#[derive(Debug, Default)]
pub struct SourceTally(Mutex<std::collections::BTreeMap<String, SourceCounts>>);

impl SourceTally {
    fn set_circuit_open(&self, source: &str, open: bool) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(source.to_string()).or_default().circuit_open = Some(open);
    }

    /// Every source seen, by name.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, SourceCounts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn subscriber(self: &Arc<Self>, source: String) -> Arc<dyn Subscriber> {
        let tally = self.clone();
        Arc::new(move |event: &em_retry::Event| {
            let mut map = tally.0.lock().unwrap_or_else(|p| p.into_inner());
            let counts = map.entry(source.clone()).or_default();
            match event {
                em_retry::Event::AttemptStarted { attempt, .. } => {
                    counts.attempts += 1;
                    if *attempt == 1 {
                        counts.operations += 1;
                    }
                }
                em_retry::Event::Sleeping { .. } => counts.retries += 1,
                em_retry::Event::Repaired { .. } => counts.repairs += 1,
                em_retry::Event::GaveUp { .. } => counts.gave_up += 1,
                em_retry::Event::AttemptFailed { .. } | em_retry::Event::Succeeded { .. } => {}
            }
        })
    }
}

/// Runs adapter operations under a policy, with subscribers, an optional circuit breaker,
/// and a sink for the tools' output lines.
#[derive(Clone)]
pub struct Runner {
    policy: RetryPolicy,
    subscribers: Vec<Arc<dyn Subscriber>>,
    circuit: Option<Arc<CircuitBreaker>>,
    budget: Option<Arc<em_retry::RetryBudget>>,
    lines: Option<LineSink>,
    echo: bool,
    on_mirror: Option<MirrorNotice>,
    tally: Option<Arc<SourceTally>>,
    seed: Option<u64>,
    progress: Option<ProgressGauge>,
    check: Option<OutputCheck>,
}

/// What an [`OutputCheck`] makes of a run the tool called a success: a failed attempt
/// after all (a download adapter's empty `200`, a `416` wget took for "complete").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Retry under the policy, with this reason.
    Transient(String),
    /// Fail at once: the reason and a hint.
    Permanent(String, Option<String>),
}

/// Reads every finished run of the tool (its command line, exit code and both streams),
/// successful or not: see [`Runner::with_output_check`].
pub type OutputCheck = Arc<dyn Fn(&ToolFailure) -> Option<Checked> + Send + Sync>;

/// A reading that grows while an operation makes progress (a download's partial file size,
/// packages fetched): see [`Runner::with_progress`].
pub type ProgressGauge = Arc<dyn Fn() -> u64 + Send + Sync>;

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("policy", &self.policy)
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Runs under `policy`, silently.
    pub fn new(policy: RetryPolicy) -> Self {
        Runner {
            policy,
            subscribers: Vec::new(),
            circuit: None,
            budget: None,
            lines: None,
            echo: false,
            on_mirror: None,
            tally: None,
            progress: None,
            seed: None,
            check: None,
        }
    }

    /// Reads each finished run with `check` (both streams, whatever the exit code): what it
    /// returns for a run the tool called a success turns it into a failed attempt
    /// ([`Checked::Transient`] is retried under the policy, [`Checked::Permanent`] fails).
    /// For a failed run only a [`Checked::Permanent`] answer counts (a redirect to a
    /// scheme the download refuses, whatever became of the connection after it); the
    /// adapter classifies the rest. It sees every run so that it can keep what it needs
    /// from every response (a download's validator).
    pub fn with_output_check(mut self, check: OutputCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// Sends `event` to the runner's subscribers: for what happens outside the retry loop
    /// but belongs to the operation (a download its checksum rejected).
    pub fn emit(&self, event: &em_retry::Event) {
        for s in &self.subscribers {
            s.on_event(event);
        }
    }

    /// Counts every operation's attempts, retries, repairs and give-ups per source in
    /// `tally`.
    pub fn with_tally(mut self, tally: Arc<SourceTally>) -> Self {
        self.tally = Some(tally);
        self
    }

    /// Makes the retries progress-aware ([`em_retry::Retry::progress`]): a failed attempt
    /// during which `gauge` grew made progress, so it is not counted against the policy's
    /// attempts and the next one starts at once.
    pub fn with_progress(mut self, gauge: ProgressGauge) -> Self {
        self.progress = Some(gauge);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The same runner under another policy (a step's own `retry` table).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Adds event subscribers.
    pub fn subscribe_all(mut self, subscribers: &[Arc<dyn Subscriber>]) -> Self {
        self.subscribers.extend(subscribers.iter().cloned());
        self
    }

    /// Guards each source with `breaker`, keyed by the source's host.
    pub fn with_circuit(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.circuit = Some(breaker);
        self
    }

    /// Rations each source's retries with `budget`, keyed like the circuit (the source's
    /// host): a retry without a token is not made, and the source gives up as exhausted.
    pub fn with_budget(mut self, budget: Option<Arc<em_retry::RetryBudget>>) -> Self {
        self.budget = budget;
        self
    }

    /// Sends every line the tools print to `sink` (logs, progress).
    pub fn with_lines(mut self, sink: LineSink) -> Self {
        self.lines = Some(sink);
        self
    }

    /// Also copies the tools' output (both streams) to our stderr as it arrives.
    pub fn with_echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Tells `notice` when a source is given up for the next one.
    pub fn on_mirror(mut self, notice: MirrorNotice) -> Self {
        self.on_mirror = Some(notice);
        self
    }

    /// Seeds the jitter, for repeatable runs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Runs the command that `build` makes (once per attempt: it may change between
    /// attempts, e.g. `--no-cache-dir` after a cache repair) until it succeeds, fails
    /// permanently, or the policy runs out.
    ///
    /// `circuit_key` (usually the registry's host) guards the operation when the runner
    /// has a circuit breaker.
    pub async fn run<A, B>(
        &self,
        adapter: &Arc<A>,
        operation: Operation,
        circuit_key: Option<&str>,
        build: B,
    ) -> Result<Output, ToolError>
    where
        A: Adapter,
        B: Fn(&em_retry::Attempt) -> Cmd,
    {
        let label = operation.to_string();
        let last_verdict: Arc<Mutex<Option<LastVerdict>>> = Arc::default();
        let classifier = AttemptClassifier {
            adapter: adapter.clone(),
            repairs_run: HashMap::new(),
            last_verdict: last_verdict.clone(),
        };
        // The gauge's reading when the current attempt started.
        let at_start = Arc::new(AtomicU64::new(0));
        let result = self
            .retry_for(operation, circuit_key, classifier, &at_start)
            .run(|attempt| {
                if let Some(gauge) = &self.progress {
                    at_start.store(gauge(), Ordering::Relaxed);
                }
                let cmd = self.attempt_command(build(&attempt));
                run_attempt(cmd, adapter.clone(), self.check.clone())
            })
            .await;
        self.tally_circuit_state(circuit_key);
        result.map_err(|err| tool_error(err, label, &last_verdict))
    }

    /// The retry loop of one operation: the policy, the subscribers (and the tally's for
    /// this source), `classifier`, and the seed, circuit, budget and progress probe this
    /// runner has.
    fn retry_for<A: Adapter>(
        &self,
        operation: Operation,
        circuit_key: Option<&str>,
        mut classifier: AttemptClassifier<A>,
        at_start: &Arc<AtomicU64>,
    ) -> Retry<AttemptError<A::Repair>> {
        let tally = self.tally.as_ref().map(|t| {
            t.subscriber(
                circuit_key
                    .map(str::to_string)
                    .unwrap_or_else(|| operation.component.clone()),
            )
        });
        let mut retry = Retry::new(self.policy.clone())
            .operation(operation)
            .subscribe_all(&self.subscribers)
            .subscribe_all(tally.as_slice())
            .classify(move |e: &AttemptError<A::Repair>| classifier.decide(e));
        if let Some(seed) = self.seed {
            retry = retry.seed(seed);
        }
        if let (Some(breaker), Some(key)) = (&self.circuit, circuit_key) {
            retry = retry.circuit(breaker.clone(), key);
        }
        if let (Some(budget), Some(key)) = (&self.budget, circuit_key) {
            retry = retry.budget(budget.clone(), key);
        }
        if let Some(gauge) = &self.progress {
            let (gauge, at_start) = (gauge.clone(), at_start.clone());
            retry = retry.progress(move || gauge() > at_start.load(Ordering::Relaxed));
        }
        retry
    }

    /// The command of one attempt as this runner runs it: output captured (and echoed when
    /// asked), stdin closed, every line to the runner's sink as well as the command's own.
    fn attempt_command(&self, cmd: Cmd) -> Cmd {
        let mode = if self.echo {
            OutputMode::TeeStderr
        } else {
            OutputMode::Capture
        };
        let mut cmd = cmd.output(mode).stdin_null();
        if let Some(lines) = &self.lines {
            // A sink of the command's own (a download watching its headers) and
            // the runner's both get every line.
            let sink = match cmd.lines.take() {
                Some(own) => {
                    let theirs = lines.clone();
                    Arc::new(move |stream: crate::Stream, line: &str| {
                        own(stream, line);
                        theirs(stream, line);
                    }) as LineSink
                }
                None => lines.clone(),
            };
            cmd = cmd.on_line(sink);
        }
        cmd
    }

    /// Records in the tally whether the circuit of `circuit_key` is open after the
    /// operation (when the runner has a tally and a circuit breaker).
    fn tally_circuit_state(&self, circuit_key: Option<&str>) {
        if let (Some(tally), Some(breaker), Some(key)) = (&self.tally, &self.circuit, circuit_key)
            && let Ok(state) = breaker.state(key)
        {
            tally.set_circuit_open(key, matches!(state, em_retry::CircuitState::Open { .. }));
        }
    }

    /// [`Runner::run`] over an ordered list of sources (a primary and its mirrors): when a
    /// source is exhausted or its circuit is open, the next is tried with a fresh policy.
    /// A permanent failure stops at once. Returns the output and the index of the source
    /// that worked.
    pub async fn run_with_mirrors<A, S, B>(
        &self,
        adapter: &Arc<A>,
        operation: Operation,
        sources: &[S],
        key: impl Fn(&S) -> String,
        build: B,
    ) -> Result<(Output, usize), ToolError>
    where
        A: Adapter,
        S: fmt::Display,
        B: Fn(&S, &em_retry::Attempt) -> Cmd,
    {
        let mut attempts = 0;
        let mut last_error = None;
        for (i, source) in sources.iter().enumerate() {
            let k = key(source);
            // After the primary, the status lines, reports and errors say which mirror.
            let operation = match i {
                0 => operation.clone(),
                _ => operation.clone().via(source.to_string()),
            };
            match self
                .run(adapter, operation, Some(&k), |a| build(source, a))
                .await
            {
                Ok(out) => return Ok((out, i)),
                Err(mut e) => {
                    attempts += e.attempts;
                    e.attempts = attempts;
                    let retryable = matches!(
                        e.kind,
                        ToolErrorKind::Exhausted | ToolErrorKind::CircuitOpen
                    );
                    if !retryable {
                        return Err(e);
                    }
                    if let (Some(next), Some(notice)) = (sources.get(i + 1), &self.on_mirror) {
                        notice(&source.to_string(), &next.to_string(), &e.reason);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ToolError::permanent(operation.to_string(), "no source to try", None)
        }))
    }
}

/// What the classifier last decided, for the final error.
#[derive(Clone, Debug)]
struct LastVerdict {
    reason: String,
    hint: Option<String>,
}

fn set<T>(slot: &Mutex<Option<T>>, value: Option<T>) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = value;
}

/// Runs one attempt's command and reads how it ended: a success, unless the output check
/// says otherwise; a failure as the output check or else the adapter reads it.
async fn run_attempt<A: Adapter>(
    cmd: Cmd,
    adapter: Arc<A>,
    check: Option<OutputCheck>,
) -> Result<Output, AttemptError<A::Repair>> {
    let out = cmd.run().await.map_err(AttemptError::NotRunnable)?;
    let checked = check.as_ref().and_then(|check| {
        check(&ToolFailure::from_output(&cmd, &out))
            .filter(|checked| out.success() || matches!(checked, Checked::Permanent(..)))
    });
    if let Some(checked) = checked {
        let failure = ToolFailure::from_output(&cmd, &out);
        let verdict = match checked {
            Checked::Transient(reason) => Verdict::Transient(reason),
            Checked::Permanent(reason, hint) => Verdict::Permanent(reason, hint),
        };
        Err(AttemptError::Failed(failure, verdict))
    } else if out.success() {
        Ok(out)
    } else {
        let failure = ToolFailure::from_output(&cmd, &out);
        let verdict = adapter.classify(&failure);
        Err(AttemptError::Failed(failure, verdict))
    }
}

/// The error of an operation the retry loop gave up: its kind from how the loop ended, its
/// reason and hint from the classifier's last verdict (else the loop's own message).
fn tool_error<R>(
    err: em_retry::RetryError<AttemptError<R>>,
    label: String,
    last_verdict: &Mutex<Option<LastVerdict>>,
) -> ToolError {
    let attempts = err.attempts();
    let reason_kind = err.reason().clone();
    let timed_out = err.timed_out();
    let LastVerdict { reason, hint } = last_verdict
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| LastVerdict {
            reason: err.to_string(),
            hint: None,
        });
    let (kind, reason, last) = match err.into_last() {
        Some(Failure::Error(AttemptError::NotRunnable(e))) => {
            (ToolErrorKind::NotRunnable, e.to_string(), None)
        }
        Some(Failure::Error(AttemptError::Failed(f, _))) => {
            let kind = match reason_kind {
                GiveUpReason::Permanent => ToolErrorKind::Permanent,
                _ => ToolErrorKind::Exhausted,
            };
            (kind, reason, Some(f))
        }
        Some(Failure::TimedOut(d)) => (
            ToolErrorKind::Exhausted,
            format!("timed out after {}", em_retry::fmt_duration(d)),
            None,
        ),
        None => match reason_kind {
            GiveUpReason::CircuitOpen(_) => (ToolErrorKind::CircuitOpen, reason, None),
            _ => (ToolErrorKind::Exhausted, reason, None),
        },
    };
    ToolError {
        kind,
        operation: label,
        reason,
        hint,
        attempts,
        last,
        timed_out,
    }
}

/// One operation's reading of its failed attempts: the repairs it ran so far, and the
/// verdict it last recorded for the final error.
struct AttemptClassifier<A: Adapter> {
    adapter: Arc<A>,
    repairs_run: HashMap<A::Repair, u32>,
    last_verdict: Arc<Mutex<Option<LastVerdict>>>,
}

impl<A: Adapter> AttemptClassifier<A> {
    /// The retry decision for a failed attempt; records its reason (and hint) as the last
    /// verdict unless the repair branch already did.
    fn decide(&mut self, e: &AttemptError<A::Repair>) -> Decision {
        let verdict = match e {
            AttemptError::NotRunnable(_) => return Decision::Fail,
            AttemptError::Failed(_, verdict) => verdict,
        };
        let decision = match verdict {
            Verdict::Transient(_) => Decision::Retry,
            Verdict::RetryAfter(_, d) => Decision::RetryAfter(*d),
            Verdict::Permanent(reason, hint) => {
                self.record(reason.clone(), hint.clone());
                Decision::Fail
            }
            Verdict::Repairable(repair, reason) => self.repair_or_stop(repair, reason),
        };
        if !matches!(decision, Decision::Fail | Decision::GiveUp(_)) {
            self.record(verdict.reason().to_string(), None);
        }
        decision
    }

    /// Runs `repair` while it is under its limit; past it the repair did not help, and the
    /// failure ends the operation or (when the adapter says so) only this source.
    fn repair_or_stop(&mut self, repair: &A::Repair, reason: &str) -> Decision {
        let count = self.repairs_run.entry(repair.clone()).or_default();
        if *count >= self.adapter.repair_limit(repair) {
            let reason = format!("{reason} (still failing after {repair})");
            self.record(reason.clone(), None);
            if self.adapter.exhausted_repair_is_permanent(repair) {
                Decision::Fail
            } else {
                Decision::GiveUp(reason)
            }
        } else {
            *count += 1;
            let adapter = self.adapter.clone();
            let repair = repair.clone();
            Decision::Repair(Repair::new(repair.to_string(), move || async move {
                adapter.repair(repair).await
            }))
        }
    }

    /// Remembers `reason` and `hint` as the verdict the final error quotes.
    fn record(&self, reason: String, hint: Option<String>) {
        set(&self.last_verdict, Some(LastVerdict { reason, hint }));
    }
}

/// Set to `1` (tests only), [`is_root`] answers false whatever the uid: the test machine
/// runs as root, and the paths of a non-root user (`sudo -n`, the user's state directory,
/// `doctor`'s sudo check) are tested with a fake `sudo` on `PATH`. Nothing else reads it.
pub const ASSUME_NON_ROOT_VAR: &str = "EM_TEST_ASSUME_NON_ROOT";

/// The user's effective uid is 0 (the owner of `/proc/self` is the effective uid), unless
/// a test set [`ASSUME_NON_ROOT_VAR`].
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os(ASSUME_NON_ROOT_VAR).is_some_and(|v| v == "1") {
        return false;
    }
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Checks a value that goes to a tool as one argument: not empty, not an option (`-x`),
/// no whitespace, control characters or shell metacharacters. Ecosystem grammars (package
/// names) are checked by each adapter on top of this.
pub fn check_argument(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("an empty argument".into());
    }
    if value.starts_with('-') {
        return Err(format!(
            "`{value}` starts with `-`: it would be read as an option"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "`$;&|\\\"'(){}!#?".contains(*c))
    {
        return Err(format!(
            "`{value}` contains {c:?}, which no package name has"
        ));
    }
    Ok(())
}

/// Finds `tool` on `PATH`; the error names what provides it.
pub fn find_tool(tool: &str, provided_by: &str) -> Result<std::path::PathBuf, ToolError> {
    which::which(tool).map_err(|_| {
        ToolError::permanent(
            tool.to_string(),
            format!("`{tool}` was not found on PATH"),
            Some(format!("it is provided by {provided_by}")),
        )
    })
}

static SUDO_FORBIDDEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on [`as_root`] never uses sudo (the configuration's `sudo = "never"`): what
/// needs root fails, saying so. For the whole process: it is the user's policy for it.
pub fn forbid_sudo() {
    SUDO_FORBIDDEN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Prefixes `sudo -n` when not root and `sudo` exists (and is allowed: [`forbid_sudo`]);
/// errors when neither.
pub fn as_root(cmd: Cmd, operation: &str) -> Result<Cmd, ToolError> {
    if is_root() {
        return Ok(cmd);
    }
    if SUDO_FORBIDDEN.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ToolError::permanent(
            operation.to_string(),
            "this needs root, and the configuration says sudo = \"never\"",
            Some("run it as root, or set sudo = \"auto\" (or EM_SUDO=auto) to use sudo -n".into()),
        ));
    }
    match which::which("sudo") {
        Ok(sudo) => Ok(cmd.wrapped_in(sudo, &["-n", "--"])),
        Err(_) => Err(ToolError::permanent(
            operation.to_string(),
            "this needs root, and `sudo` is not installed",
            Some("run it as root (e.g. in a Dockerfile RUN before USER), or install sudo".into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_that_could_inject_are_refused() {
        for bad in [
            "",
            "-y",
            "--allow-unauthenticated",
            "a b",
            "a;rm",
            "$(x)",
            "a\nb",
            "`x`",
        ] {
            assert!(check_argument(bad).is_err(), "{bad:?}");
        }
        for good in [
            "python3",
            "python3-venv",
            "typescript@5",
            "black==24.*",
            "libc6:amd64",
            "@scope/pkg",
        ] {
            assert!(check_argument(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn tail_is_printable_and_bounded() {
        let long = "y".repeat(TAIL_LINE + 10);
        let f = ToolFailure::new(
            "x",
            1,
            format!("{long}\n"),
            "\x1b]0;title\x07 moved\n::error file=a::pwned\r\n",
        );
        assert_eq!(
            f.tail(3),
            [
                "\\x1b]0;title\\x07 moved".to_string(),
                "\\::error file=a::pwned".to_string(),
                format!("{} ...", &long[..TAIL_LINE]),
            ]
        );
    }

    /// Reads every failure as permanent; enough to build a runner's futures.
    struct Never;

    impl Adapter for Never {
        type Repair = String;

        fn name(&self) -> &'static str {
            "never"
        }

        fn classify(&self, _failure: &ToolFailure) -> Verdict<String> {
            Verdict::Permanent("no".into(), None)
        }

        async fn repair(&self, _repair: String) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn the_run_futures_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let runner = Runner::new(RetryPolicy::new(1));
        let adapter = Arc::new(Never);
        let run = runner.run(&adapter, Operation::new("never", "x"), Some("h"), |_| {
            Cmd::tool("true")
        });
        assert_send(&run);
        let sources = ["a".to_string()];
        let mirrors = runner.run_with_mirrors(
            &adapter,
            Operation::new("never", "x"),
            &sources,
            |s| s.clone(),
            |_, _| Cmd::tool("true"),
        );
        assert_send(&mirrors);
    }

    #[test]
    fn tail_skips_blank_lines() {
        let f = ToolFailure::new("x", 1, "out\n", "E: one\n\nE: two\n");
        assert_eq!(f.tail(2), ["E: two", "out"]);
    }
}
