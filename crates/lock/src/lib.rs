//! # em-lock: `extensions.lock`, what an install resolved
//!
//! A lock file records, per extension and per package step, the exact versions the package
//! managers resolved when `extension-manager lock` ran: apt `pkg=version` with the
//! architecture and the .deb's sha256 (dependencies included, marked as such), npm
//! `name@version` with the registry's integrity, pip `name==version` with the sha256 of
//! the wheel or sdist pip chose (dependencies included, so that `--require-hashes` holds),
//! and each download's sha256 and size. Beside them: the sha256 of the manifest and the
//! option values the lock was made with, so that a changed manifest or option shows as
//! drift.
//!
//! This crate is the format only: the types, reading with file:line:column diagnostics
//! (em-manifest's, so a bad lock reads like a bad manifest), validation of every pinned
//! word against the adapter's own grammar (what the lock says is what `install --locked`
//! will pass as argv), a stable rendering (sorted, no timestamps: re-locking an unchanged
//! world gives the same bytes) and an atomic write. It does not run any tool: the
//! resolvers live in the adapter crates, the pinning in the CLI.
//!
//! ```
//! use em_lock::LockFile;
//! let text = "version = 1\n\n[extensions.tools]\nmanifest_sha256 = \"".to_string()
//!     + &"a".repeat(64) + "\"\nversion = \"1.0.0\"\n";
//! let lock = LockFile::parse("extensions.lock", &text).unwrap();
//! assert_eq!(lock.render(), text.replacen("version = 1", &format!("{}version = 1", em_lock::HEADER), 1));
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use em_manifest::{Diagnostic, SourceFile};
use serde::{Deserialize, Serialize};

/// A string together with where it is written in the lock file (bytes), for diagnostics.
pub type Text = toml::Spanned<String>;

/// The lock file's usual name, in the current directory.
pub const FILE_NAME: &str = "extensions.lock";

/// The format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The comment every written lock starts with.
pub const HEADER: &str = "# Written by `extension-manager lock`: the exact versions and hashes resolved.\n# Edit the manifests or the options and lock again instead of editing this file.\n";

/// What to tell a user whose lock file cannot be read.
const RELOCK_HINT: &str =
    "the file is written by `extension-manager lock`: run it again to write a good one";

/// A whole `extensions.lock`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// The format version: [`FORMAT_VERSION`].
    pub version: toml::Spanned<u32>,
    /// The locked extensions, by name.
    #[serde(default)]
    pub extensions: BTreeMap<String, LockedExtension>,
}

/// One extension as locked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedExtension {
    /// The sha256 of the manifest file the lock was made from.
    pub manifest_sha256: Text,
    /// The extension's own version (`[extension] version`), for people.
    pub version: String,
    /// The value of every option (defaults included) the lock was made with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, LockedOption>,
    /// The package and download steps, by their index in `[[install]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<LockedStep>,
}

/// An option's value in the lock.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LockedOption {
    /// A boolean option.
    Bool(bool),
    /// A string option.
    String(String),
}

impl std::fmt::Display for LockedOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockedOption::Bool(b) => write!(f, "{b}"),
            LockedOption::String(s) => write!(f, "\"{s}\""),
        }
    }
}

/// The kinds of step a lock pins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// `apt = [...]`.
    Apt,
    /// `npm = [...]`.
    Npm,
    /// `pip = [...]`.
    Pip,
    /// `download = "URL"`.
    Download,
}

impl StepKind {
    /// The manifest's key for it (`apt`, `npm`, `pip`, `download`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Apt => "apt",
            StepKind::Npm => "npm",
            StepKind::Pip => "pip",
            StepKind::Download => "download",
        }
    }

    /// The kind of a manifest step's key; None for steps a lock does not pin (run, file, block).
    pub fn of(kind: &str) -> Option<StepKind> {
        match kind {
            "apt" => Some(StepKind::Apt),
            "npm" => Some(StepKind::Npm),
            "pip" => Some(StepKind::Pip),
            "download" => Some(StepKind::Download),
            _ => None,
        }
    }
}

/// One step as locked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedStep {
    /// Its index in the manifest's `[[install]]` list.
    pub index: usize,
    /// What kind of step it is.
    pub kind: StepKind,
    /// The packages (apt, npm, pip), sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
    /// The file (download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<LockedDownload>,
}

/// A package at an exact version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// The package's name (pip: as the index spells it).
    pub name: Text,
    /// The exact version.
    pub version: Text,
    /// Named by the step (true), or pulled in as a dependency (apt, pip).
    #[serde(default, skip_serializing_if = "is_false")]
    pub requested: bool,
    /// apt: the Debian architecture of the .deb (`amd64`, `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Text>,
    /// apt: the .deb's sha256; pip: the wheel's or sdist's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Text>,
    /// npm: the tarball's Subresource Integrity (`sha512-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Text>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl LockedPackage {
    /// A package with `name` and `version`, nothing else yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> LockedPackage {
        LockedPackage {
            name: text(name),
            version: text(version),
            requested: false,
            architecture: None,
            sha256: None,
            integrity: None,
        }
    }

    /// The argument that installs exactly this: apt `name=version`, npm `name@version`,
    /// pip `name==version` (downloads have no package).
    pub fn pinned(&self, kind: StepKind) -> String {
        let (name, version) = (self.name.get_ref(), self.version.get_ref());
        match kind {
            StepKind::Apt => format!("{name}={version}"),
            StepKind::Npm => format!("{name}@{version}"),
            StepKind::Pip | StepKind::Download => format!("{name}=={version}"),
        }
    }
}

/// A download as locked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDownload {
    /// The URL it was fetched from (the manifest's, options filled in).
    pub url: Text,
    /// The sha256 of the bytes.
    pub sha256: Text,
    /// Their number.
    pub size: u64,
}

/// A [`Text`] that points nowhere (for values built in memory, not read).
pub fn text(value: impl Into<String>) -> Text {
    toml::Spanned::new(0..0, value.into())
}

impl Default for LockFile {
    fn default() -> Self {
        LockFile {
            version: toml::Spanned::new(0..0, FORMAT_VERSION),
            extensions: BTreeMap::new(),
        }
    }
}

impl LockFile {
    /// Reads a lock file's text, shown as `path` in diagnostics. Every problem is reported
    /// with file:line:column, a caret and a hint; a file with any is refused whole.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<LockFile, Vec<Diagnostic>> {
        let file = SourceFile::new(path.as_ref(), text);
        let lock: LockFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            vec![
                file.error(span, format!("bad lock file: {}", e.message().trim_end()))
                    .with_hint(RELOCK_HINT),
            ]
        })?;
        let errors = lock.problems(&file);
        if errors.is_empty() {
            Ok(lock)
        } else {
            Err(errors)
        }
    }

    /// Reads the lock file at `path`. A missing file says how to make one.
    pub fn read(path: &Path) -> Result<LockFile, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "make it with `extension-manager lock EXT...` (or name another with --lock-file)"
            } else {
                RELOCK_HINT
            };
            vec![Diagnostic::new(format!("cannot read {}: {e}", path.display())).with_hint(hint)]
        })?;
        LockFile::parse(path, &text)
    }

    fn problems(&self, file: &SourceFile) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        let mut err = |span: std::ops::Range<usize>, message: String, hint: &str| {
            errors.push(file.error(span, message).with_hint(hint));
        };
        if *self.version.get_ref() != FORMAT_VERSION {
            err(
                self.version.span(),
                format!(
                    "lock format version {} is not one this program reads ({FORMAT_VERSION})",
                    self.version.get_ref()
                ),
                RELOCK_HINT,
            );
        }
        for ext in self.extensions.values() {
            if !is_sha256(ext.manifest_sha256.get_ref()) {
                err(
                    ext.manifest_sha256.span(),
                    "`manifest_sha256` is not 64 lowercase hex digits".into(),
                    RELOCK_HINT,
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            for step in &ext.steps {
                if !seen.insert(step.index) {
                    err(
                        0..0,
                        format!("step {} is locked twice", step.index),
                        RELOCK_HINT,
                    );
                }
                for p in &step.packages {
                    package_problems(step.kind, p, &mut err);
                }
                match (&step.download, step.kind) {
                    (Some(d), StepKind::Download) => {
                        if !is_sha256(d.sha256.get_ref()) {
                            err(
                                d.sha256.span(),
                                "a download's `sha256` is 64 lowercase hex digits".into(),
                                RELOCK_HINT,
                            );
                        }
                        if !d.url.get_ref().starts_with("https://")
                            && !d.url.get_ref().starts_with("http://")
                        {
                            err(
                                d.url.span(),
                                format!("`{}` is not an http(s) URL", d.url.get_ref()),
                                RELOCK_HINT,
                            );
                        }
                    }
                    (None, StepKind::Download) => err(
                        0..0,
                        format!("download step {} has no `download` table", step.index),
                        RELOCK_HINT,
                    ),
                    (Some(d), _) => err(
                        d.url.span(),
                        format!("a {} step has no `download` table", step.kind.as_str()),
                        RELOCK_HINT,
                    ),
                    (None, _) => {}
                }
            }
        }
        errors
    }

    /// The lock as TOML: the header, then extensions by name, steps by index, packages by
    /// name. Nothing in it depends on when it was written, so re-locking an unchanged
    /// world rewrites the same bytes.
    pub fn render(&self) -> String {
        let mut sorted = self.clone();
        for ext in sorted.extensions.values_mut() {
            ext.steps.sort_by_key(|s| s.index);
            for step in &mut ext.steps {
                step.packages.sort_by(|a, b| {
                    (a.name.get_ref(), a.version.get_ref())
                        .cmp(&(b.name.get_ref(), b.version.get_ref()))
                });
            }
        }
        let body = toml::to_string(&sorted)
            .expect("a lock file is strings, numbers, booleans and tables: always TOML");
        format!("{HEADER}{body}")
    }

    /// Writes [`LockFile::render`] to `path` atomically: a temporary file beside it,
    /// fsynced, renamed over it. A reader sees the old lock or the new one, never half.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".extensions.lock.")
            .tempfile_in(&dir)?;
        tmp.write_all(self.render().as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

impl LockedExtension {
    /// How the extension as planned now differs from its lock: the manifest file or an
    /// option value changed. A registry offering a newer version is not drift: the lock
    /// still says what to install.
    pub fn drift(
        &self,
        manifest_sha256: &str,
        options: &BTreeMap<String, LockedOption>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if self.manifest_sha256.get_ref() != manifest_sha256 {
            out.push(format!(
                "the manifest changed (sha256 {} in the lock, {} now)",
                short(self.manifest_sha256.get_ref()),
                short(manifest_sha256)
            ));
        }
        let names: std::collections::BTreeSet<&String> =
            self.options.keys().chain(options.keys()).collect();
        for name in names {
            match (self.options.get(name), options.get(name)) {
                (Some(a), Some(b)) if a != b => {
                    out.push(format!("option `{name}` is {a} in the lock, {b} now"));
                }
                (Some(a), None) => out.push(format!("option `{name}` ({a}) is gone")),
                (None, Some(b)) => out.push(format!("option `{name}` ({b}) is not in the lock")),
                _ => {}
            }
        }
        out
    }

    /// The locked step at `index`, if any.
    pub fn step(&self, index: usize) -> Option<&LockedStep> {
        self.steps.iter().find(|s| s.index == index)
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Whether `text` is a sha256 as the lock writes it: 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `text` is an npm integrity string: `sha512-` (or `sha384-`, `sha256-`, `sha1-`)
/// then base64.
pub fn is_integrity(text: &str) -> bool {
    let Some((algo, digest)) = text.split_once('-') else {
        return false;
    };
    matches!(algo, "sha512" | "sha384" | "sha256" | "sha1")
        && !digest.is_empty()
        && digest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

fn package_problems(
    kind: StepKind,
    p: &LockedPackage,
    err: &mut impl FnMut(std::ops::Range<usize>, String, &str),
) {
    let pinned = p.pinned(kind);
    // The adapter's own grammar: what the lock holds is what `install --locked` passes.
    let grammar = match kind {
        StepKind::Apt => em_apt::AptPackage::parse(&pinned).map(drop),
        StepKind::Npm => em_npm::NpmPackage::parse(&pinned).map(drop),
        StepKind::Pip => em_pip::PipRequirement::parse(&pinned).map(drop),
        StepKind::Download => Err("a download step has no packages".to_string()),
    };
    let bad_version = p.version.get_ref().is_empty()
        || p.version.get_ref().starts_with('-')
        || p.version.get_ref().contains(char::is_whitespace);
    if let Err(why) = grammar {
        err(p.name.span(), format!("`{pinned}`: {why}"), RELOCK_HINT);
    } else if bad_version {
        err(
            p.version.span(),
            format!("`{}` is not a version", p.version.get_ref()),
            RELOCK_HINT,
        );
    }
    let needs = |what: &str| {
        format!(
            "{} package `{}` has no {what}",
            kind.as_str(),
            p.name.get_ref()
        )
    };
    match kind {
        StepKind::Apt => {
            if p.architecture.is_none() {
                err(p.name.span(), needs("`architecture`"), RELOCK_HINT);
            }
            match &p.sha256 {
                None => err(p.name.span(), needs("`sha256`"), RELOCK_HINT),
                Some(s) if !is_sha256(s.get_ref()) => err(
                    s.span(),
                    "`sha256` is 64 lowercase hex digits".into(),
                    RELOCK_HINT,
                ),
                Some(_) => {}
            }
        }
        StepKind::Pip => match &p.sha256 {
            None => err(p.name.span(), needs("`sha256`"), RELOCK_HINT),
            Some(s) if !is_sha256(s.get_ref()) => err(
                s.span(),
                "`sha256` is 64 lowercase hex digits".into(),
                RELOCK_HINT,
            ),
            Some(_) => {}
        },
        StepKind::Npm => match &p.integrity {
            None => err(p.name.span(), needs("`integrity`"), RELOCK_HINT),
            Some(s) if !is_integrity(s.get_ref()) => err(
                s.span(),
                format!(
                    "`{}` is not an npm integrity (`sha512-` and base64)",
                    s.get_ref()
                ),
                RELOCK_HINT,
            ),
            Some(_) => {}
        },
        StepKind::Download => {}
    }
}
