//! The good manifests under `fixtures/manifests/valid/` load, and to the model we expect.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use em_manifest::{
    Arch, BackoffKind, Catalog, Manifest, OptionType, OptionValue, SearchPath, Step, Via,
};
use em_retry::{Backoff, Jitter};

const VALID: &str = "../../fixtures/manifests/valid";

fn load(name: &str) -> Manifest {
    let path = Path::new(VALID).join(format!("{name}.toml"));
    Manifest::load(&path).unwrap_or_else(|e| panic!("{}", em_manifest::render_all(&e)))
}

fn values(m: &[em_manifest::Spanned<String>]) -> Vec<&str> {
    m.iter().map(|s| s.value.as_str()).collect()
}

#[test]
fn the_manifest_using_every_key_loads_to_the_expected_model() {
    let m = load("everything");
    assert_eq!(m.name(), "everything");
    assert_eq!(m.version.value, "2.1.0");
    assert_eq!(m.description, "Every key of the manifest schema");
    assert_eq!(m.category.as_deref(), Some("test"));
    assert_eq!(values(&m.requires), ["base"]);
    assert_eq!(values(&m.after), ["python"]);
    assert_eq!(values(&m.conflicts), ["legacy-everything"]);

    let version = &m.options["version"];
    assert_eq!(version.kind, OptionType::String);
    assert_eq!(version.default, Some(OptionValue::from("22")));
    assert_eq!(version.allowed, ["22", "20"]);
    assert_eq!(version.description, "Major version");
    assert_eq!(m.options["channel"].proposals, ["stable", "beta"]);
    let docs = &m.options["with-docs"];
    assert_eq!(docs.kind, OptionType::Boolean);
    assert_eq!(docs.default, Some(OptionValue::Bool(false)));
    assert_eq!(docs.env_name(), "EM_OPT_WITH_DOCS");

    assert_eq!(m.requirements.disk_mb, Some(400));
    assert_eq!(
        values(&m.requirements.domains),
        ["registry.example.org", "deb.example.org"]
    );
    assert_eq!(m.env["NODE_OPTIONS"].value, "--max-old-space-size=4096");

    assert_eq!(m.install.len(), 7);
    let kinds: Vec<&str> = m.install.iter().map(|s| s.action.kind()).collect();
    assert_eq!(
        kinds,
        ["apt", "apt", "apt", "npm", "pip", "download", "run"]
    );

    let Step::Apt(apt) = &m.install[0].action else {
        panic!("apt")
    };
    assert_eq!(
        values(&apt.packages),
        ["nodejs", "python3-venv:amd64", "git/bookworm-backports"]
    );
    assert_eq!(m.install[0].arch, [Arch::X86_64, Arch::Aarch64]);
    assert!(m.install[0].runs_on(Some(Arch::Aarch64)));
    assert!(!m.install[0].runs_on(Some(Arch::Riscv64)));
    assert!(!m.install[0].runs_on(None));
    assert!(m.install[1].runs_on(None));

    let Step::Apt(docker) = &m.install[1].action else {
        panic!("apt")
    };
    let repo = docker.repository.as_ref().expect("repository");
    assert_eq!(repo.uri.value, "https://download.example.org/linux/debian");
    assert_eq!(repo.suite.value, "bookworm");
    assert_eq!(values(&repo.components), ["stable"]);
    assert_eq!(
        repo.key.value,
        "https://download.example.org/linux/debian/gpg"
    );
    assert_eq!(
        repo.key_sha256.as_ref().expect("pinned").value,
        "b".repeat(64)
    );
    assert!(!docker.allow_http);

    let Step::Apt(flat) = &m.install[2].action else {
        panic!("apt")
    };
    assert!(flat.allow_http);
    let flat_repo = flat.repository.as_ref().expect("repository");
    assert!(flat_repo.components.is_empty());
    assert_eq!(flat_repo.suite.value, "./");

    let Step::Npm(npm) = &m.install[3].action else {
        panic!("npm")
    };
    assert_eq!(
        values(&npm.packages),
        ["typescript@5", "@types/node@^{{version}}", "prettier"]
    );
    let retry = m.install[3].retry.as_ref().expect("retry");
    assert_eq!(retry.overrides.attempts, Some(5));
    assert_eq!(retry.overrides.backoff, Some(BackoffKind::Exponential));
    assert_eq!(retry.overrides.jitter, Some(Jitter::Equal));
    let policy = retry.policy().expect("valid policy");
    assert_eq!(policy.max_attempts(), 5);
    assert_eq!(
        policy.backoff(),
        &Backoff::Exponential {
            base: Duration::from_secs(2),
            multiplier: 2.0,
            max: Duration::from_secs(30)
        }
    );
    assert_eq!(policy.timeout(), Some(Duration::from_secs(300)));
    assert_eq!(policy.deadline(), Some(Duration::from_secs(1200)));

    let Step::Pip(pip) = &m.install[4].action else {
        panic!("pip")
    };
    assert_eq!(
        values(&pip.packages),
        ["black==24.*", "uvicorn[standard]>=0.29,<1"]
    );
    assert_eq!(pip.venv.as_ref().expect("venv").value, "/opt/python-tools");
    let fixed = m.install[4]
        .retry
        .as_ref()
        .expect("retry")
        .policy()
        .expect("valid");
    assert_eq!(
        fixed.backoff(),
        &Backoff::Fixed {
            delay: Duration::from_millis(500)
        }
    );
    assert_eq!(fixed.jitter(), Jitter::None);

    let Step::Download(d) = &m.install[5].action else {
        panic!("download")
    };
    assert_eq!(
        d.url.value,
        "https://example.org/tool-{{version}}-linux-amd64.tar.gz"
    );
    assert_eq!(d.sha256.as_ref().expect("sha").value, "a".repeat(64));
    assert_eq!(d.to.value, "/opt/tool/tool.tar.gz");
    assert_eq!(d.unpack_to.as_ref().expect("unpack").value, "/opt/tool");
    assert_eq!(d.mode, Some(0o755));
    assert_eq!(d.via, Some(Via::Wget));
    assert_eq!(d.mirrors.len(), 1);
    assert!(!d.allow_http);
    assert_eq!(m.install[5].arch, [Arch::X86_64]);
    let linear = m.install[5]
        .retry
        .as_ref()
        .expect("retry")
        .policy()
        .expect("valid");
    assert_eq!(
        linear.backoff(),
        &Backoff::Linear {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10)
        }
    );

    let Step::Run(run) = &m.install[6].action else {
        panic!("run")
    };
    assert_eq!(run.command.value, "corepack enable");
    assert_eq!(
        m.install[6].creates.as_ref().expect("creates").value,
        "/usr/bin/pnpm"
    );
    assert_eq!(
        m.install[6].unless.as_ref().expect("unless").value,
        "command -v pnpm"
    );

    assert_eq!(m.validate.len(), 2);
    assert_eq!(m.validate[0].run.value, "node --version");
    assert!(m.validate[1].expect.is_none());
    assert!(m.validate[1].is_expected_output("anything"));
    assert_eq!(m.remove.len(), 1);
    assert_eq!(m.remove[0].run.value, "corepack disable");
}

#[test]
fn spans_point_at_the_name_and_each_step() {
    let m = load("everything");
    let text = m.source().text();
    assert_eq!(&text[m.name.span.clone()], "\"everything\"");
    for step in &m.install {
        assert_eq!(&text[step.span.clone()], "[[install]]");
    }
    let d = m.error_at(m.install[6].span.clone(), "step 7 failed");
    let loc = d.location.expect("located");
    assert_eq!(
        text[..m.install[6].span.start].lines().count() + 1,
        loc.line
    );
    assert!(loc.file.ends_with("everything.toml"));
}

#[test]
fn sha256_is_of_the_file_bytes() {
    use sha2::Digest;
    let path = Path::new(VALID).join("base.toml");
    let bytes = std::fs::read(&path).expect("read");
    let expected: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(load("base").sha256(), expected);
    let changed = Manifest::parse(
        "base.toml",
        &format!("{}\n# a comment\n", String::from_utf8_lossy(&bytes)),
    )
    .expect("still valid");
    assert_ne!(changed.sha256(), expected);
}

#[test]
fn resolve_fills_in_defaults_then_set_values() {
    let m = load("everything");
    let r = m.resolve(&BTreeMap::new()).expect("defaults resolve");
    let Step::Download(d) = &r.install[5].action else {
        panic!("download")
    };
    assert_eq!(
        d.url.value,
        "https://example.org/tool-22-linux-amd64.tar.gz"
    );
    assert_eq!(
        d.mirrors[0].value,
        "https://mirror.example.org/tool-22-linux-amd64.tar.gz"
    );
    assert_eq!(r.env["EVERYTHING_CHANNEL"].value, "stable");
    assert_eq!(
        r.validate[0].expect.as_ref().expect("expect").value,
        "^v22\\."
    );
    assert!(r.validate[0].is_expected_output("v22.1.0\n"));
    assert!(!r.validate[0].is_expected_output("v20.1.0\n"));
    assert_eq!(
        r.option_env(),
        BTreeMap::from([
            ("EM_OPT_CHANNEL".to_string(), "stable".to_string()),
            ("EM_OPT_VERSION".to_string(), "22".to_string()),
            ("EM_OPT_WITH_DOCS".to_string(), "false".to_string()),
        ])
    );

    let set = BTreeMap::from([
        ("version".to_string(), OptionValue::from("20")),
        ("with-docs".to_string(), OptionValue::from("true")),
        ("channel".to_string(), OptionValue::from("nightly")),
    ]);
    let r20 = m
        .resolve(&set)
        .expect("20 is allowed; proposals are not enforced");
    let Step::Npm(npm) = &r20.install[3].action else {
        panic!("npm")
    };
    assert_eq!(npm.packages[1].value, "@types/node@^20");
    assert_eq!(r20.values()["with-docs"], OptionValue::Bool(true));
    assert_eq!(r20.option_env()["EM_OPT_WITH_DOCS"], "true");
    assert_ne!(r20.fingerprint(), r.fingerprint());
    assert_eq!(r20.sha256(), m.sha256());
}

#[test]
fn resolve_rejects_bad_set_values_naming_what_is_allowed() {
    let m = load("everything");
    let err = |k: &str, v: OptionValue| {
        m.resolve(&BTreeMap::from([(k.to_string(), v)]))
            .expect_err("rejected")
            .to_string()
    };
    assert_eq!(
        err("versoin", "22".into()),
        "error: `everything` has no option `versoin`\n  = hint: the options of `everything` are `channel`, `version`, `with-docs`"
    );
    assert_eq!(
        err("version", "18".into()),
        "error: \"18\" is not an allowed value of `everything.version`\n  = hint: the allowed values are \"22\", \"20\""
    );
    assert_eq!(
        err("with-docs", "yes".into()),
        "error: `everything.with-docs` is a boolean option, not \"yes\"\n  = hint: use --set everything.with-docs=true or --set everything.with-docs=false"
    );
}

#[test]
fn option_values_are_checked_against_the_grammars_after_substitution() {
    let m = Manifest::parse(
        "tool.toml",
        r#"
[extension]
name = "tool"
version = "1"
[extension.options.version]
default = "1.0"
[extension.options.dir]
default = "/opt/tool"
[[install]]
npm = ["tool@{{version}}"]
[[install]]
download = "https://example.org/tool.tar.gz"
to = "{{dir}}/tool.tar.gz"
"#,
    )
    .expect("loads");
    let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), OptionValue::from(v))]);
    let e = m
        .resolve(&set("version", "1 --registry=https://evil"))
        .expect_err("injection");
    assert!(
        e.message.starts_with("npm package `tool@1 --registry"),
        "{e}"
    );
    assert!(
        e.hint
            .as_deref()
            .unwrap_or_default()
            .contains("once the options are filled in")
    );
    assert!(e.location.is_some());
    let e = m.resolve(&set("dir", "/opt/../etc")).expect_err("dotdot");
    assert!(e.message.contains("must not contain `..`"), "{e}");
    let e = m.resolve(&set("dir", "relative")).expect_err("relative");
    assert!(e.message.contains("absolute"), "{e}");
    assert!(m.resolve(&set("dir", "/srv/tool")).is_ok());
}

#[test]
fn an_option_without_default_must_be_set() {
    let m = Manifest::parse(
        "tool.toml",
        "[extension]\nname = \"tool\"\nversion = \"1\"\n[extension.options.token]\ntype = \"string\"\n[[install]]\nrun = \"echo {{token}}\"\n",
    )
    .expect("loads");
    let e = m.resolve(&BTreeMap::new()).expect_err("unset");
    assert_eq!(
        e.to_string(),
        "error: option `tool.token` has no default and was not set\n  = hint: set it with --set tool.token=VALUE"
    );
    let r = m
        .resolve(&BTreeMap::from([(
            "token".to_string(),
            OptionValue::from("abc"),
        )]))
        .expect("set");
    let Step::Run(run) = &r.install[0].action else {
        panic!("run")
    };
    assert_eq!(run.command.value, "echo abc");
    assert_eq!(r.option_env()["EM_OPT_TOKEN"], "abc");
}

#[test]
fn the_valid_directory_loads_as_a_catalog_with_profiles() {
    let catalog = Catalog::load(&SearchPath::new().with_dir(VALID))
        .unwrap_or_else(|e| panic!("{}", em_manifest::render_all(&e)));
    let names: Vec<&str> = catalog.names().collect();
    assert_eq!(
        names,
        ["base", "dotfiles", "everything", "nodejs", "python"]
    );
    assert_eq!(
        catalog.profile("web").expect("web").names(),
        ["nodejs", "python"]
    );
    assert_eq!(
        catalog
            .order(&["everything"], &[] as &[&str])
            .expect("order"),
        ["base", "everything"]
    );
    assert_eq!(
        catalog
            .order(&["everything", "python", "nodejs"], &[] as &[&str])
            .expect("order"),
        // everything and nodejs both come `after` python; then ties go by name.
        ["base", "python", "everything", "nodejs"]
    );
    assert_eq!(
        catalog.reverse_requires("base"),
        ["everything", "nodejs", "python"]
    );
}

#[test]
fn expect_matches_the_output_without_its_trailing_line_break() {
    let span = 0..0;
    let check = em_manifest::Check {
        run: em_manifest::Spanned::new("echo v1".to_string(), span.clone()),
        expect: Some(em_manifest::Spanned::new("^v1$".to_string(), span.clone())),
        span,
    };
    assert!(check.is_expected_output("v1\n"));
    assert!(check.is_expected_output("v1\r\n"));
    assert!(check.is_expected_output("v1"));
    assert!(!check.is_expected_output("v1\nv2\n"));
}

/// Facts fill like options (`{{arch}}`, `{{deb_arch}}`, `{{os.codename}}`), an option of
/// the same name wins, Go templates (`{{.Names}}`) stay as written and `\{{` is a
/// literal `{{`.
#[test]
fn facts_go_templates_and_escaped_braces() {
    let text = r#"
[extension]
name = "facts"
version = "1.0.0"

[extension.options.deb_arch]
default = "mine"

[[install]]
download = "https://127.0.0.1/tool-{{arch}}-{{deb_arch}}.tar.gz"
to = "/opt/tool-{{arch}}.tar.gz"

[[install]]
run = "docker ps --format '{{.Names}}' && echo \\{{arch}} {{arch}}"
"#;
    let m = Manifest::parse("facts.toml", text)
        .unwrap_or_else(|e| panic!("{}", em_manifest::render_all(&e)));
    let r = m.resolve(&BTreeMap::new()).expect("resolves");
    let arch = std::env::consts::ARCH;
    let Step::Download(d) = &r.install[0].action else {
        panic!("a download")
    };
    assert_eq!(
        d.url.value,
        format!("https://127.0.0.1/tool-{arch}-mine.tar.gz")
    );
    assert_eq!(d.to.value, format!("/opt/tool-{arch}.tar.gz"));
    let Step::Run(run) = &r.install[1].action else {
        panic!("a run step")
    };
    assert_eq!(
        run.command.value,
        format!("docker ps --format '{{{{.Names}}}}' && echo {{{{arch}}}} {arch}")
    );
    let facts = em_manifest::facts_from("x86_64", "ID=debian\nVERSION_CODENAME=bookworm\n");
    assert_eq!(facts["deb_arch"], "amd64");
    assert_eq!(facts["os.id"], "debian");
    assert!(!facts.contains_key("os.version_id"));
}

#[test]
fn file_and_block_steps_load_and_their_content_is_filled_plainly() {
    let m = load("dotfiles");
    let Step::File(f) = &m.install[0].action else {
        panic!("a file step: {:?}", m.install[0].action)
    };
    assert_eq!(f.path.value, "/etc/dotfiles/tool.conf");
    assert_eq!(f.mode(), 0o640);
    assert_eq!(f.owner.as_ref().map(|o| o.value.as_str()), Some("root"));
    assert_eq!(f.group.as_ref().map(|o| o.value.as_str()), Some("root"));
    assert!(f.replace);
    let Step::Block(b) = &m.install[2].action else {
        panic!("a block step")
    };
    assert_eq!(b.label("dotfiles"), "dotfiles path");
    assert_eq!(m.install[2].action.kind(), "block");

    let set = BTreeMap::from([("port".to_string(), OptionValue::from("1; rm -rf / #"))]);
    let r = m.resolve(&set).expect("resolves");
    let Step::File(f) = &r.install[0].action else {
        panic!("a file step")
    };
    // Data, not shell: the value as given, unquoted; the fact filled in.
    let arch = em_manifest::facts()["arch"].clone();
    assert_eq!(
        f.content.value,
        format!("port = 1; rm -rf / #\narch = {arch}\n")
    );
    let Step::Block(b) = &r.install[1].action else {
        panic!("a block step")
    };
    assert_eq!(b.content.value, "export TOOL_PORT=1; rm -rf / #");
    assert_eq!(b.label("dotfiles"), "dotfiles");
    assert_eq!(
        m.install[0].action.summary(),
        "file /etc/dotfiles/tool.conf (32 bytes, mode 0640, owner root:root, replaces an existing file, restored by remove)"
    );
}

#[test]
fn language_package_steps_load_with_their_tool_and_resolve_their_options() {
    let text = r#"
[extension]
name = "lang-tools"
version = "1.0.0"

[extension.options.ruff]
type = "string"
default = "0.6.9"

[[install]]
pipx = ["black", "ruff=={{ruff}}"]

[[install]]
cargo = ["ripgrep@14.1.0"]

[[install]]
gem = ["bundler"]
optional = true

[[install]]
go = ["golang.org/x/tools/gopls@v0.16.2"]
"#;
    let m = Manifest::parse("lang-tools.toml", text)
        .unwrap_or_else(|e| panic!("{}", em_manifest::render_all(&e)));
    let kinds: Vec<&str> = m.install.iter().map(|s| s.action.kind()).collect();
    assert_eq!(kinds, ["pipx", "cargo", "gem", "go"]);
    let summaries: Vec<String> = m.install.iter().map(|s| s.action.summary()).collect();
    assert_eq!(
        summaries,
        [
            "pipx install black ruff=={{ruff}}",
            "cargo install ripgrep@14.1.0",
            "gem install bundler",
            "go install golang.org/x/tools/gopls@v0.16.2",
        ]
    );
    assert!(m.install[2].optional);
    let resolved = m.resolve(&BTreeMap::new()).expect("resolves");
    let Step::Lang(pipx) = &resolved.install[0].action else {
        panic!("{:?}", resolved.install[0].action)
    };
    assert_eq!(pipx.tool, em_manifest::LangTool::Pipx);
    assert_eq!(values(&pipx.packages), ["black", "ruff==0.6.9"]);
    // An option that makes a bad package is caught when it is filled in.
    let set = BTreeMap::from([("ruff".to_string(), OptionValue::from("0.6.9 --pre"))]);
    assert!(m.resolve(&set).is_err());
}

#[test]
fn a_user_extension_fills_in_its_target_user_and_needs_one() {
    let text = r#"
[extension]
name = "shell-setup"
version = "1.0.0"
scope = "user"

[extension.options.editor]
default = "vim"

[[install]]
run = "mkdir -p {{home}}/.local/bin"
creates = "{{home}}/.local/bin"

[[install]]
block = "{{home}}/.bashrc"
content = "export EDITOR={{editor}} # for {{user}}"

[[install]]
pip = ["black"]
venv = "{{home}}/.venvs/black"
"#;
    let m = Manifest::parse("shell-setup.toml", text).expect("a valid user extension");
    assert_eq!(m.scope, em_manifest::Scope::User);
    let alice = em_manifest::TargetUser {
        name: "alice".into(),
        home: "/home/alice/".into(),
        uid: 1000,
        gid: 1000,
    };
    let r = m
        .resolve_for(&BTreeMap::new(), Some(&alice))
        .expect("resolves for alice");
    assert_eq!(r.user(), Some(&alice));
    let Step::Run(run) = &r.install[0].action else {
        panic!("a run step")
    };
    assert_eq!(run.command.value, "mkdir -p /home/alice/.local/bin");
    assert_eq!(
        r.install[0].creates.as_ref().map(|c| c.value.as_str()),
        Some("/home/alice/.local/bin")
    );
    let Step::Block(b) = &r.install[1].action else {
        panic!("a block step")
    };
    assert_eq!(b.path.value, "/home/alice/.bashrc");
    assert_eq!(b.content.value, "export EDITOR=vim # for alice");
    let e = m.resolve(&BTreeMap::new()).expect_err("no target user");
    assert!(e.to_string().contains("--user"), "{e}");
    // The home is checked like any path once filled in.
    let odd = em_manifest::TargetUser {
        name: "bob".into(),
        home: "/home/../etc".into(),
        uid: 1001,
        gid: 1001,
    };
    let e = m
        .resolve_for(&BTreeMap::new(), Some(&odd))
        .expect_err("a home with ..");
    assert!(e.to_string().contains(".."), "{e}");
    // A system extension ignores a target user and keeps its scope.
    let sys = Manifest::parse(
        "tool.toml",
        "[extension]\nname = \"tool\"\nversion = \"1\"\n[[install]]\nrun = \"true\"\n",
    )
    .expect("valid");
    assert_eq!(sys.scope, em_manifest::Scope::System);
    assert!(
        sys.resolve_for(&BTreeMap::new(), Some(&alice))
            .expect("resolves")
            .user()
            .is_none()
    );
}

#[test]
fn a_sha256_per_architecture_resolves_to_this_machines_or_is_refused() {
    let host = em_manifest::Arch::host()
        .expect("a listed architecture")
        .as_str();
    let other = if host == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let manifest = |pins: &str| {
        let text = format!(
            "[extension]\nname = \"tool\"\nversion = \"1.0.0\"\n\n[[install]]\ndownload = \"https://127.0.0.1/tool-{{{{deb_arch}}}}.tar.gz\"\nsha256 = {{ {pins} }}\nto = \"/opt/tool.tar.gz\"\n"
        );
        Manifest::parse("tool.toml", &text)
            .unwrap_or_else(|e| panic!("{}", em_manifest::render_all(&e)))
    };
    let both = manifest(&format!(
        "{host} = \"{}\", {other} = \"{}\"",
        "a".repeat(64),
        "b".repeat(64)
    ));
    let r = both.resolve(&BTreeMap::new()).expect("resolves");
    let Step::Download(d) = &r.install[0].action else {
        panic!("a download")
    };
    assert_eq!(d.sha256.as_ref().expect("picked").value, "a".repeat(64));

    let only_other = manifest(&format!("{other} = \"{}\"", "b".repeat(64)));
    let err = only_other
        .resolve(&BTreeMap::new())
        .expect_err("no checksum for this machine");
    assert!(
        err.message.contains(&format!(
            "a sha256 for {other} only, not for this machine ({host})"
        )),
        "{}",
        err.message
    );
}
