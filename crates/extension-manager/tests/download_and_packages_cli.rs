//! `npm install`, `pip install` and `fetch` end to end against fake tools: the wiring of
//! flags, exit codes and streams (each adapter's own behaviour is tested in its crate).

mod common;

use common::{Session, stderr, stdout};

#[test]
fn npm_e404_fails_once_naming_the_package() {
    let s = Session::failing(&["npm"], "npm", "install", "npm/e404.txt");
    let prefix = s.path().join("prefix");
    let out = s.run(&[
        "npm",
        "install",
        "--prefix",
        prefix.to_str().expect("utf-8"),
        "em-fixture-nope",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E404"), "{err}");
    let calls = s.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].1.contains("--prefix="), "{calls:?}");
    assert!(calls[0].1.ends_with("em-fixture-nope"), "{calls:?}");
}

#[test]
fn npm_exhausted_network_failures_exit_75() {
    let s = Session::failing(&["npm"], "npm", "install", "npm/econnreset.txt");
    let metrics = s.path().join("metrics.prom");
    let out = s
        .em()
        .env("EM_CIRCUIT_THRESHOLD", "1")
        .args(["--metrics", metrics.to_str().expect("utf-8")])
        .args(["npm", "install", "--attempts", "3", "--delay", "1ms"])
        .arg("typescript@5")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert_eq!(s.calls().len(), 3);
    // The exhausted operation opened the registry's circuit (threshold 1), and the
    // metrics say so.
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(
        text.contains("extension_manager_circuit_open{key=\"npm-default-registry\"} 1"),
        "{text}"
    );
}

#[test]
fn pip_installs_into_the_venv_it_creates() {
    let s = Session::new(&["python3"], "");
    let venv = s.path().join("venv");
    // The fake python3 cannot create an interpreter: put one in place (a link to the
    // fake), as `python3 -m venv` would, and let the fake write pyvenv.cfg.
    std::fs::create_dir_all(venv.join("bin")).expect("venv bin");
    std::os::unix::fs::symlink(common::fake_tool_binary(), venv.join("bin/python")).expect("link");
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").expect("cfg");
    let out = s.run(&[
        "pip",
        "install",
        "--venv",
        venv.to_str().expect("utf-8"),
        "black==24.*",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let calls = s.calls();
    let install = calls
        .iter()
        .find(|(t, a)| t == "python" && a.contains("-m pip install"))
        .expect("pip ran in the venv");
    assert!(install.1.ends_with("black==24.*"), "{install:?}");
}

#[test]
fn bad_requirements_and_checksums_are_usage_errors() {
    let s = Session::new(&["python3", "curl"], "");
    for args in [
        vec!["pip", "install", "--", "-r/etc/passwd"],
        vec!["pip", "install", "black; rm -rf /"],
        vec![
            "fetch",
            "https://127.0.0.1/x",
            "-o",
            "/tmp/x",
            "--sha256",
            "abc",
        ],
        vec!["fetch", "http://127.0.0.1/x", "-o", "/tmp/x"],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = s.run(&["fetch", "http://127.0.0.1/x", "-o", "/tmp/x"]);
    assert!(stderr(&out).contains("--allow-http"), "{}", stderr(&out));
    assert!(s.calls().is_empty(), "{:?}", s.calls());
}

#[test]
fn fetch_to_stdout_writes_only_the_verified_file() {
    // sha256 of "hello\n"
    let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    let s = Session::new(
        &["curl"],
        r#"
[[call]]
tool = "curl"
times = 1
exit = 7
stderr = "curl: (7) Failed to connect to 127.0.0.1 port 9: Connection refused\n"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "hello\n"
"#,
    );
    let out = s.run(&[
        "fetch",
        "https://127.0.0.1:9/hello.txt",
        "-o",
        "-",
        "--sha256",
        sha,
        "--delay",
        "1ms",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert!(
        stderr(&out).contains("attempt 1/4 failed (transient"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fetch_lands_a_relative_output_in_the_current_directory() {
    let s = Session::new(
        &["wget"],
        r#"
[[call]]
tool = "wget"
write_to_arg = "-O"
content = "data"
"#,
    );
    let out = s
        .em()
        .current_dir(s.path())
        .args([
            "fetch",
            "--via",
            "wget",
            "https://127.0.0.1:9/f",
            "-o",
            "out.bin",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(s.path().join("out.bin")).expect("landed"),
        "data"
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("em-partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
