//! # em-wget: downloads with wget that survive flaky servers and never land a bad file
//!
//! [`Wget::download`] fetches one URL (falling back to its mirrors) into a partial file
//! beside the destination, verifies its sha256 and renames it into place: the landing
//! discipline of [`em_exec::download`], shared with em-curl. This crate adds what is
//! wget's own: the command line, and [`classify`], which reads wget's exit code and
//! messages (with `LC_ALL=C`). Prefer curl where both exist; wget is here for images that
//! ship only wget (busybox-free Debian slim images often have one of the two).
//!
//! ## The command
//!
//! ```text
//! wget --tries=1 --timeout=S --no-verbose --server-response [--https-only]
//!      [-c [--header=If-Range: V]] -O <dest dir>/.<name>.em-partial <url>
//! ```
//!
//! - `--tries=1`: **we** retry, wget does not. wget's default is 20 tries, and among HTTP
//!   errors it retries only 504 unless told otherwise, nor DNS failures or refused
//!   connections (docs/failures.md trap 4); left on, our 4 attempts could be 80 requests.
//!   With `--tries=1` (which also wins over a `tries` line of a wgetrc) 4 attempts are 4
//!   requests per source.
//! - `--timeout=S` sets wget's DNS, connect and read timeouts (the read timeout defaults to
//!   900 s). The whole attempt is bounded by the policy's per-attempt timeout, which kills
//!   the process group.
//! - `--no-verbose` drops the progress bar; `--server-response` prints the response
//!   headers (indented, on stderr) so that [`classify`] can read a `Retry-After`.
//! - `-c` is added when the partial file holds bytes: a transfer that broke off resumes on
//!   the next attempt, only with the `If-Range` validator of the response that started it
//!   or a sha256 to check the result ([`em_exec::download::download_with_tool`]). wget
//!   takes any 416 for "already complete" and exits 0: the output check reads the
//!   `Content-Range: bytes */TOTAL` and restarts from zero when TOTAL is not the partial's
//!   size.
//! - wget follows https -> http and https -> ftp redirects (`--https-only` is for
//!   recursive mode, given anyway): the output check reads every `Location` and fails the
//!   download for good, deleting the partial file, when one leaves https (or http with
//!   `allow_http`).
//! - wget has no size cap for one file (`--quota` does not apply): the announced size and
//!   the partial's size are watched while it runs, and it is stopped past the cap.
//! - Credentials in a URL go to a private wgetrc (`WGETRC`), never into the argv.
//!
//! ## Classification
//!
//! | signal | class | action |
//! |---|---|---|
//! | exit 4 (network: refused, reset, timeout, empty reply, DNS, connection closed mid-body, TLS handshake) | transient | retry (resuming with `-c` when bytes arrived), then next mirror |
//! | exit 8 with `ERROR 408`, `ERROR 429`, `ERROR 5xx` | transient (`Retry-After` honoured, up to 5 min) | retry, then next mirror |
//! | exit 8 with `ERROR 416` | repairable | delete the partial file, download again |
//! | exit 8 with another `ERROR 4xx` | permanent | fail; hint for 403/404 |
//! | exit 6 (`Username/Password Authentication Failed`, 401) | permanent | hint: credentials |
//! | exit 5 (certificate not trusted) | permanent | hint: fix the CA store or the clock; never `--no-check-certificate` |
//! | exit 3 (cannot write) | permanent | hint: space and permissions of the destination directory |
//! | exit 1 (generic, e.g. the output directory is missing), 2 (usage) | permanent | fail |
//! | exit 7 (protocol error), 8 without a status, any other exit | transient | retry, bounded by the policy |
//!
//! A checksum mismatch is handled by [`em_exec::download::download_with`]: one more
//! download, then permanent (`checksum mismatch: expected X, got Y`), nothing at the
//! destination.
//!
//! ```no_run
//! # async fn demo() -> Result<(), em_exec::ToolError> {
//! use std::sync::Arc;
//! use em_exec::Runner;
//! use em_exec::download::DownloadRequest;
//! use em_retry::RetryPolicy;
//! use em_wget::{Wget, WgetConfig};
//!
//! let wget = Arc::new(Wget::new(WgetConfig::default())?);
//! let req = DownloadRequest::new("https://example.org/tool.tar.gz", "/opt/tool.tar.gz");
//! let landed = wget.download(&Runner::new(RetryPolicy::new(4)), &req).await?;
//! println!("{} sha256 {}", landed.path.display(), landed.sha256);
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use em_exec::download::{
    AttemptPlan, DownloadRepair, DownloadRequest, DownloadTool, HttpError, Landed,
    download_with_tool, http_verdict, output_path_in, tls_hint, tool_seconds as seconds, url_host,
    url_in, write_error_hint, write_private,
};
use em_exec::{Cmd, Runner, ToolError, ToolFailure, Verdict, find_tool};

/// How wget is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WgetConfig {
    /// `--timeout`: DNS, connect and read (idle) timeout. Default 30 s.
    pub timeout: Duration,
    /// Extra environment variables for every wget run (e.g. `https_proxy`).
    pub env: Vec<(String, String)>,
}

impl Default for WgetConfig {
    fn default() -> Self {
        WgetConfig {
            timeout: Duration::from_secs(30),
            env: Vec::new(),
        }
    }
}

/// A repair between attempts: the one every download adapter shares,
/// [`DownloadRepair::DeletePartial`]. The path comes from the failed command's `-O`.
pub type WgetRepair = DownloadRepair;

/// The wget adapter.
#[derive(Debug)]
pub struct Wget {
    config: WgetConfig,
    wget: PathBuf,
}

impl Wget {
    /// Finds `wget` on `PATH`.
    pub fn new(config: WgetConfig) -> Result<Self, ToolError> {
        let wget = find_tool("wget", "the base extension (Debian package wget)")?;
        Ok(Wget::with_tool(config, wget))
    }

    /// Uses the wget at `wget` (tests point it at a fake).
    pub fn with_tool(config: WgetConfig, wget: impl Into<PathBuf>) -> Self {
        Wget {
            config,
            wget: wget.into(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WgetConfig {
        &self.config
    }

    /// The command of one attempt, from its [`AttemptPlan`]: fetch the URL into the
    /// partial file, resuming it (with `If-Range` when the plan has a validator),
    /// `--https-only` unless http is allowed, credentials from a wgetrc written into the
    /// plan's private directory (`WGETRC`; the user's own wgetrc is copied into it first,
    /// so that its proxies and CA settings still apply).
    pub fn command(&self, plan: &AttemptPlan, allow_http: bool) -> Cmd {
        let mut cmd = Cmd::tool(&self.wget).args([
            "--tries=1".to_string(),
            format!("--timeout={}", seconds(self.config.timeout)),
            "--no-verbose".to_string(),
            "--server-response".to_string(),
        ]);
        if !allow_http {
            cmd = cmd.arg("--https-only");
        }
        if plan.resume {
            cmd = cmd.arg("-c");
            if let Some(validator) = &plan.if_range {
                cmd = cmd.arg(format!("--header=If-Range: {validator}"));
            }
        }
        cmd = cmd.arg("-O").arg(&plan.partial).arg(&plan.url);
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
        }
        if let (Some(creds), Some(dir)) = (&plan.credentials, &plan.secrets) {
            let wgetrc = dir.join("wgetrc");
            let user_rc = std::env::var_os("WGETRC")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".wgetrc")));
            let mut text = user_rc
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "user = {}\npassword = {}\n",
                creds.user, creds.password
            ));
            // If the file cannot be written, wget's 401 says so; the URL is never given
            // with its credentials.
            let _ = write_private(&wgetrc, text.as_bytes());
            cmd = cmd.env("WGETRC", wgetrc);
        }
        cmd
    }

    /// Downloads `req` (validated first: nothing runs for a bad request), verifies its
    /// sha256 and lands it at `req.dest`. Sources are the URL then its mirrors; each
    /// source's circuit key is its host.
    pub async fn download(
        self: &Arc<Self>,
        runner: &Runner,
        req: &DownloadRequest,
    ) -> Result<Landed, ToolError> {
        download_with_tool(self, runner, req, |plan, _| {
            self.command(plan, req.allow_http)
        })
        .await
    }
}

impl DownloadTool for Wget {
    const NAME: &'static str = "wget";

    fn classify_failure(failure: &ToolFailure) -> Verdict<WgetRepair> {
        classify(failure)
    }
}

/// Reads a failed wget run: see the table in the crate doc.
pub fn classify(failure: &ToolFailure) -> Verdict<WgetRepair> {
    let text = failure.text();
    let url = url_in(&failure.command);
    let host = url.as_deref().map(url_host).unwrap_or("the server");
    let url = url.as_deref().unwrap_or("the URL");
    let said = |what: &str| match key_line(&text) {
        Some(line) => format!("{what}: {line}"),
        None => format!("{what} (wget exit {})", failure.code),
    };
    match failure.code {
        4 => Verdict::Transient(said(&format!("network failure talking to {host}"))),
        8 => classify_http(failure, &text, url, host),
        6 => Verdict::Permanent(
            format!("401 Unauthorized for {url}: authentication failed"),
            Some("the URL needs credentials or a token".into()),
        ),
        5 => Verdict::Permanent(
            said(&format!("the TLS certificate of {host} is not trusted")),
            Some(tls_hint("--no-check-certificate")),
        ),
        3 => Verdict::Permanent(
            said("could not write the download"),
            Some(write_error_hint(
                output_path_in(&failure.command, "-O").as_deref(),
            )),
        ),
        1 | 2 => Verdict::Permanent(said("wget failed"), None),
        _ => Verdict::Transient(said("wget failed")),
    }
}

/// Exit 8: the server answered with an error; its status decides.
fn classify_http(failure: &ToolFailure, text: &str, url: &str, host: &str) -> Verdict<WgetRepair> {
    let Some((status, phrase)) = http_error(text) else {
        return Verdict::Transient(format!("{host} answered with an error (wget exit 8)"));
    };
    http_verdict(HttpError {
        status,
        phrase: &phrase,
        url,
        host,
        headers: text,
        partial: output_path_in(&failure.command, "-O"),
    })
}

/// `ERROR 503: Service Unavailable.` -> (503, "Service Unavailable"), from the last such line.
fn http_error(text: &str) -> Option<(u16, String)> {
    text.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once("ERROR ")?;
        let status: u16 = rest.get(..3)?.parse().ok()?;
        let phrase = rest[3..]
            .trim_start_matches(':')
            .trim()
            .trim_end_matches('.')
            .to_string();
        Some((status, phrase))
    })
}

/// The line that says what went wrong: the last line that is not `Giving up.`, a header
/// (indented) or progress, without wget's timestamp prefix.
fn key_line(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        if line.starts_with(' ') || line.trim().is_empty() || line.trim() == "Giving up." {
            return None;
        }
        let mut line = line.trim();
        // `2026-11-22 06:39:10 (319 MB/s) - Connection closed at byte 131700. Giving up.`
        if let Some((_, rest)) = line.split_once(") - ") {
            line = rest;
        }
        Some(line.trim_end_matches(" Giving up.").to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_an_argument_vector() {
        let wget = Wget::with_tool(WgetConfig::default(), "/usr/bin/wget");
        let mut plan = AttemptPlan {
            url: "https://example.org/x".into(),
            partial: "/opt/.x.em-partial".into(),
            resume: true,
            if_range: Some("\"v1\"".into()),
            max_size: 1000,
            credentials: None,
            secrets: None,
        };
        let cmd = wget.command(&plan, false);
        assert_eq!(
            cmd.command_line(),
            "LC_ALL=C DEBIAN_FRONTEND=noninteractive /usr/bin/wget --tries=1 --timeout=30 \
             --no-verbose --server-response --https-only -c '--header=If-Range: \"v1\"' \
             -O /opt/.x.em-partial https://example.org/x"
        );
        // Credentials go to a private wgetrc, never into the argument vector.
        let dir = tempfile::tempdir().expect("tempdir");
        plan.resume = false;
        plan.credentials = Some(
            em_exec::download::split_credentials("https://me:s3cret@example.org/x")
                .expect("split")
                .1
                .expect("credentials"),
        );
        plan.secrets = Some(dir.path().to_path_buf());
        let line = wget.command(&plan, true).command_line();
        assert!(!line.contains("s3cret"), "{line}");
        assert!(line.contains("WGETRC="), "{line}");
        let rc = std::fs::read_to_string(dir.path().join("wgetrc")).expect("wgetrc");
        assert!(rc.ends_with("user = me\npassword = s3cret\n"), "{rc}");
    }

    #[test]
    fn key_lines_drop_the_noise() {
        assert_eq!(
            key_line("x\n2026-11-22 06:39:10 (319 MB/s) - Connection closed at byte 131700. Giving up.\n\n")
                .as_deref(),
            Some("Connection closed at byte 131700.")
        );
        assert_eq!(
            key_line("Connecting to h:1... failed: Connection refused.\nGiving up.\n\n").as_deref(),
            Some("Connecting to h:1... failed: Connection refused.")
        );
    }
}
