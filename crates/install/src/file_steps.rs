//! The file-level work of `file` and `block` install steps, and of their undo: atomic
//! writes that keep or set mode and owner, parent directories created one by one (so that
//! each can be recorded and removed again), user and group names looked up in
//! `/etc/passwd` and `/etc/group`, and managed blocks between marker lines.
//!
//! Nothing here follows a symlink at the target: every read, write and delete goes through
//! a [`Place`], the parent directory held open, with `O_NOFOLLOW` on the name; a new content
//! is renamed over the name (a rename replaces a link that appeared since, never writes
//! through it). For a user extension no directory below the home is followed either.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Creates the missing parent directories of `path` (mode 0755), outermost first, and
/// returns them deepest first: the order in which `remove` takes them away (when empty).
fn create_parents(path: &Path) -> Result<Vec<PathBuf>, String> {
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

/// Where a `file` or `block` step writes: the parent directory of `path`, held open, and
/// the file's name in it. Every operation is relative to that directory (`*at` calls with
/// `O_NOFOLLOW`), so a path swapped for a link after the directory was opened changes
/// nothing.
///
/// For a user extension the directory is opened from the home down, one component at a
/// time, none followed when it is a link (the home itself is the administrator's and may
/// be one): a user who plants `~/.config -> /etc` while the install or remove runs makes
/// the step fail, never makes root write or delete in /etc. There is no window between a
/// check and a use, as there is with [`unsafe_parent`] alone.
pub(crate) struct Place {
    dir: rustix::fd::OwnedFd,
    name: std::ffi::OsString,
    path: PathBuf,
}

/// How [`Place::open`] creates missing directories: given to `owner`, noted in `created`.
struct Mkdir<'a> {
    owner: Option<(u32, u32)>,
    created: &'a mut Vec<PathBuf>,
}

/// What is at a [`Place`] (`lstat`: a link is not followed).
pub(crate) struct Found {
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Place {
    /// The place of `path`, its missing parent directories created (mode 0755, given to
    /// `owner` when set) and returned deepest first (what `remove` takes away when empty).
    /// `home`: the home of a user extension's user, below which no link is followed.
    pub(crate) fn create(
        path: &Path,
        home: Option<&Path>,
        owner: Option<(u32, u32)>,
    ) -> Result<(Place, Vec<PathBuf>), String> {
        let mut created = Vec::new();
        let mkdir = Mkdir {
            owner,
            created: &mut created,
        };
        let place = Place::open(path, home, Some(mkdir))?
            .ok_or_else(|| format!("cannot create the directories of {}", path.display()))?;
        created.reverse();
        Ok((place, created))
    }

    /// The place of an existing `path` (to undo a step): `None` when a parent directory is
    /// gone (nothing there to undo).
    pub(crate) fn existing(path: &Path, home: Option<&Path>) -> Result<Option<Place>, String> {
        Place::open(path, home, None)
    }

    fn open(
        path: &Path,
        home: Option<&Path>,
        mut create: Option<Mkdir<'_>>,
    ) -> Result<Option<Place>, String> {
        use rustix::fs::{Mode, OFlags};
        use rustix::io::Errno;
        let name = path
            .file_name()
            .ok_or_else(|| format!("{} names no file", path.display()))?
            .to_owned();
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir_flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let cannot =
            |d: &Path, e: Errno| format!("cannot open {}: {}", d.display(), io::Error::from(e));
        let Some(home) = home else {
            // A system path: root's own, links followed as any root tool does.
            if let Some(mkdir) = create.as_mut() {
                mkdir
                    .created
                    .extend(create_parents(path)?.into_iter().rev());
            }
            return match rustix::fs::open(parent, dir_flags, Mode::empty()) {
                Ok(dir) => Ok(Some(Place {
                    dir,
                    name,
                    path: path.to_path_buf(),
                })),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(cannot(parent, e)),
            };
        };
        let rest = parent.strip_prefix(home).map_err(|_| {
            format!(
                "{} is not inside the home {}; nothing was written",
                path.display(),
                home.display()
            )
        })?;
        let mut dir =
            rustix::fs::open(home, dir_flags, Mode::empty()).map_err(|e| cannot(home, e))?;
        let mut at = home.to_path_buf();
        for part in rest.components() {
            let std::path::Component::Normal(part) = part else {
                return Err(format!(
                    "{} is not a plain path below the home",
                    path.display()
                ));
            };
            at.push(part);
            let next = match rustix::fs::openat(
                &dir,
                part,
                dir_flags | OFlags::NOFOLLOW,
                Mode::empty(),
            ) {
                Err(Errno::NOENT) => match create.as_mut() {
                    None => return Ok(None),
                    Some(Mkdir { owner, created }) => {
                        rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)).map_err(
                            |e| format!("cannot create {}: {}", at.display(), io::Error::from(e)),
                        )?;
                        created.push(at.clone());
                        let made = rustix::fs::openat(
                            &dir,
                            part,
                            dir_flags | OFlags::NOFOLLOW,
                            Mode::empty(),
                        )
                        .map_err(|e| cannot(&at, e))?;
                        if let Some((uid, gid)) = *owner {
                            std::os::unix::fs::fchown(&made, Some(uid), Some(gid)).map_err(
                                |e| format!("cannot give {} to uid {uid}: {e}", at.display()),
                            )?;
                        }
                        made
                    }
                },
                // O_NOFOLLOW with O_DIRECTORY: a link is ENOTDIR (or ELOOP), as is a file.
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let link =
                        rustix::fs::statat(&dir, part, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|st| {
                                rustix::fs::FileType::from_raw_mode(st.st_mode)
                                    == rustix::fs::FileType::Symlink
                            });
                    return Err(match link {
                        true => format!(
                            "{} is a symlink inside the home of its user; a user extension never writes through one (nothing was written) \
                             (hint: replace the link by a directory)",
                            at.display()
                        ),
                        false => {
                            format!("{} is not a directory; nothing was written", at.display())
                        }
                    });
                }
                Err(e) => return Err(cannot(&at, e)),
                Ok(next) => next,
            };
            dir = next;
        }
        Ok(Some(Place {
            dir,
            name,
            path: path.to_path_buf(),
        }))
    }

    /// What is there now, without following a link: `None` when nothing; a symlink or a
    /// directory is an error that says why nothing was written (`what`: the step's kind).
    pub(crate) fn target(&self, what: &str) -> Result<Option<Found>, String> {
        use rustix::fs::{AtFlags, FileType};
        let stat = match rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "cannot inspect {}: {}",
                    self.path.display(),
                    io::Error::from(e)
                ));
            }
            Ok(stat) => stat,
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => Err(format!(
                "{} is a symlink; a {what} step never writes through one (nothing was written) \
                 (hint: point the step at the real file)",
                self.path.display()
            )),
            FileType::RegularFile => Ok(Some(Found {
                mode: stat.st_mode & 0o7777,
                uid: stat.st_uid,
                gid: stat.st_gid,
            })),
            _ => Err(format!(
                "{} exists and is not a regular file; nothing was written",
                self.path.display()
            )),
        }
    }

    /// The file's bytes (a link is not followed: an error).
    pub(crate) fn read(&self) -> Result<Vec<u8>, String> {
        use rustix::fs::{Mode, OFlags};
        use std::io::Read;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut bytes = Vec::new();
        rustix::fs::openat(&self.dir, &self.name, flags, Mode::empty())
            .map_err(io::Error::from)
            .and_then(|fd| File::from(fd).read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        Ok(bytes)
    }

    /// Writes `bytes` atomically: a new temporary file in the directory with `mode` (and
    /// `owner` = (uid, gid) when given), fsynced, renamed over the name, then the directory
    /// fsynced. A crash leaves the old file or the new one.
    pub(crate) fn write(
        &self,
        bytes: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), String> {
        use rustix::fs::{Mode, OFlags};
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".{}.{n}.tmp", std::process::id()));
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let result = (|| -> io::Result<()> {
            let fd = rustix::fs::openat(&self.dir, &tmp, flags, Mode::from_raw_mode(0o600))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::fchown(&fd, Some(uid), Some(gid))?;
            }
            // After the chown: a chown clears setuid/setgid bits.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut file = File::from(fd);
            file.write_all(bytes)?;
            file.sync_all()?;
            rustix::fs::renameat(&self.dir, &tmp, &self.dir, &self.name)?;
            rustix::fs::fsync(&self.dir)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.dir, &tmp, rustix::fs::AtFlags::empty());
        }
        result.map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// Deletes the file (a link is deleted itself, nothing behind it); gone already is fine.
    pub(crate) fn remove_file(&self) -> Result<(), String> {
        self.unlink(rustix::fs::AtFlags::empty())
    }

    /// Deletes the directory when it is empty (`rmdir`: not empty, gone or not a
    /// directory leaves it as it is).
    pub(crate) fn remove_empty_dir(&self) {
        let _ = rustix::fs::unlinkat(&self.dir, &self.name, rustix::fs::AtFlags::REMOVEDIR);
    }

    fn unlink(&self, flags: rustix::fs::AtFlags) -> Result<(), String> {
        match rustix::fs::unlinkat(&self.dir, &self.name, flags) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(format!(
                "cannot delete {}: {}",
                self.path.display(),
                io::Error::from(e)
            )),
        }
    }
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
/// `home`: a user extension's (see [`Place`]).
pub fn remove_block(
    path: &Path,
    home: Option<&Path>,
    label: &str,
    created_file: bool,
    added_newline: bool,
) -> Result<(), String> {
    let Some(place) = Place::existing(path, home)? else {
        return Ok(());
    };
    let Some(found) = place.target("block")? else {
        return Ok(());
    };
    let text = place.read()?;
    let Some(rest) = cut_block(&text, label, added_newline) else {
        return Ok(());
    };
    if created_file && rest.iter().all(u8::is_ascii_whitespace) {
        return place.remove_file();
    }
    place.write(&rest, found.mode, Some((found.uid, found.gid)))
}

/// Puts the original of a replaced file back from `backup`, with its mode and owner, then
/// deletes the backup. A missing backup is an error (the original would be lost).
pub fn restore(
    path: &Path,
    home: Option<&Path>,
    backup: &Path,
    (mode, uid, gid): (u32, u32, u32),
) -> Result<(), String> {
    let bytes = fs::read(backup).map_err(|e| {
        format!(
            "cannot read the backup {} of {}: {e}",
            backup.display(),
            path.display()
        )
    })?;
    let (place, _) = Place::create(path, home, Some((uid, gid)))?;
    place.target("file")?;
    place
        .write(&bytes, mode, Some((uid, gid)))
        .map_err(|e| format!("cannot restore: {e}"))?;
    let _ = fs::remove_file(backup);
    Ok(())
}

/// Deletes a file of a user extension (below `home`, no link followed: see [`Place`]); a
/// directory only when it is empty. Gone already is fine.
pub fn remove_beneath(path: &Path, home: &Path, dir: bool) -> Result<(), String> {
    match Place::existing(path, Some(home))? {
        None => Ok(()),
        Some(place) if dir => {
            place.remove_empty_dir();
            Ok(())
        }
        Some(place) => place.remove_file(),
    }
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
        let open = |p: &str| Place::create(&home.join(p), Some(&home), None).map(|(_, c)| c);
        let err = open(".config/deep/link/tool.conf").expect_err("a link three levels down");
        assert!(err.contains("deep/link is a symlink"), "{err}");
        assert!(
            open(".config/deep/link/new/x.conf").is_err(),
            "nothing created through it"
        );
        assert!(!root.path().join("elsewhere/new").exists());
        assert_eq!(
            open(".config/deep/new/x.conf"),
            Ok(vec![home.join(".config/deep/new")])
        );
        assert_eq!(open(".config/x.conf"), Ok(vec![]));
        assert!(Place::create(&root.path().join("elsewhere/x"), Some(&home), None).is_err());
        // The home itself is the administrator's: a link there is followed.
        std::os::unix::fs::symlink(&home, root.path().join("home-link")).expect("test");
        let linked = root.path().join("home-link");
        assert!(Place::create(&linked.join(".config/y.conf"), Some(&linked), None).is_ok());
    }

    /// The race `unsafe_parent` alone leaves open: the directory is swapped for a link
    /// after it was checked. Through a [`Place`] the write still lands in the directory
    /// that was opened, never behind the link; a read or a block removal likewise.
    #[test]
    fn a_directory_swapped_for_a_link_after_opening_is_never_written_through() {
        let root = tempfile::tempdir().expect("test");
        let home = root.path().join("home");
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir_all(home.join(".config/tool")).expect("test");
        fs::create_dir_all(&elsewhere).expect("test");
        fs::write(elsewhere.join("tool.conf"), "root's\n").expect("test");
        let path = home.join(".config/tool/tool.conf");
        let (place, _) = Place::create(&path, Some(&home), None).expect("opens");
        fs::rename(home.join(".config/tool"), home.join(".config/moved")).expect("test");
        std::os::unix::fs::symlink(&elsewhere, home.join(".config/tool")).expect("test");
        place.write(b"ours\n", 0o644, None).expect("writes");
        assert_eq!(
            fs::read_to_string(elsewhere.join("tool.conf")).expect("test"),
            "root's\n"
        );
        assert_eq!(
            fs::read_to_string(home.join(".config/moved/tool.conf")).expect("test"),
            "ours\n"
        );
        // Opened after the swap: refused, and a remove changes nothing behind the link.
        assert!(Place::existing(&path, Some(&home)).is_err());
        assert!(remove_beneath(&path, &home, false).is_err());
        assert!(remove_block(&path, Some(&home), "tool", true, false).is_err());
        assert!(elsewhere.join("tool.conf").exists());
        // A link at the name itself is refused by target() and never read through.
        std::os::unix::fs::symlink(elsewhere.join("tool.conf"), home.join(".config/moved/l"))
            .expect("test");
        let (link, _) =
            Place::create(&home.join(".config/moved/l"), Some(&home), None).expect("opens");
        assert!(link.target("file").is_err() && link.read().is_err());
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
