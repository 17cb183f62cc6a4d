//! Installing a locked set: every distribution at its exact version with the sha256 the
//! lock recorded, from a requirements file under `--require-hashes`. pip then refuses any
//! file whose hash differs and any dependency the file does not pin, so what lands is
//! exactly what was locked (pip's "hash-checking mode").

use std::io::Write;
use std::sync::Arc;

use em_exec::{Runner, ToolError};
use em_retry::Operation;

use crate::{Pip, PipRequirement};

/// `name==version` with the sha256 of its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedRequirement {
    /// `name==version`.
    pub requirement: PipRequirement,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

impl HashedRequirement {
    /// The requirements-file line: `name==version --hash=sha256:HEX`.
    pub fn line(&self) -> String {
        format!("{} --hash=sha256:{}", self.requirement, self.sha256)
    }
}

impl Pip {
    /// `pip install --require-hashes -r FILE` of `pinned` into the target (a venv target is
    /// created first), from the index and then each mirror. The file is written to a
    /// private temporary directory and removed afterwards.
    pub async fn install_hashed(
        self: &Arc<Self>,
        runner: &Runner,
        pinned: &[HashedRequirement],
    ) -> Result<(), ToolError> {
        let words: Vec<String> = pinned.iter().map(|r| r.requirement.to_string()).collect();
        let operation = Operation::new(
            "pip",
            format!("install --require-hashes {}", words.join(" ")),
        );
        if pinned.is_empty() {
            return Err(ToolError::permanent(
                operation.to_string(),
                "no requirement to install",
                None,
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| {
            ToolError::permanent(
                operation.to_string(),
                format!("cannot create a temporary directory: {e}"),
                None,
            )
        })?;
        let file = dir.path().join("requirements.txt");
        let text: String = pinned.iter().map(|r| r.line() + "\n").collect();
        std::fs::File::create(&file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| {
                ToolError::permanent(
                    operation.to_string(),
                    format!("cannot write {}: {e}", file.display()),
                    None,
                )
            })?;
        self.ensure_venv(runner).await?;
        let args = [
            "--require-hashes".into(),
            "-r".into(),
            file.into_os_string(),
        ];
        self.install_over_indexes(runner, operation, &args).await
    }
}
