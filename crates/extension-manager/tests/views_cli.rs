//! What the read-only views show, as whole sessions (exit code, stdout, stderr): `list` and
//! `info` with options filled into descriptions, the third-party apt repository a step adds
//! in `plan` and `info`, `remove --dry-run` with the `[[remove]]` steps as `remove` runs
//! them, `check`'s count of manifests and problems, and a successful `run` step's stderr
//! on the console. Times, run ids and the session's paths are placeholders.

mod common;

use std::fs;

use common::{Session, transcript};

/// A session with the extensions of `manifests` (name, TOML) in its own directory.
fn with_extensions(manifests: &[(&str, &str)]) -> (Session, String) {
    let s = Session::new(&[], "");
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("extensions dir");
    for (name, text) in manifests {
        fs::write(dir.join(format!("{name}.toml")), text).expect("manifest");
    }
    let dir = dir.display().to_string();
    (s, dir)
}

/// Runs each of `commands` in `s` and joins their transcripts, each after its command line.
fn session(s: &Session, commands: &[&[&str]]) -> String {
    let mut all = String::new();
    for args in commands {
        let out = s.run(args);
        let line = format!("$ extension-manager {}\n", args.join(" "));
        all.push_str(&line.replace(&s.path().display().to_string(), "[SESSION]"));
        all.push_str(&transcript(s, &out));
        all.push('\n');
    }
    all
}

const GREETER: &str = r#"[extension]
name = "greeter"
version = "1.0.0"
description = "says hello in {{lang}}, {{ times }} times (loud: {{loud}})"
category = "test"

[extension.options.lang]
default = "en"

[extension.options.times]
default = "2"

[extension.options.loud]
type = "boolean"
default = false

[[install]]
run = "echo {{lang}} > \"$EM_OUT\""
"#;

const PICKY: &str = r#"[extension]
name = "picky"
version = "1.0.0"
description = "needs a {{flavor}} chosen"
category = "test"

[extension.options.flavor]
type = "string"

[[install]]
run = "echo {{flavor}}"
"#;

#[test]
fn list_and_info_fill_options_into_descriptions() {
    let (s, dir) = with_extensions(&[("greeter", GREETER), ("picky", PICKY)]);
    let out_file = s.path().join("out");
    let installed = s
        .em()
        .env("EM_OUT", &out_file)
        .args(["--extensions-dir", &dir, "install", "greeter"])
        .args(["--set", "greeter.lang=fr de", "--set", "greeter.loud=true"])
        .output()
        .expect("runs");
    assert_eq!(
        installed.status.code(),
        Some(0),
        "{}",
        common::stderr(&installed)
    );
    assert_eq!(fs::read_to_string(&out_file).expect("ran"), "fr de\n");
    let all = session(
        &s,
        &[
            &["--extensions-dir", &dir, "list", "--category", "test"],
            &["--extensions-dir", &dir, "info", "greeter"],
            &["--extensions-dir", &dir, "info", "picky"],
        ],
    );
    insta::assert_snapshot!(all);
    // Before the install, and in JSON: the defaults.
    fs::remove_dir_all(s.path().join("state")).expect("forget the install");
    let json = s.run(&["--extensions-dir", &dir, "--output", "json", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let greeter = list["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .find(|e| e["name"] == "greeter")
        .expect("greeter listed");
    assert_eq!(
        greeter["description"],
        "says hello in en, 2 times (loud: false)"
    );
    let json = s.run(&[
        "--extensions-dir",
        &dir,
        "--output",
        "json",
        "info",
        "picky",
    ]);
    let info: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(info["description"], "needs a {{flavor}} chosen");
    assert_eq!(info["steps"][0], "run echo {{flavor}}");
    let json = s.run(&[
        "--extensions-dir",
        &dir,
        "--output",
        "json",
        "info",
        "greeter",
    ]);
    let info: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(info["steps"][0], "run echo en > \"$EM_OUT\"");
}

/// A name longer than the column widens it: the other columns stay aligned.
#[test]
fn list_widens_its_name_column_for_a_long_name() {
    let manifest = |name: &str| {
        format!(
            "[extension]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"d\"\ncategory = \"test\"\n"
        )
    };
    let long = "an-extension-with-a-long-name";
    let (s, dir) = with_extensions(&[("short", &manifest("short")), (long, &manifest(long))]);
    insta::assert_snapshot!(session(
        &s,
        &[&["--extensions-dir", &dir, "list", "--category", "test"]]
    ));
}

#[test]
fn plan_and_info_show_the_repository_a_step_adds_and_whether_its_key_is_pinned() {
    let (s, dir) = with_extensions(&[(
        "vendor",
        r#"[extension]
name = "vendor"
version = "1.0.0"
description = "a tool from its vendor's archive"
category = "test"

[extension.options.channel]
default = "stable"

[[install]]
apt = ["vendor-tool"]
repository = { uri = "https://127.0.0.1:8443/debian", suite = "bookworm", components = ["{{channel}}", "extra"], key = "https://127.0.0.1:8443/key.asc", key_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }

[[install]]
apt = ["vendor-flat"]
repository = { uri = "https://127.0.0.1:8443/flat", suite = "./", key = "https://127.0.0.1:8443/flat.asc" }

[[install]]
apt = ["plain"]
"#,
    )]);
    let all = session(
        &s,
        &[
            &["--extensions-dir", &dir, "plan", "vendor"],
            &[
                "--extensions-dir",
                &dir,
                "plan",
                "vendor",
                "--set",
                "vendor.channel=beta",
            ],
            &["--extensions-dir", &dir, "info", "vendor"],
        ],
    );
    insta::assert_snapshot!(all);
    let json = s.run(&[
        "--extensions-dir",
        &dir,
        "--output",
        "json",
        "plan",
        "vendor",
    ]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let steps = &plan["plan"][0]["steps"];
    assert_eq!(
        steps[0]["repository"],
        serde_json::json!({
            "uri": "https://127.0.0.1:8443/debian",
            "suite": "bookworm",
            "components": ["stable", "extra"],
            "key": "https://127.0.0.1:8443/key.asc",
            "key_sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        })
    );
    assert_eq!(
        steps[1]["repository"]["key_sha256"],
        serde_json::Value::Null
    );
    assert!(
        steps[2].get("repository").is_none(),
        "a step without a repository has no key: {}",
        steps[2]
    );
    let json = s.run(&[
        "--extensions-dir",
        &dir,
        "--output",
        "json",
        "info",
        "vendor",
    ]);
    let info: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(info["repositories"][0]["step"], 1);
    assert_eq!(
        info["repositories"][0]["repository"],
        steps[0]["repository"]
    );
    assert_eq!(info["repositories"][1]["step"], 2);
    assert_eq!(info["repositories"].as_array().map(Vec::len), Some(2));
}

#[test]
fn remove_dry_run_lists_the_remove_steps_first_with_the_install_options() {
    let (s, dir) = with_extensions(&[(
        "teardown",
        r#"[extension]
name = "teardown"
version = "1.0.0"
description = "a setup with its own teardown"
category = "test"

[extension.options.tag]
default = "one"

[[install]]
run = "true"

[[remove]]
run = "echo {{tag}} >> \"$EM_OUT\""

[[remove]]
run = "echo second >> \"$EM_OUT\""
"#,
    )]);
    let out_file = s.path().join("out");
    let run = |args: &[&str]| {
        s.em()
            .env("EM_OUT", &out_file)
            .args(["--extensions-dir", &dir])
            .args(args)
            .output()
            .expect("runs")
    };
    let installed = run(&["install", "teardown", "--set", "teardown.tag=two words"]);
    assert_eq!(
        installed.status.code(),
        Some(0),
        "{}",
        common::stderr(&installed)
    );
    let dry = run(&["remove", "--dry-run", "teardown"]);
    assert!(!out_file.exists(), "a dry run runs nothing");
    let text = transcript(&s, &dry);
    insta::assert_snapshot!(text);
    // What the dry run listed is what the remove runs.
    let removed = run(&["remove", "teardown"]);
    assert_eq!(
        removed.status.code(),
        Some(0),
        "{}",
        common::stderr(&removed)
    );
    assert_eq!(
        fs::read_to_string(&out_file).expect("teardown ran"),
        "two words\nsecond\n"
    );
}

#[test]
fn check_counts_the_manifests_and_the_problems() {
    let (s, dir) = with_extensions(&[]);
    let good = |name: &str| {
        format!(
            "[extension]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n[[install]]\nrun = \"true\"\n"
        )
    };
    let files = s.path().join("files");
    fs::create_dir_all(&files).expect("files dir");
    let write = |name: &str, text: &str| {
        let path = files.join(format!("{name}.toml"));
        fs::write(&path, text).expect("manifest");
        path.display().to_string()
    };
    let a = write("a", &good("a"));
    let b = write("b", &good("b"));
    let one_bad = write("one-bad", &good("one-bad").replace("run =", "runn ="));
    let two_bad = write(
        "two-bad",
        &good("two-bad").replace("version = \"1.0.0\"", "versio = \"1.0.0\""),
    );
    let all = session(
        &s,
        &[
            &["check", &a],
            &["check", &a, &b],
            &["check", &one_bad],
            &["check", &a, &b, &one_bad, &two_bad],
        ],
    );
    insta::assert_snapshot!(all);
    // A directory is checked with the bundled manifests it may require: all are counted,
    // broken ones too.
    let list = s.run(&["--output", "json", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let bundled = list["extensions"].as_array().expect("extensions").len();
    fs::write(format!("{dir}/fine.toml"), good("fine")).expect("manifest");
    fs::write(
        format!("{dir}/broken.toml"),
        good("broken").replace("run =", "runn ="),
    )
    .expect("manifest");
    fs::write(
        format!("{dir}/profiles.toml"),
        "[profiles]\nmine = [\"fine\"]\n",
    )
    .expect("profiles");
    let out = s.run(&["check", &dir]);
    assert_eq!(out.status.code(), Some(2));
    let last = common::stderr(&out)
        .lines()
        .last()
        .expect("a last line")
        .to_string();
    assert!(
        last.ends_with(&format!("Checked {} manifests: 1 problem", bundled + 2)),
        "{last}"
    );
}

#[test]
fn a_successful_run_step_shows_its_last_stderr_lines_and_where_the_rest_are() {
    let (s, dir) = with_extensions(&[(
        "chatty",
        r#"[extension]
name = "chatty"
version = "1.0.0"
description = "a snippet that succeeds with warnings"
category = "test"

[[install]]
run = "for i in 1 2 3 4 5 6 7; do echo \"warning $i\" >&2; done; echo out"

[[install]]
run = "printf 'bad \\033[2J terminal\\n\\n' >&2"

[[install]]
run = "echo quiet"
"#,
    )]);
    let out = s.run(&["--extensions-dir", &dir, "install", "chatty"]);
    insta::assert_snapshot!(transcript(&s, &out));
    // The log has every line.
    let logs = s.path().join("state/logs");
    let run_dir = fs::read_dir(&logs)
        .expect("logs")
        .next()
        .expect("a run")
        .expect("entry")
        .path();
    let log = fs::read_to_string(run_dir.join("chatty.log")).expect("log");
    for i in 1..=7 {
        assert!(log.contains(&format!("! warning {i}")), "{log}");
    }
}
