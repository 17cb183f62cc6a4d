//! # em-lang: pipx, cargo install, gem and go install as adapters
//!
//! The adapter of extension-manager for the language package managers that install
//! developer tools into a machine rather than into a project: `pipx install black`,
//! `cargo install ripgrep@14.1.0`, `gem install bundler`, `go install
//! golang.org/x/tools/gopls@v0.16.2`. For each tool it knows the argument vector (never a
//! shell string; every package checked by [`LangPackage::parse`] first), how its failures
//! read (transient, permanent with a hint, repairable), what is installed (so that an
//! install can record only what it added) and how to take one package back out. Retrying
//! is [`em_exec::Runner`]'s job under an `em_retry` policy.
//!
//! One crate, one module per tool (`pipx`, `cargo`, `gem`, `go`): the four share every
//! shape (install a list, list what is there, uninstall by name) and differ only in words;
//! see docs/decisions.md, "One em-lang crate for four tools".
//!
//! What it is not: a project installer (`bundle install`, `cargo build`, `go get` into a
//! go.mod), or a registry client.
//!
//! ## Classification
//!
//! | tool | transient | repairable | permanent |
//! |---|---|---|---|
//! | pipx | pip's ReadTimeoutError, ConnectTimeoutError, Connection broken, IncompleteRead, NewConnectionError, name resolution, HTTP 5xx/408/429; `No matching distribution` with `(from versions: none)` | `package X has invalid interpreter`, `.../venvs/X/bin/python: No module named pip`, `bad interpreter: .../venvs/X/...`: [`LangRepair::PipxReinstall`] (`pipx reinstall X`) | `No matching distribution` with a versions list; `Invalid requirement`; `pip seemed to fail to build package`; certificate errors; Permission denied |
//! | cargo | `[6]`/`[7]`/`[28]`/`[35]`/`[52]`/`[55]`/`[56]` curl errors, `got 5xx/408/429`, a locked registry index (`The index is locked`, `Blocking waiting for file lock`: wait) | | ``could not find `X` in registry``, `failed to select a version`, ``failed to compile `X` `` (hint: -dev packages, `rustup update`), `SSL certificate problem`, a binary that already exists |
//! | gem | `Errno::ECONNRESET`/`ECONNREFUSED`/`ETIMEDOUT`, `Net::ReadTimeout`/`OpenTimeout`, `SocketError`, `bad response ... 5xx/408/429` | | `Could not find a valid gem` without a network cause, `certificate verify failed`, `Failed to build gem native extension`, no write permission |
//! | go | `connection reset by peer`, `connection refused`, `i/o timeout`, `TLS handshake timeout`, `no such host`, `unexpected EOF`, `reading URL: 5xx/408/429` | | `unknown revision`, `invalid version`, `no matching versions for query`, `404 Not Found`, `410 Gone`, `is not a main package`, `requires go >=`, `x509: certificate ...`, compiler errors `file.go:L:C:` |
//!
//! Anything else is transient (SPEC 3: unclassified errors retry, within the policy).
//! Each tool's own retries are cut to one quick retry inside an attempt (pip's
//! `PIP_RETRIES=1` under pipx, `CARGO_NET_RETRY=1`), so that ours are the visible ones.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), em_exec::ToolError> {
//! use std::sync::Arc;
//! use em_exec::Runner;
//! use em_lang::{Lang, LangConfig, LangPackage, LangTool};
//! use em_retry::RetryPolicy;
//!
//! let pipx = Arc::new(Lang::new(LangTool::Pipx, LangConfig::default())?);
//! let black = LangPackage::parse(LangTool::Pipx, "black")
//!     .map_err(|e| em_exec::ToolError::permanent("pipx install", e, None))?;
//! let before = pipx.installed().await?;
//! pipx.install(&Runner::new(RetryPolicy::new(4)), &[black]).await?;
//! let added: Vec<String> = pipx.installed().await?.difference(&before).cloned().collect();
//! pipx.uninstall(&Runner::new(RetryPolicy::new(2)), &added).await?;
//! # Ok(()) }
//! ```

mod cargo;
mod gem;
mod go;
mod package;
mod pipx;

pub use package::{LangPackage, LangTool};

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use em_exec::{Adapter, Cmd, OutputMode, Runner, ToolError, ToolFailure, Verdict};
use em_retry::Operation;

/// A repair a language tool's failure calls for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LangRepair {
    /// `pipx reinstall NAME`: rebuilds a venv whose interpreter or pip is gone (a Python
    /// upgraded underneath it), keeping what was installed in it.
    PipxReinstall(String),
}

impl LangRepair {
    /// A short stable name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            LangRepair::PipxReinstall(_) => "pipx-reinstall",
        }
    }
}

impl fmt::Display for LangRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LangRepair::PipxReinstall(name) => write!(f, "pipx reinstall {name}"),
        }
    }
}

/// How the tools are run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LangConfig {
    /// pipx: the package index pip uses (`PIP_INDEX_URL`); `None`: pip's own setting.
    pub index_url: Option<String>,
    /// Extra environment for every command (`PIPX_HOME`, `CARGO_HOME`, `GEM_HOME`, `GOBIN`,
    /// proxies).
    pub env: Vec<(String, String)>,
    /// Run every command as this user (a `scope = "user"` extension's tools go into its
    /// user's home: pipx, cargo, gem and go pick their directories from `HOME`).
    pub run_as: Option<em_exec::RunAs>,
}

/// One language tool. Hold it in an [`Arc`]: operations hand it to the [`Runner`].
#[derive(Debug)]
pub struct Lang {
    tool: LangTool,
    program: PathBuf,
    config: LangConfig,
}

// `ToolError` is em-exec's error type, shared by every adapter (see em-npm).
#[allow(clippy::result_large_err)]
impl Lang {
    /// Finds the tool's program on `PATH`.
    pub fn new(tool: LangTool, config: LangConfig) -> Result<Self, ToolError> {
        let program = em_exec::find_tool(tool.key(), tool.provided_by())?;
        Ok(Lang::with_tool(tool, config, program))
    }

    /// Uses the program at this path (tests point it at a fake).
    pub fn with_tool(tool: LangTool, config: LangConfig, program: PathBuf) -> Self {
        Lang {
            tool,
            program,
            config,
        }
    }

    /// The tool.
    pub fn tool(&self) -> LangTool {
        self.tool
    }

    /// Installs `packages` (all of this tool), retried under the runner's policy.
    ///
    /// Runs `pipx install P...`, `cargo install --locked P...`, `gem install
    /// --no-document --conservative P...` or `go install P...`.
    pub async fn install(
        self: &Arc<Self>,
        runner: &Runner,
        packages: &[LangPackage],
    ) -> Result<(), ToolError> {
        let words: Vec<&str> = packages.iter().map(LangPackage::spec).collect();
        let operation = Operation::new(self.tool.key(), format!("install {}", words.join(" ")));
        if let Some(p) = packages.iter().find(|p| p.tool() != self.tool) {
            return Err(ToolError::permanent(
                operation.to_string(),
                format!("`{p}` is a {} package, not a {} one", p.tool(), self.tool),
                None,
            ));
        }
        if packages.is_empty() {
            return Err(ToolError::permanent(
                operation.to_string(),
                "no package to install",
                None,
            ));
        }
        // pipx before 1.2 (Debian bookworm's is 1.1) takes one package per `pipx install`
        // ("unrecognized arguments" for a second): one run, with its retries, per package.
        if self.tool == LangTool::Pipx && packages.len() > 1 {
            for p in packages {
                let one = std::slice::from_ref(p);
                let operation = Operation::new(self.tool.key(), format!("install {}", p.spec()));
                let args = pipx::install_args(one);
                runner
                    .run(self, operation, None, |_| self.command(&args))
                    .await?;
            }
            return Ok(());
        }
        let args = match self.tool {
            LangTool::Pipx => pipx::install_args(packages),
            LangTool::Cargo => cargo::install_args(packages),
            LangTool::Gem => gem::install_args(packages),
            LangTool::Go => go::install_args(packages),
        };
        runner
            .run(self, operation, None, |_| self.command(&args))
            .await
            .map(|_| ())
    }

    /// What is installed, by the names [`LangPackage::name`] gives: `pipx list --json`,
    /// `cargo install --list`, `gem list --local`, the files in go's GOBIN. Runs once
    /// (local, nothing to retry). A GOBIN that does not exist yet holds nothing.
    pub async fn installed(&self) -> Result<BTreeSet<String>, ToolError> {
        Ok(self.installed_versions().await?.into_keys().collect())
    }

    /// [`Lang::installed`] with the version each list shows (`None`: it shows none, as
    /// for go's binaries): pipx's main package version, cargo's `vX.Y.Z`, gem's newest.
    pub async fn installed_versions(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Option<String>>, ToolError> {
        let args: &[&str] = match self.tool {
            LangTool::Pipx => &["list", "--json"],
            LangTool::Cargo => &["install", "--list"],
            LangTool::Gem => &["list", "--local"],
            LangTool::Go => {
                let bin = self.go_bin().await?;
                return list_dir(&bin)
                    .map(|names| names.into_iter().map(|n| (n, None)).collect())
                    .map_err(|e| {
                        ToolError::permanent("go install", format!("{}: {e}", bin.display()), None)
                    });
            }
        };
        let operation = format!("{} {}", self.tool, args.join(" "));
        let cmd = self.command(args).output(OutputMode::Capture);
        let out = cmd
            .run()
            .await
            .map_err(|e| ToolError::permanent(operation.clone(), e.to_string(), None))?;
        if !out.success() {
            let failure = ToolFailure::from_output(&cmd, &out);
            let mut err = ToolError::permanent(
                operation,
                format!("exited with {}: {}", out.code(), failure.tail(1).join("")),
                None,
            );
            err.attempts = 1;
            err.last = Some(failure);
            return Err(err);
        }
        let text = out.stdout_text();
        match self.tool {
            LangTool::Pipx => {
                pipx::parse_list(&text).map_err(|why| ToolError::permanent(operation, why, None))
            }
            LangTool::Cargo => Ok(cargo::parse_list(&text)),
            _ => Ok(gem::parse_list(&text)),
        }
    }

    /// Takes out the packages called `names` (as [`Lang::installed`] lists them):
    /// `pipx uninstall NAME` each, `cargo uninstall NAME...`, `gem uninstall -a -x -I
    /// NAME...`, or deleting `GOBIN/NAME` (go has no uninstall). Local: no circuit.
    pub async fn uninstall(
        self: &Arc<Self>,
        runner: &Runner,
        names: &[String],
    ) -> Result<(), ToolError> {
        let operation = Operation::new(self.tool.key(), format!("uninstall {}", names.join(" ")));
        if names.is_empty() {
            return Ok(());
        }
        for name in names {
            em_exec::check_argument(name)
                .map_err(|e| ToolError::permanent(operation.to_string(), e, None))?;
        }
        let args: Vec<Vec<OsString>> = match self.tool {
            // pipx uninstall takes one package.
            LangTool::Pipx => names
                .iter()
                .map(|n| vec!["uninstall".into(), n.into()])
                .collect(),
            LangTool::Cargo => {
                vec![
                    std::iter::once("uninstall".into())
                        .chain(names.iter().map(OsString::from))
                        .collect(),
                ]
            }
            LangTool::Gem => vec![gem::uninstall_args(names)],
            LangTool::Go => {
                // A binary's name: one path component, never a way out of GOBIN.
                if let Some(bad) = names
                    .iter()
                    .find(|n| n.contains('/') || n.as_str() == "." || n.as_str() == "..")
                {
                    return Err(ToolError::permanent(
                        operation.to_string(),
                        format!("`{bad}` is not the name of a binary in GOBIN"),
                        None,
                    ));
                }
                let bin = self.go_bin().await?;
                for name in names {
                    let path = bin.join(name);
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(ToolError::permanent(
                                operation.to_string(),
                                format!("cannot delete {}: {e}", path.display()),
                                None,
                            ));
                        }
                    }
                }
                return Ok(());
            }
        };
        for a in args {
            let op = Operation::new(
                self.tool.key(),
                a.iter()
                    .map(|w| w.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            runner.run(self, op, None, |_| self.command(&a)).await?;
        }
        Ok(())
    }

    /// Where `go install` writes binaries: `go env GOBIN`, else the first `GOPATH` entry's
    /// `bin`.
    pub async fn go_bin(&self) -> Result<PathBuf, ToolError> {
        let mut cmd = self
            .command(["env", "GOBIN", "GOPATH"])
            .output(OutputMode::Capture);
        cmd = cmd.env_remove("GOFLAGS");
        let out = cmd
            .run()
            .await
            .map_err(|e| ToolError::permanent("go env", e.to_string(), None))?;
        let text = out.stdout_text();
        let mut lines = text.lines();
        let gobin = lines.next().unwrap_or("").trim().to_string();
        let gopath = lines.next().unwrap_or("").trim().to_string();
        let dir = if !gobin.is_empty() {
            PathBuf::from(gobin)
        } else {
            let first = gopath.split(':').next().unwrap_or("");
            PathBuf::from(first).join("bin")
        };
        if !out.success() || !dir.is_absolute() {
            return Err(ToolError::permanent(
                "go env GOBIN GOPATH",
                format!(
                    "go did not say where it installs binaries (exit {})",
                    out.code()
                ),
                Some("set GOBIN to an absolute directory".into()),
            ));
        }
        Ok(dir)
    }

    /// pipx's home and the directory it links apps into, as pipx itself says for this
    /// configuration (`pipx environment --value PIPX_HOME`, then `PIPX_BIN_DIR`): its
    /// defaults differ by version (pipx 1.1: `~/.local/pipx`; later: `~/.local/share/pipx`
    /// unless the old one exists), so they are asked, not guessed. Asking creates the
    /// home when it is missing, as every pipx command does.
    pub async fn pipx_dirs(&self) -> Result<(PathBuf, PathBuf), ToolError> {
        let mut dirs = Vec::new();
        for key in ["PIPX_HOME", "PIPX_BIN_DIR"] {
            let operation = format!("pipx environment --value {key}");
            let cmd = self
                .command(["environment", "--value", key])
                .output(OutputMode::Capture);
            let out = cmd
                .run()
                .await
                .map_err(|e| ToolError::permanent(operation.clone(), e.to_string(), None))?;
            let dir = PathBuf::from(out.stdout_text().trim());
            if !out.success() || !dir.is_absolute() {
                return Err(ToolError::permanent(
                    operation,
                    format!("pipx did not say where {key} is (exit {})", out.code()),
                    None,
                ));
            }
            dirs.push(dir);
        }
        let bin = dirs.pop().unwrap_or_default();
        let home = dirs.pop().unwrap_or_default();
        Ok((home, bin))
    }

    /// `<program> <args>` with the tool's environment and ours.
    fn command<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Cmd::tool(&self.program).args(args).stdin_null();
        let env = match self.tool {
            LangTool::Pipx => pipx::env(&self.config),
            LangTool::Cargo => cargo::env(),
            LangTool::Gem | LangTool::Go => Vec::new(),
        };
        if let Some(user) = &self.config.run_as {
            cmd = cmd.as_user(user);
        }
        for (k, v) in env.iter().chain(&self.config.env) {
            cmd = cmd.env(k, v);
        }
        cmd
    }
}

/// The regular files (and symlinks) in `dir`; none when it does not exist.
fn list_dir(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e),
    };
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

/// Reads a failed run of `tool`.
///
/// ```
/// use em_exec::{ToolFailure, Verdict};
/// use em_lang::{LangTool, classify};
///
/// let f = ToolFailure::new("cargo install ripgrep", 101, "",
///     "error: could not find `ripgrepp` in registry `crates-io` with version `*`\n");
/// assert_eq!(classify(LangTool::Cargo, &f).class(), "permanent");
/// ```
pub fn classify(tool: LangTool, failure: &ToolFailure) -> Verdict<LangRepair> {
    let text = failure.text();
    match tool {
        LangTool::Pipx => pipx::classify(&text),
        LangTool::Cargo => cargo::classify(&text),
        LangTool::Gem => gem::classify(&text),
        LangTool::Go => go::classify(&text),
    }
}

impl Adapter for Lang {
    type Repair = LangRepair;

    fn name(&self) -> &'static str {
        self.tool.key()
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<LangRepair> {
        classify(self.tool, failure)
    }

    async fn repair(&self, repair: LangRepair) -> Result<(), String> {
        match repair {
            LangRepair::PipxReinstall(name) => {
                em_exec::check_argument(&name)?;
                let cmd = self
                    .command(["reinstall", name.as_str()])
                    .output(OutputMode::Capture);
                let out = cmd.run().await.map_err(|e| e.to_string())?;
                if out.success() {
                    Ok(())
                } else {
                    let failure = ToolFailure::from_output(&cmd, &out);
                    Err(format!(
                        "`pipx reinstall {name}` exited {}: {}",
                        out.code(),
                        failure.tail(1).join("")
                    ))
                }
            }
        }
    }
}

pub(crate) fn contains_any(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

/// An HTTP status pip prints: `HTTP error 503`, `503 Server Error`, `status=503`, `503
/// Service Unavailable`, `429 Too Many Requests`.
pub(crate) fn http_status(text: &str) -> Option<u16> {
    for line in text.lines() {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .collect();
        for (i, w) in words.iter().enumerate() {
            let Ok(code) = w.trim_matches(|c: char| !c.is_ascii_digit()).parse::<u16>() else {
                continue;
            };
            if !(400..600).contains(&code) || w.len() > 5 {
                continue;
            }
            let next = words.get(i + 1).copied().unwrap_or("");
            let prev = if i > 0 { words[i - 1] } else { "" };
            if prev.eq_ignore_ascii_case("error")
                || prev == "status"
                || [
                    "Server", "Service", "Too", "Client", "Bad", "Gateway", "Request",
                ]
                .contains(&next)
            {
                return Some(code);
            }
        }
    }
    None
}
