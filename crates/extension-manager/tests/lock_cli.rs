//! `lock`, `install --locked` and `plan --locked` against the fake tools: the lock file's
//! text, its stability under re-lock, the pinned argv an install runs, and drift.

mod common;

use std::fs;

use common::{Session, stderr};

const DEB_SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const DEP_SHA: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const WHL_SHA: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn scenario() -> String {
    format!(
        r#"
[[call]]
tool = "apt-get"
match = "^install --simulate"
stdout = "NOTE: This is only a simulation!\nInst libem1 (0.9-1 Debian:12/stable [amd64])\nInst em-tool (1:1.2-3 Debian:12/stable [amd64])\nConf em-tool (1:1.2-3 Debian:12/stable [amd64])\n"

[[call]]
tool = "apt-cache"
match = "^show --no-all-versions "
stdout = "Package: libem1\nVersion: 0.9-1\nArchitecture: amd64\nSHA256: {DEP_SHA}\n\nPackage: em-tool\nVersion: 1:1.2-3\nArchitecture: amd64\nSHA256: {DEB_SHA}\n"

[[call]]
tool = "npm"
match = "^view --json typescript@latest"
stdout = '[{{"name":"typescript","version":"5.4.4","dist.integrity":"sha512-OLD="}},{{"name":"typescript","version":"5.4.5","dist.integrity":"sha512-NEW="}}]'

[[call]]
tool = "npm"
match = "^view --json typescript@5.4.5"
stdout = '{{"name":"typescript","version":"5.4.5","dist.integrity":"sha512-NEW="}}'

[[call]]
tool = "python3"
match = "--dry-run"
stdout = '{{"version":"1","install":[{{"metadata":{{"name":"black","version":"24.4.2"}},"requested":true,"download_info":{{"url":"https://127.0.0.1/b.whl","archive_info":{{"hashes":{{"sha256":"{WHL_SHA}"}}}}}}}}]}}'
"#
    )
}

const MANIFEST: &str = "[extension]\nname = \"tools\"\nversion = \"1.0.0\"\ndescription = \"test\"\ncategory = \"test\"\n\n[extension.options.flavour]\ndefault = \"plain\"\n\n[[install]]\napt = [\"em-tool\"]\n\n[[install]]\nnpm = [\"typescript@latest\"]\n\n[[install]]\npip = [\"black\"]\n\n[[install]]\nrun = \"true\"\n\n[[install]]\nnpm = [\"only-elsewhere@1\"]\narch = [\"s390x\"]\n\n[[validate]]\nrun = \"true\"\n";

fn session() -> (Session, String) {
    let s = Session::new(&["apt-get", "apt-cache", "npm", "python3"], &scenario());
    let exts = s.path().join("exts");
    fs::create_dir_all(&exts).expect("exts");
    fs::write(exts.join("tools.toml"), MANIFEST).expect("manifest");
    (s, exts.display().to_string())
}

fn run(s: &Session, exts: &str, args: &[&str]) -> std::process::Output {
    s.run_with_extensions(exts, args)
}

#[test]
fn lock_writes_the_resolved_versions_and_relocking_changes_nothing() {
    let (s, exts) = session();
    let out = run(&s, &exts, &["lock", "tools"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lock_path = s.path().join("extensions.lock");
    let first = fs::read_to_string(&lock_path).expect("the lock file");
    let out = std::process::Command::new("sha256sum")
        .arg(s.path().join("exts/tools.toml"))
        .output()
        .expect("sha256sum");
    let sha: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .take(64)
        .collect();
    assert!(first.contains(&sha), "the manifest's sha256 is in the lock");
    insta::assert_snapshot!(first.replace(&sha, "<manifest sha256>"));
    let shows: Vec<String> = s
        .calls()
        .into_iter()
        .filter(|(t, _)| t == "apt-cache")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        shows,
        ["show --no-all-versions libem1=0.9-1 em-tool=1:1.2-3"],
        "one apt-cache call for every package"
    );
    let again = run(&s, &exts, &["lock", "tools"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        fs::read_to_string(&lock_path).expect("lock"),
        first,
        "re-lock is stable"
    );
}

#[test]
fn install_locked_runs_the_pinned_versions() {
    let (s, exts) = session();
    assert_eq!(run(&s, &exts, &["lock", "tools"]).status.code(), Some(0));
    let out = run(&s, &exts, &["install", "--locked", "tools"]);
    let calls = s.calls();
    let apt: Vec<_> = calls
        .iter()
        .filter(|(t, a)| t == "apt-get" && a.starts_with("install") && !a.contains("--simulate"))
        .map(|(_, a)| a.clone())
        .collect();
    assert!(
        apt.iter().any(|a| a.ends_with(" em-tool=1:1.2-3")),
        "{apt:?}\n{}",
        stderr(&out)
    );
    let npm: Vec<_> = calls
        .iter()
        .filter(|(t, a)| t == "npm" && a.starts_with("install"))
        .map(|(_, a)| a.clone())
        .collect();
    assert!(
        npm.iter().any(|a| a.contains("typescript@5.4.5")),
        "{npm:?}"
    );
    assert!(!npm.iter().any(|a| a.contains("@latest")), "{npm:?}");
    let pip: Vec<_> = calls
        .iter()
        .filter(|(t, a)| t == "python3" && a.contains("pip install") && !a.contains("--dry-run"))
        .map(|(_, a)| a.clone())
        .collect();
    assert!(
        pip.iter().any(|a| a.contains("--require-hashes -r ")),
        "{pip:?}"
    );
}

#[test]
fn a_version_gone_from_the_archive_fails_before_anything_changes() {
    let (s, exts) = session();
    assert_eq!(run(&s, &exts, &["lock", "tools"]).status.code(), Some(0));
    let lock_path = s.path().join("extensions.lock");
    let text = fs::read_to_string(&lock_path).expect("lock");
    fs::write(&lock_path, text.replace("1:1.2-3", "1:1.0-1")).expect("older lock");
    let out = run(&s, &exts, &["install", "--locked", "tools"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no longer offered"), "{err}");
    assert!(err.contains("em-tool=1:1.0-1"), "{err}");
    assert!(err.contains("snapshot"), "{err}");
    assert!(
        !s.calls()
            .iter()
            .any(|(t, a)| t == "apt-get" && a.starts_with("install") && !a.contains("--simulate")),
        "nothing installed"
    );
}

#[test]
fn plan_locked_exit_code_reports_drift() {
    let (s, exts) = session();
    assert_eq!(run(&s, &exts, &["lock", "tools"]).status.code(), Some(0));
    let same = run(&s, &exts, &["plan", "--locked", "tools"]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert!(!stderr(&same).contains("Drifted"), "{}", stderr(&same));
    let json = run(
        &s,
        &exts,
        &[
            "--output",
            "json",
            "plan",
            "--locked",
            "--set",
            "tools.flavour=spicy",
            "tools",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(
        doc["drift"],
        serde_json::json!([{ "name": "tools", "reasons": ["option `flavour` is \"plain\" in the lock, \"spicy\" now"] }])
    );
    assert_eq!(doc["plan"][0]["name"], "tools");
    let option = run(
        &s,
        &exts,
        &[
            "plan",
            "--locked",
            "--exit-code",
            "--set",
            "tools.flavour=spicy",
            "tools",
        ],
    );
    assert_eq!(option.status.code(), Some(1), "{}", stderr(&option));
    assert!(
        stderr(&option).contains("option `flavour` is \"plain\" in the lock, \"spicy\" now"),
        "{}",
        stderr(&option)
    );
    fs::write(
        s.path().join("exts/tools.toml"),
        MANIFEST.replace("version = \"1.0.0\"", "version = \"1.0.1\""),
    )
    .expect("edit");
    let changed = run(&s, &exts, &["install", "--locked", "tools"]);
    assert_eq!(changed.status.code(), Some(2), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("the manifest changed"),
        "{}",
        stderr(&changed)
    );
}

#[test]
fn a_bad_lock_file_is_exit_2_with_its_position() {
    let (s, exts) = session();
    fs::write(
        s.path().join("extensions.lock"),
        "version = 1\n[extensions.tools]\nmanifest_sha256 = 12\n",
    )
    .expect("bad");
    let out = run(&s, &exts, &["install", "--locked", "tools"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("extensions.lock:3:"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(s.calls().is_empty(), "nothing ran: {:?}", s.calls());
}

/// A session with one download extension, `files`, whose URL serves "hello\n" once (the
/// lock) and "HELLO\n" from then on.
fn download_session() -> (Session, String) {
    let s = Session::new(
        &["apt-get", "apt-cache", "npm", "python3", "curl"],
        &format!(
            "{}\n[[call]]\ntool = \"curl\"\ntimes = 1\nwrite_to_arg = \"-o\"\ncontent = \"hello\\n\"\n\n[[call]]\ntool = \"curl\"\nwrite_to_arg = \"-o\"\ncontent = \"HELLO\\n\"\n",
            scenario()
        ),
    );
    let exts = s.path().join("exts");
    fs::create_dir_all(&exts).expect("exts");
    fs::write(exts.join("tools.toml"), MANIFEST).expect("manifest");
    fs::write(
        exts.join("files.toml"),
        format!(
            "[extension]\nname = \"files\"\nversion = \"1.0.0\"\ndescription = \"test\"\ncategory = \"test\"\n\n[[install]]\ndownload = \"https://127.0.0.1:9/latest/tool.txt\"\nto = \"{}\"\n\n[[validate]]\nrun = \"true\"\n",
            s.path().join("out/tool.txt").display()
        ),
    )
    .expect("files manifest");
    (s, exts.display().to_string())
}

#[test]
fn a_download_is_locked_by_sha256_and_size_and_other_bytes_are_refused() {
    let (s, exts) = download_session();
    assert_eq!(run(&s, &exts, &["lock", "tools"]).status.code(), Some(0));
    let out = run(&s, &exts, &["lock", "files"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(s.path().join("extensions.lock")).expect("lock");
    // sha256 of "hello\n".
    assert!(
        text.contains("[extensions.files.steps.download]\nurl = \"https://127.0.0.1:9/latest/tool.txt\"\nsha256 = \"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\"\nsize = 6\n"),
        "{text}"
    );
    assert!(
        text.contains("[extensions.tools]"),
        "locking files kept tools: {text}"
    );
    let out = run(&s, &exts, &["install", "--locked", "files"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
    assert!(
        !s.path().join("out/tool.txt").exists(),
        "other bytes never land"
    );
}

#[test]
fn a_failing_resolver_writes_no_lock() {
    let s = Session::new(
        &["apt-get", "apt-cache", "npm", "python3"],
        "[[call]]\ntool = \"npm\"\nmatch = \"^view\"\nexit = 1\nstderr = \"npm error code E404\\n\"\n",
    );
    let exts = s.path().join("exts");
    fs::create_dir_all(&exts).expect("exts");
    fs::write(exts.join("tools.toml"), MANIFEST).expect("manifest");
    let out = run(&s, &exts.display().to_string(), &["lock", "tools"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("tools: step "), "{}", stderr(&out));
    assert!(!s.path().join("extensions.lock").exists());
    let names: Vec<_> = fs::read_dir(s.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("extensions.lock"))
        .collect();
    assert!(names.is_empty(), "no temporary lock left: {names:?}");
}

#[test]
fn install_locked_dry_run_shows_the_pinned_steps_and_runs_nothing() {
    let (s, exts) = session();
    assert_eq!(run(&s, &exts, &["lock", "tools"]).status.code(), Some(0));
    let before = s.calls().len();
    let out = run(&s, &exts, &["install", "--locked", "--dry-run", "tools"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(common::stdout(&out));
    assert_eq!(s.calls().len(), before, "a dry run asks no tool");
}

#[test]
fn a_package_of_a_repository_not_added_yet_says_so() {
    let s = Session::new(
        &["apt-get", "apt-cache"],
        "[[call]]\ntool = \"apt-get\"\nmatch = \"--simulate\"\nexit = 100\nstderr = \"E: Unable to locate package em-third\\n\"\n",
    );
    let exts = s.path().join("exts");
    fs::create_dir_all(&exts).expect("exts");
    fs::write(
        exts.join("third.toml"),
        "[extension]\nname = \"third\"\nversion = \"1.0.0\"\ndescription = \"test\"\ncategory = \"test\"\n\n[[install]]\napt = [\"em-third\"]\nrepository = { uri = \"https://127.0.0.1:9/deb\", suite = \"stable\", components = [\"main\"], key = \"https://127.0.0.1:9/key.asc\" }\n\n[[validate]]\nrun = \"true\"\n",
    )
    .expect("manifest");
    let out = run(&s, &exts.display().to_string(), &["lock", "third"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Unable to locate package em-third"), "{err}");
    assert!(
        err.contains("the step's repository (https://127.0.0.1:9/deb) is not among this machine's apt sources yet"),
        "{err}"
    );
}

/// A download behind `only_if` that cannot be fetched (rust's rustup-init where its host
/// is out of reach) is a warning: the lock holds the rest, and `install --locked` takes
/// the step as the manifest says instead of refusing it as "not in the lock".
#[test]
fn a_conditional_step_that_cannot_be_locked_is_a_warning() {
    let s = Session::new(
        &["apt-get", "apt-cache", "npm", "python3", "curl"],
        &format!(
            "{}\n[[call]]\ntool = \"curl\"\nexit = 6\nstderr = \"curl: (6) Could not resolve host: 127.0.0.1.invalid\\n\"\n",
            scenario()
        ),
    );
    let exts = s.path().join("exts");
    fs::create_dir_all(&exts).expect("exts");
    fs::write(
        exts.join("maybe.toml"),
        format!(
            "[extension]\nname = \"maybe\"\nversion = \"1.0.0\"\ndescription = \"test\"\ncategory = \"test\"\n\n\
             [[install]]\napt = [\"em-tool\"]\n\n\
             [[install]]\nonly_if = \"false\"\ndownload = \"https://127.0.0.1.invalid/tool\"\nto = \"{}\"\n\n\
             [[validate]]\nrun = \"true\"\n",
            s.path().join("out/tool").display()
        ),
    )
    .expect("manifest");
    let exts = exts.display().to_string();
    let config = s.path().join("config.toml");
    fs::write(
        &config,
        "[policy.download]\nattempts = 2\nbackoff = \"fixed\"\nbase = \"1ms\"\njitter = \"none\"\n",
    )
    .expect("config");
    let config = config.display().to_string();
    let out = run(&s, &exts, &["--config", &config, "lock", "maybe"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("maybe: step 2 (only_if = \"false\") is not locked, nor bundled: "),
        "{err}"
    );
    assert!(
        err.contains("hint: an offline install where it runs fails at it"),
        "{err}"
    );
    let text = fs::read_to_string(s.path().join("extensions.lock")).expect("lock");
    assert!(text.contains("name = \"em-tool\""), "{text}");
    assert!(!text.contains("kind = \"download\""), "{text}");
    let out = run(&s, &exts, &["install", "--locked", "--dry-run", "maybe"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = common::stdout(&out);
    assert!(
        plan.contains("download https://127.0.0.1.invalid/tool"),
        "{plan}"
    );
}
