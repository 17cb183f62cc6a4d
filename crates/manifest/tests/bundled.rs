//! The bundled extensions (`extensions/` at the workspace root) load cleanly as a set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use em_manifest::{Catalog, SearchPath, Step, render_all};

const EXPECTED: &[&str] = &[
    "ai-tools",
    "base",
    "cloud-tools",
    "docker",
    "github-cli",
    "golang",
    "infra-tools",
    "jvm",
    "monitoring",
    "nodejs",
    "nodejs-devtools",
    "php",
    "playwright",
    "python",
    "python-tools",
    "ruby",
    "rust",
    "shell-config",
    "ssh-environment",
    "tmux-workspace",
];

fn extensions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../extensions")
}

fn catalog() -> Catalog {
    let path = SearchPath::new().with_dir(extensions_dir());
    Catalog::load(&path).unwrap_or_else(|errors| panic!("{}", render_all(&errors)))
}

#[test]
fn every_bundled_file_loads_without_diagnostics() {
    let catalog = catalog();
    let names: Vec<&str> = catalog.names().collect();
    assert_eq!(names, EXPECTED);
    // Every `.toml` in the directory is either a manifest that loaded or the profiles file.
    let mut files: Vec<String> = std::fs::read_dir(extensions_dir())
        .expect("extensions/ is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let mut expected_files: Vec<String> = EXPECTED
        .iter()
        .map(|n| format!("{n}.toml"))
        .chain(["profiles.toml".to_string()])
        .collect();
    expected_files.sort();
    assert_eq!(files, expected_files);
}

#[test]
fn every_manifest_installs_something_and_validates_it() {
    let catalog = catalog();
    for m in catalog.manifests() {
        assert!(!m.install.is_empty(), "{} has no install step", m.name());
        assert!(!m.validate.is_empty(), "{} has no validate check", m.name());
        assert_eq!(m.version.value, "1.0.0", "{}", m.name());
        // Options are resolved with their defaults: no bundled manifest needs any set (a
        // user extension, for a user).
        let user = em_manifest::TargetUser {
            name: "alice".into(),
            home: "/home/alice".into(),
            uid: 1000,
            gid: 1000,
        };
        m.resolve_for(&BTreeMap::new(), Some(&user))
            .unwrap_or_else(|e| panic!("{} does not resolve: {e}", m.name()));
    }
}

#[test]
fn requires_closure_and_order() {
    let catalog = catalog();
    let closure = catalog.closure(&["playwright"]).expect("closure");
    for name in ["playwright", "nodejs", "base"] {
        assert!(
            closure.iter().any(|n| n == name),
            "{name} missing from {closure:?}"
        );
    }
    assert_eq!(
        catalog
            .order(&["playwright"], &[] as &[&str])
            .expect("order"),
        ["base", "nodejs", "playwright"]
    );
    let cloud = catalog.closure(&["cloud-tools"]).expect("closure");
    assert!(cloud.iter().any(|n| n == "python"), "{cloud:?}");
    // The system tools do not need base's compilers; the languages build on it.
    let dependents = catalog.dependents("base");
    for name in ["monitoring", "ssh-environment", "tmux-workspace"] {
        assert!(
            !dependents.iter().any(|n| n == name),
            "{name}: {dependents:?}"
        );
    }
    for name in [
        "docker", "golang", "jvm", "nodejs", "php", "python", "ruby", "rust",
    ] {
        assert!(
            dependents.iter().any(|n| n == name),
            "{name}: {dependents:?}"
        );
    }
}

#[test]
fn profiles_resolve() {
    let catalog = catalog();
    assert_eq!(
        catalog.expand_profile("web").expect("web"),
        ["nodejs", "nodejs-devtools", "playwright"]
    );
    assert_eq!(
        catalog.expand_profile("python-dev").expect("python-dev"),
        ["python", "python-tools"]
    );
    let mut full = catalog.expand_profile("full").expect("full");
    full.sort();
    // `full` is the system set; user extensions install with --user, in runs of their own.
    let system: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|n| *n != "shell-config")
        .collect();
    assert_eq!(full, system);
    for profile in catalog.profiles() {
        let names = catalog
            .expand_profile(&profile.name.value)
            .expect("listed profile expands");
        assert!(!names.is_empty(), "profile {} is empty", profile.name.value);
        catalog
            .order(&names, &[] as &[&str])
            .unwrap_or_else(|e| panic!("profile {}: {e}", profile.name.value));
    }
}

#[test]
fn downloads_are_pinned_per_architecture() {
    let catalog = catalog();
    for name in ["golang", "cloud-tools"] {
        let m = catalog.get(name).expect(name);
        let downloads: Vec<_> = m
            .install
            .iter()
            .filter_map(|s| match &s.action {
                Step::Download(d) => Some((s, d)),
                _ => None,
            })
            .collect();
        assert_eq!(
            downloads.len(),
            1,
            "{name}: one download, its URL names the architecture"
        );
        for (step, d) in downloads {
            assert!(
                d.url.value.contains("{{deb_arch}}"),
                "{name}: {}",
                d.url.value
            );
            let mut pinned: Vec<_> = d.sha256_by_arch.iter().map(|(a, _)| *a).collect();
            let mut runs_on = step.arch.clone();
            pinned.sort();
            runs_on.sort();
            assert_eq!(
                pinned, runs_on,
                "{name}: a checksum for each architecture it runs on"
            );
        }
    }
}

/// What each validate check prints when the tool is there, as (extension, command, stdout).
/// Outputs marked "seen" were captured from the Debian 12 packages; the others follow the
/// tool's documented format with the version bookworm (or the pinned download) ships.
const SAMPLE_OUTPUTS: &[(&str, &str, &str)] = &[
    // seen (bash 5.2, the block in ~/.bashrc)
    ("shell-config", "alias ll", "alias ll='ls -alF'\n"),
    ("shell-config", "completion-ignore-case", ""),
    ("base", "git --version", "git version 2.39.5\n"),
    // seen
    (
        "base",
        "curl --version",
        "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 OpenSSL/3.0.19\n",
    ),
    // seen
    (
        "base",
        "gcc --version",
        "gcc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright (C) 2022 Free Software Foundation, Inc.\n",
    ),
    ("base", "jq --version", "jq-1.6\n"), // seen
    ("python", "python3 --version", "Python 3.11.2\n"),
    // seen
    (
        "python",
        "python3 -m venv --help",
        "usage: venv [-h] [--system-site-packages] [--symlinks | --copies] [--clear]\n",
    ),
    // seen
    (
        "python",
        "-m pip --version",
        "pip 23.0.1 from /tmp/tmp.x/venv/lib/python3.11/site-packages/pip (python 3.11)\n",
    ),
    ("python", "pipx --version", "1.1.0\n"), // seen
    (
        "python-tools",
        "black --version",
        "black, 24.10.0 (compiled: yes)\nPython (CPython) 3.11.2\n",
    ),
    ("python-tools", "ruff --version", "ruff 0.6.9\n"),
    ("nodejs", "node --version", "v18.20.4\n"),
    ("nodejs", "npm --version", "9.2.0\n"),
    ("nodejs", "tsc --version", "Version 5.9.3\n"), // seen
    ("nodejs", "prettier --version", "3.10.1\n"),   // seen
    ("playwright", "playwright --version", "Version 1.61.1\n"), // seen
    // seen
    (
        "playwright",
        "chromium --version",
        "Chromium 156.0.8078.79 built on Debian GNU/Linux 12 (bookworm)\n",
    ),
    ("playwright", "require('playwright')", "em-ok\n"), // seen
    (
        "golang",
        "/opt/go/bin/go version",
        "go version go1.26.7 linux/amd64\n",
    ),
    ("golang", "go env GOROOT", "/opt/go\n"),
    ("rust", "rustc --version", "rustc 1.63.0\n"),
    ("rust", "cargo --version", "cargo 1.65.0\n"),
    (
        "docker",
        "docker --version",
        "Docker version 20.10.24+dfsg1, build 297e128\n",
    ),
    (
        "docker",
        "docker-compose --version",
        "docker-compose version 1.29.2, build unknown\n",
    ),
    // seen
    (
        "jvm",
        "java --version",
        "openjdk 17.0.15 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n",
    ),
    ("jvm", "javac --version", "javac 17.0.15\n"), // seen
    // seen: Maven 3.8 colours its banner even into a pipe
    (
        "jvm",
        "mvn --version",
        "\u{1b}[1mApache Maven 3.8.7\u{1b}[m\nMaven home: /usr/share/maven\n",
    ),
    (
        "cloud-tools",
        "aws --version",
        "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0-18-amd64 source/x86_64.debian.12 prompt/off\n",
    ),
    ("cloud-tools", "s3cmd --version", "s3cmd version 2.4.0\n"), // seen
    (
        "cloud-tools",
        "kubectl version --client",
        "Client Version: v1.36.1\nKustomize Version: v5.7.1\n",
    ),
    ("monitoring", "htop --version", "htop 3.2.2\n"), // seen
    ("monitoring", "btop --version", "btop version: 1.2.13\n"), // seen
    // seen
    (
        "monitoring",
        "iostat -V",
        "sysstat version 12.6.1\n(C) Sebastien Godard (sysstat <at> orange.fr)\n",
    ),
    ("monitoring", "iotop --version", "iotop 0.6\n"), // seen
    ("monitoring", "ncdu --version", "ncdu 1.18\n"),  // seen
    (
        "ruby",
        "ruby --version",
        "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]\n",
    ),
    ("ruby", "gem --version", "3.3.15\n"),
    ("ruby", "bundle --version", "Bundler version 2.3.7\n"),
    (
        "php",
        "php --version",
        "PHP 8.2.29 (cli) (built: Jul  3 2025 16:16:05) (NTS)\nCopyright (c) The PHP Group\n",
    ),
    (
        "php",
        "php -m",
        "[PHP Modules]\nCore\nctype\ncurl\ndate\nintl\nmbstring\nxml\nzip\n\n[Zend Modules]\n\n",
    ),
    (
        "php",
        "composer",
        "Composer version 2.5.5 2023-03-21 11:50:05\n",
    ),
    ("tmux-workspace", "tmux -V", "tmux 3.3a\n"),
    ("tmux-workspace", "show-options", "history-limit 50000\n"),
    (
        "ssh-environment",
        "ssh -G",
        "host 127.0.0.1\nuser root\nhostname 127.0.0.1\nport 22\nserveraliveinterval 60\nserveralivecountmax 3\n",
    ),
    ("nodejs-devtools", "pnpm --version", "9.15.9\n"),
    ("nodejs-devtools", "eslint --version", "v9.39.1\n"),
    ("nodejs-devtools", "ncu --version", "17.1.18\n"),
    (
        "github-cli",
        "gh --version",
        "gh version 2.23.0 (2023-02-27 Debian 2.23.0+dfsg1-1)\n",
    ),
    (
        "github-cli",
        "gh help environment",
        "GH_TOKEN, GITHUB_TOKEN (in order of precedence): an authentication token for API requests.\n",
    ),
    (
        "infra-tools",
        "shellcheck --version",
        "ShellCheck - shell script analysis tool\nversion: 0.9.0\nlicense: GNU General Public License, version 3\n",
    ),
    ("infra-tools", "yq -r .a.b", "1\n"),
    (
        "infra-tools",
        "make --version",
        "GNU Make 4.3\nBuilt for x86_64-pc-linux-gnu\n",
    ),
    (
        "infra-tools",
        "ansible --version",
        "ansible [core 2.19.14]\n  config file = None\n",
    ),
    (
        "infra-tools",
        "-m ping",
        "localhost | SUCCESS => {\n    \"changed\": false,\n    \"ping\": \"pong\"\n}\n",
    ),
    ("ai-tools", "codex --version", "codex-cli 0.171.0\n"),
];

/// `expect` is matched against the raw stdout, trailing newline and escapes included: every
/// check must accept what its tool really prints, and reject an empty output.
#[test]
fn validate_checks_accept_what_the_tools_print() {
    let catalog = catalog();
    for m in catalog.manifests() {
        for check in &m.validate {
            let run = &check.run.value;
            let samples: Vec<&str> = SAMPLE_OUTPUTS
                .iter()
                .filter(|(ext, cmd, _)| *ext == m.name() && run.contains(cmd))
                .map(|(_, _, out)| *out)
                .collect();
            assert_eq!(
                samples.len(),
                1,
                "{}: `{run}` needs exactly one sample output",
                m.name()
            );
            assert!(
                check.is_expected_output(samples[0]),
                "{}: `{run}` rejects {:?} (expect {:?})",
                m.name(),
                samples[0],
                check.expect.as_ref().map(|e| e.value.as_str())
            );
            if check.expect.is_some() {
                assert!(
                    !check.is_expected_output(""),
                    "{}: `{run}` accepts no output",
                    m.name()
                );
            }
        }
    }
}
