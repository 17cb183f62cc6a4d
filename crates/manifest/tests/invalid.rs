//! Every file (or directory) under `fixtures/manifests/invalid/` breaks one rule of SPEC
//! section 5; its rendered diagnostics are snapshotted under `tests/snapshots/`, named after
//! it. A `.toml` file is loaded alone, then checked as part of a catalog with the valid
//! fixtures (so that `requires` can name them); a directory is loaded as a search path.

use std::path::{Path, PathBuf};

use em_manifest::{Catalog, Manifest, SearchPath, render_all};

const INVALID: &str = "../../fixtures/manifests/invalid";
const VALID: &str = "../../fixtures/manifests/valid";

fn shown(path: &Path) -> String {
    path.display()
        .to_string()
        .trim_start_matches("../../")
        .to_string()
}

fn valid_manifests() -> Vec<Manifest> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(VALID)
        .expect("valid fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("profiles.toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| Manifest::load(p).unwrap_or_else(|e| panic!("{}", render_all(&e))))
        .collect()
}

fn rendered_errors(path: &Path) -> String {
    if path.is_dir() {
        let errors = Catalog::load(&SearchPath::new().with_dir(path))
            .expect_err("an invalid fixture directory must not load");
        return render_all(&errors).replace("../../", "");
    }
    let text = std::fs::read_to_string(path).expect("readable fixture");
    let manifest = match Manifest::parse(shown(path), &text) {
        Ok(m) => m,
        Err(errors) => return render_all(&errors),
    };
    let mut set = valid_manifests();
    set.push(manifest);
    let errors = Catalog::from_parts(set, []).expect_err("an invalid fixture must not load");
    render_all(&errors)
}

#[test]
fn every_invalid_fixture_is_rejected_with_its_message() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(INVALID)
        .expect("invalid fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    assert!(entries.len() > 50, "fixtures missing: {entries:?}");
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_string();
        let rendered = rendered_errors(&path);
        insta::with_settings!({
            description => format!("fixtures/manifests/invalid/{}", path.file_name().and_then(|n| n.to_str()).unwrap_or_default()),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

#[test]
fn every_snapshot_has_its_fixture() {
    for entry in std::fs::read_dir("tests/snapshots").expect("snapshots") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(name) = file
            .strip_prefix("invalid__")
            .and_then(|n| n.strip_suffix(".snap"))
        else {
            continue;
        };
        let fixture = Path::new(INVALID);
        assert!(
            fixture.join(format!("{name}.toml")).is_file() || fixture.join(name).is_dir(),
            "{file} has no fixture left: delete it"
        );
    }
}
