//! # em-install: the install engine of extension-manager
//!
//! Everything `install`, `remove` and the read commands need that is not the command line:
//! the configuration and its sources ([`config`]), the plan of what to install and in which
//! order ([`plan`]), the host checks before a run ([`preflight`]), the executor that runs the
//! steps with retries, circuit breakers and exact undo records ([`executor`], [`apt_batch`],
//! [`file_steps`], [`shell_adapter`]), offline bundles ([`bundle`]), the state directory
//! with its lock, records, history and reports ([`state`]), the exit codes ([`exit`]), the
//! termination signals ([`signals`]) and the target user of `scope = "user"` extensions
//! ([`user`]).
//!
//! The engine prints nothing: status lines, warnings, errors and live progress go to an
//! observer, [`events::Events`], which the command line implements with its terminal or CI
//! printer. So the same run can be shown as coloured live lines, timestamped CI lines or
//! JSON, or collected by a test, and the engine needs neither clap nor indicatif.
//!
//! Why a crate of its own: the command-line crate was one 13k-line unit at the end of the
//! build's critical path; with the engine apart, a change to a command or its output
//! recompiles only the thin CLI, and the engine can be tested and used without clap.

pub mod adapter_context;
pub mod apt_batch;
pub mod bundle;
pub mod config;
pub mod download;
pub mod events;
pub mod executor;
pub mod exit;
pub mod file_steps;

pub mod plan;
pub mod policy_name;
pub mod preflight;
pub mod shell_adapter;
pub mod signals;
pub mod state;
pub mod user;
