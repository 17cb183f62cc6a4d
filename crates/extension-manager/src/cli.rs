//! The command line: global options, subcommands, logging set-up, signals and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use em_retry::{Metrics, Subscriber, TracingLog};

use crate::adapter_context::AdapterContext;
use crate::commands;
use crate::commands::install::Common;
use crate::config::{Config, ConfigSources};
use crate::error::CliError;
use crate::exit;
use crate::output::{ColorChoice, HumanEvents, OutputFormat, Progress, Ui, Verbosity};
use crate::session::{Session, SessionError};
use crate::signals::{self, Signals};
use crate::state::StateDir;
use crate::state_dir;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    /// Progress on stderr: tty (terminal style), plain (timestamped lines), none (no
    /// per-step lines; retries, failures and results still shown); auto picks tty or plain
    #[arg(long, value_enum, default_value = "auto", global = true)]
    progress: Progress,
    /// Write Prometheus metrics of this run to FILE (atomically, for node_exporter's textfile collector)
    #[arg(long, value_name = "FILE", global = true)]
    metrics: Option<PathBuf>,
    /// Where state lives [default: /var/lib/extension-manager as root, else $XDG_STATE_HOME/extension-manager]
    #[arg(long, value_name = "DIR", global = true, env = "EM_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Another directory of extension manifests (later ones win by name)
    #[arg(long = "extensions-dir", value_name = "DIR", global = true)]
    extensions_dirs: Vec<PathBuf>,
    /// A config file, read after /etc/extension-manager/config.toml and the user's
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// What stdout carries for list, info, plan, status, install, remove
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: OutputFormat,
    /// Also write the run's JSON report to FILE (it always goes to STATE_DIR/reports/last.json)
    #[arg(long, value_name = "FILE", global = true)]
    report: Option<PathBuf>,
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
    /// Extensions with version, category and installed state
    List(commands::list::ListArgs),
    /// One extension: metadata, steps, requires, reverse requires, state
    Info(commands::list::InfoArgs),
    /// The resolved order and every step, marking what is skipped
    Plan(commands::install::PlanArgs),
    /// Install extensions (and what they require)
    Install(commands::install::InstallArgs),
    /// Resolve exact versions and hashes into extensions.lock (install --locked installs them)
    Lock(commands::lock::LockArgs),
    /// Fetch every payload of the locked set into DIR (install --offline --from DIR installs it)
    Bundle(commands::bundle::BundleArgs),
    /// Remove extensions: undo what their install added, and nothing another one needs
    Remove(commands::remove::RemoveArgs),
    /// Reinstall the installed extensions whose manifest changed
    Upgrade(commands::install::UpgradeArgs),
    /// Installed / not installed / failed / outdated, with validation
    Status(commands::status::StatusArgs),
    /// Run the validate checks of extensions
    Validate(commands::status::ValidateArgs),
    /// Lint manifests and profiles
    Check(commands::check::CheckArgs),
    /// The append-only log of operations
    History(commands::history::HistoryArgs),
    /// Is this machine ready: tools, privileges, dpkg, disk, state, circuits, registries
    Doctor(commands::doctor::DoctorArgs),
    /// What the installed extensions put on the machine, with versions (JSON, CycloneDX, SPDX)
    Bom(commands::bom::BomArgs),
    /// Print shell completions
    Completions(commands::completions::CompletionsArgs),
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
    // JSON is read by machines: the retry events (delays, repairs) and status lines are
    // INFO events, kept by default there; people get warnings only unless -vv.
    let default = match (global.log_format, global.verbose, global.quiet) {
        (_, 2.., _) => "debug",
        (LogFormat::Json, _, false) => "info",
        _ => "warn",
    };
    // RUST_LOG in the `target=level,level` form (tracing-subscriber's `Targets`: no
    // regex engine in the build for a filter people write by hand).
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match global.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(global.color == ColorChoice::Always)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

fn run(cli: Cli) -> u8 {
    let Cli { global, command } = cli;
    let global = &global;
    // First, while we have one thread: the helper that kills our children's process
    // groups if we die (even by SIGKILL), then the signal handlers, before any command.
    let supervised = em_exec::supervise_groups();
    let signals = Signals::install();
    init_logging(global);
    if let Err(e) = &supervised {
        tracing::warn!("no supervisor for child processes (they may outlive a killed run): {e}");
    }
    let mut signals = match signals {
        Ok(signals) => Some(signals),
        Err(e) => {
            tracing::warn!("signal handlers not installed (signals kill at once): {e}");
            None
        }
    };
    let ui = make_ui(global);
    let mut subscribers = subscribers_for(global, &command, &ui);
    // What each registry or host did over the run, for the CI step summary.
    let tally = Arc::new(em_exec::SourceTally::default());
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
        let Some(config) = adapter_config(global, &command) else {
            return exit::USAGE;
        };
        let context = AdapterContext {
            ui: ui.clone(),
            subscribers: subscribers.clone(),
            circuits: StateDir::new(state_dir::resolve(global.state_dir.as_deref())).circuits_dir(),
            config,
            tally: tally.clone(),
        };
        let common = Common {
            ui: ui.clone(),
            subscribers: subscribers.clone(),
            output: global.output,
            report: global.report.as_deref(),
            command: command_line(),
            metrics: metrics.clone(),
            tally: tally.clone(),
        };
        let work = dispatch(command, global, &context, &common, &subscribers);
        let signalled = async {
            match signals.as_mut() {
                Some(signals) => signals.first().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            signo = signalled => {
                // Dropping `work` has killed the running child's process group; the
                // groups of tasks it spawned die when the runtime shuts down, below.
                let what = signals::describe(signo);
                ui.error(&format!("{what}; the running command was stopped"), None);
                signals::exit_code(signo)
            }
            result = work => match result {
                Ok(code) => code,
                Err(error) => {
                    ui.error(&error.to_string(), error.hint());
                    error.exit_code()
                }
            },
        }
    });
    // Drops every task left (killing their children's groups) without waiting for
    // blocking-pool work such as hashing a download, which nobody needs any more.
    runtime.shutdown_background();
    write_metrics(global, metrics, &tally, &ui);
    write_step_summary(code, &tally, &ui);
    code
}

/// The status-line printer the global options ask for.
fn make_ui(global: &GlobalOptions) -> Arc<Ui> {
    let verbosity = if global.quiet {
        Verbosity::Quiet
    } else if global.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ui = Ui::detect(global.color, global.progress, verbosity);
    Arc::new(match global.log_format {
        LogFormat::Json => ui.json_lines(),
        LogFormat::Text => ui,
    })
}

/// Who hears the retry events: status lines (or JSON logs) and GitHub annotations.
fn subscribers_for(
    global: &GlobalOptions,
    command: &Command,
    ui: &Arc<Ui>,
) -> Vec<Arc<dyn Subscriber>> {
    let mut subscribers: Vec<Arc<dyn Subscriber>> = Vec::new();
    match global.log_format {
        // In JSON mode the retry events are tracing events, at INFO and up.
        LogFormat::Json => subscribers.push(Arc::new(TracingLog)),
        LogFormat::Text => match command {
            Command::Retry(_) => subscribers.push(Arc::new(
                HumanEvents::new(ui.clone()).with_label(|op| op.name.clone()),
            )),
            // install/upgrade/remove add their own status lines per step.
            Command::Install(_) | Command::Upgrade(_) | Command::Remove(_) => {}
            _ => subscribers.push(Arc::new(HumanEvents::new(ui.clone()))),
        },
    }
    if let Some(annotations) = crate::github::Annotations::from_env() {
        subscribers.push(Arc::new(annotations));
    }
    subscribers
}

/// The configuration the adapter commands run under (the defaults for the others);
/// `None` when it is bad, after its diagnostics are printed (exit 2).
fn adapter_config(global: &GlobalOptions, command: &Command) -> Option<Config> {
    let needs_config = matches!(
        command,
        Command::Apt(_) | Command::Npm(_) | Command::Pip(_) | Command::Fetch(_)
    );
    if !needs_config {
        return Some(Config::default());
    }
    match Config::load(&ConfigSources::standard(global.config.as_deref())) {
        Ok(config) => {
            if config.sudo == crate::config::SudoMode::Never {
                em_exec::forbid_sudo();
            }
            Some(config)
        }
        Err(d) => {
            eprintln!("{}", em_manifest::render_all(&d));
            None
        }
    }
}

/// Runs `command`: the ones without a session here, the others after opening it.
async fn dispatch(
    command: Command,
    global: &GlobalOptions,
    context: &AdapterContext,
    common: &Common<'_>,
    subscribers: &[Arc<dyn Subscriber>],
) -> Result<u8, CliError> {
    match command {
        Command::Retry(args) => commands::retry::run(args, subscribers).await,
        Command::Apt(command) => commands::apt::run(command, context).await,
        Command::Npm(command) => commands::npm::run(command, context).await,
        Command::Pip(command) => commands::pip::run(command, context).await,
        Command::Fetch(args) => commands::fetch::run(args, context).await,
        Command::ShellInit(args) => commands::shell_init::run(&args),
        Command::Completions(args) => Ok(commands::completions::run(&args, self::command())),
        Command::Check(args) => Ok(commands::check::check(
            &args,
            &global.extensions_dirs,
            &common.ui,
        )),
        other => {
            let session = match Session::open(
                &global.extensions_dirs,
                global.config.as_deref(),
                global.state_dir.as_deref(),
            ) {
                Ok(session) => session,
                Err(SessionError::Diagnostics(d)) => {
                    eprintln!("{}", em_manifest::render_all(&d));
                    return Ok(exit::USAGE);
                }
            };
            let (named, user): (Vec<String>, Option<String>) = match &other {
                Command::Install(a) => (a.named().to_vec(), a.user.clone()),
                Command::Plan(a) => (a.named().to_vec(), a.user.clone()),
                Command::Remove(a) => (a.named().to_vec(), a.user.clone()),
                Command::Status(a) => (a.named().to_vec(), a.user.clone()),
                _ => (Vec::new(), None),
            };
            let session = match session.for_user(user.as_deref(), &named) {
                Ok(session) => session,
                Err(e) => {
                    eprintln!("error: {e}");
                    if let Some(hint) = e.hint() {
                        eprintln!("hint: {hint}");
                    }
                    return Ok(exit::USAGE);
                }
            };
            with_session(other, &session, common).await
        }
    }
}

/// Runs a command that reads the catalog, the configuration and the state.
async fn with_session(
    command: Command,
    session: &Session,
    common: &Common<'_>,
) -> Result<u8, CliError> {
    let output = common.output;
    match command {
        Command::List(args) => commands::list::list(session, &args, output),
        Command::Info(args) => commands::list::info(session, &args, output),
        Command::Plan(args) => commands::install::plan_command(session, &args, common),
        Command::Install(args) => commands::install::install(session, args, common).await,
        Command::Lock(args) => commands::lock::lock(session, &args, &common.ui).await,
        Command::Bundle(args) => commands::bundle::bundle(session, &args, &common.ui).await,
        Command::Upgrade(args) => commands::install::upgrade(session, args, common).await,
        Command::Remove(args) => commands::remove::remove(session, args, common).await,
        Command::Status(args) => commands::status::status(session, &args, output).await,
        Command::Validate(args) => commands::status::validate(session, &args, &common.ui).await,
        Command::Bom(args) => commands::bom::bom(session, &args, &common.ui).await,
        Command::Doctor(args) => {
            commands::doctor::doctor(&session.config, &session.state_dir, &args, output).await
        }
        Command::History(args) => commands::history::history(session, &args, output),
        _ => Err(CliError::permanent("unreachable: command dispatched above")),
    }
}

/// `--metrics FILE`: the run's metrics, with each source's circuit state, written atomically.
fn write_metrics(
    global: &GlobalOptions,
    metrics: Option<Arc<Metrics>>,
    tally: &em_exec::SourceTally,
    ui: &Ui,
) {
    if let Some(metrics) = &metrics {
        for (source, counts) in tally.snapshot() {
            if let Some(open) = counts.circuit_open {
                metrics.set_circuit_open(&source, open);
            }
        }
    }
    if let (Some(path), Some(metrics)) = (&global.metrics, metrics)
        && let Err(e) = crate::state::write_atomically(path, metrics.render().as_bytes())
    {
        ui.error(
            &format!("could not write metrics to {}: {e}", path.display()),
            None,
        );
    }
}

/// Under GitHub Actions: the run's summary appended to the step summary.
fn write_step_summary(code: u8, tally: &em_exec::SourceTally, ui: &Ui) {
    if let Some(file) = crate::github::step_summary_file()
        && let Some(markdown) =
            crate::github::summary_markdown(&command_line(), code, &tally.snapshot())
        && let Err(e) = crate::github::append(&file, &markdown)
    {
        ui.error(
            &format!(
                "could not append to the step summary {}: {e}",
                file.display()
            ),
            None,
        );
    }
}

/// The command line as typed, for the history and the lock holder.
fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| em_exec::quote(&a))
        .collect();
    format!("extension-manager {}", args.join(" "))
}

/// The clap command, for completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (conflicting ids, bad defaults) over every subcommand.
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}
