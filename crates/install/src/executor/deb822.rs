//! A step's third-party apt repository: its key and a deb822 `.sources` file, both recorded
//! for `remove`, then an update of that source alone.

use super::*;

/// A step's third-party `repository`: its key (downloaded, sha256-checked) under the
/// keyrings dir, a deb822 `extension-manager-NAME.sources` under sources.list.d, both
/// recorded for `remove`; then `apt-get update` of that source only.
#[allow(clippy::too_many_arguments)]
pub(super) async fn add_repository(
    ctx: &Arc<Context>,
    name: &str,
    record: &mut InstalledExtension,
    apt: &Arc<Apt>,
    runner: &Runner,
    downloads: &Runner,
    repository: &em_manifest::AptRepository,
    allow_http: bool,
    index: usize,
) -> Result<(), StepError> {
    let (sources_dir, keyrings_dir) = apt_etc_dirs();
    for dir in [&sources_dir, &keyrings_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let key_path = keyrings_dir.join(format!("extension-manager-{name}.asc"));
    let sources_path = sources_dir.join(format!("extension-manager-{name}.sources"));
    push_new(&mut record.added.apt_sources, sources_path.clone());
    push_new(&mut record.added.apt_sources, key_path.clone());
    save_step(ctx, name, record, index).await;
    let request = DownloadRequest {
        url: repository.key.value.clone(),
        mirrors: Vec::new(),
        dest: key_path.clone(),
        sha256: match &repository.key_sha256 {
            Some(s) => Some(Sha256::parse(&s.value)?),
            None => None,
        },
        allow_http,
        mode: Some(0o644),
        max_size: ctx.settings.download_max_size,
    };
    crate::download::download(None, downloads, &request).await?;
    let components: Vec<&str> = repository
        .components
        .iter()
        .map(|c| c.value.as_str())
        .collect();
    let mut deb822 = format!(
        "# Written by extension-manager for `{name}`; removed by `extension-manager remove {name}`.\nTypes: deb\nURIs: {}\nSuites: {}\n",
        repository.uri.value, repository.suite.value
    );
    if !components.is_empty() {
        deb822.push_str(&format!("Components: {}\n", components.join(" ")));
    }
    deb822.push_str(&format!("Signed-By: {}\n", key_path.display()));
    crate::state::write_atomically(&sources_path, deb822.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", sources_path.display()))?;
    // The same source in one-line form, for an update of this source alone.
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let list = scratch.path().join("source.list");
    let line = format!(
        "deb [signed-by={}] {} {} {}\n",
        key_path.display(),
        repository.uri.value,
        repository.suite.value,
        components.join(" ")
    );
    std::fs::write(&list, line).map_err(|e| format!("cannot write {}: {e}", list.display()))?;
    apt.update_only(runner, &list).await?;
    Ok(())
}
