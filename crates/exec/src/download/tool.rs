//! What every download adapter (curl, wget) shares beyond the landing discipline: its one
//! repair ([`DownloadRepair`]), its [`Adapter`] impl ([`DownloadTool`]), and the verdict
//! of an HTTP error status ([`http_verdict`]).
//!
//! An adapter keeps what is its own: its command line, which exit codes mean what, and
//! where it says the status (curl's `returned error: NNN`, wget's `ERROR NNN: Phrase.`).
//! The verdicts are described per tool in docs/failures.md.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{delete_partial, retry_after};
use crate::{Adapter, ToolFailure, Verdict};

/// The repair a download adapter knows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DownloadRepair {
    /// Delete the partial file (the server cannot resume it, or it does not fit the remote
    /// file), so that the next attempt downloads from the start. The path comes from the
    /// failed command's output flag (`-o` for curl, `-O` for wget).
    DeletePartial(PathBuf),
}

impl DownloadRepair {
    /// The short name, as fixtures' `repair:` lines and metrics say it.
    pub fn name(&self) -> &'static str {
        match self {
            DownloadRepair::DeletePartial(_) => "delete-partial",
        }
    }

    /// Runs the repair. Deleting a file needs no tool: it is done directly (a file
    /// already gone is fine).
    pub fn apply(&self) -> Result<(), String> {
        match self {
            DownloadRepair::DeletePartial(path) => delete_partial(path),
        }
    }
}

impl fmt::Display for DownloadRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadRepair::DeletePartial(path) => {
                write!(f, "delete the partial file {}", path.display())
            }
        }
    }
}

/// A download tool: its name and how its failures read. Every `DownloadTool` is an
/// [`Adapter`] whose repair is [`DownloadRepair`], run directly, with no count of its own:
/// each deletion is followed by a full download, which may break off and be resumed again
/// against the same server, so the policy's attempts bound it.
pub trait DownloadTool: Send + Sync + 'static {
    /// The tool's name, the `adapter` label of metrics: `curl`, `wget`.
    const NAME: &'static str;

    /// Reads a failed run of the tool.
    fn classify_failure(failure: &ToolFailure) -> Verdict<DownloadRepair>;
}

impl<T: DownloadTool> Adapter for T {
    type Repair = DownloadRepair;

    fn name(&self) -> &'static str {
        T::NAME
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<DownloadRepair> {
        T::classify_failure(failure)
    }

    async fn repair(&self, repair: DownloadRepair) -> Result<(), String> {
        repair.apply()
    }

    fn repair_limit(&self, _repair: &DownloadRepair) -> u32 {
        u32::MAX
    }
}

/// What an HTTP error answer is about, for [`http_verdict`].
#[derive(Clone, Debug)]
pub struct HttpError<'a> {
    /// The status, e.g. `503`.
    pub status: u16,
    /// Its reason phrase, e.g. `Service Unavailable`.
    pub phrase: &'a str,
    /// The URL, for the permanent messages.
    pub url: &'a str,
    /// Its host, for the transient ones (it is the circuit's key).
    pub host: &'a str,
    /// The response headers the tool printed, where a `Retry-After` may stand.
    pub headers: &'a str,
    /// The partial file of the failed command, which a 416 deletes.
    pub partial: Option<PathBuf>,
}

/// The verdict of an HTTP error status, the same for every download tool:
///
/// | status | verdict |
/// |---|---|
/// | 408, 429, 5xx | transient (`Retry-After` honoured, up to [`super::MAX_RETRY_AFTER`]) |
/// | 416 | repairable: delete the partial file (permanent when there is none) |
/// | 401, 403 | permanent, hint: credentials or a token |
/// | 404, 410 | permanent, hint: check the URL |
/// | any other | permanent |
pub fn http_verdict(error: HttpError<'_>) -> Verdict<DownloadRepair> {
    let HttpError {
        status,
        phrase,
        url,
        host,
        headers,
        partial,
    } = error;
    let what = format!("{status} {phrase}");
    match status {
        408 | 429 | 500..=599 => {
            let reason = format!("{what} from {host}");
            match retry_after(headers) {
                Some(d) => Verdict::RetryAfter(reason, d),
                None => Verdict::Transient(reason),
            }
        }
        416 => match partial {
            Some(partial) => Verdict::Repairable(
                DownloadRepair::DeletePartial(partial),
                format!("{what} from {host}: the partial file does not fit the remote file"),
            ),
            None => Verdict::Permanent(format!("{what} for {url}"), None),
        },
        401 | 403 => Verdict::Permanent(
            format!("{what} for {url}"),
            Some("the server refuses access: the URL may need credentials or a token".into()),
        ),
        404 | 410 => Verdict::Permanent(
            format!("{what} for {url}"),
            Some("check the URL (and the version in it)".into()),
        ),
        _ => Verdict::Permanent(format!("{what} for {url}"), None),
    }
}

/// The hint of a write error: free space and permissions of the directory of the partial
/// file (when the command names one).
pub fn write_error_hint(partial: Option<&Path>) -> String {
    match partial {
        Some(p) => format!(
            "check free space and permissions of {}",
            p.parent().unwrap_or(Path::new("/")).display()
        ),
        None => "check free space and permissions of the destination directory".into(),
    }
}

/// The hint of an untrusted certificate; `weaken` is the tool's option that would turn
/// verification off, named so that the user knows not to reach for it.
pub fn tls_hint(weaken: &str) -> String {
    format!(
        "never weaken verification (no {weaken}): update the CA store \
         (Debian package ca-certificates), check the system clock, or add the CA of \
         a TLS-intercepting proxy"
    )
}

/// The URL of a download command: its last word, for the commands the adapters build.
pub fn url_in(command: &str) -> Option<String> {
    shlex::split(command)?.pop().filter(|w| w.contains("://"))
}

/// Seconds as curl and wget read them: `10`, `0.5`; never 0 (which means "no limit").
pub fn tool_seconds(d: Duration) -> String {
    let secs = d.as_secs_f64().max(0.001);
    format!("{secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, headers: &str, partial: Option<&str>) -> HttpError<'static> {
        HttpError {
            status,
            phrase: "Phrase",
            url: "https://127.0.0.1:1/x",
            host: "127.0.0.1:1",
            headers: Box::leak(headers.to_string().into_boxed_str()),
            partial: partial.map(PathBuf::from),
        }
    }

    #[test]
    fn the_status_table() {
        assert_eq!(
            http_verdict(error(503, "", None)),
            Verdict::Transient("503 Phrase from 127.0.0.1:1".into())
        );
        assert_eq!(
            http_verdict(error(429, "HTTP/1.1 429 x\nRetry-After: 7\n", None)),
            Verdict::RetryAfter("429 Phrase from 127.0.0.1:1".into(), Duration::from_secs(7))
        );
        assert_eq!(
            http_verdict(error(416, "", Some("/d/.x.em-partial"))),
            Verdict::Repairable(
                DownloadRepair::DeletePartial("/d/.x.em-partial".into()),
                "416 Phrase from 127.0.0.1:1: the partial file does not fit the remote file".into()
            )
        );
        assert_eq!(
            http_verdict(error(416, "", None)).class(),
            "permanent",
            "no partial file to delete"
        );
        for (status, hint) in [
            (401, Some("credentials")),
            (404, Some("check the URL")),
            (400, None),
        ] {
            let Verdict::Permanent(reason, got) = http_verdict(error(status, "", None)) else {
                panic!("{status} is permanent");
            };
            assert_eq!(reason, format!("{status} Phrase for https://127.0.0.1:1/x"));
            assert_eq!(got.is_some(), hint.is_some(), "{status}");
            if let (Some(got), Some(hint)) = (got, hint) {
                assert!(got.contains(hint), "{got}");
            }
        }
    }

    #[test]
    fn delete_partial_deletes_and_a_missing_file_is_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partial = dir.path().join(".x.em-partial");
        std::fs::write(&partial, b"half").expect("write");
        let repair = DownloadRepair::DeletePartial(partial.clone());
        assert_eq!(repair.name(), "delete-partial");
        assert_eq!(
            repair.to_string(),
            format!("delete the partial file {}", partial.display())
        );
        repair.apply().expect("deleted");
        assert!(!partial.exists());
        repair.apply().expect("already gone is fine");
    }

    #[test]
    fn helpers() {
        assert_eq!(tool_seconds(Duration::from_secs(10)), "10");
        assert_eq!(tool_seconds(Duration::from_millis(2500)), "2.5");
        assert_eq!(tool_seconds(Duration::ZERO), "0.001");
        assert_eq!(
            url_in("curl -o /d/x https://127.0.0.1/x").as_deref(),
            Some("https://127.0.0.1/x")
        );
        assert_eq!(url_in("curl --version"), None);
        assert_eq!(
            write_error_hint(Some(Path::new("/d/.x.em-partial"))),
            "check free space and permissions of /d"
        );
        assert!(tls_hint("--insecure").contains("(no --insecure)"));
    }
}
