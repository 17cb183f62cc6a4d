//! The run lock: an flock on `STATE_DIR/lock` that names its holder, waited for (saying
//! for whom) up to a limit, given up on a termination signal.

use super::*;

/// How often a waiting [`StateDir::lock`] tries the lock again.
pub(super) const LOCK_POLL: Duration = Duration::from_millis(100);

/// A wait for the run lock in progress: the open lock file and what has been seen.
pub(super) struct LockWait {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) started: Instant,
    pub(super) timeout: Duration,
    pub(super) last_seen: Option<LockHolder>,
}

impl LockWait {
    pub(super) fn start(state_dir: &StateDir, timeout: Duration) -> Result<LockWait, LockError> {
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
    pub(super) fn try_take(
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
    pub(super) fn finish(self, state_dir: &StateDir, holder: &str) -> Result<RunLock, LockError> {
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
    pub(super) fn read(path: &Path) -> Option<LockHolder> {
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

pub(super) fn write_permission_hint(f: &mut fmt::Formatter<'_>, source: &io::Error) -> fmt::Result {
    if source.kind() == io::ErrorKind::PermissionDenied {
        write!(
            f,
            "; run as root, or choose a state directory you can write with --state-dir"
        )?;
    }
    Ok(())
}
