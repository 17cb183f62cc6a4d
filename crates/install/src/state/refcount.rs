//! Reference counting: which of an extension's additions other installed extensions still
//! use, so that `remove` keeps them.

use super::*;

/// What other installed extensions still need ([`State::still_needed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needed {
    /// apt packages.
    pub apt: BTreeSet<String>,
    /// apt packages another installed extension names in an apt step (its own or one
    /// that was already there): while one does, their manual mark stays.
    pub apt_named: BTreeSet<String>,
    /// Global npm packages.
    pub npm: BTreeSet<String>,
    /// pip packages, per venv.
    pub pip: BTreeSet<PipAdded>,
    /// pipx, cargo, gem and go packages.
    pub lang: BTreeSet<LangAdded>,
    /// Files and directories.
    pub files: BTreeSet<PathBuf>,
    /// apt source files and keyrings.
    pub apt_sources: BTreeSet<PathBuf>,
    /// Virtual environments.
    pub venvs: BTreeSet<PathBuf>,
}

impl Needed {
    /// Whether removing `path` (recursively, if it is a directory) would take away something
    /// needed: a needed file, directory, apt source or venv (including the venv of a needed
    /// pip package) that is `path`, lies under it, or contains it.
    pub fn is_path_needed(&self, path: &Path) -> bool {
        let related = |other: &Path| other.starts_with(path) || path.starts_with(other);
        self.files
            .iter()
            .chain(&self.apt_sources)
            .chain(&self.venvs)
            .map(PathBuf::as_path)
            .chain(self.pip.iter().filter_map(|p| p.venv.as_deref()))
            .any(related)
    }
}
