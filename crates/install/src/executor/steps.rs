//! The step runners: one function per kind of step (npm, pip, download, run; apt, file and
//! block have modules of their own), the runner each gets (policy, circuit, budget,
//! subscribers) and the guards (`creates`, `unless`, `only_if`) that skip a step.

use super::*;

/// An error of a step: the user's message and how it ends.
pub(super) struct StepError {
    pub(super) message: String,
    pub(super) fault: Fault,
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

pub(super) enum StepDone {
    Ran,
    Guarded(String),
}

pub(super) fn runner_for(
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
    Ok(crate::adapter_context::build_runner(
        policy,
        &subscribers,
        ctx.settings.circuit.clone(),
        ctx.settings.budget.clone(),
        ctx.settings.tally.clone(),
        ctx.ui.clone(),
        move |from, to, why| {
            if let Ok(mut r) = recorder.0.lock() {
                r.mirror_switches
                    .push((from.to_string(), to.to_string(), why.to_string()));
            }
        },
    )
    .with_lines(log.sink()))
}

/// Why `step` is skipped: its `creates` path exists, or its `unless` command succeeds.
pub(super) async fn guarded(step: &InstallStep, manifest: &ResolvedManifest) -> Option<String> {
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

/// What a step runner needs besides the extension's record: the run, the extension, the
/// step, its log and recorder, the job slot (released while it waits) and its index.
pub(super) struct StepRun<'a> {
    pub(super) ctx: &'a Arc<Context>,
    pub(super) name: &'a str,
    pub(super) manifest: &'a ResolvedManifest,
    pub(super) step: &'a InstallStep,
    pub(super) log: &'a Log,
    pub(super) recorder: Arc<StepRecorder>,
    pub(super) slot: &'a JobSlot,
    pub(super) index: usize,
}

impl StepRun<'_> {
    /// A runner under the configuration's policy `name` (and the step's own `retry`),
    /// reporting to this step's recorder and log.
    pub(super) fn runner(&self, name: PolicyName) -> Result<Runner, StepError> {
        let policy = self.ctx.settings.policy(name);
        runner_for(self.ctx, policy, self.step, self.log, self.recorder.clone())
    }
}

/// Runs one step. What a step is about to add is recorded (and saved) before its tool runs,
/// so that a run killed in the middle of it still knows what to undo; what turns out not
/// to be there after a failure is dropped again.
pub(super) async fn run_step(
    run: StepRun<'_>,
    record: &mut InstalledExtension,
) -> Result<StepDone, StepError> {
    if let Some(why) = guarded(run.step, run.manifest).await {
        return Ok(StepDone::Guarded(why));
    }
    let (ctx, name, log, index) = (run.ctx, run.name, run.log, run.index);
    match &run.step.action {
        Step::Apt(apt_step) => install_apt(run, record, apt_step).await,
        Step::Npm(npm_step) => install_npm(run, record, npm_step).await,
        Step::Pip(pip_step) => install_pip(run, record, pip_step).await,
        Step::Download(d) => download(run, record, d).await,
        Step::Lang(lang) => {
            let recorder = run.recorder.clone();
            let user = run.manifest.user();
            lang_steps::install(
                ctx, name, run.step, lang, log, recorder, record, index, user,
            )
            .await?;
            Ok(StepDone::Ran)
        }
        Step::Run(r) => run_command(run, r).await,
        Step::File(f) => {
            file_step(ctx, name, f, run.manifest.user(), log, record, index).await?;
            Ok(StepDone::Ran)
        }
        Step::Block(b) => {
            block_step(ctx, name, b, run.manifest.user(), log, record, index).await?;
            Ok(StepDone::Ran)
        }
    }
}

/// An `npm` step: global installs, one at a time host-wide; the packages npm lacked (and
/// a global root it creates) are recorded first.
pub(super) async fn install_npm(
    run: StepRun<'_>,
    record: &mut InstalledExtension,
    npm_step: &em_manifest::NpmStep,
) -> Result<StepDone, StepError> {
    let packages = parse_each(&npm_step.packages, NpmPackage::parse)?;
    let runner = run.runner(PolicyName::Npm)?;
    let StepRun {
        ctx,
        name,
        log,
        index,
        ..
    } = run;
    let npm = Arc::new(Npm::new(match ctx.settings.offline.as_deref() {
        Some(offline) => offline_npm(offline),
        None => NpmConfig {
            registry: ctx.settings.npm_registry.clone(),
            mirrors: ctx.settings.npm_mirrors.clone(),
            ..NpmConfig::default()
        },
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
    if let Some(root) = npm.global_root().await {
        // npm leaves a scoped package's `@scope` directory behind when it uninstalls the
        // last package of that scope: one this step creates goes too (when empty), before
        // the global root.
        for p in &packages {
            if let Some((scope, _)) = p.name().split_once('/')
                && scope.starts_with('@')
                && !root.join(scope).exists()
            {
                push_new(&mut record.added.dirs, root.join(scope));
            }
        }
        if !root.exists() {
            push_new(&mut record.added.dirs, root);
        }
    }
    recorded(
        ctx,
        name,
        record,
        index,
        npm.install_global(&runner, &packages),
        async |added, _| {
            let now = npm.ls_global().await;
            keep_listed(&mut added.npm, &fresh, now, |now, n| {
                now.iter().any(|(listed, _)| listed == n)
            })
        },
    )
    .await?;
    Ok(StepDone::Ran)
}

/// A `pip` step: one install per environment at a time; the venv it creates and the
/// requirements pip lacked are recorded first.
pub(super) async fn install_pip(
    run: StepRun<'_>,
    record: &mut InstalledExtension,
    pip_step: &em_manifest::PipStep,
) -> Result<StepDone, StepError> {
    let requirements = parse_each(&pip_step.packages, PipRequirement::parse)?;
    let runner = run.runner(PolicyName::Pip)?;
    let StepRun {
        ctx,
        name,
        log,
        index,
        ..
    } = run;
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
        match ctx.settings.offline.as_deref() {
            // Offline: the bundle's index only, no mirror.
            Some(offline) => PipConfig {
                env: offline.pip_env(),
                ..PipConfig::default()
            },
            None => PipConfig {
                index_url: ctx.settings.pip_index.clone(),
                mirrors: ctx.settings.pip_mirrors.clone(),
                ..PipConfig::default()
            },
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
    let pinned = ctx.settings.pinned_pip.get(&(name.to_string(), index));
    let install = async {
        match pinned {
            Some(hashed) => pip.install_hashed(&runner, hashed).await,
            None => pip.install(&runner, &requirements).await,
        }
    };
    recorded(
        ctx,
        name,
        record,
        index,
        install,
        async |added, _| match &venv {
            Some(v) if !v.join("pyvenv.cfg").exists() => {
                added.venvs.retain(|x| x != v);
                added.pip.retain(|p| p.venv.as_ref() != Some(v));
                true
            }
            _ => false,
        },
    )
    .await?;
    Ok(StepDone::Ran)
}

/// A `download` step: from the first source whose host resolved in preflight, the
/// others as mirrors, then unpacked when it says `unpack_to`.
pub(super) async fn download(
    run: StepRun<'_>,
    record: &mut InstalledExtension,
    d: &em_manifest::DownloadStep,
) -> Result<StepDone, StepError> {
    let StepRun {
        ctx, name, index, ..
    } = run;
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
    let runner = run.runner(PolicyName::Download)?;
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
    push_new(&mut record.uses.files, dest.clone());
    if !dest.exists() {
        push_new(&mut record.added.files, dest.clone());
    }
    let download = async {
        match ctx.settings.offline.as_deref() {
            Some(offline) => offline_download(offline, &request),
            None => crate::download::download(d.via, &runner, &request).await,
        }
    };
    recorded(ctx, name, record, index, download, async |added, _| {
        let gone = !dest.exists();
        if gone {
            added.files.retain(|f| f != &dest);
        }
        gone
    })
    .await?;
    if let Some(unpack_to) = &d.unpack_to {
        let dir = Path::new(&unpack_to.value);
        unpack(ctx, name, record, index, &dest, dir).await?;
    }
    Ok(StepDone::Ran)
}

/// npm offline: the bundle's cache, the registry it was filled from, `--offline`.
fn offline_npm(offline: &crate::bundle::OfflineSources) -> NpmConfig {
    let (registry, cache) = offline.npm();
    NpmConfig {
        registry,
        cache: Some(cache),
        env: offline.npm_env(),
        ..NpmConfig::default()
    }
}

/// A download offline: the bundle's copy of the locked sha256 (`--offline` implies
/// `--locked`, so every download step has one), copied atomically and checked again.
fn offline_download(
    offline: &crate::bundle::OfflineSources,
    request: &DownloadRequest,
) -> Result<em_exec::download::Landed, ToolError> {
    let operation = format!("download {}", em_exec::redact_url(&request.url));
    let sha256 = request.sha256.as_ref().map(|s| s.to_string());
    let from = sha256.as_deref().and_then(|s| offline.download(s));
    let (Some(sha256), Some(from)) = (sha256, from) else {
        return Err(ToolError::permanent(
            operation,
            "not in the offline bundle",
            Some("bundle again from the same lock (`extension-manager bundle DIR`)".into()),
        ));
    };
    let bytes = crate::bundle::copy_download(&from, &sha256, &request.dest, request.mode)
        .map_err(|e| ToolError::permanent(operation.clone(), e, None))?;
    Ok(em_exec::download::Landed {
        path: request.dest.clone(),
        sha256: Sha256::parse(&sha256).map_err(|e| ToolError::permanent(operation, e, None))?,
        bytes,
    })
}

/// A `run` step: the snippet under `sh -c`, retried only when the step says `retry`; its
/// last stderr lines are shown as warnings.
pub(super) async fn run_command(
    run: StepRun<'_>,
    r: &em_manifest::RunStep,
) -> Result<StepDone, StepError> {
    let runner = run.runner(PolicyName::Run)?;
    let StepRun {
        ctx,
        name,
        manifest,
        step,
        log,
        ..
    } = run;
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
    show_warnings(&*ctx.ui, name, &out.stderr_text(), &log.path);
    Ok(StepDone::Ran)
}

/// `sh -c SCRIPT` (or `bash -c`: `[extension] shell`) with the extension's option
/// variables (`EM_OPT_*`), and a PATH that has the sbin directories: a check like `iotop
/// --version` or `sysctl` must find its tool when a sudo user without them in PATH runs it.
pub fn shell(script: &str, manifest: &ResolvedManifest) -> Cmd {
    let mut cmd = Cmd::tool(manifest.shell.program())
        .args(["-c", script])
        .env(
            "PATH",
            path_with_sbin(&std::env::var("PATH").unwrap_or_default()),
        );
    for (k, v) in manifest.option_env() {
        cmd = cmd.env(k, v);
    }
    if let Some(target) = manifest.user()
        && em_exec::is_root()
    {
        // A user extension's commands run as its user, with that user's login PATH (sbin
        // included).
        cmd = cmd.as_user(&crate::user::Account::run_as_target(target));
    }
    cmd
}

/// `path` with /usr/local/sbin, /usr/sbin and /sbin appended when missing.
pub(super) fn path_with_sbin(path: &str) -> String {
    let mut dirs: Vec<&str> = path.split(':').filter(|d| !d.is_empty()).collect();
    for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.contains(&sbin) {
            dirs.push(sbin);
        }
    }
    dirs.join(":")
}
