//! `apt` steps: what dpkg lacked is recorded first, the install joins the run's batch (or
//! runs alone after its own repository), what it pulled in is recorded, and what is not
//! there after a failure is dropped again.

use super::*;

/// An `apt` step: its repository first when it has one (then it runs alone), else it
/// joins the run's batch of apt installs; the packages dpkg lacked are recorded first.
pub(super) async fn install_apt(
    run: StepRun<'_>,
    record: &mut InstalledExtension,
    apt_step: &em_manifest::AptStep,
) -> Result<StepDone, StepError> {
    let packages = parse_each(&apt_step.packages, AptPackage::parse)?;
    let runner = run.runner(PolicyName::Apt)?;
    let apt = apt_adapter(run.ctx)?;
    // A step with its own repository runs alone: its source is added and updated
    // first. The others join the run's batch of apt installs (see apt_batch).
    let update_runner = run.runner(PolicyName::Apt)?;
    let StepRun {
        ctx,
        name,
        step,
        log,
        recorder,
        slot,
        index,
        ..
    } = run;
    // Offline the bundle is apt's only source: a step's own repository is not added (its
    // key would be fetched), its packages are in the bundle.
    let repository = apt_step
        .repository
        .as_ref()
        .filter(|_| ctx.settings.offline.is_none());
    let one_at_a_time = match repository {
        Some(_) => {
            // Waiting for the lock is not work: let another extension start.
            slot.release();
            let held = ctx.tools.apt_lock.lock().await;
            slot.reclaim().await;
            Some(held)
        }
        None => None,
    };
    if let Some(repository) = repository {
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
            crate::apt_batch::update_lists(&apt, &*ctx.ui, &update_runner, &why).await?;
        }
    }
    let fresh = absent_apt_packages(ctx, &apt, &packages, log).await;
    for p in &packages {
        push_new(&mut record.uses.apt, p.name().to_string());
    }
    for p in &fresh {
        push_new(&mut record.added.apt, p.name().to_string());
    }
    for p in auto_before(ctx, name, &apt, &packages, &fresh, log).await {
        push_new(&mut record.added.apt_auto, p);
    }
    let install = async {
        let installed = match one_at_a_time {
            Some(_held) => {
                match crate::apt_batch::ensure_lists(&apt, &*ctx.ui, &update_runner, &packages)
                    .await
                {
                    Ok(()) => crate::apt_batch::install_measured(&apt, &runner, &packages).await,
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
                    .install(&apt, &ctx.tools.apt_lock, &*ctx.ui, member)
                    .await;
                slot.reclaim().await;
                result
            }
        };
        // What it pulled in is known (or not) either way.
        let pulled_in = installed.pulled_in;
        match installed.result {
            Ok(()) => Ok(pulled_in),
            Err(e) => Err((e, pulled_in)),
        }
    };
    let installed = recorded(ctx, name, record, index, install, async |added, failed| {
        record_pulled_in(ctx, &failed.1, added, log);
        forget_absent_apt(&apt, &fresh, added).await;
        true
    })
    .await;
    match installed {
        Ok(pulled_in) => {
            record_pulled_in(ctx, &pulled_in, &mut record.added, log);
            save_step(ctx, name, record, index).await;
            Ok(StepDone::Ran)
        }
        Err((e, _)) => Err(e.into()),
    }
}

/// Where third-party apt sources and their keys go (overridable for tests).
pub(super) fn apt_etc_dirs() -> (PathBuf, PathBuf) {
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

/// The named packages of an apt step that dpkg positively says are absent: what the step
/// may add. When dpkg's status cannot be read, none is counted as added (a package the user
/// had must never be removed by `remove`); the log and the terminal say so.
pub(super) async fn absent_apt_packages(
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

/// The named packages of an apt step that are on the machine as a dependency: apt has
/// them marked automatically installed, or another installed extension recorded that they
/// were before it named them (its `apt-get install` made them manual). Naming them makes
/// them manual; `remove` gives the mark back (docs/decisions.md, "apt's automatic mark").
/// When apt's marks cannot be read, none is counted (and the log says so): a package
/// stays manual, as before this was recorded.
async fn auto_before(
    ctx: &Context,
    name: &str,
    apt: &Apt,
    packages: &[AptPackage],
    fresh: &[AptPackage],
    log: &Log,
) -> Vec<String> {
    let present: Vec<String> = packages
        .iter()
        .filter(|p| !fresh.contains(p))
        .map(|p| p.name().to_string())
        .collect();
    if present.is_empty() {
        return Vec::new();
    }
    let mut auto = match apt.auto_installed(&present).await {
        Ok(auto) => auto,
        Err(e) => {
            log.line(&format!(
                "apt's automatic marks are unknown ({e}): {} stay manual after remove",
                present.join(" ")
            ));
            BTreeSet::new()
        }
    };
    let state = ctx.state.lock().await;
    let recorded_by_others = state
        .extensions
        .iter()
        .filter(|(other, _)| other.as_str() != name)
        .flat_map(|(_, record)| &record.added.apt_auto);
    auto.extend(recorded_by_others.filter(|p| present.contains(p)).cloned());
    present.into_iter().filter(|p| auto.contains(p)).collect()
}

/// Records the packages an apt install pulled in as the step's dependencies.
pub(super) fn record_pulled_in(
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
pub(super) async fn forget_absent_apt(apt: &Apt, fresh: &[AptPackage], added: &mut Added) {
    if let Ok(now) = apt.inventory().await {
        for p in fresh.iter().filter(|p| !now.contains_name(p.name())) {
            added.apt.retain(|n| n != p.name());
        }
    }
}

pub(super) fn apt_adapter(ctx: &Context) -> Result<Arc<Apt>, StepError> {
    let mut slot = ctx
        .tools
        .apt
        .lock()
        .map_err(|_| "apt adapter lock poisoned".to_string())?;
    if let Some(apt) = slot.as_ref() {
        return Ok(apt.clone());
    }
    let offline = ctx.settings.offline.as_deref();
    let apt = Arc::new(Apt::new(AptConfig {
        // Offline: the bundle is the only source, so no mirror of anything else.
        mirrors: match offline {
            Some(_) => Vec::new(),
            None => ctx.settings.apt_mirrors.clone(),
        },
        update_max_age: ctx.settings.apt_update_max_age,
        status_lines: ctx.ui.is_live(),
        env: offline.map(|o| o.apt_env()).unwrap_or_default(),
        ..AptConfig::default()
    })?);
    *slot = Some(apt.clone());
    Ok(apt)
}
