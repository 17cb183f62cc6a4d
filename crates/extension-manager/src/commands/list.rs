//! `list` and `info`: what extensions there are, and one in detail.

use std::io::Write;

use em_manifest::Manifest;

use crate::commands::remove::install_values;
use crate::error::CliError;
use crate::exit;
use crate::output::OutputFormat;
use crate::plan::PlannedRepository;
use crate::session::Session;
use crate::state::{ExtensionStatus, State};

/// `list`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only installed extensions
    #[arg(long)]
    installed: bool,
    /// Only this category
    #[arg(long, value_name = "C")]
    category: Option<String>,
}

/// `info`'s arguments.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The extension
    #[arg(value_name = "EXT")]
    extension: String,
}

/// The state word of an extension: `installed`, `failed`, `partial`, `outdated` or `-`.
pub fn state_word(session: &Session, state: &State, name: &str) -> &'static str {
    match state.extensions.get(name) {
        None => "-",
        Some(e) if e.status == ExtensionStatus::Failed => "failed",
        Some(e) if e.status == ExtensionStatus::Partial => "partial",
        Some(e) => {
            let current = session.catalog.get(name).map(|m| m.sha256().to_string());
            if current.is_some_and(|sha| sha != e.manifest_sha256) {
                "outdated"
            } else {
                "installed"
            }
        }
    }
}

/// `m`'s description as a reader should see it: `{{option}}` filled in plainly with the
/// values it was installed with, when it is installed, else the options' defaults.
fn description(state: &State, m: &Manifest) -> String {
    let values = state
        .extensions
        .get(m.name())
        .map(|installed| install_values(m, &installed.options))
        .unwrap_or_default();
    m.description_with(&values)
}

/// `list`.
pub fn list(session: &Session, args: &ListArgs, format: OutputFormat) -> Result<u8, CliError> {
    let state = session.state()?;
    let rows: Vec<_> = session
        .catalog
        .manifests()
        .filter(|m| !args.installed || state.extensions.contains_key(m.name()))
        .filter(|m| {
            args.category
                .as_ref()
                .is_none_or(|c| m.category.as_deref() == Some(c.as_str()))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name(),
                    "version": m.version.value,
                    "category": m.category,
                    "description": description(&state, m),
                    "state": state_word(session, &state, m.name()),
                })
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::json!({ "extensions": items }));
        return Ok(exit::OK);
    }
    // The columns stay aligned however long a name is (16 at least, as before).
    let w = rows
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(0)
        .max(16);
    let _ = writeln!(
        out,
        "{:<w$} {:<9} {:<12} {:<10} DESCRIPTION",
        "NAME", "VERSION", "CATEGORY", "STATE"
    );
    for m in rows {
        let _ = writeln!(
            out,
            "{:<w$} {:<9} {:<12} {:<10} {}",
            m.name(),
            m.version.value,
            m.category.as_deref().unwrap_or("-"),
            state_word(session, &state, m.name()),
            description(&state, m)
        );
    }
    Ok(exit::OK)
}

/// `info`.
pub fn info(session: &Session, args: &InfoArgs, format: OutputFormat) -> Result<u8, CliError> {
    let Some(m) = session.catalog.get(&args.extension) else {
        let suggestions = session.catalog.suggest(&args.extension);
        let hint = if suggestions.is_empty() {
            String::new()
        } else {
            format!("\nhint: did you mean {}?", suggestions.join(" or "))
        };
        return Err(format!("no extension named `{}`{hint}", args.extension).into());
    };
    let state = session.state()?;
    let installed = state.extensions.get(m.name());
    let requires: Vec<&str> = m.requires.iter().map(|r| r.value.as_str()).collect();
    let required_by = session.catalog.reverse_requires(m.name());
    // The install's option values (or none: the defaults), which the description and the
    // steps are filled with; the steps as written when an option has no value to fill in.
    let values = installed
        .map(|i| install_values(m, &i.options))
        .unwrap_or_default();
    let resolved = m.resolve(&values).ok();
    let steps = resolved.as_ref().map_or(&m.install, |r| &r.install);
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let value = serde_json::json!({
            "name": m.name(),
            "version": m.version.value,
            "description": description(&state, m),
            "category": m.category,
            "file": m.path(),
            "sha256": m.sha256(),
            "requires": requires,
            "required_by": required_by,
            "after": m.after.iter().map(|a| a.value.as_str()).collect::<Vec<_>>(),
            "conflicts": m.conflicts.iter().map(|a| a.value.as_str()).collect::<Vec<_>>(),
            "options": m.options.values().map(|o| serde_json::json!({
                "name": o.name.value, "default": o.default.as_ref().map(|d| d.to_string()), "allowed": o.allowed, "description": o.description,
            })).collect::<Vec<_>>(),
            "steps": steps.iter().map(|s| s.action.summary()).collect::<Vec<_>>(),
            "repositories": steps.iter().enumerate().filter_map(|(i, s)| {
                PlannedRepository::of(&s.action).map(|r| serde_json::json!({ "step": i + 1, "repository": r }))
            }).collect::<Vec<_>>(),
            "validate": m.validate.iter().map(|c| c.run.value.as_str()).collect::<Vec<_>>(),
            "state": state_word(session, &state, m.name()),
            "installed": installed,
        });
        // A URL's password is nobody's business on stdout either.
        let _ = writeln!(out, "{}", em_exec::redact_urls(&value.to_string()));
        return Ok(exit::OK);
    }
    let _ = writeln!(out, "{} {}", m.name(), m.version.value);
    if !m.description.is_empty() {
        let _ = writeln!(out, "  {}", description(&state, m));
    }
    let _ = writeln!(out, "  file:        {}", m.path().display());
    let _ = writeln!(
        out,
        "  category:    {}",
        m.category.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  requires:    {}",
        if requires.is_empty() {
            "-".into()
        } else {
            requires.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  required by: {}",
        if required_by.is_empty() {
            "-".into()
        } else {
            required_by.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  state:       {}",
        state_word(session, &state, m.name())
    );
    if let Some(i) = installed {
        let _ = writeln!(out, "  installed:   {} at {}", i.version, i.installed_at);
    }
    for o in m.options.values() {
        let default = o.default.as_ref().map(|d| d.to_string());
        let chosen = values
            .get(&o.name.value)
            .map(|v| v.to_string())
            .filter(|v| Some(v) != default.as_ref());
        let _ = writeln!(
            out,
            "  option {}: default {}{}{}",
            o.name.value,
            default.as_deref().unwrap_or("(none)"),
            if o.allowed.is_empty() {
                String::new()
            } else {
                format!(", one of {}", o.allowed.join(", "))
            },
            chosen
                .map(|v| format!(", installed with {v}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "  steps:");
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {}. {}",
            i + 1,
            em_exec::redact_urls(&s.action.summary())
        );
        for line in PlannedRepository::of(&s.action)
            .iter()
            .flat_map(|r| r.lines())
        {
            let _ = writeln!(out, "       {}", em_exec::redact_urls(&line));
        }
    }
    if !m.validate.is_empty() {
        let _ = writeln!(out, "  checks:");
        for c in &m.validate {
            let _ = writeln!(out, "    $ {}", c.run.value);
        }
    }
    Ok(exit::OK)
}
