//! `remove EXT... [--cascade] [--dry-run]`: undo what an install added, and only that: a
//! package, a global npm package, a pip package or a file that another installed extension
//! also added stays (reference counting over the state).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use em_apt::{Apt, AptConfig, AptPackage};
use em_exec::{Cmd, OutputMode, Runner};
use em_npm::{Npm, NpmConfig, NpmPackage};
use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};
use em_retry::Subscriber;

use crate::adapter_context::PolicyName;
use crate::commands::install::Common;
use crate::error::CliError;
use crate::exit;
use crate::output::{HumanEvents, OutputFormat, Tone};
use crate::policy_options::parse_duration;
use crate::session::Session;
use crate::state::{HistoryEntry, new_run_id};

/// `remove`'s arguments.
#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// Extensions to remove
    #[arg(value_name = "EXT", required = true)]
    extensions: Vec<String>,
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

/// `remove`.
pub async fn remove(
    session: &Session,
    args: RemoveArgs,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let state = session.state()?;
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
    let order: Vec<String> = session
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
        .unwrap_or_else(|_| targets.iter().cloned().collect());
    if args.dry_run {
        for name in &order {
            let undo = state.to_undo(name).unwrap_or_default();
            println!("remove {name}:");
            for p in &undo.apt {
                println!("  apt remove {p}");
            }
            for p in &undo.npm {
                println!("  npm uninstall -g {p}");
            }
            for p in &undo.pip {
                println!("  pip uninstall {}", p.name);
            }
            for f in undo
                .files
                .iter()
                .chain(&undo.venvs)
                .chain(&undo.apt_sources)
            {
                println!("  delete {}", f.display());
            }
            if undo.is_empty() {
                println!("  (nothing it added is left to undo)");
            }
        }
        return Ok(exit::OK);
    }
    let ui = common.ui.clone();
    let lock_timeout = args.lock_timeout.unwrap_or(session.config.lock_timeout);
    let _lock = match session
        .state_dir
        .lock(lock_timeout, &common.command, |holder| {
            ui.status(
                "Waiting",
                Tone::Warn,
                &format!("for the run lock: {holder}"),
            );
        }) {
        Ok(lock) => lock,
        Err(e) => {
            common.ui.error(&e.to_string(), None);
            return Ok(e.exit_code());
        }
    };
    let run_id = new_run_id();
    let mut state = session.state()?;
    let mut subscribers: Vec<Arc<dyn Subscriber>> = common.subscribers.clone();
    subscribers.push(Arc::new(HumanEvents::new(common.ui.clone())));
    let runner = Runner::new(session.config.policy(PolicyName::Apt)).subscribe_all(&subscribers);
    let mut failed = false;
    let mut removed = Vec::new();
    for name in &order {
        let Some(undo) = state.to_undo(name) else {
            continue;
        };
        common.ui.status("Removing", Tone::Info, name);
        let mut problems = Vec::new();
        // The manifest's own [[remove]] steps first (they may need what is about to go).
        if let Some(manifest) = session.catalog.get(name) {
            for step in &manifest.remove {
                let out = Cmd::tool("sh")
                    .args(["-c", &step.run.value])
                    .output(OutputMode::Capture)
                    .run()
                    .await;
                match out {
                    Ok(o) if o.success() => {}
                    Ok(o) => {
                        problems.push(format!("`{}` exited with {}", step.run.value, o.code()))
                    }
                    Err(e) => problems.push(format!("`{}`: {e}", step.run.value)),
                }
            }
        }
        let apt: Vec<AptPackage> = undo
            .apt
            .iter()
            .filter_map(|p| AptPackage::parse(p).ok())
            .collect();
        if !apt.is_empty() {
            match Apt::new(AptConfig::default()) {
                Ok(a) => {
                    if let Err(e) = Arc::new(a).remove(&runner, &apt).await {
                        problems.push(e.to_string());
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let npm: Vec<NpmPackage> = undo
            .npm
            .iter()
            .filter_map(|p| NpmPackage::parse(p).ok())
            .collect();
        if !npm.is_empty() {
            match Npm::new(NpmConfig::default()) {
                Ok(n) => {
                    let policy = session.config.policy(PolicyName::Npm);
                    if let Err(e) = Arc::new(n)
                        .uninstall_global(&runner.clone().with_policy(policy), &npm)
                        .await
                    {
                        problems.push(e.to_string());
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let removed_venvs: BTreeSet<PathBuf> = undo.venvs.iter().cloned().collect();
        for p in &undo.pip {
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
            match Pip::new(PipConfig::default(), target) {
                Ok(pip) => {
                    let policy = session.config.policy(PolicyName::Pip);
                    if let Err(e) = Arc::new(pip)
                        .uninstall(&runner.clone().with_policy(policy), &[req])
                        .await
                    {
                        problems.push(e.to_string());
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        for path in undo
            .files
            .iter()
            .chain(removed_venvs.iter())
            .chain(undo.apt_sources.iter())
        {
            let result = if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = result
                && e.kind() != std::io::ErrorKind::NotFound
            {
                problems.push(format!("cannot delete {}: {e}", path.display()));
            }
        }
        if problems.is_empty() {
            state.extensions.remove(name);
            session.state_dir.save(&state).map_err(|e| {
                CliError::permanent(format!("{name} was removed, but the state was not saved"))
                    .caused_by(e)
                    .with_hint("free space or fix the state directory, then run the remove again")
            })?;
            let _ = session.state_dir.append_history(&HistoryEntry::new(
                &run_id,
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
                &run_id,
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
    if common.output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({ "removed": removed, "failed": failed })
        );
    }
    Ok(if failed { exit::FAILURE } else { exit::OK })
}
