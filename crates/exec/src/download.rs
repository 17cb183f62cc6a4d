//! Landing a downloaded file, whichever tool fetched it (curl, wget).
//!
//! The download adapters share one discipline, from SPEC section 4:
//!
//! - downloads to one destination take turns: [`DestLock`], an `flock` on
//!   `<dest dir>/.<file name>.em-lock`, is held from before the partial file is looked at
//!   until the file landed;
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
//!   adapter brings only its command line;
//! - [`DownloadTool`] makes a tool an [`Adapter`] whose one repair is [`DownloadRepair`],
//!   and [`http_verdict`] reads an HTTP error status the same way for every tool.
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
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_retry::{Attempt, Operation};
use sha2::Digest;

use crate::{Adapter, Checked, Cmd, Runner, ToolError, ToolErrorKind};

mod tool;
pub use tool::{
    DownloadRepair, DownloadTool, HttpError, http_verdict, tls_hint, tool_seconds, url_in,
    write_error_hint,
};

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
    /// The most bytes the file may have; `None`: [`DEFAULT_MAX_SIZE`].
    pub max_size: Option<u64>,
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
            max_size: None,
        }
    }

    /// The size cap: [`DownloadRequest::max_size`] or [`DEFAULT_MAX_SIZE`].
    pub fn max_size(&self) -> u64 {
        self.max_size.unwrap_or(DEFAULT_MAX_SIZE)
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
    let parts = em_retry::url::split(url);
    match parts.scheme {
        Some("https") => {}
        Some("http") if allow_http => {}
        Some("http") => {
            return Err(format!(
                "URL `{url}` is plain http://: use https://, or allow http for this download (`allow_http = true`)"
            ));
        }
        _ => return Err(format!("URL `{url}` is not an https:// URL")),
    }
    if parts.authority.is_empty() {
        return Err(format!("URL `{url}` has no host"));
    }
    Ok(())
}

/// The host (and port) of a URL, without user info: the key of its circuit breaker.
/// `https://user@mirror.example.org:8443/x` gives `mirror.example.org:8443`.
pub fn url_host(url: &str) -> &str {
    em_retry::url::authority(url)
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

/// The lock file of `dest`: `<dest dir>/.<file name>.em-lock`. Every download to `dest`
/// holds an exclusive `flock` on it from before it looks at the partial file until the
/// file landed (or the download gave up), so two processes (or two steps of one run)
/// downloading to the same destination take turns instead of writing into one partial
/// file. The holder deletes it when done ([`DestLock`]).
pub fn lock_path(dest: &Path) -> PathBuf {
    sibling(dest, "em-lock")
}

/// Where the validator of the partial file is kept: `<dest dir>/.<file name>.em-validator`
/// (the `ETag` or `Last-Modified` of the response that started it), sent as `If-Range`
/// when the partial file is resumed, so that a server whose file changed sends the whole
/// new file instead of the rest of the new one after the start of the old one.
pub fn validator_path(dest: &Path) -> PathBuf {
    sibling(dest, "em-validator")
}

fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{suffix}"))
}

/// Opens `path` without following a symbolic link in its last component.
fn open_nofollow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The exclusive lock of one destination ([`lock_path`]); released, and its file
/// deleted, on drop. A killed holder's lock is released by the kernel.
#[derive(Debug)]
pub struct DestLock {
    path: PathBuf,
    file: File,
}

impl DestLock {
    /// Takes the lock of `dest`, waiting (asynchronously, polling every 10 ms) while
    /// another download holds it; dropping the future ends the wait.
    ///
    /// The holder deletes the lock file before it unlocks: a waiter that then gets the
    /// lock of the deleted file sees that the path no longer names its file, and opens
    /// the path again.
    pub async fn acquire(dest: &Path) -> io::Result<DestLock> {
        let path = lock_path(dest);
        loop {
            let file = open_nofollow(
                &path,
                OpenOptions::new().read(true).write(true).create(true),
            )?;
            match file.try_lock() {
                Ok(()) => {
                    let ours = file.metadata()?;
                    match fs::symlink_metadata(&path) {
                        Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                            return Ok(DestLock { path, file });
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(fs::TryLockError::WouldBlock) => {
                    drop(file);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

impl Drop for DestLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Makes `partial` a regular file of ours for the tool to write into: a symbolic link
/// (or anything else that is not a regular file) there is deleted, never written
/// through, and a missing partial file is created empty. The tool then opens a file that
/// already exists and that only we could have put there.
pub fn prepare_partial(partial: &Path) -> io::Result<()> {
    match fs::symlink_metadata(partial) {
        Ok(m) if m.file_type().is_file() => return Ok(()),
        Ok(m) if m.file_type().is_dir() => {
            return Err(io::Error::other(format!(
                "`{}` is a directory",
                partial.display()
            )));
        }
        Ok(_) => fs::remove_file(partial)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    open_nofollow(
        partial,
        OpenOptions::new().write(true).create_new(true).mode(0o666),
    )
    .map(drop)
}

/// The bytes that may still be written in `dir`'s file system (`statvfs`, the blocks
/// available to an unprivileged user); `None` when it cannot be told.
pub fn available_space(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// One HTTP response in a tool's header dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The last value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The validator a resume can send as `If-Range`: a strong `ETag`, else
    /// `Last-Modified` (a weak ETag may not be used in `If-Range`).
    pub fn validator(&self) -> Option<String> {
        let ok = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if let Some(etag) = self
            .header("etag")
            .filter(|e| !e.starts_with("W/") && ok(e))
        {
            return Some(etag.to_string());
        }
        self.header("last-modified")
            .filter(|v| ok(v))
            .map(str::to_string)
    }

    /// The whole size of the file: `Content-Range: bytes A-B/TOTAL` or `bytes */TOTAL`,
    /// else the `Content-Length` of a `200`.
    pub fn total_size(&self) -> Option<u64> {
        if let Some(range) = self.header("content-range") {
            return range.rsplit_once('/')?.1.trim().parse().ok();
        }
        if self.status == 200 {
            return self.header("content-length")?.trim().parse().ok();
        }
        None
    }
}

/// Every HTTP response in a header dump (curl's `--dump-header -`, wget's
/// `--server-response`, indented): a line `HTTP/x NNN ...` starts one, `Name: value` lines
/// are its headers.
pub fn responses(text: &str) -> Vec<Response> {
    let mut all: Vec<Response> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("HTTP/") {
            let status = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            all.push(Response {
                status,
                headers: Vec::new(),
            });
        } else if let Some(current) = all.last_mut()
            && let Some((name, value)) = line.split_once(':')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            current
                .headers
                .push((name.to_string(), value.trim().to_string()));
        }
    }
    all
}

/// The scheme of a `Location` that names one (`ftp` of `ftp://h/x`); `None` for a
/// relative reference.
fn location_scheme(location: &str) -> Option<String> {
    let scheme = em_retry::url::split(location).scheme?;
    (!scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    .then(|| scheme.to_ascii_lowercase())
}

/// What a download attempt must not accept even when the tool exited 0, read from its
/// output (`text`: the header dump and the tool's messages) and the partial file:
/// a redirect to a scheme the request does not allow, a `416` whose `Content-Range`
/// says the file is larger than the partial (wget takes any 416 for "complete"), a
/// response whose validator differs from the one the partial started with (a changed
/// file spliced onto the old start), an empty body, a file over the size cap.
///
/// Files it cannot trust are deleted (the partial and its validator) before it answers,
/// so that the next attempt starts from zero.
pub fn check_attempt(text: &str, spec: &AttemptSpec) -> Option<Checked> {
    let all = responses(text);
    let restart = || {
        let _ = delete_partial(&spec.partial);
        let _ = delete_partial(&spec.validator);
    };
    for location in all.iter().filter_map(|r| r.header("location")) {
        if let Some(scheme) = location_scheme(location)
            && !(scheme == "https" || (scheme == "http" && spec.allow_http))
        {
            restart();
            return Some(Checked::Permanent(
                format!(
                    "redirected to a {scheme}:// URL ({}), which this download does not allow",
                    crate::redact_url(location)
                ),
                Some(
                    "downloads are https only, after redirects too; use an https URL, or set \
                     `allow_http = true` on the step if plain http is intended"
                        .into(),
                ),
            ));
        }
    }
    let last = all.last();
    let size = fs::symlink_metadata(&spec.partial).map_or(0, |m| m.len());
    if let Some(r) = last
        && r.status == 416
    {
        return match r.total_size() {
            Some(total) if total == size && size > 0 => None,
            total => {
                restart();
                Some(Checked::Transient(format!(
                    "416 Range Not Satisfiable: the partial file ({size} bytes) does not fit the \
                     remote file ({}): downloading again from the start",
                    total.map_or("size not said".into(), |t| format!("{t} bytes"))
                )))
            }
        };
    }
    if let Some(r) = last
        && r.status == 206
        && let (Some(saved), Some(now)) = (spec.saved_validator.as_deref(), r.validator())
        && saved != now
    {
        restart();
        return Some(Checked::Transient(format!(
            "the file changed on the server during the download (validator {saved} became \
             {now}): downloading again from the start"
        )));
    }
    if size > spec.max_size {
        restart();
        return Some(too_large(size, spec.max_size));
    }
    if size == 0 && !spec.empty_ok {
        restart();
        return Some(Checked::Transient(format!(
            "the server answered {} with an empty body",
            last.map_or("success".into(), |r| r.status.to_string())
        )));
    }
    None
}

fn too_large(size: u64, max: u64) -> Checked {
    Checked::Permanent(
        format!("the download is larger than allowed ({size} bytes, at most {max})"),
        Some(
            "the limit is the smaller of the download size cap (8 GiB) and the free space of \
             the destination's file system: free space there, or check the URL"
                .into(),
        ),
    )
}

/// What [`check_attempt`] checks one attempt against.
#[derive(Clone, Debug)]
pub struct AttemptSpec {
    /// The partial file.
    pub partial: PathBuf,
    /// Its validator file ([`validator_path`]).
    pub validator: PathBuf,
    /// The validator the partial file was started with, when it is resumed.
    pub saved_validator: Option<String>,
    /// Whether plain http is allowed after redirects.
    pub allow_http: bool,
    /// The most bytes the file may have (the size cap, or the free space if less).
    pub max_size: u64,
    /// Whether an empty file is what the request expects (its sha256 is the empty one).
    pub empty_ok: bool,
}

/// The sha256 of no bytes.
pub const EMPTY_SHA256: Sha256 = Sha256([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// The default size cap of a download: 8 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 8 << 30;

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
    /// The file is empty and the request did not expect an empty file; deleted.
    Empty,
    /// The file is larger than the cap; deleted.
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The cap.
        max: u64,
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
            LandError::Empty => f.write_str("the download is empty"),
            LandError::TooLarge { bytes, max } => write!(
                f,
                "the download is larger than allowed ({bytes} bytes, at most {max})"
            ),
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
            _ => None,
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

/// What [`verify_and_land`] checks besides the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LandRules {
    /// The permission bits to give the file (`None`: as the tool made it).
    pub mode: Option<u32>,
    /// The most bytes the file may have.
    pub max_size: u64,
}

impl Default for LandRules {
    fn default() -> Self {
        LandRules {
            mode: None,
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

/// Verifies `partial` against `sha256` and moves it onto `dest`.
///
/// The partial file is opened once, without following a symbolic link (a link there is
/// refused), and everything is done on that descriptor: hash it, `fchmod` it, fsync it;
/// then the path is renamed onto `dest` only if it still names that same file with the
/// size that was hashed (a tool of another process still writing into it would change
/// it), and the size is checked once more after the rename. So the file at `dest` is the
/// one whose digest was checked.
///
/// Refused, with the partial file deleted and nothing written at `dest` (an older file
/// already there stays as it was): a digest that is not `sha256`, an empty file (unless
/// `sha256` is the empty file's: a server answering `200` with no body is not a
/// download), a file over `rules.max_size`. The directory is fsynced after the rename, so
/// that after a crash the destination is either the old file or the whole new one.
pub fn verify_and_land(
    partial: &Path,
    dest: &Path,
    sha256: Option<&Sha256>,
    rules: LandRules,
) -> Result<Landed, LandError> {
    let mut file = open_nofollow(partial, OpenOptions::new().read(true))
        .map_err(io_error("open (without following a link)", partial))?;
    let before = file.metadata().map_err(io_error("stat", partial))?;
    if !before.is_file() {
        return Err(LandError::Io {
            action: "land",
            path: partial.to_path_buf(),
            source: io::Error::other("not a regular file"),
        });
    }
    let (got, bytes) = Sha256::of_reader(&mut file).map_err(io_error("read", partial))?;
    let refused = if let Some(expected) = sha256
        && *expected != got
    {
        Some(LandError::Checksum {
            expected: *expected,
            got,
        })
    } else if bytes == 0 && sha256 != Some(&EMPTY_SHA256) {
        Some(LandError::Empty)
    } else if bytes > rules.max_size {
        Some(LandError::TooLarge {
            bytes,
            max: rules.max_size,
        })
    } else {
        None
    };
    if let Some(refused) = refused {
        fs::remove_file(partial).map_err(io_error("remove", partial))?;
        return Err(refused);
    }
    if let Some(mode) = rules.mode {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_error("chmod", partial))?;
    }
    file.sync_all().map_err(io_error("fsync", partial))?;
    let same = |m: &fs::Metadata| m.ino() == before.ino() && m.dev() == before.dev();
    let changed = || LandError::Io {
        action: "land",
        path: partial.to_path_buf(),
        source: io::Error::other("the file changed while it was verified (another writer?)"),
    };
    let now = fs::symlink_metadata(partial).map_err(io_error("stat", partial))?;
    if !same(&now) || now.len() != bytes {
        return Err(changed());
    }
    fs::rename(partial, dest).map_err(io_error("rename onto destination", dest))?;
    let after = file.metadata().map_err(io_error("stat", dest))?;
    if after.len() != bytes {
        if fs::symlink_metadata(dest).is_ok_and(|m| same(&m)) {
            let _ = fs::remove_file(dest);
        }
        return Err(changed());
    }
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
/// 2. The destination's lock ([`DestLock`]) is taken: downloads to one destination take
///    turns, whichever process or step they belong to. It is held until the end.
/// 3. A partial file left by an earlier run is kept for resuming when the request has a
///    `sha256` (a wrong prefix is caught by the check), and deleted when it has none (a
///    resumed file could silently join two versions of the download).
/// 4. `fetch(sources)` (owned, so that the future it returns borrows nothing from the
///    call: an async closure over `&[String]` would make the whole download future
///    `!Send` through higher-ranked lifetimes, and the CLI spawns downloads) runs the tool
///    over the URL and its mirrors until one succeeds, writing to
///    [`DownloadRequest::partial`] (it decides on its own whether to resume).
/// 5. [`verify_and_land`]. On a checksum mismatch the partial file is gone; the download
///    runs once more, starting at the source that gave the bad file and going down the
///    list. A second mismatch is permanent: `checksum mismatch: expected X, got Y`.
///    Each mismatch is told to `on_rejected` (the reason and the attempts made so far),
///    so that the caller can show and report it like a failed attempt.
///
/// When the fetch fails, the partial file is kept for a later resume only when the failure
/// was transient, the file holds bytes and the request has a `sha256` to check the
/// resumed file against; otherwise it is deleted. The validator file goes in every case.
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
    let _lock = DestLock::acquire(&req.dest).await.map_err(|e| {
        ToolError::permanent(
            operation,
            format!("could not lock `{}`: {e}", lock_path(&req.dest).display()),
            None,
        )
    })?;
    let partial = req.partial();
    let validator = validator_path(&req.dest);
    let _ = delete_partial(&validator);
    let not_ours = fs::symlink_metadata(&partial).is_ok_and(|m| !m.file_type().is_file());
    if (req.sha256.is_none() || not_ours) && fs::symlink_metadata(&partial).is_ok() {
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
    let shown: Vec<String> = sources.iter().map(|s| crate::redact_url(s)).collect();
    let mut from = 0;
    let mut attempts = 0;
    let mut mismatches = 0;
    let result = loop {
        let fetched = match fetch(sources[from..].to_vec()).await {
            Ok(fetched) => fetched,
            Err(mut e) => {
                e.attempts += attempts;
                let keep = matches!(
                    e.kind,
                    ToolErrorKind::Exhausted | ToolErrorKind::CircuitOpen
                ) && req.sha256.is_some()
                    && has_partial_data(&partial);
                if !keep {
                    let _ = fs::remove_file(&partial);
                }
                break Err(e);
            }
        };
        attempts += fetched.attempts;
        from += fetched.source;
        let landed = {
            let (partial, dest) = (partial.clone(), req.dest.clone());
            let sha256 = req.sha256;
            let rules = LandRules {
                mode: req.mode,
                max_size: req.max_size(),
            };
            tokio::task::spawn_blocking(move || {
                verify_and_land(&partial, &dest, sha256.as_ref(), rules)
            })
            .await
        };
        let error = match landed {
            Ok(Ok(landed)) => break Ok(landed),
            Ok(Err(e)) => e,
            Err(join) => {
                break Err(ToolError::permanent(
                    operation,
                    format!("verifying the download failed: {join}"),
                    None,
                ));
            }
        };
        let mut tool_error = ToolError::permanent(operation, error.to_string(), None);
        tool_error.attempts = attempts;
        if matches!(error, LandError::Checksum { .. }) {
            on_rejected(&format!("{error} (from {})", shown[from]), attempts);
        }
        match error {
            LandError::Checksum { .. } if mismatches == 0 => mismatches += 1,
            LandError::Checksum { .. } => {
                tool_error.reason = format!(
                    "{} (from {}, downloaded twice)",
                    tool_error.reason, shown[from]
                );
                tool_error.hint = Some(
                    "the file served is not the one the sha256 pins: check the sha256 and the URL \
                     (a new release under the same name?), or try another mirror"
                        .into(),
                );
                break Err(tool_error);
            }
            LandError::Empty | LandError::TooLarge { .. } => {
                tool_error.reason = format!("{} (from {})", tool_error.reason, shown[from]);
                break Err(tool_error);
            }
            LandError::Io { .. } => {
                let _ = fs::remove_file(&partial);
                break Err(tool_error);
            }
        }
    };
    let _ = delete_partial(&validator);
    result
}

/// What the command of one attempt is built from (see [`download_with_tool`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptPlan {
    /// The URL, without its user info (that is in `credentials`).
    pub url: String,
    /// The partial file the tool writes (it exists: [`prepare_partial`]).
    pub partial: PathBuf,
    /// Resume the partial file (it holds bytes, and a validator or a sha256 makes a
    /// resumed file safe).
    pub resume: bool,
    /// The `If-Range` value to send with the resume.
    pub if_range: Option<String>,
    /// The most bytes the file may have: the request's cap, or less when the destination's
    /// file system has less room.
    pub max_size: u64,
    /// The URL's user and password, for the tool to read from a file it writes into
    /// `secrets` (never the command line, where `ps` shows it).
    pub credentials: Option<Credentials>,
    /// A private directory (mode 0700, deleted after the download) for that file; there
    /// when `credentials` are.
    pub secrets: Option<PathBuf>,
}

/// A user and password from a URL's user info, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The host they are for (without the port).
    pub host: String,
    /// The user.
    pub user: String,
    /// The password (may be empty).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}@{}, ***)", self.user, self.host)
    }
}

/// Splits the user info off a URL: `https://u:p@h:1/x` gives `https://h:1/x` and the
/// credentials for `h`. A URL without user info comes back as it is.
pub fn split_credentials(url: &str) -> Result<(String, Option<Credentials>), String> {
    let parts = em_retry::url::split(url);
    let (Some(scheme), Some(userinfo)) = (parts.scheme, parts.userinfo) else {
        return Ok((url.to_string(), None));
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (user, password) = (percent_decode(user)?, percent_decode(password)?);
    if let Some(c) = user
        .chars()
        .chain(password.chars())
        .find(|c| c.is_whitespace() || c.is_control() || *c == '"' || *c == '\\')
    {
        return Err(format!(
            "the credentials in URL `{}` contain {c:?}, which cannot be passed safely",
            crate::redact_url(url)
        ));
    }
    Ok((
        format!("{scheme}://{}{}", parts.authority, parts.rest),
        Some(Credentials {
            host: parts.host().to_string(),
            user,
            password,
        }),
    ))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a `%` in the user info is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user info is not UTF-8".to_string())
}

/// Downloads `req` by running `adapter`'s tool over the URL and then its mirrors: all of a
/// download adapter's `download` but the tool's command line, which `command` builds for
/// one attempt from an [`AttemptPlan`] and the attempt (whose timeout a tool can pass on).
///
/// Before each attempt the partial file is made a regular file of ours
/// ([`prepare_partial`]); it is resumed only with a validator of the response that
/// started it (sent as `If-Range`) or a sha256 to check the result, else emptied. After
/// each attempt [`check_attempt`] reads the output (an empty body, a 416, a redirect to
/// another scheme, a changed file are failed attempts, whatever the tool's exit code).
/// While the tool runs, the announced size (`Content-Length`, `Content-Range`) and the
/// partial file's size are watched: past the cap (the request's `max_size`, or the free
/// space of the destination's file system if less), the tool is stopped, the partial file
/// deleted and the download fails for good.
///
/// Each source's circuit key is its host; the operation is `<tool> download <url>`, the
/// tool being [`Adapter::name`], the URL without user info. The rest is
/// [`download_with`]'s.
pub async fn download_with_tool<A, C>(
    adapter: &Arc<A>,
    runner: &Runner,
    req: &DownloadRequest,
    command: C,
) -> Result<Landed, ToolError>
where
    A: Adapter,
    C: Fn(&AttemptPlan, &Attempt) -> Cmd,
{
    let tool = adapter.name();
    let label = format!("download {}", crate::redact_url(&req.url));
    let operation = format!("{tool} {label}");
    let sources = split_sources(req, &operation)?;
    // Held until the download ends: dropping it deletes the credentials files.
    let secrets = credentials_dir(&sources, &operation)?;
    let partial = req.partial();
    let validator = validator_path(&req.dest);
    let spec = Arc::new(Mutex::new(AttemptSpec {
        partial: partial.clone(),
        validator: validator.clone(),
        saved_validator: None,
        allow_http: req.allow_http,
        max_size: req.max_size(),
        empty_ok: req.sha256 == Some(EMPTY_SHA256),
    }));
    let plain = plain_request(req, &sources);
    let download = &ToolDownload {
        adapter,
        runner: watching_runner(runner, partial.clone(), spec.clone()),
        tool,
        label,
        operation,
        sources,
        secrets: secrets.as_ref().map(|d| d.path().to_path_buf()),
        sha256: req.sha256,
        dir: req.dest.parent().unwrap_or(Path::new("/")).to_path_buf(),
        partial,
        validator,
        spec,
        announced: Arc::default(),
        rejections: AtomicU32::new(0),
    };
    // Owned sources and copied references: the future borrows nothing from the closure,
    // so the download future stays `Send` (see `download_with`).
    let command = &command;
    download_with(
        &plain,
        &download.operation,
        move |sources: Vec<String>| download.fetch(command, sources),
        &|reason: &str, attempt: u32| download.reject(reason, attempt),
    )
    .await
}

/// Each source of `req` as its plain URL and the credentials of its user info; a user info
/// that cannot be passed safely fails the download before anything runs.
fn split_sources(
    req: &DownloadRequest,
    operation: &str,
) -> Result<Vec<(String, Option<Credentials>)>, ToolError> {
    req.sources()
        .iter()
        .map(|url| {
            split_credentials(url).map_err(|reason| ToolError::permanent(operation, reason, None))
        })
        .collect()
}

/// A private directory for the tool's credentials files, when a source has credentials.
fn credentials_dir(
    sources: &[(String, Option<Credentials>)],
    operation: &str,
) -> Result<Option<tempfile::TempDir>, ToolError> {
    if !sources.iter().any(|(_, c)| c.is_some()) {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("em-credentials-")
        .tempdir()
        .map_err(|e| {
            ToolError::permanent(
                operation,
                format!("could not create a private directory for the credentials: {e}"),
                None,
            )
        })?;
    Ok(Some(dir))
}

/// `req` with its URL and mirrors stripped of their user info, as [`download_with`]
/// validates, shows and fetches them.
fn plain_request(
    req: &DownloadRequest,
    sources: &[(String, Option<Credentials>)],
) -> DownloadRequest {
    let plain: Vec<String> = sources.iter().map(|(u, _)| u.clone()).collect();
    let mut req = req.clone();
    req.url = plain[0].clone();
    req.mirrors = plain[1..].to_vec();
    req
}

/// `runner` watching the partial file: its growth is progress, and every finished run is
/// read against `spec` ([`check_run`]).
fn watching_runner(runner: &Runner, partial: PathBuf, spec: Arc<Mutex<AttemptSpec>>) -> Runner {
    // An attempt that made the partial file grow made progress: the next one resumes from
    // there at once, and it does not count against the policy (see `Runner::with_progress`).
    runner
        .clone()
        .with_progress(Arc::new(move || {
            std::fs::symlink_metadata(&partial).map_or(0, |m| m.len())
        }))
        .with_output_check(Arc::new(move |run: &crate::ToolFailure| {
            check_run(run, &spec)
        }))
}

/// Reads a finished run of the tool: a `200` that left bytes in the partial file saves its
/// validator for a resume (or drops a stale one when it has none), then [`check_attempt`].
fn check_run(run: &crate::ToolFailure, spec: &Mutex<AttemptSpec>) -> Option<Checked> {
    let spec = lock(spec).clone();
    let text = run.text();
    if let Some(last) = responses(&text).last()
        && last.status == 200
        && has_partial_data(&spec.partial)
    {
        match last.validator() {
            Some(v) => {
                let _ = write_private(&spec.validator, v.as_bytes());
            }
            None => {
                let _ = delete_partial(&spec.validator);
            }
        }
    }
    check_attempt(&text, &spec)
}

/// One [`download_with_tool`] call, shared by every fetch and attempt it makes.
struct ToolDownload<'a, A: Adapter> {
    adapter: &'a Arc<A>,
    /// The caller's runner, watching the partial file ([`watching_runner`]).
    runner: Runner,
    /// The tool, [`Adapter::name`].
    tool: &'static str,
    /// `download <url>`, the URL redacted.
    label: String,
    /// `<tool> <label>`, as errors name it.
    operation: String,
    /// Each source's plain URL and credentials ([`split_sources`]).
    sources: Vec<(String, Option<Credentials>)>,
    /// The private directory for the credentials files, when there are credentials.
    secrets: Option<PathBuf>,
    sha256: Option<Sha256>,
    /// The destination's directory, whose free space caps the file.
    dir: PathBuf,
    partial: PathBuf,
    validator: PathBuf,
    /// What the current attempt is checked against; its cap shrinks with the free space.
    spec: Arc<Mutex<AttemptSpec>>,
    /// What the tool's output announced, read as it arrives: the size of the file.
    announced: Arc<Announced>,
    /// Files the checksum rejected so far.
    rejections: AtomicU32,
}

impl<A: Adapter> ToolDownload<'_, A> {
    /// Runs the tool over `sources` (the URL and the mirrors left) until one succeeds; stops
    /// it for good when the partial file or the announced size passes the cap.
    async fn fetch<C>(&self, command: &C, sources: Vec<String>) -> Result<Fetched, ToolError>
    where
        C: Fn(&AttemptPlan, &Attempt) -> Cmd,
    {
        let attempts = AtomicU32::new(0);
        let run = self.runner.run_with_mirrors(
            self.adapter,
            Operation::new(self.tool, self.label.clone()),
            &sources,
            |url| url_host(url).to_string(),
            |url, attempt| {
                attempts.fetch_add(1, Ordering::Relaxed);
                let plan = self.plan(url);
                let watch = self.announced.clone();
                command(&plan, attempt).on_line(Arc::new(move |_, line: &str| {
                    watch.line(line);
                }))
            },
        );
        let (_, source) = tokio::select! {
            done = run => done?,
            (size, spec) = self.past_the_cap() => {
                return Err(self.stopped_too_large(size, &spec, &attempts));
            }
        };
        Ok(Fetched {
            source,
            attempts: attempts.load(Ordering::Relaxed),
        })
    }

    /// What one attempt on `url` is built from: its credentials, the partial file made
    /// ready ([`ToolDownload::prepare_resume`]), and the cap lowered to the room left on
    /// the destination's file system. Resets the announced size.
    fn plan(&self, url: &str) -> AttemptPlan {
        let (url, credentials) = self
            .sources
            .iter()
            .find(|(plain, _)| plain == url)
            .cloned()
            .unwrap_or((url.to_string(), None));
        let (resume, saved) = self.prepare_resume();
        let have = if resume {
            fs::symlink_metadata(&self.partial).map_or(0, |m| m.len())
        } else {
            0
        };
        let room = available_space(&self.dir).map_or(u64::MAX, |free| free.saturating_add(have));
        let mut spec = lock(&self.spec);
        spec.saved_validator = saved.clone();
        spec.max_size = spec.max_size.min(room);
        if !resume {
            let _ = delete_partial(&spec.validator);
        }
        self.announced.reset();
        AttemptPlan {
            url,
            partial: self.partial.clone(),
            resume,
            if_range: saved,
            max_size: spec.max_size,
            secrets: credentials.as_ref().and(self.secrets.clone()),
            credentials,
        }
    }

    /// Makes the partial file a regular file of ours and decides whether it is resumed: when
    /// it holds bytes and a sha256 or a saved validator makes that safe, else it is emptied.
    /// Returns that, and the saved validator when resuming.
    fn prepare_resume(&self) -> (bool, Option<String>) {
        let _ = prepare_partial(&self.partial);
        let saved = fs::read_to_string(&self.validator)
            .ok()
            .filter(|v| !v.is_empty());
        let resume = has_partial_data(&self.partial) && (self.sha256.is_some() || saved.is_some());
        if !resume && has_partial_data(&self.partial) {
            let _ = delete_partial(&self.partial);
            let _ = prepare_partial(&self.partial);
        }
        (resume, saved.filter(|_| resume))
    }

    /// Waits until the partial file or the size the output announced passes the cap,
    /// looking every 20 ms; then the larger of the two, and the spec of that moment.
    async fn past_the_cap(&self) -> (u64, AttemptSpec) {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let spec = lock(&self.spec).clone();
            let size = fs::symlink_metadata(&spec.partial).map_or(0, |m| m.len());
            let told = self.announced.size();
            if size > spec.max_size || told > spec.max_size {
                break (size.max(told), spec);
            }
        }
    }

    /// The end of a download whose tool was stopped past the cap: the partial file and its
    /// validator deleted, a permanent error.
    fn stopped_too_large(&self, size: u64, spec: &AttemptSpec, attempts: &AtomicU32) -> ToolError {
        let _ = delete_partial(&spec.partial);
        let _ = delete_partial(&spec.validator);
        let Checked::Permanent(reason, hint) = too_large(size, spec.max_size) else {
            unreachable!("too_large is permanent")
        };
        let mut e = ToolError::permanent(&self.operation, reason, hint);
        e.attempts = attempts.load(Ordering::Relaxed);
        e
    }

    /// Tells the events of a file the checksum rejected.
    fn reject(&self, reason: &str, attempt: u32) {
        // A download the checksum rejects is a failed attempt in the events (and so in the
        // report and the status lines), though the runner saw the tool succeed: downloaded
        // again the first time, permanent the second.
        let first = self.rejections.fetch_add(1, Ordering::Relaxed) == 0;
        self.runner.emit(&em_retry::Event::AttemptFailed {
            operation: Arc::new(Operation::new(self.tool, self.label.clone())),
            attempt,
            max_attempts: self.runner.policy().max_attempts(),
            class: if first {
                em_retry::FailureClass::Repairable("download again".into())
            } else {
                em_retry::FailureClass::Permanent
            },
            reason: reason.to_string(),
            duration: Duration::ZERO,
        });
    }
}

/// The size of the file as the tool's output announced it, read line by line as it
/// arrives: the `Content-Length` of a `200`, the total of a `206`'s `Content-Range`.
/// Redirects and errors announce their own small bodies and do not count.
#[derive(Debug, Default)]
struct Announced {
    counting: std::sync::atomic::AtomicBool,
    size: AtomicU64,
}

impl Announced {
    fn reset(&self) {
        self.counting.store(false, Ordering::Relaxed);
        self.size.store(0, Ordering::Relaxed);
    }

    fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    fn line(&self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("HTTP/") {
            let status = rest.split_whitespace().nth(1);
            self.counting.store(
                matches!(status, Some("200") | Some("206")),
                Ordering::Relaxed,
            );
            return;
        }
        if !self.counting.load(Ordering::Relaxed) {
            return;
        }
        let Some((name, value)) = line.split_once(':') else {
            return;
        };
        let size = if name.eq_ignore_ascii_case("content-length") {
            value.trim().parse::<u64>().ok()
        } else if name.eq_ignore_ascii_case("content-range") {
            value
                .rsplit_once('/')
                .and_then(|(_, t)| t.trim().parse::<u64>().ok())
        } else {
            None
        };
        if let Some(size) = size {
            self.size.fetch_max(size, Ordering::Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `bytes` to `path` (mode 0600, not through a symbolic link): a validator, a
/// credentials file.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        fs::remove_file(path)?;
    }
    let mut file = open_nofollow(
        path,
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600),
    )?;
    io::Write::write_all(&mut file, bytes)
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
        let err = verify_and_land(&partial, &dest, Some(&sha(HELLO_SHA)), rules(Some(0o755)))
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
        let landed = verify_and_land(&partial, &dest, Some(&sha(HELLO_SHA)), rules(Some(0o750)))
            .expect("lands");
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

    fn rules(mode: Option<u32>) -> LandRules {
        LandRules {
            mode,
            ..LandRules::default()
        }
    }

    #[test]
    fn an_empty_file_lands_only_when_the_empty_sha256_is_pinned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("empty");
        let partial = partial_path(&dest);
        fs::write(&partial, b"").expect("write");
        let err = verify_and_land(&partial, &dest, None, rules(None)).expect_err("empty");
        assert!(matches!(err, LandError::Empty), "{err:?}");
        assert!(!dest.exists() && !partial.exists());
        fs::write(&partial, b"").expect("write");
        let landed =
            verify_and_land(&partial, &dest, Some(&EMPTY_SHA256), rules(None)).expect("lands");
        assert_eq!(landed.bytes, 0);
        assert_eq!(
            EMPTY_SHA256.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(fs::metadata(&dest).expect("landed").len(), 0);
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("big");
        let partial = partial_path(&dest);
        fs::write(&partial, b"hello").expect("write");
        let capped = LandRules {
            mode: None,
            max_size: 4,
        };
        let err = verify_and_land(&partial, &dest, None, capped).expect_err("too large");
        assert_eq!(
            err.to_string(),
            "the download is larger than allowed (5 bytes, at most 4)"
        );
        assert!(!dest.exists() && !partial.exists());
    }

    #[test]
    fn a_symlinked_partial_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"hello").expect("victim");
        let dest = dir.path().join("tool");
        let partial = partial_path(&dest);
        std::os::unix::fs::symlink(&victim, &partial).expect("link");
        let err = verify_and_land(&partial, &dest, Some(&sha(HELLO_SHA)), rules(Some(0o777)))
            .expect_err("a link is refused");
        assert!(matches!(err, LandError::Io { .. }), "{err:?}");
        assert!(!dest.exists(), "nothing landed");
        // prepare_partial replaces the link with a regular file of ours.
        prepare_partial(&partial).expect("prepared");
        let meta = fs::symlink_metadata(&partial).expect("partial");
        assert!(meta.file_type().is_file() && meta.len() == 0);
        assert_eq!(fs::read(&victim).expect("victim"), b"hello");
        let mode = fs::metadata(&victim).expect("meta").permissions().mode();
        assert_ne!(mode & 0o777, 0o777, "the victim's mode is unchanged");
        // A dangling link: never made into the destination.
        fs::remove_file(&partial).expect("rm");
        std::os::unix::fs::symlink(dir.path().join("attacker"), &partial).expect("link");
        prepare_partial(&partial).expect("prepared");
        assert!(!dir.path().join("attacker").exists());
        assert!(
            fs::symlink_metadata(&partial)
                .expect("p")
                .file_type()
                .is_file()
        );
    }

    #[tokio::test]
    async fn the_destination_lock_is_exclusive_and_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("tool");
        let held = DestLock::acquire(&dest).await.expect("lock");
        assert!(lock_path(&dest).exists());
        let waiting = tokio::spawn({
            let dest = dest.clone();
            async move { DestLock::acquire(&dest).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.expect("join").expect("second lock");
        assert!(
            !lock_path(&dest).exists(),
            "the holder deletes the lock file"
        );
    }

    fn spec(dir: &Path) -> AttemptSpec {
        let dest = dir.join("x");
        AttemptSpec {
            partial: partial_path(&dest),
            validator: validator_path(&dest),
            saved_validator: None,
            allow_http: false,
            max_size: 100,
            empty_ok: false,
        }
    }

    #[test]
    fn attempts_the_tool_called_a_success_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = spec(dir.path());
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"v1\"\r\n\r\n";
        fs::write(&spec.partial, b"hello").expect("write");
        assert_eq!(check_attempt(ok, &spec), None);
        // An empty body: retried, the partial file gone.
        fs::write(&spec.partial, b"").expect("write");
        let empty = check_attempt("HTTP/1.1 200 OK\nContent-Length: 0\n", &spec);
        assert_eq!(
            empty,
            Some(Checked::Transient(
                "the server answered 200 with an empty body".into()
            ))
        );
        assert!(!spec.partial.exists());
        // wget's 416 with a larger total: restart from zero.
        fs::write(&spec.partial, b"hel").expect("write");
        let wget = "  HTTP/1.1 416 Range Not Satisfiable\n  Content-Range: bytes */5\n";
        let Some(Checked::Transient(reason)) = check_attempt(wget, &spec) else {
            panic!("416 must fail the attempt");
        };
        assert!(
            reason.contains("(3 bytes) does not fit the remote file (5 bytes)"),
            "{reason}"
        );
        assert!(!spec.partial.exists());
        // ... and with the same total, the file was complete.
        fs::write(&spec.partial, b"hello").expect("write");
        assert_eq!(check_attempt(wget, &spec), None);
        // A downgrade or another scheme after a redirect: permanent.
        for (location, scheme) in [
            ("http://127.0.0.1:1/x", "http"),
            ("ftp://127.0.0.1/x", "ftp"),
        ] {
            fs::write(&spec.partial, b"hello").expect("write");
            let text = format!("  HTTP/1.1 302 Found\n  Location: {location}\n  HTTP/1.1 200 OK\n");
            let Some(Checked::Permanent(reason, _)) = check_attempt(&text, &spec) else {
                panic!("{location} must be refused");
            };
            assert!(
                reason.starts_with(&format!("redirected to a {scheme}:// URL")),
                "{reason}"
            );
            assert!(!spec.partial.exists());
        }
        // A relative redirect is fine; http is fine when allowed.
        fs::write(&spec.partial, b"hello").expect("write");
        let relative = "HTTP/1.1 302 Found\nLocation: /y\nHTTP/1.1 200 OK\n";
        assert_eq!(check_attempt(relative, &spec), None);
        let mut http = spec.clone();
        http.allow_http = true;
        assert_eq!(
            check_attempt(
                "HTTP/1.1 302 Found\nLocation: http://h/x\nHTTP/1.1 200 OK\n",
                &http
            ),
            None
        );
        // A 206 of another version than the one the partial started with.
        let mut resumed = spec.clone();
        resumed.saved_validator = Some("\"v1\"".into());
        let changed = "HTTP/1.1 206 Partial Content\nETag: \"v2\"\nContent-Range: bytes 3-4/5\n";
        let Some(Checked::Transient(reason)) = check_attempt(changed, &resumed) else {
            panic!("a changed file must fail the attempt");
        };
        assert!(
            reason.starts_with("the file changed on the server"),
            "{reason}"
        );
        assert!(!spec.partial.exists());
        // Over the cap.
        fs::write(&spec.partial, vec![0u8; 101]).expect("write");
        assert!(matches!(
            check_attempt(ok, &spec),
            Some(Checked::Permanent(..))
        ));
        assert!(!spec.partial.exists());
    }

    #[test]
    fn validators_and_totals_are_read_from_the_last_response() {
        let all = responses(
            "HTTP/1.1 302 Found\nLocation: /b\n\nHTTP/1.1 200 OK\nETag: W/\"weak\"\nLast-Modified: Tue, 01 Jan 2030 00:00:00 GMT\nContent-Length: 9\n",
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].header("location"), Some("/b"));
        assert_eq!(
            all[1].validator().as_deref(),
            Some("Tue, 01 Jan 2030 00:00:00 GMT"),
            "a weak ETag is not an If-Range validator"
        );
        assert_eq!(all[1].total_size(), Some(9));
        let partial = &responses(
            "  HTTP/1.1 206 Partial Content\n  ETag: \"s\"\n  Content-Range: bytes 5-9/10\n",
        )[0];
        assert_eq!(partial.validator().as_deref(), Some("\"s\""));
        assert_eq!(partial.total_size(), Some(10));
    }

    #[test]
    fn credentials_come_out_of_the_url() {
        let (url, creds) = split_credentials("https://me:p%40ss@127.0.0.1:8443/a?b").expect("ok");
        assert_eq!(url, "https://127.0.0.1:8443/a?b");
        let creds = creds.expect("credentials");
        assert_eq!(
            (
                creds.host.as_str(),
                creds.user.as_str(),
                creds.password.as_str()
            ),
            ("127.0.0.1", "me", "p@ss")
        );
        assert_eq!(format!("{creds:?}"), "Credentials(me@127.0.0.1, ***)");
        assert_eq!(
            split_credentials("https://h/x@y").expect("ok"),
            ("https://h/x@y".into(), None)
        );
        let err = split_credentials("https://me:a%20b@h/x").expect_err("space");
        assert!(err.contains("https://***@h/x"), "{err}");
        assert_eq!(crate::redact_url("https://me:pw@h/x"), "https://***@h/x");
        assert_eq!(crate::redact_url("not a url"), "not a url");
    }

    #[test]
    fn announced_sizes_count_only_the_file() {
        let a = Announced::default();
        for line in [
            "HTTP/1.1 302 Found",
            "Content-Length: 999999",
            "HTTP/1.1 206 Partial Content",
            "Content-Length: 5",
            "Content-Range: bytes 5-9/10",
        ] {
            a.line(line);
        }
        assert_eq!(a.size(), 10);
        a.reset();
        a.line("  HTTP/1.1 200 OK");
        a.line("  Content-Length: 107374182400");
        assert_eq!(a.size(), 107_374_182_400);
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

    /// A download tool played by `sh`: every failure reads as transient.
    struct ShTool;

    impl DownloadTool for ShTool {
        const NAME: &'static str = "sh";

        fn classify_failure(failure: &crate::ToolFailure) -> crate::Verdict<DownloadRepair> {
            crate::Verdict::Transient(format!("exit {}", failure.code))
        }
    }

    /// The events of a run, without their durations.
    fn event_line(event: &em_retry::Event) -> String {
        use em_retry::Event;
        match event {
            Event::AttemptStarted {
                operation, attempt, ..
            } => format!("{operation}: start {attempt}"),
            Event::AttemptFailed {
                operation,
                attempt,
                class,
                reason,
                ..
            } => format!("{operation}: failed {attempt} {class:?} {reason}"),
            Event::Repaired { repair, .. } => format!("repaired {repair}"),
            Event::Sleeping {
                next_attempt, why, ..
            } => format!("sleeping before {next_attempt}: {why:?}"),
            Event::Succeeded { attempt, .. } => format!("succeeded {attempt}"),
            Event::GaveUp {
                attempts, reason, ..
            } => format!("gave up after {attempts}: {reason:?}"),
        }
    }

    /// What one [`download_with_tool`] run did: the result, the plans of its attempts
    /// (secrets directory reduced to whether there was one) and its events.
    struct ToolRun {
        result: Result<Landed, ToolError>,
        plans: Vec<(String, bool, Option<String>, u64, bool, bool)>,
        events: Vec<String>,
    }

    /// Runs `req` through [`download_with_tool`] with `sh` running `scripts[i]` on the
    /// i-th attempt (the partial file is `$1`), under a policy of `attempts`.
    async fn run_tool(req: &DownloadRequest, attempts: u32, scripts: &[&str]) -> ToolRun {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let runner = Runner::new(em_retry::RetryPolicy::new(attempts).with_backoff(
            em_retry::Backoff::Fixed {
                delay: Duration::from_millis(1),
            },
        ))
        .subscribe_all(&[Arc::new(move |e: &em_retry::Event| {
            lock(&seen).push(event_line(e));
        }) as Arc<dyn em_retry::Subscriber>]);
        let plans = Mutex::new(Vec::new());
        let result = download_with_tool(&Arc::new(ShTool), &runner, req, |plan, _| {
            let mut plans = lock(&plans);
            let script = scripts[plans.len()];
            plans.push((
                plan.url.clone(),
                plan.resume,
                plan.if_range.clone(),
                plan.max_size.min(u64::from(u32::MAX)),
                plan.credentials.is_some(),
                plan.secrets.as_ref().is_some_and(|s| s.is_dir()),
            ));
            Cmd::tool("sh")
                .args(["-c", script, "sh"])
                .arg(plan.partial.as_os_str())
        })
        .await;
        let events = lock(&events).clone();
        ToolRun {
            result,
            plans: plans.into_inner().expect("plans"),
            events,
        }
    }

    #[tokio::test]
    async fn the_tool_lands_from_a_mirror_and_credentials_stay_off_the_plain_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = DownloadRequest::new("https://u:p%40ss@a.example/x", dir.path().join("x"));
        req.mirrors = vec!["https://b.example/x".into()];
        req.sha256 = Some(sha(HELLO_SHA));
        req.max_size = Some(1000);
        let run = run_tool(&req, 2, &["exit 7", "exit 7", "printf hello > \"$1\""]).await;
        let landed = run.result.expect("lands");
        assert_eq!(landed.sha256, sha(HELLO_SHA));
        assert_eq!(fs::read(&req.dest).expect("read"), b"hello");
        assert_eq!(
            run.plans,
            [
                ("https://a.example/x".into(), false, None, 1000, true, true),
                ("https://a.example/x".into(), false, None, 1000, true, true),
                (
                    "https://b.example/x".into(),
                    false,
                    None,
                    1000,
                    false,
                    false
                ),
            ]
        );
        assert_eq!(run.events, PINNED_MIRROR_EVENTS);
    }

    #[tokio::test]
    async fn a_cut_transfer_is_resumed_with_the_validator_it_started_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = DownloadRequest::new("https://example.org/x", dir.path().join("x"));
        let run = run_tool(
            &req,
            1,
            &[
                "printf 'HTTP/1.1 200 OK\\r\\nETag: \"v1\"\\r\\n' >&2; printf hel > \"$1\"; exit 18",
                "printf 'HTTP/1.1 206 Partial\\r\\nETag: \"v1\"\\r\\n' >&2; printf lo >> \"$1\"",
            ],
        )
        .await;
        let landed = run.result.expect("lands");
        assert_eq!(landed.bytes, 5);
        assert_eq!(
            run.plans
                .iter()
                .map(|p| (p.1, p.2.clone()))
                .collect::<Vec<_>>(),
            [(false, None), (true, Some("\"v1\"".to_string()))]
        );
        assert!(!validator_path(&req.dest).exists());
        assert_eq!(run.events, PINNED_RESUME_EVENTS);
    }

    #[tokio::test]
    async fn a_file_the_checksum_rejects_twice_fails_with_both_rejections_in_the_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = DownloadRequest::new("https://example.org/x", dir.path().join("x"));
        req.sha256 = Some(sha(HELLO_SHA));
        let run = run_tool(&req, 3, &["printf bad > \"$1\""; 2]).await;
        let err = run.result.expect_err("rejected twice");
        assert_eq!(err.kind, ToolErrorKind::Permanent);
        assert_eq!(err.operation, "sh download https://example.org/x");
        assert_eq!(err.attempts, 2);
        assert!(
            err.reason
                .ends_with("(from https://example.org/x, downloaded twice)"),
            "{}",
            err.reason
        );
        assert!(err.hint.is_some());
        assert!(!req.dest.exists() && !req.partial().exists());
        assert_eq!(
            run.events.len(),
            PINNED_REJECTED_EVENTS.len(),
            "{:#?}",
            run.events
        );
        for (got, want) in run.events.iter().zip(PINNED_REJECTED_EVENTS) {
            assert!(got.starts_with(want), "{got} / {want}");
        }
    }

    #[tokio::test]
    async fn a_file_past_the_cap_stops_the_tool_and_fails_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut req = DownloadRequest::new("https://example.org/x", dir.path().join("x"));
        req.max_size = Some(3);
        // Still running: the watch stops it.
        let run = run_tool(&req, 3, &["printf hello > \"$1\"; sleep 5"]).await;
        let err = run.result.expect_err("too large");
        assert_eq!(err.kind, ToolErrorKind::Permanent);
        assert_eq!(err.attempts, 1);
        assert_eq!(
            err.reason,
            "the download is larger than allowed (5 bytes, at most 3)"
        );
        assert!(!req.partial().exists());
        assert_eq!(run.events, ["sh download https://example.org/x: start 1"]);
        // Done already: the output check catches it.
        let run = run_tool(&req, 3, &["printf hello > \"$1\""]).await;
        let err = run.result.expect_err("too large");
        assert_eq!(
            (err.kind, err.attempts, err.reason.as_str()),
            (
                ToolErrorKind::Permanent,
                1,
                "the download is larger than allowed (5 bytes, at most 3)"
            )
        );
    }

    #[test]
    fn the_tool_download_future_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let runner = Runner::new(em_retry::RetryPolicy::new(1));
        let req = DownloadRequest::new("https://example.org/x", "/tmp/x");
        let adapter = Arc::new(ShTool);
        let fut = download_with_tool(&adapter, &runner, &req, |_, _| Cmd::tool("true"));
        assert_send(&fut);
    }

    const PINNED_MIRROR_EVENTS: &[&str] = &[
        "sh download https://***@a.example/x: start 1",
        "sh download https://***@a.example/x: failed 1 Transient exit 7",
        "sleeping before 2: Backoff",
        "sh download https://***@a.example/x: start 2",
        "sh download https://***@a.example/x: failed 2 Transient exit 7",
        "gave up after 2: Exhausted",
        "sh download https://***@a.example/x via https://b.example/x: start 1",
        "succeeded 1",
    ];
    const PINNED_RESUME_EVENTS: &[&str] = &[
        "sh download https://example.org/x: start 1",
        "sh download https://example.org/x: failed 1 Transient exit 18",
        "sleeping before 2: Progressed",
        "sh download https://example.org/x: start 2",
        "succeeded 2",
    ];
    /// Prefixes: the digests follow.
    const PINNED_REJECTED_EVENTS: &[&str] = &[
        "sh download https://example.org/x: start 1",
        "succeeded 1",
        "sh download https://example.org/x: failed 1 Repairable(\"download again\") checksum \
         mismatch: expected ",
        "sh download https://example.org/x: start 1",
        "succeeded 1",
        "sh download https://example.org/x: failed 2 Permanent checksum mismatch: expected ",
    ];
}
