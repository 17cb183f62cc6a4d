//! Resolving npm package specs to exact versions, for a lock file: `npm view --json SPEC
//! name version dist.integrity` asks the registry which published version a spec (`5`,
//! `^3.2`, a dist-tag such as `latest` or `lts`) means today, and the tarball's integrity.
//! Nothing is installed.

use std::path::Path;

use em_exec::Cmd;

use crate::NpmPackage;

/// A spec resolved: the exact version and its tarball's Subresource Integrity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedNpm {
    /// The package name (`@scope/name` included).
    pub name: String,
    /// The exact version.
    pub version: String,
    /// `sha512-...`.
    pub integrity: String,
}

/// Reads `npm view --json SPEC name version dist.integrity`: one object when one version
/// matches, an array (ascending versions) when several do; the last is the highest, the
/// one `npm install` picks. None when nothing matches (npm prints nothing, exit 0).
pub fn parse_view(json: &str) -> Result<Option<ResolvedNpm>, String> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("npm view printed no JSON: {e}"))?;
    let one = match &value {
        serde_json::Value::Array(items) => match items.last() {
            Some(v) => v,
            None => return Ok(None),
        },
        v => v,
    };
    let field = |key: &str| {
        one.get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("npm view gave no `{key}`"))
    };
    Ok(Some(ResolvedNpm {
        name: field("name")?,
        version: field("version")?,
        integrity: field("dist.integrity")?,
    }))
}

/// Resolves `spec` (`typescript@5`, `prettier@latest`, `@types/node`) with `npm`, asking
/// `registry` when given. An error when the registry has no version for it.
pub async fn resolve(
    npm: &Path,
    registry: Option<&str>,
    spec: &str,
) -> Result<ResolvedNpm, String> {
    NpmPackage::parse(spec)?;
    let mut cmd = Cmd::tool(npm).args(["view", "--json"]);
    if let Some(r) = registry {
        cmd = cmd.args(["--registry", r]);
    }
    let cmd = cmd.arg(spec).args(["name", "version", "dist.integrity"]);
    parse_view(&cmd.stdout().await?)?
        .ok_or_else(|| format!("the registry has no version of `{spec}`"))
}

/// Whether the registry still offers `name` at exactly `version`.
pub async fn is_offered(
    npm: &Path,
    registry: Option<&str>,
    name: &str,
    version: &str,
) -> Result<bool, String> {
    match resolve(npm, registry, &format!("{name}@{version}")).await {
        Ok(r) => Ok(r.version == version),
        Err(e) if e.starts_with("the registry has no version") || e.contains("E404") => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_several_or_none() {
        let one = r#"{"name":"typescript","version":"5.4.5","dist.integrity":"sha512-AAA="}"#;
        assert_eq!(
            parse_view(one).expect("json").expect("one").version,
            "5.4.5"
        );
        let many = r#"[{"name":"p","version":"3.0.0","dist.integrity":"sha512-A="},{"name":"p","version":"3.3.2","dist.integrity":"sha512-B="}]"#;
        let r = parse_view(many).expect("json").expect("one");
        assert_eq!(
            (r.version.as_str(), r.integrity.as_str()),
            ("3.3.2", "sha512-B=")
        );
        assert_eq!(parse_view("\n").expect("empty"), None);
        assert!(parse_view(r#"{"name":"p"}"#).is_err());
    }
}
