//! Invariants of the retry math and of the retry loop, for arbitrary inputs: delays never
//! panic and stay under their caps, jitter stays in its bounds, the builder accepts
//! anything, the deadline is never crossed and a Retry-After is always honoured.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_retry::random::Sequence;
use em_retry::{
    Backoff, Decision, Event, GiveUpReason, Jitter, PolicyError, Repair, Retry, RetryPolicy,
    fmt_duration,
};
use proptest::prelude::*;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// Strategies

/// Any duration, with the edges (zero, one nanosecond, `Duration::MAX`) well represented.
fn any_duration() -> BoxedStrategy<Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::MAX),
        Just(Duration::new(u64::MAX, 0)),
        (0u64..100_000).prop_map(Duration::from_millis),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
    .boxed()
}

/// Any multiplier, sensible or not: NaN, infinities, negative, zero, below 1, huge.
fn any_multiplier() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(0.5),
        Just(1.0),
        Just(2.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        1.0f64..16.0,
        proptest::num::f64::ANY,
    ]
}

fn backoff_from(durations: BoxedStrategy<Duration>) -> impl Strategy<Value = Backoff> {
    prop_oneof![
        Just(Backoff::None),
        durations.clone().prop_map(|delay| Backoff::Fixed { delay }),
        (durations.clone(), durations.clone())
            .prop_map(|(base, max)| Backoff::Linear { base, max }),
        (durations.clone(), any_multiplier(), durations).prop_map(|(base, multiplier, max)| {
            Backoff::Exponential {
                base,
                multiplier,
                max,
            }
        }),
    ]
}

fn any_backoff() -> BoxedStrategy<Backoff> {
    backoff_from(any_duration()).boxed()
}

/// Backoffs of at most a few hundred milliseconds, for runs of the retry loop.
fn small_backoff() -> BoxedStrategy<Backoff> {
    backoff_from((0u64..300).prop_map(Duration::from_millis).boxed()).boxed()
}

fn any_jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ]
}

fn any_retry() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1u32),
        Just(u32::MAX),
        Just(10_000u32),
        0u32..=1_000_000,
    ]
}

/// What a `Random` might return, including values a broken source could produce.
fn any_unit() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..1.0,
        1 => Just(0.0),
        1 => Just(1.0 - f64::EPSILON),
        1 => Just(1.0),
        1 => Just(f64::NAN),
        1 => Just(-0.5),
        1 => Just(7.0),
        1 => Just(f64::INFINITY),
    ]
}

/// `cases` cases, unless `PROPTEST_CASES` asks for another number (e.g. for a long soak).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Regressions are reported in the failure message; do not write files into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Delay math

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn backoff_delay_never_panics_and_stays_under_the_cap(backoff in any_backoff(), retry in any_retry()) {
        let d = backoff.delay(retry);
        match backoff {
            Backoff::None => prop_assert_eq!(d, Duration::ZERO),
            Backoff::Fixed { delay } => prop_assert_eq!(d, delay),
            Backoff::Linear { max, .. } | Backoff::Exponential { max, .. } => {
                prop_assert!(d <= max, "{:?} > cap {:?}", d, max)
            }
        }
        prop_assert!(d <= backoff.max());
        prop_assert!(backoff.base() <= backoff.max() || matches!(backoff, Backoff::None));
    }

    #[test]
    fn delays_never_shrink_as_retries_grow(backoff in any_backoff(), retry in 0u32..1_000_000) {
        prop_assert!(backoff.delay(retry) <= backoff.delay(retry + 1));
        prop_assert!(backoff.delay(retry) <= backoff.delay(u32::MAX));
    }

    #[test]
    fn linear_is_base_times_n_up_to_the_cap(base_ms in 0u64..10_000, max_ms in 0u64..100_000, retry in 1u32..1_000) {
        let b = Backoff::Linear { base: Duration::from_millis(base_ms), max: Duration::from_millis(max_ms) };
        prop_assert_eq!(b.delay(retry), Duration::from_millis((base_ms * u64::from(retry)).min(max_ms)));
    }

    #[test]
    fn exponential_doubling_matches_the_formula(base_ms in 1u64..1_000, max_ms in 1u64..1_000_000, retry in 1u32..40) {
        let b = Backoff::Exponential {
            base: Duration::from_millis(base_ms),
            multiplier: 2.0,
            max: Duration::from_millis(max_ms),
        };
        let exact = u128::from(base_ms) << (retry - 1);
        let expected = Duration::from_millis(u64::try_from(exact.min(u128::from(max_ms))).expect("below max_ms"));
        prop_assert_eq!(b.delay(retry), expected);
    }

    #[test]
    fn jitter_stays_in_its_bounds(
        backoff in any_backoff(),
        jitter in any_jitter(),
        retries in proptest::collection::vec(any_retry(), 1..12),
        units in proptest::collection::vec(any_unit(), 1..12),
        seed in any::<u64>(),
    ) {
        let policy = RetryPolicy::new(5).with_backoff(backoff.clone()).with_jitter(jitter);
        let mut sequence = Sequence::new(units);
        let mut seeded = fastrand::Rng::with_seed(seed);
        let mut from_sequence = policy.schedule();
        let mut from_seed = policy.schedule();
        for &n in &retries {
            let d = backoff.delay(n);
            for got in [from_sequence.next_delay(n, &mut sequence), from_seed.next_delay(n, &mut seeded)] {
                match jitter {
                    Jitter::None => prop_assert_eq!(got, d),
                    Jitter::Full => prop_assert!(got <= d, "full: {:?} > {:?}", got, d),
                    Jitter::Equal => prop_assert!(
                        d / 2 <= got && got <= d,
                        "equal: {:?} outside [{:?}, {:?}]", got, d / 2, d
                    ),
                    Jitter::Decorrelated => {
                        let (base, max) = (backoff.base(), backoff.max());
                        if base <= max {
                            prop_assert!(
                                base <= got && got <= max,
                                "decorrelated: {:?} outside [{:?}, {:?}]", got, base, max
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_builder_and_validate_accept_anything(
        attempts in any::<u32>(),
        backoff in any_backoff(),
        jitter in any_jitter(),
        timeout in any_duration(),
        deadline in any_duration(),
    ) {
        let policy = RetryPolicy::new(attempts)
            .with_backoff(backoff.clone())
            .with_jitter(jitter)
            .with_timeout(timeout)
            .with_deadline(deadline);
        prop_assert_eq!(policy.max_attempts(), attempts.max(1));
        // Debug, not ==: a NaN multiplier is not equal to itself.
        prop_assert_eq!(format!("{:?}", policy.backoff()), format!("{backoff:?}"));
        prop_assert_eq!(policy.jitter(), jitter);
        prop_assert_eq!(policy.timeout(), Some(timeout));
        prop_assert_eq!(policy.deadline(), Some(deadline));
        match policy.validate() {
            Ok(()) => {
                prop_assert!(attempts > 0 && !timeout.is_zero() && !deadline.is_zero());
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                if attempts == 0 {
                    prop_assert_eq!(e, PolicyError::ZeroAttempts);
                }
            }
        }
        let _ = policy.schedule().next_delay(1, &mut fastrand::Rng::with_seed(1));
    }

    #[test]
    fn fmt_duration_never_panics(d in any_duration()) {
        prop_assert!(!fmt_duration(d).is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// The retry loop on a paused clock

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

type Timed = Arc<Mutex<Vec<(Instant, Event)>>>;

fn recorder() -> (Timed, Arc<dyn em_retry::Subscriber>) {
    let events: Timed = Arc::default();
    let sink = events.clone();
    let subscriber = Arc::new(move |e: &Event| {
        sink.lock()
            .expect("recorder not poisoned")
            .push((Instant::now(), e.clone()))
    });
    (events, subscriber)
}

/// What the classifier answers for attempt failures, in turn.
#[derive(Clone, Debug)]
enum Answer {
    Retry,
    RetryAfter(Duration),
    /// A repair that takes this long.
    Repair(Duration),
}

fn any_answer() -> impl Strategy<Value = Answer> {
    let ms = |r: std::ops::Range<u64>| r.prop_map(Duration::from_millis);
    prop_oneof![
        Just(Answer::Retry),
        ms(0..500).prop_map(Answer::RetryAfter),
        ms(0..300).prop_map(Answer::Repair),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_deadline_is_never_crossed(
        attempts in 1u32..30,
        backoff in small_backoff(),
        jitter in any_jitter(),
        timeout_ms in proptest::option::of(1u64..400),
        deadline_ms in 1u64..3_000,
        work_ms in proptest::collection::vec(0u64..500, 1..8),
        answers in proptest::collection::vec(any_answer(), 1..6),
        seed in any::<u64>(),
    ) {
        let deadline = Duration::from_millis(deadline_ms);
        let mut policy = RetryPolicy::new(attempts)
            .with_backoff(backoff)
            .with_jitter(jitter)
            .with_deadline(deadline);
        if let Some(t) = timeout_ms {
            policy = policy.with_timeout(Duration::from_millis(t));
        }
        let (events, subscriber) = recorder();
        let mut turn = 0;
        let (result, start, end) = paused_runtime().block_on(async {
            let start = Instant::now();
            let result = Retry::new(policy)
                .seed(seed)
                .subscribe(subscriber)
                .classify(move |_: &String| {
                    turn += 1;
                    match answers[turn % answers.len()] {
                        Answer::Retry => Decision::Retry,
                        Answer::RetryAfter(d) => Decision::RetryAfter(d),
                        Answer::Repair(d) => Decision::Repair(Repair::new("slow repair", move || async move {
                            tokio::time::sleep(d).await;
                            Ok(())
                        })),
                    }
                })
                .run(|attempt| {
                    let work = Duration::from_millis(work_ms[attempt.number as usize % work_ms.len()]);
                    async move {
                        tokio::time::sleep(work).await;
                        Err::<(), _>(format!("attempt {} failed", attempt.number))
                    }
                })
                .await;
            (result, start, Instant::now())
        });
        let err = result.expect_err("every attempt fails");
        prop_assert!(end - start <= deadline, "ran {:?} past a deadline of {:?}", end - start, deadline);
        prop_assert!(err.attempts() >= 1 && err.attempts() <= attempts);
        prop_assert!(err.is_transient());
        match err.reason() {
            GiveUpReason::Exhausted => prop_assert_eq!(err.attempts(), attempts),
            GiveUpReason::Deadline => {}
            other => prop_assert!(false, "unexpected reason {:?}", other),
        }
        let events = events.lock().expect("events").clone();
        for (at, e) in &events {
            match e {
                Event::Sleeping { delay, .. } => prop_assert!(
                    *at + *delay < start + deadline,
                    "a sleep of {:?} began at {:?}, past a deadline of {:?}", delay, *at - start, deadline
                ),
                Event::AttemptStarted { .. } => prop_assert!(*at < start + deadline),
                _ => {}
            }
        }
    }

    #[test]
    fn retry_after_is_honoured(
        attempts in 2u32..12,
        backoff in small_backoff(),
        jitter in any_jitter(),
        retry_after_ms in 0u64..2_000,
        seed in any::<u64>(),
    ) {
        let retry_after = Duration::from_millis(retry_after_ms);
        let policy = RetryPolicy::new(attempts).with_backoff(backoff.clone()).with_jitter(jitter);
        let (events, subscriber) = recorder();
        let (result, elapsed) = paused_runtime().block_on(async {
            let start = Instant::now();
            let result = Retry::new(policy)
                .seed(seed)
                .subscribe(subscriber)
                .classify(move |_: &String| Decision::RetryAfter(retry_after))
                .run(|_| async { Err::<(), _>("429 Too Many Requests".to_string()) })
                .await;
            (result, start.elapsed())
        });
        let err = result.expect_err("always fails");
        prop_assert_eq!(err.reason(), &GiveUpReason::Exhausted);
        let sleeps: Vec<Duration> = events
            .lock()
            .expect("events")
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Sleeping { delay, .. } => Some(*delay),
                _ => None,
            })
            .collect();
        prop_assert_eq!(sleeps.len() as u32, attempts - 1);
        for (i, d) in sleeps.iter().enumerate() {
            prop_assert!(*d >= retry_after, "slept {:?} < Retry-After {:?}", d, retry_after);
            if jitter == Jitter::None {
                let n = u32::try_from(i).expect("few") + 1;
                prop_assert_eq!(*d, backoff.delay(n).max(retry_after));
            }
        }
        // tokio's timer wheel rounds each sleep up to the next millisecond.
        let slept: Duration = sleeps.iter().sum();
        let rounding = Duration::from_millis(u64::from(attempts));
        prop_assert!(
            slept <= elapsed && elapsed <= slept + rounding,
            "slept {:?} in all, but {:?} passed", slept, elapsed
        );
    }
}
