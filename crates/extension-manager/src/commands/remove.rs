//! `remove EXT... [--cascade] [--dry-run]`: undo what an install added, and only that: a
//! package, a global npm package, a pip package or a file that another installed extension
//! also added stays (reference counting over the state).
//!
//! Order: the manifest's `[[remove]]` steps first (the extension's own teardown, with its
//! options filled in as at install time), then the recorded additions step by step, the
//! last install step first (so `npm uninstall -g` runs while the npm that an earlier apt
//! step installed is still there). apt packages are purged, and the dependencies an
//! install pulled in go only when apt says nothing else needs them (docs/decisions.md,
//! "Exact undo"). Progress is saved after each undone step, so that a run that fails
//! midway resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use em_apt::{Apt, AptConfig, AptPackage};
use em_exec::{OutputMode, Runner};
use em_manifest::{Manifest, OptionValue};
use em_npm::{Npm, NpmConfig, NpmPackage};
use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};
use em_retry::Subscriber;

use crate::adapter_context::PolicyName;
use crate::commands::install::{Common, error_json, json_on_error};
use crate::error::CliError;
use crate::exit;
use crate::file_steps::UnsafeParent;
use crate::output::{HumanEvents, OutputFormat, Tone, Ui};
use crate::policy_options::parse_duration;
use crate::session::Session;
use crate::state::{Added, ExtensionStatus, HistoryEntry, InstalledExtension, State, new_run_id};

/// `remove`'s arguments.
#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// Extensions to remove
    #[arg(value_name = "EXT", required = true)]
    extensions: Vec<String>,
    /// The user whose home `scope = "user"` extensions go into [default: the user who
    /// ran sudo, or yourself when not root]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Also remove the installed extensions that require them
    #[arg(long)]
    cascade: bool,
    /// Show what would be removed and change nothing
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for another run's lock [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    lock_timeout: Option<Duration>,
}

impl RemoveArgs {
    /// The extensions to remove.
    pub fn named(&self) -> &[String] {
        &self.extensions
    }
}

/// `remove`. With `--output json`, one document on stdout whatever the outcome:
/// `{command, exit_code, removed, failed, error}` (`error`: what stopped it, or null);
/// `--dry-run` adds `would_remove: [{name, actions}]`, in the order `remove` would go.
pub async fn remove(
    session: &Session,
    args: RemoveArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let result = remove_run(session, args, common).await;
    json_on_error(common, result, |code, error| {
        remove_json(&common.command, code, &[], error)
    })
}

/// `remove`'s JSON document.
fn remove_json(
    command: &str,
    exit_code: u8,
    removed: &[String],
    error: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "command": command,
        "exit_code": exit_code,
        "removed": removed,
        "failed": exit_code != exit::OK,
        "error": error,
    })
}

/// `remove`; an `Err` means nothing was printed on stdout yet.
async fn remove_run(
    session: &Session,
    args: RemoveArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let state = session.state()?;
    let order = removal_order(session, &state, &args)?;
    if args.dry_run {
        print_dry_run(session, &state, &order, common);
        return Ok(exit::OK);
    }
    let lock_timeout = args.lock_timeout.unwrap_or(session.config.lock_timeout);
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
                let doc = remove_json(&common.command, e.exit_code(), &[], error);
                println!("{}", em_exec::redact_urls(&doc.to_string()));
            }
            return Ok(e.exit_code());
        }
    };
    let run_id = new_run_id();
    let mut state = session.state()?;
    let mut subscribers: Vec<Arc<dyn Subscriber>> = common.subscribers.clone();
    subscribers.push(Arc::new(HumanEvents::new(common.ui.clone())));
    let runner = Runner::new(session.config.policy(PolicyName::Apt)).subscribe_all(&subscribers);
    let (removed, failed, stopped) =
        remove_each(session, &mut state, &order, &runner, common, &run_id).await;
    let code = match &stopped {
        Some(e) => e.exit_code(),
        None if failed => exit::FAILURE,
        None => exit::OK,
    };
    if let Some(e) = &stopped {
        common.ui.error(&e.to_string(), e.hint());
    }
    if common.output == OutputFormat::Json {
        let error = stopped.as_ref().map_or(serde_json::Value::Null, |e| {
            error_json(&e.to_string(), e.hint(), &[])
        });
        let doc = remove_json(&common.command, code, &removed, error);
        println!("{}", em_exec::redact_urls(&doc.to_string()));
    }
    Ok(code)
}

/// The extensions to remove, dependents first: the named ones (each must be installed),
/// and with `--cascade` the installed extensions that require them (else those are an
/// error).
fn removal_order(
    session: &Session,
    state: &State,
    args: &RemoveArgs,
) -> Result<Vec<String>, CliError> {
    let mut targets: BTreeSet<String> = BTreeSet::new();
    for name in &args.extensions {
        if !state.extensions.contains_key(name) {
            return Err(format!(
                "`{name}` is not installed\nhint: `extension-manager list --installed` shows what is"
            )
            .into());
        }
        targets.insert(name.clone());
    }
    // Installed extensions that require a target: removed too with --cascade, else an error.
    let mut dependents = BTreeSet::new();
    for name in &targets {
        for d in session.catalog.dependents(name) {
            if state.extensions.contains_key(&d) && !targets.contains(&d) {
                dependents.insert(d);
            }
        }
    }
    if !dependents.is_empty() {
        if !args.cascade {
            return Err(format!(
                "{} still require{} it: remove {} too, or pass --cascade",
                dependents
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if dependents.len() == 1 { "s" } else { "" },
                if dependents.len() == 1 { "it" } else { "them" },
            )
            .into());
        }
        targets.extend(dependents);
    }
    // Dependents first.
    Ok(session
        .catalog
        .order(
            &targets.iter().cloned().collect::<Vec<_>>(),
            &[] as &[String],
        )
        .map(|o| {
            o.into_iter()
                .rev()
                .filter(|n| targets.contains(n))
                .collect()
        })
        .unwrap_or_else(|_| targets.iter().cloned().collect()))
}

/// Removes each extension of `order` in turn, saving the state after each: the ones
/// removed, whether any failed, and what stopped the run (the state could not be saved).
async fn remove_each(
    session: &Session,
    state: &mut State,
    order: &[String],
    runner: &Runner,
    common: &Common<'_>,
    run_id: &str,
) -> (Vec<String>, bool, Option<CliError>) {
    let mut failed = false;
    let mut removed = Vec::new();
    // What stopped the run (the state could not be saved): after the document, below.
    let mut stopped: Option<CliError> = None;
    for name in order {
        let Some(undo) = state.to_undo(name) else {
            continue;
        };
        common.ui.status("Removing", Tone::Info, name);
        let problems = match remove_one(session, state, name, undo, runner, &common.ui).await {
            Ok(problems) => problems,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        };
        if problems.is_empty() {
            state.extensions.remove(name);
            if let Err(e) = session.state_dir.save(state) {
                stopped = Some(
                    CliError::permanent(format!("{name} was removed, but the state was not saved"))
                        .caused_by(e)
                        .with_hint(
                            "free space or fix the state directory, then run the remove again",
                        ),
                );
                break;
            }
            let _ = session.state_dir.append_history(&HistoryEntry::new(
                run_id,
                &common.command,
                Some(name),
                "removed",
                "",
            ));
            common.ui.status("Removed", Tone::Good, name);
            removed.push(name.clone());
        } else {
            failed = true;
            let _ = session.state_dir.append_history(&HistoryEntry::new(
                run_id,
                &common.command,
                Some(name),
                "remove-failed",
                &problems.join("; "),
            ));
            common.ui.status(
                "Failed",
                Tone::Bad,
                &format!("{name}: {}", problems.join("; ")),
            );
        }
    }
    (removed, failed, stopped)
}

/// `remove --dry-run`: what `remove` would do, in its order, as `remove NAME:` and one
/// action a line, or (`--output json`) the remove document with
/// `would_remove: [{name, actions}]`.
fn print_dry_run(session: &Session, state: &State, order: &[String], common: &Common<'_>) {
    let plan: Vec<(&String, Vec<String>)> = order
        .iter()
        .map(|name| (name, dry_run_actions(session, state, name)))
        .collect();
    if common.output == OutputFormat::Json {
        let would_remove: Vec<serde_json::Value> = plan
            .iter()
            .map(|(name, actions)| serde_json::json!({ "name": name, "actions": actions }))
            .collect();
        let mut doc = remove_json(&common.command, exit::OK, &[], serde_json::Value::Null);
        doc["would_remove"] = serde_json::Value::Array(would_remove);
        println!("{}", em_exec::redact_urls(&doc.to_string()));
    } else {
        for (name, actions) in &plan {
            println!("remove {name}:");
            for action in actions {
                println!("  {action}");
            }
        }
    }
}

/// What `remove --dry-run` shows for `name`, one action a line, in the order `remove`
/// would go (printed under `remove NAME:`, or as `actions` in the JSON document).
fn dry_run_actions(session: &Session, state: &State, name: &str) -> Vec<String> {
    let undo = state.to_undo(name).unwrap_or_default();
    let mut actions = Vec::new();
    // First, as `remove` runs them: the `[[remove]]` steps, with the install's options.
    if let (Some(manifest), Some(record)) = (session.catalog.get(name), state.extensions.get(name))
        && !manifest.remove.is_empty()
    {
        match manifest.resolve_for(
            &install_values(manifest, &record.options),
            session.target_user().as_ref(),
        ) {
            Ok(resolved) => {
                for step in &resolved.remove {
                    actions.push(format!("run {}", em_exec::printable(&step.run.value)));
                }
            }
            Err(e) => actions.push(format!(
                "(the [[remove]] steps cannot be given the install's options: {})",
                em_exec::printable(&e.message)
            )),
        }
    }
    for group in undo.by_step() {
        for b in &group.blocks {
            actions.push(format!(
                "take the block `# BEGIN extension-manager {}` out of {}{}",
                b.label,
                b.path.display(),
                if b.created_file {
                    " (and the file, if nothing else is left)"
                } else {
                    ""
                }
            ));
        }
        for r in &group.replaced {
            actions.push(format!(
                "restore {} (the original, from {})",
                r.path.display(),
                r.backup.display()
            ));
        }
        for p in &group.npm {
            actions.push(format!("npm uninstall -g {p}"));
        }
        for p in &group.pip {
            actions.push(format!("pip uninstall {}", p.name));
        }
        actions.extend(crate::executor::lang_steps::undo_lines(&group));
        for f in group.files.iter().chain(&group.venvs) {
            actions.push(format!("delete {}", f.display()));
        }
        for d in &group.dirs {
            actions.push(format!("delete {} (when empty)", d.display()));
        }
        for p in &group.apt {
            actions.push(format!("apt purge {p}"));
        }
        for p in &group.apt_deps {
            actions.push(format!(
                "apt purge {p} (pulled in as a dependency; when nothing else needs it)"
            ));
        }
        for p in &group.apt_auto {
            actions.push(format!(
                "apt mark {p} automatically installed again (it was there as a dependency)"
            ));
        }
        for f in &group.apt_sources {
            actions.push(format!("delete {}", f.display()));
        }
    }
    if undo.is_empty() {
        actions.push("(nothing it added is left to undo)".to_owned());
    }
    actions
}

/// Removes one extension: its `[[remove]]` steps, then `undo` step by step, the last
/// install step first, saving what is left after each. Returns the problems (none: all
/// undone); `Err` only when the state cannot be saved.
async fn remove_one(
    session: &Session,
    state: &mut State,
    name: &str,
    undo: Added,
    runner: &Runner,
    ui: &Ui,
) -> Result<Vec<String>, CliError> {
    let Some(record) = state.extensions.get(name).cloned() else {
        return Ok(Vec::new());
    };
    let teardown = run_remove_steps(session, name, &record.options).await;
    if !teardown.is_empty() {
        // A complete install's teardown must work before anything it may need goes; an
        // unfinished one may not have set up what its teardown undoes (and a remove that
        // stopped midway already ran it): a warning, not a reason to keep everything.
        if record.status == ExtensionStatus::Installed {
            return Ok(teardown);
        }
        for problem in &teardown {
            ui.status("Warning", Tone::Warn, &format!("{name}: {problem}"));
        }
    }
    let mut record = record;
    record.status = ExtensionStatus::Partial;
    save(session, state, name, &record)?;
    for group in undo.by_step() {
        let problems = undo_group(session, &group, runner).await;
        if !problems.is_empty() {
            // The earlier steps stay: what they installed may be what undoing this needs.
            return Ok(problems);
        }
        record.added.forget(&group);
        save(session, state, name, &record)?;
    }
    Ok(Vec::new())
}

fn save(
    session: &Session,
    state: &mut State,
    name: &str,
    record: &InstalledExtension,
) -> Result<(), CliError> {
    state.extensions.insert(name.to_string(), record.clone());
    session.state_dir.save(state).map_err(|e| {
        CliError::permanent(format!("removing {name}: the state was not saved"))
            .caused_by(e)
            .with_hint("free space or fix the state directory, then run the remove again")
    })
}

/// The option values an install recorded, as `manifest` (perhaps changed since) takes them:
/// options it no longer has are dropped; new ones will take their defaults.
pub(crate) fn install_values(
    manifest: &Manifest,
    options: &BTreeMap<String, String>,
) -> BTreeMap<String, OptionValue> {
    options
        .iter()
        .filter(|(k, _)| manifest.options.contains_key(*k))
        .map(|(k, v)| (k.clone(), OptionValue::from(v.as_str())))
        .collect()
}

/// The manifest's `[[remove]]` steps, with the install's options: `{{option}}` filled in
/// and `EM_OPT_*` set, as for the install's `run` steps.
async fn run_remove_steps(
    session: &Session,
    name: &str,
    options: &BTreeMap<String, String>,
) -> Vec<String> {
    let Some(manifest) = session.catalog.get(name) else {
        return Vec::new();
    };
    if manifest.remove.is_empty() {
        return Vec::new();
    }
    let resolved = match manifest.resolve_for(
        &install_values(manifest, options),
        session.target_user().as_ref(),
    ) {
        Ok(r) => r,
        Err(e) => {
            return vec![format!(
                "the [[remove]] steps cannot be given the install's options: {}",
                e.message
            )];
        }
    };
    let mut problems = Vec::new();
    for step in &resolved.remove {
        let out = crate::executor::shell(&step.run.value, &resolved)
            .output(OutputMode::Capture)
            .run()
            .await;
        match out {
            Ok(o) if o.success() => {}
            Ok(o) => problems.push(format!("`{}` exited with {}", step.run.value, o.code())),
            Err(e) => problems.push(format!("`{}`: {e}", step.run.value)),
        }
    }
    problems
}

/// Undoes what one install step added: managed blocks and replaced files (put back from
/// their backups), npm and pip packages, files and venvs, apt
/// packages, then apt sources (see [`Added::by_step`]).
async fn undo_group(session: &Session, group: &Added, runner: &Runner) -> Vec<String> {
    if let Some(account) = &session.target {
        let unsafe_paths = links_in_the_way(group, account);
        if !unsafe_paths.is_empty() {
            return unsafe_paths;
        }
    }
    let mut problems = Vec::new();
    // A user extension's paths are undone below its home without following a link.
    let home = session.target.as_ref().map(|a| a.home.as_path());
    for b in &group.blocks {
        let (created, newline) = (b.created_file, b.added_newline);
        if let Err(e) = crate::file_steps::remove_block(&b.path, home, &b.label, created, newline) {
            problems.push(e);
        }
    }
    for r in &group.replaced {
        let original = (r.mode, r.uid, r.gid);
        if let Err(e) = crate::file_steps::restore(&r.path, home, &r.backup, original) {
            problems.push(e);
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    if let Err(e) = uninstall_npm(session, &group.npm, runner).await {
        problems.push(e);
    }
    problems.extend(uninstall_pip(session, group, runner).await);
    let user = session.target_user();
    problems.extend(
        crate::executor::lang_steps::uninstall(&session.config, group, runner, user.as_ref()).await,
    );
    // A replaced file was put back just above: it is not deleted.
    let restored = |p: &&PathBuf| !group.replaced.iter().any(|r| &r.path == *p);
    match home {
        None => problems.extend(delete_paths(
            group.files.iter().chain(&group.venvs).filter(restored),
        )),
        Some(home) => {
            // A file through its directory held open; a tree (a venv, an unpacked
            // directory) by its path, checked by `links_in_the_way` above.
            let (trees, files): (Vec<&PathBuf>, Vec<&PathBuf>) = group
                .files
                .iter()
                .chain(&group.venvs)
                .filter(restored)
                .partition(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()));
            for f in files {
                problems.extend(crate::file_steps::remove_beneath(f, home, false).err());
            }
            problems.extend(delete_paths(trees.into_iter()));
        }
    }
    for dir in &group.dirs {
        // Only when empty: what was installed there since is not ours to take.
        match home {
            Some(home) => {
                let _ = crate::file_steps::remove_beneath(dir, home, true);
            }
            None => {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    if problems.is_empty()
        && let Err(e) = purge_apt(group, runner).await
    {
        problems.push(e);
    }
    if problems.is_empty() {
        problems.extend(delete_paths(group.apt_sources.iter()));
    }
    problems
}

async fn uninstall_npm(session: &Session, names: &[String], runner: &Runner) -> Result<(), String> {
    let npm: Vec<NpmPackage> = names
        .iter()
        .filter_map(|p| NpmPackage::parse(p).ok())
        .collect();
    if npm.is_empty() {
        return Ok(());
    }
    let n = Npm::new(NpmConfig::default()).map_err(|e| e.to_string())?;
    let policy = session.config.policy(PolicyName::Npm);
    Arc::new(n)
        .uninstall_global(&runner.clone().with_policy(policy), &npm)
        .await
        .map_err(|e| e.to_string())
}

async fn uninstall_pip(session: &Session, group: &Added, runner: &Runner) -> Vec<String> {
    let mut problems = Vec::new();
    let removed_venvs: BTreeSet<&PathBuf> = group.venvs.iter().collect();
    for p in &group.pip {
        // A venv that goes away takes its packages along.
        if p.venv.as_ref().is_some_and(|v| removed_venvs.contains(v)) {
            continue;
        }
        let target = match &p.venv {
            Some(v) => PipTarget::Venv(v.clone()),
            None => PipTarget::Interpreter(PathBuf::from("python3")),
        };
        let Ok(req) = PipRequirement::parse(&p.name) else {
            continue;
        };
        let result = match Pip::new(PipConfig::default(), target) {
            Ok(pip) => {
                let policy = session.config.policy(PolicyName::Pip);
                Arc::new(pip)
                    .uninstall(&runner.clone().with_policy(policy), &[req])
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            problems.push(e.to_string());
        }
    }
    problems
}

/// For a user's extension: the paths of `group` that root must not touch now, because a
/// directory between the home and them has become a symlink since the install (the user
/// could point `~/.config` at `/etc` and have root delete there). Checked before anything
/// of the step is undone, so an unsafe step is left whole.
fn links_in_the_way(group: &Added, account: &crate::user::Account) -> Vec<String> {
    let paths = group
        .blocks
        .iter()
        .map(|b| &b.path)
        .chain(group.replaced.iter().map(|r| &r.path))
        .chain(&group.files)
        .chain(&group.venvs)
        .chain(&group.dirs);
    paths
        .filter_map(|path| {
            let why = match crate::file_steps::unsafe_parent(path, &account.home)? {
                UnsafeParent::Outside => format!("it is not inside {}", account.home.display()),
                UnsafeParent::Symlink(dir) => format!("{} is now a symlink", dir.display()),
                UnsafeParent::NotADirectory(dir) => {
                    format!("{} is now not a directory", dir.display())
                }
            };
            Some(format!(
                "{} was left in place, with the rest of its step: {why}, and remove deletes nothing \
                 in the home of {} below a link, which could lead anywhere \
                 (hint: put the directory back, then run remove again)",
                path.display(),
                account.name
            ))
        })
        .collect()
}

fn delete_paths<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> Vec<String> {
    paths
        .filter_map(|path| {
            crate::executor::remove_path(path)
                .err()
                .map(|e| format!("cannot delete {}: {e}", path.display()))
        })
        .collect()
}

/// Gives back the automatic mark of the packages that were there as a dependency before
/// the extension named them (`apt-mark auto`), purges the packages it installed by name
/// (one `apt-get purge`), then the dependencies its install pulled in that apt now finds
/// unneeded (`apt-get -s autoremove`: nothing manually installed depends on them).
/// Refuses when the purge would take along a package that is none of these.
async fn purge_apt(group: &Added, runner: &Runner) -> Result<(), String> {
    let (named, deps) = (&group.apt, &group.apt_deps);
    if named.is_empty() && deps.is_empty() && group.apt_auto.is_empty() {
        return Ok(());
    }
    let apt = Arc::new(Apt::new(AptConfig::default()).map_err(|e| e.to_string())?);
    apt.mark_auto(runner, &group.apt_auto)
        .await
        .map_err(|e| e.to_string())?;
    // apt's simulations name packages as apt does (`libssl3`); a state file may hold
    // dpkg's name for the same package (`libssl3:amd64`).
    let inventory = apt.inventory().await.map_err(|e| e.to_string())?;
    let deps: BTreeSet<String> = deps.iter().map(|d| inventory.canonical(d)).collect();
    let ours = |p: &str| {
        let base = p.split_once(':').map_or(p, |(n, _)| n);
        deps.contains(p) || named.iter().any(|o| o == p || o == base)
    };
    if !named.is_empty() {
        let would = apt
            .simulate_removal("purge", named)
            .await
            .map_err(|e| e.to_string())?;
        let others: Vec<&str> = would
            .iter()
            .map(String::as_str)
            .filter(|p| !ours(p))
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "purging {} would also remove {}, which this extension did not install; \
                 nothing was purged\nhint: remove those first, or keep this extension",
                named.join(" "),
                others.join(" ")
            ));
        }
        apt.purge(runner, &parse_apt(named))
            .await
            .map_err(|e| e.to_string())?;
    }
    if deps.is_empty() {
        return Ok(());
    }
    let unneeded = apt
        .simulate_removal("autoremove", &[])
        .await
        .map_err(|e| e.to_string())?;
    let go: Vec<String> = deps.intersection(&unneeded).cloned().collect();
    apt.purge(runner, &parse_apt(&go))
        .await
        .map_err(|e| e.to_string())
}

fn parse_apt(names: &[String]) -> Vec<AptPackage> {
    names
        .iter()
        .filter_map(|p| AptPackage::parse(p).ok())
        .collect()
}
