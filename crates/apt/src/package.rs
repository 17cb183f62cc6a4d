//! A package argument for apt-get, checked against Debian's grammar before it reaches argv.

use std::fmt;
use std::str::FromStr;

/// A package as apt-get takes it: `name`, optionally `:arch`, optionally `=version` or
/// `/release`.
///
/// The name follows Debian policy 5.6.1 (`[a-z0-9][a-z0-9+.-]+`); the version may only use
/// the characters of a Debian version (`[A-Za-z0-9.+~:-]`), the release those of a suite or
/// codename. Anything else is refused with a message that names the argument, so a
/// manifest can never smuggle an option (`-o...`) or a second word into the command line.
///
/// ```
/// use em_apt::AptPackage;
/// let p = AptPackage::parse("libc6:amd64=2.36-9").unwrap();
/// assert_eq!(p.name(), "libc6");
/// assert_eq!(p.arch(), Some("amd64"));
/// assert_eq!(p.version(), Some("2.36-9"));
/// assert_eq!(p.to_string(), "libc6:amd64=2.36-9");
/// assert!(AptPackage::parse("-oAPT::Get::AllowUnauthenticated=1").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AptPackage {
    name: String,
    arch: Option<String>,
    selector: Option<Selector>,
}

/// Which version of a package apt-get should pick.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Selector {
    Version(String),
    Release(String),
}

impl AptPackage {
    /// Parses and checks `arg` (see the type's documentation for the grammar).
    pub fn parse(arg: &str) -> Result<Self, String> {
        em_exec::check_argument(arg).map_err(|e| format!("apt package {e}"))?;
        let (rest, selector) = if let Some((rest, version)) = arg.split_once('=') {
            (rest, Some(Selector::Version(version.to_string())))
        } else if let Some((rest, release)) = arg.split_once('/') {
            (rest, Some(Selector::Release(release.to_string())))
        } else {
            (arg, None)
        };
        let (name, arch) = match rest.split_once(':') {
            Some((name, arch)) => (name, Some(arch.to_string())),
            None => (rest, None),
        };
        if !is_package_name(name) {
            return Err(format!(
                "`{arg}` is not a Debian package name: a name is lowercase letters, digits \
                 and `+ . -`, at least two characters, starting with a letter or digit"
            ));
        }
        if let Some(arch) = &arch
            && (arch.is_empty()
                || !arch
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Err(format!(
                "`{arg}`: `{arch}` is not a Debian architecture (like `amd64`, `arm64`, `all`)"
            ));
        }
        match &selector {
            Some(Selector::Version(v))
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c)) =>
            {
                return Err(format!(
                    "`{arg}`: `{v}` is not a Debian version (letters, digits and `. + ~ : -`)"
                ));
            }
            Some(Selector::Release(r))
                if r.is_empty()
                    || !r
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)) =>
            {
                return Err(format!(
                    "`{arg}`: `{r}` is not a release name (like `bookworm-backports` or `stable`)"
                ));
            }
            _ => {}
        }
        Ok(AptPackage {
            name: name.to_string(),
            arch,
            selector,
        })
    }

    /// The package name, without architecture or version.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The architecture qualifier (`amd64` in `libc6:amd64`).
    pub fn arch(&self) -> Option<&str> {
        self.arch.as_deref()
    }

    /// The requested version (`=VERSION`).
    pub fn version(&self) -> Option<&str> {
        match &self.selector {
            Some(Selector::Version(v)) => Some(v),
            _ => None,
        }
    }

    /// The requested release (`/RELEASE`).
    pub fn release(&self) -> Option<&str> {
        match &self.selector {
            Some(Selector::Release(r)) => Some(r),
            _ => None,
        }
    }

    /// The name as dpkg-query takes it: `name` or `name:arch`.
    pub fn query_name(&self) -> String {
        match &self.arch {
            Some(arch) => format!("{}:{arch}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Debian policy 5.6.1: at least two characters, lowercase letters, digits, `+ - .`,
/// starting with a letter or digit.
fn is_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
}

impl FromStr for AptPackage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AptPackage::parse(s)
    }
}

impl fmt::Display for AptPackage {
    /// The argument as apt-get takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.query_name())?;
        match &self.selector {
            Some(Selector::Version(v)) => write!(f, "={v}"),
            Some(Selector::Release(r)) => write!(f, "/{r}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_debian_grammar() {
        for good in [
            "python3",
            "g++",
            "libstdc++6",
            "python3.11-venv",
            "0ad",
            "libc6:amd64",
            "nodejs=20.11.1-1nodesource1",
            "docker-ce=5:24.0.7-1~debian.12~bookworm",
            "git/bookworm-backports",
            "libc6:i386/stable",
        ] {
            let p = AptPackage::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(p.to_string(), good);
        }
    }

    #[test]
    fn refuses_everything_else_naming_the_argument() {
        for bad in [
            "",
            "-y",
            "--allow-downgrades",
            "-oAPT::Get::AllowUnauthenticated=true",
            "Python3",
            "a",
            ".hidden",
            "python3 curl",
            "python3;reboot",
            "pkg=",
            "pkg=1.0 2",
            "pkg=1.0_beta",
            "pkg/",
            "pkg:",
            "pkg:AMD64",
            "pkg_name",
            "pkg*",
            "$(id)",
        ] {
            let err = AptPackage::parse(bad).expect_err(bad);
            if !bad.is_empty() {
                assert!(err.contains(bad), "{bad:?}: {err}");
            }
        }
    }

    #[test]
    fn parts() {
        let p: AptPackage = "git/bookworm-backports".parse().expect("valid");
        assert_eq!(p.name(), "git");
        assert_eq!(p.release(), Some("bookworm-backports"));
        assert_eq!(p.version(), None);
        assert_eq!(p.query_name(), "git");
    }
}
