//! `doctor`: is this machine ready for installs, and if not, why not: the tools and
//! their versions, privileges (root, or `sudo -n true` that works), dpkg's state, the age of apt's lists, free disk, the state
//! directory (interrupted installs), open circuits, and whether each registry the
//! adapters would use answers a TCP connection.
//!
//! Every check runs (none stops the others), concurrently where it waits on the network
//! or a process. Each finding is `ok`, `warn` (works, but worth knowing) or `fail`
//! (installs through that path will fail), with a hint for the last two. Exit 1 when
//! anything failed, else 0. It changes nothing on the machine.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use em_exec::{Cmd, OutputMode};
use serde::Serialize;

use crate::config::{Config, SudoMode};
use crate::error::CliError;
use crate::exit;
use crate::output::OutputFormat;
use crate::state::{ExtensionStatus, StateDir};

/// How long one network check may take (resolution + connection).
const NETWORK_LIMIT: Duration = Duration::from_secs(5);

/// How long `sudo -n true` may take (it never prompts; a slow host lookup may delay it).
const SUDO_LIMIT: Duration = Duration::from_secs(10);

/// `doctor`'s arguments.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Skip the registry reachability checks (no network at all)
    #[arg(long)]
    offline: bool,
}

/// How a check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// What depends on it will fail.
    Fail,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of check: `tool`, `privileges`, `dpkg`, `apt`, `disk`, `state`,
    /// `circuit`, `registry`.
    pub check: &'static str,
    /// How it went.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    fn warn(check: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding {
            status: Status::Fail,
            ..Finding::warn(check, detail, hint)
        }
    }
}

/// The tools the adapters drive: (program, version argument, who provides it).
const TOOLS: &[(&str, &str, &str)] = &[
    ("apt-get", "--version", "Debian's apt package"),
    ("dpkg", "--version", "Debian's dpkg package"),
    ("curl", "--version", "the curl package"),
    ("wget", "--version", "the wget package"),
    ("python3", "--version", "the python3 package"),
    (
        "node",
        "--version",
        "the nodejs extension (or Debian's nodejs)",
    ),
    ("npm", "--version", "the nodejs extension (or Debian's npm)"),
];

/// `doctor`.
pub async fn doctor(
    config: &Config,
    state_dir: &StateDir,
    args: &DoctorArgs,
    format: OutputFormat,
) -> Result<u8, CliError> {
    let (privileges, tools, dpkg, disk, registries) = tokio::join!(
        check_privileges(config),
        check_tools(),
        check_dpkg(),
        check_disk(state_dir.path()),
        async {
            if args.offline {
                Vec::new()
            } else {
                check_registries(config).await
            }
        },
    );
    let mut findings = vec![privileges];
    findings.extend(tools);
    findings.extend(dpkg);
    findings.push(check_apt_lists(config));
    findings.extend(disk);
    findings.extend(check_state(state_dir));
    findings.extend(check_circuits(&state_dir.circuits_dir(), config));
    findings.extend(registries);
    print(&findings, format);
    Ok(if findings.iter().any(|f| f.status == Status::Fail) {
        exit::FAILURE
    } else {
        exit::OK
    })
}

fn print(findings: &[Finding], format: OutputFormat) {
    if format == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
                .unwrap_or_default()
        );
        return;
    }
    for f in findings {
        let status = match f.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{status:<5} {:<10} {}", f.check, f.detail);
        if let Some(hint) = &f.hint {
            println!("{:<16} hint: {hint}", "");
        }
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    println!(
        "\n{} checks: {} ok, {} warnings, {} failed",
        findings.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    );
}

/// Root, or `sudo -n` that works (the `sudo` mode of the configuration): apt steps, global
/// npm installs and writes under /etc need one of them, and `sudo -n` never prompts, so a
/// user without passwordless rights fails every such step.
async fn check_privileges(config: &Config) -> Finding {
    const CHECK: &str = "privileges";
    const AS_ROOT: &str = "run as root (in a Dockerfile, before any USER line)";
    if em_exec::is_root() {
        return Finding::ok(CHECK, "running as root");
    }
    if config.sudo == SudoMode::Never {
        return Finding::fail(
            CHECK,
            "not root, and sudo = \"never\" in the configuration: apt steps and global npm installs need root",
            format!(
                "{AS_ROOT}, or set sudo = \"auto\" and give this user passwordless sudo (NOPASSWD)"
            ),
        );
    }
    if which::which("sudo").is_err() {
        return Finding::fail(
            CHECK,
            "not root, and no sudo: apt steps, global npm installs and /etc writes cannot run",
            format!("{AS_ROOT}, or install sudo and give this user passwordless rights (NOPASSWD)"),
        );
    }
    match capture(&["sudo", "-n", "true"], SUDO_LIMIT).await {
        Some(out) if out.success() => Finding::ok(
            CHECK,
            "not root: `sudo -n true` works (apt steps and global npm installs go through it)",
        ),
        Some(out) => {
            let text = format!("{}{}", out.stderr_text(), out.stdout_text());
            let said = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map_or_else(|| "it exited non-zero".to_string(), str::to_string);
            Finding::fail(
                CHECK,
                format!(
                    "not root, and `sudo -n true` fails ({said}): apt steps and global npm installs will fail"
                ),
                format!(
                    "give this user passwordless sudo (a NOPASSWD line in /etc/sudoers.d/), or {AS_ROOT}; with sudo = \"never\" in the configuration, root is required"
                ),
            )
        }
        None => Finding::fail(
            CHECK,
            format!(
                "not root, and `sudo -n true` did not finish within {}",
                em_retry::fmt_duration(SUDO_LIMIT)
            ),
            format!("check `sudo -n true` by hand, or {AS_ROOT}"),
        ),
    }
}

/// Runs `argv` capturing its output, within `limit`; `None` when it could not run.
async fn capture(argv: &[&str], limit: Duration) -> Option<em_exec::Output> {
    let (program, args) = argv.split_first()?;
    let cmd = Cmd::tool(program)
        .args(args.iter().copied())
        .output(OutputMode::Capture)
        .stdin_null();
    tokio::time::timeout(limit, cmd.run()).await.ok()?.ok()
}

async fn check_tools() -> Vec<Finding> {
    let checks = TOOLS.iter().map(|(tool, flag, provided_by)| async move {
        let Ok(path) = which::which(tool) else {
            return Finding::warn(
                "tool",
                format!("{tool}: not found on PATH"),
                format!("steps that need it fail; it is provided by {provided_by}"),
            );
        };
        let version = capture(&[tool, flag], Duration::from_secs(10))
            .await
            .map(|out| {
                let text = format!("{}{}", out.stdout_text(), out.stderr_text());
                let line = text.lines().next().unwrap_or_default().trim();
                // `curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/...`: the part before the
                // build details.
                line.split(" (").next().unwrap_or(line).to_string()
            })
            .unwrap_or_default();
        Finding::ok(
            "tool",
            format!(
                "{tool}: {} ({})",
                if version.is_empty() {
                    "version unknown"
                } else {
                    &version
                },
                path.display()
            ),
        )
    });
    let mut findings = join_all(checks).await;
    // pip is a module of python3, not a program.
    if which::which("python3").is_ok() {
        findings.push(
            match capture(&["python3", "-m", "pip", "--version"], Duration::from_secs(10)).await {
                Some(out) if out.success() => Finding::ok(
                    "tool",
                    format!(
                        "pip: {}",
                        out.stdout_text().lines().next().unwrap_or_default().trim()
                    ),
                ),
                _ => Finding::warn(
                    "tool",
                    "pip: `python3 -m pip` does not run",
                    "pip steps without a venv fail; install python3-pip (the python extension does)",
                ),
            },
        );
    }
    findings
}

/// Runs the futures concurrently (as tasks), returning their outputs in their order.
async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut done = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(pair) = joined {
            done.push(pair);
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, v)| v).collect()
}

async fn check_dpkg() -> Vec<Finding> {
    if which::which("dpkg").is_err() {
        return Vec::new();
    }
    match capture(&["dpkg", "--audit"], Duration::from_secs(30)).await {
        Some(out) if out.stdout_text().trim().is_empty() => {
            vec![Finding::ok(
                "dpkg",
                "`dpkg --audit`: nothing half-installed",
            )]
        }
        Some(out) => {
            let first = out
                .stdout_text()
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default()
                .trim()
                .to_string();
            vec![Finding::warn(
                "dpkg",
                format!("`dpkg --audit` reports unfinished packages: {first}"),
                "the next apt step repairs it (dpkg --configure -a); or run that now",
            )]
        }
        None => vec![Finding::warn(
            "dpkg",
            "`dpkg --audit` did not run",
            "check that dpkg works: `dpkg --audit`",
        )],
    }
}

/// The newest file under apt's lists directory, and how old it is against
/// `apt.update_max_age`.
fn check_apt_lists(config: &Config) -> Finding {
    let dirs = em_apt::AptDirs::from_apt_config(&[]);
    let newest = std::fs::read_dir(&dirs.lists).ok().and_then(|rd| {
        rd.filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.file_name() != "lock")
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max()
    });
    match newest {
        None => Finding::warn(
            "apt",
            format!("no package lists under {}", dirs.lists.display()),
            "the first apt step runs `apt-get update` first (expected in a fresh container)",
        ),
        Some(time) => {
            let age = SystemTime::now()
                .duration_since(time)
                .unwrap_or(Duration::ZERO);
            let age_text = humantime::format_duration(Duration::from_secs(age.as_secs()));
            if age > config.apt_update_max_age {
                Finding::ok(
                    "apt",
                    format!(
                        "package lists are {age_text} old (older than apt.update_max_age: the next apt step updates them)"
                    ),
                )
            } else {
                Finding::ok("apt", format!("package lists are {age_text} old"))
            }
        }
    }
}

/// `df -Pk DIR`'s available MiB.
async fn free_mb(dir: &Path) -> Option<u64> {
    let dir = dir.to_str()?;
    let out = capture(&["df", "-Pk", dir], Duration::from_secs(10)).await?;
    crate::preflight::parse_df(&out.stdout_text())
}

async fn check_disk(state: &Path) -> Vec<Finding> {
    // The state dir may not exist yet: measure its nearest existing ancestor.
    let state_fs = state
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let (root, state_free) = tokio::join!(free_mb(Path::new("/")), free_mb(&state_fs));
    let mut findings = vec![disk_finding(Path::new("/"), root)];
    // Another filesystem (a volume for the state dir): its own line.
    if state_free != root {
        findings.push(disk_finding(&state_fs, state_free));
    }
    findings
}

fn disk_finding(dir: &Path, free: Option<u64>) -> Finding {
    match free {
        Some(mb) if mb < 512 => Finding::warn(
            "disk",
            format!("{mb} MB free under {}", dir.display()),
            "installs need room for packages and downloads: free some space",
        ),
        Some(mb) => Finding::ok("disk", format!("{mb} MB free under {}", dir.display())),
        None => Finding::warn(
            "disk",
            format!("free space under {} unknown (`df` failed)", dir.display()),
            "check `df -h`",
        ),
    }
}

fn check_state(state_dir: &StateDir) -> Vec<Finding> {
    let dir = state_dir.path();
    let state = match state_dir.load() {
        Ok(state) => state,
        Err(e) => {
            return vec![Finding::fail(
                "state",
                format!("{}: {e}", state_dir.state_path().display()),
                "move the file aside to start over (installs are re-checked by their validate steps)",
            )];
        }
    };
    let mut findings = vec![Finding::ok(
        "state",
        format!(
            "{}: {} extension(s) recorded",
            dir.display(),
            state.extensions.len()
        ),
    )];
    for (name, ext) in &state.extensions {
        match ext.status {
            ExtensionStatus::Installed => {}
            ExtensionStatus::Partial => findings.push(Finding::warn(
                "state",
                format!("{name}: an install was interrupted ({})", ext.installed_at),
                format!("`extension-manager install {name}` finishes it"),
            )),
            ExtensionStatus::Failed => findings.push(Finding::warn(
                "state",
                format!(
                    "{name}: the last install failed: {}",
                    ext.error.as_deref().unwrap_or("no reason recorded")
                ),
                format!(
                    "`extension-manager history {name}` and the log named in the last report say why"
                ),
            )),
        }
    }
    findings
}

/// Open circuits: a registry that gave up recently fails fast until its cooldown ends.
fn check_circuits(dir: &Path, config: &Config) -> Vec<Finding> {
    let store = em_retry::FileStore::new(dir);
    let keys = store.keys().unwrap_or_default();
    let breaker = crate::adapter_context::circuit_breaker(dir, &config.circuit);
    let mut findings = Vec::new();
    for key in keys {
        if let Ok(em_retry::CircuitState::Open { failures, until }) = breaker.state(&key) {
            let left = until
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            findings.push(Finding::warn(
                "circuit",
                format!(
                    "{key}: open after {failures} exhausted operation(s); fails fast for {} more",
                    humantime::format_duration(Duration::from_secs(left.as_secs()))
                ),
                format!(
                    "wait, fix the registry or use a mirror; to retry at once delete {}",
                    store.path_of(&key).display()
                ),
            ));
        }
    }
    findings
}

/// The registries the adapters would use: (who, URL).
async fn registries(config: &Config) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let dirs = em_apt::AptDirs::from_apt_config(&[]);
    if let Ok(files) = em_apt::read_sources(&dirs)
        && let Ok(primary) = em_apt::primary_archive(&files)
    {
        found.push(("apt (primary archive)".to_string(), primary));
    }
    for m in &config.mirrors.apt {
        found.push(("apt mirror".to_string(), m.clone()));
    }
    match &config.registries.npm {
        Some(r) => found.push(("npm (config)".to_string(), r.clone())),
        None if which::which("npm").is_ok() => {
            if let Some(out) = capture(&["npm", "config", "get", "registry"], NETWORK_LIMIT).await
                && out.success()
            {
                let r = out.stdout_text().trim().to_string();
                if !r.is_empty() {
                    found.push(("npm (npm's setting)".to_string(), r));
                }
            }
        }
        None => {}
    }
    for m in &config.mirrors.npm {
        found.push(("npm mirror".to_string(), m.clone()));
    }
    match &config.registries.pip {
        Some(r) => found.push(("pip (config)".to_string(), r.clone())),
        None if which::which("python3").is_ok() => {
            let index = tokio::task::spawn_blocking(|| {
                em_pip::pip_default_index(Path::new("python3"), &[])
            })
            .await
            .ok()
            .flatten();
            if let Some(index) = index {
                found.push(("pip (pip's setting)".to_string(), index));
            }
        }
        None => {}
    }
    for m in &config.mirrors.pip {
        found.push(("pip mirror".to_string(), m.clone()));
    }
    found
}

async fn check_registries(config: &Config) -> Vec<Finding> {
    let all = registries(config).await;
    let checks = all.into_iter().map(|(who, url)| async move {
        let Some((host, port)) = host_port(&url) else {
            return Finding::warn(
                "registry",
                format!("{who}: `{url}` is not an http(s) URL"),
                "check the configuration",
            );
        };
        let started = Instant::now();
        let connect = async {
            let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("{host} does not resolve ({e})"))?
                .collect();
            let first = addrs
                .first()
                .ok_or_else(|| format!("{host} resolves to no address"))?;
            tokio::net::TcpStream::connect(first)
                .await
                .map_err(|e| format!("{first}: {e}"))?;
            Ok::<(), String>(())
        };
        match tokio::time::timeout(NETWORK_LIMIT, connect).await {
            Ok(Ok(())) => Finding::ok(
                "registry",
                format!(
                    "{who}: {url} answers ({} ms to connect)",
                    started.elapsed().as_millis()
                ),
            ),
            Ok(Err(e)) => Finding::fail(
                "registry",
                format!("{who}: {url}: {e}"),
                "installs from it will fail: check DNS, proxy and firewall, or configure a mirror ([mirrors] in the config)",
            ),
            Err(_) => Finding::fail(
                "registry",
                format!(
                    "{who}: {url}: no connection within {}",
                    em_retry::fmt_duration(NETWORK_LIMIT)
                ),
                "installs from it will time out: check the network path, or configure a mirror",
            ),
        }
    });
    join_all(checks).await
}

/// The host and port of an http(s) URL (`[v6]` hosts included).
fn host_port(url: &str) -> Option<(String, u16)> {
    let parts = em_retry::url::split(url);
    let default_port = match parts.scheme? {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = parts.authority;
    if authority.is_empty() || (authority.starts_with('[') && !authority.contains(']')) {
        return None;
    }
    let port = match parts.port() {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((parts.host().to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:8080/simple/"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            host_port("https://registry.example.org"),
            Some(("registry.example.org".into(), 443))
        );
        assert_eq!(
            host_port("http://user:pw@[::1]:3128/x"),
            Some(("::1".into(), 3128))
        );
        assert_eq!(host_port("http://[::1]/"), Some(("::1".into(), 80)));
        assert_eq!(host_port("ftp://example.org/"), None);
        assert_eq!(host_port("http://:80/"), Some((String::new(), 80)));
        assert_eq!(host_port("http://example.org:x/"), None);
    }

    #[tokio::test]
    async fn join_all_keeps_the_order() {
        let out = join_all((0..5).map(|i| async move {
            tokio::time::sleep(Duration::from_millis(5 - i)).await;
            i
        }))
        .await;
        assert_eq!(out, [0, 1, 2, 3, 4]);
    }
}
