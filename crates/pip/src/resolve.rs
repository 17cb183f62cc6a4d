//! Resolving pip requirements to exact versions and file hashes, for a lock file:
//! `pip install --dry-run --ignore-installed --report -` (pip 22.2 and later) says which
//! distributions pip would install for the requirements, dependencies included, and the
//! sha256 of the file (wheel or sdist) it picked for this interpreter and platform.
//! Nothing is installed; `--ignore-installed` makes the answer the same on a machine that
//! already has some of them.

use std::path::Path;

use em_exec::Cmd;

use crate::PipRequirement;

/// A distribution pip would install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDist {
    /// Its name, as its metadata spells it.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// The sha256 of the wheel or sdist pip chose.
    pub sha256: String,
    /// Named by the requirements (else a dependency).
    pub requested: bool,
}

/// Reads a pip installation report (`--report`, format version 1): each `install` item's
/// `metadata.name`, `metadata.version`, `download_info.archive_info.hashes.sha256` (or its
/// older `hash = "sha256=..."`) and `requested`. Sorted by name.
pub fn parse_report(json: &str) -> Result<Vec<ResolvedDist>, String> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("pip printed no installation report: {e}"))?;
    let items = value
        .get("install")
        .and_then(|v| v.as_array())
        .ok_or("pip's report has no `install` list")?;
    let mut out = Vec::new();
    for item in items {
        let meta = |key: &str| {
            item.pointer(&format!("/metadata/{key}"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("pip's report has an item without metadata.{key}"))
        };
        let name = meta("name")?;
        let archive = item.pointer("/download_info/archive_info");
        let sha256 = archive
            .and_then(|a| a.pointer("/hashes/sha256"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| {
                archive
                    .and_then(|a| a.get("hash"))
                    .and_then(|v| v.as_str())
                    .and_then(|h| h.strip_prefix("sha256="))
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                format!(
                    "pip's report gives no sha256 for `{name}` (a local directory or a VCS link?)"
                )
            })?;
        out.push(ResolvedDist {
            version: meta("version")?,
            sha256,
            requested: item
                .get("requested")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            name,
        });
    }
    out.sort_by_key(|d| d.name.to_lowercase());
    Ok(out)
}

/// Resolves `requirements` with `python` (`python3`, a venv's `bin/python`), asking
/// `index_url` when given.
pub async fn resolve(
    python: &Path,
    index_url: Option<&str>,
    requirements: &[PipRequirement],
) -> Result<Vec<ResolvedDist>, String> {
    if requirements.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = Cmd::tool(python).args([
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        "-",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
    ]);
    if let Some(url) = index_url {
        cmd = cmd.args(["--index-url", url]);
    }
    let cmd = cmd.args(requirements.iter().map(|r| r.to_string()));
    parse_report(&cmd.stdout().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_gives_versions_and_hashes() {
        let json = r#"{"version":"1","install":[
          {"metadata":{"name":"click","version":"8.1.7"},"requested":false,
           "download_info":{"url":"https://127.0.0.1/c.whl","archive_info":{"hash":"sha256=aa","hashes":{"sha256":"aa"}}}},
          {"metadata":{"name":"Black","version":"24.4.2"},"requested":true,
           "download_info":{"url":"https://127.0.0.1/b.whl","archive_info":{"hash":"sha256=bb"}}}]}"#;
        let r = parse_report(json).expect("report");
        assert_eq!(
            r,
            [
                ResolvedDist {
                    name: "Black".into(),
                    version: "24.4.2".into(),
                    sha256: "bb".into(),
                    requested: true
                },
                ResolvedDist {
                    name: "click".into(),
                    version: "8.1.7".into(),
                    sha256: "aa".into(),
                    requested: false
                },
            ]
        );
        assert!(parse_report(r#"{"install":[{"metadata":{"name":"x","version":"1"}}]}"#).is_err());
    }
}
