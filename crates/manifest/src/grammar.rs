//! What a well-formed name, package, URL, path or checksum looks like.
//!
//! A manifest's package names end up as arguments of apt-get, npm and pip. A name that
//! starts with `-` would be read as an option (`apt = ["-o=APT::...=..."]`), so every
//! package must match its ecosystem's grammar before anything runs. The adapters (em-apt,
//! em-npm, em-pip) keep their own copies of these checks: the duplication is deliberate, so
//! that neither layer trusts the other with argument injection.

use std::sync::LazyLock;

use regex_lite::Regex;

/// Why a value was rejected: a message and what a good value looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: String,
}

fn problem(message: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        hint: hint.into(),
    }
}

fn regex(pattern: &str) -> Regex {
    // Only called with the constant patterns below, which the tests compile.
    Regex::new(pattern).expect("constant regex compiles")
}

static EXTENSION_NAME: LazyLock<Regex> = LazyLock::new(|| regex("^[a-z0-9][a-z0-9-]*$"));
static OPTION_NAME: LazyLock<Regex> = LazyLock::new(|| regex("^[a-z][a-z0-9_-]*$"));
static ENV_NAME: LazyLock<Regex> = LazyLock::new(|| regex("^[A-Za-z_][A-Za-z0-9_]*$"));
static HOSTNAME: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"));

/// Checks an extension (or profile) name: `[a-z0-9][a-z0-9-]*`.
pub(crate) fn check_extension_name(name: &str, what: &str) -> Option<Problem> {
    if EXTENSION_NAME.is_match(name) {
        return None;
    }
    Some(problem(
        format!("`{name}` is not a valid {what} name"),
        format!(
            "{what} names are lowercase letters, digits and `-`, starting with a letter or digit{}",
            suggestion_suffix(&normalize_name(name))
        ),
    ))
}

fn normalize_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    lowered.trim_matches('-').to_string()
}

fn suggestion_suffix(candidate: &str) -> String {
    if EXTENSION_NAME.is_match(candidate) {
        format!(", e.g. `{candidate}`")
    } else {
        String::new()
    }
}

/// Checks an option name: `[a-z][a-z0-9_-]*` (it becomes `EM_OPT_<NAME>`).
pub(crate) fn check_option_name(name: &str) -> Option<Problem> {
    (!OPTION_NAME.is_match(name)).then(|| {
        problem(
            format!("`{name}` is not a valid option name"),
            "option names are lowercase letters, digits, `_` and `-`, starting with a letter",
        )
    })
}

/// Checks an environment variable name.
pub(crate) fn check_env_name(name: &str) -> Option<Problem> {
    (!ENV_NAME.is_match(name)).then(|| {
        problem(
            format!("`{name}` is not a valid environment variable name"),
            "use letters, digits and `_`, not starting with a digit",
        )
    })
}

/// Variables that change how programs start or what a shell runs, rather than configure
/// a tool: written to a profile.d script, each would run code in every login session
/// (`LD_PRELOAD`, `BASH_ENV`, `PROMPT_COMMAND`), or turn a later `sh -c` of ours into
/// someone else's (`IFS`, `SHELLOPTS`, `ENV`). A manifest may set one only when it lists it
/// in `[extension] env_allow`.
const DANGEROUS_ENV: [&str; 30] = [
    "BASH_ENV",
    "BASHOPTS",
    "CDPATH",
    "ENV",
    "GCONV_PATH",
    "GLOBIGNORE",
    "HOSTALIASES",
    "IFS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "LOCPATH",
    "MALLOC_CHECK_",
    "NLSPATH",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5DB",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "PROMPT_COMMAND",
    "PS1",
    "PS4",
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "RUBYLIB",
    "RUBYOPT",
    "SHELLOPTS",
    "TMPDIR",
    "ZDOTDIR",
];

/// Prefixes of whole families: the dynamic loader's (`LD_PRELOAD`, `LD_AUDIT`,
/// `LD_LIBRARY_PATH` ...), macOS's, and bash's exported functions.
const DANGEROUS_ENV_PREFIXES: [&str; 3] = ["LD_", "DYLD_", "BASH_FUNC_"];

/// Whether `name` is a variable that [`DANGEROUS_ENV`] describes.
pub(crate) fn is_dangerous_env(name: &str) -> bool {
    DANGEROUS_ENV.contains(&name) || DANGEROUS_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The package ecosystems whose names a manifest lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ecosystem {
    Apt,
    Npm,
    Pip,
    Lang(em_lang::LangTool),
}

/// Checks one package name (with its version constraint) against its ecosystem's grammar.
pub(crate) fn check_package(ecosystem: Ecosystem, package: &str) -> Option<Problem> {
    let (tool, shape) = match ecosystem {
        Ecosystem::Lang(t) => (t.key(), t.shape()),
        Ecosystem::Apt => (
            "apt",
            "apt packages are lowercase letters, digits, `+`, `.` and `-`, optionally followed by `:arch`, `=version` or `/release`, e.g. `python3-venv`, `nodejs=20.11.1-1`",
        ),
        Ecosystem::Npm => (
            "npm",
            "npm packages are `name` or `@scope/name` in lowercase, optionally followed by `@version` or `@tag`, e.g. `typescript@5`, `@types/node@^20`",
        ),
        Ecosystem::Pip => (
            "pip",
            "pip requirements are `name`, optionally `[extras]`, then specifiers with ==, !=, <=, >=, ~=, <, >, ===, e.g. `black==24.*`, `uvicorn[standard]>=0.29,<1`",
        ),
    };
    if package.starts_with('-') {
        return Some(problem(
            format!("package `{package}` starts with `-`, so {tool} would read it as an option"),
            "a manifest lists package names only; the tool's options are set by extension-manager",
        ));
    }
    if package.is_empty() {
        return Some(problem(format!("an empty {tool} package name"), shape));
    }
    // The adapter's own parser: what `check` accepts is what `install` runs.
    let parsed = match ecosystem {
        Ecosystem::Apt => em_apt::AptPackage::parse(package).map(drop),
        Ecosystem::Npm => em_npm::NpmPackage::parse(package).map(drop),
        Ecosystem::Pip => em_pip::PipRequirement::parse(package).map(drop),
        Ecosystem::Lang(t) => em_lang::LangPackage::parse(t, package).map(drop),
    };
    parsed.err().map(|why| problem(why, shape))
}

/// Checks a URL's scheme and form: https, or http when `allow_http` is set.
pub(crate) fn check_url(url: &str, allow_http: bool) -> Option<Problem> {
    let parts = em_retry::url::split(url);
    match parts.scheme {
        Some("https") => {}
        Some("http") if allow_http => {}
        Some("http") => {
            return Some(problem(
                format!("`{url}` is not an https URL"),
                "use https; only for a server without TLS, add `allow_http = true` to this step",
            ));
        }
        _ => {
            return Some(problem(
                format!("`{url}` is not an https URL"),
                "downloads and repositories are fetched over https, e.g. `https://example.org/tool.tar.gz`",
            ));
        }
    }
    if parts.authority.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(problem(
            format!("`{url}` is not a valid URL"),
            "a URL has a host and no spaces, e.g. `https://example.org/tool.tar.gz`",
        ));
    }
    None
}

/// Checks a destination path: absolute, with no `..` component.
pub(crate) fn check_absolute_path(path: &str, key: &str) -> Option<Problem> {
    if !path.starts_with('/') {
        return Some(problem(
            format!("`{key}` must be an absolute path, got `{path}`"),
            "paths in a manifest start with `/`; the working directory of an install is not defined",
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Some(problem(
            format!("`{key}` must not contain `..`, got `{path}`"),
            "write the path without `..` so that it says where the file goes",
        ));
    }
    if path.chars().any(|c| c.is_control()) {
        return Some(problem(
            format!("`{key}` contains a control character"),
            "write a plain absolute path",
        ));
    }
    None
}

/// Checks a user or group name of a file step (`owner`, `group`): what `useradd`
/// accepts by default, `[a-z_][a-z0-9_-]*` (a trailing `$` allowed), at most 32 characters.
pub(crate) fn check_account_name(value: &str) -> Option<Problem> {
    let body = value.strip_suffix('$').unwrap_or(value);
    let ok = !body.is_empty()
        && value.len() <= 32
        && body.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && body
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    (!ok).then(|| {
        problem(
            format!("`{value}` is not a user or group name"),
            "write a name as in /etc/passwd or /etc/group, e.g. owner = \"root\" (not a number)",
        )
    })
}

/// Checks the `id` of a block step: `[a-z0-9][a-z0-9-]*` (it goes into the marker lines).
pub(crate) fn check_block_id(value: &str) -> Option<Problem> {
    let ok = value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| {
        problem(
            format!("`{value}` is not a block id"),
            "an id is a short word of [a-z0-9-], e.g. id = \"path\"",
        )
    })
}

/// Checks a sha256 checksum: 64 hexadecimal digits.
pub(crate) fn check_sha256(value: &str) -> Option<Problem> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let got = if value.len() == 64 {
        "it contains a character that is not a hexadecimal digit".to_string()
    } else {
        format!("it has {} characters", value.chars().count())
    };
    Some(problem(
        format!("malformed sha256: {got}"),
        "a sha256 is 64 hexadecimal digits, as printed by `sha256sum FILE`",
    ))
}

/// Parses a file mode written as an octal string: `"755"` or `"0755"`.
pub(crate) fn parse_mode(value: &str) -> Result<u32, Problem> {
    let ok = (3..=4).contains(&value.len()) && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(value, 8) {
        Ok(mode) if ok => Ok(mode),
        _ => Err(problem(
            format!("`{value}` is not an octal file mode"),
            "write the mode as an octal string, e.g. mode = \"0755\"",
        )),
    }
}

/// Checks a domain name listed in `requirements.domains`.
pub(crate) fn check_domain(value: &str) -> Option<Problem> {
    (!HOSTNAME.is_match(value)).then(|| {
        problem(
            format!("`{value}` is not a domain name"),
            "list host names only, e.g. `registry.example.org` (no scheme, port or path)",
        )
    })
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(current)
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// The closest of `candidates` to `word`, when within 2 edits.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= 2 && *d < word.chars().count().max(2))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_names() {
        for good in [
            "nodejs",
            "python3-venv",
            "g++",
            "libc6:amd64",
            "nodejs=20.11.1-1nodesource1",
            "docker-ce=5:24.0.7-1~debian.12~bookworm",
            "git/bookworm-backports",
            "lib32z1:i386=1:1.2.13",
        ] {
            assert_eq!(check_package(Ecosystem::Apt, good), None, "{good}");
        }
        for bad in [
            "-y",
            "-oAPT::x=1",
            "Node",
            "a",
            "node js",
            "x;rm",
            "nodejs=",
            "a:b:c",
            "",
        ] {
            assert!(check_package(Ecosystem::Apt, bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn npm_names() {
        for good in [
            "typescript",
            "typescript@5",
            "@types/node",
            "@types/node@^20.1.0",
            "prettier@latest",
            "pnpm@>=8",
            "left-pad@1.x",
            "lodash.merge@~4.6",
        ] {
            assert_eq!(check_package(Ecosystem::Npm, good), None, "{good}");
        }
        for bad in [
            "--global",
            "-g",
            "TypeScript",
            "@types",
            "a b",
            "x@$(id)",
            "git+https://x",
            "@/x",
        ] {
            assert!(check_package(Ecosystem::Npm, bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn pip_names() {
        for good in [
            "black",
            "black==24.*",
            "Django>=4.2,<5",
            "uvicorn[standard]>=0.29",
            "requests[socks,security]",
            "pkg===1.0",
            "a_b.c-d~=1.4.2",
            "numpy!=1.25.0",
        ] {
            assert_eq!(check_package(Ecosystem::Pip, good), None, "{good}");
        }
        for bad in [
            "-r",
            "--index-url=https://evil",
            "black=24",
            "x; os_name=='nt'",
            "https://x/y.whl",
            "a[",
            "_x",
            // pip's adapter passes one argv entry per requirement: no spaces, as install
            // refuses them.
            "black >= 24",
            "requests[socks, security]",
        ] {
            assert!(check_package(Ecosystem::Pip, bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn urls_paths_checksums_modes() {
        assert_eq!(check_url("https://example.org/a", false), None);
        assert!(check_url("http://example.org/a", false).is_some());
        assert_eq!(check_url("http://example.org/a", true), None);
        assert!(check_url("ftp://example.org/a", true).is_some());
        assert!(check_url("https:///a", false).is_some());
        assert!(check_url("https://a b", false).is_some());
        // What the download itself would refuse: user info but no host, an uppercase
        // scheme (curl and wget take it, our download check does not).
        assert!(check_url("https://user@/a", false).is_some());
        assert!(check_url("HTTPS://example.org/a", false).is_some());
        assert_eq!(check_url("https://u:p@[::1]:8443", false), None);
        assert_eq!(check_absolute_path("/opt/x", "to"), None);
        assert!(check_absolute_path("opt/x", "to").is_some());
        assert!(check_absolute_path("/opt/../etc", "to").is_some());
        assert_eq!(check_sha256(&"aB".repeat(32)), None);
        assert!(check_sha256("abc").is_some());
        assert!(check_sha256(&"g".repeat(64)).is_some());
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert!(parse_mode("0855").is_err());
        assert!(parse_mode("rwx").is_err());
        assert!(parse_mode("07555").is_err());
    }

    #[test]
    fn names_and_distance() {
        assert_eq!(check_extension_name("node-js2", "extension"), None);
        let p = check_extension_name("Node_JS", "extension").expect("bad");
        assert!(p.hint.contains("`node-js`"), "{}", p.hint);
        assert!(check_extension_name("-x", "extension").is_some());
        assert_eq!(edit_distance("nodjs", "nodejs"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("aptt", ["apt", "npm", "pip"]), Some("apt"));
        assert_eq!(closest("zzzzzz", ["apt", "npm"]), None);
    }
}
