//! # em-npm: global npm installs that survive a flaky registry
//!
//! The npm adapter of extension-manager: it runs `npm install -g` / `npm uninstall -g` /
//! `npm ls -g` as argument vectors through [`em_exec`], reads npm's failures, repairs what
//! can be repaired (a corrupt cache, the stale directory of an interrupted install), and
//! walks a list of alternate registries when one is exhausted. Retrying is
//! [`em_exec::Runner`]'s job under an `em_retry` policy; this crate says what a failure
//! *is*.
//!
//! What it is not: a project installer (`npm ci` in a directory), or a registry client.
//!
//! ## Classification
//!
//! [`classify`] reads the `npm error code X` line (`npm ERR! code X` before npm 9), never
//! the exit code alone: npm exits with errnos (`Z_DATA_ERROR` 253, ENOTEMPTY 217, a reset
//! mid-tarball 152; docs/failures.md trap 6). Captured outputs: `fixtures/outputs/npm/`.
//!
//! | signal | class | action |
//! |---|---|---|
//! | `E5xx`, `E429`, `E408` (`503 Service Unavailable - GET url`) | transient | retry; reason names status and host |
//! | `ECONNRESET` (`read ECONNRESET`, `socket hang up`, `network aborted`), `ECONNREFUSED`, `EAI_AGAIN`, `ETIMEDOUT`, `ESOCKETTIMEDOUT`, `ERR_SOCKET_TIMEOUT`, `EIDLETIMEOUT`, `FETCH_ERROR` (`network timeout`), `EPIPE`, `ECONNABORTED`, `EHOSTUNREACH`, `ENETUNREACH`, `ENETDOWN`, `EPROTO` | transient | retry, then the next registry |
//! | `ENOTFOUND` (NXDOMAIN) | transient | retry under the policy, then the next registry (see below) |
//! | no code line, `network request to ... failed` | transient | retry (SPEC 3: unclassified errors retry); covers npm killed by a timeout |
//! | an error code not in this table | transient | retry (SPEC 3) |
//! | `EINTEGRITY` / `integrity checksum failed`, `Z_DATA_ERROR`, `Z_BUF_ERROR`, `TAR_BAD_ARCHIVE` | repairable | [`NpmRepair::CacheVerify`]: `npm cache verify`, then `npm cache clean --force`; once, then permanent |
//! | `ENOTEMPTY` with `rename '<pkg>' -> '<node_modules>/.<pkg>-<hash>'` or a `dest` line | repairable | [`NpmRepair::RemoveStaleTemp`]: remove that stale directory (and its `.<pkg>-*` siblings) inside the global prefix's `lib/node_modules` only; once, then permanent |
//! | `ENOTEMPTY` naming no such directory | permanent | hint: remove the directory by hand |
//! | `E404` | permanent | reason names the package; hint: a private registry answers 404 without a token |
//! | `ETARGET` (`No matching version found for x@v`) | permanent | hint: `npm view <name> versions` |
//! | `E401`, `E403` | permanent | hint: token / access |
//! | `SELF_SIGNED_CERT_IN_CHAIN`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)`, `CERT_UNTRUSTED`, `CERT_SIGNATURE_FAILURE`, `CERT_HAS_EXPIRED`, `CERT_NOT_YET_VALID`, `ERR_TLS_CERT_ALTNAME_INVALID` | permanent | hint: npm's `cafile` / NODE_EXTRA_CA_CERTS (a TLS-inspecting proxy's CA), the clock; never `strict-ssl=false` |
//! | other `E4xx` | permanent | |
//! | `EUSAGE`, `ERESOLVE`, `EBADPLATFORM`, `EBADENGINE`, `EINVALIDPACKAGENAME`, `EINVALIDTAGNAME`, `EJSONPARSE`, `ENOVERSIONS`, `EOVERRIDE` | permanent | |
//! | `EACCES`, `EPERM` | permanent | hint: run as root, or set a prefix you own |
//! | `ENOSPC` | permanent | hint: free space, `npm cache clean --force` |
//!
//! **ENOTFOUND.** docs/failures.md (npm) says it deserves at most one retry; SPEC section 4 lists
//! it transient. It is transient here, for the whole policy, because a permanent verdict
//! (or a repair-once trick, which ends as permanent) would stop
//! [`em_exec::Runner::run_with_mirrors`], and a registry host that does not resolve is
//! exactly when the next mirror should be tried. The cost is bounded: the policy's
//! attempts against that host (and with a circuit breaker, three exhausted operations open
//! the host's circuit so later installs skip it at once). Cutting it to exactly one retry
//! while still moving on to the mirror needs a verdict that ends a source as "exhausted"
//! early, which em-exec does not have yet.
//!
//! ## Retries: npm's and ours
//!
//! npm retries each request itself (`fetch-retries` 2, waiting 10 s then up to 60 s, on
//! 408/420/429/5xx and network errors), invisible to us. Every command here passes
//! `--fetch-retries=1 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000`
//! ([`NpmConfig::fetch_retries`]): one quick retry absorbs a single dropped request among
//! the hundreds a dependency tree makes without restarting the whole install; everything
//! beyond that is ours, visible and classified. Arithmetic for a request that keeps
//! failing, with a 4-attempt policy: 4 attempts x 2 fetches = 8 fetches, and per attempt
//! at most 2 x `fetch-timeout` + 1 s in npm (2 x 60 s + 1 s with the default
//! [`NpmConfig::fetch_timeout`]); with npm's defaults it would have been 4 x 3 = 12
//! fetches with up to 70 s of hidden waits per attempt. Give the policy a per-attempt
//! timeout above 2 x `fetch-timeout` + 1 s (plus install time) so that npm's own retry can
//! finish; installs do it for you: their `fetch-timeout` is at most a quarter of the
//! policy's per-attempt timeout ([`Npm::fetch_timeout`]).
//!
//! `fetch-timeout` does not bound a TCP connect to a host that drops SYNs: npm waits for
//! the kernel's SYN retries (about 130 s, captured in `etimedout-connect.txt`) before
//! ETIMEDOUT. Only the policy's per-attempt timeout bounds that; set one.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), em_exec::ToolError> {
//! use std::sync::Arc;
//! use em_exec::Runner;
//! use em_npm::{Npm, NpmConfig, NpmPackage};
//! use em_retry::RetryPolicy;
//!
//! let npm = Arc::new(Npm::new(NpmConfig {
//!     mirrors: vec!["https://npm.mirror.example.org/".into()],
//!     ..NpmConfig::default()
//! })?);
//! let packages = [NpmPackage::parse("typescript@5").map_err(|e| {
//!     em_exec::ToolError::permanent("npm install", e, None)
//! })?];
//! npm.install_global(&Runner::new(RetryPolicy::new(4)), &packages).await?;
//! # Ok(()) }
//! ```

mod classify;
mod package;
pub mod resolve;

pub use classify::{NpmRepair, classify, error_code, stale_temp_in};
pub use package::NpmPackage;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use em_exec::packages::{Source, SourceKind, install_from, require_items, run_local};
use em_exec::{Adapter, Cmd, OutputMode, Runner, ToolError, ToolFailure, Verdict};
use em_retry::Operation;

/// The extension that provides `npm`, for the "not found" error.
pub const PROVIDED_BY: &str = "the nodejs extension (Debian packages nodejs and npm)";

/// The circuit key of npm's own configured registry (no `--registry`, no mirror).
pub const DEFAULT_REGISTRY_KEY: &str = "npm-default-registry";

/// npm's sources: registries.
const REGISTRY: SourceKind = SourceKind {
    tool: "npm",
    noun: "registry",
    default_key: DEFAULT_REGISTRY_KEY,
    example: "https://registry.example.org/",
};

/// How npm is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpmConfig {
    /// `--registry`; `None` leaves npm's own setting (`.npmrc`, `npm_config_registry`).
    pub registry: Option<String>,
    /// Alternate registries, tried in order when the previous one is exhausted.
    pub mirrors: Vec<String>,
    /// `--prefix` of global installs (where `lib/node_modules` and `bin` are); `None`:
    /// npm's global prefix (`/usr` or `/usr/local`, root-owned).
    pub prefix: Option<PathBuf>,
    /// `--cache`; `None`: npm's (`~/.npm`).
    pub cache: Option<PathBuf>,
    /// `--fetch-timeout`: how long one request may take. Default 60 s (npm's is 300 s).
    pub fetch_timeout: Duration,
    /// `--fetch-retries`: npm's own retries of one request, inside an attempt. Default 1
    /// (see the crate documentation for the arithmetic).
    pub fetch_retries: u32,
    /// Extra environment for every npm command (proxies, `npm_config_*`).
    pub env: Vec<(String, String)>,
}

impl Default for NpmConfig {
    fn default() -> Self {
        NpmConfig {
            registry: None,
            mirrors: Vec::new(),
            prefix: None,
            cache: None,
            fetch_timeout: Duration::from_secs(60),
            fetch_retries: 1,
            env: Vec::new(),
        }
    }
}

/// The npm adapter. Hold it in an [`Arc`]: operations hand it to the [`Runner`].
#[derive(Debug)]
pub struct Npm {
    config: NpmConfig,
    npm: PathBuf,
}

// `ToolError` is em-exec's error type, shared by every adapter operation; it is large
// (it carries the last failed run), and boxing it is em-exec's call, not one adapter's.
#[allow(clippy::result_large_err)]
impl Npm {
    /// Finds `npm` on `PATH`; checks the configuration.
    pub fn new(config: NpmConfig) -> Result<Self, ToolError> {
        let npm = em_exec::find_tool("npm", PROVIDED_BY)?;
        Npm::with_tool(config, npm)
    }

    /// Uses `npm` at this path (tests point it at a fake); checks the configuration.
    pub fn with_tool(config: NpmConfig, npm: PathBuf) -> Result<Self, ToolError> {
        REGISTRY.check_urls(config.registry.iter().chain(&config.mirrors))?;
        for (what, path) in [("prefix", &config.prefix), ("cache", &config.cache)] {
            if let Some(path) = path
                && !path.is_absolute()
            {
                return Err(ToolError::permanent(
                    "npm",
                    format!(
                        "the npm {what} `{}` is not an absolute path",
                        path.display()
                    ),
                    None,
                ));
            }
        }
        Ok(Npm { config, npm })
    }

    /// The configuration.
    pub fn config(&self) -> &NpmConfig {
        &self.config
    }

    /// `npm install -g` of `packages`, non-interactive, with bounded network waits, from
    /// the registry and then each mirror (a fresh policy each, keyed by the registry's
    /// host for the circuit breaker).
    ///
    /// Runs: `npm install -g --no-audit --no-fund --no-update-notifier --no-progress
    /// --color=false --loglevel=warn --fetch-timeout=<ms> --fetch-retries=<n>
    /// --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000 [--registry=R]
    /// [--prefix=P] [--cache=C] <packages>`.
    pub async fn install_global(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[NpmPackage],
    ) -> Result<(), ToolError> {
        self.install(runner, packages, true).await
    }

    /// `npm install` of `packages` into `./node_modules` of the current directory (what a
    /// script's `npm install pkg` does), with the same retries, mirrors and circuit as
    /// [`Npm::install_global`].
    pub async fn install_local(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[NpmPackage],
    ) -> Result<(), ToolError> {
        self.install(runner, packages, false).await
    }

    async fn install(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[NpmPackage],
        global: bool,
    ) -> Result<(), ToolError> {
        let words: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
        let verb: &[&str] = if global {
            &["install", "-g"]
        } else {
            &["install"]
        };
        let operation = Operation::new("npm", format!("{} {}", verb.join(" "), words.join(" ")));
        require_items(&operation, packages.len(), "package", "install")?;
        let sources = REGISTRY.chain(self.config.registry.as_deref(), &self.config.mirrors);
        let fetch_timeout = self.fetch_timeout(runner.policy().timeout());
        install_from(self, runner, operation, &sources, |source: &Source| {
            self.command(verb.iter().copied(), source.url.as_deref(), fetch_timeout)
                .args(&words)
        })
        .await
    }

    /// `npm uninstall -g` of the packages' names (their specs are ignored). Local: no
    /// registry, no mirrors, no circuit.
    pub async fn uninstall_global(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[NpmPackage],
    ) -> Result<(), ToolError> {
        let names: Vec<&str> = packages.iter().map(|p| p.name()).collect();
        let operation = Operation::new("npm", format!("uninstall -g {}", names.join(" ")));
        require_items(&operation, packages.len(), "package", "uninstall")?;
        let registry = self.config.registry.as_deref();
        run_local(self, runner, operation, || {
            self.command(["uninstall", "-g"], registry, self.config.fetch_timeout)
                .args(&names)
        })
        .await
    }

    /// The globally installed packages as `(name, version)`, sorted by name, from
    /// `npm ls -g --depth=0 --json`. Runs once (local, nothing to retry). npm exits 1
    /// when the tree has problems (a missing or invalid dependency) but still prints the
    /// JSON: that JSON is used; entries without a version are left out.
    pub async fn ls_global(&self) -> Result<Vec<(String, String)>, ToolError> {
        let operation = "npm ls -g";
        let mut cmd = Cmd::tool(&self.npm)
            .args(["ls", "-g", "--depth=0", "--json", "--color=false"])
            .output(OutputMode::Capture);
        if let Some(prefix) = &self.config.prefix {
            cmd = cmd.arg(flag("--prefix=", prefix.as_os_str()));
        }
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        let out = cmd
            .run()
            .await
            .map_err(|e| ToolError::permanent(operation, e.to_string(), None))?;
        match parse_ls(&out.stdout_text()) {
            Ok(list) => Ok(list),
            Err(why) => {
                let failure = ToolFailure::from_output(&cmd, &out);
                let mut err = ToolError::permanent(
                    operation,
                    if out.success() {
                        why
                    } else {
                        classify(&failure).reason().to_string()
                    },
                    None,
                );
                err.attempts = 1;
                err.last = Some(failure);
                Err(err)
            }
        }
    }

    /// Where global packages go (`npm root -g`: `/usr/local/lib/node_modules` for
    /// Debian's npm). npm creates that directory on the first global install and leaves it
    /// when the last package goes, so an exact undo needs to know it. Runs once; `None`
    /// when npm does not say.
    pub async fn global_root(&self) -> Option<PathBuf> {
        let mut cmd = Cmd::tool(&self.npm)
            .args(["root", "-g"])
            .output(OutputMode::Capture);
        if let Some(prefix) = &self.config.prefix {
            cmd = cmd.arg(flag("--prefix=", prefix.as_os_str()));
        }
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run().await.ok().filter(|o| o.success())?;
        let text = out.stdout_text();
        let line = text.lines().next()?.trim();
        Path::new(line).is_absolute().then(|| PathBuf::from(line))
    }

    /// npm's `--fetch-timeout` under a policy whose attempts may last `attempt_timeout`:
    /// [`NpmConfig::fetch_timeout`], but at most a quarter of the attempt (at least 1 s),
    /// so that a stalled registry is reported by npm itself (`network timeout at: URL`,
    /// classified) after its own one retry, before the policy's timeout kills npm in the
    /// middle of writing the prefix. A quarter: npm's retry makes one stalled request cost
    /// two timeouts and a 1 s wait.
    pub fn fetch_timeout(&self, attempt_timeout: Option<Duration>) -> Duration {
        let configured = self.config.fetch_timeout;
        attempt_timeout.map_or(configured, |t| {
            configured.min(t / 4).max(Duration::from_secs(1))
        })
    }

    /// `npm <words> <common flags>`, with the configured environment.
    fn command<'w>(
        &self,
        words: impl IntoIterator<Item = &'w str>,
        registry: Option<&str>,
        fetch_timeout: Duration,
    ) -> Cmd {
        let mut cmd = Cmd::tool(&self.npm).args(words).args([
            "--no-audit".to_string(),
            "--no-fund".to_string(),
            "--no-update-notifier".to_string(),
            "--no-progress".to_string(),
            "--color=false".to_string(),
            // A `loglevel=silent` in some .npmrc would hide the `npm error code` line.
            "--loglevel=warn".to_string(),
            format!("--fetch-timeout={}", fetch_timeout.as_millis()),
            format!("--fetch-retries={}", self.config.fetch_retries),
            "--fetch-retry-mintimeout=1000".to_string(),
            "--fetch-retry-maxtimeout=5000".to_string(),
        ]);
        if let Some(registry) = registry {
            cmd = cmd.arg(format!("--registry={registry}"));
        }
        if let Some(prefix) = &self.config.prefix {
            cmd = cmd.arg(flag("--prefix=", prefix.as_os_str()));
        }
        cmd = self.with_cache(cmd);
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    fn with_cache(&self, cmd: Cmd) -> Cmd {
        match &self.config.cache {
            Some(cache) => cmd.arg(flag("--cache=", cache.as_os_str())),
            None => cmd,
        }
    }

    /// Runs one repair command, capturing its output; the error names it and its last line.
    async fn run_repair(&self, args: &[&str]) -> Result<(), String> {
        let mut cmd = self.with_cache(
            Cmd::tool(&self.npm)
                .args(args)
                .args(["--no-update-notifier", "--color=false", "--loglevel=warn"])
                .output(OutputMode::Capture),
        );
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run().await.map_err(|e| e.to_string())?;
        if out.success() {
            Ok(())
        } else {
            let failure = ToolFailure::from_output(&cmd, &out);
            Err(format!(
                "`npm {}` exited {}{}",
                args.join(" "),
                out.code(),
                failure
                    .tail(1)
                    .first()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            ))
        }
    }

    /// The global prefix: the configured one, else `npm prefix -g`.
    async fn global_prefix(&self) -> Result<PathBuf, String> {
        if let Some(prefix) = &self.config.prefix {
            return Ok(prefix.clone());
        }
        let mut cmd = Cmd::tool(&self.npm)
            .args(["prefix", "-g"])
            .output(OutputMode::Capture);
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run().await.map_err(|e| e.to_string())?;
        let prefix = out.stdout_text().trim().to_string();
        if !out.success() || prefix.is_empty() {
            return Err(format!(
                "`npm prefix -g` exited {} with no prefix",
                out.code()
            ));
        }
        Ok(PathBuf::from(prefix))
    }

    /// Removes the stale directory `stale` and its `.<name>-*` siblings, after checking
    /// that they sit directly in `<prefix>/lib/node_modules` (or one `@scope` below it).
    async fn remove_stale_temp(&self, stale: &Path) -> Result<(), String> {
        let prefix = self.global_prefix().await?;
        remove_stale_temp_in(&prefix, stale)
    }
}

/// The body of [`NpmRepair::RemoveStaleTemp`], given the global prefix. Public for tests
/// and tools that know their prefix; refuses anything outside `<prefix>/lib/node_modules`.
pub fn remove_stale_temp_in(prefix: &Path, stale: &Path) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("not removing {}: {why}", stale.display()));
    if !classify::is_stale_temp_shape(stale) {
        return refuse("not a `.<name>-<hash>` directory in a node_modules");
    }
    let root = prefix.join("lib").join("node_modules");
    let root = match root.canonicalize() {
        Ok(root) => root,
        Err(e) => return refuse(&format!("{}: {e}", root.display())),
    };
    let (Some(parent), Some(file_name)) = (stale.parent(), stale.file_name()) else {
        return refuse("no parent directory");
    };
    let parent = match parent.canonicalize() {
        Ok(parent) => parent,
        // Its directory is gone: nothing left to remove.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return refuse(&e.to_string()),
    };
    let inside = parent == root
        || (parent.parent() == Some(root.as_path())
            && parent
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('@')));
    if !inside {
        return refuse(&format!(
            "it is outside the global prefix's {}",
            root.display()
        ));
    }
    let base = file_name
        .to_str()
        .and_then(classify::stale_base)
        .ok_or_else(|| format!("not removing {}: unexpected name", stale.display()))?;
    let prefix_of_siblings = format!(".{base}-");
    let entries = std::fs::read_dir(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", parent.display()))?;
        let name = entry.file_name();
        let is_stale = name == file_name
            || name.to_str().is_some_and(|n| {
                n.starts_with(&prefix_of_siblings) && classify::stale_base(n) == Some(base)
            });
        if !is_stale {
            continue;
        }
        let path = entry.path();
        // Never follow a symlink out of node_modules: remove the link itself.
        let result = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(e) => Err(e),
        };
        result.map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Parses `npm ls -g --depth=0 --json`: `{"dependencies": {"name": {"version": "1.0.0"}}}`.
pub fn parse_ls(json: &str) -> Result<Vec<(String, String)>, String> {
    let value: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("`npm ls -g --json` printed no JSON: {e}"))?;
    let mut list: Vec<(String, String)> = match value.get("dependencies") {
        None => Vec::new(),
        Some(serde_json::Value::Object(deps)) => deps
            .iter()
            .filter_map(|(name, dep)| {
                dep.get("version")
                    .and_then(|v| v.as_str())
                    .map(|v| (name.clone(), v.to_string()))
            })
            .collect(),
        Some(_) => return Err("`npm ls -g --json`: `dependencies` is not an object".into()),
    };
    list.sort();
    Ok(list)
}

fn flag(name: &str, value: &std::ffi::OsStr) -> OsString {
    let mut flag = OsString::from(name);
    flag.push(value);
    flag
}

impl Adapter for Npm {
    type Repair = NpmRepair;

    fn name(&self) -> &'static str {
        "npm"
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<NpmRepair> {
        classify(failure)
    }

    async fn repair(&self, repair: NpmRepair) -> Result<(), String> {
        match repair {
            NpmRepair::CacheVerify => {
                // verify drops the entries that fail their checksum; clean then empties
                // the rest (a bad packument passes verify). Both run even if verify fails.
                let verified = self.run_repair(&["cache", "verify"]).await;
                self.run_repair(&["cache", "clean", "--force"]).await?;
                verified
            }
            NpmRepair::RemoveStaleTemp(path) => self.remove_stale_temp(&path).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_timeout_stays_below_a_quarter_of_the_attempt() {
        let npm = Npm::with_tool(NpmConfig::default(), "npm".into()).expect("valid");
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(npm.fetch_timeout(None), Duration::from_secs(60));
        assert_eq!(npm.fetch_timeout(secs(600)), Duration::from_secs(60));
        assert_eq!(npm.fetch_timeout(secs(8)), Duration::from_secs(2));
        assert_eq!(npm.fetch_timeout(secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn ls_json_is_read_sorted_and_without_broken_entries() {
        let json = r#"{"name":"lib","dependencies":{
            "typescript":{"version":"5.4.5","overridden":false},
            "@angular/cli":{"version":"17.0.0"},
            "broken":{"missing":true}}}"#;
        assert_eq!(
            parse_ls(json).expect("parses"),
            [
                ("@angular/cli".to_string(), "17.0.0".to_string()),
                ("typescript".to_string(), "5.4.5".to_string())
            ]
        );
        assert_eq!(parse_ls("{}").expect("empty"), []);
        assert!(parse_ls("npm error").is_err());
    }

    #[test]
    fn registries_are_checked_and_keyed_by_host() {
        let bad = NpmConfig {
            mirrors: vec!["ftp://x".into()],
            ..NpmConfig::default()
        };
        assert!(Npm::with_tool(bad, "npm".into()).is_err());
        let rel = NpmConfig {
            prefix: Some("rel/dir".into()),
            ..NpmConfig::default()
        };
        assert!(Npm::with_tool(rel, "npm".into()).is_err());
        let chain = REGISTRY.chain(None, &["https://u:p@npm.example.org:8443/npm/".into()]);
        assert_eq!(chain[0].key(), DEFAULT_REGISTRY_KEY);
        assert_eq!(chain[1].key(), "npm.example.org:8443");
    }

    #[test]
    fn stale_removal_stays_inside_the_prefix() {
        let prefix = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let nm = outside.path().join("lib/node_modules");
        std::fs::create_dir_all(nm.join(".victim-abcdefgh")).expect("mkdir");
        std::fs::create_dir_all(prefix.path().join("lib/node_modules")).expect("mkdir");
        let err = remove_stale_temp_in(prefix.path(), &nm.join(".victim-abcdefgh"))
            .expect_err("outside the prefix");
        assert!(err.contains("outside"), "{err}");
        assert!(nm.join(".victim-abcdefgh").exists());
        // A symlinked scope pointing out of node_modules does not count as inside.
        std::os::unix::fs::symlink(&nm, prefix.path().join("lib/node_modules/@evil"))
            .expect("symlink");
        let via_link = prefix
            .path()
            .join("lib/node_modules/@evil/.victim-abcdefgh");
        assert!(remove_stale_temp_in(prefix.path(), &via_link).is_err());
        assert!(nm.join(".victim-abcdefgh").exists());
    }
}
