//! Options: from defaults and `--set` values to a manifest with its placeholders filled in.

use std::collections::BTreeMap;
use std::ops::Deref;

use crate::diagnostic::{Diagnostic, Spanned};
use crate::load::{check_values, sha256_hex};
use crate::schema::Arch;
use crate::schema::{
    AptRepository, AptStep, BlockStep, Check, DownloadStep, FileStep, InstallStep, LangStep,
    Manifest, NpmStep, OptionType, OptionValue, PipStep, RemoveStep, Requirements, RunStep, Step,
};
use crate::template;

/// A manifest with every `{{option}}` replaced by its value for this run.
///
/// Dereferences to the substituted [`Manifest`] (same spans, same sha256), so a step's
/// packages, URLs and commands read as they will run.
#[derive(Clone, Debug)]
pub struct ResolvedManifest {
    manifest: Manifest,
    values: BTreeMap<String, OptionValue>,
    user: Option<TargetUser>,
}

impl Deref for ResolvedManifest {
    type Target = Manifest;
    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

impl ResolvedManifest {
    /// The steps, to rewrite in place: `install --locked` pins each package step to the
    /// exact versions of the lock file. The sha256 and the values stay those of the file
    /// and the options (what the lock is compared against).
    pub fn install_mut(&mut self) -> &mut Vec<crate::InstallStep> {
        &mut self.manifest.install
    }

    /// The substituted manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The target user of a `scope = "user"` extension (None for a system extension).
    pub fn user(&self) -> Option<&TargetUser> {
        self.user.as_ref()
    }

    /// The value of every option, defaults included.
    pub fn values(&self) -> &BTreeMap<String, OptionValue> {
        &self.values
    }

    /// The environment of `run` steps: `EM_OPT_<NAME>` (uppercase, `-` -> `_`) for every
    /// option; booleans are `true` or `false`.
    pub fn option_env(&self) -> BTreeMap<String, String> {
        self.manifest
            .options
            .values()
            .filter_map(|def| {
                self.values
                    .get(&def.name.value)
                    .map(|v| (def.env_name(), v.to_string()))
            })
            .collect()
    }

    /// The manifest's sha256 combined with the option values: what changes when either the
    /// file or an option of the install changes.
    pub fn fingerprint(&self) -> String {
        let mut text = self.manifest.sha256().to_string();
        for (name, value) in &self.values {
            text.push_str(&format!("\n{name}={value}"));
        }
        sha256_hex(text.as_bytes())
    }
}

/// The user a `scope = "user"` extension installs for, as its strings see it:
/// `{{user}}` and `{{home}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUser {
    /// The login name.
    pub name: String,
    /// The home directory (absolute, from the passwd database).
    pub home: String,
    /// The user id (files of the extension are owned by it; its commands run as it).
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
}

impl Manifest {
    /// The description with each `{{option}}` filled in plainly (descriptions are text,
    /// not shell: no quoting): the value in `values` (e.g. `--set`, or what an install
    /// used), else the option's default. An option with neither stays `{{name}}`, as
    /// written, so that the reader sees something is left to choose.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use em_manifest::{Manifest, OptionValue};
    /// let m = Manifest::parse("nodejs.toml", r#"
    /// [extension]
    /// name = "nodejs"
    /// version = "1.0.0"
    /// description = "Node.js {{version}} and npm"
    /// [extension.options.version]
    /// default = "lts"
    /// "#).unwrap();
    /// assert_eq!(m.description_with(&BTreeMap::new()), "Node.js lts and npm");
    /// let set = BTreeMap::from([("version".to_string(), OptionValue::from("22 LTS"))]);
    /// assert_eq!(m.description_with(&set), "Node.js 22 LTS and npm");
    /// // A resolved manifest's description is filled the same way.
    /// assert_eq!(m.resolve(&set).unwrap().description, "Node.js 22 LTS and npm");
    /// ```
    pub fn description_with(&self, values: &BTreeMap<String, OptionValue>) -> String {
        template::substitute(&self.description, &|name| {
            values
                .get(name)
                .or_else(|| self.options.get(name).and_then(|o| o.default.as_ref()))
                .map(ToString::to_string)
        })
    }

    /// Fills in the options: each option's default, then `values` (from `--set`), then
    /// substitutes `{{name}}` everywhere and checks the results again (package grammars,
    /// URLs, paths), so that an option value cannot smuggle in an `-o` or a `../`.
    ///
    /// In shell commands (`run`, `unless`, `[[validate]] run`, `[[remove]] run`) each value
    /// is substituted as one shell word, quoted when needed (`1; touch x #` becomes
    /// `'1; touch x #'`), so a value can never become a second command. Write the
    /// placeholder as a word of its own, outside quotes (`echo {{version}}`, not
    /// `echo "{{version}}"`); the same values reach the commands as `EM_OPT_<NAME>`
    /// environment variables (see [`ResolvedManifest::option_env`]) for scripts that
    /// prefer `"$EM_OPT_VERSION"`. A value with a NUL byte is refused.
    ///
    /// A value for an unknown option, a value outside an option's `enum`, a non-boolean for
    /// a boolean option and a missing value for an option without default are errors that
    /// name what is allowed.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use em_manifest::{Manifest, OptionValue, Step};
    /// let m = Manifest::parse("nodejs.toml", r#"
    /// [extension]
    /// name = "nodejs"
    /// version = "1.0.0"
    /// [extension.options.version]
    /// default = "lts"
    /// enum = ["lts", "22"]
    /// [[install]]
    /// npm = ["node@{{version}}"]
    /// "#).unwrap();
    /// let values = BTreeMap::from([("version".to_string(), OptionValue::from("22"))]);
    /// let r = m.resolve(&values).unwrap();
    /// let Step::Npm(npm) = &r.install[0].action else { panic!() };
    /// assert_eq!(npm.packages[0].value, "node@22");
    /// assert_eq!(r.option_env()["EM_OPT_VERSION"], "22");
    /// assert!(m.resolve(&BTreeMap::from([("version".into(), "18".into())])).is_err());
    ///
    /// let m = Manifest::parse("tool.toml", r#"
    /// [extension]
    /// name = "tool"
    /// version = "1.0.0"
    /// [extension.options.version]
    /// default = "1"
    /// [[install]]
    /// run = "echo {{version}}"
    /// "#).unwrap();
    /// let values = BTreeMap::from([("version".to_string(), OptionValue::from("1; id #"))]);
    /// let Step::Run(run) = &m.resolve(&values).unwrap().install[0].action else { panic!() };
    /// assert_eq!(run.command.value, "echo '1; id #'");
    /// ```
    pub fn resolve(
        &self,
        values: &BTreeMap<String, OptionValue>,
    ) -> Result<ResolvedManifest, Diagnostic> {
        self.resolve_for(values, None)
    }

    /// [`resolve`](Self::resolve) for the target user of a `scope = "user"` extension:
    /// `{{user}}` and `{{home}}` become `user`'s name and home (checked again: the home
    /// must be an absolute path without `..`). A user extension resolved without a user
    /// fails, saying to pass `--user`; a system extension ignores `user`.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use em_manifest::{Manifest, Step, TargetUser};
    /// let m = Manifest::parse("dotfiles.toml", r#"
    /// [extension]
    /// name = "dotfiles"
    /// version = "1.0.0"
    /// scope = "user"
    /// [[install]]
    /// file = "{{home}}/.config/tool.conf"
    /// content = "user = {{user}}\n"
    /// "#).unwrap();
    /// let alice = TargetUser { name: "alice".into(), home: "/home/alice".into(), uid: 1000, gid: 1000 };
    /// let r = m.resolve_for(&BTreeMap::new(), Some(&alice)).unwrap();
    /// let Step::File(f) = &r.install[0].action else { panic!() };
    /// assert_eq!(f.path.value, "/home/alice/.config/tool.conf");
    /// assert_eq!(f.content.value, "user = alice\n");
    /// assert!(m.resolve(&BTreeMap::new()).is_err(), "no target user");
    /// ```
    pub fn resolve_for(
        &self,
        values: &BTreeMap<String, OptionValue>,
        user: Option<&TargetUser>,
    ) -> Result<ResolvedManifest, Diagnostic> {
        let name = self.name();
        let user = match (self.scope, user) {
            (crate::Scope::System, _) => None,
            (crate::Scope::User, Some(u)) => Some(u),
            (crate::Scope::User, None) => {
                return Err(Diagnostic::new(format!(
                    "`{name}` is a user extension and no target user was given"
                ))
                .with_hint("it installs into one user's home: pass --user NAME (under sudo, the invoking user is the default)"));
            }
        };
        for key in values.keys() {
            if !self.options.contains_key(key) {
                let hint = if self.options.is_empty() {
                    format!("`{name}` has no options")
                } else {
                    format!(
                        "the options of `{name}` are {}",
                        self.options
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(
                    Diagnostic::new(format!("`{name}` has no option `{key}`")).with_hint(hint)
                );
            }
        }
        let mut resolved = BTreeMap::new();
        for (key, def) in &self.options {
            let value = match (values.get(key), def.kind) {
                (Some(OptionValue::Bool(b)), OptionType::Boolean) => OptionValue::Bool(*b),
                (Some(OptionValue::String(s)), OptionType::Boolean) => match s.as_str() {
                    "true" => OptionValue::Bool(true),
                    "false" => OptionValue::Bool(false),
                    _ => {
                        return Err(Diagnostic::new(format!(
                            "`{name}.{key}` is a boolean option, not \"{s}\""
                        ))
                        .with_hint(format!(
                            "use --set {name}.{key}=true or --set {name}.{key}=false"
                        )));
                    }
                },
                (Some(OptionValue::Bool(b)), OptionType::String) => {
                    OptionValue::String(b.to_string())
                }
                (Some(OptionValue::String(s)), OptionType::String) => {
                    OptionValue::String(s.clone())
                }
                (None, _) => match &def.default {
                    Some(d) => d.clone(),
                    None => {
                        return Err(Diagnostic::new(format!(
                            "option `{name}.{key}` has no default and was not set"
                        ))
                        .with_hint(format!("set it with --set {name}.{key}=VALUE")));
                    }
                },
            };
            if let OptionValue::String(s) = &value
                && !def.allowed.is_empty()
                && !def.allowed.contains(s)
            {
                return Err(Diagnostic::new(format!(
                    "\"{s}\" is not an allowed value of `{name}.{key}`"
                ))
                .with_hint(format!(
                    "the allowed values are {}",
                    def.allowed
                        .iter()
                        .map(|a| format!("\"{a}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            resolved.insert(key.clone(), value);
        }
        let mut text_values: BTreeMap<String, String> = resolved
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        if let Some(u) = user {
            // An option of the same name would shadow them; options cannot be named
            // `home` or `user` in a user extension for that reason (see `scope`).
            text_values.insert("user".into(), u.name.clone());
            text_values.insert("home".into(), u.home.trim_end_matches('/').to_string());
        }
        if let Some(first) = check_values(self, &text_values).into_iter().next() {
            return Err(first);
        }
        if let Some((key, _)) = text_values.iter().find(|(_, v)| v.contains('\0')) {
            return Err(Diagnostic::new(format!(
                "the value of `{name}.{key}` contains a NUL byte"
            ))
            .with_hint("option values are text: remove the NUL byte"));
        }
        let facts = crate::facts::facts();
        if let Some(missing) = used_facts(self)
            .into_iter()
            .find(|f| !text_values.contains_key(f) && !facts.contains_key(f))
        {
            return Err(Diagnostic::new(format!(
                "`{name}` uses {{{{{missing}}}}}, which this machine does not have"
            ))
            .with_hint("os.* facts come from /etc/os-release; this machine has none"));
        }
        let value = |name: &str| text_values.get(name).or_else(|| facts.get(name)).cloned();
        let f = |s: &str| template::substitute(s, &value);
        let sh = |s: &str| template::substitute_shell(s, &value);
        let manifest = substitute_manifest(self, &f, &sh);
        if let Some(unpinned) = unpinned_here(&manifest) {
            return Err(unpinned);
        }
        Ok(ResolvedManifest {
            manifest,
            values: resolved,
            user: user.cloned(),
        })
    }
}

/// The facts (`{{arch}}` ...) that `m`'s strings use.
fn used_facts(m: &Manifest) -> Vec<String> {
    let used = std::cell::RefCell::new(Vec::<String>::new());
    let note = |s: &str| {
        for p in template::placeholders(s) {
            if let template::Placeholder::Name { name, .. } = p
                && crate::facts::FACTS.contains(&name)
                && !used.borrow().iter().any(|u| u == name)
            {
                used.borrow_mut().push(name.to_string());
            }
        }
        s.to_string()
    };
    // Every string goes through one of the two substitutions: record what they are asked.
    let _ = substitute_manifest(m, &note, &note);
    used.into_inner()
}

/// `m` with `f` applied to its data strings and `sh` to its shell commands.
/// A download step that runs on this machine and pins a sha256 per architecture, but
/// none for this one: refused before anything runs (downloading it unchecked would be a
/// silent downgrade of the pin).
fn unpinned_here(m: &Manifest) -> Option<Diagnostic> {
    let host = Arch::host();
    m.install.iter().find_map(|step| match &step.action {
        Step::Download(d)
            if !d.sha256_by_arch.is_empty() && d.sha256.is_none() && step.runs_on(host) =>
        {
            let pinned: Vec<_> = d.sha256_by_arch.iter().map(|(a, _)| a.as_str()).collect();
            Some(
                Diagnostic::new(format!(
                    "`{}` downloads {} with a sha256 for {} only, not for this machine ({})",
                    m.name(),
                    d.url.value,
                    pinned.join(", "),
                    host.map_or(std::env::consts::ARCH, Arch::as_str)
                ))
                .with_hint("add this architecture's checksum to the step's sha256 table, or limit the step with arch = [...]"),
            )
        }
        _ => None,
    })
}

fn substitute_manifest(
    m: &Manifest,
    f: &dyn Fn(&str) -> String,
    sh: &dyn Fn(&str) -> String,
) -> Manifest {
    let s = |x: &Spanned<String>| Spanned::new(f(&x.value), x.span.clone());
    let shell = |x: &Spanned<String>| Spanned::new(sh(&x.value), x.span.clone());
    let o = |x: &Option<Spanned<String>>| x.as_ref().map(s);
    let v = |x: &[Spanned<String>]| x.iter().map(s).collect::<Vec<_>>();
    let install = m
        .install
        .iter()
        .map(|step| InstallStep {
            action: match &step.action {
                Step::Apt(a) => Step::Apt(AptStep {
                    packages: v(&a.packages),
                    repository: a.repository.as_ref().map(|r| AptRepository {
                        uri: s(&r.uri),
                        suite: s(&r.suite),
                        components: v(&r.components),
                        key: s(&r.key),
                        key_sha256: o(&r.key_sha256),
                        span: r.span.clone(),
                    }),
                    allow_http: a.allow_http,
                }),
                Step::Npm(n) => Step::Npm(NpmStep {
                    packages: v(&n.packages),
                }),
                Step::Lang(l) => Step::Lang(LangStep {
                    tool: l.tool,
                    packages: v(&l.packages),
                }),
                Step::Pip(p) => Step::Pip(PipStep {
                    packages: v(&p.packages),
                    venv: o(&p.venv),
                }),
                Step::Download(d) => Step::Download(DownloadStep {
                    url: s(&d.url),
                    sha256: o(&d.sha256).or_else(|| {
                        let host = Arch::host()?;
                        let (_, pin) = d.sha256_by_arch.iter().find(|(a, _)| *a == host)?;
                        Some(pin.clone())
                    }),
                    sha256_by_arch: d.sha256_by_arch.clone(),
                    to: s(&d.to),
                    unpack_to: o(&d.unpack_to),
                    mode: d.mode,
                    via: d.via,
                    mirrors: v(&d.mirrors),
                    allow_http: d.allow_http,
                }),
                Step::Run(r) => Step::Run(RunStep {
                    command: shell(&r.command),
                }),
                // Content is data: filled plainly, never shell-quoted.
                Step::File(x) => Step::File(FileStep {
                    path: s(&x.path),
                    content: s(&x.content),
                    mode: x.mode,
                    owner: o(&x.owner),
                    group: o(&x.group),
                    replace: x.replace,
                }),
                Step::Block(b) => Step::Block(BlockStep {
                    path: s(&b.path),
                    content: s(&b.content),
                    id: b.id.clone(),
                }),
            },
            retry: step.retry.clone(),
            arch: step.arch.clone(),
            creates: o(&step.creates),
            unless: step.unless.as_ref().map(shell),
            only_if: step.only_if.as_ref().map(shell),
            optional: step.optional,
            span: step.span.clone(),
        })
        .collect();
    Manifest {
        // Text for people, not a shell: filled plainly.
        description: f(&m.description),
        env: m.env.iter().map(|(k, x)| (k.clone(), s(x))).collect(),
        requirements: Requirements {
            disk_mb: m.requirements.disk_mb,
            domains: v(&m.requirements.domains),
            memory_mb: m.requirements.memory_mb,
            os: m.requirements.os.clone(),
        },
        install,
        validate: m
            .validate
            .iter()
            .map(|c| Check {
                run: shell(&c.run),
                expect: o(&c.expect),
                span: c.span.clone(),
            })
            .collect(),
        remove: m
            .remove
            .iter()
            .map(|r| RemoveStep {
                run: shell(&r.run),
                span: r.span.clone(),
            })
            .collect(),
        ..m.clone()
    }
}
