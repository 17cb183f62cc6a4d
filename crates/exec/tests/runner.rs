//! The adapter contract driven by `Runner`, with a toy adapter over `sh`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_exec::{Adapter, Cmd, Runner, Stream, ToolErrorKind, ToolFailure, Verdict};
use em_retry::{Backoff, Operation, RetryPolicy};

/// Reads `sh` failures by the text they print: "busy" transient, "broken" repairable,
/// "gone" permanent.
#[derive(Default)]
struct Toy {
    repairs: AtomicU32,
}

impl Adapter for Toy {
    type Repair = &'static str;

    fn name(&self) -> &'static str {
        "toy"
    }

    fn classify(&self, failure: &ToolFailure) -> Verdict<Self::Repair> {
        let text = failure.text();
        if text.contains("busy") {
            Verdict::Transient("busy".into())
        } else if text.contains("broken") {
            Verdict::Repairable("fix it", "broken".into())
        } else {
            Verdict::Permanent("gone".into(), Some("look elsewhere".into()))
        }
    }

    async fn repair(&self, _repair: Self::Repair) -> Result<(), String> {
        self.repairs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn runner(attempts: u32) -> Runner {
    Runner::new(RetryPolicy::new(attempts).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(1),
    }))
}

fn sh(script: &str) -> Cmd {
    Cmd::tool("sh").args(["-c", script])
}

#[tokio::test]
async fn transient_then_success_and_lines_reach_the_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let count = dir.path().join("n");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; \
         if [ $n -lt 3 ]; then echo busy >&2; exit 1; fi; echo done; printf tail",
        c = count.display()
    );
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let out = runner(4)
        .with_lines(Arc::new(move |s: Stream, l: &str| {
            sink.lock().expect("lock").push((s, l.to_string()))
        }))
        .run(
            &Arc::new(Toy::default()),
            Operation::new("toy", "run"),
            None,
            |_| sh(&script),
        )
        .await
        .expect("third attempt succeeds");
    assert_eq!(out.stdout_text(), "done\ntail");
    let lines = lines.lock().expect("lock").clone();
    assert_eq!(
        lines
            .iter()
            .filter(|(s, l)| *s == Stream::Stderr && l == "busy")
            .count(),
        2
    );
    assert!(
        lines.contains(&(Stream::Stdout, "tail".to_string())),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_repair_runs_once_then_the_failure_is_permanent() {
    let toy = Arc::new(Toy::default());
    let err = runner(5)
        .run(&toy, Operation::new("toy", "run"), None, |_| {
            sh("echo broken >&2; exit 1")
        })
        .await
        .expect_err("repair does not help");
    assert_eq!(toy.repairs.load(Ordering::SeqCst), 1);
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 2);
    assert!(
        err.reason.contains("still failing after fix it"),
        "{}",
        err.reason
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn permanent_keeps_reason_hint_and_output() {
    let err = runner(5)
        .run(
            &Arc::new(Toy::default()),
            Operation::new("toy", "get x"),
            None,
            |_| sh("echo 'E: gone for good' >&2; exit 100"),
        )
        .await
        .expect_err("permanent");
    assert_eq!(err.attempts, 1);
    assert_eq!(err.reason, "gone");
    assert_eq!(err.hint.as_deref(), Some("look elsewhere"));
    let last = err.last.expect("the failed run");
    assert_eq!(last.code, 100);
    assert_eq!(last.tail(1), ["E: gone for good"]);
}

#[tokio::test]
async fn exhausted_primary_falls_back_to_the_mirror() {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let (out, used) = runner(2)
        .on_mirror(Arc::new(move |from: &str, to: &str, why: &str| {
            sink.lock()
                .expect("lock")
                .push(format!("{from} -> {to}: {why}"))
        }))
        .run_with_mirrors(
            &Arc::new(Toy::default()),
            Operation::new("toy", "fetch"),
            &["primary", "mirror"],
            |s| s.to_string(),
            |source, _| {
                if *source == "primary" {
                    sh("echo busy >&2; exit 1")
                } else {
                    sh("echo from-mirror")
                }
            },
        )
        .await
        .expect("the mirror works");
    assert_eq!(used, 1);
    assert_eq!(out.stdout_text(), "from-mirror\n");
    assert_eq!(*notices.lock().expect("lock"), ["primary -> mirror: busy"]);
}

#[tokio::test]
async fn all_sources_exhausted_is_exit_75() {
    let err = runner(2)
        .run_with_mirrors(
            &Arc::new(Toy::default()),
            Operation::new("toy", "fetch"),
            &["a", "b"],
            |s| s.to_string(),
            |_, _| sh("echo busy >&2; exit 1"),
        )
        .await
        .expect_err("all down");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.attempts, 4);
    assert_eq!(err.exit_code(), 75);
    // The error names the last source tried.
    assert_eq!(err.operation, "toy fetch via b");
}

#[tokio::test]
async fn wrapped_commands_keep_their_environment() {
    let cmd = Cmd::tool("apt-get")
        .arg("update")
        .wrapped_in("sudo", &["-n", "--"]);
    assert_eq!(
        cmd.command_line(),
        "sudo -n -- env LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get update"
    );
}

#[tokio::test]
async fn the_tally_counts_each_source_apart() {
    let tally = Arc::new(em_exec::SourceTally::default());
    let runner = runner(2).with_tally(tally.clone());
    let toy = Arc::new(Toy::default());
    runner
        .run_with_mirrors(
            &toy,
            Operation::new("toy", "fetch"),
            &["primary", "mirror"],
            |s| s.to_string(),
            |source, _| {
                if *source == "primary" {
                    sh("echo busy >&2; exit 1")
                } else {
                    sh("true")
                }
            },
        )
        .await
        .expect("the mirror works");
    // No source: counted under the component.
    runner
        .run(&toy, Operation::new("toy", "local"), None, |_| sh("true"))
        .await
        .expect("ok");
    let seen = tally.snapshot();
    let counts = |attempts, retries, gave_up| em_exec::SourceCounts {
        operations: 1,
        attempts,
        retries,
        repairs: 0,
        gave_up,
        circuit_open: None,
    };
    assert_eq!(seen["primary"], counts(2, 1, 1));
    assert_eq!(seen["mirror"], counts(1, 0, 0));
    assert_eq!(seen["toy"], counts(1, 0, 0));
    assert_eq!(seen.len(), 3);
}
