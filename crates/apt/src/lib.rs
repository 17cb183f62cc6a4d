//! # em-apt: apt-get and dpkg, run so that sporadic failures are survived
//!
//! The apt adapter of extension-manager: it builds the argument vectors of `apt-get
//! update`, `apt-get install`, `apt-get remove` and `dpkg-query`, runs them through an
//! [`em_exec::Runner`] (which owns the retry loop), reads their failures with
//! [`classify`], and runs the repairs apt needs ([`AptRepair`]). What it is not: a
//! resolver, a sources.list manager, or a wrapper for every apt command.
//!
//! Every command is non-interactive (`LC_ALL=C`, `DEBIAN_FRONTEND=noninteractive`, stdin
//! closed, `-y`, `--force-confdef --force-confold`, `-q`) and bounds its waits:
//! `Acquire::http::Timeout` / `Acquire::https::Timeout` ([`AptConfig::http_timeout`], low
//! enough that apt reports a stalled server itself, after its own retries, rather than
//! being killed, perhaps in the middle of dpkg: see "Who retries") and
//! `DPkg::Lock::Timeout` ([`AptConfig::lock_timeout`]: a held dpkg lock is waited for, up
//! to that long, by apt itself; lock files are never deleted). `apt-get update` always
//! gets `--error-on=any`: without it apt-get exits 0 when indexes fail to download
//! (docs/failures.md trap 1). Root is not assumed: `sudo -n` is used when not root.
//!
//! ## Who retries: apt or us
//!
//! Both, each at its own grain. apt retries the one file that failed, inside the same
//! transaction (`Acquire::Retries`, [`AptConfig::fetch_retries`], 3 by default): a reset,
//! a truncated body, a 5xx or 429 on one `.deb` or index costs one more request for that
//! file, not a new apt-get run that fetches every list again. It fetches again at
//! once (`Acquire::Retries::Delay::Maximum=0`): apt's own waits (1, 2, 4 s) are invisible
//! and add up file after file, and under 20% random faults they made an install 1.9x
//! slower than without faults (BENCHMARKS.md); waiting is our layer's job, between
//! attempts, where it shows and the deadline bounds it. Our policy runs around it
//! for what apt cannot do: classify what apt gave up on, repair (dpkg, lists), move to a
//! mirror, keep a circuit per host, and bound everything by the policy's timeout and
//! deadline. apt never retries a Hash Sum mismatch or a 404; we repair those.
//!
//! The arithmetic, with `r` apt retries and an attempt timeout `T`: apt's network timeout
//! is at most `T / (2 (1 + r))` ([`Acquire::for_policy`]; apt's http method reconnects once
//! after a timed-out connection, so a stalled file costs two timeouts per request), so a
//! file that stalls on every request is reported by apt itself, with its URL, before `T`
//! ends; a policy of `n` attempts fetches a failing file at most `n (1 + r)` times per
//! source, and the whole operation still ends within `n T` plus the backoff, or the
//! deadline, whichever is first.
//!
//! ## Classification
//!
//! Matched in this order (first match wins) over stderr then stdout:
//!
//! | signal | class | action |
//! |---|---|---|
//! | `are you root?`, `requires superuser privilege`, `E:`/`dpkg: error` line with `Permission denied`, `sudo: a password is required` | permanent | hint: run as root / passwordless sudo |
//! | `No space left on device`, `You don't have enough free space` | permanent | hint: free space, `apt-get clean` |
//! | the command is `dpkg --configure` and a maintainer script failed | permanent | the repair did not help (hint: `dpkg --audit`) |
//! | `dpkg was interrupted` | repairable | [`AptRepair::ConfigurePending`] |
//! | `Could not get lock`, `Unable to acquire the dpkg frontend lock`, `... lock was locked by another process`, `Unable to lock directory` | transient | `DPkg::Lock::Timeout` already waited; retry later |
//! | `held broken packages` | permanent | hint: `apt-cache policy` |
//! | `Unmet dependencies`, `apt --fix-broken install`, `dependency problems prevent configuration`, `unpacked but not yet configured` | repairable | [`AptRepair::FixBroken`] |
//! | `Sub-process /usr/bin/dpkg returned an error code`, `subprocess returned error exit status`, `only half configured` | repairable | [`AptRepair::ConfigurePending`] |
//! | `Hash Sum mismatch`, `File has unexpected size` | repairable | [`AptRepair::ClearLists`] |
//! | `Release file ... is expired`, `is not valid yet` | permanent | hint: the clock |
//! | `Clearsigned file isn't valid` | transient | reason names a captive portal / proxy |
//! | `NO_PUBKEY`, `is not signed`, `signatures couldn't be verified` | permanent | hint: `signed-by=` key |
//! | `does not have a Release file` | permanent | hint: the suite or URL |
//! | `Failed to fetch URL  408/429/5xx ...` | transient | retry, then the next mirror |
//! | `Failed to fetch URL  404 ...` (other 4xx) of an index (`update`) | permanent | hint: the source entry |
//! | `Failed to fetch URL  404 ...` of an archive (`.deb`) | repairable | [`AptRepair::Update`]: the lists predate the mirror |
//! | `Failed to fetch` with `Temporary failure resolving`, `Could not resolve` (\*), `Could not connect`, `Connection timed out`, `Connection failed`, `Connection reset`, `Undetermined Error` (a reset mid-body, apt 2.6) | transient | retry |
//! | `Unable to locate package X`, lists fresh | permanent | reason names X; hint: spelling, missing repository |
//! | `Unable to locate package X`, lists missing or older than `update_max_age` | repairable | [`AptRepair::Update`] |
//! | `has no installation candidate`, `Version 'V' for 'X' was not found` | permanent | hint: `apt-cache policy` |
//! | `Unable to fetch some archives`, `Some files failed to download` | repairable | [`AptRepair::Update`] |
//! | `Some index files failed to download` | transient | retry |
//! | anything else | transient | SPEC 3: unclassified failures retry; the reason quotes the first `E:` line |
//!
//! (\*) `Could not resolve` is NXDOMAIN, more often a wrong host than a hiccup; it is
//! retried like the rest, so a misspelt host costs the policy's attempts before failing.
//!
//! Each repair runs at most once per operation ([`em_exec::Adapter::repair_limit`] is 1):
//! the same failure after its repair is permanent ("the repair did not help").
//!
//! ## Fresh lists
//!
//! "Unable to locate package" is worth an update only when the lists may be stale:
//! [`Apt::lists_are_fresh`] is true when this `Apt` ran a successful update within
//! `update_max_age`, or when the lists directory (`Dir::State::Lists`, read from the file
//! `APT_CONFIG` names, else `/var/lib/apt/lists`) holds list files and the newest mtime
//! among them, the directory and `partial/` is within `update_max_age`. apt sets a list
//! file's mtime to the server's `Last-Modified`, so an unchanged repository looks older
//! than it is: the error is on the side of one extra `apt-get update`.
//!
//! ## Mirrors
//!
//! [`AptConfig::mirrors`] are alternates of the primary archive. `update` tries the
//! machine's sources first; when they are exhausted (or their circuit is open) it tries
//! each mirror with a fresh policy, through temporary sources (see [`rewrite_for_mirror`])
//! passed with `-o Dir::Etc::SourceList=` and `-o Dir::Etc::SourceParts=`; nothing under
//! `/etc` is written. The sources read are the ones apt reads: `Dir::Etc::SourceList` and
//! `Dir::Etc::SourceParts` of the file `APT_CONFIG` names, when set (see [`AptDirs`]).
//! After an update through a mirror, `install`, `remove` and the repairs of this `Apt` use
//! the same temporary sources, so that the packages come from where the lists came from.
//!
//! `install` walks the same chain: the active sources first (guarded by the circuit of
//! their host), then each other mirror. On a mirror whose lists this `Apt` has not
//! fetched, the lists do not count as fresh, so the first "Unable to locate package" there
//! runs `apt-get update` through that mirror (which then becomes the active source). An
//! `apt-get update` repair that fails (the source is unreachable) gives up the source,
//! not the operation: the next mirror is tried, and without one the install ends
//! exhausted (exit 75) rather than permanent. `remove` downloads nothing: no circuit, no
//! mirror.

// `ToolError` is em-exec's error type, shared by every adapter; boxing it is em-exec's call.
#![allow(clippy::result_large_err)]

mod classify;
mod inventory;
mod package;
pub mod resolve;
mod sources;

pub use classify::{AptRepair, ClassifyContext, classify};
pub use inventory::{
    DpkgInventory, INVENTORY_FORMAT, lock_wait_line, parse_simulated_removals, status_fd_line,
};
pub use package::AptPackage;
pub use sources::{
    AptDirs, MirrorSources, SourceFile, primary_archive, read_sources, rewrite_for_mirror,
};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use em_exec::{
    Adapter, Cmd, OutputMode, Runner, ToolError, ToolErrorKind, ToolFailure, Verdict, as_root,
    find_tool,
};
use em_retry::Operation;

/// What provides apt-get, dpkg and dpkg-query, for the "not found" error.
const PROVIDED_BY: &str = "the Debian package apt / dpkg (extension: base)";

/// How the apt adapter runs its tools.
#[derive(Clone, Debug)]
pub struct AptConfig {
    /// `DPkg::Lock::Timeout`: how long apt waits for the dpkg frontend lock before failing.
    /// Keep the policy's per-attempt timeout above it. Default 120 s.
    pub lock_timeout: Duration,
    /// `Acquire::http::Timeout` and `Acquire::https::Timeout`. Default 30 s; an operation
    /// uses less when its policy's per-attempt timeout needs it (see [`Acquire::for_policy`]).
    pub http_timeout: Duration,
    /// `Acquire::Retries`: how often apt itself fetches a failed file again within one
    /// run (see "Who retries"). Default 3, apt's own default.
    pub fetch_retries: u32,
    /// Mirror base URLs of the primary archive, tried in order after it (e.g.
    /// `http://127.0.0.1:8080/debian`).
    pub mirrors: Vec<String>,
    /// Extra environment for every command (e.g. `APT_CONFIG`, `http_proxy`).
    pub env: Vec<(String, String)>,
    /// Lists younger than this are fresh: "Unable to locate package" is then permanent.
    /// Default 1 h.
    pub update_max_age: Duration,
    /// Where apt keeps its sources and lists; `None`: read from `APT_CONFIG` (in `env`,
    /// else ours), else Debian's defaults. See [`AptDirs::from_apt_config`].
    pub dirs: Option<AptDirs>,
    /// `APT::Status-Fd=1` on installs and removals: apt also prints its machine-readable
    /// progress (`dlstatus:` and `pmstatus:` lines, see [`status_fd_line`]) on stdout, for
    /// a live progress line. Default off: logs and captured output stay apt's usual.
    pub status_lines: bool,
}

impl Default for AptConfig {
    fn default() -> Self {
        AptConfig {
            lock_timeout: Duration::from_secs(120),
            http_timeout: Duration::from_secs(30),
            fetch_retries: 3,
            mirrors: Vec::new(),
            env: Vec::new(),
            status_lines: false,
            update_max_age: Duration::from_secs(3600),
            dirs: None,
        }
    }
}

/// Temporary sources pointing the primary archive at one mirror; removed when dropped.
#[derive(Debug)]
struct MirrorDir {
    mirror: String,
    list: PathBuf,
    parts: PathBuf,
    _dir: tempfile::TempDir,
}

impl MirrorDir {
    fn args(&self) -> Vec<String> {
        vec![
            "-o".into(),
            format!("Dir::Etc::SourceList={}", self.list.display()),
            "-o".into(),
            format!("Dir::Etc::SourceParts={}", self.parts.display()),
        ]
    }
}

/// One source of an update: the machine's sources, or a mirror of its primary archive.
enum UpdateSource {
    Primary { key: String },
    Mirror(Arc<MirrorDir>),
}

impl UpdateSource {
    fn circuit_key(&self) -> String {
        match self {
            UpdateSource::Primary { key } => key.clone(),
            UpdateSource::Mirror(m) => classify::url_host(&m.mirror),
        }
    }
}

impl fmt::Display for UpdateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateSource::Primary { key } => write!(f, "the configured apt sources ({key})"),
            UpdateSource::Mirror(m) => f.write_str(&m.mirror),
        }
    }
}

/// The apt adapter. Hold it in an `Arc`: operations take `self: &Arc<Self>`.
///
/// ```no_run
/// # async fn f() -> Result<(), em_exec::ToolError> {
/// use std::sync::Arc;
/// use em_apt::{Apt, AptConfig, AptPackage};
/// use em_exec::Runner;
/// use em_retry::RetryPolicy;
/// let apt = Arc::new(Apt::new(AptConfig::default())?);
/// let runner = Runner::new(RetryPolicy::new(4));
/// apt.update(&runner).await?;
/// apt.install(&runner, &[AptPackage::parse("python3").expect("valid")]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Apt {
    config: AptConfig,
    dirs: AptDirs,
    apt_get: PathBuf,
    dpkg: PathBuf,
    dpkg_query: PathBuf,
    /// `apt-cache`, to ask whether the lists know a package; `None`: not asked.
    apt_cache: Option<PathBuf>,
    /// `apt-mark`, to read and give back the automatically-installed marks; `None`: the
    /// marks are unknown (see [`Apt::auto_installed`]).
    apt_mark: Option<PathBuf>,
    /// Run privileged commands through `as_root` (sudo -n when not root).
    elevate: bool,
    last_update: Mutex<Option<Instant>>,
    active_mirror: Mutex<Option<Arc<MirrorDir>>>,
}

impl Apt {
    /// Finds `apt-get`, `dpkg` and `dpkg-query` on `PATH`.
    pub fn new(config: AptConfig) -> Result<Apt, ToolError> {
        let apt_get = find_tool("apt-get", PROVIDED_BY)?;
        let dpkg = find_tool("dpkg", PROVIDED_BY)?;
        let dpkg_query = find_tool("dpkg-query", PROVIDED_BY)?;
        let mut apt = Apt::with_tools(config, apt_get, dpkg, dpkg_query);
        apt.apt_cache = find_tool("apt-cache", PROVIDED_BY).ok();
        apt.apt_mark = find_tool("apt-mark", PROVIDED_BY).ok();
        apt.elevate = true;
        Ok(apt)
    }

    /// Uses the given programs, run exactly as given: never through `sudo` (for tests with
    /// stand-in tools, or a caller that has already arranged privileges). `apt-cache`
    /// and `apt-mark` are used only when they sit beside the given `apt-get`.
    pub fn with_tools(
        config: AptConfig,
        apt_get: impl Into<PathBuf>,
        dpkg: impl Into<PathBuf>,
        dpkg_query: impl Into<PathBuf>,
    ) -> Apt {
        let dirs = config
            .dirs
            .clone()
            .unwrap_or_else(|| AptDirs::from_apt_config(&config.env));
        let apt_get: PathBuf = apt_get.into();
        let beside = |name: &str| {
            apt_get
                .parent()
                .map(|dir| dir.join(name))
                .filter(|p| p.is_file())
        };
        let apt_cache = beside("apt-cache");
        let apt_mark = beside("apt-mark");
        Apt {
            config,
            dirs,
            apt_cache,
            apt_mark,
            apt_get,
            dpkg: dpkg.into(),
            dpkg_query: dpkg_query.into(),
            elevate: false,
            last_update: Mutex::new(None),
            active_mirror: Mutex::new(None),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AptConfig {
        &self.config
    }

    /// The directories apt uses (sources, lists).
    pub fn dirs(&self) -> &AptDirs {
        &self.dirs
    }

    /// The mirror the last successful update went through, if it was not the primary.
    pub fn active_mirror(&self) -> Option<String> {
        lock(&self.active_mirror).as_ref().map(|m| m.mirror.clone())
    }

    /// Whether the package lists are fresh: updated by this `Apt` within `update_max_age`,
    /// or present on disk with a recent enough mtime (see the crate doc, "Fresh lists").
    pub fn lists_are_fresh(&self) -> bool {
        let max_age = self.config.update_max_age;
        if lock(&self.last_update).is_some_and(|t| t.elapsed() <= max_age) {
            return true;
        }
        lists_fresh_on_disk(&self.dirs.lists, max_age, SystemTime::now())
    }

    /// Why the package lists need an `apt-get update` before anything is installed: they
    /// are missing (a fresh image) or older than `update_max_age`. `None` once this `Apt`
    /// has updated them.
    pub fn lists_need_update(&self) -> Option<String> {
        if lock(&self.last_update).is_some() {
            return None;
        }
        let lists = &self.dirs.lists;
        if !lists_present_on_disk(lists) {
            return Some(format!("no package lists in {}", lists.display()));
        }
        let max_age = self.config.update_max_age;
        if !lists_fresh_on_disk(lists, max_age, SystemTime::now()) {
            return Some(format!(
                "the package lists are older than {}",
                humanize(max_age)
            ));
        }
        None
    }

    /// Why `packages` need an `apt-get update` before they are installed: the lists need
    /// one ([`Apt::lists_need_update`]), or they do not know one of the packages (one
    /// `apt-cache policy` call, when apt-cache is at hand). `None` once this `Apt` has
    /// updated: then an unknown package is the package's problem, not the lists'.
    pub async fn update_needed(&self, packages: &[AptPackage]) -> Option<String> {
        if lock(&self.last_update).is_some() {
            return None;
        }
        if let Some(why) = self.lists_need_update() {
            return Some(why);
        }
        let apt_cache = self.apt_cache.as_ref()?;
        if packages.is_empty() {
            return None;
        }
        let cmd = self
            .tool(apt_cache)
            .arg("policy")
            .args(packages.iter().map(AptPackage::query_name))
            .output(OutputMode::Capture);
        let out = cmd.run().await.ok().filter(|o| o.success())?;
        let stdout = out.stdout_text();
        let known: Vec<&str> = stdout
            .lines()
            .filter(|l| !l.starts_with(char::is_whitespace))
            .filter_map(|l| l.strip_suffix(':'))
            .collect();
        let unknown: Vec<String> = packages
            .iter()
            .filter(|p| !known.iter().any(|k| *k == p.name() || *k == p.query_name()))
            .map(|p| format!("`{}`", p.name()))
            .collect();
        match unknown.len() {
            0 => None,
            1 => Some(format!("the package lists do not know {}", unknown[0])),
            _ => Some(format!(
                "the package lists do not know {}",
                unknown.join(", ")
            )),
        }
    }

    /// `apt-get update --error-on=any`, through the machine's sources, then each mirror.
    pub async fn update(self: &Arc<Self>, runner: &Runner) -> Result<(), ToolError> {
        let operation = Operation::new("apt", "update");
        let label = operation.to_string();
        self.check_privileges(&label)?;
        let (sources, mirror_problem) = self.sources(None);
        let step = Step::new(self, runner, false);
        let result = runner
            .run_with_mirrors(
                &step,
                operation,
                &sources,
                UpdateSource::circuit_key,
                |source, _| {
                    let mirror = step.enter(source);
                    self.privileged(self.update_cmd(mirror.as_deref(), step.acquire), &label)
                },
            )
            .await;
        match result {
            Ok((_, used)) => {
                *lock(&self.last_update) = Some(Instant::now());
                *lock(&self.active_mirror) = match &sources[used] {
                    UpdateSource::Primary { .. } => None,
                    UpdateSource::Mirror(m) => Some(m.clone()),
                };
                Ok(())
            }
            Err(e) => Err(with_mirror_problem(e, mirror_problem)),
        }
    }

    /// [`Apt::update`] with the contract of the shell helpers people used before us ("the
    /// lists I need were refreshed"): when the update failed only because sources other
    /// than the primary archive could not be fetched (a stale third-party repository), it
    /// counts as done, and the URLs that failed are returned to be reported. A failure of
    /// the primary archive, or one that names no source, is the error it was.
    pub async fn update_lenient(
        self: &Arc<Self>,
        runner: &Runner,
    ) -> Result<Vec<String>, ToolError> {
        let err = match self.update(runner).await {
            Ok(()) => return Ok(Vec::new()),
            Err(e) => e,
        };
        let primary = read_sources(&self.dirs)
            .ok()
            .and_then(|files| primary_archive(&files).ok())
            .map(|url| classify::url_host(&url));
        let failed = err
            .last
            .as_ref()
            .map(|f| failed_fetches(&format!("{}\n{}", f.stderr, f.stdout)))
            .unwrap_or_default();
        match primary {
            Some(primary)
                if !failed.is_empty()
                    && failed.iter().all(|url| classify::url_host(url) != primary) =>
            {
                *lock(&self.last_update) = Some(Instant::now());
                Ok(failed)
            }
            _ => Err(err),
        }
    }

    /// The sources an operation walks: first the primary (`active`: the mirror in use, when
    /// an update of this `Apt` moved to one; else the machine's sources), then each
    /// configured mirror but that one. Also says why no mirror could be derived, if so.
    fn sources(&self, active: Option<&Arc<MirrorDir>>) -> (Vec<UpdateSource>, Option<String>) {
        let files = read_sources(&self.dirs);
        let primary = files
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|f| primary_archive(f));
        let key = match active {
            Some(m) => classify::url_host(&m.mirror),
            None => primary
                .as_ref()
                .map_or_else(|_| "apt".to_string(), |p| classify::url_host(p)),
        };
        let mut sources = vec![UpdateSource::Primary { key }];
        let mut mirror_problem = None;
        let mirrors: Vec<&String> = self
            .config
            .mirrors
            .iter()
            .filter(|m| active.is_none_or(|a| a.mirror != **m))
            .collect();
        if !mirrors.is_empty() {
            match (&files, &primary) {
                (Ok(files), Ok(primary)) => {
                    for mirror in mirrors {
                        match write_mirror_sources(files, primary, mirror) {
                            Ok(dir) => sources.push(UpdateSource::Mirror(Arc::new(dir))),
                            Err(e) => {
                                mirror_problem.get_or_insert(format!("mirror {mirror}: {e}"));
                            }
                        }
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    mirror_problem = Some(format!(
                        "the apt sources cannot be read, so no mirror can be derived from them: {e}"
                    ));
                }
            }
        }
        if let Some(problem) = &mirror_problem {
            tracing::warn!(target: "em_apt", "{problem}");
        }
        (sources, mirror_problem)
    }

    /// `apt-get update --error-on=any` of the sources in `list` only (a one-line-format
    /// file, e.g. a third-party repository just added): the machine's other sources are
    /// not fetched, and their lists are kept (`APT::Get::List-Cleanup=0`).
    pub async fn update_only(
        self: &Arc<Self>,
        runner: &Runner,
        list: &Path,
    ) -> Result<(), ToolError> {
        let operation = Operation::new("apt", format!("update {}", list.display()));
        let label = operation.to_string();
        self.check_privileges(&label)?;
        let empty_parts = tempfile::Builder::new()
            .prefix("em-apt-parts-")
            .tempdir()
            .map_err(|e| {
                ToolError::permanent(
                    label.clone(),
                    format!("cannot create a temporary directory: {e}"),
                    None,
                )
            })?;
        let step = Step::new(self, runner, false);
        let key = std::fs::read_to_string(list).ok().and_then(|text| {
            text.split_whitespace()
                .find(|w| w.contains("://"))
                .map(classify::url_host)
        });
        runner
            .run(&step, operation, key.as_deref(), |_| {
                let cmd = self
                    .apt_get()
                    .args(["update", "--error-on=any", "-q"])
                    .args(step.acquire.args())
                    .args(self.lock_args())
                    .arg("-o")
                    .arg(format!("Dir::Etc::SourceList={}", list.display()))
                    .arg("-o")
                    .arg(format!(
                        "Dir::Etc::SourceParts={}",
                        empty_parts.path().display()
                    ))
                    .args(["-o", "APT::Get::List-Cleanup=0"]);
                self.privileged(cmd, &label)
            })
            .await
            .map(|_| ())
    }

    /// `apt-get install -y --no-install-recommends` of `packages` (nothing to do when empty).
    pub async fn install(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[AptPackage],
    ) -> Result<(), ToolError> {
        self.change_packages(runner, "install", packages).await
    }

    /// `apt-get purge -y` of `packages` (nothing to do when empty): removed with their
    /// configuration files, so that no `rc` entry stays behind.
    pub async fn purge(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[AptPackage],
    ) -> Result<(), ToolError> {
        self.change_packages(runner, "purge", packages).await
    }

    /// `apt-get remove -y` of `packages` (nothing to do when empty).
    pub async fn remove(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[AptPackage],
    ) -> Result<(), ToolError> {
        self.change_packages(runner, "remove", packages).await
    }

    async fn change_packages(
        self: &Arc<Self>,
        runner: &Runner,
        verb: &str,
        packages: &[AptPackage],
    ) -> Result<(), ToolError> {
        if packages.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = packages.iter().map(ToString::to_string).collect();
        let operation = Operation::new("apt", format!("{verb} {}", names.join(" ")));
        let label = operation.to_string();
        self.check_privileges(&label)?;
        let step = Step::new(self, runner, true);
        let build = |mirror: Option<Arc<MirrorDir>>| {
            let mut cmd = self.apt_get().arg(verb).args(["-y", "-q"]);
            if verb == "install" {
                cmd = cmd.arg("--no-install-recommends").args(step.acquire.args());
            }
            if self.config.status_lines {
                cmd = cmd.args(["-o", "APT::Status-Fd=1"]);
            }
            cmd = cmd
                .args(self.lock_args())
                .args(self.dpkg_options())
                .args(mirror.map(|m| m.args()).unwrap_or_default())
                .args(&names);
            self.privileged(cmd, &label)
        };
        if verb != "install" {
            // Nothing is downloaded: no circuit key (a held lock or a broken dpkg state is
            // not the archive's fault), no mirror.
            return runner
                .run(&step, operation, None, |_| build(self.active()))
                .await
                .map(|_| ());
        }
        // An install downloads from the archive: its host's circuit guards it, and when it
        // is exhausted the mirrors are tried, each with an update through it first (see
        // `Step`).
        let active = self.active();
        let (sources, mirror_problem) = self.sources(active.as_ref());
        runner
            .run_with_mirrors(
                &step,
                operation,
                &sources,
                UpdateSource::circuit_key,
                |source, _| build(step.enter(source).or_else(|| self.active())),
            )
            .await
            .map(|_| ())
            .map_err(|e| with_mirror_problem(e, mirror_problem))
    }

    /// Whether each of `packages` is installed, in order, from one `dpkg-query -W` call
    /// (status `install ok installed`, and the version, when a package names one).
    /// Read-only: no root, no retry.
    pub async fn installed(&self, packages: &[AptPackage]) -> Result<Vec<bool>, ToolError> {
        if packages.is_empty() {
            return Ok(Vec::new());
        }
        let operation = "apt is-installed".to_string();
        let cmd = self
            .tool(&self.dpkg_query)
            .args([
                "-W",
                "-f",
                "${Package}\t${Architecture}\t${Status}\t${Version}\n",
            ])
            .args(packages.iter().map(AptPackage::query_name))
            .output(OutputMode::Capture);
        let out = run_query(&cmd, &operation).await?;
        let failure = ToolFailure::from_output(&cmd, &out);
        // dpkg-query exits 1 when one name matches nothing, and still lists the others.
        let unexplained = failure
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("no packages found matching"))
            .count();
        if !out.success() && unexplained > 0 {
            let reason = failure
                .tail(1)
                .pop()
                .unwrap_or_else(|| format!("dpkg-query exited with code {}", failure.code));
            return Err(ToolError {
                last: Some(failure),
                ..ToolError::permanent(operation, reason, None)
            });
        }
        let stdout = out.stdout_text();
        let rows: Vec<[&str; 4]> = stdout
            .lines()
            .filter_map(|line| {
                let mut f = line.split('\t').map(str::trim);
                Some([f.next()?, f.next()?, f.next()?, f.next()?])
            })
            .collect();
        Ok(packages
            .iter()
            .map(|p| {
                rows.iter().any(|[name, arch, status, version]| {
                    *name == p.name()
                        && p.arch().is_none_or(|a| a == *arch)
                        && *status == "install ok installed"
                        && p.version().is_none_or(|v| v == *version)
                })
            })
            .collect())
    }

    /// Every package dpkg has on the machine, from one `dpkg-query -W` call (see
    /// [`DpkgInventory`]). Read-only: no root, no retry. An error means "unknown", never
    /// "nothing installed".
    pub async fn inventory(&self) -> Result<DpkgInventory, ToolError> {
        let operation = "apt inventory".to_string();
        let cmd = self
            .tool(&self.dpkg_query)
            .args(["-W", "-f", INVENTORY_FORMAT])
            .output(OutputMode::Capture);
        let out = run_query_ok(&cmd, operation).await?;
        Ok(DpkgInventory::parse(&out.stdout_text()))
    }

    /// What `apt-get -s VERB ARGS` (a simulation: read-only, no root, no lock) says would
    /// be removed or purged (see [`parse_simulated_removals`]); `verb` is `purge`,
    /// `remove` or `autoremove`.
    ///
    /// For `autoremove`, only a hard dependency (Depends, Pre-Depends) of an installed
    /// package keeps another: the question an undo asks is "does anything need what we
    /// pulled in?", and a package that only recommends or suggests it was there before
    /// without it (apt's default would keep the perl `build-essential` pulled in because
    /// debconf suggests it, and the netbase or sensible-utils a base package recommends).
    pub async fn simulate_removal(
        &self,
        verb: &str,
        packages: &[String],
    ) -> Result<std::collections::BTreeSet<String>, ToolError> {
        let operation = format!("apt simulate {verb}");
        let hard_only = (verb == "autoremove")
            .then_some([
                "-o",
                "APT::AutoRemove::SuggestsImportant=false",
                "-o",
                "APT::AutoRemove::RecommendsImportant=false",
            ])
            .into_iter()
            .flatten();
        let cmd = self
            .apt_get()
            .args(["-s", "-q", verb])
            .args(hard_only)
            .args(self.active().map(|m| m.args()).unwrap_or_default())
            .args(packages)
            .output(OutputMode::Capture);
        let out = run_query_ok(&cmd, operation).await?;
        Ok(parse_simulated_removals(&out.stdout_text()))
    }

    /// Which of `names` apt has marked as automatically installed (`apt-mark showauto
    /// NAMES`: installed as a dependency, so autoremovable once nothing needs it).
    /// Read-only: no root, no retry. An error (no `apt-mark`, a failed run) means
    /// "unknown", never "none is automatic".
    ///
    /// Why it matters: `apt-get install X` of an X that is there as a dependency marks it
    /// manually installed ("X set to manually installed"), so a later autoremove keeps it;
    /// a caller that wants to give the mark back ([`Apt::mark_auto`]) asks this first.
    pub async fn auto_installed(
        &self,
        names: &[String],
    ) -> Result<std::collections::BTreeSet<String>, ToolError> {
        let operation = "apt-mark showauto".to_string();
        if names.is_empty() {
            return Ok(Default::default());
        }
        let Some(apt_mark) = &self.apt_mark else {
            return Err(ToolError {
                kind: ToolErrorKind::NotRunnable,
                ..ToolError::permanent(operation, "apt-mark is not on PATH", None)
            });
        };
        let cmd = self
            .tool(apt_mark)
            .arg("showauto")
            .args(names)
            .output(OutputMode::Capture);
        let out = run_query_ok(&cmd, operation).await?;
        // One name a line, as apt names it (`libssl3`, `libc6:i386`); only those asked.
        Ok(out
            .stdout_text()
            .lines()
            .map(str::trim)
            .filter(|l| names.iter().any(|n| n == l))
            .map(str::to_owned)
            .collect())
    }

    /// `apt-mark auto NAMES` (nothing to do when empty): marks them automatically
    /// installed again, so that apt's autoremove judges them by what depends on them.
    /// Needs root; run through `runner` (a busy lock is retried).
    pub async fn mark_auto(
        self: &Arc<Self>,
        runner: &Runner,
        names: &[String],
    ) -> Result<(), ToolError> {
        if names.is_empty() {
            return Ok(());
        }
        let operation = Operation::new("apt", format!("mark auto {}", names.join(" ")));
        let label = operation.to_string();
        let Some(apt_mark) = self.apt_mark.clone() else {
            return Err(ToolError {
                kind: ToolErrorKind::NotRunnable,
                ..ToolError::permanent(label, "apt-mark is not on PATH", None)
            });
        };
        self.check_privileges(&label)?;
        let step = Step::new(self, runner, true);
        runner
            .run(&step, operation, None, |_| {
                self.privileged(self.tool(&apt_mark).arg("auto").args(names), &label)
            })
            .await
            .map(|_| ())
    }

    /// Whether `package` is installed (`dpkg-query -W`: status `install ok installed`,
    /// and the version, when `package` names one). Read-only: no root, no retry.
    pub async fn is_installed(&self, package: &AptPackage) -> Result<bool, ToolError> {
        let operation = format!("apt is-installed {package}");
        let cmd = self
            .tool(&self.dpkg_query)
            .args(["-W", "-f", "${Status}\t${Version}\n"])
            .arg(package.query_name())
            .output(OutputMode::Capture);
        let out = run_query(&cmd, &operation).await?;
        let stdout = out.stdout_text();
        if out.success() {
            return Ok(stdout.lines().any(|line| {
                let (status, version) = line.split_once('\t').unwrap_or((line, ""));
                status.trim() == "install ok installed"
                    && package.version().is_none_or(|v| v == version.trim())
            }));
        }
        let failure = ToolFailure::from_output(&cmd, &out);
        if failure.text().contains("no packages found matching") {
            return Ok(false);
        }
        let reason = failure
            .tail(1)
            .pop()
            .unwrap_or_else(|| format!("dpkg-query exited with code {}", failure.code));
        Err(ToolError {
            last: Some(failure),
            ..ToolError::permanent(operation, reason, None)
        })
    }

    /// Classifies with the lists' freshness read now.
    fn classify_now(&self, failure: &ToolFailure) -> Verdict<AptRepair> {
        classify(
            failure,
            &ClassifyContext {
                lists_fresh: self.lists_are_fresh(),
            },
        )
    }

    /// Runs `repair` through `sources` (`None`: the active ones), with apt's network
    /// settings `acquire`; `update_after_clear`: ClearLists ends with an update.
    async fn run_repair(
        &self,
        repair: AptRepair,
        update_after_clear: bool,
        sources: Option<&Arc<MirrorDir>>,
        acquire: Acquire,
    ) -> Result<(), String> {
        let mirror = sources.cloned().or_else(|| self.active());
        match repair {
            AptRepair::ConfigurePending => {
                self.run_step(self.tool(&self.dpkg).args(["--configure", "-a"]))
                    .await?;
                self.run_step(self.fix_broken_cmd(mirror.as_deref(), acquire))
                    .await
            }
            AptRepair::FixBroken => {
                self.run_step(self.fix_broken_cmd(mirror.as_deref(), acquire))
                    .await
            }
            AptRepair::ClearLists => {
                self.clear_partial_lists().await?;
                self.run_step(self.apt_get().arg("clean").args(self.lock_args()))
                    .await?;
                if update_after_clear {
                    self.repair_update(mirror, acquire).await?;
                }
                Ok(())
            }
            AptRepair::Update => self.repair_update(mirror, acquire).await,
        }
    }

    /// One `apt-get update` (no retry of its own) through `mirror` (`None`: the machine's
    /// sources); on success that is where this `Apt` installs from afterwards.
    async fn repair_update(
        &self,
        mirror: Option<Arc<MirrorDir>>,
        acquire: Acquire,
    ) -> Result<(), String> {
        self.run_step(self.update_cmd(mirror.as_deref(), acquire))
            .await?;
        *lock(&self.last_update) = Some(Instant::now());
        *lock(&self.active_mirror) = mirror;
        Ok(())
    }

    /// The mirror the last successful update went through, if it was not the primary.
    fn active(&self) -> Option<Arc<MirrorDir>> {
        lock(&self.active_mirror).clone()
    }

    /// Removes what an interrupted or corrupt download left in `<lists>/partial/`.
    async fn clear_partial_lists(&self) -> Result<(), String> {
        let partial = self.dirs.lists.join("partial");
        let entries = match std::fs::read_dir(&partial) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return self.clear_as_root(&partial, e).await,
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return self.clear_as_root(&partial, e).await,
            }
        }
        Ok(())
    }

    async fn clear_as_root(&self, partial: &Path, error: std::io::Error) -> Result<(), String> {
        if self.elevate && error.kind() == std::io::ErrorKind::PermissionDenied {
            self.run_step(
                self.tool("find")
                    .arg(partial)
                    .args(["-mindepth", "1", "-delete"]),
            )
            .await
        } else {
            Err(format!("cannot clear {}: {error}", partial.display()))
        }
    }

    /// Runs one repair command, privileged, capturing its output for the error.
    async fn run_step(&self, cmd: Cmd) -> Result<(), String> {
        let cmd = self
            .privileged(cmd, "apt repair")
            .output(OutputMode::Capture);
        match cmd.run().await {
            Ok(out) if out.success() => Ok(()),
            Ok(out) => {
                let failure = ToolFailure::from_output(&cmd, &out);
                // apt's first `E:` line says why; progress lines on stdout do not.
                let text = failure.text();
                let why = text
                    .lines()
                    .find(|l| l.starts_with("E: "))
                    .map(str::to_string)
                    .or_else(|| failure.tail(1).pop())
                    .unwrap_or_default();
                Err(format!(
                    "`{}` exited with code {}: {why}",
                    short_command(&cmd),
                    failure.code
                ))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn tool(&self, program: impl AsRef<std::ffi::OsStr>) -> Cmd {
        let mut cmd = Cmd::tool(program);
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    fn apt_get(&self) -> Cmd {
        self.tool(&self.apt_get)
    }

    fn update_cmd(&self, mirror: Option<&MirrorDir>, acquire: Acquire) -> Cmd {
        self.apt_get()
            .args(["update", "--error-on=any", "-q"])
            .args(acquire.args())
            .args(self.lock_args())
            .args(mirror.map(MirrorDir::args).unwrap_or_default())
    }

    fn fix_broken_cmd(&self, mirror: Option<&MirrorDir>, acquire: Acquire) -> Cmd {
        self.apt_get()
            .args(["-f", "install", "-y", "-q"])
            .args(acquire.args())
            .args(self.lock_args())
            .args(self.dpkg_options())
            .args(mirror.map(MirrorDir::args).unwrap_or_default())
    }

    fn lock_args(&self) -> Vec<String> {
        vec![
            "-o".into(),
            format!(
                "DPkg::Lock::Timeout={}",
                whole_seconds(self.config.lock_timeout)
            ),
        ]
    }

    /// Keep changed configuration files, take the default for the rest: never a prompt.
    fn dpkg_options(&self) -> [&'static str; 4] {
        [
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]
    }

    /// Fails early when root is needed and cannot be had (not root, no sudo).
    fn check_privileges(&self, operation: &str) -> Result<(), ToolError> {
        if self.elevate {
            as_root(Cmd::new("true"), operation)?;
        }
        Ok(())
    }

    fn privileged(&self, cmd: Cmd, operation: &str) -> Cmd {
        if self.elevate {
            // `check_privileges` ran first: as_root only fails when it already failed there.
            as_root(cmd.clone(), operation).unwrap_or(cmd)
        } else {
            cmd
        }
    }
}

impl Adapter for Apt {
    type Repair = AptRepair;

    fn name(&self) -> &'static str {
        "apt"
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<AptRepair> {
        self.classify_now(failure)
    }

    async fn repair(&self, repair: AptRepair) -> Result<(), String> {
        let acquire = Acquire::for_policy(&self.config, &em_retry::RetryPolicy::default());
        self.run_repair(repair, true, None, acquire).await
    }
}

/// The adapter as one operation sees it.
///
/// - An update's next attempt is itself an update, so its ClearLists repair does not run
///   one; an install's does.
/// - It knows the source the current attempt uses ([`Step::enter`]): a mirror whose lists
///   this `Apt` has not fetched has no fresh lists ("Unable to locate package" there is an
///   `apt-get update` through that mirror, which then becomes the active source), and its
///   repairs go through that source.
/// - An `apt-get update` repair that itself failed (the source is unreachable) ends the
///   source, not the operation: the next mirror is tried, and without one the operation is
///   exhausted (75), not permanent.
struct Step {
    apt: Arc<Apt>,
    update_after_clear: bool,
    /// How apt fetches in this operation's commands ([`Acquire::for_policy`]).
    acquire: Acquire,
    /// The mirror the current attempt uses (`None`: the primary: the active sources).
    source: Mutex<Option<Arc<MirrorDir>>>,
    /// Why the `apt-get update` repair of the current source failed, if it did.
    update_failed: Mutex<Option<String>>,
}

impl Step {
    fn new(apt: &Arc<Apt>, runner: &Runner, update_after_clear: bool) -> Arc<Step> {
        Arc::new(Step {
            apt: apt.clone(),
            update_after_clear,
            acquire: Acquire::for_policy(&apt.config, runner.policy()),
            source: Mutex::new(None),
            update_failed: Mutex::new(None),
        })
    }

    /// Notes that the next attempt uses `source`; returns its mirror, if it is one.
    fn enter(&self, source: &UpdateSource) -> Option<Arc<MirrorDir>> {
        let mirror = match source {
            UpdateSource::Primary { .. } => None,
            UpdateSource::Mirror(m) => Some(m.clone()),
        };
        let mut current = lock(&self.source);
        let same = match (current.as_ref(), mirror.as_ref()) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            *lock(&self.update_failed) = None;
        }
        current.clone_from(&mirror);
        mirror
    }

    /// Whether the current source is a mirror this `Apt` has not updated through.
    fn on_unfetched_mirror(&self) -> bool {
        let current = lock(&self.source).clone();
        let active = self.apt.active();
        match (current, active) {
            (None, _) => false,
            (Some(m), Some(a)) => !Arc::ptr_eq(&m, &a),
            (Some(_), None) => true,
        }
    }
}

impl Adapter for Step {
    type Repair = AptRepair;

    fn name(&self) -> &'static str {
        "apt"
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<AptRepair> {
        let lists_fresh = !self.on_unfetched_mirror() && self.apt.lists_are_fresh();
        match classify(failure, &ClassifyContext { lists_fresh }) {
            // Say why the update did not help: it could not reach the source.
            Verdict::Repairable(AptRepair::Update, reason) => match &*lock(&self.update_failed) {
                Some(e) => Verdict::Repairable(AptRepair::Update, format!("{reason}; {e}")),
                None => Verdict::Repairable(AptRepair::Update, reason),
            },
            verdict => verdict,
        }
    }

    async fn repair(&self, repair: AptRepair) -> Result<(), String> {
        let source = lock(&self.source).clone();
        let result = self
            .apt
            .run_repair(
                repair,
                self.update_after_clear,
                source.as_ref(),
                self.acquire,
            )
            .await;
        let updates = repair == AptRepair::Update
            || (repair == AptRepair::ClearLists && self.update_after_clear);
        if updates {
            *lock(&self.update_failed) = result.as_ref().err().cloned();
        }
        result
    }

    /// An `apt-get update` repair that failed (the source did not answer) may run again at
    /// the next failure, as often as the policy's attempts allow: the update is what the
    /// operation needs, and its failure was transient. One that succeeded and did not help
    /// runs once.
    fn repair_limit(&self, repair: &AptRepair) -> u32 {
        match repair {
            AptRepair::Update if lock(&self.update_failed).is_some() => u32::MAX,
            _ => 1,
        }
    }

    /// A Hash Sum mismatch that survives clearing the lists is a mirror in mid-sync, and a
    /// failure whose `apt-get update` could not reach the source is that source being
    /// down: give up this source, not the operation, so the next mirror is tried.
    fn exhausted_repair_is_permanent(&self, repair: &AptRepair) -> bool {
        match repair {
            AptRepair::ClearLists => false,
            AptRepair::Update => lock(&self.update_failed).is_none(),
            AptRepair::ConfigurePending | AptRepair::FixBroken => true,
        }
    }
}

/// `e` with a hint saying why the mirrors were not used, when they could not be.
fn with_mirror_problem(mut e: ToolError, problem: Option<String>) -> ToolError {
    if let Some(problem) = problem {
        let hint = e.hint.take().map(|h| format!("{h}; ")).unwrap_or_default();
        e.hint = Some(format!("{hint}mirrors not used: {problem}"));
    }
    e
}

/// How apt fetches within one attempt: its own per-file retries, their waits, and its
/// network timeout (see "Who retries" in the crate doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquire {
    /// `Acquire::Retries`.
    pub retries: u32,
    /// `Acquire::Retries::Delay::Maximum`, in whole seconds.
    pub max_delay_secs: u64,
    /// `Acquire::http::Timeout` and `Acquire::https::Timeout`, in whole seconds (at least 1).
    pub http_timeout_secs: u64,
}

impl Acquire {
    /// The settings for an operation under `policy`: `config`'s retries and network
    /// timeout, the timeout lowered so that a file stalling on every request is reported
    /// by apt before the attempt's timeout (two timeouts per request, `1 + retries`
    /// requests), and no wait of apt's own between them (see "Who retries").
    pub fn for_policy(config: &AptConfig, policy: &em_retry::RetryPolicy) -> Acquire {
        let requests = 2 * (1 + config.fetch_retries);
        let http = policy.timeout().map_or(config.http_timeout, |t| {
            config.http_timeout.min(t / requests)
        });
        Acquire {
            retries: config.fetch_retries,
            max_delay_secs: 0,
            http_timeout_secs: whole_seconds(http).max(1),
        }
    }

    fn args(&self) -> Vec<String> {
        let secs = self.http_timeout_secs;
        [
            format!("Acquire::Retries={}", self.retries),
            format!("Acquire::Retries::Delay::Maximum={}", self.max_delay_secs),
            format!("Acquire::http::Timeout={secs}"),
            format!("Acquire::https::Timeout={secs}"),
        ]
        .into_iter()
        .flat_map(|setting| ["-o".to_string(), setting])
        .collect()
    }
}

/// Writes the sources of `mirror` into a new temporary directory.
fn write_mirror_sources(
    files: &[SourceFile],
    primary: &str,
    mirror: &str,
) -> Result<MirrorDir, String> {
    let sources = rewrite_for_mirror(files, primary, mirror)?;
    let dir = tempfile::Builder::new()
        .prefix("em-apt-sources-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let list = dir.path().join("sources.list");
    let parts = dir.path().join("sources.list.d");
    let written = std::fs::write(&list, &sources.list)
        .and_then(|()| std::fs::create_dir(&parts))
        .and_then(|()| {
            if sources.deb822.is_empty() {
                Ok(())
            } else {
                std::fs::write(parts.join("mirror.sources"), &sources.deb822)
            }
        });
    written.map_err(|e| format!("cannot write {}: {e}", dir.path().display()))?;
    Ok(MirrorDir {
        mirror: mirror.to_string(),
        list,
        parts,
        _dir: dir,
    })
}

/// Whether `lists` holds list files and the newest mtime among them, the directory and its
/// `partial/` is at most `max_age` before `now` (a time in the future counts as fresh).
pub fn lists_fresh_on_disk(lists: &Path, max_age: Duration, now: SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(lists) else {
        return false;
    };
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut has_lists = false;
    let mut newest = [mtime(lists), mtime(&lists.join("partial"))]
        .into_iter()
        .flatten()
        .max();
    for entry in entries.flatten() {
        let is_list = entry.file_type().is_ok_and(|t| t.is_file()) && entry.file_name() != "lock";
        if is_list {
            has_lists = true;
            newest = newest.max(entry.metadata().and_then(|m| m.modified()).ok());
        }
    }
    has_lists && newest.is_some_and(|t| now.duration_since(t).map_or(true, |age| age <= max_age))
}

/// Whether `lists` holds any list file (not only the lock and `partial/`).
fn lists_present_on_disk(lists: &Path) -> bool {
    std::fs::read_dir(lists).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_file()) && e.file_name() != "lock")
    })
}

/// `1h`, `30m`, `90s`: a whole-unit duration for a message.
fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Whole seconds, rounded up (apt takes integers; 1.5 s must not become 1 s).
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The program's file name and the arguments but `-o NAME=VALUE` settings, for a short
/// error message.
fn short_command(cmd: &Cmd) -> String {
    let program = Path::new(cmd.program())
        .file_name()
        .map_or_else(|| cmd.program().to_string_lossy(), |f| f.to_string_lossy());
    let mut words = vec![program.into_owned()];
    let mut setting = false;
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if std::mem::take(&mut setting) {
            continue;
        }
        if arg == "-o" {
            setting = true;
            continue;
        }
        words.push(em_exec::quote(&arg));
    }
    words.join(" ")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A read-only query that failed: permanent, with the tool's last line as the reason.
/// Runs a read-only query (no root, no retry): a command that cannot start is
/// [`ToolErrorKind::NotRunnable`].
async fn run_query(cmd: &Cmd, operation: &str) -> Result<em_exec::Output, ToolError> {
    cmd.run().await.map_err(|e| ToolError {
        kind: ToolErrorKind::NotRunnable,
        ..ToolError::permanent(operation.to_string(), e.to_string(), None)
    })
}

/// [`run_query`], and a failing exit is an error too ([`query_failed`]).
async fn run_query_ok(cmd: &Cmd, operation: String) -> Result<em_exec::Output, ToolError> {
    let out = run_query(cmd, &operation).await?;
    if !out.success() {
        return Err(query_failed(operation, ToolFailure::from_output(cmd, &out)));
    }
    Ok(out)
}

fn query_failed(operation: String, failure: ToolFailure) -> ToolError {
    let reason = failure
        .tail(1)
        .pop()
        .unwrap_or_else(|| format!("exited with code {}", failure.code));
    ToolError {
        last: Some(failure),
        ..ToolError::permanent(operation, reason, None)
    }
}

/// The URLs of apt-get's `Failed to fetch URL` lines (`E:` or `W:`), each once, in order.
///
/// ```
/// let text = "E: Failed to fetch http://ppa.example/x/InRelease  404  Not Found [IP: 1.2.3.4 80]\n\
///             W: Failed to fetch http://ppa.example/x/InRelease  404\nE: Some index files failed\n";
/// assert_eq!(em_apt::failed_fetches(text), ["http://ppa.example/x/InRelease"]);
/// ```
pub fn failed_fetches(text: &str) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.split("Failed to fetch ").nth(1) else {
            continue;
        };
        if let Some(url) = rest.split_whitespace().next()
            && !urls.iter().any(|u| u == url)
        {
            urls.push(url.to_string());
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }

    #[test]
    fn freshness_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        assert!(!lists_fresh_on_disk(&dir.path().join("missing"), hour, now));
        std::fs::write(dir.path().join("lock"), "").expect("write");
        assert!(
            !lists_fresh_on_disk(dir.path(), hour, now),
            "a lock is not a list"
        );
        std::fs::write(
            dir.path()
                .join("deb.example.org_debian_dists_bookworm_InRelease"),
            "",
        )
        .expect("write");
        assert!(lists_fresh_on_disk(dir.path(), hour, now));
        assert!(!lists_fresh_on_disk(dir.path(), hour, now + 2 * hour));
    }

    #[test]
    fn apt_retries_per_file_and_times_out_before_the_attempt_does() {
        use em_retry::{Backoff, RetryPolicy};
        let config = AptConfig::default();
        let secs = Duration::from_secs;
        let policy = |timeout: u64, delay: Duration| {
            RetryPolicy::new(4)
                .with_backoff(Backoff::Fixed { delay })
                .with_timeout(secs(timeout))
        };
        let acquire = Acquire::for_policy(&config, &policy(30 * 60, secs(2)));
        assert_eq!(
            acquire,
            Acquire {
                retries: 3,
                max_delay_secs: 0,
                http_timeout_secs: 30
            },
            "the configured timeout; apt does not wait between its fetches"
        );
        let acquire = Acquire::for_policy(&config, &policy(60, Duration::from_millis(10)));
        assert_eq!(
            (acquire.http_timeout_secs, acquire.max_delay_secs),
            (8, 0),
            "60 s / (2 x 4 requests), rounded up"
        );
        assert_eq!(
            Acquire::for_policy(&config, &policy(2, secs(1))).http_timeout_secs,
            1,
            "at least one second"
        );
        assert_eq!(
            acquire.args()[..4],
            [
                "-o",
                "Acquire::Retries=3",
                "-o",
                "Acquire::Retries::Delay::Maximum=0"
            ]
        );
    }

    #[test]
    fn short_commands_drop_the_environment() {
        let cmd = Cmd::tool("/usr/bin/dpkg").args(["--configure", "-a"]);
        assert_eq!(short_command(&cmd), "dpkg --configure -a");
        let cmd = Cmd::tool("apt-get").args(["update", "-o", "Acquire::Retries=3", "-q"]);
        assert_eq!(short_command(&cmd), "apt-get update -q");
    }
}
