//! `install`, `plan`, `remove`, `status` end to end: real binary, fake apt-get/dpkg-query,
//! manifests in a temp extensions dir, a temp state dir.

mod common;

use std::fs;
use std::path::Path;

use common::{Session, stderr, stdout};

const TOOLS: &[&str] = &["apt-get", "dpkg", "dpkg-query"];

/// Writes the test's extensions: alpha; beta requires alpha; gamma shares a package with
/// beta; broken cannot install; delta requires broken; early-broken fails in its first
/// step, before any apt work.
fn write_extensions(dir: &Path) {
    fs::create_dir_all(dir).expect("dir");
    let ext = |name: &str, requires: &[&str], packages: &[&str]| {
        let requires: Vec<String> = requires.iter().map(|r| format!("{r:?}")).collect();
        let packages: Vec<String> = packages.iter().map(|p| format!("{p:?}")).collect();
        format!(
            "[extension]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"test {name}\"\ncategory = \"test\"\nrequires = [{}]\n\n[[install]]\napt = [{}]\n\n[[validate]]\nrun = \"true\"\n",
            requires.join(", "),
            packages.join(", ")
        )
    };
    fs::write(dir.join("alpha.toml"), ext("alpha", &[], &["em-alpha"])).expect("alpha");
    fs::write(
        dir.join("beta.toml"),
        ext("beta", &["alpha"], &["em-beta", "em-shared"]),
    )
    .expect("beta");
    fs::write(dir.join("gamma.toml"), ext("gamma", &[], &["em-shared"])).expect("gamma");
    fs::write(dir.join("broken.toml"), ext("broken", &[], &["em-missing"])).expect("broken");
    fs::write(
        dir.join("delta.toml"),
        ext("delta", &["broken"], &["em-delta"]),
    )
    .expect("delta");
    let early = ext("early-broken", &[], &["em-early"]).replace(
        "[[install]]\napt",
        "[[install]]\nrun = \"em-no-such-command\"\n\n[[install]]\napt",
    );
    fs::write(dir.join("early-broken.toml"), early).expect("early-broken");
}

const SCENARIO: &str = r#"
[[call]]
tool = "apt-get"
match = "install .*em-missing"
exit = 100
stderr = "E: Unable to locate package em-missing\n"
"#;

fn session() -> (Session, String, String) {
    let s = Session::new(TOOLS, SCENARIO);
    let exts = s.path().join("extensions");
    write_extensions(&exts);
    // Fresh lists: "Unable to locate package" is final, not a reason to update.
    let lists = s.path().join("lists");
    fs::create_dir_all(lists.join("partial")).expect("lists");
    fs::write(lists.join("127.0.0.1_debian_Packages"), "Package: x\n").expect("list");
    let conf = s.path().join("apt.conf");
    fs::write(
        &conf,
        format!("Dir::State::Lists \"{}/\";\n", lists.display()),
    )
    .expect("conf");
    (s, exts.display().to_string(), conf.display().to_string())
}

fn run(s: &Session, exts: &str, conf: &str, args: &[&str]) -> std::process::Output {
    s.em()
        .env("APT_CONFIG", conf)
        .env("EM_PROFILE_DIR", s.path().join("profile.d"))
        .arg("--extensions-dir")
        .arg(exts)
        .args(args)
        .output()
        .expect("extension-manager runs")
}

fn apt_installs(s: &Session) -> Vec<String> {
    s.calls()
        .into_iter()
        .filter(|(t, a)| t == "apt-get" && a.starts_with("install"))
        .map(|(_, a)| a)
        .collect()
}

fn state(s: &Session) -> serde_json::Value {
    serde_json::from_str(
        &fs::read_to_string(s.path().join("state/state.json")).expect("state.json"),
    )
    .expect("valid JSON")
}

#[test]
fn install_pulls_in_requirements_in_order_and_a_second_run_changes_nothing() {
    let (s, exts, conf) = session();
    let out = run(&s, &exts, &conf, &["install", "beta"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let installs = apt_installs(&s);
    assert_eq!(installs.len(), 2, "{installs:?}");
    assert!(
        installs[0].ends_with("em-alpha"),
        "alpha first: {installs:?}"
    );
    assert!(installs[1].ends_with("em-beta em-shared"), "{installs:?}");
    assert!(err.contains("Installed alpha 1.0.0"), "{err}");
    assert!(err.contains("Installed beta 1.0.0"), "{err}");
    let st = state(&s);
    assert_eq!(st["extensions"]["alpha"]["status"], "installed");
    assert_eq!(st["extensions"]["beta"]["status"], "installed");
    assert_eq!(
        st["extensions"]["beta"]["added"]["apt"],
        serde_json::json!(["em-beta", "em-shared"])
    );
    let report: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(s.path().join("state/reports/last.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["extensions"][1]["name"], "beta");
    assert_eq!(report["extensions"][1]["steps"][0]["attempts"], 1);

    let again = run(&s, &exts, &conf, &["install", "beta"]);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert_eq!(
        apt_installs(&s).len(),
        2,
        "no new apt-get install: {:?}",
        apt_installs(&s)
    );
    assert!(err.contains("already installed; checks pass"), "{err}");
    let history = fs::read_to_string(s.path().join("state/history.jsonl")).expect("history");
    assert!(
        history
            .lines()
            .any(|l| l.contains("\"installed\"") && l.contains("\"beta\"")),
        "{history}"
    );
    assert!(
        history.lines().any(|l| l.contains("\"up-to-date\"")),
        "{history}"
    );
}

#[test]
fn keep_going_skips_the_dependents_of_a_failure_and_finishes_the_rest() {
    let (s, exts, conf) = session();
    let out = run(
        &s,
        &exts,
        &conf,
        &["install", "--keep-going", "delta", "gamma"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Failed broken"), "{err}");
    assert!(err.contains("em-missing"), "{err}");
    assert!(
        err.contains("delta: it requires `broken`, which did not install"),
        "{err}"
    );
    assert!(err.contains("Installed gamma"), "{err}");
    let st = state(&s);
    assert_eq!(st["extensions"]["gamma"]["status"], "installed");
    assert_eq!(st["extensions"]["broken"]["status"], "failed");
    assert!(st["extensions"].get("delta").is_none(), "{st}");
    assert!(apt_installs(&s).iter().all(|a| !a.contains("em-delta")));
}

#[test]
fn without_keep_going_a_failure_stops_new_starts() {
    let (s, exts, conf) = session();
    let out = run(
        &s,
        &exts,
        &conf,
        &["install", "--jobs", "1", "early-broken", "gamma"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("use --keep-going"),
        "{}",
        stderr(&out)
    );
    assert!(
        apt_installs(&s).iter().all(|a| !a.ends_with("em-shared")),
        "{:?}",
        apt_installs(&s)
    );
}

#[test]
fn remove_keeps_what_another_installed_extension_needs() {
    let (s, exts, conf) = session();
    assert_eq!(
        run(&s, &exts, &conf, &["install", "beta", "gamma"])
            .status
            .code(),
        Some(0)
    );
    // alpha is required by beta: refused without --cascade.
    let refused = run(&s, &exts, &conf, &["remove", "alpha"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("`beta` still requires it"),
        "{}",
        stderr(&refused)
    );

    let out = run(&s, &exts, &conf, &["remove", "beta"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let removes: Vec<String> = s
        .calls()
        .into_iter()
        .filter(|(t, a)| t == "apt-get" && a.starts_with("purge"))
        .map(|(_, a)| a)
        .collect();
    assert_eq!(removes.len(), 1, "{removes:?}");
    assert!(
        removes[0].ends_with(" em-beta"),
        "em-shared stays for gamma: {removes:?}"
    );
    let st = state(&s);
    assert!(st["extensions"].get("beta").is_none());
    assert_eq!(st["extensions"]["gamma"]["status"], "installed");

    let out = run(&s, &exts, &conf, &["remove", "--cascade", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn plan_shows_the_order_and_exit_code_reports_drift() {
    let (s, exts, conf) = session();
    let out = run(&s, &exts, &conf, &["plan", "beta"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "1. alpha 1.0.0: install, required by beta\n     - apt install em-alpha\n2. beta 1.0.0: install\n     - apt install em-beta em-shared\n"
    );
    assert_eq!(
        run(&s, &exts, &conf, &["plan", "--exit-code", "beta"])
            .status
            .code(),
        Some(1)
    );
    let json = run(&s, &exts, &conf, &["--output", "json", "plan", "beta"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    assert_eq!(v["plan"][0]["name"], "alpha");
    assert_eq!(
        v["plan"][1]["steps"][0]["summary"],
        "apt install em-beta em-shared"
    );
    assert!(
        s.calls().iter().all(|(t, _)| t != "apt-get"),
        "plan runs nothing"
    );

    assert_eq!(
        run(&s, &exts, &conf, &["install", "beta"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&s, &exts, &conf, &["plan", "--exit-code", "beta"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn json_output_of_install_list_and_status() {
    let (s, exts, conf) = session();
    let metrics = s.path().join("em.prom");
    let metrics_arg = metrics.display().to_string();
    let out = run(
        &s,
        &exts,
        &conf,
        &[
            "--output",
            "json",
            "--metrics",
            &metrics_arg,
            "install",
            "gamma",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&metrics).expect("metrics written");
    assert!(
        text.contains(
            "extension_manager_installs_total{extension=\"gamma\",outcome=\"installed\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("extension_manager_attempts_total{adapter=\"apt\""),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("install JSON on stdout");
    assert_eq!(v["extensions"][0]["name"], "gamma");
    assert_eq!(v["extensions"][0]["result"], "installed");

    let list = run(
        &s,
        &exts,
        &conf,
        &["--output", "json", "list", "--installed"],
    );
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("list JSON");
    assert_eq!(v["extensions"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["extensions"][0]["state"], "installed");

    let status = run(&s, &exts, &conf, &["--output", "json", "status"]);
    assert_eq!(status.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(v["extensions"][0]["validation"], "ok");
}

#[test]
fn unknown_extensions_and_bad_manifests_are_usage_errors() {
    let (s, exts, conf) = session();
    let out = run(&s, &exts, &conf, &["install", "gama"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `gamma`?"),
        "{}",
        stderr(&out)
    );

    fs::write(
        Path::new(&exts).join("bad.toml"),
        "[extension]\nname = \"bad\"\nversion = \"1\"\n\n[[install]]\naptt = [\"x\"]\n",
    )
    .expect("bad");
    let out = run(&s, &exts, &conf, &["install", "gamma"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.toml:6:1"), "{err}");
    assert!(err.contains('^'), "{err}");
    assert!(s.calls().is_empty(), "nothing ran: {:?}", s.calls());
    assert!(!s.path().join("state/state.json").exists());
}

/// A session with fake apt tools and `downloader` (curl or wget, whose `-o`/`-O` file gets
/// the key `KEY\n`), and the extensions dir with `thirdparty`, whose apt step has its own
/// repository.
fn thirdparty_session(downloader: &str, output_flag: &str) -> (Session, std::path::PathBuf) {
    let s = Session::new(
        &["apt-get", "dpkg", "dpkg-query", downloader],
        &format!(
            "[[call]]\ntool = \"{downloader}\"\nwrite_to_arg = \"{output_flag}\"\ncontent = \"KEY\\n\"\n"
        ),
    );
    let exts = s.path().join("extensions");
    fs::create_dir_all(&exts).expect("dir");
    fs::write(
        exts.join("thirdparty.toml"),
        r#"[extension]
name = "thirdparty"
version = "1.0.0"

[[install]]
apt = ["em-thirdparty"]
repository = { uri = "https://127.0.0.1:9/debian", suite = "bookworm", components = ["stable"], key = "https://127.0.0.1:9/key.asc", key_sha256 = "4a3ec3730504983f960fb2df35a1d68d640ff55d151fa3128ca0fc707f86882e" }
"#,
    )
    .expect("manifest");
    (s, exts)
}

#[test]
fn a_third_party_repository_is_added_updated_alone_and_removed_again() {
    let (s, exts) = thirdparty_session("curl", "-o");
    let sources = s.path().join("sources.list.d");
    let keyrings = s.path().join("keyrings");
    let run = |args: &[&str]| {
        s.em()
            .env("EM_APT_SOURCES_DIR", &sources)
            .env("EM_APT_KEYRINGS_DIR", &keyrings)
            .arg("--extensions-dir")
            .arg(&exts)
            .args(args)
            .output()
            .expect("runs")
    };
    let out = run(&["install", "thirdparty"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let source = fs::read_to_string(sources.join("extension-manager-thirdparty.sources"))
        .expect("sources file");
    assert!(
        source.contains("URIs: https://127.0.0.1:9/debian\n"),
        "{source}"
    );
    assert!(
        source.contains("Suites: bookworm\nComponents: stable\n"),
        "{source}"
    );
    assert!(
        source.contains(&format!(
            "Signed-By: {}",
            keyrings.join("extension-manager-thirdparty.asc").display()
        )),
        "{source}"
    );
    assert_eq!(
        fs::read_to_string(keyrings.join("extension-manager-thirdparty.asc")).expect("key"),
        "KEY\n"
    );
    let calls = s.calls();
    let update = calls
        .iter()
        .position(|(t, a)| t == "apt-get" && a.starts_with("update"))
        .expect("an update");
    let install = calls
        .iter()
        .position(|(t, a)| t == "apt-get" && a.starts_with("install"))
        .expect("an install");
    assert!(update < install, "{calls:?}");
    assert!(
        calls[update].1.contains("Dir::Etc::SourceList="),
        "only this source: {:?}",
        calls[update]
    );
    assert!(
        calls[update].1.contains("APT::Get::List-Cleanup=0"),
        "{:?}",
        calls[update]
    );

    let out = run(&["remove", "thirdparty"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !sources
            .join("extension-manager-thirdparty.sources")
            .exists()
    );
    assert!(!keyrings.join("extension-manager-thirdparty.asc").exists());
}

#[test]
fn a_repository_key_comes_with_wget_when_curl_is_not_there() {
    // Only fake tools on PATH: no curl at all, as on a wget-only image. The key is
    // fetched the way downloads are, with wget, instead of failing for want of curl.
    let (s, exts) = thirdparty_session("wget", "-O");
    let keyrings = s.path().join("keyrings");
    let out = s
        .em()
        .env("PATH", s.bin())
        .env("EM_APT_SOURCES_DIR", s.path().join("sources.list.d"))
        .env("EM_APT_KEYRINGS_DIR", &keyrings)
        .arg("--extensions-dir")
        .arg(&exts)
        .args(["install", "thirdparty"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(keyrings.join("extension-manager-thirdparty.asc")).expect("key"),
        "KEY\n"
    );
    let calls = s.calls();
    let key = calls
        .iter()
        .position(|(t, _)| t == "wget")
        .expect("wget ran");
    assert!(
        calls[key].1.contains("https://127.0.0.1:9/key.asc"),
        "{calls:?}"
    );
}

#[test]
fn the_env_file_is_readable_by_every_login_shell_and_removed_with_the_extension() {
    use std::os::unix::fs::PermissionsExt;
    let (s, exts, conf) = session();
    fs::write(
        Path::new(&exts).join("envy.toml"),
        "[extension]\nname = \"envy\"\nversion = \"1.0.0\"\n\n[extension.env]\nEM_GREETING = \"hello world\"\n\n[[install]]\napt = [\"em-envy\"]\n",
    )
    .expect("manifest");
    let out = run(&s, &exts, &conf, &["install", "envy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = s.path().join("profile.d/extension-manager-envy.sh");
    let text = fs::read_to_string(&file).expect("env file");
    assert!(
        text.contains("export EM_GREETING=\"hello world\"\n"),
        "{text}"
    );
    let mode = fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "login shells of every user source it");
    let sourced = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(". {} && printf %s \"$EM_GREETING\"", file.display()),
        ])
        .output()
        .expect("sh");
    assert_eq!(stdout(&sourced), "hello world");

    let out = run(&s, &exts, &conf, &["remove", "envy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!file.exists());
}

/// Extensions whose apt steps wait together share one `apt-get install` (SPEC 8); a
/// merged run that fails permanently is split, so the failure lands on its owner. The
/// window is long here (`EM_APT_BATCH_WINDOW`) so that both always meet.
#[test]
fn apt_installs_waiting_together_run_as_one_and_a_failing_batch_is_split() {
    let (s, exts, conf) = session();
    let run_batched = |args: &[&str]| {
        s.em()
            .env("APT_CONFIG", &conf)
            .env("EM_PROFILE_DIR", s.path().join("profile.d"))
            .env("EM_APT_BATCH_WINDOW", "300ms")
            .arg("--extensions-dir")
            .arg(&exts)
            .args(["--report"])
            .arg(s.path().join("report.json"))
            .args(args)
            .output()
            .expect("runs")
    };
    let out = run_batched(&["install", "alpha", "gamma"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("Merging the apt installs of alpha, gamma into one apt-get run"),
        "{err}"
    );
    let installs = apt_installs(&s);
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert!(
        installs[0].contains(" em-alpha") && installs[0].contains(" em-shared"),
        "{installs:?}"
    );
    // Each extension's report shows the one attempt of the merged run.
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(s.path().join("report.json")).expect("report"))
            .expect("JSON");
    for ext in report["extensions"].as_array().expect("extensions") {
        assert_eq!(ext["result"], "installed", "{report:#}");
        assert_eq!(ext["steps"][0]["attempts"], 1, "{report:#}");
    }

    // broken asks for an unknown package: the merged run with beta fails on it, then each
    // is installed alone: beta installs, broken fails.
    let out = run_batched(&["install", "--keep-going", "broken", "beta"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Splitting the merged apt install failed"),
        "{err}"
    );
    let st = state(&s);
    assert_eq!(st["extensions"]["beta"]["status"], "installed", "{st}");
    assert_eq!(st["extensions"]["broken"]["status"], "failed", "{st}");
    let after: Vec<String> = apt_installs(&s).into_iter().skip(1).collect();
    assert_eq!(after.len(), 3, "merged, then each alone: {after:?}");
    assert!(
        after[0].contains("em-beta") && after[0].contains("em-missing"),
        "{after:?}"
    );
}

/// `--progress none` drops the per-step lines and keeps results; `plain` timestamps.
#[test]
fn progress_none_keeps_results_and_drops_step_lines() {
    let (s, exts, conf) = session();
    let out = run(
        &s,
        &exts,
        &conf,
        &["--progress", "none", "install", "alpha"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("Installing alpha"), "{err}");
    assert!(!err.contains(" Step "), "{err}");
    assert!(err.contains("Installed alpha"), "{err}");
    assert!(err.contains("Summary"), "{err}");
    // Under a test stderr is a pipe: auto means plain, timestamped lines; `tty` forces the
    // terminal style, without timestamps.
    let timestamped = |err: &str| !err.is_empty() && err.lines().all(|l| l.starts_with("20"));
    let out = run(
        &s,
        &exts,
        &conf,
        &["--progress", "plain", "install", "alpha"],
    );
    assert!(timestamped(&stderr(&out)), "{}", stderr(&out));
    let out = run(
        &s,
        &exts,
        &conf,
        &["--progress", "tty", "--color", "never", "install", "alpha"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.is_empty(), "status lines are still shown");
    assert!(err.lines().all(|l| !l.starts_with("20")), "{err}");
    let out = run(&s, &exts, &conf, &["--progress", "sideways", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--progress"), "{}", stderr(&out));
}

#[test]
fn history_since_longer_ago_than_the_epoch_lists_everything() {
    let (s, exts, conf) = session();
    assert_eq!(
        run(&s, &exts, &conf, &["install", "alpha"]).status.code(),
        Some(0)
    );
    let all = run(&s, &exts, &conf, &["history"]);
    let long_ago = run(&s, &exts, &conf, &["history", "--since", "500000000000y"]);
    assert_eq!(long_ago.status.code(), Some(0), "{}", stderr(&long_ago));
    assert!(!stdout(&all).is_empty());
    assert_eq!(stdout(&long_ago), stdout(&all));
}

#[test]
fn completions_into_a_reader_that_stops_early_is_no_error() {
    let (s, _, _) = session();
    // `| head -c 1`: the reader closes after one byte; the script is far longer than a
    // pipe's buffer, so the writer meets the closed pipe.
    let mut child = s
        .em()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().expect("stdout"), &mut first).expect("a byte");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no panic, no message");
}

#[test]
fn a_guarded_apt_step_is_skipped_and_records_nothing() {
    let (s, exts, conf) = session();
    let marker = s.path().join("already-there");
    fs::write(&marker, "").expect("marker");
    let guarded = format!(
        "[extension]\nname = \"guarded\"\nversion = \"1.0.0\"\ndescription = \"test\"\ncategory = \"test\"\n\n[[install]]\napt = [\"em-skipped\"]\ncreates = {:?}\n\n[[install]]\napt = [\"em-taken\"]\nunless = \"false\"\n\n[[validate]]\nrun = \"true\"\n",
        marker.display().to_string()
    );
    fs::write(Path::new(&exts).join("guarded.toml"), guarded).expect("guarded");
    let out = run(&s, &exts, &conf, &["install", "guarded"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let installs = apt_installs(&s);
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert!(installs[0].ends_with("em-taken"), "{installs:?}");
    assert!(err.contains("exists"), "the skip says why: {err}");
    assert_eq!(
        state(&s)["extensions"]["guarded"]["added"]["apt"],
        serde_json::json!(["em-taken"])
    );
}

/// `[extension] shell = "bash"` runs the commands with bash (a `[[ ]]` test that dash
/// refuses), the checks find sbin tools, and `[extension.env]` values expand `$VAR` in the
/// login shell that reads the profile.d script.
#[test]
fn bash_commands_sbin_checks_and_env_values_that_expand() {
    let (s, exts, conf) = session();
    let marker = s.path().join("bash-ran");
    fs::write(
        Path::new(&exts).join("bashy.toml"),
        format!(
            r#"[extension]
name = "bashy"
version = "1.0.0"
description = "bash commands"
category = "test"
shell = "bash"

[extension.env]
BASHY_PATH = "$HOME/.bashy/bin:$PATH"

[[install]]
run = "[[ -n $BASH_VERSION ]] && touch {}"

[[validate]]
run = "command -v sysctl || command -v ldconfig"
"#,
            marker.display()
        ),
    )
    .expect("manifest");
    let out = s
        .em()
        .env("APT_CONFIG", &conf)
        .env("EM_PROFILE_DIR", s.path().join("profile.d"))
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", s.path().join("bin").display()),
        )
        .arg("--extensions-dir")
        .arg(&exts)
        .args(["install", "bashy"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(marker.exists(), "the run step ran under bash");
    let profile = s.path().join("profile.d/extension-manager-bashy.sh");
    let expanded = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(". {}; printf %s \"$BASHY_PATH\"", profile.display()),
        ])
        .env("HOME", "/home/u")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&expanded.stdout),
        "/home/u/.bashy/bin:/usr/bin:/bin"
    );
}

/// `only_if` runs a step only when its command succeeds; `optional = true` turns a
/// failure into a warning and the extension goes on to its next step and installs.
#[test]
fn only_if_and_optional_steps() {
    let (s, exts, conf) = session();
    let (skipped, after) = (s.path().join("skipped"), s.path().join("after"));
    fs::write(
        Path::new(&exts).join("besteffort.toml"),
        format!(
            r#"[extension]
name = "besteffort"
version = "1.0.0"
description = "guards"
category = "test"

[[install]]
run = "touch {skipped}"
only_if = "false"

[[install]]
run = "echo nope >&2; exit 3"
optional = true

[[install]]
run = "touch {after}"
only_if = "true"
"#,
            skipped = skipped.display(),
            after = after.display()
        ),
    )
    .expect("manifest");
    let out = run(&s, &exts, &conf, &["install", "besteffort"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!skipped.exists(), "only_if = \"false\" skipped the step");
    assert!(after.exists(), "the step after the optional failure ran");
    assert!(
        err.contains("besteffort [2/3] failed, optional: run echo nope >&2; exit 3: exit code 3"),
        "{err}"
    );
    assert!(
        err.contains("besteffort [1/3]: `false` failed (only_if)"),
        "{err}"
    );
    assert_eq!(state(&s)["extensions"]["besteffort"]["status"], "installed");
}

/// `sudo = "never"` (here `EM_SUDO=never`) is kept by installs, not only by doctor: as a
/// non-root user an apt step fails at once, saying why, and neither sudo nor apt-get runs.
#[test]
fn sudo_never_is_kept_by_installs() {
    let (s, exts, conf) = session();
    let out = s
        .em()
        .env("APT_CONFIG", &conf)
        .env("EM_PROFILE_DIR", s.path().join("profile.d"))
        .env("EM_SUDO", "never")
        .env("EM_TEST_ASSUME_NON_ROOT", "1")
        .arg("--extensions-dir")
        .arg(&exts)
        .args(["install", "base"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("this needs root, and the configuration says sudo = \"never\""),
        "{err}"
    );
    let calls = s.calls();
    assert!(
        calls
            .iter()
            .all(|(tool, _)| tool != "sudo" && tool != "apt-get"),
        "{calls:?}"
    );
}

/// `requirements.memory_mb` and `requirements.os` are checked before anything runs: a
/// machine that cannot meet them is told so, with what it has, and nothing is installed.
#[test]
fn memory_and_os_requirements_stop_the_run_before_it_changes_anything() {
    let (s, exts, conf) = session();
    let marker = s.path().join("ran");
    fs::write(
        Path::new(&exts).join("picky.toml"),
        format!(
            "[extension]\nname = \"picky\"\nversion = \"1.0.0\"\ndescription = \"x\"\ncategory = \"test\"\n\n\
             [extension.requirements]\nmemory_mb = 999999999\nos = [\"plan9>=4\", \"em-os\"]\n\n\
             [[install]]\nrun = \"touch {}\"\n",
            marker.display()
        ),
    )
    .expect("manifest");
    let out = run(&s, &exts, &conf, &["install", "picky"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs 999999999 MB of memory; this machine has "),
        "{err}"
    );
    assert!(
        err.contains("installs on plan9>=4 or em-os; this machine is "),
        "{err}"
    );
    assert!(
        err.contains("meets [extension.requirements] (memory_mb, os)"),
        "{err}"
    );
    assert!(!marker.exists(), "nothing ran");
    // A bad entry is bad input: exit 2 with its place.
    fs::write(
        Path::new(&exts).join("picky.toml"),
        "[extension]\nname = \"picky\"\nversion = \"1.0.0\"\n\n[extension.requirements]\nos = [\"Debian 12\"]\n\n[[install]]\nrun = \"true\"\n",
    )
    .expect("manifest");
    let out = run(&s, &exts, &conf, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`Debian 12` is not an os requirement"),
        "{err}"
    );
    assert!(err.contains("picky.toml:6:7"), "{err}");
}
