//! `extension-manager pip install PKG... [--venv DIR]`: pip installs under a retry policy,
//! with pip's failures classified and repaired (see the em-pip crate).

use std::path::PathBuf;
use std::sync::Arc;

use em_pip::{Pip, PipConfig, PipRequirement, PipTarget};

use crate::adapter_context::AdapterContext;
use crate::adapter_context::PolicyName;
use crate::error::CliError;
use crate::exit;
use crate::policy_options::PolicyOptions;

/// `pip`'s subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum PipCommand {
    /// Install packages (`python3 -m pip install`), into a venv with --venv
    Install(PipInstallArgs),
}

/// `pip install`'s arguments.
#[derive(clap::Args, Debug)]
pub struct PipInstallArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// Install into this virtual environment (absolute path), created when missing
    #[arg(long, value_name = "DIR", conflicts_with = "user")]
    venv: Option<PathBuf>,
    /// Into the user's site-packages (~/.local), as `pip install --user`
    #[arg(long)]
    user: bool,
    /// The package index [default: pip's own setting]
    #[arg(long, value_name = "URL")]
    index_url: Option<String>,
    /// An alternate index, tried in order when the primary keeps failing
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// Requirements: NAME, NAME[EXTRA], NAME==1.2, NAME>=1,<2
    #[arg(value_name = "PKG", required = true)]
    packages: Vec<String>,
}

/// Runs a pip subcommand; `Err` is a usage error (exit 2).
pub async fn run(command: PipCommand, context: &AdapterContext) -> Result<u8, CliError> {
    let PipCommand::Install(args) = command;
    let policy = args.policy.apply(&context.base_policy(PolicyName::Pip))?;
    let requirements = args
        .packages
        .iter()
        .map(|n| PipRequirement::parse(n).map_err(|e| format!("invalid requirement `{n}`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let target = match args.venv {
        Some(dir) => PipTarget::Venv(dir),
        None => PipTarget::Interpreter(PathBuf::from("python3")),
    };
    let config = PipConfig {
        index_url: args
            .index_url
            .or_else(|| context.config.registries.pip.clone()),
        mirrors: context.mirrors("pip", &args.mirrors),
        user: args.user,
        ..PipConfig::default()
    };
    let pip = match Pip::new(config, target) {
        Ok(pip) => Arc::new(pip),
        Err(e) => return Ok(context.report(&e, true)),
    };
    Ok(
        match pip
            .install(&context.runner(policy, true), &requirements)
            .await
        {
            Ok(()) => exit::OK,
            Err(e) => context.report(&e, true),
        },
    )
}
