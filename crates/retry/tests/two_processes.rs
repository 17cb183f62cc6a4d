//! Two OS processes share one circuit through a [`FileStore`].
//!
//! The children are this very test binary, run again with `--exact child_process_entry`
//! and `EM_CIRCUIT_CHILD_DIR` set: `child_process_entry` is a test that does nothing
//! without that variable (as in every ordinary `cargo test` or `cargo nextest` run), and
//! otherwise plays the part named by `EM_CIRCUIT_CHILD_MODE`. Under `cargo test` the parent
//! tests run as threads of one process, under nextest as processes of their own; either
//! way the children are separate processes, since they are spawned.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use em_retry::{
    Backoff, CircuitBreaker, CircuitState, CircuitStore, FileStore, GiveUpReason, Retry,
    RetryPolicy,
};

const DIR_VAR: &str = "EM_CIRCUIT_CHILD_DIR";
const MODE_VAR: &str = "EM_CIRCUIT_CHILD_MODE";
const KEY_VAR: &str = "EM_CIRCUIT_CHILD_KEY";
const NAME_VAR: &str = "EM_CIRCUIT_CHILD_NAME";
const PEERS_VAR: &str = "EM_CIRCUIT_CHILD_PEERS";

/// Threads per child in the counter test, and failures each thread records.
const THREADS: u32 = 2;
const ROUNDS: u32 = 20;

fn store_in(dir: &Path) -> FileStore {
    FileStore::new(dir.join("circuits"))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set for a child"))
}

// ---------------------------------------------------------------------------------------
// The child side

/// Not a test of its own: the entry point of the child processes (see the module docs).
#[test]
fn child_process_entry() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let key = env(KEY_VAR);
    let name = env(NAME_VAR);
    match env(MODE_VAR).as_str() {
        "count" => child_count(&dir, &key, &name),
        "open" => child_open(&dir, &key, &name),
        "probe" => child_probe(&dir, &key, &name),
        other => panic!("unknown child mode {other}"),
    }
    std::fs::write(dir.join(format!("done-{name}")), b"").expect("write the done marker");
}

/// Waits until every peer is ready, so that the children's updates overlap.
fn barrier(dir: &Path, name: &str) {
    let peers: usize = env(PEERS_VAR).parse().expect("a number of peers");
    std::fs::write(dir.join(format!("ready-{name}")), b"").expect("write the ready marker");
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = std::fs::read_dir(dir)
            .expect("read the test dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("ready-"))
            .count();
        if ready >= peers {
            return;
        }
        assert!(Instant::now() < give_up, "the other child never got ready");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Records THREADS x ROUNDS failures for `key`, from THREADS threads at once.
fn child_count(dir: &Path, key: &str, name: &str) {
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(store_in(dir))).with_threshold(u32::MAX));
    barrier(dir, name);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let breaker = breaker.clone();
            let key = key.to_string();
            let reason = format!("503 from {name} thread {t}");
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    breaker.record_failure(&key, &reason);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a counting thread panicked");
    }
}

/// Runs an operation that exhausts its attempts, under a breaker of threshold 1: opens `key`.
fn child_open(dir: &Path, key: &str, name: &str) {
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(store_in(dir))).with_threshold(1));
    let err = Retry::new(RetryPolicy::new(2).with_backoff(Backoff::None))
        .circuit(breaker, key)
        .run_blocking(|_| std::future::ready(Err::<(), _>(format!("503 seen by {name}"))))
        .expect_err("always fails");
    assert_eq!(err.reason(), &GiveUpReason::Exhausted);
}

/// Runs an operation under the shared breaker and writes what happened to `probe-<name>`.
fn child_probe(dir: &Path, key: &str, name: &str) {
    let breaker = Arc::new(CircuitBreaker::new(Arc::new(store_in(dir))));
    let mut calls = 0;
    let result = Retry::<String>::new(RetryPolicy::once())
        .circuit(breaker, key)
        .run_blocking(|_| {
            calls += 1;
            std::future::ready(Ok(()))
        });
    let report = match result {
        Ok(()) => format!("ran {calls} attempt(s)"),
        Err(e) => format!(
            "refused after {} attempt(s), {calls} call(s), reason {:?}: {e}",
            e.attempts(),
            e.reason()
        ),
    };
    std::fs::write(dir.join(format!("probe-{name}")), report).expect("write the probe report");
}

// ---------------------------------------------------------------------------------------
// The parent side

fn spawn_child(dir: &Path, mode: &str, key: &str, name: &str, peers: usize) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new(exe)
        .args(["--exact", "child_process_entry", "--nocapture"])
        .env(DIR_VAR, dir)
        .env(MODE_VAR, mode)
        .env(KEY_VAR, key)
        .env(NAME_VAR, name)
        .env(PEERS_VAR, peers.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process")
}

fn wait_ok(child: Child, dir: &Path, name: &str) {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for the child");
    assert!(
        status.success(),
        "child {name} failed ({status}):\n{}\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    // A filter that matched no test would also exit 0: make sure the entry really ran.
    assert!(
        dir.join(format!("done-{name}")).exists(),
        "child {name} did not run child_process_entry:\n{}",
        String::from_utf8_lossy(&stdout)
    );
}

#[test]
fn failures_recorded_by_two_processes_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "deb.example.org:80";
    let a = spawn_child(dir.path(), "count", key, "a", 2);
    let b = spawn_child(dir.path(), "count", key, "b", 2);
    wait_ok(a, dir.path(), "a");
    wait_ok(b, dir.path(), "b");

    let store = store_in(dir.path());
    let record = store.load(key).expect("read the shared record");
    // 2 processes x 2 threads x 20 read-modify-write updates, none lost.
    assert_eq!(record.failures, 2 * THREADS * ROUNDS);
    let last = record.last_error.expect("a last error");
    assert!(last.starts_with("503 from "), "{last}");
    assert_eq!(
        CircuitBreaker::new(Arc::new(store.clone()))
            .with_threshold(u32::MAX)
            .state(key)
            .expect("state"),
        CircuitState::Closed {
            failures: 2 * THREADS * ROUNDS
        }
    );
    // One record file, with the key percent-encoded, and no temporary file left behind.
    let mut names: Vec<String> = std::fs::read_dir(store.dir())
        .expect("read the store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["deb.example.org%3A80.json", "deb.example.org%3A80.lock"]
    );
}

#[test]
fn a_circuit_opened_by_another_process_is_open_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "registry.example.org";
    wait_ok(
        spawn_child(dir.path(), "open", key, "opener", 1),
        dir.path(),
        "opener",
    );

    let breaker = CircuitBreaker::new(Arc::new(store_in(dir.path())));
    let open = breaker
        .acquire(key)
        .expect_err("the circuit the child opened is open here");
    assert_eq!(open.key, key);
    assert_eq!(open.failures, 1);
    assert_eq!(open.last_error.as_deref(), Some("503 seen by opener"));
    let message = open.to_string();
    assert!(message.contains("registry.example.org"), "{message}");
    assert!(message.contains("503 seen by opener"), "{message}");
    assert!(matches!(
        breaker.state(key).expect("state"),
        CircuitState::Open { failures: 1, .. }
    ));
    assert!(
        breaker.acquire("pypi.example.org").is_ok(),
        "other keys stay closed"
    );
}

#[test]
fn a_circuit_opened_here_makes_another_process_fail_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "files.example.org";
    let breaker = CircuitBreaker::new(Arc::new(store_in(dir.path()))).with_threshold(1);

    // While closed, the other process goes through.
    wait_ok(
        spawn_child(dir.path(), "probe", key, "before", 1),
        dir.path(),
        "before",
    );
    let before =
        std::fs::read_to_string(dir.path().join("probe-before")).expect("the probe report");
    assert_eq!(before, "ran 1 attempt(s)");

    breaker.record_failure(key, "connection reset by peer");
    wait_ok(
        spawn_child(dir.path(), "probe", key, "after", 1),
        dir.path(),
        "after",
    );
    let after = std::fs::read_to_string(dir.path().join("probe-after")).expect("the probe report");
    assert!(
        after.starts_with(
            "refused after 0 attempt(s), 0 call(s), reason CircuitOpen(\"files.example.org\"): \
             circuit for files.example.org is open after 1 consecutive failed operation \
             (last: connection reset by peer); next trial in "
        ),
        "{after}"
    );
}
