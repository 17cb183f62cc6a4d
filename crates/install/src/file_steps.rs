//! The file-level work of `file` and `block` install steps, and of their undo: atomic
//! writes that keep or set mode and owner, parent directories created one by one (so that
//! each can be recorded and removed again), user and group names looked up in
//! `/etc/passwd` and `/etc/group`, and managed blocks between marker lines.
//!
//! Nothing here follows a symlink at the target: the target is `lstat`ed and a symlink
//! refused, and the new content is renamed over the path (a rename replaces a link that
//! appeared since, never writes through it).

use std::fs::{self, DirBuilder, File, Metadata, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The target's metadata, without following a symlink: `None` when it does not exist.
/// A symlink or a directory is an error that says why nothing was written.
pub(crate) fn target(path: &Path, what: &str) -> Result<Option<Metadata>, String> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot inspect {}: {e}", path.display())),
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{} is a symlink; a {what} step never writes through one (nothing was written) \
             (hint: point the step at the real file)",
            path.display()
        )),
        Ok(m) if !m.is_file() => Err(format!(
            "{} exists and is not a regular file; nothing was written",
            path.display()
        )),
        Ok(m) => Ok(Some(m)),
    }
}

/// Creates the missing parent directories of `path` (mode 0755), outermost first, and
/// returns them deepest first: the order in which `remove` takes them away (when empty).
pub(crate) fn create_parents(path: &Path) -> Result<Vec<PathBuf>, String> {
    let mut missing = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || fs::symlink_metadata(d).is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    for d in missing.iter().rev() {
        DirBuilder::new()
            .mode(0o755)
            .create(d)
            .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    Ok(missing)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory with
/// `mode` (and `owner` = (uid, gid) when given), fsynced, renamed over `path`, then the
/// directory fsynced. A crash leaves the old file or the new one.
pub(crate) fn write(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    if let Some((uid, gid)) = owner {
        let meta = tmp.as_file().metadata()?;
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
        }
    }
    // After the chown: a chown clears setuid/setgid bits.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// For a file of a user extension: refuses `path` when a directory between `home` and it
/// is a symlink (the user could plant one to make root write elsewhere: `~/.config` ->
/// `/etc`). The home itself is the administrator's and may be a link. The final component
/// is checked by [`target`], and the write renames over it (never through it).
pub(crate) fn refuse_symlinked_parents(path: &Path, home: &Path) -> Result<(), String> {
    match unsafe_parent(path, home) {
        None => Ok(()),
        Some(UnsafeParent::Outside) => Err(format!(
            "{} is not inside the home {}; nothing was written",
            path.display(),
            home.display()
        )),
        Some(UnsafeParent::Symlink(dir)) => Err(format!(
            "{} is a symlink inside the home of its user; a user extension never writes through one (nothing was written) \
             (hint: replace the link by a directory)",
            dir.display()
        )),
        Some(UnsafeParent::NotADirectory(dir)) => Err(format!(
            "{} is not a directory; nothing was written",
            dir.display()
        )),
    }
}

/// Why root must not touch a path of a user's home: see [`unsafe_parent`].
#[derive(Debug, PartialEq, Eq)]
pub enum UnsafeParent {
    /// The path is not inside the home at all.
    Outside,
    /// This directory between the home and the path is a symlink.
    Symlink(PathBuf),
    /// This path between the home and the path is not a directory.
    NotADirectory(PathBuf),
}

/// What makes `path` unsafe for root to write or delete on behalf of the user whose home
/// is `home`: a directory between the two that is a symlink (or not a directory), or a
/// path outside the home. `None`: every existing parent is a real directory. Install
/// checks before writing, and `remove` checks again before deleting, since the user may
/// have planted a link in between.
pub fn unsafe_parent(path: &Path, home: &Path) -> Option<UnsafeParent> {
    let Ok(rest) = path.strip_prefix(home) else {
        return Some(UnsafeParent::Outside);
    };
    let mut dir = home.to_path_buf();
    let parts: Vec<_> = rest.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => return Some(UnsafeParent::Symlink(dir)),
            Ok(m) if !m.is_dir() => return Some(UnsafeParent::NotADirectory(dir)),
            Ok(_) => {}
            // Missing: created by create_parents, as a directory (and so are those below).
            Err(_) => break,
        }
    }
    None
}

/// Gives the directories a user extension created to its user (`lchown`: a link that
/// appeared since is changed itself, nothing behind it).
pub(crate) fn chown_created(dirs: &[PathBuf], uid: u32, gid: u32) -> Result<(), String> {
    for d in dirs {
        std::os::unix::fs::lchown(d, Some(uid), Some(gid))
            .map_err(|e| format!("cannot give {} to uid {uid}: {e}", d.display()))?;
    }
    Ok(())
}

/// The uid of user `name`, from `/etc/passwd`.
pub(crate) fn user_id(name: &str) -> Result<u32, String> {
    lookup(Path::new(PASSWD), name).ok_or_else(|| {
        format!(
            "there is no user `{name}` on this machine (hint: create it first, or change `owner`)"
        )
    })
}

/// The gid of group `name`, from `/etc/group`.
pub(crate) fn group_id(name: &str) -> Result<u32, String> {
    lookup(Path::new(GROUP), name).ok_or_else(|| {
        format!(
            "there is no group `{name}` on this machine (hint: create it first, or change `group`)"
        )
    })
}

/// The primary gid of user `name`.
pub(crate) fn user_group(name: &str) -> Option<u32> {
    let text = fs::read_to_string(PASSWD).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| f[3].parse().ok())
}

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// The third field (the id) of the line of `file` whose first field is `name`.
fn lookup(file: &Path, name: &str) -> Option<u32> {
    let text = fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
}

/// Where the original of a replaced `path` is kept: `STATE/backups/EXT/<sha256 of path>`.
pub(crate) fn backup_path(state_dir: &Path, extension: &str, path: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    state_dir.join("backups").join(extension).join(hex)
}

/// The marker lines of block `label`.
fn markers(label: &str) -> (String, String) {
    (
        format!("# BEGIN extension-manager {label}"),
        format!("# END extension-manager {label}"),
    )
}

/// The block as it is written: the markers around `content` (a final newline added).
pub(crate) fn block_text(label: &str, content: &str) -> Vec<u8> {
    let (begin, end) = markers(label);
    let mut text = format!("{begin}\n{content}");
    if !content.is_empty() && !content.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&end);
    text.push('\n');
    text.into_bytes()
}

/// The byte range of block `label` in `text`, from the start of its BEGIN line to the end
/// of its END line (its newline included).
pub(crate) fn find_block(text: &[u8], label: &str) -> Option<std::ops::Range<usize>> {
    let (begin, end) = markers(label);
    let mut at = 0;
    let mut start = None;
    while at < text.len() {
        let line_end = text[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| at + i + 1);
        let line = text[at..line_end]
            .strip_suffix(b"\n")
            .unwrap_or(&text[at..line_end]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match start {
            None if line == begin.as_bytes() => start = Some(at),
            Some(s) if line == end.as_bytes() => return Some(s..line_end),
            _ => {}
        }
        at = line_end;
    }
    None
}

/// `text` with block `label` set to `content`: replaced in place when present, else
/// appended (after a newline when `text` does not end with one: the bool says so).
pub(crate) fn upsert_block(text: &[u8], label: &str, content: &str) -> (Vec<u8>, bool) {
    let block = block_text(label, content);
    if let Some(range) = find_block(text, label) {
        let mut out = text[..range.start].to_vec();
        out.extend_from_slice(&block);
        out.extend_from_slice(&text[range.end..]);
        return (out, false);
    }
    let mut out = text.to_vec();
    let newline = !out.is_empty() && !out.ends_with(b"\n");
    if newline {
        out.push(b'\n');
    }
    out.extend_from_slice(&block);
    (out, newline)
}

/// `text` without block `label` (`None`: it is not there). `added_newline`: the install
/// put a newline before the block, which goes too when the block is still the last thing.
pub(crate) fn cut_block(text: &[u8], label: &str, added_newline: bool) -> Option<Vec<u8>> {
    let range = find_block(text, label)?;
    let mut start = range.start;
    if added_newline && range.end == text.len() && start > 0 && text[start - 1] == b'\n' {
        start -= 1;
    }
    let mut out = text[..start].to_vec();
    out.extend_from_slice(&text[range.end..]);
    Some(out)
}

/// Takes block `label` out of `path`, keeping the file's mode and owner; deletes the file
/// when `created_file` and nothing else is left. A missing file or block is nothing to do.
pub fn remove_block(
    path: &Path,
    label: &str,
    created_file: bool,
    added_newline: bool,
) -> Result<(), String> {
    let Some(meta) = target(path, "block")? else {
        return Ok(());
    };
    let text = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let Some(rest) = cut_block(&text, label, added_newline) else {
        return Ok(());
    };
    if created_file && rest.iter().all(u8::is_ascii_whitespace) {
        return fs::remove_file(path).map_err(|e| format!("cannot delete {}: {e}", path.display()));
    }
    write(
        path,
        &rest,
        meta.mode() & 0o7777,
        Some((meta.uid(), meta.gid())),
    )
    .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Puts the original of a replaced file back from `backup`, with its mode and owner, then
/// deletes the backup. A missing backup is an error (the original would be lost).
pub fn restore(path: &Path, backup: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), String> {
    target(path, "file")?;
    let bytes = fs::read(backup).map_err(|e| {
        format!(
            "cannot read the backup {} of {}: {e}",
            backup.display(),
            path.display()
        )
    })?;
    write(path, &bytes, mode, Some((uid, gid)))
        .map_err(|e| format!("cannot restore {}: {e}", path.display()))?;
    let _ = fs::remove_file(backup);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_directory_anywhere_below_the_home_is_refused() {
        let root = tempfile::tempdir().expect("test");
        let home = root.path().join("home");
        fs::create_dir_all(home.join(".config/deep")).expect("test");
        fs::create_dir_all(root.path().join("elsewhere")).expect("test");
        std::os::unix::fs::symlink(
            root.path().join("elsewhere"),
            home.join(".config/deep/link"),
        )
        .expect("test");
        let err = refuse_symlinked_parents(&home.join(".config/deep/link/tool.conf"), &home)
            .expect_err("a link three levels down");
        assert!(err.contains("deep/link is a symlink"), "{err}");
        assert!(refuse_symlinked_parents(&home.join(".config/deep/new/x.conf"), &home).is_ok());
        assert!(refuse_symlinked_parents(&home.join(".config/x.conf"), &home).is_ok());
        assert!(refuse_symlinked_parents(&root.path().join("elsewhere/x"), &home).is_err());
    }

    #[test]
    fn a_block_is_appended_replaced_and_cut_exactly() {
        let user = b"alias ll='ls -l'\nexport A=1";
        let (with, newline) = upsert_block(user, "tool", "eval one");
        assert!(newline);
        assert_eq!(
            String::from_utf8_lossy(&with),
            "alias ll='ls -l'\nexport A=1\n# BEGIN extension-manager tool\neval one\n# END extension-manager tool\n"
        );
        let mut edited = with.clone();
        edited.extend_from_slice(b"later line\n");
        let (again, n2) = upsert_block(&edited, "tool", "eval two\n");
        assert!(!n2);
        assert_eq!(
            String::from_utf8_lossy(&again),
            "alias ll='ls -l'\nexport A=1\n# BEGIN extension-manager tool\neval two\n# END extension-manager tool\nlater line\n"
        );
        assert_eq!(
            cut_block(&again, "tool", true).expect("test"),
            b"alias ll='ls -l'\nexport A=1\nlater line\n"
        );
        assert_eq!(cut_block(&with, "tool", true).expect("test"), user);
        assert_eq!(cut_block(&with, "other", true), None);
        // Another extension's (or id's) block is not ours.
        assert_eq!(find_block(&with, "too"), None);
    }

    #[test]
    fn accounts_are_read_from_the_files() {
        let dir = tempfile::tempdir().expect("test");
        let f = dir.path().join("passwd");
        fs::write(
            &f,
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1002::/home/alice:/bin/bash\n",
        )
        .expect("test");
        assert_eq!(lookup(&f, "alice"), Some(1001));
        assert_eq!(lookup(&f, "root"), Some(0));
        assert_eq!(lookup(&f, "bob"), None);
    }
}
