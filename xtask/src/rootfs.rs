//! `cargo xtask rootfs [--keep] [--report-only] [--rebuild] [EXT...]`: each bundled
//! extension installed and removed in a fresh Debian minbase chroot, and the machine
//! compared before and after (dpkg's selections and states, npm globals, pip packages,
//! files). A difference fails the run, unless `--report-only`.
//!
//! The tree is built once with debootstrap from the host's own apt mirror and cached as a
//! tarball (see [`rootfs_chroot`]); each extension gets a fresh copy of it. Only the
//! package registries are used: an extension whose manifest (or a requirement's) declares
//! `requirements.domains` or downloads a file needs another host and is skipped, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::rootfs_chroot::{self as chroot, HostConfig, Tree};
use crate::rootfs_snapshot::{COMMON_PATHS, Diff, Snapshot};
use crate::{format_duration, target_dir};

/// The extensions `cargo xtask ci` tests when EM_ROOTFS=1: the three the README starts
/// with (apt only; apt and pip; apt and npm).
pub const CI_EXTENSIONS: [&str; 3] = ["base", "python", "nodejs"];

/// The account a user extension (`scope = "user"`) is installed for: made in each fresh
/// tree with a home and bash, as a dev machine's user would be, and passed as `--user`.
pub const TARGET_USER: &str = "dev";

/// What `cargo xtask rootfs` was asked.
#[derive(Default)]
pub struct Options {
    /// Keep each tree under /var/tmp/em-rootfs after its run.
    keep: bool,
    /// Report differences but exit 0.
    report_only: bool,
    /// Build the cached tree again.
    rebuild: bool,
    /// Use this binary instead of building target/release/extension-manager.
    binary: Option<PathBuf>,
    /// Lock and bundle on the host, then install, check and remove in the tree with no
    /// network (`install --offline --from`, inside `unshare --net`).
    offline: bool,
    /// With `offline`: install through the dev container Feature's install.sh (all the
    /// extensions at once) instead of the Dockerfile's one layer per extension.
    feature: bool,
    /// `--set EXT.OPTION=VALUE`, passed to each (online) install.
    sets: Vec<String>,
    /// The extensions to test; none: every one the machine can reach.
    extensions: Vec<String>,
}

impl Options {
    /// What CI runs: [`CI_EXTENSIONS`], failing on any difference.
    pub fn for_ci() -> Self {
        Self {
            extensions: CI_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            ..Self::default()
        }
    }

    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--keep" => options.keep = true,
                "--report-only" => options.report_only = true,
                "--rebuild" => options.rebuild = true,
                "--offline" => options.offline = true,
                "--feature" => options.feature = true,
                "--binary" => {
                    let path = args.next().ok_or("--binary needs a PATH")?;
                    options.binary = Some(PathBuf::from(path));
                }
                "--set" => {
                    let set = args.next().ok_or("--set needs EXT.OPTION=VALUE")?;
                    // It goes into a shell command line in the tree: plain words only.
                    let plain = |c: char| c.is_ascii_alphanumeric() || "._-+:=/".contains(c);
                    if !set.contains('=') || !set.chars().all(plain) {
                        return Err(format!(
                            "--set {set}: expected EXT.OPTION=VALUE of letters, digits and ._-+:/"
                        ));
                    }
                    options.sets.push(set.clone());
                }
                flag if flag.starts_with('-') => {
                    return Err(format!("unexpected arguments: {flag}"));
                }
                name => options.extensions.push(name.to_owned()),
            }
        }
        if options.feature && !options.offline {
            return Err("--feature goes with --offline".into());
        }
        if options.offline && !options.sets.is_empty() {
            return Err("--set goes without --offline (the lock takes no options here)".into());
        }
        Ok(options)
    }
}

/// A bundled manifest, as far as the harness needs it.
struct Manifest {
    requires: Vec<String>,
    /// `scope = "user"`: installed for [`TARGET_USER`], whose home is snapshotted.
    user: bool,
    /// Hosts outside the package registries: `requirements.domains`, download URLs.
    hosts: BTreeSet<String>,
    /// Paths the install steps name (`to`, `unpack_to`, `venv`, `file`, `block`; `{{home}}`
    /// is [`TARGET_USER`]'s), listed in snapshots.
    paths: BTreeSet<String>,
}

/// What one extension's run measured.
struct Outcome {
    name: String,
    result: Result<Measured, String>,
}

struct Measured {
    copy: Duration,
    /// `--offline`: the lock and the bundle on the host (time, size in bytes).
    bundle: Option<(Duration, u64)>,
    install: (i32, Duration),
    status: i32,
    /// The second install: its exit code and time, and why it was not a no-op (`None`:
    /// it said every extension was up to date and the machine did not change).
    rerun: (i32, Duration, Option<String>),
    removed: Vec<String>,
    remove: (i32, Duration),
    diff: Diff,
}

impl Measured {
    fn passed(&self) -> bool {
        self.install.0 == 0
            && self.status == 0
            && self.rerun.0 == 0
            && self.rerun.2.is_none()
            && self.remove.0 == 0
            && self.diff.is_empty()
    }
}

pub fn run(root: &Path, options: &Options) -> Result<(), String> {
    let started = Instant::now();
    chroot::check_host()?;
    chroot::sweep_stale_runs();
    let catalog = read_catalog(&root.join("extensions"))?;
    let chosen = choose(&catalog, &options.extensions, options.offline)?;
    if chosen.is_empty() {
        return Err("no extension to test".into());
    }
    let host = HostConfig::read()?;
    let binary = binary(root, options)?;
    let cache_build = chroot::ensure_cache(&host, options.rebuild)?;
    match cache_build {
        Some(took) => eprintln!("==> rootfs: built the tree in {}", format_duration(took)),
        None => eprintln!("==> rootfs: cached tree {}", chroot::cache_file().display()),
    }
    let reports = target_dir(root).join("rootfs");
    let mut outcomes = Vec::new();
    for name in &chosen {
        let paths = snapshot_paths(&catalog, name);
        let layers = layers(&catalog, name);
        let user = catalog[name].user.then_some(TARGET_USER);
        let result = test_one(
            name, user, &paths, &layers, root, &host, &binary, options, &reports,
        );
        let outcome = Outcome {
            name: name.clone(),
            result,
        };
        print_outcome(&outcome, &reports);
        outcomes.push(outcome);
    }
    chroot::remove_runs_dir();
    finish(&outcomes, options, started.elapsed())
}

/// Reads `extensions/*.toml` (the bundled manifests) with the fields the harness uses.
fn read_catalog(dir: &Path) -> Result<BTreeMap<String, Manifest>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut catalog = BTreeMap::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let is_manifest = path.extension().is_some_and(|e| e == "toml")
            && path.file_stem().is_some_and(|s| s != "profiles");
        if !is_manifest {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let (name, manifest) = manifest_of(&table)
            .ok_or_else(|| format!("{}: no [extension] name", path.display()))?;
        catalog.insert(name, manifest);
    }
    Ok(catalog)
}

fn manifest_of(table: &toml::Table) -> Option<(String, Manifest)> {
    let extension = table.get("extension")?.as_table()?;
    let name = extension.get("name")?.as_str()?.to_owned();
    let strings = |value: Option<&toml::Value>| -> Vec<String> {
        value
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let requires = strings(extension.get("requires"));
    let user = extension.get("scope").and_then(toml::Value::as_str) == Some("user");
    let mut hosts: BTreeSet<String> = strings(
        extension
            .get("requirements")
            .and_then(|r| r.as_table())
            .and_then(|r| r.get("domains")),
    )
    .into_iter()
    .collect();
    let mut paths = BTreeSet::new();
    let steps = table.get("install").and_then(toml::Value::as_array);
    for step in steps
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
    {
        // A download behind `only_if` (rust's rustup-init, for toolchain = "rustup") is
        // not needed by every install: the run shows whether its guard held.
        if let Some(url) = step.get("download").and_then(toml::Value::as_str)
            && !step.contains_key("only_if")
        {
            hosts.insert(host_of(url));
        }
        for key in ["to", "unpack_to", "venv", "file", "block"] {
            if let Some(path) = step.get(key).and_then(toml::Value::as_str) {
                paths.insert(path.replace("{{home}}", &format!("/home/{TARGET_USER}")));
            }
        }
    }
    Some((
        name,
        Manifest {
            requires,
            user,
            hosts,
            paths,
        },
    ))
}

/// `https://host:port/path` -> `host:port`.
fn host_of(url: &str) -> String {
    em_retry::url::authority(url).to_owned()
}

/// The extension and everything it requires, transitively.
fn closure<'a>(catalog: &'a BTreeMap<String, Manifest>, name: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name];
    while let Some(next) = todo.pop() {
        if seen.insert(next)
            && let Some(manifest) = catalog.get(next)
        {
            todo.extend(manifest.requires.iter().map(String::as_str));
        }
    }
    seen
}

/// `name` and its requirements, requirements first (ties by name): the order of the
/// `RUN` lines of examples/Dockerfile, one layer per extension.
fn layers(catalog: &BTreeMap<String, Manifest>, name: &str) -> Vec<String> {
    fn visit(catalog: &BTreeMap<String, Manifest>, name: &str, out: &mut Vec<String>) {
        if out.iter().any(|n| n == name) {
            return;
        }
        if let Some(manifest) = catalog.get(name) {
            let mut requires = manifest.requires.clone();
            requires.sort();
            for r in &requires {
                visit(catalog, r, out);
            }
        }
        out.push(name.to_owned());
    }
    let mut out = Vec::new();
    visit(catalog, name, &mut out);
    out
}

/// The hosts outside the package registries that installing `name` needs.
fn outside_hosts(catalog: &BTreeMap<String, Manifest>, name: &str) -> BTreeSet<String> {
    closure(catalog, name)
        .into_iter()
        .filter_map(|n| catalog.get(n))
        .flat_map(|m| m.hosts.iter().cloned())
        .collect()
}

/// The extensions to test: those asked for (or all), minus those that need other hosts
/// (`offline`: none is skipped, the host fetches every download into the bundle).
fn choose(
    catalog: &BTreeMap<String, Manifest>,
    asked: &[String],
    offline: bool,
) -> Result<Vec<String>, String> {
    for name in asked {
        if !catalog.contains_key(name) {
            let known: Vec<&str> = catalog.keys().map(String::as_str).collect();
            return Err(format!(
                "no bundled extension named `{name}`\nhint: one of {}",
                known.join(", ")
            ));
        }
    }
    let candidates: Vec<String> = if asked.is_empty() {
        catalog.keys().cloned().collect()
    } else {
        asked.to_vec()
    };
    let mut chosen = Vec::new();
    for name in candidates {
        let hosts = outside_hosts(catalog, &name);
        if offline && catalog[&name].user {
            eprintln!(
                "==> rootfs: Skipped {name}: a user extension; the bundle's install.sh \
                 installs system extensions as a Dockerfile's root does"
            );
        } else if hosts.is_empty() || offline {
            chosen.push(name);
        } else {
            let hosts: Vec<String> = hosts.into_iter().collect();
            eprintln!(
                "==> rootfs: Skipped {name}: it downloads from {}, outside the package \
                 registries this machine reaches (apt's mirror, npm's and pip's registries)",
                hosts.join(", ")
            );
        }
    }
    Ok(chosen)
}

/// The paths listed in the `files` section for `name`: the common ones and the ones its
/// manifest (and its requirements') install steps name.
fn snapshot_paths(catalog: &BTreeMap<String, Manifest>, name: &str) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = COMMON_PATHS.iter().map(|p| p.to_string()).collect();
    for n in closure(catalog, name) {
        if let Some(manifest) = catalog.get(n) {
            paths.extend(manifest.paths.iter().cloned());
            if manifest.user {
                paths.insert(format!("/home/{TARGET_USER}"));
            }
        }
    }
    paths
}

/// `--binary`, or target/release/extension-manager built now.
fn binary(root: &Path, options: &Options) -> Result<PathBuf, String> {
    if let Some(path) = &options.binary {
        return Ok(path.clone());
    }
    crate::bench::cargo_build(
        root,
        &["cargo", "build", "--release", "-p", "extension-manager"],
    )?;
    Ok(target_dir(root).join("release/extension-manager"))
}

/// Where `--offline` puts the lock and the bundle in the tree (beside the binary, outside
/// every listed path).
const OFFLINE_DIR: &str = "/em-rootfs";

/// The scripts of examples/Dockerfile's two stages, which `--offline` runs as they are.
const BUNDLE_SCRIPT: &str = "examples/image/bundle.sh";
const INSTALL_SCRIPT: &str = "examples/image/install.sh";
const FEATURE_SCRIPT: &str = "examples/devcontainer-feature/src/extension-manager/install.sh";

/// `--offline`, on the host: the Dockerfile's first stage (`examples/image/bundle.sh`:
/// `lock NAME`, `bundle bundle NAME`) with `binary` into the tree's [`OFFLINE_DIR`], with a
/// state directory of its own. Returns the time and the bundle's size.
fn bundle_on_host(
    tree: &Tree,
    root: &Path,
    binary: &Path,
    name: &str,
    dir: &Path,
) -> Result<(Duration, u64), String> {
    let work = tree.host_path(OFFLINE_DIR);
    let started = Instant::now();
    eprintln!("==> rootfs: {name}: on the host: {BUNDLE_SCRIPT} {OFFLINE_DIR} {name}");
    let output = std::process::Command::new("sh")
        .arg(root.join(BUNDLE_SCRIPT))
        .arg(&work)
        .arg(name)
        .env("EM", binary)
        .env("EM_STATE_DIR", dir.join("host-state"))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {BUNDLE_SCRIPT}: {e}"))?;
    save_log(&output, &dir.join("bundle.log"))?;
    if !output.status.success() {
        return Err(format!(
            "{BUNDLE_SCRIPT} {name} exited {}: {}",
            output.status.code().unwrap_or(-1),
            chroot::tail(&output.stderr, 5)
        ));
    }
    for (script, inside) in [
        (INSTALL_SCRIPT, "install.sh"),
        (FEATURE_SCRIPT, "feature.sh"),
    ] {
        fs::copy(
            root.join(script),
            tree.host_path(&format!("{OFFLINE_DIR}/{inside}")),
        )
        .map_err(|e| format!("cannot copy {script} into the tree: {e}"))?;
    }
    Ok((started.elapsed(), dir_size(&work.join("bundle"))))
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(entry.path()),
                Ok(_) => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// One extension: fresh tree, snapshot, install, status, remove, snapshot, diff.
/// `--offline`: the lock and the bundle are made on the host first, and the tree's
/// commands run without a network (the first thing run there shows its interfaces).
/// `user`: a user extension, for this account, made in the tree before the first snapshot
/// (its home is in `paths`) and named with `--user` in every command.
#[allow(clippy::too_many_arguments)]
fn test_one(
    name: &str,
    user: Option<&str>,
    paths: &BTreeSet<String>,
    layers: &[String],
    root: &Path,
    host: &HostConfig,
    binary: &Path,
    options: &Options,
    reports: &Path,
) -> Result<Measured, String> {
    let keep = options.keep;
    let mut sets: String = options.sets.iter().map(|s| format!(" --set {s}")).collect();
    let for_user = user.map(|u| format!(" --user {u}")).unwrap_or_default();
    sets.push_str(&for_user);
    eprintln!("==> rootfs: {name}: fresh tree");
    let dir = reports.join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    let copied = Instant::now();
    let tree = Tree::unpack(name, host, keep)?;
    let em = tree.install_binary(binary)?;
    if let Some(user) = user {
        let made = tree.run(&format!("useradd --create-home --shell /bin/bash {user}"))?;
        if !made.status.success() {
            return Err(format!(
                "useradd {user} failed: {}",
                chroot::tail(&made.stderr, 5)
            ));
        }
    }
    let copy = copied.elapsed();
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bundle = match options.offline {
        true => Some(bundle_on_host(&tree, root, binary, name, &dir)?),
        false => None,
    };
    let before = Snapshot::take(&tree, paths)?;
    before.write(&dir.join("before"))?;

    let run = |script: &str| match options.offline {
        true => tree.run_offline(script),
        false => tree.run(script),
    };
    let install = match options.offline {
        true => {
            let interfaces = run("cat /proc/net/dev")?;
            save_log(&interfaces, &dir.join("interfaces.log"))?;
            let text = String::from_utf8_lossy(&interfaces.stdout);
            let up: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once(':').map(|(i, _)| i.trim()))
                .filter(|i| *i != "lo")
                .collect();
            if !up.is_empty() {
                return Err(format!(
                    "the offline namespace has interfaces: {}",
                    up.join(", ")
                ));
            }
            // The Feature: its install.sh with the options as variables, all at once.
            let feature = format!(
                "EM={em} EXTENSIONS='{}' BUNDLE={OFFLINE_DIR} sh {OFFLINE_DIR}/feature.sh",
                layers.join(" ")
            );
            // The Dockerfile's second stage: one install (one layer) per extension.
            let mut total = (0, Duration::ZERO);
            for layer in layers {
                if options.feature {
                    eprintln!("==> rootfs: {name}: {feature}");
                    total = timed_with(&run, &feature, &dir, "install")?;
                    break;
                }
                let script = format!("EM={em} sh {OFFLINE_DIR}/install.sh {OFFLINE_DIR} {layer}");
                eprintln!("==> rootfs: {name}: {script}");
                let (code, took) = timed_with(&run, &script, &dir, &format!("install-{layer}"))?;
                total.1 += took;
                if code != 0 {
                    total.0 = code;
                    break;
                }
            }
            total
        }
        false => {
            eprintln!("==> rootfs: {name}: extension-manager install {name}{sets}");
            timed_with(
                &run,
                &format!("{em} --progress none install {name}{sets}"),
                &dir,
                "install",
            )?
        }
    };
    let status = timed_with(&run, &format!("{em} status{for_user}"), &dir, "status")?.0;
    let again = match options.offline {
        true => format!("EM={em} sh {OFFLINE_DIR}/install.sh {OFFLINE_DIR} {name}"),
        false => format!("{em} --progress none install {name}{sets}"),
    };
    let rerun = rerun(&tree, paths, &run, name, &again, &dir)?;
    let removed = installed_extensions(&tree, em, &for_user)?;
    eprintln!(
        "==> rootfs: {name}: extension-manager remove {}{for_user}",
        removed.join(" ")
    );
    let remove = if removed.is_empty() {
        (0, Duration::ZERO)
    } else {
        timed_with(
            &run,
            &format!("{em} remove {}{for_user}", removed.join(" ")),
            &dir,
            "remove",
        )?
    };

    let after = Snapshot::take(&tree, paths)?;
    after.write(&dir.join("after"))?;
    let diff = Diff::between(&before, &after);
    let diff_file = dir.join("diff.txt");
    fs::write(&diff_file, diff.full_text()).map_err(|e| format!("{}: {e}", diff_file.display()))?;
    Ok(Measured {
        copy,
        bundle,
        install,
        status,
        rerun,
        removed,
        remove,
        diff,
    })
}

/// The second `install` of `name`, which must be a no-op: exit 0, every extension
/// reported up to date (none installed, failed or skipped), and the snapshot after it
/// equal to the one before it (the difference is saved as `rerun-diff.txt`).
fn rerun(
    tree: &Tree,
    paths: &BTreeSet<String>,
    run: &dyn Fn(&str) -> Result<Output, String>,
    name: &str,
    script: &str,
    dir: &Path,
) -> Result<(i32, Duration, Option<String>), String> {
    eprintln!("==> rootfs: {name}: again, a no-op: {script}");
    let before = Snapshot::take(tree, paths)?;
    let (code, took) = timed_with(run, script, dir, "rerun")?;
    let after = Snapshot::take(tree, paths)?;
    let diff = Diff::between(&before, &after);
    let log = dir.join("rerun.log");
    let text = fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let why = if !diff.is_empty() {
        let file = dir.join("rerun-diff.txt");
        fs::write(&file, diff.full_text()).map_err(|e| format!("{}: {e}", file.display()))?;
        Some(format!("it changed the machine:\n{}", diff.summary(15)))
    } else if !said_all_up_to_date(&text) {
        Some("it did not say every extension was up to date (see rerun.log)".to_owned())
    } else {
        None
    };
    Ok((code, took, why))
}

/// Whether an install's summary line says nothing was installed, failed or skipped and at
/// least one extension was up to date: `Summary 0 installed, 3 up to date, 0 failed, 0 skipped`.
fn said_all_up_to_date(log: &str) -> bool {
    log.lines().any(|line| {
        let Some((_, counts)) = line.split_once("Summary") else {
            return false;
        };
        let counts: Vec<&str> = counts.split(',').map(str::trim).collect();
        let fresh = counts
            .get(1)
            .and_then(|c| c.strip_suffix(" up to date"))
            .and_then(|n| n.parse::<u32>().ok());
        counts.len() == 4
            && counts[0] == "0 installed"
            && fresh.is_some_and(|n| n > 0)
            && counts[2] == "0 failed"
            && counts[3] == "0 skipped"
    })
}

/// Runs `script` through `run` (in the tree), its output saved to `<dir>/<log>.log`:
/// (exit code, time).
fn timed_with(
    run: &dyn Fn(&str) -> Result<Output, String>,
    script: &str,
    dir: &Path,
    log: &str,
) -> Result<(i32, Duration), String> {
    let started = Instant::now();
    let output = run(script)?;
    let took = started.elapsed();
    save_log(&output, &dir.join(format!("{log}.log")))?;
    Ok((output.status.code().unwrap_or(-1), took))
}

fn save_log(output: &Output, path: &Path) -> Result<(), String> {
    let mut text = output.stdout.clone();
    text.extend_from_slice(&output.stderr);
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The extensions the state records after the install (the tree had none before), the
/// one asked for and every requirement it pulled in; `for_user` (` --user NAME` or empty):
/// that user's.
fn installed_extensions(tree: &Tree, em: &str, for_user: &str) -> Result<Vec<String>, String> {
    let output = tree.run(&format!("{em} --output json status{for_user}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("`extension-manager status` printed no JSON ({e}): {text}"))?;
    Ok(value["extensions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect())
}

fn print_outcome(outcome: &Outcome, reports: &Path) {
    let name = &outcome.name;
    let m = match &outcome.result {
        Ok(m) => m,
        Err(message) => {
            eprintln!("==> rootfs: {name}: ERROR {message}");
            return;
        }
    };
    let verdict = if m.passed() { "ok" } else { "FAILED" };
    if let Some((took, bytes)) = m.bundle {
        eprintln!(
            "==> rootfs: {name}: lock + bundle on the host in {} ({:.1} MiB); \
             install, status and remove with no network",
            format_duration(took),
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    eprintln!(
        "==> rootfs: {name}: {verdict}: copy {}, install exit {} in {}, status exit {}, \
         again exit {} in {}, remove {} exit {} in {}",
        format_duration(m.copy),
        m.install.0,
        format_duration(m.install.1),
        m.status,
        m.rerun.0,
        format_duration(m.rerun.1),
        m.removed.join(" "),
        m.remove.0,
        format_duration(m.remove.1),
    );
    match &m.rerun.2 {
        None => eprintln!("    the second install was a no-op"),
        Some(why) => eprintln!("    the second install was not a no-op: {why}"),
    }
    if m.diff.is_empty() {
        eprintln!("    the machine after remove equals the machine before install");
    } else {
        eprint!("{}", m.diff.summary(15));
        eprintln!("    full diff and logs: {}", reports.join(name).display());
    }
}

/// The summary table and the exit status.
fn finish(outcomes: &[Outcome], options: &Options, total: Duration) -> Result<(), String> {
    eprintln!("\nrootfs summary:");
    let mut failed = Vec::new();
    for outcome in outcomes {
        let line = match &outcome.result {
            Ok(m) if m.passed() => "ok".to_owned(),
            Ok(m) if m.rerun.2.is_some() => format!(
                "FAILED (install exit {}, the second install was not a no-op)",
                m.install.0
            ),
            Ok(m) if m.diff.is_empty() => {
                format!(
                    "FAILED (install exit {}, remove exit {})",
                    m.install.0, m.remove.0
                )
            }
            Ok(m) => format!(
                "FAILED (install exit {}, remove exit {}, the machine differs)",
                m.install.0, m.remove.0
            ),
            Err(message) => format!("ERROR ({})", message.lines().next().unwrap_or("")),
        };
        if !line.starts_with("ok") {
            failed.push(outcome.name.clone());
        }
        eprintln!("  {:<12} {line}", outcome.name);
    }
    eprintln!("  {:<12} {}", "total", format_duration(total));
    let leftovers = chroot::mounts_under(&chroot::runs_dir());
    if !leftovers.is_empty() {
        return Err(format!("mounts left behind: {}", leftovers.join(", ")));
    }
    if failed.is_empty() || options.report_only {
        return Ok(());
    }
    Err(format!(
        "rootfs: {} left the machine changed or failed: {}",
        if failed.len() == 1 {
            "one extension"
        } else {
            "extensions"
        },
        failed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> BTreeMap<String, Manifest> {
        let parse = |text: &str| {
            let table: toml::Table = toml::from_str(text).expect("test manifest parses");
            manifest_of(&table).expect("test manifest has a name")
        };
        [
            parse("[extension]\nname = \"base\"\n"),
            parse(
                "[extension]\nname = \"go\"\nrequires = [\"base\"]\n\
                 [[install]]\ndownload = \"https://files.example:8443/go.tgz\"\nunpack_to = \"/opt\"\n",
            ),
            parse("[extension]\nname = \"tools\"\nrequires = [\"go\"]\n"),
            parse(
                "[extension]\nname = \"maybe\"\n[[install]]\nonly_if = \"false\"\n\
                 download = \"https://files.example/x\"\nto = \"/opt/x\"\n",
            ),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn an_extension_that_needs_another_host_is_skipped_with_its_dependents() {
        let catalog = catalog();
        assert_eq!(
            choose(&catalog, &[], false),
            Ok(vec!["base".to_owned(), "maybe".to_owned()]),
            "a guarded download does not skip"
        );
        assert_eq!(
            choose(&catalog, &[], true).map(|c| c.len()),
            Ok(4),
            "offline: all"
        );
        assert_eq!(
            outside_hosts(&catalog, "tools")
                .into_iter()
                .collect::<Vec<_>>(),
            ["files.example:8443"]
        );
        assert!(choose(&catalog, &["nope".into()], false).is_err());
    }

    #[test]
    fn a_rerun_is_a_no_op_only_when_everything_is_up_to_date() {
        let line = |s: &str| format!("Installing base\n     Summary {s}\nextension ...\n");
        assert!(said_all_up_to_date(&line(
            "0 installed, 2 up to date, 0 failed, 0 skipped"
        )));
        for not in [
            "1 installed, 1 up to date, 0 failed, 0 skipped",
            "0 installed, 0 up to date, 0 failed, 0 skipped",
            "0 installed, 1 up to date, 1 failed, 0 skipped",
            "0 installed, 1 up to date, 0 failed, 1 skipped",
        ] {
            assert!(!said_all_up_to_date(&line(not)), "{not}");
        }
        assert!(!said_all_up_to_date("Nothing to do\n"));
    }

    #[test]
    fn layers_put_requirements_first() {
        assert_eq!(layers(&catalog(), "tools"), ["base", "go", "tools"]);
        assert_eq!(layers(&catalog(), "base"), ["base"]);
    }

    #[test]
    fn lists_the_paths_the_install_steps_name() {
        let paths = snapshot_paths(&catalog(), "tools");
        assert!(paths.contains("/opt") && paths.contains("/usr/local"));
    }

    #[test]
    fn parses_flags_and_names() {
        let args: Vec<String> = [
            "--keep",
            "base",
            "--report-only",
            "python",
            "--offline",
            "--feature",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let options = Options::parse(&args).expect("valid arguments");
        assert!(options.keep && options.report_only && !options.rebuild && options.offline);
        assert!(options.feature);
        assert!(
            Options::parse(&["--feature".into()]).is_err(),
            "only with --offline"
        );
        assert_eq!(options.extensions, ["base", "python"]);
        assert!(Options::parse(&["--nope".into()]).is_err());
        let sets =
            |v: &[&str]| Options::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let rust = sets(&["--set", "rust.toolchain=rustup", "rust"]).expect("valid");
        assert_eq!(rust.sets, ["rust.toolchain=rustup"]);
        for bad in [
            &["--set", "rust.toolchain=rustup;reboot"][..],
            &["--set", "rust.toolchain"],
            &["--set"],
            &["--offline", "--set", "rust.toolchain=rustup"],
        ] {
            assert!(sets(bad).is_err(), "{bad:?}");
        }
    }
}
