//! One module per subcommand (list and info share one, as do status and validate).

pub mod apt;
pub mod bom;
pub mod bundle;
pub mod check;
pub mod completions;
pub mod doctor;
pub mod fetch;
pub mod history;
pub mod install;
pub mod list;
pub mod lock;
pub mod npm;
pub mod pip;
pub mod remove;
pub mod retry;
pub mod shell_init;
pub mod status;
