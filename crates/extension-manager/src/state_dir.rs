//! Where extension-manager keeps its state (SPEC section 7): `--state-dir`, else
//! `/var/lib/extension-manager` as root, else `$XDG_STATE_HOME/extension-manager`
//! (`~/.local/state/extension-manager` when XDG_STATE_HOME is unset).

use std::path::{Path, PathBuf};

/// The state directory to use.
pub fn resolve(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    if em_exec::is_root() {
        return PathBuf::from("/var/lib/extension-manager");
    }
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        home.join(".local/state")
    });
    base.join("extension-manager")
}
