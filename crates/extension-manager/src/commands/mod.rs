//! One module per subcommand.

pub mod apt;
pub mod fetch;
pub mod npm;
pub mod pip;
pub mod retry;
pub mod shell_init;
