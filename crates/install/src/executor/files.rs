//! `file` and `block` steps: whole files and managed blocks, written atomically, with
//! backups of what they replace.

use super::*;

/// A `file` step: the whole file, written atomically with its mode (and owner). A file
/// that was there before (and is not this extension's) is refused unless `replace = true`,
/// which backs it up first; a re-run with the same content, mode and owner writes nothing.
pub(super) async fn file_step(
    ctx: &Context,
    name: &str,
    f: &em_manifest::FileStep,
    user: Option<&em_manifest::TargetUser>,
    log: &Log,
    record: &mut InstalledExtension,
    index: usize,
) -> Result<(), StepError> {
    use crate::file_steps::Place;
    let path = PathBuf::from(&f.path.value);
    let (uid, gid) = match user {
        // A user extension's files are its user's (owner and group are refused at load).
        Some(u) => (Some(u.uid), Some(u.gid)),
        None => (
            f.owner
                .as_ref()
                .map(|o| crate::file_steps::user_id(&o.value))
                .transpose()?,
            match (&f.group, &f.owner) {
                (Some(g), _) => Some(crate::file_steps::group_id(&g.value)?),
                (None, Some(o)) => crate::file_steps::user_group(&o.value),
                (None, None) => None,
            },
        ),
    };
    let home = user.map(|u| Path::new(&u.home));
    let (place, created) = Place::create(&path, home, user.map(|u| (u.uid, u.gid)))?;
    let existing = place.target("file")?;
    let ours =
        record.added.files.contains(&path) || record.added.replaced.iter().any(|r| r.path == path);
    let mode = f.mode();
    let bytes = f.content.value.as_bytes();
    if let Some(meta) = &existing {
        if !ours {
            let state = ctx.state.lock().await;
            if let Some((other, _)) = state.extensions.iter().find(|(n, r)| {
                n.as_str() != name
                    && (r.added.files.contains(&path)
                        || r.added.replaced.iter().any(|x| x.path == path))
            }) {
                return Err(format!(
                    "{} belongs to the extension `{other}`; nothing was written \
                     (hint: remove `{other}` first, or write another path)",
                    path.display()
                )
                .into());
            }
        }
        let same = meta.mode == mode
            && uid.is_none_or(|u| u == meta.uid)
            && gid.is_none_or(|g| g == meta.gid)
            && place.read().is_ok_and(|old| old == bytes);
        if same {
            log.line(&format!("{} is up to date: unchanged", path.display()));
            if !ours {
                // Already as the step wants it: nothing to undo, but the step uses it.
                push_new(&mut record.uses.files, path);
            }
            return Ok(());
        }
        if !ours {
            if !f.replace {
                return Err(format!(
                    "{} exists and is not this extension's; nothing was written \
                     (hint: add replace = true to the step to replace it; remove then puts the original back)",
                    path.display()
                )
                .into());
            }
            let backup = crate::file_steps::backup_path(ctx.state_dir.path(), name, &path);
            let original = place.read()?;
            ctx.state_dir
                .secure()
                .and_then(|()| crate::state::write_private(&backup, &original))
                .map_err(|e| {
                    format!(
                        "cannot back up {} to {}: {e}",
                        path.display(),
                        backup.display()
                    )
                })?;
            record.added.replaced.push(crate::state::ReplacedFile {
                path: path.clone(),
                backup: backup.clone(),
                mode: meta.mode,
                uid: meta.uid,
                gid: meta.gid,
            });
            save_step(ctx, name, record, index).await;
            log.line(&format!(
                "backed up {} to {}",
                path.display(),
                backup.display()
            ));
        }
    } else {
        for dir in created {
            push_new(&mut record.added.dirs, dir);
        }
        push_new(&mut record.added.files, path.clone());
        save_step(ctx, name, record, index).await;
    }
    let owner = match (uid, gid) {
        (None, None) => None,
        // The one not given stays as it is (ours: the process's when the file is new).
        (u, g) => {
            use std::os::unix::fs::MetadataExt;
            let me = std::fs::metadata("/proc/self").ok();
            Some((
                u.or(existing.as_ref().map(|m| m.uid))
                    .unwrap_or_else(|| me.as_ref().map_or(0, MetadataExt::uid)),
                g.or(existing.as_ref().map(|m| m.gid))
                    .unwrap_or_else(|| me.as_ref().map_or(0, MetadataExt::gid)),
            ))
        }
    };
    place.write(bytes, mode, owner)?;
    log.line(&format!("wrote {} ({:04o})", path.display(), mode));
    Ok(())
}

/// A `block` step: the block between its markers, appended or replaced in place, the rest
/// of the file byte for byte as it was, its mode and owner kept.
pub(super) async fn block_step(
    ctx: &Context,
    name: &str,
    b: &em_manifest::BlockStep,
    user: Option<&em_manifest::TargetUser>,
    log: &Log,
    record: &mut InstalledExtension,
    index: usize,
) -> Result<(), StepError> {
    let path = PathBuf::from(&b.path.value);
    let label = b.label(name);
    let home = user.map(|u| Path::new(&u.home));
    let (place, created) =
        crate::file_steps::Place::create(&path, home, user.map(|u| (u.uid, u.gid)))?;
    for dir in created {
        push_new(&mut record.added.dirs, dir);
    }
    let existing = place.target("block")?;
    let text = match &existing {
        Some(_) => place.read()?,
        None => Vec::new(),
    };
    let (new, added_newline) = crate::file_steps::upsert_block(&text, &label, &b.content.value);
    if existing.is_some() && new == text {
        log.line(&format!("the block in {} is up to date", path.display()));
        return Ok(());
    }
    let appended = crate::file_steps::find_block(&text, &label).is_none();
    let known = record
        .added
        .blocks
        .iter()
        .position(|x| x.path == path && x.label == label);
    match known {
        Some(i) if appended => {
            // Ours, but taken out of the file since: appended again.
            record.added.blocks[i].added_newline = added_newline;
            record.added.blocks[i].created_file |= existing.is_none();
        }
        Some(_) => {}
        None => record.added.blocks.push(crate::state::BlockAdded {
            path: path.clone(),
            label: label.clone(),
            created_file: existing.is_none(),
            added_newline,
        }),
    }
    save_step(ctx, name, record, index).await;
    let (mode, owner) = match &existing {
        Some(m) => (m.mode, Some((m.uid, m.gid))),
        None => (0o644, user.map(|u| (u.uid, u.gid))),
    };
    place.write(&new, mode, owner)?;
    log.line(&format!(
        "{} the block `{label}` in {}",
        if appended { "appended" } else { "updated" },
        path.display()
    ));
    Ok(())
}
