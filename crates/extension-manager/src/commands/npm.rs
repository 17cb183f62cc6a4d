//! `extension-manager npm install PKG...`: global npm installs under a retry policy, with
//! npm's failures classified and repaired (see the em-npm crate).

use std::path::PathBuf;
use std::sync::Arc;

use em_npm::{Npm, NpmConfig, NpmPackage};

use crate::adapter_context::AdapterContext;
use crate::adapter_context::PolicyName;
use crate::error::CliError;
use crate::exit;
use crate::policy_options::PolicyOptions;

/// `npm`'s subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum NpmCommand {
    /// Install packages globally (`npm install -g`)
    Install(NpmInstallArgs),
}

/// `npm install`'s arguments.
#[derive(clap::Args, Debug)]
pub struct NpmInstallArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// The registry [default: npm's own setting]
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// An alternate registry, tried in order when the primary keeps failing
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// The global prefix to install into [default: npm's own setting]
    #[arg(long, value_name = "DIR", conflicts_with = "local")]
    prefix: Option<PathBuf>,
    /// Into ./node_modules of the current directory (`npm install` without -g)
    #[arg(long)]
    local: bool,
    /// Packages: NAME, @SCOPE/NAME, with an optional @VERSION or range
    #[arg(value_name = "PKG", required = true)]
    packages: Vec<String>,
}

/// Runs an npm subcommand; `Err` is a usage error (exit 2).
pub async fn run(command: NpmCommand, context: &AdapterContext) -> Result<u8, CliError> {
    let NpmCommand::Install(args) = command;
    let policy = args.policy.apply(&context.base_policy(PolicyName::Npm))?;
    let packages = args
        .packages
        .iter()
        .map(|n| NpmPackage::parse(n).map_err(|e| format!("invalid package `{n}`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let config = NpmConfig {
        registry: args
            .registry
            .or_else(|| context.config.registries.npm.clone()),
        mirrors: context.mirrors("npm", &args.mirrors),
        prefix: args.prefix,
        ..NpmConfig::default()
    };
    let npm = match Npm::new(config) {
        Ok(npm) => Arc::new(npm),
        Err(e) => return Ok(context.report(&e, true)),
    };
    let runner = context.runner(policy, true);
    let installed = if args.local {
        npm.install_local(&runner, &packages).await
    } else {
        npm.install_global(&runner, &packages).await
    };
    Ok(match installed {
        Ok(()) => exit::OK,
        Err(e) => context.report(&e, true),
    })
}
