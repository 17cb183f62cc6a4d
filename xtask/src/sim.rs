//! `cargo xtask sim`: Marc Brooker's backoff-and-jitter simulation ("Exponential Backoff
//! And Jitter", AWS Architecture Blog, 2015) run with em-retry's own delays and jitter, and
//! the retry budget's amplification under a full outage.
//!
//! The contention model follows the blog's: `clients` clients each make one write to a
//! single record with optimistic concurrency control, all starting at once. A write
//! carries the version its client last saw; it reaches the server after a network delay
//! (|normal(10 ms, 4 ms)|), which accepts it when the version is still current (and bumps
//! it) and rejects it otherwise. The answer takes another network delay back; a rejected
//! client then sleeps for the delay em-retry's [`DelaySchedule`] gives it (the same code
//! the product's retries use) and writes again with the version it just learned. Time is
//! virtual (an event queue); nothing sleeps. Every random draw comes from seeded
//! generators, so a run is repeatable.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use em_retry::{
    Backoff, DelaySchedule, Jitter, MemoryBudgetStore, Retry, RetryBudget, RetryPolicy,
};

/// A backoff strategy of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Retry at once.
    NoBackoff,
    /// Capped exponential, no jitter.
    Exponential,
    /// Capped exponential, full jitter.
    FullJitter,
    /// Capped exponential, equal jitter.
    EqualJitter,
    /// Decorrelated jitter.
    Decorrelated,
}

impl Strategy {
    /// Every strategy, in the blog's order.
    pub const ALL: [Strategy; 5] = [
        Strategy::NoBackoff,
        Strategy::Exponential,
        Strategy::FullJitter,
        Strategy::EqualJitter,
        Strategy::Decorrelated,
    ];

    fn name(self) -> &'static str {
        match self {
            Strategy::NoBackoff => "no backoff",
            Strategy::Exponential => "exponential, no jitter",
            Strategy::FullJitter => "full jitter",
            Strategy::EqualJitter => "equal jitter",
            Strategy::Decorrelated => "decorrelated jitter",
        }
    }

    /// The blog's calls for 100 clients, read off its figures, where it gives one.
    fn blog_calls(self) -> Option<u32> {
        match self {
            Strategy::Exponential => Some(1850),
            Strategy::FullJitter => Some(800),
            _ => None,
        }
    }

    fn schedule(self, base: Duration, cap: Duration) -> DelaySchedule {
        let exponential = Backoff::Exponential {
            base,
            multiplier: 2.0,
            max: cap,
        };
        let (backoff, jitter) = match self {
            Strategy::NoBackoff => (Backoff::None, Jitter::None),
            Strategy::Exponential => (exponential, Jitter::None),
            Strategy::FullJitter => (exponential, Jitter::Full),
            Strategy::EqualJitter => (exponential, Jitter::Equal),
            Strategy::Decorrelated => (exponential, Jitter::Decorrelated),
        };
        RetryPolicy::new(u32::MAX)
            .with_backoff(backoff)
            .with_jitter(jitter)
            .schedule()
    }
}

/// The contention simulation's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Contention {
    /// Clients, each with one write to make.
    pub clients: usize,
    /// The first backoff delay.
    pub base: Duration,
    /// The backoff's cap.
    pub cap: Duration,
    /// The seed of every random draw.
    pub seed: u64,
}

/// One strategy's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContentionResult {
    /// Writes sent, the first ones included.
    pub calls: u64,
    /// When the last client was done, in ms of virtual time.
    pub completion_ms: f64,
}

/// |normal(10 ms, 4 ms)| by Box-Muller.
fn net_delay(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (10.0 + 4.0 * z).abs()
}

/// An event at a time (ms, as integer nanoseconds for a total order) for a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// The client's write reaches the server.
    Arrive { version: u64 },
    /// The server's answer reaches the client.
    Answer { accepted: bool, version: u64 },
}

/// Runs `strategy` under `params`.
pub fn contention(strategy: Strategy, params: &Contention) -> ContentionResult {
    let mut net = fastrand::Rng::with_seed(params.seed);
    let mut jitter = fastrand::Rng::with_seed(params.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut schedules: Vec<DelaySchedule> = (0..params.clients)
        .map(|_| strategy.schedule(params.base, params.cap))
        .collect();
    let mut retries = vec![0u32; params.clients];
    let mut queue: BinaryHeap<Reverse<(u64, usize, What)>> = BinaryHeap::new();
    let ns = |ms: f64| (ms * 1e6).round() as u64;
    for client in 0..params.clients {
        queue.push(Reverse((
            ns(net_delay(&mut net)),
            client,
            What::Arrive { version: 0 },
        )));
    }
    let mut current = 0u64;
    let mut calls = params.clients as u64;
    let mut done = 0;
    let mut completion = 0u64;
    while let Some(Reverse((at, client, what))) = queue.pop() {
        match what {
            What::Arrive { version } => {
                let accepted = version == current;
                if accepted {
                    current += 1;
                }
                let back = at + ns(net_delay(&mut net));
                queue.push(Reverse((
                    back,
                    client,
                    What::Answer {
                        accepted,
                        version: current,
                    },
                )));
            }
            What::Answer { accepted: true, .. } => {
                done += 1;
                completion = completion.max(at);
            }
            What::Answer {
                accepted: false,
                version,
            } => {
                retries[client] += 1;
                let sleep = schedules[client].next_delay(retries[client], &mut jitter);
                let send = at + u64::try_from(sleep.as_nanos()).unwrap_or(u64::MAX);
                calls += 1;
                queue.push(Reverse((
                    send + ns(net_delay(&mut net)),
                    client,
                    What::Arrive { version },
                )));
            }
        }
    }
    debug_assert_eq!(done, params.clients);
    ContentionResult {
        calls,
        completion_ms: completion as f64 / 1e6,
    }
}

/// The outage simulation's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutageResult {
    /// Operations (each makes one first attempt).
    pub first_attempts: u64,
    /// Attempts after the first.
    pub retries: u64,
}

impl OutageResult {
    /// Retries per first attempt.
    pub fn amplification(&self) -> f64 {
        self.retries as f64 / self.first_attempts as f64
    }
}

/// `clients` x `operations` operations of `attempts` attempts each, through em-retry's
/// [`Retry`], against a source where every attempt fails; with `budget`, all share one
/// [`RetryBudget`] (ratio 0.2, 10 tokens) for the source, as the processes of a host do.
pub fn outage(clients: u32, operations: u32, attempts: u32, budget: bool) -> OutageResult {
    let shared = Arc::new(RetryBudget::new(Arc::new(MemoryBudgetStore::new())));
    let mut result = OutageResult {
        first_attempts: 0,
        retries: 0,
    };
    // Round-robin: operation k of every client, then k + 1.
    for _ in 0..operations {
        for _ in 0..clients {
            let mut made = 0u64;
            let mut retry = Retry::new(RetryPolicy::new(attempts).with_backoff(Backoff::None));
            if budget {
                retry = retry.budget(shared.clone(), "127.0.0.1:8080");
            }
            let outcome = retry.run_blocking(|_| {
                made += 1;
                std::future::ready(Err::<(), _>("503 Service Unavailable".to_string()))
            });
            assert!(outcome.is_err(), "the source always fails");
            result.first_attempts += 1;
            result.retries += made - 1;
        }
    }
    result
}

/// Parses the options (`--clients N`, `--seed N`) and prints both tables.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut params = Contention {
        clients: 100,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(2000),
        seed: 2015,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{name} takes a whole number"))
        };
        match arg.as_str() {
            "--clients" => {
                params.clients = usize::try_from(value("--clients")?)
                    .map_err(|_| "--clients is too large".to_string())?;
            }
            "--seed" => params.seed = value("--seed")?,
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    if params.clients == 0 {
        return Err("--clients takes a whole number of at least 1".into());
    }
    print!("{}", report(&params));
    Ok(())
}

/// Both tables, as `run` prints them.
pub fn report(params: &Contention) -> String {
    let mut out = format!(
        "OCC contention: {} clients, one write each; network |N(10ms, 4ms)| each way; \
         backoff base {}, cap {}, multiplier 2; seed {}\n\n",
        params.clients,
        em_retry::fmt_duration(params.base),
        em_retry::fmt_duration(params.cap),
        params.seed
    );
    out.push_str(&format!(
        "{:<24} {:>8} {:>16} {:>18}\n",
        "strategy", "calls", "completion (ms)", "blog (100 clients)"
    ));
    for strategy in Strategy::ALL {
        let r = contention(strategy, params);
        let blog = strategy
            .blog_calls()
            .map_or_else(|| "-".to_string(), |c| format!("~{c}"));
        out.push_str(&format!(
            "{:<24} {:>8} {:>16.0} {:>18}\n",
            strategy.name(),
            r.calls,
            r.completion_ms,
            blog
        ));
    }
    let (clients, operations, attempts) = (100, 10, 4);
    out.push_str(&format!(
        "\nFull outage: {clients} clients x {operations} operations, {attempts} attempts each, \
         every attempt fails; budget ratio 0.2, 10 tokens, one bucket for the source\n\n"
    ));
    out.push_str(&format!(
        "{:<16} {:>14} {:>8} {:>10} {:>14}\n",
        "", "first attempts", "retries", "attempts", "retries/first"
    ));
    for (name, budget) in [("without budget", false), ("with budget", true)] {
        let r = outage(clients, operations, attempts, budget);
        out.push_str(&format!(
            "{:<16} {:>14} {:>8} {:>10} {:>14.3}\n",
            name,
            r.first_attempts,
            r.retries,
            r.first_attempts + r.retries,
            r.amplification()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_makes_fewer_calls_than_plain_exponential() {
        let params = Contention {
            clients: 30,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(2000),
            seed: 7,
        };
        let exponential = contention(Strategy::Exponential, &params);
        let full = contention(Strategy::FullJitter, &params);
        let none = contention(Strategy::NoBackoff, &params);
        assert!(
            full.calls < exponential.calls,
            "{full:?} vs {exponential:?}"
        );
        // Without jitter the clients stay in lockstep: backing off does not cut calls.
        assert!(full.calls < none.calls, "{full:?} vs {none:?}");
        // Each client writes once in the end: at least one call each.
        assert!(full.calls >= 30);
        // Same seed, same run.
        assert_eq!(contention(Strategy::FullJitter, &params), full);
    }

    #[test]
    fn the_budget_keeps_amplification_near_its_ratio() {
        let without = outage(20, 10, 4, false);
        assert_eq!((without.first_attempts, without.retries), (200, 600));
        let with = outage(20, 10, 4, true);
        assert_eq!(with.first_attempts, 200);
        // The ratio, plus the 10 tokens the bucket starts with over 200 operations.
        assert!(
            with.amplification() <= 0.2 + 10.0 / 200.0 + 1e-9,
            "{with:?}"
        );
        assert!(with.amplification() >= 0.2, "{with:?}");
    }
}
