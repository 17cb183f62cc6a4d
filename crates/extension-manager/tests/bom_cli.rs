//! `extension-manager bom` end to end: a state dir naming apt, npm and pip packages (in
//! the system python3, a venv, and a venv that is gone), files and a venv directory; fake
//! dpkg-query / npm / python answering with versions; the three formats, the refusals, an
//! empty state, and a machine without npm.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Output;

use common::{Session, stderr, stdout};
use serde_json::{Value, json};

const SCENARIO: &str = r#"
[[call]]
tool = "dpkg-query"
stdout = "curl\t7.88.1-10+deb12u5\tamd64\tinstalled\nvim\t2:9.0.1378-2\tamd64\tinstalled\n"
stderr = "dpkg-query: no packages found matching em-removed-by-hand\n"
exit = 1

[[call]]
tool = "npm"
match = "^ls -g"
stdout = '{"dependencies":{"@angular/cli":{"version":"17.0.0"},"typescript":{"version":"5.4.5"}}}'

[[call]]
tool = "python3"
match = "^-m pip list --format json"
stdout = '[{"name":"Black","version":"24.1.0"}]'

[[call]]
tool = "python"
match = "^-m pip list --format json"
stdout = '[{"name":"pip","version":"24.0"},{"name":"Ruff","version":"0.4.4"}]'
"#;

/// The purls the machine above has for `tools`, sorted: the snapshot every format shares.
const TOOLS_PURLS: [&str; 6] = [
    "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64",
    "pkg:deb/debian/vim@2%3A9.0.1378-2?arch=amd64",
    "pkg:npm/%40angular/cli@17.0.0",
    "pkg:npm/typescript@5.4.5",
    "pkg:pypi/black@24.1.0",
    "pkg:pypi/ruff@0.4.4",
];

const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn write_state(s: &Session, state: &Value) {
    let dir = s.path().join("state");
    fs::create_dir_all(&dir).expect("state dir");
    fs::write(dir.join("state.json"), state.to_string()).expect("state.json");
}

fn installed(version: &str, added: Value, uses: Value) -> Value {
    json!({
        "version": version, "manifest_sha256": "x", "fingerprint": "x",
        "status": "installed", "installed_at": "2026-11-22T00:00:00Z",
        "added": added, "uses": uses,
    })
}

struct Machine {
    s: Session,
    file: String,
    venv: String,
}

/// The state has `tools` installed: curl (added) and vim (found), two npm packages (one
/// added), black for the system python3, ruff in a venv that install created, httpie in a
/// venv that is gone, a file (added) and that venv; `gone`, from a state written before
/// `uses` existed, whose apt package the machine no longer has; `broken`, failed.
fn machine() -> Machine {
    let s = Session::new(&["dpkg-query", "npm", "python3"], SCENARIO);
    let file = s.path().join("tool.bin");
    fs::write(&file, b"hello").expect("file");
    let venv = s.path().join("venv");
    fs::create_dir_all(venv.join("bin")).expect("venv");
    std::os::unix::fs::symlink(common::fake_tool_binary(), venv.join("bin/python"))
        .expect("venv python");
    let gone_venv = s.path().join("gone-venv");
    let tools = installed(
        "1.2.0",
        json!({
            "apt": ["curl"], "npm": ["@angular/cli"], "files": [file],
            "pip": [{"venv": venv, "name": "ruff"}], "venvs": [venv],
        }),
        json!({
            "apt": ["curl", "vim"],
            "npm": ["@angular/cli", "typescript"],
            "pip": [
                {"venv": null, "name": "black"},
                {"venv": venv, "name": "ruff"},
                {"venv": gone_venv, "name": "httpie"},
            ],
            "files": [file],
        }),
    );
    let gone = installed("0.1.0", json!({"apt": ["em-removed-by-hand"]}), json!({}));
    let mut broken = installed("0.1.0", json!({}), json!({"apt": ["curl"]}));
    broken["status"] = json!("failed");
    write_state(
        &s,
        &json!({"version": 1, "extensions": {"tools": tools, "gone": gone, "broken": broken}}),
    );
    Machine {
        s,
        file: file.display().to_string(),
        venv: venv.display().to_string(),
    }
}

fn parse(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn bom(s: &Session, args: &[&str]) -> Value {
    let mut all = vec!["bom"];
    all.extend(args);
    parse(&s.run(&all))
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v:#}"))
}

fn sorted(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    v
}

#[test]
fn the_json_bom_lists_every_part_with_its_version_and_asks_dpkg_once() {
    let m = machine();
    // `--output json` is global; bom prints JSON anyway. npm reads npm_config_prefix.
    let out =
        m.s.em()
            .args(["--output", "json", "bom"])
            .env("npm_config_prefix", "/opt/npm-global")
            .output()
            .expect("runs");
    let doc = parse(&out);
    assert!(!stderr(&out).contains("Unknown"), "{}", stderr(&out));
    let exts = array(&doc["extensions"]);
    let names: Vec<&str> = exts.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["gone", "tools"], "failed installs are not in it");
    assert_eq!(exts[1]["version"], "1.2.0");
    assert_eq!(exts[1]["installed_at"], "2026-11-22T00:00:00Z");
    let tools = array(&exts[1]["components"]);
    let find = |name: &str| {
        tools
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {tools:#?}"))
            .clone()
    };

    let curl = find("curl");
    assert_eq!(curl["type"], "apt");
    assert_eq!(curl["version"], "7.88.1-10+deb12u5");
    assert_eq!(curl["arch"], "amd64");
    assert_eq!(
        (&curl["added"], &curl["present"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        (&find("vim")["added"], &find("vim")["present"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(find("@angular/cli")["added"], true);
    let ts = find("typescript");
    assert_eq!(
        (&ts["type"], &ts["version"], &ts["added"]),
        (&json!("npm"), &json!("5.4.5"), &json!(false))
    );
    let black = find("black");
    assert_eq!(
        (&black["type"], &black["version"]),
        (&json!("pip"), &json!("24.1.0"))
    );
    assert!(black["venv"].is_null(), "the system python3: {black:#}");
    let ruff = find("ruff");
    assert_eq!(
        (&ruff["venv"], &ruff["version"], &ruff["added"]),
        (&json!(m.venv), &json!("0.4.4"), &json!(true))
    );
    let httpie = find("httpie");
    assert_eq!(
        (&httpie["present"], &httpie["version"]),
        (&json!(false), &Value::Null),
        "its venv is gone"
    );
    let f = find(&m.file);
    assert_eq!(f["type"], "file");
    assert_eq!(f["path"], m.file);
    assert_eq!(f["sha256"], HELLO_SHA256);
    assert_eq!((&f["present"], &f["added"]), (&json!(true), &json!(true)));
    let venv_dir = find(&m.venv);
    assert_eq!(
        (&venv_dir["type"], &venv_dir["present"], &venv_dir["added"]),
        (&json!("file"), &json!(true), &json!(true))
    );
    assert!(
        venv_dir.get("sha256").is_none(),
        "a directory has no sha256"
    );
    assert!(tools.iter().all(|p| p.get("note").is_none()), "{tools:#?}");
    let purls = sorted(
        tools
            .iter()
            .filter(|p| p["present"] == true)
            .filter_map(|p| p["purl"].as_str().map(String::from)),
    );
    assert_eq!(purls, TOOLS_PURLS);

    let gone = &exts[0]["components"][0];
    assert_eq!(gone["name"], "em-removed-by-hand", "from `added` alone");
    assert_eq!(
        (&gone["present"], &gone["added"]),
        (&json!(false), &json!(true)),
        "{gone:#}"
    );
    assert!(gone["version"].is_null());

    let calls = m.s.calls();
    let args_of = |tool: &str| -> Vec<String> {
        calls
            .iter()
            .filter(|(t, _)| t == tool)
            .map(|(_, a)| a.clone())
            .collect()
    };
    // One dpkg-query for every apt name of every extension, names after `--`.
    let dpkg = args_of("dpkg-query");
    assert_eq!(dpkg.len(), 1, "{dpkg:?}");
    assert!(
        dpkg[0].starts_with("-W -f ${Package}\t${Version}\t${Architecture}\t"),
        "{dpkg:?}"
    );
    assert!(
        dpkg[0].ends_with(" -- curl em-removed-by-hand vim"),
        "{dpkg:?}"
    );
    assert_eq!(args_of("npm").len(), 1, "one npm ls: {calls:?}");
    assert_eq!(args_of("python3").len(), 1, "{calls:?}");
    assert_eq!(
        args_of("python").len(),
        1,
        "one pip list per venv, none for a gone one: {calls:?}"
    );
    let npm_env =
        m.s.call_envs()
            .into_iter()
            .zip(&calls)
            .find(|(_, (t, _))| t == "npm")
            .map(|(env, _)| env)
            .expect("npm ran");
    assert_eq!(
        npm_env.get("npm_config_prefix").map(String::as_str),
        Some("/opt/npm-global")
    );
}

#[test]
fn cyclonedx_and_spdx_documents_carry_the_same_packages() {
    let m = machine();
    let cdx = bom(&m.s, &["tools", "--format", "cyclonedx"]);
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["specVersion"], "1.5");
    assert_eq!(cdx["version"], 1);
    let serial = cdx["serialNumber"].as_str().expect("serialNumber");
    let uuid = serial.strip_prefix("urn:uuid:").expect("urn:uuid:");
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
    assert!(
        uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{uuid}"
    );
    assert!(
        cdx["metadata"]["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        cdx["metadata"]["tools"]["components"][0]["name"],
        "extension-manager"
    );
    let apps = array(&cdx["components"]);
    assert_eq!(apps.len(), 1, "only the one named");
    assert_eq!(
        (&apps[0]["type"], &apps[0]["name"], &apps[0]["version"]),
        (&json!("application"), &json!("tools"), &json!("1.2.0"))
    );
    let parts = array(&apps[0]["components"]);
    assert_eq!(
        parts.len(),
        8,
        "6 packages, the file, the venv; not httpie, gone: {parts:#?}"
    );
    let purls = sorted(
        parts
            .iter()
            .filter_map(|c| c["purl"].as_str().map(String::from)),
    );
    assert_eq!(purls, TOOLS_PURLS);
    for p in parts.iter().filter(|c| c["type"] == "library") {
        assert!(p["version"].is_string() && p["name"].is_string(), "{p:#}");
    }
    let file = parts
        .iter()
        .find(|c| c["name"] == m.file.as_str())
        .expect("the file");
    assert_eq!(file["type"], "file");
    assert_eq!(
        file["hashes"],
        json!([{"alg": "SHA-256", "content": HELLO_SHA256}])
    );
    let mut refs: Vec<&str> = parts.iter().filter_map(|c| c["bom-ref"].as_str()).collect();
    refs.push(apps[0]["bom-ref"].as_str().expect("bom-ref"));
    assert_eq!(
        refs.iter().collect::<BTreeSet<_>>().len(),
        9,
        "unique bom-refs: {refs:?}"
    );
    let again = bom(&m.s, &["tools", "--format", "cyclonedx"]);
    assert_ne!(
        again["serialNumber"], cdx["serialNumber"],
        "each BOM has its own serial"
    );

    let spdx = bom(&m.s, &["tools", "--format", "spdx"]);
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(spdx["dataLicense"], "CC0-1.0");
    assert_eq!(spdx["SPDXID"], "SPDXRef-DOCUMENT");
    assert!(spdx["name"].is_string());
    assert!(
        spdx["documentNamespace"]
            .as_str()
            .is_some_and(|n| n.starts_with("https://"))
    );
    assert!(
        spdx["creationInfo"]["created"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(
        spdx["creationInfo"]["creators"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("Tool: extension-manager-"))
    );
    let packages = array(&spdx["packages"]);
    assert_eq!(
        packages.len(),
        9,
        "the extension and its 8 parts: {packages:#?}"
    );
    let ids: BTreeSet<&str> = packages
        .iter()
        .filter_map(|p| p["SPDXID"].as_str())
        .collect();
    assert_eq!(ids.len(), 9, "unique ids");
    for id in &ids {
        assert!(
            id.strip_prefix("SPDXRef-").is_some_and(|r| r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')),
            "{id}"
        );
    }
    for p in packages {
        assert_eq!(
            (&p["downloadLocation"], &p["filesAnalyzed"]),
            (&json!("NOASSERTION"), &json!(false)),
            "{p:#}"
        );
    }
    let ext = packages
        .iter()
        .find(|p| p["name"] == "tools")
        .expect("the extension");
    assert_eq!(ext["versionInfo"], "1.2.0");
    let ext_id = ext["SPDXID"].as_str().expect("id");
    let relationships = array(&spdx["relationships"]);
    let contains: Vec<&Value> = relationships
        .iter()
        .filter(|r| r["relationshipType"] == "CONTAINS")
        .collect();
    assert_eq!(contains.len(), 8);
    assert!(contains.iter().all(|r| r["spdxElementId"] == ext_id));
    for r in relationships {
        for end in ["spdxElementId", "relatedSpdxElement"] {
            let id = r[end].as_str().expect("an id");
            assert!(
                id == "SPDXRef-DOCUMENT" || ids.contains(id),
                "dangling {id}"
            );
        }
    }
    let purls = sorted(packages.iter().flat_map(|p| {
        p["externalRefs"].as_array().into_iter().flatten().map(|r| {
            assert_eq!(
                (&r["referenceCategory"], &r["referenceType"]),
                (&json!("PACKAGE-MANAGER"), &json!("purl"))
            );
            r["referenceLocator"].as_str().expect("locator").to_string()
        })
    }));
    assert_eq!(purls, TOOLS_PURLS);
    let file = packages
        .iter()
        .find(|p| p["name"] == m.file.as_str())
        .expect("the file");
    assert_eq!(
        file["checksums"],
        json!([{"algorithm": "SHA256", "checksumValue": HELLO_SHA256}])
    );
}

#[test]
fn a_name_that_is_not_installed_is_refused() {
    let m = machine();
    let out = m.s.run(&["bom", "tools", "broken", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not installed: broken (its install is failed), nope"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    assert!(
        m.s.calls().is_empty(),
        "nothing is asked: {:?}",
        m.s.calls()
    );
}

#[test]
fn an_empty_state_gives_an_empty_valid_document_in_every_format() {
    let s = Session::new(&["dpkg-query", "npm", "python3"], "");
    assert_eq!(bom(&s, &[]), json!({"extensions": []}));
    let cdx = bom(&s, &["--format", "cyclonedx"]);
    assert_eq!(
        (&cdx["bomFormat"], &cdx["components"]),
        (&json!("CycloneDX"), &json!([]))
    );
    assert!(
        cdx["serialNumber"]
            .as_str()
            .is_some_and(|n| n.starts_with("urn:uuid:"))
    );
    let spdx = bom(&s, &["--format", "spdx"]);
    assert_eq!(
        (&spdx["spdxVersion"], &spdx["packages"]),
        (&json!("SPDX-2.3"), &json!([]))
    );
    assert!(s.calls().is_empty(), "nothing to ask: {:?}", s.calls());
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let s = Session::new(&[], "");
    let out = s.run(&["bom", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("xml"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn without_npm_and_pip_their_versions_are_unknown_with_a_note() {
    let scenario = r#"
[[call]]
tool = "dpkg-query"
stdout = "curl\t7.88.1-10\tamd64\tinstalled\n"

[[call]]
tool = "python3"
exit = 1
stderr = "/usr/bin/python3: No module named pip\n"
"#;
    let s = Session::new(&["dpkg-query", "python3"], scenario);
    let uses =
        json!({"apt": ["curl"], "npm": ["typescript"], "pip": [{"venv": null, "name": "black"}]});
    write_state(
        &s,
        &json!({"version": 1, "extensions": {"web": installed("1.0.0", uses.clone(), uses)}}),
    );
    // Only the fakes on PATH: no npm anywhere.
    let bin = s.path().join("bin");
    let run = |format: &str| {
        s.em()
            .env("PATH", Path::new(&bin))
            .args(["bom", "--format", format])
            .output()
            .expect("runs")
    };
    let out = run("json");
    let doc = parse(&out);
    let parts = array(&doc["extensions"][0]["components"]);
    let find = |name: &str| {
        parts
            .iter()
            .find(|p| p["name"] == name)
            .expect(name)
            .clone()
    };
    assert_eq!(find("curl")["version"], "7.88.1-10");
    let ts = find("typescript");
    assert!(ts["version"].is_null() && ts["present"].is_null(), "{ts:#}");
    assert!(
        ts["note"]
            .as_str()
            .is_some_and(|n| n.contains("`npm` was not found")),
        "{ts:#}"
    );
    let black = find("black");
    assert!(
        black["version"].is_null() && black["present"].is_null(),
        "{black:#}"
    );
    assert!(
        black["note"]
            .as_str()
            .is_some_and(|n| n.contains("No module named pip")),
        "{black:#}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("npm versions:") && err.contains("pip versions of python3:"),
        "{err}"
    );

    // In a BOM they are listed, perhaps present, with no version and the note.
    let cdx = parse(&run("cyclonedx"));
    let parts = array(&cdx["components"][0]["components"]);
    let ts = parts
        .iter()
        .find(|p| p["name"] == "typescript")
        .expect("typescript");
    assert_eq!(ts["purl"], "pkg:npm/typescript");
    assert!(ts.get("version").is_none(), "{ts:#}");
    assert!(
        array(&ts["properties"])
            .iter()
            .any(|p| p["name"] == "extension-manager:note"),
        "{ts:#}"
    );
}

#[test]
fn pipx_cargo_and_gem_packages_are_listed_with_the_versions_their_tools_show() {
    let scenario = r#"
[[call]]
tool = "pipx"
stdout = '{"pipx_spec_version": "0.1", "venvs": {"black": {"metadata": {"main_package": {"package": "black", "package_version": "24.10.0"}}}}}'

[[call]]
tool = "cargo"
stdout = "ripgrep v14.1.0:\n    rg\n"

[[call]]
tool = "gem"
exit = 1
stderr = "ERROR:  While executing gem ... (Gem::Exception)\n"
"#;
    let s = Session::new(&["pipx", "cargo", "gem"], scenario);
    let lang = json!({"lang": [
        {"tool": "pipx", "name": "black"},
        {"tool": "pipx", "name": "httpie"},
        {"tool": "cargo", "name": "ripgrep"},
        {"tool": "gem", "name": "rake"},
    ]});
    let added = json!({"lang": [{"tool": "pipx", "name": "black"}]});
    write_state(
        &s,
        &json!({"version": 1, "extensions": {"dev": installed("1.0.0", added, lang)}}),
    );
    let out = s.run(&["bom"]);
    let doc = parse(&out);
    let parts: Vec<String> = array(&doc["extensions"][0]["components"])
        .iter()
        .map(|p| {
            format!(
                "{} {} version={} present={} added={} purl={} note={}",
                p["type"], p["name"], p["version"], p["present"], p["added"], p["purl"], p["note"]
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            r#""pipx" "black" version="24.10.0" present=true added=true purl="pkg:pypi/black@24.10.0" note=null"#,
            r#""pipx" "httpie" version=null present=false added=false purl="pkg:pypi/httpie" note=null"#,
            r#""cargo" "ripgrep" version="14.1.0" present=true added=false purl="pkg:cargo/ripgrep@14.1.0" note=null"#,
            r#""gem" "rake" version=null present=null added=false purl="pkg:gem/rake" note="gem list --local: exited with 1: ERROR:  While executing gem ... (Gem::Exception)""#,
        ]
    );
    // The list that failed is a warning, not an error.
    assert!(stderr(&out).contains("gem versions: "), "{}", stderr(&out));
}
