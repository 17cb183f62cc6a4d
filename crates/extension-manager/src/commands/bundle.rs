//! `bundle DIR [EXT...|--all|--profile P]`: every payload of the locked set in one
//! directory, for `install --offline --from DIR` on a machine with no network (the layout
//! is em-install's `bundle` module's documentation).
//!
//! The input is the lock file, as `install --locked` reads it. An extension that is not in
//! the lock, or whose manifest or options changed since, is refused (exit 2) with the hint
//! to lock first: a bundle is made from a lock someone could review, never from what the
//! registries happen to serve while it is made. Every payload is checked against the lock
//! (the .debs' and wheels' sha256, the npm tarballs' integrity, the downloads' sha256).
//!
//! The bundle is built in a temporary directory beside DIR and renamed into place at the
//! end: a failed bundle leaves nothing, and DIR must not exist yet (or be empty).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use em_install::bundle::{self, Layout, NpmDist, PipDist};
use em_lock::StepKind;
use em_manifest::Step;

use crate::commands::install::Selection;
use crate::error::CliError;
use crate::exit;
use crate::output::{Tone, Ui};
use crate::plan::OptionSets;
use crate::session::Session;

/// `bundle`'s arguments.
#[derive(clap::Args, Debug)]
pub struct BundleArgs {
    /// The directory to write the bundle to (must not exist, or be empty)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    selection: Selection,
    /// Set an option: --set nodejs.version=22 (as when locking)
    #[arg(long = "set", value_name = "EXT.OPTION=VALUE")]
    sets: Vec<String>,
    /// The lock file to bundle from
    #[arg(long, value_name = "FILE", default_value = em_lock::FILE_NAME)]
    lock_file: PathBuf,
}

/// What the lock says to fetch, over every extension of the plan.
#[derive(Default)]
struct Payloads {
    apt: BTreeMap<String, (String, String)>,
    pip: BTreeMap<String, PipDist>,
    npm: BTreeMap<String, NpmDist>,
    downloads: BTreeMap<String, em_manifest::DownloadStep>,
}

/// `bundle`.
pub async fn bundle(session: &Session, args: &BundleArgs, ui: &Ui) -> Result<u8, CliError> {
    let names = args.selection.resolve(session)?;
    let sets = OptionSets::parse(&args.sets)?;
    let mut plan = crate::locked::plan_as_locked(&session.catalog, &names, &sets)?;
    let lock = crate::locked::read(&args.lock_file)?;
    let drifted = crate::locked::drift(&plan, &lock);
    if !drifted.is_empty() {
        return Err(CliError::usage(format!(
            "{} does not hold what to bundle:\n{}",
            args.lock_file.display(),
            crate::locked::drift_lines(&drifted)
        ))
        .with_hint(format!(
            "lock them first: `extension-manager lock {}` (with the same --set values), then bundle",
            names.join(" ")
        )));
    }
    crate::locked::pin(&mut plan, &lock, &args.lock_file)?;
    let target = prepare_target(&args.dir)?;
    let parent = target.parent().unwrap_or(Path::new("/"));
    let building = tempfile::Builder::new()
        .prefix(".bundle-")
        .tempdir_in(parent)
        .map_err(|e| CliError::permanent(format!("cannot write in {}: {e}", parent.display())))?;
    let layout = Layout::new(building.path()).map_err(CliError::permanent)?;

    let mut payloads = Payloads::default();
    for entry in &plan.entries {
        let locked = &lock.extensions[entry.name()];
        for step in &locked.steps {
            for p in &step.packages {
                let (name, version) = (p.name.get_ref().clone(), p.version.get_ref().clone());
                let hash = |t: &Option<em_lock::Text>| {
                    t.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default()
                };
                match step.kind {
                    StepKind::Apt => {
                        payloads.apt.insert(name, (version, hash(&p.sha256)));
                    }
                    StepKind::Pip => {
                        let key = format!("{}=={version}", em_pip::normalize_name(&name));
                        payloads.pip.insert(
                            key,
                            PipDist {
                                name,
                                version,
                                sha256: hash(&p.sha256),
                            },
                        );
                    }
                    // The lock pins npm's top level; its tree comes with it into the cache.
                    StepKind::Npm if p.requested => {
                        payloads.npm.insert(
                            format!("{name}@{version}"),
                            NpmDist {
                                name,
                                version,
                                integrity: hash(&p.integrity),
                            },
                        );
                    }
                    StepKind::Npm | StepKind::Download => {}
                }
            }
        }
        // The downloads the lock locked (a conditional one it could not fetch is not).
        for step in locked.steps.iter().filter(|s| s.download.is_some()) {
            if let Some(Step::Download(d)) =
                entry.manifest.install.get(step.index).map(|s| &s.action)
                && let Some(sha256) = &d.sha256
            {
                payloads.downloads.insert(sha256.value.clone(), d.clone());
            }
        }
    }

    fetch_apt(ui, &layout, &payloads.apt).await?;
    if !payloads.pip.is_empty() {
        ui.status(
            "Bundling",
            Tone::Info,
            &format!("{} pip distributions", payloads.pip.len()),
        );
        let dists: Vec<PipDist> = payloads.pip.into_values().collect();
        bundle::fetch_wheels(
            Path::new("python3"),
            session.config.registries.pip.as_deref(),
            &layout.pypi_simple(),
            &dists,
        )
        .await
        .map_err(CliError::permanent)?;
    }
    let npm_registry = if payloads.npm.is_empty() {
        None
    } else {
        ui.status(
            "Bundling",
            Tone::Info,
            &format!("{} npm packages and their dependencies", payloads.npm.len()),
        );
        let registry = npm_registry(session).await?;
        let packages: Vec<NpmDist> = payloads.npm.into_values().collect();
        bundle::fetch_npm(Path::new("npm"), &registry, &layout, &packages)
            .await
            .map_err(CliError::permanent)?;
        Some(registry)
    };
    for (sha256, d) in &payloads.downloads {
        ui.status("Bundling", Tone::Info, &em_exec::redact_url(&d.url.value));
        let scratch = tempfile::tempdir().map_err(|e| {
            CliError::permanent(format!("cannot create a temporary directory: {e}"))
        })?;
        let file = scratch.path().join("download");
        crate::commands::lock::fetch_download(session, d, &file)
            .await
            .map_err(CliError::permanent)?;
        bundle::store_download(&layout, &file, sha256).map_err(CliError::permanent)?;
    }

    let lock_sha256 = bundle::sha256_file(&args.lock_file).map_err(CliError::permanent)?;
    let manifest =
        bundle::write_manifest(&layout, &lock_sha256, npm_registry).map_err(CliError::permanent)?;
    let building = building.keep();
    // A temporary directory is 0700; the bundle is read by others (apt's `_apt` user).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&building, std::fs::Permissions::from_mode(0o755));
    }
    // An empty DIR (checked above) is replaced; rename does that for empty directories.
    std::fs::rename(&building, &target).map_err(|e| {
        let _ = std::fs::remove_dir_all(&building);
        CliError::permanent(format!(
            "cannot move the bundle to {}: {e}",
            target.display()
        ))
    })?;
    let bytes: u64 = manifest
        .files
        .keys()
        .filter_map(|rel| std::fs::metadata(target.join(rel)).ok())
        .map(|m| m.len())
        .sum();
    ui.status(
        "Bundled",
        Tone::Good,
        &format!(
            "{} extensions, {} files ({}) in {}",
            plan.entries.len(),
            manifest.files.len(),
            bytesize::ByteSize::b(bytes),
            target.display()
        ),
    );
    Ok(exit::OK)
}

/// DIR, absolute: refused (exit 2) when it exists and is not an empty directory.
fn prepare_target(dir: &Path) -> Result<PathBuf, CliError> {
    let target = std::path::absolute(dir)
        .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", dir.display())))?;
    if let Ok(mut entries) = std::fs::read_dir(&target) {
        if entries.next().is_some() {
            return Err(
                CliError::usage(format!("{} exists and is not empty", target.display())).with_hint(
                    "name a new directory, or remove this one: a bundle is written whole",
                ),
            );
        }
    } else if target.exists() {
        return Err(CliError::usage(format!(
            "{} exists and is not a directory",
            target.display()
        )));
    }
    Ok(target)
}

/// The locked .debs and their closure into `apt/`, each locked one checked, then the index.
async fn fetch_apt(
    ui: &Ui,
    layout: &Layout,
    locked: &BTreeMap<String, (String, String)>,
) -> Result<(), CliError> {
    if locked.is_empty() {
        return Ok(());
    }
    ui.status(
        "Bundling",
        Tone::Info,
        &format!("{} apt packages and their dependencies", locked.len()),
    );
    let pins: Vec<String> = locked
        .iter()
        .map(|(name, (version, _))| format!("{name}={version}"))
        .collect();
    let dir = layout.apt();
    bundle::fetch_debs(Path::new("apt-get"), &dir, &pins)
        .await
        .map_err(CliError::permanent)?;
    let debs = bundle::write_apt_index(Path::new("dpkg-deb"), &dir)
        .await
        .map_err(CliError::permanent)?;
    let mut problems = Vec::new();
    for (name, (version, sha256)) in locked {
        match debs
            .iter()
            .find(|d| &d.name == name && &d.version == version)
        {
            Some(d) if &d.sha256 == sha256 => {}
            Some(d) => problems.push(format!(
                "  {name}={version}: sha256 {}, the lock says {sha256}",
                d.sha256
            )),
            None => problems.push(format!("  {name}={version}: apt did not fetch it")),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::permanent(format!(
        "the .debs apt fetched do not match the lock:\n{}",
        problems.join("\n")
    ))
    .with_hint("the archive changed since the lock: point apt at a snapshot of it as of the lock, or lock again"))
}

/// The registry npm's cache is keyed by: the configuration's, else npm's own setting.
async fn npm_registry(session: &Session) -> Result<String, CliError> {
    if let Some(r) = &session.config.registries.npm {
        return Ok(r.clone());
    }
    let out = em_exec::Cmd::new("npm")
        .args(["config", "get", "registry"])
        .stdout()
        .await
        .map_err(CliError::permanent)?;
    Ok(out.trim().to_string())
}
