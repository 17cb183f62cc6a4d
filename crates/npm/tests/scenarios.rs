//! em-npm end to end against the fake npm (`fixtures/fake-tool`): attempts, repairs, the
//! argv and environment npm got, and the error the user sees.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use em_exec::{Runner, ToolErrorKind};
use em_npm::{Npm, NpmConfig, NpmPackage};
use em_retry::{Backoff, RetryPolicy};
use em_test_support::{Call, Scene};

/// A scene with `bin/npm -> em-fake-tool`.
struct Fake {
    scene: Scene,
}

impl Fake {
    fn new(scenario: &str) -> Self {
        Fake {
            scene: Scene::new(&["npm"], scenario),
        }
    }

    fn path(&self) -> &Path {
        self.scene.path()
    }

    fn npm(&self, mut config: NpmConfig) -> Arc<Npm> {
        config.env.extend(self.scene.env());
        Arc::new(Npm::with_tool(config, self.scene.bin().join("npm")).expect("valid config"))
    }

    /// Every call, in order.
    fn calls(&self) -> Vec<Call> {
        self.scene.calls()
    }

    /// The calls as `npm <args>` lines.
    fn call_lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }
}

fn runner(attempts: u32) -> Runner {
    Runner::new(RetryPolicy::new(attempts).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(1),
    }))
}

fn packages(names: &[&str]) -> Vec<NpmPackage> {
    names
        .iter()
        .map(|n| NpmPackage::parse(n).expect("valid"))
        .collect()
}

#[tokio::test]
async fn econnreset_five_times_with_four_attempts_is_exit_75() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "npm"
match = "^install "
times = 5
exit = 1
output = "npm/econnreset.txt"
"#,
    );
    let npm = fake.npm(NpmConfig {
        registry: Some("http://127.0.0.1:18765/npm/".into()),
        prefix: Some(fake.path().join("prefix")),
        cache: Some(fake.path().join("cache")),
        fetch_timeout: Duration::from_secs(30),
        ..NpmConfig::default()
    });
    let err = npm
        .install_global(&runner(4), &packages(&["typescript@5", "@types/node"]))
        .await
        .expect_err("exhausted");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.exit_code(), 75);
    assert_eq!(err.attempts, 4);
    assert_eq!(err.operation, "npm install -g typescript@5 @types/node");
    assert_eq!(
        err.reason,
        "connection reset (ECONNRESET) at 127.0.0.1:18765"
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 4);
    let prefix = fake.path().join("prefix");
    let cache = fake.path().join("cache");
    for Call { tool, args, env } in &calls {
        assert_eq!(tool, "npm");
        assert_eq!(
            *args,
            [
                "install".to_string(),
                "-g".into(),
                "--no-audit".into(),
                "--no-fund".into(),
                "--no-update-notifier".into(),
                "--no-progress".into(),
                "--color=false".into(),
                "--loglevel=warn".into(),
                "--fetch-timeout=30000".into(),
                "--fetch-retries=1".into(),
                "--fetch-retry-mintimeout=1000".into(),
                "--fetch-retry-maxtimeout=5000".into(),
                "--registry=http://127.0.0.1:18765/npm/".into(),
                format!("--prefix={}", prefix.display()),
                format!("--cache={}", cache.display()),
                "typescript@5".into(),
                "@types/node".into(),
            ]
        );
        assert_eq!(env["LC_ALL"], "C");
    }
}

#[tokio::test]
async fn e404_fails_after_one_attempt_naming_the_package() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "npm"
match = "^install "
exit = 1
output = "npm/e404-unknown-package.txt"
"#,
    );
    let npm = fake.npm(NpmConfig {
        mirrors: vec!["http://127.0.0.1:9/mirror/".into()],
        ..NpmConfig::default()
    });
    let err = npm
        .install_global(&runner(4), &packages(&["em-fixture-no-such-package"]))
        .await
        .expect_err("permanent");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.attempts, 1);
    assert!(
        err.reason
            .contains("`em-fixture-no-such-package@*` not found"),
        "{}",
        err.reason
    );
    assert!(err.hint.is_some());
    // Permanent: the mirror is not tried; no registry was configured, so none is passed.
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].args.iter().any(|a| a.starts_with("--registry")));
}

#[tokio::test]
async fn eintegrity_once_verifies_and_cleans_the_cache_then_succeeds() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "npm"
match = "^install "
times = 1
exit = 1
output = "npm/eintegrity.txt"
"#,
    );
    let npm = fake.npm(NpmConfig {
        cache: Some(fake.path().join("cache")),
        ..NpmConfig::default()
    });
    npm.install_global(&runner(4), &packages(&["em-fixture-badint"]))
        .await
        .expect("second attempt succeeds");
    let lines = fake.call_lines();
    let cache = format!("--cache={}", fake.path().join("cache").display());
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines[0].starts_with("npm install -g "), "{}", lines[0]);
    assert_eq!(
        lines[1],
        format!("npm cache verify --no-update-notifier --color=false --loglevel=warn {cache}")
    );
    assert_eq!(
        lines[2],
        format!(
            "npm cache clean --force --no-update-notifier --color=false --loglevel=warn {cache}"
        )
    );
    assert!(lines[3].starts_with("npm install -g "), "{}", lines[3]);
}

#[tokio::test]
async fn eintegrity_twice_is_permanent_after_one_repair() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "npm"
match = "^install "
exit = 1
output = "npm/eintegrity.txt"
"#,
    );
    let npm = fake.npm(NpmConfig::default());
    let err = npm
        .install_global(&runner(5), &packages(&["em-fixture-badint"]))
        .await
        .expect_err("the registry's integrity is wrong");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 2);
    assert!(
        err.reason.contains("still failing after npm cache verify"),
        "{}",
        err.reason
    );
}

#[tokio::test]
async fn enotempty_removes_the_stale_directory_then_succeeds() {
    let fake = Fake::new("");
    let prefix = fake.path().join("prefix");
    let node_modules = prefix.join("lib/node_modules");
    let installed = node_modules.join("em-fixture-hello");
    let stale = node_modules.join(".em-fixture-hello-KpHcVOmw");
    let other_stale = node_modules.join(".em-fixture-hello-a1b2c3d4");
    let unrelated = node_modules.join(".other-KpHcVOmw");
    for dir in [&installed, &stale, &other_stale, &unrelated] {
        std::fs::create_dir_all(dir.join("lib")).expect("mkdir");
        std::fs::write(dir.join("package.json"), "{}").expect("write");
    }
    let message = format!(
        "npm error code ENOTEMPTY\n\
         npm error syscall rename\n\
         npm error path {installed}\n\
         npm error dest {stale}\n\
         npm error errno -39\n\
         npm error ENOTEMPTY: directory not empty, rename '{installed}' -> '{stale}'\n",
        installed = installed.display(),
        stale = stale.display()
    );
    let scenario = format!(
        "[[call]]\ntool = \"npm\"\nmatch = \"^install \"\ntimes = 1\nexit = 217\nstderr = '''{message}'''\n"
    );
    fake.scene.write_scenario(&scenario);
    let npm = fake.npm(NpmConfig {
        prefix: Some(prefix.clone()),
        ..NpmConfig::default()
    });
    npm.install_global(&runner(4), &packages(&["em-fixture-hello"]))
        .await
        .expect("second attempt succeeds");
    assert!(!stale.exists(), "the stale directory is gone");
    assert!(!other_stale.exists(), "its sibling of the same package too");
    assert!(installed.exists(), "the installed package stays");
    assert!(unrelated.exists(), "another package's directory stays");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("npm install -g ")));
}

#[tokio::test]
async fn enotempty_outside_the_prefix_is_not_removed() {
    let fake = Fake::new("");
    let prefix = fake.path().join("prefix");
    std::fs::create_dir_all(prefix.join("lib/node_modules")).expect("mkdir");
    let elsewhere = fake
        .path()
        .join("elsewhere/lib/node_modules/.victim-KpHcVOmw");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let scenario = format!(
        "[[call]]\ntool = \"npm\"\nmatch = \"^install \"\nexit = 217\nstderr = '''npm error code ENOTEMPTY\nnpm error dest {}\n'''\n",
        elsewhere.display()
    );
    fake.scene.write_scenario(&scenario);
    let npm = fake.npm(NpmConfig {
        prefix: Some(prefix),
        ..NpmConfig::default()
    });
    let err = npm
        .install_global(&runner(4), &packages(&["victim"]))
        .await
        .expect_err("repair refused, then permanent");
    assert!(elsewhere.exists());
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 2);
}

#[tokio::test]
async fn exhausted_primary_registry_falls_back_to_the_mirror() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "npm"
match = "--registry=http://127.0.0.1:18765/primary/"
exit = 1
output = "npm/e503.txt"
"#,
    );
    let npm = fake.npm(NpmConfig {
        registry: Some("http://127.0.0.1:18765/primary/".into()),
        mirrors: vec!["http://127.0.0.2:18766/mirror/".into()],
        ..NpmConfig::default()
    });
    let notices = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = notices.clone();
    let runner = runner(2).on_mirror(Arc::new(move |from: &str, to: &str, _why: &str| {
        sink.lock().expect("lock").push(format!("{from} -> {to}"))
    }));
    npm.install_global(&runner, &packages(&["typescript"]))
        .await
        .expect("the mirror works");
    let registries: Vec<String> = fake
        .calls()
        .into_iter()
        .map(|call| {
            call.args
                .into_iter()
                .find(|a| a.starts_with("--registry="))
                .expect("a registry flag")
        })
        .collect();
    assert_eq!(
        registries,
        [
            "--registry=http://127.0.0.1:18765/primary/",
            "--registry=http://127.0.0.1:18765/primary/",
            "--registry=http://127.0.0.2:18766/mirror/"
        ]
    );
    assert_eq!(
        *notices.lock().expect("lock"),
        ["http://127.0.0.1:18765/primary/ -> http://127.0.0.2:18766/mirror/"]
    );
}

#[tokio::test]
async fn ls_and_uninstall() {
    let fake = Fake::new(
        r#"
[[call]]
tool = "npm"
match = "^ls "
exit = 1
stdout = '{"name":"lib","dependencies":{"typescript":{"version":"5.4.5"},"@angular/cli":{"version":"17.0.0"},"gone":{"missing":true}}}'
stderr = "npm error code ELSPROBLEMS\n"
"#,
    );
    let npm = fake.npm(NpmConfig {
        prefix: Some(fake.path().join("prefix")),
        ..NpmConfig::default()
    });
    let listed = npm.ls_global().await.expect("json despite exit 1");
    assert_eq!(
        listed,
        [
            ("@angular/cli".to_string(), "17.0.0".to_string()),
            ("typescript".to_string(), "5.4.5".to_string())
        ]
    );
    npm.uninstall_global(&runner(2), &packages(&["typescript@5"]))
        .await
        .expect("uninstalled");
    let lines = fake.call_lines();
    assert_eq!(
        lines[0],
        format!(
            "npm ls -g --depth=0 --json --color=false --prefix={}",
            fake.path().join("prefix").display()
        )
    );
    assert!(lines[1].starts_with("npm uninstall -g "), "{}", lines[1]);
    assert!(lines[1].ends_with(" typescript"), "{}", lines[1]);
}
