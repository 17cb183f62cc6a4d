//! Whole sessions as snapshots (as in `sessions.rs`) for what `doctor` and preflight tell
//! a user who cannot install: a non-root user without working `sudo -n`, and a host that
//! does not resolve, in text and in `--output json`. The test machine runs as root: these
//! runs set `EM_TEST_ASSUME_NON_ROOT=1` (em_exec::ASSUME_NON_ROOT_VAR) where they need a
//! non-root user.

mod common;

use std::fs;

use common::{Session, transcript};

/// A `df -Pk` answer: 512000 MiB available, so that the disk line does not depend on the
/// machine.
const DF: &str = r#"
[[call]]
tool = "df"
stdout = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 600000000 1000 524288000 1% /\n"
"#;

/// `doctor --offline` as a non-root user with only the session's fake tools on `PATH`
/// (so no line depends on the machine's tools), with `env` set.
fn doctor_as_user(s: &Session, env: &[(&str, &str)]) -> std::process::Output {
    s.em()
        .env("PATH", s.bin())
        .env("EM_TEST_ASSUME_NON_ROOT", "1")
        .envs(env.iter().copied())
        .args(["doctor", "--offline"])
        .output()
        .expect("runs")
}

fn sudo_calls(s: &Session) -> Vec<String> {
    s.calls()
        .into_iter()
        .filter(|(tool, _)| tool == "sudo")
        .map(|(_, args)| args)
        .collect()
}

#[test]
fn doctor_as_a_user_whose_sudo_asks_for_a_password_fails_with_a_hint() {
    let s = Session::new(
        &["df", "sudo"],
        &format!(
            "{DF}
[[call]]
tool = \"sudo\"
match = \"^-n true$\"
exit = 1
stderr = \"sudo: a password is required\\n\"
"
        ),
    );
    let out = doctor_as_user(&s, &[]);
    assert_eq!(sudo_calls(&s), ["-n true"], "doctor asks sudo once, -n");
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn doctor_as_a_user_with_passwordless_sudo_passes() {
    let s = Session::new(&["df", "sudo"], DF);
    let out = doctor_as_user(&s, &[]);
    assert_eq!(sudo_calls(&s), ["-n true"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn doctor_as_a_user_with_sudo_never_or_without_sudo_says_root_is_needed() {
    let mut all = String::new();
    // sudo = "never": sudo is there and would work, but may not be used.
    let s = Session::new(&["df", "sudo"], DF);
    let out = doctor_as_user(&s, &[("EM_SUDO", "never")]);
    assert!(
        sudo_calls(&s).is_empty(),
        "never means never: {:?}",
        s.calls()
    );
    all.push_str("$ EM_SUDO=never extension-manager doctor --offline\n");
    all.push_str(&transcript(&s, &out));
    // No sudo at all.
    let s = Session::new(&["df"], DF);
    let out = doctor_as_user(&s, &[]);
    all.push_str("\n$ extension-manager doctor --offline (no sudo on PATH)\n");
    all.push_str(&transcript(&s, &out));
    insta::assert_snapshot!(all);
}

/// A session with the extensions of `manifests` (name, TOML) in its own directory.
fn with_extensions(
    tools: &[&str],
    scenario: &str,
    manifests: &[(&str, &str)],
) -> (Session, String) {
    let s = Session::new(tools, scenario);
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("extensions dir");
    for (name, text) in manifests {
        fs::write(dir.join(format!("{name}.toml")), text).expect("manifest");
    }
    let dir = dir.display().to_string();
    (s, dir)
}

/// An extension that downloads from a host that does not resolve, and says so in its
/// requirements. (`.invalid` never resolves: RFC 6761.)
fn unresolvable(s_dir: &str) -> String {
    format!(
        r#"[extension]
name = "far"
version = "1.0.0"
description = "a download from a host that does not resolve"
category = "test"

[extension.requirements]
domains = ["em-fixture.invalid"]

[[install]]
download = "http://em-fixture.invalid/tool"
allow_http = true
to = "{s_dir}/opt/tool"
"#
    )
}

#[test]
fn json_install_refused_by_preflight_prints_one_document_naming_the_host() {
    let s = Session::new(&["curl"], "");
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("extensions dir");
    let manifest = unresolvable(&s.path().display().to_string());
    fs::write(dir.join("far.toml"), manifest).expect("manifest");
    let dir = dir.display().to_string();
    let out = s.run(&[
        "--output",
        "json",
        "--extensions-dir",
        &dir,
        "install",
        "far",
    ]);
    assert!(s.calls().is_empty(), "nothing ran: {:?}", s.calls());
    assert!(!s.path().join("opt").exists());
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["exit_code"], 1);
    let last: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(s.path().join("state/reports/last.json")).expect("last.json"),
    )
    .expect("json");
    assert_eq!(last, doc, "reports/last.json is the same document");
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn keep_going_past_an_unresolvable_host_does_not_try_its_download() {
    let s = Session::new(&["curl", "wget"], "");
    let manifest = unresolvable(&s.path().display().to_string());
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("extensions dir");
    fs::write(dir.join("far.toml"), manifest).expect("manifest");
    let dir = dir.display().to_string();
    let out = s.run(&["--extensions-dir", &dir, "install", "--keep-going", "far"]);
    assert!(
        s.calls().is_empty(),
        "no attempt on a host preflight found unresolvable: {:?}",
        s.calls()
    );
    assert!(!s.path().join("opt/tool").exists());
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn json_install_and_remove_print_one_document_when_refused_early() {
    let (s, dir) = with_extensions(&[], "", &[]);
    let mut all = String::new();
    for args in [
        ["--output", "json", "install", "no-such-extension"].as_slice(),
        &["--output", "json", "remove", "no-such-extension"],
        &["--output", "json", "--extensions-dir", &dir, "upgrade"],
    ] {
        let out = s.run(args);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON document ({e})"));
        assert_eq!(
            doc["exit_code"],
            out.status.code().expect("exited"),
            "{args:?}"
        );
        let line = format!("$ extension-manager {}\n", args.join(" "));
        all.push_str(&line.replace(&s.path().display().to_string(), "[SESSION]"));
        all.push_str(&transcript(&s, &out));
        all.push('\n');
    }
    assert!(!s.path().join("state/state.json").exists());
    insta::assert_snapshot!(all);
}

#[test]
fn keep_going_tries_only_the_mirrors_on_hosts_that_resolve() {
    let s = Session::new(
        &["curl"],
        r#"
[[call]]
tool = "curl"
exit = 7
stderr = "curl: (7) Failed to connect to 127.0.0.1 port 9: Connection refused\n"
"#,
    );
    let manifest = unresolvable(&s.path().display().to_string()).replace(
        "allow_http = true",
        "allow_http = true\nmirrors = [\"http://127.0.0.1:9/tool\"]\nvia = \"curl\"\nretry = { attempts = 1 }",
    );
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("extensions dir");
    fs::write(dir.join("far.toml"), manifest).expect("manifest");
    let dir = dir.display().to_string();
    let out = s.run(&["--extensions-dir", &dir, "install", "--keep-going", "far"]);
    assert_eq!(out.status.code(), Some(75), "{}", common::stderr(&out));
    let calls = s.calls();
    assert!(!calls.is_empty(), "the mirror was tried");
    for (tool, args) in &calls {
        assert_eq!(tool, "curl");
        assert!(args.contains("http://127.0.0.1:9/tool"), "{args}");
        assert!(!args.contains("em-fixture.invalid"), "{args}");
    }
}
