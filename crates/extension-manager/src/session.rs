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
    /// Where state lives: the system's, or with a target user, that user's part of it
    /// (`users/NAME/`).
    pub state_dir: StateDir,
    /// The user the `scope = "user"` extensions of this command are for (`--user`, or
    /// the default: see [`Session::for_user`]); None: a system command.
    pub target: Option<crate::user::Account>,
    /// The system's state directory (the same as `state_dir` without a target user).
    pub system_state_dir: StateDir,
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
        let state_dir = StateDir::new(crate::state_dir::resolve(state_dir));
        Ok(Session {
            catalog,
            config,
            system_state_dir: state_dir.clone(),
            state_dir,
            target: None,
        })
    }

    /// Makes this a command for a target user: `--user NAME` (`flag`), or, when every
    /// named extension is a user extension, the default target (the sudo caller as root,
    /// ourselves as another user). The state is then that user's part of the state
    /// directory, and manifests resolve with their `{{user}}` and `{{home}}`.
    ///
    /// Errors (exit 2): a bad or unknown name, `--user` of another user without root,
    /// or user extensions named as root with neither `--user` nor `SUDO_USER`.
    pub fn for_user(
        mut self,
        flag: Option<&str>,
        named: &[String],
    ) -> Result<Session, crate::error::CliError> {
        let all_user = !named.is_empty()
            && named.iter().all(|n| {
                self.catalog
                    .get(n)
                    .is_some_and(|m| m.scope == em_manifest::Scope::User)
            });
        if flag.is_none() && !all_user {
            return Ok(self);
        }
        let name = crate::user::target_name_here(flag).map_err(crate::error::CliError::usage)?;
        let Some(name) = name else {
            return Err(crate::error::CliError::usage(format!(
                "{} {} a user extension and there is no target user\nhint: {}",
                named.join(", "),
                if named.len() == 1 { "is" } else { "are" },
                crate::user::NO_TARGET_HINT
            )));
        };
        let account = crate::user::lookup(&name).map_err(crate::error::CliError::usage)?;
        self.state_dir = self.system_state_dir.for_user(&account.name);
        self.target = Some(account);
        Ok(self)
    }

    /// What `{{user}}` and `{{home}}` become in this command (None: a system command).
    pub fn target_user(&self) -> Option<em_manifest::TargetUser> {
        self.target.as_ref().map(crate::user::Account::target)
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
