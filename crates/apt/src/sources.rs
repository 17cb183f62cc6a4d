//! The machine's apt sources, and the same sources pointed at a mirror.
//!
//! A mirror is used without touching `/etc`: [`rewrite_for_mirror`] derives a complete
//! set of sources in which every entry of the *primary archive* (the URI of the first
//! `deb` entry, e.g. `http://deb.example.org/debian`) is pointed at the mirror's base URL,
//! and every other entry (security, third-party repositories) is kept as it is. apt-get
//! gets them with `-o Dir::Etc::SourceList=<tmp>/sources.list -o
//! Dir::Etc::SourceParts=<tmp>/sources.list.d`. Other entries are kept, not dropped,
//! because `apt-get update` deletes the lists of sources it no longer knows.
//!
//! One-line entries go to the temporary `sources.list`; deb822 stanzas (`.sources`) go,
//! rewritten in place, to a `.sources` file in the temporary parts directory, so that
//! options like an inline `Signed-By:` key survive. Mirrors are trusted exactly like the
//! primary: the same `signed-by` keys apply, nothing is marked `trusted=yes`.

use std::fs;
use std::path::{Path, PathBuf};

/// Where apt reads its sources and keeps its lists (the parts of its `Dir::` tree we use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptDirs {
    /// `Dir::Etc::SourceList`: `/etc/apt/sources.list`.
    pub source_list: PathBuf,
    /// `Dir::Etc::SourceParts`: `/etc/apt/sources.list.d`.
    pub source_parts: PathBuf,
    /// `Dir::State::Lists`: `/var/lib/apt/lists`.
    pub lists: PathBuf,
}

impl Default for AptDirs {
    fn default() -> Self {
        AptDirs {
            source_list: "/etc/apt/sources.list".into(),
            source_parts: "/etc/apt/sources.list.d".into(),
            lists: "/var/lib/apt/lists".into(),
        }
    }
}

impl AptDirs {
    /// The directories apt uses under the configuration file `APT_CONFIG` names: the
    /// variable in `env` when set there, else in our environment, else Debian's defaults.
    ///
    /// Only flat assignments are read (`Dir::State::Lists "/tmp/lists";`, and `Dir`,
    /// `Dir::State`, `Dir::Etc`, `Dir::Etc::SourceList`, `Dir::Etc::SourceParts`, relative
    /// values resolved against their parent as apt does); nested `Dir { ... };` blocks and
    /// `#include` are not. That covers the isolated configurations tests and CI use.
    pub fn from_apt_config(env: &[(String, String)]) -> AptDirs {
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "APT_CONFIG")
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| std::env::var_os("APT_CONFIG").map(PathBuf::from));
        match path.and_then(|p| fs::read_to_string(p).ok()) {
            Some(text) => AptDirs::from_apt_conf_text(&text),
            None => AptDirs::default(),
        }
    }

    /// [`AptDirs::from_apt_config`] over the text of an apt.conf file.
    pub fn from_apt_conf_text(text: &str) -> AptDirs {
        let mut values: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("").trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, rest)) = line.split_once(char::is_whitespace) else {
                continue;
            };
            let rest = rest.trim();
            let Some(value) = rest
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .map(|(v, _)| v)
            else {
                continue;
            };
            values.push((key.to_ascii_lowercase(), value.to_string()));
        }
        let get = |key: &str, default: &str| -> String {
            values
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map_or_else(|| default.to_string(), |(_, v)| v.clone())
        };
        let root = PathBuf::from(get("dir", "/"));
        let state = under(&root, &get("dir::state", "var/lib/apt/"));
        let etc = under(&root, &get("dir::etc", "etc/apt/"));
        AptDirs {
            source_list: under(&etc, &get("dir::etc::sourcelist", "sources.list")),
            source_parts: under(&etc, &get("dir::etc::sourceparts", "sources.list.d")),
            lists: under(&state, &get("dir::state::lists", "lists/")),
        }
    }
}

/// `child` when absolute, else `parent/child` (apt's rule for `Dir::` values).
fn under(parent: &Path, child: &str) -> PathBuf {
    let child = Path::new(child);
    if child.is_absolute() {
        child.to_path_buf()
    } else {
        parent.join(child)
    }
}

/// The text of one sources file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it was read (its extension says the format: `.sources` is deb822).
    pub path: PathBuf,
    /// Its content.
    pub text: String,
}

impl SourceFile {
    fn is_deb822(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "sources")
    }
}

/// Reads the sources apt would read: `source_list` (when it exists), then the `*.list`
/// and `*.sources` files of `source_parts` in name order.
pub fn read_sources(dirs: &AptDirs) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    match fs::read_to_string(&dirs.source_list) {
        Ok(text) => files.push(SourceFile {
            path: dirs.source_list.clone(),
            text,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", dirs.source_list.display())),
    }
    let mut parts: Vec<PathBuf> = match fs::read_dir(&dirs.source_parts) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", dirs.source_parts.display())),
    };
    parts.sort();
    for path in parts {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(SourceFile { path, text });
    }
    Ok(files)
}

/// One entry of a one-line sources file.
#[derive(Debug, PartialEq, Eq)]
struct OneLine<'a> {
    kind: &'a str,
    options: Option<&'a str>,
    uri: &'a str,
    rest: Vec<&'a str>,
}

/// Parses one line of a `sources.list`; `None` for blank and comment lines.
fn parse_one_line(line: &str) -> Result<Option<OneLine<'_>>, String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (kind, rest) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| "a type with nothing after it".to_string())?;
    if kind != "deb" && kind != "deb-src" {
        return Err(format!("`{kind}` is not `deb` or `deb-src`"));
    }
    let mut rest = rest.trim_start();
    let mut options = None;
    if rest.starts_with('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "an option list `[` without `]`".to_string())?;
        options = Some(&rest[..=end]);
        rest = rest[end + 1..].trim_start();
    }
    let mut words = rest.split_whitespace();
    let uri = words.next().ok_or_else(|| "no URI".to_string())?;
    let rest: Vec<&str> = words.collect();
    if rest.is_empty() {
        return Err("no suite".into());
    }
    Ok(Some(OneLine {
        kind,
        options,
        uri,
        rest,
    }))
}

/// A deb822 stanza: its fields in order, each with its value (continuation lines kept).
type Stanza<'a> = Vec<(&'a str, String)>;

fn parse_deb822(text: &str) -> Result<Vec<Stanza<'_>>, String> {
    let mut stanzas = Vec::new();
    let mut current: Stanza<'_> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = current
                .last_mut()
                .ok_or_else(|| format!("line {}: a continuation line before any field", n + 1))?;
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: `{line}` is not `Field: value`", n + 1))?;
        current.push((key.trim(), value.trim().to_string()));
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    for stanza in &stanzas {
        for required in ["Types", "URIs", "Suites"] {
            if !stanza.iter().any(|(k, _)| k.eq_ignore_ascii_case(required)) {
                return Err(format!("a stanza without `{required}:`"));
            }
        }
    }
    Ok(stanzas)
}

fn field<'s>(stanza: &'s Stanza<'_>, name: &str) -> Option<&'s str> {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_enabled(stanza: &Stanza<'_>) -> bool {
    field(stanza, "Enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"))
}

fn same_base(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The primary archive: the URI of the first `deb` entry (one-line or deb822, in the order
/// apt reads the files).
pub fn primary_archive(files: &[SourceFile]) -> Result<String, String> {
    for file in files {
        let context = |e: String| format!("{}: {e}", file.path.display());
        if file.is_deb822() {
            for stanza in parse_deb822(&file.text).map_err(context)? {
                let types = field(&stanza, "Types").unwrap_or("");
                if is_enabled(&stanza) && types.split_whitespace().any(|t| t == "deb") {
                    let uris = field(&stanza, "URIs").unwrap_or("");
                    if let Some(uri) = uris.split_whitespace().next() {
                        return Ok(uri.to_string());
                    }
                }
            }
        } else {
            for (n, line) in file.text.lines().enumerate() {
                let entry = parse_one_line(line)
                    .map_err(|e| format!("{}:{}: {e}", file.path.display(), n + 1))?;
                if let Some(entry) = entry.filter(|e| e.kind == "deb") {
                    return Ok(entry.uri.to_string());
                }
            }
        }
    }
    Err("no `deb` entry in the apt sources".into())
}

/// The sources to hand apt-get for one mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorSources {
    /// One-line entries, for `Dir::Etc::SourceList`.
    pub list: String,
    /// deb822 stanzas, for a `.sources` file in `Dir::Etc::SourceParts` (empty when the
    /// machine has none).
    pub deb822: String,
}

/// Every entry of `files`, with the URIs equal to `primary` (ignoring a trailing `/`)
/// replaced by `mirror`. Comments and disabled stanzas are dropped. Pure.
///
/// ```
/// use em_apt::{SourceFile, rewrite_for_mirror};
/// let files = [SourceFile {
///     path: "/etc/apt/sources.list".into(),
///     text: "deb [arch=amd64] http://deb.example.org/debian bookworm main contrib\n\
///            deb http://security.example.org/debian-security bookworm-security main\n".into(),
/// }];
/// let m = rewrite_for_mirror(&files, "http://deb.example.org/debian", "http://127.0.0.1:8080/debian").unwrap();
/// assert_eq!(m.list, "# from /etc/apt/sources.list\n\
///     deb [arch=amd64] http://127.0.0.1:8080/debian bookworm main contrib\n\
///     deb http://security.example.org/debian-security bookworm-security main\n");
/// ```
pub fn rewrite_for_mirror(
    files: &[SourceFile],
    primary: &str,
    mirror: &str,
) -> Result<MirrorSources, String> {
    let mut list = String::new();
    let mut deb822 = String::new();
    let mut rewritten = 0usize;
    for file in files {
        if file.is_deb822() {
            let stanzas =
                parse_deb822(&file.text).map_err(|e| format!("{}: {e}", file.path.display()))?;
            for stanza in stanzas.iter().filter(|s| is_enabled(s)) {
                deb822.push_str(&format!("# from {}\n", file.path.display()));
                for (key, value) in stanza {
                    if key.eq_ignore_ascii_case("URIs") {
                        let uris: Vec<&str> = value
                            .split_whitespace()
                            .map(|u| {
                                if same_base(u, primary) {
                                    rewritten += 1;
                                    mirror
                                } else {
                                    u
                                }
                            })
                            .collect();
                        deb822.push_str(&format!("{key}: {}\n", uris.join(" ")));
                    } else {
                        deb822.push_str(&format!("{key}: {value}\n"));
                    }
                }
                deb822.push('\n');
            }
        } else {
            let mut header = false;
            for (n, line) in file.text.lines().enumerate() {
                let Some(entry) = parse_one_line(line)
                    .map_err(|e| format!("{}:{}: {e}", file.path.display(), n + 1))?
                else {
                    continue;
                };
                if !header {
                    list.push_str(&format!("# from {}\n", file.path.display()));
                    header = true;
                }
                let uri = if same_base(entry.uri, primary) {
                    rewritten += 1;
                    mirror
                } else {
                    entry.uri
                };
                let mut words = vec![entry.kind];
                words.extend(entry.options);
                words.push(uri);
                words.extend(entry.rest.iter().copied());
                list.push_str(&words.join(" "));
                list.push('\n');
            }
        }
    }
    if rewritten == 0 {
        return Err(format!("no apt source uses the primary archive {primary}"));
    }
    Ok(MirrorSources { list, deb822 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn one_line_entries_keep_options_suites_and_components() {
        let files = [file(
            "/etc/apt/sources.list",
            "# comment\n\
             deb http://deb.example.org/debian/ bookworm main # trailing\n\
             deb-src   http://deb.example.org/debian bookworm main\n\
             \n\
             deb [signed-by=/usr/share/keyrings/x.gpg arch=amd64] https://download.example.org/linux stable main\n",
        )];
        let primary = primary_archive(&files).expect("primary");
        assert_eq!(primary, "http://deb.example.org/debian/");
        let m = rewrite_for_mirror(&files, &primary, "http://127.0.0.1:8080/debian").expect("ok");
        assert_eq!(
            m.list,
            "# from /etc/apt/sources.list\n\
             deb http://127.0.0.1:8080/debian bookworm main\n\
             deb-src http://127.0.0.1:8080/debian bookworm main\n\
             deb [signed-by=/usr/share/keyrings/x.gpg arch=amd64] https://download.example.org/linux stable main\n"
        );
        assert_eq!(m.deb822, "");
    }

    #[test]
    fn flat_repositories() {
        let files = [file(
            "/x/sources.list",
            "deb [trusted=yes] http://127.0.0.1:1/repo ./\n",
        )];
        let m = rewrite_for_mirror(&files, "http://127.0.0.1:1/repo", "http://127.0.0.1:2/repo")
            .expect("ok");
        assert!(
            m.list
                .contains("deb [trusted=yes] http://127.0.0.1:2/repo ./\n"),
            "{}",
            m.list
        );
    }

    #[test]
    fn deb822_stanzas_keep_every_field() {
        let files = [
            file("/etc/apt/sources.list", "# empty on Debian 12\n"),
            file(
                "/etc/apt/sources.list.d/debian.sources",
                "Types: deb\n\
                 URIs: http://deb.example.org/debian\n\
                 Suites: bookworm bookworm-updates\n\
                 Components: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
                 \n\
                 # security\n\
                 Types: deb\n\
                 URIs: http://deb.example.org/debian-security\n\
                 Suites: bookworm-security\n\
                 Components: main\n\
                 Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n -----END PGP PUBLIC KEY BLOCK-----\n\
                 \n\
                 Types: deb\n\
                 URIs: http://deb.example.org/debian\n\
                 Suites: sid\n\
                 Components: main\n\
                 Enabled: no\n",
            ),
        ];
        let primary = primary_archive(&files).expect("primary");
        assert_eq!(primary, "http://deb.example.org/debian");
        let m = rewrite_for_mirror(&files, &primary, "http://m.example/debian").expect("ok");
        assert_eq!(m.list, "");
        assert_eq!(
            m.deb822,
            "# from /etc/apt/sources.list.d/debian.sources\n\
             Types: deb\n\
             URIs: http://m.example/debian\n\
             Suites: bookworm bookworm-updates\n\
             Components: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
             \n\
             # from /etc/apt/sources.list.d/debian.sources\n\
             Types: deb\n\
             URIs: http://deb.example.org/debian-security\n\
             Suites: bookworm-security\n\
             Components: main\n\
             Signed-By: \n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n -----END PGP PUBLIC KEY BLOCK-----\n\
             \n"
        );
    }

    #[test]
    fn unreadable_sources_say_where() {
        let files = [file("/etc/apt/sources.list.d/x.list", "deb\n")];
        let err = primary_archive(&files).expect_err("bad");
        assert!(
            err.starts_with("/etc/apt/sources.list.d/x.list:1:"),
            "{err}"
        );
        let files = [file("/etc/apt/sources.list.d/x.list", "rpm http://x/ y\n")];
        let err = rewrite_for_mirror(&files, "http://x/", "http://m/").expect_err("bad");
        assert!(err.contains("`rpm` is not `deb` or `deb-src`"), "{err}");
        let files = [file("/a.sources", "Types: deb\nSuites: x\n")];
        assert!(primary_archive(&files).expect_err("bad").contains("URIs"));
        assert!(primary_archive(&[]).is_err());
    }

    #[test]
    fn apt_conf_dirs() {
        let d = AptDirs::from_apt_conf_text(
            "Dir::State::Lists \"/tmp/t/lists\";\n\
             // a comment\n\
             Dir::Etc::SourceList \"/tmp/t/sources.list\";\n\
             Dir::Etc::SourceParts \"parts\";\n\
             APT::Sandbox::User \"root\";\n",
        );
        assert_eq!(d.lists, PathBuf::from("/tmp/t/lists"));
        assert_eq!(d.source_list, PathBuf::from("/tmp/t/sources.list"));
        assert_eq!(d.source_parts, PathBuf::from("/etc/apt/parts"));
        let d = AptDirs::from_apt_conf_text("Dir \"/sysroot/\";\nDir::State \"state\";\n");
        assert_eq!(d.lists, PathBuf::from("/sysroot/state/lists/"));
        assert_eq!(AptDirs::from_apt_conf_text(""), AptDirs::default());
    }
}
