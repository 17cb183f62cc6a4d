//! `history [EXT] [--since T]`: the append-only log of operations.

use std::io::Write;

use crate::error::CliError;
use crate::exit;
use crate::output::OutputFormat;
use crate::session::Session;

/// `history`'s arguments.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Only this extension
    #[arg(value_name = "EXT")]
    extension: Option<String>,
    /// Only entries since this time (RFC 3339, e.g. 2026-11-22T06:00:00Z) or this long ago (e.g. 2h)
    #[arg(long, value_name = "T")]
    since: Option<String>,
}

/// `history`.
pub fn history(
    session: &Session,
    args: &HistoryArgs,
    format: OutputFormat,
) -> Result<u8, CliError> {
    let since = match &args.since {
        None => None,
        Some(t) => Some(
            humantime::parse_rfc3339_weak(t)
                .or_else(|_| {
                    // Longer ago than the epoch: everything.
                    humantime::parse_duration(t).map(|d| {
                        std::time::SystemTime::now()
                            .checked_sub(d)
                            .unwrap_or(std::time::UNIX_EPOCH)
                    })
                })
                .map_err(|_| format!("--since `{t}`: expected a time like 2026-11-22T06:00:00Z or a duration like 2h"))?,
        ),
    };
    let entries = session
        .state_dir
        .history(args.extension.as_deref(), since)
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for e in entries {
        let line = if format == OutputFormat::Json {
            serde_json::to_string(&e).unwrap_or_default()
        } else {
            format!(
                "{} {:<14} {:<12} {} {}",
                e.time,
                e.extension.as_deref().unwrap_or("-"),
                e.event,
                e.detail,
                if e.detail.is_empty() {
                    format!("({})", e.command)
                } else {
                    String::new()
                }
            )
        };
        let _ = writeln!(out, "{line}");
    }
    Ok(exit::OK)
}
