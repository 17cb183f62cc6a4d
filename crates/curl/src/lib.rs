//! # em-curl: downloads with curl that survive flaky servers and never land a bad file
//!
//! [`Curl::download`] fetches one URL (falling back to its mirrors) into a partial file
//! beside the destination, verifies its sha256 and renames it into place: the landing
//! discipline of [`em_exec::download`]. This crate adds what is curl's own: the command
//! line, and [`classify`], which reads curl's exit code and message (with `LC_ALL=C`).
//!
//! What it is not: an HTTP client, or a way to pipe a script into a shell. Output always
//! goes to a file.
//!
//! ## The command
//!
//! ```text
//! curl --fail --silent --show-error --location --dump-header -
//!      --connect-timeout S --max-time S --retry 0
//!      --proto =https --proto-redir =https        (=http,https with allow_http)
//!      --max-filesize CAP [--netrc-file F] [-C - [--header 'If-Range: V']]
//!      -o <dest dir>/.<name>.em-partial <url>
//! ```
//!
//! - `--fail`: an HTTP error is exit 22 with `The requested URL returned error: NNN`, and no
//!   error page is written into the file.
//! - `--retry 0`: **we** retry, curl does not. curl's `--retry` skips most network errors
//!   (7, 18, 35, 52, 56; docs/failures.md trap 4) and would multiply with ours: 4 attempts of
//!   ours with `--retry 3` are up to 16 requests. With `--retry 0` (which also overrides a
//!   `retry` line of a user's `.curlrc`), 4 attempts are 4 requests per source.
//! - `--max-time` is per attempt: the configured [`CurlConfig::max_time`], shortened to
//!   what the policy's per-attempt timeout or deadline leaves.
//! - `--dump-header -`: the response headers go to stdout (the body goes to the file), so
//!   that [`classify`] can read a `Retry-After`. Captured, never shown unless echoed.
//! - `--proto`/`--proto-redir`: https only, also after redirects, unless the request allows
//!   http; `file://`, `ftp://` and the rest are never followed.
//! - `-C -` is added when the partial file holds bytes: a transfer that broke off (exit 18,
//!   a timeout mid-body) resumes on the next attempt instead of starting over. A server that
//!   ignores ranges answers exit 33, and the partial file is deleted (the repair below).
//! - `--max-filesize`: the size cap (8 GiB, or the free space if less): a larger
//!   Content-Length is refused before a byte is written (exit 63, permanent).
//! - `If-Range` with the validator of the response that started the partial file: a
//!   changed file comes back whole (a 200, exit 33, the partial deleted), never spliced.
//! - Credentials in a URL go to a private netrc file (`--netrc-file`), never into the argv.
//! - The user's `.curlrc` is read (proxies, CA bundles live there); every option that
//!   matters to retrying is given explicitly and wins over it.
//!
//! ## Classification
//!
//! | signal | class | action |
//! |---|---|---|
//! | exit 5, 6 (cannot resolve proxy / host) | transient | retry, then next mirror |
//! | exit 7 (cannot connect), 28 (timeout), 35 (TLS connect), 52 (empty reply), 55, 56 (send/recv failure) | transient | retry |
//! | exit 16, 92, 95, 96 (HTTP/2, HTTP/3, QUIC) | transient | retry |
//! | exit 18 (`transfer closed with N bytes remaining`) | transient | retry; the next attempt resumes the partial file with `-C -` |
//! | exit 22 with 408, 429, 5xx | transient (`Retry-After` honoured, up to 5 min) | retry, then next mirror |
//! | exit 22 with 416 (range not satisfiable) | repairable | delete the partial file, download again |
//! | exit 33, 36 (server cannot resume) | repairable | delete the partial file, download again without `-C -` |
//! | exit 22 with another 4xx | permanent | fail; hint for 401/403/404 |
//! | exit 23 (write error) | permanent | hint: space and permissions of the destination directory |
//! | exit 58, 59, 60, 77, 83, 90, 91 (certificate, TLS trust) | permanent | hint: fix the CA store or the clock; never weaken verification |
//! | exit 1 with `Protocol "http" not supported` (a redirect outside `--proto-redir`) | permanent | hint: https only, or `allow_http` |
//! | exit 1, 2, 3, 4, 27, 43, 47, 48, 63, 67, 78 (usage, URL, redirects, login, size, missing remote file) | permanent | fail |
//! | any other exit | transient | retry (unclassified errors retry, bounded by the policy) |
//!
//! A checksum mismatch after a successful transfer is handled by
//! [`em_exec::download::download_with`]: the partial file is deleted and the file
//! downloaded once more; a second mismatch is permanent
//! (`checksum mismatch: expected X, got Y`), and nothing is left at the destination.
//!
//! ```no_run
//! # async fn demo() -> Result<(), em_exec::ToolError> {
//! use std::sync::Arc;
//! use em_curl::{Curl, CurlConfig};
//! use em_exec::Runner;
//! use em_exec::download::{DownloadRequest, Sha256};
//! use em_retry::RetryPolicy;
//!
//! let curl = Arc::new(Curl::new(CurlConfig::default())?);
//! let mut req = DownloadRequest::new("https://example.org/tool.tar.gz", "/opt/tool.tar.gz");
//! req.sha256 = Some(Sha256::parse(&"0".repeat(64)).expect("64 hex digits"));
//! req.mirrors = vec!["https://mirror.example.org/tool.tar.gz".into()];
//! let landed = curl.download(&Runner::new(RetryPolicy::new(4)), &req).await?;
//! println!("{} ({} bytes)", landed.path.display(), landed.bytes);
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

/// How curl is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurlConfig {
    /// `--connect-timeout`: how long a TCP + TLS connect may take. Default 10 s.
    pub connect_timeout: Duration,
    /// `--max-time`: how long one attempt may take in all. Default 10 min.
    pub max_time: Duration,
    /// Extra environment variables for every curl run (e.g. `https_proxy`).
    pub env: Vec<(String, String)>,
}

impl Default for CurlConfig {
    fn default() -> Self {
        CurlConfig {
            connect_timeout: Duration::from_secs(10),
            max_time: Duration::from_secs(600),
            env: Vec::new(),
        }
    }
}

/// A repair between attempts: the one every download adapter shares,
/// [`DownloadRepair::DeletePartial`] (the server cannot resume the partial file). The path
/// comes from the failed command's `-o`.
pub type CurlRepair = DownloadRepair;

/// The curl adapter.
#[derive(Debug)]
pub struct Curl {
    config: CurlConfig,
    curl: PathBuf,
}

impl Curl {
    /// Finds `curl` on `PATH`.
    pub fn new(config: CurlConfig) -> Result<Self, ToolError> {
        let curl = find_tool("curl", "the base extension (Debian package curl)")?;
        Ok(Curl::with_tool(config, curl))
    }

    /// Uses the curl at `curl` (tests point it at a fake).
    pub fn with_tool(config: CurlConfig, curl: impl Into<PathBuf>) -> Self {
        Curl {
            config,
            curl: curl.into(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CurlConfig {
        &self.config
    }

    /// The command of one attempt, from its [`AttemptPlan`]: fetch the URL into the
    /// partial file, resuming it (with `If-Range` when the plan has a validator),
    /// `--max-filesize` at the plan's cap, credentials from a netrc file written into the
    /// plan's private directory. `attempt_timeout` (what the policy leaves this attempt)
    /// shortens `--max-time`.
    pub fn command(
        &self,
        plan: &AttemptPlan,
        allow_http: bool,
        attempt_timeout: Option<Duration>,
    ) -> Cmd {
        let max_time =
            attempt_timeout.map_or(self.config.max_time, |t| t.min(self.config.max_time));
        let protocols = if allow_http { "=http,https" } else { "=https" };
        let mut cmd = Cmd::tool(&self.curl)
            .args([
                "--fail",
                "--silent",
                "--show-error",
                "--location",
                "--dump-header",
                "-",
                "--connect-timeout",
            ])
            .arg(seconds(self.config.connect_timeout))
            .arg("--max-time")
            .arg(seconds(max_time))
            .args([
                "--retry",
                "0",
                "--proto",
                protocols,
                "--proto-redir",
                protocols,
                "--max-filesize",
            ])
            .arg(plan.max_size.to_string());
        if let (Some(creds), Some(dir)) = (&plan.credentials, &plan.secrets) {
            let netrc = dir.join("netrc");
            let text = format!(
                "machine {} login \"{}\" password \"{}\"\n",
                creds.host, creds.user, creds.password
            );
            // If the file cannot be written, curl's 401 says so; the URL is never
            // given with its credentials.
            let _ = write_private(&netrc, text.as_bytes());
            cmd = cmd.arg("--netrc-file").arg(netrc);
        }
        if plan.resume {
            cmd = cmd.args(["-C", "-"]);
            if let Some(validator) = &plan.if_range {
                cmd = cmd.arg("--header").arg(format!("If-Range: {validator}"));
            }
        }
        cmd = cmd.arg("-o").arg(&plan.partial).arg(&plan.url);
        for (k, v) in &self.config.env {
            cmd = cmd.env(k, v);
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
        download_with_tool(self, runner, req, |plan, attempt| {
            self.command(plan, req.allow_http, attempt.timeout)
        })
        .await
    }
}

impl DownloadTool for Curl {
    const NAME: &'static str = "curl";

    fn classify_failure(failure: &ToolFailure) -> Verdict<CurlRepair> {
        classify(failure)
    }
}

/// Reads a failed curl run: see the table in the crate doc.
pub fn classify(failure: &ToolFailure) -> Verdict<CurlRepair> {
    let code = failure.code;
    let message = curl_message(&failure.stderr);
    let url = url_in(&failure.command);
    let host = url.as_deref().map(url_host).unwrap_or("the server");
    let said = |what: &str| match &message {
        Some(m) => format!("{what}: {m}"),
        None => format!("{what} (curl exit {code})"),
    };
    match code {
        22 => classify_http(failure, url.as_deref().unwrap_or("the URL"), host),
        5 | 6 => Verdict::Transient(said("could not resolve the host")),
        7 => Verdict::Transient(said("could not connect")),
        28 => Verdict::Transient(said("timed out")),
        35 => Verdict::Transient(said("TLS handshake failed")),
        52 => Verdict::Transient(said("empty reply")),
        55 | 56 => Verdict::Transient(said("connection broken")),
        16 | 92 | 95 | 96 => Verdict::Transient(said("HTTP/2 or HTTP/3 error")),
        18 => Verdict::Transient(said(
            "transfer cut short (the next attempt resumes the partial file)",
        )),
        33 | 36 => match output_path_in(&failure.command, "-o") {
            Some(partial) => Verdict::Repairable(
                CurlRepair::DeletePartial(partial),
                said("the server cannot resume the partial file"),
            ),
            None => Verdict::Transient(said("the server cannot resume")),
        },
        23 => Verdict::Permanent(
            said("could not write the download"),
            Some(write_error_hint(
                output_path_in(&failure.command, "-o").as_deref(),
            )),
        ),
        58 | 59 | 60 | 77 | 83 | 90 | 91 => Verdict::Permanent(
            said(&format!("the TLS certificate of {host} is not trusted")),
            Some(tls_hint("--insecure")),
        ),
        47 => Verdict::Permanent(said("too many redirects"), None),
        3 => Verdict::Permanent(said("malformed URL"), None),
        67 => Verdict::Permanent(
            said("login denied"),
            Some("check the credentials for this URL".into()),
        ),
        78 => Verdict::Permanent(said("the remote file does not exist"), None),
        63 => Verdict::Permanent(
            said("the file is larger than allowed"),
            Some(
                "the limit is the smaller of the download size cap (8 GiB) and the free space \
                 of the destination's file system: free space there, or check the URL"
                    .into(),
            ),
        ),
        1 if failure.stderr.contains("Protocol \"") => Verdict::Permanent(
            said("a protocol this download does not allow (a redirect to http://?)"),
            Some(
                "downloads are https only, after redirects too; use an https URL, or set \
                 `allow_http = true` on the step if plain http is intended"
                    .into(),
            ),
        ),
        1 | 2 | 4 | 27 | 43 | 48 => Verdict::Permanent(said("curl refused the request"), None),
        _ => Verdict::Transient(said("curl failed")),
    }
}

/// Exit 22: the HTTP status decides.
fn classify_http(failure: &ToolFailure, url: &str, host: &str) -> Verdict<CurlRepair> {
    let Some(status) = http_status(&failure.stderr) else {
        return Verdict::Permanent(
            format!(
                "HTTP error for {url}: {}",
                curl_message(&failure.stderr).unwrap_or_else(|| "no status".into())
            ),
            None,
        );
    };
    http_verdict(HttpError {
        status,
        phrase: reason_phrase(status),
        url,
        host,
        headers: &failure.stdout,
        partial: output_path_in(&failure.command, "-o"),
    })
}

/// The status of `The requested URL returned error: NNN` (curl 7.x and 8.x).
fn http_status(stderr: &str) -> Option<u16> {
    let (_, rest) = stderr.split_once("The requested URL returned error: ")?;
    rest.get(..3)?.parse().ok()
}

/// curl's own message: the text after `curl: (N) ` on its last such line.
fn curl_message(stderr: &str) -> Option<String> {
    stderr.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("curl: (")?;
        let (_, message) = rest.split_once(") ")?;
        Some(message.trim().to_string())
    })
}

/// The standard reason phrase of an HTTP status (HTTP/2 sends none, so curl cannot).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ if (500..600).contains(&status) => "Server Error",
        _ => "Client Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_an_argument_vector() {
        let curl = Curl::with_tool(CurlConfig::default(), "/usr/bin/curl");
        let mut plan = AttemptPlan {
            url: "https://example.org/x".into(),
            partial: "/opt/.x.em-partial".into(),
            resume: true,
            if_range: Some("\"v1\"".into()),
            max_size: 1000,
            credentials: None,
            secrets: None,
        };
        let cmd = curl.command(&plan, false, Some(Duration::from_secs(30)));
        assert_eq!(
            cmd.command_line(),
            "LC_ALL=C DEBIAN_FRONTEND=noninteractive /usr/bin/curl --fail --silent --show-error \
             --location --dump-header - --connect-timeout 10 --max-time 30 --retry 0 \
             --proto =https --proto-redir =https --max-filesize 1000 -C - \
             --header 'If-Range: \"v1\"' -o /opt/.x.em-partial https://example.org/x"
        );
        // Credentials go to a private netrc file, never into the argument vector.
        let dir = tempfile::tempdir().expect("tempdir");
        plan.resume = false;
        plan.credentials = Some(
            em_exec::download::split_credentials("https://me:s3cret@example.org/x")
                .expect("split")
                .1
                .expect("credentials"),
        );
        plan.secrets = Some(dir.path().to_path_buf());
        let cmd = curl.command(&plan, false, None);
        let line = cmd.command_line();
        assert!(!line.contains("s3cret"), "{line}");
        assert!(
            line.contains(&format!(
                "--netrc-file {}",
                dir.path().join("netrc").display()
            )),
            "{line}"
        );
        let netrc = dir.path().join("netrc");
        assert_eq!(
            std::fs::read_to_string(&netrc).expect("netrc"),
            "machine example.org login \"me\" password \"s3cret\"\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&netrc)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
