//! em-curl end to end against the fake curl (`fixtures/fake-tool`): attempts, resume and
//! repairs, the argv and environment curl got, what lands at the destination, and the
//! error the user sees.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_curl::{Curl, CurlConfig};
use em_exec::download::{DownloadRequest, Sha256};
use em_exec::{Runner, ToolErrorKind};
use em_retry::{Backoff, RetryPolicy};
use em_test_support::{Call, Scene};

/// sha256("hello")
const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// A scene with `bin/curl -> em-fake-tool` and `dl/` for the downloads.
struct Fake {
    scene: Scene,
}

impl Fake {
    fn new(scenario: &str) -> Self {
        let scene = Scene::new(&["curl"], scenario);
        std::fs::create_dir(scene.path().join("dl")).expect("dl");
        Fake { scene }
    }

    fn path(&self) -> &Path {
        self.scene.path()
    }

    fn dest(&self) -> PathBuf {
        self.path().join("dl/tool.tar.gz")
    }

    fn partial(&self) -> PathBuf {
        self.path().join("dl/.tool.tar.gz.em-partial")
    }

    fn curl(&self) -> Arc<Curl> {
        let config = CurlConfig {
            env: self.scene.env().into(),
            ..CurlConfig::default()
        };
        Arc::new(Curl::with_tool(config, self.scene.bin().join("curl")))
    }

    fn request(&self, url: &str) -> DownloadRequest {
        let mut req = DownloadRequest::new(url, self.dest());
        req.sha256 = Some(Sha256::parse(HELLO_SHA).expect("valid"));
        req
    }

    /// Every call, in order; all of them curl's.
    fn calls(&self) -> Vec<Call> {
        let calls = self.scene.calls();
        for call in &calls {
            assert_eq!(call.tool, "curl");
        }
        calls
    }

    fn call_lines(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.args.join(" ")).collect()
    }
}

fn runner(attempts: u32) -> Runner {
    Runner::new(RetryPolicy::new(attempts).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(1),
    }))
}

#[tokio::test]
async fn a_503_twice_then_success_lands_the_verified_file() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
times = 2
exit = 22
output = "curl/http-503.txt"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "hello"
"#,
    );
    let mut req = fake.request("https://downloads.example.org/tool.tar.gz");
    req.mode = Some(0o755);
    let landed = fake
        .curl()
        .download(&runner(4), &req)
        .await
        .expect("the third attempt succeeds");
    assert_eq!(landed.path, fake.dest());
    assert_eq!(landed.sha256.to_string(), HELLO_SHA);
    assert_eq!(landed.bytes, 5);
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(fake.dest())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert!(!fake.partial().exists(), "no partial file left");

    let calls = fake.calls();
    assert_eq!(calls.len(), 3);
    let partial = fake.partial().display().to_string();
    let expected = [
        "--fail",
        "--silent",
        "--show-error",
        "--location",
        "--dump-header",
        "-",
        "--connect-timeout",
        "10",
        "--max-time",
        "600",
        "--retry",
        "0",
        "--proto",
        "=https",
        "--proto-redir",
        "=https",
        "--max-filesize",
        "CAP",
        "-o",
        partial.as_str(),
        "https://downloads.example.org/tool.tar.gz",
    ];
    for Call { args, env, .. } in &calls {
        // The cap is 8 GiB, or the free space of the destination's file system if less.
        let at = args
            .iter()
            .position(|a| a == "--max-filesize")
            .expect("a cap");
        let cap: u64 = args[at + 1].parse().expect("a number");
        assert!(cap > 0 && cap <= 8 << 30, "{cap}");
        let mut args = args.clone();
        args[at + 1] = "CAP".into();
        assert_eq!(args, expected);
        assert_eq!(env["LC_ALL"], "C");
    }
}

#[tokio::test]
async fn a_404_fails_at_once_naming_the_status_and_the_url() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
exit = 22
output = "curl/http-404.txt"
"#,
    );
    let url = "https://downloads.example.org/tool-9.9.tar.gz";
    let err = fake
        .curl()
        .download(&runner(4), &fake.request(url))
        .await
        .expect_err("404 is permanent");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.attempts, 1);
    assert_eq!(fake.calls().len(), 1);
    assert_eq!(err.reason, format!("404 Not Found for {url}"));
    assert!(
        err.hint
            .as_deref()
            .is_some_and(|h| h.contains("check the URL"))
    );
    assert_eq!(err.operation, format!("curl download {url}"));
    assert!(!fake.dest().exists());
    assert!(!fake.partial().exists());
}

#[tokio::test]
async fn a_checksum_mismatch_downloads_twice_then_fails_leaving_nothing() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
write_to_arg = "-o"
content = "tampered"
"#,
    );
    let err = fake
        .curl()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect_err("mismatch twice");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(fake.calls().len(), 2, "one download, one repeat");
    assert_eq!(err.attempts, 2);
    assert!(
        err.reason
            .starts_with(&format!("checksum mismatch: expected {HELLO_SHA}, got ")),
        "{}",
        err.reason
    );
    assert!(err.hint.is_some());
    assert!(!fake.dest().exists(), "nothing at the destination");
    assert!(!fake.partial().exists(), "no partial file left");
    // The second download started from scratch: the bad partial file was deleted.
    assert!(!fake.call_lines()[1].contains("-C -"));
}

#[tokio::test]
async fn a_mismatch_once_then_the_right_file_lands() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
times = 1
write_to_arg = "-o"
content = "truncat"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "hello"
"#,
    );
    fake.curl()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect("the repeat is right");
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn a_cut_transfer_is_resumed_with_c_dash() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
times = 1
exit = 18
output = "curl/partial-file.txt"
write_to_arg = "-o"
content = "hel"

[[call]]
tool = "curl"
match = "-C -"
write_to_arg = "-o"
content = "hello"
"#,
    );
    fake.curl()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect("resumed");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 2);
    assert!(!lines[0].contains("-C -"), "{}", lines[0]);
    assert!(lines[1].contains(" -C - -o "), "{}", lines[1]);
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
}

#[tokio::test]
async fn a_server_that_cannot_resume_gets_a_fresh_download() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
match = "-C -"
exit = 33
output = "curl/resume-not-supported.txt"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "hello"
"#,
    );
    // A partial file from an interrupted earlier run (kept: the request has a sha256).
    std::fs::write(fake.partial(), b"hel").expect("partial");
    fake.curl()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect("restarted");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("-C -"), "{}", lines[0]);
    assert!(
        !lines[1].contains("-C -"),
        "the partial file was deleted: {}",
        lines[1]
    );
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
}

#[tokio::test]
async fn refused_connections_until_the_policy_runs_out_is_exit_75() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
times = 5
exit = 7
output = "curl/connection-refused.txt"
"#,
    );
    let err = fake
        .curl()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect_err("exhausted");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.exit_code(), 75);
    assert_eq!(err.attempts, 4);
    assert_eq!(
        fake.calls().len(),
        4,
        "4 attempts are 4 curl runs: curl --retry 0"
    );
    assert!(
        err.reason.starts_with("could not connect"),
        "{}",
        err.reason
    );
    assert_eq!(err.last.expect("the last run").code, 7);
    assert!(!fake.dest().exists());
}

#[tokio::test]
async fn an_exhausted_primary_falls_back_to_the_mirror() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
match = "primary\\.example\\.org"
exit = 22
output = "curl/http-503.txt"

[[call]]
tool = "curl"
match = "mirror\\.example\\.org"
write_to_arg = "-o"
content = "hello"
"#,
    );
    let mut req = fake.request("https://primary.example.org/tool.tar.gz");
    req.mirrors = vec!["https://mirror.example.org/tool.tar.gz".into()];
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let runner = runner(3).on_mirror(Arc::new(move |from: &str, to: &str, why: &str| {
        sink.lock()
            .expect("lock")
            .push(format!("{from} -> {to}: {why}"))
    }));
    fake.curl()
        .download(&runner, &req)
        .await
        .expect("the mirror works");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[..3]
            .iter()
            .all(|l| l.ends_with("https://primary.example.org/tool.tar.gz"))
    );
    assert!(lines[3].ends_with("https://mirror.example.org/tool.tar.gz"));
    assert_eq!(
        *notices.lock().expect("lock"),
        [
            "https://primary.example.org/tool.tar.gz -> https://mirror.example.org/tool.tar.gz: \
          503 Service Unavailable from primary.example.org"
        ]
    );
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
    assert!(!fake.partial().exists());
}

#[tokio::test]
async fn plain_http_is_refused_before_any_call_unless_allowed() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
write_to_arg = "-o"
content = "hello"
"#,
    );
    let mut req = fake.request("http://127.0.0.1:8080/tool.tar.gz");
    let err = fake
        .curl()
        .download(&runner(4), &req)
        .await
        .expect_err("http refused");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 0);
    assert!(
        err.reason.contains("http://127.0.0.1:8080/tool.tar.gz"),
        "{}",
        err.reason
    );
    assert!(fake.calls().is_empty(), "nothing ran");

    req.allow_http = true;
    fake.curl()
        .download(&runner(4), &req)
        .await
        .expect("allowed");
    let args = &fake.calls()[0].args;
    let proto = args.iter().position(|a| a == "--proto").expect("--proto");
    assert_eq!(args[proto + 1], "=http,https");
}

#[tokio::test]
async fn a_relative_destination_is_refused_before_any_call() {
    let fake = Fake::new("");
    let req = DownloadRequest::new("https://example.org/x", "dl/x");
    let err = fake
        .curl()
        .download(&runner(4), &req)
        .await
        .expect_err("relative");
    assert!(err.reason.contains("`dl/x` is relative"), "{}", err.reason);
    assert!(fake.calls().is_empty());
}

#[test]
fn the_download_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let curl = Arc::new(Curl::with_tool(CurlConfig::default(), "/bin/false"));
    let runner = runner(1);
    let req = DownloadRequest::new("https://example.org/x", "/tmp/x");
    let fut = curl.download(&runner, &req);
    assert_send(&fut);
}

/// Three cut transfers, each of which got further than the one before.
const GROWING_CUTS: &str = r#"
[[call]]
tool = "curl"
times = 1
exit = 18
output = "curl/partial-file.txt"
write_to_arg = "-o"
content = "h"

[[call]]
tool = "curl"
times = 1
exit = 18
output = "curl/partial-file.txt"
write_to_arg = "-o"
content = "he"

[[call]]
tool = "curl"
times = 1
exit = 18
output = "curl/partial-file.txt"
write_to_arg = "-o"
content = "hel"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "hello"
"#;

#[tokio::test]
async fn cut_transfers_that_made_progress_do_not_use_up_the_attempts() {
    let fake = Fake::new(GROWING_CUTS);
    fake.curl()
        .download(
            &runner(2),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect("each cut moved the file on: four calls under a policy of two attempts");
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
    assert_eq!(fake.calls().len(), 4);
}

#[tokio::test]
async fn cut_transfers_that_made_no_progress_use_up_the_attempts() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "curl"
exit = 18
output = "curl/partial-file.txt"
write_to_arg = "-o"
content = "h"
"#,
    );
    let err = fake
        .curl()
        .download(
            &runner(2),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect_err("the partial file never grew");
    assert_eq!(err.kind, em_exec::ToolErrorKind::Exhausted, "{err:?}");
    // The first call made the file (progress, free); the next two did not move it.
    assert_eq!(fake.calls().len(), 3);
}
