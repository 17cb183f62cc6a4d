//! `extension-manager retry` against real child processes, as a user runs it.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn em() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extension-manager"));
    cmd.env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    em().args(args).output().expect("extension-manager runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A script that fails until it has run `fail_times` times, counting in `dir/count`.
fn flaky_script(dir: &Path, fail_times: u32) -> String {
    format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; \
         echo \"attempt $n\"; echo \"stderr of $n\" >&2; [ $n -gt {fail_times} ]",
        c = dir.join("count").display()
    )
}

fn process_is_gone(pid: i32) -> bool {
    for _ in 0..200 {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.split_whitespace().nth(2) == Some("Z") => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

#[test]
fn fails_twice_then_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = flaky_script(dir.path(), 2);
    let out = run(&["retry", "--delay", "1ms", "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Every attempt's stdout passes through, in order, untouched.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "attempt 1\nattempt 2\nattempt 3\n"
    );
    let err = stderr(&out);
    assert!(
        err.contains("attempt 1/3 failed (transient: exit code 1); retrying in"),
        "{err}"
    );
    assert!(
        err.contains("attempt 2/3 failed (transient: exit code 1); retrying in"),
        "{err}"
    );
    assert!(err.contains("on attempt 3 after 2 retries"), "{err}");
    assert!(
        err.contains("stderr of 1"),
        "the child's stderr reaches ours: {err}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("count"))
            .expect("count")
            .trim(),
        "3"
    );
}

#[test]
fn exhausted_exits_with_the_last_exit_code() {
    let out = run(&[
        "retry",
        "--attempts",
        "2",
        "--backoff",
        "none",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let err = stderr(&out);
    assert!(
        err.contains("attempt 2/2 failed (transient: exit code 7); retries exhausted"),
        "{err}"
    );
}

#[test]
fn stdout_passes_through_byte_for_byte() {
    let out = run(&["retry", "--", "printf", "a\\000b\\377\\n"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"a\0b\xff\n");
    assert!(
        out.stderr.is_empty(),
        "a first-attempt success is silent: {}",
        stderr(&out)
    );
}

#[test]
fn timeout_kills_the_whole_process_group_and_exits_124() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let script = format!("sleep 300 & echo $! >> {}; wait", pids.display());
    let out = run(&[
        "retry",
        "--attempts",
        "2",
        "--delay",
        "1ms",
        "--timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("attempt 1/2 failed (timed out after 300ms)"),
        "{err}"
    );
    let started: Vec<i32> = fs::read_to_string(&pids)
        .expect("both attempts started a grandchild")
        .lines()
        .map(|l| l.trim().parse().expect("pid"))
        .collect();
    assert_eq!(started.len(), 2);
    for pid in started {
        assert!(
            process_is_gone(pid),
            "grandchild {pid} outlived its attempt's timeout"
        );
    }
}

#[test]
fn permanent_exit_codes_stop_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = flaky_script(dir.path(), 5);
    let out = run(&[
        "retry",
        "--stop-on-exit",
        "1",
        "--delay",
        "1ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        fs::read_to_string(dir.path().join("count"))
            .expect("count")
            .trim(),
        "1"
    );
    assert!(stderr(&out).contains("attempt 1/3 failed (permanent: exit code 1)"));
}

#[test]
fn retry_on_exit_limits_what_retries() {
    let out = run(&[
        "retry",
        "--retry-on-exit",
        "75,100-110",
        "--backoff",
        "none",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("attempt 1/3 failed (permanent"));
    let out = run(&[
        "retry",
        "--retry-on-exit",
        "75,100-110",
        "--backoff",
        "none",
        "--",
        "sh",
        "-c",
        "exit 104",
    ]);
    assert_eq!(out.status.code(), Some(104));
    assert!(stderr(&out).contains("attempt 3/3 failed (transient"));
}

#[test]
fn output_rules_read_stdout_and_stderr() {
    // Retry only what looks like an outage, and still pass the output through.
    let out = run(&[
        "retry",
        "--retry-if-output",
        "503|Temporary failure",
        "--backoff",
        "none",
        "--",
        "sh",
        "-c",
        "echo 'HTTP 404 Not Found' >&2; exit 22",
    ]);
    assert_eq!(out.status.code(), Some(22));
    let err = stderr(&out);
    assert!(err.contains("HTTP 404 Not Found"), "{err}");
    assert!(err.contains("attempt 1/3 failed (permanent"), "{err}");

    let out = run(&[
        "retry",
        "--retry-if-output",
        "503",
        "--stop-if-output",
        "certificate",
        "--backoff",
        "none",
        "--",
        "sh",
        "-c",
        "echo 'got 503'; exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("got 503")
            .count(),
        3
    );
}

#[test]
fn repair_runs_between_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("repaired");
    let check = format!("test -e {}", flag.display());
    let repair = format!("touch {}", flag.display());
    let out = run(&[
        "retry", "--delay", "1ms", "--repair", &repair, "--", "sh", "-c", &check,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("attempt 1/3 failed (repairable: exit code 1); repairing with sh -c"),
        "{err}"
    );
    assert!(err.contains("Repaired"), "{err}");
    assert!(err.contains("on attempt 2 after 1 retry"), "{err}");
}

#[test]
fn a_missing_command_is_127_and_not_retried() {
    let out = run(&[
        "retry",
        "--delay",
        "1ms",
        "--",
        "em-no-such-command",
        "--flag",
    ]);
    assert_eq!(out.status.code(), Some(127));
    let err = stderr(&out);
    assert!(
        err.contains("em-no-such-command: command not found"),
        "{err}"
    );
    assert!(err.contains("attempt 1/3 failed (permanent"), "{err}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_the_form() {
    for (args, needle) in [
        (
            vec!["--attempts", "0"],
            "--attempts <N>': must be at least 1",
        ),
        (
            vec!["--delay", "5x"],
            "--delay <DURATION>': expected a duration with a unit, e.g. 500ms",
        ),
        (
            vec!["--multiplier", "-1"],
            "--multiplier <FACTOR>': must be a number of at least 1.0",
        ),
        (vec!["--backoff", "sometimes"], "--backoff <KIND>'"),
        (vec!["--retry-on-exit", "1,x"], "expected exit codes 0-255"),
        (
            vec!["--retry-if-output", "("],
            "not a valid regular expression",
        ),
        (
            vec!["--delay", "1m", "--max", "10s"],
            "--max (10s) is below --delay (1m)",
        ),
    ] {
        let mut full = vec!["retry"];
        full.extend(args.iter().copied());
        full.extend(["--", "true"]);
        let out = run(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let out = run(&["retry"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigint_stops_the_child_and_exits_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let child = em()
        .args(["retry", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut grandchild = None;
    for _ in 0..500 {
        if let Ok(text) = fs::read_to_string(&pidfile)
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            grandchild = Some(pid);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let grandchild = grandchild.expect("the command started");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"));
    assert!(process_is_gone(grandchild), "the child outlived Ctrl-C");
}

#[test]
fn metrics_file_counts_attempts_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("em.prom");
    let script = flaky_script(dir.path(), 1);
    let out = run(&[
        "--metrics",
        metrics.to_str().expect("utf-8"),
        "retry",
        "--delay",
        "1ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&metrics).expect("metrics written");
    assert!(
        text.contains("extension_manager_attempts_total{adapter=\"retry\""),
        "{text}"
    );
    assert!(text.contains("outcome=\"transient\"} 1"), "{text}");
    assert!(text.contains("outcome=\"success\"} 1"), "{text}");
    assert!(text.contains("extension_manager_retries_total{"), "{text}");
    assert!(text.contains("class=\"transient\"} 1"), "{text}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let out = run(&[
        "--log-format",
        "json",
        "retry",
        "--attempts",
        "2",
        "--backoff",
        "none",
        "--",
        "false",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not JSON: {line}"
        );
    }
    assert!(err.contains("attempt 1/2 failed"), "{err}");
    assert!(err.contains("gave up after 2 attempt(s)"), "{err}");
}
