//! `--locked`: the pinning pass over a plan, and drift. `install --locked` and `plan
//! --locked` read `extensions.lock` (em-lock); [`pin`] rewrites each planned package step
//! to the exact versions the lock holds (apt `pkg=version`, npm `name@version`, pip
//! `name==version` plus the hashed set for `--require-hashes`, a download's sha256) before
//! anything runs, so the executor installs what was locked with no other change.
//! [`drift`] says how the plan differs from the lock: a changed manifest or option value
//! (a registry offering a newer version is not drift).

use std::collections::BTreeMap;
use std::path::Path;

use em_lock::{LockFile, LockedExtension, LockedOption, StepKind};
use em_manifest::{OptionValue, ResolvedManifest, Spanned, Step};

use crate::error::CliError;
use crate::plan::{OptionSets, Plan};

/// The option values of a resolved manifest, as a lock records them.
pub fn lock_options(manifest: &ResolvedManifest) -> BTreeMap<String, LockedOption> {
    manifest
        .values()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                OptionValue::Bool(b) => LockedOption::Bool(*b),
                OptionValue::String(s) => LockedOption::String(s.clone()),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The plan a lock is made from and checked against: `names` with `sets` as on a machine
/// with nothing installed (every extension of the closure, installed here or not), for
/// this machine's architecture. `lock` writes what this plans, and `bundle` must plan the
/// same to compare it with the lock: one function, so that the two cannot drift apart.
pub fn plan_as_locked(
    catalog: &em_manifest::Catalog,
    names: &[String],
    sets: &OptionSets,
) -> Result<Plan, CliError> {
    crate::plan::plan(
        catalog,
        names,
        sets,
        &BTreeMap::new(),
        false,
        em_manifest::Arch::host(),
    )
    .map_err(|e| CliError::usage(e.to_string()))
}

/// Reads the lock file: a missing or bad one is the user's to fix (exit 2).
pub fn read(path: &Path) -> Result<LockFile, CliError> {
    LockFile::read(path).map_err(|d| CliError::usage(em_manifest::render_all(&d).trim_end()))
}

/// Per extension of the plan, how it differs from the lock (only extensions that differ).
pub fn drift(plan: &Plan, lock: &LockFile) -> Vec<(String, Vec<String>)> {
    plan.entries
        .iter()
        .filter_map(|e| {
            let why = match lock.extensions.get(e.name()) {
                None => vec!["it is not in the lock".to_string()],
                Some(locked) => {
                    locked.drift(e.manifest.manifest().sha256(), &lock_options(&e.manifest))
                }
            };
            (!why.is_empty()).then(|| (e.name().to_string(), why))
        })
        .collect()
}

/// [`drift`]'s findings as lines of a message: `  NAME: why; why`.
pub fn drift_lines(drifted: &[(String, Vec<String>)]) -> String {
    drifted
        .iter()
        .map(|(name, why)| format!("  {name}: {}", why.join("; ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rewrites the plan's package steps to the locked versions. Refuses (exit 2) when the plan
/// has drifted from the lock: installing "exactly the lock" is then impossible.
pub fn pin(plan: &mut Plan, lock: &LockFile, lock_path: &Path) -> Result<(), CliError> {
    let drifted = drift(plan, lock);
    if !drifted.is_empty() {
        return Err(CliError::usage(format!(
            "{} does not match the extensions to install:\n{}",
            lock_path.display(),
            drift_lines(&drifted)
        ))
        .with_hint("run `extension-manager lock` with the same extensions and --set values, then install again"));
    }
    for entry in &mut plan.entries {
        let name = entry.manifest.name().to_string();
        let locked = &lock.extensions[&name];
        for (index, step) in entry.manifest.install_mut().iter_mut().enumerate() {
            // A step for another architecture is skipped by the run, and was by `lock`.
            if !step.runs_on(em_manifest::Arch::host()) {
                continue;
            }
            // A conditional step `lock` could not fetch (it warned): as the manifest says.
            if conditional(step).is_some() && locked.step(index).is_none() {
                continue;
            }
            pin_step(&name, index, &mut step.action, locked, &mut plan.pinned_pip)?;
        }
        // What `plan` and `install --dry-run` show: the pinned steps.
        for planned in &mut entry.steps {
            if let Some(step) = entry.manifest.install.get(planned.index) {
                planned.summary = step.action.summary();
            }
        }
    }
    Ok(())
}

/// Why `step` may not run on every install (`only_if = "..."`, `optional`), or `None`:
/// `lock` warns and goes on when it cannot lock such a step, and `pin` leaves it as the
/// manifest says.
pub fn conditional(step: &em_manifest::InstallStep) -> Option<String> {
    let guard = |key: &str, g: &Option<Spanned<String>>| {
        g.as_ref().map(|g| format!("{key} = \"{}\"", g.value))
    };
    guard("only_if", &step.only_if)
        .or_else(|| guard("unless", &step.unless))
        .or_else(|| guard("creates", &step.creates))
        .or_else(|| step.optional.then(|| "optional".to_owned()))
}

fn pin_step(
    name: &str,
    index: usize,
    action: &mut Step,
    locked: &LockedExtension,
    pinned_pip: &mut BTreeMap<(String, usize), Vec<em_pip::HashedRequirement>>,
) -> Result<(), CliError> {
    let Some(kind) = StepKind::of(action.kind()) else {
        return Ok(());
    };
    let Some(step) = locked.step(index) else {
        // A step the lock skipped (another architecture's, say): it cannot be installed
        // exactly, so it is not installed at all by surprise.
        return Err(CliError::usage(format!(
            "{name}: step {} ({}) is not in the lock (it was skipped when locking, e.g. for another architecture)",
            index + 1,
            kind.as_str()
        ))
        .with_hint("lock on a machine like this one"));
    };
    let requested = |kind: StepKind| -> Vec<Spanned<String>> {
        step.packages
            .iter()
            .filter(|p| p.requested)
            .map(|p| Spanned::new(p.pinned(kind), 0..0))
            .collect()
    };
    match action {
        Step::Apt(apt) => apt.packages = requested(StepKind::Apt),
        Step::Npm(npm) => npm.packages = requested(StepKind::Npm),
        Step::Pip(pip) => {
            pip.packages = requested(StepKind::Pip);
            let hashed = step
                .packages
                .iter()
                .map(|p| {
                    Ok(em_pip::HashedRequirement {
                        requirement: em_pip::PipRequirement::parse(&p.pinned(StepKind::Pip))?,
                        sha256: p
                            .sha256
                            .as_ref()
                            .map(|s| s.get_ref().clone())
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            pinned_pip.insert((name.to_string(), index), hashed);
        }
        Step::Download(d) => {
            if let Some(l) = &step.download {
                d.sha256 = Some(Spanned::new(l.sha256.get_ref().clone(), 0..0));
            }
        }
        Step::Run(_) | Step::File(_) | Step::Block(_) | Step::Lang(_) => {}
    }
    Ok(())
}

/// Whether every locked package the plan installs is still offered (apt lists, npm
/// registry): a version gone from the archive fails here, before anything changes, with
/// the way out. pip's are checked by pip itself (`--require-hashes` fails permanently).
pub async fn check_offered(
    plan: &Plan,
    lock: &LockFile,
    npm_registry: Option<&str>,
) -> Result<(), CliError> {
    let mut gone = Vec::new();
    for entry in &plan.entries {
        let Some(locked) = lock.extensions.get(entry.name()) else {
            continue;
        };
        for step in &locked.steps {
            for p in step.packages.iter().filter(|p| p.requested) {
                let (name, version) = (p.name.get_ref(), p.version.get_ref());
                let offered = match step.kind {
                    StepKind::Apt => {
                        em_apt::resolve::is_offered(Path::new("apt-cache"), name, version).await
                    }
                    StepKind::Npm => {
                        em_npm::resolve::is_offered(Path::new("npm"), npm_registry, name, version)
                            .await
                    }
                    StepKind::Pip | StepKind::Download => Ok(true),
                };
                match offered {
                    Ok(true) => {}
                    Ok(false) => gone.push(format!(
                        "  {}: {} {}",
                        entry.name(),
                        step.kind.as_str(),
                        p.pinned(step.kind)
                    )),
                    Err(e) => return Err(CliError::permanent(e)),
                }
            }
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    Err(CliError::permanent(format!(
        "locked versions are no longer offered by the configured sources:\n{}",
        gone.join("\n")
    ))
    .with_hint("point the configuration's mirrors at a snapshot of the archive or registry as of the lock (`[mirrors] apt`/`npm`), or lock again to take today's versions"))
}
