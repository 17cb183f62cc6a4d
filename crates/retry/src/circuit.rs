//! A circuit breaker keyed by string (e.g. a registry host), so that a host that keeps
//! failing is not hammered by every operation of every process on the machine.
//!
//! States: *closed* (calls go through) -> *open* after `threshold` consecutive exhausted
//! operations (calls fail fast) -> *half-open* once `cooldown` has passed (one trial call
//! goes through; its success closes the circuit, its failure opens it again).
//!
//! The state lives in a [`CircuitStore`]: [`MemoryStore`] for one process, `FileStore`
//! (feature `file-store`: one JSON file per key, guarded by `flock`, written atomically;
//! see `crate::file_store`) for all processes on a host. Time is wall-clock time, since it is shared between processes; it is injectable.

use crate::memory_store::MemoryRecords;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The stored state of one key. Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "file-store",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct CircuitRecord {
    /// Consecutive operations that gave up on transient failures.
    pub failures: u32,
    /// When the circuit opened, if it is open or half-open.
    pub opened_at_ms: Option<u64>,
    /// From when a trial call is allowed.
    pub reopen_at_ms: Option<u64>,
    /// When the current half-open trial began.
    pub trial_started_ms: Option<u64>,
    /// The last failure, for the fail-fast message.
    pub last_error: Option<String>,
}

/// Where circuit records live.
pub trait CircuitStore: Send + Sync {
    /// Reads the record of `key` (default when there is none).
    fn load(&self, key: &str) -> io::Result<CircuitRecord>;
    /// Reads, changes and writes the record of `key` as one atomic step (no other process
    /// or thread changes it in between); returns the new record.
    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut CircuitRecord),
    ) -> io::Result<CircuitRecord>;
}

/// Records in memory: for one process, and for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: MemoryRecords<CircuitRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl CircuitStore for MemoryStore {
    fn load(&self, key: &str) -> io::Result<CircuitRecord> {
        self.records.load(key)
    }

    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut CircuitRecord),
    ) -> io::Result<CircuitRecord> {
        self.records.update(key, change)
    }
}

/// What a key's circuit is doing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through; `failures` consecutive operations have given up so far.
    Closed {
        /// Consecutive exhausted operations.
        failures: u32,
    },
    /// Calls fail fast until `until`.
    Open {
        /// Consecutive exhausted operations.
        failures: u32,
        /// When a trial call will be allowed.
        until: SystemTime,
    },
    /// One trial call is allowed (or running).
    HalfOpen {
        /// Whether a trial is running now.
        trial_running: bool,
    },
}

/// The error of a call refused by an open circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    /// The key, e.g. the registry host.
    pub key: String,
    /// Consecutive exhausted operations that opened it.
    pub failures: u32,
    /// When a trial call will be allowed.
    pub reopen_at: SystemTime,
    /// The last failure seen.
    pub last_error: Option<String>,
    /// Whether another process is running the half-open trial right now.
    pub trial_running: bool,
    /// The time this was decided.
    pub now: SystemTime,
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit for {} is open after {} consecutive failed operation{}",
            self.key,
            self.failures,
            if self.failures == 1 { "" } else { "s" }
        )?;
        if let Some(last) = &self.last_error {
            write!(f, " (last: {last})")?;
        }
        if self.trial_running {
            write!(f, "; a trial call is running now")
        } else {
            let wait = self.reopen_at.duration_since(self.now).unwrap_or_default();
            // Rounded up to the second: "in 5m", not "in 4m 59s" a millisecond later.
            let wait = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
            write!(f, "; next trial in {}", crate::fmt_duration(wait))?;
            // RFC 3339 has four-digit years: a record from a cooldown of millennia has none.
            let last_writable = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
            if self.reopen_at <= last_writable {
                write!(
                    f,
                    " at {}",
                    humantime::format_rfc3339_seconds(self.reopen_at)
                )?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for CircuitOpen {}

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Opens after `threshold` consecutive exhausted operations (default 3), allows one trial
/// after `cooldown` (default 300 s).
///
/// ```
/// use std::sync::Arc;
/// use em_retry::{CircuitBreaker, MemoryStore};
/// let breaker = CircuitBreaker::new(Arc::new(MemoryStore::new())).with_threshold(2);
/// breaker.record_failure("mirror.test", "503");
/// assert!(breaker.acquire("mirror.test").is_ok());
/// breaker.record_failure("mirror.test", "503");
/// assert!(breaker.acquire("mirror.test").is_err());
/// ```
pub struct CircuitBreaker {
    store: Arc<dyn CircuitStore>,
    threshold: u32,
    cooldown: Duration,
    clock: Clock,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("threshold", &self.threshold)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

impl CircuitBreaker {
    /// A breaker over `store` with the defaults (3 failures, 300 s cooldown, system clock).
    pub fn new(store: Arc<dyn CircuitStore>) -> Self {
        CircuitBreaker {
            store,
            threshold: 3,
            cooldown: Duration::from_secs(300),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Opens after this many consecutive exhausted operations (at least 1).
    pub fn with_threshold(mut self, threshold: u32) -> Self {
        self.threshold = threshold.max(1);
        self
    }

    /// Stays open this long before a trial.
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Replaces the wall clock (for tests).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now_ms(&self) -> u64 {
        to_ms((self.clock)())
    }

    /// Asks to make a call for `key`: `Ok` when closed, or when half-open and no other
    /// trial is running (this call becomes the trial); `Err` while open.
    ///
    /// A store that cannot be read or written lets the call through (and logs why):
    /// the breaker protects hosts, it must never be the reason an install fails.
    pub fn acquire(&self, key: &str) -> Result<(), CircuitOpen> {
        let now = self.now_ms();
        let cooldown = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        let mut refused = None;
        let result = self.store.update(key, &mut |r| {
            refused = None;
            let (Some(_), Some(reopen_at)) = (r.opened_at_ms, r.reopen_at_ms) else {
                return;
            };
            let trial_running = r
                .trial_started_ms
                .is_some_and(|t| now < t.saturating_add(cooldown));
            if now < reopen_at || trial_running {
                refused = Some(CircuitOpen {
                    key: key.to_string(),
                    failures: r.failures,
                    reopen_at: from_ms(reopen_at),
                    last_error: r.last_error.clone(),
                    trial_running: now >= reopen_at,
                    now: from_ms(now),
                });
            } else {
                r.trial_started_ms = Some(now);
            }
        });
        if let Err(e) = result {
            tracing::warn!(
                key,
                "circuit store unavailable, letting the call through: {e}"
            );
            return Ok(());
        }
        match refused {
            Some(open) => Err(open),
            None => Ok(()),
        }
    }

    /// Records an operation on `key` that succeeded (or got a definite answer): closes the circuit.
    pub fn record_success(&self, key: &str) {
        if let Err(e) = self
            .store
            .update(key, &mut |r| *r = CircuitRecord::default())
        {
            tracing::warn!(key, "could not record a success in the circuit store: {e}");
        }
    }

    /// Records an operation on `key` that gave up on transient failures: opens the circuit
    /// at the threshold, or again at once after a failed half-open trial.
    pub fn record_failure(&self, key: &str, reason: &str) {
        let now = self.now_ms();
        let cooldown = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        let threshold = self.threshold;
        let result = self.store.update(key, &mut |r| {
            r.failures = r.failures.saturating_add(1);
            if !reason.is_empty() {
                r.last_error = Some(reason.to_string());
            }
            if r.opened_at_ms.is_some() || r.failures >= threshold {
                r.opened_at_ms = Some(now);
                r.reopen_at_ms = Some(now.saturating_add(cooldown));
                r.trial_started_ms = None;
            }
        });
        if let Err(e) = result {
            tracing::warn!(key, "could not record a failure in the circuit store: {e}");
        }
    }

    /// The state of `key` now.
    pub fn state(&self, key: &str) -> io::Result<CircuitState> {
        let r = self.store.load(key)?;
        let now = self.now_ms();
        let cooldown = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        Ok(match (r.opened_at_ms, r.reopen_at_ms) {
            (Some(_), Some(reopen_at)) if now < reopen_at => CircuitState::Open {
                failures: r.failures,
                until: from_ms(reopen_at),
            },
            (Some(_), Some(_)) => CircuitState::HalfOpen {
                trial_running: r
                    .trial_started_ms
                    .is_some_and(|t| now < t.saturating_add(cooldown)),
            },
            _ => CircuitState::Closed {
                failures: r.failures,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn breaker_with_clock(store: Arc<dyn CircuitStore>) -> (CircuitBreaker, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = now.clone();
        let b = CircuitBreaker::new(store)
            .with_cooldown(Duration::from_secs(300))
            .with_clock(move || from_ms(clock.load(Ordering::SeqCst)));
        (b, now)
    }

    fn lifecycle(store: Arc<dyn CircuitStore>) {
        let (b, now) = breaker_with_clock(store);
        let key = "127.0.0.1:8080";
        for _ in 0..2 {
            b.record_failure(key, "503 Service Unavailable");
            assert!(b.acquire(key).is_ok());
        }
        b.record_failure(key, "503 Service Unavailable");
        let open = b.acquire(key).expect_err("open after 3");
        assert_eq!(open.failures, 3);
        let text = open.to_string();
        assert!(text.contains("127.0.0.1:8080"), "{text}");
        assert!(text.contains("503 Service Unavailable"), "{text}");
        assert!(text.contains("next trial in 5m"), "{text}");
        assert!(matches!(
            b.state(key).expect("state"),
            CircuitState::Open { .. }
        ));

        now.fetch_add(300_000, Ordering::SeqCst);
        assert!(b.acquire(key).is_ok(), "half-open: one trial");
        let second = b.acquire(key).expect_err("only one trial at a time");
        assert!(second.trial_running);
        b.record_failure(key, "reset");
        assert!(b.acquire(key).is_err(), "failed trial opens again");

        now.fetch_add(300_000, Ordering::SeqCst);
        assert!(b.acquire(key).is_ok());
        b.record_success(key);
        assert_eq!(
            b.state(key).expect("state"),
            CircuitState::Closed { failures: 0 }
        );
        assert!(b.acquire(key).is_ok());
    }

    #[test]
    fn memory_store_lifecycle() {
        lifecycle(Arc::new(MemoryStore::new()));
    }

    #[cfg(feature = "file-store")]
    #[test]
    fn file_store_lifecycle_and_format() {
        use crate::FileStore;
        use std::fs;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("circuits"));
        lifecycle(Arc::new(store.clone()));
        let path = store.path_of("127.0.0.1:8080");
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("127.0.0.1%3A8080.json")
        );
        let record: CircuitRecord =
            serde_json::from_slice(&fs::read(path).expect("record written")).expect("json");
        assert_eq!(record, CircuitRecord::default());
    }

    #[test]
    fn a_trial_abandoned_by_a_crashed_process_expires() {
        let (b, now) = breaker_with_clock(Arc::new(MemoryStore::new()));
        for _ in 0..3 {
            b.record_failure("k", "x");
        }
        now.fetch_add(300_000, Ordering::SeqCst);
        assert!(b.acquire("k").is_ok());
        assert!(b.acquire("k").is_err());
        now.fetch_add(300_000, Ordering::SeqCst);
        assert!(b.acquire("k").is_ok(), "the stale trial no longer blocks");
    }

    #[cfg(feature = "file-store")]
    #[test]
    fn corrupt_file_counts_as_closed() {
        use crate::FileStore;
        use std::fs;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        fs::write(store.path_of("k"), b"{not json").expect("write");
        let b = CircuitBreaker::new(Arc::new(store));
        assert!(b.acquire("k").is_ok());
    }

    #[cfg(feature = "file-store")]
    #[test]
    fn keys_lists_the_records_of_the_directory() {
        use crate::FileStore;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("circuits"));
        assert_eq!(store.keys().expect("absent dir"), Vec::<String>::new());
        let breaker = CircuitBreaker::new(Arc::new(store.clone()));
        breaker.record_failure("b.example.org:443", "503");
        breaker.record_failure("a.example.org:80", "503");
        assert_eq!(
            store.keys().expect("keys"),
            ["a.example.org:80", "b.example.org:443"]
        );
    }

    #[test]
    fn an_open_circuit_of_a_cooldown_of_millennia_still_reads() {
        let (breaker, _) = breaker_with_clock(Arc::new(MemoryStore::new()));
        let breaker = breaker
            .with_threshold(1)
            .with_cooldown(Duration::from_secs(10_000 * 366 * 24 * 3600));
        breaker.record_failure("h", "503");
        let open = breaker.acquire("h").expect_err("open");
        let text = open.to_string();
        assert!(text.starts_with("circuit for h is open after 1 consecutive failed operation (last: 503); next trial in "), "{text}");
        assert!(!text.contains(" at "), "{text}");
    }
}
