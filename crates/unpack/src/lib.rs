//! Unpacks tar, tar.gz, tar.xz and zip archives in-process, as safely as an installer
//! running as root needs: nothing lands outside the target directory, nothing the unpack
//! did not create is overwritten, and the exact paths it created are returned for undo.
//!
//! Why not `tar -xf` / `unzip -o`: run as root, they keep the archive's owners, setuid and
//! setgid bits and device nodes, and they follow a symlink that an earlier archive left in
//! the target (`etcl -> /etc`, then `etcl/profile.d/zz.sh` lands in `/etc`).
//!
//! What this crate does instead:
//! - [`plan`] reads the whole archive once (nothing is written) and refuses it, naming the
//!   entry, when any entry is an absolute path, has a `..` component, is a device node,
//!   FIFO or socket, is a symlink with an absolute target or one that resolves outside the
//!   root (resolved lexically, through the archive's own symlinks), is a hard link to
//!   anything but an earlier file of the archive, or goes over the [`Limits`]. It then
//!   walks the target with `lstat` only: a symlink already in the target is never followed,
//!   a file already at a path the archive holds is never overwritten (both refuse), and
//!   only real directories are merged into. The [`Plan`] names what will be created and
//!   the private temporary directory it will use, so a caller can record both first.
//! - [`Plan::unpack`] extracts into that temporary directory (mode 0700, beside a new
//!   target or inside an existing one, so on the same filesystem), then moves each entry into place with a rename that never
//!   replaces (`renameat2(RENAME_NOREPLACE)`). On any failure it removes what it moved and
//!   the temporary directory, leaving the target as it was.
//! - Owners are not kept (files belong to the running user), and modes are not either:
//!   directories get 0755, files 0755 when the archive gives them any executable bit and
//!   0644 otherwise (no setuid, setgid or sticky bit, nothing group- or world-writable).
//!   Modification times are not kept either.
//!
//! Not for: creating archives, or unpacking archives that need what is refused above
//! (device nodes, links out): those are not installable tooling.
//!
//! ```no_run
//! let plan = em_unpack::plan(
//!     "/opt/tool/tool.tar.gz".as_ref(),
//!     "/opt/tool".as_ref(),
//!     em_unpack::Limits::default(),
//! )?;
//! // Record plan.temp_dir() and plan.creates() for undo, then:
//! let created = plan.unpack()?;
//! # Ok::<(), em_unpack::Error>(())
//! ```

mod format;
mod tree;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use format::Entry;
pub use format::Format;
use tree::{Kind, Node, Tree};

/// Bounds against archive bombs: an archive over either is refused before anything is
/// written, or, if it lied about its sizes, as soon as it goes over (and then removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of file data an archive may unpack to.
    pub max_bytes: u64,
    /// The most entries (files, directories, links) an archive may hold.
    pub max_entries: u64,
}

impl Limits {
    /// The defaults: 4 GiB and 200 000 entries, well above any tool's release archive.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 4 << 30,
        max_entries: 200_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why an archive was not unpacked. Nothing is left behind in any case.
#[derive(Debug)]
pub enum Error {
    /// An entry this crate will not unpack (it would escape, or is a device, ...).
    Refused {
        /// The archive.
        archive: PathBuf,
        /// The entry's name as the archive spells it.
        entry: String,
        /// What is wrong with it, e.g. "has a `..` component".
        reason: String,
    },
    /// The target already has something at a path the archive holds.
    Conflict {
        /// The path in the target.
        path: PathBuf,
        /// What is there.
        reason: String,
    },
    /// The archive goes over a [`Limits`] bound.
    TooLarge {
        /// The archive.
        archive: PathBuf,
        /// Which bound, and by how much.
        what: String,
    },
    /// Not an archive of a supported format, or a corrupt one.
    Unreadable {
        /// The archive.
        archive: PathBuf,
        /// Why.
        reason: String,
    },
    /// A filesystem operation failed.
    Io {
        /// The path it failed on.
        path: PathBuf,
        /// What was being done ("create", "rename", ...).
        action: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl Error {
    fn io(path: &Path, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::Refused { .. } => {
                "the archive is unsafe to unpack as it is; use another release, or tell its publisher"
            }
            Error::Conflict { .. } => {
                "nothing was unpacked; remove that path (or the extension that put it there) and install again"
            }
            Error::TooLarge { .. } => {
                "if the archive is trusted, raise max_bytes or max_entries under [unpack] in the configuration"
            }
            Error::Unreadable { .. } => {
                "the download may be incomplete or not an archive; check its URL and sha256"
            }
            Error::Io { .. } => "check the permissions and free space of the target directory",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused {
                archive,
                entry,
                reason,
            } => write!(
                f,
                "refusing to unpack {}: entry `{entry}` {reason}",
                archive.display()
            ),
            Error::Conflict { path, reason } => {
                write!(f, "refusing to unpack: {} {reason}", path.display())
            }
            Error::TooLarge { archive, what } => {
                write!(f, "refusing to unpack {}: {what}", archive.display())
            }
            Error::Unreadable { archive, reason } => write!(f, "{} {reason}", archive.display()),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What unpacking an archive into a target will do; made by [`plan`], carried out by
/// [`Plan::unpack`].
#[derive(Debug)]
pub struct Plan {
    archive: PathBuf,
    target: PathBuf,
    temp: PathBuf,
    format: Format,
    limits: Limits,
    tree: Tree,
    creates: Vec<PathBuf>,
}

/// Reads `archive` and checks it against `limits` and against what `target` holds now;
/// writes nothing. See the crate doc for what is refused.
pub fn plan(archive: &Path, target: &Path, limits: Limits) -> Result<Plan, Error> {
    let format = Format::detect(archive)?;
    let mut counter = Counter::new(archive, limits);
    let mut tree = Tree::default();
    format::walk(archive, format, &mut |entry: Entry<'_>| {
        counter.entry(entry.size)?;
        add(&mut tree, archive, &entry)?;
        Ok(())
    })?;
    check_links(&tree, archive)?;
    let creates = creates(target, &tree)?;
    let suffix = format!("em-unpack-{:016x}", fastrand::u64(..));
    // Inside an existing target, so that every rename stays on its filesystem even when the
    // target is a mount point; beside a new one, which is then renamed whole.
    let temp = if creates.first().map(PathBuf::as_path) == Some(target) {
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
        let (Some(parent), Some(name)) = (parent, target.file_name()) else {
            return Err(Error::Conflict {
                path: target.to_path_buf(),
                reason: "cannot be unpacked into (it has no parent directory)".to_string(),
            });
        };
        parent.join(format!(".{}.{suffix}", name.to_string_lossy()))
    } else {
        target.join(format!(".{suffix}"))
    };
    Ok(Plan {
        archive: archive.to_path_buf(),
        target: target.to_path_buf(),
        temp,
        format,
        limits,
        tree,
        creates,
    })
}

impl Plan {
    /// The archive's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The private directory the archive is extracted into before its entries are moved
    /// into place: beside a target that does not exist yet, inside one that does (so on
    /// the same filesystem as the entries' places). Removed by [`Plan::unpack`] in every outcome, unless
    /// the process is killed.
    pub fn temp_dir(&self) -> &Path {
        &self.temp
    }

    /// The paths that unpacking will create: the target itself when it does not exist,
    /// else the top-most paths the target lacks (a directory created is one path: removing
    /// it removes all it holds; a directory merged into is not listed).
    pub fn creates(&self) -> &[PathBuf] {
        &self.creates
    }

    /// Extracts into [`Plan::temp_dir`] and moves the entries into place. Returns the paths
    /// created, in the sense of [`Plan::creates`]. On failure nothing is left behind.
    pub fn unpack(self) -> Result<Vec<PathBuf>, Error> {
        if let Some(parent) = self.temp.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.temp)
            .map_err(|e| Error::io(&self.temp, "create", e))?;
        let mut created = Vec::new();
        let result = self
            .extract()
            .and_then(|()| self.place(&mut created))
            .and_then(|()| match fs::remove_dir_all(&self.temp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(Error::io(&self.temp, "remove", e))
                }
                _ => Ok(()),
            });
        match result {
            Ok(()) => Ok(created),
            Err(e) => {
                for path in created.iter().rev() {
                    let _ = remove_path(path);
                }
                let _ = fs::remove_dir_all(&self.temp);
                Err(e)
            }
        }
    }

    /// The second read of the archive, now writing into the temporary directory. The same
    /// checks run again, and the tree must come out as planned (the file did not change).
    fn extract(&self) -> Result<(), Error> {
        let archive = self.archive.as_path();
        let mut counter = Counter::new(archive, self.limits);
        let mut tree = Tree::default();
        format::walk(archive, self.format, &mut |mut entry: Entry<'_>| {
            counter.entry(entry.size)?;
            let Some(placed) = add(&mut tree, archive, &entry)? else {
                return Ok(());
            };
            let mut dir = self.temp.clone();
            for part in placed.at.parent().into_iter().flat_map(Path::components) {
                dir.push(part);
                make_dir(&dir)?;
            }
            let dest = self.temp.join(&placed.at);
            match (&entry.kind, &placed.link_to) {
                (_, Some(source)) => {
                    let source = self.temp.join(source);
                    fs::hard_link(&source, &dest).map_err(|e| Error::io(&dest, "link", e))?;
                }
                (Kind::Dir, _) => make_dir(&dest)?,
                (Kind::Symlink(target), _) => std::os::unix::fs::symlink(target, &dest)
                    .map_err(|e| Error::io(&dest, "create symlink", e))?,
                (Kind::File | Kind::HardLink(_), _) => {
                    let mode = if entry.is_executable { 0o755 } else { 0o644 };
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&dest)
                        .map_err(|e| Error::io(&dest, "create", e))?;
                    counter.copy(&mut entry.data, &mut file, &dest)?;
                    file.set_permissions(fs::Permissions::from_mode(mode))
                        .map_err(|e| Error::io(&dest, "set the mode of", e))?;
                }
            }
            Ok(())
        })?;
        check_links(&tree, archive)?;
        if tree != self.tree {
            return Err(Error::Unreadable {
                archive: archive.to_path_buf(),
                reason: "changed between its listing and its unpacking".to_string(),
            });
        }
        Ok(())
    }

    /// Moves the extracted tree into the target, recording each path created.
    fn place(&self, created: &mut Vec<PathBuf>) -> Result<(), Error> {
        match fs::symlink_metadata(&self.target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                rename_new(&self.temp, &self.target)?;
                created.push(self.target.clone());
                fs::set_permissions(&self.target, fs::Permissions::from_mode(0o755))
                    .map_err(|e| Error::io(&self.target, "set the mode of", e))?;
                return Ok(());
            }
            Err(e) => return Err(Error::io(&self.target, "inspect", e)),
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Err(conflict(&self.target, Path::new(""), &self.tree)),
        }
        for (rel, _) in self
            .tree
            .nodes
            .iter()
            .filter(|(p, _)| p.components().count() == 1)
        {
            self.place_one(rel, created)?;
        }
        Ok(())
    }

    fn place_one(&self, rel: &Path, created: &mut Vec<PathBuf>) -> Result<(), Error> {
        let src = self.temp.join(rel);
        let dst = self.target.join(rel);
        match fs::symlink_metadata(&dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                rename_new(&src, &dst)?;
                created.push(dst);
                Ok(())
            }
            Err(e) => Err(Error::io(&dst, "inspect", e)),
            Ok(m) if m.file_type().is_dir() && self.tree.nodes.get(rel) == Some(&Node::Dir) => {
                let children = fs::read_dir(&src).map_err(|e| Error::io(&src, "read", e))?;
                for child in children {
                    let child = child.map_err(|e| Error::io(&src, "read", e))?;
                    self.place_one(&rel.join(child.file_name()), created)?;
                }
                Ok(())
            }
            Ok(_) => Err(conflict(&dst, rel, &self.tree)),
        }
    }
}

/// Counts entries and bytes against the limits.
struct Counter<'a> {
    archive: &'a Path,
    limits: Limits,
    entries: u64,
    declared: u64,
    written: u64,
}

impl<'a> Counter<'a> {
    fn new(archive: &'a Path, limits: Limits) -> Self {
        Counter {
            archive,
            limits,
            entries: 0,
            declared: 0,
            written: 0,
        }
    }

    fn entry(&mut self, size: u64) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.too_large(format!(
                "it holds more than {} entries (the limit)",
                self.limits.max_entries
            )));
        }
        self.declared = self.declared.saturating_add(size);
        if self.declared > self.limits.max_bytes {
            return Err(self.too_large(format!(
                "it unpacks to more than {} bytes (the limit)",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }

    /// Copies an entry's data, stopping with an error as soon as the total goes over the
    /// limit (a zip can declare less than its data holds).
    fn copy(&mut self, data: &mut dyn Read, out: &mut fs::File, dest: &Path) -> Result<(), Error> {
        let room = self.limits.max_bytes - self.written.min(self.limits.max_bytes);
        let copied = io::copy(&mut data.take(room + 1), out).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
                Error::Unreadable {
                    archive: self.archive.to_path_buf(),
                    reason: format!("cannot be read: {e}"),
                }
            } else {
                Error::io(dest, "write", e)
            }
        })?;
        self.written += copied;
        if copied > room {
            return Err(self.too_large(format!(
                "it unpacks to more than {} bytes (the limit)",
                self.limits.max_bytes
            )));
        }
        out.flush().map_err(|e| Error::io(dest, "write", e))
    }

    fn too_large(&self, what: String) -> Error {
        Error::TooLarge {
            archive: self.archive.to_path_buf(),
            what,
        }
    }
}

fn add(tree: &mut Tree, archive: &Path, entry: &Entry<'_>) -> Result<Option<tree::Placed>, Error> {
    tree.add(&entry.path, &entry.kind)
        .map_err(|reason| Error::Refused {
            archive: archive.to_path_buf(),
            entry: entry.name.clone(),
            reason,
        })
}

fn check_links(tree: &Tree, archive: &Path) -> Result<(), Error> {
    tree.finish().map_err(|(at, reason)| Error::Refused {
        archive: archive.to_path_buf(),
        entry: at.display().to_string(),
        reason,
    })
}

/// The top-most paths under `target` that unpacking `tree` creates; an error for any path
/// that is there already and is not a real directory merged into.
fn creates(target: &Path, tree: &Tree) -> Result<Vec<PathBuf>, Error> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![target.to_path_buf()]),
        Err(e) => return Err(Error::io(target, "inspect", e)),
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => return Err(conflict(target, Path::new(""), tree)),
    }
    let mut out = BTreeSet::new();
    for (rel, node) in &tree.nodes {
        if rel.ancestors().skip(1).any(|a| out.contains(a)) {
            continue;
        }
        match fs::symlink_metadata(target.join(rel)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                out.insert(rel.clone());
            }
            Err(e) => return Err(Error::io(&target.join(rel), "inspect", e)),
            Ok(m) if m.file_type().is_dir() && *node == Node::Dir => {}
            Ok(_) => return Err(conflict(&target.join(rel), rel, tree)),
        }
    }
    Ok(out.into_iter().map(|rel| target.join(rel)).collect())
}

/// The error for `path`, which exists and is in the way of `rel` of the tree.
fn conflict(path: &Path, rel: &Path, tree: &Tree) -> Error {
    let is_symlink = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let wants_dir = rel.as_os_str().is_empty() || tree.nodes.get(rel) == Some(&Node::Dir);
    let reason = if is_symlink {
        "is a symlink that this unpack did not create; it is neither followed nor replaced"
    } else if wants_dir {
        "already exists and is not a directory; it is not replaced"
    } else {
        "already exists and was not created by this unpack; it is not overwritten"
    };
    Error::Conflict {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn make_dir(path: &Path) -> Result<(), Error> {
    match fs::DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => {
            // The umask may have taken bits away: the mode is set, not requested.
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(path, "set the mode of", e))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_dir() => Ok(()),
            _ => Err(Error::io(path, "create", e)),
        },
        Err(e) => Err(Error::io(path, "create", e)),
    }
}

/// `rename(from, to)` that fails instead of replacing `to`. Falls back to a check then a
/// plain rename on filesystems without `RENAME_NOREPLACE`.
fn rename_new(from: &Path, to: &Path) -> Result<(), Error> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => Err(Error::Conflict {
            path: to.to_path_buf(),
            reason: "appeared while unpacking; it is not overwritten".to_string(),
        }),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(Error::Conflict {
                    path: to.to_path_buf(),
                    reason: "appeared while unpacking; it is not overwritten".to_string(),
                });
            }
            fs::rename(from, to).map_err(|e| Error::io(to, "move into place", e))
        }
        Err(e) => Err(Error::io(to, "move into place", e.into())),
    }
}

/// Deletes a file, a symlink or a directory tree (never following a symlink).
fn remove_path(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
