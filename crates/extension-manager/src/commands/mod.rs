//! One module per subcommand.

pub mod retry;
