//! A retry budget keyed by string (e.g. a registry host): a token bucket that bounds how
//! many retries all the operations on one source may add, so that a fleet of hosts whose
//! processes all retry a failing registry does not multiply its load (the idea of gRPC's
//! retry throttling and the AWS SDK's retry quota).
//!
//! The rules, for each key:
//!
//! - the bucket holds at most `max_tokens` tokens and starts full;
//! - each first attempt deposits `ratio` of a token (capped at `max_tokens`);
//! - each retry withdraws one token; with less than one token the retry is not made and
//!   the operation gives up as *source exhausted* ("retry budget exhausted for HOST");
//! - an operation that succeeds after retries gets one token back (its last retry was
//!   worth it), so that a source that only fails now and then never runs dry.
//!
//! Over a full outage of `N` operations, retries are therefore at most
//! `ratio * N + max_tokens`: retries / first attempts tends to `ratio`.
//!
//! Tokens are counted in thousandths (whole numbers), so that every process computes the
//! same balance. The balance lives in a [`BudgetStore`]: [`MemoryBudgetStore`] for one
//! process, `FileBudgetStore` (feature `file-store`: one small JSON file per key, guarded
//! by `flock`, written atomically, mode 0600, symlinks refused; see `crate::file_store`)
//! for all processes on a host.

use crate::memory_store::MemoryRecords;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Thousandths of a token in one token.
const MILLI: u64 = 1000;

/// The stored balance of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "file-store",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct BudgetRecord {
    /// Thousandths of a token; `None` until the key is first used (the bucket is full).
    pub milli_tokens: Option<u64>,
}

/// Where budget records live.
pub trait BudgetStore: Send + Sync {
    /// Reads, changes and writes the record of `key` as one atomic step (no other process
    /// or thread changes it in between); returns the new record.
    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut BudgetRecord),
    ) -> io::Result<BudgetRecord>;
}

/// Records in memory: for one process, and for tests.
#[derive(Debug, Default)]
pub struct MemoryBudgetStore {
    records: MemoryRecords<BudgetRecord>,
}

impl MemoryBudgetStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryBudgetStore::default()
    }
}

impl BudgetStore for MemoryBudgetStore {
    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut BudgetRecord),
    ) -> io::Result<BudgetRecord> {
        self.records.update(key, change)
    }
}

/// The error of a retry the budget refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetExhausted {
    /// The key, e.g. the registry host.
    pub key: String,
}

impl fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry budget exhausted for {}", self.key)
    }
}

impl std::error::Error for BudgetExhausted {}

/// A token bucket per key: see the module's rules. Defaults: ratio 0.2, 10 tokens.
///
/// ```
/// use std::sync::Arc;
/// use em_retry::{MemoryBudgetStore, RetryBudget};
/// let budget = RetryBudget::new(Arc::new(MemoryBudgetStore::new())).with_max_tokens(1.0);
/// budget.record_first_attempt("mirror.test");
/// assert!(budget.try_retry("mirror.test").is_ok());
/// assert!(budget.try_retry("mirror.test").is_err());
/// ```
pub struct RetryBudget {
    store: Arc<dyn BudgetStore>,
    ratio_milli: u64,
    max_milli: u64,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio())
            .field("max_tokens", &self.max_tokens())
            .finish_non_exhaustive()
    }
}

fn to_milli(tokens: f64) -> u64 {
    if tokens.is_finite() && tokens > 0.0 {
        // Saturating: `as` clamps a huge float to u64::MAX.
        (tokens * MILLI as f64).round() as u64
    } else {
        0
    }
}

impl RetryBudget {
    /// A budget over `store` with the defaults (ratio 0.2, at most 10 tokens).
    pub fn new(store: Arc<dyn BudgetStore>) -> Self {
        RetryBudget {
            store,
            ratio_milli: 200,
            max_milli: 10 * MILLI,
        }
    }

    /// Each first attempt deposits this fraction of a token (0 or less: none).
    pub fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio_milli = to_milli(ratio);
        self
    }

    /// The bucket holds at most this many tokens (and starts with them).
    pub fn with_max_tokens(mut self, max: f64) -> Self {
        self.max_milli = to_milli(max);
        self
    }

    /// The deposit of each first attempt, in tokens.
    pub fn ratio(&self) -> f64 {
        self.ratio_milli as f64 / MILLI as f64
    }

    /// The bucket's size, in tokens.
    pub fn max_tokens(&self) -> f64 {
        self.max_milli as f64 / MILLI as f64
    }

    fn deposit(&self, key: &str, milli: u64, what: &str) {
        let max = self.max_milli;
        let result = self.store.update(key, &mut |r| {
            let now = r.milli_tokens.unwrap_or(max);
            r.milli_tokens = Some(now.saturating_add(milli).min(max));
        });
        if let Err(e) = result {
            tracing::warn!(key, "could not record {what} in the retry budget: {e}");
        }
    }

    /// Records the first attempt of an operation on `key`: deposits `ratio` of a token.
    pub fn record_first_attempt(&self, key: &str) {
        self.deposit(key, self.ratio_milli, "a first attempt");
    }

    /// Records an operation on `key` that succeeded after retries: one token back.
    pub fn record_retried_success(&self, key: &str) {
        self.deposit(key, MILLI, "a success");
    }

    /// Asks to make one retry on `key`: withdraws a token, or refuses when there is less
    /// than one. A store that cannot be read or written lets the retry through (and logs
    /// why): the budget protects hosts, it must never be the reason an install fails.
    pub fn try_retry(&self, key: &str) -> Result<(), BudgetExhausted> {
        let max = self.max_milli;
        let mut allowed = false;
        let result = self.store.update(key, &mut |r| {
            let now = r.milli_tokens.unwrap_or(max).min(max);
            allowed = now >= MILLI;
            r.milli_tokens = Some(if allowed { now - MILLI } else { now });
        });
        match result {
            Err(e) => {
                tracing::warn!(
                    key,
                    "retry budget store unavailable, allowing the retry: {e}"
                );
                Ok(())
            }
            Ok(_) if allowed => Ok(()),
            Ok(_) => Err(BudgetExhausted {
                key: key.to_string(),
            }),
        }
    }

    /// The tokens of `key` now (the store is written: a key never used starts full).
    pub fn tokens(&self, key: &str) -> io::Result<f64> {
        let max = self.max_milli;
        let r = self.store.update(key, &mut |_| {})?;
        Ok(r.milli_tokens.unwrap_or(max).min(max) as f64 / MILLI as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "file-store")]
    use crate::FileBudgetStore;
    #[cfg(feature = "file-store")]
    use std::fs;
    #[cfg(feature = "file-store")]
    use std::os::unix::fs::PermissionsExt;

    /// `ops` operations of up to `attempts` attempts against a source that always fails:
    /// (first attempts, retries).
    fn outage(budget: &RetryBudget, key: &str, ops: u32, attempts: u32) -> (u32, u32) {
        let (mut first, mut retries) = (0, 0);
        for _ in 0..ops {
            budget.record_first_attempt(key);
            first += 1;
            for _ in 1..attempts {
                if budget.try_retry(key).is_err() {
                    break;
                }
                retries += 1;
            }
        }
        (first, retries)
    }

    #[test]
    fn a_full_outage_keeps_retries_near_the_ratio() {
        let budget = RetryBudget::new(Arc::new(MemoryBudgetStore::new()));
        let (first, retries) = outage(&budget, "127.0.0.1:8080", 1000, 4);
        assert_eq!(first, 1000);
        let ratio = f64::from(retries) / f64::from(first);
        assert!(ratio <= 0.2 + 10.0 / 1000.0, "{retries} retries: {ratio}");
        // Without the budget it would be 3 retries each; the deposits are all spent.
        assert!(ratio >= 0.2, "{retries} retries: {ratio}");
        assert!(budget.tokens("127.0.0.1:8080").expect("tokens") < 1.0);
    }

    #[test]
    fn a_healthy_source_never_throttles() {
        let budget = RetryBudget::new(Arc::new(MemoryBudgetStore::new()));
        // Every other operation needs one retry, and then succeeds.
        for n in 0..10_000u32 {
            budget.record_first_attempt("h");
            if n % 2 == 0 {
                assert!(budget.try_retry("h").is_ok(), "throttled at {n}");
                budget.record_retried_success("h");
            }
        }
        assert_eq!(budget.tokens("h").expect("tokens"), 10.0);
    }

    #[test]
    fn keys_are_separate_and_ratio_zero_allows_only_the_initial_tokens() {
        let budget = RetryBudget::new(Arc::new(MemoryBudgetStore::new()))
            .with_ratio(0.0)
            .with_max_tokens(2.0);
        assert_eq!(outage(&budget, "a", 10, 3), (10, 2));
        assert_eq!(outage(&budget, "b", 1, 3), (1, 2));
        let err = budget.try_retry("a").expect_err("dry");
        assert_eq!(err.to_string(), "retry budget exhausted for a");
    }

    #[cfg(feature = "file-store")]
    #[test]
    fn two_processes_share_one_budget_through_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = RetryBudget::new(Arc::new(FileBudgetStore::new(dir.path().join("budget"))))
            .with_max_tokens(3.0);
        let two = RetryBudget::new(Arc::new(FileBudgetStore::new(dir.path().join("budget"))))
            .with_max_tokens(3.0);
        let threads: Vec<_> = [one, two]
            .into_iter()
            .map(|b| {
                std::thread::spawn(move || {
                    let mut made = 0u32;
                    for _ in 0..100 {
                        b.record_first_attempt("127.0.0.1:9");
                        for _ in 0..3 {
                            if b.try_retry("127.0.0.1:9").is_ok() {
                                made += 1;
                            }
                        }
                    }
                    made
                })
            })
            .collect();
        let made: u32 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        // One bucket: 200 first attempts deposit 40 tokens, plus the 3 it started with,
        // less the deposits made while it was still full (at most 1 token here). Two
        // separate buckets would have allowed 2 * (3 + 19.8) = 45.
        assert!((42..=43).contains(&made), "{made} retries");
        let path = FileBudgetStore::new(dir.path().join("budget")).path_of("127.0.0.1:9");
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("127.0.0.1%3A9.json")
        );
        let mode = fs::metadata(&path).expect("record").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let record: BudgetRecord =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        assert!(record.milli_tokens.expect("written") < MILLI);
    }

    #[cfg(feature = "file-store")]
    #[test]
    fn a_corrupt_record_counts_as_full_and_is_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileBudgetStore::new(dir.path());
        fs::write(store.path_of("k"), b"{not json").expect("write");
        let budget = RetryBudget::new(Arc::new(store.clone())).with_max_tokens(2.0);
        assert!(budget.try_retry("k").is_ok());
        let record: BudgetRecord =
            serde_json::from_slice(&fs::read(store.path_of("k")).expect("read")).expect("json");
        assert_eq!(record.milli_tokens, Some(1000));
    }

    #[cfg(feature = "file-store")]
    #[test]
    fn a_symlinked_record_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"{\"milli_tokens\":0}\n").expect("write");
        let store = FileBudgetStore::new(dir.path().join("budget"));
        fs::create_dir_all(store.dir()).expect("dir");
        std::os::unix::fs::symlink(&target, store.path_of("k")).expect("symlink");
        let err = store.update("k", &mut |_| {}).expect_err("symlink refused");
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        // The budget lets the retry through rather than fail an install on it.
        let budget = RetryBudget::new(Arc::new(store.clone())).with_max_tokens(0.0);
        assert!(budget.try_retry("k").is_ok());
        assert_eq!(fs::read(&target).expect("read"), b"{\"milli_tokens\":0}\n");
        assert!(
            fs::symlink_metadata(store.path_of("k"))
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
}
