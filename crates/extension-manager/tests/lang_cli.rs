//! `pipx`, `cargo`, `gem` and `go` steps end to end against fake tools: the argv each tool
//! got, the exit codes, what the state records as added, and `remove` taking back only that.

mod common;

use std::fs;

use common::{Session, stderr, stdout};

/// A millisecond policy: no real seconds in tests.
const RETRY: &str = "retry = { attempts = 3, backoff = \"fixed\", delay = \"1ms\" }";

fn write(s: &Session, name: &str, body: &str) {
    s.write_extension(name, "1.0.0", body);
}

fn run(s: &Session, args: &[&str]) -> std::process::Output {
    s.em_extensions()
        .env("EM_REGISTRIES_PIP", "http://127.0.0.1:18765/simple/")
        .args(args)
        .output()
        .expect("extension-manager runs")
}

fn code(s: &Session, args: &[&str]) -> (i32, String) {
    let out = run(s, args);
    (out.status.code().unwrap_or(-1), stderr(&out))
}

fn state(s: &Session) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(s.path().join("state/state.json")).expect("state"))
        .expect("json")
}

/// `(tool, name)` of a record's `added.lang` or `uses.lang`.
fn lang(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["tool"].as_str().expect("tool").to_string(),
                        x["name"].as_str().expect("name").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pair(tool: &str, name: &str) -> (String, String) {
    (tool.to_string(), name.to_string())
}

/// The calls made to `tool`, without pipx's read-only `environment` queries (asked only
/// when pipx's dirs are missing on this machine).
fn lines_of(s: &Session, tool: &str) -> Vec<String> {
    s.calls()
        .into_iter()
        .filter(|(t, a)| t == tool && !a.starts_with("environment "))
        .map(|(_, a)| a)
        .collect()
}

#[test]
fn pipx_retries_a_timeout_records_only_the_new_app_and_remove_takes_back_only_that() {
    // ruff was installed by hand before: the step uses it, but did not add it.
    let scenario = r#"
[[call]]
tool = "pipx"
match = "^list --json$"
stdout = '{"pipx_spec_version": "0.1", "venvs": {"ruff": {"metadata": {}}}}'

[[call]]
tool = "pipx"
match = "^install "
times = 2
exit = 1
stderr = """Fatal error from pip prevented installation. Full pip output in file:
    /root/.local/state/pipx/log/cmd_pip_errors.log

Some possibly relevant errors from pip install:
    pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPConnectionPool(host='127.0.0.1', port=18765): Read timed out.

Error installing black.
"""
"#;
    let s = Session::new(&["pipx"], scenario);
    write(
        &s,
        "py-tools",
        &format!("[[install]]\npipx = [\"black\", \"ruff==0.6.9\"]\n{RETRY}\n"),
    );
    let (exit, err) = code(&s, &["install", "py-tools"]);
    assert_eq!(exit, 0, "{err}");
    assert!(err.contains("network error (ReadTimeoutError)"), "{err}");
    assert_eq!(
        lines_of(&s, "pipx"),
        [
            "list --json",
            // One package per `pipx install` (pipx 1.1); the timeouts hit black's.
            "install black",
            "install black",
            "install black",
            "install ruff==0.6.9",
        ]
    );
    // pip inside pipx gets our index and one retry of its own.
    let envs = s.call_envs();
    assert_eq!(envs[1]["PIP_INDEX_URL"], "http://127.0.0.1:18765/simple/");
    assert_eq!(envs[1]["PIP_RETRIES"], "1");
    let record = &state(&s)["extensions"]["py-tools"];
    assert_eq!(record["status"], "installed");
    assert_eq!(lang(&record["added"]["lang"]), [pair("pipx", "black")]);
    assert_eq!(
        lang(&record["uses"]["lang"]),
        [pair("pipx", "black"), pair("pipx", "ruff")]
    );

    let dry = run(&s, &["remove", "--dry-run", "py-tools"]);
    assert!(
        stdout(&dry).contains("  pipx uninstall black\n"),
        "{}",
        stdout(&dry)
    );
    assert!(!stdout(&dry).contains("ruff"), "{}", stdout(&dry));
    let (exit, err) = code(&s, &["remove", "py-tools"]);
    assert_eq!(exit, 0, "{err}");
    // root's pipx installs system-wide, and remove looks in the same place.
    let envs = s.call_envs();
    let pipx_home = |i: usize| envs[i].get("PIPX_HOME").cloned();
    let last = envs.len() - 1;
    assert_eq!(pipx_home(1), pipx_home(last), "install and uninstall agree");
    if em_exec::is_root() {
        assert_eq!(pipx_home(last).as_deref(), Some("/opt/pipx"));
        assert_eq!(envs[last]["PIPX_BIN_DIR"], "/usr/local/bin");
    }
    let uninstalls: Vec<String> = lines_of(&s, "pipx")
        .into_iter()
        .filter(|a| a.starts_with("uninstall"))
        .collect();
    assert_eq!(uninstalls, ["uninstall black"]);
    assert!(state(&s)["extensions"].get("py-tools").is_none());
}

#[test]
fn a_broken_pipx_venv_is_repaired_with_pipx_reinstall() {
    let scenario = r#"
[[call]]
tool = "pipx"
match = "^list --json$"
stdout = '{"venvs": {}}'

[[call]]
tool = "pipx"
match = "^install "
times = 1
exit = 1
stderr = "/root/.local/pipx/venvs/black/bin/python: No module named pip\n\nError installing black.\n"
"#;
    let s = Session::new(&["pipx"], scenario);
    write(
        &s,
        "fmt",
        &format!("[[install]]\npipx = [\"black\"]\n{RETRY}\n"),
    );
    let (exit, err) = code(&s, &["install", "fmt"]);
    assert_eq!(exit, 0, "{err}");
    assert_eq!(
        lines_of(&s, "pipx"),
        [
            "list --json",
            "install black",
            "reinstall black",
            "install black"
        ]
    );
}

#[test]
fn cargo_install_is_locked_retries_a_503_and_remove_uninstalls_the_crate() {
    let scenario = r#"
[[call]]
tool = "cargo"
match = "^install --list$"
stdout = "bat v0.24.0:\n    bat\n"

[[call]]
tool = "cargo"
match = "^install --locked"
times = 1
exit = 101
stderr = """error: failed to download from `http://127.0.0.1:18765/api/v1/crates/ripgrep/14.1.0/download`

Caused by:
  failed to get successful HTTP response from `http://127.0.0.1:18765/api/v1/crates/ripgrep/14.1.0/download` (127.0.0.1), got 503
"""
"#;
    let s = Session::new(&["cargo"], scenario);
    write(
        &s,
        "rg",
        &format!("[[install]]\ncargo = [\"ripgrep@14.1.0\", \"bat\"]\n{RETRY}\n"),
    );
    let (exit, err) = code(&s, &["install", "rg"]);
    assert_eq!(exit, 0, "{err}");
    assert!(err.contains("HTTP 503 from the registry"), "{err}");
    assert_eq!(
        lines_of(&s, "cargo"),
        [
            "install --list",
            "install --locked ripgrep@14.1.0 bat",
            "install --locked ripgrep@14.1.0 bat",
        ]
    );
    assert_eq!(s.call_envs()[1]["CARGO_NET_RETRY"], "1");
    assert_eq!(
        lang(&state(&s)["extensions"]["rg"]["added"]["lang"]),
        [pair("cargo", "ripgrep")]
    );
    let (exit, err) = code(&s, &["remove", "rg"]);
    assert_eq!(exit, 0, "{err}");
    assert_eq!(
        lines_of(&s, "cargo").last().map(String::as_str),
        Some("uninstall ripgrep")
    );
}

#[test]
fn a_gem_that_does_not_exist_fails_once_with_exit_1_and_records_nothing() {
    let scenario = r#"
[[call]]
tool = "gem"
match = "^list --local$"
stdout = "\n*** LOCAL GEMS ***\n\nbigdecimal (default: 3.1.1)\nrake (13.0.6)\n"

[[call]]
tool = "gem"
match = "^install "
exit = 2
stderr = "ERROR:  Could not find a valid gem 'em-no-such-gem' (= 1.0.0) in any repository\n"
"#;
    let s = Session::new(&["gem"], scenario);
    write(
        &s,
        "ruby-tools",
        &format!("[[install]]\ngem = [\"em-no-such-gem@1.0.0\", \"rake\"]\n{RETRY}\n"),
    );
    let (exit, err) = code(&s, &["install", "ruby-tools"]);
    assert_eq!(exit, 1, "{err}");
    assert!(
        err.contains("Could not find a valid gem 'em-no-such-gem'"),
        "{err}"
    );
    assert!(err.contains("gem search NAME --remote"), "{err}");
    assert_eq!(
        lines_of(&s, "gem"),
        [
            "list --local",
            "install --no-document --conservative em-no-such-gem:1.0.0 rake",
            "list --local",
        ],
        "one attempt: permanent"
    );
    let record = &state(&s)["extensions"]["ruby-tools"];
    assert_eq!(record["status"], "failed");
    assert!(lang(&record["added"]["lang"]).is_empty(), "{record:#}");
}

#[test]
fn go_install_records_the_binary_it_added_to_gobin_and_remove_deletes_only_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gobin = dir.path().join("gobin");
    fs::create_dir_all(&gobin).expect("gobin");
    fs::write(gobin.join("staticcheck"), "installed before").expect("an older binary");
    let scenario = format!(
        r#"
[[call]]
tool = "go"
match = "^env GOBIN GOPATH$"
stdout = "{gobin}\n/root/go\n"

[[call]]
tool = "go"
match = "^install "
times = 1
exit = 1
stderr = "go: golang.org/x/tools/gopls@v0.16.2: golang.org/x/tools/gopls@v0.16.2: read tcp 127.0.0.1:51234->127.0.0.1:18765: read: connection reset by peer\n"

[[call]]
tool = "go"
match = "^install "
touch = ["{gobin}/gopls"]
"#,
        gobin = gobin.display()
    );
    let s = Session::new(&["go"], &scenario);
    write(
        &s,
        "go-tools",
        &format!(
            "[[install]]\ngo = [\"golang.org/x/tools/gopls@v0.16.2\", \"honnef.co/go/tools/cmd/staticcheck@latest\"]\n{RETRY}\n"
        ),
    );
    let (exit, err) = code(&s, &["install", "go-tools"]);
    assert_eq!(exit, 0, "{err}");
    assert!(err.contains("connection reset by peer"), "{err}");
    assert_eq!(
        lines_of(&s, "go"),
        [
            "env GOBIN GOPATH",
            "install golang.org/x/tools/gopls@v0.16.2 honnef.co/go/tools/cmd/staticcheck@latest",
            "install golang.org/x/tools/gopls@v0.16.2 honnef.co/go/tools/cmd/staticcheck@latest",
        ]
    );
    assert!(gobin.join("gopls").exists());
    assert_eq!(
        lang(&state(&s)["extensions"]["go-tools"]["added"]["lang"]),
        [pair("go", "gopls")]
    );
    let dry = run(&s, &["remove", "--dry-run", "go-tools"]);
    assert!(
        stdout(&dry).contains("delete gopls from go's GOBIN"),
        "{}",
        stdout(&dry)
    );
    let (exit, err) = code(&s, &["remove", "go-tools"]);
    assert_eq!(exit, 0, "{err}");
    assert!(
        !gobin.join("gopls").exists(),
        "the binary the install added is gone"
    );
    assert_eq!(
        fs::read_to_string(gobin.join("staticcheck")).expect("kept"),
        "installed before"
    );
}

#[test]
fn a_package_another_installed_extension_uses_stays_on_remove() {
    let scenario = r#"
[[call]]
tool = "pipx"
match = "^list --json$"
times = 1
stdout = '{"venvs": {}}'

[[call]]
tool = "pipx"
match = "^list --json$"
stdout = '{"venvs": {"black": {}}}'
"#;
    let s = Session::new(&["pipx"], scenario);
    write(&s, "a", "[[install]]\npipx = [\"black\"]\n");
    write(&s, "b", "[[install]]\npipx = [\"Black\"]\n");
    assert_eq!(code(&s, &["install", "a"]).0, 0);
    assert_eq!(code(&s, &["install", "b"]).0, 0);
    assert_eq!(
        lang(&state(&s)["extensions"]["b"]["added"]["lang"]),
        [],
        "b found black installed"
    );
    let (exit, err) = code(&s, &["remove", "a"]);
    assert_eq!(exit, 0, "{err}");
    assert!(
        lines_of(&s, "pipx")
            .iter()
            .all(|a| !a.starts_with("uninstall")),
        "b still uses black: {:?}",
        s.calls()
    );
}

#[test]
fn exhausted_transient_failures_exit_75() {
    let scenario = r#"
[[call]]
tool = "gem"
match = "^list --local$"
stdout = ""

[[call]]
tool = "gem"
match = "^install "
exit = 2
stderr = "ERROR:  While executing gem ... (Gem::RemoteFetcher::FetchError)\n    bad response Service Unavailable 503 (http://127.0.0.1:18765/gems/bundler-2.5.11.gem)\n"
"#;
    let s = Session::new(&["gem"], scenario);
    write(
        &s,
        "bundler",
        &format!("[[install]]\ngem = [\"bundler\"]\n{RETRY}\n"),
    );
    let (exit, err) = code(&s, &["install", "bundler"]);
    assert_eq!(exit, 75, "{err}");
    assert_eq!(
        lines_of(&s, "gem")
            .iter()
            .filter(|a| a.starts_with("install"))
            .count(),
        3
    );
}

/// pipx creates its home (with a shared venv, caches and logs) on the first install (its
/// `list` already does) and keeps it when the last app goes: the install that created it takes it back on remove;
/// a home that was there before stays.
#[test]
fn the_pipx_home_an_install_created_goes_with_its_last_app() {
    for existed in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("pipx-home");
        if existed {
            fs::create_dir_all(home.join("logs")).expect("a home from before");
        }
        let scenario = format!(
            r#"
[[call]]
tool = "pipx"
match = "^list --json$"
stdout = '{{"venvs": {{}}}}'
# Like pipx 1.1, `list` makes the home (its log) when there is none.
touch = ["{h}/logs/cmd_list.log"]

[[call]]
tool = "pipx"
match = "^environment --value PIPX_HOME$"
stdout = "{h}\n"

[[call]]
tool = "pipx"
match = "^environment --value PIPX_BIN_DIR$"
stdout = "{t}\n"

[[call]]
tool = "pipx"
match = "^install "
touch = ["{h}/venvs/black/bin/black", "{h}/shared/bin/pip", "{h}/.cache/x", "{h}/logs/cmd.log"]
"#,
            h = home.display(),
            t = dir.path().display()
        );
        let s = Session::new(&["pipx"], &scenario);
        write(&s, "fmt", "[[install]]\npipx = [\"black\"]\n");
        let out = s
            .em()
            .env("PIPX_HOME", &home)
            .arg("--extensions-dir")
            .arg(s.path().join("extensions"))
            .args(["install", "fmt"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let dirs = state(&s)["extensions"]["fmt"]["added"]["dirs"].clone();
        let recorded = dirs
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x.as_str() == home.to_str()));
        assert_eq!(recorded, !existed, "{dirs}");
        let out = s
            .em()
            .env("PIPX_HOME", &home)
            .arg("--extensions-dir")
            .arg(s.path().join("extensions"))
            .args(["remove", "fmt"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(home.exists(), existed, "existed before: {existed}");
        assert!(
            lines_of(&s, "pipx").contains(&"uninstall black".to_string()),
            "{:?}",
            s.calls()
        );
    }
}
