//! em-lang against fake tools (`fixtures/fake-tool`): the argv and environment each tool
//! got, what `installed` reads from each tool's list, attempts and repairs, and go's
//! uninstall (a file in GOBIN).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use em_exec::{Runner, ToolErrorKind};
use em_lang::{Lang, LangConfig, LangPackage, LangTool};
use em_retry::{Backoff, RetryPolicy};
use em_test_support::{Call, Scene};

fn runner(attempts: u32) -> Runner {
    Runner::new(RetryPolicy::new(attempts).with_backoff(Backoff::Fixed {
        delay: Duration::from_millis(1),
    }))
}

fn lang(scene: &Scene, tool: LangTool, index_url: Option<&str>) -> Arc<Lang> {
    let config = LangConfig {
        index_url: index_url.map(str::to_string),
        env: scene.env().into(),
        run_as: None,
    };
    Arc::new(Lang::with_tool(tool, config, scene.bin().join(tool.key())))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn packages(tool: LangTool, specs: &[&str]) -> Vec<LangPackage> {
    specs
        .iter()
        .map(|s| LangPackage::parse(tool, s).expect("valid"))
        .collect()
}

#[tokio::test]
async fn each_tools_list_is_read_by_the_names_packages_get() {
    let scene = Scene::new(
        &["pipx", "cargo", "gem"],
        r#"
[[call]]
tool = "pipx"
stdout = '{"pipx_spec_version": "0.1", "venvs": {"Black": {}, "ruff": {}}}'

[[call]]
tool = "cargo"
stdout = "bat v0.24.0:\n    bat\nripgrep v14.1.0:\n    rg\nlocal-tool v0.1.0 (/src/local-tool):\n    lt\n"

[[call]]
tool = "gem"
stdout = "\n*** LOCAL GEMS ***\n\nbigdecimal (default: 3.1.1)\nbundler (2.5.11, default: 2.4.19)\nrake (13.2.1)\n"
"#,
    );
    assert_eq!(
        lang(&scene, LangTool::Pipx, None)
            .installed()
            .await
            .expect("pipx"),
        set(&["black", "ruff"])
    );
    assert_eq!(
        lang(&scene, LangTool::Cargo, None)
            .installed()
            .await
            .expect("cargo"),
        set(&["bat", "local-tool", "ripgrep"])
    );
    assert_eq!(
        lang(&scene, LangTool::Gem, None)
            .installed()
            .await
            .expect("gem"),
        set(&["bigdecimal", "bundler", "rake"])
    );
    let lines: Vec<String> = scene.calls().iter().map(Call::line).collect();
    assert_eq!(
        lines,
        [
            "pipx list --json",
            "cargo install --list",
            "gem list --local"
        ]
    );
}

#[tokio::test]
async fn a_list_that_fails_or_is_not_json_is_an_error_not_an_empty_list() {
    let scene = Scene::new(
        &["pipx", "gem"],
        "[[call]]\ntool = \"pipx\"\nstdout = \"venvs are in /root/.local/pipx/venvs\"\n\n[[call]]\ntool = \"gem\"\nexit = 1\nstderr = \"ERROR:  While executing gem ... (Gem::Exception)\"\n",
    );
    assert!(
        lang(&scene, LangTool::Pipx, None)
            .installed()
            .await
            .is_err()
    );
    let err = lang(&scene, LangTool::Gem, None)
        .installed()
        .await
        .expect_err("gem failed");
    assert!(err.to_string().contains("exited with 1"), "{err}");
}

#[tokio::test]
async fn pipx_gets_one_argument_per_package_and_pips_environment() {
    let scene = Scene::new(&["pipx"], "");
    let pipx = lang(
        &scene,
        LangTool::Pipx,
        Some("http://127.0.0.1:18765/simple/"),
    );
    pipx.install(
        &runner(2),
        &packages(LangTool::Pipx, &["black", "uvicorn[standard]>=0.29,<1"]),
    )
    .await
    .expect("installs");
    let calls = scene.calls();
    // Debian's pipx 1.1 takes one package per `pipx install`.
    assert_eq!(calls[0].args, ["install", "black"]);
    assert_eq!(calls[1].args, ["install", "uvicorn[standard]>=0.29,<1"]);
    assert_eq!(
        calls[0].env["PIP_INDEX_URL"],
        "http://127.0.0.1:18765/simple/"
    );
    assert_eq!(calls[0].env["PIP_RETRIES"], "1");
    assert_eq!(calls[0].env["PIP_DEFAULT_TIMEOUT"], "30");
    // pipx uninstall takes one package at a time.
    pipx.uninstall(&runner(1), &["black".into(), "uvicorn".into()])
        .await
        .expect("uninstalls");
    let lines: Vec<String> = scene.calls().iter().skip(2).map(Call::line).collect();
    assert_eq!(lines, ["pipx uninstall black", "pipx uninstall uvicorn"]);
}

#[tokio::test]
async fn a_permanent_cargo_failure_is_one_attempt_and_a_transient_one_exhausts_the_policy() {
    let scene = Scene::new(
        &["cargo"],
        r#"
[[call]]
tool = "cargo"
match = "nope"
exit = 101
stderr = "error: could not find `nope` in registry `crates-io` with version `*`\n"

[[call]]
tool = "cargo"
match = "ripgrep"
exit = 101
stderr = "error: failed to download from `http://127.0.0.1:18765/api/v1/crates/ripgrep/14.1.0/download`\n\nCaused by:\n  [28] Timeout was reached\n"
"#,
    );
    let cargo = lang(&scene, LangTool::Cargo, None);
    let err = cargo
        .install(&runner(4), &packages(LangTool::Cargo, &["nope"]))
        .await
        .expect_err("permanent");
    assert_eq!(err.attempts, 1);
    assert!(matches!(err.kind, ToolErrorKind::Permanent), "{err:?}");
    let err = cargo
        .install(&runner(3), &packages(LangTool::Cargo, &["ripgrep@14.1.0"]))
        .await
        .expect_err("exhausted");
    assert_eq!(err.attempts, 3);
    assert_eq!(err.exit_code(), 75);
    assert_eq!(scene.calls().len(), 4);
    assert_eq!(scene.calls()[1].env["CARGO_NET_RETRY"], "1");
}

#[tokio::test]
async fn pipx_says_where_its_home_and_bin_dir_are() {
    let scene = Scene::new(
        &["pipx"],
        "[[call]]\ntool = \"pipx\"\nmatch = \"^environment --value PIPX_HOME$\"\ntimes = 1\nstdout = \"/home/u/.local/pipx\\n\"\n\n\
         [[call]]\ntool = \"pipx\"\nmatch = \"^environment --value PIPX_BIN_DIR$\"\nstdout = \"/home/u/.local/bin\\n\"\n\n\
         [[call]]\ntool = \"pipx\"\nmatch = \"^environment --value PIPX_HOME$\"\nstdout = \"relative\\n\"\n",
    );
    let pipx = lang(&scene, LangTool::Pipx, None);
    assert_eq!(
        pipx.pipx_dirs().await.expect("both"),
        ("/home/u/.local/pipx".into(), "/home/u/.local/bin".into())
    );
    // A relative answer is no answer: nothing is recorded from it.
    let err = pipx.pipx_dirs().await.expect_err("not absolute");
    assert!(err.to_string().contains("PIPX_HOME"), "{err}");
}

#[tokio::test]
async fn go_lists_and_uninstalls_the_binaries_of_its_gobin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gobin = dir.path().join("bin");
    let scene = Scene::new(
        &["go"],
        &format!(
            "[[call]]\ntool = \"go\"\nmatch = \"^env \"\nstdout = \"\\n{gopath}\\n\"\n\n[[call]]\ntool = \"go\"\nmatch = \"^install \"\ntouch = [\"{gobin}/gopls\"]\n",
            gopath = dir.path().display(),
            gobin = gobin.display()
        ),
    );
    let go = lang(&scene, LangTool::Go, None);
    // No GOBIN: GOPATH's bin, which does not exist yet: nothing installed.
    assert_eq!(go.go_bin().await.expect("bin"), gobin);
    assert_eq!(go.installed().await.expect("empty"), set(&[]));
    go.install(
        &runner(1),
        &packages(LangTool::Go, &["golang.org/x/tools/gopls@v0.16.2"]),
    )
    .await
    .expect("installs");
    std::fs::write(gobin.join("dlv"), "another").expect("another binary");
    assert_eq!(go.installed().await.expect("two"), set(&["dlv", "gopls"]));
    go.uninstall(&runner(1), &["gopls".into()])
        .await
        .expect("deleted");
    assert_eq!(go.installed().await.expect("one"), set(&["dlv"]));
    // A name that is not one file name in GOBIN is refused before anything is deleted.
    std::fs::write(dir.path().join("outside"), "not go's").expect("a file beside GOBIN");
    assert!(
        go.uninstall(&runner(1), &["../outside".into()])
            .await
            .is_err()
    );
    assert!(
        dir.path().join("outside").exists(),
        "nothing outside GOBIN is deleted"
    );
    assert!(go.uninstall(&runner(1), &["-rf".into()]).await.is_err());
}

#[tokio::test]
async fn packages_of_another_tool_are_refused() {
    let scene = Scene::new(&["gem"], "");
    let gem = lang(&scene, LangTool::Gem, None);
    let err = gem
        .install(&runner(1), &packages(LangTool::Cargo, &["ripgrep"]))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("is a cargo package"), "{err}");
    assert!(scene.calls().is_empty());
}

#[tokio::test]
async fn each_tools_list_gives_the_versions_it_shows() {
    let scene = Scene::new(
        &["pipx", "cargo", "gem"],
        r#"
[[call]]
tool = "pipx"
stdout = '{"pipx_spec_version": "0.1", "venvs": {"Black": {"metadata": {"main_package": {"package": "black", "package_version": "24.10.0"}}}, "odd": {}}}'

[[call]]
tool = "cargo"
stdout = "ripgrep v14.1.0:\n    rg\nlocal-tool v0.1.0 (/src/local-tool):\n    lt\n"

[[call]]
tool = "gem"
stdout = "\n*** LOCAL GEMS ***\n\nbigdecimal (default: 3.1.1)\nbundler (2.5.11, default: 2.4.19)\n"
"#,
    );
    let versions = |pairs: &[(&str, Option<&str>)]| {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        lang(&scene, LangTool::Pipx, None)
            .installed_versions()
            .await
            .expect("pipx"),
        versions(&[("black", Some("24.10.0")), ("odd", None)])
    );
    assert_eq!(
        lang(&scene, LangTool::Cargo, None)
            .installed_versions()
            .await
            .expect("cargo"),
        versions(&[("local-tool", Some("0.1.0")), ("ripgrep", Some("14.1.0"))])
    );
    assert_eq!(
        lang(&scene, LangTool::Gem, None)
            .installed_versions()
            .await
            .expect("gem"),
        versions(&[("bigdecimal", Some("3.1.1")), ("bundler", Some("2.5.11"))])
    );
}
