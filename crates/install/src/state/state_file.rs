//! `state.json`: what each extension installed, versioned, read and written whole.

use super::*;

/// What is installed: one record per extension, by name. Serialized as
/// `{"version": 1, "extensions": {...}}`; see [`STATE_VERSION`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The records, by extension name.
    pub extensions: BTreeMap<String, InstalledExtension>,
}

/// How `state.json` looks on disk (the version travels with the data).
#[derive(Serialize)]
pub(super) struct StateFileRef<'a> {
    pub(super) version: u64,
    pub(super) extensions: &'a BTreeMap<String, InstalledExtension>,
}

#[derive(Deserialize)]
pub(super) struct StateFile {
    pub(super) version: u64,
    #[serde(default)]
    pub(super) extensions: BTreeMap<String, InstalledExtension>,
}

/// Only the version, read first: a newer file must be refused for its version, not for
/// whatever else changed in its layout.
#[derive(Deserialize)]
pub(super) struct StateVersion {
    pub(super) version: Option<u64>,
}

/// A parse failure without the path (added by [`StateDir::load`]).
pub(super) enum ParseError {
    Corrupt(serde_json::Error),
    Version(u64),
}

impl ParseError {
    pub(super) fn at(self, path: PathBuf) -> StateError {
        match self {
            ParseError::Corrupt(source) => StateError::Corrupt { path, source },
            ParseError::Version(found) => StateError::UnsupportedVersion { path, found },
        }
    }
}

impl State {
    pub(super) fn from_json(bytes: &[u8]) -> Result<State, ParseError> {
        let probe: StateVersion = serde_json::from_slice(bytes).map_err(ParseError::Corrupt)?;
        match probe.version {
            Some(STATE_VERSION) => {}
            Some(found) => return Err(ParseError::Version(found)),
            None => {
                return Err(ParseError::Corrupt(serde::de::Error::missing_field(
                    "version",
                )));
            }
        }
        let file: StateFile = serde_json::from_slice(bytes).map_err(ParseError::Corrupt)?;
        debug_assert_eq!(file.version, STATE_VERSION);
        Ok(State {
            extensions: file.extensions,
        })
    }

    /// Whether `name` is recorded as completely installed (not failed, not partial).
    pub fn is_installed(&self, name: &str) -> bool {
        self.extensions
            .get(name)
            .is_some_and(|e| e.status == ExtensionStatus::Installed)
    }

    /// What the extensions other than `except` added and therefore still need: `remove
    /// except` must leave all of it in place.
    ///
    /// Every other record counts, whatever its status: a failed or partial extension's
    /// additions are still on the machine, and its own `remove` (or its next install,
    /// which resumes) relies on them.
    ///
    /// ```
    /// use em_install::state::{Added, ExtensionStatus, InstalledExtension, State};
    ///
    /// fn with_apt(packages: &[&str]) -> InstalledExtension {
    ///     InstalledExtension {
    ///         version: "1".into(),
    ///         manifest_sha256: String::new(),
    ///         fingerprint: String::new(),
    ///         options: Default::default(),
    ///         status: ExtensionStatus::Installed,
    ///         installed_at: String::new(),
    ///         completed_steps: vec![],
    ///         added: Added { apt: packages.iter().map(|p| p.to_string()).collect(), ..Default::default() },
    ///         error: None,
    ///         uses: Added::default(),
    ///     }
    /// }
    /// let mut state = State::default();
    /// state.extensions.insert("python".into(), with_apt(&["python3", "build-essential"]));
    /// state.extensions.insert("rust".into(), with_apt(&["build-essential"]));
    /// let undo = state.to_undo("python").expect("python is recorded");
    /// assert_eq!(undo.apt, ["python3"]); // rust still needs build-essential
    /// ```
    pub fn still_needed(&self, except: &str) -> Needed {
        let mut needed = Needed::default();
        // What others added, and what others' steps use even though it was already on
        // the machine when they ran (A adds X; B, installed later, also needs X).
        for added in self
            .extensions
            .iter()
            .filter(|(name, _)| name.as_str() != except)
            .flat_map(|(_, record)| [&record.added, &record.uses])
        {
            needed.apt.extend(added.apt.iter().cloned());
            needed.apt.extend(added.apt_deps.iter().cloned());
            needed.apt_named.extend(added.apt.iter().cloned());
            needed.npm.extend(added.npm.iter().cloned());
            needed.pip.extend(added.pip.iter().cloned());
            needed.lang.extend(added.lang.iter().cloned());
            needed.files.extend(added.files.iter().cloned());
            needed.apt_sources.extend(added.apt_sources.iter().cloned());
            needed.venvs.extend(added.venvs.iter().cloned());
            needed
                .files
                .extend(added.replaced.iter().map(|r| r.path.clone()));
        }
        needed
    }

    /// What `remove name` should undo: what `name` added, less what other extensions still
    /// need ([`State::still_needed`], [`Needed::is_path_needed`]), in the recorded order.
    /// `None` when `name` has no record.
    pub fn to_undo(&self, name: &str) -> Option<Added> {
        let added = &self.extensions.get(name)?.added;
        let needed = self.still_needed(name);
        let keep_paths = |paths: &[PathBuf]| -> Vec<PathBuf> {
            paths
                .iter()
                .filter(|p| !needed.is_path_needed(p))
                .cloned()
                .collect()
        };
        Some(Added {
            apt: added
                .apt
                .iter()
                .filter(|p| !needed.apt.contains(*p))
                .cloned()
                .collect(),
            npm: added
                .npm
                .iter()
                .filter(|p| !needed.npm.contains(*p))
                .cloned()
                .collect(),
            pip: added
                .pip
                .iter()
                .filter(|p| !needed.pip.contains(*p))
                .cloned()
                .collect(),
            lang: added
                .lang
                .iter()
                .filter(|p| !needed.lang.contains(*p))
                .cloned()
                .collect(),
            files: keep_paths(&added.files),
            apt_sources: keep_paths(&added.apt_sources),
            venvs: keep_paths(&added.venvs),
            apt_deps: added
                .apt_deps
                .iter()
                .filter(|p| !needed.apt.contains(*p) && !added.apt.contains(*p))
                .cloned()
                .collect(),
            // The mark goes back when no other extension names the package (apt's own
            // rule: a package stays manual while someone asked for it by name).
            apt_auto: added
                .apt_auto
                .iter()
                .filter(|p| !needed.apt_named.contains(*p))
                .cloned()
                .collect(),
            // Deleted only when empty: another extension's packages keep it.
            dirs: added.dirs.clone(),
            // Each is this extension's own: a backup it made, a block with its name.
            replaced: added.replaced.clone(),
            blocks: added.blocks.clone(),
            order: added.order.clone(),
        })
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateFileRef {
            version: STATE_VERSION,
            extensions: &self.extensions,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = StateFile::deserialize(deserializer)?;
        if file.version != STATE_VERSION {
            return Err(serde::de::Error::custom(format!(
                "unsupported state version {} (this build understands {STATE_VERSION})",
                file.version
            )));
        }
        Ok(State {
            extensions: file.extensions,
        })
    }
}
