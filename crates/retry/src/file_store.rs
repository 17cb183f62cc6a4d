//! The stores that share state between the processes of one host: [`FileStore`] (circuit
//! records) and [`FileBudgetStore`] (retry budget balances). Both are one small JSON file
//! per key under a directory, over one helper, [`JsonFiles`]:
//!
//! - `<stem>.json` holds the record, `<stem>.lock` is `flock`ed around every read-change-
//!   write, so that no other process or thread changes the record in between;
//! - the stem is the key with every byte outside `[A-Za-z0-9._-]` percent-encoded (and a
//!   `_` before a leading `.`), so distinct keys never share a file and no key escapes the
//!   directory;
//! - a write goes to a temporary file in the directory, mode 0600, fsynced and renamed over
//!   the record: a crash never leaves half a record, and rename replaces a symbolic link
//!   itself, never what it points to;
//! - a record or lock file that is a symbolic link is refused (`ELOOP`): the callers then
//!   let calls through rather than fail an install on their bookkeeping;
//! - a record that does not parse counts as the default record (closed circuit, full
//!   bucket), with a warning, and is rewritten by the next change.
//!
//! Behind the `file-store` feature: serde, serde_json and tempfile are built only for the
//! crates that share state between processes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::budget::{BudgetRecord, BudgetStore};
use crate::circuit::{CircuitRecord, CircuitStore};

/// One JSON record per key under `dir`: see the module doc.
#[derive(Clone, Debug)]
struct JsonFiles {
    dir: PathBuf,
    /// What a record is, for the warning about one that does not parse.
    what: &'static str,
}

impl JsonFiles {
    fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_stem(key)))
    }

    fn keys(&self) -> io::Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut keys: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                name.strip_suffix(".json").map(key_of)
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Takes the lock of `key`; closing the returned file releases it.
    fn lock(&self, key: &str) -> io::Result<File> {
        fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.dir.join(format!("{}.lock", file_stem(key))))?;
        file.lock()?;
        Ok(file)
    }

    /// Reads the record of `key` (the lock held): the default when there is none or it
    /// does not parse.
    fn read<R: DeserializeOwned + Default>(&self, key: &str) -> io::Result<R> {
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.path_of(key))
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(R::default()),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(key, "unreadable {}, starting afresh: {e}", self.what);
            R::default()
        }))
    }

    fn load<R: DeserializeOwned + Default>(&self, key: &str) -> io::Result<R> {
        let _guard = self.lock(key)?;
        self.read(key)
    }

    fn update<R>(&self, key: &str, change: &mut dyn FnMut(&mut R)) -> io::Result<R>
    where
        R: Serialize + DeserializeOwned + Default + Clone + PartialEq,
    {
        let _guard = self.lock(key)?;
        let mut record: R = self.read(key)?;
        let before = record.clone();
        change(&mut record);
        if record != before {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o600))?;
            serde_json::to_writer_pretty(&mut tmp, &record).map_err(io::Error::other)?;
            tmp.write_all(b"\n")?;
            tmp.as_file().sync_all()?;
            tmp.persist(self.path_of(key)).map_err(|e| e.error)?;
        }
        Ok(record)
        // `_guard` drops here: closing the file releases the lock.
    }
}

/// The file stem of `key`: every byte outside `[A-Za-z0-9._-]` percent-encoded, and a `_`
/// before an empty stem or one that starts with `.`.
pub(crate) fn file_stem(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The key whose [`file_stem`] is `stem`.
fn key_of(stem: &str) -> String {
    let stem = match stem.strip_prefix('_') {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => rest,
        _ => stem,
    };
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match stem.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
            Some(Ok(b)) if bytes[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Circuit records, one file per key under a directory, so that concurrent processes on
/// one host share the circuit (see the module doc for the files and their safety).
#[derive(Clone, Debug)]
pub struct FileStore {
    files: JsonFiles,
}

impl FileStore {
    /// A store in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            files: JsonFiles {
                dir: dir.into(),
                what: "circuit record",
            },
        }
    }

    /// The directory of the records.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The record file of `key`: the key with every byte outside `[A-Za-z0-9._-]`
    /// percent-encoded, so that distinct keys never share a file.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.files.path_of(key)
    }

    /// The keys that have a record in the directory, sorted (none when it does not
    /// exist): for listing circuits (`extension-manager doctor`).
    pub fn keys(&self) -> io::Result<Vec<String>> {
        self.files.keys()
    }
}

impl CircuitStore for FileStore {
    fn load(&self, key: &str) -> io::Result<CircuitRecord> {
        self.files.load(key)
    }

    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut CircuitRecord),
    ) -> io::Result<CircuitRecord> {
        self.files.update(key, change)
    }
}

/// Retry budget balances, one file per key under a directory, named like the circuit
/// breaker's [`FileStore`] (see the module doc for the files and their safety).
#[derive(Clone, Debug)]
pub struct FileBudgetStore {
    files: JsonFiles,
}

impl FileBudgetStore {
    /// A store in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileBudgetStore {
            files: JsonFiles {
                dir: dir.into(),
                what: "retry budget record",
            },
        }
    }

    /// The directory of the records.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The record file of `key`.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.files.path_of(key)
    }
}

impl BudgetStore for FileBudgetStore {
    fn update(
        &self,
        key: &str,
        change: &mut dyn FnMut(&mut BudgetRecord),
    ) -> io::Result<BudgetRecord> {
        self.files.update(key, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_distinct_safe_files() {
        assert_eq!(file_stem("a/b"), "a%2Fb");
        assert_eq!(file_stem("a%2Fb"), "a%252Fb");
        assert_eq!(file_stem(".."), "_..");
        assert_eq!(file_stem(""), "_");
        for key in [
            "127.0.0.1:8080",
            "a/b",
            "a%2Fb",
            "..",
            ".x",
            "npm-default-registry",
        ] {
            assert_eq!(key_of(&file_stem(key)), key);
        }
    }

    #[test]
    fn circuit_records_get_the_budget_hardening_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("circuits"));
        let written = store
            .update("127.0.0.1:9", &mut |r| r.failures = 2)
            .expect("update");
        assert_eq!(written.failures, 2);
        let path = store.path_of("127.0.0.1:9");
        let mode = fs::metadata(&path).expect("record").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a record is private");
        let lock = store.dir().join("127.0.0.1%3A9.lock");
        let mode = fs::metadata(&lock).expect("lock").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a lock is private");

        // A symlinked record is refused and its target left alone.
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"{\"failures\":9}\n").expect("write");
        fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let err = store
            .update("127.0.0.1:9", &mut |r| r.failures = 0)
            .expect_err("symlink refused");
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        assert_eq!(fs::read(&target).expect("read"), b"{\"failures\":9}\n");
    }

    #[test]
    fn an_unchanged_record_is_not_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileBudgetStore::new(dir.path());
        store.update("k", &mut |_| {}).expect("update");
        assert!(
            !store.path_of("k").exists(),
            "nothing changed, nothing written"
        );
        assert_eq!(
            fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "only the lock file, no temporary file left behind"
        );
    }
}
