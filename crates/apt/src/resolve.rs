//! Resolving apt packages to exact versions, for a lock file: what `apt-get install` would
//! install (the packages named and the dependencies it pulls in), each with its version,
//! Debian architecture and the .deb's sha256 from the Packages index. Nothing is
//! downloaded and nothing changes: `apt-get install --simulate` and one `apt-cache show`
//! (of every package at once) read the lists only, and run without root.

use std::path::Path;

use em_exec::{Cmd, OutputMode};

use crate::AptPackage;

/// One .deb as apt would install it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDeb {
    /// The package name (without `:arch`).
    pub name: String,
    /// The exact version (`18.19.0+dfsg-6~deb12u2`, epochs included).
    pub version: String,
    /// The Debian architecture (`amd64`, `all`).
    pub architecture: String,
    /// The sha256 of the .deb, from the Packages index.
    pub sha256: String,
    /// Named by the step (else a dependency it pulls in).
    pub requested: bool,
}

/// The `Inst` lines of `apt-get install --simulate`: (name, version, architecture) of each
/// package it would unpack, e.g. `Inst libuv1 (1.44.2-1 Debian:12.5/stable [amd64])` or,
/// for an upgrade, `Inst tzdata [2024a-0] (2024a-0+deb12u1 Debian:12/stable, Debian-Security:12/stable-security [all])`.
pub fn parse_simulate(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("Inst ") else {
            continue;
        };
        let Some(name) = rest.split_whitespace().next() else {
            continue;
        };
        let Some(open) = rest.find('(') else {
            continue;
        };
        let Some(close) = rest[open..].find(')') else {
            continue;
        };
        let inside = &rest[open + 1..open + close];
        let Some(version) = inside.split_whitespace().next() else {
            continue;
        };
        let arch = inside
            .rfind('[')
            .and_then(|i| inside[i + 1..].split(']').next())
            .unwrap_or("");
        let name = name.split(':').next().unwrap_or(name);
        out.push((name.to_string(), version.to_string(), arch.to_string()));
    }
    out
}

/// The stanzas of `apt-cache show`: (Package, Version, Architecture, SHA256) of each.
pub fn parse_show(text: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        if let (Some(p), Some(v), Some(a), Some(s)) = (
            field("Package"),
            field("Version"),
            field("Architecture"),
            field("SHA256"),
        ) {
            out.push((p, v, a, s));
        }
    }
    out
}

/// Resolves `packages` (manifest spellings: `nodejs`, `nodejs=20.1-1`, `curl:amd64`) with
/// the given `apt-get` and `apt-cache`: the packages named, at their candidate versions,
/// and every package the install would pull in. Sorted by name.
pub async fn resolve(
    apt_get: &Path,
    apt_cache: &Path,
    packages: &[String],
) -> Result<Vec<ResolvedDeb>, String> {
    let parsed = packages
        .iter()
        .map(|p| AptPackage::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let simulated = Cmd::tool(apt_get)
        .args(["install", "--simulate", "--quiet", "--yes"])
        .args(packages)
        .stdout()
        .await?;
    let mut wanted: Vec<(String, Option<String>, Option<String>, bool)> = Vec::new();
    for (name, version, arch) in parse_simulate(&simulated) {
        let requested = parsed.iter().any(|p| p.name() == name);
        wanted.push((name, Some(version), Some(arch), requested));
    }
    // A named package already installed at its candidate is not in the `Inst` lines:
    // its candidate is what the lock pins.
    for p in &parsed {
        if !wanted.iter().any(|w| w.0 == p.name()) {
            wanted.push((p.name().to_string(), None, None, true));
        }
    }
    // One `apt-cache show` for all of them: its stanzas come back one after another.
    let specs: Vec<String> = wanted
        .iter()
        .map(|(name, version, _, _)| match version {
            Some(v) => format!("{name}={v}"),
            None => packages
                .iter()
                .zip(&parsed)
                .find(|(_, p)| p.name() == name)
                .map_or(name.clone(), |(s, _)| s.clone()),
        })
        .collect();
    let shown = Cmd::tool(apt_cache)
        .args(["show", "--no-all-versions"])
        .args(&specs)
        .stdout()
        .await?;
    let stanzas = parse_show(&shown);
    let mut out = Vec::new();
    for ((name, version, arch, requested), spec) in wanted.into_iter().zip(&specs) {
        // A named package without an `Inst` line: its spelling may still pin a version or
        // an architecture (which an `Architecture: all` package satisfies).
        let named = parsed.iter().find(|p| p.name() == name);
        let version = version.or_else(|| named.and_then(|p| p.version()).map(str::to_string));
        let spelt_arch = named.and_then(|p| p.arch()).filter(|_| arch.is_none());
        let stanza = stanzas
            .iter()
            .find(|s| {
                s.0 == name
                    && version.as_ref().is_none_or(|v| v == &s.1)
                    && arch.as_ref().is_none_or(|a| a == &s.2)
                    && spelt_arch.is_none_or(|a| a == s.2 || s.2 == "all")
            })
            .ok_or_else(|| format!("apt-cache show {spec}: no stanza with a SHA256"))?;
        out.push(ResolvedDeb {
            name: stanza.0.clone(),
            version: stanza.1.clone(),
            architecture: stanza.2.clone(),
            sha256: stanza.3.clone(),
            requested,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    Ok(out)
}

/// Whether the lists still offer `name` at exactly `version` (`apt-cache show name=version`
/// finds a stanza). False is the archive having moved on: a snapshot mirror still has it.
pub async fn is_offered(apt_cache: &Path, name: &str, version: &str) -> Result<bool, String> {
    let out = Cmd::tool(apt_cache)
        .args(["show", "--no-all-versions"])
        .arg(format!("{name}={version}"))
        .output(OutputMode::Capture)
        .run()
        .await
        .map_err(|e| format!("{}: {e}", apt_cache.display()))?;
    Ok(out.success()
        && parse_show(&out.stdout_text())
            .iter()
            .any(|s| s.0 == name && s.1 == version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_lines_give_name_version_and_architecture() {
        let text = "NOTE: This is only a simulation!\nReading package lists...\nInst libuv1 (1.44.2-1 Debian:12.5/stable [amd64])\nInst tzdata [2024a-0] (2024a-0+deb12u1 Debian:12/stable, Debian-Security:12/stable-security [all])\nInst nodejs:amd64 (1:18.19.0-1 Debian:12.5/stable [amd64])\nConf libuv1 (1.44.2-1 Debian:12.5/stable [amd64])\n";
        assert_eq!(
            parse_simulate(text),
            [
                ("libuv1".into(), "1.44.2-1".into(), "amd64".into()),
                ("tzdata".into(), "2024a-0+deb12u1".into(), "all".into()),
                ("nodejs".into(), "1:18.19.0-1".into(), "amd64".into()),
            ]
        );
    }

    #[test]
    fn show_stanzas_give_the_deb_sha256() {
        let text = "Package: jq\nVersion: 1.6-2.1\nArchitecture: amd64\nSize: 64740\nSHA256: 5a3c7e3a0f3b2f1c3d8e5a8f2b1c4d7e9f0a1b2c3d4e5f60718293a4b5c6d7e8\nDescription: x\n\nPackage: jq\nVersion: 1.6-2.1\nArchitecture: arm64\n";
        assert_eq!(
            parse_show(text),
            [(
                "jq".into(),
                "1.6-2.1".into(),
                "amd64".into(),
                "5a3c7e3a0f3b2f1c3d8e5a8f2b1c4d7e9f0a1b2c3d4e5f60718293a4b5c6d7e8".into()
            )]
        );
    }
}
