//! The package argument of each tool, checked before anything runs: a manifest must not be
//! able to hand a tool an option (`--index-url=...`), a path, a URL or a git spec.

use std::fmt;

/// The four language package managers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LangTool {
    /// `pipx install`: Python applications, each in its own venv.
    Pipx,
    /// `cargo install`: Rust binaries built from crates.
    Cargo,
    /// `gem install`: Ruby gems.
    Gem,
    /// `go install`: Go binaries built from module paths.
    Go,
}

impl LangTool {
    /// Every tool, in the order the documentation lists them.
    pub const ALL: [LangTool; 4] = [LangTool::Pipx, LangTool::Cargo, LangTool::Gem, LangTool::Go];

    /// The program, the manifest key and the `adapter` label: `pipx`, `cargo`, `gem`, `go`.
    pub fn key(self) -> &'static str {
        match self {
            LangTool::Pipx => "pipx",
            LangTool::Cargo => "cargo",
            LangTool::Gem => "gem",
            LangTool::Go => "go",
        }
    }

    /// The tool called `key`.
    pub fn from_key(key: &str) -> Option<LangTool> {
        LangTool::ALL.into_iter().find(|t| t.key() == key)
    }

    /// What provides the program, for the "not found on PATH" error.
    pub fn provided_by(self) -> &'static str {
        match self {
            LangTool::Pipx => "the Debian package pipx (apt = [\"pipx\"])",
            LangTool::Cargo => "the Debian package cargo, or rustup",
            LangTool::Gem => "the Debian package ruby (apt = [\"ruby\"])",
            LangTool::Go => "the Debian package golang-go, or the golang extension",
        }
    }

    /// What a good package looks like, for error hints.
    pub fn shape(self) -> &'static str {
        match self {
            LangTool::Pipx => {
                "pipx packages are PyPI requirements: `name`, optionally `[extras]`, then specifiers, e.g. `black`, `ruff==0.6.9`"
            }
            LangTool::Cargo => {
                "cargo packages are crate names, optionally `@version`, e.g. `ripgrep`, `ripgrep@14.1.0`"
            }
            LangTool::Gem => {
                "gem packages are gem names, optionally `@version`, e.g. `bundler`, `rake@13.2.1`"
            }
            LangTool::Go => {
                "go packages are module paths with `@version` (or `@latest`), e.g. `golang.org/x/tools/gopls@v0.16.2`"
            }
        }
    }
}

impl fmt::Display for LangTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One package of one tool: what the manifest wrote, the name that `what is installed`
/// lists (and uninstall takes), and the version pin if any.
///
/// ```
/// use em_lang::{LangPackage, LangTool};
///
/// let rg = LangPackage::parse(LangTool::Cargo, "ripgrep@14.1.0").unwrap();
/// assert_eq!((rg.name(), rg.version()), ("ripgrep", Some("14.1.0")));
/// let gopls = LangPackage::parse(LangTool::Go, "golang.org/x/tools/gopls@v0.16.2").unwrap();
/// assert_eq!(gopls.name(), "gopls"); // the binary go install writes
/// let ruff = LangPackage::parse(LangTool::Pipx, "ruff==0.6.9").unwrap();
/// assert_eq!(ruff.version(), Some("0.6.9"));
/// assert!(LangPackage::parse(LangTool::Gem, "--source=http://evil/").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LangPackage {
    tool: LangTool,
    spec: String,
    name: String,
    version: Option<String>,
}

impl LangPackage {
    /// Checks `spec` against `tool`'s grammar; the error says what is wrong with it.
    pub fn parse(tool: LangTool, spec: &str) -> Result<Self, String> {
        em_exec::check_argument(spec).map_err(|e| format!("{tool} package {e}"))?;
        let bad = |why: &str| format!("`{spec}` is not a {tool} package: {why}");
        if spec.contains("://") || spec.starts_with("git+") || spec.starts_with("git@") {
            return Err(bad("URLs and git specs are not accepted"));
        }
        if spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~') {
            return Err(bad("paths are not accepted"));
        }
        let (name, version) = match tool {
            LangTool::Pipx => {
                let req = em_pip::PipRequirement::parse(spec).map_err(|e| bad(&e))?;
                let pin = req
                    .specifiers()
                    .iter()
                    .find_map(|s| s.strip_prefix("=="))
                    .filter(|v| !v.contains('*'))
                    .map(str::to_string);
                (em_pip::normalize_name(req.name()), pin)
            }
            LangTool::Cargo => {
                let (name, version) = split_at(spec);
                check_word(name, is_crate_name).map_err(|w| bad(&w))?;
                if let Some(v) = version {
                    check_version(v, "^~=<>*").map_err(|w| bad(&w))?;
                }
                (name.to_string(), version.map(str::to_string))
            }
            LangTool::Gem => {
                let (name, version) = split_at(spec);
                check_word(name, is_gem_name).map_err(|w| bad(&w))?;
                if let Some(v) = version {
                    check_version(v, "").map_err(|w| bad(&w))?;
                }
                (name.to_string(), version.map(str::to_string))
            }
            LangTool::Go => {
                let Some((path, version)) = spec.rsplit_once('@') else {
                    return Err(bad(
                        "a version is needed outside a module: add `@latest` or `@vX.Y.Z`",
                    ));
                };
                let binary = go_binary(path).ok_or_else(|| {
                    bad("a module path has a domain with a dot, then `/`-separated elements of letters, digits and `._~-`")
                })?;
                if version != "latest" {
                    let rest = version.strip_prefix('v').ok_or_else(|| {
                        bad("a go version is `latest` or starts with `v`, e.g. `v0.16.2`")
                    })?;
                    check_version(rest, "").map_err(|w| bad(&w))?;
                }
                (binary, Some(version.to_string()))
            }
        };
        Ok(LangPackage {
            tool,
            spec: spec.to_string(),
            name,
            version,
        })
    }

    /// The tool.
    pub fn tool(&self) -> LangTool {
        self.tool
    }

    /// What the manifest wrote.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// What the tool's list shows once installed: the pipx venv (normalized name), the
    /// crate, the gem, the go binary.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pinned version (`ruff==0.6.9`, `ripgrep@14.1.0`, `gopls@v0.16.2`), if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The argument the tool gets: the spec as written, except gem's `name:version`.
    pub fn argument(&self) -> String {
        match (self.tool, &self.version) {
            (LangTool::Gem, Some(v)) => format!("{}:{v}", self.name),
            _ => self.spec.clone(),
        }
    }
}

impl fmt::Display for LangPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

fn split_at(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

fn check_word(name: &str, ok: fn(&str) -> bool) -> Result<(), String> {
    if ok(name) {
        Ok(())
    } else if name.contains(['=', '<', '>', ':', '~']) {
        Err(format!(
            "`{name}` is not a valid name: a version is written `name@version`"
        ))
    } else {
        Err(format!("`{name}` is not a valid name"))
    }
}

/// Crate names: ASCII letters, digits, `_` and `-`, starting with a letter, at most 64.
fn is_crate_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Gem names: ASCII letters, digits, `_`, `-` and `.`, starting with a letter or digit.
fn is_gem_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// A version: a digit first (after any of `operators`), then letters, digits, `.`, `+`, `-`.
fn check_version(version: &str, operators: &str) -> Result<(), String> {
    let rest = version.trim_start_matches(|c| operators.contains(c));
    let ok = rest.starts_with(|c: char| c.is_ascii_digit())
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-*".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{version}` is not a version: a version starts with a digit, e.g. `1.2.3`"
        ))
    }
}

/// The binary `go install path@v` writes: the last path element, or the one before a
/// major-version suffix (`.../cmd/tool/v2` installs `tool`). `None` for a path that is not
/// a module path.
fn go_binary(path: &str) -> Option<String> {
    let elements: Vec<&str> = path.split('/').collect();
    let domain = elements.first()?;
    let element_ok = |e: &&str| {
        !e.is_empty()
            && !e.starts_with('.')
            && e.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
    };
    if elements.len() < 2
        || !domain.contains('.')
        || !domain
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c))
        || !elements.iter().all(element_ok)
    {
        return None;
    }
    let last = elements[elements.len() - 1];
    let is_major = |e: &str| {
        e.strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    if is_major(last) && elements.len() > 2 {
        return Some(elements[elements.len() - 2].to_string());
    }
    Some(last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(tool: LangTool, spec: &str) -> LangPackage {
        LangPackage::parse(tool, spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn each_tool_accepts_its_names_and_pins() {
        let p = ok(LangTool::Pipx, "Black");
        assert_eq!((p.name(), p.version()), ("black", None));
        assert_eq!(ok(LangTool::Pipx, "ruff==0.6.9").version(), Some("0.6.9"));
        assert_eq!(ok(LangTool::Pipx, "ruff==0.6.*").version(), None);
        let c = ok(LangTool::Cargo, "cargo-edit@^0.12");
        assert_eq!((c.name(), c.version()), ("cargo-edit", Some("^0.12")));
        let g = ok(LangTool::Gem, "rake@13.2.1");
        assert_eq!((g.name(), g.argument().as_str()), ("rake", "rake:13.2.1"));
        assert_eq!(ok(LangTool::Gem, "bundler").argument(), "bundler");
        let go = ok(LangTool::Go, "golang.org/x/tools/gopls@v0.16.2");
        assert_eq!((go.name(), go.version()), ("gopls", Some("v0.16.2")));
        assert_eq!(
            ok(LangTool::Go, "github.com/x/tool/v2@latest").name(),
            "tool"
        );
        assert_eq!(ok(LangTool::Go, "example.org/v2@v2.0.0").name(), "v2");
    }

    #[test]
    fn options_paths_urls_and_bad_shapes_are_refused() {
        for tool in LangTool::ALL {
            for bad in [
                "-x",
                "--index-url=http://127.0.0.1/",
                "",
                "a b",
                "./x",
                "/x",
            ] {
                assert!(LangPackage::parse(tool, bad).is_err(), "{tool} {bad}");
            }
            assert!(LangPackage::parse(tool, "git+https://127.0.0.1/x.git").is_err());
        }
        for bad in [
            "1crate",
            "rip grep",
            "ripgrep@",
            "ripgrep@latest",
            "rg@1.0;x",
        ] {
            assert!(LangPackage::parse(LangTool::Cargo, bad).is_err(), "{bad}");
        }
        for bad in ["_gem", "rake@", "rake@abc"] {
            assert!(LangPackage::parse(LangTool::Gem, bad).is_err(), "{bad}");
        }
        for bad in [
            "golang.org/x/tools/gopls",
            "gopls@v1",
            "localhost/x@v1.0.0",
            "golang.org@v1.0.0",
            "golang.org/x/tools/gopls@0.16.2",
            "Golang.org/x/y@v1.0.0",
        ] {
            assert!(LangPackage::parse(LangTool::Go, bad).is_err(), "{bad}");
        }
    }
}
