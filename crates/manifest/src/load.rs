//! From TOML text to a [`Manifest`], collecting every error with its span.
//!
//! The document is parsed into toml's spanned tree (`DeTable`) and walked by hand rather
//! than deserialized with serde: a walk can report all errors of a file at once, point at
//! the exact key or value, and give each its own hint (serde's `deny_unknown_fields` stops
//! at the first one and knows nothing of step kinds).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use em_lang::LangTool;
use em_retry::PolicyError;
use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, SourceFile, Span, Spanned};
use crate::grammar::{self, Ecosystem, Problem};
use crate::retry::StepRetry;
use crate::schema::{
    AptRepository, AptStep, Arch, BlockStep, Check, DownloadStep, FileStep, InstallStep, LangStep,
    Manifest, NpmStep, OptionDef, OptionType, OptionValue, OsRequirement, PipStep, RemoveStep,
    Requirements, RunStep, Scope, Shell, Step, Via,
};
use crate::template::{self, Placeholder};
use crate::walk::{TomlWalk, Value, a_type, find, guess_hint, key_span};
use em_retry::{BackoffKind, Jitter, PolicyOverride};

const ACTIONS: [&str; 11] = [
    "apt", "npm", "pip", "pipx", "cargo", "gem", "go", "download", "run", "file", "block",
];
const EXTENSION_KEYS: [&str; 13] = [
    "name",
    "version",
    "description",
    "category",
    "requires",
    "after",
    "conflicts",
    "options",
    "requirements",
    "env",
    "env_allow",
    "shell",
    "scope",
];
const STEP_COMMON: [&str; 6] = ["retry", "arch", "creates", "unless", "only_if", "optional"];
const RETRY_KEYS: [&str; 9] = [
    "attempts",
    "backoff",
    "delay",
    "base",
    "max",
    "multiplier",
    "jitter",
    "timeout",
    "deadline",
];

/// The keys each kind of step takes besides its action key, `retry` and `arch`.
fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "apt" => &["repository", "allow_http"],
        "pip" => &["venv"],
        "download" => &[
            "sha256",
            "to",
            "unpack_to",
            "mode",
            "via",
            "mirrors",
            "allow_http",
        ],
        "file" => &["content", "mode", "owner", "group", "replace"],
        "block" => &["content", "id"],
        _ => &[],
    }
}

fn step_article(kind: &str) -> &'static str {
    match kind {
        "apt" => "an apt step",
        "npm" => "an npm step",
        "pip" => "a pip step",
        "pipx" => "a pipx step",
        "cargo" => "a cargo step",
        "gem" => "a gem step",
        "go" => "a go step",
        "download" => "a download step",
        "file" => "a file step",
        "block" => "a block step",
        _ => "a run step",
    }
}

/// Whether `key` is one that some kind of step takes besides its action key and the common keys.
fn is_kind_key(key: &str) -> bool {
    ACTIONS.iter().any(|a| kind_keys(a).contains(&key))
}

/// The keys a step of `kind` takes, in the order hints list them.
fn step_keys(kind: &str) -> Vec<&str> {
    std::iter::once(kind)
        .chain(kind_keys(kind).iter().copied())
        .chain(STEP_COMMON)
        .collect()
}

/// The hint that lists the keys a step of `kind` takes.
fn kind_takes(kind: &str) -> String {
    format!(
        "{} takes {}",
        step_article(kind),
        step_keys(kind).join(", ")
    )
}

/// The action keys written in a step's table, in the order written.
fn action_keys(t: &DeTable<'_>) -> Vec<(Span, &'static str)> {
    let mut actions: Vec<(Span, &'static str)> = t
        .iter()
        .filter_map(|(k, _)| {
            ACTIONS
                .iter()
                .find(|a| **a == k.get_ref().as_ref())
                .map(|a| (k.span(), *a))
        })
        .collect();
    actions.sort_by_key(|(s, _)| s.start);
    actions
}

/// The name hints suggest for the extension: the file's stem, or a made-up one.
fn suggested_name(stem: Option<&str>) -> &str {
    stem.unwrap_or("my-extension")
}

/// The names of the options `[extension.options]` declares, valid or not.
fn option_names(ext: &DeTable<'_>) -> BTreeSet<String> {
    match find(ext, "options").map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => t.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
        _ => BTreeSet::new(),
    }
}

/// Parses a manifest; `stem` is the file stem the name must equal.
pub(crate) fn parse_manifest(
    source: Arc<SourceFile>,
    stem: Option<&str>,
) -> Result<Manifest, Vec<Diagnostic>> {
    let text = source.text();
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => return Err(vec![syntax_error(&source, &e)]),
    };
    let mut loader = Loader {
        file: &source,
        errors: Vec::new(),
    };
    let parts = loader.manifest(root.get_ref(), stem);
    let mut errors = loader.errors;
    if let Some(parts) = parts {
        let manifest = Manifest {
            name: parts.name,
            version: parts.version,
            description: parts.description,
            category: parts.category,
            requires: parts.requires,
            after: parts.after,
            conflicts: parts.conflicts,
            options: parts.options,
            requirements: parts.requirements,
            env: parts.env,
            shell: parts.shell,
            scope: parts.scope,
            install: parts.install,
            validate: parts.validate,
            remove: parts.remove,
            sha256: sha256_hex(text.as_bytes()),
            source: source.clone(),
        };
        // Value checks run even when the structure had errors, so that one load reports
        // all of a file's mistakes (steps with structural errors were left out already).
        errors.extend(crate::scope::check_scope(&manifest));
        let defaults = load_time_values(&manifest);
        errors.extend(check_values(&manifest, &defaults));
        // Each value an `enum` allows must give valid steps too, not only the default.
        for (name, def) in &manifest.options {
            for value in &def.allowed {
                let mut values = defaults.clone();
                values.insert(name.clone(), value.clone());
                for e in check_values(&manifest, &values) {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
            }
        }
        if errors.is_empty() {
            return Ok(manifest);
        }
    }
    sort(&mut errors);
    Err(errors)
}

/// Sorts diagnostics by position, so that a file's errors read top to bottom.
pub(crate) fn sort(errors: &mut [Diagnostic]) {
    errors.sort_by_key(|d| {
        d.location
            .as_ref()
            .map(|l| (l.file.clone(), l.line, l.column))
    });
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn syntax_error(file: &SourceFile, e: &toml::de::Error) -> Diagnostic {
    let text = file.text();
    let span = e.span().unwrap_or(0..0);
    let span = span.start.min(text.len())..span.end.min(text.len());
    let found = text.get(span.clone()).unwrap_or_default();
    let before = text.get(..span.start).unwrap_or_default().trim_end();
    let is_word = !found.is_empty()
        && found
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.');
    if is_word && (before.ends_with('=') || before.ends_with('[') || before.ends_with(',')) {
        // toml reads a bare word as a malformed number or boolean ("invalid float,
        // expected `nan`"), which says nothing to someone who forgot the quotes.
        return file
            .error(span, format!("unquoted string `{found}`"))
            .with_hint(format!("strings need quotes: \"{found}\""));
    }
    let message = e.message();
    if message == "duplicate key" {
        return file
            .error(span, format!("duplicate key `{found}`"))
            .with_hint("a key may appear once in a table; remove one of them");
    }
    file.error(span, format!("invalid TOML: {message}"))
        .with_hint("the manifest must be valid TOML (https://toml.io)")
}

/// Values for the load-time checks of templated strings: each option's default, or a
/// neutral stand-in (`x1`, `true`) when it has none; `resolve` checks again with the
/// values of the run.
fn load_time_values(m: &Manifest) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = m
        .options
        .iter()
        .map(|(name, def)| {
            let value = match (&def.default, def.kind) {
                (Some(v), _) => v.to_string(),
                (None, OptionType::Boolean) => "true".to_string(),
                (None, OptionType::String) => def
                    .allowed
                    .first()
                    .or(def.proposals.first())
                    .cloned()
                    .unwrap_or_else(|| "x1".to_string()),
            };
            (name.clone(), value)
        })
        .collect();
    {
        // Stand-ins for the target user, found only at install (`--user`); in a system
        // extension `{{home}}` is an error already, reported once.
        for (fact, value) in crate::scope::STAND_IN_USER {
            values.entry(fact.to_string()).or_insert(value.to_string());
        }
    }
    values
}

/// Checks every string that may hold placeholders, with `values` substituted: package
/// grammars, URLs, paths, checksums, `expect` regexes, domains.
pub(crate) fn check_values(m: &Manifest, values: &BTreeMap<String, String>) -> Vec<Diagnostic> {
    // An unknown placeholder has been reported already: stand in a neutral value rather
    // than report the same string twice.
    let lookup = |name: &str| {
        Some(
            values
                .get(name)
                .cloned()
                .unwrap_or_else(|| "x1".to_string()),
        )
    };
    let mut errors = Vec::new();
    let mut check = |s: &Spanned<String>, f: &dyn Fn(&str) -> Option<Problem>| {
        let value = template::substitute(&s.value, &lookup);
        if let Some(p) = f(&value) {
            let mut hint = p.hint;
            if value != s.value {
                hint.push_str(&format!(
                    "; here `{}` reads `{value}` once the options are filled in",
                    s.value
                ));
            }
            errors.push(m.source.error(s.span.clone(), p.message).with_hint(hint));
        }
    };
    for d in &m.requirements.domains {
        check(d, &grammar::check_domain);
    }
    for step in &m.install {
        match &step.action {
            Step::Apt(apt) => {
                for p in &apt.packages {
                    check(p, &|v| grammar::check_package(Ecosystem::Apt, v));
                }
                if let Some(r) = &apt.repository {
                    check(&r.uri, &|v| grammar::check_url(v, apt.allow_http));
                    check(&r.key, &|v| grammar::check_url(v, apt.allow_http));
                    if let Some(k) = &r.key_sha256 {
                        check(k, &grammar::check_sha256);
                    }
                    for w in std::iter::once(&r.suite).chain(&r.components) {
                        check(w, &|v| {
                            (v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()))
                                .then(|| Problem {
                                    message: format!("`{v}` is not a valid suite or component"),
                                    hint: "suites and components are single words, e.g. suite = \"bookworm\", components = [\"main\"]".into(),
                                })
                        });
                    }
                }
            }
            Step::Npm(npm) => {
                for p in &npm.packages {
                    check(p, &|v| grammar::check_package(Ecosystem::Npm, v));
                }
            }
            Step::Pip(pip) => {
                for p in &pip.packages {
                    check(p, &|v| grammar::check_package(Ecosystem::Pip, v));
                }
                if let Some(v) = &pip.venv {
                    check(v, &|v| grammar::check_absolute_path(v, "venv"));
                }
            }
            Step::Lang(l) => {
                for p in &l.packages {
                    check(p, &|v| grammar::check_package(Ecosystem::Lang(l.tool), v));
                }
            }
            Step::Download(d) => {
                check(&d.url, &|v| grammar::check_url(v, d.allow_http));
                for mirror in &d.mirrors {
                    check(mirror, &|v| grammar::check_url(v, d.allow_http));
                }
                for s in d
                    .sha256
                    .iter()
                    .chain(d.sha256_by_arch.iter().map(|(_, s)| s))
                {
                    check(s, &grammar::check_sha256);
                }
                check(&d.to, &|v| grammar::check_absolute_path(v, "to"));
                if let Some(u) = &d.unpack_to {
                    check(u, &|v| grammar::check_absolute_path(v, "unpack_to"));
                }
            }
            Step::Run(_) => {}
            Step::File(f) => {
                check(&f.path, &|v| grammar::check_absolute_path(v, "file"));
                for who in [&f.owner, &f.group].into_iter().flatten() {
                    check(who, &grammar::check_account_name);
                }
            }
            Step::Block(b) => {
                check(&b.path, &|v| grammar::check_absolute_path(v, "block"));
                if let Some(id) = &b.id {
                    check(id, &grammar::check_block_id);
                }
            }
        }
        if let Some(c) = &step.creates {
            check(c, &|v| grammar::check_absolute_path(v, "creates"));
        }
    }
    for c in &m.validate {
        if let Some(e) = &c.expect {
            check(e, &|v| {
                regex_lite::Regex::new(v).err().map(|err| Problem {
                    message: format!("`expect` is not a valid regex: {}", first_line(&err.to_string())),
                    hint: "`expect` is a regular expression over the command's stdout, e.g. \"^v[0-9]+\"".into(),
                })
            });
        }
    }
    errors
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

struct Parts {
    name: Spanned<String>,
    version: Spanned<String>,
    description: String,
    category: Option<String>,
    requires: Vec<Spanned<String>>,
    after: Vec<Spanned<String>>,
    conflicts: Vec<Spanned<String>>,
    options: BTreeMap<String, OptionDef>,
    requirements: Requirements,
    env: BTreeMap<String, Spanned<String>>,
    shell: Shell,
    scope: Scope,
    install: Vec<InstallStep>,
    validate: Vec<Check>,
    remove: Vec<RemoveStep>,
}

/// The keys of a `retry` table as read, each with where it is written; a key that is
/// absent or had an error is `None`.
struct RetryKeys {
    attempts: Option<(u32, Span)>,
    backoff: Option<(BackoffKind, Span)>,
    jitter: Option<Jitter>,
    delay: Option<(Duration, Span)>,
    base: Option<(Duration, Span)>,
    max: Option<(Duration, Span)>,
    timeout: Option<(Duration, Span)>,
    deadline: Option<(Duration, Span)>,
    multiplier: Option<(f64, Span)>,
}

impl RetryKeys {
    /// The first delay: `delay` (fixed backoff) or `base` (linear and exponential).
    fn first(&self) -> Option<&(Duration, Span)> {
        self.delay.as_ref().or(self.base.as_ref())
    }

    /// The keys written that backoff `kind` would silently ignore.
    fn ignored_by(&self, kind: BackoffKind) -> Vec<&'static str> {
        let ignored: &[(&'static str, bool)] = match kind {
            BackoffKind::None => &[
                ("delay", self.delay.is_some()),
                ("base", self.base.is_some()),
                ("max", self.max.is_some()),
                ("multiplier", self.multiplier.is_some()),
            ],
            BackoffKind::Fixed => &[
                ("max", self.max.is_some()),
                ("multiplier", self.multiplier.is_some()),
            ],
            BackoffKind::Linear => &[("multiplier", self.multiplier.is_some())],
            BackoffKind::Exponential => &[],
        };
        ignored
            .iter()
            .filter(|(_, present)| *present)
            .map(|(key, _)| *key)
            .collect()
    }

    /// What these keys change in the default policy.
    fn overrides(&self) -> PolicyOverride {
        PolicyOverride {
            attempts: self.attempts.as_ref().map(|(n, _)| *n),
            backoff: self.backoff.as_ref().map(|(k, _)| *k),
            delay: self.first().map(|(d, _)| *d),
            max: self.max.as_ref().map(|(d, _)| *d),
            multiplier: self.multiplier.as_ref().map(|(m, _)| *m),
            jitter: self.jitter,
            timeout: self.timeout.as_ref().map(|(d, _)| *d),
            deadline: self.deadline.as_ref().map(|(d, _)| *d),
        }
    }

    /// Where the key a policy error is about is written, if it is, and how to fix it.
    fn blame(&self, e: &PolicyError) -> (Option<Span>, &'static str) {
        match e {
            PolicyError::ZeroAttempts => (
                written_at(&self.attempts),
                "attempts counts all tries, the first included: 1 runs once, 3 retries twice",
            ),
            PolicyError::Multiplier(_) => (
                written_at(&self.multiplier),
                "a multiplier below 1 would shrink the delays: use 1.5 or 2.0",
            ),
            PolicyError::MaxBelowBase { .. } => (
                written_at(&self.max).or(self.first().map(|(_, s)| s.clone())),
                "raise `max`, or lower the first delay (without `base`, it is 1s)",
            ),
            PolicyError::ZeroTimeout => (
                written_at(&self.timeout),
                "a zero timeout fails every attempt: remove it or give a real limit",
            ),
            PolicyError::ZeroDeadline => (
                written_at(&self.deadline),
                "a zero deadline runs nothing: remove it or give a real limit",
            ),
        }
    }
}

/// Where a key read with its span is written, if it was read.
fn written_at<T>(key: &Option<(T, Span)>) -> Option<Span> {
    key.as_ref().map(|(_, s)| s.clone())
}

/// The manifest's walk: [`TomlWalk`] with the manifest's typed readers.
type Loader<'f> = TomlWalk<'f>;

impl Loader<'_> {
    fn string(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<String>> {
        let v = find(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(s.to_string(), v.span())),
            _ => {
                self.type_error(key, "a string", v, "");
                None
            }
        }
    }

    fn required_string(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        table_span: &Span,
        what: &str,
        hint: &str,
    ) -> Option<Spanned<String>> {
        if find(table, key).is_none() {
            self.push(
                table_span.clone(),
                format!("missing `{key}` in {what}"),
                hint,
            );
            return None;
        }
        let s = self.string(table, key)?;
        if s.value.trim().is_empty() {
            self.push(s.span.clone(), format!("`{key}` is empty"), hint);
            return None;
        }
        Some(s)
    }

    fn strings(&mut self, table: &DeTable<'_>, key: &str) -> Vec<Spanned<String>> {
        let Some(v) = find(table, key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            let hint = match v.get_ref() {
                DeValue::String(s) => format!("write a list: {key} = [\"{s}\"]"),
                _ => format!("write a list of strings: {key} = [\"...\"]"),
            };
            self.type_error(key, "an array of strings", v, &hint);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(s.to_string(), item.span())),
                other => self.push(
                    item.span(),
                    format!("`{key}` must list strings, not {}", a_type(other)),
                    "",
                ),
            }
        }
        out
    }

    fn boolean(&mut self, table: &DeTable<'_>, key: &str) -> Option<bool> {
        let v = find(table, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(key, "true or false", v, "");
                None
            }
        }
    }

    /// `[[key]]`: an array of tables.
    fn tables<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        key: &str,
    ) -> Vec<(&'t DeTable<'i>, Span)> {
        let Some(v) = find(table, key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(
                key,
                "an array of tables",
                v,
                &format!("write each entry as a [[{key}]] table"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push((t, item.span())),
                other => self.push(
                    item.span(),
                    format!("each `{key}` entry must be a table, not {}", a_type(other)),
                    format!("write each entry as a [[{key}]] table"),
                ),
            }
        }
        out
    }

    /// The whole manifest: the top-level keys, `[extension]`, then the `[[install]]`,
    /// `[[validate]]` and `[[remove]]` lists and the placeholders of every string.
    fn manifest(&mut self, root: &DeTable<'_>, stem: Option<&str>) -> Option<Parts> {
        self.unknown_keys(
            root,
            &["extension", "install", "validate", "remove"],
            "at the top level",
            "a manifest has [extension], [[install]], [[validate]] and [[remove]] tables",
        );
        let (ext, ext_span) = self.extension(root, stem)?;
        let name = self.name(ext, &ext_span, stem);
        let version = self.required_string(
            ext,
            "version",
            &ext_span,
            "[extension]",
            "add version = \"1.0.0\": the state records the version of each installed extension",
        );
        let description = self
            .string(ext, "description")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let category = self.string(ext, "category").map(Spanned::into_inner);
        let requires = self.references(ext, "requires");
        let after = self.references(ext, "after");
        let conflicts = self.references(ext, "conflicts");
        let options = self.options(ext);
        let requirements = self.requirements(ext);
        let env = self.env(ext);
        let shell = self.shell(ext);
        let scope = self.scope(ext);
        let install = self.install(root);
        let validate = self.validate(root);
        let remove = self.remove(root);
        self.placeholders(root, &option_names(ext), scope);
        Some(Parts {
            name: name?,
            version: version?,
            description,
            category,
            requires,
            after,
            conflicts,
            options,
            requirements,
            env,
            shell,
            scope,
            install,
            validate,
            remove,
        })
    }

    /// The `[extension]` table and where it is written, its unknown keys reported; without
    /// it, or when it is not a table, there is no manifest to read.
    fn extension<'t, 'i>(
        &mut self,
        root: &'t DeTable<'i>,
        stem: Option<&str>,
    ) -> Option<(&'t DeTable<'i>, Span)> {
        let Some(ext_value) = find(root, "extension") else {
            self.push(
                0..0,
                "missing [extension] table",
                format!(
                    "start the manifest with an [extension] table holding name = \"{}\" and version = \"1.0.0\"",
                    suggested_name(stem)
                ),
            );
            return None;
        };
        let DeValue::Table(ext) = ext_value.get_ref() else {
            self.type_error("extension", "a table", ext_value, "");
            return None;
        };
        self.unknown_keys(
            ext,
            &EXTENSION_KEYS,
            "in [extension]",
            "[extension] takes name, version, description, category, requires, after, conflicts, options, requirements, env, env_allow, shell, scope",
        );
        Some((ext, ext_value.span()))
    }

    /// The required `name` of `[extension]`, checked against the grammar and the file's stem.
    fn name(
        &mut self,
        ext: &DeTable<'_>,
        ext_span: &Span,
        stem: Option<&str>,
    ) -> Option<Spanned<String>> {
        let name = self.required_string(
            ext,
            "name",
            ext_span,
            "[extension]",
            &format!(
                "add name = \"{}\": the name equals the file's stem",
                suggested_name(stem)
            ),
        );
        if let Some(name) = &name {
            self.check_name(name, stem);
        }
        name
    }

    /// The extensions listed at `key` (`requires`, `after`, `conflicts`), each name checked.
    fn references(&mut self, ext: &DeTable<'_>, key: &str) -> Vec<Spanned<String>> {
        let list = self.strings(ext, key);
        for item in &list {
            if let Some(p) = grammar::check_extension_name(&item.value, "extension") {
                self.push(item.span.clone(), p.message, p.hint);
            }
        }
        list
    }

    /// The `shell` that runs the extension's commands: sh unless it says bash.
    fn shell(&mut self, ext: &DeTable<'_>) -> Shell {
        match self.string(ext, "shell") {
            None => Shell::Sh,
            Some(s) if s.value == "sh" => Shell::Sh,
            Some(s) if s.value == "bash" => Shell::Bash,
            Some(s) => {
                self.push(
                    s.span.clone(),
                    format!("unknown shell `{}`", s.value),
                    "shell is \"sh\" (the default) or \"bash\"".to_string(),
                );
                Shell::Sh
            }
        }
    }

    /// The `scope` the extension installs into: system-wide unless it says user.
    fn scope(&mut self, ext: &DeTable<'_>) -> Scope {
        match self.string(ext, "scope") {
            None => Scope::System,
            Some(s) if s.value == "system" => Scope::System,
            Some(s) if s.value == "user" => Scope::User,
            Some(s) => {
                self.push(
                    s.span.clone(),
                    format!("unknown scope `{}`", s.value),
                    "scope is \"system\" (the default: as root, system-wide) or \"user\" (into a user's home, as that user)".to_string(),
                );
                Scope::System
            }
        }
    }

    /// The `[[install]]` steps; a step with errors is left out.
    fn install(&mut self, root: &DeTable<'_>) -> Vec<InstallStep> {
        self.tables(root, "install")
            .into_iter()
            .filter_map(|(t, span)| self.step(t, span))
            .collect()
    }

    /// The `[[validate]]` checks; a check without a usable `run` is left out.
    fn validate(&mut self, root: &DeTable<'_>) -> Vec<Check> {
        self.tables(root, "validate")
            .into_iter()
            .filter_map(|(t, span)| self.validate_check(t, span))
            .collect()
    }

    /// One `[[validate]]` check: the command to run and, optionally, what it must print.
    fn validate_check(&mut self, t: &DeTable<'_>, span: Span) -> Option<Check> {
        self.unknown_keys(
            t,
            &["run", "expect"],
            "in a validate check",
            "a [[validate]] check takes run and expect",
        );
        let run = self.required_string(
            t,
            "run",
            &span,
            "a [[validate]] check",
            "add run = \"COMMAND\": a command that exits 0 when the extension works",
        )?;
        let expect = self.string(t, "expect");
        Some(Check { run, expect, span })
    }

    /// The `[[remove]]` steps; a step without a usable `run` is left out.
    fn remove(&mut self, root: &DeTable<'_>) -> Vec<RemoveStep> {
        self.tables(root, "remove")
            .into_iter()
            .filter_map(|(t, span)| self.remove_step(t, span))
            .collect()
    }

    /// One `[[remove]]` step: the command to run.
    fn remove_step(&mut self, t: &DeTable<'_>, span: Span) -> Option<RemoveStep> {
        self.unknown_keys(
            t,
            &["run"],
            "in a remove step",
            "a [[remove]] step takes run",
        );
        let run = self.required_string(
            t,
            "run",
            &span,
            "a [[remove]] step",
            "add run = \"COMMAND\"",
        )?;
        Some(RemoveStep { run, span })
    }

    fn check_name(&mut self, name: &Spanned<String>, stem: Option<&str>) {
        if let Some(p) = grammar::check_extension_name(&name.value, "extension") {
            self.push(name.span.clone(), p.message, p.hint);
            return;
        }
        if let Some(stem) = stem
            && stem != name.value
        {
            self.push(
                name.span.clone(),
                format!(
                    "the extension is named `{}` but its file is `{stem}.toml`",
                    name.value
                ),
                format!(
                    "rename the file to `{}.toml`, or set name = \"{stem}\"",
                    name.value
                ),
            );
        }
    }

    fn options(&mut self, ext: &DeTable<'_>) -> BTreeMap<String, OptionDef> {
        let mut out = BTreeMap::new();
        let Some((table, _)) = self.table(
            ext,
            "options",
            "declare each option as [extension.options.NAME]",
        ) else {
            return out;
        };
        for (key, value) in table.iter() {
            let name = Spanned::new(key.get_ref().to_string(), key.span());
            if let Some(p) = grammar::check_option_name(&name.value) {
                self.push(name.span.clone(), p.message, p.hint);
                continue;
            }
            let DeValue::Table(def) = value.get_ref() else {
                self.push(
                    value.span(),
                    format!(
                        "option `{}` must be a table, not {}",
                        name.value,
                        a_type(value.get_ref())
                    ),
                    format!(
                        "declare it as [extension.options.{}] with type and default",
                        name.value
                    ),
                );
                continue;
            };
            if let Some(def) = self.option(name, def) {
                out.insert(def.name.value.clone(), def);
            }
        }
        out
    }

    fn option(&mut self, name: Spanned<String>, def: &DeTable<'_>) -> Option<OptionDef> {
        let before = self.errors.len();
        self.unknown_keys(
            def,
            &["type", "default", "enum", "proposals", "description"],
            &format!("in option `{}`", name.value),
            "an option takes type, default, enum (or proposals) and description",
        );
        let declared = self.string(def, "type");
        let default_value = find(def, "default");
        let default = match default_value.map(|v| (v, v.get_ref())) {
            None => None,
            Some((_, DeValue::String(s))) => Some(OptionValue::String(s.to_string())),
            Some((_, DeValue::Boolean(b))) => Some(OptionValue::Bool(*b)),
            Some((v, _)) => {
                self.type_error("default", "a string or a boolean", v, "");
                None
            }
        };
        let kind = match declared.as_ref().map(|t| t.value.as_str()) {
            Some("string") => OptionType::String,
            Some("boolean") => OptionType::Boolean,
            Some(other) => {
                let span = declared
                    .as_ref()
                    .map(|t| t.span.clone())
                    .unwrap_or_default();
                self.push(
                    span,
                    format!("unknown option type `{other}`"),
                    guess_hint(
                        other,
                        ["string", "boolean"],
                        "the option types are string and boolean",
                    ),
                );
                return None;
            }
            None => match default {
                Some(OptionValue::Bool(_)) => OptionType::Boolean,
                _ => OptionType::String,
            },
        };
        let allowed = self.strings(def, "enum");
        let proposals = self.strings(def, "proposals");
        let description = self
            .string(def, "description")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let default_span = default_value.map(|v| v.span()).unwrap_or_default();
        match (kind, &default) {
            (OptionType::Boolean, Some(OptionValue::String(s))) => self.push(
                default_span.clone(),
                format!(
                    "option `{}` is a boolean, but its default is the string \"{s}\"",
                    name.value
                ),
                "write default = true or default = false, without quotes",
            ),
            (OptionType::String, Some(OptionValue::Bool(b))) => self.push(
                default_span.clone(),
                format!(
                    "option `{}` is a string, but its default is the boolean {b}",
                    name.value
                ),
                format!("write default = \"{b}\", or declare type = \"boolean\""),
            ),
            _ => {}
        }
        if kind == OptionType::Boolean {
            for key in ["enum", "proposals"] {
                if let Some(span) = key_span(def, key) {
                    self.push(
                        span,
                        format!("a boolean option has no `{key}`"),
                        "its values are true and false",
                    );
                }
            }
        }
        if find(def, "enum").is_some() && find(def, "proposals").is_some() {
            let span = key_span(def, "proposals").unwrap_or_default();
            self.push(
                span,
                format!("option `{}` has both `enum` and `proposals`", name.value),
                "use `enum` for the only values allowed, or `proposals` for suggestions, not both",
            );
        }
        if let Some(span) = key_span(def, "enum")
            && allowed.is_empty()
            && kind == OptionType::String
        {
            self.push(
                span,
                format!("option `{}` has an empty `enum`", name.value),
                "list the allowed values, or remove `enum` to allow any value",
            );
        }
        if let Some(OptionValue::String(d)) = &default
            && !allowed.is_empty()
            && !allowed.iter().any(|a| a.value == *d)
        {
            self.push(
                default_span,
                format!(
                    "the default \"{d}\" of option `{}` is not one of its `enum` values",
                    name.value
                ),
                format!("the allowed values are {}", quoted_list(&allowed)),
            );
        }
        (self.errors.len() == before).then(|| OptionDef {
            name,
            kind,
            default,
            allowed: allowed.into_iter().map(Spanned::into_inner).collect(),
            proposals: proposals.into_iter().map(Spanned::into_inner).collect(),
            description,
        })
    }

    fn requirements(&mut self, ext: &DeTable<'_>) -> Requirements {
        let Some((table, _)) = self.table(ext, "requirements", "") else {
            return Requirements::default();
        };
        self.unknown_keys(
            table,
            &["disk_mb", "domains", "memory_mb", "os"],
            "in [extension.requirements]",
            "requirements are disk_mb, memory_mb, domains and os",
        );
        let disk_mb = self.mebibytes(table, "disk_mb", "disk_mb = 400");
        let memory_mb = self.mebibytes(table, "memory_mb", "memory_mb = 2048");
        let domains = self.strings(table, "domains");
        let os = self
            .strings(table, "os")
            .into_iter()
            .filter_map(|s| match OsRequirement::parse(&s.value, s.span.clone()) {
                Ok(r) => Some(r),
                Err(message) => {
                    self.push(
                        s.span.clone(),
                        message,
                        "write an os-release ID, with an optional least VERSION_ID: \"debian>=12\", \"ubuntu>=22.04\", \"debian\"",
                    );
                    None
                }
            })
            .collect();
        Requirements {
            disk_mb,
            domains,
            memory_mb,
            os,
        }
    }

    /// A positive whole number of MiB at `key`.
    fn mebibytes(&mut self, table: &DeTable<'_>, key: &str, example: &str) -> Option<u64> {
        let v = find(table, key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u64::try_from(n).ok())
            {
                Some(n) => Some(n),
                None => {
                    self.push(
                        v.span(),
                        format!("`{key}` must be a positive number of MiB"),
                        "",
                    );
                    None
                }
            },
            _ => {
                self.type_error(key, "a whole number of MiB", v, &format!("e.g. {example}"));
                None
            }
        }
    }

    fn env(&mut self, ext: &DeTable<'_>) -> BTreeMap<String, Spanned<String>> {
        let mut out = BTreeMap::new();
        let allowed = self.strings(ext, "env_allow");
        for name in &allowed {
            if let Some(p) = grammar::check_env_name(&name.value) {
                self.push(name.span.clone(), p.message, p.hint);
            }
        }
        let Some((table, _)) = self.table(ext, "env", "") else {
            return out;
        };
        for (key, value) in table.iter() {
            if let Some(p) = grammar::check_env_name(key.get_ref()) {
                self.push(key.span(), p.message, p.hint);
                continue;
            }
            let name = key.get_ref();
            if grammar::is_dangerous_env(name) && !allowed.iter().any(|a| a.value == *name) {
                self.push(
                    key.span(),
                    format!(
                        "`{name}` changes how programs start or what a shell runs: set in every login session, it would run code the user never asked for"
                    ),
                    format!(
                        "if the extension truly needs it, say so in [extension]: env_allow = [\"{name}\"]; otherwise drop it"
                    ),
                );
                continue;
            }
            match value.get_ref() {
                DeValue::String(s) => {
                    out.insert(
                        key.get_ref().to_string(),
                        Spanned::new(s.to_string(), value.span()),
                    );
                }
                other => self.push(
                    value.span(),
                    format!(
                        "`{}` must be a string, not {}",
                        key.get_ref(),
                        a_type(other)
                    ),
                    "environment values are strings: quote the value",
                ),
            }
        }
        out
    }

    /// One `[[install]]` step: its one action, the keys its kind takes and the keys every
    /// step takes; `None` when any of them had an error.
    fn step(&mut self, t: &DeTable<'_>, span: Span) -> Option<InstallStep> {
        let before = self.errors.len();
        let actions = action_keys(t);
        let any_unknown = self.unknown_step_keys(t, &actions);
        let kind = self.single_action(&actions, any_unknown, &span)?;
        self.misplaced_keys(t, kind);
        let retry = self.retry(t);
        let arch = self.arch(t);
        let action = self.action(t, kind, &span)?;
        let creates = self.string(t, "creates");
        let unless = self.string(t, "unless");
        let only_if = self.string(t, "only_if");
        let optional = self.boolean(t, "optional").unwrap_or(false);
        (self.errors.len() == before).then_some(InstallStep {
            action,
            retry,
            arch,
            creates,
            unless,
            only_if,
            optional,
            span,
        })
    }

    /// Reports the keys no kind of step takes, explained in terms of the step's kind when it
    /// has exactly one action; says whether there were any.
    fn unknown_step_keys(&mut self, t: &DeTable<'_>, actions: &[(Span, &str)]) -> bool {
        let known = |k: &str| ACTIONS.contains(&k) || STEP_COMMON.contains(&k) || is_kind_key(k);
        let unknown: Vec<_> = t
            .iter()
            .filter(|(k, _)| !known(k.get_ref()))
            .map(|(k, _)| (k.span(), k.get_ref().to_string()))
            .collect();
        let kind = (actions.len() == 1).then(|| actions[0].1);
        for (key_span, key) in &unknown {
            let (candidates, hint): (Vec<&str>, String) = match kind {
                Some(kind) => (step_keys(kind), kind_takes(kind)),
                None => (
                    ACTIONS.to_vec(),
                    format!("the action keys are {}", ACTIONS.join(", ")),
                ),
            };
            let hint = guess_hint(key, candidates.iter().copied(), &hint);
            self.push(
                key_span.clone(),
                format!("unknown key `{key}` in an install step"),
                hint,
            );
        }
        !unknown.is_empty()
    }

    /// The kind of a step, its one action key. A step with no action (reported unless an
    /// unknown key explains it already) or with two actions has none.
    fn single_action(
        &mut self,
        actions: &[(Span, &'static str)],
        any_unknown: bool,
        span: &Span,
    ) -> Option<&'static str> {
        match actions {
            [] => {
                if !any_unknown {
                    self.push(
                        span.clone(),
                        "an install step with no action",
                        format!("give it exactly one of {}", ACTIONS.join(", ")),
                    );
                }
                None
            }
            [(_, first), (second_span, second), ..] => {
                self.push(
                    second_span.clone(),
                    format!("an install step with two actions: `{first}` and `{second}`"),
                    "split it into two [[install]] steps: each step does one thing",
                );
                None
            }
            [(_, kind)] => Some(*kind),
        }
    }

    /// Reports the keys of `t` that belong to another kind of step than `kind`.
    fn misplaced_keys(&mut self, t: &DeTable<'_>, kind: &str) {
        let mut misplaced: Vec<(Span, String)> = t
            .iter()
            .filter(|(k, _)| {
                is_kind_key(k.get_ref()) && !kind_keys(kind).contains(&k.get_ref().as_ref())
            })
            .map(|(k, _)| (k.span(), k.get_ref().to_string()))
            .collect();
        misplaced.sort_by_key(|(s, _)| s.start);
        for (key_span, key) in misplaced {
            let owners: Vec<&str> = ACTIONS
                .iter()
                .copied()
                .filter(|a| kind_keys(a).contains(&key.as_str()))
                .collect();
            self.push(
                key_span,
                format!(
                    "`{key}` belongs to {} steps, not to {}",
                    owners.join(" and "),
                    step_article(kind)
                ),
                kind_takes(kind),
            );
        }
    }

    /// What a step of `kind` does, read from its action key and the keys of its kind.
    fn action(&mut self, t: &DeTable<'_>, kind: &str, span: &Span) -> Option<Step> {
        match kind {
            "apt" => Some(self.apt_step(t)),
            "npm" => Some(Step::Npm(NpmStep {
                packages: self.packages(t, "npm"),
            })),
            "pip" => Some(Step::Pip(PipStep {
                packages: self.packages(t, "pip"),
                venv: self.string(t, "venv"),
            })),
            kind if LangTool::from_key(kind).is_some() => Some(Step::Lang(LangStep {
                tool: LangTool::from_key(kind).expect("checked just above"),
                packages: self.packages(t, kind),
            })),
            "download" => self.download(t, span),
            "file" => self.file_step(t, span),
            "block" => self.block_step(t, span),
            _ => self.run_step(t),
        }
    }

    /// An apt step: its packages, `allow_http` and its optional `repository`.
    fn apt_step(&mut self, t: &DeTable<'_>) -> Step {
        let packages = self.packages(t, "apt");
        let allow_http = self.boolean(t, "allow_http").unwrap_or(false);
        let repository = self.repository(t);
        Step::Apt(AptStep {
            packages,
            repository,
            allow_http,
        })
    }

    /// A file step: the path, its required content, and the file's mode and owners.
    fn file_step(&mut self, t: &DeTable<'_>, span: &Span) -> Option<Step> {
        let path = self.string(t, "file");
        let content = self.content(t, span, "a file step");
        let mode = self.mode(t);
        // Without a path or content, the owners and `replace` are not read (nor reported).
        Some(Step::File(FileStep {
            path: path?,
            content: content?,
            mode,
            owner: self.string(t, "owner"),
            group: self.string(t, "group"),
            replace: self.boolean(t, "replace").unwrap_or(false),
        }))
    }

    /// A block step: the path, its required content and the block's `id`.
    fn block_step(&mut self, t: &DeTable<'_>, span: &Span) -> Option<Step> {
        let path = self.string(t, "block");
        let content = self.content(t, span, "a block step");
        Some(Step::Block(BlockStep {
            path: path?,
            content: content?,
            id: self.string(t, "id"),
        }))
    }

    /// A run step: its shell command, which must not be empty.
    fn run_step(&mut self, t: &DeTable<'_>) -> Option<Step> {
        let command = self.string(t, "run")?;
        if command.value.trim().is_empty() {
            self.push(
                command.span.clone(),
                "`run` is empty",
                "give the shell command to run",
            );
        }
        Some(Step::Run(RunStep { command }))
    }

    fn packages(&mut self, t: &DeTable<'_>, key: &str) -> Vec<Spanned<String>> {
        let list = self.strings(t, key);
        if list.is_empty()
            && let Some(v) = find(t, key)
            && matches!(v.get_ref(), DeValue::Array(_))
        {
            self.push(
                v.span(),
                format!("an empty `{key}` list"),
                "list at least one package, or remove the step",
            );
        }
        list
    }

    fn repository(&mut self, t: &DeTable<'_>) -> Option<AptRepository> {
        let (r, span) = self.table(
            t,
            "repository",
            "write repository = { uri = \"https://...\", suite = \"bookworm\", components = [\"main\"], key = \"https://.../gpg\" }",
        )?;
        self.unknown_keys(
            r,
            &["uri", "suite", "components", "key", "key_sha256"],
            "in an apt repository",
            "a repository takes uri, suite, components, key and key_sha256",
        );
        let what = "the apt repository";
        let uri = self.required_string(
            r,
            "uri",
            &span,
            what,
            "add uri = \"https://...\": the archive root",
        );
        let suite = self.required_string(
            r,
            "suite",
            &span,
            what,
            "add the suite, e.g. suite = \"bookworm\"",
        );
        let key = self.required_string(
            r,
            "key",
            &span,
            what,
            "add key = \"https://.../gpg\": the URL of the repository's signing key",
        );
        let components = self.strings(r, "components");
        let key_sha256 = self.string(r, "key_sha256");
        if let Some(suite) = &suite
            && !suite.value.ends_with('/')
            && components.is_empty()
        {
            self.push(
                key_span(t, "repository").unwrap_or(span.clone()),
                "the apt repository has no `components`",
                "add components = [\"main\"] (only a flat repository, whose suite ends with `/`, has none)",
            );
        }
        Some(AptRepository {
            uri: uri?,
            suite: suite?,
            components,
            key: key?,
            key_sha256,
            span,
        })
    }

    fn download(&mut self, t: &DeTable<'_>, span: &Span) -> Option<Step> {
        let url = self.string(t, "download");
        let to = self.required_string(
            t,
            "to",
            span,
            "a download step",
            "add to = \"/ABSOLUTE/PATH\": where the file goes",
        );
        let mode = self.mode(t);
        let via = self.string(t, "via").and_then(|v| match v.value.as_str() {
            "curl" => Some(Via::Curl),
            "wget" => Some(Via::Wget),
            other => {
                self.push(
                    v.span.clone(),
                    format!("`via` must be curl or wget, not `{other}`"),
                    "leave it out to use curl when present, else wget",
                );
                None
            }
        });
        let (sha256, sha256_by_arch) = match find(t, "sha256").map(|v| v.get_ref()) {
            Some(DeValue::Table(_)) => (None, self.sha256_by_arch(t)),
            _ => (self.string(t, "sha256"), Vec::new()),
        };
        let step = DownloadStep {
            url: url?,
            sha256,
            sha256_by_arch,
            to: to?,
            unpack_to: self.string(t, "unpack_to"),
            mode,
            via,
            mirrors: self.strings(t, "mirrors"),
            allow_http: self.boolean(t, "allow_http").unwrap_or(false),
        };
        Some(Step::Download(step))
    }

    /// `mode`: an octal string (download and file steps).
    fn mode(&mut self, t: &DeTable<'_>) -> Option<u32> {
        find(t, "mode").and_then(|v| match v.get_ref() {
            DeValue::String(s) => match grammar::parse_mode(s) {
                Ok(mode) => Some(mode),
                Err(p) => {
                    self.push(v.span(), p.message, p.hint);
                    None
                }
            },
            DeValue::Integer(i) => {
                self.push(
                    v.span(),
                    "`mode` must be a string like \"0755\"",
                    format!(
                        "TOML reads {} as a decimal number; quote it: mode = \"{}{}\"",
                        i.as_str(),
                        if i.as_str().len() == 3 { "0" } else { "" },
                        i.as_str()
                    ),
                );
                None
            }
            _ => {
                self.type_error("mode", "an octal string like \"0755\"", v, "");
                None
            }
        })
    }

    /// `content` of a file or block step: required.
    fn content(&mut self, t: &DeTable<'_>, span: &Span, what: &str) -> Option<Spanned<String>> {
        let content = self.required_string(
            t,
            "content",
            span,
            what,
            "add content = \"\"\"...\"\"\": what the step writes",
        )?;
        if content.value.contains('\0') {
            self.push(
                content.span.clone(),
                "`content` contains a NUL byte",
                "write text: shell rc files and configuration files hold no NUL bytes",
            );
            return None;
        }
        Some(content)
    }

    fn arch(&mut self, t: &DeTable<'_>) -> Vec<Arch> {
        let names = self.strings(t, "arch");
        names
            .into_iter()
            .filter_map(|name| self.arch_name(&name))
            .collect()
    }

    /// An architecture's name (of `arch = [...]` or a key of a `sha256` table).
    fn arch_name(&mut self, name: &Spanned<String>) -> Option<Arch> {
        if let Some(a) = Arch::parse(&name.value) {
            return Some(a);
        }
        let all = Arch::ALL.map(Arch::as_str).join(", ");
        let hint = match Arch::alias(&name.value) {
            Some(a) => format!("write `{a}` (the `uname -m` name); the architectures are {all}"),
            None => guess_hint(
                &name.value,
                Arch::ALL.map(Arch::as_str),
                &format!("the architectures are {all}"),
            ),
        };
        self.push(
            name.span.clone(),
            format!("unknown architecture `{}`", name.value),
            hint,
        );
        None
    }

    /// `sha256 = { ARCH = "HEX", ... }` of a download step.
    fn sha256_by_arch(&mut self, t: &DeTable<'_>) -> Vec<(Arch, Spanned<String>)> {
        let Some(DeValue::Table(table)) = find(t, "sha256").map(|v| v.get_ref()) else {
            return Vec::new();
        };
        if table.is_empty() {
            let span = find(t, "sha256").map(|v| v.span()).unwrap_or_default();
            self.push(
                span,
                "`sha256` is an empty table",
                "give one checksum per architecture: sha256 = { x86_64 = \"...\", aarch64 = \"...\" }",
            );
        }
        let mut pins = Vec::new();
        for (key, value) in table.iter() {
            let name = Spanned::new(key.get_ref().to_string(), key.span());
            let Some(arch) = self.arch_name(&name) else {
                continue;
            };
            match value.get_ref() {
                DeValue::String(hex) => {
                    pins.push((arch, Spanned::new(hex.to_string(), value.span())));
                }
                _ => self.type_error(
                    &format!("sha256.{}", name.value),
                    "a string of 64 hex digits",
                    value,
                    "",
                ),
            }
        }
        pins
    }

    fn step_duration(&mut self, t: &DeTable<'_>, key: &str) -> Option<(Duration, Span)> {
        self.duration(
            t,
            key,
            |n| format!("durations have a unit: \"{n}s\" or \"{n}ms\""),
            "write a number with a unit: \"500ms\", \"2s\", \"5m\", \"1h30m\"",
        )
    }

    fn retry(&mut self, t: &DeTable<'_>) -> Option<StepRetry> {
        let (r, span) = self.table(
            t,
            "retry",
            "write retry = { attempts = 5, backoff = \"exponential\", base = \"2s\" }",
        )?;
        self.retry_table(r, span)
    }

    /// The keys of a `retry` table `r`, written at `span`.
    fn retry_table(&mut self, r: &DeTable<'_>, span: Span) -> Option<StepRetry> {
        let before = self.errors.len();
        self.unknown_keys(
            r,
            &RETRY_KEYS,
            "in a retry policy",
            "a retry policy takes attempts, backoff, delay, base, max, multiplier, jitter, timeout, deadline",
        );
        let keys = self.retry_keys(r);
        self.conflicting_retry_keys(r, &keys);
        if self.errors.len() != before {
            return None;
        }
        self.retry_policy(&keys, span)
    }

    /// Each key of a retry table `r`, read with its own checks.
    fn retry_keys(&mut self, r: &DeTable<'_>) -> RetryKeys {
        // Fields are read in the order written here, which is the order of their errors.
        RetryKeys {
            attempts: self.attempts(r),
            backoff: self.backoff(r),
            jitter: self.jitter(r),
            delay: self.step_duration(r, "delay"),
            base: self.step_duration(r, "base"),
            max: self.step_duration(r, "max"),
            timeout: self.step_duration(r, "timeout"),
            deadline: self.step_duration(r, "deadline"),
            multiplier: self.multiplier(r),
        }
    }

    /// `attempts` of a retry table: a whole number that fits a `u32`.
    fn attempts(&mut self, r: &DeTable<'_>) -> Option<(u32, Span)> {
        find(r, "attempts").and_then(|v| match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u32::try_from(n).ok())
            {
                Some(n) => Some((n, v.span())),
                None => {
                    self.push(
                        v.span(),
                        format!(
                            "`attempts` must be a whole number of at least 1, not {}",
                            i.as_str()
                        ),
                        "attempts counts all tries, the first included (1 = no retry)",
                    );
                    None
                }
            },
            _ => {
                self.type_error("attempts", "a whole number", v, "e.g. attempts = 5");
                None
            }
        })
    }

    /// `backoff` of a retry table: the name of a [`BackoffKind`].
    fn backoff(&mut self, r: &DeTable<'_>) -> Option<(BackoffKind, Span)> {
        self.string(r, "backoff")
            .and_then(|b| match BackoffKind::parse(&b.value) {
                Some(k) => Some((k, b.span)),
                None => {
                    self.push(
                        b.span.clone(),
                        format!("unknown backoff `{}`", b.value),
                        guess_hint(
                            &b.value,
                            BackoffKind::NAMES,
                            &format!("backoff is one of {}", BackoffKind::NAMES.join(", ")),
                        ),
                    );
                    None
                }
            })
    }

    /// `jitter` of a retry table: the name of a [`Jitter`].
    fn jitter(&mut self, r: &DeTable<'_>) -> Option<Jitter> {
        self.string(r, "jitter")
            .and_then(|j| match Jitter::parse(&j.value) {
                Some(k) => Some(k),
                None => {
                    self.push(
                        j.span.clone(),
                        format!("unknown jitter `{}`", j.value),
                        guess_hint(
                            &j.value,
                            Jitter::NAMES,
                            &format!("jitter is one of {}", Jitter::NAMES.join(", ")),
                        ),
                    );
                    None
                }
            })
    }

    /// `multiplier` of a retry table: a number, float or integer.
    fn multiplier(&mut self, r: &DeTable<'_>) -> Option<(f64, Span)> {
        find(r, "multiplier").and_then(|v| match v.get_ref() {
            DeValue::Float(f) => f
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .map(|m| (m, v.span())),
            DeValue::Integer(i) => i
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .map(|m| (m, v.span())),
            _ => {
                self.type_error("multiplier", "a number", v, "e.g. multiplier = 2.0");
                None
            }
        })
    }

    /// Reports keys of a retry table `r` that contradict each other: `delay` with `base`,
    /// and keys the chosen backoff would silently ignore.
    fn conflicting_retry_keys(&mut self, r: &DeTable<'_>, keys: &RetryKeys) {
        if let (Some(_), Some((_, base_span))) = (&keys.delay, &keys.base) {
            self.push(
                base_span.clone(),
                "`delay` and `base` both set the first delay",
                "keep one: `delay` for fixed backoff, `base` for linear and exponential",
            );
        }
        let Some((kind, _)) = &keys.backoff else {
            return;
        };
        let name = kind.as_str();
        for key in keys.ignored_by(*kind) {
            if let Some(key_span) = key_span(r, key) {
                self.push(
                    key_span,
                    format!("`{key}` has no effect with backoff = \"{name}\""),
                    match key {
                        "multiplier" => "multiplier applies to exponential backoff only",
                        "max" => "max caps linear and exponential backoff",
                        _ => "backoff = \"none\" retries at once: remove the delay, or choose fixed, linear or exponential",
                    },
                );
            }
        }
    }

    /// The policy that `keys`, written at `span`, make; one the policy itself refuses (no
    /// attempts, a shrinking multiplier, ...) is reported at the key to blame.
    fn retry_policy(&mut self, keys: &RetryKeys, span: Span) -> Option<StepRetry> {
        let retry = StepRetry {
            overrides: keys.overrides(),
            span: span.clone(),
        };
        if let Err(e) = retry.policy() {
            let (at, hint) = keys.blame(&e);
            self.push(at.unwrap_or(span), format!("bad retry policy: {e}"), hint);
            return None;
        }
        Some(retry)
    }

    /// Reports every `{{name}}` anywhere in the document that names no declared option.
    fn placeholders(&mut self, root: &DeTable<'_>, options: &BTreeSet<String>, scope: Scope) {
        let mut strings = Vec::new();
        collect_strings(root, &mut strings);
        for (text, span) in strings {
            for p in template::placeholders(&text) {
                let raw = self.file.text().get(span.clone()).unwrap_or_default();
                let (range, message, hint) = match p {
                    Placeholder::Escaped { .. } => continue,
                    Placeholder::Name { range, name } => {
                        if options.contains(name) || crate::facts::FACTS.contains(&name) {
                            continue;
                        }
                        if crate::facts::USER_FACTS.contains(&name) {
                            if scope == Scope::User {
                                continue;
                            }
                            let needle = &text[range.clone()];
                            let at = raw
                                .find(needle)
                                .map(|i| span.start + i..span.start + i + needle.len())
                                .unwrap_or(span.clone());
                            self.push(
                                at,
                                format!("`{{{{{name}}}}}` is known only in a user extension"),
                                "{{user}} and {{home}} name the user a `scope = \"user\"` extension installs for; add scope = \"user\" to [extension], or write the system path out",
                            );
                            continue;
                        }
                        let hint = if options.is_empty() {
                            format!(
                                "declare it as [extension.options.{name}], with type and default"
                            )
                        } else {
                            guess_hint(
                                name,
                                options.iter().map(String::as_str),
                                &format!(
                                    "the options of this extension are {}; declare others as [extension.options.NAME]",
                                    options
                                        .iter()
                                        .map(|o| format!("`{o}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        };
                        (
                            range,
                            format!("unknown option `{name}` in `{{{{{name}}}}}`"),
                            hint,
                        )
                    }
                    Placeholder::Unclosed { range } => (
                        range,
                        "unclosed `{{`".to_string(),
                        "write an option as {{name}}, or a literal `{{` as \\{{".to_string(),
                    ),
                };
                // Point at the placeholder itself when the source shows it verbatim
                // (no escapes before it), else at the whole string.
                let needle = &text[range.clone()];
                let at = raw
                    .find(needle)
                    .map(|i| span.start + i..span.start + i + needle.len())
                    .unwrap_or(span.clone());
                self.push(at, message, hint);
            }
        }
    }
}

fn collect_strings(table: &DeTable<'_>, out: &mut Vec<(String, Span)>) {
    for (_, v) in table.iter() {
        collect_value(v, out);
    }
}

fn collect_value(v: &Value<'_>, out: &mut Vec<(String, Span)>) {
    match v.get_ref() {
        DeValue::String(s) => out.push((s.to_string(), v.span())),
        DeValue::Array(items) => {
            for item in items.iter() {
                collect_value(item, out);
            }
        }
        DeValue::Table(t) => collect_strings(t, out),
        _ => {}
    }
}

fn quoted_list(items: &[Spanned<String>]) -> String {
    items
        .iter()
        .map(|i| format!("\"{}\"", i.value))
        .collect::<Vec<_>>()
        .join(", ")
}

impl StepRetry {
    /// Reads a table of `retry` keys that is not a step's `retry` (the extension-manager
    /// configuration's `[policy.NAME]` tables take the same keys), with the same checks and
    /// diagnostics. `span` is where the table is written in `file`.
    ///
    /// ```
    /// use em_manifest::{SourceFile, StepRetry};
    /// let file = SourceFile::new("config.toml", "[policy.apt]\nattempts = 5\n");
    /// let root = toml::de::DeTable::parse(file.text()).unwrap();
    /// let (_, policy) = root.get_ref().iter().next().unwrap(); // [policy]
    /// let (_, apt) = policy.get_ref().as_table().unwrap().iter().next().unwrap(); // .apt
    /// let retry = StepRetry::from_table(&file, apt.get_ref().as_table().unwrap(), apt.span()).unwrap();
    /// assert_eq!(retry.overrides.attempts, Some(5));
    /// ```
    pub fn from_table(
        file: &SourceFile,
        table: &DeTable<'_>,
        span: Span,
    ) -> Result<StepRetry, Vec<Diagnostic>> {
        let mut loader = Loader {
            file,
            errors: Vec::new(),
        };
        match loader.retry_table(table, span) {
            Some(retry) if loader.errors.is_empty() => Ok(retry),
            _ => Err(loader.errors),
        }
    }
}

impl Manifest {
    /// Parses a manifest's text; `path` is what diagnostics show, and its file stem is the
    /// name the manifest must have.
    ///
    /// Returns every error of the file, in the order they appear.
    pub fn parse(
        path: impl Into<std::path::PathBuf>,
        text: &str,
    ) -> Result<Manifest, Vec<Diagnostic>> {
        let source = SourceFile::new(path, text);
        let stem = source
            .path()
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string);
        parse_manifest(source, stem.as_deref())
    }

    /// Reads and parses `path`.
    pub fn load(path: &std::path::Path) -> Result<Manifest, Vec<Diagnostic>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Manifest::parse(path, &text),
            Err(e) => Err(vec![Diagnostic::new(format!(
                "cannot read `{}`: {e}",
                path.display()
            ))]),
        }
    }
}
