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
    // Every manifest looked at, whether it loaded or not.
    let mut count = 0;
    for file in &files {
        count += 1;
        if let Err(d) = Manifest::load(file) {
            diagnostics.extend(d);
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
        count += search.manifest_names().len();
        if let Err(d) = Catalog::load(&search) {
            diagnostics.extend(d);
        }
    }
    let checked = format!("{count} manifest{}", if count == 1 { "" } else { "s" });
    if diagnostics.is_empty() {
        ui.status("Checked", Tone::Good, &format!("{checked}: no problems"));
        exit::OK
    } else {
        eprintln!("{}", render_all(&diagnostics));
        let n = diagnostics.len();
        ui.status(
            "Checked",
            Tone::Bad,
            &format!("{checked}: {n} problem{}", if n == 1 { "" } else { "s" }),
        );
        exit::USAGE
    }
}
