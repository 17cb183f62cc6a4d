//! `lock [EXT...|--all|--profile P]`: resolve what an install of these extensions would
//! put on the machine, to exact versions and hashes, and write `extensions.lock` (em-lock).
//! Nothing is installed: apt simulates, npm and pip are asked (`npm view`, `pip install
//! --dry-run --report`), downloads are fetched into a private temporary directory to be
//! hashed and measured. Extensions already in the lock and not named keep their entries.
//!
//! "latest" and "lts" are resolved here, by the tool that owns the name: an npm spec
//! `name@latest` (or `@lts`, where a package publishes that dist-tag) becomes the version
//! the tag points at today; an unpinned pip requirement becomes the version pip picks; a
//! download URL such as `.../releases/latest/...` is locked by the sha256 and size of what
//! it served. apt has one candidate per package: the lock pins it.
//!
//! A step that may not run on every install (`only_if`, `unless`, `creates`, `optional`)
//! is locked when it can be; when it cannot (rust's rustup-init, for `toolchain =
//! "rustup"`, where its host is out of reach), lock warns and leaves it out, and `bundle`
//! with it: an install where it runs takes it as the manifest says.

use std::path::{Path, PathBuf};

use em_lock::{
    LockFile, LockedDownload, LockedExtension, LockedPackage, LockedStep, StepKind, text,
};
use em_manifest::{Arch, Step};

use crate::adapter_context::PolicyName;
use crate::commands::install::Selection;
use crate::error::CliError;
use crate::exit;
use crate::output::{Tone, Ui};
use crate::plan::OptionSets;
use crate::session::Session;

/// `lock`'s arguments.
#[derive(clap::Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    selection: Selection,
    /// Set an option: --set nodejs.version=22
    #[arg(long = "set", value_name = "EXT.OPTION=VALUE")]
    sets: Vec<String>,
    /// The lock file to write
    #[arg(long, value_name = "FILE", default_value = em_lock::FILE_NAME)]
    lock_file: PathBuf,
}

/// `lock`.
pub async fn lock(session: &Session, args: &LockArgs, ui: &Ui) -> Result<u8, CliError> {
    let names = args.selection.resolve(session)?;
    let sets = OptionSets::parse(&args.sets)?;
    // As on a machine with nothing installed: every extension of the closure is locked.
    let plan = crate::locked::plan_as_locked(&session.catalog, &names, &sets)?;
    // A lock that exists must be readable: it is rewritten, not silently replaced.
    let mut lock = if args.lock_file.exists() {
        crate::locked::read(&args.lock_file)?
    } else {
        LockFile::default()
    };
    for entry in &plan.entries {
        ui.status("Locking", Tone::Info, entry.name());
        let mut steps = Vec::new();
        for (index, step) in entry.manifest.install.iter().enumerate() {
            if !step.runs_on(Arch::host()) {
                continue;
            }
            if let Step::Lang(lang) = &step.action {
                ui.status(
                    "Warning",
                    Tone::Warn,
                    &format!(
                        "{}: step {} ({}) is not locked: {} packages install as the manifest pins them",
                        entry.name(),
                        index + 1,
                        lang.tool.key(),
                        lang.tool.key()
                    ),
                );
            }
            let locked = match lock_step(session, &step.action).await {
                Ok(locked) => locked,
                // A step that may not run (its guard, `optional`) does not stop the lock:
                // an install where it runs goes to the network for it, or fails offline.
                Err(e) if crate::locked::conditional(step).is_some() => {
                    ui.status(
                        "Warning",
                        Tone::Warn,
                        &format!(
                            "{}: step {} ({}) is not locked, nor bundled: {}\n\
                             hint: an offline install where it runs fails at it; lock on a \
                             machine that reaches its source",
                            entry.name(),
                            index + 1,
                            crate::locked::conditional(step).unwrap_or_default(),
                            first_line(&e)
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    return Err(CliError::permanent(format!(
                        "{}: step {}: {e}",
                        entry.name(),
                        index + 1
                    )));
                }
            };
            if let Some((kind, packages, download)) = locked {
                steps.push(LockedStep {
                    index,
                    kind,
                    packages,
                    download,
                });
            }
        }
        lock.extensions.insert(
            entry.name().to_string(),
            LockedExtension {
                manifest_sha256: text(entry.manifest.manifest().sha256()),
                version: entry.manifest.version.value.clone(),
                options: crate::locked::lock_options(&entry.manifest),
                steps,
            },
        );
    }
    lock.write(&args.lock_file).map_err(|e| {
        CliError::permanent(format!("cannot write {}: {e}", args.lock_file.display()))
    })?;
    ui.status(
        "Locked",
        Tone::Good,
        &format!(
            "{} extensions in {}",
            plan.entries.len(),
            args.lock_file.display()
        ),
    );
    Ok(exit::OK)
}

type Locked = (StepKind, Vec<LockedPackage>, Option<LockedDownload>);

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

async fn lock_step(session: &Session, action: &Step) -> Result<Option<Locked>, String> {
    let words = |p: &[em_manifest::Spanned<String>]| -> Vec<String> {
        p.iter().map(|s| s.value.clone()).collect()
    };
    Ok(Some(match action {
        Step::Apt(apt) => {
            let debs = em_apt::resolve::resolve(
                Path::new("apt-get"),
                Path::new("apt-cache"),
                &words(&apt.packages),
            )
            .await
            .map_err(|e| match &apt.repository {
                // Its packages come from a source the install adds: not in the lists yet.
                Some(r) => format!(
                    "{e}\nhint: the step's repository ({}) is not among this machine's apt sources yet: lock after installing the extension once, or on a machine that has it",
                    r.uri.value
                ),
                None => e,
            })?;
            let packages = debs
                .into_iter()
                .map(|d| {
                    let mut p = LockedPackage::new(d.name, d.version);
                    p.requested = d.requested;
                    p.architecture = Some(text(d.architecture));
                    p.sha256 = Some(text(d.sha256));
                    p
                })
                .collect();
            (StepKind::Apt, packages, None)
        }
        Step::Npm(npm) => {
            let mut packages = Vec::new();
            for spec in words(&npm.packages) {
                let r = em_npm::resolve::resolve(
                    Path::new("npm"),
                    session.config.registries.npm.as_deref(),
                    &spec,
                )
                .await?;
                let mut p = LockedPackage::new(r.name, r.version);
                p.requested = true;
                p.integrity = Some(text(r.integrity));
                packages.push(p);
            }
            (StepKind::Npm, packages, None)
        }
        Step::Pip(pip) => {
            let requirements = words(&pip.packages)
                .iter()
                .map(|w| em_pip::PipRequirement::parse(w))
                .collect::<Result<Vec<_>, _>>()?;
            let dists = em_pip::resolve::resolve(
                Path::new("python3"),
                session.config.registries.pip.as_deref(),
                &requirements,
            )
            .await?;
            let packages = dists
                .into_iter()
                .map(|d| {
                    let mut p = LockedPackage::new(d.name, d.version);
                    p.requested = d.requested;
                    p.sha256 = Some(text(d.sha256));
                    p
                })
                .collect();
            (StepKind::Pip, packages, None)
        }
        Step::Download(d) => {
            let landed = fetch_to_hash(session, d).await?;
            (
                StepKind::Download,
                Vec::new(),
                Some(LockedDownload {
                    url: text(d.url.value.clone()),
                    sha256: text(landed.0),
                    size: landed.1,
                }),
            )
        }
        // pipx, cargo, gem and go: not resolved yet (the caller warns).
        Step::Run(_) | Step::File(_) | Step::Block(_) | Step::Lang(_) => return Ok(None),
    }))
}

/// Fetches a download step's URL into a private temporary directory (through curl, with
/// the download policy, mirrors and the manifest's sha256 when it has one) for its sha256
/// and size.
async fn fetch_to_hash(
    session: &Session,
    d: &em_manifest::DownloadStep,
) -> Result<(String, u64), String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    fetch_download(session, d, &dir.path().join("download")).await
}

/// Fetches a download step's URL to `dest` (the download policy, mirrors and the step's
/// sha256 when it has one, checked): its sha256 and size. `lock` hashes it, `bundle` keeps it.
pub(crate) async fn fetch_download(
    session: &Session,
    d: &em_manifest::DownloadStep,
    dest: &Path,
) -> Result<(String, u64), String> {
    let sha256 = match &d.sha256 {
        Some(s) => Some(em_exec::download::Sha256::parse(&s.value)?),
        None => None,
    };
    let request = em_exec::download::DownloadRequest {
        url: d.url.value.clone(),
        mirrors: d.mirrors.iter().map(|m| m.value.clone()).collect(),
        dest: dest.to_path_buf(),
        sha256,
        allow_http: d.allow_http,
        mode: None,
        max_size: session.config.download_max_size,
    };
    let runner = em_exec::Runner::new(session.config.policy(PolicyName::Download));
    let landed = em_install::download::download(None, &runner, &request)
        .await
        .map_err(|e| e.to_string())?;
    Ok((landed.sha256.to_string(), landed.bytes))
}
