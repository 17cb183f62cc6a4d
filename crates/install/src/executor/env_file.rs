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
