//! em-pip end to end against the fake python (`fixtures/fake-tool`): attempts, repairs,
//! the index probe, the venv, the argv and environment pip got, and the user's error.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_exec::{Runner, ToolErrorKind};
use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};
use em_retry::{Backoff, RetryPolicy};
use em_test_support::{Call, Scene, fake_tool};

/// A scene with `bin/python3 -> em-fake-tool`.
struct Fake {
    scene: Scene,
}

impl Fake {
    fn new(scenario: &str) -> Self {
        Fake {
            scene: Scene::new(&["python3"], scenario),
        }
    }

    fn path(&self) -> &Path {
        self.scene.path()
    }

    fn pip(&self, mut config: PipConfig, target: PipTarget) -> Arc<Pip> {
        config.env.extend(self.scene.env());
        config.env.extend([
            // The probe's urllib must reach 127.0.0.1 directly, whatever the machine's proxy.
            ("no_proxy".to_string(), "*".to_string()),
            ("NO_PROXY".to_string(), "*".to_string()),
        ]);
        Arc::new(
            Pip::with_tools(config, target, self.scene.bin().join("python3"))
                .expect("valid config"),
        )
    }

    fn interpreter(&self) -> PipTarget {
        PipTarget::Interpreter(self.scene.bin().join("python3"))
    }

    /// Every call, in order.
    fn calls(&self) -> Vec<Call> {
        self.scene.calls()
    }

    /// The calls as `python3 <args>` lines.
    fn call_lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }
}

fn runner(attempts: u32) -> Runner {
    Runner::new(RetryPolicy::new(attempts).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(1),
    }))
}

fn requirements(texts: &[&str]) -> Vec<PipRequirement> {
    texts
        .iter()
        .map(|t| PipRequirement::parse(t).expect("valid"))
        .collect()
}

/// A one-line HTTP server on 127.0.0.1 answering every request with `status`; returns its
/// base URL and the request lines it saw.
fn index_answering(status: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            log.lock().expect("lock").push(line.trim().to_string());
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (format!("http://127.0.0.1:{port}/simple/"), seen)
}

/// A real interpreter for the probe (urllib against 127.0.0.1 only), if there is one.
fn real_python() -> Option<PathBuf> {
    let found = which::which("python3").ok();
    if found.is_none() {
        eprintln!("no python3 on PATH: skipping the probe scenario");
    }
    found
}

#[tokio::test]
async fn connection_refused_warnings_five_times_with_four_attempts_is_exit_75() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "python3"
match = "^-m pip install "
times = 5
exit = 1
output = "pip/connection-refused-with-retries.txt"
"#,
    );
    let pip = fake.pip(
        PipConfig {
            index_url: Some("http://127.0.0.1:18764/simple/".into()),
            timeout: Duration::from_secs(20),
            ..PipConfig::default()
        },
        fake.interpreter(),
    );
    let err = pip
        .install(
            &runner(4),
            &requirements(&["black==24.*", "uvicorn[standard]>=0.29,<1"]),
        )
        .await
        .expect_err("exhausted");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.exit_code(), 75);
    assert_eq!(err.attempts, 4);
    assert_eq!(
        err.operation,
        "pip install black==24.* uvicorn[standard]>=0.29,<1"
    );
    assert_eq!(err.reason, "connection refused at 127.0.0.1:18764");
    let calls = fake.calls();
    assert_eq!(calls.len(), 4, "no probe, no repair");
    for Call { tool, args, env } in &calls {
        assert_eq!(tool, "python3");
        assert_eq!(
            *args,
            [
                "-m",
                "pip",
                "install",
                "--no-input",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--retries",
                "1",
                "--timeout",
                "20",
                "--index-url",
                "http://127.0.0.1:18764/simple/",
                "black==24.*",
                "uvicorn[standard]>=0.29,<1",
            ]
        );
        assert_eq!(env["LC_ALL"], "C");
    }
}

#[tokio::test]
async fn from_versions_none_and_a_404_probe_is_permanent_after_one_attempt() {
    let Some(python) = real_python() else { return };
    let (index, seen) = index_answering("404 Not Found");
    let scenario = format!(
        "[[call]]\ntool = \"python3\"\nmatch = \"^-m pip install \"\nexit = 1\nstderr = '''\
ERROR: Could not find a version that satisfies the requirement Em_Fixture.No-Such (from versions: none)\n\
ERROR: No matching distribution found for Em_Fixture.No-Such\n'''\nstdout = '''Looking in indexes: {index}\n'''\n"
    );
    let fake = Fake::new(&scenario);
    let pip = fake.pip(
        PipConfig {
            index_url: Some(index.clone()),
            mirrors: vec!["http://127.0.0.1:9/simple/".into()],
            probe_python: Some(python),
            ..PipConfig::default()
        },
        fake.interpreter(),
    );
    let err = pip
        .install(&runner(4), &requirements(&["Em_Fixture.No-Such"]))
        .await
        .expect_err("permanent");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.attempts, 1);
    assert_eq!(
        err.reason,
        format!("no package `Em_Fixture.No-Such` on the index {index}")
    );
    assert!(err.hint.is_some());
    // One pip run (the mirror is not tried after a permanent failure), one probe of the
    // PEP 503 normalized page.
    assert_eq!(fake.calls().len(), 1);
    assert_eq!(
        *seen.lock().expect("lock"),
        ["GET /simple/em-fixture-no-such/ HTTP/1.1"]
    );
}

#[tokio::test]
async fn from_versions_none_and_a_503_probe_is_retried() {
    let Some(python) = real_python() else { return };
    let (index, seen) = index_answering("503 Service Unavailable");
    let scenario = format!(
        "[[call]]\ntool = \"python3\"\nmatch = \"^-m pip install \"\nexit = 1\nstderr = '''\
ERROR: Could not find a version that satisfies the requirement black (from versions: none)\n'''\nstdout = '''Looking in indexes: {index}\n'''\n"
    );
    let fake = Fake::new(&scenario);
    let pip = fake.pip(
        PipConfig {
            index_url: Some(index.clone()),
            probe_python: Some(python),
            ..PipConfig::default()
        },
        fake.interpreter(),
    );
    let err = pip
        .install(&runner(2), &requirements(&["black"]))
        .await
        .expect_err("exhausted");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.attempts, 2);
    assert_eq!(
        err.reason,
        format!("the index {index} answered HTTP 503 for `black`")
    );
    assert_eq!(
        seen.lock().expect("lock").len(),
        2,
        "one probe per failed attempt"
    );
}

#[tokio::test]
async fn hash_mismatch_once_purges_the_cache_and_retries_without_it() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "python3"
match = "^-m pip install "
times = 1
exit = 1
output = "pip/download-truncated-hash-mismatch.txt"
"#,
    );
    let pip = fake.pip(PipConfig::default(), fake.interpreter());
    pip.install(&runner(4), &requirements(&["em-fixture-hello"]))
        .await
        .expect("second attempt succeeds");
    let lines = fake.call_lines();
    assert_eq!(
        lines,
        [
            "python3 -m pip install --no-input --disable-pip-version-check --progress-bar off --retries 1 --timeout 30 em-fixture-hello",
            "python3 -m pip cache purge --no-input --disable-pip-version-check",
            "python3 -m pip install --no-input --disable-pip-version-check --progress-bar off --retries 1 --timeout 30 --no-cache-dir em-fixture-hello",
        ]
    );
}

#[tokio::test]
async fn hash_mismatch_twice_is_permanent() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "python3"
match = "^-m pip install "
exit = 1
output = "pip/require-hashes-mismatch.txt"
"#,
    );
    let pip = fake.pip(PipConfig::default(), fake.interpreter());
    let err = pip
        .install(&runner(5), &requirements(&["em-fixture-nohash==1.0"]))
        .await
        .expect_err("permanent");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 2);
    assert!(
        err.reason.contains("still failing after pip cache purge"),
        "{}",
        err.reason
    );
}

#[tokio::test]
async fn a_missing_venv_is_created_and_its_python_runs_pip() {
    let fake = Fake::new("");
    let venv = fake.path().join("venv");
    // The fake `python3 -m venv` cannot make an interpreter, so the test puts the venv's
    // `bin/python` in place beforehand; what makes the directory a venv is `pyvenv.cfg`,
    // which only the (fake) `python3 -m venv` writes.
    std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink(fake_tool(), venv.join("bin/python")).expect("symlink");
    let scenario = format!(
        "[[call]]\ntool = \"python3\"\nmatch = \"^-m venv \"\ntouch = [\"{}\"]\n",
        venv.join("pyvenv.cfg").display()
    );
    fake.scene.write_scenario(&scenario);
    let pip = fake.pip(PipConfig::default(), PipTarget::Venv(venv.clone()));
    assert!(!pip.is_venv_ready());
    pip.install(&runner(3), &requirements(&["black"]))
        .await
        .expect("installed");
    pip.install(&runner(3), &requirements(&["ruff"]))
        .await
        .expect("installed again, the venv exists now");
    pip.uninstall(&runner(3), &requirements(&["ruff==0.4"]))
        .await
        .expect("uninstalled");
    let calls = fake.calls();
    let lines: Vec<String> = calls.iter().map(Call::line).collect();
    assert_eq!(
        lines,
        [
            format!("python3 -m venv {}", venv.display()),
            "python -m pip install --no-input --disable-pip-version-check --progress-bar off --retries 1 --timeout 30 black".to_string(),
            "python -m pip install --no-input --disable-pip-version-check --progress-bar off --retries 1 --timeout 30 ruff".to_string(),
            "python -m pip uninstall -y --no-input --disable-pip-version-check ruff".to_string(),
        ]
    );
    assert_eq!(pip.python(), venv.join("bin/python"));
}

#[tokio::test]
async fn exhausted_index_falls_back_to_the_mirror() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "python3"
match = "--index-url http://127.0.0.1:18765/primary/"
exit = 2
output = "pip/download-reset-mid-body.txt"
"#,
    );
    let pip = fake.pip(
        PipConfig {
            index_url: Some("http://127.0.0.1:18765/primary/".into()),
            mirrors: vec!["https://mirror.example.org/simple/".into()],
            ..PipConfig::default()
        },
        fake.interpreter(),
    );
    pip.install(&runner(2), &requirements(&["black"]))
        .await
        .expect("the mirror works");
    let indexes: Vec<String> = fake
        .calls()
        .into_iter()
        .map(|Call { args, .. }| {
            let i = args
                .iter()
                .position(|a| a == "--index-url")
                .expect("index flag");
            args[i + 1].clone()
        })
        .collect();
    assert_eq!(
        indexes,
        [
            "http://127.0.0.1:18765/primary/",
            "http://127.0.0.1:18765/primary/",
            "https://mirror.example.org/simple/"
        ]
    );
}

#[test]
fn the_probe_reads_statuses_and_silence() {
    let Some(python) = real_python() else { return };
    let env = [("no_proxy".to_string(), "*".to_string())];
    let (index, _) = index_answering("200 OK");
    let url = em_pip::project_url(&index, "Black");
    assert!(url.ends_with("/simple/black/"), "{url}");
    assert_eq!(
        em_pip::probe_index(&python, &url, Duration::from_secs(5), &env),
        em_pip::ProbeResult::Found
    );
    let (index, _) = index_answering("429 Too Many Requests");
    assert_eq!(
        em_pip::probe_index(
            &python,
            &em_pip::project_url(&index, "x"),
            Duration::from_secs(5),
            &env
        ),
        em_pip::ProbeResult::ServerError(429)
    );
    // A Retry-After in seconds comes back with the status (the wait honours it).
    let (index, _) = index_answering("429 Too Many Requests\r\nRetry-After: 2");
    assert_eq!(
        em_pip::probe_index(
            &python,
            &em_pip::project_url(&index, "x"),
            Duration::from_secs(5),
            &env
        ),
        em_pip::ProbeResult::RetryAfter(429, Duration::from_secs(2))
    );
    // A port nobody listens on (bound, then released).
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/simple/x/");
    match em_pip::probe_index(&python, &url, Duration::from_secs(5), &env) {
        em_pip::ProbeResult::Unreachable(why) => assert!(why.contains("refused"), "{why}"),
        other => panic!("{other:?}"),
    }
}
