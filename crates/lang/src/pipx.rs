//! pipx: `pipx install`, `pipx list --json`, `pipx uninstall`, `pipx reinstall`.
//!
//! pipx runs pip in a venv of its own per application and, on failure, prints only what
//! it thinks relevant of pip's output: `Fatal error from pip prevented installation`,
//! then `Some possibly relevant errors from pip install:` and pip's `ERROR:` lines (pypa/pipx
//! 1.x; seen e.g. in openai/evals#1588, sparfenyuk/mcp-proxy#86). pip's own `Retrying ...`
//! warnings are in pipx's log file, not on stderr, so a registry that keeps failing shows
//! up as pip's last word: `Could not find a version that satisfies the requirement X
//! (from versions: none)`, which is also what a name that does not exist shows on an
//! index that answers 404 without a body. As for pip (docs/failures.md trap 2), `(from
//! versions: none)` alone is read as transient (the policy bounds it); a non-empty
//! versions list means the pin does not exist: permanent.

use std::collections::BTreeMap;
use std::ffi::OsString;

use em_exec::Verdict;

use crate::{LangConfig, LangPackage, LangRepair, contains_any, http_status};

/// `pipx install <packages>`.
pub(crate) fn install_args(packages: &[LangPackage]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["install".into()];
    args.extend(packages.iter().map(|p| p.argument().into()));
    args
}

/// The environment pipx passes on to pip: our index, pip's own retries cut to one, a
/// bounded network wait, no version check (a request to the public index), no colour.
pub(crate) fn env(config: &LangConfig) -> Vec<(String, String)> {
    let mut env = vec![
        ("PIP_RETRIES".to_string(), "1".to_string()),
        ("PIP_DEFAULT_TIMEOUT".to_string(), "30".to_string()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".to_string(), "1".to_string()),
        ("PIP_NO_INPUT".to_string(), "1".to_string()),
        ("USE_EMOJI".to_string(), "0".to_string()),
        ("NO_COLOR".to_string(), "1".to_string()),
    ];
    if let Some(index) = &config.index_url {
        env.push(("PIP_INDEX_URL".to_string(), index.clone()));
    }
    env
}

/// The venv names of `pipx list --json` (`{"venvs": {"black": {...}}}`), normalized,
/// with the version of each venv's main package
/// (`metadata.main_package.package_version`).
pub(crate) fn parse_list(json: &str) -> Result<BTreeMap<String, Option<String>>, String> {
    let value: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("`pipx list --json` printed no JSON: {e}"))?;
    match value.get("venvs") {
        Some(serde_json::Value::Object(venvs)) => Ok(venvs
            .iter()
            .map(|(k, v)| {
                let version = v["metadata"]["main_package"]["package_version"]
                    .as_str()
                    .map(str::to_string);
                (em_pip::normalize_name(k), version)
            })
            .collect()),
        None => Ok(BTreeMap::new()),
        Some(_) => Err("`pipx list --json`: `venvs` is not an object".into()),
    }
}

/// What pipx upgrades in its shared venv before an install, from the same index.
const SHARED_LIBRARIES: [&str; 3] = ["pip", "setuptools", "wheel"];

/// The project of pip's `No matching distribution found for NAME[==V]` line.
fn missing_project(line: &str) -> Option<&str> {
    let rest = line.split("No matching distribution found for ").nth(1)?;
    Some(project_of(rest))
}

/// The project name at the start of a requirement (`black==24.1`, `rich[jupyter]>=13`).
fn project_of(requirement: &str) -> &str {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(requirement.len());
    &requirement[..end]
}

/// Reads a failed pipx run.
pub(crate) fn classify(text: &str) -> Verdict<LangRepair> {
    // A venv whose interpreter is gone (Python upgraded underneath it: pypa/pipx#146,
    // #492) or whose pip is missing: `pipx reinstall NAME` rebuilds it.
    if let Some(name) = broken_venv(text) {
        return Verdict::Repairable(
            LangRepair::PipxReinstall(name.clone()),
            format!("the pipx venv of {name} is broken (its interpreter or pip is missing)"),
        );
    }
    if contains_any(
        text,
        &["CERTIFICATE_VERIFY_FAILED", "certificate verify failed"],
    ) {
        return Verdict::Permanent(
            "the index's TLS certificate was not accepted".into(),
            Some("a TLS-inspecting proxy needs its CA in PIP_CERT or the system store; check the clock. Verification is never turned off".into()),
        );
    }
    // argparse's usage error (an option or a second package this pipx does not know).
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("error: unrecognized arguments"))
    {
        return Verdict::Permanent(
            line.trim().to_string(),
            Some("this pipx does not take these arguments (`pipx --version`)".into()),
        );
    }
    // A library, not an app: pipx installs console scripts, and takes its venv away again.
    if let Some(rest) = text.lines().find_map(|l| {
        l.split_once("No apps associated with package ")
            .map(|(_, r)| r)
    }) {
        let name = rest.split([' ', '.']).next().unwrap_or(rest);
        return Verdict::Permanent(
            format!("{name} has no command for pipx to install (no console-script entry point)"),
            Some(
                "it is a library: install it with a `pip` step (with a `venv`), not `pipx`".into(),
            ),
        );
    }
    if let Some((line, project)) = text.lines().find_map(|l| {
        let project = missing_project(l)?;
        (!SHARED_LIBRARIES.contains(&project)).then_some((l, project))
    }) {
        // pip's own line for this project, not another's: pipx's shared-venv upgrade
        // asks the index for pip, setuptools and wheel first, and a private index
        // without them says "(from versions: none)" for those (harmless; see
        // docs/failures.md, pipx).
        let versions_none = text.lines().any(|l| {
            l.contains("(from versions: none)")
                && l.split("satisfies the requirement ")
                    .nth(1)
                    .is_some_and(|r| project_of(r) == project)
        });
        if !versions_none {
            return Verdict::Permanent(
                line.trim().trim_start_matches("ERROR: ").to_string(),
                Some(
                    "that version does not exist on the index: the error lists the ones that do"
                        .into(),
                ),
            );
        }
        return Verdict::Transient(format!(
            "{} (from versions: none: the index answered nothing, or the name is not there)",
            line.trim().trim_start_matches("ERROR: ")
        ));
    }
    if let Some(code) = http_status(text)
        && (code >= 500 || code == 429 || code == 408)
    {
        return Verdict::Transient(format!("HTTP {code} from the index"));
    }
    if let Some(signal) = [
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "Connection broken",
        "IncompleteRead",
        "NewConnectionError",
        "Connection reset by peer",
        "ConnectionResetError",
        "Temporary failure in name resolution",
        "Read timed out",
        // pip's own retries ran out (`too many 503 error responses`): pipx then shows its
        // "pip seemed to fail to build package" guess, which is not the cause.
        "Max retries exceeded",
    ]
    .iter()
    .find(|s| text.contains(*s))
    {
        return Verdict::Transient(format!("network error ({signal})"));
    }
    if contains_any(
        text,
        &["Invalid requirement", "pip seemed to fail to build package"],
    ) {
        let line = text
            .lines()
            .find(|l| contains_any(l, &["Invalid requirement", "pip seemed to fail to build"]))
            .unwrap_or("pip failed")
            .trim();
        return Verdict::Permanent(
            line.to_string(),
            Some("a package that builds from source needs its build dependencies (python3-dev, build-essential)".into()),
        );
    }
    if text.contains("Permission denied") {
        return Verdict::Permanent(
            "pipx cannot write its home or bin directory (Permission denied)".into(),
            Some("run as the user who owns PIPX_HOME, or as root with PIPX_HOME and PIPX_BIN_DIR set".into()),
        );
    }
    Verdict::Transient(last_line(text))
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("pipx failed without a message")
        .to_string()
}

/// The venv named in `package X has invalid interpreter ...`, `.../venvs/X/bin/python: No
/// module named pip`, or `bad interpreter: .../venvs/X/bin/python`.
fn broken_venv(text: &str) -> Option<String> {
    for line in text.lines() {
        if let Some((_, rest)) = line.split_once("package ")
            && let Some((name, _)) = rest.split_once(" has invalid interpreter")
        {
            return Some(em_pip::normalize_name(name.trim()));
        }
        if (line.contains("No module named pip") || line.contains("bad interpreter"))
            && let Some((_, rest)) = line.split_once("/venvs/")
            && let Some(name) = rest.split('/').next()
            && !name.is_empty()
        {
            return Some(em_pip::normalize_name(name));
        }
    }
    None
}
