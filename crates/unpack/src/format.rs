//! Which kind of archive a file is (by its first bytes, not its name), and a walk over its
//! entries that hands each one, with its data, to a visitor.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::tree::Kind;

/// The archive formats this crate unpacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A plain tar (ustar, GNU or pax).
    Tar,
    /// A gzip-compressed tar (`.tar.gz`, `.tgz`).
    TarGz,
    /// An xz-compressed tar (`.tar.xz`, `.txz`).
    TarXz,
    /// A zip archive.
    Zip,
}

impl Format {
    /// The format of `archive`, read from its magic bytes: gzip `1f 8b`, xz `fd 37 7a 58 5a
    /// 00`, zip `PK\3\4` (or `PK\5\6`, an empty one), tar `ustar` at offset 257.
    pub fn detect(archive: &Path) -> Result<Format, Error> {
        let mut file = open(archive)?;
        let mut head = [0u8; 512];
        let mut len = 0;
        while len < head.len() {
            match file.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(archive, "read", e)),
            }
        }
        let head = &head[..len];
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Format::TarGz)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Ok(Format::TarXz)
        } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Ok(Format::Zip)
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Ok(Format::Tar)
        } else {
            Err(Error::Unreadable {
                archive: archive.to_path_buf(),
                reason: "is not a tar, tar.gz, tar.xz or zip archive (by its first bytes)"
                    .to_string(),
            })
        }
    }
}

/// One entry of an archive, as the walk hands it over.
pub(crate) struct Entry<'r> {
    /// The entry's name as the archive spells it, for messages.
    pub name: String,
    pub path: PathBuf,
    pub kind: Kind,
    /// Whether any executable bit is set in the archive's mode.
    pub is_executable: bool,
    /// The size the archive declares for the data.
    pub size: u64,
    pub data: &'r mut dyn Read,
}

/// The visitor of [`walk`].
pub(crate) type Visit<'v> = dyn FnMut(Entry<'_>) -> Result<(), Error> + 'v;

/// Hands every entry of `archive` to `visit`, in archive order; stops at the first error.
/// Device nodes, FIFOs, sockets and other special entries are refused here.
pub(crate) fn walk(archive: &Path, format: Format, visit: &mut Visit<'_>) -> Result<(), Error> {
    let file = open(archive)?;
    match format {
        Format::Tar => walk_tar(archive, BufReader::new(file), visit),
        Format::TarGz => walk_tar(
            archive,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
            visit,
        ),
        Format::TarXz => walk_xz(archive, file, visit),
        Format::Zip => walk_zip(archive, file, visit),
    }
}

fn open(archive: &Path) -> Result<File, Error> {
    File::open(archive).map_err(|e| Error::io(archive, "open", e))
}

fn unreadable(archive: &Path, e: impl std::fmt::Display) -> Error {
    Error::Unreadable {
        archive: archive.to_path_buf(),
        reason: format!("cannot be read: {e}"),
    }
}

/// lzma-rs decodes xz into a writer, not as a reader: it runs on a thread that writes into
/// a pipe, and the tar walk reads the other end. When the walk stops early, the closed pipe
/// ends the decoder (a broken pipe, which is then no error).
fn walk_xz(archive: &Path, file: File, visit: &mut Visit<'_>) -> Result<(), Error> {
    let (reader, mut writer) = io::pipe().map_err(|e| Error::io(archive, "decompress", e))?;
    let decoder = std::thread::spawn(move || {
        let mut input = BufReader::new(file);
        lzma_rs::xz_decompress(&mut input, &mut writer)
    });
    let walked = walk_tar(archive, BufReader::new(reader), visit);
    let decoded = decoder
        .join()
        .unwrap_or_else(|_| Err(lzma_rs::error::Error::XzError("decoder panicked".into())));
    match decoded {
        Err(lzma_rs::error::Error::IoError(e)) if e.kind() == io::ErrorKind::BrokenPipe => walked,
        // The decoder's error says more than the truncated tar it left behind.
        Err(e) => Err(unreadable(archive, e)),
        Ok(()) => walked,
    }
}

fn walk_tar(archive: &Path, reader: impl Read, visit: &mut Visit<'_>) -> Result<(), Error> {
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| unreadable(archive, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| unreadable(archive, e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: &str| Error::Refused {
            archive: archive.to_path_buf(),
            entry: name.clone(),
            reason: reason.to_string(),
        };
        let path = entry
            .path()
            .map_err(|e| unreadable(archive, e))?
            .into_owned();
        let link = || -> Result<PathBuf, Error> {
            match entry.link_name() {
                Ok(Some(l)) => Ok(l.into_owned()),
                Ok(None) => Err(refuse("is a link without a target")),
                Err(e) => Err(unreadable(archive, e)),
            }
        };
        use tar::EntryType as T;
        let kind = match entry.header().entry_type() {
            T::Regular | T::Continuous => Kind::File,
            T::Directory => Kind::Dir,
            T::Symlink => Kind::Symlink(link()?),
            T::Link => Kind::HardLink(link()?),
            T::Char | T::Block => return Err(refuse("is a device node")),
            T::Fifo => return Err(refuse("is a FIFO")),
            other => {
                return Err(refuse(&format!(
                    "has an entry type this unpacker does not support ({:?})",
                    other
                )));
            }
        };
        let mode = entry.header().mode().map_err(|e| unreadable(archive, e))?;
        let size = entry.size();
        visit(Entry {
            name: name.clone(),
            path,
            kind,
            is_executable: mode & 0o111 != 0,
            size,
            data: &mut entry,
        })?;
    }
    Ok(())
}

/// The `st_mode` file types a zip entry can carry in its external attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// The longest symlink target read from a zip entry (Linux's PATH_MAX).
const MAX_LINK_TARGET: u64 = 4096;

fn walk_zip(archive: &Path, mut file: File, visit: &mut Visit<'_>) -> Result<(), Error> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(archive, "read", e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| unreadable(archive, e))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| unreadable(archive, e))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let refuse = |reason: &str| Error::Refused {
            archive: archive.to_path_buf(),
            entry: name.clone(),
            reason: reason.to_string(),
        };
        let mode = entry.unix_mode();
        let file_type = mode.map(|m| m & S_IFMT).unwrap_or(0);
        let kind = match file_type {
            S_IFLNK => {
                let mut target = Vec::new();
                (&mut entry)
                    .take(MAX_LINK_TARGET + 1)
                    .read_to_end(&mut target)
                    .map_err(|e| unreadable(archive, e))?;
                if target.len() as u64 > MAX_LINK_TARGET {
                    return Err(refuse("is a symlink with an overlong target"));
                }
                Kind::Symlink(PathBuf::from(OsString::from_vec(target)))
            }
            S_IFDIR => Kind::Dir,
            0 if entry.is_dir() => Kind::Dir,
            S_IFREG | 0 => Kind::File,
            _ => return Err(refuse("is a device node, FIFO or socket")),
        };
        let path = PathBuf::from(OsString::from_vec(entry.name_raw().to_vec()));
        let size = entry.size();
        visit(Entry {
            name: name.clone(),
            path,
            kind,
            is_executable: mode.is_some_and(|m| m & 0o111 != 0),
            size,
            data: &mut entry,
        })?;
    }
    Ok(())
}
