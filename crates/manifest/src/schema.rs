//! The typed model of a manifest (SPEC section 5).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use em_lang::LangTool;

use crate::diagnostic::{Diagnostic, SourceFile, Span, Spanned};
use crate::retry::StepRetry;

/// One extension's manifest, as loaded from `NAME.toml`.
///
/// Strings of the steps, `env` and `requirements.domains` may still contain `{{option}}`
/// placeholders; [`Manifest::resolve`] substitutes them. Every placeholder names a declared
/// option (checked at load).
#[derive(Clone, Debug)]
pub struct Manifest {
    /// `[extension] name`: equal to the file stem.
    pub name: Spanned<String>,
    /// `[extension] version`: the extension's own version (recorded in the state).
    pub version: Spanned<String>,
    /// `[extension] description` (empty when absent).
    pub description: String,
    /// `[extension] category`: free text, for `list --category`.
    pub category: Option<String>,
    /// Hard dependencies: installed first, pulled into a run when missing.
    pub requires: Vec<Spanned<String>>,
    /// Soft ordering: after these only when they are in the same run.
    pub after: Vec<Spanned<String>>,
    /// Extensions that cannot be installed together with this one.
    pub conflicts: Vec<Spanned<String>>,
    /// `[extension.options.NAME]`, by name.
    pub options: BTreeMap<String, OptionDef>,
    /// `[extension.requirements]`: checked before anything is installed.
    pub requirements: Requirements,
    /// `[extension.env]`: variables written to the extension's profile.d script. Names that
    /// run code (`LD_PRELOAD`, `BASH_ENV`, ...) load only when `[extension] env_allow`
    /// lists them.
    pub env: BTreeMap<String, Spanned<String>>,
    /// `[extension] shell`: what runs the `run`, `unless`, `[[validate]]` and `[[remove]]`
    /// commands (`sh`, the default, or `bash`).
    pub shell: Shell,
    /// `[extension] scope`: where the extension installs (`system`, the default, or
    /// `user`: into one user's home, as that user).
    pub scope: Scope,
    /// `[[install]]` steps, in order.
    pub install: Vec<InstallStep>,
    /// `[[validate]]` checks, in order.
    pub validate: Vec<Check>,
    /// `[[remove]]` steps, in order (empty: undo what the install recorded).
    pub remove: Vec<RemoveStep>,
    pub(crate) source: Arc<SourceFile>,
    pub(crate) sha256: String,
}

/// The shell of a manifest's commands (`[extension] shell`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shell {
    /// `sh -c` (POSIX sh; dash on Debian).
    #[default]
    Sh,
    /// `bash -c`: for scripts written for bash (arrays, `[[ ]]`, `set -o pipefail`).
    Bash,
}

/// Where an extension installs (`[extension] scope`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// System-wide, as root: packages, /etc, /opt, /usr/local.
    #[default]
    System,
    /// Into one user's home, run as that user, files owned by that user; `{{user}}` and
    /// `{{home}}` name the target user.
    User,
}

impl Scope {
    /// `system` or `user`, as written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::User => "user",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Shell {
    /// The program: `sh` or `bash`.
    pub fn program(self) -> &'static str {
        match self {
            Shell::Sh => "sh",
            Shell::Bash => "bash",
        }
    }
}

impl Manifest {
    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// The file the manifest was read from, as shown in diagnostics (a bundled manifest
    /// shows as `<bundled>/NAME.toml`).
    pub fn path(&self) -> &Path {
        self.source.path()
    }

    /// The file's text, shared with every diagnostic pointing into it.
    pub fn source(&self) -> &Arc<SourceFile> {
        &self.source
    }

    /// The sha256 of the file's bytes, 64 lowercase hex digits. The state records it: a
    /// changed manifest means a reinstall.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// An error pointing at `span` of this manifest (e.g. a step's [`InstallStep::span`]).
    pub fn error_at(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.source.error(span, message)
    }

    /// Whether the extension requires `name` directly.
    pub fn requires_name(&self, name: &str) -> bool {
        self.requires.iter().any(|r| r.value == name)
    }
}

/// The type of an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionType {
    /// Any string (or one of `enum`).
    String,
    /// `true` or `false`.
    Boolean,
}

impl fmt::Display for OptionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptionType::String => "string",
            OptionType::Boolean => "boolean",
        })
    }
}

/// The value of an option, from its default or from `--set EXT.OPTION=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OptionValue {
    /// A string option's value (also accepted for a boolean option: `"true"` or `"false"`,
    /// as typed on a command line).
    String(String),
    /// A boolean option's value.
    Bool(bool),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::String(s) => f.write_str(s),
            OptionValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for OptionValue {
    fn from(value: &str) -> Self {
        OptionValue::String(value.to_string())
    }
}

impl From<String> for OptionValue {
    fn from(value: String) -> Self {
        OptionValue::String(value)
    }
}

impl From<bool> for OptionValue {
    fn from(value: bool) -> Self {
        OptionValue::Bool(value)
    }
}

/// `[extension.options.NAME]`: a typed option, set with `--set EXT.NAME=VALUE`.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionDef {
    /// The option's name (the table's key).
    pub name: Spanned<String>,
    /// `type`: string or boolean (when absent: boolean if the default is one, else string).
    pub kind: OptionType,
    /// `default`; an option without one must be set on every install.
    pub default: Option<OptionValue>,
    /// `enum`: the only values allowed (string options).
    pub allowed: Vec<String>,
    /// `proposals`: suggested values, not enforced (string options).
    pub proposals: Vec<String>,
    /// `description`.
    pub description: String,
}

impl OptionDef {
    /// The environment variable a `run` step sees: `EM_OPT_<NAME>`, uppercase, `-` -> `_`.
    pub fn env_name(&self) -> String {
        format!(
            "EM_OPT_{}",
            self.name.value.to_uppercase().replace('-', "_")
        )
    }
}

/// `[extension.requirements]`: preflight checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requirements {
    /// Free space needed under `/`, in MiB.
    pub disk_mb: Option<u64>,
    /// Domains that must resolve.
    pub domains: Vec<Spanned<String>>,
    /// Memory the machine must have (MemTotal), in MiB.
    pub memory_mb: Option<u64>,
    /// The operating systems it installs on, any of them (`debian>=12`, `ubuntu>=22.04`,
    /// `debian`): os-release's `ID` and, with `>=`, its `VERSION_ID`. Empty: any.
    pub os: Vec<OsRequirement>,
}

/// One entry of `requirements.os`: an os-release `ID`, and a least `VERSION_ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsRequirement {
    /// os-release's `ID` (`debian`, `ubuntu`).
    pub id: String,
    /// The least `VERSION_ID` (`12`, `22.04`); None: any version.
    pub min_version: Option<String>,
    /// Where it is written.
    pub span: Span,
}

impl OsRequirement {
    /// Parses `ID` or `ID>=VERSION` (`debian>=12`).
    pub fn parse(text: &str, span: Span) -> Result<OsRequirement, String> {
        let (id, min_version) = match text.split_once(">=") {
            Some((id, v)) => (id.trim(), Some(v.trim())),
            None => (text.trim(), None),
        };
        let id_ok = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        let version_ok = min_version.is_none_or(|v| {
            !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        });
        if !id_ok || !version_ok {
            return Err(format!("`{text}` is not an os requirement"));
        }
        Ok(OsRequirement {
            id: id.to_string(),
            min_version: min_version.map(str::to_string),
            span,
        })
    }

    /// Whether a machine whose os-release says `id` and `version` meets it.
    ///
    /// ```
    /// use em_manifest::OsRequirement;
    /// let r = OsRequirement::parse("ubuntu>=22.04", 0..0).unwrap();
    /// assert!(r.matches("ubuntu", Some("24.04")) && r.matches("ubuntu", Some("22.04")));
    /// assert!(!r.matches("ubuntu", Some("20.04")) && !r.matches("debian", Some("24")));
    /// assert!(!r.matches("ubuntu", None), "an unknown version is not new enough");
    /// ```
    pub fn matches(&self, id: &str, version: Option<&str>) -> bool {
        if id != self.id {
            return false;
        }
        let Some(min) = &self.min_version else {
            return true;
        };
        let parts =
            |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
        version.is_some_and(|v| parts(v) >= parts(min))
    }
}

impl std::fmt::Display for OsRequirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.min_version {
            Some(v) => write!(f, "{}>={v}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// The machine architectures a step can be limited to with `arch = [...]`.
///
/// Names follow `uname -m` (what people see in download URLs), not Debian's (`amd64`):
/// x86_64, aarch64, armv7, i686, riscv64, ppc64le, s390x, loongarch64. The Debian and Go
/// spellings are rejected with a hint naming the right one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// 64-bit x86 (Debian: amd64).
    X86_64,
    /// 64-bit ARM (Debian: arm64).
    Aarch64,
    /// 32-bit ARM, hard float (Debian: armhf).
    Armv7,
    /// 32-bit x86 (Debian: i386).
    I686,
    /// 64-bit RISC-V.
    Riscv64,
    /// 64-bit POWER, little endian.
    Ppc64le,
    /// IBM Z.
    S390x,
    /// 64-bit LoongArch.
    Loongarch64,
}

impl Arch {
    /// Every architecture, in the order of the list above.
    pub const ALL: [Arch; 8] = [
        Arch::X86_64,
        Arch::Aarch64,
        Arch::Armv7,
        Arch::I686,
        Arch::Riscv64,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Loongarch64,
    ];

    /// The name as written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Armv7 => "armv7",
            Arch::I686 => "i686",
            Arch::Riscv64 => "riscv64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loongarch64",
        }
    }

    /// Parses a manifest's spelling.
    pub fn parse(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The architecture this program was built for (`None` on one not in the list).
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            "arm" => Some(Arch::Armv7),
            "x86" => Some(Arch::I686),
            "riscv64" => Some(Arch::Riscv64),
            "powerpc64" if cfg!(target_endian = "little") => Some(Arch::Ppc64le),
            "s390x" => Some(Arch::S390x),
            "loongarch64" => Some(Arch::Loongarch64),
            _ => None,
        }
    }

    /// The right spelling for a common other one (Debian's, Go's).
    pub(crate) fn alias(name: &str) -> Option<Arch> {
        match name {
            "amd64" | "x64" | "x86-64" => Some(Arch::X86_64),
            "arm64" => Some(Arch::Aarch64),
            "armhf" | "arm" | "armv7l" => Some(Arch::Armv7),
            "i386" | "386" | "x86" => Some(Arch::I686),
            "ppc64el" => Some(Arch::Ppc64le),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[install]]` step: its action and the options every step can have.
#[derive(Clone, Debug, PartialEq)]
pub struct InstallStep {
    /// What the step does.
    pub action: Step,
    /// `retry`: overrides the adapter's default policy.
    pub retry: Option<StepRetry>,
    /// `arch`: run only on these architectures (empty: on all).
    pub arch: Vec<Arch>,
    /// `creates`: skip the step when this absolute path exists.
    pub creates: Option<Spanned<String>>,
    /// `unless`: skip the step when this shell command succeeds.
    pub unless: Option<Spanned<String>>,
    /// `only_if`: skip the step unless this shell command succeeds (`command -v docker`,
    /// `test -z "$CI"`).
    pub only_if: Option<Spanned<String>>,
    /// `optional = true`: a failure of this step is a warning; the extension goes on.
    pub optional: bool,
    /// Where the step is written (its `[[install]]` header).
    pub span: Span,
}

impl InstallStep {
    /// Whether the step runs on `host` (a step without `arch` runs everywhere; a step
    /// with `arch` does not run on an unknown host).
    pub fn runs_on(&self, host: Option<Arch>) -> bool {
        self.arch.is_empty() || host.is_some_and(|h| self.arch.contains(&h))
    }
}

/// The action of an install step: exactly one of apt, npm, pip, pipx, cargo, gem, go,
/// download, run, file, block.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `apt = [...]`.
    Apt(AptStep),
    /// `npm = [...]`: global installs.
    Npm(NpmStep),
    /// `pip = [...]`.
    Pip(PipStep),
    /// `pipx = [...]`, `cargo = [...]`, `gem = [...]` or `go = [...]`: a language package
    /// manager's installs of tools.
    Lang(LangStep),
    /// `download = "URL"`.
    Download(DownloadStep),
    /// `run = "..."`: a shell snippet (`sh -c`).
    Run(RunStep),
    /// `file = "/PATH"` + `content`: a whole file from inline content.
    File(FileStep),
    /// `block = "/PATH"` + `content`: a managed block between marker lines in a file
    /// (a shell rc or profile file).
    Block(BlockStep),
}

impl Step {
    /// The action key: `apt`, `npm`, `pip`, `pipx`, `cargo`, `gem`, `go`, `download`, `run`,
    /// `file` or `block`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Apt(_) => "apt",
            Step::Npm(_) => "npm",
            Step::Pip(_) => "pip",
            Step::Lang(s) => s.tool.key(),
            Step::Download(_) => "download",
            Step::Run(_) => "run",
            Step::File(_) => "file",
            Step::Block(_) => "block",
        }
    }

    /// A one-line description for logs and plans: `apt install nodejs npm`,
    /// `download https://... -> /opt/tool.tar.gz`, `run corepack enable`.
    pub fn summary(&self) -> String {
        let list = |p: &[Spanned<String>]| {
            p.iter()
                .map(|s| s.value.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Step::Apt(s) => format!("apt install {}", list(&s.packages)),
            Step::Npm(s) => format!("npm install -g {}", list(&s.packages)),
            Step::Pip(s) => match &s.venv {
                Some(v) => format!("pip install {} (venv {})", list(&s.packages), v.value),
                None => format!("pip install {}", list(&s.packages)),
            },
            Step::Lang(s) => format!("{} install {}", s.tool, list(&s.packages)),
            Step::Download(s) => format!("download {} -> {}", s.url.value, s.to.value),
            Step::Run(s) => format!("run {}", s.command.value),
            Step::File(s) => {
                let mut extra = vec![format!("mode {:04o}", s.mode())];
                match (&s.owner, &s.group) {
                    (Some(o), Some(g)) => extra.push(format!("owner {}:{}", o.value, g.value)),
                    (Some(o), None) => extra.push(format!("owner {}", o.value)),
                    (None, Some(g)) => extra.push(format!("group {}", g.value)),
                    (None, None) => {}
                }
                if s.replace {
                    extra.push("replaces an existing file, restored by remove".into());
                }
                format!(
                    "file {} ({} bytes, {})",
                    s.path.value,
                    s.content.value.len(),
                    extra.join(", ")
                )
            }
            Step::Block(s) => match &s.id {
                Some(id) => format!("block {} (managed block `{}`)", s.path.value, id.value),
                None => format!("block {} (managed block)", s.path.value),
            },
        }
    }
}

/// `apt = [...]`, optionally from a third-party repository.
#[derive(Clone, Debug, PartialEq)]
pub struct AptStep {
    /// Package names, each matching apt's grammar.
    pub packages: Vec<Spanned<String>>,
    /// `repository = {...}`: a source added for this step.
    pub repository: Option<AptRepository>,
    /// `allow_http`: the repository's URI and key may be plain http.
    pub allow_http: bool,
}

/// `repository = { uri, suite, components, key, key_sha256 }` of an apt step.
#[derive(Clone, Debug, PartialEq)]
pub struct AptRepository {
    /// The archive root, https unless the step has `allow_http = true`.
    pub uri: Spanned<String>,
    /// The suite (`bookworm`), or a path ending in `/` for a flat repository.
    pub suite: Spanned<String>,
    /// The components (`stable`, `main`); empty for a flat repository.
    pub components: Vec<Spanned<String>>,
    /// The URL of the signing key.
    pub key: Spanned<String>,
    /// The sha256 of the key file, when pinned.
    pub key_sha256: Option<Spanned<String>>,
    /// Where the table is written.
    pub span: Span,
}

/// `npm = [...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct NpmStep {
    /// Package specs, each matching npm's grammar.
    pub packages: Vec<Spanned<String>>,
}

/// `pip = [...]`, optionally into a virtual environment.
#[derive(Clone, Debug, PartialEq)]
pub struct PipStep {
    /// Requirements, each a PEP 508 subset (name, extras, specifiers).
    pub packages: Vec<Spanned<String>>,
    /// `venv`: an absolute path, created when missing.
    pub venv: Option<Spanned<String>>,
}

/// `pipx = [...]`, `cargo = [...]`, `gem = [...]` or `go = [...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LangStep {
    /// Which tool: the step's action key.
    pub tool: LangTool,
    /// Package specs, each matching the tool's grammar (`em_lang::LangPackage::parse`).
    pub packages: Vec<Spanned<String>>,
}

/// Which tool fetches a download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// curl.
    Curl,
    /// wget.
    Wget,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Curl => "curl",
            Via::Wget => "wget",
        })
    }
}

/// `download = "URL"` and its keys.
#[derive(Clone, Debug, PartialEq)]
pub struct DownloadStep {
    /// The URL: https unless `allow_http = true`.
    pub url: Spanned<String>,
    /// `sha256`: verified before the file is moved into place. Once resolved, the one for
    /// this machine when the manifest pins one per architecture (`sha256_by_arch`).
    pub sha256: Option<Spanned<String>>,
    /// `sha256 = { x86_64 = "...", aarch64 = "..." }`: one checksum per architecture, for
    /// a URL that names the architecture (`{{deb_arch}}`, `{{arch}}`). Resolving picks this
    /// machine's into `sha256`; a machine with none is refused before anything runs.
    pub sha256_by_arch: Vec<(Arch, Spanned<String>)>,
    /// `to`: the absolute destination path.
    pub to: Spanned<String>,
    /// `unpack_to`: an absolute directory to unpack into (tar.gz, tar.xz, zip).
    pub unpack_to: Option<Spanned<String>>,
    /// `mode`: the file mode, from an octal string such as `"0755"`.
    pub mode: Option<u32>,
    /// `via`: curl or wget (`None`: curl when present, else wget).
    pub via: Option<Via>,
    /// `mirrors`: alternate URLs, tried in order when the primary fails.
    pub mirrors: Vec<Spanned<String>>,
    /// `allow_http`: plain http is accepted for the URL and mirrors.
    pub allow_http: bool,
}

/// `run = "..."`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStep {
    /// The shell snippet, run with `sh -c`; once resolved, each `{{option}}` in it is one
    /// quoted shell word (see `Manifest::resolve`).
    pub command: Spanned<String>,
}

/// `file = "/PATH"` and its keys: the whole file, written atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct FileStep {
    /// The absolute path of the file (never written through a symlink).
    pub path: Spanned<String>,
    /// `content`: the file's bytes. `{{option}}`s and facts are filled in plainly (data,
    /// not shell).
    pub content: Spanned<String>,
    /// `mode`: from an octal string such as `"0644"` (`None`: 0644).
    pub mode: Option<u32>,
    /// `owner`: a user name, looked up at install.
    pub owner: Option<Spanned<String>>,
    /// `group`: a group name, looked up at install.
    pub group: Option<Spanned<String>>,
    /// `replace = true`: an existing file is backed up, replaced, and restored by `remove`.
    pub replace: bool,
}

impl FileStep {
    /// The mode the file gets: `mode`, else 0644.
    pub fn mode(&self) -> u32 {
        self.mode.unwrap_or(0o644)
    }
}

/// `block = "/PATH"` and its keys: a block of lines between
/// `# BEGIN extension-manager NAME[ ID]` and `# END extension-manager NAME[ ID]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockStep {
    /// The absolute path of the file (created when missing; never a symlink).
    pub path: Spanned<String>,
    /// `content`: the lines of the block. `{{option}}`s and facts are filled in plainly.
    pub content: Spanned<String>,
    /// `id`: tells apart several blocks of one extension in one file.
    pub id: Option<Spanned<String>>,
}

impl BlockStep {
    /// The marker label: the extension's name, then the id when there is one.
    pub fn label(&self, extension: &str) -> String {
        match &self.id {
            Some(id) => format!("{extension} {}", id.value),
            None => extension.to_string(),
        }
    }
}

/// A `[[validate]]` check.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The command (`sh -c`); it must exit 0.
    pub run: Spanned<String>,
    /// `expect`: a regex that stdout must match (checked at load to compile).
    pub expect: Option<Spanned<String>>,
    /// Where the check is written.
    pub span: Span,
}

impl Check {
    /// Whether `stdout` satisfies `expect` (always true without one). The trailing line
    /// breaks are dropped first, as the shell's `$(...)` drops them, so that
    /// `expect = "^v1$"` matches a command that prints the line `v1`.
    pub fn is_expected_output(&self, stdout: &str) -> bool {
        match &self.expect {
            None => true,
            // The pattern compiled at load (and again after substitution in `resolve`).
            Some(pattern) => regex_lite::Regex::new(&pattern.value)
                .is_ok_and(|r| r.is_match(stdout.trim_end_matches(['\n', '\r']))),
        }
    }
}

/// A `[[remove]]` step.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoveStep {
    /// The command (`sh -c`).
    pub run: Spanned<String>,
    /// Where the step is written.
    pub span: Span,
}
