//! # extension-manager: install developer tooling, and survive flaky registries
//!
//! The command-line product over the retry core (`em-retry`) and the process runner
//! (`em-exec`). `main.rs` is a one-line shim; everything is here so that tests can reach it.
//!
//! - [`cli`]: the command line (clap), global options, dispatch, exit codes.
//! - [`commands`]: one module per subcommand.
//! - [`output`]: status lines on stderr (TTY vs plain), never on stdout.
//! - [`policy_options`]: the retry policy flags and their parsers.
//! - [`signals`]: the termination signals, caught from start-up on.
//!
//! Streams: stdout carries only what was asked for (the wrapped command's stdout under
//! `retry`); logs and status lines go to stderr.

pub mod adapter_context;
pub mod apt_batch;
pub mod bundled;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod executor;
pub mod exit;
mod file_steps;
pub mod github;
pub mod locked;
pub mod output;
pub mod plan;
pub mod policy_options;
pub mod preflight;
pub mod session;
pub mod shell_adapter;
pub mod signals;
pub mod state;
pub mod state_dir;

pub use cli::main;
