//! `bundle` and `install --offline --from` refusals, with no tool run: no lock, an
//! extension the lock lacks, a DIR that is not empty, a bundle of another lock, a changed
//! bundle, `--offline` without `--from`. Each is exit 2 and changes nothing. (The bundles
//! with real payloads are em-e2e's `bundle` scenario.)

mod common;

use std::fs;

use common::{Session, stderr};

/// Two extensions with no package step: locking them runs no tool.
fn session() -> (Session, String) {
    let s = Session::new(&[], "");
    let exts = s.path().join("exts");
    fs::create_dir_all(&exts).expect("exts");
    for name in ["tools", "other"] {
        fs::write(
            exts.join(format!("{name}.toml")),
            format!("[extension]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"test\"\ncategory = \"test\"\n\n[[install]]\nrun = \"true\"\n"),
        )
        .expect("manifest");
    }
    (s, exts.display().to_string())
}

fn run(s: &Session, exts: &str, args: &[&str]) -> std::process::Output {
    s.run_with_extensions(exts, args)
}

#[test]
fn bundle_refuses_without_a_lock_or_with_an_extension_it_lacks() {
    let (s, exts) = session();
    let out = run(&s, &exts, &["bundle", "b", "tools"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("extension-manager lock"),
        "{}",
        stderr(&out)
    );
    assert!(!s.path().join("b").exists());

    let out = run(&s, &exts, &["lock", "other"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&s, &exts, &["bundle", "b", "tools"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("tools: it is not in the lock"), "{err}");
    assert!(
        err.contains("hint: lock them first: `extension-manager lock tools`"),
        "{err}"
    );
    assert!(!s.path().join("b").exists());
}

#[test]
fn a_bundle_is_written_whole_into_a_new_dir_and_checked_before_an_offline_install() {
    let (s, exts) = session();
    let out = run(&s, &exts, &["lock", "tools"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    fs::create_dir_all(s.path().join("full")).expect("dir");
    fs::write(s.path().join("full/keep"), "mine").expect("file");
    let out = run(&s, &exts, &["bundle", "full", "tools"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exists and is not empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(s.path().join("full/keep")).expect("kept"),
        "mine"
    );

    let out = run(&s, &exts, &["bundle", "b", "tools"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let manifest = fs::read_to_string(s.path().join("b/bundle.toml")).expect("bundle.toml");
    assert!(
        manifest.starts_with("version = 1\nlock_sha256 = \""),
        "{manifest}"
    );
    let leftovers: Vec<_> = fs::read_dir(s.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".bundle-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directory left");

    // An extra file in the bundle: refused before anything runs.
    fs::write(s.path().join("b/extra"), "x").expect("extra");
    let out = run(&s, &exts, &["install", "--offline", "--from", "b", "tools"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("extra is not in bundle.toml"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(s.path().join("b/extra")).expect("extra");

    let out = run(&s, &exts, &["install", "--offline", "--from", "b", "tools"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A bundle made from another lock is not this lock's.
    let out = run(&s, &exts, &["lock", "other"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(
        &s,
        &exts,
        &["install", "--offline", "--from", "b", "--force", "tools"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("was made from another lock file"), "{err}");
    assert!(err.contains("hint: bundle again from this lock"), "{err}");
}

#[test]
fn offline_needs_from_and_from_needs_offline() {
    let (s, exts) = session();
    for args in [
        &["install", "--offline", "tools"][..],
        &["install", "--from", "b", "tools"][..],
    ] {
        let out = run(&s, &exts, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}
