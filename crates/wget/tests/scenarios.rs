//! em-wget end to end against the fake wget (`fixtures/fake-tool`): attempts, resume, the
//! argv and environment wget got, what lands at the destination, and the error the user
//! sees.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use em_exec::download::{DownloadRequest, Sha256};
use em_exec::{Runner, ToolErrorKind};
use em_retry::{Backoff, RetryPolicy};
use em_test_support::{Call, Scene};
use em_wget::{Wget, WgetConfig};

/// sha256("hello")
const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// A scene with `bin/wget -> em-fake-tool` and `dl/` for the downloads.
struct Fake {
    scene: Scene,
}

impl Fake {
    fn new(scenario: &str) -> Self {
        let scene = Scene::new(&["wget"], scenario);
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

    fn wget(&self) -> Arc<Wget> {
        let config = WgetConfig {
            env: self.scene.env().into(),
            ..WgetConfig::default()
        };
        Arc::new(Wget::with_tool(config, self.scene.bin().join("wget")))
    }

    fn request(&self, url: &str) -> DownloadRequest {
        let mut req = DownloadRequest::new(url, self.dest());
        req.sha256 = Some(Sha256::parse(HELLO_SHA).expect("valid"));
        req
    }

    /// Every call, in order; all of them wget's.
    fn calls(&self) -> Vec<Call> {
        let calls = self.scene.calls();
        for call in &calls {
            assert_eq!(call.tool, "wget");
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
async fn a_503_then_success_lands_the_verified_file() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "wget"
times = 1
exit = 8
output = "wget/http-503.txt"
write_to_arg = "-O"
content = ""

[[call]]
tool = "wget"
write_to_arg = "-O"
content = "hello"
"#,
    );
    let landed = fake
        .wget()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect("the second attempt succeeds");
    assert_eq!(landed.sha256.to_string(), HELLO_SHA);
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
    assert!(!fake.partial().exists(), "no partial file left");
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    let partial = fake.partial().display().to_string();
    // wget leaves an empty -O file after an HTTP error: nothing to resume, so no -c.
    for Call { args, env, .. } in &calls {
        assert_eq!(
            args,
            &[
                "--tries=1",
                "--timeout=30",
                "--no-verbose",
                "--server-response",
                "--https-only",
                "-O",
                partial.as_str(),
                "https://downloads.example.org/tool.tar.gz",
            ]
        );
        assert_eq!(env["LC_ALL"], "C");
    }
}

#[tokio::test]
async fn a_404_fails_at_once_naming_the_status_and_the_url() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "wget"
exit = 8
output = "wget/http-404.txt"
write_to_arg = "-O"
content = ""
"#,
    );
    let url = "https://downloads.example.org/tool-9.9.tar.gz";
    let err = fake
        .wget()
        .download(&runner(4), &fake.request(url))
        .await
        .expect_err("404 is permanent");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.attempts, 1);
    assert_eq!(err.reason, format!("404 Not Found for {url}"));
    assert_eq!(fake.calls().len(), 1);
    assert!(!fake.dest().exists());
    assert!(!fake.partial().exists(), "the empty -O file is cleaned up");
}

#[tokio::test]
async fn network_failures_until_the_policy_runs_out_is_exit_75() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "wget"
exit = 4
output = "wget/connection-refused.txt"
"#,
    );
    let err = fake
        .wget()
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
        "4 attempts are 4 wget runs: --tries=1"
    );
    assert!(!fake.dest().exists());
}

#[tokio::test]
async fn a_checksum_mismatch_downloads_twice_then_fails_leaving_nothing() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "wget"
write_to_arg = "-O"
content = "tampered"
"#,
    );
    let err = fake
        .wget()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect_err("mismatch twice");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(fake.calls().len(), 2);
    assert!(
        err.reason
            .starts_with(&format!("checksum mismatch: expected {HELLO_SHA}, got ")),
        "{}",
        err.reason
    );
    assert!(!fake.dest().exists());
    assert!(!fake.partial().exists());
}

#[tokio::test]
async fn a_cut_transfer_is_resumed_with_c() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "wget"
times = 1
exit = 4
output = "wget/truncated.txt"
write_to_arg = "-O"
content = "hel"

[[call]]
tool = "wget"
match = "(^| )-c "
write_to_arg = "-O"
content = "hello"
"#,
    );
    fake.wget()
        .download(
            &runner(4),
            &fake.request("https://downloads.example.org/tool.tar.gz"),
        )
        .await
        .expect("resumed");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 2);
    assert!(!lines[0].contains(" -c "), "{}", lines[0]);
    assert!(lines[1].contains(" -c -O "), "{}", lines[1]);
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
}

#[tokio::test]
async fn an_exhausted_primary_falls_back_to_the_mirror() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "wget"
match = "primary\\.example\\.org"
exit = 8
output = "wget/http-429.txt"

[[call]]
tool = "wget"
match = "mirror\\.example\\.org"
write_to_arg = "-O"
content = "hello"
"#,
    );
    let mut req = fake.request("https://primary.example.org/tool.tar.gz");
    req.mirrors = vec!["https://mirror.example.org/tool.tar.gz".into()];
    fake.wget()
        .download(&runner(2), &req)
        .await
        .expect("the mirror works");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].ends_with("https://mirror.example.org/tool.tar.gz"));
    assert_eq!(std::fs::read(fake.dest()).expect("landed"), b"hello");
}

#[tokio::test]
async fn plain_http_is_refused_before_any_call() {
    let fake = Fake::new("");
    let err = fake
        .wget()
        .download(
            &runner(4),
            &fake.request("http://127.0.0.1:8080/tool.tar.gz"),
        )
        .await
        .expect_err("http refused");
    assert_eq!(err.attempts, 0);
    assert!(err.reason.contains("plain http://"), "{}", err.reason);
    assert!(fake.calls().is_empty());
}

#[test]
fn the_download_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let wget = Arc::new(Wget::with_tool(WgetConfig::default(), "/bin/false"));
    let runner = runner(1);
    let req = DownloadRequest::new("https://example.org/x", "/tmp/x");
    let fut = wget.download(&runner, &req);
    assert_send(&fut);
}
