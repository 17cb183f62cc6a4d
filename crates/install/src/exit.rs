//! The exit codes users and scripts rely on (SPEC section 6).

/// Success.
pub const OK: u8 = 0;
/// A permanent failure or a failed validation.
pub const FAILURE: u8 = 1;
/// Usage, manifest or config error: nothing was changed.
pub const USAGE: u8 = 2;
/// The last attempt of a wrapped command ran past its timeout (as `timeout(1)`).
pub const TIMED_OUT: u8 = 124;
/// A command that could not be executed (as a shell).
pub const NOT_EXECUTABLE: u8 = 126;
/// A command that was not found (as a shell).
pub const NOT_FOUND: u8 = 127;
/// Retries exhausted on transient failures (EX_TEMPFAIL): an outer layer may try later.
pub const TEMPFAIL: u8 = 75;
/// Interrupted by SIGINT.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM.
pub const TERMINATED: u8 = 143;

/// An exit code of a child (any i32) as the byte a process can exit with.
pub fn from_child(code: i32) -> u8 {
    u8::try_from(code.rem_euclid(256)).unwrap_or(FAILURE)
}

/// How a failure ends. The one place its exit code, its word in the summary and its label
/// in reports and metrics come from, so that they can never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Another try would fail the same way (a 404, a bad certificate, a failed check): 1.
    Permanent,
    /// Gave up on failures worth retrying later (retries exhausted, the deadline, an open
    /// circuit, a source given up, another run's lock): 75, EX_TEMPFAIL.
    Transient,
    /// Bad input (a flag, a manifest, the config): nothing was changed: 2.
    Usage,
}

impl Fault {
    /// The exit code of SPEC section 6.
    pub fn exit_code(self) -> u8 {
        match self {
            Fault::Permanent => FAILURE,
            Fault::Transient => TEMPFAIL,
            Fault::Usage => USAGE,
        }
    }

    /// `permanent`, `transient` or `usage`: reports, metrics, JSON.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Permanent => "permanent",
            Fault::Transient => "transient",
            Fault::Usage => "usage",
        }
    }

    /// The result column of the summary table.
    pub fn summary_word(self) -> &'static str {
        match self {
            Fault::Permanent => "FAILED",
            Fault::Transient => "failed, try later",
            Fault::Usage => "refused",
        }
    }

    /// How an adapter's error ends.
    pub fn of_tool(kind: &em_exec::ToolErrorKind) -> Fault {
        match kind {
            em_exec::ToolErrorKind::Exhausted | em_exec::ToolErrorKind::CircuitOpen => {
                Fault::Transient
            }
            em_exec::ToolErrorKind::Permanent | em_exec::ToolErrorKind::NotRunnable => {
                Fault::Permanent
            }
        }
    }

    /// The exit code of a run whose failures ended so: the worst of them (usage over
    /// permanent over transient); 0 without any.
    pub fn worst(faults: impl IntoIterator<Item = Fault>) -> u8 {
        faults
            .into_iter()
            .max_by_key(|f| match f {
                Fault::Transient => 0,
                Fault::Permanent => 1,
                Fault::Usage => 2,
            })
            .map_or(OK, Fault::exit_code)
    }
}
