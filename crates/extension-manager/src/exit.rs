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
