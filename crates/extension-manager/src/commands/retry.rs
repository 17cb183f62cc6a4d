//! `extension-manager retry [policy options] -- CMD ARG...`: any command under a retry
//! policy. The command's stdout passes through untouched; our lines go to stderr; the exit
//! code is the command's last (124 when its last attempt timed out).

use std::ffi::OsString;
use std::fmt;
use std::sync::{Arc, Mutex};

use em_exec::{Cmd, ExecError, OutputMode};
use em_retry::{Decision, Failure, Operation, Repair, Retry, RetryPolicy, Subscriber};

use crate::error::CliError;
use crate::exit;
use crate::policy_options::{ExitCodes, PolicyOptions, parse_exit_codes, parse_regex};

/// The `retry` command's arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  extension-manager retry -- curl -fsSL https://example.org/install.sh -o install.sh
  extension-manager retry --attempts 30 --backoff fixed --delay 2s -- pg_isready -h db
  extension-manager retry --stop-on-exit 22 --timeout 5m -- make test

Exit code: the command's last exit code; 124 when its last attempt timed out; 127 when it
was not found; 130 when interrupted.")]
pub struct RetryArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// Retry only on these exit codes (e.g. 1,75 or 100-110); others fail at once
    #[arg(long, value_name = "CODES", value_parser = parse_exit_codes, help_heading = "When to retry")]
    retry_on_exit: Option<ExitCodes>,
    /// Never retry on these exit codes
    #[arg(long, value_name = "CODES", value_parser = parse_exit_codes, help_heading = "When to retry")]
    stop_on_exit: Option<ExitCodes>,
    /// Retry only when a line of the output (stdout or stderr) matches this regex
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, help_heading = "When to retry")]
    retry_if_output: Option<regex_lite::Regex>,
    /// Never retry when a line of the output matches this regex
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, help_heading = "When to retry")]
    stop_if_output: Option<regex_lite::Regex>,
    /// A shell command to run between a failed attempt and the next (e.g. 'rm -f partial.tgz')
    #[arg(long, value_name = "CMD", help_heading = "When to retry")]
    repair: Option<String>,
    /// The command and its arguments
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    command: Vec<OsString>,
}

/// How one attempt of the command failed.
#[derive(Debug)]
enum AttemptError {
    NotRunnable(ExecError),
    Exited { code: i32, output: Matched },
}

/// Which output rules a failed attempt's lines matched.
#[derive(Clone, Copy, Debug, Default)]
struct Matched {
    retry: bool,
    stop: bool,
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::NotRunnable(e) => e.fmt(f),
            AttemptError::Exited { code, .. } if *code > 128 && *code < 160 => {
                write!(f, "killed by signal {}", code - 128)
            }
            AttemptError::Exited { code, .. } => write!(f, "exit code {code}"),
        }
    }
}

/// The rules of `--retry-on-exit`, `--stop-on-exit`, `--retry-if-output`, `--stop-if-output`.
struct Rules {
    retry_on_exit: Option<ExitCodes>,
    stop_on_exit: Option<ExitCodes>,
    retry_if_output: Option<regex_lite::Regex>,
    stop_if_output: Option<regex_lite::Regex>,
}

impl Rules {
    fn needs_output(&self) -> bool {
        self.retry_if_output.is_some() || self.stop_if_output.is_some()
    }

    /// Matches one output line against the output rules, as the lines stream by: nothing
    /// of the output is kept for this, however long it runs.
    fn see(&self, line: &str, matched: &Mutex<Matched>) {
        let retry = self
            .retry_if_output
            .as_ref()
            .is_some_and(|r| r.is_match(line));
        let stop = self
            .stop_if_output
            .as_ref()
            .is_some_and(|r| r.is_match(line));
        if retry || stop {
            let mut m = matched.lock().unwrap_or_else(|p| p.into_inner());
            m.retry |= retry;
            m.stop |= stop;
        }
    }

    /// Stop rules win; with any retry rule, a failure must match one to be retried.
    fn is_retryable(&self, code: i32, output: Matched) -> bool {
        if self.stop_on_exit.as_ref().is_some_and(|c| c.contains(code)) || output.stop {
            return false;
        }
        if self.retry_on_exit.is_none() && self.retry_if_output.is_none() {
            return true;
        }
        self.retry_on_exit
            .as_ref()
            .is_some_and(|c| c.contains(code))
            || output.retry
    }
}

/// Runs the command under the policy; returns the exit code to leave with.
pub async fn run(args: RetryArgs, subscribers: &[Arc<dyn Subscriber>]) -> Result<u8, CliError> {
    let policy = args.policy.apply(&RetryPolicy::default())?;
    let rules = Arc::new(Rules {
        retry_on_exit: args.retry_on_exit,
        stop_on_exit: args.stop_on_exit,
        retry_if_output: args.retry_if_output,
        stop_if_output: args.stop_if_output,
    });
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| "no command given after --".to_string())?;
    if program.is_empty() {
        return Err("the command is an empty string".into());
    }
    let mode = if rules.needs_output() {
        OutputMode::Tee
    } else {
        OutputMode::Inherit
    };
    let matched: Arc<Mutex<Matched>> = Arc::default();
    let mut cmd = Cmd::new(program).args(rest).output(mode);
    if rules.needs_output() {
        let (rules, matched) = (rules.clone(), matched.clone());
        // Lines are matched as they come; the capture itself is not read: keep little.
        cmd = cmd
            .keep_at_most(64 * 1024)
            .on_line(Arc::new(move |_, line: &str| rules.see(line, &matched)));
    }
    let repair = args.repair;
    let classify_rules = rules.clone();
    let result = Retry::new(policy)
        .operation(Operation::new("retry", cmd.command_line()))
        .subscribe_all(subscribers)
        .classify(move |e: &AttemptError| match e {
            AttemptError::NotRunnable(_) => Decision::Fail,
            AttemptError::Exited { code, output } => {
                if !classify_rules.is_retryable(*code, *output) {
                    Decision::Fail
                } else if let Some(repair) = &repair {
                    Decision::Repair(shell_repair(repair))
                } else {
                    Decision::Retry
                }
            }
        })
        .run(|_attempt| {
            let (cmd, matched) = (&cmd, &matched);
            async move {
                *matched.lock().unwrap_or_else(|p| p.into_inner()) = Matched::default();
                let out = cmd.run().await.map_err(AttemptError::NotRunnable)?;
                if out.success() {
                    return Ok(());
                }
                Err(AttemptError::Exited {
                    code: out.code(),
                    output: *matched.lock().unwrap_or_else(|p| p.into_inner()),
                })
            }
        })
        .await;
    Ok(match result {
        Ok(()) => exit::OK,
        Err(e) => match e.into_last() {
            Some(Failure::TimedOut(_)) => exit::TIMED_OUT,
            Some(Failure::Error(AttemptError::Exited { code, .. })) => exit::from_child(code),
            Some(Failure::Error(AttemptError::NotRunnable(e))) => exit::from_child(e.exit_code()),
            None => exit::TEMPFAIL,
        },
    })
}

fn shell_repair(script: &str) -> Repair {
    let script = script.to_string();
    Repair::new(
        format!("sh -c {}", em_exec::quote(&script)),
        move || async move {
            // The repair's own output goes to stderr: stdout belongs to the wrapped command.
            let out = Cmd::new("sh")
                .args(["-c", &script])
                .stdin_null()
                .output(OutputMode::Capture)
                .run()
                .await
                .map_err(|e| e.to_string())?;
            eprint!(
                "{}",
                em_exec::printable_text(&format!("{}{}", out.stdout_text(), out.stderr_text()))
            );
            if out.success() {
                Ok(())
            } else {
                Err(format!("exit code {}", out.code()))
            }
        },
    )
}
