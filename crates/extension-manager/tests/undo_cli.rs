//! `remove` undoes exactly what `install` added (issue 10, "Exact undo"), end to end
//! against fake tools whose dpkg database gains the dependencies an install pulls in.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Session, stderr, stdout};

const APT: &[&str] = &["apt-get", "dpkg", "dpkg-query"];

/// perl was there before; em-python3 pulls in em-python3.11 (which pulls in em-libpython)
/// and perl; em-gcc and em-tool share em-libshared.
const DPKG: &str = r#"
[dpkg]
installed = ["perl"]
depends = { em-python3 = ["em-python3.11", "perl"], "em-python3.11" = ["em-libpython"], em-gcc = ["em-libshared"], em-tool = ["em-libshared"] }
"#;

fn write(s: &Session, name: &str, body: &str) {
    s.write_extension(name, "1.0.0", body);
}

fn run(s: &Session, args: &[&str]) -> std::process::Output {
    s.em_extensions()
        .env("EM_APT_BATCH_WINDOW", "300ms")
        .args(args)
        .output()
        .expect("extension-manager runs")
}

fn ok(s: &Session, args: &[&str]) -> String {
    let out = run(s, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    err
}

fn state(s: &Session) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(s.path().join("state/state.json")).expect("state"))
        .expect("json")
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The packages of the fake dpkg database.
fn dpkg_packages(s: &Session) -> Vec<String> {
    let db: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(s.path().join("fake-state/dpkg.json")).expect("dpkg.json"),
    )
    .expect("json");
    let mut all = strings(&db["manual"]);
    all.extend(strings(&db["auto"]));
    all.sort();
    all
}

fn calls_of(s: &Session, tool: &str) -> Vec<String> {
    s.calls()
        .into_iter()
        .filter(|(t, _)| t == tool)
        .map(|(_, a)| a)
        .collect()
}

#[test]
fn remove_purges_what_the_install_pulled_in_and_nothing_else() {
    let s = Session::new(APT, DPKG);
    write(
        &s,
        "python",
        "[[install]]\napt = [\"em-python3\", \"em-gcc\"]\n",
    );
    write(&s, "tool", "[[install]]\napt = [\"em-tool\"]\n");
    // One merged apt-get run: both record em-libshared, pulled in for both.
    ok(&s, &["install", "python", "tool"]);
    let st = state(&s);
    let python = &st["extensions"]["python"]["added"];
    assert_eq!(strings(&python["apt"]), ["em-python3", "em-gcc"], "{st:#}");
    assert_eq!(
        strings(&python["apt_deps"]),
        ["em-libpython", "em-libshared", "em-python3.11"],
        "perl was there before: {st:#}"
    );
    assert_eq!(
        strings(&st["extensions"]["tool"]["added"]["apt_deps"]),
        ["em-libpython", "em-libshared", "em-python3.11"],
        "a merged run's dependencies are every member's: {st:#}"
    );

    // tool also recorded em-python3.11 and em-libpython, so they stay with it ...
    ok(&s, &["remove", "python"]);
    let purges = calls_of(&s, "apt-get")
        .into_iter()
        .filter(|a| a.starts_with("purge"))
        .collect::<Vec<_>>();
    assert_eq!(purges.len(), 1, "{purges:?}");
    assert!(purges[0].ends_with(" em-python3 em-gcc"), "{purges:?}");
    assert_eq!(
        dpkg_packages(&s),
        [
            "em-libpython",
            "em-libshared",
            "em-python3.11",
            "em-tool",
            "perl"
        ]
    );
    // ... and go with it, as apt finds nothing needs them; perl stays.
    ok(&s, &["remove", "tool"]);
    assert_eq!(dpkg_packages(&s), ["perl"]);
    let purges = calls_of(&s, "apt-get")
        .into_iter()
        .filter(|a| a.starts_with("purge"))
        .collect::<Vec<_>>();
    assert!(purges[1].ends_with(" em-tool"), "{purges:?}");
    assert!(
        purges[2].ends_with(" em-libpython em-libshared em-python3.11"),
        "{purges:?}"
    );
    assert!(
        state(&s)["extensions"]
            .as_object()
            .is_some_and(|e| e.is_empty())
    );
}

#[test]
fn alone_an_install_records_only_its_own_dependencies_and_remove_takes_them() {
    let s = Session::new(APT, DPKG);
    write(&s, "python", "[[install]]\napt = [\"em-python3\"]\n");
    write(&s, "tool", "[[install]]\napt = [\"em-tool\"]\n");
    ok(&s, &["install", "tool"]);
    ok(&s, &["install", "python"]);
    let st = state(&s);
    assert_eq!(
        strings(&st["extensions"]["tool"]["added"]["apt_deps"]),
        ["em-libshared"]
    );
    ok(&s, &["remove", "python"]);
    assert_eq!(dpkg_packages(&s), ["em-libshared", "em-tool", "perl"]);
}

/// The fake dpkg database's automatically installed packages.
fn dpkg_auto(s: &Session) -> Vec<String> {
    let db: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(s.path().join("fake-state/dpkg.json")).expect("dpkg.json"),
    )
    .expect("json");
    strings(&db["auto"])
}

/// `make` pulls in em-libshared as a dependency; `infra` and `other` then name it.
/// `apt-get install` of a package that is there as a dependency marks it manual: `remove`
/// must give the mark back (when nothing else names it), else apt keeps it forever and
/// `remove make` can no longer take it.
#[test]
fn a_package_named_that_was_a_dependency_gets_its_automatic_mark_back() {
    let s = Session::new(APT, DPKG);
    write(&s, "make", "[[install]]\napt = [\"em-tool\"]\n");
    write(&s, "infra", "[[install]]\napt = [\"em-libshared\"]\n");
    write(&s, "other", "[[install]]\napt = [\"em-libshared\"]\n");
    ok(&s, &["install", "make"]);
    assert_eq!(dpkg_auto(&s), ["em-libshared"]);
    ok(&s, &["install", "infra"]);
    assert!(dpkg_auto(&s).is_empty(), "apt-get install made it manual");
    let st = state(&s);
    let infra = &st["extensions"]["infra"]["added"];
    assert_eq!(strings(&infra["apt_auto"]), ["em-libshared"], "{st:#}");
    assert!(strings(&infra["apt"]).is_empty(), "it was there: {st:#}");
    // other finds it manual now, but infra's record says why: it inherits the record.
    ok(&s, &["install", "other"]);
    let st = state(&s);
    assert_eq!(
        strings(&st["extensions"]["other"]["added"]["apt_auto"]),
        ["em-libshared"],
        "{st:#}"
    );

    // While other names it, removing infra leaves the mark manual.
    let dry = stdout(&run(&s, &["remove", "--dry-run", "infra"]));
    assert!(!dry.contains("apt mark"), "{dry}");
    ok(&s, &["remove", "infra"]);
    assert!(dpkg_auto(&s).is_empty());
    assert!(
        calls_of(&s, "apt-mark")
            .iter()
            .all(|a| !a.starts_with("auto"))
    );

    // The last one to name it gives the mark back, and removes nothing.
    let dry = stdout(&run(&s, &["remove", "--dry-run", "other"]));
    assert!(
        dry.contains(
            "apt mark em-libshared automatically installed again (it was there as a dependency)"
        ),
        "{dry}"
    );
    ok(&s, &["remove", "other"]);
    assert_eq!(dpkg_auto(&s), ["em-libshared"]);
    assert_eq!(dpkg_packages(&s), ["em-libshared", "em-tool", "perl"]);
    assert!(
        calls_of(&s, "apt-get")
            .iter()
            .all(|a| !a.starts_with("purge") || a.ends_with("em-tool")),
        "{:?}",
        s.calls()
    );
    // So the extension that pulled it in takes it along.
    ok(&s, &["remove", "make"]);
    assert_eq!(dpkg_packages(&s), ["perl"]);
}

/// A package the user installed by hand (manual) stays manual and installed.
#[test]
fn a_manual_package_named_is_left_as_it_was() {
    let s = Session::new(APT, DPKG);
    write(&s, "perlish", "[[install]]\napt = [\"perl\"]\n");
    ok(&s, &["install", "perlish"]);
    let st = state(&s);
    assert!(strings(&st["extensions"]["perlish"]["added"]["apt_auto"]).is_empty());
    ok(&s, &["remove", "perlish"]);
    assert_eq!(dpkg_packages(&s), ["perl"]);
    assert!(dpkg_auto(&s).is_empty());
    assert!(
        calls_of(&s, "apt-mark")
            .iter()
            .all(|a| !a.starts_with("auto"))
    );
}

#[test]
fn a_failed_query_records_nothing_as_added() {
    let scenario = format!(
        r#"
[[call]]
tool = "dpkg-query"
exit = 2
stderr = "dpkg-query: error: parsing file '/var/lib/dpkg/status' near line 7: missing 'Package' field\n"

[[call]]
tool = "npm"
match = "^ls "
exit = 1
stderr = "npm ERR! code ELSPROBLEMS\n"
{DPKG}"#
    );
    let s = Session::new(&["apt-get", "dpkg", "dpkg-query", "npm"], &scenario);
    write(
        &s,
        "python",
        "[[install]]\napt = [\"em-python3\"]\n\n[[install]]\nnpm = [\"em-ts\"]\n",
    );
    let err = ok(&s, &["install", "python"]);
    assert!(err.contains("dpkg's status is unknown"), "{err}");
    assert!(err.contains("npm's global packages are unknown"), "{err}");
    let st = state(&s);
    let added = &st["extensions"]["python"]["added"];
    assert!(strings(&added["apt"]).is_empty(), "{st:#}");
    assert!(strings(&added["apt_deps"]).is_empty(), "{st:#}");
    assert!(strings(&added["npm"]).is_empty(), "{st:#}");
    assert_eq!(
        strings(&st["extensions"]["python"]["uses"]["apt"]),
        ["em-python3"]
    );
    ok(&s, &["remove", "python"]);
    assert!(
        calls_of(&s, "apt-get")
            .iter()
            .all(|a| !a.starts_with("purge")),
        "{:?}",
        s.calls()
    );
    assert!(
        calls_of(&s, "npm")
            .iter()
            .all(|a| !a.starts_with("uninstall"))
    );
}

#[test]
fn remove_undoes_the_steps_in_reverse_so_npm_goes_before_the_apt_npm() {
    let scenario = format!(
        "[[call]]\ntool = \"npm\"\nmatch = \"^ls \"\nstdout = '{{\"dependencies\": {{}}}}'\n{DPKG}"
    );
    let s = Session::new(&["apt-get", "dpkg", "dpkg-query", "npm"], &scenario);
    write(
        &s,
        "nodejs",
        "[[install]]\napt = [\"em-nodejs\", \"em-npm\"]\n\n[[install]]\nnpm = [\"em-ts\"]\n",
    );
    ok(&s, &["install", "nodejs"]);
    let dry = run(&s, &["remove", "--dry-run", "nodejs"]);
    let text = stdout(&dry);
    let npm_at = text.find("npm uninstall -g em-ts").expect(&text);
    let apt_at = text.find("apt purge em-nodejs").expect(&text);
    assert!(npm_at < apt_at, "{text}");

    ok(&s, &["remove", "nodejs"]);
    let calls = s.calls();
    let uninstall = calls
        .iter()
        .position(|(t, a)| t == "npm" && a.starts_with("uninstall"))
        .expect("npm uninstall ran");
    let purge = calls
        .iter()
        .position(|(t, a)| t == "apt-get" && a.starts_with("purge"))
        .expect("apt-get purge ran");
    assert!(uninstall < purge, "{calls:?}");
    assert!(state(&s)["extensions"].get("nodejs").is_none());
}

/// A session whose fake npm has no global packages, `modules` as its global root, and
/// whose install creates `package` (npm's own first global install).
fn fresh_npm(modules: &Path, package: &Path) -> Session {
    let scenario = format!(
        "[[call]]\ntool = \"npm\"\nmatch = \"^ls \"\nstdout = '{{\"dependencies\": {{}}}}'\n\n\
         [[call]]\ntool = \"npm\"\nmatch = \"^root -g\"\nstdout = \"{}\\n\"\n\n\
         [[call]]\ntool = \"npm\"\nmatch = \"^install \"\ntouch = [\"{}\"]\n",
        modules.display(),
        package.display(),
    );
    Session::new(&["npm"], &scenario)
}

/// npm creates its global `node_modules` on the first global install and leaves it when
/// the last package goes: the install records it, `remove` deletes it when empty, and
/// keeps it when something else is in it.
#[test]
fn npms_global_root_goes_with_the_install_that_created_it_when_empty() {
    for leftover in [false, true] {
        let root = tempfile::tempdir().expect("tempdir");
        let modules = root.path().join("lib/node_modules");
        let package = modules.join("em-ts");
        let s = fresh_npm(&modules, &package);
        write(&s, "ts", "[[install]]\nnpm = [\"em-ts\"]\n");
        ok(&s, &["install", "ts"]);
        assert!(package.exists(), "the fake npm installed into node_modules");
        assert_eq!(
            strings(&state(&s)["extensions"]["ts"]["added"]["dirs"]),
            [modules.display().to_string()],
        );
        // The fake's uninstall leaves node_modules as npm does; what is in it decides.
        fs::remove_file(&package).expect("the package's file");
        if leftover {
            fs::write(modules.join("someone-elses"), "x").expect("another package");
        }
        ok(&s, &["remove", "ts"]);
        assert_eq!(modules.exists(), leftover, "kept only when not empty");
    }
}

/// A scoped package's `@scope` directory is left by npm too (found by the fresh-rootfs test
/// of the bundled ai-tools: `/usr/local/lib/node_modules/@openai` stayed): the step that
/// created it records it before the root, and `remove` takes both when empty.
#[test]
fn npms_scope_directory_goes_with_the_install_that_created_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let modules = root.path().join("lib/node_modules");
    let scope = modules.join("@em");
    let package = scope.join("cli");
    let s = fresh_npm(&modules, &package);
    write(&s, "cli", "[[install]]\nnpm = [\"@em/cli@1\"]\n");
    ok(&s, &["install", "cli"]);
    assert!(
        package.exists(),
        "the fake npm installed into node_modules/@em"
    );
    assert_eq!(
        strings(&state(&s)["extensions"]["cli"]["added"]["dirs"]),
        [scope.display().to_string(), modules.display().to_string()],
    );
    fs::remove_file(&package).expect("the package's file");
    ok(&s, &["remove", "cli"]);
    assert!(!scope.exists(), "the empty scope went");
    assert!(!modules.exists(), "and then the empty root");
}

#[test]
fn remove_steps_get_the_install_options() {
    let s = Session::new(&[], "");
    let marker = s.path().join("removed");
    write(
        &s,
        "opt",
        &format!(
            "[extension.options.version]\ndefault = \"1\"\n\n[[install]]\nrun = \"true\"\n\n[[remove]]\nrun = \"echo {{{{version}}}} $EM_OPT_VERSION > {}\"\n",
            marker.display()
        ),
    );
    ok(&s, &["install", "opt", "--set", "opt.version=22"]);
    ok(&s, &["remove", "opt"]);
    assert_eq!(fs::read_to_string(&marker).expect("marker"), "22 22\n");
}

/// One tar entry; the header is written raw so that hostile names and link targets get
/// through (the tar crate's own setters refuse them).
fn tar_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data).expect("append");
}

/// A session whose `unpacker` extension downloads `archive` (what the fake curl serves)
/// to `t.tar` and unpacks it into `opt`, which exists and holds the user's `keep`.
fn unpack_session(archive: Vec<u8>) -> (Session, std::path::PathBuf) {
    let s = Session::new(&["curl"], "");
    let served = s.path().join("served.tar");
    fs::write(&served, archive).expect("archive");
    fs::write(
        s.path().join("scenario.toml"),
        format!(
            "[[call]]\ntool = \"curl\"\nwrite_to_arg = \"-o\"\ncontent_file = \"{}\"\n",
            served.display()
        ),
    )
    .expect("scenario");
    let dir = s.path().join("opt");
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("keep"), "the user's").expect("keep");
    write(
        &s,
        "unpacker",
        &format!(
            "[[install]]\ndownload = \"https://127.0.0.1:9/t.tar\"\nto = \"{}\"\nunpack_to = \"{}\"\n",
            s.path().join("t.tar").display(),
            dir.display()
        ),
    );
    (s, dir)
}

/// `small1/` with `files` files in it, and `small2`.
fn small_archive(files: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    tar_entry(&mut b, "small1/", tar::EntryType::Directory, "", b"");
    for i in 0..files {
        tar_entry(
            &mut b,
            &format!("small1/f{i}"),
            tar::EntryType::Regular,
            "",
            b"x",
        );
    }
    tar_entry(&mut b, "./small2", tar::EntryType::Regular, "", b"two");
    b.into_inner().expect("tar")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn recorded_files(s: &Session) -> Vec<String> {
    strings(&state(s)["extensions"]["unpacker"]["added"]["files"])
}

#[test]
fn an_unpack_records_exactly_what_it_created_and_remove_takes_only_that() {
    let (s, dir) = unpack_session(small_archive(3));
    ok(&s, &["install", "unpacker"]);
    assert_eq!(entries(&dir), ["keep", "small1", "small2"]);
    assert_eq!(entries(&dir.join("small1")), ["f0", "f1", "f2"]);
    let files = recorded_files(&s);
    let opt = dir.display().to_string();
    let under_opt: Vec<&String> = files.iter().filter(|f| f.starts_with(&opt)).collect();
    assert_eq!(
        under_opt,
        [&format!("{opt}/small1"), &format!("{opt}/small2")],
        "the top-most created paths, and no temporary directory: {files:?}"
    );
    ok(&s, &["remove", "unpacker"]);
    assert_eq!(entries(&dir), ["keep"]);
    assert_eq!(
        fs::read_to_string(dir.join("keep")).expect("keep"),
        "the user's"
    );
}

#[test]
fn a_failed_unpack_leaves_nothing_behind() {
    let mut archive = small_archive(3);
    archive.truncate(archive.len() / 2);
    let (s, dir) = unpack_session(archive);
    let out = run(&s, &["install", "unpacker"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("t.tar cannot be read"), "{err}");
    assert_eq!(entries(&dir), ["keep"]);
    let files = recorded_files(&s);
    assert!(files.iter().all(|f| !f.contains("/opt/")), "{files:?}");
}

/// A reinstall (an upgrade, `--force`) unpacks over the extension's own earlier tree: what
/// the record says it created is replaced; the user's file next to it stays.
#[test]
fn a_reinstall_unpacks_over_its_own_earlier_tree() {
    let (s, dir) = unpack_session(small_archive(3));
    ok(&s, &["install", "unpacker"]);
    fs::write(dir.join("small1/f0"), "changed since").expect("f0");
    ok(&s, &["install", "--force", "unpacker"]);
    assert_eq!(entries(&dir), ["keep", "small1", "small2"]);
    assert_eq!(fs::read_to_string(dir.join("small1/f0")).expect("f0"), "x");
    assert_eq!(
        fs::read_to_string(dir.join("keep")).expect("keep"),
        "the user's"
    );
    ok(&s, &["remove", "unpacker"]);
    assert_eq!(entries(&dir), ["keep"]);
}

#[test]
fn an_unpack_never_overwrites_a_file_it_did_not_create() {
    let mut b = tar::Builder::new(Vec::new());
    tar_entry(&mut b, "new", tar::EntryType::Regular, "", b"new");
    tar_entry(&mut b, "keep", tar::EntryType::Regular, "", b"replaced");
    let (s, dir) = unpack_session(b.into_inner().expect("tar"));
    let out = run(&s, &["install", "unpacker"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/opt/keep already exists and was not created by this unpack"),
        "{err}"
    );
    assert_eq!(entries(&dir), ["keep"], "not even `new` landed");
    assert_eq!(
        fs::read_to_string(dir.join("keep")).expect("keep"),
        "the user's"
    );
}

/// The archive's own symlink out (`etcl -> OUTSIDE`, then `etcl/profile.d/zz.sh`) and one
/// an earlier archive left in the target: both refused, permanently, with nothing written
/// anywhere and nothing recorded.
#[test]
fn a_symlink_escape_is_refused_and_nothing_lands_outside() {
    for planted in [false, true] {
        let outside = tempfile::tempdir().expect("outside");
        fs::create_dir(outside.path().join("profile.d")).expect("profile.d");
        let out_dir = outside.path().display().to_string();
        let mut b = tar::Builder::new(Vec::new());
        if !planted {
            tar_entry(&mut b, "etcl", tar::EntryType::Symlink, &out_dir, b"");
        }
        tar_entry(
            &mut b,
            "etcl/profile.d/zz.sh",
            tar::EntryType::Regular,
            "",
            b"echo owned\n",
        );
        let (s, dir) = unpack_session(b.into_inner().expect("tar"));
        if planted {
            std::os::unix::fs::symlink(outside.path(), dir.join("etcl")).expect("planted");
        }
        let out = run(&s, &["install", "unpacker"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "permanent: {err}");
        let expected = if planted {
            "/opt/etcl is a symlink that this unpack did not create; it is neither followed nor replaced"
        } else {
            "entry `etcl` is a symlink to the absolute path"
        };
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("hint: "), "{err}");
        assert!(
            entries(&outside.path().join("profile.d")).is_empty(),
            "nothing outside"
        );
        let mut expected_entries = vec!["keep"];
        if planted {
            expected_entries.insert(0, "etcl");
        }
        assert_eq!(entries(&dir), expected_entries);
        let files = recorded_files(&s);
        assert!(
            files
                .iter()
                .all(|f| !f.contains("/opt/") && !f.starts_with(&out_dir)),
            "{files:?}"
        );
    }
}

/// Killed while unpacking (after the plan is saved): `remove` takes away what the unpack
/// had recorded, whatever it had written by then, including its temporary directory.
#[test]
fn a_killed_unpack_is_undone_by_remove() {
    // Enough entries that the extraction takes a while after the record is saved; if the
    // kill lands after it anyway, what follows holds all the same.
    let (s, dir) = unpack_session(small_archive(20_000));
    let mut child = s
        .em()
        .env("EM_PROFILE_DIR", s.path().join("profile.d"))
        .arg("--extensions-dir")
        .arg(s.path().join("extensions"))
        .args(["install", "unpacker"])
        .spawn()
        .expect("spawn");
    // The temporary directory appears only after the plan is saved; wait for it.
    let started = Instant::now();
    let temp = loop {
        if let Some(name) = entries(&dir)
            .into_iter()
            .find(|n| n.starts_with(".em-unpack-"))
        {
            break dir.join(name);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the unpack never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().expect("kill");
    let _ = child.wait();
    let files = recorded_files(&s);
    let opt = dir.display().to_string();
    for planned in [
        temp.display().to_string(),
        format!("{opt}/small1"),
        format!("{opt}/small2"),
    ] {
        assert!(
            files.contains(&planned),
            "{planned} recorded before it was made: {files:?}"
        );
    }
    ok(&s, &["remove", "unpacker"]);
    assert_eq!(entries(&dir), ["keep"]);
}

#[test]
fn bom_lists_the_dependencies_an_install_pulled_in() {
    let s = Session::new(APT, DPKG);
    write(&s, "python", "[[install]]\napt = [\"em-python3\"]\n");
    ok(&s, &["install", "python"]);
    let out = run(&s, &["bom"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let parts = doc["extensions"][0]["components"]
        .as_array()
        .expect("parts");
    let by_name = |n: &str| {
        parts
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {doc:#}"))
    };
    assert_eq!(by_name("em-python3")["dependency"], serde_json::Value::Null);
    for dep in ["em-python3.11", "em-libpython"] {
        assert_eq!(by_name(dep)["dependency"], true, "{doc:#}");
        assert_eq!(by_name(dep)["added"], true, "{doc:#}");
        assert_eq!(by_name(dep)["present"], true, "{doc:#}");
    }
    assert!(
        parts.iter().all(|p| p["name"] != "perl"),
        "perl was there before"
    );
}

/// A failed step keeps, of what it recorded before its tool ran, only what is there after
/// the failure: npm's list after the failed install shows em-a (installed before em-b
/// failed), so em-a stays recorded as added and em-b goes; a download that never landed
/// records no file.
#[test]
fn a_failed_step_keeps_only_what_is_there_after_the_failure() {
    let scenario = r#"
[[call]]
tool = "npm"
match = "^ls "
times = 1
stdout = '{"dependencies": {}}'

[[call]]
tool = "npm"
match = "^install "
exit = 1
stderr = "npm ERR! code E404\nnpm ERR! 404 Not Found - GET http://127.0.0.1:9/em-b - Not found\n"

[[call]]
tool = "npm"
match = "^ls "
stdout = '{"dependencies": {"em-a": {"version": "1.0.0"}}}'

[[call]]
tool = "curl"
exit = 7
stderr = "curl: (7) Failed to connect to 127.0.0.1 port 9: Connection refused\n"
"#;
    let s = Session::new(&["npm", "curl"], scenario);
    let retry = "retry = { attempts = 2, backoff = \"fixed\", delay = \"1ms\" }";
    write(
        &s,
        "ts",
        &format!("[[install]]\nnpm = [\"em-a\", \"em-b\"]\n{retry}\n"),
    );
    let dest = s.path().join("dl/tool.bin");
    write(
        &s,
        "dl",
        &format!(
            "[[install]]\ndownload = \"http://127.0.0.1:9/tool.bin\"\nto = \"{}\"\nallow_http = true\n{retry}\n",
            dest.display()
        ),
    );
    for name in ["ts", "dl"] {
        let out = run(&s, &["install", name]);
        assert_ne!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    }
    let st = state(&s);
    let ts = &st["extensions"]["ts"];
    assert_eq!(ts["status"], "failed", "{st:#}");
    assert_eq!(strings(&ts["added"]["npm"]), ["em-a"], "{st:#}");
    assert_eq!(strings(&ts["uses"]["npm"]), ["em-a", "em-b"], "{st:#}");
    let dl = &st["extensions"]["dl"];
    assert!(!dest.exists());
    assert!(strings(&dl["added"]["files"]).is_empty(), "{st:#}");
    assert_eq!(
        strings(&dl["uses"]["files"]),
        [dest.display().to_string()],
        "{st:#}"
    );
}
