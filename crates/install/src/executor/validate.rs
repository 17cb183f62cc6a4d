//! The `validate` commands of a manifest: whether an installed extension still works.

use super::*;

/// Runs the `[[validate]]` checks; `Err` names the first that failed and why.
pub async fn validate(manifest: &ResolvedManifest) -> Result<(), String> {
    for check in &manifest.validate {
        let out = shell(&check.run.value, manifest)
            .output(OutputMode::Capture)
            .run()
            .await
            .map_err(|e| format!("`{}` could not run: {e}", check.run.value))?;
        if !out.success() {
            let last = out
                .stderr_text()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            return Err(format!(
                "`{}` exited with {}{}",
                check.run.value,
                out.code(),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ));
        }
        if !check.is_expected_output(&out.stdout_text()) {
            return Err(format!(
                "`{}` printed {:?}, which does not match `{}`",
                check.run.value,
                out.stdout_text().trim(),
                check
                    .expect
                    .as_ref()
                    .map(|e| e.value.as_str())
                    .unwrap_or_default()
            ));
        }
    }
    Ok(())
}
