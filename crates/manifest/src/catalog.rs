//! The set of manifests and profiles found on the search path.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, SourceFile, Spanned};
use crate::grammar;
use crate::load::{parse_manifest, sort};
use crate::schema::Manifest;

/// The system-wide directory of extra manifests.
pub const SYSTEM_DIR: &str = "/etc/extension-manager/extensions.d";

/// The environment variable holding more directories, colon-separated.
pub const PATH_VAR: &str = "EM_EXTENSIONS_PATH";

/// The file of a directory that holds profiles rather than a manifest (so no extension can
/// be named `profiles`).
pub const PROFILES_FILE: &str = "profiles.toml";

/// Where a directory of the search path comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// [`SYSTEM_DIR`] (or the directory given in its place): skipped when missing.
    System,
    /// An entry of [`PATH_VAR`]: skipped when missing, like an entry of `PATH`.
    EnvPath,
    /// `--extensions-dir`: an error when missing, since the user asked for it.
    CommandLine,
}

/// One directory of the search path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchDir {
    /// The directory.
    pub path: PathBuf,
    /// Where it comes from.
    pub origin: Origin,
}

/// Where manifests come from, in order: later wins by name.
///
/// The bundled set first (embedded in the binary), then the system directory, then
/// `EM_EXTENSIONS_PATH`, then each `--extensions-dir`. The caller passes every part, so
/// that nothing here reads the environment or `/etc` behind a test's back.
///
/// ```
/// use std::path::PathBuf;
/// use em_manifest::{Origin, SearchPath};
/// const BUNDLED: &[(&str, &str)] = &[("base.toml", "[extension]\nname = \"base\"\nversion = \"1\"\n")];
/// let path = SearchPath::standard(BUNDLED, Some("/srv/a:/srv/b".as_ref()), &[PathBuf::from("./ext")]);
/// let origins: Vec<Origin> = path.dirs().iter().map(|d| d.origin).collect();
/// assert_eq!(origins, [Origin::System, Origin::EnvPath, Origin::EnvPath, Origin::CommandLine]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    bundled: Vec<(String, &'static str)>,
    dirs: Vec<SearchDir>,
}

impl SearchPath {
    /// An empty search path.
    pub fn new() -> Self {
        SearchPath::default()
    }

    /// The SPEC's search path: `bundled`, [`SYSTEM_DIR`], the entries of `env_path` (the
    /// value of `EM_EXTENSIONS_PATH`, if set), then `cli_dirs`.
    pub fn standard(
        bundled: &[(&str, &'static str)],
        env_path: Option<&OsStr>,
        cli_dirs: &[PathBuf],
    ) -> Self {
        let mut path = SearchPath::new()
            .with_bundled(bundled)
            .with_system_dir(SYSTEM_DIR);
        if let Some(value) = env_path {
            path = path.with_env_path(value);
        }
        for dir in cli_dirs {
            path = path.with_dir(dir);
        }
        path
    }

    /// Adds bundled files as `(file name or stem, text)` pairs: `nodejs.toml` or `nodejs`,
    /// and `profiles.toml` for bundled profiles.
    pub fn with_bundled(mut self, files: &[(&str, &'static str)]) -> Self {
        self.bundled.extend(
            files
                .iter()
                .map(|(name, text)| (name.trim_end_matches(".toml").to_string(), *text)),
        );
        self
    }

    /// Adds the system directory (normally [`SYSTEM_DIR`]); skipped when missing.
    pub fn with_system_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(SearchDir {
            path: dir.into(),
            origin: Origin::System,
        });
        self
    }

    /// Adds the entries of a colon-separated list (the value of [`PATH_VAR`]); empty
    /// entries are ignored and missing directories skipped.
    pub fn with_env_path(mut self, value: &OsStr) -> Self {
        for entry in std::env::split_paths(value) {
            if !entry.as_os_str().is_empty() {
                self.dirs.push(SearchDir {
                    path: entry,
                    origin: Origin::EnvPath,
                });
            }
        }
        self
    }

    /// Adds an `--extensions-dir`; an error at load when missing.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(SearchDir {
            path: dir.into(),
            origin: Origin::CommandLine,
        });
        self
    }

    /// The directories, in search order (after the bundled set).
    pub fn dirs(&self) -> &[SearchDir] {
        &self.dirs
    }

    /// The names of the manifests on this path (bundled and in the directories, one name
    /// once however many files define it; `profiles.toml` is no manifest), whether or not
    /// they load: what a [`Catalog::load`] of it checks, e.g. for "checked 3 manifests: 2
    /// problems" when it fails. An unreadable directory adds nothing.
    pub fn manifest_names(&self) -> BTreeSet<String> {
        let stems = self.dirs.iter().flat_map(|dir| {
            manifest_files(&dir.path)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        });
        self.bundled
            .iter()
            .map(|(stem, _)| stem.clone())
            .chain(stems)
            .filter(|stem| format!("{stem}.toml") != PROFILES_FILE)
            .collect()
    }
}

/// The manifest files of `dir` (and `profiles.toml`), sorted.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_manifest_file(p))
        .collect();
    files.sort();
    Ok(files)
}

/// A named list of extensions: `[profiles] web = ["nodejs", "playwright"]`.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The profile's name.
    pub name: Spanned<String>,
    /// The extensions it installs (each one known to the catalog).
    pub extensions: Vec<Spanned<String>>,
    /// The profiles file it comes from.
    pub source: Arc<SourceFile>,
}

impl Profile {
    /// The extension names.
    pub fn names(&self) -> Vec<&str> {
        self.extensions.iter().map(|e| e.value.as_str()).collect()
    }
}

/// Parses a `profiles.toml`: a single `[profiles]` table of lists of extension names.
/// (Whether the names exist is checked by the [`Catalog`], which knows the whole set.)
pub fn parse_profiles(
    path: impl Into<PathBuf>,
    text: &str,
) -> Result<Vec<Profile>, Vec<Diagnostic>> {
    let source = SourceFile::new(path, text);
    let root = match DeTable::parse(source.text()) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Err(vec![
                source
                    .error(span, format!("invalid TOML: {}", e.message()))
                    .with_hint("the profiles file must be valid TOML (https://toml.io)"),
            ]);
        }
    };
    let mut errors = Vec::new();
    let mut profiles = Vec::new();
    let hint = "a profiles file holds one table: [profiles] NAME = [\"ext\", ...]";
    for (key, value) in root.get_ref().iter() {
        if key.get_ref() != "profiles" {
            errors.push(
                source
                    .error(
                        key.span(),
                        format!("unknown key `{}` in a profiles file", key.get_ref()),
                    )
                    .with_hint(hint),
            );
            continue;
        }
        let DeValue::Table(table) = value.get_ref() else {
            errors.push(
                source
                    .error(value.span(), "`profiles` must be a table")
                    .with_hint(hint),
            );
            continue;
        };
        for (name, list) in table.iter() {
            if let Some(p) = grammar::check_extension_name(name.get_ref(), "profile") {
                errors.push(source.error(name.span(), p.message).with_hint(p.hint));
                continue;
            }
            let DeValue::Array(items) = list.get_ref() else {
                errors.push(
                    source
                        .error(
                            list.span(),
                            format!(
                                "profile `{}` must be a list of extension names",
                                name.get_ref()
                            ),
                        )
                        .with_hint(format!(
                            "write {} = [\"nodejs\", \"python\"]",
                            name.get_ref()
                        )),
                );
                continue;
            };
            let mut extensions = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => extensions.push(Spanned::new(s.to_string(), item.span())),
                    _ => errors.push(
                        source
                            .error(item.span(), "a profile lists extension names (strings)")
                            .with_hint(format!(
                                "write {} = [\"nodejs\", \"python\"]",
                                name.get_ref()
                            )),
                    ),
                }
            }
            profiles.push(Profile {
                name: Spanned::new(name.get_ref().to_string(), name.span()),
                extensions,
                source: source.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(profiles)
    } else {
        sort(&mut errors);
        Err(errors)
    }
}

/// Every manifest and profile of a search path, checked as a whole: each `requires` names
/// a known extension, `requires` has no cycle, each profile names known extensions.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub(crate) manifests: BTreeMap<String, Manifest>,
    profiles: BTreeMap<String, Profile>,
}

impl Catalog {
    /// Loads the search path, later entries replacing earlier ones by name, and reports
    /// every error of every file (not just the first).
    pub fn load(path: &SearchPath) -> Result<Catalog, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut manifests: BTreeMap<String, Manifest> = BTreeMap::new();
        let mut profiles: Vec<Profile> = Vec::new();
        // Names whose file failed to load: not reported again as "unknown" by dependents.
        let mut broken: BTreeSet<String> = BTreeSet::new();
        let mut catalog = None;
        let mut add = |stem: &str, display: PathBuf, text: &str, errors: &mut Vec<Diagnostic>| {
            if format!("{stem}.toml") == PROFILES_FILE {
                match parse_profiles(display, text) {
                    Ok(p) => profiles.extend(p),
                    Err(e) => errors.extend(e),
                }
                return;
            }
            match parse_manifest(SourceFile::new(display, text), Some(stem)) {
                Ok(m) => {
                    broken.remove(stem);
                    manifests.insert(m.name.value.clone(), m);
                }
                Err(e) => {
                    errors.extend(e);
                    manifests.remove(stem);
                    broken.insert(stem.to_string());
                }
            }
        };
        for (stem, text) in &path.bundled {
            add(
                stem,
                PathBuf::from(format!("<bundled>/{stem}.toml")),
                text,
                &mut errors,
            );
        }
        for dir in &path.dirs {
            let files = match manifest_files(&dir.path) {
                Ok(files) => files,
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && dir.origin != Origin::CommandLine =>
                {
                    continue;
                }
                Err(e) => {
                    errors.push(
                        Diagnostic::new(format!(
                            "cannot read the extensions directory `{}`: {e}",
                            dir.path.display()
                        ))
                        .with_hint("--extensions-dir takes a directory of NAME.toml manifests"),
                    );
                    continue;
                }
            };
            for file in files {
                let Some(stem) = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                match std::fs::read_to_string(&file) {
                    Ok(text) => add(&stem, file, &text, &mut errors),
                    Err(e) => errors.push(Diagnostic::new(format!(
                        "cannot read `{}`: {e}",
                        file.display()
                    ))),
                }
            }
        }
        if let Err(more) = Catalog::check(manifests, profiles, &broken).map(|c| catalog = Some(c)) {
            errors.extend(more);
        }
        match catalog {
            Some(catalog) if errors.is_empty() => Ok(catalog),
            _ => {
                sort(&mut errors);
                Err(errors)
            }
        }
    }

    /// A catalog of already parsed manifests and profiles (later wins by name), checked as
    /// a whole.
    pub fn from_parts(
        manifests: impl IntoIterator<Item = Manifest>,
        profiles: impl IntoIterator<Item = Profile>,
    ) -> Result<Catalog, Vec<Diagnostic>> {
        let manifests = manifests
            .into_iter()
            .map(|m| (m.name.value.clone(), m))
            .collect();
        Catalog::check(manifests, profiles.into_iter().collect(), &BTreeSet::new())
    }

    fn check(
        manifests: BTreeMap<String, Manifest>,
        profile_list: Vec<Profile>,
        broken: &BTreeSet<String>,
    ) -> Result<Catalog, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut catalog = Catalog {
            manifests,
            profiles: BTreeMap::new(),
        };
        let known = |name: &str| catalog.manifests.contains_key(name) || broken.contains(name);
        for m in catalog.manifests.values() {
            for r in &m.requires {
                if !known(&r.value) {
                    errors.push(
                        m.error_at(
                            r.span.clone(),
                            format!(
                                "`{}` requires `{}`, which is not a known extension",
                                m.name(),
                                r.value
                            ),
                        )
                        .with_hint(catalog.unknown_hint(&r.value)),
                    );
                }
            }
        }
        if errors.is_empty() {
            errors.extend(catalog.requires_cycles());
        }
        for p in profile_list {
            for e in &p.extensions {
                if !known(&e.value) {
                    errors.push(
                        p.source
                            .error(
                                e.span.clone(),
                                format!(
                                    "profile `{}` lists `{}`, which is not a known extension",
                                    p.name.value, e.value
                                ),
                            )
                            .with_hint(catalog.unknown_hint(&e.value)),
                    );
                }
            }
            catalog.profiles.insert(p.name.value.clone(), p);
        }
        if errors.is_empty() {
            Ok(catalog)
        } else {
            sort(&mut errors);
            Err(errors)
        }
    }

    pub(crate) fn unknown_hint(&self, name: &str) -> String {
        let suggestions = self.suggest(name);
        match suggestions.as_slice() {
            [] => "add its manifest to an extensions directory (--extensions-dir), or check the name with `extension-manager list`".to_string(),
            [one] => format!("did you mean `{one}`?"),
            many => format!(
                "did you mean one of {}?",
                many.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The manifest named `name`.
    pub fn get(&self, name: &str) -> Option<&Manifest> {
        self.manifests.get(name)
    }

    /// Whether an extension named `name` is known.
    pub fn contains(&self, name: &str) -> bool {
        self.manifests.contains_key(name)
    }

    /// Every manifest, by name.
    pub fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.manifests.values()
    }

    /// Every extension name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.manifests.keys().map(String::as_str)
    }

    /// The profile named `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The extensions of profile `name` (for `--profile`); an unknown profile is an error
    /// naming the known ones.
    pub fn expand_profile(&self, name: &str) -> Result<Vec<String>, Diagnostic> {
        match self.profiles.get(name) {
            Some(p) => Ok(p.extensions.iter().map(|e| e.value.clone()).collect()),
            None => {
                let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                let hint = match grammar::closest(name, known.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None if known.is_empty() => {
                        format!(
                            "no profiles are defined: add a {PROFILES_FILE} to an extensions directory"
                        )
                    }
                    None => format!(
                        "the profiles are {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                Err(Diagnostic::new(format!("unknown profile `{name}`")).with_hint(hint))
            }
        }
    }

    /// Every profile, by name.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// "Did you mean": extension names within 2 edits of `name`, or starting with it,
    /// closest first.
    ///
    /// ```
    /// use em_manifest::{Catalog, Manifest};
    /// let m = |n: &str| Manifest::parse(format!("{n}.toml"), &format!("[extension]\nname = \"{n}\"\nversion = \"1\"\n")).unwrap();
    /// let catalog = Catalog::from_parts([m("nodejs"), m("python"), m("node-tools")], []).unwrap();
    /// assert_eq!(catalog.suggest("nodjs"), ["nodejs"]);
    /// assert_eq!(catalog.suggest("node"), ["nodejs", "node-tools"]);
    /// assert!(catalog.suggest("haskell").is_empty());
    /// ```
    pub fn suggest(&self, name: &str) -> Vec<String> {
        if name.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<(usize, &str)> = self
            .names()
            .filter(|n| *n != name)
            .filter_map(|n| {
                let d = grammar::edit_distance(name, n);
                let close = d <= 2 && d < n.chars().count();
                (close || n.starts_with(name)).then_some((d, n))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n.to_string()).collect()
    }
}

fn is_manifest_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Dot files are editor and tool leftovers (`.nodejs.toml.swp`, `.#x.toml`).
    name.ends_with(".toml") && !name.starts_with('.') && path.is_file()
}
