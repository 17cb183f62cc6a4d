//! # extension-manager: install developer tooling, and survive flaky registries
//!
//! The command-line product over the install engine (`em-install`), the retry core
//! (`em-retry`) and the process runner (`em-exec`). `main.rs` is a one-line shim; everything
//! is here so that tests can reach it.
//!
//! - [`cli`]: the command line (clap), global options, dispatch, exit codes.
//! - [`commands`]: one module per subcommand.
//! - [`output`]: status lines on stderr (TTY vs plain), never on stdout.
//! - [`policy_options`]: the retry policy flags and their parsers.
//! - [`signals`]: the termination signals, caught from start-up on.
//!
//! Streams: stdout carries only what was asked for (the wrapped command's stdout under
//! `retry`); logs and status lines go to stderr.

pub use em_install::{
    adapter_context, apt_batch, config, events, executor, exit, file_steps, plan, preflight,
    shell_adapter, signals, state, user,
};
pub mod bundled;
pub mod cli;
pub mod commands;
pub mod error;
pub mod github;
pub mod locked;
pub mod output;
pub mod policy_options;
pub mod session;
pub mod state_dir;

pub use cli::main;
