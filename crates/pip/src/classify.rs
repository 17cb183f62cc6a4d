//! Reading pip's failures. pip's exit code says little (1 for nearly everything, 2 for a
//! crash *and* for an option it does not know: docs/failures.md trap 3), so the text decides.

use std::fmt;
use std::time::Duration;

use em_exec::{ToolFailure, Verdict};

/// A repair pip failures call for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PipRepair {
    /// `pip cache purge`, and every later attempt adds `--no-cache-dir`: the cache may
    /// hold the truncated or corrupt file that failed its hash (or was not a valid wheel).
    PurgeCacheNoCacheDir,
    /// Nothing to run: look again. The index page lists the project, yet pip saw no
    /// version: pip may have met an outage that the probe, a moment later, did not (a 503
    /// burst), or no release fits this Python. One more attempt tells them apart; the
    /// same answer again is permanent (the runner's repair limit).
    RecheckIndex,
}

impl PipRepair {
    /// A short stable name, for reports and the fixtures' `repair:` field.
    pub fn name(&self) -> &'static str {
        match self {
            PipRepair::PurgeCacheNoCacheDir => "pip-cache-purge-no-cache-dir",
            PipRepair::RecheckIndex => "pip-recheck-index",
        }
    }
}

impl fmt::Display for PipRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipRepair::PurgeCacheNoCacheDir => f.write_str("pip cache purge (then --no-cache-dir)"),
            PipRepair::RecheckIndex => f.write_str("another look at the index"),
        }
    }
}

/// What a GET of the index's project page (`<index>/<normalized name>/`) answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    /// 404 or 410: the index has no such project.
    NotFound,
    /// 2xx: the index lists the project.
    Found,
    /// 401, 403 or another 4xx: the index refuses.
    Denied(u16),
    /// 408, 429, 5xx (or any other status): the index is failing.
    ServerError(u16),
    /// A [`ProbeResult::ServerError`] whose answer said when to come back (`Retry-After`
    /// in seconds, at most [`em_exec::download::MAX_RETRY_AFTER`]).
    RetryAfter(u16, Duration),
    /// No HTTP answer (refused, DNS, timeout); the probe's own words.
    Unreachable(String),
}

impl ProbeResult {
    /// The result of an HTTP status.
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => ProbeResult::Found,
            404 | 410 => ProbeResult::NotFound,
            408 | 429 => ProbeResult::ServerError(status),
            400..=499 => ProbeResult::Denied(status),
            _ => ProbeResult::ServerError(status),
        }
    }
}

/// What [`classify`] knows beyond the failure itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassifyContext {
    /// The index that was probed, for the reason.
    pub index: Option<String>,
    /// The answer of the index probe, when [`ambiguous_project`] asked for one.
    pub probe: Option<ProbeResult>,
}

/// How a failure reads before any probe.
enum Reading {
    Decided(Verdict<PipRepair>),
    /// `(from versions: none)` and nothing else: pip says "not found" for an unreachable
    /// index too (docs/failures.md trap 2). The project's name.
    Ambiguous(String),
}

/// The project whose index page should be probed: `Some` only for the ambiguous
/// `(from versions: none)` without any sign of a network problem.
pub fn ambiguous_project(failure: &ToolFailure) -> Option<String> {
    match read(failure) {
        Reading::Ambiguous(project) => Some(project),
        Reading::Decided(_) => None,
    }
}

/// The index pip looked in: the first URL of `Looking in indexes:`, else the command's
/// `--index-url`. `None` when neither is there (pip's default, PyPI, prints no line) or
/// when pip redacted credentials in it (`****`).
pub fn index_in(failure: &ToolFailure) -> Option<String> {
    let text = failure.text();
    let from_line = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Looking in indexes:")
            .and_then(|urls| urls.split(',').next())
            .map(|u| u.trim().to_string())
    });
    let from_command = || {
        let mut words = failure.command.split_whitespace();
        while let Some(w) = words.next() {
            if w == "--index-url" || w == "-i" {
                return words.next().map(|u| u.trim_matches('\'').to_string());
            }
            if let Some(u) = w.strip_prefix("--index-url=") {
                return Some(u.trim_matches('\'').to_string());
            }
        }
        None
    };
    from_line
        .or_else(from_command)
        .filter(|u| !u.is_empty() && !u.contains("****"))
}

/// `h` or `h:p` of a URL.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let host = em_retry::url::authority(url);
    (!host.is_empty()).then(|| host.to_string())
}

/// The host a network error names: urllib3's `host='h', port=p`, else the index.
fn host_in(text: &str) -> Option<String> {
    if let Some((_, rest)) = text.split_once("host='") {
        let host = rest.split('\'').next().unwrap_or("");
        let port = rest
            .split_once("port=")
            .and_then(|(_, p)| {
                let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
                (!digits.is_empty()).then_some(digits)
            })
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        if !host.is_empty() {
            return Some(format!("{host}{port}"));
        }
    }
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Looking in indexes:")
            .and_then(|u| host_of(u.trim()))
    })
}

fn at_host(text: &str) -> String {
    host_in(text)
        .map(|h| format!(" at {h}"))
        .unwrap_or_default()
}

/// The requirement in `Could not find a version that satisfies the requirement X (from
/// versions: V)`, and `V`.
fn not_found(text: &str) -> Option<(String, String)> {
    let (_, rest) = text.split_once("satisfies the requirement ")?;
    let (requirement, rest) = rest.split_once(" (from versions: ")?;
    let versions = rest.split(')').next()?.trim().to_string();
    Some((requirement.trim().to_string(), versions))
}

/// The project name at the start of a requirement: `black` of `black==24.*`.
fn project_of(requirement: &str) -> String {
    requirement
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect()
}

/// The status of `HTTP error 503 while getting ...`.
fn http_error_status(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("HTTP error ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A network problem pip reported on the way (retry warnings, urllib3 exceptions,
/// `too many 503 error responses`): what it was.
fn network_signal(text: &str) -> Option<String> {
    let described = if text.contains("Connection refused") {
        "connection refused".to_string()
    } else if text.contains("Temporary failure in name resolution")
        || text.contains("Name or service not known")
        || text.contains("nodename nor servname")
        || text.contains("NameResolutionError")
    {
        "name resolution failed".to_string()
    } else if text.contains("ConnectTimeoutError") {
        "connect timed out".to_string()
    } else if text.contains("ReadTimeoutError") || text.contains("Read timed out") {
        "read timed out".to_string()
    } else if text.contains("IncompleteRead")
        || text.contains("Connection broken")
        || text.contains("ConnectionResetError")
        || text.contains("RemoteDisconnected")
        || text.contains("ProtocolError")
    {
        "connection broken mid-transfer".to_string()
    } else if let Some((_, rest)) = text.split_once("too many ") {
        let status = rest.split_whitespace().next().unwrap_or("5xx");
        format!("HTTP {status} (pip's own retries ran out)")
    } else if text.contains("NewConnectionError") {
        "could not connect".to_string()
    } else if text.contains("Max retries exceeded") {
        "max retries exceeded".to_string()
    } else if text.contains("WARNING: Retrying (Retry(") {
        "pip retried a request".to_string()
    } else {
        return None;
    };
    Some(described)
}

/// pip's reason when it did not trust a certificate (`[SSL: CERTIFICATE_VERIFY_FAILED]
/// certificate verify failed: self-signed certificate in certificate chain`): what the
/// check said. Other TLS errors (a handshake cut by the network) are not this.
fn certificate_failure(text: &str) -> Option<String> {
    if !text.contains("CERTIFICATE_VERIFY_FAILED") {
        return None;
    }
    let said = text
        .split_once("certificate verify failed: ")
        .map(|(_, rest)| rest.split(" (_ssl").next().unwrap_or(rest))
        .map(|r| {
            r.split(['\'', ')', '\n'])
                .next()
                .unwrap_or(r)
                .trim()
                .to_string()
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "certificate verify failed".into());
    Some(format!("{said} (CERTIFICATE_VERIFY_FAILED)"))
}

/// How a failure reads before any probe: the families below, tried in this order (the
/// first that matches decides, so the order is behaviour).
fn read(failure: &ToolFailure) -> Reading {
    let text = failure.text();
    let text = text.as_str();
    untrusted_index(text)
        .or_else(|| managed_python(text))
        .or_else(|| invalid_requirement(text))
        .or_else(|| missing_space_or_tools(text))
        .or_else(|| downloads(failure, text))
        .map(Reading::Decided)
        .or_else(|| resolution(text))
        .or_else(|| refused_locally(failure, text).map(Reading::Decided))
        .unwrap_or_else(|| Reading::Decided(unrecognised(failure, text)))
}

/// A permanent verdict with an optional hint.
fn permanent(reason: String, hint: Option<&str>) -> Verdict<PipRepair> {
    Verdict::Permanent(reason, hint.map(str::to_string))
}

/// pip does not trust the index: a plain-http index it ignores, or a TLS certificate that
/// failed verification.
fn untrusted_index(text: &str) -> Option<Verdict<PipRepair>> {
    if let Some((_, rest)) = text.split_once("The repository located at ")
        && text.contains("is not a trusted or secure host")
    {
        let host = rest.split_whitespace().next().unwrap_or("the index");
        return Some(permanent(
            format!("pip ignores the plain-http index on {host}: not a trusted or secure host"),
            Some(
                "use an https:// index URL; for a plain-http index you control, add PIP_TRUSTED_HOST=<host> to the adapter's environment",
            ),
        ));
    }
    let said = certificate_failure(text)?;
    Some(permanent(
        format!(
            "the TLS certificate{} is not trusted: {said}",
            host_in(text)
                .map(|h| format!(" of {h}"))
                .unwrap_or_default()
        ),
        Some(
            "pip trusts the CA bundle of PIP_CERT / `cert` in pip.conf (else its own): behind a \
             TLS-inspecting proxy, add the proxy's CA to the system store \
             (update-ca-certificates) and set PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
             or `cert` in /etc/pip.conf; check the clock for an expired certificate; never \
             --trusted-host for an https index",
        ),
    ))
}

/// This Python belongs to the system and refuses installs outside a virtual environment.
fn managed_python(text: &str) -> Option<Verdict<PipRepair>> {
    text.contains("externally-managed-environment").then(|| {
        permanent(
            "this Python is managed by the system (externally-managed-environment)".into(),
            Some(
                "install into a virtual environment: give the pip step `venv = \"/opt/<name>\"` (or `pip install --venv DIR`)",
            ),
        )
    })
}

/// pip cannot parse a requirement it was given; its own `Hint:` line, if any, is the hint.
fn invalid_requirement(text: &str) -> Option<Verdict<PipRepair>> {
    let (_, rest) = text.split_once("Invalid requirement: ")?;
    let requirement = rest.lines().next().unwrap_or("").trim();
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("Hint: "))
        .map(str::to_string);
    Some(Verdict::Permanent(
        format!("invalid requirement: {requirement}"),
        hint,
    ))
}

/// The machine lacks what pip needs: disk space, pip itself, or the venv module.
fn missing_space_or_tools(text: &str) -> Option<Verdict<PipRepair>> {
    if text.contains("No space left on device") || text.contains("[Errno 28]") {
        return Some(permanent(
            "no space left on device".into(),
            Some("free some space; `pip cache purge` empties pip's cache"),
        ));
    }
    if text.contains("No module named pip") {
        return Some(permanent(
            "this Python has no pip".into(),
            Some("install the Debian package python3-pip (the python extension), or use a venv"),
        ));
    }
    if text.contains("ensurepip is not") || text.contains("No module named venv") {
        return Some(permanent(
            "this Python cannot create virtual environments".into(),
            Some("install the Debian package python3-venv (the python extension)"),
        ));
    }
    None
}

/// A file pip fetched is bad: it fails its hash, is not a valid wheel, or the index
/// answered an HTTP error for it.
fn downloads(failure: &ToolFailure, text: &str) -> Option<Verdict<PipRepair>> {
    if text.contains("THESE PACKAGES DO NOT MATCH THE HASHES") {
        let package = text
            .lines()
            .skip_while(|l| !l.contains("THESE PACKAGES DO NOT MATCH THE HASHES"))
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
            .map(|p| format!(" of `{p}`"))
            .unwrap_or_default();
        // A truncated download shows up as a mismatch too (trap 3): purge once, fetch
        // again without the cache; the runner makes a second mismatch permanent.
        return Some(Verdict::Repairable(
            PipRepair::PurgeCacheNoCacheDir,
            format!(
                "the download{package} does not match its hash{}",
                at_host(text)
            ),
        ));
    }
    if let Some((_, rest)) = text.split_once("ERROR: Wheel '") {
        let wheel = rest.split('\'').next().unwrap_or("?");
        let reason = format!("the downloaded wheel of `{wheel}` is invalid (truncated download?)");
        // Already fetched without the cache: it is the network, not the cache.
        return Some(if failure.command.contains("--no-cache-dir") {
            Verdict::Transient(reason)
        } else {
            Verdict::Repairable(PipRepair::PurgeCacheNoCacheDir, reason)
        });
    }
    let status = http_error_status(text)?;
    let url = text
        .split_once("while getting ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .unwrap_or("a file");
    let reason = format!("HTTP {status} while getting {url}");
    Some(match status {
        408 | 429 | 500..=599 => Verdict::Transient(reason),
        _ => Verdict::Permanent(
            reason,
            Some(
                "the index lists a file it does not serve: try again later, or use a mirror".into(),
            ),
        ),
    })
}

/// What pip's resolver concluded: no listed version fits, no version seen at all (a
/// network problem on the way, else ambiguous until the index is probed), or
/// requirements that conflict.
fn resolution(text: &str) -> Option<Reading> {
    if let Some((requirement, versions)) = not_found(text)
        && versions != "none"
    {
        return Some(Reading::Decided(permanent(
            format!("no version of `{requirement}` is available (the index has: {versions})"),
            Some("pick one of the listed versions"),
        )));
    }
    if let Some(signal) = network_signal(text) {
        return Some(Reading::Decided(Verdict::Transient(format!(
            "{signal}{}",
            at_host(text)
        ))));
    }
    if let Some((requirement, _)) = not_found(text) {
        return Some(Reading::Ambiguous(project_of(&requirement)));
    }
    if text.contains("ResolutionImpossible") || text.contains("conflicting dependencies") {
        return Some(Reading::Decided(permanent(
            "the requirements conflict with each other (ResolutionImpossible)".into(),
            None,
        )));
    }
    None
}

/// Refused on this machine: no permission to write the environment, or a command line
/// this pip does not accept.
fn refused_locally(failure: &ToolFailure, text: &str) -> Option<Verdict<PipRepair>> {
    if text.contains("[Errno 13] Permission denied") {
        return Some(permanent(
            "permission denied writing the environment".into(),
            Some("run as root, or install into a venv you own"),
        ));
    }
    if failure.code == 2 && (text.contains("no such option") || text.contains("\nUsage:")) {
        let what = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("usage error")
            .trim();
        return Some(permanent(
            format!("pip rejected the command line: {what}"),
            Some(
                "this pip may be too old for an option we pass; upgrade pip in the target environment",
            ),
        ));
    }
    None
}

/// Anything else (a crash with a traceback we do not know): SPEC 3, unclassified errors
/// retry. Say the last error line seen.
fn unrecognised(failure: &ToolFailure, text: &str) -> Verdict<PipRepair> {
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("ERROR:") || l.contains("Error:"))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()));
    Verdict::Transient(match last {
        Some(line) => format!("pip exited {}: {}", failure.code, line.trim()),
        None => format!("pip exited {} without a message", failure.code),
    })
}

/// Reads a failed pip run. Pure: exit code, text, and the context (the index probe's
/// answer for the ambiguous `(from versions: none)`, see [`ambiguous_project`]).
pub fn classify(failure: &ToolFailure, context: &ClassifyContext) -> Verdict<PipRepair> {
    let project = match read(failure) {
        Reading::Decided(verdict) => return verdict,
        Reading::Ambiguous(project) => project,
    };
    let index = context
        .index
        .clone()
        .or_else(|| index_in(failure))
        .unwrap_or_else(|| "pip's default index".to_string());
    match &context.probe {
        Some(ProbeResult::NotFound) => Verdict::Permanent(
            format!("no package `{project}` on the index {index}"),
            Some("check the name (pip compares names with `-`, `_` and `.` as equal)".into()),
        ),
        Some(ProbeResult::Found) => Verdict::Repairable(
            PipRepair::RecheckIndex,
            format!(
                "the index {index} lists `{project}`, but pip found no release of it: an outage \
                 pip met, or no release for this Python and platform (check Requires-Python and \
                 the wheels' platforms)"
            ),
        ),
        Some(ProbeResult::Denied(status)) => Verdict::Permanent(
            format!("the index {index} refused the page of `{project}` (HTTP {status})"),
            Some("the index may need credentials (PIP_INDEX_URL with a token)".into()),
        ),
        Some(ProbeResult::ServerError(status)) => Verdict::Transient(format!(
            "the index {index} answered HTTP {status} for `{project}`"
        )),
        Some(ProbeResult::RetryAfter(status, after)) => Verdict::RetryAfter(
            format!(
                "the index {index} answered HTTP {status} for `{project}` (Retry-After: {})",
                after.as_secs()
            ),
            *after,
        ),
        Some(ProbeResult::Unreachable(why)) => Verdict::Transient(format!(
            "the index {index} is unreachable ({why}) for `{project}`"
        )),
        None => Verdict::Transient(format!(
            "pip found no versions of `{project}` on {index}, which may be unreachable (not probed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, text: &str) -> ToolFailure {
        ToolFailure::new("python3 -m pip install x", code, "", text)
    }

    const NONE: &str = "ERROR: Could not find a version that satisfies the requirement Foo_Bar>=1 (from versions: none)\nERROR: No matching distribution found for Foo_Bar>=1\nLooking in indexes: http://127.0.0.1:9/simple/\n";

    #[test]
    fn from_versions_none_is_decided_by_the_probe() {
        let f = failure(1, NONE);
        assert_eq!(ambiguous_project(&f).as_deref(), Some("Foo_Bar"));
        let with = |probe| {
            classify(
                &f,
                &ClassifyContext {
                    index: None,
                    probe: Some(probe),
                },
            )
        };
        assert_eq!(
            with(ProbeResult::NotFound),
            Verdict::Permanent(
                "no package `Foo_Bar` on the index http://127.0.0.1:9/simple/".into(),
                Some("check the name (pip compares names with `-`, `_` and `.` as equal)".into())
            )
        );
        // Listed, yet pip saw nothing: look once more (then permanent, by the repair limit).
        assert!(matches!(
            with(ProbeResult::Found),
            Verdict::Repairable(PipRepair::RecheckIndex, _)
        ));
        assert_eq!(with(ProbeResult::Denied(401)).class(), "permanent");
        assert_eq!(with(ProbeResult::ServerError(503)).class(), "transient");
        // The server said when: the wait honours it.
        assert_eq!(
            with(ProbeResult::RetryAfter(429, Duration::from_secs(2))),
            Verdict::RetryAfter(
                "the index http://127.0.0.1:9/simple/ answered HTTP 429 for `Foo_Bar` \
                 (Retry-After: 2)"
                    .into(),
                Duration::from_secs(2)
            )
        );
        assert_eq!(
            with(ProbeResult::Unreachable("refused".into())).class(),
            "transient"
        );
        assert_eq!(
            classify(&f, &ClassifyContext::default()).class(),
            "transient"
        );
    }

    #[test]
    fn a_retry_warning_settles_it_without_a_probe() {
        let text = format!(
            "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<x>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/foo/\n{NONE}"
        );
        let f = failure(1, &text);
        assert_eq!(ambiguous_project(&f), None);
        assert_eq!(
            classify(&f, &ClassifyContext::default()),
            Verdict::Transient("connection refused at 127.0.0.1:9".into())
        );
    }

    #[test]
    fn the_index_comes_from_pips_line_then_the_command() {
        let f = ToolFailure::new(
            "python3 -m pip install --index-url https://pypi.example.org/simple/ x",
            1,
            "",
            "",
        );
        assert_eq!(
            index_in(&f).as_deref(),
            Some("https://pypi.example.org/simple/")
        );
        let f = failure(
            1,
            "Looking in indexes: https://u:****@p.example.org/simple/\n",
        );
        assert_eq!(index_in(&f), None);
        assert_eq!(ProbeResult::from_status(410), ProbeResult::NotFound);
        assert_eq!(ProbeResult::from_status(429), ProbeResult::ServerError(429));
        assert_eq!(ProbeResult::from_status(403), ProbeResult::Denied(403));
    }

    #[test]
    fn wheel_invalid_repairs_once_then_is_transient() {
        let text =
            "ERROR: Wheel 'x' located at /tmp/pip-unpack-1/x-1.0-py3-none-any.whl is invalid.\n";
        assert_eq!(failure(1, text).code, 1);
        assert_eq!(
            classify(&failure(1, text), &ClassifyContext::default()).class(),
            "repairable"
        );
        let nocache = ToolFailure::new("python3 -m pip install --no-cache-dir x", 1, "", text);
        assert_eq!(
            classify(&nocache, &ClassifyContext::default()).class(),
            "transient"
        );
    }
}
