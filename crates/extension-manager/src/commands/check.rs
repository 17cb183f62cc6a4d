//! `check [PATH...]`: lint manifests and profiles without running anything. With no path,
//! the whole search path; a directory is checked as a search-path entry (its manifests may
//! require bundled ones); a file alone.

use std::path::PathBuf;

use em_manifest::{Catalog, Manifest, SearchPath, render_all};

use crate::exit;
use crate::output::{Tone, Ui};

/// `check`'s arguments.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Manifest files or directories [default: the search path]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// `check`: exit 2 with every diagnostic, or 0.
pub fn check(args: &CheckArgs, extension_dirs: &[PathBuf], ui: &Ui) -> u8 {
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
        args.paths.iter().cloned().partition(|p| p.is_dir());
    let mut diagnostics = Vec::new();
    let mut count = 0;
    for file in &files {
        match Manifest::load(file) {
            Ok(_) => count += 1,
            Err(d) => diagnostics.extend(d),
        }
    }
    if !dirs.is_empty() || files.is_empty() {
        let search = if args.paths.is_empty() {
            SearchPath::standard(
                crate::bundled::FILES,
                std::env::var_os("EM_EXTENSIONS_PATH").as_deref(),
                extension_dirs,
            )
        } else {
            dirs.iter().fold(
                SearchPath::new().with_bundled(crate::bundled::FILES),
                |p, d| p.with_dir(d),
            )
        };
        match Catalog::load(&search) {
            Ok(catalog) => count += catalog.names().count(),
            Err(d) => diagnostics.extend(d),
        }
    }
    if diagnostics.is_empty() {
        ui.status(
            "Checked",
            Tone::Good,
            &format!(
                "{count} manifest{}: no problems",
                if count == 1 { "" } else { "s" }
            ),
        );
        exit::OK
    } else {
        eprintln!("{}", render_all(&diagnostics));
        ui.status(
            "Checked",
            Tone::Bad,
            &format!(
                "{} problem{}",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            ),
        );
        exit::USAGE
    }
}
