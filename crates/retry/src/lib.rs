//! # em-retry: run fallible operations under a retry policy
//!
//! A small retry core for async Rust (tokio), with a blocking entry point. It knows nothing
//! of processes or package managers: the caller says what an operation is and how to read
//! its errors; this crate decides when to try again, how long to wait, when to repair,
//! and when to stop, and reports every step as an [`Event`].
//!
//! - [`RetryPolicy`]: attempts (the first included), [`Backoff`] (none, fixed, linear,
//!   exponential, all capped and saturating), [`Jitter`] (none, full, equal, decorrelated),
//!   a per-attempt timeout (the attempt's future is dropped) and a total deadline (no
//!   attempt starts, and no sleep begins, that would end past it).
//! - Classification: a closure maps each error to a [`Decision`]: `Retry`,
//!   `RetryAfter(d)` (waits `max(d, backoff)`), `Repair(repair)` (runs the repair between
//!   attempts; a failed repair is reported and the next attempt still runs), `Fail` (a
//!   permanent failure) or `GiveUp` (this source cannot serve it now: stop, transient).
//!   Unclassified errors retry.
//! - [`PolicyOverride`]: the one way to change a policy's parts (command-line flags,
//!   a manifest step's `retry` table, the configuration's `[policy.NAME]`), with
//!   [`parse_duration`] and the names of [`BackoffKind`] and [`Jitter`].
//! - [`Subscriber`]s receive the events: [`TracingLog`] logs them, [`Metrics`] counts them
//!   and renders Prometheus text.
//! - [`CircuitBreaker`]: per key (e.g. a host), shared across processes with `FileStore`.
//! - [`RetryBudget`]: a token bucket per key (e.g. a host), shared across processes with
//!   `FileBudgetStore`: each first attempt deposits `ratio` of a token (0.2), each retry
//!   takes one, a retry without a token is not made (the operation gives up as
//!   [`GiveUpReason::SourceExhausted`], "retry budget exhausted for HOST"), a success after
//!   retries gives one back. Over a full outage retries stay near `ratio` x first attempts.
//! - [`url`]: the one URL splitter of the workspace (scheme, user info, authority, host,
//!   port), whose authority is the key of circuits and budgets.
//! - Time is tokio's clock (tests pause it); randomness is a [`Random`] (seed it).
//! - Feature `file-store` (off by default): `FileStore` and `FileBudgetStore`, the stores
//!   shared by the processes of one host (one JSON file per key, `flock`ed, written
//!   atomically, mode 0600, symbolic links refused). Only it needs serde, serde_json,
//!   tempfile and libc.
//!
//! What it is not: an HTTP client middleware, or a scheduler. It runs one operation.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use em_retry::{Backoff, Decision, Jitter, Operation, Repair, Retry, RetryPolicy, TracingLog};
//!
//! #[derive(Debug)]
//! enum FetchError { Unavailable, CorruptCache, NotFound }
//! impl std::fmt::Display for FetchError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "{self:?}")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let policy = RetryPolicy::new(4)
//!     .with_backoff(Backoff::Exponential {
//!         base: Duration::from_millis(10),
//!         multiplier: 2.0,
//!         max: Duration::from_millis(50),
//!     })
//!     .with_jitter(Jitter::Equal)
//!     .with_timeout(Duration::from_secs(5));
//!
//! let result = Retry::new(policy)
//!     .operation(Operation::new("registry", "fetch index"))
//!     .subscribe(Arc::new(TracingLog))
//!     .classify(|e: &FetchError| match e {
//!         FetchError::Unavailable => Decision::Retry,
//!         FetchError::CorruptCache => Decision::Repair(Repair::new("clear cache", || async { Ok(()) })),
//!         FetchError::NotFound => Decision::Fail,
//!     })
//!     .run(|attempt| async move {
//!         match attempt.number {
//!             1 => Err(FetchError::Unavailable),
//!             2 => Err(FetchError::CorruptCache),
//!             _ => Ok("index"),
//!         }
//!     })
//!     .await;
//! assert_eq!(result.unwrap(), "index");
//! # }
//! ```

mod budget;
mod circuit;
mod events;
#[cfg(feature = "file-store")]
mod file_store;
mod memory_store;
mod metrics;
mod overrides;
mod policy;
pub mod random;
mod retry;
pub mod url;

use std::time::Duration;

pub use budget::{BudgetExhausted, BudgetRecord, BudgetStore, MemoryBudgetStore, RetryBudget};
pub use circuit::{
    CircuitBreaker, CircuitOpen, CircuitRecord, CircuitState, CircuitStore, MemoryStore,
};
pub use events::{Event, FailureClass, GiveUpReason, Operation, Subscriber, TracingLog, Wait};
#[cfg(feature = "file-store")]
pub use file_store::{FileBudgetStore, FileStore};
pub use metrics::Metrics;
pub use overrides::{BackoffKind, PolicyOverride, parse_duration};
pub use policy::{Backoff, DelaySchedule, Jitter, PolicyError, RetryPolicy};
pub use random::Random;
pub use retry::{Attempt, DEFAULT_PROGRESS_LIMIT, Decision, Failure, Repair, Retry, RetryError};

/// A duration the way a person reads it in a log line: `250ms`, `4.1s`, `2m 5s`, `1h 30m`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(em_retry::fmt_duration(Duration::from_millis(4100)), "4.1s");
/// assert_eq!(em_retry::fmt_duration(Duration::from_millis(250)), "250ms");
/// assert_eq!(em_retry::fmt_duration(Duration::from_secs(125)), "2m 5s");
/// ```
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = ms / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else if ms < 3_600_000 {
        let s = ms / 1000;
        match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m {r}s", s / 60),
        }
    } else {
        let m = ms / 60_000;
        match m % 60 {
            0 => format!("{}h", m / 60),
            r => format!("{}h {r}m", m / 60),
        }
    }
}
