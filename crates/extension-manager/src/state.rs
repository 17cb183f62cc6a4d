//! The state directory of extension-manager (SPEC sections 7 and 9): what is installed,
//! the run lock, the history of operations, the run reports and the per-run logs.
//!
//! ```text
//! STATE_DIR/
//!   state.json                      what each extension installed (versioned, atomic writes)
//!   lock                            flock held by the mutating run; holds who that is
//!   history.jsonl                   one JSON object per operation, append-only
//!   reports/last.json               the report of the last run
//!   logs/<run-id>/<extension>.log   each extension's full tool output
//!   circuits/                       circuit breaker records (em-retry's FileStore)
//! ```
//!
//! Crash safety: every file that is rewritten (`state.json`, `reports/last.json`) goes
//! through [`write_private`]: a temporary file beside it, fsynced, renamed over it, and
//! the directory fsynced. A run killed at any instant leaves the old or the new file, never
//! half of one. `history.jsonl` is appended with one `write` per line, so the worst a crash
//! leaves is a torn last line, which [`StateDir::history`] skips with a warning.
//!
//! This module does no installing and never decides what to remove: it records, and
//! [`State::still_needed`] answers which of an extension's additions others still rely on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::exit;

/// The version of `state.json` that this build writes and understands.
pub const STATE_VERSION: u64 = 1;

/// How often a waiting [`StateDir::lock`] tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// The state directory: where extension-manager records what it did.
///
/// Nothing is created until something is written; then the directory (and its
/// subdirectories) are created with mode 0700 and every file in it with mode 0600: logs
/// and reports quote tool output, which may hold what a user would not show others.
///
/// Before anything is read or written, the directory must be ours: owned by the current
/// user (or root) and not writable by group or others. Another user who could write in it
/// could replace `lock` or `history.jsonl` with a symlink to a file of ours, or hand us a
/// `state.json` that makes `remove` delete what they choose. Files are opened with
/// `O_NOFOLLOW` (and rewritten by rename), so a symlink planted in their place is refused,
/// never followed.
///
/// ```
/// use extension_manager::state::{ExtensionStatus, InstalledExtension, State, StateDir};
///
/// let dir = tempfile::tempdir()?;
/// let state_dir = StateDir::new(dir.path().join("state"));
/// let mut state = state_dir.load()?; // no state.json yet: empty
/// assert!(state.extensions.is_empty());
/// state.extensions.insert(
///     "python".into(),
///     InstalledExtension {
///         version: "1.0.0".into(),
///         manifest_sha256: "ab12".into(),
///         fingerprint: "ab12;version=3.12".into(),
///         options: [("version".to_string(), "3.12".to_string())].into(),
///         status: ExtensionStatus::Installed,
///         installed_at: "2026-11-22T07:08:12Z".into(),
///         completed_steps: vec![0, 1],
///         added: Default::default(),
///         error: None,
///         uses: Default::default(),
///     },
/// );
/// state_dir.save(&state)?;
/// assert_eq!(state_dir.load()?, state);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (see `state_dir::resolve` for the default location).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `state.json`: what is installed.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// `lock`: the run lock, and who holds it.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// `history.jsonl`: the append-only log of operations.
    pub fn history_path(&self) -> PathBuf {
        self.root.join("history.jsonl")
    }

    /// `reports/last.json`: the report of the last run.
    pub fn report_path(&self) -> PathBuf {
        self.root.join("reports").join("last.json")
    }

    /// `logs/`: one directory of extension logs per run.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Creates the directory (0700) when missing, then checks that it is safe to use:
    /// a directory, owned by us or root, not writable by group or others.
    ///
    /// Errors: it cannot be created, or it is not safe (the message says why and what to
    /// do; exit code 1 through [`StateError::Io`] or [`LockError::Io`]).
    pub fn secure(&self) -> io::Result<()> {
        create_dir(&self.root)?;
        check_owned(&self.root)
    }

    /// [`secure`](Self::secure)'s check, for readers: a missing directory is fine (nothing
    /// recorded yet).
    fn check_if_present(&self) -> io::Result<()> {
        match fs::metadata(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            _ => check_owned(&self.root),
        }
    }

    /// `circuits/`: the circuit breaker records (`em_retry::FileStore`).
    pub fn circuits_dir(&self) -> PathBuf {
        self.root.join("circuits")
    }

    /// Takes the run lock: an exclusive `flock` on [`lock_path`](Self::lock_path), held
    /// until the returned [`RunLock`] is dropped (or the process dies: the kernel releases
    /// it, so a killed run never leaves a stale lock).
    ///
    /// `holder` is what this run is doing, as the user typed it without the program name
    /// (`"install python"`). Once the lock is ours, our pid, `holder` and the start time are
    /// written into the lock file, where a waiting process reads them.
    ///
    /// While another process holds the lock, this tries again about every 100 ms until
    /// `timeout` has passed; `on_wait` is called with the holder each time a different
    /// holder is seen (so once per holder, not once per poll), e.g. to print
    /// `waiting for pid 1234 (extension-manager install nodejs, since ...)`. A holder that
    /// has not yet written its record is not reported until it has.
    ///
    /// Errors: [`LockError::Timeout`] when the lock is still held after `timeout` (exit code
    /// 75, EX_TEMPFAIL: see [`LockError::exit_code`]), [`LockError::Interrupted`] when a
    /// termination signal came during the wait (this wait blocks its thread; async callers
    /// use [`lock_async`](Self::lock_async)), [`LockError::Io`] when the lock file cannot
    /// be created or locked.
    ///
    /// ```
    /// use std::time::Duration;
    /// use extension_manager::state::{LockError, StateDir};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let state_dir = StateDir::new(dir.path());
    /// let held = state_dir.lock(Duration::from_secs(1), "install python", |_| {})?;
    /// // A second run gives up after its timeout, naming the holder.
    /// let err = state_dir
    ///     .lock(Duration::ZERO, "remove python", |_| {})
    ///     .expect_err("the lock is held");
    /// assert!(matches!(err, LockError::Timeout { holder: Some(ref h), .. } if h.pid == std::process::id()));
    /// assert_eq!(err.exit_code(), 75);
    /// drop(held);
    /// state_dir.lock(Duration::ZERO, "remove python", |_| {})?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(
        &self,
        timeout: Duration,
        holder: &str,
        mut on_wait: impl FnMut(&LockHolder),
    ) -> Result<RunLock, LockError> {
        let mut wait = LockWait::start(self, timeout)?;
        while let Some(pause) = wait.try_take(&mut on_wait)? {
            // This wait blocks its thread, so no future can be dropped to cancel it: a
            // termination signal (noted by the signal watcher thread) ends it instead.
            if let Some(signal) = crate::signals::received() {
                return Err(LockError::Interrupted { signal });
            }
            std::thread::sleep(pause);
        }
        wait.finish(self, holder)
    }

    /// [`lock`](Self::lock) for async callers: the same lock and the same wait, but
    /// between tries the task sleeps instead of its thread, so that the runtime goes on
    /// (a Ctrl-C during the wait is answered at once) and dropping the future ends the wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// use extension_manager::state::StateDir;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let state_dir = StateDir::new(dir.path());
    /// let held = state_dir.lock_async(Duration::from_secs(1), "install python", |_| {}).await?;
    /// let err = state_dir
    ///     .lock_async(Duration::ZERO, "remove python", |_| {})
    ///     .await
    ///     .expect_err("the lock is held");
    /// assert_eq!(err.exit_code(), 75);
    /// drop(held);
    /// # Ok(()) }
    /// ```
    pub async fn lock_async(
        &self,
        timeout: Duration,
        holder: &str,
        mut on_wait: impl FnMut(&LockHolder),
    ) -> Result<RunLock, LockError> {
        let mut wait = LockWait::start(self, timeout)?;
        while let Some(pause) = wait.try_take(&mut on_wait)? {
            tokio::time::sleep(pause).await;
        }
        wait.finish(self, holder)
    }

    /// Reads `state.json`. A missing file is an empty state (nothing installed yet).
    ///
    /// Errors: the file cannot be read; it is not valid state JSON ([`StateError::Corrupt`],
    /// whose message names the file and says to move it aside); it was written by a newer
    /// extension-manager ([`StateError::UnsupportedVersion`]).
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.state_path();
        if let Err(source) = self.check_if_present() {
            return Err(StateError::Io {
                action: "read",
                path,
                source,
            });
        }
        let bytes = match read_no_follow(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        State::from_json(&bytes).map_err(|e| e.at(path))
    }

    /// Writes `state.json` atomically (see [`write_atomically`]): after a crash at any
    /// instant, `state.json` is the old state or the new one.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.state_path();
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Io {
            action: "encode",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        self.secure()
            .and_then(|()| write_private(&path, &bytes))
            .map_err(|source| StateError::Io {
                action: "write",
                path,
                source,
            })
    }

    /// Appends one line to `history.jsonl`.
    ///
    /// The file is opened with `O_APPEND` and the line goes out in a single `write`, so
    /// lines of concurrent writers never interleave (POSIX appends are atomic with respect
    /// to each other on a local file system; writers also hold a brief `flock` on the file).
    /// If the file ends in a torn line (a crash in mid-write), a newline is written first so
    /// that this entry stays readable.
    pub fn append_history(&self, entry: &HistoryEntry) -> Result<(), StateError> {
        let path = self.history_path();
        let io_error = |action, source| StateError::Io {
            action,
            path: path.clone(),
            source,
        };
        let line = serde_json::to_string(entry).map_err(|e| io_error("encode", e.into()))?;
        // The command line and the details may quote a URL with a password.
        let mut line = em_exec::redact_urls(&line).into_bytes();
        line.push(b'\n');
        self.secure().map_err(|e| io_error("write", e))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io_error("open", e))?;
        // Writers take turns (a short flock around check + write) so that no writer's line
        // in progress looks torn to another; readers do not lock, and skip a line they see
        // half-written.
        file.lock().map_err(|e| io_error("lock", e))?;
        if ends_in_torn_line(&file).map_err(|e| io_error("read", e))? {
            line.insert(0, b'\n');
        }
        let written = file.write(&line).map_err(|e| io_error("write", e))?;
        if written != line.len() {
            // A second `write` for the rest could interleave with another writer's line.
            return Err(io_error(
                "write",
                io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write ({written} of {} bytes)", line.len()),
                ),
            ));
        }
        Ok(())
    }

    /// The history, oldest first: the entries of `extension` (all when `None`) at or after
    /// `since` (all when `None`). A missing file is an empty history.
    ///
    /// Lines that do not parse (a torn last line after a crash, or an entry glued to one)
    /// are skipped with a warning, never an error; so is an entry whose time does not parse
    /// when `since` is given.
    pub fn history(
        &self,
        extension: Option<&str>,
        since: Option<SystemTime>,
    ) -> Result<Vec<HistoryEntry>, StateError> {
        let path = self.history_path();
        if let Err(source) = self.check_if_present() {
            return Err(StateError::Io {
                action: "read",
                path,
                source,
            });
        }
        let bytes = match read_no_follow(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let mut entries = Vec::new();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry: HistoryEntry = match serde_json::from_slice(line) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(
                        "{}:{}: skipping an unreadable history line ({e})",
                        path.display(),
                        index + 1
                    );
                    continue;
                }
            };
            if extension.is_some_and(|name| entry.extension.as_deref() != Some(name)) {
                continue;
            }
            if let Some(since) = since {
                match entry.parsed_time() {
                    Some(time) if time >= since => {}
                    Some(_) => continue,
                    None => {
                        tracing::warn!(
                            "{}:{}: skipping a history entry with an unreadable time {:?}",
                            path.display(),
                            index + 1,
                            entry.time
                        );
                        continue;
                    }
                }
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Writes `reports/last.json` atomically (pretty-printed, with a final newline).
    pub fn write_report(&self, report: &serde_json::Value) -> Result<(), StateError> {
        let path = self.report_path();
        let bytes = serde_json::to_vec_pretty(report).map_err(|e| StateError::Io {
            action: "encode",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        // Reports quote commands and tool output: no credentials in URLs.
        let mut bytes = em_exec::redact_urls(&String::from_utf8_lossy(&bytes)).into_bytes();
        bytes.push(b'\n');
        self.secure()
            .and_then(|()| write_private(&path, &bytes))
            .map_err(|source| StateError::Io {
                action: "write",
                path,
                source,
            })
    }

    /// The log file of `extension` in run `run_id`: `logs/<run-id>/<extension>.log`.
    ///
    /// Its directory is created here; when that fails, the failure is logged and the path
    /// still returned, so that opening the file reports the error where it is used.
    /// Characters outside `[A-Za-z0-9._-]` in either part become `_`, so the path stays
    /// under `logs/` whatever the names.
    pub fn log_path(&self, run_id: &str, extension: &str) -> PathBuf {
        let dir = self.logs_dir().join(path_component(run_id));
        if let Err(e) = self.secure().and_then(|()| create_dir(&dir)) {
            tracing::warn!("could not create {}: {e}", dir.display());
        }
        dir.join(format!("{}.log", path_component(extension)))
    }
}

/// A fresh run id: the UTC start time and the pid, e.g. `20261122T070812Z-4242`. It sorts
/// by time, and two processes never share one.
pub fn new_run_id() -> String {
    let time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{}", std::process::id())
}

/// Replaces `path` with `bytes` atomically: writes a temporary file in the same directory
/// (created 0755 when missing), fsyncs it, renames it over `path`, then fsyncs the
/// directory so that the rename itself survives a power cut. The file gets mode 0644: for
/// what others read (apt sources, profile.d scripts, `--report` and `--metrics` files);
/// the state directory's own files go through [`write_private`]. A symlink at `path` is
/// replaced, never followed.
///
/// Readers see the old content or the new one, never a mix. A crash before the rename
/// leaves a `.<name>.*.tmp` file beside `path` and `path` unchanged.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_modes(path, bytes, 0o644, 0o755)
}

/// [`write_atomically`] for the state directory's files: mode 0600, a missing directory
/// created 0700.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_modes(path, bytes, 0o600, 0o700)
}

fn write_with_modes(path: &Path, bytes: &[u8], file_mode: u32, dir_mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    // tempfile creates 0600; the caller says who else may read it.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(file_mode))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Refuses a state directory that someone else could write in: not a directory, owned by
/// neither us nor root, or writable by group or others.
fn check_owned(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir)?;
    let me = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let unsafe_dir = |why: String| {
        io::Error::other(format!(
            "the state directory {} {why}; another user could plant files in it (a symlink \
             for `lock`, a forged state.json). Use a directory of your own with --state-dir \
             or EM_STATE_DIR",
            dir.display()
        ))
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory".into()));
    }
    if meta.uid() != 0 && Some(meta.uid()) != me {
        return Err(unsafe_dir(format!(
            "belongs to uid {}, not to us{}",
            meta.uid(),
            me.map(|u| format!(" (uid {u})")).unwrap_or_default()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "is writable by group or others (mode {mode:04o}); `chmod go-w {}` fixes that",
            dir.display()
        )));
    }
    Ok(())
}

/// Reads a whole file, refusing a symlink in its place (`O_NOFOLLOW`).
fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn path_component(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

fn ends_in_torn_line(file: &File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// A wait for the run lock in progress: the open lock file and what has been seen.
struct LockWait {
    file: File,
    path: PathBuf,
    started: Instant,
    timeout: Duration,
    last_seen: Option<LockHolder>,
}

impl LockWait {
    fn start(state_dir: &StateDir, timeout: Duration) -> Result<LockWait, LockError> {
        let path = state_dir.lock_path();
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        state_dir.secure().map_err(io_error)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_error)?;
        Ok(LockWait {
            file,
            path,
            started: Instant::now(),
            timeout,
            last_seen: None,
        })
    }

    /// Tries the lock once: `None` when it is ours, else how long to pause before the
    /// next try. Errors: the timeout has passed, or the lock cannot be tried.
    fn try_take(
        &mut self,
        on_wait: &mut impl FnMut(&LockHolder),
    ) -> Result<Option<Duration>, LockError> {
        match self.file.try_lock() {
            Ok(()) => return Ok(None),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(source)) => {
                return Err(LockError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        // Read it on every poll: the holder may change while we wait (another waiter
        // got it first), and a holder that just took the lock may not have written yet.
        if let Some(seen) = LockHolder::read(&self.path)
            && self.last_seen.as_ref() != Some(&seen)
        {
            on_wait(&seen);
            self.last_seen = Some(seen);
        }
        let waited = self.started.elapsed();
        if waited >= self.timeout {
            return Err(LockError::Timeout {
                path: self.path.clone(),
                waited,
                holder: self.last_seen.take(),
            });
        }
        Ok(Some(LOCK_POLL.min(self.timeout - waited)))
    }

    /// With the lock ours: writes who we are into it, and clears what a killed run left.
    fn finish(self, state_dir: &StateDir, holder: &str) -> Result<RunLock, LockError> {
        let LockWait { file, path, .. } = self;
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let me = LockHolder {
            pid: std::process::id(),
            command: holder.to_string(),
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        let mut record = serde_json::to_vec(&me).map_err(|e| io_error(io::Error::other(e)))?;
        record.push(b'\n');
        // We hold the lock, so nobody else writes; readers may see it empty for an instant.
        file.set_len(0)
            .and_then(|()| file.write_all_at(&record, 0))
            .map_err(io_error)?;
        // A run killed between writing a temporary file and renaming it left it behind;
        // with the lock held, nobody else is writing one now.
        for dir in [state_dir.root.clone(), state_dir.root.join("reports")] {
            remove_stale_temp_files(&dir);
        }
        Ok(RunLock {
            file,
            path,
            holder: me,
        })
    }
}

/// Who holds the run lock, as written into the lock file by [`StateDir::lock`].
///
/// Displays as `pid 1234 (extension-manager install nodejs, since 2026-11-22T12:01:02Z)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// What it is doing, without the program name (`install nodejs`).
    pub command: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl LockHolder {
    /// The holder recorded in `path`, if the file holds one.
    fn read(path: &Path) -> Option<LockHolder> {
        let bytes = read_no_follow(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Runs record their whole command line; the program name is said once.
        let command = self
            .command
            .strip_prefix("extension-manager ")
            .unwrap_or(&self.command);
        write!(
            f,
            "pid {} (extension-manager {command}, since {})",
            self.pid, self.since
        )
    }
}

/// The run lock, held until dropped. Dropping it clears the holder record and releases the
/// lock; so does the death of the process.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    holder: LockHolder,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who we are, as recorded in the lock file.
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Clear the record while we still hold the lock, so that a reader never sees a
        // finished run as the holder. Best effort: closing the file releases the lock anyway.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Why [`StateDir::lock`] did not get the lock.
#[derive(Debug)]
pub enum LockError {
    /// Another run still held the lock when the timeout passed. Exit code 75 (EX_TEMPFAIL):
    /// an outer layer may try again later.
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// The holder last seen in the lock file (`None` when it never wrote one).
        holder: Option<LockHolder>,
    },
    /// A termination signal came while a synchronous wait was waiting (see
    /// `signals::received`). Exit code 128 + the signal (130 for SIGINT).
    Interrupted {
        /// The signal's number.
        signal: i32,
    },
    /// The lock file could not be created, opened or locked. Exit code 1.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl LockError {
    /// The exit code for this error: 75 (EX_TEMPFAIL) for a timeout, 128 + the signal
    /// for an interrupted wait, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LockError::Timeout { .. } => exit::TEMPFAIL,
            LockError::Interrupted { signal } => crate::signals::exit_code(*signal),
            LockError::Io { .. } => exit::FAILURE,
        }
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Timeout {
                path,
                waited,
                holder,
            } => {
                let waited = humantime::format_duration(Duration::from_millis(
                    u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                ));
                match holder {
                    Some(holder) => write!(
                        f,
                        "gave up after {waited} waiting for the state lock {}, held by {holder}; \
                         try again when it has finished, or wait longer with --lock-timeout",
                        path.display()
                    ),
                    None => write!(
                        f,
                        "gave up after {waited} waiting for the state lock {}, held by another \
                         process; try again when it has finished, or wait longer with --lock-timeout",
                        path.display()
                    ),
                }
            }
            LockError::Interrupted { signal } => write!(
                f,
                "{} while waiting for the state lock",
                crate::signals::describe(*signal)
            ),
            LockError::Io { path, source } => {
                write!(f, "could not lock {}: {source}", path.display())?;
                write_permission_hint(f, source)
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Timeout { .. } | LockError::Interrupted { .. } => None,
            LockError::Io { source, .. } => Some(source),
        }
    }
}

fn write_permission_hint(f: &mut fmt::Formatter<'_>, source: &io::Error) -> fmt::Result {
    if source.kind() == io::ErrorKind::PermissionDenied {
        write!(
            f,
            "; run as root, or choose a state directory you can write with --state-dir"
        )?;
    }
    Ok(())
}

/// Why the state, the history or a report could not be read or written.
#[derive(Debug)]
pub enum StateError {
    /// A file could not be read or written.
    Io {
        /// What we were doing: `read`, `write`, `open`, `lock`, `encode`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `state.json` is not valid state JSON (a hand edit, a full disk, a foreign file).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column.
        source: serde_json::Error,
    },
    /// `state.json` was written by a newer extension-manager.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in it.
        found: u64,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io {
                action,
                path,
                source,
            } => {
                write!(f, "could not {action} {}: {source}", path.display())?;
                write_permission_hint(f, source)
            }
            StateError::Corrupt { path, source } => write!(
                f,
                "the state file {p} is corrupt ({source}); move it aside \
                 (`mv {p} {p}.corrupt`) and run again: extension-manager then starts from an \
                 empty state and reinstalls what you ask for",
                p = path.display()
            ),
            StateError::UnsupportedVersion { path, found } => write!(
                f,
                "the state file {} has version {found}, but this extension-manager only \
                 understands version {STATE_VERSION}; upgrade extension-manager, or move the \
                 file aside to start from an empty state",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Io { source, .. } => Some(source),
            StateError::Corrupt { source, .. } => Some(source),
            StateError::UnsupportedVersion { .. } => None,
        }
    }
}

/// What is installed: one record per extension, by name. Serialized as
/// `{"version": 1, "extensions": {...}}`; see [`STATE_VERSION`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The records, by extension name.
    pub extensions: BTreeMap<String, InstalledExtension>,
}

/// How `state.json` looks on disk (the version travels with the data).
#[derive(Serialize)]
struct StateFileRef<'a> {
    version: u64,
    extensions: &'a BTreeMap<String, InstalledExtension>,
}

#[derive(Deserialize)]
struct StateFile {
    version: u64,
    #[serde(default)]
    extensions: BTreeMap<String, InstalledExtension>,
}

/// Only the version, read first: a newer file must be refused for its version, not for
/// whatever else changed in its layout.
#[derive(Deserialize)]
struct StateVersion {
    version: Option<u64>,
}

/// A parse failure without the path (added by [`StateDir::load`]).
enum ParseError {
    Corrupt(serde_json::Error),
    Version(u64),
}

impl ParseError {
    fn at(self, path: PathBuf) -> StateError {
        match self {
            ParseError::Corrupt(source) => StateError::Corrupt { path, source },
            ParseError::Version(found) => StateError::UnsupportedVersion { path, found },
        }
    }
}

impl State {
    fn from_json(bytes: &[u8]) -> Result<State, ParseError> {
        let probe: StateVersion = serde_json::from_slice(bytes).map_err(ParseError::Corrupt)?;
        match probe.version {
            Some(STATE_VERSION) => {}
            Some(found) => return Err(ParseError::Version(found)),
            None => {
                return Err(ParseError::Corrupt(serde::de::Error::missing_field(
                    "version",
                )));
            }
        }
        let file: StateFile = serde_json::from_slice(bytes).map_err(ParseError::Corrupt)?;
        debug_assert_eq!(file.version, STATE_VERSION);
        Ok(State {
            extensions: file.extensions,
        })
    }

    /// Whether `name` is recorded as completely installed (not failed, not partial).
    pub fn is_installed(&self, name: &str) -> bool {
        self.extensions
            .get(name)
            .is_some_and(|e| e.status == ExtensionStatus::Installed)
    }

    /// What the extensions other than `except` added and therefore still need: `remove
    /// except` must leave all of it in place.
    ///
    /// Every other record counts, whatever its status: a failed or partial extension's
    /// additions are still on the machine, and its own `remove` (or its next install,
    /// which resumes) relies on them.
    ///
    /// ```
    /// use extension_manager::state::{Added, ExtensionStatus, InstalledExtension, State};
    ///
    /// fn with_apt(packages: &[&str]) -> InstalledExtension {
    ///     InstalledExtension {
    ///         version: "1".into(),
    ///         manifest_sha256: String::new(),
    ///         fingerprint: String::new(),
    ///         options: Default::default(),
    ///         status: ExtensionStatus::Installed,
    ///         installed_at: String::new(),
    ///         completed_steps: vec![],
    ///         added: Added { apt: packages.iter().map(|p| p.to_string()).collect(), ..Default::default() },
    ///         error: None,
    ///         uses: Added::default(),
    ///     }
    /// }
    /// let mut state = State::default();
    /// state.extensions.insert("python".into(), with_apt(&["python3", "build-essential"]));
    /// state.extensions.insert("rust".into(), with_apt(&["build-essential"]));
    /// let undo = state.to_undo("python").expect("python is recorded");
    /// assert_eq!(undo.apt, ["python3"]); // rust still needs build-essential
    /// ```
    pub fn still_needed(&self, except: &str) -> Needed {
        let mut needed = Needed::default();
        // What others added, and what others' steps use even though it was already on
        // the machine when they ran (A adds X; B, installed later, also needs X).
        for added in self
            .extensions
            .iter()
            .filter(|(name, _)| name.as_str() != except)
            .flat_map(|(_, record)| [&record.added, &record.uses])
        {
            needed.apt.extend(added.apt.iter().cloned());
            needed.apt.extend(added.apt_deps.iter().cloned());
            needed.npm.extend(added.npm.iter().cloned());
            needed.pip.extend(added.pip.iter().cloned());
            needed.lang.extend(added.lang.iter().cloned());
            needed.files.extend(added.files.iter().cloned());
            needed.apt_sources.extend(added.apt_sources.iter().cloned());
            needed.venvs.extend(added.venvs.iter().cloned());
            needed
                .files
                .extend(added.replaced.iter().map(|r| r.path.clone()));
        }
        needed
    }

    /// What `remove name` should undo: what `name` added, less what other extensions still
    /// need ([`State::still_needed`], [`Needed::is_path_needed`]), in the recorded order.
    /// `None` when `name` has no record.
    pub fn to_undo(&self, name: &str) -> Option<Added> {
        let added = &self.extensions.get(name)?.added;
        let needed = self.still_needed(name);
        let keep_paths = |paths: &[PathBuf]| -> Vec<PathBuf> {
            paths
                .iter()
                .filter(|p| !needed.is_path_needed(p))
                .cloned()
                .collect()
        };
        Some(Added {
            apt: added
                .apt
                .iter()
                .filter(|p| !needed.apt.contains(*p))
                .cloned()
                .collect(),
            npm: added
                .npm
                .iter()
                .filter(|p| !needed.npm.contains(*p))
                .cloned()
                .collect(),
            pip: added
                .pip
                .iter()
                .filter(|p| !needed.pip.contains(*p))
                .cloned()
                .collect(),
            lang: added
                .lang
                .iter()
                .filter(|p| !needed.lang.contains(*p))
                .cloned()
                .collect(),
            files: keep_paths(&added.files),
            apt_sources: keep_paths(&added.apt_sources),
            venvs: keep_paths(&added.venvs),
            apt_deps: added
                .apt_deps
                .iter()
                .filter(|p| !needed.apt.contains(*p) && !added.apt.contains(*p))
                .cloned()
                .collect(),
            // Deleted only when empty: another extension's packages keep it.
            dirs: added.dirs.clone(),
            // Each is this extension's own: a backup it made, a block with its name.
            replaced: added.replaced.clone(),
            blocks: added.blocks.clone(),
            order: added.order.clone(),
        })
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateFileRef {
            version: STATE_VERSION,
            extensions: &self.extensions,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = StateFile::deserialize(deserializer)?;
        if file.version != STATE_VERSION {
            return Err(serde::de::Error::custom(format!(
                "unsupported state version {} (this build understands {STATE_VERSION})",
                file.version
            )));
        }
        Ok(State {
            extensions: file.extensions,
        })
    }
}

/// Removes `.<name>.<random>.tmp` files that `write_atomically` left in `dir` when killed.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The record of one extension in `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledExtension {
    /// The manifest's version.
    pub version: String,
    /// The sha256 of the manifest that was installed.
    pub manifest_sha256: String,
    /// The manifest sha256 and the option values: a change in either means reinstall.
    pub fingerprint: String,
    /// The option values used (`--set EXT.OPTION=VALUE` and defaults).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Whether the install finished.
    pub status: ExtensionStatus,
    /// When the install ran (RFC 3339).
    pub installed_at: String,
    /// The indexes of the install steps that completed (for the report; a resumed install
    /// runs every step again, which is safe because steps are idempotent or guarded).
    #[serde(default)]
    pub completed_steps: Vec<usize>,
    /// What the install put on the machine that was not there before.
    #[serde(default)]
    pub added: Added,
    /// Everything its steps install, whether or not it was already there: what keeps a
    /// package or file of another extension from being removed under it.
    #[serde(default)]
    pub uses: Added,
    /// Why the install failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// How far an extension's install got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionStatus {
    /// Every step ran and the validate checks passed.
    Installed,
    /// A step or a validate check failed.
    Failed,
    /// Some steps ran; the run stopped (or is still running) before the end.
    Partial,
}

impl fmt::Display for ExtensionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtensionStatus::Installed => "installed",
            ExtensionStatus::Failed => "failed",
            ExtensionStatus::Partial => "partial",
        })
    }
}

/// What an install added to the machine (only what was not there before): what `remove`
/// may undo.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Added {
    /// apt packages.
    pub apt: Vec<String>,
    /// Global npm packages, by name.
    pub npm: Vec<String>,
    /// pip packages, with the venv they went into.
    pub pip: Vec<PipAdded>,
    /// Packages of pipx, cargo install, gem and go install, with their tool.
    pub lang: Vec<LangAdded>,
    /// Downloads, unpacked directories, the profile.d env file.
    pub files: Vec<PathBuf>,
    /// apt source files (and keyrings) of third-party repositories.
    pub apt_sources: Vec<PathBuf>,
    /// Virtual environments created.
    pub venvs: Vec<PathBuf>,
    /// apt packages an apt step pulled in besides the ones it named (dpkg's status before
    /// and after the step), as dpkg names them (`libuv1`, `libc6:i386`).
    pub apt_deps: Vec<String>,
    /// Directories a tool created as a side effect and leaves behind when its last
    /// package goes (npm's global `node_modules`): deleted by `remove` only when empty.
    pub dirs: Vec<PathBuf>,
    /// Files that existed and a `file` step with `replace = true` replaced: `remove`
    /// puts the original back from its backup.
    pub replaced: Vec<ReplacedFile>,
    /// Managed blocks a `block` step wrote: `remove` takes out exactly the block.
    pub blocks: Vec<BlockAdded>,
    /// The install step that added each item, so that `remove` undoes the steps in reverse
    /// order. Empty in the state of older versions: see [`Added::by_step`].
    pub order: Vec<AddedAt>,
}

/// One item of [`Added`], and the install step (its index in the manifest) that added it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAt {
    /// The index of the step in the manifest's `[[install]]` list.
    pub step: usize,
    /// What it added.
    #[serde(flatten)]
    pub item: Addition,
}

/// One thing an install added, of any kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Addition {
    /// A named apt package.
    Apt(String),
    /// An apt package pulled in as a dependency.
    AptDep(String),
    /// A global npm package.
    Npm(String),
    /// A pip package.
    Pip(PipAdded),
    /// A pipx, cargo, gem or go package.
    Lang(LangAdded),
    /// A file or directory.
    File(PathBuf),
    /// An apt source file or keyring.
    AptSource(PathBuf),
    /// A virtual environment.
    Venv(PathBuf),
    /// A directory a tool created, deleted when empty.
    Dir(PathBuf),
    /// A file replaced, with the backup of its original.
    Replaced(ReplacedFile),
    /// A managed block in a file.
    Block(BlockAdded),
}

/// A file a `file` step replaced ([`Added::replaced`]): where the original is kept, and
/// its mode and owner, which `remove` gives back with its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedFile {
    /// The file.
    pub path: PathBuf,
    /// The copy of the original, in the state directory (`backups/EXT/...`).
    pub backup: PathBuf,
    /// The original's permission bits.
    pub mode: u32,
    /// The original's owner.
    pub uid: u32,
    /// The original's group.
    pub gid: u32,
}

/// A managed block ([`Added::blocks`]): `# BEGIN extension-manager LABEL` ... `# END ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAdded {
    /// The file holding it.
    pub path: PathBuf,
    /// The marker label: the extension's name, then the step's `id` when it has one.
    pub label: String,
    /// The install created the file: `remove` deletes it when nothing else is left.
    #[serde(default)]
    pub created_file: bool,
    /// The install put a newline before the block (the file did not end with one):
    /// `remove` takes it out too while the block is still last.
    #[serde(default)]
    pub added_newline: bool,
}

impl Added {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.apt.is_empty()
            && self.npm.is_empty()
            && self.pip.is_empty()
            && self.lang.is_empty()
            && self.files.is_empty()
            && self.apt_sources.is_empty()
            && self.venvs.is_empty()
            && self.apt_deps.is_empty()
            && self.dirs.is_empty()
            && self.replaced.is_empty()
            && self.blocks.is_empty()
    }

    /// Every item, in a fixed order of kinds.
    pub fn items(&self) -> Vec<Addition> {
        let mut items: Vec<Addition> = Vec::new();
        items.extend(self.npm.iter().cloned().map(Addition::Npm));
        items.extend(self.pip.iter().cloned().map(Addition::Pip));
        items.extend(self.lang.iter().cloned().map(Addition::Lang));
        items.extend(self.blocks.iter().cloned().map(Addition::Block));
        items.extend(self.replaced.iter().cloned().map(Addition::Replaced));
        items.extend(self.files.iter().cloned().map(Addition::File));
        items.extend(self.venvs.iter().cloned().map(Addition::Venv));
        items.extend(self.dirs.iter().cloned().map(Addition::Dir));
        items.extend(self.apt.iter().cloned().map(Addition::Apt));
        items.extend(self.apt_deps.iter().cloned().map(Addition::AptDep));
        items.extend(self.apt_sources.iter().cloned().map(Addition::AptSource));
        items
    }

    /// Notes `step` as the step that added every item not noted yet, and forgets the
    /// notes of items no longer recorded.
    pub fn note_step(&mut self, step: usize) {
        let items = self.items();
        self.order.retain(|at| items.contains(&at.item));
        for item in items {
            if !self.order.iter().any(|at| at.item == item) {
                self.order.push(AddedAt { step, item });
            }
        }
    }

    /// Forgets every item of `done` (what a `remove` has undone).
    pub fn forget(&mut self, done: &Added) {
        self.apt.retain(|x| !done.apt.contains(x));
        self.apt_deps.retain(|x| !done.apt_deps.contains(x));
        self.npm.retain(|x| !done.npm.contains(x));
        self.pip.retain(|x| !done.pip.contains(x));
        self.lang.retain(|x| !done.lang.contains(x));
        self.files.retain(|x| !done.files.contains(x));
        self.apt_sources.retain(|x| !done.apt_sources.contains(x));
        self.venvs.retain(|x| !done.venvs.contains(x));
        self.dirs.retain(|x| !done.dirs.contains(x));
        self.replaced.retain(|x| !done.replaced.contains(x));
        self.blocks.retain(|x| !done.blocks.contains(x));
    }

    fn push(&mut self, item: Addition) {
        match item {
            Addition::Apt(p) => self.apt.push(p),
            Addition::AptDep(p) => self.apt_deps.push(p),
            Addition::Npm(p) => self.npm.push(p),
            Addition::Pip(p) => self.pip.push(p),
            Addition::Lang(p) => self.lang.push(p),
            Addition::File(p) => self.files.push(p),
            Addition::AptSource(p) => self.apt_sources.push(p),
            Addition::Venv(p) => self.venvs.push(p),
            Addition::Dir(p) => self.dirs.push(p),
            Addition::Replaced(r) => self.replaced.push(r),
            Addition::Block(b) => self.blocks.push(b),
        }
    }

    /// The items split by the step that added them, the last step first: the order of an
    /// exact undo (the step that installed npm is undone after the step that used it).
    /// Items without a noted step (a state of an older version) come last, in the order of
    /// [`Added::items`]: npm and pip packages before the apt packages that may provide npm
    /// and pip, apt sources after the packages that came from them.
    ///
    /// ```
    /// use extension_manager::state::Added;
    ///
    /// let mut added = Added { apt: vec!["npm".into()], ..Added::default() };
    /// added.note_step(0);
    /// added.npm.push("typescript".into());
    /// added.note_step(1);
    /// let groups = added.by_step();
    /// assert_eq!(groups[0].npm, ["typescript"]);
    /// assert_eq!(groups[1].apt, ["npm"]);
    /// ```
    pub fn by_step(&self) -> Vec<Added> {
        let mut groups: BTreeMap<std::cmp::Reverse<Option<usize>>, Added> = BTreeMap::new();
        for item in self.items() {
            let step = self
                .order
                .iter()
                .find(|at| at.item == item)
                .map(|at| at.step);
            groups
                .entry(std::cmp::Reverse(step))
                .or_default()
                .push(item);
        }
        // Reverse(None) sorts first: put the unknown step last.
        let mut groups: Vec<(Option<usize>, Added)> =
            groups.into_iter().map(|(k, v)| (k.0, v)).collect();
        groups.sort_by_key(|(step, _)| step.is_none());
        groups.into_iter().map(|(_, group)| group).collect()
    }
}

/// A pip package an install added.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PipAdded {
    /// The venv it went into; `None` for the system (or user) environment.
    #[serde(default)]
    pub venv: Option<PathBuf>,
    /// The package name.
    pub name: String,
}

/// A package a language package manager installed ([`Added::lang`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LangAdded {
    /// The tool: `pipx`, `cargo`, `gem` or `go`.
    pub tool: String,
    /// The name its list shows (the pipx venv, the crate, the gem, the go binary).
    pub name: String,
}

/// What other installed extensions still need ([`State::still_needed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needed {
    /// apt packages.
    pub apt: BTreeSet<String>,
    /// Global npm packages.
    pub npm: BTreeSet<String>,
    /// pip packages, per venv.
    pub pip: BTreeSet<PipAdded>,
    /// pipx, cargo, gem and go packages.
    pub lang: BTreeSet<LangAdded>,
    /// Files and directories.
    pub files: BTreeSet<PathBuf>,
    /// apt source files and keyrings.
    pub apt_sources: BTreeSet<PathBuf>,
    /// Virtual environments.
    pub venvs: BTreeSet<PathBuf>,
}

impl Needed {
    /// Whether removing `path` (recursively, if it is a directory) would take away something
    /// needed: a needed file, directory, apt source or venv (including the venv of a needed
    /// pip package) that is `path`, lies under it, or contains it.
    pub fn is_path_needed(&self, path: &Path) -> bool {
        let related = |other: &Path| other.starts_with(path) || path.starts_with(other);
        self.files
            .iter()
            .chain(&self.apt_sources)
            .chain(&self.venvs)
            .map(PathBuf::as_path)
            .chain(self.pip.iter().filter_map(|p| p.venv.as_deref()))
            .any(related)
    }
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// The run it belongs to ([`new_run_id`]).
    pub run_id: String,
    /// The command of the run, without the program name (`install python nodejs`).
    pub command: String,
    /// The extension concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// What happened: `installed`, `failed`, `removed`, `skipped`, ...
    pub event: String,
    /// Details for a human (the version installed, the failure).
    #[serde(default)]
    pub detail: String,
}

impl HistoryEntry {
    /// An entry that happens now.
    pub fn new(
        run_id: &str,
        command: &str,
        extension: Option<&str>,
        event: &str,
        detail: &str,
    ) -> Self {
        HistoryEntry {
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            run_id: run_id.to_string(),
            command: command.to_string(),
            extension: extension.map(str::to_string),
            event: event.to_string(),
            detail: detail.to_string(),
        }
    }

    /// [`time`](Self::time) as a time, when it parses.
    pub fn parsed_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.time).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_holder_names_the_program_once() {
        for command in ["extension-manager install nodejs", "install nodejs"] {
            let holder = LockHolder {
                pid: 42,
                command: command.into(),
                since: "2026-12-03T06:00:00Z".into(),
            };
            assert_eq!(
                holder.to_string(),
                "pid 42 (extension-manager install nodejs, since 2026-12-03T06:00:00Z)"
            );
        }
    }

    fn record(added: Added) -> InstalledExtension {
        InstalledExtension {
            version: "1.0.0".into(),
            manifest_sha256: "00".repeat(32),
            fingerprint: "fp".into(),
            options: BTreeMap::new(),
            status: ExtensionStatus::Installed,
            installed_at: "2026-11-22T07:08:12Z".into(),
            completed_steps: vec![0],
            added,
            error: None,
            uses: Added::default(),
        }
    }

    fn sample_state() -> State {
        let mut state = State::default();
        state.extensions.insert(
            "python".into(),
            InstalledExtension {
                options: [("version".to_string(), "3.12".to_string())].into(),
                ..record(Added {
                    apt: vec!["python3".into(), "build-essential".into()],
                    pip: vec![PipAdded {
                        venv: Some("/opt/py".into()),
                        name: "black".into(),
                    }],
                    venvs: vec!["/opt/py".into()],
                    ..Added::default()
                })
            },
        );
        state
    }

    #[test]
    fn state_round_trips_with_its_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path().join("nested/state"));
        assert_eq!(sd.load().expect("missing is empty"), State::default());
        let state = sample_state();
        sd.save(&state).expect("save");
        assert_eq!(sd.load().expect("load"), state);
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(sd.state_path()).expect("read")).expect("json");
        assert_eq!(json["version"], 1);
        assert_eq!(json["extensions"]["python"]["status"], "installed");
        assert_eq!(
            json["extensions"]["python"]["added"]["pip"][0]["venv"],
            "/opt/py"
        );
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(sd.path()), 0o700, "the state dir is ours alone");
        assert_eq!(mode(&sd.state_path()), 0o600);
        sd.write_report(&serde_json::json!({"url": "https://u:secret@127.0.0.1/x"}))
            .expect("report");
        assert_eq!(mode(&sd.report_path()), 0o600);
        assert_eq!(mode(sd.report_path().parent().expect("reports")), 0o700);
        let report = fs::read_to_string(sd.report_path()).expect("report");
        assert!(report.contains("https://***@127.0.0.1/x"), "{report}");
        sd.append_history(&HistoryEntry::new(
            "r",
            "install https://u:secret@127.0.0.1/x",
            None,
            "e",
            "",
        ))
        .expect("history");
        assert_eq!(mode(&sd.history_path()), 0o600);
        let history = fs::read_to_string(sd.history_path()).expect("history");
        assert!(!history.contains("secret"), "{history}");
        drop(sd.lock(Duration::ZERO, "install", |_| {}).expect("lock"));
        assert_eq!(mode(&sd.lock_path()), 0o600);
        let log = sd.log_path("run", "python");
        assert_eq!(mode(log.parent().expect("run dir")), 0o700);
    }

    #[test]
    fn state_files_that_are_symlinks_are_refused_and_their_targets_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path().join("state"));
        sd.secure().expect("create");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").expect("victim");
        std::os::unix::fs::symlink(&victim, sd.lock_path()).expect("lock link");
        std::os::unix::fs::symlink(&victim, sd.history_path()).expect("history link");
        std::os::unix::fs::symlink(&victim, sd.state_path()).expect("state link");
        let err = sd
            .lock(Duration::ZERO, "install python", |_| {})
            .expect_err("a symlinked lock is refused");
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("lock"), "{err}");
        let entry = HistoryEntry::new("r", "install", None, "installed", "");
        sd.append_history(&entry)
            .expect_err("a symlinked history is refused");
        assert!(sd.history(None, None).is_err(), "not read through the link");
        assert!(
            sd.load().is_err(),
            "state.json is not read through the link"
        );
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
        // Saving replaces the link by rename: the target stays as it was.
        sd.save(&sample_state()).expect("save");
        assert!(!sd.state_path().is_symlink());
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    }

    #[test]
    fn a_state_dir_others_can_write_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("state");
        fs::create_dir(&root).expect("dir");
        fs::set_permissions(&root, Permissions::from_mode(0o777)).expect("chmod");
        let sd = StateDir::new(&root);
        let err = sd
            .lock(Duration::ZERO, "install python", |_| {})
            .expect_err("refused");
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(
            text.contains("writable by group or others (mode 0777)"),
            "{text}"
        );
        assert!(text.contains("--state-dir"), "{text}");
        assert!(sd.load().is_err());
        assert!(sd.save(&sample_state()).is_err());
        assert!(
            fs::read_dir(&root).expect("dir").next().is_none(),
            "nothing written"
        );
        fs::set_permissions(&root, Permissions::from_mode(0o755)).expect("chmod");
        sd.save(&sample_state())
            .expect("a 0755 directory of ours is fine");
        // Another user's directory (only root can make one here).
        if std::os::unix::fs::chown(&root, Some(12345), None).is_ok() {
            let err = sd.load().expect_err("someone else's");
            assert!(err.to_string().contains("belongs to uid 12345"), "{err}");
        }
    }

    #[test]
    fn state_save_is_atomic_across_a_crash_before_rename() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path());
        let old = sample_state();
        sd.save(&old).expect("save");
        // A crash in mid-save: the temporary file is written (even half of it) but never
        // renamed over state.json.
        let mut tmp = tempfile::Builder::new()
            .prefix(".state.json.")
            .suffix(".tmp")
            .tempfile_in(sd.path())
            .expect("tmp");
        tmp.write_all(br#"{"version": 1, "extensions": {"nod"#)
            .expect("write");
        let (_file, tmp_path) = tmp.keep().expect("keep, as a killed process would");
        assert!(tmp_path.exists());
        assert_eq!(sd.load().expect("still the old valid state"), old);
        // And the next save goes through despite the leftover.
        let mut new = old.clone();
        new.extensions.remove("python");
        sd.save(&new).expect("save");
        assert_eq!(sd.load().expect("load"), new);
    }

    #[test]
    fn corrupt_state_names_the_file_and_says_to_move_it_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path());
        fs::write(sd.state_path(), b"{\"version\": 1, \"extensions\": {").expect("write");
        let err = sd.load().expect_err("corrupt");
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        let path = sd.state_path().display().to_string();
        assert!(text.contains(&path), "{text}");
        assert!(text.contains("move it aside"), "{text}");
        assert!(
            text.contains(&format!("mv {path} {path}.corrupt")),
            "{text}"
        );
        assert!(text.contains("line 1"), "{text}");

        // Not JSON at all, and JSON of the wrong shape, are corrupt too.
        for bytes in [&b"\0\0\0"[..], b"[]", b"{\"extensions\": {}}", b""] {
            fs::write(sd.state_path(), bytes).expect("write");
            let err = sd.load().expect_err("corrupt");
            assert!(
                matches!(err, StateError::Corrupt { .. }),
                "{bytes:?}: {err}"
            );
        }
    }

    #[test]
    fn state_from_a_newer_version_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path());
        fs::write(
            sd.state_path(),
            br#"{"version": 2, "extensions": {"x": "a new layout"}}"#,
        )
        .expect("write");
        let err = sd.load().expect_err("newer");
        assert!(
            matches!(err, StateError::UnsupportedVersion { found: 2, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("version 2"), "{text}");
        assert!(text.contains("upgrade extension-manager"), "{text}");
        // Through plain serde too.
        let via_serde = serde_json::from_str::<State>(r#"{"version": 2, "extensions": {}}"#);
        assert!(via_serde.is_err());
    }

    #[test]
    fn state_tolerates_missing_optional_fields_and_unknown_ones() {
        let json = r#"{"version": 1, "extensions": {"go": {
            "version": "1", "manifest_sha256": "s", "fingerprint": "f", "status": "partial",
            "installed_at": "2026-01-01T00:00:00Z", "some_future_field": true}}}"#;
        let state = State::from_json(json.as_bytes())
            .map_err(|_| "parse")
            .expect("parses");
        let go = &state.extensions["go"];
        assert_eq!(go.status, ExtensionStatus::Partial);
        assert!(go.added.is_empty() && go.completed_steps.is_empty() && go.error.is_none());
        assert!(!state.is_installed("go"));
    }

    #[test]
    fn state_lock_times_out_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path().join("state"));
        let held = sd
            .lock(Duration::from_millis(200), "install nodejs", |_| {})
            .expect("free lock");
        assert_eq!(held.holder().pid, std::process::id());
        let waiter = {
            let sd = sd.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let started = Instant::now();
                let result = sd.lock(Duration::from_millis(200), "install python", |h| {
                    seen.push(h.clone())
                });
                (result.map(|_| ()), seen, started.elapsed())
            })
        };
        let (result, seen, elapsed) = waiter.join().expect("thread");
        let err = result.expect_err("held by the main thread");
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert_eq!(err.exit_code(), 75);
        let LockError::Timeout { holder, .. } = &err else {
            panic!("not a timeout: {err:?}");
        };
        let holder = holder.as_ref().expect("holder read from the lock file");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.command, "install nodejs");
        assert_eq!(seen, vec![holder.clone()], "on_wait once per holder");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "pid {} (extension-manager install nodejs, since ",
                std::process::id()
            )),
            "{text}"
        );
        assert!(text.contains("--lock-timeout"), "{text}");

        drop(held);
        assert_eq!(
            fs::read(sd.lock_path()).expect("lock file stays").len(),
            0,
            "the holder record is cleared on release"
        );
        let again = sd
            .lock(Duration::ZERO, "install python", |_| {
                panic!("free: nobody to wait for")
            })
            .expect("released on drop");
        assert_eq!(
            LockHolder::read(again.path()).map(|h| h.command),
            Some("install python".to_string())
        );
    }

    #[test]
    fn state_lock_io_error_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The state dir is a file: nothing can be created under it.
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, b"").expect("write");
        let err = StateDir::new(&not_a_dir)
            .lock(Duration::ZERO, "install x", |_| {})
            .expect_err("cannot create");
        assert!(matches!(err, LockError::Io { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("lock"), "{err}");
    }

    #[test]
    fn state_history_appends_and_filters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path());
        assert!(sd.history(None, None).expect("missing is empty").is_empty());
        let mut old = HistoryEntry::new("r1", "install python", Some("python"), "failed", "503");
        old.time = "2020-01-01T00:00:00Z".into();
        sd.append_history(&old).expect("append");
        let installed =
            HistoryEntry::new("r2", "install python", Some("python"), "installed", "1.0");
        sd.append_history(&installed).expect("append");
        let other = HistoryEntry::new("r2", "install nodejs", Some("nodejs"), "skipped", "");
        sd.append_history(&other).expect("append");
        let global = HistoryEntry::new("r3", "apt update", None, "succeeded", "");
        sd.append_history(&global).expect("append");

        let all = sd.history(None, None).expect("history");
        assert_eq!(
            all,
            vec![old.clone(), installed.clone(), other.clone(), global]
        );
        assert_eq!(
            sd.history(Some("python"), None).expect("history"),
            vec![old, installed.clone()]
        );
        let since = humantime::parse_rfc3339("2021-01-01T00:00:00Z").expect("time");
        assert_eq!(
            sd.history(Some("python"), Some(since)).expect("history"),
            vec![installed]
        );
        let text = fs::read_to_string(sd.history_path()).expect("read");
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().all(|l| l.starts_with("{\"time\":")), "{text}");
        assert!(
            !text
                .lines()
                .nth(3)
                .unwrap_or_default()
                .contains("extension")
        );
    }

    #[test]
    fn state_history_skips_a_torn_last_line_and_recovers_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path());
        let first = HistoryEntry::new("r1", "install go", Some("go"), "installed", "1.0");
        sd.append_history(&first).expect("append");
        // A crash in mid-write.
        let mut file = OpenOptions::new()
            .append(true)
            .open(sd.history_path())
            .expect("open");
        file.write_all(br#"{"time":"2026-11-22T07:08:12Z","run_id":"r2","comm"#)
            .expect("write");
        drop(file);
        assert_eq!(
            sd.history(None, None).expect("tolerant"),
            vec![first.clone()]
        );
        // The next append starts on a fresh line, so it is not lost to the torn one.
        let second = HistoryEntry::new("r3", "remove go", Some("go"), "removed", "");
        sd.append_history(&second).expect("append");
        assert_eq!(
            sd.history(None, None).expect("tolerant"),
            vec![first, second]
        );
    }

    #[test]
    fn state_history_lines_of_concurrent_writers_do_not_interleave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path());
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let sd = sd.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let detail = format!("{w}-{i}-{}", "x".repeat(200));
                        let entry =
                            HistoryEntry::new("r", "install", Some("e"), "installed", &detail);
                        sd.append_history(&entry).expect("append");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        let text = fs::read_to_string(sd.history_path()).expect("read");
        assert_eq!(text.lines().count(), 200);
        assert_eq!(sd.history(None, None).expect("history").len(), 200);
    }

    #[test]
    fn state_report_and_log_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd = StateDir::new(dir.path().join("state"));
        let report = serde_json::json!({"extensions": [{"name": "python", "result": "installed"}]});
        sd.write_report(&report).expect("report");
        let read: serde_json::Value =
            serde_json::from_slice(&fs::read(sd.report_path()).expect("read")).expect("json");
        assert_eq!(read, report);
        sd.write_report(&serde_json::json!({})).expect("overwrite");
        let leftovers: Vec<_> = fs::read_dir(sd.path().join("reports"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("last.json")]);

        let log = sd.log_path("20261122T070812Z-42", "python");
        assert_eq!(log, sd.path().join("logs/20261122T070812Z-42/python.log"));
        assert!(log.parent().is_some_and(Path::is_dir));
        let sneaky = sd.log_path("../..", "../../etc/passwd");
        assert!(sneaky.starts_with(sd.logs_dir()), "{}", sneaky.display());
        assert_eq!(
            sneaky.components().count(),
            sd.logs_dir().components().count() + 2
        );
    }

    #[test]
    fn state_run_ids_are_compact_times_and_pids() {
        let id = new_run_id();
        let (time, pid) = id.split_once('-').expect("time-pid");
        assert_eq!(pid, std::process::id().to_string());
        assert_eq!(time.len(), "20261122T070812Z".len(), "{id}");
        assert!(time.ends_with('Z') && time.as_bytes()[8] == b'T', "{id}");
        assert!(time[..8].bytes().all(|b| b.is_ascii_digit()), "{id}");
    }

    fn state_with(records: &[(&str, ExtensionStatus, Added)]) -> State {
        let mut state = State::default();
        for (name, status, added) in records {
            state.extensions.insert(
                (*name).to_string(),
                InstalledExtension {
                    status: *status,
                    ..record(added.clone())
                },
            );
        }
        state
    }

    fn pip(venv: Option<&str>, name: &str) -> PipAdded {
        PipAdded {
            venv: venv.map(PathBuf::from),
            name: name.into(),
        }
    }

    #[test]
    fn state_still_needed_counts_only_other_extensions() {
        let state = state_with(&[
            (
                "python",
                ExtensionStatus::Installed,
                Added {
                    apt: vec!["python3".into(), "build-essential".into()],
                    pip: vec![pip(None, "black"), pip(Some("/opt/py"), "ruff")],
                    files: vec!["/etc/profile.d/extension-manager-python.sh".into()],
                    venvs: vec!["/opt/py".into()],
                    ..Added::default()
                },
            ),
            (
                "rust",
                ExtensionStatus::Installed,
                Added {
                    apt: vec!["build-essential".into()],
                    files: vec!["/opt/rust".into()],
                    ..Added::default()
                },
            ),
            (
                "nodejs",
                // A failed install's additions are still on the machine.
                ExtensionStatus::Failed,
                Added {
                    npm: vec!["typescript".into()],
                    pip: vec![pip(Some("/opt/py"), "nodeenv")],
                    apt_sources: vec![
                        "/etc/apt/sources.list.d/extension-manager-nodejs.sources".into(),
                    ],
                    ..Added::default()
                },
            ),
        ]);
        let needed = state.still_needed("python");
        assert_eq!(needed.apt, BTreeSet::from(["build-essential".to_string()]));
        assert_eq!(needed.npm, BTreeSet::from(["typescript".to_string()]));
        assert_eq!(
            needed.pip,
            BTreeSet::from([pip(Some("/opt/py"), "nodeenv")])
        );
        assert_eq!(needed.files, BTreeSet::from([PathBuf::from("/opt/rust")]));
        assert_eq!(needed.apt_sources.len(), 1);
        assert!(needed.venvs.is_empty());

        // Removing python keeps build-essential (rust) and its venv (nodejs installed into
        // it), and removes the rest.
        let undo = state.to_undo("python").expect("recorded");
        assert_eq!(undo.apt, ["python3"]);
        assert_eq!(undo.pip, [pip(None, "black"), pip(Some("/opt/py"), "ruff")]);
        assert_eq!(
            undo.files,
            [PathBuf::from("/etc/profile.d/extension-manager-python.sh")]
        );
        assert!(undo.venvs.is_empty(), "nodejs put nodeenv into /opt/py");

        // Nothing else needs what rust added but build-essential.
        let undo = state.to_undo("rust").expect("recorded");
        assert!(undo.apt.is_empty());
        assert_eq!(undo.files, [PathBuf::from("/opt/rust")]);

        assert_eq!(state.to_undo("golang"), None);
        assert_eq!(State::default().still_needed("x"), Needed::default());
        // An extension never keeps its own additions alive.
        let alone = state_with(&[(
            "go",
            ExtensionStatus::Installed,
            Added {
                apt: vec!["golang".into()],
                ..Added::default()
            },
        )]);
        assert_eq!(alone.still_needed("go"), Needed::default());
        assert_eq!(alone.to_undo("go").expect("recorded").apt, ["golang"]);
    }

    #[test]
    fn state_pulled_in_packages_go_only_when_no_other_extension_recorded_them() {
        let state = state_with(&[
            (
                "python",
                ExtensionStatus::Installed,
                Added {
                    apt: vec!["python3".into()],
                    apt_deps: vec!["python3.11".into(), "libshared".into(), "gcc".into()],
                    ..Added::default()
                },
            ),
            (
                "tool",
                ExtensionStatus::Installed,
                Added {
                    apt: vec!["gcc".into()],
                    apt_deps: vec!["libshared".into()],
                    ..Added::default()
                },
            ),
        ]);
        let undo = state.to_undo("python").expect("recorded");
        assert_eq!(undo.apt, ["python3"]);
        assert_eq!(
            undo.apt_deps,
            ["python3.11"],
            "tool named gcc, recorded libshared"
        );
        let undo = state.to_undo("tool").expect("recorded");
        assert!(undo.apt.is_empty() && undo.apt_deps.is_empty(), "{undo:?}");
    }

    #[test]
    fn state_undo_goes_through_the_steps_last_first_and_old_records_last() {
        let mut added = Added {
            apt: vec!["nodejs".into(), "npm".into()],
            ..Added::default()
        };
        added.note_step(0);
        added.npm.push("typescript".into());
        added.apt_deps.push("libuv1".into());
        added.note_step(2);
        added.files.push("/etc/profile.d/x.sh".into());
        let json = serde_json::to_string(&added).expect("json");
        let back: Added = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, added);
        let groups = added.by_step();
        assert_eq!(groups.len(), 3, "{groups:?}");
        assert_eq!(groups[0].npm, ["typescript"]);
        assert_eq!(groups[0].apt_deps, ["libuv1"]);
        assert_eq!(groups[1].apt, ["nodejs", "npm"]);
        assert_eq!(groups[2].files, [PathBuf::from("/etc/profile.d/x.sh")]);
        // A state of an older version has no steps: one group, npm before apt.
        let old: Added =
            serde_json::from_str(r#"{"apt": ["npm"], "npm": ["typescript"]}"#).expect("old");
        let groups = old.by_step();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].items()[0], Addition::Npm("typescript".into()));
    }

    #[test]
    fn state_needed_paths_cover_parents_and_children() {
        let needed = Needed {
            files: BTreeSet::from([PathBuf::from("/opt/tool/bin/tool")]),
            venvs: BTreeSet::from([PathBuf::from("/opt/venv")]),
            ..Needed::default()
        };
        assert!(needed.is_path_needed(Path::new("/opt/tool/bin/tool")));
        assert!(
            needed.is_path_needed(Path::new("/opt/tool")),
            "a parent dir"
        );
        assert!(
            needed.is_path_needed(Path::new("/opt/venv/lib/x.py")),
            "inside"
        );
        assert!(
            !needed.is_path_needed(Path::new("/opt/tools")),
            "not a prefix match"
        );
        assert!(!needed.is_path_needed(Path::new("/opt/other")));
    }
}
