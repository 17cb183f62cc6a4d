//! `extension-manager doctor` end to end: what it finds in a state dir, in the apt sources
//! `APT_CONFIG` names and in the configuration, with registries on 127.0.0.1 (one
//! listening, one refusing).

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use common::{Session, stderr, stdout};
use serde_json::Value;

fn findings(out: &std::process::Output) -> Vec<Value> {
    let json: Value = serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)));
    json["findings"].as_array().expect("findings").clone()
}

fn of<'a>(findings: &'a [Value], check: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["check"] == check).collect()
}

#[test]
fn doctor_reports_interrupted_installs_open_circuits_and_unreachable_registries() {
    let s = Session::new(&[], "");
    let state = s.path().join("state");
    std::fs::create_dir_all(state.join("circuits")).expect("state dir");
    std::fs::write(
        state.join("state.json"),
        r#"{"version":1,"extensions":{"half":{"version":"1.0.0","manifest_sha256":"x",
            "fingerprint":"x","status":"partial","installed_at":"2026-11-22T00:00:00Z"}}}"#,
    )
    .expect("state.json");
    // A registry that gave up: its circuit is open for five minutes.
    let breaker =
        em_retry::CircuitBreaker::new(Arc::new(em_retry::FileStore::new(state.join("circuits"))))
            .with_threshold(1)
            .with_cooldown(std::time::Duration::from_secs(300));
    breaker.record_failure("127.0.0.1:9", "503 every time");

    // The apt primary listens; the pip index refuses connections.
    let listening = TcpListener::bind("127.0.0.1:0").expect("bind");
    let apt_url = format!("http://{}/debian", listening.local_addr().expect("addr"));
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let etc = s.path().join("etc-apt");
    std::fs::create_dir_all(etc.join("sources.list.d")).expect("etc");
    std::fs::write(
        etc.join("sources.list"),
        format!("deb [trusted=yes] {apt_url} bookworm main\n"),
    )
    .expect("sources");
    let apt_conf = s.path().join("apt.conf");
    std::fs::write(
        &apt_conf,
        format!(
            "Dir::Etc \"{}/\";\nDir::State::Lists \"{}/lists/\";\n",
            etc.display(),
            s.path().display()
        ),
    )
    .expect("apt.conf");
    let config = s.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[registries]\npip = \"http://{refused}/simple/\"\nnpm = \"{apt_url}\"\n"),
    )
    .expect("config");

    let out = s
        .em()
        .env("APT_CONFIG", &apt_conf)
        .args(["--output", "json", "--config"])
        .arg(&config)
        .arg("doctor")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let all = findings(&out);

    let state_findings = of(&all, "state");
    assert!(
        state_findings.iter().any(|f| f["status"] == "warn"
            && f["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("half: an install was interrupted"))
            && f["hint"] == "`extension-manager install half` finishes it"),
        "{state_findings:#?}"
    );
    let circuits = of(&all, "circuit");
    assert_eq!(circuits.len(), 1, "{circuits:#?}");
    assert!(
        circuits[0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("127.0.0.1:9: open after 1 exhausted")),
        "{circuits:#?}"
    );
    assert!(
        circuits[0]["hint"]
            .as_str()
            .is_some_and(|h| h.ends_with("circuits/127.0.0.1%3A9.json")),
        "the hint names the file to delete: {circuits:#?}"
    );
    let registries = of(&all, "registry");
    let find = |who: &str| {
        registries
            .iter()
            .find(|f| f["detail"].as_str().is_some_and(|d| d.starts_with(who)))
            .unwrap_or_else(|| panic!("no {who} finding: {registries:#?}"))
    };
    assert_eq!(find("apt (primary archive)")["status"], "ok");
    assert_eq!(find("npm (config)")["status"], "ok");
    let pip = find("pip (config)");
    assert_eq!(pip["status"], "fail", "{pip:#}");
    assert!(pip["hint"].as_str().is_some_and(|h| h.contains("mirror")));
    let lists = of(&all, "apt");
    assert!(
        lists[0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("no package lists under")),
        "{lists:#?}"
    );

    // Offline: no registry is asked, so nothing here fails.
    let out = s
        .em()
        .env("APT_CONFIG", &apt_conf)
        .args(["--output", "json", "--config"])
        .arg(&config)
        .args(["doctor", "--offline"])
        .output()
        .expect("runs");
    let all = findings(&out);
    assert!(of(&all, "registry").is_empty(), "{all:#?}");
    assert!(of(&all, "state").len() == 2, "{all:#?}");
}

#[test]
fn doctor_text_ends_with_a_count_and_a_bad_state_file_fails() {
    let s = Session::new(&[], "");
    let state = s.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("state.json"), "{ not json").expect("state.json");
    let out = s.run(&["doctor", "--offline"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let bad = text
        .lines()
        .find(|l| l.starts_with("FAIL  state"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(bad.contains("state.json"), "{text}");
    assert!(text.contains("hint: move the file aside"), "{text}");
    let last = text.lines().last().expect("a summary line");
    assert!(
        last.ends_with("failed") && last.contains(" checks: "),
        "{text}"
    );
}
