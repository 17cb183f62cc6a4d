//! `[extension] scope = "user"`: what a per-user extension may do, checked at load.
//!
//! A user extension runs as its target user and writes only into that user's home, so
//! that what `install --user alice` changes is alice's alone: steps that are system-wide
//! by nature (apt, npm's global prefix, pip outside a venv) are refused with a hint, and
//! every path a step writes must start with `{{home}}/`.

use crate::diagnostic::{Diagnostic, Span, Spanned};
use crate::schema::{Manifest, Scope, Step};

/// The values `{{user}}` and `{{home}}` take in load-time checks (the real ones are known
/// only at install).
pub(crate) const STAND_IN_USER: [(&str, &str); 2] = [("user", "emuser"), ("home", "/home/emuser")];

/// The errors of `m` that come from its scope (none for a system extension: its use of
/// `{{user}}`/`{{home}}` is reported where placeholders are checked).
pub(crate) fn check_scope(m: &Manifest) -> Vec<Diagnostic> {
    if m.scope != Scope::User {
        return Vec::new();
    }
    let first = |list: &[Spanned<String>], or: &Span| {
        list.first().map(|p| p.span.clone()).unwrap_or(or.clone())
    };
    let mut paths: Vec<(&Spanned<String>, &str)> = Vec::new();
    let mut refusals: Vec<(Span, String, &str)> = Vec::new();
    for step in &m.install {
        match &step.action {
            Step::Apt(a) => refusals.push((
                first(&a.packages, &step.span),
                "an apt step in a user extension".into(),
                "apt is system-wide: put it in a system extension this one requires (requires = [\"...\"])",
            )),
            Step::Npm(n) => refusals.push((
                first(&n.packages, &step.span),
                "an npm step in a user extension".into(),
                "npm installs into the global prefix, which is system-wide: put it in a system extension this one requires, or use a run step with `npm install --prefix {{home}}/.local`",
            )),
            Step::Pip(p) => match &p.venv {
                Some(v) => paths.push((v, "venv")),
                None => refusals.push((
                    first(&p.packages, &step.span),
                    "a pip step without `venv` in a user extension".into(),
                    "give it a virtual environment in the home: venv = \"{{home}}/.venvs/NAME\" (or use pipx = [...])",
                )),
            },
            Step::Lang(_) | Step::Run(_) => {}
            Step::Download(d) => {
                paths.push((&d.to, "to"));
                if let Some(u) = &d.unpack_to {
                    paths.push((u, "unpack_to"));
                }
            }
            Step::File(f) => {
                paths.push((&f.path, "file"));
                for who in [&f.owner, &f.group].into_iter().flatten() {
                    refusals.push((
                        who.span.clone(),
                        "`owner` and `group` in a user extension".into(),
                        "the files of a user extension belong to its user: remove owner and group",
                    ));
                }
            }
            Step::Block(b) => paths.push((&b.path, "block")),
        }
    }
    let mut errors = Vec::new();
    for def in m.options.values() {
        if crate::facts::USER_FACTS.contains(&def.name.value.as_str()) {
            errors.push(
                m.error_at(
                    def.name.span.clone(),
                    format!("an option named `{}` in a user extension", def.name.value),
                )
                .with_hint("{{user}} and {{home}} are the target user's name and home: give the option another name"),
            );
        }
    }
    for (path, key) in paths {
        if !path.value.starts_with("{{home}}/") {
            errors.push(
                m.error_at(
                    path.span.clone(),
                    format!(
                        "`{key}` of a user extension must be under {{{{home}}}}, got `{}`",
                        path.value
                    ),
                )
                .with_hint(format!(
                    "a user extension writes only into its user's home: write {key} = \"{{{{home}}}}/...\"; system paths belong in a system extension this one requires"
                )),
            );
        }
    }
    for (span, message, hint) in refusals {
        errors.push(m.error_at(span, message).with_hint(hint));
    }
    errors
}
