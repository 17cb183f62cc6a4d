//! The requirement argument of `pip install`: a PEP 508 subset without URLs or markers.

use std::fmt;
use std::str::FromStr;

/// A requirement: a project name, optional extras, optional version specifiers:
/// `black`, `black==24.*`, `uvicorn[standard]>=0.29,<1`, `pkg!=1.0`.
///
/// Only index requirements are accepted: no direct references (`name @ URL`), paths,
/// environment markers (`; python_version < "3.11"`), whitespace, or a leading `-`, so a
/// manifest can neither point pip elsewhere nor pass it an option.
///
/// ```
/// use em_pip::PipRequirement;
/// let r: PipRequirement = "uvicorn[standard]>=0.29,<1".parse().unwrap();
/// assert_eq!(r.name(), "uvicorn");
/// assert_eq!(r.extras(), ["standard"]);
/// assert_eq!(r.specifiers(), [">=0.29", "<1"]);
/// assert!(PipRequirement::parse("pkg @ https://example.org/pkg.whl").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipRequirement {
    text: String,
    name: String,
    extras: Vec<String>,
    specifiers: Vec<String>,
}

/// PEP 440 comparison operators, longest first so that `===` is not read as `==`.
const OPERATORS: [&str; 8] = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"];

impl PipRequirement {
    /// Checks `text` against `name([extra,...])?(op version(,op version)*)?`; the error
    /// names the argument.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{text}` is not a pip requirement: {why}");
        if text.starts_with('-') {
            return Err(format!(
                "pip requirement `{text}` starts with `-`: it would be read as an option"
            ));
        }
        if text.is_empty() {
            return Err("pip requirement: an empty argument".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "whitespace is not allowed (write `black>=24`, not `black >= 24`)",
            ));
        }
        if text.contains(';') {
            return Err(bad("environment markers (`;`) are not accepted"));
        }
        if text.contains("://") || text.contains('@') {
            return Err(bad("URLs and direct references are not accepted"));
        }
        if text.contains('/') || text.starts_with('.') || text.starts_with('~') {
            return Err(bad("paths are not accepted"));
        }
        if let Some(ext) = em_exec::archive_suffix(text) {
            return Err(bad(&format!(
                "a name ending in `{ext}` is read by pip as a local archive in the working directory, not a registry package"
            )));
        }
        let name_len = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .unwrap_or(text.len());
        let name = &text[..name_len];
        em_exec::check_argument(name).map_err(|e| format!("pip requirement {e}"))?;
        let alnum_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !alnum_ends {
            return Err(bad(
                "a project name is letters, digits and `._-`, starting and ending with a letter or digit",
            ));
        }
        let mut rest = &text[name_len..];
        let mut extras = Vec::new();
        if let Some(after) = rest.strip_prefix('[') {
            let Some((list, after)) = after.split_once(']') else {
                return Err(bad("`[` of the extras is not closed"));
            };
            for extra in list.split(',') {
                if !is_name(extra) {
                    return Err(bad(&format!("`{extra}` is not an extra name")));
                }
                extras.push(extra.to_string());
            }
            rest = after;
        }
        let mut specifiers = Vec::new();
        if !rest.is_empty() {
            for spec in rest.split(',') {
                let Some(op) = OPERATORS.iter().find(|op| spec.starts_with(**op)) else {
                    return Err(bad(&format!(
                        "`{spec}` does not start with a version operator (==, !=, <=, >=, ~=, <, >, ===)"
                    )));
                };
                let version = &spec[op.len()..];
                if version.is_empty() {
                    return Err(bad(&format!("`{op}` needs a version")));
                }
                if let Some(c) = version.chars().find(|c| !is_version_char(*c)) {
                    return Err(bad(&format!("{c:?} is not allowed in a version")));
                }
                specifiers.push(spec.to_string());
            }
        }
        Ok(PipRequirement {
            text: text.to_string(),
            name: name.to_string(),
            extras,
            specifiers,
        })
    }

    /// The project name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The extras inside `[...]`.
    pub fn extras(&self) -> &[String] {
        &self.extras
    }

    /// The version specifiers, each with its operator: `>=0.29`, `<1`.
    pub fn specifiers(&self) -> &[String] {
        &self.specifiers
    }
}

/// `[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?`
fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// PEP 440 versions and wildcards: `24.*`, `1!2.0`, `1.0rc1`, `1.0+local_1`.
fn is_version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".*+!_-".contains(c)
}

/// PEP 503 normalization: lowercase, runs of `-`, `_` and `.` become one `-`.
///
/// ```
/// assert_eq!(em_pip::normalize_name("Foo.Bar__baz"), "foo-bar-baz");
/// ```
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if "-_.".contains(c) {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

impl FromStr for PipRequirement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PipRequirement::parse(s)
    }
}

impl fmt::Display for PipRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_requirements_are_accepted() {
        for (text, name, extras, specs) in [
            ("black", "black", &[][..], &[][..]),
            ("black==24.*", "black", &[], &["==24.*"][..]),
            ("Django>=4.2,<5", "Django", &[], &[">=4.2", "<5"]),
            ("uvicorn[standard]", "uvicorn", &["standard"][..], &[]),
            (
                "requests[socks,security]~=2.31",
                "requests",
                &["socks", "security"],
                &["~=2.31"],
            ),
            ("zope.interface!=6.0", "zope.interface", &[], &["!=6.0"]),
            ("pkg===1.0+local_1", "pkg", &[], &["===1.0+local_1"]),
            ("a", "a", &[], &[]),
            ("x_y-z.w>1!2.0rc1", "x_y-z.w", &[], &[">1!2.0rc1"]),
        ] {
            let r = PipRequirement::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.name(), name);
            assert_eq!(r.extras(), extras);
            assert_eq!(r.specifiers(), specs);
            assert_eq!(r.to_string(), text);
        }
    }

    #[test]
    fn names_pip_would_read_as_local_archives_are_refused() {
        for bad in [
            "evil.whl",
            "evil.tar.gz",
            "evil.zip",
            "Evil.TGZ",
            "evil.tar.bz2",
        ] {
            let e = PipRequirement::parse(bad).expect_err(bad);
            assert!(e.contains("local archive"), "{bad}: {e}");
        }
        for good in ["backports.tarfile", "zipp", "wheel", "zope.interface>=5"] {
            PipRequirement::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_argument_named() {
        for bad in [
            "",
            "-r",
            "--index-url=http://evil",
            "black >=24",
            "black; python_version<'3.11'",
            "pkg@https://example.org/pkg.whl",
            "https://example.org/pkg.whl",
            "git+https://example.org/r.git",
            "./local",
            "/abs/path.whl",
            "dir/pkg",
            "_private",
            "pkg-",
            "pkg=1.0",
            "pkg==",
            "pkg[",
            "pkg[a b]",
            "pkg[-x]",
            "pkg==1.0$(x)",
            "pkg==1;rm",
            "pkg>=1,",
            "pkg`x`",
        ] {
            let err = PipRequirement::parse(bad).expect_err(bad);
            if !bad.is_empty() {
                assert!(err.contains(bad), "{bad:?}: {err}");
            }
        }
    }

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize_name("em_fixture.Hello"), "em-fixture-hello");
        assert_eq!(normalize_name("a-_.b"), "a-b");
        assert_eq!(normalize_name("Django"), "django");
    }
}
