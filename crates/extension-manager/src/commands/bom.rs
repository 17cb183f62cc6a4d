//! `bom [EXT...] [--format json|cyclonedx|spdx]`: what the installed extensions put on the
//! machine, with the versions the machine has now.
//!
//! The state says what each extension's steps install (`uses`: apt and npm packages, pip
//! packages per venv, files) and which of them its install added; the versions are asked
//! of the machine with as few processes as possible: one `dpkg-query` for every apt
//! package, one `npm ls -g`, one `pip list` per environment, and a sha256 of each file.
//! Something the state names but the machine no longer has is listed as not present,
//! never an error. The document goes to stdout: our own JSON, CycloneDX 1.5 or SPDX 2.3,
//! for scanners and audits of dev images.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use em_exec::{Cmd, OutputMode};
use serde_json::{Value, json};

use crate::exit;
use crate::session::Session;
use crate::state::{ExtensionStatus, InstalledExtension};

/// The document formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BomFormat {
    /// extension-manager's own JSON.
    Json,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// `bom`'s arguments.
#[derive(clap::Args, Debug)]
pub struct BomArgs {
    /// Only these installed extensions (default: all)
    #[arg(value_name = "EXT")]
    extensions: Vec<String>,
    /// The document format
    #[arg(long, value_enum, default_value = "json")]
    format: BomFormat,
}

/// One thing an extension put on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// `apt`, `npm`, `pip` or `file`.
    pub kind: &'static str,
    /// The package name, or the file's path.
    pub name: String,
    /// The version on the machine now (`None`: not present, or unknown).
    pub version: Option<String>,
    /// apt: the architecture.
    pub arch: Option<String>,
    /// pip: the venv (`None`: the system's python3).
    pub venv: Option<PathBuf>,
    /// file: its sha256, for a regular file.
    pub sha256: Option<String>,
    /// Whether this extension's install put it there (rather than finding it).
    pub added: bool,
    /// Whether the machine has it now.
    pub present: bool,
}

/// One installed extension and its parts.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its manifest version.
    pub version: String,
    /// When it was installed.
    pub installed_at: String,
    /// What it put on the machine.
    pub parts: Vec<Part>,
}

/// `bom`.
pub async fn bom(session: &Session, args: &BomArgs) -> Result<u8, String> {
    let state = session.state()?;
    let unknown: Vec<&String> = args
        .extensions
        .iter()
        .filter(|n| {
            state
                .extensions
                .get(*n)
                .is_none_or(|e| e.status != ExtensionStatus::Installed)
        })
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        return Err(format!(
            "not installed: {} (`extension-manager status` lists what is)",
            names.join(", ")
        ));
    }
    let chosen: Vec<(&String, &InstalledExtension)> = state
        .extensions
        .iter()
        .filter(|(n, e)| {
            e.status == ExtensionStatus::Installed
                && (args.extensions.is_empty() || args.extensions.contains(n))
        })
        .collect();
    let entries = inventory(&chosen).await;
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let doc = match args.format {
        BomFormat::Json => own_json(&entries),
        BomFormat::Cyclonedx => cyclonedx(&entries, &now),
        BomFormat::Spdx => spdx(&entries, &now),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    );
    Ok(exit::OK)
}

/// Runs `program args` and returns its stdout, or `None` when it could not run.
async fn stdout_of(program: &Path, args: &[&str]) -> Option<String> {
    let out = Cmd::tool(program)
        .args(args.iter().copied())
        .output(OutputMode::Capture)
        .stdin_null()
        .run()
        .await
        .ok()?;
    Some(out.stdout_text())
}

/// The versions of `names` from one `dpkg-query -W` (installed ones only).
async fn apt_versions(names: &BTreeSet<String>) -> BTreeMap<String, (String, String)> {
    if names.is_empty() {
        return BTreeMap::new();
    }
    let mut args = vec![
        "-W",
        "-f",
        "${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\n",
    ];
    args.extend(names.iter().map(String::as_str));
    let text = stdout_of(Path::new("dpkg-query"), &args)
        .await
        .unwrap_or_default();
    parse_dpkg_query(&text)
}

/// `name\tversion\tarch\tstatus` lines; only `installed` packages count.
pub fn parse_dpkg_query(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, arch, status) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (status == "installed" && !version.is_empty())
                .then(|| (name.to_string(), (version.to_string(), arch.to_string())))
        })
        .collect()
}

/// The global npm packages and their versions, from one `npm ls -g`.
async fn npm_versions(wanted: bool) -> BTreeMap<String, String> {
    if !wanted {
        return BTreeMap::new();
    }
    let text = stdout_of(Path::new("npm"), &["ls", "-g", "--json", "--depth=0"])
        .await
        .unwrap_or_default();
    em_npm::parse_ls(&text)
        .map(|l| l.into_iter().collect())
        .unwrap_or_default()
}

/// `pip list --format json` of one environment, by normalized name.
async fn pip_versions(venv: Option<&Path>) -> BTreeMap<String, String> {
    let python = match venv {
        Some(v) => v.join("bin/python"),
        None => PathBuf::from("python3"),
    };
    let text = stdout_of(
        &python,
        &[
            "-m",
            "pip",
            "list",
            "--format",
            "json",
            "--disable-pip-version-check",
        ],
    )
    .await
    .unwrap_or_default();
    parse_pip_list(&text)
}

/// `[{"name": "Black", "version": "24.1.0"}, ...]`, keyed by normalized name.
pub fn parse_pip_list(text: &str) -> BTreeMap<String, String> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return BTreeMap::new();
    };
    items
        .iter()
        .filter_map(|i| {
            Some((
                em_pip::normalize_name(i["name"].as_str()?),
                i["version"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Asks the machine about everything the chosen extensions use.
async fn inventory(chosen: &[(&String, &InstalledExtension)]) -> Vec<Entry> {
    let apt_names: BTreeSet<String> = chosen
        .iter()
        .flat_map(|(_, e)| e.uses.apt.iter().cloned())
        .collect();
    let wants_npm = chosen.iter().any(|(_, e)| !e.uses.npm.is_empty());
    let envs: BTreeSet<Option<PathBuf>> = chosen
        .iter()
        .flat_map(|(_, e)| e.uses.pip.iter().map(|p| p.venv.clone()))
        .collect();
    let pip_lists = async {
        let mut lists = BTreeMap::new();
        for env in &envs {
            lists.insert(env.clone(), pip_versions(env.as_deref()).await);
        }
        lists
    };
    let (apt, npm, pip) =
        tokio::join!(apt_versions(&apt_names), npm_versions(wants_npm), pip_lists);
    chosen
        .iter()
        .map(|(name, e)| {
            let mut parts = Vec::new();
            for p in &e.uses.apt {
                let found = apt.get(p);
                parts.push(Part {
                    kind: "apt",
                    name: p.clone(),
                    version: found.map(|(v, _)| v.clone()),
                    arch: found.map(|(_, a)| a.clone()),
                    venv: None,
                    sha256: None,
                    added: e.added.apt.contains(p),
                    present: found.is_some(),
                });
            }
            for p in &e.uses.npm {
                let found = npm.get(p);
                parts.push(Part {
                    kind: "npm",
                    name: p.clone(),
                    version: found.cloned(),
                    arch: None,
                    venv: None,
                    sha256: None,
                    added: e.added.npm.contains(p),
                    present: found.is_some(),
                });
            }
            for p in &e.uses.pip {
                let found = pip
                    .get(&p.venv)
                    .and_then(|l| l.get(&em_pip::normalize_name(&p.name)));
                parts.push(Part {
                    kind: "pip",
                    name: p.name.clone(),
                    version: found.cloned(),
                    arch: None,
                    venv: p.venv.clone(),
                    sha256: None,
                    added: e.added.pip.contains(p),
                    present: found.is_some(),
                });
            }
            for f in e.uses.files.iter().chain(&e.uses.apt_sources) {
                let sha256 = f
                    .is_file()
                    .then(|| em_exec::download::Sha256::of_file(f).ok())
                    .flatten()
                    .map(|(h, _)| h.to_string());
                parts.push(Part {
                    kind: "file",
                    name: f.display().to_string(),
                    version: None,
                    arch: None,
                    venv: None,
                    sha256,
                    added: e.added.files.contains(f) || e.added.apt_sources.contains(f),
                    present: f.exists(),
                });
            }
            Entry {
                name: (*name).clone(),
                version: e.version.clone(),
                installed_at: e.installed_at.clone(),
                parts,
            }
        })
        .collect()
}

fn own_json(entries: &[Entry]) -> Value {
    let exts: Vec<Value> = entries
        .iter()
        .map(|e| {
            let parts: Vec<Value> = e
                .parts
                .iter()
                .map(|p| {
                    let mut v = json!({
                        "type": p.kind,
                        "name": p.name,
                        "version": p.version,
                        "added": p.added,
                        "present": p.present,
                    });
                    if let Some(a) = &p.arch {
                        v["arch"] = json!(a);
                    }
                    if p.kind == "pip" {
                        v["venv"] = json!(p.venv);
                    }
                    if let Some(h) = &p.sha256 {
                        v["sha256"] = json!(h);
                    }
                    if let Some(purl) = purl(p) {
                        v["purl"] = json!(purl);
                    }
                    v
                })
                .collect();
            json!({
                "name": e.name,
                "version": e.version,
                "installed_at": e.installed_at,
                "components": parts,
            })
        })
        .collect();
    json!({ "extensions": exts })
}

/// Percent-encodes what a purl segment may not hold as is.
fn purl_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The package URL of a present package (`None` for files and missing packages).
pub fn purl(p: &Part) -> Option<String> {
    let version = p.version.as_ref()?;
    Some(match p.kind {
        "apt" => {
            let arch = p
                .arch
                .as_ref()
                .map(|a| format!("?arch={}", purl_escape(a)))
                .unwrap_or_default();
            format!(
                "pkg:deb/debian/{}@{}{arch}",
                purl_escape(&p.name),
                purl_escape(version)
            )
        }
        "npm" => {
            let name = match p.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
                Some((scope, name)) => {
                    format!("%40{}/{}", purl_escape(scope), purl_escape(name))
                }
                None => purl_escape(&p.name),
            };
            format!("pkg:npm/{name}@{}", purl_escape(version))
        }
        "pip" => format!(
            "pkg:pypi/{}@{}",
            purl_escape(&em_pip::normalize_name(&p.name)),
            purl_escape(version)
        ),
        _ => return None,
    })
}

/// A UUID (version 8, RFC 9562: custom) derived from `seed`, so that the same content
/// gives the same serial number without a random source.
fn uuid_from(seed: &str) -> String {
    let digest = em_exec::download::Sha256::of_reader(&mut seed.as_bytes())
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|_| "0".repeat(64));
    let mut hex: Vec<char> = digest.chars().take(32).collect();
    // Version 8 in the 13th digit, the RFC variant (8, 9, a or b) in the 17th.
    hex[12] = '8';
    hex[16] = ['8', '9', 'a', 'b'][hex[16].to_digit(16).unwrap_or(0) as usize % 4];
    let hex: String = hex.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

fn cyclonedx(entries: &[Entry], now: &str) -> Value {
    let components: Vec<Value> = entries
        .iter()
        .map(|e| {
            let parts: Vec<Value> = e
                .parts
                .iter()
                .filter(|p| p.present)
                .enumerate()
                .map(|(i, p)| {
                    let bom_ref = format!("{}/{}/{i}", e.name, p.kind);
                    if p.kind == "file" {
                        let mut v = json!({"type": "file", "bom-ref": bom_ref, "name": p.name});
                        if let Some(h) = &p.sha256 {
                            v["hashes"] = json!([{"alg": "SHA-256", "content": h}]);
                        }
                        v
                    } else {
                        let mut v = json!({
                            "type": "library",
                            "bom-ref": bom_ref,
                            "name": p.name,
                            "version": p.version,
                        });
                        if let Some(purl) = purl(p) {
                            v["purl"] = json!(purl);
                        }
                        v
                    }
                })
                .collect();
            json!({
                "type": "application",
                "bom-ref": format!("extension/{}", e.name),
                "name": e.name,
                "version": e.version,
                "components": parts,
            })
        })
        .collect();
    let serial = uuid_from(&serde_json::to_string(&components).unwrap_or_default());
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": now,
            "tools": { "components": [
                { "type": "application", "name": "extension-manager", "version": TOOL_VERSION }
            ]},
        },
        "components": components,
    })
}

/// `SPDXRef-<text>` with what SPDX ids may not hold replaced by `-`.
fn spdx_id(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{clean}")
}

fn spdx(entries: &[Entry], now: &str) -> Value {
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    for e in entries {
        let ext_id = spdx_id(&format!("extension-{}", e.name));
        packages.push(json!({
            "SPDXID": ext_id,
            "name": e.name,
            "versionInfo": e.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "comment": "an extension-manager extension",
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": ext_id,
        }));
        for (i, p) in e.parts.iter().filter(|p| p.present).enumerate() {
            let id = spdx_id(&format!("{}-{}-{i}", e.name, p.kind));
            let mut pkg = json!({
                "SPDXID": id,
                "name": p.name,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
            });
            if let Some(v) = &p.version {
                pkg["versionInfo"] = json!(v);
            }
            if let Some(purl) = purl(p) {
                pkg["externalRefs"] = json!([{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }]);
            }
            if let Some(h) = &p.sha256 {
                pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": h}]);
            }
            packages.push(pkg);
            relationships.push(json!({
                "spdxElementId": ext_id,
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": id,
            }));
        }
    }
    let uuid = uuid_from(&serde_json::to_string(&packages).unwrap_or_default());
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "extension-manager installed extensions",
        "documentNamespace": format!("https://spdx.org/spdxdocs/extension-manager-{uuid}"),
        "creationInfo": {
            "created": now,
            "creators": [format!("Tool: extension-manager-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(kind: &'static str, name: &str, version: &str) -> Part {
        Part {
            kind,
            name: name.into(),
            version: Some(version.into()),
            arch: None,
            venv: None,
            sha256: None,
            added: true,
            present: true,
        }
    }

    #[test]
    fn purls_follow_each_ecosystem() {
        let mut deb = part("apt", "libc6", "2.36-9+deb12u4");
        deb.arch = Some("amd64".into());
        assert_eq!(
            purl(&deb).as_deref(),
            Some("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64")
        );
        let epoch = part("apt", "vim", "2:9.0.1378-2");
        assert_eq!(
            purl(&epoch).as_deref(),
            Some("pkg:deb/debian/vim@2%3A9.0.1378-2")
        );
        assert_eq!(
            purl(&part("npm", "@angular/cli", "17.0.0")).as_deref(),
            Some("pkg:npm/%40angular/cli@17.0.0")
        );
        assert_eq!(
            purl(&part("pip", "Typing_Extensions", "4.9.0")).as_deref(),
            Some("pkg:pypi/typing-extensions@4.9.0")
        );
        let mut missing = part("npm", "x", "1");
        missing.version = None;
        assert_eq!(purl(&missing), None);
        assert_eq!(purl(&part("file", "/opt/x", "1")), None);
    }

    #[test]
    fn dpkg_query_output_keeps_installed_packages_only() {
        let text = "curl\t7.88.1-10\tamd64\tinstalled\nold\t1.0\tamd64\tconfig-files\n";
        let got = parse_dpkg_query(text);
        assert_eq!(got.len(), 1);
        assert_eq!(got["curl"], ("7.88.1-10".to_string(), "amd64".to_string()));
    }

    #[test]
    fn pip_list_is_keyed_by_normalized_name() {
        let got = parse_pip_list(r#"[{"name":"Typing_Extensions","version":"4.9.0"}]"#);
        assert_eq!(got["typing-extensions"], "4.9.0");
        assert!(parse_pip_list("not json").is_empty());
    }

    #[test]
    fn serial_numbers_are_uuids_derived_from_the_content() {
        let a = uuid_from("x");
        assert_eq!(a, uuid_from("x"));
        assert_ne!(a, uuid_from("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert_eq!(spdx_id("my ext/apt-0"), "SPDXRef-my-ext-apt-0");
    }
}
