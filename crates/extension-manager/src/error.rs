//! The error a command ends with: what went wrong, why (the causes, outermost first), what
//! to do about it, and the [`Fault`] that gives its exit code.
//!
//! A bare `String` error is a usage error (exit 2, "nothing was changed"): that is what
//! most early refusals are (an unknown extension, a bad flag value). Anything that can
//! happen after the machine was touched, or that is not the user's input (an unreadable
//! state file, a disk full while saving it), says so with [`CliError::permanent`] or
//! [`CliError::transient`].

use std::fmt;

use crate::exit::Fault;

/// A command's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    fault: Fault,
    message: String,
    causes: Vec<String>,
    hint: Option<String>,
}

impl CliError {
    fn new(fault: Fault, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // Messages written before hints were typed carry theirs after "\nhint: ".
        let (message, hint) = match message.split_once("\nhint: ") {
            Some((m, h)) => (m.to_string(), Some(h.to_string())),
            None => (message, None),
        };
        CliError {
            fault,
            message,
            causes: Vec::new(),
            hint,
        }
    }

    /// Bad input; nothing was changed (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(Fault::Usage, message)
    }

    /// A failure another try would repeat (exit 1).
    pub fn permanent(message: impl Into<String>) -> Self {
        CliError::new(Fault::Permanent, message)
    }

    /// A failure worth trying again later (exit 75).
    pub fn transient(message: impl Into<String>) -> Self {
        CliError::new(Fault::Transient, message)
    }

    /// Adds what caused it (an I/O error, a tool's message), innermost last.
    pub fn caused_by(mut self, cause: impl fmt::Display) -> Self {
        self.causes.push(cause.to_string());
        self
    }

    /// Sets what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// How it ends.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// The exit code: 1 permanent, 2 usage, 75 transient.
    pub fn exit_code(&self) -> u8 {
        self.fault.exit_code()
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for CliError {
    /// The message, then each cause after `: ` (`cannot save the state: No space left on
    /// device (os error 28)`), without a leading `error: ` of a wrapped message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.message
                .strip_prefix("error: ")
                .unwrap_or(&self.message),
        )?;
        for cause in &self.causes {
            write!(f, ": {}", cause.strip_prefix("error: ").unwrap_or(cause))?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

impl From<String> for CliError {
    /// A plain message: a usage error.
    fn from(message: String) -> Self {
        CliError::usage(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        CliError::usage(message)
    }
}

impl From<em_exec::ToolError> for CliError {
    fn from(e: em_exec::ToolError) -> Self {
        let fault = Fault::of_tool(&e.kind);
        let mut error = CliError::new(fault, e.to_string());
        error.hint = e.hint;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_gives_the_exit_code_and_the_chain_reads_outermost_first() {
        let e = CliError::permanent("cannot save the state")
            .caused_by("writing /var/lib/extension-manager/state.json")
            .caused_by("No space left on device (os error 28)")
            .with_hint("free disk space and run it again: it resumes");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "cannot save the state: writing /var/lib/extension-manager/state.json: \
             No space left on device (os error 28)"
        );
        assert_eq!(
            e.hint(),
            Some("free disk space and run it again: it resumes")
        );
        assert_eq!(CliError::transient("locked").exit_code(), 75);
    }

    #[test]
    fn a_plain_message_is_a_usage_error_with_its_hint_split_off() {
        let e = CliError::from(
            "`x` is not installed\nhint: `list --installed` shows what is".to_string(),
        );
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "`x` is not installed");
        assert_eq!(e.hint(), Some("`list --installed` shows what is"));
        assert_eq!(CliError::usage("error: bad").to_string(), "bad");
    }
}
