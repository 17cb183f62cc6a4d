//! Embeds the bundled extensions (`extensions/*.toml` at the workspace root) in the binary,
//! so that `extension-manager install python` works with nothing else on the machine.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not baked in when it was compiled (`env!`): cargo reuses
    // a compiled build script for another checkout of the same workspace in a shared
    // target directory, which then embedded that checkout's extensions, or none at all.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("../../extensions");
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot read the bundled extensions in {}: {e}",
            dir.display()
        )
    });
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(
        !files.is_empty(),
        "no bundled extensions in {}",
        dir.display()
    );
    files.sort();
    let mut code = String::from(
        "/// The bundled extension files, as (file name, text).\npub const FILES: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    std::fs::write(Path::new(&out).join("bundled.rs"), code).expect("OUT_DIR is writable");
}
