//! The extension's `env` as a profile.d file that every login shell sources.

use super::*;

/// A value of `[extension.env]` for a profile.d script: double-quoted, so that `$VAR` and
/// `${VAR}` expand when the login shell reads it (`PATH = "$HOME/.local/bin:$PATH"`), and
/// nothing else runs: `\`, `"`, backquotes and `$(` are escaped.
///
/// ```text
/// $HOME/.local/bin:$PATH   -> "$HOME/.local/bin:$PATH"
/// a "b" `c` $(d) \e        -> "a \"b\" \`c\` \$(d) \\e"
/// ```
pub(super) fn env_value(value: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '"' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '$' if chars.peek() == Some(&'(') => out.push_str("\\$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `[extension.env]` to `<profile dir>/extension-manager-NAME.sh`, atomically.
pub(super) fn write_env_file(
    ctx: &Context,
    manifest: &ResolvedManifest,
    added: &mut Added,
) -> Result<(), String> {
    if manifest.env.is_empty() {
        return Ok(());
    }
    if let Some(user) = manifest.user() {
        return write_user_env(manifest, user, added);
    }
    let path = ctx
        .settings
        .profile_dir
        .join(format!("extension-manager-{}.sh", manifest.name()));
    let mut text = format!(
        "# Written by extension-manager for `{}`; removed by `extension-manager remove {}`.\n",
        manifest.name(),
        manifest.name()
    );
    for (k, v) in &manifest.env {
        text.push_str(&format!("export {k}={}\n", env_value(&v.value)));
    }
    std::fs::create_dir_all(&ctx.settings.profile_dir)
        .map_err(|e| format!("cannot create {}: {e}", ctx.settings.profile_dir.display()))?;
    crate::state::write_atomically(&path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !added.files.contains(&path) {
        added.files.push(path);
    }
    Ok(())
}

/// A user extension's `[extension.env]`: a managed block `NAME env` in the user's
/// `~/.profile` (what login shells of the user read; /etc/profile.d is everyone's), owned
/// by the user, taken out again by `remove` like any block.
fn write_user_env(
    manifest: &ResolvedManifest,
    user: &em_manifest::TargetUser,
    added: &mut Added,
) -> Result<(), String> {
    let home = Path::new(&user.home);
    let path = home.join(".profile");
    let label = format!("{} env", manifest.name());
    let mut content = String::new();
    for (k, v) in &manifest.env {
        content.push_str(&format!("export {k}={}\n", env_value(&v.value)));
    }
    // The home exists: no directory is created for ~/.profile.
    let (place, _) =
        crate::file_steps::Place::create(&path, Some(home), Some((user.uid, user.gid)))?;
    let existing = place.target("env")?;
    let text = match &existing {
        Some(_) => place.read()?,
        None => Vec::new(),
    };
    let (new, added_newline) = crate::file_steps::upsert_block(&text, &label, &content);
    if existing.is_some() && new == text {
        return Ok(());
    }
    if !added
        .blocks
        .iter()
        .any(|b| b.path == path && b.label == label)
    {
        added.blocks.push(crate::state::BlockAdded {
            path: path.clone(),
            label: label.clone(),
            created_file: existing.is_none(),
            added_newline,
        });
    }
    let (mode, owner) = match &existing {
        Some(m) => (m.mode, (m.uid, m.gid)),
        None => (0o644, (user.uid, user.gid)),
    };
    place.write(&new, mode, Some(owner))
}
