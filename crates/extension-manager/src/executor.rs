//! Runs a [`Plan`]: a dependency-graph scheduler over the plan's extensions. An extension
//! starts when everything it waits for has finished well; up to `jobs` run at once; one apt
//! operation at a time host-wide, one npm global install at a time, one pip install per
//! environment at a time; downloads in parallel. A failure skips its dependents (with the
//! reason) and, without `--keep-going`, stops new starts. Every step's attempts, failures,
//! repairs and delays are recorded for the report; every tool's output goes to the
//! extension's log file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use em_apt::{Apt, AptConfig, AptPackage};
use em_curl::{Curl, CurlConfig};
use em_exec::download::{DownloadRequest, Sha256};
use em_exec::{Cmd, LineSink, OutputMode, Runner, Stream, ToolError};
use em_manifest::{Arch, InstallStep, ResolvedManifest, Step, Via};
use em_npm::{Npm, NpmConfig, NpmPackage};
use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};
use em_retry::{CircuitBreaker, Event, FailureClass, RetryPolicy, Subscriber};
use em_wget::{Wget, WgetConfig};
use serde::Serialize;
use tokio::sync::{Mutex as AsyncMutex, Notify, OwnedSemaphorePermit, Semaphore};

use crate::adapter_context::PolicyName;
use crate::exit::Fault;
use crate::output::{HumanEvents, Tone, Ui};
use crate::plan::{Action, Plan, PlanEntry};
use crate::state::{
    Added, ExtensionStatus, HistoryEntry, InstalledExtension, PipAdded, State, StateDir,
};

/// Settings of a run that come from the command line and the config file.
#[derive(Clone)]
pub struct RunSettings {
    /// Extensions running at once.
    pub jobs: usize,
    /// Independent extensions go on after a failure.
    pub keep_going: bool,
    /// The policy of each kind of operation (the configuration's).
    pub policies: BTreeMap<PolicyName, RetryPolicy>,
    /// apt mirror base URLs.
    pub apt_mirrors: Vec<String>,
    /// apt's `update_max_age`.
    pub apt_update_max_age: Duration,
    /// The bounds on one archive of a download's `unpack_to` (`[unpack]`).
    pub unpack_limits: em_unpack::Limits,
    /// The largest file a download may be (`[download] max_size`).
    pub download_max_size: Option<u64>,
    /// The npm registry (None: npm's own setting) and its mirrors.
    pub npm_registry: Option<String>,
    /// npm mirrors.
    pub npm_mirrors: Vec<String>,
    /// The pip index (None: pip's own setting).
    pub pip_index: Option<String>,
    /// pip mirrors.
    pub pip_mirrors: Vec<String>,
    /// Where `[extension.env]` files go (`/etc/profile.d`).
    pub profile_dir: PathBuf,
    /// The circuit breaker shared by every operation of the run.
    pub circuit: Arc<CircuitBreaker>,
    /// The retry budget shared by every operation of the run (None: off).
    pub budget: Option<Arc<em_retry::RetryBudget>>,
    /// What each registry or host did over the run (the CI step summary).
    pub tally: Arc<em_exec::SourceTally>,
    /// This machine's architecture.
    pub host: Option<Arch>,
    /// The hosts preflight found not to resolve (`requirements.domains`, with
    /// `--keep-going`): a download source on one of them is not tried.
    pub unresolved_hosts: std::collections::BTreeSet<String>,
}

impl RunSettings {
    fn policy(&self, name: PolicyName) -> RetryPolicy {
        self.policies
            .get(&name)
            .cloned()
            .unwrap_or_else(|| name.default_policy())
    }
}

/// The result of one extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Outcome {
    /// Installed and validated.
    Installed,
    /// Already installed with this manifest; its checks passed.
    UpToDate,
    /// Failed.
    Failed {
        /// What went wrong.
        message: String,
        /// How it ended: permanent (exit 1) or transient (exit 75, try later).
        fault: Fault,
    },
    /// Not attempted.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// What happened in one step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepReport {
    /// The step's index in the manifest.
    pub index: usize,
    /// One line: `apt install nodejs npm`.
    pub summary: String,
    /// `ok`, `skipped` or `failed`.
    pub result: String,
    /// Why it was skipped or failed.
    pub detail: Option<String>,
    /// The attempts of the step's busiest operation (a pip step creates its venv, then
    /// installs: one attempt each is 1, not 2); every operation's own count is in
    /// `operations`.
    pub attempts: u32,
    /// Each operation the step ran (`pip: install em-fixture-hello`) and its attempts,
    /// over all the sources it tried, in the order they started.
    pub operations: Vec<(String, u32)>,
    /// Each failed attempt: (class, reason).
    pub failures: Vec<(String, String)>,
    /// Each repair: (name, ok).
    pub repairs: Vec<(String, bool)>,
    /// Each delay before a retry, in milliseconds.
    pub delays_ms: Vec<u64>,
    /// Each move from a source given up to the next mirror: (from, to, why).
    pub mirror_switches: Vec<(String, String, String)>,
    /// How long the step took.
    pub duration_ms: u64,
}

/// What happened to one extension.
#[derive(Clone, Debug, Serialize)]
pub struct ExtensionReport {
    /// The extension.
    pub name: String,
    /// The result.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    pub duration_ms: u64,
    /// Its steps.
    pub steps: Vec<StepReport>,
    /// Its log file, when it ran anything.
    pub log: Option<PathBuf>,
}

impl ExtensionReport {
    /// Attempts over all steps.
    pub fn attempts(&self) -> u32 {
        self.steps.iter().map(|s| s.attempts).sum()
    }
    /// Retries over all steps.
    pub fn retries(&self) -> usize {
        self.steps.iter().map(|s| s.delays_ms.len()).sum()
    }
    /// Repairs over all steps.
    pub fn repairs(&self) -> usize {
        self.steps.iter().map(|s| s.repairs.len()).sum()
    }
}

/// Records the events of one step.
#[derive(Default)]
struct StepRecorder(Mutex<StepReport>);

impl Subscriber for StepRecorder {
    fn on_event(&self, event: &Event) {
        let Ok(mut r) = self.0.lock() else { return };
        match event {
            Event::AttemptStarted { operation, .. } => {
                let key = format!("{}: {}", operation.component, operation.name);
                let attempts = match r.operations.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        r.operations.push((key, 1));
                        1
                    }
                };
                r.attempts = r.attempts.max(attempts);
            }
            Event::AttemptFailed { class, reason, .. } => {
                let class = match class {
                    FailureClass::TimedOut(_) => "timeout".to_string(),
                    other => other.label().to_string(),
                };
                r.failures.push((class, reason.clone()));
            }
            Event::Repaired {
                repair, outcome, ..
            } => r.repairs.push((repair.clone(), outcome.is_ok())),
            Event::Sleeping { delay, .. } => r.delays_ms.push(delay.as_millis() as u64),
            Event::Succeeded { .. } | Event::GaveUp { .. } => {}
        }
    }
}

/// The adapters of a run, shared by its extensions, and the locks that serialise them.
struct Tools {
    apt: Mutex<Option<Arc<Apt>>>,
    apt_lock: AsyncMutex<()>,
    apt_batch: crate::apt_batch::AptBatcher,
    npm_lock: AsyncMutex<()>,
    pip_locks: Mutex<HashMap<PathBuf, Arc<AsyncMutex<()>>>>,
}

/// Everything a running extension needs.
struct Context {
    ui: Arc<Ui>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    settings: RunSettings,
    state_dir: StateDir,
    state: AsyncMutex<State>,
    run_id: String,
    command: String,
    tools: Tools,
    /// The last error of saving the state, if one failed: an install whose record could
    /// not be saved did not succeed, whatever its steps did.
    state_error: Mutex<Option<String>>,
}

/// An extension's place among the `--jobs` that work at once. It is given up while the
/// extension only waits (for the run's apt batch, for the apt lock), so that waiting does
/// not keep other extensions from starting: five apt extensions under `--jobs 4` then join
/// one `apt-get install`, not two.
struct JobSlot {
    jobs: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Wakes the scheduler when a place is given up.
    freed: Arc<Notify>,
}

impl JobSlot {
    fn new(jobs: Arc<Semaphore>, permit: OwnedSemaphorePermit, freed: Arc<Notify>) -> JobSlot {
        JobSlot {
            jobs,
            permit: Mutex::new(Some(permit)),
            freed,
        }
    }

    /// Gives the place up until [`JobSlot::reclaim`].
    fn release(&self) {
        let permit = self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
        if permit.is_some() {
            drop(permit);
            self.freed.notify_one();
        }
    }

    /// Takes a place again, waiting for one when all are taken.
    async fn reclaim(&self) {
        if self
            .permit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return;
        }
        // The semaphore is never closed.
        if let Ok(permit) = self.jobs.clone().acquire_owned().await {
            *self.permit.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit);
        }
    }
}

/// The outcome of a whole run.
pub struct RunReport {
    /// Per extension, in plan order.
    pub extensions: Vec<ExtensionReport>,
}

impl RunReport {
    /// 0 all well; 1 a permanent failure (or an extension skipped for one); 75 only
    /// transient failures.
    pub fn exit_code(&self) -> u8 {
        let faults = self.extensions.iter().filter_map(|e| match &e.outcome {
            Outcome::Failed { fault, .. } => Some(*fault),
            // Skipped for a dependency's failure: that failure decides, unless none is in
            // the report (skipped for another reason).
            Outcome::Skipped { .. } => Some(Fault::Permanent).filter(|_| {
                !self
                    .extensions
                    .iter()
                    .any(|e| matches!(e.outcome, Outcome::Failed { .. }))
            }),
            Outcome::Installed | Outcome::UpToDate => None,
        });
        Fault::worst(faults)
    }
}

/// Runs `plan`, recording state and history as it goes.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    plan: Plan,
    settings: RunSettings,
    ui: Arc<Ui>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    state_dir: StateDir,
    state: State,
    run_id: String,
    command: String,
) -> RunReport {
    let ctx = Arc::new(Context {
        ui,
        subscribers,
        settings,
        state_dir,
        state: AsyncMutex::new(state),
        run_id,
        command,
        tools: Tools {
            apt: Mutex::new(None),
            apt_lock: AsyncMutex::new(()),
            apt_batch: crate::apt_batch::AptBatcher::from_env(),
            npm_lock: AsyncMutex::new(()),
            pip_locks: Mutex::new(HashMap::new()),
        },
        state_error: Mutex::new(None),
    });
    let jobs = Arc::new(Semaphore::new(ctx.settings.jobs.max(1)));
    let freed = Arc::new(Notify::new());
    let order: Vec<String> = plan.entries.iter().map(|e| e.name().to_string()).collect();
    let mut pending: Vec<PlanEntry> = plan.entries;
    let mut done: BTreeMap<String, ExtensionReport> = BTreeMap::new();
    let mut running = tokio::task::JoinSet::new();
    let mut stopped = false;
    loop {
        // Start everything whose dependencies are done; skip what can no longer run.
        let mut i = 0;
        while i < pending.len() {
            let failed_dep = pending[i]
                .waits_for
                .iter()
                .find(|d| {
                    done.get(*d).is_some_and(|r| {
                        matches!(r.outcome, Outcome::Failed { .. } | Outcome::Skipped { .. })
                    })
                })
                .cloned();
            if let Some(dep) = failed_dep {
                let entry = pending.remove(i);
                let reason = format!("it requires `{dep}`, which did not install");
                ctx.ui.status(
                    "Skipped",
                    Tone::Warn,
                    &format!("{}: {reason}", entry.name()),
                );
                done.insert(entry.name().to_string(), skipped(entry.name(), reason));
                continue;
            }
            if stopped {
                let entry = pending.remove(i);
                let reason = "an earlier extension failed (use --keep-going to go on)".to_string();
                done.insert(entry.name().to_string(), skipped(entry.name(), reason));
                continue;
            }
            if pending[i].waits_for.iter().all(|d| done.contains_key(d)) {
                // Start only with a free slot, so that a failure seen meanwhile can still
                // stop what has not started (without --keep-going).
                let Ok(permit) = jobs.clone().try_acquire_owned() else {
                    break;
                };
                let entry = pending.remove(i);
                let ctx = ctx.clone();
                let slot = JobSlot::new(jobs.clone(), permit, freed.clone());
                running.spawn(async move { install_one(ctx, entry, &slot).await });
                continue;
            }
            i += 1;
        }
        let finished = tokio::select! {
            finished = running.join_next() => finished,
            // A running extension gave its place up while it waits: start another.
            () = freed.notified(), if !pending.is_empty() => continue,
        };
        let Some(finished) = finished else {
            break;
        };
        match finished {
            Ok(report) => {
                if matches!(report.outcome, Outcome::Failed { .. }) && !ctx.settings.keep_going {
                    stopped = true;
                }
                done.insert(report.name.clone(), report);
            }
            Err(e) => {
                ctx.ui
                    .error(&format!("an install task ended abnormally: {e}"), None);
                stopped = true;
            }
        }
    }
    for entry in pending {
        let reason = "not started: what it waits for did not finish".to_string();
        done.insert(entry.name().to_string(), skipped(entry.name(), reason));
    }
    let extensions = order.iter().filter_map(|name| done.remove(name)).collect();
    RunReport { extensions }
}

fn skipped(name: &str, reason: String) -> ExtensionReport {
    ExtensionReport {
        name: name.to_string(),
        outcome: Outcome::Skipped { reason },
        duration_ms: 0,
        steps: Vec::new(),
        log: None,
    }
}

/// An error of a step: the user's message and how it ends.
struct StepError {
    message: String,
    fault: Fault,
}

impl From<ToolError> for StepError {
    fn from(e: ToolError) -> Self {
        let mut message = e.to_string();
        if let Some(hint) = &e.hint {
            message.push_str(&format!(" (hint: {hint})"));
        }
        StepError {
            message,
            fault: Fault::of_tool(&e.kind),
        }
    }
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        StepError {
            message,
            fault: Fault::Permanent,
        }
    }
}

/// The log file of one extension: every tool line, and our own notes.
#[derive(Clone)]
struct Log {
    path: PathBuf,
    file: Arc<Mutex<Option<std::fs::File>>>,
    /// The status printer and the task (extension) whose tool lines these are: for the
    /// live line and for noticing a wait for dpkg's lock.
    task: Option<(Arc<Ui>, String)>,
    /// Whether the wait for dpkg's lock has been reported (once per log).
    lock_noted: Arc<std::sync::atomic::AtomicBool>,
}

impl Log {
    fn open(path: PathBuf) -> Log {
        use std::os::unix::fs::OpenOptionsExt;
        // 0600 and no symlink followed, as every file of the state directory.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok();
        Log {
            path,
            file: Arc::new(Mutex::new(file)),
            task: None,
            lock_noted: Arc::default(),
        }
    }

    /// This log, with the tool's lines also shown on task `name`'s live line (when `ui`
    /// has a live area), and a wait for dpkg's lock reported as a status line.
    fn for_task(mut self, ui: &Arc<Ui>, name: &str) -> Log {
        self.task = Some((ui.clone(), name.to_string()));
        self
    }

    fn line(&self, text: &str) {
        if let Ok(mut guard) = self.file.lock()
            && let Some(f) = guard.as_mut()
        {
            // Tool lines arrive printable (em-exec); ours may quote a URL with a password.
            let _ = writeln!(f, "{}", em_exec::redact_urls(text));
        }
    }

    fn sink(&self) -> LineSink {
        let log = self.clone();
        Arc::new(move |stream: Stream, line: &str| {
            if let Some((ui, name)) = &log.task {
                // apt's machine-readable progress (asked for only with a live area).
                if let Some(progress) = em_apt::status_fd_line(line) {
                    ui.task_detail(name, &progress);
                    return;
                }
                ui.task_detail(name, line);
                if let Some(holder) = em_apt::lock_wait_line(line)
                    && !log
                        .lock_noted
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    ui.status("Waiting", Tone::Warn, &format!("{name}: {holder}"));
                }
            }
            let tag = if stream == Stream::Stderr { "! " } else { "  " };
            log.line(&format!("{tag}{line}"));
        })
    }
}

async fn install_one(ctx: Arc<Context>, entry: PlanEntry, slot: &JobSlot) -> ExtensionReport {
    let started = Instant::now();
    let name = entry.name().to_string();
    let manifest = entry.manifest.clone();
    if entry.action == Action::Verify {
        match validate(&manifest).await {
            Ok(()) => {
                ctx.ui.status(
                    "Up to date",
                    Tone::Good,
                    &format!(
                        "{name} {} (already installed; checks pass)",
                        manifest.version.value
                    ),
                );
                history(&ctx, &name, "up-to-date", "").await;
                return ExtensionReport {
                    name,
                    outcome: Outcome::UpToDate,
                    duration_ms: started.elapsed().as_millis() as u64,
                    steps: Vec::new(),
                    log: None,
                };
            }
            Err(e) => ctx.ui.status(
                "Reinstalling",
                Tone::Warn,
                &format!("{name}: installed, but {e}"),
            ),
        }
    }
    let log = Log::open(ctx.state_dir.log_path(&ctx.run_id, &name));
    log.line(&format!(
        "# {} {} — run {}",
        name, manifest.version.value, ctx.run_id
    ));
    let _live = ctx.ui.task(
        &name,
        "Installing",
        &format!(
            "{name} {} ({} step{})",
            manifest.version.value,
            entry.steps.len(),
            if entry.steps.len() == 1 { "" } else { "s" }
        ),
    );
    let log = log.for_task(&ctx.ui, &name);
    let mut record = InstalledExtension {
        version: manifest.version.value.clone(),
        manifest_sha256: manifest.sha256().to_string(),
        fingerprint: manifest.fingerprint(),
        options: manifest
            .values()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        status: ExtensionStatus::Partial,
        installed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        completed_steps: Vec::new(),
        added: Added::default(),
        error: None,
        uses: Added::default(),
    };
    // Keep what an earlier, unfinished run of this extension added: remove must undo it too.
    if let Some(previous) = ctx.state.lock().await.extensions.get(&name) {
        record.added = previous.added.clone();
    }
    let mut steps = Vec::new();
    let total = manifest.install.len();
    let mut failure: Option<StepError> = None;
    for (index, step) in manifest.install.iter().enumerate() {
        let began = Instant::now();
        let mut report = StepReport {
            index,
            summary: step.action.summary(),
            ..StepReport::default()
        };
        if !step.runs_on(ctx.settings.host) {
            report.result = "skipped".into();
            report.detail = Some("not for this architecture".into());
            steps.push(report);
            continue;
        }
        ctx.ui.task_step(
            &name,
            "Step",
            &format!("{name} [{}/{total}] {}", index + 1, report.summary),
        );
        log.line(&format!(
            "## step {}/{total}: {}",
            index + 1,
            report.summary
        ));
        let recorder = Arc::new(StepRecorder::default());
        let result = run_step(
            &ctx,
            &name,
            &manifest,
            step,
            &log,
            recorder.clone(),
            &mut record,
            slot,
            index,
        )
        .await;
        let recorded = recorder.0.lock().map(|r| r.clone()).unwrap_or_default();
        report.attempts = recorded.attempts;
        report.operations = recorded.operations;
        report.failures = recorded.failures;
        report.repairs = recorded.repairs;
        report.delays_ms = recorded.delays_ms;
        report.mirror_switches = recorded.mirror_switches;
        report.duration_ms = began.elapsed().as_millis() as u64;
        match result {
            Ok(StepDone::Ran) => {
                report.result = "ok".into();
                record.completed_steps.push(index);
                save_step(&ctx, &name, &mut record, index).await;
            }
            Ok(StepDone::Guarded(why)) => {
                ctx.ui.status(
                    "Skipped",
                    Tone::Info,
                    &format!("{name} [{}/{total}]: {why}", index + 1),
                );
                report.result = "skipped".into();
                report.detail = Some(why);
                record.completed_steps.push(index);
            }
            Err(e) if step.optional => {
                // Best effort: said, recorded, and the extension goes on.
                ctx.ui.status(
                    "Warning",
                    Tone::Warn,
                    &format!(
                        "{name} [{}/{total}] failed, optional: {}",
                        index + 1,
                        e.message
                    ),
                );
                log.line(&format!("!! optional step failed: {}", e.message));
                report.result = "failed (optional)".into();
                report.detail = Some(e.message.clone());
                record.completed_steps.push(index);
                save_step(&ctx, &name, &mut record, index).await;
            }
            Err(e) => {
                report.result = "failed".into();
                report.detail = Some(e.message.clone());
                log.line(&format!("!! step failed: {}", e.message));
                steps.push(report);
                failure = Some(e);
                break;
            }
        }
        steps.push(report);
    }
    if failure.is_none()
        && let Err(e) = write_env_file(&ctx, &manifest, &mut record.added)
    {
        failure = Some(StepError::from(e));
    }
    if failure.is_none()
        && let Err(e) = validate(&manifest).await
    {
        failure = Some(StepError::from(format!("validation failed: {e}")));
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    if failure.is_none() {
        record.status = ExtensionStatus::Installed;
        record.error = None;
        save_record(&ctx, &name, &record).await;
        failure = take_state_error(&ctx);
    }
    let outcome = match failure {
        None => {
            history(&ctx, &name, "installed", &manifest.version.value).await;
            Outcome::Installed
        }
        Some(e) => {
            record.status = ExtensionStatus::Failed;
            record.error = Some(e.message.clone());
            save_record(&ctx, &name, &record).await;
            history(&ctx, &name, "failed", &e.message).await;
            ctx.ui.status(
                "Failed",
                Tone::Bad,
                &format!("{name}: {} (log: {})", e.message, log.path.display()),
            );
            Outcome::Failed {
                message: e.message,
                fault: e.fault,
            }
        }
    };
    if outcome == Outcome::Installed {
        let retries: usize = steps.iter().map(|s| s.delays_ms.len()).sum();
        let repairs: usize = steps.iter().map(|s| s.repairs.len()).sum();
        ctx.ui.status(
            "Installed",
            Tone::Good,
            &format!(
                "{name} {} in {}{}",
                manifest.version.value,
                em_retry::fmt_duration(Duration::from_millis(duration_ms)),
                if retries + repairs > 0 {
                    format!(
                        " ({retries} retr{}, {repairs} repair{})",
                        if retries == 1 { "y" } else { "ies" },
                        if repairs == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            ),
        );
    }
    ExtensionReport {
        name,
        outcome,
        duration_ms,
        steps,
        log: Some(log.path.clone()),
    }
}

async fn save_record(ctx: &Context, name: &str, record: &InstalledExtension) {
    let mut state = ctx.state.lock().await;
    state.extensions.insert(name.to_string(), record.clone());
    // Each save writes the whole state: the last one decides whether it is on disk.
    let result = ctx.state_dir.save(&state);
    if let Err(e) = &result {
        ctx.ui
            .error(&format!("could not save the state: {e}"), None);
    }
    *ctx.state_error.lock().unwrap_or_else(|p| p.into_inner()) =
        result.err().map(|e| e.to_string());
}

/// The error of the last failed state save, taken.
fn take_state_error(ctx: &Context) -> Option<StepError> {
    let error = ctx
        .state_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()?;
    Some(StepError::from(format!(
        "the state could not be saved ({error}): free space or fix the state directory, \
         then run it again"
    )))
}

/// Notes `index` as the step that added whatever is not noted yet, then saves.
async fn save_step(ctx: &Context, name: &str, record: &mut InstalledExtension, index: usize) {
    record.added.note_step(index);
    save_record(ctx, name, record).await;
}

async fn history(ctx: &Context, name: &str, event: &str, detail: &str) {
    let entry = HistoryEntry::new(&ctx.run_id, &ctx.command, Some(name), event, detail);
    if let Err(e) = ctx.state_dir.append_history(&entry) {
        tracing::warn!("could not append to the history: {e}");
    }
}

enum StepDone {
    Ran,
    Guarded(String),
}

fn runner_for(
    ctx: &Context,
    policy: RetryPolicy,
    step: &InstallStep,
    log: &Log,
    recorder: Arc<StepRecorder>,
) -> Result<Runner, StepError> {
    let policy = match &step.retry {
        Some(r) => r
            .apply(&policy)
            .map_err(|e| StepError::from(format!("bad retry policy: {e}")))?,
        None => policy,
    };
    let mut subscribers = ctx.subscribers.clone();
    subscribers.push(Arc::new(HumanEvents::new(ctx.ui.clone())));
    subscribers.push(recorder.clone());
    let ui = ctx.ui.clone();
    Ok(Runner::new(policy)
        .subscribe_all(&subscribers)
        .with_circuit(ctx.settings.circuit.clone())
        .with_budget(ctx.settings.budget.clone())
        .with_tally(ctx.settings.tally.clone())
        .with_lines(log.sink())
        .on_mirror(Arc::new(move |from: &str, to: &str, why: &str| {
            ui.status(
                "Switching",
                Tone::Warn,
                &format!("from {from} to mirror {to} ({why})"),
            );
            if let Ok(mut r) = recorder.0.lock() {
                r.mirror_switches
                    .push((from.to_string(), to.to_string(), why.to_string()));
            }
        })))
}

/// Why `step` is skipped: its `creates` path exists, or its `unless` command succeeds.
async fn guarded(step: &InstallStep, manifest: &ResolvedManifest) -> Option<String> {
    if let Some(creates) = &step.creates
        && Path::new(&creates.value).exists()
    {
        return Some(format!("{} exists", creates.value));
    }
    let succeeds = async |command: &str| {
        shell(command, manifest)
            .output(OutputMode::Capture)
            .run()
            .await
            .is_ok_and(|o| o.success())
    };
    if let Some(unless) = &step.unless
        && succeeds(&unless.value).await
    {
        return Some(format!("`{}` succeeded", unless.value));
    }
    if let Some(only_if) = &step.only_if
        && !succeeds(&only_if.value).await
    {
        return Some(format!("`{}` failed (only_if)", only_if.value));
    }
    None
}

/// Runs one step. What a step is about to add is recorded (and saved) before its tool runs,
/// so that a run killed in the middle of it still knows what to undo; what turns out not
/// to be there after a failure is dropped again.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    ctx: &Arc<Context>,
    name: &str,
    manifest: &ResolvedManifest,
    step: &InstallStep,
    log: &Log,
    recorder: Arc<StepRecorder>,
    record: &mut InstalledExtension,
    slot: &JobSlot,
    index: usize,
) -> Result<StepDone, StepError> {
    if let Some(why) = guarded(step, manifest).await {
        return Ok(StepDone::Guarded(why));
    }
    match &step.action {
        Step::Apt(apt_step) => {
            let packages = apt_step
                .packages
                .iter()
                .map(|p| AptPackage::parse(&p.value).map_err(|e| format!("`{}`: {e}", p.value)))
                .collect::<Result<Vec<_>, _>>()?;
            let runner = runner_for(
                ctx,
                ctx.settings.policy(PolicyName::Apt),
                step,
                log,
                recorder.clone(),
            )?;
            let apt = apt_adapter(ctx)?;
            // A step with its own repository runs alone: its source is added and updated
            // first. The others join the run's batch of apt installs (see apt_batch).
            let update_runner = runner_for(
                ctx,
                ctx.settings.policy(PolicyName::Apt),
                step,
                log,
                recorder.clone(),
            )?;
            let one_at_a_time = match apt_step.repository {
                Some(_) => {
                    // Waiting for the lock is not work: let another extension start.
                    slot.release();
                    let held = ctx.tools.apt_lock.lock().await;
                    slot.reclaim().await;
                    Some(held)
                }
                None => None,
            };
            if let Some(repository) = &apt_step.repository {
                // Read before the new source's own update makes the lists look fresh.
                let stale = apt.lists_need_update();
                let downloads = runner_for(
                    ctx,
                    ctx.settings.policy(PolicyName::Download),
                    step,
                    log,
                    Arc::new(StepRecorder::default()),
                )?;
                add_repository(
                    ctx,
                    name,
                    record,
                    &apt,
                    &runner,
                    &downloads,
                    repository,
                    apt_step.allow_http,
                    index,
                )
                .await?;
                if let Some(why) = stale {
                    crate::apt_batch::update_lists(&apt, &ctx.ui, &update_runner, &why).await?;
                }
            }
            let fresh = absent_apt_packages(ctx, &apt, &packages, log).await;
            for p in &packages {
                push_new(&mut record.uses.apt, p.name().to_string());
            }
            for p in &fresh {
                push_new(&mut record.added.apt, p.name().to_string());
            }
            save_step(ctx, name, record, index).await;
            let installed = match one_at_a_time {
                Some(_held) => {
                    match crate::apt_batch::ensure_lists(&apt, &ctx.ui, &update_runner, &packages)
                        .await
                    {
                        Ok(()) => {
                            crate::apt_batch::install_measured(&apt, &runner, &packages).await
                        }
                        Err(e) => crate::apt_batch::Installed {
                            result: Err(e),
                            pulled_in: Ok(BTreeSet::new()),
                        },
                    }
                }
                None => {
                    let member = crate::apt_batch::Member {
                        owner: name.to_string(),
                        packages: packages.clone(),
                        runner,
                        update: update_runner,
                        recorder,
                        lines: log.sink(),
                    };
                    // The batch runs for everyone who joined; waiting for it is not work.
                    slot.release();
                    let result = ctx
                        .tools
                        .apt_batch
                        .install(&apt, &ctx.tools.apt_lock, &ctx.ui, member)
                        .await;
                    slot.reclaim().await;
                    result
                }
            };
            record_pulled_in(ctx, &installed.pulled_in, &mut record.added, log);
            if let Err(e) = installed.result {
                forget_absent_apt(&apt, &fresh, &mut record.added).await;
                save_step(ctx, name, record, index).await;
                return Err(e.into());
            }
            save_step(ctx, name, record, index).await;
            Ok(StepDone::Ran)
        }
        Step::Npm(npm_step) => {
            let packages = npm_step
                .packages
                .iter()
                .map(|p| NpmPackage::parse(&p.value).map_err(|e| format!("`{}`: {e}", p.value)))
                .collect::<Result<Vec<_>, _>>()?;
            let runner = runner_for(
                ctx,
                ctx.settings.policy(PolicyName::Npm),
                step,
                log,
                recorder,
            )?;
            let npm = Arc::new(Npm::new(NpmConfig {
                registry: ctx.settings.npm_registry.clone(),
                mirrors: ctx.settings.npm_mirrors.clone(),
                ..NpmConfig::default()
            })?);
            let _one_at_a_time = ctx.tools.npm_lock.lock().await;
            let fresh: Vec<String> = match npm.ls_global().await {
                Ok(before) => {
                    let before: BTreeSet<String> = before.into_iter().map(|(n, _)| n).collect();
                    packages
                        .iter()
                        .map(|p| p.name().to_string())
                        .filter(|n| !before.contains(n))
                        .collect()
                }
                Err(e) => {
                    unknown_state(
                        ctx,
                        log,
                        &format!("npm's global packages are unknown ({e})"),
                    );
                    Vec::new()
                }
            };
            for p in &packages {
                push_new(&mut record.uses.npm, p.name().to_string());
            }
            for n in &fresh {
                push_new(&mut record.added.npm, n.clone());
            }
            if let Some(root) = npm.global_root().await
                && !root.exists()
            {
                push_new(&mut record.added.dirs, root);
            }
            save_step(ctx, name, record, index).await;
            if let Err(e) = npm.install_global(&runner, &packages).await {
                if let Ok(now) = npm.ls_global().await {
                    let now: BTreeSet<String> = now.into_iter().map(|(n, _)| n).collect();
                    record
                        .added
                        .npm
                        .retain(|n| !fresh.contains(n) || now.contains(n));
                    save_step(ctx, name, record, index).await;
                }
                return Err(e.into());
            }
            Ok(StepDone::Ran)
        }
        Step::Pip(pip_step) => {
            let requirements = pip_step
                .packages
                .iter()
                .map(|p| PipRequirement::parse(&p.value).map_err(|e| format!("`{}`: {e}", p.value)))
                .collect::<Result<Vec<_>, _>>()?;
            let runner = runner_for(
                ctx,
                ctx.settings.policy(PolicyName::Pip),
                step,
                log,
                recorder,
            )?;
            let venv = pip_step.venv.as_ref().map(|v| PathBuf::from(&v.value));
            let target = match &venv {
                Some(v) => PipTarget::Venv(v.clone()),
                None => PipTarget::Interpreter(PathBuf::from("python3")),
            };
            let lock_key = venv.clone().unwrap_or_else(|| PathBuf::from("python3"));
            let lock = {
                let mut locks = ctx
                    .tools
                    .pip_locks
                    .lock()
                    .map_err(|_| "pip lock poisoned".to_string())?;
                locks.entry(lock_key).or_default().clone()
            };
            let _one_per_environment = lock.lock().await;
            let venv_existed = venv.as_ref().is_some_and(|v| v.join("pyvenv.cfg").exists());
            let pip = Arc::new(Pip::new(
                PipConfig {
                    index_url: ctx.settings.pip_index.clone(),
                    mirrors: ctx.settings.pip_mirrors.clone(),
                    ..PipConfig::default()
                },
                target,
            )?);
            // A venv this step creates, and every requirement pip positively lacks, are
            // recorded before pip runs.
            if let Some(v) = &venv
                && !venv_existed
            {
                push_new(&mut record.added.venvs, v.clone());
            }
            let before = match pip.installed_names().await {
                Ok(names) => Some(names),
                Err(e) => {
                    unknown_state(ctx, log, &format!("pip's packages are unknown ({e})"));
                    None
                }
            };
            for r in &requirements {
                let entry = PipAdded {
                    venv: venv.clone(),
                    name: r.name().to_string(),
                };
                push_new(&mut record.uses.pip, entry.clone());
                if before
                    .as_ref()
                    .is_some_and(|b| !b.contains(&em_pip::normalize_name(r.name())))
                {
                    push_new(&mut record.added.pip, entry);
                }
            }
            save_step(ctx, name, record, index).await;
            if let Err(e) = pip.install(&runner, &requirements).await {
                if let Some(v) = &venv
                    && !v.join("pyvenv.cfg").exists()
                {
                    record.added.venvs.retain(|x| x != v);
                    record.added.pip.retain(|p| p.venv.as_ref() != Some(v));
                    save_step(ctx, name, record, index).await;
                }
                return Err(e.into());
            }
            Ok(StepDone::Ran)
        }
        Step::Download(d) => {
            // Preflight found these hosts not to resolve: no attempt on them (each would
            // fail the same way after the policy's delays); none left fails at once.
            let all: Vec<&str> = std::iter::once(&d.url)
                .chain(&d.mirrors)
                .map(|u| u.value.as_str())
                .collect();
            let unresolved = |url: &&str| {
                ctx.settings
                    .unresolved_hosts
                    .contains(crate::preflight::host_name(url))
            };
            let mut sources: Vec<String> = all
                .iter()
                .filter(|u| !unresolved(u))
                .map(|u| u.to_string())
                .collect();
            if sources.is_empty() {
                let hosts = all
                    .iter()
                    .map(|u| crate::preflight::host_name(u).to_string())
                    .collect();
                return Err(ToolError::permanent(
                    format!("download {}", em_exec::redact_url(&d.url.value)),
                    "not tried: its host did not resolve in preflight",
                    Some(crate::preflight::unresolved_hint(&hosts)),
                )
                .into());
            }
            let url = sources.remove(0);
            let runner = runner_for(
                ctx,
                ctx.settings.policy(PolicyName::Download),
                step,
                log,
                recorder,
            )?;
            let dest = PathBuf::from(&d.to.value);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            let request = DownloadRequest {
                url,
                mirrors: sources,
                dest: dest.clone(),
                sha256: match &d.sha256 {
                    Some(s) => Some(Sha256::parse(&s.value)?),
                    None => None,
                },
                allow_http: d.allow_http,
                mode: d.mode,
                max_size: ctx.settings.download_max_size,
            };
            let existed = dest.exists();
            push_new(&mut record.uses.files, dest.clone());
            if !existed {
                push_new(&mut record.added.files, dest.clone());
                save_step(ctx, name, record, index).await;
            }
            let via = d.via.unwrap_or(if which::which("curl").is_ok() {
                Via::Curl
            } else {
                Via::Wget
            });
            let downloaded = match via {
                Via::Curl => match Curl::new(CurlConfig::default()) {
                    Ok(curl) => Arc::new(curl).download(&runner, &request).await,
                    Err(e) => Err(e),
                },
                Via::Wget => match Wget::new(WgetConfig::default()) {
                    Ok(wget) => Arc::new(wget).download(&runner, &request).await,
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = downloaded {
                if !dest.exists() {
                    record.added.files.retain(|f| f != &dest);
                    save_step(ctx, name, record, index).await;
                }
                return Err(e.into());
            }
            if let Some(unpack_to) = &d.unpack_to {
                let dir = Path::new(&unpack_to.value);
                unpack(ctx, name, record, index, &dest, dir).await?;
            }
            Ok(StepDone::Ran)
        }
        Step::Run(r) => {
            let policy = ctx.settings.policy(PolicyName::Run);
            let runner = runner_for(ctx, policy, step, log, recorder)?;
            let command = r.command.value.clone();
            let adapter = Arc::new(crate::shell_adapter::Shell {
                retried: step.retry.is_some(),
            });
            let out = runner
                .run(
                    &adapter,
                    em_retry::Operation::new("run", command.clone()),
                    None,
                    |_| shell(&command, manifest),
                )
                .await?;
            show_warnings(&ctx.ui, name, &out.stderr_text(), &log.path);
            Ok(StepDone::Ran)
        }
        Step::File(f) => {
            file_step(ctx, name, f, log, record, index).await?;
            Ok(StepDone::Ran)
        }
        Step::Block(b) => {
            block_step(ctx, name, b, log, record, index).await?;
            Ok(StepDone::Ran)
        }
    }
}

/// A `file` step: the whole file, written atomically with its mode (and owner). A file
/// that was there before (and is not this extension's) is refused unless `replace = true`,
/// which backs it up first; a re-run with the same content, mode and owner writes nothing.
async fn file_step(
    ctx: &Context,
    name: &str,
    f: &em_manifest::FileStep,
    log: &Log,
    record: &mut InstalledExtension,
    index: usize,
) -> Result<(), StepError> {
    use std::os::unix::fs::MetadataExt;
    let path = PathBuf::from(&f.path.value);
    let uid = f
        .owner
        .as_ref()
        .map(|o| crate::file_steps::user_id(&o.value))
        .transpose()?;
    let gid = match (&f.group, &f.owner) {
        (Some(g), _) => Some(crate::file_steps::group_id(&g.value)?),
        (None, Some(o)) => crate::file_steps::user_group(&o.value),
        (None, None) => None,
    };
    let existing = crate::file_steps::target(&path, "file")?;
    let ours =
        record.added.files.contains(&path) || record.added.replaced.iter().any(|r| r.path == path);
    let mode = f.mode();
    let bytes = f.content.value.as_bytes();
    if let Some(meta) = &existing {
        if !ours {
            let state = ctx.state.lock().await;
            if let Some((other, _)) = state.extensions.iter().find(|(n, r)| {
                n.as_str() != name
                    && (r.added.files.contains(&path)
                        || r.added.replaced.iter().any(|x| x.path == path))
            }) {
                return Err(format!(
                    "{} belongs to the extension `{other}`; nothing was written \
                     (hint: remove `{other}` first, or write another path)",
                    path.display()
                )
                .into());
            }
        }
        let same = meta.mode() & 0o7777 == mode
            && uid.is_none_or(|u| u == meta.uid())
            && gid.is_none_or(|g| g == meta.gid())
            && std::fs::read(&path).is_ok_and(|old| old == bytes);
        if same {
            log.line(&format!("{} is up to date: unchanged", path.display()));
            if !ours {
                // Already as the step wants it: nothing to undo, but the step uses it.
                push_new(&mut record.uses.files, path);
            }
            return Ok(());
        }
        if !ours {
            if !f.replace {
                return Err(format!(
                    "{} exists and is not this extension's; nothing was written \
                     (hint: add replace = true to the step to replace it; remove then puts the original back)",
                    path.display()
                )
                .into());
            }
            let backup = crate::file_steps::backup_path(ctx.state_dir.path(), name, &path);
            let original =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ctx.state_dir
                .secure()
                .and_then(|()| crate::state::write_private(&backup, &original))
                .map_err(|e| {
                    format!(
                        "cannot back up {} to {}: {e}",
                        path.display(),
                        backup.display()
                    )
                })?;
            record.added.replaced.push(crate::state::ReplacedFile {
                path: path.clone(),
                backup: backup.clone(),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            });
            save_step(ctx, name, record, index).await;
            log.line(&format!(
                "backed up {} to {}",
                path.display(),
                backup.display()
            ));
        }
    } else {
        let created = crate::file_steps::create_parents(&path)?;
        for dir in created {
            push_new(&mut record.added.dirs, dir);
        }
        push_new(&mut record.added.files, path.clone());
        save_step(ctx, name, record, index).await;
    }
    let owner = match (uid, gid) {
        (None, None) => None,
        (u, g) => {
            let meta = existing.as_ref();
            let me = std::fs::metadata("/proc/self").ok();
            let current = |m: Option<&std::fs::Metadata>, f: fn(&std::fs::Metadata) -> u32| {
                m.or(me.as_ref()).map_or(0, f)
            };
            Some((
                u.unwrap_or_else(|| current(meta, MetadataExt::uid)),
                g.unwrap_or_else(|| current(meta, MetadataExt::gid)),
            ))
        }
    };
    crate::file_steps::write(&path, bytes, mode, owner)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    log.line(&format!("wrote {} ({:04o})", path.display(), mode));
    Ok(())
}

/// A `block` step: the block between its markers, appended or replaced in place, the rest
/// of the file byte for byte as it was, its mode and owner kept.
async fn block_step(
    ctx: &Context,
    name: &str,
    b: &em_manifest::BlockStep,
    log: &Log,
    record: &mut InstalledExtension,
    index: usize,
) -> Result<(), StepError> {
    use std::os::unix::fs::MetadataExt;
    let path = PathBuf::from(&b.path.value);
    let label = b.label(name);
    let existing = crate::file_steps::target(&path, "block")?;
    let text = match &existing {
        Some(_) => {
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => Vec::new(),
    };
    let (new, added_newline) = crate::file_steps::upsert_block(&text, &label, &b.content.value);
    if existing.is_some() && new == text {
        log.line(&format!("the block in {} is up to date", path.display()));
        return Ok(());
    }
    if existing.is_none() {
        for dir in crate::file_steps::create_parents(&path)? {
            push_new(&mut record.added.dirs, dir);
        }
    }
    let appended = crate::file_steps::find_block(&text, &label).is_none();
    let known = record
        .added
        .blocks
        .iter()
        .position(|x| x.path == path && x.label == label);
    match known {
        Some(i) if appended => {
            // Ours, but taken out of the file since: appended again.
            record.added.blocks[i].added_newline = added_newline;
            record.added.blocks[i].created_file |= existing.is_none();
        }
        Some(_) => {}
        None => record.added.blocks.push(crate::state::BlockAdded {
            path: path.clone(),
            label: label.clone(),
            created_file: existing.is_none(),
            added_newline,
        }),
    }
    save_step(ctx, name, record, index).await;
    let (mode, owner) = match &existing {
        Some(m) => (m.mode() & 0o7777, Some((m.uid(), m.gid()))),
        None => (0o644, None),
    };
    crate::file_steps::write(&path, &new, mode, owner)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    log.line(&format!(
        "{} the block `{label}` in {}",
        if appended { "appended" } else { "updated" },
        path.display()
    ));
    Ok(())
}

/// How many of a successful `run` step's stderr lines the console shows (the last ones);
/// the log has them all.
const WARNING_LINES: usize = 5;

/// A successful `run` step's stderr, shown: a snippet that succeeds but says something on
/// stderr (a deprecation, a skipped part, "reboot required") is telling its user, and only
/// the log would have heard it. The last [`WARNING_LINES`] non-empty lines become `Warning`
/// status lines (escaped by the Ui, cut at [`em_exec::TAIL_LINE`] characters), then how
/// many more the log holds. A failure already quotes its tail in the error.
fn show_warnings(ui: &Ui, name: &str, stderr: &str, log: &Path) {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let hidden = lines.len().saturating_sub(WARNING_LINES);
    for line in &lines[hidden..] {
        let line = match line.char_indices().nth(em_exec::TAIL_LINE) {
            Some((cut, _)) => format!("{} ...", &line[..cut]),
            None => line.to_string(),
        };
        ui.status("Warning", Tone::Warn, &format!("{name}: {line}"));
    }
    if hidden > 0 {
        ui.status(
            "Warning",
            Tone::Warn,
            &format!(
                "{name}: ({hidden} more line{} in the log: {})",
                if hidden == 1 { "" } else { "s" },
                log.display()
            ),
        );
    }
}

/// Where third-party apt sources and their keys go (overridable for tests).
fn apt_etc_dirs() -> (PathBuf, PathBuf) {
    let dir = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    (
        dir("EM_APT_SOURCES_DIR", "/etc/apt/sources.list.d"),
        dir("EM_APT_KEYRINGS_DIR", "/etc/apt/keyrings"),
    )
}

/// A step's third-party `repository`: its key (downloaded, sha256-checked) under the
/// keyrings dir, a deb822 `extension-manager-NAME.sources` under sources.list.d, both
/// recorded for `remove`; then `apt-get update` of that source only.
#[allow(clippy::too_many_arguments)]
async fn add_repository(
    ctx: &Arc<Context>,
    name: &str,
    record: &mut InstalledExtension,
    apt: &Arc<Apt>,
    runner: &Runner,
    downloads: &Runner,
    repository: &em_manifest::AptRepository,
    allow_http: bool,
    index: usize,
) -> Result<(), StepError> {
    let (sources_dir, keyrings_dir) = apt_etc_dirs();
    for dir in [&sources_dir, &keyrings_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let key_path = keyrings_dir.join(format!("extension-manager-{name}.asc"));
    let sources_path = sources_dir.join(format!("extension-manager-{name}.sources"));
    push_new(&mut record.added.apt_sources, sources_path.clone());
    push_new(&mut record.added.apt_sources, key_path.clone());
    save_step(ctx, name, record, index).await;
    let request = DownloadRequest {
        url: repository.key.value.clone(),
        mirrors: Vec::new(),
        dest: key_path.clone(),
        sha256: match &repository.key_sha256 {
            Some(s) => Some(Sha256::parse(&s.value)?),
            None => None,
        },
        allow_http,
        mode: Some(0o644),
        max_size: ctx.settings.download_max_size,
    };
    Arc::new(Curl::new(CurlConfig::default())?)
        .download(downloads, &request)
        .await?;
    let components: Vec<&str> = repository
        .components
        .iter()
        .map(|c| c.value.as_str())
        .collect();
    let mut deb822 = format!(
        "# Written by extension-manager for `{name}`; removed by `extension-manager remove {name}`.\nTypes: deb\nURIs: {}\nSuites: {}\n",
        repository.uri.value, repository.suite.value
    );
    if !components.is_empty() {
        deb822.push_str(&format!("Components: {}\n", components.join(" ")));
    }
    deb822.push_str(&format!("Signed-By: {}\n", key_path.display()));
    crate::state::write_atomically(&sources_path, deb822.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", sources_path.display()))?;
    // The same source in one-line form, for an update of this source alone.
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let list = scratch.path().join("source.list");
    let line = format!(
        "deb [signed-by={}] {} {} {}\n",
        key_path.display(),
        repository.uri.value,
        repository.suite.value,
        components.join(" ")
    );
    std::fs::write(&list, line).map_err(|e| format!("cannot write {}: {e}", list.display()))?;
    apt.update_only(runner, &list).await?;
    Ok(())
}

/// The named packages of an apt step that dpkg positively says are absent: what the step
/// may add. When dpkg's status cannot be read, none is counted as added (a package the user
/// had must never be removed by `remove`); the log and the terminal say so.
async fn absent_apt_packages(
    ctx: &Context,
    apt: &Apt,
    packages: &[AptPackage],
    log: &Log,
) -> Vec<AptPackage> {
    match apt.inventory().await {
        Ok(before) => packages
            .iter()
            .filter(|p| !before.contains_name(p.name()))
            .cloned()
            .collect(),
        Err(e) => {
            unknown_state(ctx, log, &format!("dpkg's status is unknown ({e})"));
            Vec::new()
        }
    }
}

/// Records the packages an apt install pulled in as the step's dependencies.
fn record_pulled_in(
    ctx: &Context,
    pulled_in: &Result<BTreeSet<String>, String>,
    added: &mut Added,
    log: &Log,
) {
    match pulled_in {
        Ok(packages) => {
            for p in packages {
                if !added.apt.contains(p) {
                    push_new(&mut added.apt_deps, p.clone());
                }
            }
        }
        Err(e) => unknown_state(
            ctx,
            log,
            &format!("the packages apt pulled in are unknown ({e})"),
        ),
    }
}

/// After a failed install: forgets the named packages dpkg says are still absent (kept
/// when dpkg cannot tell: `remove` then tries them, which is harmless).
async fn forget_absent_apt(apt: &Apt, fresh: &[AptPackage], added: &mut Added) {
    if let Ok(now) = apt.inventory().await {
        for p in fresh.iter().filter(|p| !now.contains_name(p.name())) {
            added.apt.retain(|n| n != p.name());
        }
    }
}

/// Warns that a query failed, so nothing it concerns is recorded as added.
fn unknown_state(ctx: &Context, log: &Log, why: &str) {
    let text = format!("{why}: nothing is recorded as added by this step, so `remove` leaves it");
    log.line(&format!("warning: {text}"));
    ctx.ui.status("Warning", Tone::Warn, &text);
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn apt_adapter(ctx: &Context) -> Result<Arc<Apt>, StepError> {
    let mut slot = ctx
        .tools
        .apt
        .lock()
        .map_err(|_| "apt adapter lock poisoned".to_string())?;
    if let Some(apt) = slot.as_ref() {
        return Ok(apt.clone());
    }
    let apt = Arc::new(Apt::new(AptConfig {
        mirrors: ctx.settings.apt_mirrors.clone(),
        update_max_age: ctx.settings.apt_update_max_age,
        status_lines: ctx.ui.is_live(),
        ..AptConfig::default()
    })?);
    *slot = Some(apt.clone());
    Ok(apt)
}

/// `sh -c SCRIPT` (or `bash -c`: `[extension] shell`) with the extension's option
/// variables (`EM_OPT_*`), and a PATH that has the sbin directories: a check like `iotop
/// --version` or `sysctl` must find its tool when a sudo user without them in PATH runs it.
pub(crate) fn shell(script: &str, manifest: &ResolvedManifest) -> Cmd {
    let mut cmd = Cmd::tool(manifest.shell.program())
        .args(["-c", script])
        .env(
            "PATH",
            path_with_sbin(&std::env::var("PATH").unwrap_or_default()),
        );
    for (k, v) in manifest.option_env() {
        cmd = cmd.env(k, v);
    }
    cmd
}

/// `path` with /usr/local/sbin, /usr/sbin and /sbin appended when missing.
fn path_with_sbin(path: &str) -> String {
    let mut dirs: Vec<&str> = path.split(':').filter(|d| !d.is_empty()).collect();
    for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.contains(&sbin) {
            dirs.push(sbin);
        }
    }
    dirs.join(":")
}

/// Unpacks `archive` into `dir`, in-process (em-unpack: nothing lands outside `dir`, no
/// owner, setuid bit or device is kept, nothing already there is overwritten). The archive
/// is read and checked first; what it will create (`dir` itself, or the top-most paths
/// `dir` lacks) and the private temporary directory beside `dir` are recorded and saved
/// before anything is written, so that `remove` undoes a run killed midway. Then the paths
/// actually created replace them in the record; a failed unpacking has removed its own.
async fn unpack(
    ctx: &Context,
    name: &str,
    record: &mut InstalledExtension,
    index: usize,
    archive: &Path,
    dir: &Path,
) -> Result<(), StepError> {
    let limits = ctx.settings.unpack_limits;
    // An upgrade or a reinstall unpacks over this extension's own earlier tree: what the
    // record says it created goes first (never the archive, never what holds it).
    let mut replaced: Vec<PathBuf> = Vec::new();
    let plan = loop {
        let (a, d) = (archive.to_path_buf(), dir.to_path_buf());
        match blocking_raw(move || em_unpack::plan(&a, &d, limits)).await? {
            Err(em_unpack::Error::Conflict { path, reason }) => {
                let ours = record.added.files.iter().find(|f| {
                    path.starts_with(f)
                        && f.starts_with(dir)
                        && !archive.starts_with(f)
                        && !replaced.contains(f)
                });
                let Some(ours) = ours.cloned() else {
                    return Err(unpack_error(em_unpack::Error::Conflict { path, reason }));
                };
                remove_path(&ours).map_err(|e| {
                    StepError::from(format!(
                        "cannot replace {} (this extension's earlier tree): {e}",
                        ours.display()
                    ))
                })?;
                replaced.push(ours);
            }
            other => break other.map_err(unpack_error)?,
        }
    };
    let planned: Vec<PathBuf> = std::iter::once(plan.temp_dir().to_path_buf())
        .chain(plan.creates().iter().cloned())
        .collect();
    let fresh: Vec<PathBuf> = planned
        .iter()
        .filter(|p| !record.added.files.contains(p))
        .cloned()
        .collect();
    for path in &fresh {
        record.added.files.push(path.clone());
    }
    save_step(ctx, name, record, index).await;
    let unpacked = blocking(move || plan.unpack()).await;
    // em-unpack has removed its temporary directory, and on failure what it moved: a
    // planned path still there after that is one it could not remove, so it stays recorded.
    let created = unpacked.as_ref().map(Vec::as_slice).unwrap_or_default();
    record.added.files.retain(|f| {
        !fresh.contains(f)
            || created.contains(f)
            || (unpacked.is_err() && f.symlink_metadata().is_ok())
    });
    for path in created {
        push_new(&mut record.added.files, path.clone());
    }
    save_step(ctx, name, record, index).await;
    unpacked.map(|_| ())
}

/// Runs em-unpack's blocking work on tokio's blocking pool; its error, with its hint, is
/// the step's (permanent: the same archive fails the same way again).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, em_unpack::Error> + Send + 'static,
) -> Result<T, StepError> {
    blocking_raw(work).await?.map_err(unpack_error)
}

/// [`blocking`], with em-unpack's own error left for the caller to look at.
async fn blocking_raw<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, em_unpack::Error> + Send + 'static,
) -> Result<Result<T, em_unpack::Error>, StepError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StepError::from(format!("unpacking stopped: {e}")))
}

fn unpack_error(e: em_unpack::Error) -> StepError {
    StepError::from(format!("{e} (hint: {})", e.hint()))
}

/// Deletes a file, a symlink or a directory tree; one that is already gone is no error.
pub(crate) fn remove_path(path: &Path) -> std::io::Result<()> {
    let result = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A value of `[extension.env]` for a profile.d script: double-quoted, so that `$VAR` and
/// `${VAR}` expand when the login shell reads it (`PATH = "$HOME/.local/bin:$PATH"`), and
/// nothing else runs: `\`, `"`, backquotes and `$(` are escaped.
///
/// ```text
/// $HOME/.local/bin:$PATH   -> "$HOME/.local/bin:$PATH"
/// a "b" `c` $(d) \e        -> "a \"b\" \`c\` \$(d) \\e"
/// ```
fn env_value(value: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '"' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '$' if chars.peek() == Some(&'(') => out.push_str("\\$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `[extension.env]` to `<profile dir>/extension-manager-NAME.sh`, atomically.
fn write_env_file(
    ctx: &Context,
    manifest: &ResolvedManifest,
    added: &mut Added,
) -> Result<(), String> {
    if manifest.env.is_empty() {
        return Ok(());
    }
    let path = ctx
        .settings
        .profile_dir
        .join(format!("extension-manager-{}.sh", manifest.name()));
    let mut text = format!(
        "# Written by extension-manager for `{}`; removed by `extension-manager remove {}`.\n",
        manifest.name(),
        manifest.name()
    );
    for (k, v) in &manifest.env {
        text.push_str(&format!("export {k}={}\n", env_value(&v.value)));
    }
    std::fs::create_dir_all(&ctx.settings.profile_dir)
        .map_err(|e| format!("cannot create {}: {e}", ctx.settings.profile_dir.display()))?;
    crate::state::write_atomically(&path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !added.files.contains(&path) {
        added.files.push(path);
    }
    Ok(())
}

/// Runs the `[[validate]]` checks; `Err` names the first that failed and why.
pub async fn validate(manifest: &ResolvedManifest) -> Result<(), String> {
    for check in &manifest.validate {
        let out = shell(&check.run.value, manifest)
            .output(OutputMode::Capture)
            .run()
            .await
            .map_err(|e| format!("`{}` could not run: {e}", check.run.value))?;
        if !out.success() {
            let last = out
                .stderr_text()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            return Err(format!(
                "`{}` exited with {}{}",
                check.run.value,
                out.code(),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ));
        }
        if !check.is_expected_output(&out.stdout_text()) {
            return Err(format!(
                "`{}` printed {:?}, which does not match `{}`",
                check.run.value,
                out.stdout_text().trim(),
                check
                    .expect
                    .as_ref()
                    .map(|e| e.value.as_str())
                    .unwrap_or_default()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_variables_and_run_nothing() {
        let cases = [
            ("$HOME/.local/bin:$PATH", r#""$HOME/.local/bin:$PATH""#),
            ("${GOROOT}/bin", r#""${GOROOT}/bin""#),
            (r#"a "b" `c` $(d) \e"#, r#""a \"b\" \`c\` \$(d) \\e""#),
            ("", r#""""#),
        ];
        for (value, want) in cases {
            assert_eq!(env_value(value), want, "{value}");
            // The shell reads it back as meant (with HOME, PATH and GOROOT set).
            let script = format!(
                "HOME=/h PATH=/p GOROOT=/g; x={}; printf %s \"$x\"",
                env_value(value)
            );
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .output()
                .expect("sh");
            let expanded = value
                .replace("$HOME", "/h")
                .replace("$PATH", "/p")
                .replace("${GOROOT}", "/g");
            assert_eq!(String::from_utf8_lossy(&out.stdout), expanded, "{value}");
        }
    }

    #[test]
    fn the_sbin_directories_are_on_the_path_of_commands() {
        assert_eq!(
            path_with_sbin("/usr/local/bin:/usr/bin:/bin"),
            "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        );
        assert_eq!(
            path_with_sbin("/usr/sbin:/bin"),
            "/usr/sbin:/bin:/usr/local/sbin:/sbin"
        );
    }
}
