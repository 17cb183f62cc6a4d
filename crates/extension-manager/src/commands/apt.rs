//! `extension-manager apt update` and `apt install PKG...`: one apt operation under a
//! retry policy, with apt's failures classified and repaired (see the em-apt crate).

use std::sync::Arc;

use em_apt::{Apt, AptConfig, AptPackage};

use crate::adapter_context::AdapterContext;
use crate::adapter_context::PolicyName;
use crate::error::CliError;
use crate::exit;
use crate::policy_options::PolicyOptions;

/// `apt`'s subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum AptCommand {
    /// Refresh the package lists (`apt-get update --error-on=any`)
    Update(AptUpdateArgs),
    /// Install packages (`apt-get install -y --no-install-recommends`)
    Install(AptInstallArgs),
}

/// `apt update`'s arguments.
#[derive(clap::Args, Debug)]
pub struct AptUpdateArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// An alternate archive base URL, tried in order when the configured sources keep failing
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// Succeed when only sources other than the primary archive failed (a stale
    /// third-party repository): they are named in a warning
    #[arg(long)]
    allow_failed_sources: bool,
}

/// `apt install`'s arguments.
#[derive(clap::Args, Debug)]
pub struct AptInstallArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// An alternate archive base URL, tried in order when the configured sources keep failing
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// Packages: NAME, NAME=VERSION, NAME/RELEASE or NAME:ARCH
    #[arg(value_name = "PKG", required = true)]
    packages: Vec<String>,
}

/// Runs an apt subcommand; `Err` is a usage error (exit 2).
pub async fn run(command: AptCommand, context: &AdapterContext) -> Result<u8, CliError> {
    let (policy, mirrors, packages, lenient) = match &command {
        AptCommand::Update(a) => (&a.policy, &a.mirrors, None, a.allow_failed_sources),
        AptCommand::Install(a) => (&a.policy, &a.mirrors, Some(&a.packages), false),
    };
    let policy = policy.apply(&context.base_policy(PolicyName::Apt))?;
    let packages = packages
        .map(|names| {
            names
                .iter()
                .map(|n| AptPackage::parse(n).map_err(|e| format!("invalid package `{n}`: {e}")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let config = AptConfig {
        mirrors: context.mirrors("apt", mirrors),
        update_max_age: context.config.apt_update_max_age,
        ..AptConfig::default()
    };
    let apt = match Apt::new(config) {
        Ok(apt) => Arc::new(apt),
        Err(e) => return Ok(context.report(&e, true)),
    };
    let runner = context.runner(policy, true);
    let result = match packages {
        None if lenient => apt.update_lenient(&runner).await.map(|failed| {
            for url in failed {
                context.ui.status(
                    "Warning",
                    crate::output::Tone::Warn,
                    &format!(
                        "apt update: {url} failed; the primary archive's lists were refreshed"
                    ),
                );
            }
        }),
        None => apt.update(&runner).await,
        Some(packages) => apt.install(&runner, &packages).await,
    };
    Ok(match result {
        Ok(()) => exit::OK,
        Err(e) => context.report(&e, true),
    })
}
