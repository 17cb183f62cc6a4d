//! Hostile input through the CLI: option values meant for a shell, package names that are
//! local files, environment variables that run code, a state directory others could
//! write, symlinks in it, passwords in URLs, terminal escapes and workflow commands in
//! tool output, lines longer than memory should hold. Each test asserts what lands on
//! disk (or does not) and the exit code.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{Session, stderr, transcript};

/// A session with the extensions of `manifests` (name, TOML) in its own directory.
fn with_extensions(manifests: &[(&str, String)]) -> (Session, String) {
    let s = Session::new(&[], "");
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("extensions dir");
    for (name, text) in manifests {
        fs::write(dir.join(format!("{name}.toml")), text).expect("manifest");
    }
    let dir = dir.display().to_string();
    (s, dir)
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

#[test]
fn a_set_value_meant_for_the_shell_stays_one_word_in_every_shell_context() {
    let s = Session::new(&[], "");
    let marker = s.path().join("pwned");
    let out_file = s.path().join("out");
    let manifest = format!(
        r#"[extension]
name = "inj"
version = "1.0.0"
description = "option values in run, unless, validate and remove"
category = "test"

[extension.options.version]
default = "1"

[[install]]
run = "echo {{{{version}}}} >> {out}"
unless = "test {{{{version}}}} = never"

[[validate]]
run = "echo {{{{version}}}}"

[[remove]]
run = "echo {{{{version}}}} removed >> {out}"
"#,
        out = out_file.display()
    );
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("inj.toml"), manifest).expect("manifest");
    let dir = dir.display().to_string();
    let value = format!("1; touch {} #", marker.display());
    let set = format!("inj.version={value}");
    let out = s.run(&["--extensions-dir", &dir, "install", "inj", "--set", &set]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = s.run(&["--extensions-dir", &dir, "remove", "inj"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!marker.exists(), "the value ran as a command");
    assert_eq!(
        fs::read_to_string(&out_file).expect("the steps ran"),
        format!("{value}\n{value} removed\n"),
        "the value reached the commands as one word"
    );
}

#[test]
fn npm_and_pip_names_that_are_local_archives_are_refused_by_check_and_install() {
    let (s, dir) = with_extensions(&[
        (
            "tarball",
            "[extension]\nname = \"tarball\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n\n[[install]]\nnpm = [\"evil.tgz\"]\n".into(),
        ),
        (
            "wheel",
            "[extension]\nname = \"wheel\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n\n[[install]]\npip = [\"evil.whl\"]\n".into(),
        ),
    ]);
    // The files npm and pip would pick up from the working directory.
    fs::write(s.path().join("evil.tgz"), "x").expect("tgz");
    fs::write(s.path().join("evil.whl"), "x").expect("whl");
    let mut all = String::new();
    for args in [
        ["check", dir.as_str()].as_slice(),
        &["--extensions-dir", &dir, "install", "tarball"],
        &["--extensions-dir", &dir, "install", "wheel"],
    ] {
        let out = s
            .em()
            .current_dir(s.path())
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        all.push_str(&format!("$ extension-manager {}\n", args.join(" ")));
        all.push_str(&transcript(&s, &out));
        all.push('\n');
    }
    assert!(s.calls().is_empty(), "no tool ran: {:?}", s.calls());
    assert!(!s.path().join("state/state.json").exists());
    insta::assert_snapshot!(all.replace(&s.path().display().to_string(), "[SESSION]"));
}

#[test]
fn an_env_variable_that_runs_code_is_refused_unless_allowed() {
    let manifest = |allow: &str| {
        format!(
            "[extension]\nname = \"envy\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n{allow}\n[extension.env]\nLD_PRELOAD = \"/tmp/x.so\"\n\n[[install]]\nrun = \"true\"\n"
        )
    };
    let (s, dir) = with_extensions(&[("envy", manifest(""))]);
    let out = s.run(&["--extensions-dir", &dir, "install", "envy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!s.path().join("state/state.json").exists());
    insta::assert_snapshot!(transcript(&s, &out));

    fs::write(
        s.path().join("extensions/envy.toml"),
        manifest("env_allow = [\"LD_PRELOAD\"]"),
    )
    .expect("manifest");
    let out = s.run(&["check", &dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn tool_output_reaches_the_terminal_logs_and_reports_defused_and_without_passwords() {
    let (s, dir) = with_extensions(&[(
        "noisy",
        "[extension]\nname = \"noisy\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n\n[[install]]\nrun = \"echo fetching https://user:secret@127.0.0.1/x >&2; printf '\\\\033[2J\\\\033]0;owned\\\\007::error::pwned\\\\rover\\\\n'; exit 3\"\n".into(),
    )]);
    let out = s.run(&["--extensions-dir", &dir, "install", "noisy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        !err.contains('\x1b') && !err.contains('\r') && !err.contains('\x07'),
        "{err:?}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert!(
        err.lines().all(|l| !l.trim_start().starts_with("::")),
        "a workflow command reached the log: {err}"
    );
    assert!(
        err.contains(r"\x1b[2J\x1b]0;owned\x07::error::pwned\x0dover"),
        "{err}"
    );
    let state = s.path().join("state");
    assert_eq!(mode(&state), 0o700);
    let report = state.join("reports/last.json");
    assert_eq!(mode(&report), 0o600);
    let logs: Vec<_> = fs::read_dir(state.join("logs"))
        .expect("logs")
        .flat_map(|run| fs::read_dir(run.expect("run").path()).expect("run dir"))
        .map(|e| e.expect("log").path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(mode(&logs[0]), 0o600);
    assert_eq!(mode(logs[0].parent().expect("run dir")), 0o700);
    for file in [&report, &logs[0], &state.join("history.jsonl")] {
        let text = fs::read_to_string(file).expect("readable");
        assert!(!text.contains("secret"), "{}: {text}", file.display());
        assert!(!text.contains('\x1b'), "{}: {text:?}", file.display());
    }
    let log = fs::read_to_string(&logs[0]).expect("log");
    assert!(log.contains("https://***@127.0.0.1/x"), "{log}");
}

#[test]
fn a_state_dir_others_can_write_is_refused_and_nothing_is_written() {
    let (s, dir) = with_extensions(&[(
        "plain",
        "[extension]\nname = \"plain\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n\n[[install]]\nrun = \"true\"\n".into(),
    )]);
    let state = s.path().join("shared-state");
    fs::create_dir(&state).expect("dir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = s
        .em()
        .env("EM_STATE_DIR", &state)
        .args(["--extensions-dir", &dir, "install", "plain"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        fs::read_dir(&state).expect("dir").next().is_none(),
        "nothing written"
    );
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn symlinks_planted_in_the_state_dir_are_not_followed() {
    let (s, dir) = with_extensions(&[(
        "plain",
        "[extension]\nname = \"plain\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n\n[[install]]\nrun = \"true\"\n".into(),
    )]);
    let state = s.path().join("state");
    fs::create_dir(&state).expect("dir");
    let victim = s.path().join("victim");
    fs::write(&victim, "precious\n").expect("victim");
    std::os::unix::fs::symlink(&victim, state.join("lock")).expect("link");
    let out = s.run(&["--extensions-dir", &dir, "install", "plain"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");

    fs::remove_file(state.join("lock")).expect("unlink");
    std::os::unix::fs::symlink(&victim, state.join("history.jsonl")).expect("link");
    let out = s.run(&["--extensions-dir", &dir, "install", "plain"]);
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    assert!(state.join("history.jsonl").is_symlink(), "{}", stderr(&out));
}

#[test]
fn retry_if_output_matches_lines_after_a_long_line() {
    let s = Session::new(&[], "");
    let count = s.path().join("count");
    let script = format!(
        "echo x >> {}; head -c 8388608 /dev/zero | tr '\\0' x; echo; echo 'got 503' >&2; exit 1",
        count.display()
    );
    let out = s
        .em()
        .args([
            "retry",
            "--attempts",
            "2",
            "--backoff",
            "none",
            "--retry-if-output",
            "^got 503$",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout.len(), 2 * (8388608 + 1), "stdout passes through");
    assert_eq!(
        fs::read_to_string(&count).expect("count").lines().count(),
        2,
        "the matching line made it retry"
    );
}

/// `info` (text and JSON) and `plan` never print a password that a manifest's URL holds.
#[test]
fn info_and_plan_redact_passwords_in_urls() {
    let manifest = "[extension]\nname = \"secret\"\nversion = \"1.0.0\"\ndescription = \"x\"\ncategory = \"test\"\n\n\
        [[install]]\ndownload = \"https://bob:hunter2@127.0.0.1:9/tool.tgz\"\nto = \"/opt/em-secret/tool.tgz\"\n"
        .to_string();
    let (s, dir) = with_extensions(&[("secret", manifest)]);
    for args in [
        vec!["info", "secret"],
        vec!["--output", "json", "info", "secret"],
        vec!["plan", "secret"],
        vec!["--output", "json", "plan", "secret"],
    ] {
        let out = s
            .em()
            .args(["--extensions-dir", &dir])
            .args(&args)
            .output()
            .expect("runs");
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        assert!(
            !all.contains("hunter2"),
            "{args:?} shows the password:\n{all}"
        );
        assert!(
            all.contains("https://***@127.0.0.1:9/tool.tgz"),
            "{args:?}:\n{all}"
        );
    }
}
