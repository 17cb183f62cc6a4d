//! The run lock between two processes: a second extension-manager waits for the first,
//! names it, and gets the lock once the first is done.
//!
//! The second process is this test binary itself, re-executed to run only
//! [`state_lock_child_holds_the_lock`] with `EM_TEST_LOCK_CHILD_DIR` set; without that
//! variable the child test does nothing, so it is harmless in a normal run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use extension_manager::state::{LockError, StateDir};

const CHILD_DIR: &str = "EM_TEST_LOCK_CHILD_DIR";
/// How long the child holds the lock once it has said so.
const CHILD_HOLDS: Duration = Duration::from_millis(300);

fn acquired_marker(dir: &Path) -> PathBuf {
    dir.join("child-acquired")
}

/// The child's part: take the lock, say so with a marker file, hold it, release it.
#[test]
fn state_lock_child_holds_the_lock() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let state_dir = StateDir::new(dir.join("state"));
    let lock = state_dir
        .lock(Duration::from_secs(5), "install nodejs", |_| {})
        .expect("the child takes the free lock");
    std::fs::write(acquired_marker(&dir), std::process::id().to_string()).expect("marker");
    std::thread::sleep(CHILD_HOLDS);
    drop(lock);
}

#[test]
fn state_lock_is_shared_between_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "state_lock_child_holds_the_lock", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let child_pid = child.id();

    // Wait for the child to hold the lock (a generous bound: it only has to start).
    let started = Instant::now();
    while !acquired_marker(dir.path()).exists() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the child never took the lock");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let state_dir = StateDir::new(dir.path().join("state"));
    // Not waiting at all: a timeout that names the child.
    let err = state_dir
        .lock(Duration::ZERO, "install python", |_| {})
        .expect_err("the child holds the lock");
    assert_eq!(err.exit_code(), 75);
    let LockError::Timeout {
        holder: Some(holder),
        ..
    } = &err
    else {
        panic!("expected a timeout naming the child: {err:?}");
    };
    assert_eq!(holder.pid, child_pid);
    assert_eq!(holder.command, "install nodejs");

    // Waiting: we see the child, then get the lock once it lets go. The timeout is only an
    // upper bound for a loaded machine; the wait ends when the child releases (~300 ms).
    let mut seen = Vec::new();
    let waiting = Instant::now();
    let lock = state_dir
        .lock(Duration::from_secs(10), "install python", |h| {
            seen.push(h.clone())
        })
        .expect("the lock once the child has released it");
    let waited = waiting.elapsed();
    assert_eq!(seen.len(), 1, "one holder, reported once: {seen:?}");
    assert_eq!(seen[0].pid, child_pid);
    assert!(
        waited >= Duration::from_millis(50),
        "we did wait: {waited:?}"
    );
    assert_eq!(lock.holder().pid, std::process::id());
    drop(lock);

    let status = child.wait().expect("child exit");
    assert!(status.success(), "the child test failed: {status}");
}
