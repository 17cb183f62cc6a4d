//! What an extension's record holds: its version, status, and every addition (packages,
//! files, directories, sources, blocks, replaced files) that `remove` undoes.

use super::*;

/// The record of one extension in `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledExtension {
    /// The manifest's version.
    pub version: String,
    /// The sha256 of the manifest that was installed.
    pub manifest_sha256: String,
    /// The manifest sha256 and the option values: a change in either means reinstall.
    pub fingerprint: String,
    /// The option values used (`--set EXT.OPTION=VALUE` and defaults).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Whether the install finished.
    pub status: ExtensionStatus,
    /// When the install ran (RFC 3339).
    pub installed_at: String,
    /// The indexes of the install steps that completed (for the report; a resumed install
    /// runs every step again, which is safe because steps are idempotent or guarded).
    #[serde(default)]
    pub completed_steps: Vec<usize>,
    /// What the install put on the machine that was not there before.
    #[serde(default)]
    pub added: Added,
    /// Everything its steps install, whether or not it was already there: what keeps a
    /// package or file of another extension from being removed under it.
    #[serde(default)]
    pub uses: Added,
    /// Why the install failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// How far an extension's install got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionStatus {
    /// Every step ran and the validate checks passed.
    Installed,
    /// A step or a validate check failed.
    Failed,
    /// Some steps ran; the run stopped (or is still running) before the end.
    Partial,
}

impl fmt::Display for ExtensionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtensionStatus::Installed => "installed",
            ExtensionStatus::Failed => "failed",
            ExtensionStatus::Partial => "partial",
        })
    }
}

/// What an install added to the machine (only what was not there before): what `remove`
/// may undo.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Added {
    /// apt packages.
    pub apt: Vec<String>,
    /// Global npm packages, by name.
    pub npm: Vec<String>,
    /// pip packages, with the venv they went into.
    pub pip: Vec<PipAdded>,
    /// Packages of pipx, cargo install, gem and go install, with their tool.
    pub lang: Vec<LangAdded>,
    /// Downloads, unpacked directories, the profile.d env file.
    pub files: Vec<PathBuf>,
    /// apt source files (and keyrings) of third-party repositories.
    pub apt_sources: Vec<PathBuf>,
    /// Virtual environments created.
    pub venvs: Vec<PathBuf>,
    /// apt packages an apt step pulled in besides the ones it named (dpkg's status before
    /// and after the step), as dpkg names them (`libuv1`, `libc6:i386`).
    pub apt_deps: Vec<String>,
    /// Named apt packages that were installed as a dependency, marked automatically
    /// installed, before this extension named them (or that another extension recorded
    /// so): `apt-get install` marked them manual, and `remove` gives the auto mark back
    /// (`apt-mark auto`) when no other installed extension names them, so that apt's
    /// autoremove again judges them by what depends on them. Not removed by `remove`.
    pub apt_auto: Vec<String>,
    /// Directories a tool created as a side effect and leaves behind when its last
    /// package goes (npm's global `node_modules`): deleted by `remove` only when empty.
    pub dirs: Vec<PathBuf>,
    /// Files that existed and a `file` step with `replace = true` replaced: `remove`
    /// puts the original back from its backup.
    pub replaced: Vec<ReplacedFile>,
    /// Managed blocks a `block` step wrote: `remove` takes out exactly the block.
    pub blocks: Vec<BlockAdded>,
    /// The install step that added each item, so that `remove` undoes the steps in reverse
    /// order. Empty in the state of older versions: see [`Added::by_step`].
    pub order: Vec<AddedAt>,
}

/// One item of [`Added`], and the install step (its index in the manifest) that added it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAt {
    /// The index of the step in the manifest's `[[install]]` list.
    pub step: usize,
    /// What it added.
    #[serde(flatten)]
    pub item: Addition,
}

/// One thing an install added, of any kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Addition {
    /// A named apt package.
    Apt(String),
    /// An apt package pulled in as a dependency.
    AptDep(String),
    /// A named apt package whose automatic mark `remove` gives back.
    AptAuto(String),
    /// A global npm package.
    Npm(String),
    /// A pip package.
    Pip(PipAdded),
    /// A pipx, cargo, gem or go package.
    Lang(LangAdded),
    /// A file or directory.
    File(PathBuf),
    /// An apt source file or keyring.
    AptSource(PathBuf),
    /// A virtual environment.
    Venv(PathBuf),
    /// A directory a tool created, deleted when empty.
    Dir(PathBuf),
    /// A file replaced, with the backup of its original.
    Replaced(ReplacedFile),
    /// A managed block in a file.
    Block(BlockAdded),
}

/// A file a `file` step replaced ([`Added::replaced`]): where the original is kept, and
/// its mode and owner, which `remove` gives back with its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedFile {
    /// The file.
    pub path: PathBuf,
    /// The copy of the original, in the state directory (`backups/EXT/...`).
    pub backup: PathBuf,
    /// The original's permission bits.
    pub mode: u32,
    /// The original's owner.
    pub uid: u32,
    /// The original's group.
    pub gid: u32,
}

/// A managed block ([`Added::blocks`]): `# BEGIN extension-manager LABEL` ... `# END ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAdded {
    /// The file holding it.
    pub path: PathBuf,
    /// The marker label: the extension's name, then the step's `id` when it has one.
    pub label: String,
    /// The install created the file: `remove` deletes it when nothing else is left.
    #[serde(default)]
    pub created_file: bool,
    /// The install put a newline before the block (the file did not end with one):
    /// `remove` takes it out too while the block is still last.
    #[serde(default)]
    pub added_newline: bool,
}

impl Added {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.apt.is_empty()
            && self.npm.is_empty()
            && self.pip.is_empty()
            && self.lang.is_empty()
            && self.files.is_empty()
            && self.apt_sources.is_empty()
            && self.venvs.is_empty()
            && self.apt_deps.is_empty()
            && self.apt_auto.is_empty()
            && self.dirs.is_empty()
            && self.replaced.is_empty()
            && self.blocks.is_empty()
    }

    /// Every item, in a fixed order of kinds.
    pub fn items(&self) -> Vec<Addition> {
        let mut items: Vec<Addition> = Vec::new();
        items.extend(self.npm.iter().cloned().map(Addition::Npm));
        items.extend(self.pip.iter().cloned().map(Addition::Pip));
        items.extend(self.lang.iter().cloned().map(Addition::Lang));
        items.extend(self.blocks.iter().cloned().map(Addition::Block));
        items.extend(self.replaced.iter().cloned().map(Addition::Replaced));
        items.extend(self.files.iter().cloned().map(Addition::File));
        items.extend(self.venvs.iter().cloned().map(Addition::Venv));
        items.extend(self.dirs.iter().cloned().map(Addition::Dir));
        items.extend(self.apt.iter().cloned().map(Addition::Apt));
        items.extend(self.apt_deps.iter().cloned().map(Addition::AptDep));
        items.extend(self.apt_auto.iter().cloned().map(Addition::AptAuto));
        items.extend(self.apt_sources.iter().cloned().map(Addition::AptSource));
        items
    }

    /// Notes `step` as the step that added every item not noted yet, and forgets the
    /// notes of items no longer recorded.
    pub fn note_step(&mut self, step: usize) {
        let items = self.items();
        self.order.retain(|at| items.contains(&at.item));
        for item in items {
            if !self.order.iter().any(|at| at.item == item) {
                self.order.push(AddedAt { step, item });
            }
        }
    }

    /// Forgets every item of `done` (what a `remove` has undone).
    pub fn forget(&mut self, done: &Added) {
        self.apt.retain(|x| !done.apt.contains(x));
        self.apt_deps.retain(|x| !done.apt_deps.contains(x));
        self.apt_auto.retain(|x| !done.apt_auto.contains(x));
        self.npm.retain(|x| !done.npm.contains(x));
        self.pip.retain(|x| !done.pip.contains(x));
        self.lang.retain(|x| !done.lang.contains(x));
        self.files.retain(|x| !done.files.contains(x));
        self.apt_sources.retain(|x| !done.apt_sources.contains(x));
        self.venvs.retain(|x| !done.venvs.contains(x));
        self.dirs.retain(|x| !done.dirs.contains(x));
        self.replaced.retain(|x| !done.replaced.contains(x));
        self.blocks.retain(|x| !done.blocks.contains(x));
    }

    pub(super) fn push(&mut self, item: Addition) {
        match item {
            Addition::Apt(p) => self.apt.push(p),
            Addition::AptDep(p) => self.apt_deps.push(p),
            Addition::AptAuto(p) => self.apt_auto.push(p),
            Addition::Npm(p) => self.npm.push(p),
            Addition::Pip(p) => self.pip.push(p),
            Addition::Lang(p) => self.lang.push(p),
            Addition::File(p) => self.files.push(p),
            Addition::AptSource(p) => self.apt_sources.push(p),
            Addition::Venv(p) => self.venvs.push(p),
            Addition::Dir(p) => self.dirs.push(p),
            Addition::Replaced(r) => self.replaced.push(r),
            Addition::Block(b) => self.blocks.push(b),
        }
    }

    /// The items split by the step that added them, the last step first: the order of an
    /// exact undo (the step that installed npm is undone after the step that used it).
    /// Items without a noted step (a state of an older version) come last, in the order of
    /// [`Added::items`]: npm and pip packages before the apt packages that may provide npm
    /// and pip, apt sources after the packages that came from them.
    ///
    /// ```
    /// use em_install::state::Added;
    ///
    /// let mut added = Added { apt: vec!["npm".into()], ..Added::default() };
    /// added.note_step(0);
    /// added.npm.push("typescript".into());
    /// added.note_step(1);
    /// let groups = added.by_step();
    /// assert_eq!(groups[0].npm, ["typescript"]);
    /// assert_eq!(groups[1].apt, ["npm"]);
    /// ```
    pub fn by_step(&self) -> Vec<Added> {
        let mut groups: BTreeMap<std::cmp::Reverse<Option<usize>>, Added> = BTreeMap::new();
        for item in self.items() {
            let step = self
                .order
                .iter()
                .find(|at| at.item == item)
                .map(|at| at.step);
            groups
                .entry(std::cmp::Reverse(step))
                .or_default()
                .push(item);
        }
        // Reverse(None) sorts first: put the unknown step last.
        let mut groups: Vec<(Option<usize>, Added)> =
            groups.into_iter().map(|(k, v)| (k.0, v)).collect();
        groups.sort_by_key(|(step, _)| step.is_none());
        groups.into_iter().map(|(_, group)| group).collect()
    }
}

/// A pip package an install added.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PipAdded {
    /// The venv it went into; `None` for the system (or user) environment.
    #[serde(default)]
    pub venv: Option<PathBuf>,
    /// The package name.
    pub name: String,
}

/// A package a language package manager installed ([`Added::lang`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LangAdded {
    /// The tool: `pipx`, `cargo`, `gem` or `go`.
    pub tool: String,
    /// The name its list shows (the pipx venv, the crate, the gem, the go binary).
    pub name: String,
}
