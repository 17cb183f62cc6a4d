//! Offline bundles: every payload of a locked set in one directory, and the sources that
//! make apt, pip, npm and downloads install from it with no network.
//!
//! `extension-manager bundle DIR` fills the directory from the lock (em-lock) with the
//! builders here; `install --offline --from DIR` opens it as [`OfflineSources`], which
//! checks every file against `bundle.toml` before anything runs and then hands each
//! adapter its offline configuration (an `APT_CONFIG`, a `file://` index, an npm cache).
//!
//! ## Layout
//!
//! ```text
//! DIR/bundle.toml                  format version, sha256 of the lock, the npm registry
//!                                  the cache was filled from, sha256 of every other file
//! DIR/apt/*.deb                    the locked .debs and their whole dependency closure
//! DIR/apt/Packages                 the index (`dpkg-deb -f` + Filename, Size, SHA256):
//!                                  `deb [trusted=yes] file:DIR/apt ./`
//! DIR/pypi/simple/NAME/index.html  PEP 503 pages, links `FILE#sha256=HEX`
//! DIR/pypi/simple/NAME/FILE        the locked wheels (dependencies included)
//! DIR/npm/cache/                   npm's own cache (cacache), filled by installing each
//!                                  locked package into a scratch prefix: packuments and
//!                                  tarballs of the whole dependency tree
//! DIR/npm/tarballs/*.tgz           the locked packages' tarballs (`npm pack`), checked
//!                                  against the lock's integrity
//! DIR/files/SHA256                 each download, named by its sha256
//! ```
//!
//! Why the apt closure is resolved against an empty dpkg status: the bundle is for a
//! fresh image whose installed packages are not this host's. With nothing installed
//! (`Dir::State::status` an empty file) `apt-get install --download-only` fetches every
//! dependency, so the bundle holds what a minimal base lacks whatever that base is; what
//! the target already has at a satisfying version is simply not unpacked there.
//!
//! What is not bundled: `run` steps that fetch from the network fail offline (that is the
//! manifest's business), pipx/cargo/gem/go steps are not locked and so not bundled, and
//! pip sdists would need their build backends (only what the lock names is fetched).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use em_exec::Cmd;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name, at the bundle's root.
pub const MANIFEST_FILE: &str = "bundle.toml";

/// The format version this engine writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// `bundle.toml`: what the bundle was made from and the sha256 of each of its files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The sha256 of the lock file the bundle was made from.
    pub lock_sha256: String,
    /// The npm registry the cache was filled from: npm's offline cache is keyed by URL,
    /// so the offline install must name the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm_registry: Option<String>,
    /// Every other file, by its path relative to the bundle (`/`-separated), and its sha256.
    pub files: BTreeMap<String, String>,
}

/// The directories of a bundle.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The bundle at `root` (made absolute: its paths go into apt and pip URLs).
    pub fn new(root: &Path) -> Result<Layout, String> {
        let root = std::path::absolute(root)
            .map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
        Ok(Layout { root })
    }
    /// The bundle's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The local APT repository.
    pub fn apt(&self) -> PathBuf {
        self.root.join("apt")
    }
    /// The PEP 503 index.
    pub fn pypi_simple(&self) -> PathBuf {
        self.root.join("pypi/simple")
    }
    /// npm's cache.
    pub fn npm_cache(&self) -> PathBuf {
        self.root.join("npm/cache")
    }
    /// The locked npm tarballs.
    pub fn npm_tarballs(&self) -> PathBuf {
        self.root.join("npm/tarballs")
    }
    /// The downloads, by sha256.
    pub fn files(&self) -> PathBuf {
        self.root.join("files")
    }
    /// `bundle.toml`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }
}

/// The sha256 of a file, in lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Writes `bytes` to `path` atomically (the state directory's writer: temp file, fsync,
/// rename, mode 0644).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::state::write_atomically(path, bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// A .deb of the bundle's APT repository, as its control file names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundledDeb {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// The sha256 of the file.
    pub sha256: String,
}

/// Downloads the .debs of `pins` (`name=version`) and their whole dependency closure into
/// `dir`, as for a machine with nothing installed (see the module documentation): an empty
/// dpkg status and private state, apt's own caches not touched, no lock taken (nothing is
/// installed). The lists are this host's.
pub async fn fetch_debs(apt_get: &Path, dir: &Path, pins: &[String]) -> Result<(), String> {
    if pins.is_empty() {
        return Ok(());
    }
    create_dir(&dir.join("partial"))?;
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let status = scratch.path().join("status");
    std::fs::write(&status, "").map_err(|e| format!("cannot write {}: {e}", status.display()))?;
    let option = |k: &str, v: &Path| format!("{k}={}", v.display());
    let mut cmd = Cmd::new(apt_get).args([
        "install",
        "--download-only",
        "--yes",
        "--no-install-recommends",
    ]);
    for o in [
        option("Dir::State::status", &status),
        option(
            "Dir::State::extended_states",
            &scratch.path().join("extended_states"),
        ),
        option("Dir::Cache::archives", dir),
        // Empty: apt keeps its package cache in memory, never in /var/cache/apt.
        "Dir::Cache::pkgcache=".to_string(),
        "Dir::Cache::srcpkgcache=".to_string(),
        "Debug::NoLocking=true".to_string(),
    ] {
        cmd = cmd.arg("-o").arg(o);
    }
    cmd = cmd.env("DEBIAN_FRONTEND", "noninteractive").args(pins);
    cmd.stdout().await?;
    // apt's own leftovers in the archives directory.
    let _ = std::fs::remove_dir_all(dir.join("partial"));
    let _ = std::fs::remove_file(dir.join("lock"));
    Ok(())
}

/// Writes `dir/Packages` over every .deb in `dir` (sorted by file name): each stanza is
/// the .deb's control file (`dpkg-deb -f`) plus `Filename`, `Size` and `SHA256`, which is
/// what apt needs of a flat `[trusted=yes]` repository. Returns what it indexed.
pub async fn write_apt_index(dpkg_deb: &Path, dir: &Path) -> Result<Vec<BundledDeb>, String> {
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    let mut index = String::new();
    let mut out = Vec::new();
    for deb in &debs {
        let control = Cmd::new(dpkg_deb).arg("-f").arg(deb).stdout().await?;
        let field = |key: &str| {
            control.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        let (Some(name), Some(version), Some(architecture)) =
            (field("Package"), field("Version"), field("Architecture"))
        else {
            return Err(format!(
                "{}: its control file lacks Package, Version or Architecture",
                deb.display()
            ));
        };
        let sha256 = sha256_file(deb)?;
        let size = std::fs::metadata(deb)
            .map_err(|e| format!("cannot read {}: {e}", deb.display()))?
            .len();
        let file_name = deb
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        index.push_str(control.trim_end());
        index.push_str(&format!(
            "\nFilename: ./{file_name}\nSize: {size}\nSHA256: {sha256}\n\n"
        ));
        out.push(BundledDeb {
            name,
            version,
            architecture,
            sha256,
        });
    }
    write_atomic(&dir.join("Packages"), index.as_bytes())?;
    Ok(out)
}

/// A pip distribution to bundle: the lock's name, version and sha256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipDist {
    /// The name as the index spells it.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// The sha256 of the file the lock chose.
    pub sha256: String,
}

/// Downloads each of `dists` (no dependencies: the lock lists them all) with `pip
/// download --require-hashes`, so pip itself takes only the locked file, into
/// `simple/NAME/`, and writes each project's PEP 503 page.
pub async fn fetch_wheels(
    python: &Path,
    index_url: Option<&str>,
    simple: &Path,
    dists: &[PipDist],
) -> Result<(), String> {
    let mut projects: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for d in dists {
        let scratch =
            tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let requirements = scratch.path().join("requirements.txt");
        std::fs::write(
            &requirements,
            format!("{}=={} --hash=sha256:{}\n", d.name, d.version, d.sha256),
        )
        .map_err(|e| format!("cannot write {}: {e}", requirements.display()))?;
        let into = scratch.path().join("dist");
        let mut cmd = Cmd::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--require-hashes",
                "--dest",
            ])
            .arg(&into)
            .arg("--requirement")
            .arg(&requirements);
        if let Some(url) = index_url {
            cmd = cmd.arg("--index-url").arg(url);
        }
        cmd.stdout().await?;
        let files: Vec<PathBuf> = std::fs::read_dir(&into)
            .map_err(|e| format!("cannot read {}: {e}", into.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        let [file] = files.as_slice() else {
            return Err(format!(
                "pip download of {}=={} left {} files, expected one",
                d.name,
                d.version,
                files.len()
            ));
        };
        let sha256 = sha256_file(file)?;
        if sha256 != d.sha256 {
            return Err(format!(
                "{}=={}: pip downloaded {} with sha256 {sha256}, the lock says {}",
                d.name,
                d.version,
                file.display(),
                d.sha256
            ));
        }
        let project = em_pip::normalize_name(&d.name);
        let dir = simple.join(&project);
        create_dir(&dir)?;
        let file_name = file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::copy(file, dir.join(&file_name))
            .map_err(|e| format!("cannot copy {} into {}: {e}", file.display(), dir.display()))?;
        projects
            .entry(project)
            .or_default()
            .push((file_name, sha256));
    }
    for (project, files) in &projects {
        write_atomic(
            &simple.join(project).join("index.html"),
            pep503_page(project, files).as_bytes(),
        )?;
    }
    Ok(())
}

/// A PEP 503 project page: one link per file, its sha256 in the fragment.
fn pep503_page(project: &str, files: &[(String, String)]) -> String {
    let mut page =
        format!("<!DOCTYPE html>\n<html><head><title>Links for {project}</title></head><body>\n");
    for (file, sha256) in files {
        let escaped = html_escape(file);
        page.push_str(&format!(
            "<a href=\"{escaped}#sha256={sha256}\">{escaped}</a><br/>\n"
        ));
    }
    page.push_str("</body></html>\n");
    page
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An npm package to bundle: the lock's name, version and integrity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpmDist {
    /// The package name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// The lock's Subresource Integrity (`sha512-...`).
    pub integrity: String,
}

/// Fills the bundle's npm cache with each of `packages` and its whole dependency tree:
/// `npm pack` (its integrity checked against the lock) into `npm/tarballs`, then an
/// install into a scratch prefix with that cache (scripts not run), which stores every
/// packument and tarball the install needs; `npm install --offline` with the same cache
/// and registry then needs no network.
pub async fn fetch_npm(
    npm: &Path,
    registry: &str,
    layout: &Layout,
    packages: &[NpmDist],
) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let cache = layout.npm_cache();
    let tarballs = layout.npm_tarballs();
    create_dir(&cache)?;
    create_dir(&tarballs)?;
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    for p in packages {
        let spec = format!("{}@{}", p.name, p.version);
        let packed = Cmd::new(npm)
            .args(["pack", "--json", "--registry", registry, "--cache"])
            .arg(&cache)
            .arg("--pack-destination")
            .arg(&tarballs)
            .arg(&spec)
            .current_dir(scratch.path())
            .stdout()
            .await?;
        let integrity = npm_pack_integrity(&packed)
            .ok_or_else(|| format!("npm pack {spec}: no integrity in its output"))?;
        if integrity != p.integrity {
            return Err(format!(
                "{spec}: the registry serves a tarball with integrity {integrity}, the lock says {}",
                p.integrity
            ));
        }
        Cmd::new(npm)
            .args([
                "install",
                "--global",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--registry",
                registry,
                "--cache",
            ])
            .arg(&cache)
            .arg("--prefix")
            .arg(scratch.path().join("prefix"))
            .arg(&spec)
            .current_dir(scratch.path())
            .stdout()
            .await?;
    }
    Ok(())
}

/// The `integrity` of the first package in `npm pack --json`'s output.
fn npm_pack_integrity(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(0)?.get("integrity")?.as_str().map(str::to_string)
}

/// Copies a download (already checked against `sha256` by whoever fetched it) into
/// `files/SHA256`.
pub fn store_download(layout: &Layout, from: &Path, sha256: &str) -> Result<(), String> {
    let files = layout.files();
    create_dir(&files)?;
    let actual = sha256_file(from)?;
    if actual != sha256 {
        return Err(format!(
            "{}: sha256 {actual}, the lock says {sha256}",
            from.display()
        ));
    }
    std::fs::copy(from, files.join(sha256)).map_err(|e| {
        format!(
            "cannot copy {} into {}: {e}",
            from.display(),
            files.display()
        )
    })?;
    Ok(())
}

/// Writes `bundle.toml`: the sha256 of every file under the bundle but itself.
pub fn write_manifest(
    layout: &Layout,
    lock_sha256: &str,
    npm_registry: Option<String>,
) -> Result<BundleManifest, String> {
    let mut files = BTreeMap::new();
    for path in walk(layout.root())? {
        let rel = relative(layout.root(), &path);
        if rel == MANIFEST_FILE {
            continue;
        }
        files.insert(rel, sha256_file(&path)?);
    }
    let manifest = BundleManifest {
        version: FORMAT_VERSION,
        lock_sha256: lock_sha256.to_string(),
        npm_registry,
        files,
    };
    let text = toml::to_string(&manifest).map_err(|e| format!("cannot render bundle.toml: {e}"))?;
    write_atomic(&layout.manifest(), text.as_bytes())?;
    Ok(manifest)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every regular file under `dir`, sorted; symbolic links are refused (a bundle is
/// plain files, and a link could point anywhere on the installing machine).
fn walk(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?
        {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            } else {
                return Err(format!(
                    "{}: not a regular file (a bundle holds only files and directories)",
                    entry.path().display()
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A bundle opened for an offline install: every file checked against `bundle.toml`, and
/// the apt configuration that makes the bundle apt's only source.
#[derive(Debug)]
pub struct OfflineSources {
    layout: Layout,
    manifest: BundleManifest,
    // The apt configuration and lists of this run (the bundle itself may be read-only).
    apt_scratch: tempfile::TempDir,
}

impl OfflineSources {
    /// Opens the bundle at `dir`: `bundle.toml` read, each file it names present with its
    /// sha256, no file it does not name; `lock_sha256` (the lock the install uses) must be
    /// the one the bundle was made from.
    pub fn open(dir: &Path, lock_sha256: &str) -> Result<OfflineSources, String> {
        let layout = Layout::new(dir)?;
        let path = layout.manifest();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e}\nhint: make the bundle with `extension-manager bundle {}`",
                path.display(),
                dir.display()
            )
        })?;
        // A bad bundle.toml reads like a bad manifest: file:line:column, caret, hint.
        let manifest: BundleManifest = toml::from_str(&text).map_err(|e| {
            let file = em_manifest::SourceFile::new(&path, &text);
            let diagnostic = file
                .error(
                    e.span().unwrap_or(0..0),
                    format!("bad bundle.toml: {}", e.message().trim_end()),
                )
                .with_hint(
                    "the file is written by `extension-manager bundle`: make the bundle again",
                );
            em_manifest::render_all(&[diagnostic])
                .trim_end()
                .to_string()
        })?;
        if manifest.version != FORMAT_VERSION {
            return Err(format!(
                "{}: format version {}, this extension-manager reads {FORMAT_VERSION}",
                path.display(),
                manifest.version
            ));
        }
        if manifest.lock_sha256 != lock_sha256 {
            return Err(format!(
                "{} was made from another lock file (sha256 {}, this one's is {lock_sha256})\nhint: bundle again from this lock, or install with the lock the bundle was made from",
                dir.display(),
                manifest.lock_sha256
            ));
        }
        let mut seen = BTreeMap::new();
        for file in walk(layout.root())? {
            let rel = relative(layout.root(), &file);
            if rel != MANIFEST_FILE {
                seen.insert(rel, file);
            }
        }
        for (rel, sha256) in &manifest.files {
            let Some(file) = seen.remove(rel) else {
                return Err(format!("{}: {rel} is missing", dir.display()));
            };
            let actual = sha256_file(&file)?;
            if &actual != sha256 {
                return Err(format!(
                    "{}: {rel} has sha256 {actual}, bundle.toml says {sha256}",
                    dir.display()
                ));
            }
        }
        // npm adds index entries to its cache as it reads it: those may appear after a
        // first install from the bundle, nothing else may.
        if let Some(extra) = seen.keys().find(|rel| !rel.starts_with("npm/cache/")) {
            return Err(format!(
                "{}: {extra} is not in bundle.toml (the bundle was changed after it was made)",
                dir.display()
            ));
        }
        let apt_scratch =
            tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let offline = OfflineSources {
            layout,
            manifest,
            apt_scratch,
        };
        offline.write_apt_config()?;
        Ok(offline)
    }

    /// The bundle's manifest.
    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    /// An apt.conf that includes the one in effect (`APT_CONFIG`, when set) and then makes
    /// the bundle the only source, with lists of its own: nothing under /etc is read for
    /// sources or written.
    fn write_apt_config(&self) -> Result<(), String> {
        let dir = self.apt_scratch.path();
        create_dir(&dir.join("sources.list.d"))?;
        create_dir(&dir.join("lists/partial"))?;
        write_atomic(
            &dir.join("sources.list"),
            format!(
                "deb [trusted=yes] file:{} ./\n",
                self.layout.apt().display()
            )
            .as_bytes(),
        )?;
        let mut conf = String::new();
        if let Some(outer) = std::env::var_os("APT_CONFIG") {
            conf.push_str(&format!("#include \"{}\";\n", Path::new(&outer).display()));
        }
        conf.push_str(&format!(
            "Dir::Etc::SourceList \"{}\";\nDir::Etc::SourceParts \"{}\";\nDir::State::Lists \"{}\";\n",
            dir.join("sources.list").display(),
            dir.join("sources.list.d").display(),
            dir.join("lists").display()
        ));
        write_atomic(&self.apt_config(), conf.as_bytes())
    }

    /// The apt.conf to name in `APT_CONFIG` for every apt command of the run.
    pub fn apt_config(&self) -> PathBuf {
        self.apt_scratch.path().join("apt.conf")
    }

    /// The environment of every apt command of the run.
    pub fn apt_env(&self) -> Vec<(String, String)> {
        vec![(
            "APT_CONFIG".to_string(),
            self.apt_config().display().to_string(),
        )]
    }

    /// pip's index: the bundle's PEP 503 index, as a `file://` URL.
    pub fn pip_index(&self) -> String {
        format!("file://{}/", self.layout.pypi_simple().display())
    }

    /// The environment of every pip command of the run: the bundle's index as pip's own
    /// setting (`PIP_INDEX_URL`: em-pip's `--index-url` takes only http(s) URLs, which
    /// is right for a configuration) and no pip.conf, whose `extra-index-url` would
    /// reach for the network.
    pub fn pip_env(&self) -> Vec<(String, String)> {
        vec![
            ("PIP_INDEX_URL".to_string(), self.pip_index()),
            ("PIP_CONFIG_FILE".to_string(), "/dev/null".to_string()),
        ]
    }

    /// npm's registry (the one the cache was filled from) and its cache.
    pub fn npm(&self) -> (Option<String>, PathBuf) {
        (self.manifest.npm_registry.clone(), self.layout.npm_cache())
    }

    /// The environment of every npm command of the run: offline, from the cache only.
    pub fn npm_env(&self) -> Vec<(String, String)> {
        vec![("npm_config_offline".to_string(), "true".to_string())]
    }

    /// The bundled file of a download with `sha256`, if the bundle has it.
    pub fn download(&self, sha256: &str) -> Option<PathBuf> {
        let rel = format!("files/{sha256}");
        self.manifest
            .files
            .contains_key(&rel)
            .then(|| self.layout.root().join(rel))
    }
}

/// Copies a bundled download to `dest` atomically (a temporary file beside it, renamed),
/// checking its sha256 again on the way (the bundle may have changed since it was opened).
pub fn copy_download(
    from: &Path,
    sha256: &str,
    dest: &Path,
    mode: Option<u32>,
) -> Result<u64, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let bytes = std::fs::copy(from, tmp.path())
        .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    let actual = sha256_file(tmp.path())?;
    if actual != sha256 {
        return Err(format!(
            "{}: sha256 {actual}, expected {sha256}",
            from.display()
        ));
    }
    if let Some(mode) = mode {
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", dest.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    tmp.persist(dest)
        .map_err(|e| format!("cannot write {}: {}", dest.display(), e.error))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_pages_carry_the_hash_and_escape_names() {
        let page = pep503_page("a-b", &[("a_b-1.0-py3-none-any.whl".into(), "ab".into())]);
        assert!(
            page.contains("<a href=\"a_b-1.0-py3-none-any.whl#sha256=ab\">"),
            "{page}"
        );
        assert_eq!(html_escape("a\"<b>&"), "a&quot;&lt;b&gt;&amp;");
    }

    #[test]
    fn npm_pack_json_gives_the_integrity() {
        let json = r#"[{"id":"x@1.0.0","integrity":"sha512-abc","filename":"x-1.0.0.tgz"}]"#;
        assert_eq!(npm_pack_integrity(json).as_deref(), Some("sha512-abc"));
        assert_eq!(npm_pack_integrity("[]"), None);
    }

    fn bundle_with_one_file() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("test setup");
        let layout = Layout::new(dir.path()).expect("test setup");
        let src = dir.path().join("src.bin");
        std::fs::write(&src, b"payload").expect("test setup");
        let sha = sha256_file(&src).expect("test setup");
        store_download(&layout, &src, &sha).expect("test setup");
        std::fs::remove_file(&src).expect("test setup");
        write_manifest(&layout, "lock", None).expect("test setup");
        (dir, sha)
    }

    #[test]
    fn a_bundle_opens_and_hands_out_its_download() {
        let (dir, sha) = bundle_with_one_file();
        let offline = OfflineSources::open(dir.path(), "lock").expect("test setup");
        let from = offline.download(&sha).expect("bundled");
        let out = tempfile::tempdir().expect("test setup");
        let dest = out.path().join("got");
        assert_eq!(
            copy_download(&from, &sha, &dest, Some(0o755)).expect("test setup"),
            7
        );
        assert_eq!(std::fs::read(&dest).expect("test setup"), b"payload");
        assert_eq!(offline.download(&"0".repeat(64)), None);
        let conf = std::fs::read_to_string(offline.apt_config()).expect("test setup");
        assert!(conf.contains("Dir::Etc::SourceList"), "{conf}");
        let dirs = em_apt::AptDirs::from_apt_conf_text(&conf);
        assert!(
            dirs.lists.starts_with(offline.apt_scratch.path()),
            "{dirs:?}"
        );
    }

    #[test]
    fn a_changed_missing_or_added_file_or_another_lock_is_refused() {
        let (dir, sha) = bundle_with_one_file();
        let err = OfflineSources::open(dir.path(), "other").expect_err("refused");
        assert!(err.contains("another lock file"), "{err}");
        std::fs::write(dir.path().join("files/extra"), b"x").expect("test setup");
        let err = OfflineSources::open(dir.path(), "lock").expect_err("refused");
        assert!(err.contains("files/extra is not in bundle.toml"), "{err}");
        std::fs::remove_file(dir.path().join("files/extra")).expect("test setup");
        std::fs::write(dir.path().join("files").join(&sha), b"tampered").expect("test setup");
        let err = OfflineSources::open(dir.path(), "lock").expect_err("refused");
        assert!(err.contains("bundle.toml says"), "{err}");
        std::fs::remove_file(dir.path().join("files").join(&sha)).expect("test setup");
        let err = OfflineSources::open(dir.path(), "lock").expect_err("refused");
        assert!(err.contains("is missing"), "{err}");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "version = 1\nlock_sha256 = 3\n",
        )
        .expect("test setup");
        let err = OfflineSources::open(dir.path(), "lock").expect_err("refused");
        assert!(err.contains("bundle.toml:2:15"), "{err}");
        assert!(err.contains("hint: the file is written by"), "{err}");
    }
}
