//! The apt adapter end to end, with `em-fake-tool` standing in for apt-get, dpkg and
//! dpkg-query: attempts, repairs (which commands ran, in what order), errors, argv and
//! environment. Millisecond backoff; nothing touches the machine's apt.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use em_apt::{Apt, AptConfig, AptDirs, AptPackage};
use em_exec::{Runner, ToolErrorKind};
use em_retry::{Backoff, RetryPolicy};
use em_test_support::Call;

/// A scene with `bin/` (the stand-ins), an apt sources tree and a lists dir.
struct Scene {
    scene: em_test_support::Scene,
}

impl Scene {
    fn new(scenario: &str) -> Scene {
        let scene = em_test_support::Scene::new(&["apt-get", "dpkg", "dpkg-query"], scenario);
        let dir = scene.path();
        std::fs::create_dir_all(dir.join("etc/sources.list.d")).expect("etc");
        std::fs::write(
            dir.join("etc/sources.list"),
            "deb http://127.0.0.1:9/debian bookworm main\n",
        )
        .expect("sources");
        std::fs::create_dir_all(dir.join("lists/partial")).expect("lists");
        Scene { scene }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.scene.path().join(p)
    }

    /// Makes the lists look freshly updated.
    fn fresh_lists(&self) -> &Self {
        std::fs::write(
            self.path("lists/127.0.0.1:9_debian_dists_bookworm_InRelease"),
            "",
        )
        .expect("list");
        self
    }

    fn config(&self) -> AptConfig {
        AptConfig {
            env: self.scene.env().into(),
            dirs: Some(AptDirs {
                source_list: self.path("etc/sources.list"),
                source_parts: self.path("etc/sources.list.d"),
                lists: self.path("lists"),
            }),
            ..AptConfig::default()
        }
    }

    fn apt(&self, config: AptConfig) -> Arc<Apt> {
        Arc::new(Apt::with_tools(
            config,
            self.scene.bin().join("apt-get"),
            self.scene.bin().join("dpkg"),
            self.scene.bin().join("dpkg-query"),
        ))
    }

    /// Every call, checked for the non-interactive environment every command must get.
    fn calls(&self) -> Vec<Call> {
        let calls = self.scene.calls();
        for call in &calls {
            assert_eq!(
                call.env.get("LC_ALL").map(String::as_str),
                Some("C"),
                "{call:?}"
            );
            assert_eq!(
                call.env.get("DEBIAN_FRONTEND").map(String::as_str),
                Some("noninteractive"),
                "{call:?}"
            );
            if call.tool == "apt-get" && call.args.first().is_some_and(|a| a == "update") {
                assert!(
                    call.has("--error-on=any"),
                    "update without --error-on=any: {call:?}"
                );
            }
        }
        calls
    }

    fn lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }
}

fn runner(attempts: u32) -> Runner {
    Runner::new(RetryPolicy::new(attempts).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(1),
    }))
}

fn pkgs(names: &[&str]) -> Vec<AptPackage> {
    names
        .iter()
        .map(|n| AptPackage::parse(n).expect("valid"))
        .collect()
}

#[tokio::test]
async fn lock_held_twice_then_success_is_three_attempts_and_no_repair() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^install "
times = 2
exit = 100
output = "apt-get/install-lock-frontend.txt"
"#,
    );
    let apt = scene.apt(scene.config());
    apt.install(&runner(4), &pkgs(&["em-fixture-hello"]))
        .await
        .expect("third attempt succeeds");
    let calls = scene.calls();
    assert_eq!(calls.len(), 3, "{:?}", scene.lines());
    for call in &calls {
        assert_eq!(call.tool, "apt-get");
        assert_eq!(call.args[0], "install");
        for arg in [
            "-y",
            "-q",
            "--no-install-recommends",
            "Acquire::Retries=3",
            "Acquire::Retries::Delay::Maximum=0",
            "Acquire::http::Timeout=30",
            "Acquire::https::Timeout=30",
            "DPkg::Lock::Timeout=120",
            "Dpkg::Options::=--force-confdef",
            "Dpkg::Options::=--force-confold",
        ] {
            assert!(call.has(arg), "{arg} missing: {}", call.line());
        }
        assert_eq!(
            call.args.last().map(String::as_str),
            Some("em-fixture-hello")
        );
    }
}

#[tokio::test]
async fn dpkg_was_interrupted_runs_configure_once_before_the_second_attempt() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^install "
times = 1
exit = 100
output = "apt-get/install-dpkg-was-interrupted.txt"
"#,
    );
    let apt = scene.apt(scene.config());
    apt.install(&runner(4), &pkgs(&["em-fixture-hello"]))
        .await
        .expect("repaired");
    let calls = scene.calls();
    let summary: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.tool, c.args[..2].join(" ")))
        .collect();
    assert_eq!(
        summary,
        [
            "apt-get install -y",
            "dpkg --configure -a",
            "apt-get -f install",
            "apt-get install -y"
        ]
    );
    assert!(calls[2].has("-y") && calls[2].has("DPkg::Lock::Timeout=120"));
}

#[tokio::test]
async fn hash_sum_mismatch_clears_the_lists_updates_and_installs() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^install "
times = 1
exit = 100
output = "apt-get/install-deb-hash-sum-mismatch.txt"
"#,
    );
    std::fs::write(scene.path("lists/partial/Packages.gz"), "half").expect("partial");
    let apt = scene.apt(scene.config());
    apt.install(&runner(4), &pkgs(&["em-fixture-hello"]))
        .await
        .expect("repaired");
    let firsts: Vec<String> = scene.calls().iter().map(|c| c.args[0].clone()).collect();
    assert_eq!(firsts, ["install", "clean", "update", "install"]);
    assert!(
        !scene.path("lists/partial/Packages.gz").exists(),
        "lists/partial not cleared"
    );
    assert!(
        scene.path("lists/partial").is_dir(),
        "partial/ itself stays"
    );
}

#[tokio::test]
async fn hash_sum_mismatch_during_update_does_not_update_twice() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^update "
times = 1
exit = 100
output = "apt-get/update-hash-sum-mismatch.txt"
"#,
    );
    let apt = scene.apt(scene.config());
    apt.update(&runner(4)).await.expect("repaired");
    let firsts: Vec<String> = scene.calls().iter().map(|c| c.args[0].clone()).collect();
    assert_eq!(firsts, ["update", "clean", "update"]);
    assert!(
        apt.lists_are_fresh(),
        "a successful update makes the lists fresh"
    );
}

#[tokio::test]
async fn unable_to_locate_with_fresh_lists_is_permanent_at_once() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^install "
exit = 100
stderr = "E: Unable to locate package em-nope\n"
stdout = "Reading package lists...\nBuilding dependency tree...\n"
"#,
    );
    scene.fresh_lists();
    let apt = scene.apt(scene.config());
    let err = apt
        .install(&runner(4), &pkgs(&["em-nope"]))
        .await
        .expect_err("no such package");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 1);
    assert_eq!(err.exit_code(), 1);
    assert!(err.reason.contains("`em-nope`"), "{}", err.reason);
    assert!(err.hint.is_some());
    assert_eq!(err.operation, "apt install em-nope");
    assert_eq!(scene.calls().len(), 1);
}

#[tokio::test]
async fn unable_to_locate_with_stale_lists_updates_once_then_fails() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^install "
exit = 100
stderr = "E: Unable to locate package em-nope\n"
"#,
    );
    let apt = scene.apt(scene.config());
    let err = apt
        .install(&runner(4), &pkgs(&["em-nope"]))
        .await
        .expect_err("still missing after the update");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 2);
    assert!(err.reason.contains("`em-nope`"), "{}", err.reason);
    let firsts: Vec<String> = scene.calls().iter().map(|c| c.args[0].clone()).collect();
    assert_eq!(firsts, ["install", "update", "install"]);
}

#[tokio::test]
async fn update_503_five_times_with_four_attempts_is_exhausted_75() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^update "
times = 5
exit = 100
output = "apt-get/update-503.txt"
"#,
    );
    let apt = scene.apt(scene.config());
    let err = apt.update(&runner(4)).await.expect_err("exhausted");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.exit_code(), 75);
    assert_eq!(err.attempts, 4);
    assert_eq!(err.reason, "503 Service Unavailable from 127.0.0.1:18765");
    let calls = scene.calls();
    assert_eq!(calls.len(), 4);
    for call in &calls {
        for arg in [
            "--error-on=any",
            "-q",
            "Acquire::Retries=3",
            "Acquire::Retries::Delay::Maximum=0",
            "Acquire::http::Timeout=30",
            "Acquire::https::Timeout=30",
            "DPkg::Lock::Timeout=120",
        ] {
            assert!(call.has(arg), "{arg} missing: {}", call.line());
        }
        assert!(!call.args.iter().any(|a| a.contains("SourceList")));
    }
    assert!(!apt.lists_are_fresh());
}

#[tokio::test]
async fn exhausted_primary_falls_back_to_a_mirror_through_a_temporary_source_list() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "Dir::Etc::SourceList="
stdout = "Hit:1 http://127.0.0.1:8080/debian bookworm InRelease\nReading package lists...\n"

[[call]]
tool = "apt-get"
match = "^update "
exit = 100
output = "apt-get/update-503.txt"
"#,
    );
    let before = std::fs::read_to_string(scene.path("etc/sources.list")).expect("sources");
    let mirror = "http://127.0.0.1:8080/debian";
    let config = AptConfig {
        mirrors: vec![mirror.into()],
        ..scene.config()
    };
    let apt = scene.apt(config);
    apt.update(&runner(2)).await.expect("the mirror works");
    assert_eq!(apt.active_mirror().as_deref(), Some(mirror));

    let calls = scene.calls();
    assert_eq!(calls.len(), 3, "{:?}", scene.lines());
    assert!(
        calls[..2]
            .iter()
            .all(|c| !c.args.iter().any(|a| a.contains("Dir::Etc")))
    );
    let value = |prefix: &str| {
        calls[2]
            .args
            .iter()
            .find_map(|a| a.strip_prefix(prefix))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{prefix} missing: {}", calls[2].line()))
    };
    let list = value("Dir::Etc::SourceList=");
    let parts = value("Dir::Etc::SourceParts=");
    for path in [&list, &parts] {
        assert!(!path.starts_with("/etc"), "{}", path.display());
        assert!(!path.starts_with(scene.path("etc")), "{}", path.display());
    }
    let text = std::fs::read_to_string(&list).expect("the temporary list exists");
    assert!(
        text.contains("deb http://127.0.0.1:8080/debian bookworm main\n"),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1:9"), "{text}");
    assert_eq!(
        std::fs::read_dir(&parts).expect("parts dir").count(),
        0,
        "no deb822 sources: the parts dir is empty"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("etc/sources.list")).expect("sources"),
        before,
        "the machine's sources are untouched"
    );

    // Packages then come from where the lists came from.
    apt.install(&runner(2), &pkgs(&["em-fixture-hello"]))
        .await
        .expect("install");
    let install = scene.calls().pop().expect("install call");
    assert!(
        install
            .args
            .contains(&format!("Dir::Etc::SourceList={}", list.display())),
        "{}",
        install.line()
    );
    drop(apt);
    assert!(!list.exists(), "the temporary sources go with the adapter");
}

#[tokio::test]
async fn mirrors_with_unreadable_sources_say_so() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^update "
exit = 100
output = "apt-get/update-503.txt"
"#,
    );
    std::fs::write(scene.path("etc/sources.list"), "deb\n").expect("broken sources");
    let config = AptConfig {
        mirrors: vec!["http://127.0.0.1:8080/debian".into()],
        ..scene.config()
    };
    let err = scene
        .apt(config)
        .update(&runner(2))
        .await
        .expect_err("primary down, no mirror usable");
    assert_eq!(err.kind, ToolErrorKind::Exhausted);
    assert_eq!(err.attempts, 2);
    let hint = err.hint.expect("hint");
    assert!(hint.contains("mirrors not used"), "{hint}");
    assert!(hint.contains("sources.list:1"), "{hint}");
}

#[tokio::test]
async fn remove_and_is_installed() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "dpkg-query"
match = "em-yes$"
stdout = "install ok installed\t1.0\n"

[[call]]
tool = "dpkg-query"
match = "em-gone$"
stdout = "deinstall ok config-files\t1.0\n"

[[call]]
tool = "dpkg-query"
match = "em-no$"
exit = 1
stderr = "dpkg-query: no packages found matching em-no\n"
"#,
    );
    let apt = scene.apt(scene.config());
    let installed = |name: &str| {
        let apt = apt.clone();
        let p = AptPackage::parse(name).expect("valid");
        async move { apt.is_installed(&p).await.expect("query") }
    };
    assert!(installed("em-yes").await);
    assert!(installed("em-yes=1.0").await);
    assert!(!installed("em-yes=2.0").await);
    assert!(!installed("em-gone").await);
    assert!(!installed("em-no").await);
    apt.remove(&runner(2), &pkgs(&["em-yes"]))
        .await
        .expect("removed");
    let calls = scene.calls();
    assert_eq!(
        calls[0].args,
        ["-W", "-f", "${Status}\t${Version}\n", "em-yes"]
    );
    let remove = calls.last().expect("remove");
    assert_eq!(remove.args[..3], ["remove", "-y", "-q"]);
    assert!(remove.has("DPkg::Lock::Timeout=120"));
    assert_eq!(remove.args.last().map(String::as_str), Some("em-yes"));
}

#[tokio::test]
async fn a_repair_that_fails_is_reported_and_the_failure_becomes_permanent() {
    let scene = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^install "
exit = 100
output = "apt-get/install-postinst-fails-subprocess-error.txt"

[[call]]
tool = "dpkg"
match = "^--configure -a"
exit = 1
output = "dpkg/configure-a-postinst-fails.txt"
"#,
    );
    let apt = scene.apt(scene.config());
    let err = apt
        .install(&runner(4), &pkgs(&["em-fixture-postinst-fail"]))
        .await
        .expect_err("the maintainer script keeps failing");
    assert_eq!(err.kind, ToolErrorKind::Permanent);
    assert_eq!(err.attempts, 2);
    assert!(
        err.reason
            .contains("still failing after dpkg --configure -a"),
        "{}",
        err.reason
    );
    let firsts: Vec<String> = scene
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.tool, c.args[0]))
        .collect();
    // The repair stops at the failing `dpkg --configure -a`.
    assert_eq!(
        firsts,
        ["apt-get install", "dpkg --configure", "apt-get install"]
    );
}

/// The shell helpers' old contract: an update that failed only on a source other than the
/// primary archive (127.0.0.1:9 here) counts as done and names what failed; one whose
/// primary failed stays the error it was.
#[tokio::test]
async fn a_lenient_update_tolerates_a_stale_third_party_source_only() {
    let third_party = r#"
[[call]]
tool = "apt-get"
match = "^update "
exit = 100
stdout = "Hit:1 http://127.0.0.1:9/debian bookworm InRelease\nErr:2 http://ppa.invalid/x ./ InRelease\n"
stderr = "E: Failed to fetch http://ppa.invalid/x/./InRelease  404  Not Found [IP: 127.0.0.1 80]\nE: Some index files failed to download. They have been ignored, or old ones used instead.\n"
"#;
    let scene = Scene::new(third_party);
    let apt = scene.apt(scene.config());
    let failed = apt.update_lenient(&runner(2)).await.expect("lenient");
    assert_eq!(failed, ["http://ppa.invalid/x/./InRelease"]);
    let strict = Scene::new(third_party);
    let apt = strict.apt(strict.config());
    assert!(
        apt.update(&runner(2)).await.is_err(),
        "the strict update still fails"
    );

    let primary = Scene::new(
        r#"
[[call]]
tool = "apt-get"
match = "^update "
exit = 100
stderr = "E: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  503  Service Unavailable [IP: 127.0.0.1 9]\nE: Some index files failed to download. They have been ignored, or old ones used instead.\n"
"#,
    );
    let apt = primary.apt(primary.config());
    assert!(
        apt.update_lenient(&runner(2)).await.is_err(),
        "the primary failed"
    );
}
