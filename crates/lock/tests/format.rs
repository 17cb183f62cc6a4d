//! The lock file's text: what `lock` writes (snapshot), that reading and writing again
//! changes nothing, and how a bad file is reported.

use std::collections::BTreeMap;

use em_lock::{
    LockFile, LockedDownload, LockedExtension, LockedOption, LockedPackage, LockedStep, StepKind,
    text,
};

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn sample() -> LockFile {
    let mut deb = LockedPackage::new("nodejs", "18.19.0+dfsg-6~deb12u2");
    deb.requested = true;
    deb.architecture = Some(text("amd64"));
    deb.sha256 = Some(text(SHA));
    let mut dep = LockedPackage::new("libnode108", "18.19.0+dfsg-6~deb12u2");
    dep.architecture = Some(text("amd64"));
    dep.sha256 = Some(text(SHA.replace('0', "f")));
    let mut ts = LockedPackage::new("typescript", "5.4.5");
    ts.requested = true;
    ts.integrity = Some(text("sha512-abc+/def=="));
    let mut black = LockedPackage::new("black", "24.4.2");
    black.requested = true;
    black.sha256 = Some(text(SHA));
    let mut ext = LockedExtension {
        manifest_sha256: text(SHA),
        version: "1.0.0".into(),
        options: BTreeMap::from([
            ("version".to_string(), LockedOption::String("lts".into())),
            ("nightly".to_string(), LockedOption::Bool(false)),
        ]),
        // Out of order on purpose: rendering sorts.
        steps: vec![
            LockedStep {
                index: 2,
                kind: StepKind::Npm,
                packages: vec![ts],
                download: None,
            },
            LockedStep {
                index: 0,
                kind: StepKind::Apt,
                packages: vec![deb, dep],
                download: None,
            },
        ],
    };
    ext.steps.push(LockedStep {
        index: 3,
        kind: StepKind::Download,
        packages: vec![],
        download: Some(LockedDownload {
            url: text("https://127.0.0.1:8443/tool.tar.gz"),
            sha256: text(SHA),
            size: 1234,
        }),
    });
    let tools = LockedExtension {
        manifest_sha256: text(SHA),
        version: "0.1.0".into(),
        options: BTreeMap::new(),
        steps: vec![LockedStep {
            index: 0,
            kind: StepKind::Pip,
            packages: vec![black],
            download: None,
        }],
    };
    LockFile {
        extensions: BTreeMap::from([("tools".into(), tools), ("nodejs".into(), ext)]),
        ..LockFile::default()
    }
}

#[test]
fn the_written_text() {
    insta::assert_snapshot!(sample().render());
}

#[test]
fn reading_and_writing_again_gives_the_same_bytes() {
    let first = sample().render();
    let read = LockFile::parse("extensions.lock", &first).expect("a written lock reads back");
    assert_eq!(read.render(), first);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("extensions.lock");
    read.write(&path).expect("write");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), first);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        ["extensions.lock"],
        "no temporary file left beside it"
    );
}

fn errors_of(text: &str) -> String {
    let errors = LockFile::parse("extensions.lock", text).expect_err("a bad lock");
    em_manifest::render_all(&errors)
}

#[test]
fn a_bad_hash_points_at_it() {
    let good = sample().render();
    let bad = good.replacen("sha512-abc+/def==", "md5-nope!", 1);
    insta::assert_snapshot!(errors_of(&bad));
}

#[test]
fn an_option_flag_as_a_package_name_is_refused() {
    let good = sample().render();
    let bad = good.replacen("name = \"typescript\"", "name = \"--global\"", 1);
    let out = errors_of(&bad);
    assert!(out.contains("extensions.lock:"), "{out}");
    assert!(out.contains("--global"), "{out}");
}

#[test]
fn syntax_errors_and_unknown_keys_have_a_position_and_a_hint() {
    insta::assert_snapshot!(errors_of(
        "version = 1\n[extensions.x]\nmanifest_sha256 = \"\nversion = \"1\"\n"
    ));
    insta::assert_snapshot!(errors_of(&format!(
        "version = 1\n[extensions.x]\nmanifest_sha256 = \"{SHA}\"\nversion = \"1\"\ncolour = \"red\"\n"
    )));
    insta::assert_snapshot!(errors_of("version = 7\n"));
}

#[test]
fn drift_is_the_manifest_and_the_options() {
    let lock = sample();
    let ext = &lock.extensions["nodejs"];
    assert!(ext.drift(SHA, &ext.options).is_empty());
    let mut options = ext.options.clone();
    options.insert("version".into(), LockedOption::String("22".into()));
    let other = SHA.replace('0', "1");
    assert_eq!(
        ext.drift(&other, &options),
        [
            "the manifest changed (sha256 0123456789ab in the lock, 1123456789ab now)",
            "option `version` is \"lts\" in the lock, \"22\" now",
        ]
    );
}
