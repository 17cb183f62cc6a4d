//! One module per subcommand.

pub mod apt;
pub mod retry;
pub mod shell_init;
