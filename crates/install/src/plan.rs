//! The plan of a run: which extensions, in what order, and what each will do. Built from
//! the catalog (closure over `requires`, topological order with ties broken by name), the
//! `--set` option values and what the state says is installed. `plan` prints it; `install`
//! executes it.

use std::collections::{BTreeMap, BTreeSet};

use em_manifest::{
    Arch, Catalog, Diagnostic, OptionValue, ResolvedManifest, Scope, Step, TargetUser,
};
use serde::Serialize;

/// What the state knows of an installed extension, as far as planning needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The fingerprint (manifest sha256 + option values) it was installed with.
    pub fingerprint: String,
    /// Whether it finished (validated); a failed or partial install is redone.
    pub complete: bool,
}

/// Why an extension is in the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Named on the command line (or by the profile / --all).
    Requested,
    /// Pulled in by the `requires` of these.
    RequiredBy(Vec<String>),
}

/// What will happen to an extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Not installed yet.
    Install,
    /// Installed, but from another manifest or other options (an upgrade), or it did not finish.
    Reinstall(String),
    /// Installed with this manifest: only its checks run; it is reinstalled if they fail.
    Verify,
    /// `--force`: installed, and done again anyway.
    Force,
}

impl Action {
    /// Whether the run has install work to do for it (for `plan --exit-code`).
    pub fn is_work(&self) -> bool {
        !matches!(self, Action::Verify)
    }
}

/// One step of an extension as planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    /// Its index in the manifest's `[[install]]` list.
    pub index: usize,
    /// `apt`, `npm`, `pip`, `download` or `run`.
    pub kind: String,
    /// One line: `apt install nodejs npm`.
    pub summary: String,
    /// Why it will not run, if it will not (`arch`).
    pub skipped: Option<String>,
    /// The third-party apt repository it adds first (an apt step's `repository`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<PlannedRepository>,
}

/// The third-party apt repository a step adds before installing from it: a deb822 source
/// under sources.list.d and its signing key under the keyrings directory. Shown by `plan`
/// and `info`, because trusting a new archive and key is the part of a step that a reader
/// most needs to see before it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedRepository {
    /// The archive root.
    pub uri: String,
    /// The suite, or a path ending in `/` for a flat repository.
    pub suite: String,
    /// The components; empty for a flat repository.
    pub components: Vec<String>,
    /// The URL the signing key is fetched from.
    pub key: String,
    /// The sha256 the key must have, when the manifest pins it.
    pub key_sha256: Option<String>,
}

impl PlannedRepository {
    /// The repository `step` adds, if it adds one.
    pub fn of(step: &Step) -> Option<PlannedRepository> {
        let Step::Apt(apt) = step else {
            return None;
        };
        let r = apt.repository.as_ref()?;
        Some(PlannedRepository {
            uri: r.uri.value.clone(),
            suite: r.suite.value.clone(),
            components: r.components.iter().map(|c| c.value.clone()).collect(),
            key: r.key.value.clone(),
            key_sha256: r.key_sha256.as_ref().map(|k| k.value.clone()),
        })
    }

    /// Two lines for people: `repository: URI SUITE COMPONENTS...` and `key: URL (...)`,
    /// saying whether the key is pinned by its sha256 (else whatever that URL serves is
    /// trusted).
    pub fn lines(&self) -> [String; 2] {
        let mut source = format!("repository: {} {}", self.uri, self.suite);
        for c in &self.components {
            source.push(' ');
            source.push_str(c);
        }
        let key = match &self.key_sha256 {
            Some(sha) => format!("key: {} (pinned by sha256 {sha})", self.key),
            None => format!("key: {} (not pinned by sha256)", self.key),
        };
        [source, key]
    }
}

/// One extension of the plan.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// The manifest with options substituted.
    pub manifest: ResolvedManifest,
    /// Why it is in the run.
    pub reason: Reason,
    /// What will happen.
    pub action: Action,
    /// Its steps.
    pub steps: Vec<PlannedStep>,
    /// The extensions of this run it must wait for (`requires`, and `after` within the run).
    pub waits_for: Vec<String>,
}

impl PlanEntry {
    /// The extension's name.
    pub fn name(&self) -> &str {
        self.manifest.name()
    }
}

/// The plan of a run, in execution order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The extensions, dependencies first.
    pub entries: Vec<PlanEntry>,
    /// `--locked`: per (extension, step index), the hashed set a pip step installs with
    /// `--require-hashes` (see `locked::pin`).
    pub pinned_pip: BTreeMap<(String, usize), Vec<em_pip::HashedRequirement>>,
}

/// `--set EXT.OPTION=VALUE`, parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionSets(pub BTreeMap<String, BTreeMap<String, OptionValue>>);

impl OptionSets {
    /// Parses the `--set` values; `true`/`false` become booleans when the option is boolean
    /// (decided by em-manifest when resolving: here they stay strings unless literal).
    pub fn parse(values: &[String]) -> Result<OptionSets, String> {
        let mut sets: BTreeMap<String, BTreeMap<String, OptionValue>> = BTreeMap::new();
        for raw in values {
            let (key, value) = raw.split_once('=').ok_or_else(|| {
                format!("--set `{raw}`: expected EXT.OPTION=VALUE, e.g. --set nodejs.version=22")
            })?;
            let (ext, option) = key.split_once('.').ok_or_else(|| {
                format!("--set `{raw}`: expected EXT.OPTION=VALUE, e.g. --set nodejs.version=22")
            })?;
            if ext.is_empty() || option.is_empty() {
                return Err(format!(
                    "--set `{raw}`: the extension and the option must be named"
                ));
            }
            let value = match value {
                "true" => OptionValue::Bool(true),
                "false" => OptionValue::Bool(false),
                other => OptionValue::String(other.to_string()),
            };
            sets.entry(ext.to_string())
                .or_default()
                .insert(option.to_string(), value);
        }
        Ok(OptionSets(sets))
    }
}

/// A plan that cannot be made: a usage or manifest error (exit 2).
#[derive(Debug)]
pub enum PlanError {
    /// An unknown extension, with suggestions.
    Unknown {
        /// The name as typed.
        name: String,
        /// Close names.
        suggestions: Vec<String>,
    },
    /// A manifest-level error (cycle, conflict, bad --set).
    Manifest(Diagnostic),
    /// Anything else the user must fix.
    Usage(String),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::Unknown { name, suggestions } => {
                write!(f, "no extension named `{name}`")?;
                if !suggestions.is_empty() {
                    write!(
                        f,
                        "\nhint: did you mean {}?",
                        suggestions
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )?;
                } else {
                    write!(
                        f,
                        "\nhint: `extension-manager list` shows the extensions there are"
                    )?;
                }
                Ok(())
            }
            PlanError::Manifest(d) => write!(f, "{d}"),
            PlanError::Usage(m) => f.write_str(m),
        }
    }
}

/// Plans the installation of `requested` (and what they require).
pub fn plan(
    catalog: &Catalog,
    requested: &[String],
    sets: &OptionSets,
    installed: &BTreeMap<String, Installed>,
    force: bool,
    host: Option<Arch>,
) -> Result<Plan, PlanError> {
    plan_for(catalog, requested, sets, installed, force, host, None)
}

/// [`plan`] for the user extensions of `user` (`install --user`): `installed` is that
/// user's record, and the system extensions they require are left out (the caller checks
/// that they are installed system-wide: see [`missing_system_requirements`]). A system
/// extension among `requested` is an error.
pub fn plan_for(
    catalog: &Catalog,
    requested: &[String],
    sets: &OptionSets,
    installed: &BTreeMap<String, Installed>,
    force: bool,
    host: Option<Arch>,
    user: Option<&TargetUser>,
) -> Result<Plan, PlanError> {
    for name in requested {
        if !catalog.contains(name) {
            return Err(PlanError::Unknown {
                name: name.clone(),
                suggestions: catalog.suggest(name),
            });
        }
    }
    for ext in sets.0.keys() {
        if !catalog.contains(ext) {
            return Err(PlanError::Usage(format!(
                "--set names `{ext}`, which is not an extension"
            )));
        }
    }
    let installed_names: Vec<&str> = installed.keys().map(String::as_str).collect();
    let mut order = catalog
        .order(requested, &installed_names)
        .map_err(PlanError::Manifest)?;
    if let Some(u) = user {
        if let Some(system) = requested
            .iter()
            .find(|n| catalog.get(n).is_some_and(|m| m.scope == Scope::System))
        {
            return Err(PlanError::Usage(format!(
                "`{system}` is a system extension, and --user {} installs user extensions only\nhint: install it without --user (as root), then the user extensions",
                u.name
            )));
        }
        order.retain(|n| catalog.get(n).is_some_and(|m| m.scope == Scope::User));
    }
    let in_run: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    let requested_set: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
    let mut entries = Vec::new();
    for name in &order {
        let manifest = catalog
            .get(name)
            .ok_or_else(|| PlanError::Usage(format!("`{name}` vanished from the catalog")))?;
        let values = sets.0.get(name).cloned().unwrap_or_default();
        let resolved = manifest
            .resolve_for(&values, user)
            .map_err(PlanError::Manifest)?;
        let reason = if requested_set.contains(name.as_str()) {
            Reason::Requested
        } else {
            Reason::RequiredBy(
                catalog
                    .reverse_requires(name)
                    .into_iter()
                    .filter(|r| in_run.contains(r.as_str()))
                    .collect(),
            )
        };
        let action = match installed.get(name) {
            None => Action::Install,
            Some(_) if force => Action::Force,
            Some(i) if !i.complete => Action::Reinstall("the last install did not finish".into()),
            Some(i) if i.fingerprint != resolved.fingerprint() => {
                Action::Reinstall("the manifest or its options changed".into())
            }
            Some(_) => Action::Verify,
        };
        let steps = resolved
            .install
            .iter()
            .enumerate()
            .map(|(index, step)| PlannedStep {
                index,
                kind: step.action.kind().to_string(),
                summary: format!("{}{}", step.action.summary(), guards(step)),
                repository: PlannedRepository::of(&step.action),
                skipped: (!step.runs_on(host)).then(|| {
                    format!(
                        "only on {}",
                        step.arch
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            })
            .collect();
        let mut waits_for: Vec<String> = resolved
            .requires
            .iter()
            .chain(resolved.after.iter())
            .map(|r| r.value.clone())
            .filter(|r| in_run.contains(r.as_str()))
            .collect();
        waits_for.sort();
        waits_for.dedup();
        entries.push(PlanEntry {
            manifest: resolved,
            reason,
            action,
            steps,
            waits_for,
        });
    }
    Ok(Plan {
        entries,
        ..Plan::default()
    })
}

/// The system extensions that the user extensions of `requested` need (through
/// `requires`, all the way down) and that `system_installed` lacks (or has unfinished):
/// a user run does not install them (they are root's, system-wide), it asks for them.
/// A system extension named in `requested` is not followed: [`plan_for`] refuses it by
/// name, which says more than listing it (and its requirements) as missing.
pub fn missing_system_requirements(
    catalog: &Catalog,
    requested: &[String],
    system_installed: &BTreeMap<String, Installed>,
) -> Result<Vec<String>, PlanError> {
    let user_requested: Vec<String> = requested
        .iter()
        .filter(|n| catalog.get(n).is_none_or(|m| m.scope != Scope::System))
        .cloned()
        .collect();
    let order = catalog
        .order(&user_requested, &[] as &[&str])
        .map_err(PlanError::Manifest)?;
    Ok(order
        .into_iter()
        .filter(|n| catalog.get(n).is_some_and(|m| m.scope == Scope::System))
        .filter(|n| !system_installed.get(n).is_some_and(|i| i.complete))
        .collect())
}

/// What decides at run time whether a step runs, as the plan shows it after the step:
/// ` (only if `test 'rustup' = debian`)`; empty for an unguarded step.
fn guards(step: &em_manifest::InstallStep) -> String {
    let mut out = String::new();
    if let Some(c) = &step.only_if {
        out.push_str(&format!(" (only if `{}`)", c.value));
    }
    if let Some(c) = &step.unless {
        out.push_str(&format!(" (unless `{}`)", c.value));
    }
    if let Some(p) = &step.creates {
        out.push_str(&format!(" (not when {} exists)", p.value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_parse_and_explain() {
        let sets = OptionSets::parse(&["nodejs.version=22".into(), "rust.nightly=true".into()])
            .expect("valid");
        assert_eq!(
            sets.0["nodejs"]["version"],
            OptionValue::String("22".into())
        );
        assert_eq!(sets.0["rust"]["nightly"], OptionValue::Bool(true));
        for bad in ["nodejs", "version=22", ".x=1", "a.=1"] {
            assert!(OptionSets::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
