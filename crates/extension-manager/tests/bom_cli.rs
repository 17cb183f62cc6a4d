//! `extension-manager bom` end to end: a state dir naming apt, npm and pip packages and a
//! file, fake dpkg-query / npm / python3 answering with versions, and the three formats.

mod common;

use std::fs;

use common::{Session, stderr, stdout};
use serde_json::Value;

const SCENARIO: &str = r#"
[[call]]
tool = "dpkg-query"
stdout = "curl\t7.88.1-10+deb12u5\tamd64\tinstalled\nvim\t2:9.0.1378-2\tamd64\tinstalled\n"
exit = 1

[[call]]
tool = "npm"
match = "^ls -g --json"
stdout = '{"dependencies":{"@angular/cli":{"version":"17.0.0"},"typescript":{"version":"5.4.5"}}}'

[[call]]
tool = "python3"
match = "pip list --format json"
stdout = '[{"name":"Black","version":"24.1.0"}]'
"#;

/// A session whose state has `tools` installed: curl (added) and vim (found), two npm
/// packages, black for the system python3, one file; and `gone`, installed, whose apt
/// package the machine no longer has.
fn session() -> (Session, String) {
    let s = Session::new(&["dpkg-query", "npm", "python3"], SCENARIO);
    let file = s.path().join("tool.bin");
    fs::write(&file, b"hello").expect("file");
    let state = s.path().join("state");
    fs::create_dir_all(&state).expect("state");
    let state_json = serde_json::json!({
        "version": 1,
        "extensions": {
            "tools": {
                "version": "1.2.0", "manifest_sha256": "x", "fingerprint": "x",
                "status": "installed", "installed_at": "2026-11-22T00:00:00Z",
                "added": {"apt": ["curl"], "npm": ["@angular/cli"], "files": [file]},
                "uses": {
                    "apt": ["curl", "vim"],
                    "npm": ["@angular/cli", "typescript"],
                    "pip": [{"venv": null, "name": "black"}],
                    "files": [file]
                }
            },
            "gone": {
                "version": "0.1.0", "manifest_sha256": "x", "fingerprint": "x",
                "status": "installed", "installed_at": "2026-11-22T00:00:00Z",
                "uses": {"apt": ["em-removed-by-hand"]}
            },
            "broken": {
                "version": "0.1.0", "manifest_sha256": "x", "fingerprint": "x",
                "status": "failed", "installed_at": "2026-11-22T00:00:00Z"
            }
        }
    });
    fs::write(state.join("state.json"), state_json.to_string()).expect("state.json");
    (s, file.display().to_string())
}

fn bom(s: &Session, args: &[&str]) -> Value {
    let mut all = vec!["bom"];
    all.extend(args);
    let out = s.run(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[test]
fn the_json_bom_lists_every_part_with_its_version_and_asks_dpkg_once() {
    let (s, file) = session();
    let doc = bom(&s, &[]);
    let exts = doc["extensions"].as_array().expect("extensions");
    let names: Vec<&str> = exts.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["gone", "tools"], "failed installs are not in it");
    let tools = &exts[1]["components"];
    let find = |name: &str| {
        tools
            .as_array()
            .and_then(|c| c.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no {name}: {tools:#}"))
            .clone()
    };
    let curl = find("curl");
    assert_eq!(curl["version"], "7.88.1-10+deb12u5");
    assert_eq!(curl["added"], true);
    assert_eq!(
        curl["purl"],
        "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64"
    );
    assert_eq!(find("vim")["added"], false);
    assert_eq!(
        find("vim")["purl"],
        "pkg:deb/debian/vim@2%3A9.0.1378-2?arch=amd64"
    );
    assert_eq!(
        find("@angular/cli")["purl"],
        "pkg:npm/%40angular/cli@17.0.0"
    );
    assert_eq!(find("typescript")["version"], "5.4.5");
    assert_eq!(find("black")["version"], "24.1.0");
    assert_eq!(find("black")["purl"], "pkg:pypi/black@24.1.0");
    let f = find(&file);
    assert_eq!(
        f["sha256"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(f["present"], true);
    let gone = &exts[0]["components"][0];
    assert_eq!(gone["present"], false, "{gone:#}");
    assert!(gone["version"].is_null());
    // One dpkg-query for every apt name of every extension.
    let dpkg: Vec<String> = s
        .calls()
        .into_iter()
        .filter(|(t, _)| t == "dpkg-query")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(dpkg.len(), 1, "{dpkg:?}");
    assert!(dpkg[0].ends_with("curl em-removed-by-hand vim"), "{dpkg:?}");
}

#[test]
fn cyclonedx_and_spdx_documents_carry_the_same_packages() {
    let (s, _) = session();
    let cdx = bom(&s, &["tools", "--format", "cyclonedx"]);
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["specVersion"], "1.5");
    assert!(
        cdx["serialNumber"]
            .as_str()
            .is_some_and(|n| n.starts_with("urn:uuid:"))
    );
    let apps = cdx["components"].as_array().expect("components");
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["type"], "application");
    let purls: Vec<&str> = apps[0]["components"]
        .as_array()
        .expect("parts")
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(purls.len(), 5, "{purls:?}");
    let files: Vec<&Value> = apps[0]["components"]
        .as_array()
        .expect("parts")
        .iter()
        .filter(|c| c["type"] == "file")
        .collect();
    assert_eq!(files[0]["hashes"][0]["alg"], "SHA-256");

    let spdx = bom(&s, &["tools", "--format", "spdx"]);
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(spdx["dataLicense"], "CC0-1.0");
    let packages = spdx["packages"].as_array().expect("packages");
    assert_eq!(packages.len(), 7, "the extension, 6 parts: {packages:#?}");
    let contains = spdx["relationships"]
        .as_array()
        .expect("relationships")
        .iter()
        .filter(|r| r["relationshipType"] == "CONTAINS")
        .count();
    assert_eq!(contains, 6);
    for p in packages {
        let id = p["SPDXID"].as_str().expect("id");
        assert!(
            id.strip_prefix("SPDXRef-").is_some_and(|r| r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')),
            "{id}"
        );
    }
}

#[test]
fn a_name_that_is_not_installed_is_refused() {
    let (s, _) = session();
    let out = s.run(&["bom", "broken", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not installed: broken, nope"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}
