//! What a command that works with extensions opens first: the catalog (bundled manifests,
//! then /etc/extension-manager/extensions.d, EM_EXTENSIONS_PATH, --extensions-dir), the
//! configuration, and the state directory. Any error here is the user's to fix: exit 2,
//! nothing changed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use em_manifest::{Catalog, Diagnostic, SearchPath};

use crate::config::{Config, ConfigSources};
use crate::plan::Installed;
use crate::state::{ExtensionStatus, State, StateDir};

/// The catalog, the configuration and the state directory of one command.
pub struct Session {
    /// Every extension on the search path.
    pub catalog: Catalog,
    /// The merged configuration.
    pub config: Config,
    /// Where state lives.
    pub state_dir: StateDir,
}

/// Why a session could not open.
pub enum SessionError {
    /// Manifest or config diagnostics (exit 2).
    Diagnostics(Vec<Diagnostic>),
}

impl Session {
    /// Opens the catalog and the configuration.
    pub fn open(
        extension_dirs: &[PathBuf],
        config_file: Option<&std::path::Path>,
        state_dir: Option<&std::path::Path>,
    ) -> Result<Session, SessionError> {
        let config = Config::load(&ConfigSources::standard(config_file))
            .map_err(SessionError::Diagnostics)?;
        if config.sudo == crate::config::SudoMode::Never {
            em_exec::forbid_sudo();
        }
        let search = SearchPath::standard(
            crate::bundled::FILES,
            std::env::var_os("EM_EXTENSIONS_PATH").as_deref(),
            extension_dirs,
        );
        let catalog = Catalog::load(&search).map_err(SessionError::Diagnostics)?;
        Ok(Session {
            catalog,
            config,
            state_dir: StateDir::new(crate::state_dir::resolve(state_dir)),
        })
    }

    /// The state. An unreadable one is a permanent error (exit 1), not the user's input.
    pub fn state(&self) -> Result<State, crate::error::CliError> {
        self.state_dir
            .load()
            .map_err(|e| crate::error::CliError::permanent(e.to_string()))
    }
}

/// What planning needs to know of the state.
pub fn installed_for_planning(state: &State) -> BTreeMap<String, Installed> {
    state
        .extensions
        .iter()
        .map(|(name, e)| {
            (
                name.clone(),
                Installed {
                    fingerprint: e.fingerprint.clone(),
                    complete: e.status == ExtensionStatus::Installed,
                },
            )
        })
        .collect()
}
