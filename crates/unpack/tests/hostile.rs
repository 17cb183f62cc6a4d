//! Hostile archives, built at test time with the `tar` and `zip` crates' builders, unpacked
//! into a temp dir: what lands on disk (paths, modes, owners) and what must not.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use em_unpack::{Error, Format, Limits, plan};
use tar::{EntryType, Header};

/// A scratch root: `opt` is the unpack target, `outside` a directory nothing may reach.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let s = Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        fs::create_dir(s.outside()).expect("outside");
        fs::write(s.outside().join("secret"), "untouched").expect("secret");
        s
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn target(&self) -> PathBuf {
        self.root().join("opt")
    }
    fn outside(&self) -> PathBuf {
        self.root().join("outside")
    }
    fn unpack(&self, archive: &Path) -> Result<Vec<PathBuf>, Error> {
        self.unpack_with(archive, Limits::default())
    }
    fn unpack_with(&self, archive: &Path, limits: Limits) -> Result<Vec<PathBuf>, Error> {
        plan(archive, &self.target(), limits)?.unpack()
    }
    /// Asserts `outside` holds only `secret`, unchanged, and that no temp dir is left.
    fn assert_clean(&self) {
        assert_eq!(names(&self.outside()), ["secret"]);
        assert_eq!(
            fs::read_to_string(self.outside().join("secret")).expect("secret"),
            "untouched"
        );
        let temps: Vec<String> = names(self.root())
            .into_iter()
            .chain(names(&self.target()))
            .filter(|n| n.contains(".em-unpack-"))
            .collect();
        assert!(temps.is_empty(), "temp dirs left: {temps:?}");
    }
    /// The uid files made by this process get.
    fn my_uid(&self) -> u32 {
        fs::metadata(self.root()).expect("root").uid()
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o7777
}

/// One tar entry, written raw so that hostile names (`../x`, `/etc/x`) get through: the
/// tar crate's own `set_path` refuses them.
struct TarEntry<'a> {
    name: &'a str,
    kind: EntryType,
    mode: u32,
    uid: u64,
    link: &'a str,
    data: &'a [u8],
}

fn entry<'a>(name: &'a str, kind: EntryType) -> TarEntry<'a> {
    TarEntry {
        name,
        kind,
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        uid: 0,
        link: "",
        data: b"",
    }
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> TarEntry<'a> {
    TarEntry {
        data,
        ..entry(name, EntryType::Regular)
    }
}

fn symlink<'a>(name: &'a str, target: &'a str) -> TarEntry<'a> {
    TarEntry {
        link: target,
        ..entry(name, EntryType::Symlink)
    }
}

fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = Header::new_gnu();
        {
            let old = header.as_old_mut();
            old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            old.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        header.set_entry_type(e.kind);
        header.set_mode(e.mode);
        header.set_uid(e.uid);
        header.set_gid(e.uid);
        header.set_size(e.data.len() as u64);
        header.set_mtime(1_700_000_000);
        if matches!(e.kind, EntryType::Block | EntryType::Char) {
            header.set_device_major(8).expect("major");
            header.set_device_minor(0).expect("minor");
        }
        header.set_cksum();
        builder.append(&header, e.data).expect("append");
    }
    builder.into_inner().expect("tar")
}

fn write_tar(s: &Scratch, name: &str, entries: &[TarEntry<'_>]) -> PathBuf {
    let path = s.root().join(name);
    fs::write(&path, tar_bytes(entries)).expect("archive");
    path
}

fn write_tar_gz(s: &Scratch, name: &str, entries: &[TarEntry<'_>]) -> PathBuf {
    let path = s.root().join(name);
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(&path).expect("create"),
        flate2::Compression::default(),
    );
    gz.write_all(&tar_bytes(entries)).expect("gz");
    gz.finish().expect("gz");
    path
}

fn refused(result: Result<Vec<PathBuf>, Error>) -> (String, String) {
    match result {
        Err(Error::Refused { entry, reason, .. }) => (entry, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn setuid_owner_and_loose_modes_are_not_kept() {
    let s = Scratch::new();
    let archive = write_tar(
        &s,
        "t.tar",
        &[
            TarEntry {
                mode: 0o777,
                ..entry("bin/", EntryType::Directory)
            },
            TarEntry {
                mode: 0o4755,
                uid: 1234,
                ..file("bin/suid-bin", b"#!/bin/sh\n")
            },
            TarEntry {
                mode: 0o2775,
                ..file("bin/sgid-bin", b"x")
            },
            TarEntry {
                mode: 0o666,
                uid: 1234,
                ..file("README", b"read me")
            },
            TarEntry {
                mode: 0o1777,
                ..entry("tmp/", EntryType::Directory)
            },
        ],
    );
    let p = plan(&archive, &s.target(), Limits::default()).expect("plan");
    assert_eq!(p.temp_dir().parent(), Some(s.root()), "beside a new target");
    let created = p.unpack().expect("unpacks");
    let t = s.target();
    assert_eq!(created, vec![t.clone()]);
    assert_eq!(mode(&t), 0o755);
    assert_eq!(mode(&t.join("bin")), 0o755);
    assert_eq!(mode(&t.join("bin/suid-bin")), 0o755);
    assert_eq!(mode(&t.join("bin/sgid-bin")), 0o755);
    assert_eq!(mode(&t.join("README")), 0o644);
    assert_eq!(mode(&t.join("tmp")), 0o755);
    for p in ["", "bin", "bin/suid-bin", "README"] {
        let meta = fs::symlink_metadata(t.join(p)).expect("exists");
        assert_eq!(meta.uid(), s.my_uid(), "{p}");
        assert_eq!(
            meta.gid(),
            fs::metadata(s.root()).expect("root").gid(),
            "{p}"
        );
    }
    assert_eq!(
        fs::read_to_string(t.join("README")).expect("readme"),
        "read me"
    );
    s.assert_clean();
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    for (kind, word) in [
        (EntryType::Block, "device"),
        (EntryType::Char, "device"),
        (EntryType::Fifo, "FIFO"),
    ] {
        let s = Scratch::new();
        let archive = write_tar(
            &s,
            "t.tar",
            &[
                file("ok", b"fine"),
                TarEntry {
                    mode: 0o666,
                    ..entry("dev/sda", kind)
                },
            ],
        );
        let (name, reason) = refused(s.unpack(&archive));
        assert_eq!(name, "dev/sda");
        assert!(reason.contains(word), "{reason}");
        assert!(!s.target().exists(), "nothing unpacked");
        s.assert_clean();
    }
}

#[test]
fn absolute_and_dotdot_names_are_refused() {
    let s = Scratch::new();
    let abs = format!("{}/planted", s.outside().display());
    for name in [
        abs.as_str(),
        "../outside/planted",
        "a/../../outside/planted",
    ] {
        let archive = write_tar(&s, "t.tar", &[file("ok", b"fine"), file(name, b"evil")]);
        let (entry, reason) = refused(s.unpack(&archive));
        assert_eq!(entry, name);
        assert!(
            reason.contains("absolute") || reason.contains("`..`"),
            "{reason}"
        );
        assert!(!s.target().exists());
        s.assert_clean();
    }
}

#[test]
fn symlinks_out_of_the_archive_are_refused() {
    let s = Scratch::new();
    let out = s.outside().display().to_string();
    let cases: [&[TarEntry<'_>]; 4] = [
        &[symlink("etcl", &out)],
        &[symlink("etcl", &out), file("etcl/profile.d/zz.sh", b"evil")],
        &[
            symlink("etcl", "../outside"),
            file("etcl/profile.d/zz.sh", b"evil"),
        ],
        // Each link alone stays inside; together `a` leads to the root's parent.
        &[symlink("a", "b/c/.."), symlink("b/c", "..")],
    ];
    for entries in cases {
        let archive = write_tar(&s, "t.tar", entries);
        let (_, reason) = refused(s.unpack(&archive));
        assert!(
            reason.contains("absolute") || reason.contains("outside"),
            "{reason}"
        );
        assert!(!s.target().exists());
        s.assert_clean();
    }
}

#[test]
fn a_symlink_already_in_the_target_is_not_followed() {
    let s = Scratch::new();
    fs::create_dir(s.target()).expect("target");
    // What an earlier `tar -xf` of `etcl -> /etc` left behind.
    std::os::unix::fs::symlink(s.outside(), s.target().join("etcl")).expect("planted");
    let archive = write_tar(
        &s,
        "second.tar",
        &[
            file("fine", b"ok"),
            entry("etcl/profile.d/", EntryType::Directory),
            file("etcl/profile.d/zz.sh", b"evil"),
        ],
    );
    let err = s.unpack(&archive).expect_err("refused");
    let Error::Conflict { path, reason } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &s.target().join("etcl"));
    assert!(reason.contains("symlink"), "{reason}");
    assert!(err.to_string().contains("etcl"), "{err}");
    assert_eq!(names(&s.target()), ["etcl"], "not even `fine` landed");
    s.assert_clean();
}

#[test]
fn the_target_itself_as_a_symlink_is_not_followed() {
    let s = Scratch::new();
    std::os::unix::fs::symlink(s.outside(), s.target()).expect("planted");
    let archive = write_tar(&s, "t.tar", &[file("x", b"evil")]);
    assert!(matches!(s.unpack(&archive), Err(Error::Conflict { .. })));
    s.assert_clean();
}

#[test]
fn symlinks_inside_the_archive_are_kept_and_written_through_inside() {
    let s = Scratch::new();
    let archive = write_tar(
        &s,
        "t.tar",
        &[
            entry("lib64/", EntryType::Directory),
            symlink("lib", "lib64"),
            file("lib/libx.so", b"elf"),
            symlink("bin/tool", "../lib/libx.so"),
        ],
    );
    s.unpack(&archive).expect("unpacks");
    let t = s.target();
    assert_eq!(
        fs::read_link(t.join("lib")).expect("link"),
        Path::new("lib64")
    );
    assert_eq!(fs::read(t.join("lib64/libx.so")).expect("file"), b"elf");
    assert_eq!(fs::read(t.join("bin/tool")).expect("through"), b"elf");
    s.assert_clean();
}

#[test]
fn hard_links_outside_the_archive_are_refused() {
    let s = Scratch::new();
    let secret = s.outside().join("secret").display().to_string();
    for link in [secret.as_str(), "../outside/secret", "not-in-the-archive"] {
        let archive = write_tar(
            &s,
            "t.tar",
            &[
                file("ok", b"fine"),
                TarEntry {
                    link,
                    ..entry("h", EntryType::Link)
                },
            ],
        );
        let (entry, reason) = refused(s.unpack(&archive));
        assert_eq!(entry, "h");
        assert!(reason.contains("hard link"), "{reason}");
        assert!(!s.target().exists());
        s.assert_clean();
    }
    let archive = write_tar(
        &s,
        "t.tar",
        &[
            file("ok", b"fine"),
            TarEntry {
                link: "ok",
                ..entry("h", EntryType::Link)
            },
        ],
    );
    s.unpack(&archive).expect("a link inside is fine");
    assert_eq!(fs::read(s.target().join("h")).expect("h"), b"fine");
}

#[test]
fn zip_modes_are_masked_and_its_data_deflated() {
    use zip::write::SimpleFileOptions;
    let s = Scratch::new();
    let path = s.root().join("t.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).expect("create"));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("open.txt", opts.unix_permissions(0o666))
        .expect("file");
    zip.write_all(&b"hello ".repeat(100)).expect("write");
    zip.start_file("bin/run", opts.unix_permissions(0o4777))
        .expect("file");
    zip.write_all(b"#!/bin/sh\n").expect("write");
    zip.add_symlink("link", "open.txt", opts).expect("link");
    zip.finish().expect("zip");
    assert_eq!(Format::detect(&path).expect("format"), Format::Zip);
    s.unpack(&path).expect("unpacks");
    let t = s.target();
    assert_eq!(mode(&t.join("open.txt")), 0o644);
    assert_eq!(mode(&t.join("bin/run")), 0o755);
    assert_eq!(
        fs::read(t.join("open.txt")).expect("data"),
        b"hello ".repeat(100)
    );
    assert_eq!(
        fs::read_link(t.join("link")).expect("link"),
        Path::new("open.txt")
    );
    s.assert_clean();
}

#[test]
fn zip_names_that_escape_are_refused() {
    use zip::write::SimpleFileOptions;
    let s = Scratch::new();
    let path = s.root().join("t.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).expect("create"));
    zip.start_file("../outside/planted", SimpleFileOptions::default())
        .expect("file");
    zip.write_all(b"evil").expect("write");
    zip.finish().expect("zip");
    let (entry, _) = refused(s.unpack(&path));
    assert_eq!(entry, "../outside/planted");
    s.assert_clean();
}

#[test]
fn too_many_entries_is_refused_and_leaves_nothing() {
    let s = Scratch::new();
    let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let entries: Vec<TarEntry<'_>> = names.iter().map(|n| file(n, b"x")).collect();
    let archive = write_tar_gz(&s, "t.tar.gz", &entries);
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = s.unpack_with(&archive, limits).expect_err("bomb");
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("more than 10 entries"), "{err}");
    assert!(!s.target().exists());
    s.assert_clean();
    let limits = Limits {
        max_entries: 11,
        ..Limits::default()
    };
    s.unpack_with(&archive, limits).expect("at the limit");
}

#[test]
fn too_many_bytes_is_refused_and_leaves_nothing() {
    let s = Scratch::new();
    let zeros = vec![0u8; 4 << 20];
    let archive = write_tar_gz(&s, "bomb.tar.gz", &[file("a", b"x"), file("zeros", &zeros)]);
    assert!(
        fs::metadata(&archive).expect("size").len() < 64 << 10,
        "compressed"
    );
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = s.unpack_with(&archive, limits).expect_err("bomb");
    assert!(err.to_string().contains("more than 1048576 bytes"), "{err}");
    assert!(!s.target().exists());
    s.assert_clean();
}

#[test]
fn a_file_the_unpack_did_not_create_is_not_overwritten() {
    let s = Scratch::new();
    fs::create_dir_all(s.target().join("bin")).expect("target");
    fs::write(s.target().join("bin/tool"), "the user's").expect("foreign");
    let archive = write_tar(
        &s,
        "t.tar",
        &[file("bin/other", b"new"), file("bin/tool", b"replacement")],
    );
    let err = s.unpack(&archive).expect_err("refused");
    let Error::Conflict { path, reason } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &s.target().join("bin/tool"));
    assert!(reason.contains("not overwritten"), "{reason}");
    assert_eq!(
        fs::read_to_string(s.target().join("bin/tool")).expect("kept"),
        "the user's"
    );
    assert_eq!(names(&s.target().join("bin")), ["tool"]);
    s.assert_clean();
}

#[test]
fn real_directories_are_merged_and_only_new_paths_are_reported() {
    let s = Scratch::new();
    fs::create_dir_all(s.target().join("bin")).expect("target");
    fs::write(s.target().join("keep"), "the user's").expect("keep");
    let archive = write_tar_gz(
        &s,
        "t.tgz",
        &[
            entry("bin/", EntryType::Directory),
            file("bin/new", b"n"),
            file("share/doc/x", b"x"),
        ],
    );
    let p = plan(&archive, &s.target(), Limits::default()).expect("plan");
    let expected = [s.target().join("bin/new"), s.target().join("share")];
    assert_eq!(p.creates(), expected);
    assert_eq!(p.temp_dir().parent(), Some(s.target().as_path()));
    assert_eq!(p.unpack().expect("unpacks"), expected);
    assert_eq!(names(&s.target()), ["bin", "keep", "share"]);
    assert_eq!(fs::read(s.target().join("share/doc/x")).expect("x"), b"x");
    s.assert_clean();
}

#[test]
fn a_conflict_that_appears_after_planning_rolls_back_what_was_moved() {
    let s = Scratch::new();
    fs::create_dir(s.target()).expect("target");
    let archive = write_tar(&s, "t.tar", &[file("a/x", b"1"), file("z", b"2")]);
    let p = plan(&archive, &s.target(), Limits::default()).expect("plan");
    fs::write(s.target().join("z"), "arrived meanwhile").expect("racer");
    let err = p.unpack().expect_err("conflict");
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(names(&s.target()), ["z"], "`a` was moved, then taken back");
    assert_eq!(
        fs::read_to_string(s.target().join("z")).expect("z"),
        "arrived meanwhile"
    );
    s.assert_clean();
}

#[test]
fn the_format_is_read_from_the_bytes_not_the_name() {
    let s = Scratch::new();
    let gz = write_tar_gz(&s, "really-a-tgz.zip", &[file("g", b"gz")]);
    assert_eq!(Format::detect(&gz).expect("gz"), Format::TarGz);
    let plain = write_tar(&s, "plain.tar.gz", &[file("p", b"plain")]);
    assert_eq!(Format::detect(&plain).expect("tar"), Format::Tar);
    let xz = s.root().join("t.bin");
    let mut out = Vec::new();
    lzma_rs::xz_compress(
        &mut std::io::Cursor::new(tar_bytes(&[file("x", b"xz")])),
        &mut out,
    )
    .expect("xz");
    fs::write(&xz, out).expect("xz");
    assert_eq!(Format::detect(&xz).expect("xz"), Format::TarXz);
    s.unpack(&gz).expect("gz");
    s.unpack(&plain).expect("tar");
    s.unpack(&xz).expect("xz");
    assert_eq!(names(&s.target()), ["g", "p", "x"]);
    assert_eq!(fs::read(s.target().join("x")).expect("x"), b"xz");
    let junk = s.root().join("junk.tar.gz");
    fs::write(&junk, "not an archive").expect("junk");
    let err = s.unpack(&junk).expect_err("junk");
    assert!(matches!(err, Error::Unreadable { .. }), "{err:?}");
    s.assert_clean();
}

#[test]
fn a_truncated_archive_leaves_nothing() {
    let s = Scratch::new();
    let whole = write_tar_gz(&s, "t.tar.gz", &[file("a", &vec![7u8; 100_000])]);
    let bytes = fs::read(&whole).expect("read");
    fs::write(&whole, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = s.unpack(&whole).expect_err("truncated");
    assert!(matches!(err, Error::Unreadable { .. }), "{err:?}");
    assert!(!s.target().exists());
    s.assert_clean();
}
