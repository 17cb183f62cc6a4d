//! `install`, `upgrade` and `plan`: resolve what to do, hold the run lock, execute the plan,
//! record state, history and the report, and print the summary.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use em_manifest::Arch;
use em_retry::Subscriber;

use crate::adapter_context::{budget_dir, circuit_breaker};
use crate::error::CliError;
use crate::executor::{self, Outcome, RunReport, RunSettings};
use crate::exit;
use crate::output::{OutputFormat, Tone, Ui};
use crate::plan::{self, Action, OptionSets, Plan, PlanError, Reason};
use crate::policy_options::parse_duration;
use crate::session::{Session, installed_for_planning};
use crate::state::{HistoryEntry, new_run_id};

/// Which extensions a command is about: named, a profile, or all.
#[derive(clap::Args, Debug, Clone)]
pub struct Selection {
    /// Extensions by name
    #[arg(value_name = "EXT")]
    pub extensions: Vec<String>,
    /// The extensions of a profile (profiles.toml)
    #[arg(long, value_name = "NAME", conflicts_with = "extensions")]
    pub profile: Option<String>,
    /// Every extension on the search path
    #[arg(long, conflicts_with_all = ["extensions", "profile"])]
    pub all: bool,
}

impl Selection {
    /// The names selected; an error when nothing was.
    pub fn resolve(&self, session: &Session) -> Result<Vec<String>, String> {
        if self.all {
            return Ok(session.catalog.names().map(str::to_string).collect());
        }
        if let Some(profile) = &self.profile {
            return session
                .catalog
                .expand_profile(profile)
                .map_err(|d| d.to_string());
        }
        if self.extensions.is_empty() {
            return Err("name at least one extension, or use --profile NAME or --all\nhint: `extension-manager list` shows them".into());
        }
        Ok(self.extensions.clone())
    }
}

/// `install`'s arguments.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    selection: Selection,
    /// The user whose home `scope = "user"` extensions go into [default: the user who
    /// ran sudo, or yourself when not root]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Reinstall even when installed with the same manifest and its checks pass
    #[arg(long)]
    force: bool,
    /// Show the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Extensions installed at once [default: 4, or `jobs` in the config]
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// After a failure, go on with the extensions that do not depend on it
    #[arg(long)]
    keep_going: bool,
    /// Set an option: --set nodejs.version=22
    #[arg(long = "set", value_name = "EXT.OPTION=VALUE")]
    sets: Vec<String>,
    /// How long to wait for another run's lock [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    lock_timeout: Option<Duration>,
    /// Install exactly what the lock file holds (see `lock`); refuse when it does not match
    #[arg(long)]
    locked: bool,
    /// The lock file of --locked
    #[arg(long, value_name = "FILE", default_value = em_lock::FILE_NAME)]
    lock_file: PathBuf,
    /// Install from a bundle (see `bundle`) with no network at all; implies --locked
    #[arg(long, requires = "from")]
    offline: bool,
    /// The bundle directory of --offline
    #[arg(long, value_name = "DIR", requires = "offline")]
    from: Option<PathBuf>,
}

impl InstallArgs {
    /// The extensions named on the command line (not a profile's or --all).
    pub fn named(&self) -> &[String] {
        &self.selection.extensions
    }
}

impl PlanArgs {
    /// The extensions named on the command line (not a profile's or --all).
    pub fn named(&self) -> &[String] {
        &self.selection.extensions
    }
}

/// `upgrade`'s arguments.
#[derive(clap::Args, Debug)]
pub struct UpgradeArgs {
    /// Extensions to upgrade [default: every installed one]
    #[arg(value_name = "EXT")]
    extensions: Vec<String>,
    /// Show the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// After a failure, go on with the extensions that do not depend on it
    #[arg(long)]
    keep_going: bool,
    /// How long to wait for another run's lock [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    lock_timeout: Option<Duration>,
}

/// `plan`'s arguments.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    selection: Selection,
    /// The user whose home `scope = "user"` extensions go into [default: the user who
    /// ran sudo, or yourself when not root]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Set an option: --set nodejs.version=22
    #[arg(long = "set", value_name = "EXT.OPTION=VALUE")]
    sets: Vec<String>,
    /// Plan as `--force` would
    #[arg(long)]
    force: bool,
    /// Exit 1 when there is work to do (a drift check for CI); with --locked, also when
    /// the extensions drifted from the lock file
    #[arg(long)]
    exit_code: bool,
    /// Compare with the lock file: a changed manifest or option is drift
    #[arg(long)]
    locked: bool,
    /// The lock file of --locked
    #[arg(long, value_name = "FILE", default_value = em_lock::FILE_NAME)]
    lock_file: PathBuf,
}

/// What `install` and friends share from the command line.
pub struct Common<'a> {
    /// Status lines.
    pub ui: Arc<Ui>,
    /// Event subscribers (metrics, JSON logs).
    pub subscribers: Vec<Arc<dyn Subscriber>>,
    /// `--output`.
    pub output: OutputFormat,
    /// `--report FILE`.
    pub report: Option<&'a std::path::Path>,
    /// The command line, for history and the lock holder.
    pub command: String,
    /// `--metrics`: where install outcomes are counted too.
    pub metrics: Option<Arc<em_retry::Metrics>>,
    /// What each registry or host did over the run (the CI step summary).
    pub tally: Arc<em_exec::SourceTally>,
}

/// Parses `--jobs`: 1 to [`crate::config::MAX_JOBS`].
fn parse_jobs(text: &str) -> Result<usize, String> {
    let max = crate::config::MAX_JOBS;
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}, e.g. 4")),
    }
}

fn make_plan(
    session: &Session,
    names: &[String],
    sets: &[String],
    force: bool,
) -> Result<Plan, CliError> {
    let sets = OptionSets::parse(sets)?;
    let state = session.state()?;
    let target = session.target_user();
    if let Some(user) = &target
        && em_exec::is_root()
    {
        let system = session
            .system_state_dir
            .load()
            .map_err(|e| CliError::permanent(e.to_string()))?;
        let missing = plan::missing_system_requirements(
            &session.catalog,
            names,
            &installed_for_planning(&system),
        )
        .map_err(|e| CliError::usage(e.to_string()))?;
        if !missing.is_empty() {
            return Err(CliError::usage(format!(
                "the user extensions for `{}` require the system extensions {}, which are not installed\nhint: install them first, as root and without --user: `extension-manager install {}`",
                user.name,
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.join(" ")
            )));
        }
    }
    plan::plan_for(
        &session.catalog,
        names,
        &sets,
        &installed_for_planning(&state),
        force,
        Arch::host(),
        target.as_ref(),
    )
    .map_err(|e| match e {
        PlanError::Manifest(d) => CliError::usage(d.to_string()),
        other => CliError::usage(other.to_string()),
    })
}

/// `plan`.
pub fn plan_command(
    session: &Session,
    args: &PlanArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let names = args.selection.resolve(session)?;
    let plan = make_plan(session, &names, &args.sets, args.force)?;
    let mut work = plan.entries.iter().any(|e| e.action.is_work());
    if !args.locked {
        print_plan(&plan, common.output);
    }
    if args.locked {
        let lock = crate::locked::read(&args.lock_file)?;
        let drifted = crate::locked::drift(&plan, &lock);
        if common.output == OutputFormat::Json {
            // The plan's document, plus `drift`: [{name, reasons}] (empty: none).
            let mut doc: serde_json::Value =
                serde_json::from_str(&plan_text(&plan, common.output)).unwrap_or_default();
            doc["drift"] = drifted
                .iter()
                .map(|(name, why)| serde_json::json!({ "name": name, "reasons": why }))
                .collect();
            println!("{}", em_exec::redact_urls(&doc.to_string()));
        } else {
            print_plan(&plan, common.output);
        }
        for (name, why) in &drifted {
            common.ui.status(
                "Drifted",
                Tone::Warn,
                &format!(
                    "{name}: {} (from {})",
                    why.join("; "),
                    args.lock_file.display()
                ),
            );
        }
        work |= !drifted.is_empty();
    }
    Ok(if args.exit_code && work {
        exit::FAILURE
    } else {
        exit::OK
    })
}

fn print_plan(plan: &Plan, format: OutputFormat) {
    // Steps show their URLs: without the passwords some carry.
    let _ = std::io::stdout()
        .lock()
        .write_all(em_exec::redact_urls(&plan_text(plan, format)).as_bytes());
}

fn plan_text(plan: &Plan, format: OutputFormat) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let out = &mut out;
    if format == OutputFormat::Json {
        let entries: Vec<serde_json::Value> = plan
            .entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name(),
                    "version": e.manifest.version.value,
                    "action": e.action,
                    "reason": e.reason,
                    "waits_for": e.waits_for,
                    "steps": e.steps,
                })
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::json!({ "plan": entries }));
        return std::mem::take(out);
    }
    if plan.entries.is_empty() {
        let _ = writeln!(out, "Nothing to do.");
        return std::mem::take(out);
    }
    for (i, e) in plan.entries.iter().enumerate() {
        let action = match &e.action {
            Action::Install => "install".to_string(),
            Action::Reinstall(why) => format!("reinstall ({why})"),
            Action::Verify => "installed: check only".to_string(),
            Action::Force => "reinstall (--force)".to_string(),
        };
        let reason = match &e.reason {
            Reason::Requested => String::new(),
            Reason::RequiredBy(by) => format!(", required by {}", by.join(", ")),
        };
        let _ = writeln!(
            out,
            "{}. {} {}: {action}{reason}",
            i + 1,
            e.name(),
            e.manifest.version.value
        );
        if e.action == Action::Verify {
            continue;
        }
        for s in &e.steps {
            match &s.skipped {
                Some(why) => {
                    let _ = writeln!(out, "     - {} (skipped: {why})", s.summary);
                }
                None => {
                    let _ = writeln!(out, "     - {}", s.summary);
                }
            }
            for line in s.repository.iter().flat_map(|r| r.lines()) {
                let _ = writeln!(out, "       {line}");
            }
        }
    }
    std::mem::take(out)
}

/// `install`.
pub async fn install(
    session: &Session,
    args: InstallArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let result = install_run(session, args, common).await;
    json_on_error(common, result, |code, error| {
        refusal_json(&common.command, None, code, error)
    })
}

/// `--output json` prints one document on stdout whatever the outcome: when `result` is an
/// error (which ends the command before its own document, and which the caller prints on
/// stderr as usual), `document(exit code, error)` is that document.
pub fn json_on_error(
    common: &Common<'_>,
    result: Result<u8, CliError>,
    document: impl FnOnce(u8, serde_json::Value) -> serde_json::Value,
) -> Result<u8, CliError> {
    if common.output == OutputFormat::Json
        && let Err(e) = &result
    {
        let doc = document(e.exit_code(), error_json(&e.to_string(), e.hint(), &[]));
        println!("{}", em_exec::redact_urls(&doc.to_string()));
    }
    result
}

/// The `error` of a JSON document: what went wrong, what to do, and the requirements that
/// are not met, as (extension, message).
pub fn error_json(
    message: &str,
    hint: Option<&str>,
    unmet: &[(String, String)],
) -> serde_json::Value {
    let unmet: Vec<serde_json::Value> = unmet
        .iter()
        .map(|(name, message)| serde_json::json!({ "extension": name, "message": message }))
        .collect();
    serde_json::json!({ "message": message, "hint": hint, "unmet": unmet })
}

/// The report of a run refused before it installed anything (bad input, the lock, unmet
/// requirements): a normal report's keys, no extensions, and the refusal as its `error`.
pub fn refusal_json(
    command: &str,
    run_id: Option<&str>,
    exit_code: u8,
    error: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "run_id": run_id,
        "command": command,
        "exit_code": exit_code,
        "extensions": [],
        "error": error,
    })
}

async fn install_run(
    session: &Session,
    args: InstallArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let names = args.selection.resolve(session)?;
    // Validate everything the user typed before waiting for anybody's lock.
    let mut first = make_plan(session, &names, &args.sets, args.force)?;
    let locked = args.locked || args.offline;
    let lock = match locked {
        true => {
            let lock = crate::locked::read(&args.lock_file)?;
            crate::locked::pin(&mut first, &lock, &args.lock_file)?;
            Some(lock)
        }
        false => None,
    };
    if args.dry_run {
        // With --locked: the pinned plan, steps showing the locked versions.
        print_plan(&first, common.output);
        return Ok(exit::OK);
    }
    // Offline, the bundle is checked instead of asking the sources what they offer.
    let offline = match &args.from {
        Some(dir) => Some(Arc::new(open_bundle(dir, &args.lock_file)?)),
        None => None,
    };
    if let Some(lock) = &lock
        && offline.is_none()
    {
        crate::locked::check_offered(&first, lock, session.config.registries.npm.as_deref())
            .await?;
    }
    let lock_timeout = args.lock_timeout.unwrap_or(session.config.lock_timeout);
    execute(
        session,
        common,
        lock_timeout,
        |session| {
            let mut plan = make_plan(session, &names, &args.sets, args.force)?;
            if let Some(lock) = &lock {
                crate::locked::pin(&mut plan, lock, &args.lock_file)?;
            }
            Ok(plan)
        },
        args.jobs,
        args.keep_going,
        offline,
    )
    .await
}

/// Opens the bundle of `--offline --from DIR`, made from `lock_file`: a missing, changed
/// or foreign bundle is refused before anything runs (exit 2).
fn open_bundle(
    dir: &std::path::Path,
    lock_file: &std::path::Path,
) -> Result<em_install::bundle::OfflineSources, CliError> {
    let lock_sha256 = em_install::bundle::sha256_file(lock_file).map_err(CliError::usage)?;
    em_install::bundle::OfflineSources::open(dir, &lock_sha256).map_err(|e| {
        let (message, hint) = match e.split_once("\nhint: ") {
            Some((m, h)) => (m.to_string(), Some(h.to_string())),
            None => (e, None),
        };
        let error = CliError::usage(message);
        match hint {
            Some(h) => error.with_hint(h),
            None => error,
        }
    })
}

/// `upgrade`: reinstall what changed (a changed manifest or options); check the rest.
pub async fn upgrade(
    session: &Session,
    args: UpgradeArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let result = upgrade_run(session, args, common).await;
    json_on_error(common, result, |code, error| {
        refusal_json(&common.command, None, code, error)
    })
}

async fn upgrade_run(
    session: &Session,
    args: UpgradeArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let names = if args.extensions.is_empty() {
        session.state()?.extensions.keys().cloned().collect()
    } else {
        args.extensions.clone()
    };
    if names.is_empty() {
        common
            .ui
            .status("Nothing", Tone::Good, "is installed: nothing to upgrade");
        if common.output == OutputFormat::Json {
            let doc = refusal_json(&common.command, None, exit::OK, serde_json::Value::Null);
            println!("{}", em_exec::redact_urls(&doc.to_string()));
        }
        return Ok(exit::OK);
    }
    if args.dry_run {
        print_plan(&make_plan(session, &names, &[], false)?, common.output);
        return Ok(exit::OK);
    }
    make_plan(session, &names, &[], false)?;
    let lock_timeout = args.lock_timeout.unwrap_or(session.config.lock_timeout);
    execute(
        session,
        common,
        lock_timeout,
        |s| make_plan(s, &names, &[], false),
        None,
        args.keep_going,
        None,
    )
    .await
}

async fn execute(
    session: &Session,
    common: &Common<'_>,
    lock_timeout: Duration,
    planner: impl Fn(&Session) -> Result<Plan, CliError>,
    jobs: Option<usize>,
    keep_going: bool,
    offline: Option<Arc<em_install::bundle::OfflineSources>>,
) -> Result<u8, CliError> {
    let _lock = match session
        .state_dir
        .lock_reporting(lock_timeout, &common.command, &*common.ui)
        .await
    {
        Ok(lock) => lock,
        Err(e) => {
            common.ui.error(&e.to_string(), None);
            if common.output == OutputFormat::Json {
                let error = error_json(&e.to_string(), None, &[]);
                let doc = refusal_json(&common.command, None, e.exit_code(), error);
                println!("{}", em_exec::redact_urls(&doc.to_string()));
            }
            return Ok(e.exit_code());
        }
    };
    // Plan again under the lock: a run that finished while we waited has changed the state.
    let plan = planner(session)?;
    let findings = crate::preflight::check(&plan, keep_going, offline.is_none()).await;
    for (name, message) in &findings.warnings {
        common
            .ui
            .status("Warning", Tone::Warn, &format!("{name}: {message}"));
    }
    if !findings.fatal.is_empty() {
        for (name, message) in &findings.fatal {
            common
                .ui
                .status("Unmet", Tone::Bad, &format!("{name}: {message}"));
        }
        let message = "requirements are not met: nothing was installed";
        let hint = findings.hint();
        common.ui.error(message, Some(&hint));
        let run_id = new_run_id();
        let error = error_json(message, Some(&hint), &findings.fatal);
        let json = refusal_json(&common.command, Some(&run_id), exit::FAILURE, error);
        // Redacted as a run's report is.
        let json = serde_json::from_str(&em_exec::redact_urls(&json.to_string())).unwrap_or(json);
        write_reports(session, common, &json);
        if common.output == OutputFormat::Json {
            println!("{json}");
        }
        return Ok(exit::FAILURE);
    }
    let state = session.state()?;
    let run_id = new_run_id();
    let config = &session.config;
    let settings = RunSettings {
        jobs: jobs.unwrap_or(config.jobs),
        keep_going,
        policies: config.policies.clone(),
        apt_mirrors: config.mirrors.apt.clone(),
        apt_update_max_age: config.apt_update_max_age,
        unpack_limits: config.unpack,
        download_max_size: config.download_max_size,
        npm_registry: config.registries.npm.clone(),
        npm_mirrors: config.mirrors.npm.clone(),
        pip_index: config.registries.pip.clone(),
        pip_mirrors: config.mirrors.pip.clone(),
        profile_dir: std::env::var_os("EM_PROFILE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/profile.d")),
        circuit: circuit_breaker(&session.state_dir.circuits_dir(), &config.circuit),
        budget: config
            .retry_budget
            .budget(&budget_dir(&session.state_dir.circuits_dir())),
        tally: common.tally.clone(),
        host: Arch::host(),
        unresolved_hosts: findings.unresolved,
        pinned_pip: plan.pinned_pip.clone(),
        offline,
    };
    let report = executor::run(
        plan,
        settings,
        common.ui.clone(),
        common.subscribers.clone(),
        session.state_dir.clone(),
        state,
        run_id.clone(),
        common.command.clone(),
    )
    .await;
    let json = report_json(&report, &run_id, &common.command);
    write_reports(session, common, &json);
    let _ = session.state_dir.append_history(&HistoryEntry::new(
        &run_id,
        &common.command,
        None,
        "run",
        &format!("exit {}", report.exit_code()),
    ));
    if let Some(metrics) = &common.metrics {
        for e in &report.extensions {
            let outcome = match &e.outcome {
                Outcome::Installed => "installed",
                Outcome::UpToDate => "up_to_date",
                Outcome::Failed {
                    fault: crate::exit::Fault::Transient,
                    ..
                } => "failed_transient",
                Outcome::Failed { .. } => "failed_permanent",
                Outcome::Skipped { .. } => "skipped",
            };
            metrics.increment(
                "installs_total",
                "Extensions by the outcome of their install.",
                &[("extension", &e.name), ("outcome", outcome)],
            );
        }
    }
    print_summary(&report, &common.ui);
    if common.output == OutputFormat::Json {
        println!("{json}");
    }
    Ok(report.exit_code())
}

/// Writes `reports/last.json` and the `--report` file.
fn write_reports(session: &Session, common: &Common<'_>, json: &serde_json::Value) {
    if let Err(e) = session.state_dir.write_report(json) {
        common
            .ui
            .error(&format!("could not write reports/last.json: {e}"), None);
    }
    if let Some(path) = common.report
        && let Err(e) = crate::state::write_atomically(path, format!("{json:#}\n").as_bytes())
    {
        common.ui.error(
            &format!("could not write the report to {}: {e}", path.display()),
            None,
        );
    }
}

/// The machine-readable report of a run (`reports/last.json`, `--report`, `--output json`).
///
/// URL userinfo is redacted everywhere in it (commands, operations, tool output).
pub fn report_json(report: &RunReport, run_id: &str, command: &str) -> serde_json::Value {
    let json = serde_json::json!({
        "run_id": run_id,
        "command": command,
        "exit_code": report.exit_code(),
        "extensions": report.extensions,
        // A refused run's reason (see `refusal_json`); a run that ran reports per extension.
        "error": null,
    });
    // Redacting the JSON text keeps every string's escaping valid: `***` needs none, and
    // the userinfo it replaces ends at `@`.
    serde_json::from_str(&em_exec::redact_urls(&json.to_string())).unwrap_or(json)
}

/// The final table on stderr: each extension's result, time, attempts, retries, repairs.
pub fn print_summary(report: &RunReport, ui: &Ui) {
    if report.extensions.is_empty() {
        ui.status("Nothing", Tone::Good, "to do");
        return;
    }
    let result_of = |outcome: &Outcome| match outcome {
        Outcome::Installed => "installed",
        Outcome::UpToDate => "up to date",
        Outcome::Failed { fault, .. } => fault.summary_word(),
        Outcome::Skipped { .. } => "skipped",
    };
    // Columns as wide as their longest entry: a long extension name shifts the table, it
    // does not break it.
    let name_width = report
        .extensions
        .iter()
        .map(|e| e.name.chars().count())
        .chain([16])
        .max()
        .unwrap_or(16);
    let result_width = report
        .extensions
        .iter()
        .map(|e| result_of(&e.outcome).len())
        .chain([18])
        .max()
        .unwrap_or(18);
    let row = |name: &str,
               result: &str,
               time: &str,
               attempts: &str,
               retries: &str,
               repairs: &str| {
        format!(
            "{name:<name_width$} {result:<result_width$} {time:>8} {attempts:>8} {retries:>7} {repairs:>7}"
        )
    };
    let mut lines = vec![row(
        "extension",
        "result",
        "time",
        "attempts",
        "retries",
        "repairs",
    )];
    for e in &report.extensions {
        lines.push(row(
            &e.name,
            result_of(&e.outcome),
            &em_retry::fmt_duration(Duration::from_millis(e.duration_ms)),
            &e.attempts().to_string(),
            &e.retries().to_string(),
            &e.repairs().to_string(),
        ));
        // What went wrong, under its row and labelled, so that it cannot be read as a row.
        match &e.outcome {
            Outcome::Failed { message, .. } => {
                lines.push(format!("  why: {}", message.replace('\n', "\n       ")));
                if let Some(log) = &e.log {
                    lines.push(format!("  log: {}", log.display()));
                }
            }
            Outcome::Skipped { reason } => {
                lines.push(format!("  why: {}", reason.replace('\n', "\n       ")));
            }
            _ => {}
        }
    }
    let count =
        |f: fn(&Outcome) -> bool| report.extensions.iter().filter(|e| f(&e.outcome)).count();
    let installed = count(|o| matches!(o, Outcome::Installed));
    let fresh = count(|o| matches!(o, Outcome::UpToDate));
    let failed = count(|o| matches!(o, Outcome::Failed { .. }));
    let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
    let tone = if failed + skipped > 0 {
        Tone::Bad
    } else {
        Tone::Good
    };
    ui.status(
        "Summary",
        tone,
        &format!("{installed} installed, {fresh} up to date, {failed} failed, {skipped} skipped"),
    );
    ui.block(&lines.join("\n"));
}
