//! The errors of reading and writing the state directory, with their hints.

use super::*;

/// Why the state, the history or a report could not be read or written.
#[derive(Debug)]
pub enum StateError {
    /// A file could not be read or written.
    Io {
        /// What we were doing: `read`, `write`, `open`, `lock`, `encode`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `state.json` is not valid state JSON (a hand edit, a full disk, a foreign file).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column.
        source: serde_json::Error,
    },
    /// `state.json` was written by a newer extension-manager.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in it.
        found: u64,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io {
                action,
                path,
                source,
            } => {
                write!(f, "could not {action} {}: {source}", path.display())?;
                write_permission_hint(f, source)
            }
            StateError::Corrupt { path, source } => write!(
                f,
                "the state file {p} is corrupt ({source}); move it aside \
                 (`mv {p} {p}.corrupt`) and run again: extension-manager then starts from an \
                 empty state and reinstalls what you ask for",
                p = path.display()
            ),
            StateError::UnsupportedVersion { path, found } => write!(
                f,
                "the state file {} has version {found}, but this extension-manager only \
                 understands version {STATE_VERSION}; upgrade extension-manager, or move the \
                 file aside to start from an empty state",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Io { source, .. } => Some(source),
            StateError::Corrupt { source, .. } => Some(source),
            StateError::UnsupportedVersion { .. } => None,
        }
    }
}
