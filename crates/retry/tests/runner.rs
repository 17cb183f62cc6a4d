//! `Retry::run` end to end, on tokio's paused clock: attempts, classification, sleeps,
//! repairs, timeouts, the deadline, the circuit breaker and the events a user sees.
//!
//! Every async test starts with the clock paused, so a "5 s" sleep takes no real time and
//! elapsed times are exact.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use em_retry::{
    Attempt, Backoff, CircuitBreaker, CircuitState, Decision, Event, Failure, FailureClass,
    GiveUpReason, Jitter, MemoryStore, Metrics, Operation, Repair, Retry, RetryPolicy, Subscriber,
    Wait,
};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// Helpers

/// Records every event with the (paused) tokio time at which it was emitted.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Instant, Event)>>>);

impl Recorder {
    fn subscriber(&self) -> Arc<dyn Subscriber> {
        let sink = self.0.clone();
        Arc::new(move |e: &Event| {
            sink.lock()
                .expect("recorder not poisoned")
                .push((Instant::now(), e.clone()))
        })
    }

    fn timed(&self) -> Vec<(Instant, Event)> {
        self.0.lock().expect("recorder not poisoned").clone()
    }

    fn events(&self) -> Vec<Event> {
        self.timed().into_iter().map(|(_, e)| e).collect()
    }

    /// The events' kinds, e.g. `["started 1", "failed 1", "sleeping 2", ...]`.
    fn kinds(&self) -> Vec<String> {
        self.events().iter().map(kind).collect()
    }

    fn sleeps(&self) -> Vec<Duration> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::Sleeping { delay, .. } => Some(*delay),
                _ => None,
            })
            .collect()
    }

    /// Why each retry waited as long as it did.
    fn waits(&self) -> Vec<Wait> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::Sleeping { why, .. } => Some(*why),
                _ => None,
            })
            .collect()
    }

    /// The attempts allowed, as each attempt started.
    fn allowed_at_start(&self) -> Vec<u32> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::AttemptStarted { max_attempts, .. } => Some(*max_attempts),
                _ => None,
            })
            .collect()
    }

    fn failure_classes(&self) -> Vec<FailureClass> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::AttemptFailed { class, .. } => Some(class.clone()),
                _ => None,
            })
            .collect()
    }

    fn gave_up(&self) -> Event {
        let events = self.events();
        let last = events.last().expect("at least one event").clone();
        assert!(
            matches!(last, Event::GaveUp { .. }),
            "the last event is GaveUp: {events:#?}"
        );
        last
    }
}

fn kind(e: &Event) -> String {
    match e {
        Event::AttemptStarted { attempt, .. } => format!("started {attempt}"),
        Event::AttemptFailed { attempt, .. } => format!("failed {attempt}"),
        Event::Repaired {
            repair, outcome, ..
        } => match outcome {
            Ok(()) => format!("repaired {repair}"),
            Err(e) => format!("repair {repair} failed: {e}"),
        },
        Event::Sleeping { next_attempt, .. } => format!("sleeping {next_attempt}"),
        Event::Succeeded { attempt, .. } => format!("succeeded {attempt}"),
        Event::GaveUp { reason, .. } => format!("gave up: {reason}"),
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn fixed(delay: Duration) -> Backoff {
    Backoff::Fixed { delay }
}

/// Sets an `AtomicBool` when dropped: proves a cancelled attempt's future was dropped.
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// Attempts and sleeps

#[tokio::test(start_paused = true)]
async fn success_on_the_first_attempt_does_not_sleep() {
    let rec = Recorder::default();
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<u32, _> = Retry::<String>::new(
        RetryPolicy::new(3)
            .with_backoff(fixed(secs(1)))
            .with_jitter(Jitter::None),
    )
    .operation(Operation::new("apt", "update"))
    .subscribe(rec.subscriber())
    .run(|attempt| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok(attempt.number * 10) }
    })
    .await;

    assert_eq!(result.expect("success"), 10);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let events = rec.events();
    assert_eq!(rec.kinds(), ["started 1", "succeeded 1"]);
    assert_eq!(events[0].operation(), &Operation::new("apt", "update"));
    assert!(matches!(
        events[0],
        Event::AttemptStarted {
            attempt: 1,
            max_attempts: 3,
            ..
        }
    ));
    assert!(matches!(
        events[1],
        Event::Succeeded {
            attempt: 1,
            elapsed: Duration::ZERO,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn fails_twice_then_succeeds_sleeping_exactly_the_policy_delays() {
    let backoffs = [
        (fixed(ms(500)), [ms(500), ms(500)]),
        (
            Backoff::Linear {
                base: ms(200),
                max: secs(10),
            },
            [ms(200), ms(400)],
        ),
        (
            Backoff::Exponential {
                base: ms(100),
                multiplier: 3.0,
                max: secs(30),
            },
            [ms(100), ms(300)],
        ),
        (Backoff::None, [Duration::ZERO, Duration::ZERO]),
    ];
    for (backoff, expected) in backoffs {
        let policy = RetryPolicy::new(5)
            .with_backoff(backoff.clone())
            .with_jitter(Jitter::None);
        assert_eq!(
            [policy.backoff().delay(1), policy.backoff().delay(2)],
            expected,
            "{backoff:?}"
        );
        let rec = Recorder::default();
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let result = Retry::new(policy)
            .subscribe(rec.subscriber())
            .run(|attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt.number < 3 {
                        Err(format!(
                            "503 Service Unavailable (attempt {})",
                            attempt.number
                        ))
                    } else {
                        Ok("index")
                    }
                }
            })
            .await;

        assert_eq!(result.expect("third attempt succeeds"), "index");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{backoff:?}");
        assert_eq!(
            rec.kinds(),
            [
                "started 1",
                "failed 1",
                "sleeping 2",
                "started 2",
                "failed 2",
                "sleeping 3",
                "started 3",
                "succeeded 3"
            ],
            "{backoff:?}"
        );
        assert_eq!(rec.sleeps(), expected, "{backoff:?}");
        let total: Duration = expected.iter().sum();
        assert_eq!(start.elapsed(), total, "{backoff:?}");
        assert_eq!(
            rec.failure_classes(),
            [FailureClass::Transient, FailureClass::Transient]
        );
        let events = rec.events();
        assert!(
            matches!(&events[1], Event::AttemptFailed { reason, attempt: 1, max_attempts: 5, .. }
                if reason == "503 Service Unavailable (attempt 1)"),
            "{events:#?}"
        );
        assert!(
            matches!(events.last(), Some(Event::Succeeded { attempt: 3, elapsed, .. }) if *elapsed == total),
            "{events:#?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_stops_after_one_attempt() {
    let rec = Recorder::default();
    let calls = AtomicU32::new(0);
    let err = Retry::new(RetryPolicy::new(5).with_backoff(fixed(secs(1))))
        .classify(|e: &String| {
            if e.starts_with("404") {
                Decision::Fail
            } else {
                Decision::Retry
            }
        })
        .subscribe(rec.subscriber())
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("404 Not Found".to_string()) }
        })
        .await
        .expect_err("a 404 is permanent");

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.reason(), &GiveUpReason::Permanent);
    assert_eq!(err.attempts(), 1);
    assert!(!err.is_transient());
    assert!(!err.timed_out());
    assert_eq!(err.last_error().map(String::as_str), Some("404 Not Found"));
    assert_eq!(
        err.to_string(),
        "404 Not Found (permanent failure after 1 attempt)"
    );
    assert_eq!(
        rec.kinds(),
        ["started 1", "failed 1", "gave up: permanent failure"]
    );
    assert_eq!(rec.failure_classes(), [FailureClass::Permanent]);
    assert!(matches!(
        rec.gave_up(),
        Event::GaveUp { attempts: 1, ref last_error, elapsed: Duration::ZERO, .. } if last_error == "404 Not Found"
    ));
}

#[tokio::test(start_paused = true)]
async fn exhausted_gives_up_as_transient_with_the_last_error() {
    let rec = Recorder::default();
    let start = Instant::now();
    let err = Retry::new(
        RetryPolicy::new(3)
            .with_backoff(fixed(secs(2)))
            .with_jitter(Jitter::None),
    )
    .classify(|_: &String| Decision::Retry)
    .subscribe(rec.subscriber())
    .run(|attempt| async move { Err::<(), _>(format!("connection reset #{}", attempt.number)) })
    .await
    .expect_err("always fails");

    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
    assert!(err.is_transient(), "an outer layer may try again later");
    assert_eq!(err.attempts(), 3);
    assert_eq!(
        err.last_error().map(String::as_str),
        Some("connection reset #3")
    );
    assert_eq!(
        err.to_string(),
        "connection reset #3 (retries exhausted after 3 attempts)"
    );
    assert_eq!(start.elapsed(), secs(4));
    assert_eq!(rec.sleeps(), [secs(2), secs(2)]);
    assert_eq!(
        rec.kinds(),
        [
            "started 1",
            "failed 1",
            "sleeping 2",
            "started 2",
            "failed 2",
            "sleeping 3",
            "started 3",
            "failed 3",
            "gave up: retries exhausted"
        ]
    );
    assert!(matches!(
        rec.gave_up(),
        Event::GaveUp { attempts: 3, ref last_error, elapsed, .. }
            if last_error == "connection reset #3" && elapsed == secs(4)
    ));
}

#[tokio::test(start_paused = true)]
async fn one_attempt_policy_never_retries() {
    let rec = Recorder::default();
    let err = Retry::new(RetryPolicy::once())
        .subscribe(rec.subscriber())
        .run(|_| async { Err::<(), _>("503".to_string()) })
        .await
        .expect_err("fails");
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
    assert!(rec.sleeps().is_empty());
}

#[tokio::test(start_paused = true)]
async fn unclassified_errors_retry() {
    // No classifier: even an error that looks permanent is retried until the policy runs out.
    let rec = Recorder::default();
    let calls = AtomicU32::new(0);
    let err = Retry::new(RetryPolicy::new(4).with_backoff(fixed(ms(10))))
        .subscribe(rec.subscriber())
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("E: Unable to locate package nope".to_string()) }
        })
        .await
        .expect_err("always fails");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
    assert_eq!(rec.failure_classes(), vec![FailureClass::Transient; 4]);
    assert_eq!(rec.sleeps().len(), 3);
}

// ---------------------------------------------------------------------------------------
// Retry-After

async fn run_with_retry_after(backoff: Duration, retry_after: Duration) -> (Recorder, Duration) {
    let rec = Recorder::default();
    let start = Instant::now();
    let result = Retry::new(
        RetryPolicy::new(2)
            .with_backoff(fixed(backoff))
            .with_jitter(Jitter::None),
    )
    .classify(move |_: &String| Decision::RetryAfter(retry_after))
    .subscribe(rec.subscriber())
    .run(|attempt| async move {
        if attempt.number == 1 {
            Err("429 Too Many Requests".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    result.expect("second attempt succeeds");
    (rec, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn retry_after_longer_than_the_backoff_is_waited_in_full() {
    let (rec, elapsed) = run_with_retry_after(secs(1), secs(5)).await;
    assert_eq!(rec.sleeps(), [secs(5)]);
    assert_eq!(elapsed, secs(5));
    assert_eq!(rec.failure_classes(), [FailureClass::RetryAfter(secs(5))]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_shorter_than_the_backoff_waits_the_backoff() {
    let (rec, elapsed) = run_with_retry_after(secs(3), secs(1)).await;
    assert_eq!(rec.sleeps(), [secs(3)]);
    assert_eq!(elapsed, secs(3));
    assert_eq!(rec.failure_classes(), [FailureClass::RetryAfter(secs(1))]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_deadline_gives_up_without_sleeping() {
    let rec = Recorder::default();
    let start = Instant::now();
    let err = Retry::new(
        RetryPolicy::new(5)
            .with_backoff(fixed(ms(100)))
            .with_deadline(secs(30)),
    )
    .classify(|_: &String| Decision::RetryAfter(secs(60)))
    .subscribe(rec.subscriber())
    .run(|_| async { Err::<(), _>("429 Too Many Requests".to_string()) })
    .await
    .expect_err("the server asks to wait past the deadline");
    assert_eq!(err.reason(), &GiveUpReason::Deadline);
    assert!(err.is_transient());
    assert_eq!(err.attempts(), 1);
    assert!(rec.sleeps().is_empty());
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        err.to_string(),
        "429 Too Many Requests (deadline reached after 1 attempt)"
    );
}

// ---------------------------------------------------------------------------------------
// Repairs

#[tokio::test(start_paused = true)]
async fn repair_runs_once_between_the_first_and_second_attempt() {
    let rec = Recorder::default();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let repairs = Arc::new(AtomicU32::new(0));
    let (log_c, repairs_c) = (log.clone(), repairs.clone());
    let log_op = log.clone();
    let result = Retry::new(
        RetryPolicy::new(3)
            .with_backoff(fixed(ms(250)))
            .with_jitter(Jitter::None),
    )
    .classify(move |e: &String| {
        if e.contains("EINTEGRITY") {
            let (log, repairs) = (log_c.clone(), repairs_c.clone());
            Decision::Repair(Repair::new("npm cache clean --force", move || async move {
                repairs.fetch_add(1, Ordering::SeqCst);
                log.lock().expect("log").push("repair".to_string());
                Ok(())
            }))
        } else {
            Decision::Retry
        }
    })
    .subscribe(rec.subscriber())
    .run(move |attempt| {
        log_op
            .lock()
            .expect("log")
            .push(format!("attempt {}", attempt.number));
        async move {
            if attempt.number == 1 {
                Err("npm ERR! code EINTEGRITY".to_string())
            } else {
                Ok(attempt.number)
            }
        }
    })
    .await;

    assert_eq!(result.expect("repaired"), 2);
    assert_eq!(repairs.load(Ordering::SeqCst), 1);
    assert_eq!(
        *log.lock().expect("log"),
        ["attempt 1", "repair", "attempt 2"]
    );
    assert_eq!(
        rec.kinds(),
        [
            "started 1",
            "failed 1",
            "repaired npm cache clean --force",
            "sleeping 2",
            "started 2",
            "succeeded 2"
        ]
    );
    assert_eq!(
        rec.failure_classes(),
        [FailureClass::Repairable(
            "npm cache clean --force".to_string()
        )]
    );
    assert_eq!(
        rec.sleeps(),
        [Duration::ZERO],
        "the repair fixed the cause: the retry starts at once"
    );
    assert_eq!(rec.waits(), [Wait::Repaired]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_repair_waits_the_policy_delay() {
    let rec = Recorder::default();
    let started = Instant::now();
    Retry::new(
        RetryPolicy::new(2)
            .with_backoff(fixed(ms(250)))
            .with_jitter(Jitter::None),
    )
    .classify(|_: &String| {
        Decision::Repair(Repair::new("apt-get update", || async {
            Err("503 from the archive".to_string())
        }))
    })
    .subscribe(rec.subscriber())
    .run(|a| async move {
        if a.number == 1 {
            Err("Unable to locate package x".to_string())
        } else {
            Ok(())
        }
    })
    .await
    .expect("the second attempt succeeds");
    assert_eq!(
        rec.sleeps(),
        [ms(250)],
        "the cause is still there: back off"
    );
    assert_eq!(started.elapsed(), ms(250));
}

/// A download that moves forward on every attempt: each resumed attempt made progress.
#[tokio::test(start_paused = true)]
async fn attempts_that_made_progress_are_free_and_start_at_once() {
    let rec = Recorder::default();
    let started = Instant::now();
    let bytes = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let (probe_bytes, op_bytes) = (bytes.clone(), bytes.clone());
    let value = Retry::new(
        RetryPolicy::new(2)
            .with_backoff(fixed(secs(5)))
            .with_jitter(Jitter::None),
    )
    .subscribe(rec.subscriber())
    .progress(move || {
        let now = probe_bytes.load(Ordering::SeqCst);
        now > seen.swap(now, Ordering::SeqCst)
    })
    .run(move |a| {
        let bytes = op_bytes.clone();
        async move {
            // Cut at 25%, 50%, 75%, then complete.
            let got = bytes.fetch_add(25, Ordering::SeqCst) + 25;
            if got < 100 {
                Err(format!("cut after {got}%"))
            } else {
                Ok(a.number)
            }
        }
    })
    .await
    .expect("a policy of 2 attempts finishes a download cut three times");
    assert_eq!(value, 4);
    assert_eq!(rec.sleeps(), [Duration::ZERO; 3]);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no backoff after progress"
    );
    assert_eq!(
        rec.allowed_at_start(),
        [2, 3, 4, 5],
        "each attempt with progress adds one"
    );
    assert_eq!(rec.waits(), [Wait::Progressed; 3]);
}

#[tokio::test(start_paused = true)]
async fn after_progress_the_backoff_starts_over_and_stalls_still_count() {
    let rec = Recorder::default();
    let progress = Arc::new(Mutex::new(vec![false, true, false]));
    let p = progress.clone();
    let err = Retry::new(
        RetryPolicy::new(3)
            .with_backoff(Backoff::Exponential {
                base: secs(1),
                multiplier: 2.0,
                max: secs(60),
            })
            .with_jitter(Jitter::None),
    )
    .subscribe(rec.subscriber())
    .progress(move || {
        let mut p = p.lock().expect("progress");
        if p.is_empty() { false } else { p.remove(0) }
    })
    .run(|_| async { Err::<(), _>("reset".to_string()) })
    .await
    .expect_err("fails every time");
    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
    assert_eq!(
        err.attempts(),
        4,
        "3 of the policy's and 1 that made progress"
    );
    assert_eq!(
        rec.sleeps(),
        [secs(1), Duration::ZERO, secs(1)],
        "1 s, then at once after progress, then the schedule from its start"
    );
    assert_eq!(
        rec.waits(),
        [Wait::Backoff, Wait::Progressed, Wait::Backoff]
    );
}

#[tokio::test(start_paused = true)]
async fn progress_is_capped_by_the_limit() {
    let err = Retry::new(RetryPolicy::new(2).with_backoff(Backoff::None))
        .progress(|| true)
        .progress_limit(3)
        .run(|_| async { Err::<(), _>("cut".to_string()) })
        .await
        .expect_err("never completes");
    assert_eq!(err.attempts(), 5, "2 attempts + at most 3 free ones");
}

#[tokio::test(start_paused = true)]
async fn progress_does_not_rescue_a_permanent_failure() {
    let err = Retry::new(RetryPolicy::new(3).with_backoff(Backoff::None))
        .classify(|_: &String| Decision::Fail)
        .progress(|| true)
        .run(|_| async { Err::<(), _>("404".to_string()) })
        .await
        .expect_err("permanent");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_repair_is_reported_and_the_next_attempt_still_runs() {
    let rec = Recorder::default();
    let calls = AtomicU32::new(0);
    let result = Retry::new(RetryPolicy::new(3).with_backoff(Backoff::None))
        .classify(|_: &String| {
            Decision::Repair(Repair::new("dpkg --configure -a", || async {
                Err("dpkg: error processing package foo (--configure)".to_string())
            }))
        })
        .subscribe(rec.subscriber())
        .run(|attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt.number == 1 {
                    Err("dpkg was interrupted".to_string())
                } else {
                    Ok(())
                }
            }
        })
        .await;

    result.expect("the second attempt runs despite the failed repair, and succeeds");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let repaired: Vec<_> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Repaired {
                repair, outcome, ..
            } => Some((repair, outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(
        repaired,
        [(
            "dpkg --configure -a".to_string(),
            Err("dpkg: error processing package foo (--configure)".to_string())
        )]
    );
    assert_eq!(
        rec.kinds(),
        [
            "started 1",
            "failed 1",
            "repair dpkg --configure -a failed: dpkg: error processing package foo (--configure)",
            "sleeping 2",
            "started 2",
            "succeeded 2"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn repair_is_not_run_after_the_last_attempt() {
    let repairs = Arc::new(AtomicU32::new(0));
    let repairs_c = repairs.clone();
    let rec = Recorder::default();
    let err = Retry::new(RetryPolicy::new(2).with_backoff(Backoff::None))
        .classify(move |_: &String| {
            let repairs = repairs_c.clone();
            Decision::Repair(Repair::new("apt-get clean", move || async move {
                repairs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        })
        .subscribe(rec.subscriber())
        .run(|_| async { Err::<(), _>("Hash Sum mismatch".to_string()) })
        .await
        .expect_err("always fails");
    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
    assert_eq!(
        repairs.load(Ordering::SeqCst),
        1,
        "only between attempts 1 and 2"
    );
    assert_eq!(
        rec.kinds(),
        [
            "started 1",
            "failed 1",
            "repaired apt-get clean",
            "sleeping 2",
            "started 2",
            "failed 2",
            "gave up: retries exhausted"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Per-attempt timeout

#[tokio::test(start_paused = true)]
async fn timeout_cancels_a_hung_attempt_and_drops_its_future() {
    let rec = Recorder::default();
    let dropped: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let first_dropped_before_second = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let err = Retry::<String>::new(
        RetryPolicy::new(2)
            .with_backoff(fixed(secs(1)))
            .with_jitter(Jitter::None)
            .with_timeout(secs(5)),
    )
    .subscribe(rec.subscriber())
    .run(|attempt: Attempt| {
        let i = (attempt.number - 1) as usize;
        if i == 1 {
            first_dropped_before_second.store(dropped[0].load(Ordering::SeqCst), Ordering::SeqCst);
        }
        let guard = DropGuard(dropped[i].clone());
        async move {
            let _guard = guard;
            std::future::pending::<Result<(), String>>().await
        }
    })
    .await
    .expect_err("every attempt hangs");

    assert!(err.timed_out());
    assert!(err.is_transient());
    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
    assert_eq!(err.attempts(), 2);
    assert!(matches!(err.last(), Some(Failure::TimedOut(d)) if *d == secs(5)));
    assert!(err.last_error().is_none());
    assert_eq!(
        err.to_string(),
        "timed out after 5s (retries exhausted after 2 attempts)"
    );
    assert!(
        first_dropped_before_second.load(Ordering::SeqCst),
        "attempt 1's future was dropped before attempt 2 began"
    );
    assert!(dropped.iter().all(|d| d.load(Ordering::SeqCst)));
    assert_eq!(start.elapsed(), secs(5 + 1 + 5));
    assert_eq!(
        rec.failure_classes(),
        [
            FailureClass::TimedOut(secs(5)),
            FailureClass::TimedOut(secs(5))
        ]
    );
    for e in rec.events() {
        if let Event::AttemptFailed {
            duration, reason, ..
        } = e
        {
            assert_eq!(duration, secs(5));
            assert_eq!(reason, "timed out after 5s");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_transient_and_the_next_one_can_succeed() {
    let rec = Recorder::default();
    let dropped = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let result = Retry::<String>::new(
        RetryPolicy::new(3)
            .with_backoff(fixed(ms(500)))
            .with_jitter(Jitter::None)
            .with_timeout(secs(10)),
    )
    // Even a classifier that fails everything does not see timeouts: they are transient.
    .classify(|_| Decision::Fail)
    .subscribe(rec.subscriber())
    .run(|attempt| {
        let guard = DropGuard(dropped.clone());
        async move {
            let _guard = guard;
            if attempt.number == 1 {
                // A stalled transfer: far longer than the timeout.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(attempt.number)
        }
    })
    .await;
    assert_eq!(result.expect("second attempt succeeds"), 2);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(start.elapsed(), secs(10) + ms(500));
    assert_eq!(rec.failure_classes(), [FailureClass::TimedOut(secs(10))]);
    assert_eq!(
        rec.kinds(),
        [
            "started 1",
            "failed 1",
            "sleeping 2",
            "started 2",
            "succeeded 2"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Deadline

#[tokio::test(start_paused = true)]
async fn deadline_shortens_the_attempt_timeout_and_is_never_crossed() {
    let rec = Recorder::default();
    let timeouts = Arc::new(Mutex::new(Vec::new()));
    let timeouts_op = timeouts.clone();
    let deadline = secs(10);
    let start = Instant::now();
    let err = Retry::<String>::new(
        RetryPolicy::new(10)
            .with_backoff(fixed(secs(3)))
            .with_jitter(Jitter::None)
            .with_timeout(secs(4))
            .with_deadline(deadline),
    )
    .subscribe(rec.subscriber())
    .run(move |attempt| {
        timeouts_op.lock().expect("timeouts").push(attempt.timeout);
        std::future::pending::<Result<(), String>>()
    })
    .await
    .expect_err("every attempt hangs");

    // Attempt 1: 0..4 s (timed out), sleep 3 s, attempt 2: 7..10 s, cut at the deadline.
    assert_eq!(
        *timeouts.lock().expect("timeouts"),
        [Some(secs(4)), Some(secs(3))]
    );
    assert_eq!(start.elapsed(), deadline);
    assert_eq!(err.reason(), &GiveUpReason::Deadline);
    assert_eq!(err.attempts(), 2);
    assert!(err.timed_out());
    assert!(err.is_transient());
    assert_eq!(
        rec.failure_classes(),
        [
            FailureClass::TimedOut(secs(4)),
            FailureClass::TimedOut(secs(3))
        ]
    );
    assert_sleeps_end_before(&rec, start + deadline);
    assert!(matches!(
        rec.gave_up(),
        Event::GaveUp { reason: GiveUpReason::Deadline, elapsed, .. } if elapsed == deadline
    ));
}

fn assert_sleeps_end_before(rec: &Recorder, deadline_at: Instant) {
    for (at, e) in rec.timed() {
        if let Event::Sleeping { delay, .. } = e {
            assert!(
                at + delay < deadline_at,
                "a sleep of {delay:?} began at {:?} before a deadline at {:?}",
                at,
                deadline_at
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn no_sleep_begins_that_would_end_past_the_deadline() {
    let rec = Recorder::default();
    let timeouts = Arc::new(Mutex::new(Vec::new()));
    let timeouts_op = timeouts.clone();
    let start = Instant::now();
    let err = Retry::new(
        RetryPolicy::new(100)
            .with_backoff(fixed(secs(4)))
            .with_jitter(Jitter::None)
            .with_deadline(secs(10)),
    )
    .subscribe(rec.subscriber())
    .run(move |attempt| {
        timeouts_op.lock().expect("timeouts").push(attempt.timeout);
        async { Err::<(), _>("503".to_string()) }
    })
    .await
    .expect_err("always fails");

    // Attempts at 0, 4 and 8 s; a third sleep would end at 12 s > 10 s: give up at 8 s.
    assert_eq!(err.reason(), &GiveUpReason::Deadline);
    assert_eq!(err.attempts(), 3);
    assert_eq!(start.elapsed(), secs(8));
    assert_eq!(rec.sleeps(), [secs(4), secs(4)]);
    assert_sleeps_end_before(&rec, start + secs(10));
    // Without a per-attempt timeout, each attempt gets what is left of the deadline.
    assert_eq!(
        *timeouts.lock().expect("timeouts"),
        [Some(secs(10)), Some(secs(6)), Some(secs(2))]
    );
    assert_eq!(err.to_string(), "503 (deadline reached after 3 attempts)");
}

#[tokio::test(start_paused = true)]
async fn deadline_cuts_a_slow_repair() {
    let rec = Recorder::default();
    let start = Instant::now();
    let err = Retry::new(
        RetryPolicy::new(5)
            .with_backoff(Backoff::None)
            .with_deadline(secs(60)),
    )
    .classify(|_: &String| {
        Decision::Repair(Repair::new("apt-get -f install", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }))
    })
    .subscribe(rec.subscriber())
    .run(|_| async { Err::<(), _>("broken packages".to_string()) })
    .await
    .expect_err("the repair hangs past the deadline");
    assert_eq!(err.reason(), &GiveUpReason::Deadline);
    assert_eq!(err.attempts(), 1);
    assert_eq!(start.elapsed(), secs(60));
    assert!(
        rec.kinds()
            .contains(&"repair apt-get -f install failed: stopped at the deadline".to_string())
    );
}

// ---------------------------------------------------------------------------------------
// Circuit breaker

fn always_503() -> impl FnMut(Attempt) -> std::future::Ready<Result<(), String>> {
    |_| std::future::ready(Err("503 Service Unavailable".to_string()))
}

#[tokio::test(start_paused = true)]
async fn exhausted_run_opens_the_circuit_and_the_next_run_fails_fast() {
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(MemoryStore::new())).with_threshold(1));
    let key = "deb.example.org";
    let policy = RetryPolicy::new(2).with_backoff(Backoff::None);

    let first = Retry::new(policy.clone())
        .circuit(breaker.clone(), key)
        .run(always_503())
        .await
        .expect_err("exhausted");
    assert_eq!(first.reason(), &GiveUpReason::Exhausted);
    assert!(matches!(
        breaker.state(key).expect("state"),
        CircuitState::Open { failures: 1, .. }
    ));

    let rec = Recorder::default();
    let calls = AtomicU32::new(0);
    let second = Retry::<String>::new(policy)
        .circuit(breaker.clone(), key)
        .subscribe(rec.subscriber())
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await
        .expect_err("the circuit is open");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(second.attempts(), 0);
    assert_eq!(second.reason(), &GiveUpReason::CircuitOpen(key.to_string()));
    assert!(second.is_transient());
    assert!(second.last().is_none());
    let message = second.to_string();
    assert!(message.contains("deb.example.org"), "{message}");
    assert!(message.contains("503 Service Unavailable"), "{message}");
    assert!(message.contains("next trial in 5m"), "{message}");
    assert_eq!(rec.kinds(), ["gave up: circuit open for deb.example.org"]);
    assert!(matches!(rec.gave_up(), Event::GaveUp { attempts: 0, .. }));
    // Another key is not affected.
    Retry::<String>::new(RetryPolicy::once())
        .circuit(breaker, "pypi.example.org")
        .run(|_| async { Ok(()) })
        .await
        .expect("a different host goes through");
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_and_success_reset_the_circuit() {
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(MemoryStore::new())).with_threshold(2));
    let key = "registry.example.org";
    let policy = RetryPolicy::new(2).with_backoff(Backoff::None);
    let exhausted = || {
        Retry::new(policy.clone())
            .circuit(breaker.clone(), key)
            .run(always_503())
    };
    let closed = |failures| CircuitState::Closed { failures };

    exhausted().await.expect_err("exhausted");
    assert_eq!(breaker.state(key).expect("state"), closed(1));

    // A 404 is an answer: the host is up.
    let err = Retry::new(policy.clone())
        .classify(|_: &String| Decision::Fail)
        .circuit(breaker.clone(), key)
        .run(|_| async { Err::<(), _>("404 Not Found".to_string()) })
        .await
        .expect_err("permanent");
    assert_eq!(err.reason(), &GiveUpReason::Permanent);
    assert_eq!(breaker.state(key).expect("state"), closed(0));

    // So one more exhausted run does not reach the threshold of 2.
    exhausted().await.expect_err("exhausted");
    assert_eq!(breaker.state(key).expect("state"), closed(1));
    Retry::<String>::new(policy.clone())
        .circuit(breaker.clone(), key)
        .run(|_| async { Ok(()) })
        .await
        .expect("success");
    assert_eq!(breaker.state(key).expect("state"), closed(0));
}

#[tokio::test(start_paused = true)]
async fn after_the_cooldown_one_trial_run_closes_the_circuit() {
    let now_ms = Arc::new(AtomicU64::new(1_700_000_000_000));
    let clock = now_ms.clone();
    let breaker = Arc::new(
        CircuitBreaker::new(Arc::new(MemoryStore::new()))
            .with_threshold(1)
            .with_cooldown(secs(60))
            .with_clock(move || UNIX_EPOCH + Duration::from_millis(clock.load(Ordering::SeqCst))),
    );
    let key = "files.example.org";
    Retry::new(RetryPolicy::once())
        .circuit(breaker.clone(), key)
        .run(always_503())
        .await
        .expect_err("exhausted");
    let open = breaker.acquire(key).expect_err("open");
    assert_eq!(
        open.reopen_at,
        UNIX_EPOCH + Duration::from_millis(1_700_000_060_000)
    );
    assert!(open.reopen_at > open.now);

    now_ms.fetch_add(60_000, Ordering::SeqCst);
    let result = Retry::<String>::new(RetryPolicy::once())
        .circuit(breaker.clone(), key)
        .run(|_| async { Ok("trial") })
        .await;
    assert_eq!(result.expect("the trial goes through"), "trial");
    assert_eq!(
        breaker.state(key).expect("state"),
        CircuitState::Closed { failures: 0 }
    );
}

// ---------------------------------------------------------------------------------------
// Blocking entry point, seeds, metrics

#[test]
fn run_blocking_works_from_a_plain_test() {
    let rec = Recorder::default();
    let mut calls = 0;
    let result = Retry::new(
        RetryPolicy::new(3)
            .with_backoff(fixed(Duration::from_millis(1)))
            .with_jitter(Jitter::None)
            .with_timeout(secs(30)),
    )
    .subscribe(rec.subscriber())
    .run_blocking(|attempt| {
        calls += 1;
        std::future::ready(if attempt.number < 3 {
            Err("Could not get lock /var/lib/dpkg/lock-frontend".to_string())
        } else {
            Ok(attempt.number)
        })
    });
    assert_eq!(result.expect("third attempt succeeds"), 3);
    assert_eq!(calls, 3);
    assert_eq!(rec.sleeps(), [ms(1), ms(1)]);
    assert_eq!(rec.kinds().last().map(String::as_str), Some("succeeded 3"));

    let err = Retry::new(RetryPolicy::once())
        .run_blocking(|_| std::future::ready(Err::<(), _>("nope".to_string())))
        .expect_err("fails");
    assert_eq!(err.to_string(), "nope (retries exhausted after 1 attempt)");
}

async fn jittered_sleeps(jitter: Jitter, seed: u64) -> Vec<Duration> {
    let rec = Recorder::default();
    let _ = Retry::new(
        RetryPolicy::new(8)
            .with_backoff(Backoff::Exponential {
                base: ms(100),
                multiplier: 2.0,
                max: secs(5),
            })
            .with_jitter(jitter),
    )
    .seed(seed)
    .subscribe(rec.subscriber())
    .run(|_| async { Err::<(), _>("503".to_string()) })
    .await;
    rec.sleeps()
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_is_repeatable() {
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
        let a = jittered_sleeps(jitter, 42).await;
        let b = jittered_sleeps(jitter, 42).await;
        assert_eq!(a.len(), 7);
        assert_eq!(a, b, "{jitter:?}: same seed, same delays");
        let c = jittered_sleeps(jitter, 43).await;
        assert_ne!(a, c, "{jitter:?}: another seed, other delays");
        let unjittered = jittered_sleeps(Jitter::None, 42).await;
        assert_ne!(a, unjittered, "{jitter:?} changes the delays");
        for (n, d) in a.iter().enumerate() {
            assert!(*d <= secs(5), "{jitter:?}: retry {} waited {d:?}", n + 1);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_count_attempts_retries_and_repairs() {
    let metrics = Arc::new(Metrics::new("em", "adapter"));
    let result = Retry::new(RetryPolicy::new(4).with_backoff(Backoff::None))
        .operation(Operation::new("npm", "install left-pad"))
        .classify(|e: &String| match e.as_str() {
            "EINTEGRITY" => Decision::Repair(Repair::new("npm cache verify", || async { Ok(()) })),
            "429" => Decision::RetryAfter(ms(10)),
            _ => Decision::Retry,
        })
        .subscribe(metrics.clone())
        .run(|attempt| async move {
            match attempt.number {
                1 => Err("EINTEGRITY".to_string()),
                2 => Err("429".to_string()),
                _ => Ok(()),
            }
        })
        .await;
    result.expect("succeeds on attempt 3");
    let text = metrics.render();
    for line in [
        r#"em_attempts_total{adapter="npm",operation="npm-install",outcome="repairable"} 1"#,
        r#"em_attempts_total{adapter="npm",operation="npm-install",outcome="retry_after"} 1"#,
        r#"em_attempts_total{adapter="npm",operation="npm-install",outcome="success"} 1"#,
        r#"em_retries_total{adapter="npm",operation="npm-install",class="repairable"} 1"#,
        r#"em_retries_total{adapter="npm",operation="npm-install",class="retry_after"} 1"#,
        r#"em_repairs_total{adapter="npm",repair="npm cache verify",outcome="success"} 1"#,
        r#"em_operation_duration_seconds_count{adapter="npm",operation="npm-install"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_given_up_early_is_transient_and_counts_against_its_circuit() {
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(MemoryStore::new())).with_threshold(1));
    let key = "mirror.example.org";
    let rec = Recorder::default();
    let metrics = Arc::new(Metrics::new("t", "component"));
    let calls = AtomicU32::new(0);
    let err = Retry::new(RetryPolicy::new(5).with_backoff(Backoff::None))
        .operation(Operation::new("apt", "update"))
        .classify(|_: &String| Decision::GiveUp("the lists are still broken".into()))
        .circuit(breaker.clone(), key)
        .subscribe(rec.subscriber())
        .subscribe(metrics.clone())
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("Hash Sum mismatch".to_string()) }
        })
        .await
        .expect_err("given up");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no attempt after a give-up"
    );
    assert_eq!(
        err.reason(),
        &GiveUpReason::SourceExhausted("the lists are still broken".into())
    );
    assert!(
        err.is_transient(),
        "not the request's fault: a later run may succeed"
    );
    assert!(matches!(
        &rec.events()[1],
        Event::AttemptFailed { class: FailureClass::SourceExhausted(why), .. } if why == "the lists are still broken"
    ));
    assert_eq!(
        err.to_string(),
        "Hash Sum mismatch (source exhausted: the lists are still broken after 1 attempt)"
    );
    assert_eq!(
        rec.kinds(),
        [
            "started 1",
            "failed 1",
            "gave up: source exhausted: the lists are still broken"
        ]
    );
    // Unlike a permanent failure (an answer: the host is up), it is a failure of the source.
    assert!(matches!(
        breaker.state(key).expect("state"),
        CircuitState::Open { failures: 1, .. }
    ));
    let text = metrics.render();
    assert!(
        text.contains(
            r#"t_operations_total{component="apt",operation="apt-update",outcome="source_exhausted"} 1"#
        ),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Retry budget

#[tokio::test(start_paused = true)]
async fn a_dry_retry_budget_gives_the_source_up_with_its_reason() {
    let budget = Arc::new(
        em_retry::RetryBudget::new(Arc::new(em_retry::MemoryBudgetStore::new()))
            .with_ratio(0.5)
            .with_max_tokens(1.0),
    );
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(MemoryStore::new())).with_threshold(10));
    let policy = RetryPolicy::new(4).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(5),
    });
    let calls = Arc::new(AtomicU32::new(0));
    let run = |calls: Arc<AtomicU32>| {
        Retry::new(policy.clone())
            .budget(budget.clone(), "127.0.0.1:8080")
            .circuit(breaker.clone(), "127.0.0.1:8080")
            .run(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>("503 Service Unavailable".to_string()) }
            })
    };
    // Full bucket (1 token): one retry, then dry (the deposit of 0.5 is not a token).
    let err = run(calls.clone()).await.expect_err("outage");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        err.reason(),
        &GiveUpReason::SourceExhausted("retry budget exhausted for 127.0.0.1:8080".into())
    );
    assert_eq!(err.attempts(), 2);
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "503 Service Unavailable (source exhausted: retry budget exhausted for 127.0.0.1:8080 after 2 attempts)"
    );
    // The second operation's deposit leaves half a token: no retry at all.
    let err = run(calls.clone()).await.expect_err("outage");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(err.attempts(), 1);
    // The third one's makes a whole token: one retry again.
    let err = run(calls.clone()).await.expect_err("outage");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(err.attempts(), 2);
    assert_eq!(
        breaker.state("127.0.0.1:8080").expect("state"),
        CircuitState::Closed { failures: 3 },
        "an exhausted budget counts as a failure for the circuit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_after_retries_gives_the_token_back() {
    let budget = Arc::new(
        em_retry::RetryBudget::new(Arc::new(em_retry::MemoryBudgetStore::new()))
            .with_ratio(0.0)
            .with_max_tokens(1.0),
    );
    for _ in 0..5 {
        let result = Retry::new(RetryPolicy::new(3).with_backoff(Backoff::None))
            .budget(budget.clone(), "h")
            .run(|a| async move {
                if a.number == 1 {
                    Err("503".to_string())
                } else {
                    Ok(a.number)
                }
            })
            .await;
        assert_eq!(result.expect("second attempt succeeds"), 2);
    }
    assert_eq!(budget.tokens("h").expect("tokens"), 1.0);
}
