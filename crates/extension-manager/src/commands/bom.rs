//! `bom [EXT...] [--format json|cyclonedx|spdx]`: what the installed extensions put on the
//! machine, with the versions the machine has now.
//!
//! Why: a dev VM or container image built by extension-manager should be auditable like
//! any other software: a vulnerability scanner or a licence review wants to know which
//! packages, at which versions, and which files, every extension brought. The state file
//! already knows *what* each extension's steps install (`uses`: apt and npm packages, pip
//! packages per venv, files, apt sources, venvs) and which of those its install *added*
//! (they were not there before), and the apt packages its installs pulled in as
//! dependencies (`"dependency": true`); only the machine knows the versions it has now.
//!
//! How: the machine is asked with as few processes as possible, all at the same time,
//! argument vectors only: one `dpkg-query -W` for every apt name of every extension, one
//! `npm ls -g --json` (the query `install` itself uses, so `npm_config_prefix` applies the
//! same way), one `pip list --format json` per environment (`<venv>/bin/python`, or
//! `python3` for packages installed outside a venv), one list per language tool (`pipx
//! list --json`, `cargo install --list`, `gem list --local`, go's GOBIN: the lists
//! `install` reads; go shows no versions), and a sha256 of each regular file
//! (hashed on a blocking thread meanwhile). Something the state names but the machine no
//! longer has is listed as not present (`"present": false`), never an error. A query that
//! cannot run (no `npm` on PATH, a broken venv, a dpkg database error) leaves its parts
//! with an unknown version, `"present": null` and a `note` saying why, and a warning on
//! stderr; the command still succeeds.
//!
//! The document goes to stdout, as JSON whatever `--output` says: our own JSON (every
//! part, present or not, with `added` and `present`), CycloneDX 1.5 or SPDX 2.3 (the parts
//! that are, or may be, on the machine; each extension is an application component or
//! package that nests, or CONTAINS, its parts; packages carry purls: `pkg:deb/debian/…`,
//! `pkg:npm/…`, `pkg:pypi/…` (pip and pipx), `pkg:cargo/…`, `pkg:gem/…`; files their
//! SHA-256). A name given that is not installed exits 1 with nothing on stdout; an empty
//! state gives an empty, valid document.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use em_exec::{Cmd, ExecError, OutputMode};
use em_npm::{Npm, NpmConfig};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::exit;
use crate::output::{Tone, Ui};
use crate::session::Session;
use crate::state::{ExtensionStatus, InstalledExtension, PipAdded};

/// The document formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BomFormat {
    /// extension-manager's own JSON.
    Json,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// `bom`'s arguments.
#[derive(clap::Args, Debug)]
pub struct BomArgs {
    /// Only these installed extensions (default: all)
    #[arg(value_name = "EXT")]
    extensions: Vec<String>,
    /// The document format
    #[arg(long, value_enum, default_value = "json")]
    format: BomFormat,
}

/// One thing an extension put on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// `apt`, `npm`, `pip`, `pipx`, `cargo`, `gem`, `go` or `file`.
    pub kind: &'static str,
    /// The package name, or the file's path.
    pub name: String,
    /// The version on the machine now (`None`: not present, or unknown).
    pub version: Option<String>,
    /// apt: the architecture.
    pub arch: Option<String>,
    /// pip: the venv (`None`: the system's python3).
    pub venv: Option<PathBuf>,
    /// file: its path.
    pub path: Option<PathBuf>,
    /// file: its sha256, for a regular file.
    pub sha256: Option<String>,
    /// Whether this extension's install put it there (rather than finding it).
    pub added: bool,
    /// apt: pulled in as a dependency of the packages the extension names (recorded from
    /// dpkg's status before and after the install), not named by it.
    pub dependency: bool,
    /// Whether the machine has it now; `None` when that could not be asked (see `note`).
    pub present: Option<bool>,
    /// Why the version or presence is unknown.
    pub note: Option<String>,
}

impl Part {
    fn package(kind: &'static str, name: &str, added: bool) -> Part {
        Part {
            kind,
            name: name.to_string(),
            version: None,
            arch: None,
            venv: None,
            path: None,
            sha256: None,
            added,
            dependency: false,
            present: None,
            note: None,
        }
    }

    /// Present, or perhaps present: what the CycloneDX and SPDX documents list.
    fn maybe_present(&self) -> bool {
        self.present != Some(false)
    }
}

/// One installed extension and its parts.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its manifest version.
    pub version: String,
    /// When it was installed.
    pub installed_at: String,
    /// What it put on the machine.
    pub parts: Vec<Part>,
}

/// `bom`.
pub async fn bom(session: &Session, args: &BomArgs, ui: &Ui) -> Result<u8, CliError> {
    let state = session.state()?;
    let refused: Vec<String> = args
        .extensions
        .iter()
        .filter_map(|n| match state.extensions.get(n) {
            None => Some(n.clone()),
            Some(e) if e.status != ExtensionStatus::Installed => {
                Some(format!("{n} (its install is {})", e.status))
            }
            Some(_) => None,
        })
        .collect();
    if !refused.is_empty() {
        ui.error(
            &format!("not installed: {}", refused.join(", ")),
            Some("`extension-manager status` lists what is"),
        );
        return Ok(exit::FAILURE);
    }
    let chosen: Vec<(&String, &InstalledExtension)> = state
        .extensions
        .iter()
        .filter(|(n, e)| {
            e.status == ExtensionStatus::Installed
                && (args.extensions.is_empty() || args.extensions.contains(n))
        })
        .collect();
    let (entries, notes) = inventory(&chosen).await;
    for note in &notes {
        ui.status("Unknown", Tone::Warn, note);
    }
    let doc = match args.format {
        BomFormat::Json => own_json(&entries),
        BomFormat::Cyclonedx => cyclonedx(&entries, SystemTime::now()),
        BomFormat::Spdx => spdx(&entries, SystemTime::now()),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    );
    Ok(exit::OK)
}

/// What one query learned, or why it could not tell.
type Answer<T> = Result<T, String>;

/// Why a tool could not be run, in words.
fn cannot_run(tool: &Path, e: &ExecError) -> String {
    match e {
        ExecError::NotFound { .. } => format!("`{}` was not found", tool.display()),
        other => other.to_string(),
    }
}

/// `: the first line of stderr`, or nothing.
fn first_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| format!(": {l}"))
        .unwrap_or_default()
}

/// `dpkg-query -W -f` format: the status column tells an installed package from one of
/// which only the configuration files are left (`dpkg-query -W` reports both).
const DPKG_FORMAT: &str = "${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\n";

/// The versions and architectures of `names` from one `dpkg-query -W` (installed ones only).
async fn apt_versions(names: &BTreeSet<String>) -> Answer<BTreeMap<String, (String, String)>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let tool = Path::new("dpkg-query");
    let out = Cmd::tool(tool)
        .args(["-W", "-f", DPKG_FORMAT, "--"])
        .args(names)
        .output(OutputMode::Capture)
        .run()
        .await
        .map_err(|e| cannot_run(tool, &e))?;
    // 1: some names are not installed (they are listed as not present); more: an error.
    if out.code() > 1 {
        return Err(format!(
            "`dpkg-query -W` exited with code {}{}",
            out.code(),
            first_line(&out.stderr_text())
        ));
    }
    Ok(parse_dpkg_query(&out.stdout_text()))
}

/// `name\tversion\tarch\tstatus` lines; only `installed` packages count.
pub fn parse_dpkg_query(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, arch, status) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (status == "installed" && !version.is_empty())
                .then(|| (name.to_string(), (version.to_string(), arch.to_string())))
        })
        .collect()
}

/// The global npm packages and their versions, from one `npm ls -g --json` (em-npm's, the
/// query `install` uses: npm exits 1 on a tree with problems and its JSON is still read).
async fn npm_versions(wanted: bool) -> Answer<BTreeMap<String, String>> {
    if !wanted {
        return Ok(BTreeMap::new());
    }
    let npm = Npm::new(NpmConfig::default()).map_err(|e| e.to_string())?;
    let list = npm.ls_global().await.map_err(|e| e.to_string())?;
    Ok(list.into_iter().collect())
}

/// `pip list --format json` of one environment, by normalized name. A venv that is gone
/// has none of its packages; one without a working python is unknown.
async fn pip_versions(
    venv: Option<PathBuf>,
) -> (Option<PathBuf>, Answer<BTreeMap<String, String>>) {
    let python = match &venv {
        Some(v) if !v.exists() => return (venv, Ok(BTreeMap::new())),
        Some(v) => v.join("bin/python"),
        None => PathBuf::from("python3"),
    };
    let out = Cmd::tool(&python)
        .args([
            "-m",
            "pip",
            "list",
            "--format",
            "json",
            "--disable-pip-version-check",
        ])
        .output(OutputMode::Capture)
        .run()
        .await;
    let answer = match out {
        Err(e) => Err(cannot_run(&python, &e)),
        Ok(out) if !out.success() => Err(format!(
            "`{} -m pip list` exited with code {}{}",
            python.display(),
            out.code(),
            first_line(&out.stderr_text())
        )),
        Ok(out) => parse_pip_list(&out.stdout_text())
            .map_err(|e| format!("`{} -m pip list`: {e}", python.display())),
    };
    (venv, answer)
}

/// `[{"name": "Black", "version": "24.1.0"}, ...]`, keyed by normalized name.
pub fn parse_pip_list(text: &str) -> Answer<BTreeMap<String, String>> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text.trim()) else {
        return Err("printed no JSON list".into());
    };
    Ok(items
        .iter()
        .filter_map(|i| {
            Some((
                em_pip::normalize_name(i["name"].as_str()?),
                i["version"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// What the file system says of one path.
#[derive(Clone, Debug, Default)]
struct FileFacts {
    present: bool,
    sha256: Option<String>,
    note: Option<String>,
}

/// Existence and, for regular files, the sha256 of each path (blocking: run off the
/// runtime's threads).
fn file_facts(paths: BTreeSet<PathBuf>) -> BTreeMap<PathBuf, FileFacts> {
    paths
        .into_iter()
        .map(|path| {
            let facts = match std::fs::metadata(&path) {
                Err(_) => FileFacts::default(),
                Ok(meta) if !meta.is_file() => FileFacts {
                    present: true,
                    ..FileFacts::default()
                },
                Ok(_) => match em_exec::download::Sha256::of_file(&path) {
                    Ok((digest, _)) => FileFacts {
                        present: true,
                        sha256: Some(digest.to_string()),
                        note: None,
                    },
                    Err(e) => FileFacts {
                        present: true,
                        sha256: None,
                        note: Some(format!("cannot read it to hash it: {e}")),
                    },
                },
            };
            (path, facts)
        })
        .collect()
}

/// `a` then what `b` has that `a` has not: `uses` and `added` together, so that a state
/// written before `uses` existed still lists what its installs added.
fn union<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut all = a.to_vec();
    for x in b {
        if !all.contains(x) {
            all.push(x.clone());
        }
    }
    all
}

/// Every apt package an extension names, uses or pulled in, each once.
fn apt_parts(e: &InstalledExtension) -> Vec<String> {
    union(&union(&e.uses.apt, &e.added.apt), &e.added.apt_deps)
}

/// Every pipx, cargo, gem and go package an extension uses (or added), each once.
fn lang_parts(e: &InstalledExtension) -> Vec<crate::state::LangAdded> {
    union(&e.uses.lang, &e.added.lang)
}

/// Every file, apt source and venv an extension uses (or added).
fn paths_of(e: &InstalledExtension) -> Vec<PathBuf> {
    let mut all = union(&e.uses.files, &e.added.files);
    all = union(&all, &union(&e.uses.apt_sources, &e.added.apt_sources));
    union(&all, &union(&e.uses.venvs, &e.added.venvs))
}

/// Asks the machine about everything the chosen extensions use; also returns a note for
/// each query that could not answer.
async fn inventory(chosen: &[(&String, &InstalledExtension)]) -> (Vec<Entry>, Vec<String>) {
    let machine = Machine::ask(chosen).await;
    let entries = chosen
        .iter()
        .map(|(name, e)| Entry {
            name: (*name).clone(),
            version: e.version.clone(),
            installed_at: e.installed_at.clone(),
            parts: machine.parts(e),
        })
        .collect();
    (entries, machine.notes())
}

/// What the machine said about the chosen extensions' parts: each package manager's
/// versions (or why it could not say) and the facts of each file.
struct Machine {
    apt: Answer<BTreeMap<String, (String, String)>>,
    npm: Answer<BTreeMap<String, String>>,
    /// By venv (`None`: the system's python3).
    pip: BTreeMap<Option<PathBuf>, Answer<BTreeMap<String, String>>>,
    /// By tool key (pipx, cargo, gem, go): name to version, when the tool shows one.
    lang: BTreeMap<&'static str, Answer<BTreeMap<String, Option<String>>>>,
    files: BTreeMap<PathBuf, FileFacts>,
}

impl Machine {
    /// Runs the queries the chosen extensions need, at the same time: one dpkg-query, one
    /// `npm ls -g`, one `pip list` per environment, one list per language tool, and the
    /// file checks off the async threads.
    async fn ask(chosen: &[(&String, &InstalledExtension)]) -> Machine {
        let apt_names: BTreeSet<String> = chosen.iter().flat_map(|(_, e)| apt_parts(e)).collect();
        let wants_npm = chosen
            .iter()
            .any(|(_, e)| !e.uses.npm.is_empty() || !e.added.npm.is_empty());
        let envs: BTreeSet<Option<PathBuf>> = chosen
            .iter()
            .flat_map(|(_, e)| union(&e.uses.pip, &e.added.pip))
            .map(|p| p.venv)
            .collect();
        let paths: BTreeSet<PathBuf> = chosen.iter().flat_map(|(_, e)| paths_of(e)).collect();
        let lang_tools: Vec<em_manifest::LangTool> = em_manifest::LangTool::ALL
            .into_iter()
            .filter(|t| {
                chosen
                    .iter()
                    .any(|(_, e)| lang_parts(e).iter().any(|a| a.tool == t.key()))
            })
            .collect();
        let lang = async {
            let mut lists = BTreeMap::new();
            for tool in lang_tools {
                let answer = crate::executor::lang_steps::installed_versions(tool, None).await;
                lists.insert(tool.key(), answer);
            }
            lists
        };
        let mut pip_jobs = tokio::task::JoinSet::new();
        for env in envs {
            pip_jobs.spawn(pip_versions(env));
        }
        let pip_lists = async move {
            let mut lists = BTreeMap::new();
            while let Some(done) = pip_jobs.join_next().await {
                if let Ok((env, answer)) = done {
                    lists.insert(env, answer);
                }
            }
            lists
        };
        let files = async {
            tokio::task::spawn_blocking(move || file_facts(paths))
                .await
                .unwrap_or_default()
        };
        let (apt, npm, pip, lang, files) = tokio::join!(
            apt_versions(&apt_names),
            npm_versions(wants_npm),
            pip_lists,
            lang,
            files
        );
        Machine {
            apt,
            npm,
            pip,
            lang,
            files,
        }
    }

    /// One note per query that could not answer.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Err(why) = &self.apt {
            notes.push(format!("apt versions: {why}"));
        }
        if let Err(why) = &self.npm {
            notes.push(format!("npm versions: {why}"));
        }
        for (tool, answer) in &self.lang {
            if let Err(why) = answer {
                notes.push(format!("{tool} versions: {why}"));
            }
        }
        for (env, answer) in &self.pip {
            if let Err(why) = answer {
                let env = env
                    .as_ref()
                    .map_or("python3".to_string(), |v| v.display().to_string());
                notes.push(format!("pip versions of {env}: {why}"));
            }
        }
        notes
    }

    /// Every part of one extension, with what the machine said about it: apt packages,
    /// npm globals, pip packages, language tools' packages, then files.
    fn parts(&self, e: &InstalledExtension) -> Vec<Part> {
        let mut parts = self.apt_parts(e);
        parts.extend(self.npm_parts(e));
        parts.extend(self.pip_parts(e));
        parts.extend(self.lang_parts(e));
        parts.extend(self.file_parts(e));
        parts
    }

    /// The apt packages, a dependency the install pulled in marked as such.
    fn apt_parts(&self, e: &InstalledExtension) -> Vec<Part> {
        apt_parts(e)
            .into_iter()
            .map(|p| {
                let mut part = Part::package("apt", &p, e.added.apt.contains(&p));
                if !part.added && e.added.apt_deps.contains(&p) {
                    part.added = true;
                    part.dependency = true;
                }
                match &self.apt {
                    Ok(found) => {
                        let found = found.get(&p);
                        part.version = found.map(|(v, _)| v.clone());
                        part.arch = found.map(|(_, a)| a.clone());
                        part.present = Some(found.is_some());
                    }
                    Err(why) => part.note = Some(why.clone()),
                }
                part
            })
            .collect()
    }

    /// The npm global packages.
    fn npm_parts(&self, e: &InstalledExtension) -> Vec<Part> {
        union(&e.uses.npm, &e.added.npm)
            .into_iter()
            .map(|p| {
                let mut part = Part::package("npm", &p, e.added.npm.contains(&p));
                match &self.npm {
                    Ok(found) => {
                        part.version = found.get(&p).cloned();
                        part.present = Some(part.version.is_some());
                    }
                    Err(why) => part.note = Some(why.clone()),
                }
                part
            })
            .collect()
    }

    /// The pip packages, each with its venv.
    fn pip_parts(&self, e: &InstalledExtension) -> Vec<Part> {
        union(&e.uses.pip, &e.added.pip)
            .into_iter()
            .map(|p| {
                let mut part = Part::package("pip", &p.name, e.added.pip.contains(&p));
                match self.pip.get(&p.venv) {
                    Some(Ok(found)) => {
                        part.version = found.get(&em_pip::normalize_name(&p.name)).cloned();
                        part.present = Some(part.version.is_some());
                    }
                    Some(Err(why)) => part.note = Some(why.clone()),
                    None => part.note = Some("`pip list` did not finish".into()),
                }
                let PipAdded { venv, .. } = p;
                part.venv = venv;
                part
            })
            .collect()
    }

    /// The pipx, cargo, gem and go packages (a tool this build does not know is skipped).
    fn lang_parts(&self, e: &InstalledExtension) -> Vec<Part> {
        lang_parts(e)
            .into_iter()
            .filter_map(|a| {
                let tool = em_manifest::LangTool::ALL
                    .into_iter()
                    .find(|t| t.key() == a.tool)?;
                let mut part = Part::package(tool.key(), &a.name, e.added.lang.contains(&a));
                match self.lang.get(tool.key()) {
                    Some(Ok(found)) => {
                        part.present = Some(found.contains_key(&a.name));
                        part.version = found.get(&a.name).cloned().flatten();
                    }
                    Some(Err(why)) => part.note = Some(why.clone()),
                    None => part.note = Some(format!("`{tool}` was not asked")),
                }
                Some(part)
            })
            .collect()
    }

    /// The files, apt sources and venvs, with their checksums.
    fn file_parts(&self, e: &InstalledExtension) -> Vec<Part> {
        paths_of(e)
            .into_iter()
            .map(|path| {
                let added = e.added.files.contains(&path)
                    || e.added.apt_sources.contains(&path)
                    || e.added.venvs.contains(&path);
                let mut part = Part::package("file", &path.display().to_string(), added);
                match self.files.get(&path) {
                    Some(facts) => {
                        part.present = Some(facts.present);
                        part.sha256 = facts.sha256.clone();
                        part.note = facts.note.clone();
                    }
                    None => part.note = Some("the file was not examined".into()),
                }
                part.path = Some(path);
                part
            })
            .collect()
    }
}

/// extension-manager's own document: every part, present or not.
fn own_json(entries: &[Entry]) -> Value {
    let exts: Vec<Value> = entries
        .iter()
        .map(|e| {
            let parts: Vec<Value> = e
                .parts
                .iter()
                .map(|p| {
                    let mut v = json!({
                        "type": p.kind,
                        "name": p.name,
                        "version": p.version,
                        "added": p.added,
                        "present": p.present,
                    });
                    if let Some(a) = &p.arch {
                        v["arch"] = json!(a);
                    }
                    if p.dependency {
                        v["dependency"] = json!(true);
                    }
                    if p.kind == "pip" {
                        v["venv"] = json!(p.venv);
                    }
                    if let Some(path) = &p.path {
                        v["path"] = json!(path);
                    }
                    if let Some(h) = &p.sha256 {
                        v["sha256"] = json!(h);
                    }
                    if let Some(purl) = purl(p) {
                        v["purl"] = json!(purl);
                    }
                    if let Some(note) = &p.note {
                        v["note"] = json!(note);
                    }
                    v
                })
                .collect();
            json!({
                "name": e.name,
                "version": e.version,
                "installed_at": e.installed_at,
                "components": parts,
            })
        })
        .collect();
    json!({ "extensions": exts })
}

/// Percent-encodes what a purl segment may not hold as is.
fn purl_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The package URL of a package (`None` for files); without `@version` when the version
/// is not known.
pub fn purl(p: &Part) -> Option<String> {
    let at = p
        .version
        .as_ref()
        .map(|v| format!("@{}", purl_escape(v)))
        .unwrap_or_default();
    Some(match p.kind {
        "apt" => {
            let arch = p
                .arch
                .as_ref()
                .map(|a| format!("?arch={}", purl_escape(a)))
                .unwrap_or_default();
            format!("pkg:deb/debian/{}{at}{arch}", purl_escape(&p.name))
        }
        "npm" => {
            let name = match p.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
                Some((scope, name)) => {
                    format!("%40{}/{}", purl_escape(scope), purl_escape(name))
                }
                None => purl_escape(&p.name),
            };
            format!("pkg:npm/{name}{at}")
        }
        "pip" | "pipx" => format!(
            "pkg:pypi/{}{at}",
            purl_escape(&em_pip::normalize_name(&p.name))
        ),
        "cargo" => format!("pkg:cargo/{}{at}", purl_escape(&p.name)),
        "gem" => format!("pkg:gem/{}{at}", purl_escape(&p.name)),
        _ => return None,
    })
}

/// A UUID (version 8, RFC 9562: custom) derived from the sha256 of `seed`, without a
/// random source or a uuid crate.
fn uuid_from(seed: &str) -> String {
    let digest = em_exec::download::Sha256::of_reader(&mut seed.as_bytes())
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|_| "0".repeat(64));
    let mut hex: Vec<char> = digest.chars().take(32).collect();
    // Version 8 in the 13th digit, the RFC variant (8, 9, a or b) in the 17th.
    hex[12] = '8';
    hex[16] = ['8', '9', 'a', 'b'][hex[16].to_digit(16).unwrap_or(0) as usize % 4];
    let hex: String = hex.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The seed of a document's identity: its content and the instant it was made (CycloneDX
/// wants a new serial number for every BOM generated, even of unchanged content).
fn identity_seed(content: &Value, now: SystemTime) -> String {
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{content}\n{nanos}\n{}", std::process::id())
}

fn rfc3339(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}

const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A CycloneDX property (`extension-manager:NAME`).
fn property(name: &str, value: impl Into<String>) -> Value {
    json!({"name": format!("extension-manager:{name}"), "value": value.into()})
}

/// CycloneDX 1.5: each extension an application component nesting its parts.
fn cyclonedx(entries: &[Entry], now: SystemTime) -> Value {
    let components: Vec<Value> = entries
        .iter()
        .map(|e| {
            let parts: Vec<Value> = e
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.maybe_present())
                .map(|(i, p)| {
                    let bom_ref = format!("{}/{}/{i}", e.name, p.kind);
                    let mut props = vec![property("added", p.added.to_string())];
                    if p.dependency {
                        props.push(property("dependency", "true"));
                    }
                    if let Some(v) = &p.venv {
                        props.push(property("venv", v.display().to_string()));
                    }
                    if let Some(note) = &p.note {
                        props.push(property("note", note.clone()));
                    }
                    let mut v = if p.kind == "file" {
                        let mut v = json!({"type": "file", "bom-ref": bom_ref, "name": p.name});
                        if let Some(h) = &p.sha256 {
                            v["hashes"] = json!([{"alg": "SHA-256", "content": h}]);
                        }
                        v
                    } else {
                        let mut v = json!({"type": "library", "bom-ref": bom_ref, "name": p.name});
                        if let Some(version) = &p.version {
                            v["version"] = json!(version);
                        }
                        if let Some(purl) = purl(p) {
                            v["purl"] = json!(purl);
                        }
                        v
                    };
                    v["properties"] = json!(props);
                    v
                })
                .collect();
            json!({
                "type": "application",
                "bom-ref": format!("extension/{}", e.name),
                "name": e.name,
                "version": e.version,
                "properties": [property("installed_at", e.installed_at.clone())],
                "components": parts,
            })
        })
        .collect();
    let components = Value::Array(components);
    let serial = uuid_from(&identity_seed(&components, now));
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(now),
            "tools": { "components": [
                { "type": "application", "name": "extension-manager", "version": TOOL_VERSION }
            ]},
        },
        "components": components,
    })
}

/// `SPDXRef-<text>` with what SPDX ids may not hold replaced by `-`.
fn spdx_id(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{clean}")
}

/// SPDX 2.3: each extension a package that CONTAINS its parts (ids numbered, so that
/// names that clean up alike never collide).
fn spdx(entries: &[Entry], now: SystemTime) -> Value {
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        let ext_id = spdx_id(&format!("Extension-{k}-{}", e.name));
        packages.push(json!({
            "SPDXID": ext_id,
            "name": e.name,
            "versionInfo": e.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "APPLICATION",
            "comment": format!("an extension-manager extension, installed at {}", e.installed_at),
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": ext_id,
        }));
        for (i, p) in e
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.maybe_present())
        {
            let id = spdx_id(&format!("Part-{k}-{i}-{}", p.kind));
            let mut pkg = json!({
                "SPDXID": id,
                "name": p.name,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": if p.kind == "file" { "FILE" } else { "LIBRARY" },
            });
            if let Some(v) = &p.version {
                pkg["versionInfo"] = json!(v);
            }
            if let Some(purl) = purl(p) {
                pkg["externalRefs"] = json!([{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }]);
            }
            if let Some(h) = &p.sha256 {
                pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": h}]);
            }
            if let Some(note) = &p.note {
                pkg["comment"] = json!(note);
            }
            packages.push(pkg);
            relationships.push(json!({
                "spdxElementId": ext_id,
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": id,
            }));
        }
    }
    let packages = Value::Array(packages);
    let uuid = uuid_from(&identity_seed(&packages, now));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "extension-manager installed extensions",
        "documentNamespace": format!("https://spdx.org/spdxdocs/extension-manager-{uuid}"),
        "creationInfo": {
            "created": rfc3339(now),
            "creators": [format!("Tool: extension-manager-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(kind: &'static str, name: &str, version: &str) -> Part {
        Part {
            version: Some(version.into()),
            present: Some(true),
            ..Part::package(kind, name, true)
        }
    }

    #[test]
    fn purls_follow_each_ecosystem() {
        let mut deb = part("apt", "libc6", "2.36-9+deb12u4");
        deb.arch = Some("amd64".into());
        assert_eq!(
            purl(&deb).as_deref(),
            Some("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64")
        );
        let epoch = part("apt", "vim", "2:9.0.1378-2");
        assert_eq!(
            purl(&epoch).as_deref(),
            Some("pkg:deb/debian/vim@2%3A9.0.1378-2")
        );
        assert_eq!(
            purl(&part("npm", "@angular/cli", "17.0.0")).as_deref(),
            Some("pkg:npm/%40angular/cli@17.0.0")
        );
        assert_eq!(
            purl(&part("pip", "Typing_Extensions", "4.9.0")).as_deref(),
            Some("pkg:pypi/typing-extensions@4.9.0")
        );
        let mut unknown = part("npm", "x", "1");
        unknown.version = None;
        assert_eq!(purl(&unknown).as_deref(), Some("pkg:npm/x"));
        assert_eq!(purl(&part("file", "/opt/x", "1")), None);
    }

    #[test]
    fn dpkg_query_output_keeps_installed_packages_only() {
        let text = "curl\t7.88.1-10\tamd64\tinstalled\nold\t1.0\tamd64\tconfig-files\n";
        let got = parse_dpkg_query(text);
        assert_eq!(got.len(), 1);
        assert_eq!(got["curl"], ("7.88.1-10".to_string(), "amd64".to_string()));
    }

    #[test]
    fn pip_list_is_keyed_by_normalized_name() {
        let got =
            parse_pip_list(r#"[{"name":"Typing_Extensions","version":"4.9.0"}]"#).expect("a list");
        assert_eq!(got["typing-extensions"], "4.9.0");
        assert!(parse_pip_list("not json").is_err());
    }

    #[test]
    fn uses_and_added_are_merged_without_duplicates() {
        assert_eq!(union(&[1, 2], &[2, 3, 1]), [1, 2, 3]);
        assert_eq!(union::<u8>(&[], &[4]), [4]);
    }

    #[test]
    fn serial_numbers_are_uuids_derived_from_the_content() {
        let a = uuid_from("x");
        assert_eq!(a, uuid_from("x"));
        assert_ne!(a, uuid_from("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert_eq!(spdx_id("my ext/apt-0"), "SPDXRef-my-ext-apt-0");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1);
        let later = t + std::time::Duration::from_nanos(1);
        assert_ne!(
            identity_seed(&json!([]), t),
            identity_seed(&json!([]), later),
            "every BOM generated has its own serial number"
        );
    }
}
