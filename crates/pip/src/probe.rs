//! The index probe: one GET of a PEP 503 project page, to tell "no such project" from "the
//! index is failing" when pip says only `(from versions: none)` (docs/failures.md trap 2).
//!
//! It runs a Python interpreter (`python -c <fixed code> <url> <timeout>`) with urllib,
//! rather than adding an HTTP client crate: a Python is always there when pip is, it
//! speaks https with the system's certificates, and it honours the same proxy variables
//! as pip. The URL is an argument, never part of the code. It is blocking on purpose:
//! [`em_exec::Adapter::classify`] is synchronous; the probe is bounded by its timeout
//! (urllib's, plus a hard kill two seconds later) and only runs for the ambiguous case.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::classify::ProbeResult;

/// Prints the HTTP status of `GET argv[1]` (following redirects), then for an error
/// status its `Retry-After: V` header when it has one; or `unreachable <why>`.
const PROBE: &str = r#"
import sys, urllib.request, urllib.error
try:
    req = urllib.request.Request(sys.argv[1], headers={"Accept": "text/html", "User-Agent": "extension-manager-index-probe"})
    with urllib.request.urlopen(req, timeout=float(sys.argv[2])) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
    after = e.headers.get("Retry-After") if e.headers else None
    if after:
        print("Retry-After:", " ".join(after.split())[:100])
except Exception as e:
    print("unreachable", type(e).__name__, " ".join(str(e).split())[:200])
"#;

/// The project page of `project` on `index`: `<index>/<normalized>/`.
pub fn project_url(index: &str, project: &str) -> String {
    format!(
        "{}/{}/",
        index.trim_end_matches('/'),
        crate::normalize_name(project)
    )
}

/// The index pip uses when none is configured, asked of pip itself (so that this crate
/// names no host): `PIP_INDEX_URL` when set, else pip's built-in default. `None` when pip
/// cannot tell within a few seconds: the ambiguous failure is then not probed (transient).
pub fn pip_default_index(python: &Path, env: &[(String, String)]) -> Option<String> {
    if let Some((_, v)) = env.iter().find(|(k, _)| k == "PIP_INDEX_URL") {
        return Some(v.clone());
    }
    if let Ok(v) = std::env::var("PIP_INDEX_URL")
        && !v.is_empty()
    {
        return Some(v);
    }
    const ASK: &str = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)";
    let mut child = Command::new(python)
        .args(["-c", ASK])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let hard_limit = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(None) if Instant::now() < hard_limit => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let url = out.trim();
    (url.starts_with("http://") || url.starts_with("https://")).then(|| url.to_string())
}

/// GETs `url` with `python`, within `timeout`. `env` is passed to the interpreter
/// (proxies). Only http(s) URLs are probed.
pub fn probe_index(
    python: &Path,
    url: &str,
    timeout: Duration,
    env: &[(String, String)],
) -> ProbeResult {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return ProbeResult::Unreachable(format!("not an http(s) URL: {url}"));
    }
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(PROBE)
        .arg(url)
        .arg(format!("{:.3}", timeout.as_secs_f64()))
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return ProbeResult::Unreachable(format!("probe not run: {e}")),
    };
    let hard_limit = Instant::now() + timeout + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= hard_limit => {
                let _ = child.kill();
                let _ = child.wait();
                return ProbeResult::Unreachable(format!(
                    "no answer within {}",
                    em_retry::fmt_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return ProbeResult::Unreachable(format!("probe: {e}")),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let out = out.trim();
    let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
    if let Ok(status) = first.trim().parse::<u16>() {
        return match (
            ProbeResult::from_status(status),
            em_exec::download::retry_after(rest),
        ) {
            (ProbeResult::ServerError(status), Some(after)) => {
                ProbeResult::RetryAfter(status, after)
            }
            (result, _) => result,
        };
    }
    match out.strip_prefix("unreachable ") {
        Some(why) => ProbeResult::Unreachable(why.to_string()),
        None => ProbeResult::Unreachable("the probe printed no answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_pages_use_normalized_names() {
        assert_eq!(
            project_url("http://127.0.0.1:8080/simple", "Em_Fixture.hello"),
            "http://127.0.0.1:8080/simple/em-fixture-hello/"
        );
        assert_eq!(
            project_url("https://pypi.example.org/simple/", "black"),
            "https://pypi.example.org/simple/black/"
        );
    }

    #[test]
    fn only_http_urls_are_probed() {
        assert!(matches!(
            probe_index(
                Path::new("python3"),
                "file:///etc/passwd",
                Duration::from_secs(1),
                &[]
            ),
            ProbeResult::Unreachable(_)
        ));
    }
}
