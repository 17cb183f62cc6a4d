//! The command line: global options, subcommands, logging set-up, signals and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use em_retry::{Metrics, Subscriber, TracingLog};

use crate::adapter_context::AdapterContext;
use crate::commands;
use crate::exit;
use crate::output::{ColorChoice, HumanEvents, Ui, Verbosity};
use crate::state_dir;

/// Installs developer tooling into dev VMs and container images, through apt, npm, pip,
/// curl and wget, and keeps working when registries and mirrors fail.
#[derive(Parser, Debug)]
#[command(name = "extension-manager", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

/// Options of every command.
#[derive(clap::Args, Debug)]
struct GlobalOptions {
    /// More output: every attempt as it starts (-vv: debug logs)
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    verbose: u8,
    /// Less output: failures only
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log format on stderr: human status lines, or JSON objects for machines
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    /// Colour in status lines (NO_COLOR is respected under auto)
    #[arg(long, value_enum, default_value = "auto", global = true)]
    color: ColorChoice,
    /// Write Prometheus metrics of this run to FILE (atomically, for node_exporter's textfile collector)
    #[arg(long, value_name = "FILE", global = true)]
    metrics: Option<PathBuf>,
    /// Where state lives [default: /var/lib/extension-manager as root, else $XDG_STATE_HOME/extension-manager]
    #[arg(long, value_name = "DIR", global = true, env = "EM_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run any command under a retry policy (for CI and workflows)
    Retry(commands::retry::RetryArgs),
    /// apt-get under a retry policy, with apt's failures classified and repaired
    #[command(subcommand)]
    Apt(commands::apt::AptCommand),
    /// Global npm installs under a retry policy, with npm's failures classified and repaired
    #[command(subcommand)]
    Npm(commands::npm::NpmCommand),
    /// pip installs under a retry policy, with pip's failures classified and repaired
    #[command(subcommand)]
    Pip(commands::pip::PipCommand),
    /// Download a file through curl or wget under a retry policy, landing it atomically
    Fetch(commands::fetch::FetchArgs),
    /// Print shell functions (apt_install_retry, curl_retry, ...) backed by this binary
    ShellInit(commands::shell_init::ShellInitArgs),
}

/// Parses the command line, runs the command, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 0 for --help and --version, 2 for usage errors.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    ExitCode::from(run(cli))
}

fn init_logging(global: &GlobalOptions) {
    let default = match global.verbose {
        0 | 1 => "warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(global.color == ColorChoice::Always)
            .try_init(),
    };
}

fn run(cli: Cli) -> u8 {
    let global = &cli.global;
    init_logging(global);
    let verbosity = if global.quiet {
        Verbosity::Quiet
    } else if global.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ui = Arc::new(Ui::detect(global.color, verbosity));
    let mut subscribers: Vec<Arc<dyn Subscriber>> = Vec::new();
    match global.log_format {
        // In JSON mode the retry events are tracing events, at INFO and up.
        LogFormat::Json => subscribers.push(Arc::new(TracingLog)),
        LogFormat::Text => match &cli.command {
            Command::Retry(_) => subscribers.push(Arc::new(
                HumanEvents::new(ui.clone()).with_label(|op| op.name.clone()),
            )),
            _ => subscribers.push(Arc::new(HumanEvents::new(ui.clone()))),
        },
    }
    let metrics = global.metrics.as_ref().map(|_| {
        let m = Arc::new(Metrics::new("extension_manager", "adapter"));
        subscribers.push(m.clone());
        m
    });

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&format!("could not start the async runtime: {e}"), None);
            return exit::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let context = AdapterContext {
            ui: ui.clone(),
            subscribers: subscribers.clone(),
            circuits: state_dir::circuits(&state_dir::resolve(global.state_dir.as_deref())),
        };
        let work = async {
            match cli.command {
                Command::Retry(args) => commands::retry::run(args, &subscribers).await,
                Command::Apt(command) => commands::apt::run(command, &context).await,
                Command::Npm(command) => commands::npm::run(command, &context).await,
                Command::Pip(command) => commands::pip::run(command, &context).await,
                Command::Fetch(args) => commands::fetch::run(args, &context).await,
                Command::ShellInit(args) => commands::shell_init::run(&args),
            }
        };
        tokio::select! {
            result = work => match result {
                Ok(code) => code,
                Err(message) => {
                    ui.error(&message, None);
                    exit::USAGE
                }
            },
            code = interrupted() => {
                // Dropping `work` has killed the running child's process group.
                ui.error("interrupted; the running command was stopped", None);
                code
            }
        }
    });

    if let (Some(path), Some(metrics)) = (&global.metrics, metrics)
        && let Err(e) = write_atomically(path, metrics.render().as_bytes())
    {
        ui.error(
            &format!("could not write metrics to {}: {e}", path.display()),
            None,
        );
    }
    code
}

/// Resolves on SIGINT (130) or SIGTERM (143).
async fn interrupted() -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the default action (die) applies: never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => exit::INTERRUPTED,
        _ = term.recv() => exit::TERMINATED,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, fsynced and
/// renamed: readers see the old file or the new one, never half of one.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
