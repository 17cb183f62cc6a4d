//! The search path: bundled set, then directories, later wins by name; profiles.

use std::path::Path;

use em_manifest::{Catalog, Origin, SearchPath, render_all};

fn manifest(name: &str, version: &str) -> String {
    format!("[extension]\nname = \"{name}\"\nversion = \"{version}\"\n")
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).expect("write fixture");
}

const BUNDLED: &[(&str, &str)] = &[
    (
        "base.toml",
        "[extension]\nname = \"base\"\nversion = \"1.0.0\"\n",
    ),
    (
        "nodejs",
        "[extension]\nname = \"nodejs\"\nversion = \"1.0.0\"\nrequires = [\"base\"]\n",
    ),
    (
        "profiles.toml",
        "[profiles]\nweb = [\"nodejs\"]\ncore = [\"base\"]\n",
    ),
];

#[test]
fn later_entries_win_by_name() {
    let system = tempfile::tempdir().expect("tempdir");
    let env_a = tempfile::tempdir().expect("tempdir");
    let cli = tempfile::tempdir().expect("tempdir");
    write(system.path(), "nodejs.toml", &manifest("nodejs", "2.0.0"));
    write(env_a.path(), "nodejs.toml", &manifest("nodejs", "3.0.0"));
    write(env_a.path(), "python.toml", &manifest("python", "1.0.0"));
    write(cli.path(), "python.toml", &manifest("python", "9.0.0"));
    write(
        cli.path(),
        "profiles.toml",
        "[profiles]\nweb = [\"nodejs\", \"python\"]\n",
    );
    // Not manifests: ignored.
    write(cli.path(), "README.md", "# notes");
    write(cli.path(), ".python.toml.swp", "garbage");

    let env_value = format!("{}::/nonexistent/em-test-dir", env_a.path().display());
    let path = SearchPath::new()
        .with_bundled(BUNDLED)
        .with_system_dir(system.path())
        .with_env_path(env_value.as_ref())
        .with_dir(cli.path());
    let origins: Vec<Origin> = path.dirs().iter().map(|d| d.origin).collect();
    assert_eq!(
        origins,
        [
            Origin::System,
            Origin::EnvPath,
            Origin::EnvPath,
            Origin::CommandLine
        ]
    );
    let c = Catalog::load(&path).unwrap_or_else(|e| panic!("{}", render_all(&e)));
    let versions: Vec<(&str, &str)> = c
        .manifests()
        .map(|m| (m.name(), m.version.value.as_str()))
        .collect();
    assert_eq!(
        versions,
        [("base", "1.0.0"), ("nodejs", "3.0.0"), ("python", "9.0.0")]
    );
    assert_eq!(
        c.get("base").expect("bundled").path(),
        Path::new("<bundled>/base.toml")
    );
    assert_eq!(c.profile("web").expect("web").names(), ["nodejs", "python"]);
    assert_eq!(c.profile("core").expect("core").names(), ["base"]);
    assert_eq!(c.expand_profile("web").expect("web"), ["nodejs", "python"]);
    assert_eq!(
        c.expand_profile("wbe").expect_err("unknown").to_string(),
        "error: unknown profile `wbe`\n  = hint: did you mean `web`?"
    );
    assert_eq!(
        c.expand_profile("data")
            .expect_err("unknown")
            .hint
            .as_deref(),
        Some("the profiles are `core`, `web`")
    );
}

#[test]
fn a_missing_extensions_dir_is_an_error_but_a_missing_system_dir_is_not() {
    let ok = SearchPath::new()
        .with_bundled(BUNDLED)
        .with_system_dir("/nonexistent/em-test-etc");
    assert!(Catalog::load(&ok).is_ok());
    let bad = SearchPath::new().with_dir("/nonexistent/em-test-dir");
    let errors = Catalog::load(&bad).expect_err("missing dir");
    assert!(
        errors[0]
            .message
            .starts_with("cannot read the extensions directory `/nonexistent/em-test-dir`"),
        "{}",
        errors[0]
    );
}

#[test]
fn every_broken_file_is_reported_and_dependents_of_broken_ones_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "base.toml",
        "[extension]\nname = \"base\"\nversion = 1\n",
    );
    write(dir.path(), "other.toml", "[extension]\nname = \"other\"\n");
    write(
        dir.path(),
        "python.toml",
        "[extension]\nname = \"python\"\nversion = \"1\"\nrequires = [\"base\"]\n",
    );
    let errors = Catalog::load(&SearchPath::new().with_dir(dir.path())).expect_err("broken");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`version` must be a string, not an integer",
            "missing `version` in [extension]"
        ]
    );
}

#[test]
fn a_later_good_file_replaces_a_broken_one() {
    let fixed = tempfile::tempdir().expect("tempdir");
    write(fixed.path(), "base.toml", &manifest("base", "2.0.0"));
    const BROKEN: &[(&str, &str)] = &[("base", "[extension]\nname = \"base\"\n")];
    // The bundled file's error is still reported: a broken file is a bug wherever it is.
    let errors = Catalog::load(
        &SearchPath::new()
            .with_bundled(BROKEN)
            .with_dir(fixed.path()),
    )
    .expect_err("bundled file broken");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].position().as_deref(),
        Some("<bundled>/base.toml:1:1")
    );
}

#[test]
fn standard_search_path_order() {
    let path = SearchPath::standard(BUNDLED, None, &["/a".into(), "/b".into()]);
    let dirs: Vec<(String, Origin)> = path
        .dirs()
        .iter()
        .map(|d| (d.path.display().to_string(), d.origin))
        .collect();
    assert_eq!(
        dirs,
        [
            (em_manifest::SYSTEM_DIR.to_string(), Origin::System),
            ("/a".to_string(), Origin::CommandLine),
            ("/b".to_string(), Origin::CommandLine),
        ]
    );
}

#[test]
fn profiles_with_bad_entries_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "nodejs.toml", &manifest("nodejs", "1"));
    write(
        dir.path(),
        "profiles.toml",
        "[profiles]\nweb = [\"nodejs\", 3]\nWeb = [\"nodejs\"]\nall = \"nodejs\"\n[extra]\n",
    );
    let errors = Catalog::load(&SearchPath::new().with_dir(dir.path())).expect_err("bad profiles");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "a profile lists extension names (strings)",
            "`Web` is not a valid profile name",
            "profile `all` must be a list of extension names",
            "unknown key `extra` in a profiles file",
        ]
    );
}

#[test]
fn manifest_names_count_every_manifest_once_loaded_or_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "nodejs.toml", &manifest("nodejs", "2.0.0"));
    write(dir.path(), "broken.toml", "[extension\n");
    write(
        dir.path(),
        "profiles.toml",
        "[profiles]\nweb = [\"nodejs\"]\n",
    );
    write(dir.path(), ".broken.toml.swp", "");
    write(dir.path(), "notes.txt", "");
    let path = SearchPath::new().with_bundled(BUNDLED).with_dir(dir.path());
    let names: Vec<String> = path.manifest_names().into_iter().collect();
    assert_eq!(names, ["base", "broken", "nodejs"]);
    assert!(Catalog::load(&path).is_err(), "broken.toml does not load");
    let missing = SearchPath::new().with_dir(dir.path().join("absent"));
    assert!(missing.manifest_names().is_empty());
}
