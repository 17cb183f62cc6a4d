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

use crate::events::{Events, Tone};
use crate::exit;

mod error;
mod files;
mod history;
mod lock;
mod records;
mod refcount;
mod state_file;

pub use error::*;
pub use files::*;
pub use history::*;
pub use lock::*;
pub use records::*;
pub use refcount::*;
pub use state_file::*;

/// The version of `state.json` that this build writes and understands.
pub const STATE_VERSION: u64 = 1;

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
/// use em_install::state::{ExtensionStatus, InstalledExtension, State, StateDir};
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
    /// The run lock of the state directory this one is a part of (a user's part shares
    /// the system's lock).
    lock_at: Option<PathBuf>,
}

/// Where each thing lives in the directory.
impl StateDir {
    /// The state directory at `root` (see `state_dir::resolve` for the default location).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir {
            root: root.into(),
            lock_at: None,
        }
    }

    /// The part of this state directory that records the user extensions of `user`:
    /// `users/<user>/`, with its own state, history, logs and backups, under this
    /// directory's run lock (one run at a time, whoever it is for).
    pub fn for_user(&self, user: &str) -> StateDir {
        StateDir {
            root: self.root.join("users").join(user),
            lock_at: Some(self.lock_path()),
        }
    }

    /// The users with a part of this state directory (`users/*/`), by name.
    pub fn users(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("users"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("state.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
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
        self.lock_at
            .clone()
            .unwrap_or_else(|| self.root.join("lock"))
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

    /// `circuits/`: the circuit breaker records (`em_retry::FileStore`).
    pub fn circuits_dir(&self) -> PathBuf {
        self.root.join("circuits")
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

/// Safety: the directory must be ours before anything in it is read or written; files
/// are read without following a link and rewritten atomically.
impl StateDir {
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

    /// The bytes of `path`, a file of this directory; `None` when it does not exist
    /// (nothing recorded yet). The directory is checked first (see [`secure`](Self::secure)),
    /// and a symbolic link in the file's place is refused.
    fn read_if_present(&self, path: &Path) -> Result<Option<Vec<u8>>, StateError> {
        let io_error = |source| StateError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        };
        self.check_if_present().map_err(io_error)?;
        match read_no_follow(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io_error(source)),
        }
    }

    /// Writes `value` to `path`, a file of this directory, as pretty JSON with a final
    /// newline, atomically and privately (see [`write_private`]); `finish` may rewrite the
    /// text first (a report's URLs are redacted).
    fn write_json(
        &self,
        path: PathBuf,
        value: &impl Serialize,
        finish: impl FnOnce(String) -> String,
    ) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(value).map_err(|e| StateError::Io {
            action: "encode",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        let mut bytes = finish(text).into_bytes();
        bytes.push(b'\n');
        self.secure()
            .and_then(|()| write_private(&path, &bytes))
            .map_err(|source| StateError::Io {
                action: "write",
                path,
                source,
            })
    }
}

/// The run lock: one mutating run at a time.
impl StateDir {
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
    /// use em_install::state::{LockError, StateDir};
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
    /// use em_install::state::StateDir;
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

    /// [`lock_async`](Self::lock_async) as `install` and `remove` wait: each holder seen is
    /// said through `events` (`Waiting for the run lock: HOLDER`).
    pub async fn lock_reporting(
        &self,
        timeout: Duration,
        holder: &str,
        events: &dyn Events,
    ) -> Result<RunLock, LockError> {
        self.lock_async(timeout, holder, |holder| {
            events.status(
                "Waiting",
                Tone::Warn,
                &format!("for the run lock: {holder}"),
            );
        })
        .await
    }
}

/// What is recorded: `state.json`, `history.jsonl` and the last run's report.
impl StateDir {
    /// Reads `state.json`. A missing file is an empty state (nothing installed yet).
    ///
    /// Errors: the file cannot be read; it is not valid state JSON ([`StateError::Corrupt`],
    /// whose message names the file and says to move it aside); it was written by a newer
    /// extension-manager ([`StateError::UnsupportedVersion`]).
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.state_path();
        match self.read_if_present(&path)? {
            Some(bytes) => State::from_json(&bytes).map_err(|e| e.at(path)),
            None => Ok(State::default()),
        }
    }

    /// Writes `state.json` atomically (see [`write_atomically`]): after a crash at any
    /// instant, `state.json` is the old state or the new one.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        self.write_json(self.state_path(), state, |text| text)
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
        let Some(bytes) = self.read_if_present(&path)? else {
            return Ok(Vec::new());
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
        // Reports quote commands and tool output: no credentials in URLs.
        self.write_json(self.report_path(), report, |text| {
            em_exec::redact_urls(&text)
        })
    }
}

/// A fresh run id: the UTC start time and the pid, e.g. `20261122T070812Z-4242`. It sorts
/// by time, and two processes never share one.
pub fn new_run_id() -> String {
    let time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_run_says_for_whom_through_the_observer() {
        let dir = tempfile::tempdir().expect("dir");
        let state_dir = StateDir::new(dir.path());
        let _held = state_dir
            .lock(Duration::ZERO, "install python", |_| {})
            .expect("free");
        let seen = crate::events::testing::Collect::default();
        let err = state_dir
            .lock_reporting(Duration::ZERO, "remove python", &seen)
            .await
            .expect_err("held");
        assert_eq!(err.exit_code(), 75);
        let said = seen.said();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("Waiting Warn for the run lock: ")
                && said[0].contains("install python"),
            "{said:?}"
        );
    }

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
