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
use em_exec::download::{DownloadRequest, Sha256};
use em_exec::{Cmd, LineSink, OutputMode, Runner, Stream, ToolError};
use em_manifest::{Arch, InstallStep, ResolvedManifest, Step};
use em_npm::{Npm, NpmConfig, NpmPackage};
use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};
use em_retry::{CircuitBreaker, Event, FailureClass, RetryPolicy, Subscriber};
use serde::Serialize;
use tokio::sync::{Mutex as AsyncMutex, Notify, OwnedSemaphorePermit, Semaphore};

use crate::adapter_context::PolicyName;
use crate::events::{Events, HumanEvents, Tone};
use crate::exit::Fault;
use crate::plan::{Action, Plan, PlanEntry};
use crate::state::{
    Added, ExtensionStatus, HistoryEntry, InstalledExtension, PipAdded, State, StateDir,
};

mod apt;
mod deb822;
mod env_file;
mod files;
pub mod lang_steps;
mod log;
mod report;
mod steps;
mod unpack;
mod validate;

use apt::*;
use deb822::*;
use env_file::*;
use files::*;
use log::*;
pub use report::*;
pub use steps::*;
pub use unpack::*;
pub use validate::*;

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
    /// `--locked`: the hashed pip sets by (extension, step index), from the plan.
    pub pinned_pip: BTreeMap<(String, usize), Vec<em_pip::HashedRequirement>>,
    /// `--offline --from DIR`: the bundle every package and download comes from.
    pub offline: Option<Arc<crate::bundle::OfflineSources>>,
}

impl RunSettings {
    fn policy(&self, name: PolicyName) -> RetryPolicy {
        self.policies
            .get(&name)
            .cloned()
            .unwrap_or_else(|| name.default_policy())
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
    ui: Arc<dyn Events>,
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

/// Runs `plan`, recording state and history as it goes.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    plan: Plan,
    settings: RunSettings,
    ui: Arc<dyn Events>,
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

async fn install_one(ctx: Arc<Context>, entry: PlanEntry, slot: &JobSlot) -> ExtensionReport {
    let started = Instant::now();
    let name = entry.name().to_string();
    let manifest = entry.manifest.clone();
    if entry.action == Action::Verify
        && let Some(report) = still_good(&ctx, &name, &manifest, started).await
    {
        return report;
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
    let mut record = new_record(&ctx, &name, &manifest).await;
    let (steps, failure) = run_steps(&ctx, &name, &manifest, &log, slot, &mut record).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let outcome = finish(&ctx, &name, &manifest, &log, &mut record, failure).await;
    if outcome == Outcome::Installed {
        say_installed(&ctx, &name, &manifest, &steps, duration_ms);
    }
    ExtensionReport {
        name,
        outcome,
        duration_ms,
        steps,
        log: Some(log.path.clone()),
    }
}

/// An installed extension whose checks pass is up to date: said, and reported. One whose
/// checks fail is said to be reinstalled (`None`: install it).
async fn still_good(
    ctx: &Context,
    name: &str,
    manifest: &ResolvedManifest,
    started: Instant,
) -> Option<ExtensionReport> {
    match validate(manifest).await {
        Ok(()) => {
            ctx.ui.status(
                "Up to date",
                Tone::Good,
                &format!(
                    "{name} {} (already installed; checks pass)",
                    manifest.version.value
                ),
            );
            history(ctx, name, "up-to-date", "").await;
            Some(ExtensionReport {
                name: name.to_string(),
                outcome: Outcome::UpToDate,
                duration_ms: started.elapsed().as_millis() as u64,
                steps: Vec::new(),
                log: None,
            })
        }
        Err(e) => {
            ctx.ui.status(
                "Reinstalling",
                Tone::Warn,
                &format!("{name}: installed, but {e}"),
            );
            None
        }
    }
}

/// The record of this install, partial until it ends; what an earlier, unfinished run of
/// this extension added is kept (remove must undo it too).
async fn new_record(ctx: &Context, name: &str, manifest: &ResolvedManifest) -> InstalledExtension {
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
    if let Some(previous) = ctx.state.lock().await.extensions.get(name) {
        record.added = previous.added.clone();
    }
    record
}

/// Runs the manifest's steps in order, until one fails that is not optional: the steps'
/// reports, and that failure.
async fn run_steps(
    ctx: &Arc<Context>,
    name: &str,
    manifest: &ResolvedManifest,
    log: &Log,
    slot: &JobSlot,
    record: &mut InstalledExtension,
) -> (Vec<StepReport>, Option<StepError>) {
    let mut steps = Vec::new();
    let total = manifest.install.len();
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
        let at = format!("{name} [{}/{total}]", index + 1);
        ctx.ui
            .task_step(name, "Step", &format!("{at} {}", report.summary));
        log.line(&format!(
            "## step {}/{total}: {}",
            index + 1,
            report.summary
        ));
        let recorder = Arc::new(StepRecorder::default());
        let run = StepRun {
            ctx,
            name,
            manifest,
            step,
            log,
            recorder: recorder.clone(),
            slot,
            index,
        };
        let result = run_step(run, record).await;
        report.take_recorded(&recorder);
        report.duration_ms = began.elapsed().as_millis() as u64;
        match result {
            Ok(StepDone::Ran) => {
                report.result = "ok".into();
                record.completed_steps.push(index);
                save_step(ctx, name, record, index).await;
            }
            Ok(StepDone::Guarded(why)) => {
                ctx.ui
                    .status("Skipped", Tone::Info, &format!("{at}: {why}"));
                report.result = "skipped".into();
                report.detail = Some(why);
                record.completed_steps.push(index);
            }
            Err(e) if step.optional => {
                // Best effort: said, recorded, and the extension goes on.
                ctx.ui.status(
                    "Warning",
                    Tone::Warn,
                    &format!("{at} failed, optional: {}", e.message),
                );
                log.line(&format!("!! optional step failed: {}", e.message));
                report.result = "failed (optional)".into();
                report.detail = Some(e.message.clone());
                record.completed_steps.push(index);
                save_step(ctx, name, record, index).await;
            }
            Err(e) => {
                report.result = "failed".into();
                report.detail = Some(e.message.clone());
                log.line(&format!("!! step failed: {}", e.message));
                steps.push(report);
                return (steps, Some(e));
            }
        }
        steps.push(report);
    }
    (steps, None)
}

/// After the steps: the env file and the checks, then the record saved as installed or
/// failed, the history entry, and a failure said with where its log is.
async fn finish(
    ctx: &Context,
    name: &str,
    manifest: &ResolvedManifest,
    log: &Log,
    record: &mut InstalledExtension,
    mut failure: Option<StepError>,
) -> Outcome {
    if failure.is_none()
        && let Err(e) = write_env_file(ctx, manifest, &mut record.added)
    {
        failure = Some(StepError::from(e));
    }
    if failure.is_none()
        && let Err(e) = validate(manifest).await
    {
        failure = Some(StepError::from(format!("validation failed: {e}")));
    }
    if failure.is_none() {
        record.status = ExtensionStatus::Installed;
        record.error = None;
        save_record(ctx, name, record).await;
        failure = take_state_error(ctx);
    }
    match failure {
        None => {
            history(ctx, name, "installed", &manifest.version.value).await;
            Outcome::Installed
        }
        Some(e) => {
            record.status = ExtensionStatus::Failed;
            record.error = Some(e.message.clone());
            save_record(ctx, name, record).await;
            history(ctx, name, "failed", &e.message).await;
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
    }
}

/// `Installed NAME VERSION in 1.2s (1 retry, 0 repairs)`.
fn say_installed(
    ctx: &Context,
    name: &str,
    manifest: &ResolvedManifest,
    steps: &[StepReport],
    duration_ms: u64,
) {
    let retries: usize = steps.iter().map(|s| s.delays_ms.len()).sum();
    let repairs: usize = steps.iter().map(|s| s.repairs.len()).sum();
    let counts = if retries + repairs > 0 {
        format!(
            " ({retries} retr{}, {repairs} repair{})",
            if retries == 1 { "y" } else { "ies" },
            if repairs == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    ctx.ui.status(
        "Installed",
        Tone::Good,
        &format!(
            "{name} {} in {}{counts}",
            manifest.version.value,
            em_retry::fmt_duration(Duration::from_millis(duration_ms)),
        ),
    );
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

/// The one shape of a step that adds things to the host. What it is about to add is
/// already in `record`: this saves it (a run killed while the tool runs still knows what to
/// undo), runs `work`, and after a failure lets `forget` drop from `record.added` what is
/// not there after all, saving again when `forget` says it changed the record.
async fn recorded<T, E>(
    ctx: &Context,
    name: &str,
    record: &mut InstalledExtension,
    index: usize,
    work: impl Future<Output = Result<T, E>>,
    forget: impl AsyncFnOnce(&mut Added, &E) -> bool,
) -> Result<T, E> {
    save_step(ctx, name, record, index).await;
    let result = work.await;
    if let Err(e) = &result
        && forget(&mut record.added, e).await
    {
        save_step(ctx, name, record, index).await;
    }
    result
}

/// After a failed install: drops from `added` the `fresh` items (those the tool lacked
/// before) that its list `now` does not show; false, keeping them all, when the list could
/// not be read.
fn keep_listed<T: PartialEq, L, E>(
    added: &mut Vec<T>,
    fresh: &[T],
    now: Result<L, E>,
    listed: impl Fn(&L, &T) -> bool,
) -> bool {
    let Ok(now) = now else {
        return false;
    };
    added.retain(|item| !fresh.contains(item) || listed(&now, item));
    true
}

/// Parses each of a step's `packages` with `parse`; the first bad one is the step's error,
/// quoted.
fn parse_each<T, E: std::fmt::Display>(
    values: &[em_manifest::Spanned<String>],
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, StepError> {
    values
        .iter()
        .map(|p| parse(&p.value).map_err(|e| StepError::from(format!("`{}`: {e}", p.value))))
        .collect()
}

async fn history(ctx: &Context, name: &str, event: &str, detail: &str) {
    let entry = HistoryEntry::new(&ctx.run_id, &ctx.command, Some(name), event, detail);
    if let Err(e) = ctx.state_dir.append_history(&entry) {
        tracing::warn!("could not append to the history: {e}");
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
