//! # em-pip: pip installs that survive a flaky index
//!
//! The pip adapter of extension-manager: it runs `python -m pip install` / `uninstall` as
//! argument vectors through [`em_exec`], into a given interpreter or into a virtual
//! environment that it creates when missing, reads pip's failures, repairs a bad cache,
//! and walks a list of alternate indexes when one is exhausted. Retrying is
//! [`em_exec::Runner`]'s job under an `em_retry` policy; this crate says what a failure
//! *is*.
//!
//! What it is not: a resolver, a lock-file installer, or an index client.
//!
//! ## Classification
//!
//! pip exits 1 for nearly everything and 2 for both a crash and an unknown option
//! (docs/failures.md trap 3): [`classify`] reads the text, in this order (the first row that
//! matches decides). Captured outputs: `fixtures/outputs/pip/`.
//!
//! | signal | class | action |
//! |---|---|---|
//! | `is not a trusted or secure host` | permanent | hint: https, or `PIP_TRUSTED_HOST` in the adapter env |
//! | `CERTIFICATE_VERIFY_FAILED` (a certificate not trusted, in a retry warning or `Could not fetch URL ... - skipping`; before the ambiguous "not found") | permanent | reason says what the check said; hint: PIP_CERT / pip.conf `cert` (a TLS-inspecting proxy's CA), the clock; never `--trusted-host` for https |
//! | `externally-managed-environment` | permanent | hint: install into a venv (the step's `venv = "/opt/..."`) |
//! | `Invalid requirement: 'x'` | permanent | pip's own `Hint:` line |
//! | `No space left on device`, `[Errno 28]` | permanent | hint: free space, `pip cache purge` |
//! | `No module named pip` / `ensurepip is not available`, `No module named venv` | permanent | hint: python3-pip / python3-venv |
//! | `THESE PACKAGES DO NOT MATCH THE HASHES` | repairable | [`PipRepair::PurgeCacheNoCacheDir`]: `pip cache purge`, later attempts add `--no-cache-dir`; once, then permanent (a second mismatch is not the cache) |
//! | `ERROR: Wheel '...' is invalid` (a truncated download, trap 3) | repairable, or transient when the attempt already had `--no-cache-dir` | the same repair; then plain retries |
//! | `HTTP error 408/429/5xx while getting` | transient | retry |
//! | `HTTP error <other 4xx> while getting` (e.g. 404) | permanent | |
//! | `Could not find a version ... (from versions: 1.0, ...)` (a non-empty list) | permanent | reason lists the versions |
//! | `WARNING: Retrying (Retry(`, `NewConnectionError`, `Connection refused`, `ConnectTimeoutError`, `ReadTimeoutError`, `Connection broken` / `ProtocolError` / `IncompleteRead` / `ConnectionResetError` (traceback, exit 2), `Temporary failure in name resolution` / `Name or service not known`, `Max retries exceeded`, `too many 503 error responses` | transient | retry, then the next index |
//! | `(from versions: none)` with none of the above | **ambiguous** (trap 2) | probe `<index>/<normalized name>/`: 404/410 permanent ("no package `x` on the index"), 2xx repairable once ([`PipRepair::RecheckIndex`]: pip may have met an outage the probe missed), then permanent (no release fits this Python), 401/403/other 4xx permanent, 408/429/5xx or no answer transient (waiting at least the probe's `Retry-After`, when it has one in seconds, up to 5 min); not probed: transient |
//! | `ResolutionImpossible`, `[Errno 13] Permission denied` | permanent | |
//! | exit 2 with `no such option` / `Usage:` | permanent | hint: pip too old for our options |
//! | anything else | transient | SPEC 3: unclassified errors retry |
//!
//! **The probe** ([`probe_index`]) runs only for the ambiguous row, from
//! [`Adapter::classify`] (the pure [`classify`] takes its answer in a [`ClassifyContext`]).
//! It is one blocking HTTP GET by `python -c` with urllib (the URL an argument, never
//! code), bounded by [`PipConfig::probe_timeout`] (5 s; the child is killed 2 s later):
//! `Adapter::classify` is synchronous, and a 5-second stall of one worker, only after a
//! failed attempt, is cheaper than threading async through the contract. The index is the
//! one pip names in `Looking in indexes:`, else the command's `--index-url`, else PyPI.
//! The interpreter is [`PipConfig::probe_python`], else the `python3` found on `PATH`.
//!
//! ## Retries: pip's and ours
//!
//! pip retries each request itself (`--retries`, default 5, on connection errors and
//! 500/503/520/527, and on a 413/429/503 that carries a `Retry-After`, after sleeping it;
//! not on a plain 429) and says so only for connection errors (`WARNING: Retrying`;
//! a retried 503 prints nothing, `index-503-with-retries.txt`). Every install passes
//! `--retries 1` ([`PipConfig::retries`]): one quick retry absorbs a single dropped
//! request, and — the main reason not to pick 0 — it makes pip print the `WARNING:
//! Retrying` line that turns an otherwise ambiguous "not found" into a plain transient
//! without a probe. Arithmetic for a request that keeps failing with a 4-attempt policy:
//! 4 x 2 = 8 requests (4 x 3 for an index page, with the probe's GET after pip's
//! ambiguous "not found"), instead of 4 x 6 = 24 with pip's default; per attempt at most
//! 2 x `--timeout` of waiting for one request (2 x 30 s by default). Under a policy with
//! a short per-attempt timeout, `--timeout` is at most a quarter of it
//! ([`Pip::socket_timeout`]), so pip reports a stall itself before the attempt is cut;
//! creating a venv gets at least [`VENV_TIMEOUT`].
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), em_exec::ToolError> {
//! use std::sync::Arc;
//! use em_exec::Runner;
//! use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};
//! use em_retry::RetryPolicy;
//!
//! let pip = Arc::new(Pip::new(PipConfig::default(), PipTarget::Venv("/opt/python-tools".into()))?);
//! let black = PipRequirement::parse("black==24.*").expect("valid");
//! pip.install(&Runner::new(RetryPolicy::new(4)), &[black]).await?;
//! # Ok(()) }
//! ```

mod classify;
mod locked;
mod probe;
mod requirement;
pub mod resolve;

pub use classify::{
    ClassifyContext, PipRepair, ProbeResult, ambiguous_project, classify, index_in,
};
pub use locked::HashedRequirement;
pub use probe::{pip_default_index, probe_index, project_url};
pub use requirement::{PipRequirement, normalize_name};

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use em_exec::packages::{Source, SourceKind, install_from, require_items, run_local};
use em_exec::{Adapter, Cmd, OutputMode, Runner, ToolError, ToolErrorKind, ToolFailure, Verdict};
use em_retry::Operation;

/// The extension that provides Python, for the "not found" error.
pub const PROVIDED_BY: &str =
    "the python extension (Debian packages python3, python3-pip, python3-venv)";

/// The circuit key of pip's own configured index (no `--index-url`, no mirror).
pub const DEFAULT_INDEX_KEY: &str = "pip-default-index";

/// pip's sources: indexes.
const INDEX: SourceKind = SourceKind {
    tool: "pip",
    noun: "index",
    default_key: DEFAULT_INDEX_KEY,
    example: "https://pypi.example.org/simple/",
};

/// The least time `python3 -m venv` gets, whatever the policy's per-attempt timeout.
pub const VENV_TIMEOUT: Duration = Duration::from_secs(300);

/// How pip is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipConfig {
    /// `--index-url`; `None` leaves pip's own setting (pip.conf, `PIP_INDEX_URL`, PyPI).
    pub index_url: Option<String>,
    /// Alternate indexes, tried in order when the previous one is exhausted.
    pub mirrors: Vec<String>,
    /// `--timeout`: how long pip waits on a socket. Default 30 s (pip's is 15 s).
    pub timeout: Duration,
    /// `--retries`: pip's own retries of one request. Default 1 (see the crate doc).
    pub retries: u32,
    /// How long the index probe may take. Default 5 s.
    pub probe_timeout: Duration,
    /// The interpreter that runs the index probe; `None`: the `python3` of the adapter.
    pub probe_python: Option<PathBuf>,
    /// Extra environment for every command (proxies, `PIP_*`).
    pub env: Vec<(String, String)>,
    /// `--user`: install into the user's site-packages (`~/.local`), as a script's
    /// `pip install --user` does. Not with a venv.
    pub user: bool,
}

impl Default for PipConfig {
    fn default() -> Self {
        PipConfig {
            index_url: None,
            mirrors: Vec::new(),
            timeout: Duration::from_secs(30),
            retries: 1,
            probe_timeout: Duration::from_secs(5),
            probe_python: None,
            env: Vec::new(),
            user: false,
        }
    }
}

/// Where packages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipTarget {
    /// This interpreter's environment: `<interpreter> -m pip`.
    Interpreter(PathBuf),
    /// A virtual environment at this absolute path, created with `python3 -m venv` when
    /// it has no `pyvenv.cfg` or no `bin/python`; then `<venv>/bin/python -m pip`.
    Venv(PathBuf),
}

/// The pip adapter. Hold it in an [`Arc`]: operations hand it to the [`Runner`].
#[derive(Debug)]
pub struct Pip {
    config: PipConfig,
    target: PipTarget,
    python3: PathBuf,
    /// Set by the cache repair: every later install adds `--no-cache-dir` (the cache was
    /// found holding a bad file; it is empty now anyway).
    no_cache_dir: AtomicBool,
}

// `ToolError` is em-exec's error type, shared by every adapter operation; it is large
// (it carries the last failed run), and boxing it is em-exec's call, not one adapter's.
#[allow(clippy::result_large_err)]
impl Pip {
    /// Finds `python3` on `PATH` (for venvs and the probe); checks the configuration.
    pub fn new(config: PipConfig, target: PipTarget) -> Result<Self, ToolError> {
        let python3 = em_exec::find_tool("python3", PROVIDED_BY)?;
        Pip::with_tools(config, target, python3)
    }

    /// Uses `python3` at this path (tests point it at a fake); checks the configuration.
    pub fn with_tools(
        config: PipConfig,
        target: PipTarget,
        python3: PathBuf,
    ) -> Result<Self, ToolError> {
        INDEX.check_urls(config.index_url.iter().chain(&config.mirrors))?;
        if let PipTarget::Venv(dir) = &target
            && (!dir.is_absolute() || dir.components().any(|c| c == Component::ParentDir))
        {
            return Err(ToolError::permanent(
                "pip",
                format!(
                    "the venv `{}` must be an absolute path without `..`",
                    dir.display()
                ),
                None,
            ));
        }
        Ok(Pip {
            config,
            target,
            python3,
            no_cache_dir: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PipConfig {
        &self.config
    }

    /// The interpreter whose pip runs: the target interpreter, or `<venv>/bin/python`.
    pub fn python(&self) -> PathBuf {
        match &self.target {
            PipTarget::Interpreter(python) => python.clone(),
            PipTarget::Venv(dir) => dir.join("bin").join("python"),
        }
    }

    /// Whether the venv target is complete: `pyvenv.cfg` (what makes a directory a venv,
    /// PEP 405) and `bin/python`. Always true for an interpreter target.
    pub fn is_venv_ready(&self) -> bool {
        match &self.target {
            PipTarget::Interpreter(_) => true,
            PipTarget::Venv(dir) => dir.join("pyvenv.cfg").is_file() && self.python().exists(),
        }
    }

    /// pip's `--timeout` under a policy whose attempts may last `attempt_timeout`:
    /// [`PipConfig::timeout`], but at most a quarter of the attempt (at least 1 s), so that
    /// a stalled index or file is reported by pip itself (`ReadTimeoutError`, classified,
    /// with the URL) and retried by pip once (`--retries`) before the policy's timeout
    /// kills pip, which could be in the middle of moving files into site-packages. A
    /// quarter: pip's own retry makes one stalled request cost two timeouts.
    pub fn socket_timeout(&self, attempt_timeout: Option<Duration>) -> Duration {
        let configured = self.config.timeout;
        attempt_timeout.map_or(configured, |t| {
            configured.min(t / 4).max(Duration::from_secs(1))
        })
    }

    /// Creates the venv target with `python3 -m venv <dir>` when it is not ready. Nothing
    /// for an interpreter target.
    pub async fn ensure_venv(self: &Arc<Self>, runner: &Runner) -> Result<(), ToolError> {
        let PipTarget::Venv(dir) = &self.target else {
            return Ok(());
        };
        if self.is_venv_ready() {
            return Ok(());
        }
        let operation = Operation::new("pip", format!("venv {}", dir.display()));
        // Creating a venv installs pip into it (seconds, more on a busy machine): a policy
        // tuned for quick network attempts must not cut it.
        let policy = runner.policy().clone();
        let runner = match policy.timeout() {
            Some(t) if t < VENV_TIMEOUT => runner
                .clone()
                .with_policy(policy.with_timeout(VENV_TIMEOUT)),
            _ => runner.clone(),
        };
        runner
            .run(self, operation.clone(), None, |_| {
                self.with_env(Cmd::tool(&self.python3).args(["-m", "venv"]).arg(dir))
            })
            .await?;
        if self.is_venv_ready() {
            Ok(())
        } else {
            Err(ToolError::permanent(
                operation.to_string(),
                format!(
                    "`python3 -m venv` left no pyvenv.cfg and bin/python in {}",
                    dir.display()
                ),
                Some("install the Debian package python3-venv (the python extension)".into()),
            ))
        }
    }

    /// `pip install` of `requirements` into the target (creating a venv target first),
    /// from the index and then each mirror (a fresh policy each, keyed by the index host).
    ///
    /// Runs: `<python> -m pip install --no-input --disable-pip-version-check
    /// --progress-bar off --retries <n> --timeout <s> [--index-url U] [--no-cache-dir]
    /// <requirements>`; `--no-cache-dir` once the cache repair ran.
    pub async fn install(
        self: &Arc<Self>,
        runner: &Runner,
        requirements: &[PipRequirement],
    ) -> Result<(), ToolError> {
        let words: Vec<String> = requirements.iter().map(|r| r.to_string()).collect();
        let operation = Operation::new("pip", format!("install {}", words.join(" ")));
        require_items(&operation, requirements.len(), "requirement", "install")?;
        self.ensure_venv(runner).await?;
        let words: Vec<std::ffi::OsString> = words.into_iter().map(Into::into).collect();
        self.install_over_indexes(runner, operation, &words).await
    }

    /// `pip install [our flags] ARGS` from the index, then each mirror (`install` and
    /// `install_hashed` differ only in `args`).
    pub(crate) async fn install_over_indexes(
        self: &Arc<Self>,
        runner: &Runner,
        operation: Operation,
        args: &[std::ffi::OsString],
    ) -> Result<(), ToolError> {
        let sources = INDEX.chain(self.config.index_url.as_deref(), &self.config.mirrors);
        let socket_timeout = self.socket_timeout(runner.policy().timeout());
        install_from(self, runner, operation, &sources, |index: &Source| {
            let mut cmd = self.pip(["install"]).args([
                "--retries".to_string(),
                self.config.retries.to_string(),
                "--timeout".to_string(),
                seconds(socket_timeout),
            ]);
            if let Some(url) = &index.url {
                cmd = cmd.args(["--index-url", url]);
            }
            if self.no_cache_dir.load(Ordering::SeqCst) {
                cmd = cmd.arg("--no-cache-dir");
            }
            if self.config.user {
                cmd = cmd.arg("--user");
            }
            cmd.args(args)
        })
        .await
    }

    /// `pip uninstall -y` of the requirements' names (specifiers ignored). Local: no
    /// index, no mirrors, no circuit. A venv target that does not exist has nothing to
    /// uninstall.
    pub async fn uninstall(
        self: &Arc<Self>,
        runner: &Runner,
        requirements: &[PipRequirement],
    ) -> Result<(), ToolError> {
        let names: Vec<&str> = requirements.iter().map(|r| r.name()).collect();
        let operation = Operation::new("pip", format!("uninstall {}", names.join(" ")));
        require_items(&operation, requirements.len(), "requirement", "uninstall")?;
        if !self.is_venv_ready() {
            return Ok(());
        }
        run_local(self, runner, operation, || {
            self.pip(["uninstall", "-y"]).args(&names)
        })
        .await
    }

    /// The normalized names of the packages the target has now (`pip list --format
    /// freeze`): read-only, no retry. A venv target that does not exist yet has none. An
    /// error means "unknown", never "none installed".
    pub async fn installed_names(&self) -> Result<BTreeSet<String>, ToolError> {
        if let PipTarget::Venv(dir) = &self.target
            && !dir.exists()
        {
            return Ok(BTreeSet::new());
        }
        let operation = "pip list".to_string();
        let cmd = self
            .pip(["list"])
            .args(["--format", "freeze"])
            .output(OutputMode::Capture);
        let out = cmd.run().await.map_err(|e| ToolError {
            kind: ToolErrorKind::NotRunnable,
            ..ToolError::permanent(operation.clone(), e.to_string(), None)
        })?;
        if !out.success() {
            let failure = ToolFailure::from_output(&cmd, &out);
            let reason = failure
                .tail(1)
                .pop()
                .unwrap_or_else(|| format!("exited with code {}", failure.code));
            return Err(ToolError {
                last: Some(failure),
                ..ToolError::permanent(operation, reason, None)
            });
        }
        Ok(parse_freeze(&out.stdout_text()))
    }

    /// `<python> -m pip <words> --no-input --disable-pip-version-check --progress-bar off`.
    fn pip<const N: usize>(&self, words: [&str; N]) -> Cmd {
        let mut cmd = Cmd::tool(self.python())
            .args(["-m", "pip"])
            .args(words)
            .args(["--no-input", "--disable-pip-version-check"]);
        if words[0] == "install" {
            cmd = cmd.args(["--progress-bar", "off"]);
        }
        self.with_env(cmd)
    }

    fn with_env(&self, mut cmd: Cmd) -> Cmd {
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    /// The probe's interpreter.
    fn probe_python(&self) -> &Path {
        self.config.probe_python.as_deref().unwrap_or(&self.python3)
    }
}

/// The normalized names of `pip list --format freeze` (`Black==24.1.0`, `pkg @ file:///…`).
///
/// ```
/// let names = em_pip::parse_freeze("Black==24.1.0\nmy_pkg @ file:///src\n\n");
/// assert_eq!(names.into_iter().collect::<Vec<_>>(), ["black", "my-pkg"]);
/// ```
pub fn parse_freeze(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let name = line.split(['=', '@', ' ']).next()?.trim();
            (!name.is_empty() && !name.starts_with('-')).then(|| normalize_name(name))
        })
        .collect()
}

/// `30`, or `2.5`: pip's `--timeout` takes seconds as a float.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

impl Adapter for Pip {
    type Repair = PipRepair;

    fn name(&self) -> &'static str {
        "pip"
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<PipRepair> {
        let mut context = ClassifyContext::default();
        if let Some(project) = ambiguous_project(failure) {
            let index = index_in(failure)
                .or_else(|| self.config.index_url.clone())
                .or_else(|| pip_default_index(self.probe_python(), &self.config.env));
            if let Some(index) = index {
                context.probe = Some(probe_index(
                    self.probe_python(),
                    &project_url(&index, &project),
                    self.config.probe_timeout,
                    &self.config.env,
                ));
                context.index = Some(index);
            }
        }
        classify(failure, &context)
    }

    async fn repair(&self, repair: PipRepair) -> Result<(), String> {
        match repair {
            PipRepair::RecheckIndex => Ok(()),
            PipRepair::PurgeCacheNoCacheDir => {
                // First: even if the purge fails (a disabled cache makes it exit 1), the
                // next attempts bypass the cache.
                self.no_cache_dir.store(true, Ordering::SeqCst);
                let cmd = self.pip(["cache", "purge"]).output(OutputMode::Capture);
                let out = cmd.run().await.map_err(|e| e.to_string())?;
                if out.success() {
                    Ok(())
                } else {
                    let failure = ToolFailure::from_output(&cmd, &out);
                    Err(format!(
                        "`pip cache purge` exited {}{}",
                        out.code(),
                        failure
                            .tail(1)
                            .first()
                            .map(|l| format!(": {l}"))
                            .unwrap_or_default()
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_timeout_stays_below_a_quarter_of_the_attempt() {
        let pip = Pip::with_tools(
            PipConfig::default(),
            PipTarget::Interpreter("python3".into()),
            "python3".into(),
        )
        .expect("valid");
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(pip.socket_timeout(None), Duration::from_secs(30));
        assert_eq!(pip.socket_timeout(secs(1800)), Duration::from_secs(30));
        assert_eq!(pip.socket_timeout(secs(60)), Duration::from_secs(15));
        assert_eq!(pip.socket_timeout(secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn configuration_is_checked() {
        let bad_index = PipConfig {
            index_url: Some("file:///srv/index".into()),
            ..PipConfig::default()
        };
        assert!(
            Pip::with_tools(
                bad_index,
                PipTarget::Interpreter("python3".into()),
                "python3".into()
            )
            .is_err()
        );
        for venv in ["relative/venv", "/opt/../etc"] {
            assert!(
                Pip::with_tools(
                    PipConfig::default(),
                    PipTarget::Venv(venv.into()),
                    "python3".into()
                )
                .is_err(),
                "{venv}"
            );
        }
        assert_eq!(seconds(Duration::from_secs(30)), "30");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.500");
        let chain = INDEX.chain(None, &["https://p.example.org:8443/simple/".into()]);
        assert_eq!(chain[0].key(), DEFAULT_INDEX_KEY);
        assert_eq!(chain[1].key(), "p.example.org:8443");
    }
}
