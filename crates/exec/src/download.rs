//! Landing a downloaded file, whichever tool fetched it (curl, wget).
//!
//! The download adapters share one discipline, from SPEC section 4:
//!
//! - the tool writes to a **partial file beside the destination**,
//!   `<dest dir>/.<file name>.em-partial` ([`partial_path`]). The name is stable, so the
//!   next attempt (or the next run, after a crash) finds what was already fetched and can
//!   resume it; being in the destination's directory makes the final rename atomic (same
//!   file system);
//! - when the tool is done, [`verify_and_land`] hashes the partial file (streaming, SHA-256),
//!   compares it with the expected digest, and only then gives it its mode, fsyncs it,
//!   renames it onto the destination and fsyncs the directory. **A checksum mismatch never
//!   leaves a file at the destination**: the partial file is deleted and
//!   [`LandError::Checksum`] returned;
//! - [`download_with`] is the loop around a tool's fetch: validate the request before
//!   anything runs, decide what to do with a partial file left by an earlier run, fetch,
//!   verify and land, and download again once after a checksum mismatch (a corrupt transfer
//!   or a mirror caught mid-sync) before calling the mismatch permanent;
//! - [`download_with_tool`] is that loop with the fetch every download adapter makes: its
//!   tool run over the URL and its mirrors, resuming a partial file that holds bytes. An
//!   adapter brings only its command line.
//!
//! What it is not: an HTTP client. The bytes come from a tool run by an adapter.
//!
//! ```
//! use em_exec::download::{DownloadRequest, Sha256, partial_path};
//! let mut req = DownloadRequest::new("https://example.org/tool.tar.gz", "/tmp/tool.tar.gz");
//! req.sha256 = Some(Sha256::parse(&"ab".repeat(32)).unwrap());
//! assert!(req.validate().is_ok());
//! assert_eq!(partial_path(&req.dest), std::path::Path::new("/tmp/.tool.tar.gz.em-partial"));
//! req.url = "http://example.org/tool.tar.gz".into();
//! assert!(req.validate().unwrap_err().contains("http://"));
//! ```

use std::fmt;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use em_retry::{Attempt, Operation};
use sha2::Digest;

use crate::{Adapter, Cmd, Runner, ToolError, ToolErrorKind};

/// A SHA-256 digest: 32 bytes, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// Parses 64 hex digits (either case). The error says what is wrong: the length, or
    /// which character (counting from 1) is not a hex digit.
    pub fn parse(text: &str) -> Result<Sha256, String> {
        let count = text.chars().count();
        if count != 64 {
            return Err(format!(
                "a sha256 is 64 hex digits, `{text}` has {count} characters"
            ));
        }
        if let Some((i, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(format!(
                "a sha256 is 64 hex digits, `{text}` has {c:?} at position {}",
                i + 1
            ));
        }
        let bytes = text.as_bytes();
        let mut digest = [0u8; 32];
        for (i, out) in digest.iter_mut().enumerate() {
            *out = (hex_value(bytes[2 * i]) << 4) | hex_value(bytes[2 * i + 1]);
        }
        Ok(Sha256(digest))
    }

    /// A digest from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Sha256 {
        Sha256(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes a file, reading it in blocks (a large archive never sits in memory).
    pub fn of_file(path: &Path) -> io::Result<(Sha256, u64)> {
        let mut file = File::open(path)?;
        Sha256::of_reader(&mut file)
    }

    /// Hashes everything `reader` gives; returns the digest and the byte count.
    pub fn of_reader(reader: &mut impl Read) -> io::Result<(Sha256, u64)> {
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((Sha256(hasher.finalize().into()), total))
    }
}

/// The value of one ASCII hex digit (already checked).
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

impl FromStr for Sha256 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sha256::parse(s)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// One file to download: where from, where to, and what it must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadRequest {
    /// The primary URL.
    pub url: String,
    /// Alternates, tried in order when the primary is exhausted or its circuit is open.
    pub mirrors: Vec<String>,
    /// The destination: absolute, no `..`, in a directory that exists.
    pub dest: PathBuf,
    /// The expected digest; without one, the file lands unverified.
    pub sha256: Option<Sha256>,
    /// Allows `http://` URLs (a manifest's `allow_http = true`).
    pub allow_http: bool,
    /// The destination's permission bits (e.g. `0o755`); `None` keeps what the tool made.
    pub mode: Option<u32>,
}

impl DownloadRequest {
    /// A request for `url` to `dest`, with no mirrors, checksum or mode, https only.
    pub fn new(url: impl Into<String>, dest: impl Into<PathBuf>) -> Self {
        DownloadRequest {
            url: url.into(),
            mirrors: Vec::new(),
            dest: dest.into(),
            sha256: None,
            allow_http: false,
            mode: None,
        }
    }

    /// The URL and the mirrors, in the order they are tried.
    pub fn sources(&self) -> Vec<String> {
        std::iter::once(&self.url)
            .chain(&self.mirrors)
            .cloned()
            .collect()
    }

    /// Where the tool writes before the file is verified and renamed.
    pub fn partial(&self) -> PathBuf {
        partial_path(&self.dest)
    }

    /// Checks the URLs, the destination and the mode; the message names the bad value.
    pub fn validate(&self) -> Result<(), String> {
        for url in self.sources() {
            check_url(&url, self.allow_http)?;
        }
        check_dest(&self.dest)?;
        if let Some(mode) = self.mode
            && mode > 0o7777
        {
            return Err(format!(
                "mode {mode:o} is not a permission mode (0 to 7777)"
            ));
        }
        Ok(())
    }
}

/// Checks a download URL: `https://` (or `http://` when `allow_http`), a host, no
/// whitespace or control characters, and no leading `-` (it would be read as an option).
pub fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    if url.starts_with('-') {
        return Err(format!(
            "URL `{url}` starts with `-`: it would be read as an option"
        ));
    }
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("URL `{}` contains {c:?}", url.escape_debug()));
    }
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if !allow_http {
            return Err(format!(
                "URL `{url}` is plain http://: use https://, or allow http for this download (`allow_http = true`)"
            ));
        }
        rest
    } else {
        return Err(format!("URL `{url}` is not an https:// URL"));
    };
    if url_host(url).is_empty() || rest.starts_with('/') {
        return Err(format!("URL `{url}` has no host"));
    }
    Ok(())
}

/// The host (and port) of a URL, without user info: the key of its circuit breaker.
/// `https://user@mirror.example.org:8443/x` gives `mirror.example.org:8443`.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// Checks a destination: absolute, no `..`, a file name, and a parent directory that
/// exists.
pub fn check_dest(dest: &Path) -> Result<(), String> {
    if !dest.is_absolute() {
        return Err(format!(
            "destination `{}` is relative: give an absolute path",
            dest.display()
        ));
    }
    if dest.components().any(|c| c == Component::ParentDir) {
        return Err(format!("destination `{}` contains `..`", dest.display()));
    }
    if dest.file_name().is_none() {
        return Err(format!("destination `{}` has no file name", dest.display()));
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(format!(
            "the directory of destination `{}`, `{}`, does not exist",
            dest.display(),
            parent.display()
        ));
    }
    Ok(())
}

/// The partial file of `dest`: `<dest dir>/.<file name>.em-partial`.
pub fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.em-partial"))
}

/// Whether `partial` holds bytes worth resuming (exists and is not empty).
pub fn has_partial_data(partial: &Path) -> bool {
    fs::metadata(partial).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Deletes `partial`, the repair of a download adapter whose tool cannot resume it; a file
/// already gone is fine. The error names the file for the user.
pub fn delete_partial(partial: &Path) -> Result<(), String> {
    match fs::remove_file(partial) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("could not delete {}: {e}", partial.display())),
    }
}

/// The path a command line writes to: the word after `flag` (`-o` for curl, `-O` for
/// wget) in a command as [`crate::Cmd::command_line`] prints it. Classifiers use it to
/// name the partial file a repair works on.
pub fn output_path_in(command: &str, flag: &str) -> Option<PathBuf> {
    let words = shlex::split(command)?;
    let at = words.iter().position(|w| w == flag)?;
    words.get(at + 1).map(PathBuf::from)
}

/// The longest wait a server's `Retry-After` may impose on us; a larger value (or an
/// HTTP-date, which we do not parse) falls back to the policy's own backoff. A server
/// asking for an hour should not silently stall an install for an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The `Retry-After: N` (seconds) of the last HTTP response in a header dump: curl's
/// `--dump-header -` or wget's `--server-response` (indented by two spaces). Headers of
/// earlier responses (redirects) do not count. `None` when absent, not in seconds, or
/// longer than [`MAX_RETRY_AFTER`].
pub fn retry_after(text: &str) -> Option<Duration> {
    let mut current = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("HTTP/") {
            current = None;
        } else if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("retry-after")
        {
            current = value.trim().parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    current.filter(|d| *d <= MAX_RETRY_AFTER)
}

/// A file that landed at its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landed {
    /// The destination.
    pub path: PathBuf,
    /// Its SHA-256 (computed, whether or not one was expected).
    pub sha256: Sha256,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why a downloaded file did not land.
#[derive(Debug)]
pub enum LandError {
    /// The file's digest is not the expected one; the partial file was deleted.
    Checksum {
        /// What the request said.
        expected: Sha256,
        /// What the file hashed to.
        got: Sha256,
    },
    /// A file-system step failed.
    Io {
        /// What we were doing, e.g. `rename`.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for LandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LandError::Checksum { expected, got } => {
                write!(f, "checksum mismatch: expected {expected}, got {got}")
            }
            LandError::Io {
                action,
                path,
                source,
            } => write!(f, "could not {action} `{}`: {source}", path.display()),
        }
    }
}

impl std::error::Error for LandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LandError::Io { source, .. } => Some(source),
            LandError::Checksum { .. } => None,
        }
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LandError + 'a {
    move |source| LandError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Verifies `partial` against `sha256` and moves it onto `dest`.
///
/// On a mismatch the partial file is deleted and nothing is written at `dest` (an older
/// file already there stays as it was). Otherwise: `chmod` (when `mode` is given), fsync
/// the file, rename it onto `dest`, fsync the directory, so that after a crash the
/// destination is either the old file or the whole new one.
///
/// A tool that succeeded without creating its output file downloaded an empty body (curl
/// creates `-o` lazily, on the first byte): that lands as an empty file, and is checked
/// against `sha256` like any other.
pub fn verify_and_land(
    partial: &Path,
    dest: &Path,
    sha256: Option<&Sha256>,
    mode: Option<u32>,
) -> Result<Landed, LandError> {
    if !partial.exists() {
        File::create(partial).map_err(io_error("create", partial))?;
    }
    let (got, bytes) = Sha256::of_file(partial).map_err(io_error("read", partial))?;
    if let Some(expected) = sha256
        && *expected != got
    {
        fs::remove_file(partial).map_err(io_error("remove", partial))?;
        return Err(LandError::Checksum {
            expected: *expected,
            got,
        });
    }
    if let Some(mode) = mode {
        fs::set_permissions(partial, fs::Permissions::from_mode(mode))
            .map_err(io_error("chmod", partial))?;
    }
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io_error("fsync", partial))?;
    fs::rename(partial, dest).map_err(io_error("rename onto destination", dest))?;
    let dir = dest.parent().unwrap_or(Path::new("/"));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))?;
    Ok(Landed {
        path: dest.to_path_buf(),
        sha256: got,
        bytes,
    })
}

/// What one fetch (over the sources) did: which source answered, in how many attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The index of the source that worked, in the slice the fetch was given.
    pub source: usize,
    /// Tool runs, over every source tried.
    pub attempts: u32,
}

/// Downloads `req` with `fetch` and lands it: the part of a download adapter that does not
/// depend on the tool.
///
/// 1. The request is validated before anything runs (a permanent error, `attempts: 0`).
/// 2. A partial file left by an earlier run is kept for resuming when the request has a
///    `sha256` (a wrong prefix is caught by the check), and deleted when it has none (a
///    resumed file could silently join two versions of the download).
/// 3. `fetch(sources)` (owned, so that the future it returns borrows nothing from the
///    call: an async closure over `&[String]` would make the whole download future
///    `!Send` through higher-ranked lifetimes, and the CLI spawns downloads) runs the tool over the URL and its mirrors until one succeeds,
///    writing to [`DownloadRequest::partial`] (it decides on its own whether to resume).
/// 4. [`verify_and_land`]. On a checksum mismatch the partial file is gone; the download
///    runs once more, starting at the source that gave the bad file and going down the
///    list. A second mismatch is permanent: `checksum mismatch: expected X, got Y`.
///    Each mismatch is told to `on_rejected` (the reason and the attempts made so far),
///    so that the caller can show and report it like a failed attempt.
///
/// When the fetch fails, the partial file is kept for a later resume only when the failure
/// was transient and the file holds bytes; otherwise it is deleted.
pub async fn download_with<F, Fut>(
    req: &DownloadRequest,
    operation: &str,
    fetch: F,
    on_rejected: &(dyn Fn(&str, u32) + Sync),
) -> Result<Landed, ToolError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Fetched, ToolError>>,
{
    req.validate()
        .map_err(|reason| ToolError::permanent(operation, reason, None))?;
    let partial = req.partial();
    if req.sha256.is_none() && partial.exists() {
        fs::remove_file(&partial).map_err(|e| {
            ToolError::permanent(
                operation,
                format!(
                    "could not remove the stale partial file `{}`: {e}",
                    partial.display()
                ),
                None,
            )
        })?;
    }
    let sources = req.sources();
    let mut from = 0;
    let mut attempts = 0;
    let mut mismatches = 0;
    loop {
        let fetched = match fetch(sources[from..].to_vec()).await {
            Ok(fetched) => fetched,
            Err(mut e) => {
                e.attempts += attempts;
                let keep = matches!(
                    e.kind,
                    ToolErrorKind::Exhausted | ToolErrorKind::CircuitOpen
                ) && has_partial_data(&partial);
                if !keep {
                    let _ = fs::remove_file(&partial);
                }
                return Err(e);
            }
        };
        attempts += fetched.attempts;
        from += fetched.source;
        let landed = {
            let (partial, dest) = (partial.clone(), req.dest.clone());
            let (sha256, mode) = (req.sha256, req.mode);
            tokio::task::spawn_blocking(move || {
                verify_and_land(&partial, &dest, sha256.as_ref(), mode)
            })
            .await
        };
        let error = match landed {
            Ok(Ok(landed)) => return Ok(landed),
            Ok(Err(e)) => e,
            Err(join) => {
                return Err(ToolError::permanent(
                    operation,
                    format!("verifying the download failed: {join}"),
                    None,
                ));
            }
        };
        let mut tool_error = ToolError::permanent(operation, error.to_string(), None);
        tool_error.attempts = attempts;
        if matches!(error, LandError::Checksum { .. }) {
            on_rejected(&format!("{error} (from {})", sources[from]), attempts);
        }
        match error {
            LandError::Checksum { .. } if mismatches == 0 => mismatches += 1,
            LandError::Checksum { .. } => {
                tool_error.reason = format!(
                    "{} (from {}, downloaded twice)",
                    tool_error.reason, sources[from]
                );
                tool_error.hint = Some(
                    "the file served is not the one the sha256 pins: check the sha256 and the URL \
                     (a new release under the same name?), or try another mirror"
                        .into(),
                );
                return Err(tool_error);
            }
            LandError::Io { .. } => {
                let _ = fs::remove_file(&partial);
                return Err(tool_error);
            }
        }
    }
}

/// Downloads `req` by running `adapter`'s tool over the URL and then its mirrors: all of a
/// download adapter's `download` but the tool's command line, which `command` builds for
/// one attempt from the source URL, the partial file, whether to resume it (it holds bytes
/// already) and the attempt (whose timeout a tool can pass on).
///
/// Each source's circuit key is its host; the operation is `<tool> download <url>`, the
/// tool being [`Adapter::name`]. The rest is [`download_with`]'s.
pub async fn download_with_tool<A, C>(
    adapter: &Arc<A>,
    runner: &Runner,
    req: &DownloadRequest,
    command: C,
) -> Result<Landed, ToolError>
where
    A: Adapter,
    C: Fn(&str, &Path, bool, &Attempt) -> Cmd,
{
    let tool = adapter.name();
    let label = format!("download {}", req.url);
    let partial = req.partial();
    // An attempt that made the partial file grow made progress: the next one resumes from
    // there at once, and it does not count against the policy (see `Runner::with_progress`).
    let gauge_path = partial.clone();
    let runner = &runner.clone().with_progress(Arc::new(move || {
        std::fs::symlink_metadata(&gauge_path).map_or(0, |m| m.len())
    }));
    // Owned sources and copied references: the future borrows nothing from the closure,
    // so the download future stays `Send` (see `download_with`).
    let (partial, label_ref, command) = (&partial, &label, &command);
    // A download the checksum rejects is a failed attempt in the events (and so in the
    // report and the status lines), though the runner saw the tool succeed: downloaded
    // again the first time, permanent the second.
    let rejections = AtomicU32::new(0);
    let on_rejected = |reason: &str, attempt: u32| {
        let first = rejections.fetch_add(1, Ordering::Relaxed) == 0;
        runner.emit(&em_retry::Event::AttemptFailed {
            operation: Arc::new(Operation::new(tool, label.clone())),
            attempt,
            max_attempts: runner.policy().max_attempts(),
            class: if first {
                em_retry::FailureClass::Repairable("download again".into())
            } else {
                em_retry::FailureClass::Permanent
            },
            reason: reason.to_string(),
            duration: Duration::ZERO,
        });
    };
    download_with(
        req,
        &format!("{tool} {label}"),
        move |sources: Vec<String>| async move {
            let attempts = AtomicU32::new(0);
            let (_, source) = runner
                .run_with_mirrors(
                    adapter,
                    Operation::new(tool, label_ref.clone()),
                    &sources,
                    |url| url_host(url).to_string(),
                    |url, attempt| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        command(url, partial, has_partial_data(partial), attempt)
                    },
                )
                .await?;
            Ok(Fetched {
                source,
                attempts: attempts.load(Ordering::Relaxed),
            })
        },
        &on_rejected,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn sha(text: &str) -> Sha256 {
        Sha256::parse(text).expect("valid")
    }

    #[test]
    fn parse_accepts_either_case_and_prints_lowercase() {
        let upper = HELLO_SHA.to_uppercase();
        assert_eq!(sha(&upper), sha(HELLO_SHA));
        assert_eq!(sha(&upper).to_string(), HELLO_SHA);
        assert_eq!(HELLO_SHA.parse::<Sha256>().expect("valid"), sha(HELLO_SHA));
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let short = Sha256::parse("abc").expect_err("short");
        assert!(short.contains("has 3 characters"), "{short}");
        let long = Sha256::parse(&"a".repeat(65)).expect_err("long");
        assert!(long.contains("has 65 characters"), "{long}");
        let mut bad = HELLO_SHA.to_string();
        bad.replace_range(9..10, "g");
        let err = Sha256::parse(&bad).expect_err("non-hex");
        assert!(err.contains("'g' at position 10"), "{err}");
        let err = Sha256::parse(&format!("{} ", &HELLO_SHA[..63])).expect_err("space");
        assert!(err.contains("' ' at position 64"), "{err}");
        // Multi-byte characters count as one: the length message stays right.
        let err = Sha256::parse(&"é".repeat(64)).expect_err("non-ascii");
        assert!(err.contains("'é' at position 1"), "{err}");
    }

    #[test]
    fn hashing_streams_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"hello").expect("write");
        assert_eq!(Sha256::of_file(&path).expect("hash"), (sha(HELLO_SHA), 5));
    }

    #[test]
    fn partial_sits_beside_the_destination() {
        assert_eq!(
            partial_path(Path::new("/opt/tool/tool.tar.gz")),
            Path::new("/opt/tool/.tool.tar.gz.em-partial")
        );
    }

    #[test]
    fn relative_and_dotdot_destinations_are_refused() {
        let mut req = DownloadRequest::new("https://example.org/x", "tool.tar.gz");
        let err = req.validate().expect_err("relative");
        assert!(err.contains("`tool.tar.gz` is relative"), "{err}");
        req.dest = "/tmp/../etc/passwd".into();
        let err = req.validate().expect_err("dotdot");
        assert!(err.contains("`/tmp/../etc/passwd` contains `..`"), "{err}");
        req.dest = "/em-no-such-dir/x".into();
        let err = req.validate().expect_err("no parent");
        assert!(err.contains("`/em-no-such-dir`, does not exist"), "{err}");
        req.dest = "/tmp/x".into();
        assert_eq!(req.validate(), Ok(()));
        req.mode = Some(0o17777);
        assert!(req.validate().expect_err("mode").contains("17777"));
    }

    #[test]
    fn http_is_refused_unless_allowed() {
        let mut req = DownloadRequest::new("http://127.0.0.1:8080/x", "/tmp/x");
        let err = req.validate().expect_err("http");
        assert!(
            err.contains("`http://127.0.0.1:8080/x` is plain http://"),
            "{err}"
        );
        req.allow_http = true;
        assert_eq!(req.validate(), Ok(()));
        // Mirrors are checked too.
        req.allow_http = false;
        req.url = "https://example.org/x".into();
        req.mirrors = vec!["http://mirror.example.org/x".into()];
        assert!(
            req.validate()
                .expect_err("mirror")
                .contains("mirror.example.org")
        );
    }

    #[test]
    fn urls_that_could_inject_are_refused() {
        for (bad, says) in [
            ("-o/etc/passwd", "starts with `-`"),
            ("https://example.org/a b", "contains ' '"),
            ("https://example.org/a\nb", "contains '\\n'"),
            ("ftp://example.org/x", "is not an https:// URL"),
            ("file:///etc/passwd", "is not an https:// URL"),
            ("https:///x", "has no host"),
        ] {
            let err = check_url(bad, true).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn hosts_key_the_circuit() {
        assert_eq!(url_host("https://example.org/a/b"), "example.org");
        assert_eq!(
            url_host("https://user:pw@mirror.example.org:8443/x?y"),
            "mirror.example.org:8443"
        );
        assert_eq!(url_host("http://127.0.0.1:8080"), "127.0.0.1:8080");
    }

    #[test]
    fn retry_after_is_read_from_the_last_response() {
        let curl = "HTTP/1.0 302 Found\r\nRetry-After: 99\r\n\r\nHTTP/1.0 429 Too Many Requests\r\nretry-after: 7\r\n\r\n";
        assert_eq!(retry_after(curl), Some(Duration::from_secs(7)));
        let wget = "  HTTP/1.1 503 Service Unavailable\n  Retry-After: 1\n  Content-Length: 3\n";
        assert_eq!(retry_after(wget), Some(Duration::from_secs(1)));
        let redirect_only =
            "HTTP/1.0 302 Found\nRetry-After: 99\n\nHTTP/1.0 503 Service Unavailable\n";
        assert_eq!(retry_after(redirect_only), None);
        assert_eq!(
            retry_after("HTTP/1.1 429 x\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\n"),
            None
        );
        assert_eq!(retry_after("HTTP/1.1 429 x\nRetry-After: 3600\n"), None);
    }

    #[test]
    fn output_path_is_read_from_the_command_line() {
        assert_eq!(
            output_path_in(
                "LC_ALL=C curl -C - -o '/tmp/a b/.x.em-partial' https://h/x",
                "-o"
            ),
            Some(PathBuf::from("/tmp/a b/.x.em-partial"))
        );
        assert_eq!(output_path_in("curl https://h/x", "-o"), None);
    }

    #[test]
    fn mismatch_leaves_nothing_at_dest_and_removes_the_partial() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("tool");
        let partial = partial_path(&dest);
        fs::write(&partial, b"not hello").expect("write");
        let err = verify_and_land(&partial, &dest, Some(&sha(HELLO_SHA)), Some(0o755))
            .expect_err("mismatch");
        match &err {
            LandError::Checksum { expected, got } => {
                assert_eq!(*expected, sha(HELLO_SHA));
                assert_ne!(got, expected);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("checksum mismatch: expected {HELLO_SHA}, got ")),
            "{err}"
        );
        assert!(!dest.exists());
        assert!(!partial.exists());
    }

    #[test]
    fn success_lands_with_the_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("tool");
        fs::write(&dest, b"old").expect("an older file");
        let partial = partial_path(&dest);
        fs::write(&partial, b"hello").expect("write");
        let landed =
            verify_and_land(&partial, &dest, Some(&sha(HELLO_SHA)), Some(0o750)).expect("lands");
        assert_eq!(
            landed,
            Landed {
                path: dest.clone(),
                sha256: sha(HELLO_SHA),
                bytes: 5
            }
        );
        assert_eq!(fs::read(&dest).expect("read"), b"hello");
        let mode = fs::metadata(&dest).expect("meta").permissions().mode();
        assert_eq!(mode & 0o7777, 0o750);
        assert!(!partial.exists());
    }

    #[test]
    fn a_missing_output_lands_as_an_empty_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("empty");
        let landed = verify_and_land(&partial_path(&dest), &dest, None, None).expect("lands");
        assert_eq!(landed.bytes, 0);
        assert_eq!(
            landed.sha256.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn a_second_mismatch_is_permanent_and_nothing_lands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = DownloadRequest::new("https://example.org/x", dir.path().join("x"));
        req.sha256 = Some(sha(HELLO_SHA));
        let calls = std::sync::atomic::AtomicU32::new(0);
        let partial = req.partial();
        let rejected = std::sync::Mutex::new(Vec::new());
        let on_rejected = |reason: &str, attempts: u32| {
            rejected
                .lock()
                .expect("lock")
                .push((reason.to_string(), attempts));
        };
        let err = download_with(
            &req,
            "fetch x",
            |_: Vec<String>| {
                std::future::ready({
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    fs::write(&partial, b"corrupt").expect("write");
                    Ok(Fetched {
                        source: 0,
                        attempts: 1,
                    })
                })
            },
            &on_rejected,
        )
        .await
        .expect_err("mismatch twice");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(err.kind, ToolErrorKind::Permanent);
        assert_eq!(err.attempts, 2);
        assert!(
            err.reason.starts_with("checksum mismatch: expected "),
            "{}",
            err.reason
        );
        assert!(!req.dest.exists());
        assert!(!partial.exists());
        // Both rejections were told, with the attempts made so far.
        let rejected = rejected.lock().expect("lock");
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert!(
            rejected[0].0.starts_with("checksum mismatch"),
            "{rejected:?}"
        );
        assert!(
            rejected[0].0.ends_with("(from https://example.org/x)"),
            "{rejected:?}"
        );
        assert_eq!((rejected[0].1, rejected[1].1), (1, 2));
    }

    #[tokio::test]
    async fn a_stale_partial_is_dropped_without_a_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = DownloadRequest::new("https://example.org/x", dir.path().join("x"));
        fs::write(req.partial(), b"stale").expect("write");
        let partial = req.partial();
        let seen = std::sync::Mutex::new(None);
        download_with(
            &req,
            "fetch x",
            |_: Vec<String>| {
                std::future::ready({
                    *seen.lock().expect("lock") = Some(partial.exists());
                    fs::write(&partial, b"hello").expect("write");
                    Ok(Fetched {
                        source: 0,
                        attempts: 1,
                    })
                })
            },
            &|_, _| {},
        )
        .await
        .expect("lands");
        assert_eq!(*seen.lock().expect("lock"), Some(false));
        assert_eq!(fs::read(&req.dest).expect("read"), b"hello");
        // With a checksum, the partial is kept for the tool to resume.
        let mut req = req;
        req.sha256 = Some(sha(HELLO_SHA));
        fs::write(req.partial(), b"hel").expect("write");
        download_with(
            &req,
            "fetch x",
            |_: Vec<String>| {
                std::future::ready({
                    assert_eq!(fs::read(&partial).expect("kept"), b"hel");
                    fs::write(&partial, b"hello").expect("write");
                    Ok(Fetched {
                        source: 0,
                        attempts: 1,
                    })
                })
            },
            &|_, _| {},
        )
        .await
        .expect("lands");
    }

    #[tokio::test]
    async fn the_second_download_starts_at_the_source_that_gave_the_bad_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = DownloadRequest::new("https://a.example/x", dir.path().join("x"));
        req.mirrors = vec!["https://b.example/x".into(), "https://c.example/x".into()];
        req.sha256 = Some(sha(HELLO_SHA));
        let partial = req.partial();
        let seen = std::sync::Mutex::new(Vec::new());
        let landed = download_with(
            &req,
            "fetch x",
            |sources: Vec<String>| {
                std::future::ready({
                    let mut seen = seen.lock().expect("lock");
                    seen.push(sources.clone());
                    // First round: `b` answers (after `a` was exhausted) with a bad file.
                    let (body, source): (&[u8], usize) = if seen.len() == 1 {
                        (b"corrupt", 1)
                    } else {
                        (b"hello", 0)
                    };
                    fs::write(&partial, body).expect("write");
                    Ok(Fetched {
                        source,
                        attempts: 2,
                    })
                })
            },
            &|_, _| {},
        )
        .await
        .expect("lands");
        assert_eq!(landed.sha256, sha(HELLO_SHA));
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].len(), 3);
        assert_eq!(seen[1], ["https://b.example/x", "https://c.example/x"]);
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_a_resumable_partial_only_when_transient() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = DownloadRequest::new("https://example.org/x", dir.path().join("x"));
        req.sha256 = Some(sha(HELLO_SHA));
        let partial = req.partial();
        for (kind, kept) in [
            (ToolErrorKind::Exhausted, true),
            (ToolErrorKind::Permanent, false),
        ] {
            let err = download_with(
                &req,
                "fetch x",
                |_: Vec<String>| {
                    std::future::ready({
                        fs::write(&partial, b"hel").expect("write");
                        let mut e = ToolError::permanent("fetch x", "down", None);
                        e.kind = kind.clone();
                        e.attempts = 4;
                        Err(e)
                    })
                },
                &|_, _| {},
            )
            .await
            .expect_err("fails");
            assert_eq!(err.attempts, 4);
            assert_eq!(partial.exists(), kept, "{kind:?}");
            assert!(!req.dest.exists());
        }
    }

    #[tokio::test]
    async fn an_invalid_request_runs_nothing() {
        let req = DownloadRequest::new("http://example.org/x", "/tmp/x");
        let err = download_with(
            &req,
            "fetch x",
            |_: Vec<String>| -> std::future::Ready<Result<Fetched, ToolError>> {
                panic!("must not run")
            },
            &|_, _| {},
        )
        .await
        .expect_err("http refused");
        assert_eq!(err.attempts, 0);
        assert_eq!(err.kind, ToolErrorKind::Permanent);
    }
}
