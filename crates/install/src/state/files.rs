//! How the state directory's files are written and read: atomically (temp file, fsync,
//! rename, directory fsync), private, never through a symlink, in directories we own.

use super::*;

/// Replaces `path` with `bytes` atomically: writes a temporary file in the same directory
/// (created 0755 when missing), fsyncs it, renames it over `path`, then fsyncs the
/// directory so that the rename itself survives a power cut. The file gets mode 0644: for
/// what others read (apt sources, profile.d scripts, `--report` and `--metrics` files);
/// the state directory's own files go through [`write_private`]. A symlink at `path` is
/// replaced, never followed.
///
/// Readers see the old content or the new one, never a mix. A crash before the rename
/// leaves a `.<name>.*.tmp` file beside `path` and `path` unchanged.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_modes(path, bytes, 0o644, 0o755)
}

/// [`write_atomically`] for the state directory's files: mode 0600, a missing directory
/// created 0700.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_modes(path, bytes, 0o600, 0o700)
}

pub(super) fn write_with_modes(
    path: &Path,
    bytes: &[u8],
    file_mode: u32,
    dir_mode: u32,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    // tempfile creates 0600; the caller says who else may read it.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(file_mode))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Refuses a state directory that someone else could write in: not a directory, owned by
/// neither us nor root, or writable by group or others.
pub(super) fn check_owned(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir)?;
    let me = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let unsafe_dir = |why: String| {
        io::Error::other(format!(
            "the state directory {} {why}; another user could plant files in it (a symlink \
             for `lock`, a forged state.json). Use a directory of your own with --state-dir \
             or EM_STATE_DIR",
            dir.display()
        ))
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory".into()));
    }
    if meta.uid() != 0 && Some(meta.uid()) != me {
        return Err(unsafe_dir(format!(
            "belongs to uid {}, not to us{}",
            meta.uid(),
            me.map(|u| format!(" (uid {u})")).unwrap_or_default()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "is writable by group or others (mode {mode:04o}); `chmod go-w {}` fixes that",
            dir.display()
        )));
    }
    Ok(())
}

/// Reads a whole file, refusing a symlink in its place (`O_NOFOLLOW`).
pub(super) fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

pub(super) fn path_component(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

pub(super) fn ends_in_torn_line(file: &File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Removes `.<name>.<random>.tmp` files that `write_atomically` left in `dir` when killed.
pub(super) fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
