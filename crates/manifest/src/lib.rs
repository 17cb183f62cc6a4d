//! # em-manifest: extension manifests, checked before anything runs
//!
//! An *extension* (python, nodejs, docker, ...) is declared in one TOML file, `NAME.toml`.
//! This crate turns those files into a typed model, rejects every mistake it can see with
//! an error that points at the offending text, finds the files on the search path, and
//! answers the dependency questions of a run: what to install, in which order.
//!
//! It does not install anything, run commands, or know how apt or npm report failures:
//! that is the adapters' and the CLI's job. Of ours it depends on `em-retry`, whose
//! [`em_retry::RetryPolicy`] a step's `retry` table becomes, and on the package grammars of
//! `em-apt`, `em-npm`, `em-pip` and `em-lang` (`AptPackage::parse` and the like, and
//! [`LangTool`]), so that `check` accepts exactly the package names the adapters run.
//!
//! The walk over toml's spanned tree that reports every error at its key or value
//! ([`walk`]) is public: em-install reads its configuration file with it.
//!
//! ## The schema
//!
//! ```toml
//! [extension]
//! name = "nodejs"                  # [a-z0-9][a-z0-9-]*, equal to the file stem
//! version = "1.2.0"                # required
//! description = "Node.js and npm"  # optional, like everything below
//! category = "language"
//! requires = ["base"]              # hard dependencies
//! after = ["docker"]               # ordering only, within one run
//! conflicts = ["nodejs-legacy"]
//! shell = "bash"                   # runs run/unless/validate/remove (default "sh")
//! scope = "system"                 # or "user": see "Per-user extensions" below
//!
//! [extension.options.version]      # used as {{version}} in any string of the steps,
//! type = "string"                  # and as EM_OPT_VERSION in run steps; facts too:
//!                                  # {{arch}} {{deb_arch}} {{os.id}} {{os.codename}}
//!                                  # {{os.version_id}}; `\{{` is a literal `{{`, and
//!                                  # `{{.Names}}` (not a name) stays as written
//! default = "lts"
//! enum = ["lts", "22", "20"]       # or proposals = [...] (not enforced)
//!
//! [extension.requirements]
//! disk_mb = 400
//! memory_mb = 2048                 # MemTotal
//! os = ["debian>=12", "ubuntu>=22.04"]   # any of them (os-release ID, VERSION_ID)
//! domains = ["registry.example.org"]
//!
//! [extension.env]                  # written double-quoted: $VAR and ${VAR} expand
//! NODE_OPTIONS = "--max-old-space-size=4096"
//! PATH = "$HOME/.local/bin:$PATH"
//!
//! [[install]]                      # exactly one of apt, npm, pip, pipx, cargo, gem, go,
//!                                  # download, run, file, block
//! apt = ["nodejs"]                 # + repository = { uri, suite, components, key, key_sha256 }, allow_http
//! retry = { attempts = 5, backoff = "exponential", base = "2s", max = "30s" }
//! arch = ["x86_64", "aarch64"]     # any step: only on these machines
//!
//! [[install]]
//! download = "https://example.org/tool.tar.gz"   # + sha256, to, unpack_to, mode, via, mirrors, allow_http
//! to = "/opt/tool/tool.tar.gz"
//! # sha256 = "HEX", or one per architecture for a URL with {{deb_arch}} / {{arch}} in it:
//! # sha256 = { x86_64 = "HEX", aarch64 = "HEX" } (none for this machine: refused at resolve)
//!
//! [[install]]
//! run = "corepack enable"          # (npm = [...]; pip = [...] + venv)
//! only_if = "command -v node"      # any step: creates, unless, only_if guards;
//! optional = true                  # a failure warns, the extension goes on
//!
//! [[install]]
//! pipx = ["black", "ruff==0.6.9"] # language package managers, one tool per step:
//!                                  # cargo = ["ripgrep@14.1.0"], gem = ["bundler", "rake@13.2.1"],
//!                                  # go = ["golang.org/x/tools/gopls@v0.16.2"] (go needs @version)
//!
//! [[install]]
//! file = "/etc/tool/tool.conf"     # a whole file; content is data: {{options}} and
//! content = """                  # facts filled in, nothing shell-quoted
//! arch = {{arch}}
//! """
//! mode = "0640"                    # default 0644
//! owner = "root"                   # + group; names looked up at install
//! replace = true                   # an existing file: backed up, restored by remove
//!                                  # (without it an existing file is refused)
//!
//! [[install]]
//! block = "/etc/bash.bashrc"       # lines between `# BEGIN extension-manager NAME`
//! content = "eval \"$(tool init)\"" # and `# END ...`: appended, replaced in place,
//! id = "init"                      # taken out by remove (id: several blocks per file)
//!
//! [[validate]]
//! run = "node --version"
//! expect = "^v[0-9]+"
//!
//! [[remove]]
//! run = "corepack disable"
//! ```
//!
//! ### Language package managers: `pipx`, `cargo`, `gem`, `go`
//!
//! Each lists packages in its tool's own words, checked at load time by
//! `em_lang::LangPackage::parse` (what `check` accepts is what `install` runs):
//!
//! | key | a package | pin | installed as |
//! |---|---|---|---|
//! | `pipx` | a PyPI requirement: `black`, `ruff==0.6.9`, `uvicorn[standard]>=0.29` | `==V` | the pipx venv of that name |
//! | `cargo` | a crate: `ripgrep`, `ripgrep@14.1.0`, `cargo-edit@^0.12` | `@V` | `cargo install --locked` |
//! | `gem` | a gem: `bundler`, `rake@13.2.1` (run as `rake:13.2.1`) | `@V` | `gem install --no-document` |
//! | `go` | a module path with `@vX.Y.Z` or `@latest` | `@V` (required) | the binary in GOBIN, named after the path's last element (before a `/vN`) |
//!
//! No URLs, git specs, paths or options: `pipx = ["--index-url=..."]` is an error (the
//! index is extension-manager's `pip.index` setting). What a step installs that was not
//! there before (by the tool's own list: `pipx list --json`, `cargo install --list`,
//! `gem list`, the files in GOBIN) is recorded, and `remove` takes back exactly that.
//!
//! ### Per-user extensions: `scope = "user"`
//!
//! A user extension installs into one user's home (`install --user alice`; under sudo the
//! invoking user), runs its commands as that user and leaves its files owned by them. Its
//! strings may use `{{user}}` (the login name) and `{{home}}` (the home directory), filled
//! in at install from the passwd database; a system extension that uses them is refused at
//! load (there is no user to name). Every path it writes (`file`, `block`, a download's `to`
//! and `unpack_to`, a pip `venv`) must start with `{{home}}/`. It may not have `apt` or
//! `npm` steps (system-wide: put them in a system extension it `requires`), a `pip` step
//! without `venv`, `owner`/`group` on a file, or options named `user` or `home`. pipx,
//! cargo, gem and go steps install into the user's own directories.
//!
//! ```toml
//! [extension]
//! name = "shell-setup"
//! version = "1.0.0"
//! scope = "user"
//! requires = ["base"]              # a system extension: installed as root first
//!
//! [[install]]
//! block = "{{home}}/.bashrc"
//! content = "export EDITOR=vim"
//! ```
//!
//! ## What loading rejects
//!
//! Unknown keys anywhere; TOML syntax errors; a step with no action or two; a key of
//! another kind of step (`sha256` on an apt step); a bad name, or one that differs from the
//! file stem; package names outside their ecosystem's grammar or starting with `-`;
//! relative paths or `..` in `to`, `unpack_to`, `venv`, `creates`, `file`, `block`; a file
//! or block step without `content`; owner, group and block ids outside `[a-z_][a-z0-9_-]*`; URLs that are not https
//! (unless `allow_http = true`); malformed sha256s, modes, durations, retry policies,
//! architectures, `expect` regexes and `via`; unknown `{{option}}`s; option defaults of the
//! wrong type or outside their `enum`. The [`Catalog`] adds: unknown `requires` targets,
//! `requires` cycles, unknown extensions in profiles. Every error is a [`Diagnostic`]:
//!
//! ```text
//! error: unknown key `aptt` in an install step
//!  --> nodejs.toml:12:1
//!    |
//! 12 | aptt = ["nodejs"]
//!    | ^^^^
//!    = hint: did you mean `apt`? The action keys are apt, npm, pip, pipx, cargo, gem, go, download, run, file, block
//! ```
//!
//! ## Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use em_manifest::{Catalog, Manifest, Step};
//!
//! let text = r#"
//! [extension]
//! name = "nodejs"
//! version = "1.2.0"
//! requires = ["base"]
//!
//! [extension.options.version]
//! default = "22"
//!
//! [[install]]
//! npm = ["node@{{version}}"]
//! retry = { attempts = 5, backoff = "fixed", delay = "2s" }
//! "#;
//! let nodejs = Manifest::parse("nodejs.toml", text).unwrap();
//! assert_eq!(nodejs.name(), "nodejs");
//! assert_eq!(nodejs.install[0].retry.as_ref().unwrap().policy().unwrap().max_attempts(), 5);
//!
//! let resolved = nodejs.resolve(&BTreeMap::new()).unwrap();
//! let Step::Npm(npm) = &resolved.install[0].action else { unreachable!() };
//! assert_eq!(npm.packages[0].value, "node@22");
//!
//! // A mistake is reported with its place and a hint.
//! let errors = Manifest::parse("nodejs.toml", &text.replace("npm =", "npn =")).unwrap_err();
//! assert!(errors[0].to_string().contains("did you mean `npm`?"));
//!
//! // The catalog checks the set as a whole and orders runs.
//! let base = Manifest::parse("base.toml", "[extension]\nname = \"base\"\nversion = \"1\"\n").unwrap();
//! let catalog = Catalog::from_parts([base, nodejs], []).unwrap();
//! assert_eq!(catalog.order(&["nodejs"], &[] as &[&str]).unwrap(), ["base", "nodejs"]);
//! assert_eq!(catalog.reverse_requires("base"), ["nodejs"]);
//! ```

mod catalog;
mod diagnostic;
mod facts;
mod grammar;
mod graph;
mod load;
mod resolve;
mod retry;
mod schema;
mod scope;
mod template;
pub mod walk;

pub use catalog::{
    Catalog, Origin, PATH_VAR, PROFILES_FILE, Profile, SYSTEM_DIR, SearchDir, SearchPath,
    parse_profiles,
};
pub use diagnostic::{Diagnostic, Location, SourceFile, Span, Spanned, render_all};
pub use em_lang::LangTool;
pub use em_retry::BackoffKind;
pub use facts::{FACTS, USER_FACTS, facts, from as facts_from};
pub use resolve::ResolvedManifest;
pub use resolve::TargetUser;
pub use retry::StepRetry;
pub use schema::{
    AptRepository, AptStep, Arch, BlockStep, Check, DownloadStep, FileStep, InstallStep, LangStep,
    Manifest, NpmStep, OptionDef, OptionType, OptionValue, OsRequirement, PipStep, RemoveStep,
    Requirements, RunStep, Scope, Shell, Step, Via,
};
