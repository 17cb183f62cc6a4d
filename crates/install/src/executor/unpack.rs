//! Unpacking a download (`unpack_to`), off the async threads, recording what it creates.

use super::*;

/// Unpacks `archive` into `dir`, in-process (em-unpack: nothing lands outside `dir`, no
/// owner, setuid bit or device is kept, nothing already there is overwritten). The archive
/// is read and checked first; what it will create (`dir` itself, or the top-most paths
/// `dir` lacks) and the private temporary directory beside `dir` are recorded and saved
/// before anything is written, so that `remove` undoes a run killed midway. Then the paths
/// actually created replace them in the record; a failed unpacking has removed its own.
pub(super) async fn unpack(
    ctx: &Context,
    name: &str,
    record: &mut InstalledExtension,
    index: usize,
    archive: &Path,
    dir: &Path,
) -> Result<(), StepError> {
    let limits = ctx.settings.unpack_limits;
    // An upgrade or a reinstall unpacks over this extension's own earlier tree: what the
    // record says it created goes first (never the archive, never what holds it).
    let mut replaced: Vec<PathBuf> = Vec::new();
    let plan = loop {
        let (a, d) = (archive.to_path_buf(), dir.to_path_buf());
        match blocking_raw(move || em_unpack::plan(&a, &d, limits)).await? {
            Err(em_unpack::Error::Conflict { path, reason }) => {
                let ours = record.added.files.iter().find(|f| {
                    path.starts_with(f)
                        && f.starts_with(dir)
                        && !archive.starts_with(f)
                        && !replaced.contains(f)
                });
                let Some(ours) = ours.cloned() else {
                    return Err(unpack_error(em_unpack::Error::Conflict { path, reason }));
                };
                remove_path(&ours).map_err(|e| {
                    StepError::from(format!(
                        "cannot replace {} (this extension's earlier tree): {e}",
                        ours.display()
                    ))
                })?;
                replaced.push(ours);
            }
            other => break other.map_err(unpack_error)?,
        }
    };
    let planned: Vec<PathBuf> = std::iter::once(plan.temp_dir().to_path_buf())
        .chain(plan.creates().iter().cloned())
        .collect();
    let fresh: Vec<PathBuf> = planned
        .iter()
        .filter(|p| !record.added.files.contains(p))
        .cloned()
        .collect();
    for path in &fresh {
        record.added.files.push(path.clone());
    }
    save_step(ctx, name, record, index).await;
    let unpacked = blocking(move || plan.unpack()).await;
    // em-unpack has removed its temporary directory, and on failure what it moved: a
    // planned path still there after that is one it could not remove, so it stays recorded.
    let created = unpacked.as_ref().map(Vec::as_slice).unwrap_or_default();
    record.added.files.retain(|f| {
        !fresh.contains(f)
            || created.contains(f)
            || (unpacked.is_err() && f.symlink_metadata().is_ok())
    });
    for path in created {
        push_new(&mut record.added.files, path.clone());
    }
    save_step(ctx, name, record, index).await;
    unpacked.map(|_| ())
}

/// Runs em-unpack's blocking work on tokio's blocking pool; its error, with its hint, is
/// the step's (permanent: the same archive fails the same way again).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, em_unpack::Error> + Send + 'static,
) -> Result<T, StepError> {
    blocking_raw(work).await?.map_err(unpack_error)
}

/// [`blocking`], with em-unpack's own error left for the caller to look at.
pub(super) async fn blocking_raw<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, em_unpack::Error> + Send + 'static,
) -> Result<Result<T, em_unpack::Error>, StepError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StepError::from(format!("unpacking stopped: {e}")))
}

pub(super) fn unpack_error(e: em_unpack::Error) -> StepError {
    StepError::from(format!("{e} (hint: {})", e.hint()))
}

/// Deletes a file, a symlink or a directory tree; one that is already gone is no error.
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    let result = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
