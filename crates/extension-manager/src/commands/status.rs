//! `status` and `validate`: what is installed, and whether it still works.

use std::collections::BTreeMap;
use std::io::Write;

use crate::commands::list::state_word;
use crate::error::CliError;
use crate::exit;
use crate::output::{OutputFormat, Tone, Ui};
use crate::session::Session;

/// `status`'s arguments.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Extensions [default: every installed one]
    #[arg(value_name = "EXT")]
    extensions: Vec<String>,
    /// The user whose home `scope = "user"` extensions go into [default: the user who
    /// ran sudo, or yourself when not root]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

impl StatusArgs {
    /// The extensions named.
    pub fn named(&self) -> &[String] {
        &self.extensions
    }
}

/// `validate`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Extensions to check
    #[arg(value_name = "EXT", required = true)]
    extensions: Vec<String>,
}

async fn check(session: &Session, name: &str) -> Result<Result<(), String>, CliError> {
    let manifest = session
        .catalog
        .get(name)
        .ok_or_else(|| format!("no extension named `{name}`"))?;
    let state = session.state()?;
    let values = state
        .extensions
        .get(name)
        .map(|e| {
            e.options
                .iter()
                .map(|(k, v)| {
                    let value = match v.as_str() {
                        "true" => em_manifest::OptionValue::Bool(true),
                        "false" => em_manifest::OptionValue::Bool(false),
                        other => em_manifest::OptionValue::String(other.to_string()),
                    };
                    (k.clone(), value)
                })
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    let resolved = manifest
        .resolve_for(&values, session.target_user().as_ref())
        .map_err(|d| d.to_string())?;
    Ok(crate::executor::validate(&resolved).await)
}

/// `status`: exit 1 when an installed extension fails its checks or failed to install.
pub async fn status(
    session: &Session,
    args: &StatusArgs,
    format: OutputFormat,
) -> Result<u8, CliError> {
    let state = session.state()?;
    let names: Vec<String> = if args.extensions.is_empty() {
        state.extensions.keys().cloned().collect()
    } else {
        args.extensions.clone()
    };
    let mut rows = Vec::new();
    let mut bad = false;
    for name in &names {
        if !session.catalog.contains(name) && !state.extensions.contains_key(name) {
            return Err(format!("no extension named `{name}`").into());
        }
        let word = state_word(session, &state, name);
        let validation = if word == "-" || !session.catalog.contains(name) {
            None
        } else {
            Some(check(session, name).await?)
        };
        bad |= word == "failed" || word == "partial" || matches!(validation, Some(Err(_)));
        rows.push((name.clone(), word, validation));
    }
    if args.extensions.is_empty() && session.target.is_none() {
        // The system's status lists the users' installs too, marked `NAME@USER` (their
        // checks run with `status --user USER`).
        for user in session.state_dir.users() {
            let part = session.state_dir.for_user(&user);
            let Ok(theirs) = part.load() else { continue };
            for name in theirs.extensions.keys() {
                let word = state_word(session, &theirs, name);
                bad |= word == "failed" || word == "partial";
                rows.push((format!("{name}@{user}"), word, None));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|(name, word, v)| {
                serde_json::json!({
                    "name": name,
                    "state": word,
                    "validation": match v { None => serde_json::Value::Null, Some(Ok(())) => "ok".into(), Some(Err(e)) => e.clone().into() },
                })
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::json!({ "extensions": items }));
    } else if rows.is_empty() {
        let _ = writeln!(out, "Nothing is installed.");
    } else {
        for (name, word, v) in &rows {
            let v = match v {
                None => String::new(),
                Some(Ok(())) => "checks pass".into(),
                Some(Err(e)) => format!("CHECK FAILED: {e}"),
            };
            let _ = writeln!(
                out,
                "{name:<16} {:<11} {v}",
                if *word == "-" { "not installed" } else { word }
            );
        }
    }
    Ok(if bad { exit::FAILURE } else { exit::OK })
}

/// `validate`: runs the checks; exit 1 when one fails.
pub async fn validate(session: &Session, args: &ValidateArgs, ui: &Ui) -> Result<u8, CliError> {
    let mut failed = false;
    for name in &args.extensions {
        match check(session, name).await? {
            Ok(()) => ui.status("Valid", Tone::Good, name),
            Err(e) => {
                failed = true;
                ui.status("Invalid", Tone::Bad, &format!("{name}: {e}"));
            }
        }
    }
    Ok(if failed { exit::FAILURE } else { exit::OK })
}
