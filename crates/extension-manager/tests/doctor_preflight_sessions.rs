//! Whole sessions as snapshots (as in `sessions.rs`) for what `doctor` and preflight tell
//! a user who cannot install: a non-root user without working `sudo -n`, and a host that
//! does not resolve, in text and in `--output json`. The test machine runs as root: these
//! runs set `EM_TEST_ASSUME_NON_ROOT=1` (em_exec::ASSUME_NON_ROOT_VAR) where they need a
//! non-root user.

mod common;

use common::Session;
use regex_lite::Regex;

/// `exit`, stdout and stderr of a finished run, with the parts that change between runs
/// replaced (the rules of `sessions.rs`).
fn transcript(s: &Session, out: &std::process::Output) -> String {
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or_else(|| "killed".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.replace(&s.path().display().to_string(), "[SESSION]");
    let rules = [
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (r" +\d+m \d+s\b", " [DUR]"),
        (r" +\d+(\.\d+)?(ms|s)\b", " [DUR]"),
        (r"\b\d{8}T\d{6}Z?-[0-9a-f]+\b", "[RUN]"),
        (r"_logs/[^ \n]*", "_logs/[LOG]"),
        (r#""duration_ms": ?\d+"#, r#""duration_ms": [MS]"#),
    ];
    rules.iter().fold(text, |t, (re, to)| {
        Regex::new(re)
            .expect("regex")
            .replace_all(&t, *to)
            .into_owned()
    })
}

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
