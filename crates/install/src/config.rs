//! The configuration file (SPEC 10): what a machine or a user sets once for every run.
//!
//! ## Where it is read from
//!
//! 1. `/etc/extension-manager/config.toml` (the machine's; optional),
//! 2. `$XDG_CONFIG_HOME/extension-manager/config.toml`, or
//!    `~/.config/extension-manager/config.toml` when `XDG_CONFIG_HOME` is unset (the
//!    user's; optional),
//! 3. `--config FILE` (must exist: a path typed on purpose that leads nowhere is a mistake).
//!
//! A later file overrides an earlier one key by key, and tables merge: a user file whose
//! `[policy.apt]` sets only `attempts` keeps the `delay` of the machine's file. Then the
//! `EM_*` environment variables below override single keys. What nobody sets keeps the
//! built-in default ([`Config::default`]).
//!
//! ## The schema
//!
//! Every key is optional.
//!
//! ```toml
//! jobs = 4                  # how many extensions install at once (--jobs overrides it)
//! lock_timeout = "10m"      # how long a second invocation waits for the run lock
//! sudo = "auto"             # auto: `sudo -n` when not root; never: fail with a hint instead
//!
//! [policy.apt]              # the default retry policy of an adapter: apt, npm, pip,
//! attempts = 5              # lang (pipx/cargo/gem/go), download, run; a step's `retry` keys
//! backoff = "exponential"   # (attempts, backoff, delay, base, max, multiplier, jitter,
//! delay = "2s"              # timeout, deadline); the keys left out come from the built-in
//! max = "60s"               # default of that adapter
//! timeout = "30m"
//!
//! [policy.npm]
//! attempts = 6
//!
//! [mirrors]                 # tried in order when the primary fails transiently
//! apt = ["http://mirror.example.org/debian"]
//! npm = ["https://npm-mirror.example.org/"]
//! pip = ["https://pypi-mirror.example.org/simple/"]
//!
//! [registries]              # the primary registry/index, when not the tools' own setting
//! npm = "https://registry.example.org/npm/"
//! pip = "https://registry.example.org/pypi/simple/"
//!
//! [circuit]                 # the circuit breaker of each registry or host
//! threshold = 3             # consecutive exhausted operations before it opens
//! cooldown = "300s"         # how long it stays open before one trial call
//!
//! [retry_budget]            # the retry budget of each registry or host, shared by its processes
//! enabled = true            # false (or ratio = 0 with few tokens) stops retries being rationed
//! ratio = 0.2               # each first attempt earns this much of a retry (0 to 1)
//! max_tokens = 10           # the retries saved up at most (the bucket starts full)
//!
//! [apt]
//! update_max_age = "1h"     # `apt-get update` is skipped when the lists are fresher
//!
//! [download]
//! max_size = "8GiB"         # the largest file a download may be (also capped by free space)
//!
//! [unpack]                  # bounds on a download's `unpack_to` (archive bombs)
//! max_bytes = "4GiB"        # file data unpacked: "500MiB", "2GB", or a number of bytes
//! max_entries = 200000      # files, directories and links
//! ```
//!
//! ## Environment variables
//!
//! | variable                | key                  | form                               |
//! |-------------------------|----------------------|------------------------------------|
//! | `EM_JOBS`               | `jobs`               | a whole number of at least 1       |
//! | `EM_LOCK_TIMEOUT`       | `lock_timeout`       | a duration: `30s`, `10m`, `1h`     |
//! | `EM_SUDO`               | `sudo`               | `auto` or `never`                  |
//! | `EM_APT_UPDATE_MAX_AGE` | `apt.update_max_age` | a duration                         |
//! | `EM_CIRCUIT_THRESHOLD`  | `circuit.threshold`  | a whole number of at least 1       |
//! | `EM_CIRCUIT_COOLDOWN`   | `circuit.cooldown`   | a duration                         |
//! | `EM_MIRRORS_APT`        | `mirrors.apt`        | URLs separated by commas           |
//! | `EM_MIRRORS_NPM`        | `mirrors.npm`        | URLs separated by commas           |
//! | `EM_MIRRORS_PIP`        | `mirrors.pip`        | URLs separated by commas           |
//! | `EM_REGISTRIES_NPM`     | `registries.npm`     | a URL                              |
//! | `EM_REGISTRIES_PIP`     | `registries.pip`     | a URL                              |
//!
//! An empty value clears a list of mirrors or a registry; any other empty variable counts
//! as unset (so that `EM_JOBS= extension-manager ...` in a script means "the default").
//!
//! ## Errors
//!
//! Every mistake of every file and variable is reported at once, as
//! [`em_manifest::Diagnostic`]s: the same rendering as manifest errors, with the file, line
//! and column, a caret under the offending text and a hint. A `[policy.NAME]` table is
//! read by the manifest's own `retry` parser ([`StepRetry::from_table`]), so it accepts and
//! rejects exactly what a step's `retry` does.
//!
//! ```text
//! error: unknown key `job` in the configuration
//!  --> /etc/extension-manager/config.toml:1:1
//!   |
//! 1 | job = 8
//!   | ^^^
//!   = hint: the configuration takes jobs, lock_timeout, sudo, [policy], [mirrors], [registries], [circuit], [apt]
//! ```
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use em_install::config::{Config, ConfigSources, SudoMode};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("config.toml");
//! std::fs::write(&file, "jobs = 8\n[policy.apt]\nattempts = 6\n").unwrap();
//! let sources = ConfigSources::new()
//!     .with_required_file(&file)
//!     .with_env("EM_SUDO", "never");
//! let config = Config::load(&sources).unwrap();
//! assert_eq!(config.jobs, 8);
//! assert_eq!(config.sudo, SudoMode::Never);
//! assert_eq!(config.policy(em_install::adapter_context::PolicyName::Apt).max_attempts(), 6);
//! assert_eq!(config.lock_timeout, Duration::from_secs(600)); // the default
//! ```

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use em_manifest::walk::{TomlWalk, a_type, find};
use em_manifest::{Diagnostic, SourceFile, Span, StepRetry};
use em_retry::{PolicyError, RetryPolicy, fmt_duration};
use toml::de::{DeTable, DeValue};

use crate::policy_name::PolicyName;

/// The machine's configuration file.
pub const SYSTEM_FILE: &str = "/etc/extension-manager/config.toml";

/// The most extensions that may install at once (`jobs`, `EM_JOBS`, `--jobs`): more is
/// a typo, and would only queue on the apt and npm locks anyway.
pub const MAX_JOBS: usize = 256;

/// The environment variables that override single keys (see the module documentation).
pub const ENV_VARS: [&str; 11] = [
    "EM_JOBS",
    "EM_LOCK_TIMEOUT",
    "EM_SUDO",
    "EM_APT_UPDATE_MAX_AGE",
    "EM_CIRCUIT_THRESHOLD",
    "EM_CIRCUIT_COOLDOWN",
    "EM_MIRRORS_APT",
    "EM_MIRRORS_NPM",
    "EM_MIRRORS_PIP",
    "EM_REGISTRIES_NPM",
    "EM_REGISTRIES_PIP",
];

const TOP_KEYS: [&str; 11] = [
    "jobs",
    "lock_timeout",
    "sudo",
    "policy",
    "mirrors",
    "registries",
    "circuit",
    "retry_budget",
    "apt",
    "download",
    "unpack",
];
const TOP_HINT: &str = "the configuration takes jobs, lock_timeout, sudo, [policy], [mirrors], [registries], [circuit], [retry_budget], [apt], [download], [unpack]";
const MIRROR_KEYS: [&str; 3] = ["apt", "npm", "pip"];
const REGISTRY_KEYS: [&str; 2] = ["npm", "pip"];
const CIRCUIT_KEYS: [&str; 2] = ["threshold", "cooldown"];
const BUDGET_KEYS: [&str; 3] = ["enabled", "ratio", "max_tokens"];
/// The largest `[retry_budget] max_tokens`: a bucket beyond it rations nothing.
const MAX_BUDGET_TOKENS: f64 = 1_000_000.0;
const APT_KEYS: [&str; 1] = ["update_max_age"];
const UNPACK_KEYS: [&str; 2] = ["max_bytes", "max_entries"];
const DOWNLOAD_KEYS: [&str; 1] = ["max_size"];
const DURATION_FORM: &str = "a duration with a unit: \"500ms\", \"30s\", \"10m\", \"1h30m\"";

/// Whether extension-manager may use `sudo` for what needs root (apt, global npm installs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SudoMode {
    /// Run as is when root, else through `sudo -n` (never prompting for a password).
    #[default]
    Auto,
    /// Never use sudo: an operation that needs root fails with a hint to rerun as root.
    Never,
}

impl SudoMode {
    /// The names as written in the file and in `EM_SUDO`.
    pub const NAMES: [&'static str; 2] = ["auto", "never"];

    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SudoMode::Auto => "auto",
            SudoMode::Never => "never",
        }
    }

    /// `auto` or `never`.
    pub fn parse(name: &str) -> Option<SudoMode> {
        match name {
            "auto" => Some(SudoMode::Auto),
            "never" => Some(SudoMode::Never),
            _ => None,
        }
    }
}

impl fmt::Display for SudoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[mirrors]`: per adapter, the URLs to try in order when the primary fails transiently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    /// Debian/Ubuntu archive mirrors.
    pub apt: Vec<String>,
    /// npm registry mirrors.
    pub npm: Vec<String>,
    /// Python package index mirrors (simple API).
    pub pip: Vec<String>,
}

impl Mirrors {
    /// The mirrors of `adapter` (none for an adapter without a `[mirrors]` key).
    pub fn of(&self, adapter: &str) -> &[String] {
        match adapter {
            "apt" => &self.apt,
            "npm" => &self.npm,
            "pip" => &self.pip,
            _ => &[],
        }
    }

    fn slot(&mut self, adapter: &str) -> Option<&mut Vec<String>> {
        match adapter {
            "apt" => Some(&mut self.apt),
            "npm" => Some(&mut self.npm),
            "pip" => Some(&mut self.pip),
            _ => None,
        }
    }
}

/// `[registries]`: the primary registry or index of an adapter, when the tool's own setting
/// (`.npmrc`, `pip.conf`) should not be used. `None`: the tool's own setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registries {
    /// The npm registry.
    pub npm: Option<String>,
    /// The pip index (simple API).
    pub pip: Option<String>,
}

impl Registries {
    /// The registry of `adapter`, when one is configured.
    pub fn of(&self, adapter: &str) -> Option<&str> {
        match adapter {
            "npm" => self.npm.as_deref(),
            "pip" => self.pip.as_deref(),
            _ => None,
        }
    }

    fn slot(&mut self, adapter: &str) -> Option<&mut Option<String>> {
        match adapter {
            "npm" => Some(&mut self.npm),
            "pip" => Some(&mut self.pip),
            _ => None,
        }
    }
}

/// `[circuit]`: when the circuit breaker of a registry or host opens, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Consecutive exhausted operations before the circuit opens (at least 1).
    pub threshold: u32,
    /// How long an open circuit fails fast before it lets one trial call through.
    pub cooldown: Duration,
}

impl Default for CircuitSettings {
    /// 3 failures, 300 s: the defaults of [`em_retry::CircuitBreaker`].
    fn default() -> Self {
        CircuitSettings {
            threshold: 3,
            cooldown: Duration::from_secs(300),
        }
    }
}

/// `[retry_budget]`: the token bucket of each registry or host ([`em_retry::RetryBudget`]),
/// shared by the processes of the host, that keeps retries during an outage near `ratio`
/// times the first attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudgetSettings {
    /// Whether retries are rationed at all.
    pub enabled: bool,
    /// The part of a token each first attempt deposits (0 to 1).
    pub ratio: f64,
    /// The tokens the bucket holds at most, and starts with.
    pub max_tokens: f64,
}

impl Default for RetryBudgetSettings {
    /// On, 0.2, 10 tokens: the defaults of [`em_retry::RetryBudget`].
    fn default() -> Self {
        RetryBudgetSettings {
            enabled: true,
            ratio: 0.2,
            max_tokens: 10.0,
        }
    }
}

impl RetryBudgetSettings {
    /// The budget over the records in `dir` (the state directory's `budget/`), or `None`
    /// when it is turned off.
    pub fn budget(&self, dir: &Path) -> Option<Arc<em_retry::RetryBudget>> {
        self.enabled.then(|| {
            Arc::new(
                em_retry::RetryBudget::new(Arc::new(em_retry::FileBudgetStore::new(dir)))
                    .with_ratio(self.ratio)
                    .with_max_tokens(self.max_tokens),
            )
        })
    }
}

/// The configuration of a run: the built-in defaults, then the files, then `EM_*`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How many extensions install at once (`--jobs` overrides it).
    pub jobs: usize,
    /// How long a second invocation waits for the run lock.
    pub lock_timeout: Duration,
    /// Whether sudo may be used.
    pub sudo: SudoMode,
    /// The retry policy of each [`PolicyName`]: its built-in default
    /// ([`PolicyName::default_policy`]) with the `[policy.NAME]` keys of every file applied.
    pub policies: BTreeMap<PolicyName, RetryPolicy>,
    /// Mirrors per adapter.
    pub mirrors: Mirrors,
    /// Primary registries per adapter.
    pub registries: Registries,
    /// The circuit breaker's settings.
    pub circuit: CircuitSettings,
    /// The retry budget's settings.
    pub retry_budget: RetryBudgetSettings,
    /// `apt-get update` is skipped when the package lists are younger than this (and every
    /// requested package is known).
    pub apt_update_max_age: Duration,
    /// The largest file a download may be (`[download] max_size`; None: em-exec's
    /// default, 8 GiB). The free space of the destination caps it further.
    pub download_max_size: Option<u64>,
    /// The bounds on what one archive may unpack to (`[unpack]`).
    pub unpack: em_unpack::Limits,
}

impl Default for Config {
    /// The built-in defaults: 4 jobs, a 10 minute lock timeout, sudo when needed, each
    /// adapter's [`PolicyName::default_policy`], no mirrors, the tools' own registries, a circuit that
    /// opens after 3 exhausted operations for 300 s, apt lists refreshed after 1 hour, and
    /// archives of at most 4 GiB and 200 000 entries ([`em_unpack::Limits::DEFAULT`]).
    fn default() -> Self {
        Config {
            jobs: 4,
            lock_timeout: Duration::from_secs(10 * 60),
            sudo: SudoMode::Auto,
            policies: PolicyName::ALL
                .into_iter()
                .map(|p| (p, p.default_policy()))
                .collect(),
            mirrors: Mirrors::default(),
            registries: Registries::default(),
            circuit: CircuitSettings::default(),
            retry_budget: RetryBudgetSettings::default(),
            apt_update_max_age: Duration::from_secs(60 * 60),
            download_max_size: None,
            unpack: em_unpack::Limits::DEFAULT,
        }
    }
}

impl Config {
    /// Reads `sources`: the files in order (a missing optional one is skipped), then the
    /// environment variables. Returns every error found, not only the first.
    pub fn load(sources: &ConfigSources) -> Result<Config, Vec<Diagnostic>> {
        let mut builder = Builder::default();
        for file in &sources.files {
            builder.read_file(file);
        }
        builder.apply_env(&sources.env);
        builder.finish()
    }

    /// The retry policy of `name`'s operations.
    pub fn policy(&self, name: PolicyName) -> RetryPolicy {
        self.policies
            .get(&name)
            .cloned()
            .unwrap_or_else(|| name.default_policy())
    }
}

/// One configuration file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// Its path, shown as is in diagnostics.
    pub path: PathBuf,
    /// Whether its absence is an error (`--config`) or not (the standard places).
    pub is_required: bool,
}

/// Where a [`Config`] comes from: the files in the order they override each other, and
/// the environment. Injectable so that tests need neither `/etc` nor the real environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigSources {
    /// The files, earliest first.
    pub files: Vec<ConfigFile>,
    /// Environment variables; only those of [`ENV_VARS`] are read.
    pub env: BTreeMap<String, String>,
}

impl ConfigSources {
    /// No file, no variable: loads [`Config::default`].
    pub fn new() -> Self {
        ConfigSources::default()
    }

    /// The real places: [`SYSTEM_FILE`], the user's file, `cli_config` (the `--config`
    /// option), and the process environment.
    pub fn standard(cli_config: Option<&Path>) -> Self {
        ConfigSources::from_environment(cli_config, |name| std::env::var_os(name))
    }

    /// [`ConfigSources::standard`] with the environment read through `var`: the user's
    /// file is found through `XDG_CONFIG_HOME` or `HOME`.
    pub fn from_environment(
        cli_config: Option<&Path>,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Self {
        let mut sources = ConfigSources::new().with_optional_file(SYSTEM_FILE);
        if let Some(user) = user_file(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref()) {
            sources = sources.with_optional_file(user);
        }
        if let Some(path) = cli_config {
            sources = sources.with_required_file(path);
        }
        for name in ENV_VARS {
            if let Some(value) = var(name) {
                // A value that is not UTF-8 cannot be a number or a URL: keep it (lossily)
                // so that it is reported with the variable's name rather than ignored.
                let value = value
                    .into_string()
                    .unwrap_or_else(|v| v.to_string_lossy().into_owned());
                sources.env.insert(name.to_string(), value);
            }
        }
        sources
    }

    /// Adds a file that is read when it exists.
    pub fn with_optional_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(ConfigFile {
            path: path.into(),
            is_required: false,
        });
        self
    }

    /// Adds a file that must exist (`--config`).
    pub fn with_required_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(ConfigFile {
            path: path.into(),
            is_required: true,
        });
        self
    }

    /// Sets an environment variable.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

/// `$XDG_CONFIG_HOME/extension-manager/config.toml`, else `$HOME/.config/...`. The XDG base
/// directory specification says to ignore a relative `XDG_CONFIG_HOME`, as if unset.
fn user_file(xdg_config_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    let base = match xdg_config_home.map(Path::new) {
        Some(xdg) if xdg.is_absolute() => xdg.to_path_buf(),
        _ => Path::new(home.filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(base.join("extension-manager").join("config.toml"))
}

/// The `[policy.NAME]` keys of all files so far, merged key by key.
#[derive(Default)]
struct PolicyLayers {
    merged: StepRetry,
    /// Where each key was last set: an error that only the merge shows (a `max` in one file
    /// below a `delay` in another) points at it.
    keys: BTreeMap<String, (Arc<SourceFile>, Span)>,
}

#[derive(Default)]
struct Builder {
    config: Config,
    policies: BTreeMap<PolicyName, PolicyLayers>,
    errors: Vec<Diagnostic>,
}

impl Builder {
    fn read_file(&mut self, file: &ConfigFile) {
        let path = file.path.display();
        let text = match std::fs::read_to_string(&file.path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound && !file.is_required => return,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.errors.push(
                    Diagnostic::new(format!("configuration file `{path}` does not exist"))
                        .with_hint("check the path given to --config"),
                );
                return;
            }
            Err(e) => {
                self.errors.push(
                    Diagnostic::new(format!("cannot read configuration file `{path}`: {e}"))
                        .with_hint("make it readable, or move it away"),
                );
                return;
            }
        };
        let source = SourceFile::new(&file.path, text);
        let mut reader = Reader {
            file: &source,
            walk: TomlWalk::new(&source),
        };
        match DeTable::parse(source.text()) {
            Ok(root) => reader.root(root.get_ref(), &mut self.config, &mut self.policies),
            Err(e) => {
                let text_len = source.text().len();
                let span = e.span().unwrap_or(0..0);
                let span = span.start.min(text_len)..span.end.min(text_len);
                reader.push(
                    span,
                    format!("invalid TOML: {}", e.message()),
                    "the configuration must be valid TOML (https://toml.io)",
                );
            }
        }
        let mut errors = reader.walk.errors;
        errors.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
        self.errors.extend(errors);
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) {
        for name in ENV_VARS {
            let Some(value) = env.get(name) else {
                continue;
            };
            let value = value.trim();
            let config = &mut self.config;
            let result = match name {
                "EM_MIRRORS_APT" | "EM_MIRRORS_NPM" | "EM_MIRRORS_PIP" => {
                    let adapter = &name["EM_MIRRORS_".len()..].to_ascii_lowercase();
                    env_urls(name, value).map(|urls| {
                        if let Some(slot) = config.mirrors.slot(adapter) {
                            *slot = urls;
                        }
                    })
                }
                "EM_REGISTRIES_NPM" | "EM_REGISTRIES_PIP" => {
                    let adapter = &name["EM_REGISTRIES_".len()..].to_ascii_lowercase();
                    let url = if value.is_empty() {
                        Ok(None)
                    } else {
                        env_url(name, value).map(Some)
                    };
                    url.map(|url| {
                        if let Some(slot) = config.registries.slot(adapter) {
                            *slot = url;
                        }
                    })
                }
                _ if value.is_empty() => Ok(()),
                "EM_JOBS" => env_count(name, value)
                    .and_then(|n| match n {
                        n if n <= MAX_JOBS => Ok(n),
                        _ => Err(env_error(
                            name,
                            value,
                            &format!("a whole number from 1 to {MAX_JOBS}"),
                            "8",
                        )),
                    })
                    .map(|n| config.jobs = n),
                "EM_CIRCUIT_THRESHOLD" => env_count(name, value).and_then(|n| {
                    u32::try_from(n)
                        .map(|n| config.circuit.threshold = n)
                        .map_err(|_| env_error(name, value, "a whole number of at least 1", "3"))
                }),
                "EM_LOCK_TIMEOUT" => env_duration(name, value).map(|d| config.lock_timeout = d),
                "EM_CIRCUIT_COOLDOWN" => {
                    env_duration(name, value).map(|d| config.circuit.cooldown = d)
                }
                "EM_APT_UPDATE_MAX_AGE" => {
                    env_duration(name, value).map(|d| config.apt_update_max_age = d)
                }
                "EM_SUDO" => match SudoMode::parse(value) {
                    Some(mode) => {
                        config.sudo = mode;
                        Ok(())
                    }
                    None => Err(env_error(name, value, "auto or never", "never")),
                },
                _ => Ok(()),
            };
            if let Err(e) = result {
                self.errors.push(e);
            }
        }
    }

    fn finish(mut self) -> Result<Config, Vec<Diagnostic>> {
        for (name, layers) in &self.policies {
            let default = name.default_policy();
            match layers.merged.apply(&default) {
                Ok(policy) => {
                    self.config.policies.insert(*name, policy);
                }
                Err(e) => {
                    self.errors
                        .push(merged_policy_error(name.as_str(), layers, &default, &e))
                }
            }
        }
        if self.errors.is_empty() {
            Ok(self.config)
        } else {
            Err(self.errors)
        }
    }
}

/// A policy that each table allows but their merge over the adapter's default does not
/// (e.g. `max = "1500ms"` under apt, whose delays start at 2s).
fn merged_policy_error(
    adapter: &str,
    layers: &PolicyLayers,
    default: &RetryPolicy,
    e: &PolicyError,
) -> Diagnostic {
    let (keys, hint): (&[&str], String) = match e {
        PolicyError::MaxBelowBase { .. } => (
            &["max", "delay", "base"],
            format!(
                "raise `max`, or lower `delay`; keys that [policy.{adapter}] leaves out come from \
                 earlier files, then from the built-in default (first delay {}, max {})",
                fmt_duration(default.backoff().base()),
                fmt_duration(default.backoff().max()),
            ),
        ),
        PolicyError::Multiplier(_) => (&["multiplier"], "use 1.5 or 2.0".to_string()),
        PolicyError::ZeroAttempts => (&["attempts"], "attempts = 1 runs once".to_string()),
        PolicyError::ZeroTimeout => (&["timeout"], "remove it or give a real limit".to_string()),
        PolicyError::ZeroDeadline => (&["deadline"], "remove it or give a real limit".to_string()),
    };
    let message = format!("bad retry policy for {adapter}: {e}");
    let at = keys.iter().find_map(|k| layers.keys.get(*k));
    match at {
        Some((file, span)) => file.error(span.clone(), message),
        None => Diagnostic::new(message),
    }
    .with_hint(hint)
}

/// Later keys win; what the later table leaves out is kept.
fn overlay(into: &mut StepRetry, later: StepRetry) {
    into.overrides.overlay(&later.overrides);
    into.span = later.span;
}

/// The walk of one file's document (em-manifest's [`TomlWalk`], shared with the manifest
/// loader): values go to the config, errors to `errors`.
struct Reader<'f> {
    file: &'f Arc<SourceFile>,
    walk: TomlWalk<'f>,
}

impl<'f> std::ops::Deref for Reader<'f> {
    type Target = TomlWalk<'f>;
    fn deref(&self) -> &TomlWalk<'f> {
        &self.walk
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.walk
    }
}

impl Reader<'_> {
    fn root(
        &mut self,
        root: &DeTable<'_>,
        config: &mut Config,
        policies: &mut BTreeMap<PolicyName, PolicyLayers>,
    ) {
        self.unknown_keys(root, &TOP_KEYS, "in the configuration", TOP_HINT);
        if let Some(n) = self.count(root, "jobs", "jobs = 4")
            && let Some(n) = self.at_most(root, "jobs", n, MAX_JOBS)
        {
            config.jobs = n;
        }
        if let Some(d) = self.duration(root, "lock_timeout") {
            config.lock_timeout = d;
        }
        if let Some(mode) = self.sudo(root) {
            config.sudo = mode;
        }
        if let Some(policy) = self.table(root, "policy", "write [policy.apt] attempts = 5") {
            self.policies(policy, policies);
        }
        if let Some(mirrors) = self.table(
            root,
            "mirrors",
            "write [mirrors] apt = [\"http://mirror.example.org/debian\"]",
        ) {
            self.unknown_keys(
                mirrors,
                &MIRROR_KEYS,
                "in [mirrors]",
                "[mirrors] has a list of URLs for apt, npm, pip",
            );
            for adapter in MIRROR_KEYS {
                if let (Some(urls), Some(slot)) =
                    (self.urls(mirrors, adapter), config.mirrors.slot(adapter))
                {
                    *slot = urls;
                }
            }
        }
        if let Some(registries) = self.table(
            root,
            "registries",
            "write [registries] npm = \"https://registry.example.org/\"",
        ) {
            self.unknown_keys(
                registries,
                &REGISTRY_KEYS,
                "in [registries]",
                "[registries] has a URL for npm, pip",
            );
            for adapter in REGISTRY_KEYS {
                if let (Some(url), Some(slot)) = (
                    self.url(registries, adapter),
                    config.registries.slot(adapter),
                ) {
                    *slot = Some(url);
                }
            }
        }
        if let Some(circuit) = self.table(root, "circuit", "write [circuit] threshold = 3") {
            self.unknown_keys(
                circuit,
                &CIRCUIT_KEYS,
                "in [circuit]",
                "[circuit] takes threshold, cooldown",
            );
            if let Some(n) = self.count(circuit, "threshold", "threshold = 3") {
                match u32::try_from(n) {
                    Ok(n) => config.circuit.threshold = n,
                    Err(_) => {
                        let span = find(circuit, "threshold").map(|v| v.span());
                        self.push(
                            span.unwrap_or(0..0),
                            "`threshold` is too large",
                            "a handful of failures is enough: threshold = 3",
                        );
                    }
                }
            }
            if let Some(d) = self.duration(circuit, "cooldown") {
                config.circuit.cooldown = d;
            }
        }
        if let Some(budget) = self.table(root, "retry_budget", "write [retry_budget] ratio = 0.2") {
            self.unknown_keys(
                budget,
                &BUDGET_KEYS,
                "in [retry_budget]",
                "[retry_budget] takes enabled, ratio, max_tokens",
            );
            if let Some(v) = find(budget, "enabled") {
                match v.get_ref() {
                    DeValue::Boolean(b) => config.retry_budget.enabled = *b,
                    _ => self.type_error(
                        "enabled",
                        "true or false",
                        v,
                        "write enabled = false to stop rationing retries",
                    ),
                }
            }
            if let Some(r) = self.number_between(budget, "ratio", 0.0, 1.0, "ratio = 0.2") {
                config.retry_budget.ratio = r;
            }
            if let Some(n) = self.number_between(
                budget,
                "max_tokens",
                0.0,
                MAX_BUDGET_TOKENS,
                "max_tokens = 10",
            ) {
                config.retry_budget.max_tokens = n;
            }
        }
        if let Some(apt) = self.table(root, "apt", "write [apt] update_max_age = \"1h\"") {
            self.unknown_keys(apt, &APT_KEYS, "in [apt]", "[apt] takes update_max_age");
            if let Some(d) = self.duration(apt, "update_max_age") {
                config.apt_update_max_age = d;
            }
        }
        if let Some(download) = self.table(root, "download", "write [download] max_size = \"8GiB\"")
        {
            self.unknown_keys(
                download,
                &DOWNLOAD_KEYS,
                "in [download]",
                "[download] takes max_size",
            );
            if let Some(n) = self.size(download, "max_size") {
                config.download_max_size = Some(n);
            }
        }
        if let Some(unpack) = self.table(root, "unpack", "write [unpack] max_bytes = \"4GiB\"") {
            self.unknown_keys(
                unpack,
                &UNPACK_KEYS,
                "in [unpack]",
                "[unpack] takes max_bytes, max_entries",
            );
            if let Some(n) = self.size(unpack, "max_bytes") {
                config.unpack.max_bytes = n;
            }
            if let Some(n) = self.count(unpack, "max_entries", "max_entries = 200000") {
                config.unpack.max_entries = n as u64;
            }
        }
    }

    fn policies(&mut self, table: &DeTable<'_>, policies: &mut BTreeMap<PolicyName, PolicyLayers>) {
        let adapters = PolicyName::ALL.map(PolicyName::as_str).join(", ");
        for (name, value) in table.iter() {
            let adapter = name.get_ref().as_ref();
            let Some(policy_name) = PolicyName::parse(adapter) else {
                self.push(
                    name.span(),
                    format!("unknown adapter `{adapter}` in [policy]"),
                    format!("[policy] has a table per adapter: {adapters}"),
                );
                continue;
            };
            let DeValue::Table(t) = value.get_ref() else {
                self.type_error(
                    &format!("policy.{adapter}"),
                    "a table",
                    value,
                    &format!("write [policy.{adapter}] with the keys of a step's retry table, e.g. attempts = 5"),
                );
                continue;
            };
            match StepRetry::from_table(self.file, t, value.span()) {
                Ok(retry) => {
                    let layers = policies.entry(policy_name).or_default();
                    overlay(&mut layers.merged, retry);
                    for (key, _) in t.iter() {
                        layers
                            .keys
                            .insert(key.get_ref().to_string(), (self.file.clone(), key.span()));
                    }
                }
                Err(errors) => self.errors.extend(errors),
            }
        }
    }

    fn table<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        key: &str,
        hint: &str,
    ) -> Option<&'t DeTable<'i>> {
        self.walk.table(table, key, hint).map(|(t, _)| t)
    }

    /// A whole number of at least 1.
    fn count(&mut self, table: &DeTable<'_>, key: &str, example: &str) -> Option<usize> {
        let v = find(table, key)?;
        let DeValue::Integer(i) = v.get_ref() else {
            self.type_error(key, "a whole number", v, &format!("e.g. {example}"));
            return None;
        };
        let n = i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n >= 1);
        if n.is_none() {
            self.push(
                v.span(),
                format!(
                    "`{key}` must be a whole number of at least 1, not {}",
                    i.as_str()
                ),
                format!("e.g. {example}"),
            );
        }
        n
    }

    /// A number (whole or not) from `min` to `max`.
    fn number_between(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        min: f64,
        max: f64,
        example: &str,
    ) -> Option<f64> {
        let v = find(table, key)?;
        let text = match v.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().replace('_', ""),
            DeValue::Float(f) => f.as_str().replace('_', ""),
            _ => {
                self.type_error(key, "a number", v, &format!("e.g. {example}"));
                return None;
            }
        };
        let n = text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && (min..=max).contains(n));
        if n.is_none() {
            self.push(
                v.span(),
                format!("`{key}` must be a number from {min} to {max}, not {text}"),
                format!("e.g. {example}"),
            );
        }
        n
    }

    /// `n`, the value of `key`, unless it is above `max` (an error at the value).
    fn at_most(&mut self, table: &DeTable<'_>, key: &str, n: usize, max: usize) -> Option<usize> {
        if n <= max {
            return Some(n);
        }
        let span = find(table, key).map(|v| v.span()).unwrap_or_default();
        self.push(
            span,
            format!("`{key}` must be at most {max}, not {n}"),
            format!("e.g. {key} = 8"),
        );
        None
    }

    fn duration(&mut self, table: &DeTable<'_>, key: &str) -> Option<Duration> {
        let number_hint = |n: &str| format!("durations have a unit: {key} = \"{n}s\"");
        let hint = format!("write {DURATION_FORM}");
        let (d, _) = self.walk.duration(table, key, number_hint, &hint)?;
        Some(d)
    }

    /// A size of at least 1 byte: a string with a unit (`"4GiB"`, `"500MB"`, parsed by
    /// `bytesize`: KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000) or a number of bytes.
    fn size(&mut self, table: &DeTable<'_>, key: &str) -> Option<u64> {
        let v = find(table, key)?;
        let hint = format!("write a size with a unit, e.g. {key} = \"4GiB\" or \"500MiB\"");
        let n = match v.get_ref() {
            DeValue::String(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .ok()
                .map(|b| b.as_u64()),
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .ok()
                .and_then(|n| u64::try_from(n).ok()),
            _ => {
                self.type_error(key, "a size", v, &hint);
                return None;
            }
        };
        match n {
            Some(n) if n >= 1 => Some(n),
            _ => {
                let shown = match v.get_ref() {
                    DeValue::String(s) => format!("\"{s}\""),
                    DeValue::Integer(i) => i.as_str().to_string(),
                    _ => String::new(),
                };
                self.push(
                    v.span(),
                    format!("`{key}` is not a size of at least 1 byte: {shown}"),
                    hint,
                );
                None
            }
        }
    }

    fn sudo(&mut self, table: &DeTable<'_>) -> Option<SudoMode> {
        let v = find(table, "sudo")?;
        let hint =
            "sudo is \"auto\" (sudo -n when not root) or \"never\" (fail with a hint instead)";
        let DeValue::String(s) = v.get_ref() else {
            self.type_error("sudo", "a string", v, hint);
            return None;
        };
        let mode = SudoMode::parse(s);
        if mode.is_none() {
            self.push(v.span(), format!("unknown sudo mode `{s}`"), hint);
        }
        mode
    }

    fn url(&mut self, table: &DeTable<'_>, key: &str) -> Option<String> {
        let v = find(table, key)?;
        let DeValue::String(s) = v.get_ref() else {
            self.type_error(
                key,
                "a URL string",
                v,
                &format!("write {key} = \"{}\"", example_url(key)),
            );
            return None;
        };
        if is_http_url(s) {
            return Some(s.to_string());
        }
        self.push(
            v.span(),
            format!("`{key}` is not an http(s) URL: \"{s}\""),
            format!("write the whole URL, e.g. {key} = \"{}\"", example_url(key)),
        );
        None
    }

    /// A list of URLs; `None` when the key is absent or any entry is wrong.
    fn urls(&mut self, table: &DeTable<'_>, key: &str) -> Option<Vec<String>> {
        let v = find(table, key)?;
        let DeValue::Array(items) = v.get_ref() else {
            let hint = match v.get_ref() {
                DeValue::String(s) => format!("write a list: {key} = [\"{s}\"]"),
                _ => format!("write a list of URLs: {key} = [\"{}\"]", example_url(key)),
            };
            self.type_error(key, "a list of URLs", v, &hint);
            return None;
        };
        let before = self.errors.len();
        let mut urls = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) if is_http_url(s) => urls.push(s.to_string()),
                DeValue::String(s) => self.push(
                    item.span(),
                    format!("a mirror of {key} is not an http(s) URL: \"{s}\""),
                    format!("write the whole URL, e.g. \"{}\"", example_url(key)),
                ),
                other => self.push(
                    item.span(),
                    format!("`{key}` must list URL strings, not {}", a_type(other)),
                    format!("write {key} = [\"{}\"]", example_url(key)),
                ),
            }
        }
        (self.errors.len() == before).then_some(urls)
    }
}

/// `Err(hint)` when `text` is not a duration.
/// Mirrors and registries are fetched by apt, npm, pip, curl or wget: http(s) only (apt
/// mirrors are often plain http, their content being signed), with a host and no spaces.
fn is_http_url(url: &str) -> bool {
    let parts = em_retry::url::split(url);
    matches!(parts.scheme, Some("https" | "http"))
        && !parts.authority.is_empty()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A URL of the kind `key` (an adapter's name) takes, for hints.
fn example_url(key: &str) -> &'static str {
    match key {
        "apt" => "http://mirror.example.org/debian",
        "pip" => "https://pypi-mirror.example.org/simple/",
        _ => "https://npm-mirror.example.org/",
    }
}

fn env_error(name: &str, value: &str, form: &str, example: &str) -> Diagnostic {
    Diagnostic::new(format!("`{name}` is not {form}: \"{value}\""))
        .with_hint(format!("{name} takes {form}, e.g. {name}={example}"))
}

fn env_count(name: &str, value: &str) -> Result<usize, Diagnostic> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| env_error(name, value, "a whole number of at least 1", "8"))
}

fn env_duration(name: &str, value: &str) -> Result<Duration, Diagnostic> {
    em_retry::parse_duration(value).map_err(|_| {
        Diagnostic::new(format!("`{name}` is not a duration: \"{value}\"")).with_hint(format!(
            "{name} takes a duration with a unit (ms, s, m, h), e.g. {name}=10m"
        ))
    })
}

fn env_url(name: &str, value: &str) -> Result<String, Diagnostic> {
    if is_http_url(value) {
        Ok(value.to_string())
    } else {
        Err(env_error(
            name,
            value,
            "an http(s) URL",
            "https://registry.example.org/",
        ))
    }
}

fn env_urls(name: &str, value: &str) -> Result<Vec<String>, Diagnostic> {
    let urls: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    match urls.iter().find(|u| !is_http_url(u)) {
        Some(bad) => Err(Diagnostic::new(format!(
            "`{name}` has an entry that is not an http(s) URL: \"{bad}\""
        ))
        .with_hint(format!(
            "{name} takes http(s) URLs separated by commas, \
             e.g. {name}=https://a.example.org/,https://b.example.org/"
        ))),
        None => Ok(urls.into_iter().map(str::to_string).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_manifest::render_all;
    use em_retry::Backoff;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn load_text(text: &str) -> Result<Config, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "config.toml", text);
        Config::load(&ConfigSources::new().with_required_file(path))
    }

    #[test]
    fn mirror_and_registry_urls_need_http_or_https_and_a_host() {
        for good in [
            "https://npm-mirror.example.org/",
            "http://127.0.0.1:18765/simple/",
            "http://u:p@[::1]:8080",
            "https://h?x",
        ] {
            assert!(is_http_url(good), "{good}");
        }
        for bad in [
            "ftp://h/",
            "HTTPS://h/",
            "https://",
            "https:///x",
            "http://?x",
            "http://u@/x",
            "https://h /x",
            "mirror.example.org",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    fn errors_of(text: &str) -> Vec<Diagnostic> {
        load_text(text).expect_err("must be rejected")
    }

    fn at(d: &Diagnostic) -> (usize, usize) {
        let l = d.location.as_ref().expect("located");
        (l.line, l.column)
    }

    #[test]
    fn config_defaults_are_the_built_in_ones() {
        let config = Config::default();
        assert_eq!(config.jobs, 4);
        assert_eq!(config.lock_timeout, Duration::from_secs(600));
        assert_eq!(config.sudo, SudoMode::Auto);
        assert_eq!(config.circuit.threshold, 3);
        assert_eq!(config.circuit.cooldown, Duration::from_secs(300));
        assert_eq!(config.apt_update_max_age, Duration::from_secs(3600));
        assert_eq!(config.mirrors, Mirrors::default());
        assert_eq!(config.registries, Registries::default());
        for name in PolicyName::ALL {
            assert_eq!(config.policy(name), name.default_policy());
        }
        // Nothing to read is the defaults; so are absent optional files and empty files.
        assert_eq!(Config::load(&ConfigSources::new()), Ok(Config::default()));
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = write(dir.path(), "empty.toml", "# nothing\n");
        let sources = ConfigSources::new()
            .with_optional_file(dir.path().join("absent.toml"))
            .with_optional_file(empty);
        assert_eq!(Config::load(&sources), Ok(Config::default()));
    }

    #[test]
    fn config_full_schema_is_read() {
        let config = load_text(
            r#"
jobs = 8
lock_timeout = "90s"
sudo = "never"
[policy.apt]
attempts = 5
backoff = "exponential"
delay = "3s"
max = "60s"
timeout = "20m"
[policy.run]
attempts = 1
[mirrors]
apt = ["http://mirror.example.org/debian", "https://other.example.org/debian"]
npm = ["https://npm-mirror.example.org/"]
pip = ["https://pypi-mirror.example.org/simple/"]
[registries]
npm = "https://registry.example.org/npm/"
pip = "https://registry.example.org/simple/"
[circuit]
threshold = 5
cooldown = "2m"
[apt]
update_max_age = "30m"
[unpack]
max_bytes = "500MiB"
max_entries = 1_000
"#,
        )
        .unwrap_or_else(|e| panic!("{}", render_all(&e)));
        assert_eq!(config.jobs, 8);
        assert_eq!(config.lock_timeout, Duration::from_secs(90));
        assert_eq!(config.sudo, SudoMode::Never);
        let apt = config.policy(PolicyName::Apt);
        assert_eq!(apt.max_attempts(), 5);
        assert_eq!(
            apt.backoff(),
            &Backoff::Exponential {
                base: Duration::from_secs(3),
                multiplier: 2.0,
                max: Duration::from_secs(60)
            }
        );
        assert_eq!(apt.timeout(), Some(Duration::from_secs(20 * 60)));
        assert_eq!(config.policy(PolicyName::Run).max_attempts(), 1);
        // The keys a table leaves out are the adapter's default.
        assert_eq!(
            config.policy(PolicyName::Run).timeout(),
            PolicyName::Run.default_policy().timeout()
        );
        assert_eq!(
            config.policy(PolicyName::Npm),
            PolicyName::Npm.default_policy()
        );
        assert_eq!(config.mirrors.of("apt").len(), 2);
        assert_eq!(
            config.mirrors.of("npm"),
            ["https://npm-mirror.example.org/"]
        );
        assert_eq!(
            config.registries.of("pip"),
            Some("https://registry.example.org/simple/")
        );
        assert_eq!(
            config.circuit,
            CircuitSettings {
                threshold: 5,
                cooldown: Duration::from_secs(120)
            }
        );
        assert_eq!(config.apt_update_max_age, Duration::from_secs(1800));
        assert_eq!(
            config.unpack,
            em_unpack::Limits {
                max_bytes: 500 << 20,
                max_entries: 1000
            }
        );
    }

    #[test]
    fn config_unpack_sizes_take_units_or_bytes() {
        for (text, bytes) in [
            ("\"4GiB\"", 4u64 << 30),
            ("\"2 GB\"", 2_000_000_000),
            ("\"64KiB\"", 64 << 10),
            ("1048576", 1 << 20),
        ] {
            let config = load_text(&format!("[unpack]\nmax_bytes = {text}\n"))
                .unwrap_or_else(|e| panic!("{text}: {}", render_all(&e)));
            assert_eq!(config.unpack.max_bytes, bytes, "{text}");
            assert_eq!(config.unpack.max_entries, 200_000, "the default stays");
        }
        let errors = errors_of("[unpack]\nmax_bytes = \"lots\"\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(at(&errors[0]), (2, 13));
    }

    #[test]
    fn config_download_max_size_is_a_size() {
        assert_eq!(Config::default().download_max_size, None);
        let config = load_text("[download]\nmax_size = \"1MiB\"\n")
            .unwrap_or_else(|e| panic!("{}", render_all(&e)));
        assert_eq!(config.download_max_size, Some(1 << 20));
        let errors = errors_of("[download]\nmax_size = 0\nspeed = 1\n");
        assert_eq!(errors.len(), 2, "{}", render_all(&errors));
    }

    #[test]
    fn config_merge_order_is_etc_then_xdg_then_cli_then_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = write(
            dir.path(),
            "etc.toml",
            "jobs = 2\nlock_timeout = \"1m\"\nsudo = \"never\"\n\
             [policy.apt]\nattempts = 7\ndelay = \"5s\"\n\
             [mirrors]\napt = [\"http://etc.example.org/debian\"]\nnpm = [\"https://etc.example.org/\"]\n\
             [circuit]\nthreshold = 9\ncooldown = \"9s\"\n",
        );
        let xdg = write(
            dir.path(),
            "xdg.toml",
            "jobs = 3\nlock_timeout = \"2m\"\n[policy.apt]\nattempts = 6\n\
             [mirrors]\napt = [\"http://xdg.example.org/debian\"]\n[circuit]\nthreshold = 8\n",
        );
        let cli = write(
            dir.path(),
            "cli.toml",
            "jobs = 5\n[apt]\nupdate_max_age = \"5m\"\n",
        );
        let sources = ConfigSources::new()
            .with_optional_file(&etc)
            .with_optional_file(&xdg)
            .with_required_file(&cli)
            .with_env("EM_JOBS", "6")
            .with_env("EM_CIRCUIT_COOLDOWN", "10s")
            .with_env("EM_UNRELATED", "ignored");
        let config = Config::load(&sources).unwrap_or_else(|e| panic!("{}", render_all(&e)));
        assert_eq!(config.jobs, 6, "env beats --config");
        assert_eq!(
            config.lock_timeout,
            Duration::from_secs(120),
            "xdg beats etc"
        );
        assert_eq!(
            config.sudo,
            SudoMode::Never,
            "etc kept when nobody else sets it"
        );
        assert_eq!(config.apt_update_max_age, Duration::from_secs(300));
        // Tables merge key by key: xdg's attempts, etc's delay.
        let apt = config.policy(PolicyName::Apt);
        assert_eq!(apt.max_attempts(), 6);
        assert_eq!(apt.backoff().base(), Duration::from_secs(5));
        // A list is one key: xdg's apt mirrors replace etc's; etc's npm mirrors stay.
        assert_eq!(config.mirrors.apt, ["http://xdg.example.org/debian"]);
        assert_eq!(config.mirrors.npm, ["https://etc.example.org/"]);
        assert_eq!(config.circuit.threshold, 8);
        assert_eq!(config.circuit.cooldown, Duration::from_secs(10));

        let without_env = ConfigSources {
            env: BTreeMap::new(),
            ..sources
        };
        assert_eq!(Config::load(&without_env).expect("valid").jobs, 5);
    }

    #[test]
    fn config_env_overrides_each_key() {
        let sources = ConfigSources::new()
            .with_env("EM_JOBS", "12")
            .with_env("EM_LOCK_TIMEOUT", "30s")
            .with_env("EM_SUDO", "never")
            .with_env("EM_APT_UPDATE_MAX_AGE", "2h")
            .with_env("EM_CIRCUIT_THRESHOLD", "7")
            .with_env("EM_CIRCUIT_COOLDOWN", "1m")
            .with_env(
                "EM_MIRRORS_APT",
                "http://a.example.org/debian, http://b.example.org/debian",
            )
            .with_env("EM_MIRRORS_NPM", "https://npm.example.org/")
            .with_env("EM_MIRRORS_PIP", "")
            .with_env("EM_REGISTRIES_NPM", "https://registry.example.org/")
            .with_env("EM_REGISTRIES_PIP", "https://pypi.example.org/simple/");
        let config = Config::load(&sources).unwrap_or_else(|e| panic!("{}", render_all(&e)));
        assert_eq!(config.jobs, 12);
        assert_eq!(config.lock_timeout, Duration::from_secs(30));
        assert_eq!(config.sudo, SudoMode::Never);
        assert_eq!(config.apt_update_max_age, Duration::from_secs(7200));
        assert_eq!(config.circuit.threshold, 7);
        assert_eq!(config.circuit.cooldown, Duration::from_secs(60));
        assert_eq!(
            config.mirrors.apt,
            ["http://a.example.org/debian", "http://b.example.org/debian"]
        );
        assert_eq!(config.mirrors.npm, ["https://npm.example.org/"]);
        assert!(config.mirrors.pip.is_empty());
        assert_eq!(
            config.registries.of("npm"),
            Some("https://registry.example.org/")
        );
        assert_eq!(
            config.registries.of("pip"),
            Some("https://pypi.example.org/simple/")
        );
    }

    #[test]
    fn config_empty_env_values_clear_lists_and_are_otherwise_unset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "c.toml",
            "jobs = 3\n[mirrors]\napt = [\"http://m.example.org/debian\"]\n\
             [registries]\nnpm = \"https://r.example.org/\"\n",
        );
        let sources = ConfigSources::new()
            .with_required_file(file)
            .with_env("EM_JOBS", "")
            .with_env("EM_MIRRORS_APT", "")
            .with_env("EM_REGISTRIES_NPM", " ");
        let config = Config::load(&sources).expect("valid");
        assert_eq!(config.jobs, 3);
        assert!(config.mirrors.apt.is_empty());
        assert_eq!(config.registries.npm, None);
    }

    #[test]
    fn config_bad_env_values_name_the_variable_and_the_form() {
        let sources = ConfigSources::new()
            .with_env("EM_JOBS", "0")
            .with_env("EM_LOCK_TIMEOUT", "10")
            .with_env("EM_SUDO", "always")
            .with_env("EM_CIRCUIT_THRESHOLD", "many")
            .with_env(
                "EM_MIRRORS_NPM",
                "https://ok.example.org/,ftp://bad.example.org/",
            )
            .with_env("EM_REGISTRIES_PIP", "pypi.example.org");
        let errors = Config::load(&sources).expect_err("bad values");
        let rendered = render_all(&errors);
        assert_eq!(errors.len(), 6, "{rendered}");
        assert!(errors.iter().all(|d| d.location.is_none()));
        assert_eq!(
            errors[0].to_string(),
            "error: `EM_JOBS` is not a whole number of at least 1: \"0\"\n  \
             = hint: EM_JOBS takes a whole number of at least 1, e.g. EM_JOBS=8"
        );
        assert!(
            rendered.contains("`EM_LOCK_TIMEOUT` is not a duration: \"10\""),
            "{rendered}"
        );
        assert!(rendered.contains("EM_LOCK_TIMEOUT=10m"), "{rendered}");
        assert!(
            rendered.contains("EM_SUDO takes auto or never"),
            "{rendered}"
        );
        assert!(
            rendered.contains("`EM_CIRCUIT_THRESHOLD` is not a whole number"),
            "{rendered}"
        );
        assert!(
            rendered.contains("\"ftp://bad.example.org/\""),
            "{rendered}"
        );
        assert!(rendered.contains("EM_MIRRORS_NPM takes http(s) URLs separated by commas"));
        assert!(
            rendered.contains("EM_REGISTRIES_PIP takes an http(s) URL"),
            "{rendered}"
        );
    }

    #[test]
    fn config_unknown_key_is_located_with_a_hint() {
        let errors = errors_of("jobs = 4\n\n[circuit]\nthreshold = 3\n  colldown = \"5m\"\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(at(&errors[0]), (5, 3));
        let path = errors[0]
            .location
            .as_ref()
            .expect("located")
            .file
            .display()
            .to_string();
        assert_eq!(
            errors[0].to_string(),
            format!(
                "error: unknown key `colldown` in [circuit]\n --> {path}:5:3\n  |\n5 |   colldown = \"5m\"\n  |   ^^^^^^^^\n  = hint: did you mean `cooldown`? [circuit] takes threshold, cooldown"
            )
        );
        let top = errors_of("job = 8\n");
        assert_eq!(at(&top[0]), (1, 1));
        assert_eq!(top[0].message, "unknown key `job` in the configuration");
        let rest = TOP_HINT
            .strip_prefix("the configuration")
            .expect("TOP_HINT");
        let guess = format!("did you mean `jobs`? The configuration{rest}");
        assert_eq!(top[0].hint.as_deref(), Some(guess.as_str()));
    }

    #[test]
    fn config_retry_budget_is_read_and_checked() {
        assert_eq!(
            Config::default().retry_budget,
            RetryBudgetSettings {
                enabled: true,
                ratio: 0.2,
                max_tokens: 10.0
            }
        );
        let config = load_text("[retry_budget]\nratio = 0.1\nmax_tokens = 5\n").expect("valid");
        assert_eq!(
            config.retry_budget,
            RetryBudgetSettings {
                enabled: true,
                ratio: 0.1,
                max_tokens: 5.0
            }
        );
        let off = load_text("[retry_budget]\nenabled = false\n").expect("valid");
        assert!(!off.retry_budget.enabled);
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(off.retry_budget.budget(dir.path()).is_none());
        let on = config.retry_budget.budget(dir.path()).expect("on");
        assert_eq!((on.ratio(), on.max_tokens()), (0.1, 5.0));

        let errors =
            errors_of("[retry_budget]\nratio = 1.5\nmax_tokens = \"ten\"\nenabled = 1\nrate = 2\n");
        let seen: Vec<_> = errors
            .iter()
            .map(|e| (at(e), e.message.clone(), e.hint.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    (2, 9),
                    "`ratio` must be a number from 0 to 1, not 1.5".to_string(),
                    "e.g. ratio = 0.2".to_string()
                ),
                (
                    (3, 14),
                    "`max_tokens` must be a number, not a string".to_string(),
                    "e.g. max_tokens = 10".to_string()
                ),
                (
                    (4, 11),
                    "`enabled` must be true or false, not an integer".to_string(),
                    "write enabled = false to stop rationing retries".to_string()
                ),
                (
                    (5, 1),
                    "unknown key `rate` in [retry_budget]".to_string(),
                    "did you mean `ratio`? [retry_budget] takes enabled, ratio, max_tokens"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn config_reports_every_error_of_every_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = write(dir.path(), "a.toml", "sudo = \"always\"\njobz = 1\n");
        let second = write(dir.path(), "b.toml", "[apt]\nupdate_max_age = 60\n");
        let sources = ConfigSources::new()
            .with_optional_file(first)
            .with_required_file(second)
            .with_env("EM_JOBS", "x");
        let errors = Config::load(&sources).expect_err("three files' worth of errors");
        let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown sudo mode `always`",
                "unknown key `jobz` in the configuration",
                "`update_max_age` must be a duration string, not a number",
                "`EM_JOBS` is not a whole number of at least 1: \"x\"",
            ]
        );
    }

    #[test]
    fn config_bad_duration() {
        let errors = errors_of("lock_timeout = \"10 minutez\"\n[circuit]\ncooldown = \"300\"\n");
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].message,
            "`lock_timeout` is not a duration: \"10 minutez\""
        );
        assert_eq!(at(&errors[0]), (1, 16));
        assert_eq!(errors[1].message, "`cooldown` is not a duration: \"300\"");
        assert_eq!(errors[1].hint.as_deref(), Some("add a unit, e.g. \"300s\""));
    }

    #[test]
    fn config_bad_policy_uses_the_manifest_retry_checks() {
        let errors = errors_of("[policy.apt]\nattempts = 0\n");
        assert_eq!(errors.len(), 1, "{}", render_all(&errors));
        assert_eq!(
            errors[0].message,
            "bad retry policy: attempts must be at least 1 (1 = no retry)"
        );
        assert_eq!(at(&errors[0]), (2, 12));

        let errors = errors_of("[policy.npm]\natempts = 3\nbackoff = \"exponentail\"\n");
        let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown key `atempts` in a retry policy",
                "unknown backoff `exponentail`"
            ]
        );
        assert!(
            errors[0]
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("did you mean `attempts`?")
        );

        let errors = errors_of("[policy.apk]\nattempts = 3\n[policy]\nrun = 5\n");
        let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
        assert!(
            messages.contains(&"unknown adapter `apk` in [policy]"),
            "{messages:?}"
        );
        assert!(
            messages.contains(&"`policy.run` must be a table, not an integer"),
            "{messages:?}"
        );
    }

    #[test]
    fn config_policy_checked_over_the_adapter_default_and_the_merge() {
        // Fine over the generic default (first delay 1s), not over apt's (2s).
        let errors = errors_of("[policy.apt]\nmax = \"1500ms\"\n");
        assert_eq!(errors.len(), 1, "{}", render_all(&errors));
        assert!(
            errors[0]
                .message
                .starts_with("bad retry policy for apt: max delay")
        );
        assert_eq!(at(&errors[0]), (2, 1));

        // Each file is fine alone; together the cap is below the first delay.
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = write(dir.path(), "etc.toml", "[policy.pip]\ndelay = \"20s\"\n");
        let user = write(dir.path(), "user.toml", "[policy.pip]\nmax = \"10s\"\n");
        let sources = ConfigSources::new()
            .with_optional_file(etc)
            .with_optional_file(&user);
        let errors = Config::load(&sources).expect_err("merged policy is wrong");
        assert_eq!(errors.len(), 1);
        let loc = errors[0].location.as_ref().expect("located");
        assert_eq!((loc.file.as_path(), loc.line), (user.as_path(), 2));
    }

    #[test]
    fn config_missing_cli_file_is_an_error_and_missing_standard_files_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.toml");
        let errors = Config::load(&ConfigSources::new().with_required_file(&missing))
            .expect_err("--config must exist");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].message,
            format!("configuration file `{}` does not exist", missing.display())
        );
        assert_eq!(
            errors[0].hint.as_deref(),
            Some("check the path given to --config")
        );
        assert_eq!(
            Config::load(&ConfigSources::new().with_optional_file(&missing)),
            Ok(Config::default())
        );
    }

    #[test]
    fn config_syntax_and_type_errors() {
        let errors = errors_of("jobs = \n");
        assert!(errors[0].message.starts_with("invalid TOML"), "{errors:?}");
        let errors = errors_of(
            "jobs = \"4\"\nsudo = true\n[mirrors]\napt = \"http://m.example.org/debian\"\nnpm = [\"ftp://x\"]\n",
        );
        let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`jobs` must be a whole number, not a string",
                "`sudo` must be a string, not a boolean",
                "`apt` must be a list of URLs, not a string",
                "a mirror of npm is not an http(s) URL: \"ftp://x\"",
            ]
        );
        assert_eq!(
            errors[2].hint.as_deref(),
            Some("write a list: apt = [\"http://m.example.org/debian\"]")
        );
    }

    #[test]
    fn config_standard_sources() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let s = ConfigSources::from_environment(
            Some(Path::new("my.toml")),
            env(&[
                ("XDG_CONFIG_HOME", "/xdg"),
                ("HOME", "/home/u"),
                ("EM_JOBS", "3"),
                ("PATH", "/bin"),
            ]),
        );
        let files: Vec<_> = s
            .files
            .iter()
            .map(|f| (f.path.clone(), f.is_required))
            .collect();
        assert_eq!(
            files,
            [
                (PathBuf::from(SYSTEM_FILE), false),
                (PathBuf::from("/xdg/extension-manager/config.toml"), false),
                (PathBuf::from("my.toml"), true),
            ]
        );
        assert_eq!(s.env.keys().collect::<Vec<_>>(), ["EM_JOBS"]);

        let s = ConfigSources::from_environment(
            None,
            env(&[("XDG_CONFIG_HOME", "relative"), ("HOME", "/home/u")]),
        );
        assert_eq!(
            s.files[1].path,
            PathBuf::from("/home/u/.config/extension-manager/config.toml")
        );
        let s = ConfigSources::from_environment(None, env(&[]));
        assert_eq!(s.files.len(), 1);
    }

    /// Each `fixtures/config/invalid/NAME.toml`, given as `--config`, is rejected with the
    /// diagnostics of `NAME.expected`. `UPDATE_EXPECT=1` rewrites them.
    #[test]
    fn config_invalid_fixtures() {
        let dir = "../../fixtures/config/invalid";
        let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("fixtures/config/invalid")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        cases.sort();
        assert!(cases.len() >= 5, "fixtures missing: {cases:?}");
        let update = std::env::var_os("UPDATE_EXPECT").is_some();
        for case in cases {
            let errors = Config::load(&ConfigSources::new().with_required_file(&case))
                .expect_err("an invalid fixture must not load");
            let rendered = render_all(&errors).replace("../../", "") + "\n";
            let expected_path = case.with_extension("expected");
            if update {
                std::fs::write(&expected_path, &rendered).expect("write expected");
                continue;
            }
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            assert_eq!(
                rendered,
                expected,
                "{} (run with UPDATE_EXPECT=1 to accept)",
                case.display()
            );
        }
    }
}
