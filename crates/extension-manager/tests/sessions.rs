//! Whole CLI sessions as snapshots: the exit code, stdout and stderr of a run against fake
//! tools, one per outcome class (permanent 1, transient 75, usage 2), so that the words a
//! user reads and the code a script reads are reviewed together. Times, durations, run
//! ids and the session's temporary paths are replaced by placeholders.

mod common;

use std::fs;

use common::{Session, stderr, transcript};

#[test]
fn npm_untrusted_certificate_fails_at_once_with_the_ca_hint() {
    let s = Session::failing(
        &["npm"],
        "npm",
        "install",
        "npm/tls-self-signed-in-chain.txt",
    );
    let out = s.run(&["npm", "install", "--delay", "1ms", "em-fixture-hello"]);
    assert_eq!(s.calls().len(), 1, "one attempt: a retry cannot fix trust");
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn pip_untrusted_certificate_names_the_cause_not_a_missing_package() {
    let s = Session::failing(
        &["python3"],
        "python",
        "-m pip install",
        "pip/tls-certificate-verify-failed-with-retries.txt",
    );
    let venv = s.path().join("venv");
    fs::create_dir_all(venv.join("bin")).expect("venv bin");
    std::os::unix::fs::symlink(common::fake_tool_binary(), venv.join("bin/python")).expect("link");
    fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").expect("cfg");
    let venv = venv.display().to_string();
    let out = s.run(&[
        "pip",
        "install",
        "--delay",
        "1ms",
        "--venv",
        &venv,
        "em-fixture-hello",
    ]);
    let installs = s
        .calls()
        .iter()
        .filter(|(_, a)| a.contains("-m pip install"))
        .count();
    assert_eq!(installs, 1, "one attempt, no index probe: {:?}", s.calls());
    insta::assert_snapshot!(transcript(&s, &out));
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

#[test]
fn a_failing_run_step_runs_once_and_exits_1() {
    let (s, dir) = with_extensions(
        &[],
        "",
        &[(
            "snippet",
            r#"[extension]
name = "snippet"
version = "1.0.0"
description = "a snippet that fails"
category = "test"

[[install]]
run = "echo ran >> \"$EM_COUNT\"; exit 3"
"#,
        )],
    );
    let count = s.path().join("count");
    let out = s
        .em()
        .env("EM_COUNT", &count)
        .args(["--extensions-dir", &dir, "install", "snippet"])
        .output()
        .expect("runs");
    assert_eq!(fs::read_to_string(&count).expect("ran").lines().count(), 1);
    insta::assert_snapshot!(transcript(&s, &out));
}

/// The summary's columns grow with the longest name; what went wrong is labelled under
/// its row (`why:`), a second installed run says "Up to date" as the summary does.
#[test]
fn the_summary_fits_long_names_and_labels_what_went_wrong() {
    let manifest = |name: &str, run: &str| {
        format!(
            "[extension]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"x\"\ncategory = \"test\"\n\n[[install]]\nrun = \"{run}\"\n"
        )
    };
    let long = manifest("an-extension-with-a-rather-long-name", "true");
    let short = manifest("fails", "exit 4");
    let (s, dir) = with_extensions(
        &[],
        "",
        &[
            ("an-extension-with-a-rather-long-name", long.as_str()),
            ("fails", short.as_str()),
        ],
    );
    let first = s
        .em()
        // One at a time: the order of the two extensions' lines is then fixed.
        .args([
            "--extensions-dir",
            &dir,
            "install",
            "--keep-going",
            "--jobs",
            "1",
        ])
        .args(["an-extension-with-a-rather-long-name", "fails"])
        .output()
        .expect("runs");
    let again = s
        .em()
        .args(["--extensions-dir", &dir, "install"])
        .arg("an-extension-with-a-rather-long-name")
        .output()
        .expect("runs");
    insta::assert_snapshot!(format!(
        "{}\n--- again\n{}",
        transcript(&s, &first),
        transcript(&s, &again)
    ));
}

/// `--log-format json`: every stderr line is one JSON object (status lines and the
/// summary included), and the retry's delay is there at INFO by default.
#[test]
fn json_logs_are_json_only_and_keep_the_delays() {
    let (s, dir) = with_extensions(
        &[],
        "",
        &[(
            "flaky",
            r#"[extension]
name = "flaky"
version = "1.0.0"
description = "fails once"
category = "test"

[[install]]
run = "test -f \"$EM_MARK\" || { touch \"$EM_MARK\"; exit 1; }"
retry = { attempts = 2, backoff = "fixed", base = "1ms", jitter = "none" }
"#,
        )],
    );
    let out = s
        .em()
        .env("EM_MARK", s.path().join("mark"))
        .args([
            "--log-format",
            "json",
            "--extensions-dir",
            &dir,
            "install",
            "flaky",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let has = |level: &str, target: &str, text: &str| {
        events.iter().any(|e| {
            e["level"] == level && e["target"] == target && e["fields"].to_string().contains(text)
        })
    };
    assert!(has("INFO", "em_retry", "retrying in"), "{events:#?}");
    assert!(
        has("INFO", "extension_manager::status", "Installed"),
        "{events:#?}"
    );
    assert!(
        has("INFO", "extension_manager::status", "1 installed"),
        "{events:#?}"
    );
}

/// A fresh image (no package lists): the update is planned and said so, not a failed
/// attempt and a repair; the summary counts one attempt and no retry.
#[test]
fn a_fresh_image_updates_first_and_counts_no_retry() {
    let (s, dir) = with_extensions(
        &["apt-get", "dpkg", "dpkg-query", "apt-cache"],
        "[dpkg]\ninstalled = []\n",
        &[(
            "tree",
            r#"[extension]
name = "tree"
version = "1.0.0"
description = "one package on a fresh image"
category = "test"

[[install]]
apt = ["em-tree"]
"#,
        )],
    );
    s.empty_apt_lists();
    let out = s
        .em()
        .args(["--extensions-dir", &dir, "install", "tree"])
        .output()
        .expect("runs");
    insta::assert_snapshot!(transcript(&s, &out));
}

/// apt waiting for dpkg's lock says so in the log only; we make it one status line that
/// names the holder (once per step, however often apt repeats it).
#[test]
fn a_wait_for_dpkgs_lock_is_a_status_line_naming_the_holder() {
    let (s, dir) = with_extensions(
        &["apt-get", "dpkg", "dpkg-query", "apt-cache"],
        r#"[[call]]
tool = "apt-get"
match = "^install "
stdout = """
Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)... 1s
Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)... 2s
Setting up em-tree (1.0) ...
"""
"#,
        &[(
            "tree",
            r#"[extension]
name = "tree"
version = "1.0.0"
description = "waits for the lock"
category = "test"

[[install]]
apt = ["em-tree"]
"#,
        )],
    );
    let out = s
        .em()
        .args(["--extensions-dir", &dir, "install", "tree"])
        .output()
        .expect("runs");
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn an_unknown_package_whose_update_repair_fails_is_transient_everywhere() {
    let (s, dir) = with_extensions(
        &["apt-get", "apt-cache", "dpkg", "dpkg-query"],
        r#"
[[call]]
tool = "apt-get"
match = "update"
exit = 100
output = "apt-get/update-503.txt"

[[call]]
tool = "apt-get"
match = "install"
exit = 100
output = "apt-get/install-unable-to-locate-empty-lists.txt"
"#,
        &[(
            "nope",
            r#"[extension]
name = "nope"
version = "1.0.0"
description = "a package the lists do not know"
category = "test"

[[install]]
apt = ["em-nope"]
retry = { attempts = 3, delay = "1ms", jitter = "none" }
"#,
        )],
    );
    s.empty_apt_lists();
    let report = s.path().join("report.json");
    let out = s
        .em()
        .args([
            "--extensions-dir",
            &dir,
            "--report",
            &report.display().to_string(),
        ])
        .args(["install", "nope"])
        .output()
        .expect("runs");
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(report["exit_code"], out.status.code().expect("exited"));
    insta::assert_snapshot!(transcript(&s, &out));
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let s = Session::new(&[], "");
    let config = s.path().join("config.toml");
    fs::write(&config, "jobs = 3\n[circuit]\ncooldown = \"10000years\"\n").expect("config");
    let config = config.display().to_string();
    let mut all = String::new();
    for args in [
        vec!["install", "--jobs", "99999999999", "python"],
        vec!["--config", config.as_str(), "install", "python"],
        vec!["install", "no-such-extension"],
    ] {
        let out = s.run(&args);
        let line = format!("$ extension-manager {}\n", args.join(" "));
        all.push_str(&line.replace(&s.path().display().to_string(), "[SESSION]"));
        all.push_str(&transcript(&s, &out));
        all.push('\n');
    }
    assert!(!s.path().join("state").join("state.json").exists());
    insta::assert_snapshot!(all);
}

#[test]
fn check_refuses_what_install_would_refuse() {
    let (s, dir) = with_extensions(
        &[],
        "",
        &[(
            "spaced",
            r#"[extension]
name = "spaced"
version = "1.0.0"
description = "a requirement with spaces, one argv entry to pip"
category = "test"

[[install]]
pip = ["black >= 24"]
"#,
        )],
    );
    let mut all = String::new();
    for args in [
        ["check", &dir].as_slice(),
        &["--extensions-dir", &dir, "install", "spaced"],
    ] {
        let out = s.run(args);
        let line = format!("$ extension-manager {}\n", args.join(" "));
        all.push_str(&line.replace(&s.path().display().to_string(), "[SESSION]"));
        all.push_str(&transcript(&s, &out));
        all.push('\n');
    }
    insta::assert_snapshot!(all);
}
