//! The package argument of `npm install -g`: a registry name with an optional version spec.

use std::fmt;
use std::str::FromStr;

/// A registry package with an optional version spec: `typescript`, `typescript@5`,
/// `@scope/tool@^1.2.0`.
///
/// Only registry packages are accepted: no paths, tarball URLs, git specs, aliases
/// (`npm:`), or ranges with spaces (`>=1 <2`): a manifest must not be able to make npm
/// fetch from elsewhere, or read a word as an option.
///
/// ```
/// use em_npm::NpmPackage;
/// let p: NpmPackage = "@types/node@20".parse().unwrap();
/// assert_eq!(p.name(), "@types/node");
/// assert_eq!(p.spec(), Some("20"));
/// assert!(NpmPackage::parse("git+https://example.org/x.git").is_err());
/// assert!(NpmPackage::parse("--global-style").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NpmPackage {
    name: String,
    spec: Option<String>,
}

impl NpmPackage {
    /// Checks `text` against `(@scope/)?name(@spec)?`; the error names the argument.
    pub fn parse(text: &str) -> Result<Self, String> {
        em_exec::check_argument(text).map_err(|e| format!("npm package {e}"))?;
        let bad = |why: &str| format!("`{text}` is not an npm registry package: {why}");
        if text.contains("://") || text.starts_with("git+") || text.starts_with("git@") {
            return Err(bad("URLs and git specs are not accepted"));
        }
        if text.starts_with('.') || text.starts_with('/') || text.starts_with('~') {
            return Err(bad("paths are not accepted"));
        }
        if let Some(ext) = em_exec::archive_suffix(text) {
            return Err(bad(&format!(
                "a name ending in `{ext}` is read by npm as a local archive in the working directory, not a registry package"
            )));
        }
        // The version separator is the first `@` after the scope's own `@`.
        let (scope, rest) = match text.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('/') {
                Some((scope, rest)) => (Some(scope), rest),
                None => return Err(bad("a scope must be followed by `/name`")),
            },
            None => (None, text),
        };
        let (name, spec) = match rest.split_once('@') {
            Some((name, spec)) => (name, Some(spec)),
            None => (rest, None),
        };
        if let Some(scope) = scope
            && !is_name_part(scope)
        {
            return Err(bad(
                "the scope must be lowercase letters, digits and `._~-`, not starting with `.` or `_`",
            ));
        }
        if name.contains('/') {
            return Err(bad("paths are not accepted"));
        }
        if !is_name_part(name) {
            return Err(bad(
                "the name must be lowercase letters, digits and `._~-`, starting with a letter or digit",
            ));
        }
        let full = match scope {
            Some(scope) => format!("@{scope}/{name}"),
            None => name.to_string(),
        };
        if full.len() > 214 {
            return Err(bad("npm names are at most 214 characters"));
        }
        let spec = match spec {
            None => None,
            Some("") => return Err(bad("nothing after `@`")),
            Some(spec) if spec.contains(':') => {
                return Err(bad("aliases, URLs and protocol specs are not accepted"));
            }
            Some(spec) => {
                if let Some(c) = spec.chars().find(|c| !is_spec_char(*c)) {
                    return Err(bad(&format!(
                        "{c:?} is not allowed in a version spec (use e.g. `5`, `^1.2.0`, `>=1.2`, `latest`)"
                    )));
                }
                Some(spec.to_string())
            }
        };
        Ok(NpmPackage { name: full, spec })
    }

    /// The package name, with its scope: `@types/node`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version spec after `@`, if any: `5`, `^1.2.0`, `latest`.
    pub fn spec(&self) -> Option<&str> {
        self.spec.as_deref()
    }
}

/// `[a-z0-9][a-z0-9._~-]*`: npm's rules for new package names (lowercase, URL-safe, not
/// starting with `.` or `_`).
fn is_name_part(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._~-".contains(c))
}

/// A version, range or dist-tag without spaces: `5`, `^1.2.0`, `>=1.2`, `1.x`, `latest`,
/// `1.0.0-rc.1+build`.
fn is_spec_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".^~<>=*+-_".contains(c)
}

impl FromStr for NpmPackage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NpmPackage::parse(s)
    }
}

impl fmt::Display for NpmPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spec {
            Some(spec) => write!(f, "{}@{spec}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_packages_are_accepted() {
        for (text, name, spec) in [
            ("typescript", "typescript", None),
            ("typescript@5", "typescript", Some("5")),
            ("prettier@^3.2.0", "prettier", Some("^3.2.0")),
            ("@types/node@>=20", "@types/node", Some(">=20")),
            ("@angular/cli", "@angular/cli", None),
            ("lodash.merge@4.x", "lodash.merge", Some("4.x")),
            ("pnpm@latest", "pnpm", Some("latest")),
            ("x@1.0.0-rc.1+build.5", "x", Some("1.0.0-rc.1+build.5")),
            ("a~b@~1.2", "a~b", Some("~1.2")),
        ] {
            let p = NpmPackage::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.name(), name);
            assert_eq!(p.spec(), spec);
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn names_npm_would_read_as_local_archives_are_refused() {
        for bad in [
            "evil.tgz",
            "evil.tar.gz",
            "EVIL.TAR",
            "x@1.tgz",
            "@scope/x.tgz",
        ] {
            let e = NpmPackage::parse(bad).expect_err(bad);
            assert!(e.contains("local archive"), "{bad}: {e}");
        }
        for good in ["socket.io", "lodash.merge@4.x", "tar", "x-tgz", "zip@1"] {
            NpmPackage::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_argument_named() {
        for bad in [
            "",
            "-g",
            "--registry=http://evil",
            "TypeScript",
            "_private",
            ".hidden",
            "./local",
            "../x",
            "/abs/path",
            "~/x",
            "a/b",
            "@scope",
            "@Scope/x",
            "@/x",
            "x@",
            "x@npm:y",
            "x@file:../y",
            "x@>=1 <2",
            "x@1||2",
            "x@git+https://h/r.git",
            "git+https://example.org/x.git",
            "https://example.org/x.tgz",
            "git@github.com:o/r",
            "x;rm",
            "x$(y)",
            "x@1,2",
        ] {
            let err = NpmPackage::parse(bad).expect_err(bad);
            if !bad.is_empty() {
                assert!(err.contains(bad), "{bad:?}: {err}");
            }
        }
    }
}
